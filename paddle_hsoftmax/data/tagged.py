"""Tagged-sentence files for sequence labelling: CoNLL two-column and ``word/TAG`` lines.

- ``conll``: ``token<TAB>tag`` per line, a blank line between sentences (spaces instead of the tab
  are accepted when the line has exactly two fields);
- ``wordtag``: one sentence per line of ``word/TAG`` tokens (People's Daily).
``fmt="auto"`` decides from the first non-empty line. A malformed line raises
:class:`CorpusError` naming the file, the line and the problem; so does a sentence longer than
:data:`MAX_SENTENCE_TOKENS` (a tagger pads every batch to its longest sentence, so one runaway
line, such as a whole file without sentence breaks, would cost memory for the entire batch).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import List, Tuple, Union

from .text import CorpusError, excerpt, iter_lines

__all__ = ["TAGGED_FORMATS", "MAX_SENTENCE_TOKENS", "read_tagged"]

TAGGED_FORMATS = ("auto", "conll", "wordtag")
# People's Daily's longest sentence has 659 words (1,019 characters); CoNLL sets are shorter
MAX_SENTENCE_TOKENS = 10_000
Sentence = Tuple[List[str], List[str]]


def _detect(line: str) -> str:
    if "\t" in line or len(line.split()) == 2 and "/" not in line:
        return "conll"
    return "wordtag"


def _too_long(path: Path, lineno: int, n: int, fmt: str) -> CorpusError:
    where = "sentence (no blank line for a long stretch?)" if fmt == "conll" else f"line of {n:,} tokens"
    return CorpusError(f"{path}:{lineno}: {where}: sentences are limited to {MAX_SENTENCE_TOKENS:,} tokens; split it")


def read_tagged(path: Union[str, os.PathLike], fmt: str = "auto") -> List[Sentence]:
    """``[(tokens, tags), ...]`` from a CoNLL or word/TAG file.

    Raises:
        CorpusError: naming the file and line of a malformed line (not two columns, an empty
            token or tag, a token without ``/TAG``), a sentence over :data:`MAX_SENTENCE_TOKENS`,
            or a file with no sentences.
    """
    if fmt not in TAGGED_FORMATS:
        raise ValueError(f"format must be one of {TAGGED_FORMATS}, got {fmt!r}")
    path = Path(path)
    sentences: List[Sentence] = []
    tokens: List[str] = []
    tags: List[str] = []
    for lineno, line in iter_lines(path):
        if fmt == "auto":
            if not line.strip():
                continue
            fmt = _detect(line)
        if fmt == "conll":
            if not line.strip():
                if tokens:
                    sentences.append((tokens, tags))
                    tokens, tags = [], []
                continue
            fields = line.split("\t") if "\t" in line else line.split()
            if len(fields) != 2:
                hint = " (CoNLL-2003 style? keep the token and the tag column: cut -f1,4)" if len(fields) > 2 else ""
                raise CorpusError(f"{path}:{lineno}: expected 2 columns (token, tag), got {len(fields)}{hint}")
            token, tag = fields[0].strip(), fields[1].strip()
            if not token or not tag:
                raise CorpusError(f"{path}:{lineno}: empty {'token' if not token else 'tag'}")
            tokens.append(token)
            tags.append(tag)
            if len(tokens) > MAX_SENTENCE_TOKENS:
                raise _too_long(path, lineno, len(tokens), fmt)
        else:
            parts = line.split()
            if not parts:
                continue
            if len(parts) > MAX_SENTENCE_TOKENS:
                raise _too_long(path, lineno, len(parts), fmt)
            words, labels = [], []
            for part in parts:
                word, sep, tag = part.rpartition("/")
                if not sep or not word or not tag:
                    raise CorpusError(f"{path}:{lineno}: token {excerpt(part)} is not of the form word/TAG")
                words.append(word)
                labels.append(tag)
            sentences.append((words, labels))
    if tokens:
        sentences.append((tokens, tags))
    if not sentences:
        raise CorpusError(f"{path}: no tagged sentences")
    return sentences
