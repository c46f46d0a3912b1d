"""Scores for the classifier and the tagger.

- classification: accuracy, per-class and macro F1 from a confusion matrix (a dozen NumPy lines);
- tagging with span tags: precision / recall / F1 over exact spans with seqeval (CoNLL's
  definition). BIO / BIOES sets (``B-PER``, ``I-PER``, ``O`` ...) are scored as they are;
  word-segmentation sets ``b/m/e/s`` are scored as words (``B-W``, ``I-W``, ``E-W``, ``S-W``), so
  the F1 is the usual segmentation word F1.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np

__all__ = ["confusion_matrix", "classification_scores", "span_scheme", "span_scores"]


def confusion_matrix(gold: Sequence[int], pred: Sequence[int], num_classes: int) -> np.ndarray:
    """``[C, C]`` counts, rows = gold class, columns = predicted class."""
    gold = np.asarray(gold, dtype=np.int64)
    pred = np.asarray(pred, dtype=np.int64)
    if gold.shape != pred.shape:
        raise ValueError(f"gold {gold.shape} and pred {pred.shape} differ in shape")
    return np.bincount(gold * num_classes + pred, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def classification_scores(gold: Sequence[int], pred: Sequence[int], labels: Sequence[str]) -> Dict[str, object]:
    """Accuracy, macro F1 (mean over classes present in gold or predictions) and per-class P/R/F1."""
    C = len(labels)
    cm = confusion_matrix(gold, pred, C)
    tp = np.diag(cm).astype(np.float64)
    predicted, actual = cm.sum(axis=0), cm.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros(C), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros(C), where=actual > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros(C), where=(precision + recall) > 0)
    present = (predicted + actual) > 0
    return {
        "accuracy": float(tp.sum() / max(cm.sum(), 1)),
        "macro_f1": float(f1[present].mean()) if present.any() else 0.0,
        "per_class": {labels[i]: {"precision": float(precision[i]), "recall": float(recall[i]), "f1": float(f1[i]),
                                  "support": int(actual[i])} for i in range(C)},
        "confusion": cm.tolist(),
    }


_SEGMENTATION = {"b": "B-W", "m": "I-W", "e": "E-W", "s": "S-W"}


def span_scheme(tags: Sequence[str]) -> Optional[str]:
    """``"bio"`` if every tag is ``O`` or ``B-X`` / ``I-X`` / ``E-X`` / ``S-X`` (and some tag is
    not ``O``), ``"bmes"`` for word-segmentation tags (any case), else None (no spans to score)."""
    tags = set(tags)
    if tags and {t.lower() for t in tags} <= set(_SEGMENTATION):
        return "bmes"
    prefixed = {t for t in tags if len(t) > 2 and t[0] in "BIES" and t[1] == "-"}
    if prefixed and tags - prefixed <= {"O"}:
        return "bio"
    return None


def span_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], scheme: str) -> Dict[str, object]:
    """Micro precision / recall / F1 over exact spans (seqeval), and per span type.

    Args:
        gold, pred: tag strings per sentence (same lengths); a gold tag the model cannot
            predict is just a tag it never outputs.
        scheme: :func:`span_scheme`'s answer.
    """
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

    if scheme not in ("bio", "bmes"):
        raise ValueError(f"scheme must be 'bio' or 'bmes', got {scheme!r}")

    def convert(rows) -> List[List[str]]:
        if scheme == "bio":
            return [list(r) for r in rows]
        return [[_SEGMENTATION.get(t.lower(), "O") for t in r] for r in rows]

    y_true, y_pred = convert(gold), convert(pred)
    report = classification_report(y_true, y_pred, output_dict=True, zero_division=0)
    types = {k: {m: float(v[m]) for m in ("precision", "recall", "f1-score")} | {"support": int(v["support"])}
             for k, v in report.items() if " avg" not in k}
    return {
        "precision": float(precision_score(y_true, y_pred, zero_division=0)),
        "recall": float(recall_score(y_true, y_pred, zero_division=0)),
        "f1": float(f1_score(y_true, y_pred, zero_division=0)),
        "per_type": types,
    }
