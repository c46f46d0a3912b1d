"""Labelled text files users already have: classification TSV / fastText, read with clear errors.

- TSV: ``label<TAB>text`` per line.
- fastText: ``__label__x text`` per line.
``fmt="auto"`` looks at the first non-empty line. Every malformed line raises :class:`CorpusError`
naming the file and the line; a UTF-8 BOM and Windows line endings are accepted.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Tuple, Union

from .text import CorpusError, excerpt, iter_lines

__all__ = ["CLASSIFICATION_FORMATS", "read_classification"]

CLASSIFICATION_FORMATS = ("auto", "tsv", "fasttext")
_FT = "__label__"


def read_classification(path: Union[str, os.PathLike], fmt: str = "auto") -> List[Tuple[str, str]]:
    """``[(label, text), ...]`` from a TSV or fastText file (blank lines skipped)."""
    if fmt not in CLASSIFICATION_FORMATS:
        raise ValueError(f"format must be one of {CLASSIFICATION_FORMATS}, got {fmt!r}")
    path = Path(path)
    items: List[Tuple[str, str]] = []
    for lineno, line in iter_lines(path):
        if not line.strip():
            continue
        if fmt == "auto":
            fmt = "fasttext" if line.startswith(_FT) else "tsv"
        if fmt == "fasttext":
            head, _, text = line.partition(" ")
            if not head.startswith(_FT) or len(head) == len(_FT):
                raise CorpusError(f"{path}:{lineno}: expected '__label__NAME text', got {excerpt(line)}")
            if text.lstrip().startswith(_FT):
                raise CorpusError(f"{path}:{lineno}: several labels on one line (multi-label) are not supported")
            label = head[len(_FT):]
        else:
            label, tab, text = line.partition("\t")
            if not tab:
                raise CorpusError(f"{path}:{lineno}: expected 'label<TAB>text', found no tab in {excerpt(line)}")
            label = label.strip()
            if not label:
                raise CorpusError(f"{path}:{lineno}: empty label")
        if not text.strip():
            raise CorpusError(f"{path}:{lineno}: label {excerpt(label)} has no text")
        items.append((label, text.strip()))
    if not items:
        raise CorpusError(f"{path}: no labelled lines")
    return items
