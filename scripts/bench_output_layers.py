#!/usr/bin/env python
"""Every output layer on the same LSTM language model, corpus, split, size and epochs, in one run.

Grave et al. (2017) report, on text8: full softmax 144 ppl / 83 min, HSM 166 / 34 min, D-softmax
195 / 53 min, adaptive 147 / 30 min. This script measures our own such table on People's Daily
(or ``--corpus``), one row per output layer (H-softmax over Huffman, balanced and clustered trees):

- parameters (whole model, output layer alone);
- training tokens/s and seconds per epoch (the whole model);
- output-layer step: median forward+backward time of the output layer alone on the same
  ``[batch_size * bptt, D]`` hidden states and real targets (what the output layer costs a step);
- valid and test perplexity (exact: from the normalised distributions);
- top-1 inference: median time of ``predict(h, k=1)`` over ``--infer-batch`` hidden states.

Each row trains from the same seed. Prints a table and writes JSON.

    python scripts/bench_output_layers.py --epochs 1 --json runs/bench_output_layers.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings

warnings.filterwarnings("ignore", message="No ccache found")

import numpy as np  # noqa: E402
import paddle  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from paddle_hsoftmax.commands.common import load_sentences  # noqa: E402
from paddle_hsoftmax.data.datasets import split_811  # noqa: E402
from paddle_hsoftmax.runtime import set_cpu_threads, tune_malloc  # noqa: E402
from paddle_hsoftmax.tasks.lm import LMConfig, LMTask  # noqa: E402
from paddle_hsoftmax.trainer import Trainer, TrainerConfig  # noqa: E402

ROWS = {
    "softmax": ("softmax", "huffman"),
    "hsoftmax-huffman": ("hsoftmax", "huffman"),
    "hsoftmax-balanced": ("hsoftmax", "balanced"),
    "hsoftmax-clustered": ("hsoftmax", "clustered"),
    "dsoftmax": ("dsoftmax", "huffman"),
    "cnn": ("cnn", "huffman"),
    "adaptive": ("adaptive", "huffman"),
}


def median_time(fn, reps: int) -> float:
    for _ in range(2):
        fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def output_layer_times(task: LMTask, reps: int, infer_batch: int):
    """(forward+backward seconds of the output layer on one training window, top-1 seconds)."""
    layer = task.model.output
    rng = np.random.default_rng(0)
    inputs, targets, _ = next(task.epoch_batches(0))
    with paddle.no_grad():
        task.model.eval()
        h, _ = task.model.hidden(paddle.to_tensor(inputs))
    h = paddle.to_tensor(h.numpy() + 0.01 * rng.standard_normal(h.shape).astype("float32"), stop_gradient=False)
    t = paddle.to_tensor(targets)
    layer.train()

    def step():
        layer(h, t).sum().backward()
        h.clear_gradient()
        for p in layer.parameters():
            p.clear_gradient()

    train_s = median_time(step, reps)
    layer.eval()
    hq = paddle.to_tensor(rng.standard_normal((infer_batch, layer.feature_size)).astype("float32") * 0.1)
    with paddle.no_grad():
        infer_s = median_time(lambda: layer.predict(hq, k=1), reps)
    task.model.train()
    return train_s, infer_s


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--corpus", default=None)
    p.add_argument("--format", choices=("plain", "tagged"), default="plain")
    p.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated subset of {','.join(ROWS)}")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--embed-dim", type=int, default=256)
    p.add_argument("--min-count", type=int, default=5)
    p.add_argument("--bptt", type=int, default=35)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--max-train-tokens", type=int, default=0)
    p.add_argument("--reps", type=int, default=10, help="timing repetitions for the output-layer columns")
    p.add_argument("--infer-batch", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default="runs/bench_output_layers.json")
    args = p.parse_args(argv)
    rows = [r.strip() for r in args.rows.split(",") if r.strip()]
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        p.error(f"unknown rows {unknown}; choose from {list(ROWS)}")

    tune_malloc()
    set_cpu_threads(os.cpu_count() or 1)
    sentences, source = load_sentences(args.corpus, args.format)
    splits = split_811(sentences)
    results = []
    for name in rows:
        output, tree = ROWS[name]
        config = LMConfig(output=output, tree=tree, embed_dim=args.embed_dim, hidden_size=args.hidden,
                          min_count=args.min_count, bptt=args.bptt, batch_size=args.batch_size, lr=args.lr,
                          max_train_tokens=args.max_train_tokens, seed=args.seed)
        task = LMTask(config, splits)
        layer_train_s, infer_s = output_layer_times(task, args.reps, args.infer_batch)
        with tempfile.TemporaryDirectory() as tmp:
            trainer = Trainer(TrainerConfig(output_dir=tmp, epochs=args.epochs, progress=False, log_every=50))
            m = trainer.fit(task)
            trainer.load_best(task)
        valid, test = task.scores("valid"), task.scores("test")
        row = {
            "row": name, "output": output, "tree": tree if output == "hsoftmax" else None,
            **task.parameter_counts(), "tokens_per_sec": m["tokens_trained"] / m["train_seconds"],
            "epoch_seconds": m["train_seconds"] / args.epochs, "output_step_ms": layer_train_s * 1e3,
            "valid_ppl": valid["ppl"], "test_ppl": test["ppl"], "top1_ms": infer_s * 1e3,
            "tree_seconds": task.tree_seconds,
            "mean_path": task.tree.mean_code_length(task.vocab.counts) if task.tree is not None else None,
        }
        results.append(row)
        print(f"{name}: test ppl {row['test_ppl']:.1f}, {row['epoch_seconds']:.0f} s/epoch, "
              f"output step {row['output_step_ms']:.1f} ms", flush=True)

    base = next((r for r in results if r["row"] == "softmax"), None)
    print()
    print(f"corpus: {source}; vocabulary {len(task.vocab):,}; LSTM 1x{args.hidden}, embed {args.embed_dim}, "
          f"bptt {args.bptt}, batch {args.batch_size}, {args.epochs} epoch(s), Adam {args.lr}")
    head = (f"{'output layer':<19} {'params':>10} {'out params':>10} {'tokens/s':>9} {'s/epoch':>8} "
            f"{'out step ms':>11} {'valid ppl':>9} {'test ppl':>9} {'top1 ms':>8}")
    if base:
        head += f" {'ppl/full':>8} {'step/full':>9}"
    print(head)
    for r in results:
        line = (f"{r['row']:<19} {r['parameters']:>10,} {r['output_parameters']:>10,} {r['tokens_per_sec']:>9,.0f} "
                f"{r['epoch_seconds']:>8.0f} {r['output_step_ms']:>11.1f} {r['valid_ppl']:>9.1f} {r['test_ppl']:>9.1f} "
                f"{r['top1_ms']:>8.2f}")
        if base:
            r["ppl_vs_full"] = r["test_ppl"] / base["test_ppl"]
            r["output_step_vs_full"] = r["output_step_ms"] / base["output_step_ms"]
            line += f" {r['ppl_vs_full']:>8.2f} {r['output_step_vs_full']:>9.2f}"
        print(line)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        tmp = args.json + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"args": vars(args), "corpus": source, "vocab_size": len(task.vocab),
                       "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                   "paddle": paddle.__version__}, "results": results}, f, indent=2)
        os.replace(tmp, args.json)
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
