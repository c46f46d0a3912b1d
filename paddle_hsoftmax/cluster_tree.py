"""Trees built by recursively clustering word vectors (Mnih & Hinton 2008).

Mnih & Hinton, "A Scalable Hierarchical Distributed Language Model" (NeurIPS 2008), showed that
the tree of a hierarchical softmax matters: a tree whose subtrees group words with similar
(trained) feature vectors beats a random tree by a wide margin, because every inner node then asks
one question that the context can actually answer ("is the next word a verb-like word?"). They
built it top-down: split the words of a node into two groups by clustering their vectors (they
fit a two-component Gaussian mixture), keep the two halves roughly equal in size so the tree
stays shallow, and recurse.

:func:`build_clustered_tree` does the same with *balanced spherical 2-means* at every node (the
node splitter of Parabel, Prabhu et al. 2018, applied to word vectors):

1. The word vectors are L2-normalised, so only their directions count.
2. Two seed centroids per node: a word picked at random (from ``seed``), the word farthest from
   it, and the word farthest from that one (a cheap guess at the node's longest axis).
3. Lloyd iterations whose assignment step is a *balanced cut*: every word gets the score
   ``x . (c_right - c_left)``, which for unit centroids is half the difference of its squared
   distances to the two centroids; the node's words are sorted by that score (ties keep their
   order, which starts as the word-id order) and cut so the two sides are balanced (below). The
   centroids are then the normalised means of the two sides and the next iteration re-scores.
   Iterations stop when no word moves or after ``iterations`` assignment steps.

The cut, in the sorted order (the split rule):

* ``counts is None``: at the median, ``n // 2`` words on one side and ``n - n // 2`` on the
  other (for odd ``n`` the middle word joins the neighbour whose score is closer); every
  leaf ends at depth floor or ceil of log2 V, like
  :func:`~paddle_hsoftmax.tree.build_balanced_tree`.
* ``counts`` given: at the position that halves the node's total count as closely as possible
  (at least one word on each side). This is a weight-balanced (Shannon-Fano / Gilbert-Moore style)
  split along the cluster order: a word holding much of a node's count tends to get a side of its
  own early, so frequent words get short, Huffman-like paths and the mean code length weighted
  by counts falls well below log2 V, while words of one cluster still share path prefixes. The
  clustering decides the *order*, the counts decide *where* to cut it.

The cut always leaves at least one word on each side, so degenerate inputs (identical or zero
vectors, a 2-means that puts every word on one side, two-word nodes) fall back to cutting the
sorted order, which is then the word-id order, in the middle.

Speed: the recursion runs one tree level at a time, and every step of a level (scores, the
segmented sort, the cuts, the centroid sums) is vectorised over all nodes of that level; there
is no Python call per word or per node. One level costs O(n D) per iteration for the n words still
in inner nodes, so a balanced tree costs O(iterations * V D log V) in all.
"""

from __future__ import annotations

import numbers
from typing import Optional, Tuple

import numpy as np

from .tree import ArrayLike, Tree, validate_counts

__all__ = ["build_clustered_tree"]

# ----------------------------------------------------------------------------------------------
# Input validation
# ----------------------------------------------------------------------------------------------


def _validate_vectors(vectors: object) -> np.ndarray:
    """Word vectors as a ``[V, D]`` float64 array with V >= 2 finite rows, or ValueError."""
    if isinstance(vectors, (str, bytes)):
        raise ValueError(f"vectors must be a 2-D array of floats, got a {type(vectors).__name__}")
    try:
        arr = np.asarray(vectors)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"vectors must be a 2-D array of floats: {exc}") from None
    if arr.dtype == np.bool_ or arr.dtype.kind not in "fiu":
        raise ValueError(f"vectors must be a 2-D array of real numbers, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"vectors must be 2-D [V, D], got shape {tuple(arr.shape)}")
    V, D = arr.shape
    if V < 2:
        raise ValueError(f"a tree needs at least 2 words, got {V} vector(s) of shape {arr.shape}")
    if D < 1:
        raise ValueError(f"vectors must have at least one dimension, got shape {arr.shape}")
    arr = arr.astype(np.float64, copy=False)
    bad = ~np.isfinite(arr)
    if bad.any():
        i, j = (int(k) for k in np.argwhere(bad)[0])
        raise ValueError(f"vectors must be finite: vectors[{i}, {j}] = {arr[i, j]}")
    return arr


def _validate_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if int(value) < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {int(value)}")
    return int(value)


# ----------------------------------------------------------------------------------------------
# Segmented helpers: a level's words sit contiguously by node ("segments"), starts ascending.
# ----------------------------------------------------------------------------------------------


def _segment_argmin(values: np.ndarray, starts: np.ndarray, seg_of: np.ndarray) -> np.ndarray:
    """Position of the first minimum of ``values`` inside every (non-empty) segment."""
    seg_min = np.minimum.reduceat(values, starts)
    hit = np.flatnonzero(values == seg_min[seg_of])
    first = np.ones(hit.size, dtype=bool)
    first[1:] = seg_of[hit[1:]] != seg_of[hit[:-1]]
    return hit[first]


def _rowdot(X: np.ndarray, W: np.ndarray, seg_of: np.ndarray) -> np.ndarray:
    """``X[i] . W[seg_of[i]]`` for every row i (the gather beats a matmul even for one node)."""
    return np.einsum("ij,ij->i", X, W[seg_of])


def _normalise(A: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm; all-zero rows stay zero."""
    norm = np.sqrt(np.einsum("ij,ij->i", A, A))
    return A / np.where(norm > 0, norm, 1.0)[:, None].astype(A.dtype)


def _balanced_cut(
    order: np.ndarray,
    score: np.ndarray,
    starts: np.ndarray,
    sizes: np.ndarray,
    seg_of: np.ndarray,
    weights: Optional[np.ndarray],
) -> np.ndarray:
    """Words on the left of every segment's cut, given the level's sorted order.

    Without weights, a median cut: ``n // 2`` words on the left, except that an odd-sized
    segment cuts after ``(n + 1) // 2`` words when the score gap there is larger (so the odd word
    out joins the side it is closer to). With weights, the cut whose left weight is closest to
    half the segment's weight (the first such cut on ties). No side is ever empty.
    """
    if weights is None:
        k = sizes // 2
        odd = np.flatnonzero(sizes % 2 == 1)
        if odd.size:
            lo = starts[odd] + k[odd]  # sorted position of the middle word
            s = score[order[np.concatenate((lo - 1, lo, lo + 1))]].reshape(3, -1)
            k[odd] += (s[2] - s[1]) > (s[1] - s[0])
        return k
    cum = np.cumsum(weights[order])  # sorted order keeps every segment in its own positions
    before = np.concatenate(([0.0], cum))[starts]  # weight of all earlier segments
    local = cum - before[seg_of]  # left weight if the cut is after this position
    total = local[starts + sizes - 1]
    cost = np.abs(2.0 * local - total[seg_of])
    cost[starts + sizes - 1] = np.inf  # the right side may not be empty
    return _segment_argmin(cost, starts, seg_of) - starts + 1


def _split_level(
    X: np.ndarray,
    starts: np.ndarray,
    sizes: np.ndarray,
    weights: Optional[np.ndarray],
    iterations: int,
    rng: np.random.Generator,
) -> Tuple[np.ndarray, np.ndarray]:
    """Balanced 2-means on every segment of one level.

    Returns ``order`` (positions sorted by segment, then score, ties in position order: the left
    part of a segment comes first) and ``k`` (words on the left of each segment).
    """
    n = X.shape[0]
    m = starts.shape[0]
    seg_of = np.repeat(np.arange(m), sizes)
    local_rank = np.empty(n, dtype=np.int64)
    # Seeds: a random word r, the word a farthest from r, the word b farthest from a.
    r = starts + np.minimum((rng.random(m) * sizes).astype(np.int64), sizes - 1)
    a = _segment_argmin(_rowdot(X, X[r], seg_of), starts, seg_of)
    b = _segment_argmin(_rowdot(X, X[a], seg_of), starts, seg_of)
    direction = X[b] - X[a]  # c_right - c_left
    sums = np.add.reduceat(X, starts, axis=0) if iterations > 1 else None
    right = None
    for it in range(iterations):
        score = _rowdot(X, direction, seg_of)
        # |score| <= 2 for unit vectors, so segment * 8 + score sorts by segment, then score;
        # the stable sort keeps tied words in their current order.
        order = np.argsort(seg_of * 8.0 + score, kind="stable")
        k = _balanced_cut(order, score, starts, sizes, seg_of, weights)
        local_rank[order] = np.arange(n) - starts[seg_of]
        new_right = local_rank >= k[seg_of]
        if it == iterations - 1 or (right is not None and np.array_equal(new_right, right)):
            break
        right = new_right
        # Every segment has at least one word on each side, so both reduceat slices are non-empty.
        right_starts = np.concatenate(([0], np.cumsum(sizes - k)[:-1]))
        s_right = np.add.reduceat(X[right], right_starts, axis=0)
        direction = (_normalise(s_right) - _normalise(sums - s_right)).astype(X.dtype)
    return order, k


# ----------------------------------------------------------------------------------------------
# The builder
# ----------------------------------------------------------------------------------------------


def build_clustered_tree(
    vectors: ArrayLike,
    counts: Optional[ArrayLike] = None,
    seed: int = 0,
    iterations: int = 5,
    kind: str = "clustered",
) -> Tree:
    """Tree from recursive balanced 2-means on word vectors (Mnih & Hinton 2008).

    Paper: Mnih & Hinton, "A Scalable Hierarchical Distributed Language Model" (NeurIPS 2008);
    the balanced spherical 2-means splitter follows Parabel (Prabhu et al., WWW 2018).

    Idea: words whose vectors point the same way should share the inner nodes near the root, so
    every node's question is answerable from the context. Each node's words are split in two by
    2-means on their L2-normalised vectors, with a balanced cut of the order "closer to the left
    centroid ... closer to the right centroid" (the module docstring has the details), and the
    halves are split again until every word is a leaf. Without ``counts`` the cut is at the
    median (a balanced tree, depth ceil(log2 V)); with ``counts`` it halves the total count, so
    frequent words get Huffman-like short paths. Words of one tight, well-separated cluster that
    is a power-of-two part of the vocabulary usually fill one subtree (a local optimum of 2-means
    can still cut a cluster; ``seed`` picks another start).

    Args:
        vectors: ``[V, D]`` real, finite word vectors (trained ones: the tree is only as good as
            they are), V >= 2. Row v is word v; all-zero rows are allowed (no direction).
        counts: optional ``[V]`` positive integer word counts; switches the cut from "equal
            numbers of words" to "equal total count" per side.
        seed: seeds the random first centroid of every node; a fixed seed gives the same tree.
        iterations: maximum number of balanced assignment steps per node (>= 1; 1 = no Lloyd
            refinement, just the cut along the two seed words' axis).
        kind: the tree's label.

    Returns:
        A :class:`~paddle_hsoftmax.tree.Tree` (V leaves, V - 1 inner nodes numbered level by
        level, root 0, parents before children; code 1 = right = the side closer to the second
        centroid).

    Raises:
        ValueError: for vectors that are not 2-D real arrays with V >= 2 finite rows, counts that
            are not V positive integers, or a bad ``seed``/``iterations`` (naming what was seen).
    """
    X64 = _validate_vectors(vectors)
    V = X64.shape[0]
    weights: Optional[np.ndarray] = None
    if counts is not None:
        c = validate_counts(counts)
        if c.shape[0] != V:
            raise ValueError(f"got {c.shape[0]} counts for {V} word vectors (shape {X64.shape})")
        cf = np.asarray(c.tolist() if c.dtype == object else c, dtype=np.float64)
        weights = cf / cf.sum()
    seed = _validate_int("seed", seed, 0)
    iterations = _validate_int("iterations", iterations, 1)
    rng = np.random.default_rng(seed)

    X = _normalise(X64).astype(np.float32)
    words = np.arange(V, dtype=np.int64)  # word at each position of the level's array
    starts = np.zeros(1, dtype=np.int64)
    sizes = np.full(1, V, dtype=np.int64)
    nodes = np.zeros(1, dtype=np.int64)  # inner-node id of each segment
    next_id = 1
    leaf_parent = np.full(V, -1, dtype=np.int64)
    leaf_code = np.zeros(V, dtype=np.int8)
    inner_parent = np.full(V - 1, -1, dtype=np.int64)
    inner_code = np.zeros(V - 1, dtype=np.int8)

    while sizes.size:
        seg_w = None
        if weights is not None:  # each node's weights sum to 1, so tiny nodes keep precision
            seg_w = weights[words]
            seg_w /= np.repeat(np.add.reduceat(seg_w, starts), sizes)
        order, k = _split_level(X, starts, sizes, seg_w, iterations, rng)
        X, words = X[order], words[order]
        # children, left then right for every node, in position order
        child_start = np.stack([starts, starts + k], axis=1).reshape(-1)
        child_size = np.stack([k, sizes - k], axis=1).reshape(-1)
        child_parent = np.repeat(nodes, 2)
        child_code = np.tile(np.array([0, 1], dtype=np.int8), nodes.size)
        leaf = child_size == 1
        leaf_words = words[child_start[leaf]]
        leaf_parent[leaf_words] = child_parent[leaf]
        leaf_code[leaf_words] = child_code[leaf]
        inner = ~leaf
        m = int(inner.sum())
        nodes = np.arange(next_id, next_id + m, dtype=np.int64)
        next_id += m
        inner_parent[nodes] = child_parent[inner]
        inner_code[nodes] = child_code[inner]
        keep = np.repeat(inner, child_size)
        X, words = X[keep], words[keep]
        sizes = child_size[inner]
        starts = np.cumsum(sizes) - sizes

    return Tree.from_parents(leaf_parent, leaf_code, inner_parent, inner_code, kind=kind)
