"""Scores for the classifier (and, later, the tagger): accuracy and per-class / macro F1.

Computed from a confusion matrix with NumPy (a dozen lines; the span-level F1 of tagging uses
seqeval).
"""

from __future__ import annotations

from typing import Dict, Sequence

import numpy as np

__all__ = ["confusion_matrix", "classification_scores"]


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
