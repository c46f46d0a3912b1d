"""The text-classification task: labelled texts -> token ids -> LSTM classifier -> Adam.

Batches hold sentences of similar length (sorted inside pools of 32 batches, pools shuffled) so
padding stays small; each epoch's order comes from ``(seed, epoch)``, which the trainer's resume
relies on. Selection: validation accuracy (best model kept, optional early stopping).
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Iterator, List, Sequence, Tuple

import numpy as np
import paddle
import paddle.nn.functional as F

from ..data.batching import sortish_batches
from ..data.text import CorpusError, tokenize
from ..data.vocab import TokenIndex
from ..errors import ConfigError
from ..metrics import classification_scores
from ..models.classifier import TextClassifier
from ..pipeline.configs import ClassifyConfig
from ..pipeline.encoding import pad
from ..trainer import StepResult, Task

__all__ = ["ClassifyConfig", "ClassifyTask", "tokenize_text"]

tokenize_text = tokenize  # the package's one tokenizer (data.text.tokenize), under its former name here


class ClassifyTask(Task):
    """Text classification as a :class:`~paddle_hsoftmax.trainer.Task`.

    Args:
        config: the settings.
        splits: ``{"train": [(label, text)], "valid": [...], "test": [...]}``.
    """

    name = "classify"
    unit_name = "sentences"
    selection_metric = "valid_accuracy"

    def __init__(self, config: ClassifyConfig, splits: Dict[str, Sequence[Tuple[str, str]]]) -> None:
        for part in ("train", "valid"):
            if not splits.get(part):
                raise CorpusError(f"the {part} split is empty")
        self.config = config
        self.labels = sorted({label for label, _ in splits["train"]})
        if len(self.labels) < 2:
            raise CorpusError(f"training data has {len(self.labels)} label(s); a classifier needs at least 2")
        self.label_index = {label: i for i, label in enumerate(self.labels)}
        tokens = {part: [tokenize(t, config.tokenizer)[: config.max_len] for _, t in items]
                  for part, items in splits.items()}
        self.vocab = TokenIndex.build(tokens["train"], min_count=config.min_count)
        self.data = {}
        self.unseen_labels: Dict[str, int] = {}
        for part, items in splits.items():
            ids = [self.vocab.encode(toks) if toks else np.array([TokenIndex.UNK]) for toks in tokens[part]]
            gold = []
            for label, _ in items:
                if label not in self.label_index:  # reported, scored as an error, never crashed on
                    self.unseen_labels[f"{part}:{label}"] = self.unseen_labels.get(f"{part}:{label}", 0) + 1
                gold.append(self.label_index.get(label, -1))
            self.data[part] = (ids, np.asarray(gold, dtype=np.int64))
        paddle.seed(config.seed)
        self.model = TextClassifier(
            len(self.vocab), len(self.labels), embed_dim=config.embed_dim, hidden_size=config.hidden_size,
            num_layers=config.num_layers, bidirectional=config.bidirectional, cell=config.cell,
            pooling=config.pooling, dropout=config.dropout,
        )
        self.init_coverage = self._init_embeddings(config.init_vectors) if config.init_vectors else None
        self.optimizer = paddle.optimizer.Adam(
            learning_rate=config.lr, parameters=self.model.parameters(),
            grad_clip=paddle.nn.ClipGradByGlobalNorm(config.grad_clip),
        )

    def _init_embeddings(self, path: str) -> float:
        """Copy pretrained vectors into the embedding rows of known tokens; returns the share of
        the vocabulary (specials excluded) that was found."""
        from ..evaluate import load_vectors

        words, vectors = load_vectors(path)
        if vectors.shape[1] != self.config.embed_dim:
            raise ConfigError(f"{path}: vectors have {vectors.shape[1]} dimensions, --embed-dim is "
                             f"{self.config.embed_dim}")
        where = {w: i for i, w in enumerate(words)}
        table = self.model.embed.weight.numpy()
        found = 0
        for token, row in self.vocab.index.items():
            i = where.get(token)
            if i is not None and row >= len(TokenIndex.SPECIALS):
                table[row] = vectors[i]
                found += 1
        self.model.embed.weight.set_value(table)
        return found / max(len(self.vocab) - len(TokenIndex.SPECIALS), 1)

    # -- batches -----------------------------------------------------------------------------------
    pad = staticmethod(pad)  # ``[B, T]`` ids padded with 0 and ``[B]`` lengths (pipeline.encoding.pad)

    def epoch_batches(self, epoch: int) -> Iterator[Tuple[np.ndarray, np.ndarray, np.ndarray]]:
        ids, gold = self.data["train"]
        rng = np.random.default_rng([self.config.seed, epoch])
        lengths = np.fromiter((len(s) for s in ids), dtype=np.int64, count=len(ids))
        for idx in sortish_batches(lengths, self.config.batch_size, rng):
            tokens, lens = self.pad([ids[i] for i in idx])
            yield tokens, lens, gold[idx]

    # -- Task --------------------------------------------------------------------------------------
    def units_per_epoch(self) -> float:
        return float(len(self.data["train"][0]))

    def learning_rate(self, progress: float) -> float:
        return self.config.lr

    def train_step(self, batch) -> StepResult:
        tokens, lengths, gold = batch
        self.model.train()
        log_probs = self.model(paddle.to_tensor(tokens), paddle.to_tensor(lengths))  # (B, C)
        loss = F.nll_loss(log_probs, paddle.to_tensor(gold), reduction="sum")
        (loss / len(gold)).backward()
        return StepResult(loss_sum=loss.detach(), count=float(len(gold)), units=float(len(gold)))

    def predict_ids(self, sequences: Sequence[np.ndarray], batch_size: int = 256) -> np.ndarray:
        """Best class id per sequence (eval mode, batches sorted by length)."""
        self.model.eval()
        order = np.argsort([len(s) for s in sequences], kind="stable")
        pred = np.zeros(len(sequences), dtype=np.int64)
        with paddle.no_grad():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                tokens, lens = self.pad([sequences[i] for i in idx])
                pred[idx] = self.model(paddle.to_tensor(tokens), paddle.to_tensor(lens)).argmax(axis=-1).numpy()
        return pred

    def scores(self, part: str) -> Dict[str, Any]:
        ids, gold = self.data[part]
        pred = self.predict_ids(ids)
        return classification_scores(gold, pred, self.labels) if (gold >= 0).all() else _with_unseen(gold, pred, self.labels)

    def evaluate(self) -> Dict[str, float]:
        s = self.scores("valid")
        return {"valid_accuracy": s["accuracy"], "valid_macro_f1": s["macro_f1"]}

    def hparams(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self.config)
        d.update(num_labels=len(self.labels), vocab_size=len(self.vocab), train_size=len(self.data["train"][0]))
        return d


def _with_unseen(gold: np.ndarray, pred: np.ndarray, labels: List[str]) -> Dict[str, Any]:
    """Scores when some gold labels never occurred in training: they count as errors."""
    known = gold >= 0
    s = classification_scores(gold[known], pred[known], labels)
    s["accuracy"] = float((gold == pred).sum() / len(gold))
    s["unseen_label_items"] = int((~known).sum())
    return s
