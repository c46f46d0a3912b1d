"""Bad classifier input as a user meets it: real ``python train.py classify`` processes (see
tests/test_cli_processes.py): a training file of one label, texts that are all empty after
tokenising, ``--init-vectors`` of another size than ``--embed-dim``. Each exits with status 2 and
prints one ``error:`` line naming the file (or the flag) before touching the output directory.
The processes run side by side (~3 s of a core each, mostly importing Paddle)."""

import concurrent.futures
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _files(d: Path):
    d.mkdir(parents=True, exist_ok=True)
    good = "pos\t很好 很好\nneg\t太差 了\npos\t不错\nneg\t失望\n"
    (d / "valid.tsv").write_text(good, encoding="utf-8")
    (d / "test.tsv").write_text(good, encoding="utf-8")
    (d / "one.tsv").write_text("pos\t很好\npos\t不错\npos\t喜欢\n", encoding="utf-8")
    (d / "good.tsv").write_text(good, encoding="utf-8")
    (d / "blank.tsv").write_text("pos\t   \nneg\t \t \n", encoding="utf-8")
    (d / "v4.txt").write_text("2 4\n很 0.1 0.2 0.3 0.4\n好 0.5 0.6 0.7 0.8\n", encoding="utf-8")


CASES = {
    "one-label": (["--train", "one.tsv"], ["one.tsv", "1 label"]),
    # the reader refuses the first text with no token (the tokenizers split on the same white space)
    "all-empty": (["--train", "blank.tsv", "--tokenizer", "whitespace"], ["blank.tsv:1:", "has no text"]),
    "vectors-size": (["--train", "good.tsv", "--init-vectors", "v4.txt", "--embed-dim", "8"],
                     ["v4.txt", "4 dimensions, --embed-dim is 8"]),
}


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    root = tmp_path_factory.mktemp("inputs")
    _files(root)

    def run(name):
        extra, _ = CASES[name]
        argv = [sys.executable, str(REPO / "train.py"), "classify", *extra, "--valid", "valid.tsv", "--test",
                "test.tsv", "--output-dir", f"out-{name}", "--no-progress", "--epochs", "1"]
        return subprocess.run(argv, cwd=root, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)

    with concurrent.futures.ThreadPoolExecutor(len(CASES)) as pool:
        done = dict(zip(CASES, pool.map(run, CASES)))
    return root, done


@pytest.mark.parametrize("name", sorted(CASES))
def test_one_line_exit_2(results, name):
    root, done = results
    proc = done[name]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr[-2000:]
    for part in CASES[name][1]:
        assert part in lines[0]
    assert not (root / f"out-{name}").exists()


def test_texts_given_in_code_that_are_all_empty():
    """Splits given in code skip the file reader: the task refuses them itself."""
    from paddle_hsoftmax.data.text import CorpusError
    from paddle_hsoftmax.tasks.classify import ClassifyConfig, ClassifyTask

    splits = {"train": [("a", " "), ("b", "")], "valid": [("a", "x")], "test": [("a", "x")]}
    with pytest.raises(CorpusError, match="every training text is empty after --tokenizer whitespace"):
        ClassifyTask(ClassifyConfig(), splits)
    with pytest.raises(CorpusError, match="every training text is empty after --tokenizer char"):
        ClassifyTask(ClassifyConfig(tokenizer="char"), splits)


def test_auto_tokenizer_reads_the_script():
    """--tokenizer auto: characters for text written without spaces (Chinese, also with some
    Latin letters or digits), words for English; the task replaces "auto" by its pick."""
    from paddle_hsoftmax.data.datasets import chnsenti
    from paddle_hsoftmax.data.text import guess_tokenizer
    from paddle_hsoftmax.tasks.classify import ClassifyConfig, resolve_tokenizer

    assert guess_tokenizer([t for _, t in chnsenti()["train"][:200]]) == "char"
    assert guess_tokenizer(["这个 iPhone 15 的屏幕很好", "价格 2999 元，不贵"]) == "char"
    assert guess_tokenizer(["a gripping, well-acted film", "Goodman demonstrates what a superb actor he is"]) == "whitespace"
    assert guess_tokenizer(["", "  "]) == "whitespace"
    config = ClassifyConfig()
    assert config.tokenizer == "auto"
    assert resolve_tokenizer(config, {"train": [("pos", "好看"), ("neg", "难看")]}) == "char" == config.tokenizer
