#!/usr/bin/env python
"""Decoder output layers side by side: the same encoder-decoder, data, seed and budget, in one run.

Each row is a real ``python train.py seq2seq`` run (through ``cli.main``, one after another, each
in its own output directory) on CC-CEDICT (or ``--max-train-items`` of it), differing only in
``--output``; the table gives what each run's ``metrics.json`` measured:

- parameters (whole model, the decoder's output layer alone);
- target tokens/s and seconds per epoch of training (steps only, the whole model);
- test BLEU / chrF (sacrebleu) of beam search and greedy decoding on the first ``--max-test``
  test pairs, and the seconds beam search took over them;
- with ``--candidates`` > 0, test BLEU / chrF of the model reranking retrieved training glosses
  (weight tuned on validation) and of the same retrieval without the model;
- the character-overlap retrieval baseline on the same test pairs.

Prints a table with each row's training time relative to the full softmax, and writes JSON.
``--workdir DIR --reuse``: a row whose ``DIR/OUTPUT/metrics.json`` exists is read, not retrained
(after checking that its settings are the ones asked for), so a long comparison can be finished
one decoder at a time.

    python scripts/bench_seq2seq.py --epochs 2 --json runs/bench_seq2seq.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import warnings
from pathlib import Path

warnings.filterwarnings("ignore", message="No ccache found")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from paddle_hsoftmax.cli import main as cli_main  # noqa: E402
from paddle_hsoftmax.export import atomic_write_text  # noqa: E402
from paddle_hsoftmax.tasks.seq2seq import Seq2SeqConfig  # noqa: E402

KEYS = ("parameters", "output_parameters", "tokens_per_sec", "epoch_seconds", "train_seconds", "test_bleu",
        "test_chrf", "test_greedy_bleu", "test_greedy_chrf", "test_decode_seconds", "best_epoch", "target_vocab_size",
        "test_rerank_bleu", "test_rerank_chrf", "epochs_run")
# settings of a reused run that must equal the ones asked for: (metrics.json config key, argument)
CHECKED = (("hidden_size", "hidden"), ("batch_size", "batch_size"), ("lr", "lr"), ("max_train_items", "max_train_items"),
           ("eval_items", "eval_items"), ("beam_size", "beam"), ("seed", "seed"), ("retrieve", "retrieve"),
           ("copy", "copy"), ("candidates", "candidates"))


def run_one(output: str, args, out_dir: Path) -> dict:
    argv = ["seq2seq", "--dataset", "cedict", "--output", output, "--output-dir", str(out_dir), "--overwrite",
            "--no-progress", "--hidden", str(args.hidden), "--batch-size", str(args.batch_size), "--lr", str(args.lr),
            "--epochs", str(args.epochs), "--max-train-items", str(args.max_train_items),
            "--eval-items", str(args.eval_items), "--max-test", str(args.max_test), "--beam", str(args.beam),
            "--retrieve", str(args.retrieve), "--copy" if args.copy else "--no-copy",
            "--candidates", str(args.candidates), "--seed", str(args.seed)]
    reused = args.reuse and (out_dir / "metrics.json").exists()
    if not reused:
        status = cli_main(argv)
        if status != 0:
            raise RuntimeError(f"train.py {' '.join(argv)} exited with status {status}")
    metrics = json.loads((out_dir / "metrics.json").read_text(encoding="utf-8"))
    config = metrics["config"]
    wrong = [f"{key}={config.get(key)!r} (asked {getattr(args, arg)!r})" for key, arg in CHECKED
             if config.get(key) != getattr(args, arg)]
    if config.get("output") != output or metrics.get("test_items") != args.max_test or wrong:
        raise RuntimeError(f"{out_dir}: a run with other settings: output {config.get('output')!r}, "
                           f"test items {metrics.get('test_items')}; {', '.join(wrong)}")
    row = {"output": output, "reused": reused, **{k: metrics.get(k) for k in KEYS}}
    row["baseline_bleu"], row["baseline_chrf"] = metrics["baseline"]["bleu"], metrics["baseline"]["chrf"]
    row["retrieval_only_bleu"] = metrics.get("rerank", {}).get("retrieval_only", {}).get("bleu")
    row["retrieval_only_chrf"] = metrics.get("rerank", {}).get("retrieval_only", {}).get("chrf")
    return row


def format_table(rows) -> str:
    full = next((r for r in rows if r["output"] == "softmax"), rows[0])
    lines = [f"{'output':<10} {'params':>10} {'out params':>10} {'tokens/s':>9} {'s/epoch':>8} {'time/full':>9} "
             f"{'BLEU':>6} {'chrF':>6} {'greedy BLEU':>11} {'decode s':>8}"]
    for r in rows:
        lines.append(f"{r['output']:<10} {r['parameters']:>10,} {r['output_parameters']:>10,} "
                     f"{r['tokens_per_sec']:>9,.0f} {r['epoch_seconds']:>8.0f} "
                     f"{r['train_seconds'] / full['train_seconds']:>9.3f} {r['test_bleu']:>6.2f} {r['test_chrf']:>6.2f} "
                     f"{r['test_greedy_bleu']:>11.2f} {r['test_decode_seconds']:>8.1f}")
    if all(r["test_rerank_bleu"] is not None for r in rows):
        lines.append("")
        lines.append(f"{'output':<10} {'rerank BLEU':>11} {'rerank chrF':>11}")
        for r in rows:
            lines.append(f"{r['output']:<10} {r['test_rerank_bleu']:>11.2f} {r['test_rerank_chrf']:>11.2f}")
        lines.append(f"the same retrieval without the model: BLEU {rows[0]['retrieval_only_bleu']:.2f}, "
                     f"chrF {rows[0]['retrieval_only_chrf']:.2f}")
    lines.append(f"retrieval baseline on the same test pairs: BLEU {rows[0]['baseline_bleu']:.2f}, "
                 f"chrF {rows[0]['baseline_chrf']:.2f}")
    return "\n".join(lines)


def main(argv=None) -> int:
    d = Seq2SeqConfig()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--outputs", nargs="+", default=["softmax", "hsoftmax"])
    p.add_argument("--hidden", type=int, default=d.hidden_size)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--max-train-items", type=int, default=0, help="first N training pairs (0 = all)")
    p.add_argument("--eval-items", type=int, default=500)
    p.add_argument("--max-test", type=int, default=1000)
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--retrieve", type=int, default=d.retrieve, help="see train.py seq2seq --retrieve")
    p.add_argument("--copy", action=argparse.BooleanOptionalAction, default=d.copy)
    p.add_argument("--candidates", type=int, default=d.candidates, help="see train.py seq2seq --candidates")
    p.add_argument("--reuse", action="store_true", help="read rows whose metrics.json exists in --workdir")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", default=None, help="keep the runs here (default: a temporary directory)")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench_seq2seq_") as tmp:
        root = Path(args.workdir or tmp)
        rows = [run_one(output, args, root / output) for output in args.outputs]
    print()
    print(format_table(rows))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.json, json.dumps({"settings": vars(args), "rows": rows}, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
