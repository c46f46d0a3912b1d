"""The smallest real use of the H-softmax layer: a bigram language model on People's Daily.

Idea: ``p(w_t | w_{t-1}) = HSoftmax(Embedding(w_{t-1}))``. Training it once with a Huffman tree and
once with a balanced tree over the same vocabulary shows, on real text, that both give an exact,
normalised distribution, and what each costs: the report has the mean path length of the
predicted words, the path slots actually computed (after padding) and the training time.

This module is what ``python train.py demo`` runs; the word-vector trainer builds on the same pieces.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import paddle

from .data.batching import split_by_length
from .output import HierarchicalSoftmax
from .tree import Tree, build_balanced_tree, build_huffman_tree, information_table

__all__ = ["BigramConfig", "BigramData", "prepare_bigrams", "train_bigram", "run_bigram_demo"]

log = logging.getLogger(__name__)


@dataclasses.dataclass
class BigramConfig:
    """Settings of the bigram demo.

    Attributes:
        min_count: words seen fewer times map to ``<unk>``.
        dim: embedding size D.
        batch_size: bigrams per step.
        epochs: passes over the training bigrams.
        lr: Adam learning rate.
        valid_fraction: share of sentences held out (the first ones after a seeded shuffle).
        seed: shuffling and initialisation seed.
        length_groups: each batch runs the output layer once per group of similar target path
            length (see :func:`~paddle_hsoftmax.data.batching.split_by_length`); 1 pads every
            row to the batch's longest code.
        trees: which trees to train with, in order.
    """

    min_count: int = 5
    dim: int = 64
    batch_size: int = 4096
    epochs: int = 1
    lr: float = 0.01
    valid_fraction: float = 0.1
    seed: int = 0
    length_groups: int = 2
    trees: Sequence[str] = ("huffman", "balanced")


@dataclasses.dataclass
class BigramData:
    """Vocabulary (sorted by decreasing count, ``<unk>`` last), counts and bigram id pairs."""

    words: List[str]
    counts: np.ndarray  # (V,) int64
    train: np.ndarray  # (N_train, 2) int64: previous word, next word
    valid: np.ndarray  # (N_valid, 2) int64


def prepare_bigrams(sentences: Sequence[Sequence[str]], config: BigramConfig) -> BigramData:
    """Build the vocabulary from the training sentences and turn sentences into bigram pairs."""
    order = list(range(len(sentences)))
    np.random.default_rng(config.seed).shuffle(order)
    n_valid = int(len(order) * config.valid_fraction)
    valid_sents = [sentences[i] for i in order[:n_valid]]
    train_sents = [sentences[i] for i in order[n_valid:]]
    counter: Dict[str, int] = {}
    for sent in train_sents:
        for w in sent:
            counter[w] = counter.get(w, 0) + 1
    kept = sorted(((c, w) for w, c in counter.items() if c >= config.min_count), key=lambda x: (-x[0], x[1]))
    words = [w for _, w in kept] + ["<unk>"]
    index = {w: i for i, w in enumerate(words)}
    unk = len(words) - 1
    unk_count = sum(c for w, c in counter.items() if w not in index)
    counts = np.asarray([c for c, _ in kept] + [max(unk_count, 1)], dtype=np.int64)
    if len(words) < 3:
        raise ValueError(
            f"min_count={config.min_count} leaves {len(words) - 1} word(s); need at least 2"
        )

    def pairs(sents):
        ids = [np.fromiter((index.get(w, unk) for w in s), dtype=np.int64, count=len(s)) for s in sents]
        ids = [x for x in ids if x.size >= 2]
        if not ids:
            return np.zeros((0, 2), dtype=np.int64)
        return np.concatenate([np.stack([x[:-1], x[1:]], axis=1) for x in ids])

    return BigramData(words, counts, pairs(train_sents), pairs(valid_sents))


class BigramModel(paddle.nn.Layer):
    """``Embedding(V, D) -> HierarchicalSoftmax(D, tree)``."""

    def __init__(self, vocab_size: int, dim: int, tree: Tree) -> None:
        super().__init__()
        self.embed = paddle.nn.Embedding(vocab_size, dim, sparse=True)
        self.out = HierarchicalSoftmax(dim, tree, sparse=True, check_targets=False)

    def forward(self, prev: paddle.Tensor, nxt: paddle.Tensor, max_length: Optional[int] = None) -> paddle.Tensor:
        return self.out(self.embed(prev), nxt, max_length=max_length)  # (B,)


def _perplexity(model: BigramModel, pairs: np.ndarray, batch_size: int) -> Dict[str, float]:
    """Exact perplexity from ``forward`` and, on a slice, a check that ``full_log_prob`` sums to 1."""
    model.eval()
    total = 0.0
    with paddle.no_grad():
        for start in range(0, len(pairs), batch_size):
            chunk = paddle.to_tensor(pairs[start : start + batch_size])
            total += float(model(chunk[:, 0], chunk[:, 1]).sum())
        probe = paddle.to_tensor(pairs[:64, 0])
        mass = paddle.exp(model.out.full_log_prob(model.embed(probe))).sum(axis=-1).numpy()
    model.train()
    return {
        "perplexity": math.exp(total / max(len(pairs), 1)),
        "max_abs_prob_sum_error": float(np.abs(mass - 1.0).max()),
    }


def train_bigram(data: BigramData, tree: Tree, config: BigramConfig, progress: bool = True) -> Dict[str, float]:
    """Train the bigram model with ``tree``; return timing and validation perplexity."""
    from tqdm import tqdm

    paddle.seed(config.seed)
    model = BigramModel(len(data.words), config.dim, tree)
    opt = paddle.optimizer.Adam(learning_rate=config.lr, parameters=model.parameters(), lazy_mode=True)
    rng = np.random.default_rng(config.seed)
    target_lengths = tree.path_lengths[data.train[:, 1]]  # (N_train,)
    steps = math.ceil(len(data.train) / config.batch_size)
    losses = []
    computed_slots = 0
    start = time.perf_counter()
    for epoch in range(config.epochs):
        perm = rng.permutation(len(data.train))
        bar = tqdm(range(steps), desc=f"{tree.kind} epoch {epoch + 1}", disable=not progress, leave=False)
        for step in bar:
            idx = perm[step * config.batch_size : (step + 1) * config.batch_size]
            # same batch, same gradient: the layer runs once per group of similar path length
            total = paddle.zeros([])
            for positions, bound in split_by_length(target_lengths[idx], config.length_groups):
                part = paddle.to_tensor(data.train[idx[positions]])
                computed_slots += bound * len(positions)
                part_loss = model(part[:, 0], part[:, 1], max_length=bound).sum() / len(idx)
                part_loss.backward()
                total = total + part_loss.detach()
            opt.step()
            opt.clear_grad()
            if step % 20 == 0:
                losses.append(float(total))
                bar.set_postfix(loss=f"{losses[-1]:.3f}")
    seconds = time.perf_counter() - start
    result = {
        "tree": tree.kind,
        "train_seconds": seconds,
        "bigrams_per_sec": config.epochs * len(data.train) / seconds,
        "final_train_loss": losses[-1] if losses else float("nan"),
        "mean_path_of_targets": float(target_lengths.mean()),
        "mean_computed_slots": computed_slots / (config.epochs * len(data.train)),
    }
    result.update(_perplexity(model, data.valid, config.batch_size))
    log.info("bigram %s: %s", tree.kind, result)
    return result


def run_bigram_demo(sentences: Sequence[Sequence[str]], config: Optional[BigramConfig] = None, progress: bool = True):
    """Information table plus one bigram training per tree; returns ``(info, results)``."""
    config = config or BigramConfig()
    data = prepare_bigrams(sentences, config)
    info = information_table(data.counts)
    builders = {"huffman": lambda: build_huffman_tree(data.counts), "balanced": lambda: build_balanced_tree(len(data.words))}
    results = []
    for name in config.trees:
        if name not in builders:
            raise ValueError(f"unknown tree {name!r}; choose from {sorted(builders)}")
        results.append(train_bigram(data, builders[name](), config, progress=progress))
    return data, info, results
