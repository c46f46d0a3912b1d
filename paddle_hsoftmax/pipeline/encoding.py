"""Special tokens, padding and the vocabularies with ``<unk>`` and ``</s>``: the encoding shared by
the language model, the encoder-decoder, the classifier and the tagger (at training time and when a
finished run is loaded).

- :func:`pad`: ragged id rows -> ``[B, T]`` ids padded with 0 and ``[B]`` lengths.
- :func:`teacher_forcing`: target rows ending with ``</s>`` -> decoder inputs and targets ``[B, T]``.
- :func:`lm_vocab`, :func:`encode_stream`, :func:`batchify`: a language model's (or a decoder's)
  vocabulary, its token stream and the stream's ``[B, n]`` columns.
- :func:`token_ngrams`, :class:`NgramIndex`: the classifier's bag of token 1..n-grams (a text's
  distinct n-grams seen in training, as ids; ``ngrams.txt`` of a run).
"""

from __future__ import annotations

import os
from typing import Dict, Iterable, List, Sequence, Tuple, Union

import numpy as np

from ..data.text import CorpusError
from ..data.text import iter_lines
from ..data.vocab import Vocab, count_tokens
from ..export import atomic_write_text

__all__ = ["UNK", "EOS", "IGNORE", "pad", "pad_copy_ids", "teacher_forcing", "lm_vocab", "encode_stream", "batchify",
           "token_ngrams", "NgramIndex"]

UNK, EOS = "<unk>", "</s>"
IGNORE = -100  # target padding: the output layers' ignore_index


def pad(sequences: Sequence[np.ndarray]) -> Tuple[np.ndarray, np.ndarray]:
    """``[B, T]`` ids padded with 0 and ``[B]`` lengths."""
    lengths = np.fromiter((len(s) for s in sequences), dtype=np.int64, count=len(sequences))
    out = np.zeros((len(sequences), max(int(lengths.max()), 1)), dtype=np.int64)  # (B, T)
    for i, s in enumerate(sequences):
        out[i, : len(s)] = s
    return out, lengths


def pad_copy_ids(rows: Sequence[np.ndarray], width: int) -> np.ndarray:
    """``[B, width]`` copy ids padded with -1."""
    out = np.full((len(rows), width), -1, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


def teacher_forcing(targets: Sequence[np.ndarray], bos_id: int, eos_id: int) -> Tuple[np.ndarray, np.ndarray]:
    """``(decoder inputs [B, T], targets [B, T])`` for target id rows that end with ``</s>``:
    inputs are ``<s>`` and the words, targets the words and ``</s>`` padded with ``IGNORE`` (the
    inputs' padding, ``</s>``, is never read by a kept position)."""
    T = max(len(t) for t in targets)
    gold = np.full((len(targets), T), IGNORE, dtype=np.int64)
    inputs = np.full((len(targets), T), eos_id, dtype=np.int64)
    inputs[:, 0] = bos_id
    for row, t in enumerate(targets):
        gold[row, : len(t)] = t
        inputs[row, 1 : len(t)] = t[:-1]
    return inputs, gold


def lm_vocab(train: Sequence[Sequence[str]], min_count: int) -> Vocab:
    """Words of the training split with ``count >= min_count``, plus ``<unk>`` (the rest) and
    ``</s>`` (one per sentence), all sorted by count."""
    counts, _ = count_tokens(train)
    kept = {w for w, c in counts.items() if c >= min_count}
    vocab = Vocab.build(([w if w in kept else UNK for w in s] + [EOS] for s in train), min_count=1,
                        source="training split")
    if UNK not in vocab:  # no rare training word: <unk> still exists (count 1) for unseen words
        vocab = Vocab(vocab.words + [UNK], vocab.counts.tolist() + [1], vocab.total_tokens)
    return vocab


def encode_stream(sentences: Sequence[Sequence[str]], vocab: Vocab) -> np.ndarray:
    """One int64 stream of ids, ``</s>`` after each sentence, unknown words as ``<unk>``."""
    index, unk, eos = vocab.index, vocab.index[UNK], vocab.index[EOS]
    out: List[int] = []
    for s in sentences:
        out.extend(index.get(w, unk) for w in s)
        out.append(eos)
    return np.asarray(out, dtype=np.int64)


def batchify(stream: np.ndarray, batch_size: int) -> np.ndarray:
    """``[batch_size, n]``: the stream cut into ``batch_size`` contiguous columns (the tail that
    does not fill a column is dropped; fewer than ``batch_size * 2`` tokens is a
    :class:`~paddle_hsoftmax.data.text.CorpusError`)."""
    n = len(stream) // batch_size
    if n < 2:
        raise CorpusError(f"{len(stream)} tokens cannot fill {batch_size} columns of at least 2 tokens")
    return stream[: n * batch_size].reshape(batch_size, n)


def token_ngrams(tokens: Sequence[str], order: int) -> List[str]:
    """The distinct 1..``order``-grams of ``tokens`` (joined by a space, which no token holds), in
    order of first appearance.

    >>> token_ngrams(["a", "b", "a", "b"], 2)
    ['a', 'b', 'a b', 'b a']
    """
    grams = dict.fromkeys(tokens)
    for n in range(2, order + 1):
        grams.update(dict.fromkeys(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)))
    return list(grams)


def word_char_ngrams(tokens: Sequence[str], longest: int) -> List[str]:
    """The distinct character 2..``longest``-grams of each token written ``<token>`` (fastText's
    subwords, Bojanowski et al. 2017), each with a leading space so that it can never equal a
    token n-gram of :func:`token_ngrams` (tokens hold no white space), in order of first appearance.

    >>> word_char_ngrams(["ab"], 3)
    [' <a', ' ab', ' b>', ' <ab', ' ab>']
    """
    grams: Dict[str, None] = {}
    for token in tokens:
        word = f"<{token}>"
        for n in range(2, longest + 1):
            grams.update(dict.fromkeys(" " + word[i : i + n] for i in range(len(word) - n + 1)))
    return list(grams)


class NgramIndex:
    """N-gram -> id for the classifier's bag of n-grams: id 0 = padding (and every n-gram not seen
    in training, which the bag simply leaves out), then the training n-grams by decreasing count.

    A text's n-grams are its distinct token 1..``order``-grams (:func:`token_ngrams`) and, with
    ``chars`` > 0, its words' character 2..``chars``-grams (:func:`word_char_ngrams`): with word
    tokens, the inflections, misspellings and punctuation glued to words that whole-word n-grams
    cannot share (measured on English review snippets: README, "Text classifier")."""

    PAD = 0

    def __init__(self, grams: Sequence[str], order: int, chars: int = 0) -> None:
        self.order = int(order)
        self.chars = int(chars)
        self.grams: List[str] = ["<pad>"] + list(grams)
        self.index: Dict[str, int] = {g: i for i, g in enumerate(self.grams) if i}

    def __len__(self) -> int:
        return len(self.grams)

    def features(self, tokens: Sequence[str]) -> List[str]:
        """The distinct n-grams of one text (known or not)."""
        grams = token_ngrams(tokens, self.order)
        return grams + word_char_ngrams(tokens, self.chars) if self.chars else grams

    @classmethod
    def build(cls, texts: Iterable[Sequence[str]], order: int, min_count: int = 1, chars: int = 0) -> "NgramIndex":
        counts: Dict[str, int] = {}
        features = cls((), order, chars).features
        for tokens in texts:
            for g in features(tokens):
                counts[g] = counts.get(g, 0) + 1
        first = {g: i for i, g in enumerate(counts)}
        kept = sorted((g for g, c in counts.items() if c >= min_count), key=lambda g: (-counts[g], first[g]))
        return cls(kept, order, chars)

    def encode(self, tokens: Sequence[str]) -> np.ndarray:
        """Ids of the distinct known n-grams of ``tokens`` (possibly none)."""
        index = self.index
        ids = [index.get(g, 0) for g in self.features(tokens)]
        return np.asarray([i for i in ids if i], dtype=np.int64)

    def save(self, path: Union[str, os.PathLike]) -> None:
        """First line ``order N`` (``order N chars M`` with character n-grams), then one n-gram per
        line in id order from id 1 (atomic write)."""
        head = f"order {self.order}" + (f" chars {self.chars}" if self.chars else "")
        atomic_write_text(path, head + "\n" + "".join(g + "\n" for g in self.grams[1:]))

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "NgramIndex":
        lines = [line for _, line in iter_lines(path)]
        head = lines[0].split() if lines else []
        if (len(head) not in (2, 4) or head[0] != "order" or not head[1].isdigit()
                or (len(head) == 4 and (head[2] != "chars" or not head[3].isdigit()))):
            raise CorpusError(f"{path}:1: not an n-gram index (must start with 'order N' or 'order N chars M')")
        return cls(lines[1:], int(head[1]), int(head[3]) if len(head) == 4 else 0)
