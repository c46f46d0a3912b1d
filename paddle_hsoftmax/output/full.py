"""The full softmax: one logit per word, normalised over the whole vocabulary.

Paper: Bengio et al., "A Neural Probabilistic Language Model" (JMLR 2003); Press & Wolf, "Using
the Output Embedding to Improve Language Models" (EACL 2017) and Inan et al., "Tying Word Vectors
and Word Classifiers" (ICLR 2017) for weight tying.

Idea: ``logits = h W^T + b`` with one row of ``W`` per word, and::

    -log p(w | h) = logsumexp(logits) - logits[w]

This is the exact baseline every other output layer approximates or factorises; it costs
``O(V D)`` per position for the loss as well as for the full distribution. The log-probabilities
are computed as ``logits - logsumexp(logits)``: Paddle 3.3's CPU ``F.log_softmax`` and
``F.cross_entropy`` are superlinear in the row length (about 8 s for ``[1024, 8000]``), while
``paddle.logsumexp`` is linear.

With weight tying the output matrix is the input embedding table: pass ``weight=embedding.weight``
(``[V, D]``, the layout of ``paddle.nn.Embedding``) and the layer uses that parameter instead of
creating its own, so both roles train one matrix.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import paddle

from .base import LogitOutputLayer

__all__ = ["FullSoftmax"]


class FullSoftmax(LogitOutputLayer):
    """Exact softmax over all ``V`` words.

    Args:
        feature_size: D, size of the hidden state.
        num_classes: V, the vocabulary size.
        bias: learn a bias per word.
        weight: optional existing ``[V, D]`` tensor to use as the output matrix instead of a new
            parameter (weight tying): typically ``embedding.weight`` of a ``paddle.nn.Embedding(V,
            D)``. It should be a trainable parameter; gradients from this layer are added to
            those from its other uses. It then also appears in this layer's ``state_dict`` under
            ``weight`` (the model's ``parameters()`` lists it once). Note that
            ``paddle.nn.Linear(D, V).weight`` is ``[D, V]``, the transpose of what is needed.
        ignore_index: target value that gives NLL 0 and no gradient.
        check_targets: see :class:`~paddle_hsoftmax.output.base.OutputLayer`.

    Parameters:
        weight: ``[V, D]``, row i = output vector of word i (new, or the tied tensor).
        bias: ``[V]`` or None.

    Shape:
        - forward: hidden ``[..., D]``, target ``[...]`` -> nll ``[...]``
        - full_log_prob: ``[..., D] -> [..., V]``; predict: ``-> ([..., k], [..., k])``
    """

    def __init__(
        self,
        feature_size: int,
        num_classes: int,
        bias: bool = True,
        weight: Optional[paddle.Tensor] = None,
        ignore_index: int = -100,
        check_targets: bool = True,
    ) -> None:
        super().__init__(feature_size, num_classes, ignore_index, check_targets)
        self.tied = weight is not None
        if weight is not None:
            if not isinstance(weight, paddle.Tensor):
                raise TypeError(f"weight must be a paddle Tensor [V, D], got {type(weight).__name__}")
            if list(weight.shape) != [self.num_classes, self.feature_size]:
                raise ValueError(
                    f"tied weight must be [num_classes, feature_size] = "
                    f"[{self.num_classes}, {self.feature_size}], got {list(weight.shape)}"
                )
            self.weight = weight
        else:
            std = 1.0 / np.sqrt(feature_size)
            self.weight = self.create_parameter(
                [self.num_classes, self.feature_size],
                default_initializer=paddle.nn.initializer.Uniform(-std, std),
            )
        if bias:
            self.bias = self.create_parameter(
                [self.num_classes], is_bias=True, default_initializer=paddle.nn.initializer.Constant(0.0)
            )
        else:
            self.bias = None

    def extra_repr(self) -> str:
        return (
            f"feature_size={self.feature_size}, num_classes={self.num_classes}, "
            f"bias={self.bias is not None}, tied={self.tied}"
        )

    def logits(self, hidden: paddle.Tensor) -> paddle.Tensor:
        """Unnormalised scores ``h W^T + b`` for flat ``hidden[N, D]``; returns ``[N, V]``."""
        logits = paddle.matmul(hidden, self.weight, transpose_y=True)  # (N, V)
        if self.bias is not None:
            logits = logits + self.bias
        return logits
