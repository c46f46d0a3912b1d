"""The sequence-labelling task: tagged sentences -> token ids -> BiLSTM tagger (softmax or CRF).

Batches hold sentences of similar length (sorted inside pools of 32 batches); the loss is the
summed NLL over real tokens divided by the batch's token count; selection by validation token
accuracy. Tags seen only outside the training split are reported and scored as errors.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Iterator, List, Sequence, Tuple

import numpy as np
import paddle

from ..data.batching import sortish_batches
from ..data.vocab import TokenIndex
from ..models.classifier import RNN_CELLS
from ..models.tagger import SequenceTagger
from ..trainer import StepResult
from .classify import ClassifyTask

__all__ = ["TagConfig", "TagTask"]


@dataclasses.dataclass
class TagConfig:
    """Tagger settings: the encoder, the head (``crf``) and Adam."""

    crf: bool = False
    cell: str = "lstm"
    embed_dim: int = 128
    hidden_size: int = 128
    num_layers: int = 1
    dropout: float = 0.3
    min_count: int = 1
    batch_size: int = 64
    lr: float = 2e-3
    grad_clip: float = 5.0
    seed: int = 0

    def check(self) -> None:
        if self.cell not in RNN_CELLS:
            raise ValueError(f"--cell must be one of {sorted(RNN_CELLS)}, got {self.cell!r}")
        for name in ("embed_dim", "hidden_size", "num_layers", "batch_size", "min_count"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")


class TagTask:
    """Sequence labelling as a :class:`~paddle_hsoftmax.trainer.Task`.

    Args:
        config: the settings.
        splits: ``{"train": [(tokens, tags)], "valid": [...], "test": [...]}``.
    """

    name = "tag"
    unit_name = "tokens"
    selection_metric = "valid_accuracy"

    def __init__(self, config: TagConfig, splits: Dict[str, Sequence[Tuple[List[str], List[str]]]]) -> None:
        config.check()
        for part in ("train", "valid"):
            if not splits.get(part):
                raise ValueError(f"the {part} split is empty")
        self.config = config
        self.tags = sorted({t for _, tags in splits["train"] for t in tags})
        self.tag_index = {t: i for i, t in enumerate(self.tags)}
        self.vocab = TokenIndex.build([w for w, _ in splits["train"]], min_count=config.min_count)
        self.unseen_tags: Dict[str, int] = {}
        self.data = {}
        for part, items in splits.items():
            ids, gold = [], []
            for words, tags in items:
                ids.append(self.vocab.encode(words))
                row = []
                for t in tags:
                    if t not in self.tag_index:
                        key = f"{part}:{t}"
                        self.unseen_tags[key] = self.unseen_tags.get(key, 0) + 1
                    row.append(self.tag_index.get(t, -1))
                gold.append(np.asarray(row, dtype=np.int64))
            self.data[part] = (ids, gold)
        paddle.seed(config.seed)
        self.model = SequenceTagger(
            len(self.vocab), len(self.tags), embed_dim=config.embed_dim, hidden_size=config.hidden_size,
            num_layers=config.num_layers, cell=config.cell, dropout=config.dropout, crf=config.crf,
        )
        self.optimizer = paddle.optimizer.Adam(
            learning_rate=config.lr, parameters=self.model.parameters(),
            grad_clip=paddle.nn.ClipGradByGlobalNorm(config.grad_clip),
        )
        self._tokens_per_epoch = float(sum(len(s) for s in self.data["train"][0]))

    def epoch_batches(self, epoch: int) -> Iterator[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
        ids, gold = self.data["train"]
        rng = np.random.default_rng([self.config.seed, epoch])
        lengths = np.fromiter((len(s) for s in ids), dtype=np.int64, count=len(ids))
        for idx in sortish_batches(lengths, self.config.batch_size, rng):
            tokens, lens = ClassifyTask.pad([ids[i] for i in idx])
            tags, _ = ClassifyTask.pad([np.maximum(gold[i], 0) for i in idx])
            yield tokens, lens, tags

    def units_per_epoch(self) -> float:
        return self._tokens_per_epoch

    def learning_rate(self, progress: float) -> float:
        return self.config.lr

    def train_step(self, batch) -> StepResult:
        tokens, lengths, tags = batch
        self.model.train()
        nll = self.model.loss(paddle.to_tensor(tokens), paddle.to_tensor(lengths), paddle.to_tensor(tags)).sum()
        n = float(lengths.sum())
        (nll / n).backward()
        return StepResult(loss_sum=nll.detach(), count=n, units=n)

    def predict_ids(self, sequences: Sequence[np.ndarray], batch_size: int = 128) -> List[np.ndarray]:
        self.model.eval()
        order = np.argsort([len(s) for s in sequences], kind="stable")
        out: List[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(sequences)
        with paddle.no_grad():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                tokens, lens = ClassifyTask.pad([sequences[i] for i in idx])
                pred = self.model.decode(paddle.to_tensor(tokens), paddle.to_tensor(lens)).numpy()
                for row, i in enumerate(idx):
                    out[i] = pred[row, : len(sequences[i])]
        return out

    def scores(self, part: str) -> Dict[str, Any]:
        ids, gold = self.data[part]
        pred = self.predict_ids(ids)
        flat_gold = np.concatenate(gold)
        flat_pred = np.concatenate(pred)
        return {"accuracy": float((flat_gold == flat_pred).mean()), "tokens": int(flat_gold.size),
                "unseen_tag_tokens": int((flat_gold < 0).sum())}

    def evaluate(self) -> Dict[str, float]:
        return {"valid_accuracy": self.scores("valid")["accuracy"]}

    def hparams(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self.config)
        d.update(num_tags=len(self.tags), vocab_size=len(self.vocab))
        return d
