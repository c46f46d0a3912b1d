"""word2vec vector files (text and binary), read with the same clear errors as every corpus.

Both formats start with a ``V D`` header line (V words, D dimensions). Then

- text (any name but ``*.bin``): V lines ``word x1 ... xD`` (space-separated; a trailing space,
  a UTF-8 byte-order mark and Windows line endings are accepted);
- binary (``*.bin``, word2vec.c and gensim ``binary=True``): V entries ``word<SPACE>`` followed by
  D little-endian float32 values (a newline before a word is skipped).

Nothing is allocated from the header alone: text rows are collected as they are read, and a
binary file's header is checked against the file's size first, so a corrupt or hostile header
(``1000000000000 300``) is refused instead of asking for terabytes. Every other
problem raises :class:`~paddle_hsoftmax.data.text.CorpusError` naming the file and the line (text)
or the entry and its byte offset (binary): a missing or malformed header (GloVe files have none),
a row with the wrong number of values, a value that is not a finite number, a word that is not
UTF-8, a file that ends early or has more rows than its header says.
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path
from typing import List, Tuple, Union

import numpy as np

from .text import CorpusError, check_readable_file, excerpt, iter_lines

__all__ = ["read_word2vec", "vectors_file"]

_MAX_WORD_BYTES = 4096  # a binary entry's word ends at a space within this many bytes


def vectors_file(path: Union[str, os.PathLike]) -> Path:
    """``path`` itself, or for a ``train.py word2vec`` run directory its ``vectors.bin`` (else
    ``vectors.txt``)."""
    path = Path(path)
    if path.is_dir():
        for name in ("vectors.bin", "vectors.txt"):
            if (path / name).exists():
                return path / name
        raise CorpusError(f"{path}: a directory without vectors.bin or vectors.txt")
    return path


def _header(path: Path, line: str) -> Tuple[int, int]:
    fields = line.split()
    if len(fields) != 2 or not all(f.isascii() and f.isdigit() for f in fields):
        hint = "; GloVe files have no header: add a first line 'V D'" if len(fields) > 2 else ""
        raise CorpusError(f"{path}:1: expected a 'V D' header (word2vec format), got {excerpt(line)}{hint}")
    V, D = int(fields[0]), int(fields[1])
    if V < 1 or D < 1:
        raise CorpusError(f"{path}:1: the header 'V D' needs V >= 1 words and D >= 1 dimensions, got {V} {D}")
    return V, D


def _check_size(path: Path, V: int, D: int, least_bytes_per_row: int) -> None:
    """Refuse a header that promises more rows than the file can hold (before allocating)."""
    if path.suffix == ".gz":
        return
    size = path.stat().st_size
    if V * least_bytes_per_row > size:
        raise CorpusError(f"{path}:1: the header promises {V:,} vectors of {D:,} values, at least "
                          f"{V * least_bytes_per_row:,} bytes, but the file has {size:,} bytes (truncated, or "
                          "not a word2vec file?)")


def _finite(path: Path, where: str, row: np.ndarray) -> np.ndarray:
    if not np.isfinite(row).all():
        bad = row[~np.isfinite(row)][0]
        raise CorpusError(f"{path}:{where}: the vector holds {bad} (values must be finite)")
    return row


def _read_text(path: Path) -> Tuple[List[str], np.ndarray]:
    lines = iter_lines(path)
    first = next(lines, None)
    if first is None:
        raise CorpusError(f"{path}: empty file, expected a 'V D' header")
    V, D = _header(path, first[1])  # rows are kept as they come: a lying V allocates nothing
    words: List[str] = []
    rows: List[np.ndarray] = []
    for lineno, line in lines:
        if not line.strip():
            continue
        if len(words) == V:
            raise CorpusError(f"{path}:{lineno}: more vectors than the header's {V:,}")
        parts = line.rstrip(" \t").split(" ")
        if len(parts) != D + 1:
            raise CorpusError(f"{path}:{lineno}: expected a word and {D} numbers, got {len(parts)} fields")
        try:
            row = np.asarray(parts[1:], dtype=np.float32)
        except ValueError:
            bad = next(p for p in parts[1:] if not _is_float(p))
            raise CorpusError(f"{path}:{lineno}: {excerpt(bad)} is not a number") from None
        words.append(parts[0])
        rows.append(_finite(path, str(lineno), row))
    if len(words) != V:
        raise CorpusError(f"{path}: the header promises {V:,} vectors, the file has {len(words):,}")
    return words, np.stack(rows)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_binary(path: Path) -> Tuple[List[str], np.ndarray]:
    with open(path, "rb") as f:
        head = f.readline(256)
        if not head:
            raise CorpusError(f"{path}: empty file, expected a 'V D' header")
        try:
            header = head.decode("ascii")
        except UnicodeDecodeError:
            raise CorpusError(f"{path}:1: expected a 'V D' header (word2vec format), got {head[:40]!r}") from None
        V, D = _header(path, header)
        _check_size(path, V, D, 4 * D + 2)
        start = len(head)
        size = os.fstat(f.fileno()).st_size
        if size == start:
            raise CorpusError(f"{path}: the header promises {V:,} vectors, the file has none")
        words: List[str] = []
        vectors = np.empty((V, D), dtype=np.float32)
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            pos = start
            for i in range(V):
                while pos < size and mm[pos] == 0x0A:  # word2vec.c ends each vector with a newline
                    pos += 1
                space = mm.find(b" ", pos, min(size, pos + _MAX_WORD_BYTES))
                if space < 0:
                    if size - pos < _MAX_WORD_BYTES:
                        raise CorpusError(f"{path}: the file ends inside word {i + 1:,} of {V:,} (byte {pos:,})")
                    raise CorpusError(f"{path}: no space after word {i + 1:,} within {_MAX_WORD_BYTES} bytes "
                                      f"(byte {pos:,}); not a word2vec binary file?")
                try:
                    words.append(mm[pos:space].decode("utf-8"))
                except UnicodeDecodeError as exc:
                    raise CorpusError(f"{path}: word {i + 1:,} (byte {pos:,}) is not UTF-8 ({exc.reason})") from None
                end = space + 1 + 4 * D
                if end > size:
                    raise CorpusError(f"{path}: the file ends inside vector {i + 1:,} of {V:,} (byte {space + 1:,})")
                vectors[i] = _finite(path, f"word {i + 1:,} ({excerpt(words[-1])})",
                                     np.frombuffer(mm, dtype="<f4", count=D, offset=space + 1))
                pos = end
            rest = mm[pos:].strip()
        if rest:
            raise CorpusError(f"{path}: {len(rest):,} bytes after the {V:,} vectors the header promises "
                              "(a text file named .bin?)")
    return words, vectors


def read_word2vec(path: Union[str, os.PathLike]) -> Tuple[List[str], np.ndarray]:
    """``(words, vectors float32 [V, D])`` from a word2vec text or binary file, or a run directory.

    Raises:
        CorpusError: naming the file and the line or entry of the problem (module docstring).
    """
    path = check_readable_file(vectors_file(path))
    if path.suffix == ".bin":
        return _read_binary(path)
    return _read_text(path)
