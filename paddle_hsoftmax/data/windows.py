"""word2vec's training examples, built with vectorised NumPy (no Python loop per token).

Mikolov et al. 2013 (word2vec.c), as gensim reproduces it:

- **subsampling** of frequent words: a token of word w with count c is kept with probability
  ``min(1, (sqrt(c / t) + 1) * t / c)`` where ``t = sample * (sum of kept-vocabulary counts)``;
  dropped tokens are removed before windows are formed, so windows reach further;
- **dynamic window**: each centre draws ``b`` uniformly from ``[0, window-1]`` and uses the
  ``window - b`` words on each side (nearer words are used more often);
- windows never cross a sentence boundary;
- **negative sampling** draws from the unigram distribution raised to 0.75
  (:func:`unigram_table`).

An :class:`EncodedCorpus` is the corpus as one int32 *stream* of word ids with ``-1`` after each
sentence, held in memory or in a file (``corpus.ids`` in a word2vec run directory: 4 bytes per
token, read a piece at a time, so memory depends on the vocabulary, not on the corpus). Each
epoch's examples are ``(centres[N], contexts[N, 2 * window])`` with ``-1`` where a context slot is
empty; the fused kernel instead takes the stream's pieces and draws subsampling and windows itself.
"""

from __future__ import annotations

import collections
import hashlib
import itertools
import os
from pathlib import Path
from typing import Any, BinaryIO, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

import numpy as np

from .text import CorpusError
from .vocab import Vocab

__all__ = ["EncodedCorpus", "MAX_SENTENCE", "keep_probabilities", "subsample", "window_contexts", "epoch_examples",
           "split_stream", "unigram_table", "file_sha256"]


MAX_SENTENCE = 10_000  # longer sentences are cut into pieces of this many words (gensim's limit)
ENCODE_BLOCK = 1 << 20  # stream entries per block of the one-pass encoder (4 MiB of int32)


def _file_stamp(path: Path) -> Dict[str, int]:
    st = path.stat()
    return {"size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns)}


def file_sha256(path: Union[str, os.PathLike]) -> str:
    """The sha256 of a file's bytes (read 1 MiB at a time)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class _StreamWriter:
    """Collects encoded sentences into int32 blocks (each sentence followed by -1), written to
    ``out`` (a binary file) or kept in memory when ``out`` is None."""

    def __init__(self, out: Optional[BinaryIO] = None, block: int = 1 << 20) -> None:
        self.out, self.block = out, block
        self.pending: List[np.ndarray] = []
        self.pending_len = 0
        self.kept: List[np.ndarray] = []
        self.length = self.tokens = self.sentences = 0

    def add(self, ids: np.ndarray) -> None:
        for i in range(0, len(ids), MAX_SENTENCE):
            piece = ids[i : i + MAX_SENTENCE]
            self.pending.append(piece)
            self.pending.append(_SEP)
            self.pending_len += len(piece) + 1
            self.tokens += len(piece)
            self.sentences += 1
        if self.pending_len >= self.block:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        data = np.concatenate(self.pending).astype(np.int32, copy=False)
        self.pending, self.pending_len = [], 0
        self.length += len(data)
        if self.out is None:
            self.kept.append(data)
        else:
            data.tofile(self.out)

    def array(self) -> np.ndarray:
        self.flush()
        return np.concatenate(self.kept) if self.kept else np.zeros(0, np.int32)


_SEP = np.array([-1], dtype=np.int32)


class EncodedCorpus:
    """A corpus as word ids: an int32 stream with ``-1`` after each sentence, in memory
    (``stream``) or in a file (``path``, 4 bytes per entry, read a piece at a time).

    Attributes:
        raw_tokens: every token of the text, out-of-vocabulary ones included (the words/s
            denominator gensim users know).
        num_tokens: the in-vocabulary tokens (``len(corpus)``); num_sentences: sentences (after
            cutting at ``MAX_SENTENCE``); length: stream entries (tokens + sentence ends).
        source: the text file it was encoded from and its size and modification time then
            (``{"path", "size", "mtime_ns", "sha256"}``), or None (encoded from a list):
            :meth:`check_source` compares them with the file now.
    """

    def __init__(self, stream: Optional[np.ndarray], raw_tokens: int, path: Optional[Path] = None,
                 length: Optional[int] = None, num_tokens: Optional[int] = None, num_sentences: Optional[int] = None,
                 source: Optional[Dict[str, Any]] = None) -> None:
        if (stream is None) == (path is None):
            raise ValueError("give the stream or the path of its file")
        self.stream = None if stream is None else np.ascontiguousarray(stream, dtype=np.int32)
        self.path = None if path is None else Path(path)
        self.raw_tokens = int(raw_tokens)
        self.length = int(len(self.stream) if stream is not None else length)
        if num_tokens is None:
            seps = int((self.stream == -1).sum())
            num_tokens, num_sentences = self.length - seps, seps
        self.num_tokens, self.num_sentences = int(num_tokens), int(num_sentences)
        self.source = source

    @classmethod
    def encode(cls, sentences: Iterable[Sequence[str]], vocab: Vocab) -> "EncodedCorpus":
        """Encode in memory (out-of-vocabulary tokens dropped)."""
        writer, raw = _StreamWriter(), 0
        for s in sentences:
            raw += len(s)
            ids = vocab.encode(s)
            if len(ids):
                writer.add(ids)
        return cls(writer.array(), raw_tokens=raw)

    @classmethod
    def encode_to_file(cls, sentences: Iterable[Sequence[str]], vocab: Vocab, path: Union[str, os.PathLike],
                       source: Optional[Union[str, os.PathLike]] = None) -> "EncodedCorpus":
        """Encode into the file ``path`` (written block by block: memory stays a few MiB);
        ``source``: the text file the sentences come from (stamped, see :meth:`check_source`)."""
        path = Path(path)
        stamp = None
        if source is not None and Path(source).is_file():
            stamp = {"path": str(source), **_file_stamp(Path(source))}
        raw = 0
        with open(path, "wb") as f:
            writer = _StreamWriter(f)
            for s in sentences:
                raw += len(s)
                ids = vocab.encode(s)
                if len(ids):
                    writer.add(ids)
            writer.flush()
        if stamp is not None:
            stamp["sha256"] = file_sha256(source)
            if _file_stamp(Path(source)) != {k: stamp[k] for k in ("size", "mtime_ns")}:
                raise CorpusError(f"{source}: the corpus file changed while it was being read; run again "
                                  "once it is complete")
        return cls(None, raw_tokens=raw, path=path, length=writer.length, num_tokens=writer.tokens,
                   num_sentences=writer.sentences, source=stamp)

    @classmethod
    def count_and_encode_to_file(cls, sentences: Iterable[Sequence[str]], path: Union[str, os.PathLike],
                                 min_count: int = 5, max_vocab: Optional[int] = None, source_name: str = "corpus",
                                 source: Optional[Union[str, os.PathLike]] = None) -> Tuple[Vocab, "EncodedCorpus"]:
        """``(vocabulary, corpus)`` from ONE pass over the text: the same as :meth:`Vocab.build`
        then :meth:`encode_to_file` (tested equal), without reading and splitting the text twice.

        How: every distinct token gets a provisional id in order of first appearance (the order
        that breaks ties between equal counts) and the provisional stream goes to a file beside
        ``path``; its counts are the ids' ``bincount``; once the vocabulary is known, the
        provisional stream is mapped to the final ids in blocks of NumPy (out-of-vocabulary tokens
        dropped, sentences left empty dropped, long ones cut at :data:`MAX_SENTENCE`). Measured
        on a 29.2M-token English text (gensim's English set 57 times): 11.9 s, peak RSS 93 MiB.
        Memory: the distinct words and a block of ids.
        """
        path = Path(path)
        stamp = None
        if source is not None and Path(source).is_file():
            stamp = {"path": str(source), **_file_stamp(Path(source))}
        provisional = path.with_name(path.name + ".first")
        # a new word gets the next provisional id inside the dict lookup (C speed: 2x setdefault's)
        index: Dict[str, int] = collections.defaultdict(itertools.count().__next__)
        counts = np.zeros(0, dtype=np.int64)
        raw = 0
        try:
            with open(provisional, "wb") as f:
                pending: List[np.ndarray] = []
                pending_len = 0
                for s in sentences:
                    if not s:
                        continue
                    raw += len(s)
                    pending.append(np.fromiter(map(index.__getitem__, s), dtype=np.int32, count=len(s)))
                    pending.append(_SEP)
                    pending_len += len(s) + 1
                    if pending_len >= ENCODE_BLOCK:
                        counts = _write_counted(pending, f, counts)
                        pending, pending_len = [], 0
                counts = _write_counted(pending, f, counts)
            counts = np.pad(counts, (0, len(index) - len(counts)))
            vocab = Vocab.from_counts(dict(zip(index, counts.tolist())), raw, min_count=min_count,
                                      max_vocab=max_vocab, source=source_name)
            final = np.full(len(index) + 1, -1, dtype=np.int32)  # provisional id -> final id (-1: dropped)
            final[np.fromiter((index[w] for w in vocab.words), dtype=np.int64, count=len(vocab))] = np.arange(
                len(vocab), dtype=np.int32)
            final[-1] = -2  # a provisional sentence end (-1 reads final[-1])
            del index
            length = tokens = sents = 0
            with open(provisional, "rb") as f, open(path, "wb") as out:
                carry = np.zeros(0, dtype=np.int32)
                while True:
                    block = np.fromfile(f, dtype=np.int32, count=ENCODE_BLOCK)
                    if len(block) == 0:
                        if len(carry):  # every provisional sentence ends with -1: cannot happen
                            raise RuntimeError(f"{provisional}: the provisional stream ends inside a sentence")
                        break
                    block = np.concatenate([carry, block]) if len(carry) else block
                    ends = np.flatnonzero(block == -1)
                    if len(ends) == 0:  # a sentence longer than the block: read on
                        carry = block
                        continue
                    whole, carry = block[: ends[-1] + 1], block[ends[-1] + 1 :]
                    stream, n_tokens, n_sentences = _final_stream(final[whole])
                    stream.tofile(out)
                    length, tokens, sents = length + len(stream), tokens + n_tokens, sents + n_sentences
        finally:
            provisional.unlink(missing_ok=True)
        if stamp is not None:
            stamp["sha256"] = file_sha256(source)
            if _file_stamp(Path(source)) != {k: stamp[k] for k in ("size", "mtime_ns")}:
                raise CorpusError(f"{source}: the corpus file changed while it was being read; run again "
                                  "once it is complete")
        return vocab, cls(None, raw_tokens=raw, path=path, length=length, num_tokens=tokens, num_sentences=sents,
                          source=stamp)

    def meta(self) -> Dict[str, Any]:
        """What :meth:`from_meta` needs to open the file again (``corpus.json``)."""
        return {"raw_tokens": self.raw_tokens, "length": self.length, "num_tokens": self.num_tokens,
                "num_sentences": self.num_sentences, "source": self.source}

    @classmethod
    def from_meta(cls, path: Union[str, os.PathLike], meta: Dict[str, Any]) -> "EncodedCorpus":
        path = Path(path)
        if not path.is_file() or path.stat().st_size != 4 * int(meta["length"]):
            raise CorpusError(f"{path}: missing or truncated token-id file")
        return cls(None, raw_tokens=meta["raw_tokens"], path=path, length=meta["length"],
                   num_tokens=meta["num_tokens"], num_sentences=meta["num_sentences"], source=meta.get("source"))

    def check_source(self, what: str = "during training") -> None:
        """Raise :class:`CorpusError` naming the text file if its size or modification time
        differ from when it was encoded, or if the token-id file lost bytes."""
        if self.path is not None and (not self.path.is_file() or self.path.stat().st_size != 4 * self.length):
            raise CorpusError(f"{self.path}: the token-id file of this run was removed or changed {what}")
        if not self.source:
            return
        src = Path(self.source["path"])
        try:
            now = _file_stamp(src)
        except OSError:
            raise CorpusError(f"{src}: the corpus file disappeared {what}") from None
        if now["size"] != self.source["size"] or now["mtime_ns"] != self.source["mtime_ns"]:
            raise CorpusError(f"{src}: the corpus file changed {what} (size {self.source['size']:,} -> "
                              f"{now['size']:,} bytes, or its modification time)")

    def __len__(self) -> int:
        return self.num_tokens

    def read(self, start: int, stop: int) -> np.ndarray:
        """Stream entries ``[start, stop)`` (a copy when read from the file)."""
        stop = min(stop, self.length)
        if stop <= start:
            return np.zeros(0, np.int32)
        if self.stream is not None:
            return self.stream[start:stop]
        with open(self.path, "rb") as f:
            f.seek(4 * start)
            return np.fromfile(f, dtype=np.int32, count=stop - start)

    def chunks(self, size: int) -> Iterator[np.ndarray]:
        """The stream in pieces of about ``size`` entries, each ending with a sentence's end."""
        pos, size = 0, max(1, int(size))
        while pos < self.length:
            stop = min(self.length, pos + size)
            block = self.read(pos, stop)
            while stop < self.length and block[-1] != -1:  # extend to the end of the sentence
                more = self.read(stop, stop + MAX_SENTENCE + 1)
                ends = np.flatnonzero(more == -1)
                take = int(ends[0]) + 1 if len(ends) else len(more)
                block = np.concatenate([block, more[:take]])
                stop += take
            yield block
            pos = stop

    def head(self, tokens: int) -> Tuple[np.ndarray, np.ndarray]:
        """``(tokens, sentence ids)`` of the first ``tokens`` in-vocabulary tokens."""
        block = self.read(0, min(self.length, tokens + tokens // 2 + MAX_SENTENCE))
        ids, sentence = split_stream(block)
        return ids[:tokens], sentence[:tokens]

    @property
    def tokens(self) -> np.ndarray:
        """All in-vocabulary token ids, int32 ``[num_tokens]`` (reads the whole stream)."""
        return split_stream(self.read(0, self.length))[0]

    @property
    def sentence(self) -> np.ndarray:
        """The sentence id of every token, int32 ``[num_tokens]`` (reads the whole stream)."""
        return split_stream(self.read(0, self.length))[1]


def _write_counted(pending: List[np.ndarray], f: BinaryIO, counts: np.ndarray) -> np.ndarray:
    """Write a block of provisional ids (-1 after each sentence) and add it to ``counts``."""
    if not pending:
        return counts
    data = np.concatenate(pending)
    data.tofile(f)
    ids = data[data >= 0]
    if len(ids) == 0:
        return counts
    new = np.bincount(ids)
    if len(new) > len(counts):
        counts = np.pad(counts, (0, len(new) - len(counts)))
    counts[: len(new)] += new
    return counts


def _final_stream(mapped: np.ndarray) -> Tuple[np.ndarray, int, int]:
    """Whole provisional sentences mapped to final ids (-1 = dropped token, -2 = sentence end)
    as the stream :class:`_StreamWriter` writes: in-vocabulary ids, cut into pieces of at most
    :data:`MAX_SENTENCE`, each followed by -1; sentences left empty vanish. Returns ``(stream,
    tokens, sentences)``."""
    kept = mapped[mapped != -1]
    is_token = kept >= 0
    tok = kept[is_token]
    if len(tok) == 0:
        return np.zeros(0, np.int32), 0, 0
    # each token's position in its sentence (int32 throughout: a block's temporaries stay small)
    sentence = np.cumsum(~is_token, dtype=np.int32)[is_token]  # (tokens,) sentence number of each token
    new_sentence = np.empty(len(tok), dtype=bool)
    new_sentence[0], new_sentence[1:] = True, sentence[1:] != sentence[:-1]
    del sentence
    seen = np.arange(len(tok), dtype=np.int32)
    starts = np.flatnonzero(new_sentence).astype(np.int32)  # first token of each sentence
    position = seen - np.repeat(starts, np.diff(np.append(starts, np.int32(len(tok)))))
    ends = np.empty(len(tok), dtype=bool)  # the last token of its sentence, or of a MAX_SENTENCE piece
    ends[:-1], ends[-1] = new_sentence[1:], True
    ends |= position % MAX_SENTENCE == MAX_SENTENCE - 1
    del position, new_sentence
    stream = np.full(len(tok) + int(ends.sum()), -1, dtype=np.int32)
    seen += np.cumsum(ends, dtype=np.int32)
    seen -= ends
    stream[seen] = tok
    return stream, len(tok), int(ends.sum())


def split_stream(block: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """A stream piece as ``(token ids, sentence ids)``, both int32."""
    seps = block < 0
    sentence = np.cumsum(seps, dtype=np.int64)[~seps].astype(np.int32)
    return block[~seps], sentence


def unigram_table(counts: np.ndarray, power: float = 0.75, size: Optional[int] = None) -> np.ndarray:
    """word2vec.c's negative-sampling table: int32 word ids, word w filling a share
    ``counts[w]**power / sum(counts**power)`` of the slots, so a uniform slot is a draw from the
    smoothed unigram distribution. ``size`` defaults to 100 slots per word, between 1e6 and 1e8
    (word2vec.c: 1e8; each word gets at least one slot)."""
    counts = np.asarray(counts, dtype=np.float64)
    V = len(counts)
    if size is None:
        size = int(min(1e8, max(1e6, 100 * V)))
    p = counts**power
    cum = np.cumsum(p / p.sum())
    table = np.searchsorted(cum, (np.arange(size, dtype=np.float64) + 0.5) / size, side="right")
    table = np.minimum(table, V - 1).astype(np.int32)
    missing = np.setdiff1d(np.arange(V), table)  # a word too rare for a slot gets one
    if len(missing):
        table = np.concatenate([table, missing.astype(np.int32)])
    return table


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
    """Yield ``(centres[n], contexts[n, 2W], tokens)`` for one epoch, in corpus order, a piece of
    whole sentences (about ``chunk_tokens`` stream entries; ``tokens`` in-vocabulary tokens before
    subsampling) at a time; centres without any context are dropped.
    """
    for block in corpus.chunks(chunk_tokens):
        ids, sentence = split_stream(block)
        tokens, sentence = subsample(ids, sentence, keep_prob, rng)
        contexts = window_contexts(tokens, sentence, window, rng)
        has_context = (contexts >= 0).any(axis=1)
        yield tokens[has_context], contexts[has_context], len(ids)
