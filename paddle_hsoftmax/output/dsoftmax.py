"""Differentiated softmax: frequent words get more of the hidden state than rare ones.

Paper: Chen, Grangier & Auli, "Strategies for Training Large Vocabulary Neural Language Models"
(ACL 2016), section 3.3 ("D-softmax").

Idea: word ids are sorted by decreasing frequency (id 0 most frequent) and cut into contiguous
bands. The hidden state ``h`` is cut into as many contiguous segments, and band ``k`` only sees
its own segment::

    logits[band k] = h[seg_k] W_k^T + b[band k]        W_k: [|band_k|, d_k]

The output matrix is block diagonal, so the frequent words keep a wide ``d_k`` while the long
tail gets a narrow one: fewer parameters and fewer multiply-adds than the full softmax (``sum_k
|band_k| d_k`` instead of ``V D``). The logits of all bands are concatenated and normalised by
one softmax over all ``V`` words, so the layer is exact: ``-log p(w | h) = logsumexp(logits) -
logits[w]``. As in :mod:`.full`, the log-probabilities use ``paddle.logsumexp`` rather than
Paddle's slow CPU ``F.log_softmax``.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np
import paddle

from .base import LogitOutputLayer

__all__ = ["DifferentiatedSoftmax", "default_bands"]


class DifferentiatedSoftmax(LogitOutputLayer):
    """Exact D-softmax with ``K`` frequency bands.

    Args:
        feature_size: D, size of the hidden state.
        band_sizes: ``K`` positive word counts, most frequent band first; they partition
            ``[0, V)`` into contiguous id ranges, so ``V = sum(band_sizes)``.
        band_dims: ``K`` positive segment widths of the hidden state, summing to ``D``; band k
            reads ``h[..., dim_offsets[k]:dim_offsets[k+1]]``. Usually non-increasing.
        num_classes: optional V; when given, ``band_sizes`` must sum to it.
        bias: learn a bias per word (one ``[V]`` vector; band k uses its slice).
        ignore_index: target value that gives NLL 0 and no gradient.
        check_targets: see :class:`~paddle_hsoftmax.output.base.OutputLayer`.

    See :func:`default_bands` for a three-band split that depends only on V and D.

    Attributes:
        band_offsets: ``[0, s_0, s_0 + s_1, ..., V]``; band k holds ids
            ``band_offsets[k] <= w < band_offsets[k+1]``.
        dim_offsets: ``[0, d_0, d_0 + d_1, ..., D]``, the hidden-state segments.

    Parameters:
        weights: ``ParameterList`` of ``K`` matrices, ``weights[k]`` is ``[|band_k|, d_k]``.
        bias: ``[V]`` or None.

    Shape:
        - forward: hidden ``[..., D]``, target ``[...]`` -> nll ``[...]``
        - full_log_prob: ``[..., D] -> [..., V]``; predict: ``-> ([..., k], [..., k])``
    """

    def __init__(
        self,
        feature_size: int,
        band_sizes: Sequence[int],
        band_dims: Sequence[int],
        num_classes: Optional[int] = None,
        bias: bool = True,
        ignore_index: int = -100,
        check_targets: bool = True,
    ) -> None:
        sizes = _positive_ints("band_sizes", band_sizes)
        dims = _positive_ints("band_dims", band_dims)
        if len(sizes) != len(dims):
            raise ValueError(
                f"band_sizes and band_dims need one entry per band, got {len(sizes)} sizes {sizes} "
                f"and {len(dims)} dims {dims}"
            )
        if sum(dims) != feature_size:
            raise ValueError(f"band_dims must sum to feature_size={feature_size}, got {dims} (sum {sum(dims)})")
        if num_classes is not None and sum(sizes) != num_classes:
            raise ValueError(
                f"band_sizes must sum to num_classes={num_classes}, got {sizes} (sum {sum(sizes)})"
            )
        super().__init__(feature_size, sum(sizes), ignore_index, check_targets)
        self.band_sizes: List[int] = sizes
        self.band_dims: List[int] = dims
        self.band_offsets: List[int] = np.concatenate([[0], np.cumsum(sizes)]).astype(int).tolist()
        self.dim_offsets: List[int] = np.concatenate([[0], np.cumsum(dims)]).astype(int).tolist()
        weights = []
        for size, dim in zip(sizes, dims):
            std = 1.0 / np.sqrt(dim)
            weights.append(
                self.create_parameter([size, dim], default_initializer=paddle.nn.initializer.Uniform(-std, std))
            )
        self.weights = paddle.nn.ParameterList(weights)
        if bias:
            self.bias = self.create_parameter(
                [self.num_classes], is_bias=True, default_initializer=paddle.nn.initializer.Constant(0.0)
            )
        else:
            self.bias = None

    def extra_repr(self) -> str:
        return (
            f"feature_size={self.feature_size}, num_classes={self.num_classes}, "
            f"band_sizes={self.band_sizes}, band_dims={self.band_dims}, bias={self.bias is not None}"
        )

    @property
    def num_bands(self) -> int:
        return len(self.band_sizes)

    def num_parameters(self) -> int:
        """Number of trainable scalars: ``sum_k |band_k| d_k`` (+ ``V`` with bias)."""
        return int(sum(int(np.prod(p.shape)) for p in self.parameters()))

    def band_of(self, word_ids):
        """Band index of each word id: NumPy array / list -> int64 NumPy array, Tensor -> int64
        Tensor of the same shape. Raises ``ValueError`` for ids outside ``[0, V-1]``."""
        if isinstance(word_ids, paddle.Tensor):
            ids = word_ids.astype("int64")
            if ids.size > 0:
                lo, hi = int(ids.min()), int(ids.max())
                self._check_ids(lo, hi)
            band = paddle.zeros_like(ids)
            for edge in self.band_offsets[1:-1]:
                band = band + (ids >= edge).astype("int64")
            return band
        ids = np.asarray(word_ids, dtype=np.int64)
        if ids.size > 0:
            self._check_ids(int(ids.min()), int(ids.max()))
        return np.searchsorted(np.asarray(self.band_offsets[1:-1]), ids, side="right").astype(np.int64)

    def _check_ids(self, lo: int, hi: int) -> None:
        if lo < 0 or hi >= self.num_classes:
            raise ValueError(
                f"word ids should be in [0, {self.num_classes - 1}], but values in range [{lo}, {hi}] were found"
            )

    def logits(self, hidden: paddle.Tensor) -> paddle.Tensor:
        """Unnormalised scores of all bands for flat ``hidden[N, D]``; returns ``[N, V]``."""
        parts = []
        for k, weight in enumerate(self.weights):
            segment = hidden[:, self.dim_offsets[k] : self.dim_offsets[k + 1]]  # (N, d_k)
            parts.append(paddle.matmul(segment, weight, transpose_y=True))  # (N, |band_k|)
        logits = parts[0] if len(parts) == 1 else paddle.concat(parts, axis=-1)  # (N, V)
        if self.bias is not None:
            logits = logits + self.bias
        return logits


def default_bands(num_classes: int, feature_size: int) -> Tuple[List[int], List[int]]:
    """A three-band split in the spirit of Chen et al. (2016): ``(band_sizes, band_dims)``.

    The head band holds the ``min(2000, V // 10)`` most frequent words (at least 1) and gets half
    of the hidden state; the next band holds 4 times as many words and gets a quarter; the rest of
    the vocabulary shares the last quarter. For V = 100k, D = 512 that is ``[2000, 8000, 90000]``
    with ``[256, 128, 128]``. Small cases degrade gracefully: bands that would be empty are
    dropped (the head and middle bands already cover V when V <= 5), and with D < 3 there are
    at most D bands (each needs a width >= 1); a dropped band's words and width go to the last
    band kept.
    """
    if int(num_classes) != num_classes or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes}")
    if int(feature_size) != feature_size or feature_size < 1:
        raise ValueError(f"feature_size must be an integer >= 1, got {feature_size}")
    V, D = int(num_classes), int(feature_size)
    head = max(1, min(2000, V // 10))
    sizes: List[int] = []
    left = V
    for want in (head, 4 * head, None):
        take = left if want is None else min(want, left)
        if take > 0:
            sizes.append(take)
            left -= take
    max_bands = min(3, D)
    if len(sizes) > max_bands:  # merge the trailing bands
        sizes = sizes[: max_bands - 1] + [sum(sizes[max_bands - 1 :])]
    if len(sizes) == 1:
        dims = [D]
    elif len(sizes) == 2:
        dims = [D - D // 2, D // 2]
    else:
        quarter = max(1, D // 4)
        dims = [D - 2 * quarter, quarter, quarter]
    return sizes, dims


def _positive_ints(name: str, values: Sequence[int]) -> List[int]:
    """``values`` as a non-empty list of positive Python ints, or ``ValueError`` naming them."""
    try:
        seq = list(values)
    except TypeError:
        raise ValueError(f"{name} must be a sequence of positive integers, got {values!r}") from None
    if not seq:
        raise ValueError(f"{name} must not be empty")
    out = []
    for v in seq:
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be positive integers, got {seq}")
        out.append(int(v))
    return out
