"""Binary trees over a vocabulary, stored as padded path tables.

Hierarchical softmax (Morin & Bengio 2005; Mikolov et al. 2013, "Distributed Representations of
Words and Phrases") replaces one |V|-way softmax by a walk down a binary tree whose leaves are the
words: each inner node ``n`` holds a vector ``v_n`` and sends the walk right with probability
``sigmoid(h . v_n)``. A word's probability is the product of the branch probabilities on its
root-to-leaf path, so the cost of one word is its path length. A Huffman tree built from word counts
gives frequent words short codes and makes the mean path length approach the unigram entropy
(Shannon: H <= mean Huffman code length < H + 1), while a balanced tree spends log2|V| bits on every
word.

A :class:`Tree` is only tables, built once and read afterwards (fastText's ``loss.cc`` does the
same): for every leaf ``v``

* ``path_nodes[v, :path_lengths[v]]``: inner-node ids on the root-to-leaf path, root first, ids in
  ``[0, num_inner - 1]``; padded with ``-1``;
* ``path_codes[v, :path_lengths[v]]``: the branch taken at each of those nodes, ``1`` = right =
  ``sigmoid(h . v_node)``, ``0`` = left; padded with ``-1``.

Inner node 0 is always the root, and a parent's id is smaller than its children's.
"""

from __future__ import annotations

import math
import numbers
import os
import zipfile
from typing import Dict, Optional, Sequence, Tuple, Union

import numpy as np

__all__ = [
    "Tree",
    "build_huffman_tree",
    "build_balanced_tree",
    "unigram_entropy",
    "information_table",
    "validate_counts",
]

ArrayLike = Union[Sequence[int], np.ndarray]


# ----------------------------------------------------------------------------------------------
# Input validation
# ----------------------------------------------------------------------------------------------


def validate_counts(counts: ArrayLike, min_leaves: int = 2) -> np.ndarray:
    """Check word counts and return them as a 1-D array of Python-exact integers.

    Counts must be a 1-D sequence of at least ``min_leaves`` positive integers (integral floats
    such as ``3.0`` are accepted). Returns an ``int64`` array when every count fits, otherwise an
    ``object`` array of Python ints so that huge counts never overflow.

    Raises:
        ValueError: naming the problem and the first offending position.
    """
    if isinstance(counts, (str, bytes)):
        raise ValueError(f"counts must be a sequence of positive integers, got a {type(counts).__name__}")
    if isinstance(counts, np.ndarray):
        arr = counts
    else:
        try:
            arr = np.asarray(list(counts), dtype=object)
        except TypeError as exc:
            raise ValueError(f"counts must be a sequence of positive integers: {exc}") from None
    if arr.ndim != 1:
        raise ValueError(f"counts must be 1-D, got shape {tuple(arr.shape)}")
    if arr.shape[0] < min_leaves:
        raise ValueError(
            f"a tree needs at least {min_leaves} words, got {arr.shape[0]} count(s)"
        )
    if arr.dtype == np.bool_:
        raise ValueError("counts must be integers, got booleans")
    if arr.dtype.kind in "iu":
        bad = np.flatnonzero(arr <= 0)
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"counts must be positive: counts[{i}] = {arr[i]}")
        if arr.dtype.kind == "u" and arr.max() >= 2**62:  # would wrap negative as int64
            return np.asarray(arr.tolist(), dtype=object)
        return arr.astype(np.int64)
    if arr.dtype.kind == "f":
        nan = np.flatnonzero(~np.isfinite(arr))
        if nan.size:
            i = int(nan[0])
            raise ValueError(f"counts must be finite integers: counts[{i}] = {arr[i]}")
        frac = np.flatnonzero(arr != np.floor(arr))
        if frac.size:
            i = int(frac[0])
            raise ValueError(f"counts must be integers: counts[{i}] = {arr[i]!r}")
        bad = np.flatnonzero(arr <= 0)
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"counts must be positive: counts[{i}] = {arr[i]}")
        if np.all(arr < 2.0**62):
            return arr.astype(np.int64)
        return np.asarray([int(x) for x in arr], dtype=object)
    # object or other dtype: check element by element (slow path, only for odd inputs)
    out = []
    for i, x in enumerate(arr.tolist()):
        if isinstance(x, bool) or not isinstance(x, numbers.Real):
            raise ValueError(f"counts must be integers: counts[{i}] = {x!r}")
        if isinstance(x, float) and not math.isfinite(x):
            raise ValueError(f"counts must be finite integers: counts[{i}] = {x!r}")
        if x != int(x):
            raise ValueError(f"counts must be integers: counts[{i}] = {x!r}")
        if x <= 0:
            raise ValueError(f"counts must be positive: counts[{i}] = {x!r}")
        out.append(int(x))
    if max(out) < 2**62:
        return np.asarray(out, dtype=np.int64)
    return np.asarray(out, dtype=object)


# ----------------------------------------------------------------------------------------------
# The tree tables
# ----------------------------------------------------------------------------------------------


class Tree:
    """Padded root-to-leaf path tables of a binary tree with ``num_leaves`` leaves.

    Args:
        path_nodes: int64 ``[V, L]``, inner-node ids on each leaf's path (root first), ``-1`` padded.
        path_codes: int ``[V, L]``, branch codes (1 = right = sigmoid(h . v_node)), ``-1`` padded.
        path_lengths: int64 ``[V]``, number of valid entries in each row.
        kind: a label ("huffman", "balanced", "clustered", ...) kept for reports and saved files.
        validate: check the structural invariants (ids in range, -1 padding, root first); the
            builders skip it for speed, loading a file always checks.

    Attributes:
        num_leaves: V, the number of words.
        num_inner: V - 1, the number of inner nodes (rows of the H-softmax weight).
        max_length: L, the padded path length (the longest code).
    """

    def __init__(
        self,
        path_nodes: np.ndarray,
        path_codes: np.ndarray,
        path_lengths: np.ndarray,
        kind: str = "custom",
        validate: bool = True,
    ) -> None:
        path_nodes = np.asarray(path_nodes, dtype=np.int64)
        path_codes = np.asarray(path_codes, dtype=np.int8)
        path_lengths = np.asarray(path_lengths, dtype=np.int64)
        if path_nodes.ndim != 2 or path_codes.shape != path_nodes.shape:
            raise ValueError(
                f"path_nodes and path_codes must both be [V, L], got {path_nodes.shape} and "
                f"{path_codes.shape}"
            )
        if path_lengths.shape != (path_nodes.shape[0],):
            raise ValueError(
                f"path_lengths must be [V] = [{path_nodes.shape[0]}], got {path_lengths.shape}"
            )
        if path_nodes.shape[0] < 2:
            raise ValueError(f"a tree needs at least 2 leaves, got {path_nodes.shape[0]}")
        self.path_nodes = path_nodes
        self.path_codes = path_codes
        self.path_lengths = path_lengths
        self.kind = str(kind)
        if validate:
            self.check()

    # -- basic facts ---------------------------------------------------------------------------
    @property
    def num_leaves(self) -> int:
        return int(self.path_nodes.shape[0])

    @property
    def num_inner(self) -> int:
        return self.num_leaves - 1

    @property
    def max_length(self) -> int:
        return int(self.path_nodes.shape[1])

    @property
    def path_mask(self) -> np.ndarray:
        """bool ``[V, L]``: True on the valid (non-padded) path slots."""
        return np.arange(self.max_length)[None, :] < self.path_lengths[:, None]

    def __repr__(self) -> str:
        return (
            f"Tree(kind={self.kind!r}, num_leaves={self.num_leaves}, "
            f"max_length={self.max_length}, mean_depth={self.path_lengths.mean():.3f})"
        )

    def code(self, leaf: int) -> str:
        """The leaf's branch codes as a string, root first, e.g. ``"011"``."""
        if not 0 <= leaf < self.num_leaves:
            raise IndexError(f"leaf must be in [0, {self.num_leaves - 1}], got {leaf}")
        n = int(self.path_lengths[leaf])
        return "".join(str(int(c)) for c in self.path_codes[leaf, :n])

    def check(self) -> None:
        """Structural invariants every builder must satisfy (cheap, vectorised)."""
        V, L = self.path_nodes.shape
        if self.path_lengths.min() < 1 or self.path_lengths.max() != L:
            raise ValueError(
                f"path lengths must be in [1, L={L}] with max == L, got "
                f"[{self.path_lengths.min()}, {self.path_lengths.max()}]"
            )
        mask = self.path_mask
        nodes, codes = self.path_nodes, self.path_codes
        if np.any(nodes[mask] < 0) or np.any(nodes[mask] >= V - 1):
            raise ValueError(f"inner-node ids must lie in [0, {V - 2}]")
        if np.any(nodes[~mask] != -1) or np.any(codes[~mask] != -1):
            raise ValueError("padded path slots must hold -1")
        if np.any((codes[mask] != 0) & (codes[mask] != 1)):
            raise ValueError("branch codes must be 0 or 1")
        if np.any(nodes[:, 0] != 0):
            raise ValueError("every path must start at the root, inner node 0")

    # -- statistics ----------------------------------------------------------------------------
    def mean_code_length(self, counts: Optional[ArrayLike] = None) -> float:
        """Mean path length in bits, weighted by ``counts`` (unweighted mean when None)."""
        if counts is None:
            return float(self.path_lengths.mean())
        c = validate_counts(counts)
        if c.shape[0] != self.num_leaves:
            raise ValueError(f"got {c.shape[0]} counts for a tree with {self.num_leaves} leaves")
        if c.dtype == object:
            total = sum(c.tolist())
            return float(sum(int(a) * int(b) for a, b in zip(c.tolist(), self.path_lengths)) / total)
        c = c.astype(np.float64)
        return float(np.dot(c, self.path_lengths) / c.sum())

    def kraft_sum(self) -> float:
        """Sum over leaves of 2^-length; exactly 1 for a full binary tree."""
        return float(np.sum(np.ldexp(1.0, -self.path_lengths.astype(np.int64))))

    # -- persistence ---------------------------------------------------------------------------
    def save(self, path: Union[str, os.PathLike]) -> None:
        """Write the tables to an ``.npz`` file (atomically: temporary file, then rename)."""
        from .export import atomic_open

        with atomic_open(path, "wb") as f:
            np.savez(
                f,
                path_nodes=self.path_nodes,
                path_codes=self.path_codes,
                path_lengths=self.path_lengths,
                kind=np.asarray(self.kind),
            )

    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "Tree":
        """Read tables written by :meth:`save`; the invariants are checked again.

        Raises:
            ValueError: naming the file, for anything but an ``.npz`` of integer tables that
                pass :meth:`check` (a truncated or foreign file included).
        """
        name = os.fspath(path)
        try:
            data = np.load(name, allow_pickle=False)
            if not isinstance(data, np.lib.npyio.NpzFile):
                raise ValueError("a single array, not an .npz archive")
            with data:
                missing = {"path_nodes", "path_codes", "path_lengths"} - set(data.files)
                if missing:
                    raise ValueError(f"missing {sorted(missing)}")
                tables = {k: data[k] for k in ("path_nodes", "path_codes", "path_lengths")}
                kind = str(data["kind"]) if "kind" in data.files else "custom"
        except FileNotFoundError:
            raise
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise ValueError(f"{name}: not a tree file ({exc})") from None
        for key, table in tables.items():
            if table.dtype.kind not in "iu":
                raise ValueError(f"{name}: not a tree file ({key} has dtype {table.dtype}, expected integers)")
        try:
            return cls(tables["path_nodes"], tables["path_codes"], tables["path_lengths"], kind=kind)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None

    # -- Paddle's built-in op --------------------------------------------------------------------
    def to_paddle_hsigmoid(self) -> Dict[str, object]:
        """Arguments for Paddle's ``F.hsigmoid_loss`` with this tree as a custom tree.

        Returns a dict with ``num_classes`` (Paddle wants the number of *leaves* here; its weight
        must then be ``[num_inner, D]``), ``path_table`` and ``path_code`` (int64 ``[V, L]``, -1
        padded; index them by the batch's labels before calling). Note that the built-in adds
        ln 2 per padded slot: ``hsigmoid_loss = exact NLL + ln2 * (L - path_length)``.
        """
        return {
            "num_classes": self.num_leaves,
            "path_table": self.path_nodes.copy(),
            "path_code": self.path_codes.astype(np.int64),
        }

    # -- construction from parent pointers -----------------------------------------------------
    @classmethod
    def from_parents(
        cls,
        leaf_parent: np.ndarray,
        leaf_code: np.ndarray,
        inner_parent: np.ndarray,
        inner_code: np.ndarray,
        kind: str = "custom",
    ) -> "Tree":
        """Build the path tables from parent pointers, vectorised over leaves.

        Args:
            leaf_parent: int ``[V]``, the inner node above each leaf.
            leaf_code: int ``[V]``, 1 if the leaf is its parent's right child.
            inner_parent: int ``[V-1]``, the parent of each inner node, ``-1`` for the root (node 0).
            inner_code: int ``[V-1]``, 1 if the inner node is its parent's right child.

        Parent ids need not be ordered. The loops run once per tree level (or log2 of the depth),
        never once per word.
        """
        leaf_parent = np.asarray(leaf_parent, dtype=np.int64)
        leaf_code = np.asarray(leaf_code, dtype=np.int8)
        inner_parent = np.asarray(inner_parent, dtype=np.int64)
        inner_code = np.asarray(inner_code, dtype=np.int8)
        V = leaf_parent.shape[0]
        if inner_parent.shape != (V - 1,) or inner_parent[0] != -1:
            raise ValueError("inner_parent must be [V-1] with the root (node 0) at -1")
        # Depth of every inner node by pointer jumping: dist[i] = hops from i to jump[i].
        dist = (inner_parent >= 0).astype(np.int64)
        jump = inner_parent.copy()
        for _ in range(2 + int(math.log2(V)) * 2 + 64):
            live = np.flatnonzero(jump >= 0)
            if live.size == 0:
                break
            target = jump[live]
            dist[live] += dist[target]
            jump[live] = jump[target]
        else:
            raise ValueError("parent pointers do not lead to the root (a cycle?)")
        depth = dist[leaf_parent] + 1  # path length = number of inner nodes above the leaf
        L = int(depth.max())
        path_nodes = np.full((V, L), -1, dtype=np.int64)
        path_codes = np.full((V, L), -1, dtype=np.int8)
        flat_nodes = path_nodes.reshape(-1)
        flat_codes = path_codes.reshape(-1)
        # Walk all leaves up at once, writing each ancestor into its root-first slot.
        base = np.arange(V, dtype=np.int64) * L
        node, code, slot = leaf_parent, leaf_code, depth - 1
        while base.size:
            flat_nodes[base + slot] = node
            flat_codes[base + slot] = code
            code = inner_code[node]
            node = inner_parent[node]
            slot = slot - 1
            keep = node >= 0
            if not keep.all():
                base, node, code, slot = base[keep], node[keep], code[keep], slot[keep]
        return cls(path_nodes, path_codes, depth, kind=kind, validate=False)


# ----------------------------------------------------------------------------------------------
# Builders
# ----------------------------------------------------------------------------------------------


def build_huffman_tree(counts: ArrayLike) -> Tree:
    """Huffman tree (Huffman 1952) over word counts: the prefix code minimising sum(count * depth).

    Two-queue construction (van Leeuwen 1976; word2vec.c does the same): leaves sorted by count
    wait in one queue, merged nodes are produced in non-decreasing weight order into a second
    queue, and each step merges the two lightest heads; O(V) after the sort.

    Deterministic tie-breaking: leaves are sorted by (count, word id); on equal weights a leaf is
    taken before a merged node. Of the two nodes merged, the first taken (lighter) becomes the
    left child (code 0) and the second the right child (code 1).

    Args:
        counts: ``[V]`` positive integer counts, V >= 2.

    Returns:
        A :class:`Tree` with ``kind="huffman"``.

    Raises:
        ValueError: for empty, single-word, non-integer, NaN, zero or negative counts.
    """
    c = validate_counts(counts)
    V = c.shape[0]
    order = np.argsort(c, kind="stable")
    leaf_w = c[order].tolist()  # Python ints: exact, never overflow
    order_l = order.tolist()
    inner_w = [0] * (V - 1)
    left = [0] * (V - 1)  # children as node ids: leaves 0..V-1, merged node k -> V + k
    right = [0] * (V - 1)
    i = 0  # head of the leaf queue
    j = 0  # head of the merged queue
    for k in range(V - 1):
        # first (lighter) child
        if i < V and (j >= k or leaf_w[i] <= inner_w[j]):
            a, wa = order_l[i], leaf_w[i]
            i += 1
        else:
            a, wa = V + j, inner_w[j]
            j += 1
        # second child
        if i < V and (j >= k or leaf_w[i] <= inner_w[j]):
            b, wb = order_l[i], leaf_w[i]
            i += 1
        else:
            b, wb = V + j, inner_w[j]
            j += 1
        left[k] = a
        right[k] = b
        inner_w[k] = wa + wb
    # Merged node k gets inner id (V-2) - k, so the root (last merge) is 0 and parents precede
    # children.
    left_a = np.asarray(left, dtype=np.int64)
    right_a = np.asarray(right, dtype=np.int64)
    inner_id = (V - 2) - np.arange(V - 1, dtype=np.int64)
    parent = np.full(2 * V - 1, -1, dtype=np.int64)  # over node ids, value = inner id of parent
    code = np.zeros(2 * V - 1, dtype=np.int8)
    parent[left_a] = inner_id
    parent[right_a] = inner_id
    code[right_a] = 1
    leaf_parent = parent[:V]
    leaf_code = code[:V]
    # inner node with inner id t is merged node k = (V-2) - t, i.e. node id V + (V-2) - t
    node_of_inner = V + (V - 2) - np.arange(V - 1, dtype=np.int64)
    inner_parent = parent[node_of_inner]
    inner_code = code[node_of_inner]
    return Tree.from_parents(leaf_parent, leaf_code, inner_parent, inner_code, kind="huffman")


def build_balanced_tree(num_leaves: int) -> Tree:
    """Balanced binary tree: every leaf at depth floor or ceil of log2(V).

    The tree is the implicit heap over 2V-1 nodes: inner node i (0..V-2, root 0) has children
    2i+1 (left, code 0) and 2i+2 (right, code 1); word v sits at heap position V-1+v, so lower word
    ids (the frequent words, when the vocabulary is sorted by count) get the shallower leaves when
    V is not a power of two.
    """
    if isinstance(num_leaves, bool) or not isinstance(num_leaves, numbers.Integral):
        raise ValueError(f"num_leaves must be an integer, got {num_leaves!r}")
    V = int(num_leaves)
    if V < 2:
        raise ValueError(f"a tree needs at least 2 leaves, got num_leaves={V}")
    heap = np.arange(2 * V - 1, dtype=np.int64)
    parent = (heap - 1) // 2
    parent[0] = -1
    code = (heap % 2 == 0).astype(np.int8)  # even positions (2i+2) are right children
    code[0] = -1
    leaf_pos = heap[V - 1 :]
    return Tree.from_parents(
        parent[leaf_pos], code[leaf_pos], parent[: V - 1], code[: V - 1], kind="balanced"
    )


# ----------------------------------------------------------------------------------------------
# Information helpers (the seed's table)
# ----------------------------------------------------------------------------------------------


def unigram_entropy(counts: ArrayLike) -> float:
    """Shannon entropy in bits of the unigram distribution ``counts / sum(counts)``."""
    c = validate_counts(counts, min_leaves=1).astype(np.float64)
    p = c / c.sum()
    return float(-(p * np.log2(p)).sum())


def information_table(counts: ArrayLike) -> Dict[str, float]:
    """The seed's comparison for one corpus: bits per word under each tree vs the entropy.

    Returns a dict with ``vocab_size``, ``log2_vocab`` (a balanced tree's ideal depth),
    ``balanced_mean_code_length`` and ``huffman_mean_code_length`` (weighted by counts),
    ``unigram_entropy`` (bits), ``unigram_perplexity`` (2^H) and ``huffman_speedup`` (balanced /
    Huffman mean path length, the expected H-softmax speed-up from the tree alone).
    """
    c = validate_counts(counts)
    V = int(c.shape[0])
    huff = build_huffman_tree(c).mean_code_length(c)
    bal = build_balanced_tree(V).mean_code_length(c)
    H = unigram_entropy(c)
    return {
        "vocab_size": V,
        "log2_vocab": math.log2(V),
        "balanced_mean_code_length": bal,
        "huffman_mean_code_length": huff,
        "unigram_entropy": H,
        "unigram_perplexity": 2.0**H,
        "huffman_speedup": bal / huff,
    }


def format_information_table(info: Dict[str, float]) -> str:
    """Render :func:`information_table` as aligned text lines."""
    rows: Tuple[Tuple[str, str], ...] = (
        ("vocabulary size |V|", f"{info['vocab_size']:,}"),
        ("log2 |V| (balanced tree)", f"{info['log2_vocab']:.2f} bits"),
        ("balanced tree, mean path", f"{info['balanced_mean_code_length']:.2f} bits"),
        ("Huffman tree, mean path", f"{info['huffman_mean_code_length']:.2f} bits"),
        ("unigram entropy H", f"{info['unigram_entropy']:.2f} bits"),
        ("unigram perplexity 2^H", f"{info['unigram_perplexity']:,.0f}"),
        ("balanced / Huffman path", f"{info['huffman_speedup']:.2f}x"),
    )
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)
