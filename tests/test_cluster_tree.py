"""Clustered trees (Mnih & Hinton 2008): codes, determinism, clusters, counts, speed, errors."""

import math
import time

import numpy as np
import pytest
from conftest import assert_full_prefix_tree, codes_of

from paddle_hsoftmax.cluster_tree import build_clustered_tree
from paddle_hsoftmax.tree import build_balanced_tree, unigram_entropy


def gaussian_blobs(seed, blobs=4, per_blob=32, dim=16, sigma=0.05):
    """Words around ``blobs`` random unit directions, shuffled; returns (vectors, blob ids)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(blobs, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    noise = sigma * rng.normal(size=(blobs * per_blob, dim))
    vectors = np.repeat(centres, per_blob, axis=0) + noise
    labels = np.repeat(np.arange(blobs), per_blob)
    perm = rng.permutation(blobs * per_blob)
    return vectors[perm], labels[perm]


def zipf_counts(V):
    return (1e6 / np.arange(1, V + 1)).astype(np.int64) + 1


# -- (a) valid trees ---------------------------------------------------------------------------


@pytest.mark.parametrize("V", [2, 3, 17, 1000])
def test_valid_balanced_tree(V):
    vectors = np.random.default_rng(V).normal(size=(V, 8))
    tree = build_clustered_tree(vectors)
    assert tree.kind == "clustered" and tree.num_leaves == V
    assert_full_prefix_tree(tree)
    # the median cut keeps the tree balanced
    depth = math.ceil(math.log2(V))
    assert tree.max_length == depth
    assert tree.path_lengths.min() >= depth - 1


@pytest.mark.parametrize("V", [2, 3, 17, 1000])
def test_valid_tree_with_counts(V):
    rng = np.random.default_rng(V)
    tree = build_clustered_tree(rng.normal(size=(V, 8)), counts=rng.permutation(zipf_counts(V)))
    assert_full_prefix_tree(tree)


def test_two_and_three_words():
    tree = build_clustered_tree([[1.0, 0.0], [0.0, 1.0]])
    assert sorted(codes_of(tree)) == ["0", "1"]
    assert tree.path_nodes.tolist() == [[0], [0]]
    # two of three words point the same way: the odd one out gets the short code
    tree = build_clustered_tree([[1.0, 0.1], [0.0, 1.0], [1.0, 0.0]])
    assert tree.path_lengths.tolist() == [2, 1, 2]


@pytest.mark.parametrize(
    "vectors",
    [
        np.ones((7, 3)),  # identical vectors: no direction to split along
        np.zeros((6, 4)),  # zero vectors: no direction at all
        np.arange(10).reshape(5, 2),  # integers
        np.array([[1.0], [-1.0], [2.0], [-3.0], [5.0]]),  # D = 1
        np.repeat(np.eye(3), [1, 1, 9], axis=0),  # one 2-means side would hold 9 of 11 words
    ],
    ids=["identical", "zeros", "integers", "one-dim", "lopsided"],
)
def test_degenerate_vectors_fall_back_to_middle_cuts(vectors):
    tree = build_clustered_tree(vectors)
    assert_full_prefix_tree(tree)
    V = len(vectors)
    assert tree.max_length == math.ceil(math.log2(V))


def test_identical_vectors_cut_in_word_order():
    tree = build_clustered_tree(np.ones((7, 3)))
    assert codes_of(tree) == ["00", "010", "011", "100", "101", "110", "111"]


# -- (b) determinism ---------------------------------------------------------------------------


def test_deterministic_for_a_fixed_seed():
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(500, 16))
    counts = rng.integers(1, 100, size=500)
    for kwargs in ({}, {"counts": counts}):
        a = build_clustered_tree(vectors, seed=3, **kwargs)
        b = build_clustered_tree(vectors.copy(), seed=3, **kwargs)
        for name in ("path_nodes", "path_codes", "path_lengths"):
            assert np.array_equal(getattr(a, name), getattr(b, name))
    other = build_clustered_tree(vectors, seed=4)
    assert_full_prefix_tree(other)


def test_float32_and_float64_inputs_agree():
    vectors = np.random.default_rng(1).normal(size=(300, 10)).astype(np.float32)
    a = build_clustered_tree(vectors)
    b = build_clustered_tree(vectors.astype(np.float64))
    assert np.array_equal(a.path_codes, b.path_codes)


# -- (c) it clusters ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_blobs_get_their_own_subtrees(seed):
    vectors, labels = gaussian_blobs(seed)
    tree = build_clustered_tree(vectors, seed=seed)
    assert_full_prefix_tree(tree)
    subtrees = set()
    for blob in range(4):
        # same first two nodes (root, depth-1 node) and the same depth-2 node: the blob's 32
        # words fill one of the four 32-leaf subtrees
        own = {tuple(row) for row in tree.path_nodes[labels == blob, :3]}
        assert len(own) == 1, f"blob {blob} spread over {len(own)} depth-2 subtrees"
        subtrees |= own
    assert len(subtrees) == 4
    # scaling a word vector changes nothing (only directions count)
    scaled = vectors * np.random.default_rng(seed).uniform(0.1, 10.0, size=(len(vectors), 1))
    again = build_clustered_tree(scaled, seed=seed)
    assert np.array_equal(again.path_nodes[:, :2], tree.path_nodes[:, :2])


def test_blobs_with_equal_counts_stay_together():
    vectors, labels = gaussian_blobs(7)
    tree = build_clustered_tree(vectors, counts=np.full(len(vectors), 5))
    for blob in range(4):
        assert len({tuple(row) for row in tree.path_nodes[labels == blob, :3]}) == 1


def test_clustered_tree_beats_a_random_order_on_blobs():
    """Words of one blob sit closer in the clustered tree than in the balanced (id-order) tree."""
    vectors, labels = gaussian_blobs(3, blobs=8, per_blob=16)

    def same_blob_shared_prefix(tree):
        codes = codes_of(tree)
        shared = [
            len(_common_prefix(codes[i], codes[j]))
            for i in range(len(codes))
            for j in range(i + 1, len(codes))
            if labels[i] == labels[j]
        ]
        return float(np.mean(shared))

    clustered = same_blob_shared_prefix(build_clustered_tree(vectors))
    balanced = same_blob_shared_prefix(build_balanced_tree(len(vectors)))
    assert clustered > balanced + 2


def _common_prefix(a, b):
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


# -- (d) counts give frequent words short paths ------------------------------------------------


@pytest.mark.parametrize("shuffle", [False, True])
def test_counts_shorten_the_mean_code(shuffle):
    V = 1000
    rng = np.random.default_rng(5)
    counts = zipf_counts(V)
    if shuffle:
        counts = rng.permutation(counts)
    vectors = rng.normal(size=(V, 16))
    tree = build_clustered_tree(vectors, counts=counts)
    assert_full_prefix_tree(tree)
    clustered = tree.mean_code_length(counts)
    balanced = build_balanced_tree(V).mean_code_length(counts)
    H = unigram_entropy(counts)
    assert H <= clustered < H + 2  # weight-halving cuts stay close to the entropy (here ~0.5 bits)
    assert clustered < balanced - 1
    # without counts the clustered tree is as long as a balanced one
    assert build_clustered_tree(vectors).mean_code_length(counts) > clustered + 1
    # the ten most frequent words have shorter paths than the typical word
    top = np.argsort(-counts, kind="stable")[:10]
    assert tree.path_lengths[top].mean() < np.median(tree.path_lengths) - 3


def test_huge_counts():
    vectors = np.random.default_rng(2).normal(size=(6, 3))
    tree = build_clustered_tree(vectors, counts=[2**70, 1, 1, 3, 2**64, 5])
    assert_full_prefix_tree(tree)


# -- (e) speed ---------------------------------------------------------------------------------


@pytest.mark.slow  # measured in the quick suite run of 2026-12-01: 3 s
def test_fifty_thousand_words_build_fast():
    V, D = 50_000, 100
    vectors = np.random.default_rng(0).normal(size=(V, D)).astype(np.float32)
    start = time.perf_counter()
    tree = build_clustered_tree(vectors)
    seconds = time.perf_counter() - start
    assert tree.num_leaves == V and tree.max_length == math.ceil(math.log2(V))
    assert tree.kraft_sum() == pytest.approx(1.0)
    assert seconds < 10.0, f"clustered tree over {V} x {D} vectors took {seconds:.2f} s"


# -- (f) bad inputs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "vectors, message",
    [
        (np.zeros(5), r"2-D \[V, D\], got shape \(5,\)"),
        (np.zeros((3, 2, 2)), r"got shape \(3, 2, 2\)"),
        (np.zeros((1, 4)), r"at least 2 words, got 1"),
        (np.zeros((0, 4)), r"at least 2 words, got 0"),
        (np.zeros((3, 0)), r"at least one dimension, got shape \(3, 0\)"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), r"finite: vectors\[0, 1\] = nan"),
        (np.array([[1.0, 2.0], [np.inf, 1.0]]), r"finite: vectors\[1, 0\] = inf"),
        (np.array([[True, False], [False, True]]), "dtype bool"),
        (np.array([[1 + 2j, 0], [0, 1]]), "dtype complex128"),
        ([["a", "b"], ["c", "d"]], "dtype <U1"),
        ("vectors", "got a str"),
        ([[1.0, 2.0], [3.0]], "2-D array of floats"),
    ],
)
def test_bad_vectors(vectors, message):
    with pytest.raises(ValueError, match=message):
        build_clustered_tree(vectors)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"counts": [1, 2]}, r"got 2 counts for 3 word vectors \(shape \(3, 2\)\)"),
        ({"counts": [1, 0, 2]}, r"positive: counts\[1\] = 0"),
        ({"counts": [1, -5, 2]}, r"positive: counts\[1\] = -5"),
        ({"counts": [1, 2.5, 2]}, r"integers: counts\[1\] = 2.5"),
        ({"seed": -1}, "seed must be >= 0, got -1"),
        ({"seed": 1.5}, "seed must be an integer, got 1.5"),
        ({"iterations": 0}, "iterations must be >= 1, got 0"),
        ({"iterations": True}, "iterations must be an integer, got True"),
    ],
)
def test_bad_arguments(kwargs, message):
    vectors = np.random.default_rng(0).normal(size=(3, 2))
    with pytest.raises(ValueError, match=message):
        build_clustered_tree(vectors, **kwargs)
