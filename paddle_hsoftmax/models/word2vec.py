"""Word vectors with hierarchical softmax or negative sampling: skip-gram and CBOW (Mikolov et al. 2013).

- **skip-gram**: every context word's input vector predicts the centre word; all K context
  vectors of a centre are scored against the centre's one tree path in a single batched product
  ``(B, K, D) x (B, D, L)`` (word2vec.c shares the path the same way).
- **CBOW**: the mean of the context vectors predicts the centre word. As in word2vec.c and
  gensim (``cbow_mean=1``), each context vector receives the full gradient of the mean, not a
  1/K share.

The loss is the **sum** of the pairs' NLLs, so plain SGD with learning rate ``alpha`` applies
word2vec's per-pair update ``alpha * gradient`` (accumulated over the batch).

**Negative sampling** (``loss="ns"``, :class:`NegativeSampling`): instead of the centre's tree
path, the centre's own output vector with label 1 and ``negative`` words drawn from the unigram
distribution raised to 0.75 with label 0; a pair's loss is
``-log sigmoid(h . u_centre) - sum_n log sigmoid(-h . u_n)``, with its own output table
``syn1neg [V, D]`` (zeros at the start, as in word2vec.c). Not a normalised distribution: its
loss is not an NLL.

Shapes: centres ``[B]``, contexts ``[B, K]`` with ``-1`` in empty slots; negatives ``[B, K, n]``
(skip-gram) or ``[B, n]`` (CBOW), ``-1`` = none.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import paddle
import paddle.nn as nn

from ..output import HierarchicalSoftmax, OutputLayer
from ..tree import Tree
from .word2vec_arrays import initial_vectors

__all__ = ["Word2Vec", "NegativeSampling"]


class NegativeSampling(nn.Layer):
    """The negative-sampling output: ``syn1neg [V, D]`` (zeros) scored against given targets.

    ``forward(hidden[..., D], targets[..., 1 + n], grad_scale=None) -> loss[...]``: slot 0 of
    ``targets`` is the true word (label 1), the others are negatives (label 0); ``-1`` = no
    target (no loss, no gradient). ``grad_scale[..., 1 + n]`` multiplies the gradient flowing into
    each target's output vector (not into ``hidden``): the Paddle path's cap on rows that occur
    many times in one batch.
    """

    def __init__(self, vocab_size: int, dim: int, sparse: bool = True) -> None:
        super().__init__()
        self.num_classes, self.feature_size = vocab_size, dim
        self.table = nn.Embedding(vocab_size, dim, sparse=sparse)
        self.table.weight.set_value(np.zeros((vocab_size, dim), dtype="float32"))

    @property
    def weight(self) -> paddle.Tensor:
        return self.table.weight

    def forward(self, hidden: paddle.Tensor, targets: paddle.Tensor,
                grad_scale: Optional[paddle.Tensor] = None) -> paddle.Tensor:
        valid = targets >= 0  # (..., 1 + n)
        safe = paddle.where(valid, targets, paddle.zeros_like(targets))
        u = self.table(safe)  # (..., 1 + n, D)
        if grad_scale is not None:
            s = grad_scale.unsqueeze(-1)
            u = u * s + (u * (1.0 - s)).detach()  # value u, gradient scaled
        logits = (u * hidden.unsqueeze(-2)).sum(axis=-1)  # (..., 1 + n)
        n = int(targets.shape[-1])
        sign = paddle.to_tensor(np.array([1.0] + [-1.0] * (n - 1), dtype="float32"))  # (1 + n,)
        loss = -paddle.nn.functional.log_sigmoid(logits * sign)  # (..., 1 + n)
        return (loss * valid.astype("float32")).sum(axis=-1)


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
        loss: ``"hs"`` (the H-softmax over ``tree``, or ``output``) or ``"ns"`` (negative
            sampling, :class:`NegativeSampling`; ``tree`` may be None).
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
        loss: str = "hs",
    ) -> None:
        super().__init__()
        if loss not in ("hs", "ns"):
            raise ValueError(f"loss must be 'hs' or 'ns', got {loss!r}")
        if loss == "ns":
            if output is not None:
                raise ValueError("loss='ns' has its own output (syn1neg); give no output layer")
            output = NegativeSampling(vocab_size, dim, sparse=sparse)
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
        self.loss = loss
        self.dim = dim
        self.embedding = nn.Embedding(vocab_size, dim, sparse=sparse)
        self.embedding.weight.set_value(initial_vectors(vocab_size, dim, seed))
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
        negatives: Optional[paddle.Tensor] = None,
    ) -> Tuple[paddle.Tensor, paddle.Tensor]:
        """Return (sum of pair losses, number of pairs) for a batch. With ``loss="ns"``,
        ``negatives`` are the draws (a draw equal to the centre counts as none) and
        ``node_grad_scale`` scales the output rows' gradients (shaped like the targets:
        ``[B, K, 1 + n]`` skip-gram, ``[B, 1 + n]`` CBOW)."""
        mask = (contexts >= 0).astype("float32")  # (B, K)
        safe = paddle.where(contexts >= 0, contexts, paddle.zeros_like(contexts))
        vectors = self.embedding(safe) * mask.unsqueeze(-1)  # (B, K, D)
        if self.loss == "ns":
            return self._ns(centres, vectors, mask, negatives, node_grad_scale)
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

    def _ns(self, centres, vectors, mask, negatives, scale):
        if negatives is None:
            raise ValueError("loss='ns' needs the negative draws")
        B, K = mask.shape
        if self.mode == "skipgram":
            true = centres.reshape([B, 1, 1]).expand([B, K, 1])  # (B, K, 1)
            negatives = paddle.where(negatives == true, paddle.full_like(negatives, -1), negatives)
            targets = paddle.concat([true, negatives], axis=-1)  # (B, K, 1 + n)
            loss = self.output(vectors, targets, scale)  # (B, K)
            return (loss * mask).sum(), mask.sum()
        count = mask.sum(axis=1, keepdim=True)  # (B, 1)
        summed = vectors.sum(axis=1)  # (B, D)
        mean = summed / paddle.clip(count, min=1.0)
        hidden = summed + (mean - summed).detach()  # value: the mean; gradient: 1 per context
        true = centres.reshape([B, 1])
        negatives = paddle.where(negatives == true, paddle.full_like(negatives, -1), negatives)
        loss = self.output(hidden, paddle.concat([true, negatives], axis=-1), scale)  # (B,)
        has = (count[:, 0] > 0).astype("float32")
        return (loss * has).sum(), has.sum()

    def vectors(self) -> np.ndarray:
        """The input word vectors ``[V, D]`` (what gets exported)."""
        return self.embedding.weight.numpy()
