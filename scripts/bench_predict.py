#!/usr/bin/env python
"""Exact top-k prediction: the tree search against the dense pass and the full softmax, one run.

Trains the package's bigram model (``paddle_hsoftmax.tasks.bigram``: ``Embedding(V, D) ->
HierarchicalSoftmax``, the model of ``python train.py demo``) on People's Daily for one epoch
(a few seconds), then times, on the hidden states of held-out contexts (``--rows`` of them):

- ``search``: ``HierarchicalSoftmax.predict(h, k)``: on CPU the C++ best-first search
  (``csrc/tree_search.cc``, exact in one pass);
- ``search, Paddle ops``: the same layer with ``kernel="paddle"``: the batched search of
  ``output/tree_search.py`` (the GPU path, widened where a row is inexact), timed on CPU;
- ``dense``: ``predict(h, k, method="dense")`` = ``topk(full_log_prob(h))`` on the same layer;
- ``full softmax``: ``FullSoftmax(D, V).predict(h, k)`` of the same V and D, untrained (its cost
  does not depend on the weights: one ``[N, D] x [D, V]`` product, logsumexp, topk).

It checks in the same run that the search returns the dense pass's ids and values, and reports
the inner nodes each row scored (median, 90th percentile, max) and the rows that needed a wider
second pass. Prints a table and writes JSON.

    flock /tmp/bench.lock python scripts/bench_predict.py --json runs/bench_predict.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings

warnings.filterwarnings("ignore", message="No ccache found")

import numpy as np  # noqa: E402
import paddle  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from paddle_hsoftmax.tasks.bigram import BigramTask, prepare_bigrams  # noqa: E402
from paddle_hsoftmax.pipeline.configs import BigramConfig  # noqa: E402
from paddle_hsoftmax.data import read_peoples_daily  # noqa: E402
from paddle_hsoftmax.output import FullSoftmax  # noqa: E402
from paddle_hsoftmax.output.registry import build_tree  # noqa: E402


def median_seconds(fn, min_time: float, min_reps: int = 5, max_reps: int = 200) -> float:
    """Median wall time of ``fn()`` after two warm-up calls; repeats until ``min_time`` has passed."""
    for _ in range(2):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < min_reps or (time.perf_counter() - start < min_time and len(times) < max_reps):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def train(tree_kind: str, data, config: BigramConfig, vectors=None):
    tree = build_tree(tree_kind, data.counts, vectors=vectors)
    task = BigramTask(data, tree, config)
    start = time.perf_counter()
    for epoch in range(config.epochs):
        for idx in task.epoch_batches(epoch):
            result = task.train_step(idx)
            task.optimizer.step()
            task.optimizer.clear_grad()
    seconds = time.perf_counter() - start
    task.model.eval()
    return task, tree, seconds, float(result.loss_sum) / result.count


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--min-count", type=int, default=2, help="vocabulary: words seen at least this often")
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--rows", type=int, default=1024, help="held-out contexts per predict call")
    p.add_argument("--k", type=int, nargs="+", default=[1, 5])
    p.add_argument("--trees", nargs="+", default=["huffman"], choices=["huffman", "balanced", "clustered"],
                   help="clustered: built from the Huffman model's trained input embeddings")
    p.add_argument("--min-time", type=float, default=2.0, help="seconds of repeats per timing")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)

    config = BigramConfig(min_count=args.min_count, dim=args.dim, epochs=args.epochs)
    sentences = [[w for w, _ in s] for s in read_peoples_daily()]
    data = prepare_bigrams(sentences, config)
    V, D = len(data.words), args.dim
    contexts = paddle.to_tensor(data.valid[: args.rows, 0])  # (N,) held-out previous words
    softmax = FullSoftmax(D, V)
    softmax.eval()
    print(f"People's Daily bigrams: V = {V:,}, D = {D}, {len(data.train):,} training pairs, "
          f"{len(contexts)} held-out contexts per call; paddle {paddle.__version__}, "
          f"{os.cpu_count()} CPUs")
    rows, vectors = [], None
    for kind in args.trees:
        task, tree, train_s, loss = train(kind, data, config, vectors)
        if kind == "huffman":
            vectors = task.model.embed.weight.numpy()
        layer = task.model.out
        with paddle.no_grad():
            h = task.model.embed(contexts)  # (N, D)
            for k in args.k:
                found = layer.search(h, k)
                batched = layer.search(h, k, kernel="paddle")
                dense_v, dense_i = layer.predict(h, k, method="dense")
                same_ids = min(float((r.ids.numpy() == dense_i.numpy()).mean()) for r in (found, batched))
                max_diff = max(float(np.abs(r.log_probs.numpy() - dense_v.numpy()).max()) for r in (found, batched))
                expanded, expanded_b = found.expanded.numpy(), batched.expanded.numpy()
                passes = batched.passes.numpy()
                t_search = median_seconds(lambda: layer.predict(h, k), args.min_time)
                layer.kernel = "paddle"
                t_batched = median_seconds(lambda: layer.predict(h, k), args.min_time)
                layer.kernel = "auto"
                t_dense = median_seconds(lambda: layer.predict(h, k, method="dense"), args.min_time)
                t_full = median_seconds(lambda: softmax.predict(h, k), args.min_time)
                row = {
                    "tree": kind, "V": V, "D": D, "rows": int(h.shape[0]), "k": k,
                    "max_length": tree.max_length, "train_seconds": train_s, "final_train_loss": loss,
                    "search_ms": 1e3 * t_search, "paddle_search_ms": 1e3 * t_batched, "dense_ms": 1e3 * t_dense,
                    "full_softmax_ms": 1e3 * t_full,
                    "speedup_vs_dense": t_dense / t_search, "speedup_vs_full_softmax": t_full / t_search,
                    "paddle_search_speedup_vs_dense": t_dense / t_batched,
                    "paddle_search_speedup_vs_full_softmax": t_full / t_batched,
                    "expanded_median": float(np.median(expanded)), "expanded_p90": float(np.percentile(expanded, 90)),
                    "expanded_max": int(expanded.max()), "inner_nodes": tree.num_inner,
                    "paddle_search_expanded_median": float(np.median(expanded_b)),
                    "paddle_search_expanded_p90": float(np.percentile(expanded_b, 90)),
                    "paddle_search_rows_widened": int((passes != 1).sum()),
                    "paddle_search_rows_dense": int((passes == 0).sum()),
                    "ids_equal_dense": same_ids, "max_abs_log_prob_diff": max_diff,
                }
                rows.append(row)
    head = ("tree", "k", "search ms", "Paddle-ops search ms", "dense ms", "softmax ms", "search x dense",
            "search x softmax", "Paddle-ops x dense", "Paddle-ops x softmax", "nodes med / p90 / max",
            "Paddle-ops nodes med / p90", "rows widened", "ids = dense")
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for r in rows:
        print(f"| {r['tree']} | {r['k']} | {r['search_ms']:.2f} | {r['paddle_search_ms']:.1f} | {r['dense_ms']:.0f} | "
              f"{r['full_softmax_ms']:.0f} | {r['speedup_vs_dense']:.0f}x | {r['speedup_vs_full_softmax']:.0f}x | "
              f"{r['paddle_search_speedup_vs_dense']:.0f}x | {r['paddle_search_speedup_vs_full_softmax']:.1f}x | "
              f"{r['expanded_median']:.0f} / {r['expanded_p90']:.0f} / {r['expanded_max']} | "
              f"{r['paddle_search_expanded_median']:.0f} / {r['paddle_search_expanded_p90']:.0f} | "
              f"{r['paddle_search_rows_widened']} | {r['ids_equal_dense']:.4f} |")
    load = os.getloadavg()
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; FullSoftmax untrained (same shape)")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"rows": rows, "args": vars(args), "paddle": paddle.__version__,
                       "python": platform.python_version(), "load_average": load,
                       "full_softmax": "untrained, same V and D"}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
