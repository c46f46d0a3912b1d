"""scripts/bench_seq2seq.py --reuse: a finished row is read only when its settings are the ones
asked for, and the table puts each row's training time against the full softmax's."""

import importlib.util
import json
import re
from pathlib import Path

import pytest

from paddle_hsoftmax.tasks.seq2seq import Seq2SeqConfig


def load_bench():
    path = Path(__file__).resolve().parents[1] / "scripts" / "bench_seq2seq.py"
    spec = importlib.util.spec_from_file_location("bench_seq2seq", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def finished_run(directory: Path, output: str, train_seconds: float, **config) -> None:
    """A metrics.json as `train.py seq2seq` writes it (the fields the bench reads)."""
    directory.mkdir(parents=True)
    cfg = {**Seq2SeqConfig().__dict__, "output": output, **config}
    metrics = {"config": cfg, "test_items": 3000, "parameters": 10, "output_parameters": 4, "tokens_per_sec": 100.0,
               "epoch_seconds": train_seconds / 2, "train_seconds": train_seconds, "test_bleu": 12.0,
               "test_chrf": 20.0, "test_greedy_bleu": 10.0, "test_greedy_chrf": 21.0, "test_decode_seconds": 5.0,
               "best_epoch": 2, "target_vocab_size": 7, "test_rerank_bleu": 28.0, "test_rerank_chrf": 32.0,
               "epochs_run": 2, "baseline": {"bleu": 16.4, "chrf": 27.7},
               "rerank": {"retrieval_only": {"bleu": 27.2, "chrf": 31.6}}}
    (directory / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")


def test_reuse_reads_matching_rows_and_refuses_others(tmp_path, monkeypatch, capsys):
    bench = load_bench()
    finished_run(tmp_path / "hsoftmax", "hsoftmax", 300.0)
    finished_run(tmp_path / "softmax", "softmax", 600.0)
    monkeypatch.setattr(bench, "cli_main", lambda argv: pytest.fail(f"retrained: {argv}"))
    out = tmp_path / "bench.json"
    argv = ["--outputs", "hsoftmax", "softmax", "--workdir", str(tmp_path), "--reuse", "--max-test", "3000",
            "--eval-items", "1000", "--json", str(out)]
    assert bench.main(argv) == 0
    printed = capsys.readouterr().out
    assert "0.500" in printed and "28.00" in printed and "BLEU 27.20" in printed  # time/full, rerank, retrieval
    rows = json.loads(out.read_text(encoding="utf-8"))["rows"]
    assert [r["reused"] for r in rows] == [True, True] and rows[1]["train_seconds"] == 600.0

    finished_run(tmp_path / "other" / "hsoftmax", "hsoftmax", 300.0, lr=0.01, copy=False)
    asked = re.escape(f"lr=0.01 (asked {Seq2SeqConfig().lr}), copy=False (asked True)")
    with pytest.raises(RuntimeError, match=asked):
        bench.main(["--outputs", "hsoftmax", "--workdir", str(tmp_path / "other"), "--reuse", "--max-test", "3000",
                    "--eval-items", "1000"])
