"""Data parallel under ``python -m paddle.distributed.launch`` (gloo on this CPU: real processes).

Equal results: ``--batch-size`` is the global batch and each process trains on its rows of every
batch, so 2 processes x B/2 rows per step must end with the parameters of 1 process x B rows
(float32 rounding aside): this catches a wrong loss scaling (ranks with different token counts), a
missing all-reduce and ranks that see the same data. Each command also runs under the launcher
with its user-file options (``--train-file`` ...: the launcher refuses ``--train`` itself).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import write_pd_slice
from paddle_hsoftmax import processes
from paddle_hsoftmax.cli import main
from paddle_hsoftmax.safe_io import load_state

REPO = Path(__file__).resolve().parents[1]
LAUNCHER_OPTIONS = None


def launch(args, tmp_path: Path, name: str, processes: int = 2, timeout: int = 600):
    """``train.py ARGS`` under the launcher with ``processes`` processes (1: a plain process);
    returns ``(return code, rank 0's output + every worker log)``."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    for key in ("PADDLE_TRAINERS_NUM", "PADDLE_TRAINER_ID"):
        env.pop(key, None)
    logs = tmp_path / f"logs-{name}"
    if processes == 1:
        cmd = [sys.executable, str(REPO / "train.py")] + args
    else:
        cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", str(processes),
               "--log_dir", str(logs), str(REPO / "train.py")] + args
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=timeout, env=env)
    text = proc.stdout + proc.stderr
    for p in sorted(logs.glob("workerlog.*")) if logs.exists() else []:
        text += f"\n--- {p.name}\n" + p.read_text(errors="replace")[-4000:]
    return proc.returncode, text


def state_of(out: Path, part: str):
    """The checkpoint's ``part`` (``model``, ``optimizer``) as ``{path: array}``, nested tables flattened."""
    flat = {}

    def walk(node, prefix):
        for k, v in node.items():
            if isinstance(v, dict):
                walk(v, f"{prefix}{k}/")
            elif hasattr(v, "shape"):
                flat[prefix + k] = np.asarray(v)

    walk(load_state(out / "checkpoints" / "last.pdckpt")[part], "")
    return flat


def assert_same_parameters(one: Path, two: Path) -> None:
    """Same parameters, and the same Adam moments: the first moment is a running mean of the
    gradients, so a wrong loss scale (which Adam's update would hide) shows there. Parameters:
    an Adam step moves an element by up to the learning rate whatever its gradient's size, so an
    element whose gradient is all rounding noise may differ by a small share of it (atol 2e-5
    for lr 2e-3)."""
    a, b = state_of(one, "model"), state_of(two, "model")
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(b[k], a[k], atol=2e-5, rtol=1e-5, err_msg=k)
    a, b = state_of(one, "optimizer"), state_of(two, "optimizer")
    moments = [k for k in a if "moment" in k]
    assert moments and a.keys() == b.keys()
    for k in moments:
        scale = float(np.abs(a[k]).max())  # 0: no gradient reached the parameter in either run
        np.testing.assert_allclose(b[k], a[k], atol=1e-5 * scale, rtol=1e-4, err_msg=k)


def equal_runs(args, tmp_path: Path, name: str):
    """Run ``args`` in 1 process and under the launcher with 2; both must succeed and end with
    the same parameters. Returns the two output directories."""
    one, two = tmp_path / f"{name}-1", tmp_path / f"{name}-2"
    code, text = launch(args + ["--output-dir", str(one)], tmp_path, f"{name}-1", processes=1)
    assert code == 0, text[-4000:]
    code, text = launch(args + ["--output-dir", str(two)], tmp_path, f"{name}-2")
    assert code == 0, text[-6000:]
    assert_same_parameters(one, two)
    m1 = json.loads((one / "metrics.json").read_text(encoding="utf-8"))
    m2 = json.loads((two / "metrics.json").read_text(encoding="utf-8"))
    assert (m1["world_size"], m2["world_size"]) == (1, 2)
    assert m1["steps"] == m2["steps"] > 0
    assert json.loads((two / "run.json").read_text(encoding="utf-8"))["world_size"] == 2
    assert len(list((two / "vdl").glob("vdlrecords*"))) == 1  # rank 0 alone logs
    return one, two


# -- data: tiny slices of the shipped real data, as user files ---------------------------------------
@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from paddle_hsoftmax.data.datasets import chnsenti, pd_pos
    from paddle_hsoftmax.data.parallel import cedict_pairs

    root = tmp_path_factory.mktemp("dp-data")
    out = {}
    senti = chnsenti()
    for part, n in (("train", 40), ("valid", 30), ("test", 30)):
        out[f"classify-{part}"] = root / f"c_{part}.tsv"
        out[f"classify-{part}"].write_text("".join(f"{l}\t{t}\n" for l, t in senti[part][:n]), encoding="utf-8")
    pos = pd_pos()
    for part, n in (("train", 24), ("valid", 20), ("test", 20)):
        out[f"tag-{part}"] = root / f"t_{part}.conll"
        out[f"tag-{part}"].write_text("".join("".join(f"{w}\t{t}\n" for w, t in zip(ws, ts)) + "\n"
                                              for ws, ts in pos[part][:n]), encoding="utf-8")
    pairs = cedict_pairs()
    for part, n in (("train", 24), ("valid", 10), ("test", 10)):
        short = [(s, t) for s, t in pairs[part] if len(t) <= 3][:n]
        out[f"seq2seq-{part}"] = root / f"s_{part}.tsv"
        out[f"seq2seq-{part}"].write_text("".join(f"{''.join(s)}\t{' '.join(t)}\n" for s, t in short), encoding="utf-8")
    out["corpus"] = write_pd_slice(root / "pd.txt", 60)
    lines = out["corpus"].read_text(encoding="utf-8").splitlines(keepends=True)
    for part, (lo, hi) in (("train", (0, 40)), ("valid", (40, 50)), ("test", (50, 60))):
        out[f"lm-{part}"] = root / f"lm_{part}.txt"
        out[f"lm-{part}"].write_text("".join(lines[lo:hi]), encoding="utf-8")
    return out


def user_files(files, task: str):
    return ["--train-file", str(files[f"{task}-train"]), "--valid-file", str(files[f"{task}-valid"]),
            "--test-file", str(files[f"{task}-test"])]


QUICK = ["--epochs", "1", "--no-progress", "--dropout", "0"]


# -- no process group needed ---------------------------------------------------------------------------
def test_split_rows_shares_every_row_once():
    tokens, lengths, flag = np.arange(14).reshape(7, 2), np.arange(7), True
    shares = [processes.split_rows((tokens, lengths, flag), r, 3) for r in range(3)]
    assert [len(s[0]) for s in shares] == [2, 3, 2]
    np.testing.assert_array_equal(np.concatenate([s[0] for s in shares]), tokens)
    np.testing.assert_array_equal(np.concatenate([s[1] for s in shares]), lengths)
    assert all(s[2] is True for s in shares)
    assert processes.split_rows((tokens[:2], lengths[:2]), 0, 3) is None  # fewer rows than processes


def test_file_flags_and_their_aliases(files):
    from paddle_hsoftmax.commands.common import read_settings
    from paddle_hsoftmax.cli import _parser

    new = read_settings(_parser().parse_args(["classify"] + user_files(files, "classify") + ["--output-dir", "o"]))[0]
    old = read_settings(_parser().parse_args(["classify", "--train", str(files["classify-train"]), "--valid",
                                              str(files["classify-valid"]), "--test", str(files["classify-test"]),
                                              "--output-dir", "o"]))[0]
    assert new == old and new.train == str(files["classify-train"])


def _launcher_options():
    """The launcher's own options, from its ``--help``."""
    import re

    help_text = subprocess.run([sys.executable, "-m", "paddle.distributed.launch", "--help"], capture_output=True,
                               text=True, timeout=120).stdout
    return set(re.findall(r"(--[a-z_]+)", help_text))


def test_no_flag_is_claimed_by_the_launcher():
    """The launcher takes abbreviations of its options from anywhere on the command line: no
    primary flag of any command may be a prefix of one of them (``--train`` is: ``--trainers``)."""
    import dataclasses

    from paddle_hsoftmax.config import flag_of
    from paddle_hsoftmax.pipeline import configs

    options = _launcher_options()
    assert "--trainers" in options and "--devices" in options
    claimed = []
    for cls in (configs.ClassifyConfig, configs.TagConfig, configs.LMConfig, configs.Seq2SeqConfig,
                configs.Word2VecConfig, configs.RunOptions):
        for f in dataclasses.fields(cls):
            if f.metadata and f.metadata.get("cli", True):
                flag = flag_of(f)
                hits = [o for o in options if o.startswith(flag) and o != flag]
                if len(hits) > 1 or hits and flag not in ("--device",):
                    claimed.append((cls.__name__, flag, hits))
    assert claimed == []


def test_launch_of_predict_is_refused_in_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PADDLE_TRAINERS_NUM", "2")
    assert main(["predict", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not under paddle.distributed.launch" in err[0], err


def test_batch_smaller_than_the_processes_is_refused(files, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PADDLE_TRAINERS_NUM", "4")
    code = main(["classify"] + user_files(files, "classify") + ["--output-dir", str(tmp_path / "o"),
                                                                "--batch-size", "3"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--batch-size 3 is smaller than the 4 processes" in err[0], err
    assert not (tmp_path / "o").exists()


# -- real processes ----------------------------------------------------------------------------------
def test_classify_two_processes_equal_one(files, tmp_path):
    """The default suite's real launch: classify from user files, 2 processes x 8 rows = 1 x 16
    (Adam, three steps: 40 training texts); then a resume in 1 process is refused in one line."""
    args = ["classify"] + user_files(files, "classify") + QUICK + [
        "--embed-dim", "8", "--hidden", "8", "--batch-size", "16", "--max-len", "24"]
    one, two = equal_runs(args, tmp_path, "classify")
    code, text = launch(args + ["--output-dir", str(two), "--resume", "--epochs", "2"], tmp_path, "resume", 1)
    assert code == 2
    lines = [line for line in text.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "trained with 2 process(es), this launch has 1" in lines[0], text[-2000:]


@pytest.mark.slow
def test_classify_hsoftmax_bag_two_processes_equal_one(files, tmp_path):
    """The H-softmax head with its n-gram bag: the bag's and the tree's sparse gradients are sent
    as rows and lazy Adam updates them in both processes alike (this test found the head's node
    vectors drawn before the seed was set: each run started from other ones)."""
    args = ["classify"] + user_files(files, "classify") + QUICK + [
        "--embed-dim", "8", "--hidden", "8", "--batch-size", "16", "--max-len", "24", "--output", "hsoftmax",
        "--ngrams", "2", "--bag-dim", "8"]
    equal_runs(args, tmp_path, "classify_hs_bag")


@pytest.mark.slow
def test_tag_two_processes_equal_one(files, tmp_path):
    args = ["tag"] + user_files(files, "tag") + QUICK + [
        "--embed-dim", "8", "--hidden", "8", "--batch-size", "12", "--char-dim", "4", "--char-filters", "4"]
    equal_runs(args, tmp_path, "tag")


@pytest.mark.slow
def test_tag_crf_two_processes_equal_one(files, tmp_path):
    args = ["tag"] + user_files(files, "tag") + QUICK + [
        "--embed-dim", "8", "--hidden", "8", "--batch-size", "12", "--char-dim", "0", "--crf"]
    equal_runs(args, tmp_path, "tagcrf")


@pytest.mark.slow
def test_lm_two_processes_equal_one(files, tmp_path):
    """The LSTM state is carried per row: each process carries its own columns."""
    args = ["lm"] + user_files(files, "lm") + ["--format", "tagged", "--min-count", "1", "--embed-dim", "8",
            "--hidden", "8", "--batch-size", "4", "--bptt", "8", "--max-train-tokens", "100"] + QUICK
    equal_runs(args, tmp_path, "lm")


@pytest.mark.slow
def test_seq2seq_two_processes_equal_one(files, tmp_path):
    args = ["seq2seq"] + user_files(files, "seq2seq") + QUICK + [
        "--hidden", "8", "--embed-dim", "8", "--min-count", "1", "--batch-size", "12", "--max-test", "5",
        "--eval-items", "5", "--candidates", "0", "--retrieve", "0"]
    equal_runs(args, tmp_path, "seq2seq")


@pytest.mark.slow
def test_word2vec_two_processes_run(files, tmp_path):
    out = tmp_path / "w2v"
    code, text = launch(["word2vec", "--corpus", str(files["corpus"]), "--format", "tagged", "--min-count", "1",
                         "--dim", "8", "--epochs", "1", "--batch-size", "256", "--no-progress",
                         "--output-dir", str(out)], tmp_path, "w2v")
    assert code == 0, text[-4000:]
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["world_size"] == 2 and (out / "vectors.bin").exists()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["skipgram", "cbow"])
def test_word2vec_step_two_processes_equal_one(files, tmp_path, mode):
    """One SGD step on a batch of 64 centres in 1 process, and on 32 + 32 in 2 processes whose
    sparse gradients (node vectors and word vectors) travel as rows: the same parameters."""
    script = Path(__file__).with_name("dp_word2vec_step.py")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for key in ("PADDLE_TRAINERS_NUM", "PADDLE_TRAINER_ID"):
        env.pop(key, None)
    one, two = tmp_path / "one.npz", tmp_path / "two.npz"
    proc = subprocess.run([sys.executable, str(script), str(files["corpus"]), str(one), mode], capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    proc = subprocess.run([sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir",
                           str(tmp_path / "logs"), str(script), str(files["corpus"]), str(two), mode],
                          capture_output=True, text=True, env=env, timeout=300)
    logs = "".join(p.read_text(errors="replace")[-3000:] for p in sorted((tmp_path / "logs").glob("workerlog.*")))
    assert proc.returncode == 0, logs
    a, b = np.load(one), np.load(two)
    assert int(a["sparse"]) == 2 and int(b["sparse"]) == 2  # both tables' gradients are sparse
    for k in ("embedding.weight", "output.weight"):
        assert np.abs(a[k]).max() > 0
        np.testing.assert_allclose(b[k], a[k], atol=1e-6, rtol=1e-5, err_msg=k)


@pytest.mark.slow
def test_resume_with_the_same_processes(files, tmp_path):
    """2 processes for 1 epoch, resumed by 2 processes to 2 epochs == 1 process for 2 epochs."""
    args = ["classify"] + user_files(files, "classify") + QUICK[2:] + [
        "--embed-dim", "8", "--hidden", "8", "--batch-size", "16", "--max-len", "24", "--patience", "0"]
    one, two = tmp_path / "one", tmp_path / "two"
    code, text = launch(args + ["--epochs", "2", "--output-dir", str(one)], tmp_path, "one", processes=1)
    assert code == 0, text[-3000:]
    code, text = launch(args + ["--epochs", "1", "--output-dir", str(two)], tmp_path, "first")
    assert code == 0, text[-3000:]
    code, text = launch(args + ["--epochs", "2", "--output-dir", str(two), "--resume"], tmp_path, "resumed")
    assert code == 0, text[-3000:]
    assert_same_parameters(one, two)
    assert json.loads((two / "run.json").read_text(encoding="utf-8"))["resumed"] == 1


@pytest.mark.parametrize("extra, message", [
    (["--valid-file", "v.txt"], "--valid-file and --test-file go with --train-file"),
    (["--train-file", "t.txt", "--valid-file", "v.txt"], "--train-file needs --valid-file and --test-file"),
    (["--corpus", "c.txt", "--train-file", "t.txt"], "not allowed with argument"),
])
def test_lm_own_split_flags(extra, message, tmp_path, capsys):
    try:
        code = main(["lm"] + extra + ["--output-dir", str(tmp_path / "o")])
    except SystemExit as exc:  # argparse: mutually exclusive flags
        code = exc.code
    assert code == 2
    assert message in capsys.readouterr().err
