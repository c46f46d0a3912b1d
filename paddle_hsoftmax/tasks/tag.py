"""The sequence-labelling task: tagged sentences -> token ids (+ character ids) -> BiLSTM tagger.

Batches hold sentences of similar length (sorted inside pools of 32 batches); the loss is the
summed NLL over real tokens divided by the batch's token count. Tags seen only outside the
training split are reported and scored as errors. For span tag sets (BIO/BIOES, or ``b/m/e/s``
word segmentation) the validation span F1 (seqeval) selects the best model, otherwise the
validation token accuracy does.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np
import paddle

from ..data.batching import sortish_batches
from ..data.vocab import TokenIndex
from ..metrics import span_scheme, span_scores
from ..models.classifier import RNN_CELLS
from ..models.tagger import SequenceTagger
from ..trainer import StepResult
from .classify import ClassifyTask

__all__ = ["TagConfig", "TaggerInputs", "TagTask"]


@dataclasses.dataclass
class TagConfig:
    """Tagger settings: the encoder, the head (``crf``), character features and Adam.

    Attributes:
        tokenizer: how ``predict`` splits raw text into tokens (``whitespace`` for
            pre-segmented words, ``char`` for character-level tag sets, or ``jieba``).
        features: sub-token features (:class:`TaggerInputs`): ``chars``, ``bigrams``, ``none``
            or ``auto`` (characters when some training token is longer than one character,
            character bigrams when all are single characters).
        char_dim: embedding size of the sub-token CNN; 0 turns the features off.
        char_filters: the sub-token CNN's feature size.
    """

    crf: bool = False
    cell: str = "lstm"
    embed_dim: int = 128
    hidden_size: int = 128
    num_layers: int = 1
    dropout: float = 0.3
    features: str = "auto"
    char_dim: int = 32
    char_filters: int = 64
    min_count: int = 1
    batch_size: int = 64
    lr: float = 2e-3
    grad_clip: float = 5.0
    tokenizer: str = "whitespace"
    seed: int = 0

    def check(self) -> None:
        if self.cell not in RNN_CELLS:
            raise ValueError(f"--cell must be one of {sorted(RNN_CELLS)}, got {self.cell!r}")
        if self.tokenizer not in ("char", "whitespace", "jieba"):
            raise ValueError(f"--tokenizer must be char, whitespace or jieba, got {self.tokenizer!r}")
        for name in ("embed_dim", "hidden_size", "num_layers", "batch_size", "min_count", "char_filters"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}")
        if self.features not in ("auto", "none", *TaggerInputs.MODES):
            raise ValueError(f"--features must be auto, none, chars or bigrams, got {self.features!r}")
        if self.char_dim < 0:
            raise ValueError(f"--char-dim must be >= 0 (0 = off), got {self.char_dim}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"--dropout must be in [0, 1), got {self.dropout}")


class TaggerInputs:
    """Tokens -> token ids ``[T]`` and (optionally) sub-token ids ``[T, W]``; pads batches.

    The sub-token features that :class:`~paddle_hsoftmax.models.char_cnn.CharCNN` reads:

    - ``"chars"`` (tokens are words): each word's characters, so an unknown word still has
      features (Ma & Hovy 2016);
    - ``"bigrams"`` (tokens are characters, as in segmentation or character-level NER): the two
      character bigrams around each character, ``c[i-1] c[i]`` and ``c[i] c[i+1]`` (``<s>`` /
      ``</s>`` at the ends), the standard extra feature of character taggers (Pei et al. 2014;
      Chen et al. 2015); bigrams seen once in training read as unknown.

    The same object encodes training data and, rebuilt from ``tokens.txt`` and ``chars.txt`` /
    ``bigrams.txt``, the raw text that ``predict`` reads.

    Args:
        vocab: token index (0 = padding, 1 = unknown).
        subunits: the character or bigram index, or None for no sub-token features.
        mode: ``"chars"``, ``"bigrams"`` or None.
    """

    MAX_WORD_CHARS = 16  # longer words keep their first 16 characters for the character CNN
    MODES = ("chars", "bigrams")

    def __init__(self, vocab: TokenIndex, subunits: Optional[TokenIndex] = None, mode: Optional[str] = None) -> None:
        if (subunits is None) != (mode is None) or (mode is not None and mode not in self.MODES):
            raise ValueError(f"mode must be one of {self.MODES} with a sub-unit index, or None without; got {mode!r}")
        self.vocab = vocab
        self.subunits = subunits
        self.mode = mode

    @staticmethod
    def _bigrams(tokens: Sequence[str]) -> List[Tuple[str, str]]:
        padded = ["<s>", *tokens, "</s>"]
        return [(padded[i] + padded[i + 1], padded[i + 1] + padded[i + 2]) for i in range(len(tokens))]

    @classmethod
    def build(cls, sentences: Sequence[Sequence[str]], min_count: int, mode: Optional[str]) -> "TaggerInputs":
        vocab = TokenIndex.build(sentences, min_count=min_count)
        if mode == "chars":
            return cls(vocab, TokenIndex.build([[c for w in s for c in w] for s in sentences], min_count=1), mode)
        if mode == "bigrams":
            # each bigram of ["<s>", *s, "</s>"] once (every one is a left and a right bigram)
            padded = (["<s>", *s, "</s>"] for s in sentences)
            grams = TokenIndex.build([[p[i] + p[i + 1] for i in range(len(p) - 1)] for p in padded], min_count=2)
            return cls(vocab, grams, mode)
        return cls(vocab)

    def encode(self, words: Sequence[str]) -> Tuple[np.ndarray, Optional[np.ndarray]]:
        ids = self.vocab.encode(words)  # (T,)
        if self.mode is None:
            return ids, None
        if self.mode == "bigrams":
            pairs = self._bigrams(words)
            return ids, np.stack([self.subunits.encode([a for a, _ in pairs]),
                                  self.subunits.encode([b for _, b in pairs])], axis=1).reshape(len(words), 2)  # (T, 2)
        width = max([min(len(w), self.MAX_WORD_CHARS) for w in words] + [1])
        char_ids = np.zeros((len(words), width), dtype=np.int64)  # (T, W)
        for i, w in enumerate(words):
            w = w[: self.MAX_WORD_CHARS]
            char_ids[i, : len(w)] = self.subunits.encode(list(w))
        return ids, char_ids

    @staticmethod
    def pad_chars(rows: Sequence[np.ndarray], T: int) -> np.ndarray:
        """``[B, T, W]`` sub-token ids from per-sentence ``[T_i, W_i]`` arrays."""
        W = max(r.shape[1] for r in rows)
        out = np.zeros((len(rows), T, W), dtype=np.int64)
        for i, r in enumerate(rows):
            out[i, : r.shape[0], : r.shape[1]] = r
        return out

    def batch(self, encoded: Sequence[Tuple[np.ndarray, Optional[np.ndarray]]]):
        """``(tokens [B, T], lengths [B], sub-tokens [B, T, W] or None)``."""
        tokens, lengths = ClassifyTask.pad([ids for ids, _ in encoded])
        chars = None if self.mode is None else self.pad_chars([c for _, c in encoded], tokens.shape[1])
        return tokens, lengths, chars

    def save(self, directory: Path) -> None:
        self.vocab.save(Path(directory) / "tokens.txt")
        if self.mode is not None:
            self.subunits.save(Path(directory) / f"{self.mode}.txt")

    @classmethod
    def load(cls, directory: Path) -> "TaggerInputs":
        vocab = TokenIndex.load(Path(directory) / "tokens.txt")
        for mode in cls.MODES:
            path = Path(directory) / f"{mode}.txt"
            if path.exists():
                return cls(vocab, TokenIndex.load(path), mode)
        return cls(vocab)


class TagTask:
    """Sequence labelling as a :class:`~paddle_hsoftmax.trainer.Task`.

    Args:
        config: the settings.
        splits: ``{"train": [(tokens, tags)], "valid": [...], "test": [...]}``.
    """

    name = "tag"
    unit_name = "tokens"

    def __init__(self, config: TagConfig, splits: Dict[str, Sequence[Tuple[List[str], List[str]]]]) -> None:
        config.check()
        for part in ("train", "valid"):
            if not splits.get(part):
                raise ValueError(f"the {part} split is empty")
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
            tags, _ = ClassifyTask.pad([np.maximum(gold[i], 0) for i in idx])
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
