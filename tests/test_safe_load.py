"""Run directories are safe to share: nothing `predict`, `--resume` or the loaders read runs code.

Every case plants a file in a copy of a real (tiny) run: a pickle whose ``__reduce__`` would
create a marker file, a truncated or corrupt safetensors file, an empty or corrupt ``paddle.jit``
export, a missing vocabulary; the command must exit 2 with one stderr line naming the file, and
the marker must never appear. A run written by 0.1.0 (pickled checkpoints) is refused with the
conversion command, which unpickles only with ``--trust-pickles``.
"""

import json
import os
import pickle
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import paddle
import pytest
from conftest import seq2seq_slice_args, write_pd_slice

from paddle_hsoftmax.cli import main
from paddle_hsoftmax.data.text import CorpusError
from paddle_hsoftmax.safe_io import (FORMAT, UnsafeFileError, is_pickle, load_state, load_tensors, save_state,
                                     save_tensors)

REPO = Path(__file__).resolve().parents[1]


class Payload:
    """A pickle that, when unpickled, creates ``marker`` (what an attacker's code would do)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def plant_pickle(path: Path, marker: Path) -> None:
    path.write_bytes(pickle.dumps({"model": Payload(marker)}, protocol=4))


def _one_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def _subprocess(args, **env):
    proc = subprocess.run([sys.executable, str(REPO / "train.py")] + [str(a) for a in args], capture_output=True,
                          text=True, cwd=REPO, timeout=300, env={**os.environ, **env}, stdin=subprocess.DEVNULL)
    err = [line for line in proc.stderr.strip().splitlines() if line.strip()]
    return proc.returncode, err


# -- the format itself -----------------------------------------------------------------------------
def test_state_round_trip_is_bit_exact(tmp_path):
    """Tensors keep dtype and bytes; floats (NaN, inf, shortest reprs), tuples, numpy scalars and
    Paddle's generator state come back as they went in; the generator draws the same numbers."""
    paddle.seed(5)
    paddle.rand([4])
    rng = paddle.get_rng_state("cpu")
    expected = paddle.rand([5]).numpy()  # what the saved generator draws next
    state = {"model": {"w": paddle.rand([3, 2]), "ids": paddle.to_tensor([1, -2], dtype="int64"),
                       "zero_d": paddle.to_tensor(3.5, dtype="float64")},
             "trainer": {"step": 7, "best": None, "last_loss": float("nan"), "lr": 0.1 + 0.2, "big": 2 ** 70,
                         "inf": -float("inf"), "flag": True, "scores": {}},
             "np": (np.arange(6, dtype=np.uint8).reshape(2, 3), np.float32(1.25), [np.int64(4)]),
             "rng": {"cpu": rng}}
    path = tmp_path / "s.pdckpt"
    save_state(path, state)
    back = load_state(path)
    for k in ("w", "ids", "zero_d"):
        a, b = state["model"][k].numpy(), back["model"][k].numpy()
        assert isinstance(back["model"][k], paddle.Tensor) and a.dtype == b.dtype and a.shape == b.shape
        assert a.tobytes() == b.tobytes()
    t = back["trainer"]
    assert t["step"] == 7 and t["best"] is None and np.isnan(t["last_loss"]) and t["lr"] == 0.1 + 0.2
    assert t["big"] == 2 ** 70 and t["inf"] == -float("inf") and t["flag"] is True and t["scores"] == {}
    assert isinstance(back["np"], tuple) and back["np"][0].dtype == np.uint8
    assert back["np"][0].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert back["np"][1] == np.float32(1.25) and back["np"][1].dtype == np.float32 and back["np"][2] == [4]
    paddle.set_rng_state(back["rng"]["cpu"], "cpu")
    assert paddle.rand([5]).numpy().tobytes() == expected.tobytes()


def test_safetensors_header_that_starts_like_a_pickle_is_not_refused(tmp_path):
    """A header of 640 bytes starts ``80 02``, as a pickle does: still read as safetensors."""
    path = tmp_path / "t.safetensors"
    for pad in range(600):
        save_tensors(path, {"x": np.ones(2, np.float32)}, metadata={"pad": "a" * pad})
        if path.read_bytes()[:2] == b"\x80\x02":
            break
    else:  # pragma: no cover
        pytest.fail("could not make a 640-byte header")
    assert not is_pickle(path) and load_tensors(path)["x"].tolist() == [1.0, 1.0]


@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage", "pickle", "other_safetensors", "missing"])
def test_damaged_state_file_is_one_line_naming_it(tmp_path, damage):
    path = tmp_path / "last.pdckpt"
    save_state(path, {"model": {"w": paddle.ones([64, 64])}, "trainer": {"step": 1}})
    data = path.read_bytes()
    marker = tmp_path / "MARKER"
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "garbage":  # seeded: random bytes start like a pickle ("(", "}", "]", "c") 1.6% of the time
        path.write_bytes(np.random.default_rng(0).integers(0, 256, len(data), dtype=np.uint8).tobytes())
        assert not is_pickle(path)
    elif damage == "pickle":
        plant_pickle(path, marker)
    elif damage == "other_safetensors":
        save_tensors(path, {"w": np.ones(3, np.float32)})
    else:
        path.unlink()
    with pytest.raises(CorpusError) as info:
        load_state(path)
    message = str(info.value)
    assert "\n" not in message and message.startswith(str(path))
    assert isinstance(info.value, UnsafeFileError) == (damage == "pickle")
    assert not marker.exists()


# -- real runs -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def classify_run(tmp_path_factory):
    """A finished 1-epoch classifier on real review sentences, and its training arguments."""
    from paddle_hsoftmax.data.datasets import chnsenti

    work = tmp_path_factory.mktemp("classify")
    senti = chnsenti()
    files = {}
    for part, n in (("train", 160), ("valid", 40), ("test", 40)):
        files[part] = work / f"{part}.tsv"
        files[part].write_text("".join(f"{y}\t{x}\n" for y, x in senti[part][:n]), encoding="utf-8")
    out = work / "run"
    args = ["classify", "--train", files["train"], "--valid", files["valid"], "--test", files["test"],
            "--epochs", "1", "--embed-dim", "8", "--hidden", "8", "--max-len", "32", "--no-progress",
            "--output-dir"]
    assert main([str(a) for a in args + [out]]) == 0
    (work / "lines.txt").write_text("很好\n太差了\n", encoding="utf-8")
    return out, args, work / "lines.txt"


@pytest.fixture(scope="module")
def tag_run(tmp_path_factory):
    work = tmp_path_factory.mktemp("tag")
    lines = write_pd_slice(work / "pd.txt", 60).read_text(encoding="utf-8").splitlines(keepends=True)
    for part, rows in (("train", lines[:40]), ("valid", lines[40:50]), ("test", lines[50:])):
        (work / f"{part}.txt").write_text("".join(rows), encoding="utf-8")
    out = work / "run"
    assert main(["tag", "--train", str(work / "train.txt"), "--valid", str(work / "valid.txt"), "--test",
                 str(work / "test.txt"), "--format", "wordtag", "--epochs", "1", "--embed-dim", "8", "--hidden", "8",
                 "--crf",
                 "--no-progress", "--output-dir", str(out)]) == 0
    (work / "lines.txt").write_text("中国 人民 今天\n", encoding="utf-8")
    return out, work / "lines.txt"


@pytest.fixture(scope="module")
def seq2seq_run(tmp_path_factory):
    from paddle_hsoftmax.data.parallel import read_cedict

    work = tmp_path_factory.mktemp("seq2seq")
    out = work / "run"
    args, short = seq2seq_slice_args(read_cedict(), work, out)
    args += ["--epochs", "1", "--beam", "1", "--retrieve", "0", "--no-copy", "--candidates", "0", "--max-test", "5",
             "--output", "softmax"]  # (no fused kernel to compile: the file handling is the same)
    assert main(args) == 0
    (work / "lines.txt").write_text("".join(short[0][0]) + "\n", encoding="utf-8")
    return out, work / "lines.txt"


def _copy(run: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "shared_run"
    shutil.copytree(run, dest)
    return dest


def test_predict_works_on_the_untouched_runs(classify_run, tag_run, seq2seq_run, tmp_path, capsys):
    """The reference for the cases below: the same runs, untouched, predict (exit 0)."""
    for run, lines in ((classify_run[0], classify_run[2]), tag_run, seq2seq_run):
        assert main(["predict", str(run), "--input", str(lines)]) == 0
    out = capsys.readouterr().out.split("\n")[:-1]  # an untrained translator may print an empty line
    assert len(out) == 2 + 1 + 1 and out[0].endswith("\t很好") and out[2].startswith("中国/")
    assert not list(classify_run[0].rglob("*.pdparams")) and not list(tag_run[0].rglob("*.info"))
    assert (tag_run[0] / "inference" / "crf.safetensors").is_file()
    record = json.loads((tag_run[0] / "run.json").read_text(encoding="utf-8"))
    assert "inference/crf.safetensors" in record["files"]


@pytest.mark.parametrize("which", ["classify:inference/model.pdiparams", "classify:inference/model.json",
                                   "tag:inference/crf.safetensors", "seq2seq:checkpoints/best.pdckpt"])
def test_predict_refuses_a_planted_pickle_and_never_runs_it(which, classify_run, tag_run, seq2seq_run, tmp_path,
                                                           capsys):
    kind, name = which.split(":")
    run, lines = {"classify": (classify_run[0], classify_run[2]), "tag": tag_run, "seq2seq": seq2seq_run}[kind]
    run = _copy(run, tmp_path)
    marker = tmp_path / "MARKER"
    plant_pickle(run / name, marker)
    assert main(["predict", str(run), "--input", str(lines)]) == 2
    line = _one_line(capsys)
    assert str(run / name) in line and "pickle" in line and "paddle_hsoftmax.convert" in line
    assert not marker.exists()


def test_predict_and_resume_in_real_processes_refuse_pickles(classify_run, tmp_path):
    """Real processes (what a user sees, no pytest logging in between): a pickled
    ``last.pdckpt`` for ``--resume``, a pickled ``best.pdckpt`` plus an ``.info`` pickle beside
    the export for ``predict``, and Paddle's old loader (``FLAGS_enable_pir_api=0``, which
    unpickles ``.info``) refused."""
    src, args, lines = classify_run
    run = _copy(src, tmp_path)
    marker = tmp_path / "MARKER"
    plant_pickle(run / "checkpoints" / "last.pdckpt", marker)
    code, err = _subprocess(args + [run, "--resume"])
    assert code == 2 and len(err) == 1, err
    assert str(run / "checkpoints" / "last.pdckpt") in err[0] and "pickle" in err[0]
    plant_pickle(run / "inference" / "model.pdiparams.info", marker)  # the PIR loader never reads it
    code, err = _subprocess(["predict", run, "--input", lines])
    assert code == 0, err
    code, err = _subprocess(["predict", run, "--input", lines], FLAGS_enable_pir_api="0")
    assert code == 2 and len(err) == 1 and "FLAGS_enable_pir_api=0" in err[0], err
    assert not marker.exists()


@pytest.mark.parametrize("damage", ["model.json:empty", "model.json:garbage", "model.pdiparams:empty",
                                    "model.pdiparams:truncated", "model.pdiparams:missing", "tokens.txt:missing",
                                    "labels.txt:missing", "run.json:garbage"])
def test_predict_on_a_damaged_classifier_run_is_one_line(damage, classify_run, tmp_path, capsys):
    name, how = damage.split(":")
    run = _copy(classify_run[0], tmp_path)
    path = run / ("inference/" + name if name.startswith("model.") else name)
    if how == "empty":
        path.write_bytes(b"")
    elif how == "garbage":
        path.write_bytes(b"\x00\x01 not what it should be {")
    elif how == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    else:
        path.unlink()
    assert main(["predict", str(run), "--input", str(classify_run[2])]) == 2
    line = _one_line(capsys)
    assert str(path) in line, line


def test_tagger_without_its_character_index_is_one_line(tag_run, tmp_path, capsys):
    run = _copy(tag_run[0], tmp_path)
    (run / "chars.txt").unlink()
    assert main(["predict", str(run), "--input", str(tag_run[1])]) == 2
    assert str(run / "chars.txt") in _one_line(capsys)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_damaged_crf_and_translator_parameters_are_one_line(damage, tag_run, seq2seq_run, tmp_path, capsys):
    for (src, lines), name in ((tag_run, "inference/crf.safetensors"), (seq2seq_run, "checkpoints/best.pdckpt")):
        run = _copy(src, tmp_path / name.replace("/", "_"))
        path = run / name
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2] if damage == "truncated" else os.urandom(len(data)))
        assert main(["predict", str(run), "--input", str(lines)]) == 2
        assert str(path) in _one_line(capsys)


@pytest.mark.parametrize("damage", ["truncated", "empty", "foreign"])
def test_resume_of_a_damaged_checkpoint_is_one_line(damage, classify_run, tmp_path, capsys):
    src, args, _ = classify_run
    run = _copy(src, tmp_path)
    path = run / "checkpoints" / "last.pdckpt"
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:1000])
    elif damage == "empty":
        path.write_bytes(b"")
    else:  # a valid safetensors file that is not a checkpoint
        save_tensors(path, {"w": np.ones(2, np.float32)})
    assert main([str(a) for a in args + [run, "--resume"]]) == 2
    assert str(path) in _one_line(capsys)


def test_a_run_written_by_0_1_0_is_refused_then_converted_on_request(classify_run, tmp_path, capsys):
    """0.1.0 pickled its checkpoints: ``--resume`` refuses them with the conversion command; the
    converter without ``--trust-pickles`` converts nothing and never unpickles (a planted payload
    stays inert); with it, the run's own pickles become safetensors, bit-equal, and resume works."""
    src, args, lines = classify_run
    run = _copy(src, tmp_path)
    last = run / "checkpoints" / "last.pdckpt"
    original = load_state(last)
    paddle.save(original, str(last))  # what 0.1.0 wrote: the same content, pickled
    paddle.save(load_state(run / "checkpoints" / "best.pdckpt"), str(run / "checkpoints" / "best.pdckpt"))
    assert is_pickle(last)
    assert main([str(a) for a in args + [run, "--resume"]]) == 2
    line = _one_line(capsys)
    assert str(last) in line and "python -m paddle_hsoftmax.convert" in line

    from paddle_hsoftmax.convert import main as convert

    stranger = _copy(src, tmp_path / "stranger")
    marker = tmp_path / "MARKER"
    plant_pickle(stranger / "checkpoints" / "last.pdckpt", marker)
    assert convert([str(stranger)]) == 2
    err = _one_line(capsys)
    assert "--trust-pickles" in err and "runs any code" in err and not marker.exists()
    assert is_pickle(stranger / "checkpoints" / "last.pdckpt")  # left as it was

    assert convert([str(run), "--trust-pickles"]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith("unpickling 2 file(s)") and "because you asked (--trust-pickles)" in printed
    assert not is_pickle(last)
    back = load_state(last)
    for k, v in original["model"].items():
        assert back["model"][k].numpy().tobytes() == v.numpy().tobytes()
    assert json.dumps(back["trainer"]) == json.dumps(original["trainer"])  # (NaN == NaN there)
    record = json.loads((run / "run.json").read_text(encoding="utf-8"))
    assert set(record["converted"][-1]["sha256"]) == {"checkpoints/last.pdckpt", "checkpoints/best.pdckpt"}
    assert main([str(a) for a in args + [run, "--resume"]]) == 0
    assert convert([str(run)]) == 0 and "nothing to convert" in capsys.readouterr().out


def test_checkpoint_files_carry_the_format(classify_run):
    from safetensors import safe_open

    with safe_open(str(classify_run[0] / "checkpoints" / "last.pdckpt"), framework="np") as f:
        meta = f.metadata()
        keys = set(f.keys())
    structure = json.loads(meta["structure"])["$dict"]
    assert meta["format"] == FORMAT and {"model", "optimizer", "trainer", "rng"} <= set(structure)
    assert any(k.startswith("model/") for k in keys) and any(k.startswith("optimizer/") for k in keys)


def test_program_with_file_operators_is_refused(classify_run, tmp_path, capsys):
    """The PIR program is data for Paddle's interpreter, but Paddle has operators that write and
    read files: a program holding one (here a planted ``save_combine``) is refused unloaded."""
    run = _copy(classify_run[0], tmp_path)
    path = run / "inference" / "model.json"
    graph = json.loads(path.read_text(encoding="utf-8"))
    block = graph["program"]["regions"][0]["blocks"][0]
    block["ops"].append({"#": "1.save_combine", "A": [], "O": [], "I": []})
    path.write_text(json.dumps(graph), encoding="utf-8")
    assert main(["predict", str(run), "--input", str(classify_run[2])]) == 2
    line = _one_line(capsys)
    assert str(path) in line and "1.save_combine" in line
