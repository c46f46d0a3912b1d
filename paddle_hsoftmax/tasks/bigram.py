"""The smallest real use of the H-softmax layer: a bigram language model on People's Daily.

Idea: ``p(w_t | w_{t-1}) = HSoftmax(Embedding(w_{t-1}))``. Training it once with a Huffman tree and
once with a balanced tree over the same vocabulary shows, on real text, that both give an exact,
normalised distribution, and what each costs: the report has the mean path length of the
predicted words, the path slots actually computed (after padding) and the training time.

This module is what ``python train.py demo`` runs: :class:`BigramTask` is a task of the shared
trainer (:class:`~paddle_hsoftmax.trainer.Trainer`), like every other model of the package.

Shape: a batch is ``[B]`` previous-word ids and ``[B]`` next-word ids; the layer returns ``[B]`` NLLs.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import tempfile
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

import numpy as np
import paddle

from ..data.batching import split_by_length
from ..data.vocab import count_tokens
from ..output import HierarchicalSoftmax
from ..output.registry import build_tree
from ..pipeline.configs import BigramConfig
from ..trainer import StepResult, Task, Trainer, TrainerConfig
from ..tree import Tree, information_table

__all__ = ["BigramData", "BigramTask", "prepare_bigrams", "train_bigram", "run_bigram_demo"]

log = logging.getLogger(__name__)


@dataclasses.dataclass
class BigramData:
    """Vocabulary (sorted by decreasing count, ``<unk>`` last), counts and bigram id pairs."""

    words: List[str]
    counts: np.ndarray  # (V,) int64
    train: np.ndarray  # (N_train, 2) int64: previous word, next word
    valid: np.ndarray  # (N_valid, 2) int64


def prepare_bigrams(sentences: Sequence[Sequence[str]], config: BigramConfig) -> BigramData:
    """Build the vocabulary from the training sentences and turn sentences into bigram pairs."""
    from ..data.text import CorpusError

    order = list(range(len(sentences)))
    np.random.default_rng(config.seed).shuffle(order)
    n_valid = int(len(order) * config.valid_fraction)
    valid_sents = [sentences[i] for i in order[:n_valid]]
    train_sents = [sentences[i] for i in order[n_valid:]]
    counter, _ = count_tokens(train_sents)
    kept = sorted(((c, w) for w, c in counter.items() if c >= config.min_count), key=lambda x: (-x[0], x[1]))
    words = [w for _, w in kept] + ["<unk>"]
    index = {w: i for i, w in enumerate(words)}
    unk = len(words) - 1
    unk_count = sum(c for w, c in counter.items() if w not in index)
    counts = np.asarray([c for c, _ in kept] + [max(unk_count, 1)], dtype=np.int64)
    if len(words) < 3:
        raise CorpusError(f"min_count={config.min_count} leaves {len(words) - 1} word(s); need at least 2")

    def pairs(sents):
        ids = [np.fromiter((index.get(w, unk) for w in s), dtype=np.int64, count=len(s)) for s in sents]
        ids = [x for x in ids if x.size >= 2]
        if not ids:
            return np.zeros((0, 2), dtype=np.int64)
        return np.concatenate([np.stack([x[:-1], x[1:]], axis=1) for x in ids])  # (N, 2)

    return BigramData(words, counts, pairs(train_sents), pairs(valid_sents))


class BigramModel(paddle.nn.Layer):
    """``Embedding(V, D) -> HierarchicalSoftmax(D, tree)``."""

    def __init__(self, vocab_size: int, dim: int, tree: Tree) -> None:
        super().__init__()
        self.embed = paddle.nn.Embedding(vocab_size, dim, sparse=True)
        self.out = HierarchicalSoftmax(dim, tree, sparse=True, check_targets=False)

    def forward(self, prev: paddle.Tensor, nxt: paddle.Tensor, max_length: Optional[int] = None) -> paddle.Tensor:
        return self.out(self.embed(prev), nxt, max_length=max_length)  # (B,)


class BigramTask(Task):
    """The bigram model with one tree, as a :class:`~paddle_hsoftmax.trainer.Task`: batches are
    ``[B]`` indices into the training pairs, shuffled from ``(seed, epoch)``; a step runs the
    output layer once per group of similar target path length (same batch, same gradient)."""

    name = "bigram"
    unit_name = "bigrams"

    def __init__(self, data: BigramData, tree: Tree, config: BigramConfig) -> None:
        self.data, self.tree, self.config = data, tree, config
        paddle.seed(config.seed)
        self.model = BigramModel(len(data.words), config.dim, tree)
        self.optimizer = paddle.optimizer.Adam(learning_rate=config.lr, parameters=self.model.parameters(),
                                               lazy_mode=True)
        self.target_lengths = tree.path_lengths[data.train[:, 1]]  # (N_train,)
        self.computed_slots = 0  # path slots computed (after padding), over the run

    def epoch_batches(self, epoch: int) -> Iterator[np.ndarray]:
        perm = np.random.default_rng([self.config.seed, epoch]).permutation(len(self.data.train))
        B = self.config.batch_size
        for start in range(0, len(perm), B):
            yield perm[start : start + B]

    def units_per_epoch(self) -> float:
        return float(len(self.data.train))

    def learning_rate(self, progress: float) -> float:
        return self.config.lr

    def train_step(self, idx: np.ndarray) -> StepResult:
        self.model.train()
        total = paddle.zeros([])
        for positions, bound in split_by_length(self.target_lengths[idx], self.config.length_groups):
            part = paddle.to_tensor(self.data.train[idx[positions]])  # (b, 2)
            self.computed_slots += bound * len(positions)
            part_loss = self.model(part[:, 0], part[:, 1], max_length=bound).sum()
            (part_loss / len(idx)).backward()
            total = total + part_loss.detach()
        return StepResult(loss_sum=total, count=float(len(idx)), units=float(len(idx)))

    def evaluate(self) -> Dict[str, float]:
        """Exact perplexity from ``forward`` and, on a slice, a check that ``full_log_prob`` sums to 1."""
        model, pairs = self.model, self.data.valid
        model.eval()
        total = paddle.zeros([], dtype="float64")
        with paddle.no_grad():
            for start in range(0, len(pairs), self.config.batch_size):
                chunk = paddle.to_tensor(pairs[start : start + self.config.batch_size])
                total = total + model(chunk[:, 0], chunk[:, 1]).sum().astype("float64")
            probe = paddle.to_tensor(pairs[:64, 0])
            mass = paddle.exp(model.out.full_log_prob(model.embed(probe))).sum(axis=-1).numpy()  # (64,)
        model.train()
        return {"perplexity": math.exp(float(total) / max(len(pairs), 1)),
                "max_abs_prob_sum_error": float(np.abs(mass - 1.0).max())}

    def hparams(self) -> Dict[str, object]:
        d = {k: v for k, v in dataclasses.asdict(self.config).items() if k != "trees"}
        d.update(tree=self.tree.kind, vocab_size=len(self.data.words))
        return d


def train_bigram(data: BigramData, tree: Tree, config: BigramConfig, progress: bool = True,
                 output_dir: Optional[str] = None) -> Dict[str, float]:
    """Train the bigram model with ``tree`` through the shared trainer (checkpoints and VisualDL
    logs in ``output_dir``; a temporary directory when None); return timing and validation
    perplexity."""
    with tempfile.TemporaryDirectory(prefix="bigram-") as tmp:
        task = BigramTask(data, tree, config)
        steps = max(1, -(-len(data.train) // config.batch_size))  # per epoch
        trainer = Trainer(TrainerConfig(output_dir=output_dir or tmp, epochs=config.epochs, progress=progress,
                                        log_every=min(20, steps)))
        metrics = trainer.fit(task)
    seconds = metrics["train_seconds"]
    result = {
        "tree": tree.kind,
        "train_seconds": seconds,
        "bigrams_per_sec": config.epochs * len(data.train) / max(seconds, 1e-9),
        "final_train_loss": metrics["final_train_loss"],
        "mean_path_of_targets": float(task.target_lengths.mean()),
        "mean_computed_slots": task.computed_slots / (config.epochs * len(data.train)),
        "perplexity": metrics["perplexity"],
        "max_abs_prob_sum_error": metrics["max_abs_prob_sum_error"],
    }
    log.info("bigram %s: %s", tree.kind, result)
    return result


def run_bigram_demo(sentences: Sequence[Sequence[str]], config: Optional[BigramConfig] = None, progress: bool = True,
                    output_dir: Optional[str] = None):
    """Information table plus one bigram training per tree (each in ``output_dir/<tree>`` when
    given); returns ``(data, info, results)``."""
    config = config or BigramConfig()
    data = prepare_bigrams(sentences, config)
    info = information_table(data.counts)
    results = []
    for name in config.trees:
        sub = None if output_dir is None else str(Path(output_dir) / name)
        results.append(train_bigram(data, build_tree(name, data.counts), config, progress=progress, output_dir=sub))
    return data, info, results
