"""Word-vector files that other tools read: word2vec text and binary formats (gensim loads both
with ``KeyedVectors.load_word2vec_format``), and the atomic writes every command uses.

Every file is written to a temporary name beside it (``NAME.tmp``), flushed, fsynced and renamed
over ``NAME``, and the directory is fsynced: a reader (or a run killed at any moment) sees the old
file or the new one, never a part of one. A write that fails removes its temporary file.
"""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path
from typing import IO, Iterator, Sequence, Union

import numpy as np

__all__ = ["write_word2vec_text", "write_word2vec_binary", "atomic_write_text", "atomic_open", "atomic_path",
           "fsync_directory"]

PathLike = Union[str, os.PathLike]


def fsync_directory(directory: PathLike) -> None:
    """Flush ``directory``'s entries (a rename inside it) to disk; a no-op where directories
    cannot be opened (Windows)."""
    try:
        fd = os.open(os.fspath(directory), os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on a directory: the rename is still atomic
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: PathLike, delay: float = 0.0) -> Iterator[Path]:
    """Yield ``path + ".tmp"`` for the caller to write (a writer that takes a path, such as
    ``paddle.save`` or ``np.savez``); on a clean exit fsync it, rename it over ``path`` and fsync
    the directory; on an exception (or a ``KeyboardInterrupt``) remove it and leave ``path`` as it
    was. The one home of the package's atomic writes (:func:`atomic_open` is built on it).

    ``delay`` (kill tests only) pauses that many seconds between the complete temporary file and
    the rename, so that a test can aim a kill inside the write (see
    :func:`paddle_hsoftmax.trainer.atomic_save`)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        if delay > 0:
            time.sleep(delay)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_directory(path.parent)


@contextlib.contextmanager
def atomic_open(path: PathLike, mode: str = "w", encoding: str = "utf-8") -> Iterator[IO]:
    """Open ``path + ".tmp"`` for writing (``mode`` ``"w"`` or ``"wb"``); on a clean exit flush,
    fsync, rename it over ``path`` and fsync the directory; on an exception (or a
    ``KeyboardInterrupt``) remove it and leave ``path`` as it was (see :func:`atomic_path`).

    Example::

        with atomic_open(run / "metrics.json") as f:
            json.dump(metrics, f)
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_open writes whole files: mode must be 'w' or 'wb', got {mode!r}")
    with atomic_path(path) as tmp:
        with open(tmp, mode, encoding=None if "b" in mode else encoding) as f:
            yield f
            f.flush()


def _check(words: Sequence[str], vectors: np.ndarray) -> None:
    if vectors.ndim != 2 or vectors.shape[0] != len(words):
        raise ValueError(f"{len(words)} words but vectors of shape {vectors.shape}")
    bad = [w for w in words if not w or any(ch.isspace() for ch in w)]
    if bad:
        raise ValueError(f"word2vec files cannot hold words with whitespace, e.g. {bad[0]!r}")


def write_word2vec_text(path: PathLike, words: Sequence[str], vectors: np.ndarray) -> None:
    """``V D`` header, then ``word v1 ... vD`` per line (float32 printed with 6 significant digits).

    Written 1,024 rows at a time: the rows become Python floats for ``%`` formatting (24 bytes
    each, plus their lists): all rows at once set the peak memory of a streaming word2vec run
    (measured at 29M tokens, 36k words: 249 MiB, 187 MiB in blocks)."""
    _check(words, vectors)
    data = np.asarray(vectors, dtype=np.float32)
    with atomic_open(path, "w") as f:
        f.write(f"{data.shape[0]} {data.shape[1]}\n")
        line_format = "%s " + " ".join(["%.6g"] * data.shape[1])
        for start in range(0, len(words), 1024):
            block = data[start : start + 1024].tolist()
            f.write("\n".join(line_format % (word, *row) for word, row in zip(words[start : start + 1024], block)))
            f.write("\n")


def write_word2vec_binary(path: PathLike, words: Sequence[str], vectors: np.ndarray) -> None:
    """word2vec.c's binary format: ``V D\\n`` then ``word<space>`` + D little-endian float32 + ``\\n``."""
    _check(words, vectors)
    data = np.asarray(vectors, dtype="<f4")
    with atomic_open(path, "wb") as f:
        f.write(f"{vectors.shape[0]} {vectors.shape[1]}\n".encode("utf-8"))
        for word, row in zip(words, data):
            f.write(word.encode("utf-8") + b" " + row.tobytes() + b"\n")


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (see :func:`atomic_open`)."""
    with atomic_open(path, "w") as f:
        f.write(text)
