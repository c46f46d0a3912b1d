"""Word-vector evaluation: word-pair similarity (Spearman), analogies (3CosAdd), neighbours.

    python -m paddle_hsoftmax.evaluate DIR --similarity wordsim353.tsv simlex999.txt \\
        --analogy questions-words.txt [--neighbours WORD ...] [--json OUT]

``DIR`` is a ``train.py word2vec`` output directory (``vectors.bin`` or ``vectors.txt``) or a
vectors file itself. The protocols follow gensim's ``evaluate_word_pairs`` and
``evaluate_word_analogies`` so scores are comparable with gensim's:

- similarity: Spearman's rho (scipy) between human scores and cosine similarities over the pairs
  whose two words are in the vocabulary; coverage is the share of pairs used. Lines starting with
  ``#`` are comments; fields are tab-separated ``word1 word2 score``.
- analogy: for ``a b c d`` the answer is the word nearest (cosine) to ``b - a + c`` among the
  ``restrict`` most frequent words, excluding a, b and c; questions with a word outside those are
  skipped (counted in coverage). ``: section`` lines start sections.
- words are matched case-insensitively (as gensim does by default).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["load_vectors", "evaluate_similarity", "evaluate_analogy", "nearest", "main"]


def load_vectors(path) -> Tuple[List[str], np.ndarray]:
    """Words and vectors from a run directory or a word2vec text/binary file
    (:func:`~paddle_hsoftmax.data.vectors.read_word2vec`: every problem is a ``CorpusError``
    naming the file and the line or entry)."""
    from .data.vectors import read_word2vec

    return read_word2vec(path)


def _unit(vectors: np.ndarray) -> np.ndarray:
    v = vectors.astype(np.float64)
    return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)


def _index(words: Sequence[str], limit: Optional[int] = None) -> Dict[str, int]:
    """Case-insensitive word -> id; the most frequent (lowest id) spelling wins."""
    index: Dict[str, int] = {}
    for i, w in enumerate(words[:limit] if limit else words):
        index.setdefault(w.lower(), i)
    return index


def evaluate_similarity(words: Sequence[str], vectors: np.ndarray, pairs_file) -> Dict[str, float]:
    """Spearman's rho and coverage on a word-pair file (WordSim353 / SimLex-999 format)."""
    from scipy.stats import spearmanr

    index = _index(words)
    unit = _unit(vectors)
    human, model = [], []
    total = 0
    with open(pairs_file, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 3:
                raise ValueError(f"{pairs_file}:{lineno}: expected word1<TAB>word2<TAB>score")
            total += 1
            a, b = index.get(parts[0].lower()), index.get(parts[1].lower())
            if a is None or b is None:
                continue
            human.append(float(parts[2]))
            model.append(float(unit[a] @ unit[b]))
    rho = float(spearmanr(human, model).statistic) if len(human) > 2 else float("nan")
    return {"spearman": rho, "pairs_used": len(human), "pairs_total": total,
            "coverage": len(human) / max(total, 1)}


def evaluate_analogy(words: Sequence[str], vectors: np.ndarray, questions_file, restrict: int = 30000,
                     batch: int = 2048) -> Dict[str, float]:
    """3CosAdd accuracy over the questions whose four words are among the ``restrict`` most
    frequent words; ``sections`` holds per-section accuracy."""
    index = _index(words, restrict)
    unit = _unit(vectors[: min(restrict, len(words))])
    questions: List[Tuple[int, int, int, int]] = []
    section_of: List[str] = []
    total = 0
    section = "all"
    with open(questions_file, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if line.startswith(":"):
                section = line[1:].strip()
                continue
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 4:
                raise ValueError(f"{questions_file}:{lineno}: expected 4 words, got {len(parts)}")
            total += 1
            ids = [index.get(p.lower()) for p in parts]
            if any(i is None for i in ids):
                continue
            questions.append(tuple(ids))  # type: ignore[arg-type]
            section_of.append(section)
    if not questions:
        return {"accuracy": float("nan"), "questions_used": 0, "questions_total": total, "coverage": 0.0,
                "sections": {}}
    q = np.asarray(questions)
    correct = np.zeros(len(q), dtype=bool)
    for s in range(0, len(q), batch):
        a, b, c, d = q[s : s + batch].T
        target = unit[b] - unit[a] + unit[c]  # (n, D)
        sims = target @ unit.T  # (n, V')
        rows = np.arange(len(a))
        sims[rows, a] = sims[rows, b] = sims[rows, c] = -np.inf
        correct[s : s + batch] = sims.argmax(axis=1) == d
    sections: Dict[str, float] = {}
    for name in dict.fromkeys(section_of):
        mask = np.asarray([x == name for x in section_of])
        sections[name] = float(correct[mask].mean())
    return {"accuracy": float(correct.mean()), "questions_used": len(q), "questions_total": total,
            "coverage": len(q) / max(total, 1), "sections": sections}


def nearest(words: Sequence[str], vectors: np.ndarray, query: str, k: int = 10) -> List[Tuple[str, float]]:
    """The ``k`` words with the highest cosine similarity to ``query`` (itself excluded)."""
    i = _index(words).get(query.lower())
    if i is None:
        raise KeyError(f"{query!r} is not in the vocabulary")
    unit = _unit(vectors)
    sims = unit @ unit[i]
    sims[i] = -np.inf
    top = np.argsort(-sims)[:k]
    return [(words[j], float(sims[j])) for j in top]


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m paddle_hsoftmax.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("vectors", help="run directory or vectors file")
    p.add_argument("--similarity", nargs="*", default=[], help="word-pair files")
    p.add_argument("--analogy", default=None, help="questions-words.txt format")
    p.add_argument("--restrict", type=int, default=30000, help="analogy vocabulary (most frequent words)")
    p.add_argument("--neighbours", nargs="*", default=[])
    p.add_argument("--json", default=None, help="also write the scores here")
    args = p.parse_args(argv)
    try:
        words, vectors = load_vectors(args.vectors)
        scores: Dict[str, object] = {"vectors": str(args.vectors), "vocab_size": len(words)}
        for path in args.similarity:
            r = evaluate_similarity(words, vectors, path)
            scores[f"similarity/{Path(path).stem}"] = r
            print(f"{Path(path).name:<24} Spearman {r['spearman']:.4f}  ({r['pairs_used']}/{r['pairs_total']} pairs)")
        if args.analogy:
            r = evaluate_analogy(words, vectors, args.analogy, args.restrict)
            scores["analogy"] = r
            print(f"{Path(args.analogy).name:<24} accuracy {r['accuracy']:.4f}  "
                  f"({r['questions_used']}/{r['questions_total']} questions, top {args.restrict} words)")
        for w in args.neighbours:
            ns = nearest(words, vectors, w)
            scores.setdefault("neighbours", {})[w] = ns  # type: ignore[union-attr]
            print(f"{w}: " + ", ".join(f"{n} {s:.2f}" for n, s in ns))
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json:
        from .export import atomic_write_text

        atomic_write_text(args.json, json.dumps(scores, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
