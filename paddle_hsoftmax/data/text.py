"""Plain-text corpus reader: one sentence per line, ``.gz`` accepted, two tokenizers.

``whitespace`` splits on runs of whitespace (pre-segmented text, English); ``char`` makes every
non-space character a token (unsegmented Chinese). A UTF-8 byte-order mark and Windows line
endings are accepted; bytes that are not UTF-8 raise :class:`CorpusError` naming the file and line.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Iterator, List, Tuple, Union


__all__ = ["CorpusError", "TOKENIZERS", "tokenize", "iter_lines", "iter_sentences", "read_sentences"]


class CorpusError(ValueError):
    """A corpus file that cannot be read; the message names the file, the line and the problem."""

TOKENIZERS = ("whitespace", "char")


def tokenize(line: str, tokenizer: str) -> List[str]:
    """Split one line into tokens with ``tokenizer`` (``whitespace`` or ``char``)."""
    if tokenizer == "whitespace":
        return line.split()
    if tokenizer == "char":
        return [ch for ch in line if not ch.isspace()]
    raise ValueError(f"tokenizer must be one of {TOKENIZERS}, got {tokenizer!r}")


def iter_lines(path: Union[str, os.PathLike]) -> Iterator[Tuple[int, str]]:
    """``(line number, text)`` for every line of a UTF-8 file (``.gz`` read as gzip), without the
    line ending; a byte-order mark is dropped. Every reader of the package goes through here.

    Raises:
        CorpusError: missing file, directory, unreadable, broken gzip, or non-UTF-8 bytes (naming
            the line).
    """
    path = Path(path)
    if not path.exists():
        raise CorpusError(f"{path}: no such file")
    if path.is_dir():
        raise CorpusError(f"{path}: is a directory, expected a text file")
    lineno = 0
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as raw:
            for lineno, line_bytes in enumerate(raw, start=1):
                try:
                    line = line_bytes.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise CorpusError(
                        f"{path}:{lineno}: not UTF-8 text ({exc.reason} at byte {exc.start} of the line)"
                    ) from None
                if lineno == 1:
                    line = line.lstrip("\ufeff")
                yield lineno, line.rstrip("\r\n")
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise CorpusError(f"{path}:{lineno + 1}: cannot read ({exc})") from None


def iter_sentences(path: Union[str, os.PathLike], tokenizer: str = "whitespace") -> Iterator[List[str]]:
    """Yield the non-empty token lists of ``path``, one per line (errors: see :func:`iter_lines`)."""
    if tokenizer not in TOKENIZERS:
        raise ValueError(f"tokenizer must be one of {TOKENIZERS}, got {tokenizer!r}")
    for _, line in iter_lines(path):
        tokens = tokenize(line, tokenizer)
        if tokens:
            yield tokens


def read_sentences(path: Union[str, os.PathLike], tokenizer: str = "whitespace") -> List[List[str]]:
    """All sentences of ``path`` (see :func:`iter_sentences`); raises if there are none."""
    sentences = list(iter_sentences(path, tokenizer))
    if not sentences:
        raise CorpusError(f"{path}: the corpus is empty (no tokens)")
    return sentences
