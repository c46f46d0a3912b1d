"""The package's architecture (issue 15): import layers, declarative settings, the run directory,
the one error root, the trainer's state and hooks.

- the layering of DESIGN.md holds (``../shared/tools/layers.py``);
- settings compose defaults < ``--config FILE`` < flags; an unknown key names itself and the file;
  every error names the flag as typed;
- no bad setting (or bad data file) changes an existing run, with ``--overwrite`` or ``--resume``,
  for every command (a sample in real ``python train.py`` processes);
- ``--resume`` with settings that change the model is refused in one line naming them;
- only a :class:`UserError` becomes one line and exit 2: any other exception keeps its traceback.
"""

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import paddle
import pytest

from paddle_hsoftmax import cli
from paddle_hsoftmax.cli import main
from paddle_hsoftmax.errors import ConfigError, UserError

REPO = Path(__file__).resolve().parents[1]
LAYERS_TOOL = Path(__file__).resolve().parents[2] / "shared" / "tools" / "layers.py"


def test_import_layers_have_no_cycle_and_nothing_runs_back_up():
    if not LAYERS_TOOL.exists():
        pytest.skip(f"{LAYERS_TOOL} not found (it sits beside the clone)")
    proc = subprocess.run([sys.executable, str(LAYERS_TOOL), str(REPO / "paddle_hsoftmax")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1].startswith("ok:"), proc.stdout


def test_loading_an_export_imports_no_training_code():
    code = ("import sys; import paddle_hsoftmax.inference, paddle_hsoftmax.commands.predict; "
            "bad = sorted(m for m in sys.modules if m.startswith(('paddle_hsoftmax.tasks', 'paddle_hsoftmax.trainer'))); "
            "print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- errors ----------------------------------------------------------------------------------------
def _one_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_error_classes_share_the_user_root():
    from paddle_hsoftmax.data.text import CorpusError
    from paddle_hsoftmax.output.base import MemoryBudgetError
    from paddle_hsoftmax.trainer import TrainingDiverged

    for cls in (ConfigError, CorpusError, MemoryBudgetError, TrainingDiverged):
        assert issubclass(cls, UserError)
    assert not issubclass(TrainingDiverged, ValueError)  # a diverged run is not a bad value
    assert issubclass(MemoryBudgetError, MemoryError)


def test_only_a_user_error_becomes_one_line(monkeypatch, capsys):
    def bug(args):
        raise ValueError("a bug, not the user's input")

    monkeypatch.setattr(cli, "_cmd_info", bug)
    with pytest.raises(ValueError, match="a bug"):  # the traceback is kept
        main(["info"])

    def bad_input(args):
        raise ConfigError("--x must be >= 1, got 0\nsecond line")

    monkeypatch.setattr(cli, "_cmd_info", bad_input)
    assert main(["info"]) == 2
    assert _one_line(capsys).startswith("error: --x must be >= 1, got 0")


@pytest.mark.parametrize("argv, message", [
    (["classify", "--dataset", "chnsenti", "--layers", "0"], "--layers must be >= 1, got 0"),
    (["tag", "--dataset", "pd-pos", "--layers", "0"], "--layers must be >= 1, got 0"),
    (["lm", "--layers", "0"], "--layers must be >= 1, got 0"),
    (["seq2seq", "--dataset", "cedict", "--min-count", "0"], "--min-count must be >= 1, got 0"),
    (["seq2seq", "--dataset", "cedict", "--hidden", "0"], "--hidden must be >= 1, got 0"),
    (["classify", "--dataset", "chnsenti", "--dropout", "1.5"], "--dropout must be in [0, 1), got 1.5"),
    (["tag", "--dataset", "pd-pos", "--char-dim", "-1"], "--char-dim must be >= 0 (0 = off), got -1"),
    (["word2vec", "--dim", "0"], "--dim must be >= 1, got 0"),
    (["lm", "--tie", "--output", "hsoftmax"], "--tie needs an output layer"),
    (["demo", "--dim", "0"], "--dim must be >= 1, got 0"),
    (["classify", "--train", "a.tsv"], "--train-file needs --valid-file and --test-file as well"),
    (["classify"], "give one of --dataset or --train-file"),
    (["lm", "--device", "tpu"], "--device must be cpu, gpu or gpu:N, got 'tpu'"),
])
def test_errors_name_the_flag_as_typed(argv, message, tmp_path, capsys):
    assert main(argv + ["--output-dir", str(tmp_path / "run")]) == 2
    assert message in _one_line(capsys)
    assert not (tmp_path / "run").exists()


# -- settings --------------------------------------------------------------------------------------
def _parse(argv):
    from paddle_hsoftmax.commands.common import read_settings

    return read_settings(cli._parser().parse_args(argv))


def test_config_file_composes_between_defaults_and_flags(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text('hidden = 64\nembed-dim = 32\ndropout = 0.1\nepochs = 2\noutput_dir = "runs/x"\n')
    config, options = _parse(["classify", "--dataset", "chnsenti", "--config", str(toml), "--hidden", "48"])
    assert (config.hidden_size, config.embed_dim, config.dropout, config.epochs) == (48, 32, 0.1, 2)
    assert config.num_layers == 1 and options.output_dir == "runs/x"  # defaults where neither said
    js = tmp_path / "c.json"
    js.write_text(json.dumps({"train": "a.tsv", "valid": ["b.tsv"], "test": ["c.tsv"], "tree": "balanced"}))
    config, _ = _parse(["seq2seq", "--config", str(js), "--output-dir", "o", "--no-copy"])
    assert config.train == ["a.tsv"] and config.valid == ["b.tsv"] and config.tree == "balanced"
    assert config.copy is False and config.input_feed is True


@pytest.mark.parametrize("text, suffix, message", [
    ('{"hiden": 3}', ".json", "unknown setting 'hiden'"),
    ('hidden = "wide"', ".toml", "hidden must be an integer, got 'wide'"),
    ("hidden = ", ".toml", "not valid TOML"),
    ("[1, 2]", ".json", "expected a table of settings"),
    ('{"dropout": 2}', ".json", "--dropout must be in [0, 1), got 2"),
])
def test_bad_config_files(text, suffix, message, tmp_path, capsys):
    path = tmp_path / f"settings{suffix}"
    path.write_text(text)
    assert main(["classify", "--dataset", "chnsenti", "--config", str(path), "--output-dir", str(tmp_path / "o")]) == 2
    line = _one_line(capsys)
    assert message in line
    if "unknown" in message:
        assert str(path) in line


def test_flags_are_generated_from_the_fields():
    import dataclasses

    from paddle_hsoftmax.config import flag_of
    from paddle_hsoftmax.pipeline.configs import ClassifyConfig, LMConfig, Seq2SeqConfig, TagConfig, Word2VecConfig

    parser = cli._parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices
    for command, cls in (("classify", ClassifyConfig), ("tag", TagConfig), ("lm", LMConfig),
                         ("seq2seq", Seq2SeqConfig), ("word2vec", Word2VecConfig)):
        flags = {o for a in sub[command]._actions for o in a.option_strings}
        for f in dataclasses.fields(cls):
            assert (flag_of(f) in flags) == f.metadata.get("cli", True), (command, f.name)
    assert {"--tree", "--hidden", "--min-count", "--beam"} <= {o for a in sub["seq2seq"]._actions
                                                                for o in a.option_strings}


# -- the run directory -----------------------------------------------------------------------------
def _fake_run(out: Path, kind: str, config) -> dict:
    """A run directory as a finished run leaves it (record, metrics, checkpoint, logs)."""
    from paddle_hsoftmax.rundir import RunDir

    run = RunDir(out)
    run.prepare(resume=False, overwrite=False)
    run.start(kind, config)
    (out / "checkpoints").mkdir()
    paddle.save({"model": {}}, str(out / "checkpoints" / "last.pdckpt"))
    (out / "vdl").mkdir()
    (out / "vdl" / "log").write_text("events")
    run.finish({"score": 1.0}, chosen={"best_epoch": 1})
    return _snapshot(out)


def _snapshot(out: Path) -> dict:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest() for p in out.rglob("*") if p.is_file()}


def _data_args(tmp_path: Path):
    """Files that exist (never read: the settings fail first)."""
    for name in ("a.tsv", "b.tsv", "c.tsv"):
        (tmp_path / name).write_text("pos\tgood\n")
    return [str(tmp_path / n) for n in ("a.tsv", "b.tsv", "c.tsv")]


COMMANDS = {
    "classify": ("ClassifyConfig", lambda f: ["--train", f[0], "--valid", f[1], "--test", f[2]], "--dropout", "1.5"),
    "tag": ("TagConfig", lambda f: ["--train", f[0], "--valid", f[1], "--test", f[2]], "--layers", "0"),
    "lm": ("LMConfig", lambda f: ["--corpus", f[0]], "--bptt", "0"),
    "seq2seq": ("Seq2SeqConfig", lambda f: ["--train", f[0], "--valid", f[1], "--test", f[2]], "--min-count", "0"),
    "word2vec": ("Word2VecConfig", lambda f: ["--corpus", f[0]], "--window", "0"),
}


@pytest.mark.parametrize("mode", ["--overwrite", "--resume"])
@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_a_bad_setting_leaves_a_finished_run_intact(command, mode, tmp_path, capsys):
    from paddle_hsoftmax.pipeline import configs

    cls_name, data, flag, bad = COMMANDS[command]
    out = tmp_path / "run"
    before = _fake_run(out, command, getattr(configs, cls_name)())
    argv = [command, *data(_data_args(tmp_path)), "--output-dir", str(out), mode, flag, bad]
    assert main(argv) == 2
    assert flag in _one_line(capsys)
    assert _snapshot(out) == before


def test_a_bad_data_file_with_overwrite_leaves_the_run_intact(tmp_path, capsys):
    from paddle_hsoftmax.pipeline.configs import ClassifyConfig

    out = tmp_path / "run"
    before = _fake_run(out, "classify", ClassifyConfig())
    train, valid, test = _data_args(tmp_path)
    (tmp_path / "a.tsv").write_text("no tab here\n")
    assert main(["classify", "--train", train, "--valid", valid, "--test", test, "--output-dir", str(out),
                 "--overwrite", "--no-progress"]) == 2
    assert "a.tsv:1" in _one_line(capsys)
    assert _snapshot(out) == before


@pytest.mark.parametrize("mode", ["--overwrite", "--resume"])
def test_real_process_bad_setting_keeps_the_run(mode, tmp_path):
    from paddle_hsoftmax.pipeline.configs import ClassifyConfig

    out = tmp_path / "run"
    before = _fake_run(out, "classify", ClassifyConfig(dataset="chnsenti"))
    proc = subprocess.run([sys.executable, str(REPO / "train.py"), "classify", "--dataset", "chnsenti",
                           "--output-dir", str(out), mode, "--dropout", "1.5"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip() == "error: --dropout must be in [0, 1), got 1.5"
    assert _snapshot(out) == before


def test_resume_with_other_shape_settings_is_refused(tmp_path, capsys):
    from paddle_hsoftmax.pipeline.configs import LMConfig

    out = tmp_path / "run"
    before = _fake_run(out, "lm", LMConfig(hidden_size=64))
    (out / "metrics.json").unlink()  # an interrupted run
    before.pop("metrics.json")
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a b c\n")
    assert main(["lm", "--corpus", str(corpus), "--output-dir", str(out), "--resume", "--output", "softmax",
                 "--lr", "0.01"]) == 2
    line = _one_line(capsys)
    assert "--output hsoftmax (run) vs softmax" in line and "--hidden 64 (run) vs 256" in line
    assert "--lr" not in line  # not a shape setting: a resume may change it
    assert _snapshot(out) == before
    assert main(["classify", "--dataset", "chnsenti", "--output-dir", str(out), "--resume"]) == 2
    assert "holds a `train.py lm` run" in _one_line(capsys)


def test_run_record_and_kind(tmp_path):
    from paddle_hsoftmax.pipeline.configs import TagConfig
    from paddle_hsoftmax.rundir import RunDir

    out = tmp_path / "run"
    _fake_run(out, "tag", TagConfig(dataset="pd-ner"))
    run = RunDir.open(out)
    record = run.record()
    assert run.kind == "tag" and record["status"] == "finished" and record["chosen"] == {"best_epoch": 1}
    assert record["config"]["tokenizer"] == "char"  # resolved from the dataset when the settings were built
    assert record["versions"]["paddle"] == paddle.__version__
    assert {"run.json", "metrics.json", "checkpoints/last.pdckpt", "vdl/"} <= set(record["files"])
    # a run written before run.json existed: the kind comes from its files
    old = tmp_path / "old"
    (old / "inference").mkdir(parents=True)
    (old / "inference" / "model.pdmodel").write_text("")
    (old / "labels.txt").write_text("neg\npos\n")
    assert RunDir.open(old).kind == "classify"
    with pytest.raises(UserError, match="a `train.py tag` run; expected one of: train.py seq2seq"):
        RunDir.open(out, kinds=("seq2seq",))


# -- trainer ---------------------------------------------------------------------------------------
def test_trainer_state_reads_old_checkpoints():
    from paddle_hsoftmax.trainer import TrainerState

    old = {"epoch": 2, "batch": 0, "step": 10, "units": 40.0, "train_seconds": 1.0, "wall_seconds": 2.0,
           "best": 0.5, "best_epoch": 1, "stale": 1, "scores": {"a": 1.0}, "stopped_early": 0, "gone": 3}
    state = TrainerState.from_dict(old)
    assert state.step == 10 and state.best == 0.5 and np.isnan(state.last_loss)
    assert TrainerState.from_dict(state.to_dict()) == state or np.isnan(state.last_loss)


def test_resume_into_a_model_of_another_shape_is_refused(tmp_path):
    from paddle_hsoftmax.trainer import StepResult, Task, Trainer, TrainerConfig

    class Linear(Task):
        name = "linear"

        def __init__(self, width):
            self.model = paddle.nn.Linear(3, width)
            self.optimizer = paddle.optimizer.SGD(0.1, parameters=self.model.parameters())

        def epoch_batches(self, epoch):
            yield np.ones((2, 3), dtype="float32")

        def units_per_epoch(self):
            return 2.0

        def train_step(self, batch):
            loss = self.model(paddle.to_tensor(batch)).sum()
            loss.backward()
            return StepResult(loss_sum=loss.detach(), count=2.0, units=2.0)

        def evaluate(self):
            return {"zero": 0.0}

    Trainer(TrainerConfig(str(tmp_path), epochs=1, progress=False)).fit(Linear(4))
    with pytest.raises(ConfigError, match=r"other shapes: weight \[3, 4\] \(run\) vs \[3, 5\]"):
        Trainer(TrainerConfig(str(tmp_path), epochs=2, progress=False, resume=True)).fit(Linear(5))


# -- one home per concept ----------------------------------------------------------------------------
def test_one_tokenizer_and_one_word_count():
    from paddle_hsoftmax.data.parallel import SOURCE_TOKENIZERS
    from paddle_hsoftmax.data.text import TOKENIZERS, tokenize
    from paddle_hsoftmax.data.vocab import Vocab, count_tokens

    assert SOURCE_TOKENIZERS == TOKENIZERS
    assert tokenize(" 中 国\t人", "char") == ["中", "国", "人"]
    counts, total = count_tokens([["b", "a"], ["a", "c", "b", "a"]])
    assert list(counts) == ["b", "a", "c"] and counts["a"] == 3 and total == 6  # first-appearance order
    assert Vocab.build([["b", "a"], ["a", "c", "b", "a"]], min_count=1).words == ["a", "b", "c"]
    pytest.importorskip("jieba")
    assert "".join(tokenize("我们去北京", "jieba")) == "我们去北京"


def test_trees_by_name_have_one_home(tmp_path):
    from paddle_hsoftmax.data.vocab import Vocab
    from paddle_hsoftmax.output.registry import build_tree
    from paddle_hsoftmax.pipeline.configs import Seq2SeqConfig
    from paddle_hsoftmax.pipeline.encoding import lm_vocab
    from paddle_hsoftmax.pipeline.translate import build_model

    counts = np.array([50, 20, 10, 5, 3, 2, 1, 1])
    assert build_tree("huffman", counts).kind == "huffman" and build_tree("balanced", counts).max_length == 3
    vectors = np.random.default_rng(0).normal(size=(8, 4))
    assert build_tree("clustered", counts, vectors=lambda: vectors).num_leaves == 8
    with pytest.raises(ValueError, match="tree must be one of"):
        build_tree("random", counts)
    # the encoder-decoder takes --tree: a balanced tree over the target words
    target = lm_vocab([["a", "b"], ["a", "c", "d"], ["e"]], 1)
    source = Vocab(["x", "y"], [2, 1])
    model = build_model(Seq2SeqConfig(tree="balanced", hidden_size=8, embed_dim=4), source, target)
    lengths = (model.output.path_codes.numpy() >= 0).sum(axis=1)  # (V,) path lengths
    assert lengths.max() == int(np.ceil(np.log2(len(target)))) and lengths.max() - lengths.min() <= 1
