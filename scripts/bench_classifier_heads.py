#!/usr/bin/env python
"""The classifier's two heads at thousands of labels, side by side in one process: one training
step (forward + backward, no optimizer) and one prediction of ``B`` hidden states of size ``D``,
softmax (``Linear`` + cross-entropy, argmax) against ``HierarchicalSoftmax`` over the Huffman tree
of the training label counts (NLL, tree search). Labels: the first column of a TSV training file
(the README's CC-CEDICT task: ``scripts/compare_classifiers.py --write-cedict-labels DIR``).

    OMP_NUM_THREADS=1 flock /tmp/bench.lock python scripts/bench_classifier_heads.py runs/cedict/train.tsv
"""
import json
import sys
import time
from pathlib import Path

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from paddle_hsoftmax.output import HierarchicalSoftmax
from paddle_hsoftmax.tree import build_huffman_tree
labels = [l.split("\t")[0] for l in open(sys.argv[1], encoding="utf-8")]
names = sorted(set(labels)); idx = {n: i for i, n in enumerate(names)}
y = np.array([idx[l] for l in labels]); counts = np.bincount(y)
C, D, B = len(names), 256, 64
paddle.seed(0)
soft = nn.Linear(D, C); hs = HierarchicalSoftmax(D, build_huffman_tree(counts))
rng = np.random.default_rng(0)
h = paddle.to_tensor(rng.normal(size=(B, D)).astype("float32"), stop_gradient=False)
t = paddle.to_tensor(y[rng.integers(0, len(y), B)])
def step_soft():
    F.cross_entropy(soft(h), t).backward()
def step_hs():
    hs(h, t).mean().backward()
def pred_soft():
    with paddle.no_grad(): soft(h).argmax(-1).numpy()
def pred_hs():
    with paddle.no_grad(): hs.predict(h, k=1).ids.numpy()
res = {}
for name, f in [("softmax train step", step_soft), ("hsoftmax train step", step_hs), ("softmax predict", pred_soft), ("hsoftmax predict", pred_hs)]:
    for _ in range(5): f()
    ts = []
    for r in range(5):
        s = time.perf_counter()
        for _ in range(50): f()
        ts.append((time.perf_counter() - s) / 50)
    res[name] = float(np.median(ts)) * 1e3
print(json.dumps({"C": C, "D": D, "B": B, "ms": res}))
