"""Split a batch into a few groups of similar path length, without changing the batch.

Why: the H-softmax layer pads every path in a call to one length. A random batch nearly always
holds a rare word with a long Huffman code, so every row would pay for the longest code and the
Huffman tree's short codes for frequent words would buy nothing (on People's Daily, a random batch
of 4,096 bigrams pads to 18 nodes while the mean code is 10.1). Running the layer once per group,
each with ``max_length`` = the group's longest path, computes the same loss and the same gradient
as one call on the whole batch, at close to the mean-path cost. The batch itself stays random, so
optimisation is unchanged (sorting whole batches by length would make each step see one frequency
band only).
"""

from __future__ import annotations

from typing import List, Tuple

import numpy as np

__all__ = ["split_by_length", "sortish_batches"]


def split_by_length(lengths: np.ndarray, groups: int = 4) -> List[Tuple[np.ndarray, int]]:
    """Partition positions ``0..N-1`` into at most ``groups`` groups minimising padded work.

    The cost of a group is ``size * max length``; groups are contiguous ranges of the sorted
    lengths, chosen by dynamic programming over the distinct length values (at most a few dozen
    for any tree), so the split is optimal for the given number of groups.

    Args:
        lengths: int ``[N]``, e.g. ``tree.path_lengths[batch_targets]``.
        groups: the most groups to return (each costs one more layer call).

    Returns:
        ``[(positions, max_length), ...]``: int64 positions into the batch and that group's
        longest length; together the positions hold each of ``0..N-1`` exactly once.
    """
    lengths = np.asarray(lengths)
    if lengths.ndim != 1 or lengths.shape[0] == 0:
        raise ValueError(f"lengths must be a non-empty 1-D array, got shape {lengths.shape}")
    if groups < 1:
        raise ValueError(f"groups must be >= 1, got {groups}")
    order = np.argsort(lengths, kind="stable")
    values, counts = np.unique(lengths, return_counts=True)
    m = values.shape[0]
    cum = np.concatenate([[0], np.cumsum(counts)])  # cum[j] = rows with length < values[j]
    g = min(groups, m)
    # best[k][j]: least cost covering the first j distinct values with k groups
    inf = float("inf")
    best = np.full((g + 1, m + 1), inf)
    cut = np.zeros((g + 1, m + 1), dtype=np.int64)
    best[0, 0] = 0.0
    for k in range(1, g + 1):
        for j in range(1, m + 1):
            for i in range(k - 1, j):
                cost = best[k - 1, i] + (cum[j] - cum[i]) * float(values[j - 1])
                if cost < best[k, j]:
                    best[k, j], cut[k, j] = cost, i
    k = int(np.argmin(best[1:, m])) + 1
    bounds = []
    j = m
    while k > 0:
        i = int(cut[k, j])
        bounds.append((i, j))
        j, k = i, k - 1
    result = []
    for i, j in reversed(bounds):
        positions = order[cum[i] : cum[j]].astype(np.int64)
        result.append((positions, int(values[j - 1])))
    return result


def sortish_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator, pool: int = 32) -> List[np.ndarray]:
    """Index batches of similar length for padded sequence models, in random order.

    Examples are shuffled, sorted by length inside pools of ``pool`` batches, cut into batches,
    and the batches shuffled: little padding, and still a random mix of batches each epoch.
    Together the batches hold every index in ``[0, len(lengths))`` once.
    """
    lengths = np.asarray(lengths)
    if batch_size < 1 or pool < 1:
        raise ValueError(f"batch_size and pool must be >= 1, got {batch_size} and {pool}")
    order = rng.permutation(lengths.shape[0])
    batches: List[np.ndarray] = []
    for start in range(0, order.shape[0], batch_size * pool):
        chunk = order[start : start + batch_size * pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches += [chunk[i : i + batch_size] for i in range(0, chunk.shape[0], batch_size)]
    return [batches[b] for b in rng.permutation(len(batches))]
