"""Output layers and trees by name: what a model or a command line picks from.

    build_output_layer("hsoftmax", D, words, counts, tree=...)   -> an OutputLayer over len(words)

``words`` are sorted by decreasing count (id 0 the most frequent), as
:class:`~paddle_hsoftmax.data.vocab.Vocab` keeps them: the D-softmax bands and the adaptive
softmax clusters take the frequent words from the front, the Huffman tree reads the counts, the
CNN-softmax reads the words' characters.
"""

from __future__ import annotations

import logging
from typing import Optional, Sequence

import numpy as np

from ..tree import Tree, build_balanced_tree, build_huffman_tree
from .base import OutputLayer

__all__ = ["OUTPUT_LAYERS", "TREES", "build_output_layer", "build_tree_for", "adaptive_cutoffs"]

log = logging.getLogger(__name__)

OUTPUT_LAYERS = ("softmax", "hsoftmax", "dsoftmax", "cnn", "adaptive")
TREES = ("huffman", "balanced", "clustered")


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


def build_tree_for(kind: str, vocab, sentences: Sequence[Sequence[str]], seed: int = 0, dim: int = 64,
                   epochs: int = 2) -> Tree:
    """The H-softmax tree ``kind`` over ``vocab`` (a :class:`~paddle_hsoftmax.data.vocab.Vocab`).

    ``clustered`` first trains skip-gram vectors (``dim``, ``epochs``) on ``sentences`` with this
    package's word2vec (words missing from ``vocab`` read as ``<unk>``, ``</s>`` closes each
    sentence, as in the language model), then splits them recursively (Mnih & Hinton 2008); the
    word counts make the splits frequency-aware.
    """
    if kind == "huffman":
        return build_huffman_tree(vocab.counts)
    if kind == "balanced":
        return build_balanced_tree(len(vocab))
    if kind != "clustered":
        raise ValueError(f"tree must be one of {TREES}, got {kind!r}")
    from ..cluster_tree import build_clustered_tree
    from ..data.windows import EncodedCorpus
    from ..tasks.word2vec import Word2VecConfig, Word2VecTask

    # the language model's tokens: unknown words as <unk>, </s> closing each sentence
    mapped = [[w if w in vocab.index else "<unk>" for w in s] + ["</s>"] for s in sentences]
    task = Word2VecTask(Word2VecConfig(dim=dim, seed=seed), vocab, EncodedCorpus.encode(mapped, vocab))
    for epoch in range(epochs):
        for batch in task.epoch_batches(epoch):
            task.optimizer.set_lr(task.learning_rate(epoch / epochs))
            result = task.train_step(batch)
            if not result.params_updated:
                task.optimizer.step()
                task.optimizer.clear_grad()
    vectors = np.asarray(task.vectors(), dtype=np.float64)
    log.info("clustered tree: word2vec vectors %s trained on %d sentences", vectors.shape, len(sentences))
    return build_clustered_tree(vectors, counts=vocab.counts, seed=seed)
