"""Tokens -> the tagger's inputs: token ids ``[T]`` and sub-token ids ``[T, W]``, padded into batches.

The same :class:`TaggerInputs` encodes the training data (:mod:`paddle_hsoftmax.tasks.tag`) and,
rebuilt from a run's ``tokens.txt`` and ``chars.txt`` / ``bigrams.txt``, the raw text that
``train.py predict`` reads (:mod:`paddle_hsoftmax.inference`).
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..data.vocab import TokenIndex
from .encoding import pad

__all__ = ["TaggerInputs"]


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
        tokens, lengths = pad([ids for ids, _ in encoded])
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
