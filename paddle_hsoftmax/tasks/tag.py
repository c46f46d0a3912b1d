"""The sequence-labelling task: tagged sentences -> token ids (+ character ids) -> BiLSTM tagger.

Batches hold sentences of similar length (sorted inside pools of 32 batches); the loss is the
summed NLL over real tokens divided by the batch's token count. Tags seen only outside the
training split are reported and scored as errors. For span tag sets (BIO/BIOES, or ``b/m/e/s``
word segmentation) the validation span F1 (seqeval) selects the best model, otherwise the
validation token accuracy does.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import paddle

from ..data.batching import sortish_batches
from ..data.text import CorpusError
from ..data.vocab import TokenIndex
from ..metrics import span_scheme, span_scores
from ..models.tagger import SequenceTagger
from ..pipeline.configs import TagConfig
from ..pipeline.encoding import pad
from ..pipeline.tagging import TaggerInputs
from ..trainer import StepResult, Task

__all__ = ["TagConfig", "TaggerInputs", "TagTask"]


class TagTask(Task):
    """Sequence labelling as a :class:`~paddle_hsoftmax.trainer.Task`.

    Args:
        config: the settings.
        splits: ``{"train": [(tokens, tags)], "valid": [...], "test": [...]}``.
    """

    name = "tag"
    unit_name = "tokens"

    def __init__(self, config: TagConfig, splits: Dict[str, Sequence[Tuple[List[str], List[str]]]]) -> None:
        for part in ("train", "valid"):
            if not splits.get(part):
                raise CorpusError(f"the {part} split is empty")
        self.config = config
        self.tags = sorted({t for _, tags in splits["train"] for t in tags})
        self.tag_index = {t: i for i, t in enumerate(self.tags)}
        self.scheme = span_scheme(self.tags)
        self.selection_metric = "valid_f1" if self.scheme else "valid_accuracy"
        train_words = [w for w, _ in splits["train"]]
        features = config.features
        if config.char_dim == 0:
            features = "none"
        elif features == "auto":
            features = "chars" if any(len(w) > 1 for s in train_words for w in s) else "bigrams"
        self.config = config = dataclasses.replace(config, features=features)  # what predict must rebuild
        self.uses_chars = features != "none"
        self.inputs = TaggerInputs.build(train_words, config.min_count, None if features == "none" else features)
        self.unseen_tags: Dict[str, int] = {}
        self.data = {}
        for part, items in splits.items():
            encoded, gold = [], []
            for words, tags in items:
                encoded.append(self.inputs.encode(words))
                row = []
                for t in tags:
                    if t not in self.tag_index:
                        key = f"{part}:{t}"
                        self.unseen_tags[key] = self.unseen_tags.get(key, 0) + 1
                    row.append(self.tag_index.get(t, -1))
                gold.append(np.asarray(row, dtype=np.int64))
            self.data[part] = (encoded, gold, [list(tags) for _, tags in items])
        paddle.seed(config.seed)
        self.model = SequenceTagger(
            len(self.inputs.vocab), len(self.tags), embed_dim=config.embed_dim, hidden_size=config.hidden_size,
            num_layers=config.num_layers, cell=config.cell, dropout=config.dropout, crf=config.crf,
            num_chars=len(self.inputs.subunits) if self.uses_chars else 0, char_dim=config.char_dim,
            char_filters=config.char_filters,
        )
        self.optimizer = paddle.optimizer.Adam(
            learning_rate=config.lr, parameters=self.model.parameters(),
            grad_clip=paddle.nn.ClipGradByGlobalNorm(config.grad_clip),
        )
        self._tokens_per_epoch = float(sum(len(ids) for ids, _ in self.data["train"][0]))

    @property
    def vocab(self) -> TokenIndex:
        return self.inputs.vocab

    def epoch_batches(self, epoch: int) -> Iterator[Tuple[np.ndarray, np.ndarray, np.ndarray, Optional[np.ndarray]]]:
        encoded, gold, _ = self.data["train"]
        rng = np.random.default_rng([self.config.seed, epoch])
        lengths = np.fromiter((len(ids) for ids, _ in encoded), dtype=np.int64, count=len(encoded))
        for idx in sortish_batches(lengths, self.config.batch_size, rng):
            tokens, lens, chars = self.inputs.batch([encoded[i] for i in idx])
            tags, _ = pad([np.maximum(gold[i], 0) for i in idx])
            yield tokens, lens, tags, chars

    def units_per_epoch(self) -> float:
        return self._tokens_per_epoch

    def learning_rate(self, progress: float) -> float:
        return self.config.lr

    @staticmethod
    def _tensors(tokens, lengths, chars):
        return (paddle.to_tensor(tokens), paddle.to_tensor(lengths),
                None if chars is None else paddle.to_tensor(chars))

    def train_step(self, batch) -> StepResult:
        tokens, lengths, tags, chars = batch
        self.model.train()
        t, l, c = self._tensors(tokens, lengths, chars)
        nll = self.model.loss(t, l, paddle.to_tensor(tags), c).sum()
        n = float(lengths.sum())
        (nll / n).backward()
        return StepResult(loss_sum=nll.detach(), count=n, units=n)

    def predict_ids(self, encoded: Sequence[Tuple[np.ndarray, Optional[np.ndarray]]], batch_size: int = 128) -> List[np.ndarray]:
        """Tag ids per sentence, for already encoded sentences."""
        self.model.eval()
        order = np.argsort([len(ids) for ids, _ in encoded], kind="stable")
        out: List[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(encoded)
        with paddle.no_grad():
            for start in range(0, len(order), batch_size):
                idx = order[start : start + batch_size]
                tokens, lens, chars = self.inputs.batch([encoded[i] for i in idx])
                pred = self.model.decode(*self._tensors(tokens, lens, chars)).numpy()
                for row, i in enumerate(idx):
                    out[i] = pred[row, : len(encoded[i][0])]
        return out

    def scores(self, part: str) -> Dict[str, Any]:
        """Token accuracy (and span P/R/F1 for span tag sets) on one split."""
        encoded, gold, gold_tags = self.data[part]
        pred = self.predict_ids(encoded)
        flat_gold = np.concatenate(gold)
        flat_pred = np.concatenate(pred)
        result: Dict[str, Any] = {"accuracy": float((flat_gold == flat_pred).mean()), "tokens": int(flat_gold.size),
                                  "unseen_tag_tokens": int((flat_gold < 0).sum())}
        unknown = np.concatenate([ids for ids, _ in encoded]) == TokenIndex.UNK  # out of the training vocabulary
        result["unknown_tokens"] = int(unknown.sum())
        result["unknown_token_accuracy"] = float((flat_gold == flat_pred)[unknown].mean()) if unknown.any() else None
        if self.scheme:
            result.update(span_scores(gold_tags, [[self.tags[i] for i in p] for p in pred], self.scheme))
        return result

    def evaluate(self) -> Dict[str, float]:
        s = self.scores("valid")
        out = {"valid_accuracy": s["accuracy"]}
        if self.scheme:
            out["valid_f1"] = s["f1"]
        return out

    def hparams(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self.config)
        d.update(num_tags=len(self.tags), vocab_size=len(self.vocab))
        return d
