"""Word vectors with hierarchical softmax: skip-gram and CBOW (Mikolov et al. 2013).

- **skip-gram**: every context word's input vector predicts the centre word; all K context
  vectors of a centre are scored against the centre's one tree path in a single batched product
  ``(B, K, D) x (B, D, L)`` (word2vec.c shares the path the same way).
- **CBOW**: the mean of the context vectors predicts the centre word. As in word2vec.c and
  gensim (``cbow_mean=1``), each context vector receives the full gradient of the mean, not a
  1/K share.

The loss is the **sum** of the pairs' NLLs, so plain SGD with learning rate ``alpha`` applies
word2vec's per-pair update ``alpha * gradient`` (accumulated over the batch).

Shapes: centres ``[B]``, contexts ``[B, K]`` with ``-1`` in empty slots.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import paddle
import paddle.nn as nn

from ..output import HierarchicalSoftmax, OutputLayer
from ..tree import Tree

__all__ = ["Word2Vec"]


class Word2Vec(nn.Layer):
    """Input word vectors + an H-softmax output over the same vocabulary.

    Args:
        vocab_size: V.
        dim: vector size D.
        tree: tree over the V words (Huffman by default in the CLI).
        mode: ``"skipgram"`` or ``"cbow"``.
        seed: initialisation seed (word2vec.c's uniform(-0.5/D, 0.5/D) input vectors, zero node
            vectors).
        sparse: sparse gradients for both tables (rows touched by the batch only). Paddle's
            ``DataParallel`` reducer cannot all-reduce sparse gradients (it crashes); data
            parallel training exchanges them as rows instead
            (:class:`~paddle_hsoftmax.distributed.GradientSync`, run by the trainer).
        output: another output layer from :mod:`paddle_hsoftmax.output` to use instead of the
            H-softmax over ``tree`` (skip-gram then scores each (context, centre) pair through
            the layer's ``forward``); ``tree`` may be None in that case.
    """

    def __init__(
        self,
        vocab_size: int,
        dim: int,
        tree: Optional[Tree],
        mode: str = "skipgram",
        seed: int = 0,
        sparse: bool = True,
        output: Optional[OutputLayer] = None,
    ) -> None:
        super().__init__()
        if mode not in ("skipgram", "cbow"):
            raise ValueError(f"mode must be 'skipgram' or 'cbow', got {mode!r}")
        if output is None and tree is None:
            raise ValueError("give a tree (for the H-softmax output) or an output layer")
        if output is not None and (output.num_classes != vocab_size or output.feature_size != dim):
            raise ValueError(
                f"output layer is [{output.feature_size} -> {output.num_classes}], expected [{dim} -> {vocab_size}]"
            )
        if tree is not None and tree.num_leaves != vocab_size:
            raise ValueError(f"tree has {tree.num_leaves} leaves for a vocabulary of {vocab_size}")
        self.mode = mode
        self.dim = dim
        rng = np.random.default_rng(seed)
        init = ((rng.random((vocab_size, dim)) - 0.5) / dim).astype("float32")
        self.embedding = nn.Embedding(vocab_size, dim, sparse=sparse)
        self.embedding.weight.set_value(init)
        if output is None:
            output = HierarchicalSoftmax(dim, tree, bias=False, sparse=sparse, check_targets=False)
            output.weight.set_value(np.zeros((tree.num_inner, dim), dtype="float32"))
        self.output = output

    def forward(
        self,
        centres: paddle.Tensor,
        contexts: paddle.Tensor,
        max_length: Optional[int] = None,
        node_grad_scale: Optional[paddle.Tensor] = None,
    ) -> Tuple[paddle.Tensor, paddle.Tensor]:
        """Return (sum of pair NLLs, number of pairs) for a batch."""
        mask = (contexts >= 0).astype("float32")  # (B, K)
        safe = paddle.where(contexts >= 0, contexts, paddle.zeros_like(contexts))
        vectors = self.embedding(safe) * mask.unsqueeze(-1)  # (B, K, D)
        if self.mode == "skipgram":
            if isinstance(self.output, HierarchicalSoftmax):
                nll = self.output.nll_shared_path(vectors, centres, max_length, node_grad_scale)  # (B, K)
            else:
                targets = centres.unsqueeze(1).expand(contexts.shape)  # (B, K)
                nll = self.output(vectors, targets)  # (B, K)
            return (nll * mask).sum(), mask.sum()
        count = mask.sum(axis=1, keepdim=True)  # (B, 1)
        summed = vectors.sum(axis=1)  # (B, D)
        mean = summed / paddle.clip(count, min=1.0)
        hidden = summed + (mean - summed).detach()  # value: the mean; gradient: 1 per context
        options = {"max_length": max_length} if isinstance(self.output, HierarchicalSoftmax) else {}
        nll = self.output(hidden, centres, **options)  # (B,)
        return nll.sum(), paddle.to_tensor(float(centres.shape[0]))

    def vectors(self) -> np.ndarray:
        """The input word vectors ``[V, D]`` (what gets exported)."""
        return self.embedding.weight.numpy()
