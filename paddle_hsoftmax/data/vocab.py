"""A vocabulary with counts: the link between a corpus and a tree.

Words are sorted by decreasing count; ties keep the order of first appearance (as gensim does),
so word id 0 is the most frequent word and ids are stable for a given corpus.
"""

from __future__ import annotations

import collections
import os
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..export import atomic_open, atomic_write_text
from .text import CorpusError, excerpt, iter_lines

__all__ = ["Vocab", "TokenIndex", "count_tokens", "word_counts"]


def count_tokens(sentences: Iterable[Sequence[str]]) -> Tuple[Dict[str, int], int]:
    """``(token -> count, total tokens)`` over token sequences; the counts' keys come in order of
    first appearance (what breaks ties between equal counts, as gensim does). The one place the
    package counts words: vocabularies, token indexes, the bigram demo and ``train.py info``.

    Why a ``Counter`` updated per sentence: its counting loop runs in C and keeps insertion order."""
    counts: collections.Counter = collections.Counter()
    total = 0
    for sent in sentences:
        counts.update(sent)
        total += len(sent)
    return counts, total


def word_counts(sentences: Iterable[Sequence[str]]) -> collections.Counter:
    """Count tokens over an iterable of token sequences (:func:`count_tokens` without the total)."""
    return count_tokens(sentences)[0]


class Vocab:
    """Words, their counts and the word -> id map.

    Attributes:
        words: id -> word.
        counts: int64 ``[V]``, corpus counts (after ``min_count``/``max_vocab``).
        total_tokens: tokens in the corpus before any cut-off (what words/s is measured on).
    """

    def __init__(self, words: Sequence[str], counts: Sequence[int], total_tokens: Optional[int] = None) -> None:
        if len(words) != len(counts):
            raise ValueError(f"{len(words)} words but {len(counts)} counts")
        self.words: List[str] = list(words)
        self.counts = np.asarray(counts, dtype=np.int64)
        self.index: Dict[str, int] = {w: i for i, w in enumerate(self.words)}
        if len(self.index) != len(self.words):
            raise ValueError("duplicate words in the vocabulary")
        self.total_tokens = int(total_tokens if total_tokens is not None else self.counts.sum())

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.index

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)}, kept_tokens={int(self.counts.sum())}, total_tokens={self.total_tokens})"

    @classmethod
    def build(
        cls,
        sentences: Iterable[Sequence[str]],
        min_count: int = 5,
        max_vocab: Optional[int] = None,
        source: str = "corpus",
    ) -> "Vocab":
        """Count tokens and keep words with ``count >= min_count`` (the ``max_vocab`` most frequent).

        Raises:
            CorpusError: when fewer than 2 words survive (a tree needs two leaves).
        """
        counts, total = count_tokens(sentences)
        return cls.from_counts(counts, total, min_count=min_count, max_vocab=max_vocab, source=source)

    @classmethod
    def from_counts(
        cls,
        counts: Mapping[str, int],
        total: int,
        min_count: int = 5,
        max_vocab: Optional[int] = None,
        source: str = "corpus",
    ) -> "Vocab":
        """:meth:`build` from counted tokens: ``counts`` in order of first appearance (ties between
        equal counts go to the word seen first, as in gensim), ``total`` tokens in all."""
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count}")
        if max_vocab is not None and max_vocab < 2:
            raise ValueError(f"max_vocab must be >= 2, got {max_vocab}")
        first = {w: i for i, w in enumerate(counts)}
        kept = [w for w, c in counts.items() if c >= min_count]
        kept.sort(key=lambda w: (-counts[w], first[w]))
        if max_vocab is not None:
            kept = kept[:max_vocab]
        if len(kept) < 2:
            raise CorpusError(
                f"{source}: min_count={min_count} leaves {len(kept)} word(s) of {len(counts)} "
                f"distinct ({total} tokens); need at least 2 for a tree"
            )
        return cls(kept, [counts[w] for w in kept], total_tokens=total)

    def encode(self, sentence: Sequence[str]) -> np.ndarray:
        """Ids of the in-vocabulary tokens of ``sentence`` (out-of-vocabulary tokens dropped,
        as word2vec does)."""
        index = self.index
        return np.fromiter((index[w] for w in sentence if w in index), dtype=np.int32)

    def save_tsv(self, path: Union[str, os.PathLike]) -> None:
        """``word<TAB>count`` lines in id order (atomic write)."""
        with atomic_open(path, "w") as f:
            f.write(f"#total_tokens\t{self.total_tokens}\n")
            for w, c in zip(self.words, self.counts.tolist()):
                f.write(f"{w}\t{c}\n")

    @classmethod
    def load_tsv(cls, path: Union[str, os.PathLike]) -> "Vocab":
        """Read :meth:`save_tsv` output; malformed lines raise :class:`CorpusError` naming file and line."""
        words, counts, total = [], [], None
        seen: Dict[str, int] = {}
        for lineno, line in iter_lines(path):
            parts = line.split("\t")
            if lineno == 1 and parts[0] == "#total_tokens":
                total = _count(parts[1:], path, lineno, "#total_tokens<TAB>count")
                continue
            if len(parts) != 2:
                raise CorpusError(f"{path}:{lineno}: expected word<TAB>count, got {excerpt(line)}")
            if parts[0] in seen:
                raise CorpusError(f"{path}:{lineno}: word {excerpt(parts[0])} again (first on line {seen[parts[0]]})")
            seen[parts[0]] = lineno
            words.append(parts[0])
            counts.append(_count(parts[1:], path, lineno, "word<TAB>count"))
        if len(words) < 2:
            raise CorpusError(f"{path}: {len(words)} word(s); a vocabulary file needs at least 2")
        return cls(words, counts, total_tokens=total)


def _count(fields: Sequence[str], path, lineno: int, expected: str) -> int:
    """The count in ``fields`` (one ASCII decimal number), or a :class:`CorpusError` naming the line."""
    text = fields[0] if len(fields) == 1 else ""
    if not (text.isascii() and text.isdigit()):
        raise CorpusError(f"{path}:{lineno}: expected {expected}, got {excerpt(chr(9).join(fields))} as the count")
    return int(text)


class TokenIndex:
    """Token -> id for models with an embedding input: id 0 = ``<pad>``, 1 = ``<unk>``, then tokens
    by decreasing count (ties: first appearance). Unknown tokens map to ``<unk>``."""

    PAD, UNK = 0, 1
    SPECIALS = ("<pad>", "<unk>")

    def __init__(self, tokens: Sequence[str]) -> None:
        self.tokens: List[str] = list(self.SPECIALS) + [t for t in tokens if t not in self.SPECIALS]
        self.index: Dict[str, int] = {t: i for i, t in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    @classmethod
    def build(cls, sequences: Iterable[Sequence[str]], min_count: int = 1, max_size: Optional[int] = None) -> "TokenIndex":
        counts, _ = count_tokens(sequences)
        first = {t: i for i, t in enumerate(counts)}
        kept = sorted((t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], first[t]))
        return cls(kept[:max_size] if max_size else kept)

    def encode(self, tokens: Sequence[str]) -> np.ndarray:
        index, unk = self.index, self.UNK
        return np.fromiter((index.get(t, unk) for t in tokens), dtype=np.int64, count=len(tokens))

    def save(self, path: Union[str, os.PathLike]) -> None:
        """One token per line, in id order (atomic write)."""
        atomic_write_text(path, "\n".join(self.tokens) + "\n")

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "TokenIndex":
        """Read :meth:`save` output (errors name the file and line: see
        :func:`~paddle_hsoftmax.data.text.iter_lines`)."""
        tokens = [line for _, line in iter_lines(path)]
        if tokens[: len(cls.SPECIALS)] != list(cls.SPECIALS):
            raise CorpusError(f"{path}:1: not a token index (must start with {cls.SPECIALS})")
        return cls(tokens[len(cls.SPECIALS):])
