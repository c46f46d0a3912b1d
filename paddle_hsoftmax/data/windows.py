"""word2vec's training examples, built with vectorised NumPy (no Python loop per token).

Mikolov et al. 2013 (word2vec.c), as gensim reproduces it:

- **subsampling** of frequent words: a token of word w with count c is kept with probability
  ``min(1, (sqrt(c / t) + 1) * t / c)`` where ``t = sample * (sum of kept-vocabulary counts)``;
  dropped tokens are removed before windows are formed, so windows reach further;
- **dynamic window**: each centre draws ``b`` uniformly from ``[0, window-1]`` and uses the
  ``window - b`` words on each side (nearer words are used more often);
- windows never cross a sentence boundary.

An :class:`EncodedCorpus` holds the corpus as one int32 array plus sentence ids; each epoch's
examples are ``(centres[N], contexts[N, 2 * window])`` with ``-1`` where a context slot is empty.
"""

from __future__ import annotations

import dataclasses
from typing import Iterator, Sequence, Tuple

import numpy as np

from .vocab import Vocab

__all__ = ["EncodedCorpus", "keep_probabilities", "subsample", "window_contexts", "epoch_examples"]


@dataclasses.dataclass
class EncodedCorpus:
    """A corpus as word ids: ``tokens`` int32 ``[T]`` and ``sentence`` int32 ``[T]`` (sentence id).

    ``raw_tokens`` counts every token of the text, out-of-vocabulary ones included (the words/s
    denominator gensim users know).
    """

    tokens: np.ndarray
    sentence: np.ndarray
    raw_tokens: int

    @classmethod
    def encode(cls, sentences: Sequence[Sequence[str]], vocab: Vocab) -> "EncodedCorpus":
        ids = [vocab.encode(s) for s in sentences]
        lengths = np.fromiter((len(x) for x in ids), dtype=np.int64, count=len(ids))
        tokens = np.concatenate(ids).astype(np.int32) if ids else np.zeros(0, np.int32)
        sentence = np.repeat(np.arange(len(ids), dtype=np.int32), lengths)
        return cls(tokens, sentence, raw_tokens=sum(len(s) for s in sentences))

    def __len__(self) -> int:
        return int(self.tokens.shape[0])


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
    """word2vec's probability of keeping each word's tokens; all ones when ``sample <= 0``."""
    counts = np.asarray(counts, dtype=np.float64)
    if sample <= 0:
        return np.ones_like(counts)
    threshold = sample * counts.sum()
    return np.minimum(1.0, (np.sqrt(counts / threshold) + 1.0) * threshold / counts)


def subsample(tokens: np.ndarray, sentence: np.ndarray, keep_prob: np.ndarray, rng: np.random.Generator):
    """Drop tokens at random with ``1 - keep_prob[word]``; returns the kept (tokens, sentence)."""
    keep = rng.random(tokens.shape[0]) < keep_prob[tokens]
    return tokens[keep], sentence[keep]


def window_contexts(
    tokens: np.ndarray, sentence: np.ndarray, window: int, rng: np.random.Generator
) -> np.ndarray:
    """Context ids of every position: int32 ``[T, 2 * window]``, ``-1`` for empty slots.

    Slot order is offsets ``-window..-1, +1..+window``. Position i uses offsets up to
    ``window - b_i`` with ``b_i ~ U{0, window-1}``, within its own sentence.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    T = tokens.shape[0]
    reach = window - rng.integers(0, window, size=T)  # (T,) in [1, window]
    offsets = [o for o in range(-window, window + 1) if o != 0]
    contexts = np.full((T, len(offsets)), -1, dtype=np.int32)
    pos = np.arange(T)
    for slot, o in enumerate(offsets):  # 2 * window vectorised passes, not one per token
        j = pos + o
        ok = (j >= 0) & (j < T) & (abs(o) <= reach)
        jj = np.clip(j, 0, T - 1)
        ok &= sentence[jj] == sentence
        contexts[ok, slot] = tokens[jj[ok]]
    return contexts


def epoch_examples(
    corpus: EncodedCorpus,
    keep_prob: np.ndarray,
    window: int,
    rng: np.random.Generator,
    chunk_tokens: int = 1 << 20,
) -> Iterator[Tuple[np.ndarray, np.ndarray, int]]:
    """Yield ``(centres[n], contexts[n, 2W], tokens)`` for one epoch, in corpus order, a chunk of
    whole sentences (about ``chunk_tokens`` tokens, before subsampling: ``tokens``) at a time;
    centres without any context are dropped.
    """
    T = len(corpus)
    start = 0
    while start < T:
        stop = min(T, start + chunk_tokens)
        if stop < T:  # extend to the end of the sentence so no window is cut
            sid = corpus.sentence[stop - 1]
            stop = int(np.searchsorted(corpus.sentence, sid, side="right"))
        tokens, sentence = subsample(corpus.tokens[start:stop], corpus.sentence[start:stop], keep_prob, rng)
        contexts = window_contexts(tokens, sentence, window, rng)
        has_context = (contexts >= 0).any(axis=1)
        yield tokens[has_context], contexts[has_context], stop - start
        start = stop
