#!/usr/bin/env python
"""The 2-process data-parallel speed-up of every training command, on this machine.

Each command runs twice on the same data and settings, one run after the other: ``python
train.py CMD ...`` (1 process, math threads = all cores) and ``python -m paddle.distributed.launch
--nproc_per_node 2 train.py CMD ...`` (2 processes, cores / 2 threads each). ``--batch-size`` is
the global batch, so both runs take the same steps (word2vec: each process takes every other
batch, so the 2-process run takes half the steps of twice the centres). Speed-up = the 1-process
run's ``train_seconds`` (time inside training steps: forward, backward, the gradient exchange,
the update) / the 2-process run's, from their ``metrics.json``; ``wall`` is the same for the whole
training loop (evaluation and checkpoints included). ``--single-thread-only``: instead, one
1-process run per task with ``OMP_NUM_THREADS=1`` (a fairer 1-process baseline on a loaded
machine, where two math threads wait for each other at every parallel region). Prints a table
and writes JSON.

    python scripts/bench_dp_speedup.py --json runs/bench_dp_speedup.json
    python scripts/bench_dp_speedup.py --single-thread-only --json runs/bench_dp_speedup_1thread.json
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TRAIN = os.path.join(HERE, "..", "train.py")

TASKS = {  # small but real: built-in data (slices of it), one epoch
    "classify": ["classify", "--dataset", "chnsenti", "--epochs", "1", "--batch-size", "128", "--max-len", "64"],
    # the first 4,000 / 500 / 500 sentences of the pd-pos splits, as user files (FILES: written below)
    "tag": ["tag", "--train-file", "FILES/train.conll", "--valid-file", "FILES/valid.conll", "--test-file",
            "FILES/test.conll", "--epochs", "1", "--batch-size", "128"],
    "lm": ["lm", "--epochs", "1", "--batch-size", "64", "--max-train-tokens", "100000", "--hidden", "128",
           "--embed-dim", "128"],
    "seq2seq": ["seq2seq", "--dataset", "cedict", "--epochs", "1", "--batch-size", "128", "--max-train-items",
                "10000", "--max-test", "200", "--eval-items", "200", "--candidates", "0", "--retrieve", "0"],
    "word2vec": ["word2vec", "--epochs", "1", "--kernel", "paddle"],
}


def run(args, processes: int, out: str, logs: str, threads=None):
    env = {k: v for k, v in os.environ.items() if k not in ("PADDLE_TRAINERS_NUM", "PADDLE_TRAINER_ID",
                                                            "OMP_NUM_THREADS")}
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    cmd = [sys.executable, TRAIN] if processes == 1 else [
        sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", str(processes), "--log_dir", logs, TRAIN]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd + args + ["--output-dir", out, "--no-progress", "--overwrite"], env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args[:1])} with {processes} process(es) failed:\n{proc.stderr[-3000:]}")
    metrics = json.load(open(os.path.join(out, "metrics.json")))
    return {"train_seconds": metrics["train_seconds"], "wall_seconds": metrics["wall_seconds"],
            "steps": metrics["steps"], "process_seconds": time.perf_counter() - t0}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    p.add_argument("--json", default=None)
    p.add_argument("--single-thread-only", action="store_true",
                   help="only a 1-process run with OMP_NUM_THREADS=1 per task (the third column)")
    args = p.parse_args(argv)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        if "tag" in args.tasks:
            sys.path.insert(0, os.path.join(HERE, ".."))
            from paddle_hsoftmax.data.datasets import pd_pos

            pos = pd_pos()
            for part, n in (("train", 4000), ("valid", 500), ("test", 500)):
                with open(os.path.join(tmp, f"{part}.conll"), "w", encoding="utf-8") as f:
                    f.write("".join("".join(f"{w}\t{t}\n" for w, t in zip(ws, ts)) + "\n" for ws, ts in pos[part][:n]))
        for name in args.tasks:
            TASKS[name] = [a.replace("FILES", tmp) for a in TASKS[name]]
            load = os.getloadavg()[0]
            if args.single_thread_only:
                one1 = run(TASKS[name], 1, os.path.join(tmp, f"{name}1t"), os.path.join(tmp, f"{name}1t-logs"), 1)
                rows.append({"task": name, "command": "OMP_NUM_THREADS=1 python train.py "
                             + " ".join(TASKS[name]).replace(tmp, "FILES"), "load_average": load, "one_thread": one1})
                print(f"{name:<9} 1 process, 1 thread {one1['train_seconds']:7.1f} s ({one1['steps']} steps); "
                      f"load average {load:.1f}", flush=True)
                continue
            one = run(TASKS[name], 1, os.path.join(tmp, f"{name}1"), os.path.join(tmp, f"{name}1-logs"))
            two = run(TASKS[name], 2, os.path.join(tmp, f"{name}2"), os.path.join(tmp, f"{name}2-logs"))
            rows.append({"task": name, "command": "python train.py " + " ".join(TASKS[name]).replace(tmp, "FILES"),
                         "load_average": load,
                         "one": one, "two": two, "speedup": one["train_seconds"] / two["train_seconds"],
                         "wall_speedup": one["wall_seconds"] / two["wall_seconds"]})
            r = rows[-1]
            print(f"{name:<9} 1 process {one['train_seconds']:7.1f} s ({one['steps']} steps), 2 processes "
                  f"{two['train_seconds']:7.1f} s ({two['steps']} steps): speed-up {r['speedup']:.2f} "
                  f"(wall {r['wall_speedup']:.2f}); load average {load:.1f}", flush=True)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        json.dump({"cpu_count": os.cpu_count(), "rows": rows}, open(args.json, "w"), indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
