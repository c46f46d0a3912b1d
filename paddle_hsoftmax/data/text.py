"""Plain-text corpus reader: one sentence per line, ``.gz`` accepted, two tokenizers.

``whitespace`` splits on runs of whitespace (pre-segmented text, English); ``char`` makes every
non-space character a token (unsegmented Chinese). A UTF-8 byte-order mark and Windows line
endings are accepted; bytes that are not UTF-8 raise :class:`CorpusError` naming the file and line.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Iterator, List, Union

from .datasets import CorpusError

__all__ = ["TOKENIZERS", "tokenize", "iter_sentences", "read_sentences"]

TOKENIZERS = ("whitespace", "char")


def tokenize(line: str, tokenizer: str) -> List[str]:
    """Split one line into tokens with ``tokenizer`` (``whitespace`` or ``char``)."""
    if tokenizer == "whitespace":
        return line.split()
    if tokenizer == "char":
        return [ch for ch in line if not ch.isspace()]
    raise ValueError(f"tokenizer must be one of {TOKENIZERS}, got {tokenizer!r}")


def _open_checked(path: Path):
    if not path.exists():
        raise CorpusError(f"{path}: no such file")
    if path.is_dir():
        raise CorpusError(f"{path}: is a directory, expected a text file")
    try:
        raw = open(path, "rb")
    except OSError as exc:
        raise CorpusError(f"{path}: cannot open ({exc.strerror})") from None
    if path.suffix == ".gz":
        raw = gzip.GzipFile(fileobj=raw)
    return raw


def iter_sentences(path: Union[str, os.PathLike], tokenizer: str = "whitespace") -> Iterator[List[str]]:
    """Yield the non-empty token lists of ``path``, one per line.

    Raises:
        CorpusError: missing file, directory, unreadable, broken gzip, or non-UTF-8 bytes
            (naming the line).
    """
    if tokenizer not in TOKENIZERS:
        raise ValueError(f"tokenizer must be one of {TOKENIZERS}, got {tokenizer!r}")
    path = Path(path)
    raw = _open_checked(path)
    with raw:
        lineno = 0
        try:
            for lineno, line_bytes in enumerate(raw, start=1):
                try:
                    line = line_bytes.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise CorpusError(
                        f"{path}:{lineno}: not UTF-8 text ({exc.reason} at byte {exc.start} of the line)"
                    ) from None
                if lineno == 1 and line.startswith("\ufeff"):
                    line = line[1:]
                tokens = tokenize(line, tokenizer)
                if tokens:
                    yield tokens
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise CorpusError(f"{path}:{lineno + 1}: cannot read ({exc})") from None


def read_sentences(path: Union[str, os.PathLike], tokenizer: str = "whitespace") -> List[List[str]]:
    """All sentences of ``path`` (see :func:`iter_sentences`); raises if there are none."""
    sentences = list(iter_sentences(path, tokenizer))
    if not sentences:
        raise CorpusError(f"{path}: the corpus is empty (no tokens)")
    return sentences
