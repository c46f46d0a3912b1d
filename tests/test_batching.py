"""split_by_length: a partition of the batch, optimal padded cost, checked by brute force."""

import itertools

import numpy as np
import pytest

from paddle_hsoftmax.data import split_by_length


def brute_force_cost(lengths, groups):
    values = sorted(lengths)
    best = float("inf")
    n = len(values)
    for k in range(1, groups + 1):
        for cuts in itertools.combinations(range(1, n), k - 1):
            edges = (0,) + cuts + (n,)
            cost = sum((b - a) * values[b - 1] for a, b in zip(edges, edges[1:]))
            best = min(best, cost)
    return best


@pytest.mark.parametrize("seed", range(20))
def test_partition_and_optimal_cost(seed):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, 12, size=rng.integers(1, 11))
    groups = int(rng.integers(1, 4))
    parts = split_by_length(lengths, groups)
    assert len(parts) <= groups
    positions = np.concatenate([p for p, _ in parts])
    assert sorted(positions.tolist()) == list(range(len(lengths)))
    for p, bound in parts:
        assert bound == lengths[p].max()
    cost = sum(len(p) * bound for p, bound in parts)
    assert cost == brute_force_cost(lengths.tolist(), groups)


def test_one_group_is_the_whole_batch():
    (positions, bound), = split_by_length(np.array([3, 9, 4]), 1)
    assert sorted(positions.tolist()) == [0, 1, 2] and bound == 9


def test_bad_arguments():
    with pytest.raises(ValueError, match="non-empty 1-D"):
        split_by_length(np.array([]), 2)
    with pytest.raises(ValueError, match="groups must be >= 1"):
        split_by_length(np.array([1, 2]), 0)


def test_sortish_batches_cover_everything_with_little_padding():
    from paddle_hsoftmax.data.batching import sortish_batches

    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 200, size=5000)
    batches = sortish_batches(lengths, 64, np.random.default_rng(1), pool=8)
    assert sorted(np.concatenate(batches).tolist()) == list(range(5000))
    padded = sum(len(b) * lengths[b].max() for b in batches)
    random_padded = sum(len(b) * lengths[b].max() for b in np.array_split(rng.permutation(5000), len(batches)))
    assert padded < 0.7 * random_padded
    again = sortish_batches(lengths, 64, np.random.default_rng(1), pool=8)
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))  # same seed, same batches
