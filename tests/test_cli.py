"""The command line on small slices of People's Daily: output, files written, and clear errors."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import write_pd_slice

from paddle_hsoftmax.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def pd_slice(tmp_path_factory) -> Path:
    """The first 1,500 lines of People's Daily (word/TAG format)."""
    return write_pd_slice(tmp_path_factory.mktemp("corpus") / "pd_1500.txt", 1500)


def test_info_on_builtin_corpus_reproduces_design_anchors(capsys):
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "14,990" in out
    assert "13.87 bits" in out  # log2 |V|
    assert "10.44 bits" in out  # Huffman mean path
    assert "10.41 bits" in out  # unigram entropy


def test_demo_on_a_slice(pd_slice, tmp_path, capsys):
    out_dir = tmp_path / "demo"
    args = ["demo", "--corpus", str(pd_slice), "--format", "tagged", "--min-count", "2", "--dim", "16",
            "--batch-size", "2048", "--output-dir", str(out_dir), "--no-progress"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "huffman" in printed and "balanced" in printed
    report = json.loads((out_dir / "demo.json").read_text())
    results = {r["tree"]: r for r in report["results"]}
    assert set(results) == {"huffman", "balanced"}
    for r in results.values():
        assert r["max_abs_prob_sum_error"] < 1e-4
        assert 1.0 < r["perplexity"] < report["info"]["vocab_size"]
    assert results["huffman"]["mean_path_of_targets"] < results["balanced"]["mean_path_of_targets"]
    assert not list(out_dir.glob("*.tmp"))


def test_train_py_script_runs(pd_slice):
    proc = subprocess.run(
        [sys.executable, str(REPO / "train.py"), "info", "--corpus", str(pd_slice), "--format", "tagged"],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Huffman tree, mean path" in proc.stdout


def _error_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    return err[0]


def test_missing_corpus(tmp_path, capsys):
    missing = tmp_path / "nope.txt"
    assert main(["info", "--corpus", str(missing)]) == 2
    line = _error_line(capsys)
    assert str(missing) in line and "no such file" in line


def test_directory_instead_of_file(tmp_path, capsys):
    assert main(["info", "--corpus", str(tmp_path)]) == 2
    assert "is a directory" in _error_line(capsys)


def test_non_utf8_corpus(tmp_path, capsys):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    assert main(["info", "--corpus", str(bad)]) == 2
    line = _error_line(capsys)
    assert str(bad) in line and "not UTF-8" in line


def test_empty_corpus(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    assert main(["info", "--corpus", str(empty)]) == 2
    assert "empty" in _error_line(capsys)


def test_min_count_leaves_too_few_words(pd_slice, capsys):
    assert main(["info", "--corpus", str(pd_slice), "--format", "tagged", "--min-count", "10000000"]) == 2
    assert "min_count=10000000 leaves 0 word(s)" in _error_line(capsys)


def test_malformed_tagged_line_names_file_and_line(pd_slice, tmp_path, capsys):
    lines = pd_slice.read_text(encoding="utf-8").splitlines()[:5]
    lines[3] = lines[3] + "  孤词"
    bad = tmp_path / "bad_tags.txt"
    bad.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["info", "--corpus", str(bad), "--format", "tagged"]) == 2
    line = _error_line(capsys)
    assert f"{bad}:4:" in line and "'孤词'" in line
