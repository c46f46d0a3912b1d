"""Trees: Huffman optimality, prefix codes, balanced depths, information bounds, persistence, errors."""

import math
import time

import numpy as np
import pytest
from conftest import assert_full_prefix_tree, codes_of, reference_huffman_cost
from hypothesis import given, settings
from hypothesis import strategies as st

from paddle_hsoftmax import (
    Tree,
    build_balanced_tree,
    build_huffman_tree,
    information_table,
    unigram_entropy,
)


def test_small_huffman_by_hand():
    tree = build_huffman_tree([5, 1, 1, 2, 3])
    # merges: 1+1=2, 2+2=4, 3+4=7, 5+7=12 -> depths 1, 4, 4, 3, 2
    assert tree.path_lengths.tolist() == [1, 4, 4, 3, 2]
    assert codes_of(tree) == ["0", "1110", "1111", "110", "10"]
    assert tree.path_nodes[:, 0].tolist() == [0] * 5
    assert tree.num_inner == 4 and tree.max_length == 4
    assert_full_prefix_tree(tree)


def test_two_words():
    tree = build_huffman_tree([3, 7])
    assert codes_of(tree) == ["0", "1"]
    assert tree.path_nodes.tolist() == [[0], [0]]


@pytest.mark.parametrize("V", [2, 3, 5, 8, 100, 1000, 1023, 1025])
def test_balanced_depths(V):
    tree = build_balanced_tree(V)
    assert_full_prefix_tree(tree)
    depth = math.ceil(math.log2(V))
    assert tree.path_lengths.max() == depth
    assert tree.path_lengths.min() >= depth - 1
    # frequent (low id) words get the shallow leaves
    assert np.all(np.diff(tree.path_lengths) >= 0)


def test_seed_balanced_figure():
    """The seed's figure: a balanced tree over 10,000 words needs log2|V| = 13.3 bits."""
    tree = build_balanced_tree(10_000)
    assert tree.mean_code_length() == pytest.approx(13.3, abs=0.1)


@pytest.mark.parametrize("seed", range(5))
def test_huffman_optimal_random(seed):
    rng = np.random.default_rng(seed)
    counts = rng.integers(1, 50, size=rng.integers(2, 300))
    tree = build_huffman_tree(counts)
    assert_full_prefix_tree(tree)
    assert int(np.dot(counts, tree.path_lengths)) == reference_huffman_cost(counts)


def test_huffman_on_peoples_daily(pd_counts):
    tree = build_huffman_tree(pd_counts)
    assert_full_prefix_tree(tree)
    assert int(np.dot(pd_counts, tree.path_lengths)) == reference_huffman_cost(pd_counts)
    H = unigram_entropy(pd_counts)
    L = tree.mean_code_length(pd_counts)
    assert H <= L < H + 1
    info = information_table(pd_counts)
    # DESIGN.md anchors for min_count 5: |V| = 14,990, H = 10.41, Huffman 10.44, log2|V| = 13.87
    assert info["vocab_size"] == 14_990
    assert info["unigram_entropy"] == pytest.approx(10.41, abs=0.005)
    assert info["huffman_mean_code_length"] == pytest.approx(10.44, abs=0.005)
    assert info["log2_vocab"] == pytest.approx(13.87, abs=0.005)
    assert info["balanced_mean_code_length"] > info["huffman_mean_code_length"] + 2


def test_deterministic_ties():
    counts = [4, 4, 4, 4, 2, 2, 2, 2]
    a, b = build_huffman_tree(counts), build_huffman_tree(np.array(counts))
    assert np.array_equal(a.path_nodes, b.path_nodes)
    assert np.array_equal(a.path_codes, b.path_codes)
    # equal counts: the word with the lower id is taken first (becomes the left child)
    tree = build_huffman_tree([1, 1])
    assert codes_of(tree) == ["0", "1"]


def test_huge_counts_do_not_overflow():
    counts = [2**62, 2**62, 2**62, 1, 3]
    tree = build_huffman_tree(counts)
    assert_full_prefix_tree(tree)
    assert sum(c * int(d) for c, d in zip(counts, tree.path_lengths)) == reference_huffman_cost(counts)


def test_fibonacci_counts_give_a_deep_tree():
    fib = [1, 1]
    while len(fib) < 40:
        fib.append(fib[-1] + fib[-2])
    tree = build_huffman_tree(fib)
    assert tree.max_length == 39
    assert_full_prefix_tree(tree)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=10**12), min_size=2, max_size=200))
def test_huffman_property(counts):
    tree = build_huffman_tree(counts)
    assert_full_prefix_tree(tree)
    assert int(sum(c * int(d) for c, d in zip(counts, tree.path_lengths))) == reference_huffman_cost(
        counts
    )
    H = unigram_entropy(counts)
    assert H - 1e-9 <= tree.mean_code_length(counts) < H + 1


def test_save_load_roundtrip(tmp_path):
    tree = build_huffman_tree([10, 3, 3, 1, 7, 2])
    path = tmp_path / "tree.npz"
    tree.save(path)
    loaded = Tree.load(path)
    assert loaded.kind == "huffman"
    for name in ("path_nodes", "path_codes", "path_lengths"):
        assert np.array_equal(getattr(tree, name), getattr(loaded, name))
    assert not (tmp_path / "tree.npz.tmp").exists()


def test_load_rejects_corrupt_tables(tmp_path):
    tree = build_balanced_tree(6)
    nodes = tree.path_nodes.copy()
    nodes[0, 0] = 7  # out of range for 5 inner nodes
    path = tmp_path / "bad.npz"
    np.savez(path, path_nodes=nodes, path_codes=tree.path_codes, path_lengths=tree.path_lengths)
    with pytest.raises(ValueError, match="inner-node ids"):
        Tree.load(path)
    np.savez(path, something=np.zeros(3))
    with pytest.raises(ValueError, match="not a tree file"):
        Tree.load(path)


def test_paddle_adapter_shapes():
    tree = build_huffman_tree([5, 1, 1, 2, 3])
    args = tree.to_paddle_hsigmoid()
    assert args["num_classes"] == 5
    assert args["path_table"].dtype == np.int64 and args["path_code"].dtype == np.int64
    assert np.array_equal(args["path_table"], tree.path_nodes)


@pytest.mark.parametrize(
    "counts, message",
    [
        ([], "at least 2 words"),
        ([5], "at least 2 words"),
        ([3, 0, 2], r"positive: counts\[1\] = 0"),
        ([3, 2, -4], r"positive: counts\[2\] = -4"),
        ([3, 2.5], r"integers: counts\[1\] = 2.5"),
        (np.array([1.0, np.nan, 2.0]), r"finite integers: counts\[1\]"),
        ([1, "a"], r"integers: counts\[1\] = 'a'"),
        ([True, False], r"integers: counts\[0\] = True"),
        (np.array([True, False]), "booleans"),
        (np.ones((2, 2), dtype=int), "1-D"),
        ("abc", "sequence of positive integers"),
    ],
)
def test_bad_counts(counts, message):
    with pytest.raises(ValueError, match=message):
        build_huffman_tree(counts)


def test_bad_balanced_size():
    with pytest.raises(ValueError, match="at least 2 leaves"):
        build_balanced_tree(1)
    with pytest.raises(ValueError, match="integer"):
        build_balanced_tree(2.5)


@pytest.mark.slow  # measured in the quick suite run of 2026-12-01: 3 s
def test_million_word_vocabulary_builds_fast():
    V = 1_000_000
    counts = (1e9 / np.arange(1, V + 1)).astype(np.int64) + 1
    best = float("inf")
    for _ in range(2):
        start = time.perf_counter()
        tree = build_huffman_tree(counts)
        best = min(best, time.perf_counter() - start)
    assert tree.num_leaves == V
    assert tree.kraft_sum() == pytest.approx(1.0)
    assert best < 2.0, f"Huffman tree over 1e6 words took {best:.2f} s"
