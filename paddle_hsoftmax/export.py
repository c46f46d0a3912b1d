"""Word-vector files that other tools read: word2vec text and binary formats (gensim loads both
with ``KeyedVectors.load_word2vec_format``). Every file is written to a temporary name, flushed
and renamed, so a killed run never leaves a half-written file under the final name."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence, Union

import numpy as np

__all__ = ["write_word2vec_text", "write_word2vec_binary", "atomic_write_text"]

PathLike = Union[str, os.PathLike]


def _check(words: Sequence[str], vectors: np.ndarray) -> None:
    if vectors.ndim != 2 or vectors.shape[0] != len(words):
        raise ValueError(f"{len(words)} words but vectors of shape {vectors.shape}")
    bad = [w for w in words if not w or any(ch.isspace() for ch in w)]
    if bad:
        raise ValueError(f"word2vec files cannot hold words with whitespace, e.g. {bad[0]!r}")


def _replace(tmp: Path, path: Path, f) -> None:
    f.flush()
    os.fsync(f.fileno())
    f.close()
    os.replace(tmp, path)


def write_word2vec_text(path: PathLike, words: Sequence[str], vectors: np.ndarray) -> None:
    """``V D`` header, then ``word v1 ... vD`` per line (float32 printed with 6 significant digits)."""
    _check(words, vectors)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    f = open(tmp, "w", encoding="utf-8")
    f.write(f"{vectors.shape[0]} {vectors.shape[1]}\n")
    row_format = " ".join(["%.6g"] * vectors.shape[1])
    for word, row in zip(words, np.asarray(vectors, dtype=np.float32).tolist()):
        f.write(word + " " + row_format % tuple(row) + "\n")
    _replace(tmp, path, f)


def write_word2vec_binary(path: PathLike, words: Sequence[str], vectors: np.ndarray) -> None:
    """word2vec.c's binary format: ``V D\\n`` then ``word<space>`` + D little-endian float32 + ``\\n``."""
    _check(words, vectors)
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    f = open(tmp, "wb")
    f.write(f"{vectors.shape[0]} {vectors.shape[1]}\n".encode("utf-8"))
    data = np.asarray(vectors, dtype="<f4")
    for word, row in zip(words, data):
        f.write(word.encode("utf-8") + b" " + row.tobytes() + b"\n")
    _replace(tmp, path, f)


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and rename."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    f = open(tmp, "w", encoding="utf-8")
    f.write(text)
    _replace(tmp, path, f)
