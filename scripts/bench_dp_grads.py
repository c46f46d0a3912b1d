#!/usr/bin/env python
"""Bytes sent and step time of word2vec's gradient exchange under data parallel: touched rows vs
a dense all-reduce, with 2 real processes (``paddle.distributed.launch``, gloo on CPU).

For each vocabulary size V (Zipf(1) counts -> Huffman tree; skip-gram batches of B centres with
K = 10 context slots, centres and contexts drawn from the same Zipf law, a different batch on each
process), in the same two processes, one step of each contender per round:

- ``dense all-reduce``: ``paddle.DataParallel`` over the model with dense gradients (what
  word2vec ran before: Paddle's reducer crashes on sparse ones), so both ``[V, D]`` tables'
  gradients are all-reduced whole;
- ``rows``: the model's sparse gradients exchanged by
  :class:`paddle_hsoftmax.distributed.GradientSync`: each table's touched rows merged locally
  (one per distinct row), then an all-gather of their ids and values (padded to the larger
  process's count), concatenated in rank order.

A step is forward + backward + exchange + SGD update, timed on rank 0 (median over the rounds).
Bytes are the payload one process puts into the collectives per step (all-reduce input; its padded
ids and values); a ring all-reduce moves about twice its input over the wire, an all-gather
(N - 1) times each share. Run it plainly: it starts the 2 processes itself. Prints a table and
writes JSON.

    python scripts/bench_dp_grads.py --json runs/bench_dp_grads.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

warnings.filterwarnings("ignore", message="No ccache found")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))


def _parse(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--vocab", type=float, nargs="+", default=[1e5, 1e6])
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--batch", type=int, default=1024, help="centres per process per step")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--json", default=None)
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # internal: the launched processes
    return p.parse_args(argv)


def _worker(args) -> None:
    import numpy as np
    import paddle

    from paddle_hsoftmax import distributed, processes
    from paddle_hsoftmax.models.word2vec import Word2Vec
    from paddle_hsoftmax.tree import build_huffman_tree

    rank, world = processes.init()
    paddle.set_device("cpu")
    results = []
    for v in args.vocab:
        V, D, B, K = int(v), args.dim, args.batch, 10
        counts = np.maximum((1e7 / np.arange(1, V + 1)).astype(np.int64), 1)
        tree = build_huffman_tree(counts)
        p = 1.0 / np.arange(1, V + 1)
        p /= p.sum()
        rng = np.random.default_rng([rank, V])
        models = {}
        for name, sparse in (("dense all-reduce", False), ("rows", True)):
            net = Word2Vec(V, D, tree, seed=0, sparse=sparse)
            model = paddle.DataParallel(net) if not sparse else net
            sync = distributed.GradientSync(net) if sparse else None
            opt = paddle.optimizer.SGD(learning_rate=0.01, parameters=net.parameters())
            models[name] = (net, model, sync, opt)
        times = {name: [] for name in models}
        bytes_ = {}
        touched = {}
        for r in range(args.rounds + 1):  # round 0: warm-up
            centres = rng.choice(V, size=B, p=p)
            contexts = rng.choice(V, size=(B, K), p=p)
            for name, (net, model, sync, opt) in models.items():
                processes.barrier()
                t0 = time.perf_counter()
                loss, count = model(paddle.to_tensor(centres), paddle.to_tensor(contexts))
                loss.backward()
                if sync is not None:
                    sync(loss.detach(), float(count), float(B), mean=False)
                opt.step()
                opt.clear_grad()
                float(loss)
                if r:
                    times[name].append(time.perf_counter() - t0)
                if sync is not None:
                    bytes_[name] = sync.last_bytes["dense"] + sync.last_bytes["sparse"]
                    touched["rows_sent"] = sync.last_rows
                else:
                    bytes_[name] = sum(int(np.prod(q.shape)) * 4 for q in net.parameters())
            nodes = tree.path_nodes[centres]
            touched.update(node_rows=int(np.unique(nodes[nodes >= 0]).size), word_rows=int(np.unique(contexts).size))
        for name in models:
            results.append({"vocab": V, "dim": D, "batch_per_process": B, "processes": world, "method": name,
                            "bytes_per_step": bytes_[name], "step_seconds": statistics.median(times[name]),
                            "step_seconds_all": times[name], **touched})
        del models
    if rank == 0:
        with open(args.worker, "w") as f:
            json.dump(results, f)


def main(argv=None) -> int:
    args = _parse(argv)
    if args.worker:
        _worker(args)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "results.json")
        env = dict(os.environ, OMP_NUM_THREADS="1")
        cmd = [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2", "--log_dir",
               os.path.join(tmp, "logs"), os.path.abspath(__file__), "--worker", out, "--dim", str(args.dim),
               "--batch", str(args.batch), "--rounds", str(args.rounds), "--vocab", *map(str, args.vocab)]
        load_before = os.getloadavg()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if proc.returncode != 0:
            logs = os.path.join(tmp, "logs", "workerlog.0")
            sys.stderr.write(open(logs).read()[-4000:] if os.path.exists(logs) else proc.stderr[-4000:])
            return 1
        results = json.load(open(out))
    print(f"2 processes (gloo, CPU), D = {args.dim}, {args.batch} centres x 10 context slots per process per step; "
          f"load average before: {load_before[0]:.2f}")
    print(f"{'V':>9} {'method':<17} {'MB sent/step':>13} {'step ms':>9} {'rows sent':>10} {'node rows':>10} "
          f"{'word rows':>10}")
    for r in results:
        sent = f"{r['rows_sent']:,}" if r["method"] == "rows" else "all"
        print(f"{r['vocab']:>9,} {r['method']:<17} {r['bytes_per_step'] / 1e6:>13.2f} {r['step_seconds'] * 1e3:>9.1f} "
              f"{sent:>10} {r['node_rows']:>10,} {r['word_rows']:>10,}")
    by = {(r["vocab"], r["method"]): r for r in results}
    for v in sorted({r["vocab"] for r in results}):
        d, s = by[(v, "dense all-reduce")], by[(v, "rows")]
        print(f"V = {v:,}: rows send {d['bytes_per_step'] / s['bytes_per_step']:.0f}x fewer bytes, step "
              f"{d['step_seconds'] / s['step_seconds']:.1f}x faster")
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump({"command": "python scripts/bench_dp_grads.py " + " ".join(argv or sys.argv[1:]),
                       "load_average_before": load_before, "cpu_count": os.cpu_count(), "results": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
