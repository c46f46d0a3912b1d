"""Output layers and trees by name: what a model or a command line picks from.

    build_output_layer("hsoftmax", D, words, counts, tree=...)   -> an OutputLayer over len(words)
    build_tree("huffman", counts)                                -> a Tree over len(counts) words

``words`` are sorted by decreasing count (id 0 the most frequent), as
:class:`~paddle_hsoftmax.data.vocab.Vocab` keeps them: the D-softmax bands and the adaptive
softmax clusters take the frequent words from the front, the Huffman tree reads the counts, the
CNN-softmax reads the words' characters.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Callable, Optional, Sequence, Union

import numpy as np

from ..tree import Tree, build_balanced_tree, build_huffman_tree
if TYPE_CHECKING:  # the layers import Paddle; choosing a tree by name needs none
    from .base import OutputLayer

__all__ = ["OUTPUT_LAYERS", "TREES", "COUNT_TREES", "build_output_layer", "build_tree", "adaptive_cutoffs"]

log = logging.getLogger(__name__)

OUTPUT_LAYERS = ("softmax", "hsoftmax", "dsoftmax", "cnn", "adaptive")
TREES = ("huffman", "balanced", "clustered")
COUNT_TREES = ("huffman", "balanced")  # the trees that need only the counts


def adaptive_cutoffs(num_classes: int) -> list:
    """Grave et al.'s shape: a head of the most frequent words, then clusters 4x larger each time
    (2,000 / 10,000 words on a large vocabulary; scaled down for small ones)."""
    cuts = [c for c in (2000, 10000, 50000) if c < num_classes - 1]
    if not cuts:
        cuts = [max(1, num_classes // 4)]
    return cuts


def build_output_layer(
    name: str,
    feature_size: int,
    words: Sequence[str],
    counts: Sequence[int],
    tree: Optional[Tree] = None,
    correction_dim: int = 32,
    ignore_index: int = -100,
) -> OutputLayer:
    """The output layer called ``name`` over ``len(words)`` classes.

    Args:
        name: one of :data:`OUTPUT_LAYERS`.
        feature_size: D, the size of the hidden state it reads.
        words, counts: the vocabulary, most frequent first.
        tree: ``hsoftmax`` only; the Huffman tree of ``counts`` when None.
        correction_dim: ``cnn`` only; the per-word correction size (0 = off).
    """
    V = len(words)
    if len(counts) != V:
        raise ValueError(f"{V} words but {len(counts)} counts")
    if name == "softmax":
        from .full import FullSoftmax

        return FullSoftmax(feature_size, V, ignore_index=ignore_index)
    if name == "hsoftmax":
        from .hsoftmax import HierarchicalSoftmax

        return HierarchicalSoftmax(feature_size, tree if tree is not None else build_huffman_tree(counts),
                                   ignore_index=ignore_index)
    if name == "dsoftmax":
        from .dsoftmax import DifferentiatedSoftmax, default_bands

        sizes, dims = default_bands(V, feature_size)
        return DifferentiatedSoftmax(feature_size, sizes, dims, ignore_index=ignore_index)
    if name == "cnn":
        from .cnn_softmax import CNNSoftmax, word_char_table

        # <unk>, </s> (and any <...> token) get one character of their own instead of "<", ">"
        specials = [w for w in words if len(w) > 2 and w.startswith("<") and w.endswith(">")]
        table, chars = word_char_table(words, specials=specials)
        return CNNSoftmax(feature_size, table, len(chars), correction_dim=correction_dim,
                          ignore_index=ignore_index)
    if name == "adaptive":
        from .adaptive import AdaptiveSoftmax

        return AdaptiveSoftmax(feature_size, V, adaptive_cutoffs(V), ignore_index=ignore_index)
    raise ValueError(f"output layer must be one of {OUTPUT_LAYERS}, got {name!r}")


def build_tree(kind: str, counts: Sequence[int], vectors: Union[None, np.ndarray, Callable[[], np.ndarray]] = None,
               seed: int = 0) -> Tree:
    """The tree called ``kind`` over ``len(counts)`` words, most frequent first: the one place
    where a tree is chosen by name (word2vec, the language model, the encoder-decoder, the demo).

    Args:
        kind: one of :data:`TREES`: ``huffman`` (from ``counts``), ``balanced`` (depth
            ceil(log2 V)) or ``clustered`` (recursive 2-means of word vectors, Mnih & Hinton 2008,
            frequency-aware through ``counts``).
        counts: the words' counts ``[V]``.
        vectors: ``clustered`` only: the words' vectors ``[V, D]``, or a function that returns them
            (called only when needed: the tasks train word2vec vectors for it).
        seed: ``clustered`` only: the 2-means seed.
    """
    if kind == "huffman":
        return build_huffman_tree(counts)
    if kind == "balanced":
        return build_balanced_tree(len(counts))
    if kind != "clustered":
        raise ValueError(f"tree must be one of {TREES}, got {kind!r}")
    if vectors is None:
        raise ValueError("a clustered tree needs the words' vectors")
    from ..cluster_tree import build_clustered_tree

    vectors = np.asarray(vectors() if callable(vectors) else vectors, dtype=np.float64)  # (V, D)
    return build_clustered_tree(vectors, counts=np.asarray(counts), seed=seed)
