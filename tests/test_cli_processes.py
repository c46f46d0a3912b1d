"""One-line errors as a user sees them: real ``python train.py ...`` processes, not ``main()`` in
pytest's process (where pytest's logging and warning capture hide what a real process prints).

Every case must exit with status 2 before the command touches its output directory. A setting
that breaks its rule (:class:`~paddle_hsoftmax.errors.UserError`) prints exactly one stderr line,
``error: ...``, naming the flag (or file) and the value; a value argparse refuses itself (an
unknown choice, an unknown flag) prints argparse's usage block and then one ``train.py CMD:
error: ...`` line. ``--device gpu`` on this CPU build is refused in one line by every training
command.

Speed: each process fails during validation (~2 s of a core, almost all of it importing Paddle);
the selected cases run 4 at a time in one fixture. A sample per command, word2vec's GPU refusal and one
argparse refusal (10 processes) are in the quick suite; the other GPU refusals and the sweep of bad
settings are ``slow`` (all 51 processes: 110 s on the 2 shared cores at load 5).
"""

import concurrent.futures
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TRAIN = str(REPO / "train.py")
MISSING = "missing.txt"  # relative to each case's working directory, which never has it

# (id, argv, what the error line must contain); "{out}" is the case's own output directory
ONE_LINE = [
    # a sample per command: a file that is not there
    ("word2vec-missing-corpus", ["word2vec", "--corpus", MISSING, "--output-dir", "{out}"], "missing.txt"),
    ("classify-missing-train", ["classify", "--train", MISSING, "--valid", MISSING, "--test", MISSING,
                                "--output-dir", "{out}"], "missing.txt"),
    ("tag-missing-train", ["tag", "--train", MISSING, "--valid", MISSING, "--test", MISSING, "--output-dir", "{out}"],
     "missing.txt"),
    ("lm-missing-corpus", ["lm", "--corpus", MISSING, "--output-dir", "{out}"], "missing.txt"),
    ("seq2seq-missing-train", ["seq2seq", "--train", MISSING, "--valid", MISSING, "--test", MISSING,
                               "--output-dir", "{out}"], "missing.txt"),
    ("predict-not-a-run", ["predict", "{out}"], "out"),
    ("info-missing-corpus", ["info", "--corpus", MISSING], "missing.txt"),
    ("demo-missing-corpus", ["demo", "--corpus", MISSING, "--output-dir", "{out}"], "missing.txt"),
    # bad settings, per command
    ("word2vec-dim-0", ["word2vec", "--dim", "0", "--output-dir", "{out}"], "--dim must be >= 1, got 0"),
    ("word2vec-window-0", ["word2vec", "--window", "0", "--output-dir", "{out}"], "--window must be >= 1, got 0"),
    ("word2vec-sample-negative", ["word2vec", "--sample", "-1", "--output-dir", "{out}"], "--sample must be >= 0"),
    ("word2vec-max-vocab-1", ["word2vec", "--max-vocab", "1", "--output-dir", "{out}"], "--max-vocab must be >= 2"),
    ("classify-dropout-1.5", ["classify", "--dataset", "chnsenti", "--dropout", "1.5", "--output-dir", "{out}"],
     "--dropout must be in [0, 1), got 1.5"),
    ("classify-epochs-0", ["classify", "--dataset", "chnsenti", "--epochs", "0", "--output-dir", "{out}"],
     "--epochs must be >= 1, got 0"),
    ("classify-lr-0", ["classify", "--dataset", "chnsenti", "--lr", "0", "--output-dir", "{out}"], "--lr must be > 0"),
    ("classify-train-alone", ["classify", "--train", MISSING, "--output-dir", "{out}"], "--valid-file and --test-file"),
    ("tag-hidden-0", ["tag", "--dataset", "pd-pos", "--hidden", "0", "--output-dir", "{out}"],
     "--hidden must be >= 1, got 0"),
    ("tag-char-filters-0", ["tag", "--dataset", "pd-pos", "--char-filters", "0", "--output-dir", "{out}"],
     "--char-filters must be >= 1, got 0"),
    ("tag-dropout-negative", ["tag", "--dataset", "pd-pos", "--dropout", "-0.1", "--output-dir", "{out}"],
     "--dropout must be in [0, 1), got -0.1"),
    ("lm-tie-hsoftmax", ["lm", "--tie", "--output-dir", "{out}"], "--tie needs"),
    ("lm-bptt-0", ["lm", "--bptt", "0", "--output-dir", "{out}"], "--bptt must be >= 1, got 0"),
    ("lm-dropout-1", ["lm", "--dropout", "1", "--output-dir", "{out}"], "--dropout must be in [0, 1), got 1"),
    ("seq2seq-rerank-without-candidates", ["seq2seq", "--dataset", "cedict", "--decode", "rerank", "--candidates", "0",
                                           "--output-dir", "{out}"], "--decode rerank needs --candidates > 0"),
    ("seq2seq-beam-0", ["seq2seq", "--dataset", "cedict", "--beam", "0", "--output-dir", "{out}"],
     "--beam must be >= 1, got 0"),
    ("seq2seq-three-train-files", ["seq2seq", "--train", "a", "b", "c", "--valid", "a", "--test", "a",
                                   "--output-dir", "{out}"], "--train-file takes one TSV file or two aligned files"),
    ("seq2seq-cedict-whitespace", ["seq2seq", "--dataset", "cedict", "--source-tokenizer", "whitespace",
                                   "--output-dir", "{out}"], "--source-tokenizer must be char"),
    ("predict-beam-negative", ["predict", "{out}", "--beam", "-1"], "--beam must be >= 0"),
    ("predict-batch-size-0", ["predict", "{out}", "--batch-size", "0"], "--batch-size must be >= 1, got 0"),
    ("info-min-count-0", ["info", "--min-count", "0"], "--min-count must be >= 1, got 0"),
    ("demo-epochs-0", ["demo", "--epochs", "0", "--output-dir", "{out}"], "--epochs must be >= 1, got 0"),
    ("demo-dim-0", ["demo", "--dim", "0", "--output-dir", "{out}"], "--dim must be >= 1, got 0"),
    # the run options every training command shares
    ("lm-resume-and-overwrite", ["lm", "--resume", "--overwrite", "--output-dir", "{out}"], "exclude each other"),
    ("tag-checkpoint-every-negative", ["tag", "--dataset", "pd-pos", "--checkpoint-every", "-1",
                                       "--output-dir", "{out}"], "--checkpoint-every must be >= 0"),
    ("word2vec-device-typo", ["word2vec", "--device", "gpu0", "--output-dir", "{out}"], "--device must be cpu, gpu"),
    # a config file: an unknown key, a value of the wrong type, a choice argparse never sees
    ("lm-config-unknown-key", ["lm", "--config", "{config:hiden=8}", "--output-dir", "{out}"],
     "unknown setting 'hiden'"),
    ("classify-config-wrong-type", ["classify", "--config", "{config:epochs=two}", "--dataset", "chnsenti",
                                    "--output-dir", "{out}"], "epochs must be an integer, got 'two'"),
    ("lm-config-unknown-choice", ["lm", "--config", "{config:output=bogus}", "--output-dir", "{out}"],
     "--output must be one of softmax, hsoftmax"),
]
# --device gpu on a build without CUDA: every command that runs a model (info only counts words)
GPU = [(f"{cmd}-device-gpu", [cmd] + extra + ["--device", "gpu", "--output-dir", "{out}"], "no CUDA support")
       for cmd, extra in [("word2vec", []), ("classify", ["--dataset", "chnsenti"]), ("tag", ["--dataset", "pd-pos"]),
                          ("lm", []), ("seq2seq", ["--dataset", "cedict"]), ("demo", [])]] + [
    ("predict-device-gpu", ["predict", "{out}", "--device", "gpu"], "no CUDA support")]
# values argparse itself refuses: usage, then one error line
ARGPARSE = [
    ("word2vec-unknown-kernel", ["word2vec", "--kernel", "cuda", "--output-dir", "{out}"], "--kernel: invalid choice"),
    ("classify-unknown-pooling", ["classify", "--pooling", "median", "--output-dir", "{out}"],
     "--pooling: invalid choice"),
    ("tag-dataset-and-train", ["tag", "--dataset", "pd-pos", "--train", "x", "--output-dir", "{out}"],
     "not allowed with argument"),
    ("lm-unknown-output", ["lm", "--output", "bogus", "--output-dir", "{out}"], "--output: invalid choice"),
    ("seq2seq-dim-not-a-number", ["seq2seq", "--hidden", "big", "--output-dir", "{out}"], "--hidden: invalid int"),
    ("predict-unknown-flag", ["predict", "{out}", "--cuda"], "unrecognized arguments: --cuda"),
    ("info-unknown-format", ["info", "--format", "xml"], "--format: invalid choice"),
    ("demo-unknown-format", ["demo", "--format", "xml", "--output-dir", "{out}"], "--format: invalid choice"),
]
CASES = {case[0]: case for case in ONE_LINE + GPU + ARGPARSE}
SAMPLES = 8  # ONE_LINE[:8]: a sample per command, in the quick suite; the sweep is slow


def _params(cases, quick=0):
    """``pytest.param`` s of ``cases``: the first ``quick`` in the quick suite, the others ``slow``
    (~2-3 s of a core each, almost all of it importing Paddle)."""
    return [pytest.param(c[0], id=c[0], marks=() if i < quick else pytest.mark.slow) for i, c in enumerate(cases)]


def _argv(argv, workdir: Path):
    out = []
    for a in argv:
        if a == "{out}":
            a = str(workdir / "out")
        elif a.startswith("{config:"):
            key, _, value = a[len("{config:"):-1].partition("=")
            path = workdir / "settings.json"
            path.write_text(json.dumps({key: int(value) if value.isdigit() else value}), encoding="utf-8")
            a = str(path)
        out.append(a)
    return out


def _run(case_id: str, workdir: Path) -> subprocess.CompletedProcess:
    workdir.mkdir(parents=True)
    argv = _argv(CASES[case_id][1], workdir)
    return subprocess.run([sys.executable, TRAIN] + argv, cwd=workdir, capture_output=True, text=True, timeout=120,
                          stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def results(request, tmp_path_factory):
    """The selected cases' processes, run 4 at a time: ``{case id: (CompletedProcess, workdir)}``."""
    wanted = [item.callspec.params["case"] for item in request.session.items
              if item.module is request.module and hasattr(item, "callspec")]
    root = tmp_path_factory.mktemp("processes")
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = {c: pool.submit(_run, c, root / c) for c in dict.fromkeys(wanted)}
        return {c: (f.result(), root / c) for c, f in futures.items()}


@pytest.mark.parametrize("case", _params(ONE_LINE[:SAMPLES] + GPU, quick=SAMPLES + 1) + _params(ONE_LINE[SAMPLES:]))
def test_one_line_error_in_a_real_process(case, results):
    proc, workdir = results[case]
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert CASES[case][2] in lines[0]
    assert proc.stdout == ""
    assert not (workdir / "out").exists()  # refused before anything was written


@pytest.mark.parametrize("case", _params(ARGPARSE, quick=1))
def test_argparse_refusal_in_a_real_process(case, results):
    proc, workdir = results[case]
    lines = proc.stderr.splitlines()
    assert proc.returncode == 2, proc.stderr
    assert lines[0].startswith("usage: train.py ") and "Traceback" not in proc.stderr
    errors = [line for line in lines if "error:" in line]
    assert errors == [lines[-1]] and lines[-1].startswith("train.py") and CASES[case][2] in lines[-1], proc.stderr
    assert not (workdir / "out").exists()
