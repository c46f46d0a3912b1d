"""Adaptive softmax: Paddle's ``AdaptiveLogSoftmaxWithLoss`` behind the shared interface.

Paper: Grave, Joulin, Cissé, Grangier & Jégou, "Efficient softmax approximation for GPUs"
(ICML 2017).

Idea: word ids are sorted by decreasing frequency and cut at ``cutoffs = [c_1, ..., c_C]``. The
head is a softmax over the ``c_1`` most frequent words plus one entry per tail cluster; tail
cluster ``i`` (ids ``[c_i, c_{i+1})``, with ``c_{C+1} = V``) has its own softmax over a
low-rank projection of ``h`` to ``D // div_value**i`` dims::

    log p(w | h) = log p_head(w | h)                                 w in the shortlist
    log p(w | h) = log p_head(cluster i | h) + log p_i(w | proj_i h)   w in tail cluster i

It is exact and normalised (a two-level tree); the cost saving comes from evaluating a tail only
for the rows whose target falls in it, and from the small tail projections.

The parameters live in a ``paddle.nn.AdaptiveLogSoftmaxWithLoss`` sublayer (same shapes and
initialisation as Paddle's, so its methods can be called on it directly), with one fix: Paddle
3.3 keeps the tail weights in a plain Python list and registers only ``head_weight`` (and
``head_bias``), so its ``parameters()`` and ``state_dict()`` miss every tail matrix and an
optimizer built from them never trains the tails. This layer registers them on the sublayer as
``tail_{i}_proj`` (``[D, D // div_value**(i+1)]``) and ``tail_{i}_out`` (``[hsz_i, |cluster_i|]``).

Two implementations of the same function (``impl``):

- ``"logsumexp"`` (default): this module's own code, normalising with ``paddle.logsumexp``.
- ``"paddle"``: Paddle's ``F.adaptive_log_softmax_with_loss`` for the NLL and the module's
  ``log_prob`` for the full distribution. Both normalise with ``F.log_softmax``, whose Paddle 3.3
  CPU kernel is superlinear in the row length (about 1 s forward + backward for ``[256, 4000]``
  against 0.03 s for ``logsumexp``), so large tail clusters are slow on CPU. Kept as the reference
  the tests compare against.
"""

from __future__ import annotations

import numbers
from typing import List, Sequence

import paddle
import paddle.nn.functional as F

from .base import OutputLayer

__all__ = ["AdaptiveSoftmax"]

_IMPLS = ("logsumexp", "paddle")


class AdaptiveSoftmax(OutputLayer):
    """Exact adaptive softmax (Grave et al. 2017) with ``C = len(cutoffs)`` tail clusters.

    Args:
        feature_size: D, size of the hidden state.
        num_classes: V, the vocabulary size; ids sorted by decreasing frequency.
        cutoffs: strictly increasing ids in ``[1, V-1]``; ``cutoffs[0]`` is the shortlist size
            and each later boundary starts a new tail cluster (Paddle's convention, without V).
        div_value: tail cluster i (0-based) projects ``h`` to ``int(D // div_value**(i+1))``
            dims; each must be >= 1.
        head_bias: learn a bias for the head logits (shortlist words and cluster entries).
        impl: ``"logsumexp"`` or ``"paddle"``, see the module docstring.
        ignore_index: target value that gives NLL 0 and no gradient.
        check_targets: see :class:`~paddle_hsoftmax.output.base.OutputLayer`.

    Attributes:
        adaptive: the ``paddle.nn.AdaptiveLogSoftmaxWithLoss`` holding the parameters:
            ``head_weight [D, cutoffs[0] + C]`` (``F.linear`` layout, ``[in, out]``),
            ``head_bias [cutoffs[0] + C]`` or None, ``tail_{i}_proj``, ``tail_{i}_out``.
        bounds: ``[0, *cutoffs, V]``; the shortlist is ``[bounds[0], bounds[1])`` and tail
            cluster i (0-based) is ``[bounds[i+1], bounds[i+2])``.
        tail_dims: the projection width of each tail cluster.

    Shape:
        - forward: hidden ``[..., D]``, target ``[...]`` -> nll ``[...]``
        - full_log_prob: ``[..., D] -> [..., V]``; predict: ``-> ([..., k], [..., k])``

    The forward pass selects the rows of each tail cluster with ``nonzero`` (a data-dependent
    shape, one device-to-host sync per cluster on a GPU); ``full_log_prob`` evaluates every
    cluster on every row. ``impl="logsumexp"`` converts with ``paddle.jit.to_static(full_graph=
    True)`` (an empty cluster then runs on zero rows); ``impl="paddle"`` does not, because
    Paddle's function branches on host values.
    """

    def __init__(
        self,
        feature_size: int,
        num_classes: int,
        cutoffs: Sequence[int],
        div_value: float = 4.0,
        head_bias: bool = False,
        impl: str = "logsumexp",
        ignore_index: int = -100,
        check_targets: bool = True,
    ) -> None:
        super().__init__(feature_size, num_classes, ignore_index, check_targets)
        if impl not in _IMPLS:
            raise ValueError(f"impl must be one of {_IMPLS}, got {impl!r}")
        cuts = _check_cutoffs(cutoffs, self.num_classes)
        if isinstance(div_value, bool) or not isinstance(div_value, (int, float)) or not div_value > 0:
            raise ValueError(f"div_value must be a positive number, got {div_value!r}")
        tail_dims = [int(self.feature_size // (div_value ** (i + 1))) for i in range(len(cuts))]
        if min(tail_dims) < 1:
            raise ValueError(
                f"div_value={div_value} with feature_size={self.feature_size} gives tail projection "
                f"widths {tail_dims} (D // div_value**(i+1)); each must be >= 1: use a smaller "
                "div_value or fewer cutoffs"
            )
        self.impl = impl
        self.cutoffs: List[int] = cuts
        self.div_value = float(div_value)
        self.bounds: List[int] = [0, *cuts, self.num_classes]
        self.tail_dims: List[int] = tail_dims
        self.adaptive = paddle.nn.AdaptiveLogSoftmaxWithLoss(
            self.feature_size, self.num_classes, cuts, div_value=div_value, head_bias=head_bias
        )
        for i, (proj, out) in enumerate(self.adaptive.tail_weights):
            self.adaptive.add_parameter(f"tail_{i}_proj", proj)
            self.adaptive.add_parameter(f"tail_{i}_out", out)

    def extra_repr(self) -> str:
        return (
            f"feature_size={self.feature_size}, num_classes={self.num_classes}, "
            f"cutoffs={self.cutoffs}, tail_dims={self.tail_dims}, "
            f"head_bias={self.adaptive.head_bias is not None}, impl={self.impl!r}"
        )

    @property
    def shortlist_size(self) -> int:
        return self.cutoffs[0]

    @property
    def num_clusters(self) -> int:
        return len(self.cutoffs)

    def _tails(self) -> List[List[paddle.Tensor]]:
        """``[[proj_i, out_i], ...]`` read from the registered parameters (so ``set_state_dict``
        or anything else that swaps a registered tensor is seen), in Paddle's list layout."""
        return [
            [getattr(self.adaptive, f"tail_{i}_proj"), getattr(self.adaptive, f"tail_{i}_out")]
            for i in range(self.num_clusters)
        ]

    def _head_logits(self, hidden: paddle.Tensor) -> paddle.Tensor:
        return F.linear(hidden, self.adaptive.head_weight, self.adaptive.head_bias)  # (N, S + C)

    def _tail_logits(self, hidden: paddle.Tensor, i: int) -> paddle.Tensor:
        proj = F.linear(hidden, getattr(self.adaptive, f"tail_{i}_proj"))  # (M, hsz_i)
        return F.linear(proj, getattr(self.adaptive, f"tail_{i}_out"))  # (M, |cluster_i|)

    # -- OutputLayer ---------------------------------------------------------------------------
    def _nll(self, hidden: paddle.Tensor, target: paddle.Tensor) -> paddle.Tensor:
        if self.impl == "paddle":
            # Paddle returns (log p(target) [N], mean NLL): the per-row output is a log-prob
            log_p, _ = F.adaptive_log_softmax_with_loss(
                hidden, target, self.adaptive.head_weight, self._tails(), self.adaptive.cutoffs,
                self.adaptive.head_bias,
            )
            return -log_p.reshape([-1])
        S = self.shortlist_size
        cluster = paddle.zeros_like(target)  # (N,) 0 = shortlist, i + 1 = tail cluster i
        for edge in self.cutoffs:
            cluster = cluster + (target >= edge).astype(target.dtype)
        column = paddle.where(cluster == 0, target, cluster + (S - 1))  # (N,) head column
        head = self._head_logits(hidden)  # (N, S + C)
        nll = paddle.logsumexp(head, axis=-1) - paddle.take_along_axis(
            head, column.unsqueeze(-1), axis=-1
        ).squeeze(-1)  # (N,)
        for i in range(self.num_clusters):
            rows = paddle.nonzero(cluster == i + 1).reshape([-1])  # (M,)
            if rows.shape[0] == 0:
                continue
            tail = self._tail_logits(paddle.gather(hidden, rows), i)  # (M, |cluster_i|)
            local = paddle.gather(target, rows) - self.bounds[i + 1]  # (M,)
            tail_nll = paddle.logsumexp(tail, axis=-1) - paddle.take_along_axis(
                tail, local.unsqueeze(-1), axis=-1
            ).squeeze(-1)  # (M,)
            nll = paddle.scatter_nd_add(nll, rows.unsqueeze(-1), tail_nll)
        return nll

    def _full_log_prob(self, hidden: paddle.Tensor) -> paddle.Tensor:
        if self.impl == "paddle":
            self.adaptive.tail_weights = self._tails()
            return self.adaptive.log_prob(hidden)
        S = self.shortlist_size
        head = self._head_logits(hidden)  # (N, S + C)
        head = head - paddle.logsumexp(head, axis=-1, keepdim=True)
        parts = [head[:, :S]]
        for i in range(self.num_clusters):
            tail = self._tail_logits(hidden, i)  # (N, |cluster_i|)
            tail = tail - paddle.logsumexp(tail, axis=-1, keepdim=True)
            parts.append(tail + head[:, S + i : S + i + 1])
        return paddle.concat(parts, axis=-1)  # (N, V)


def _check_cutoffs(cutoffs: Sequence[int], num_classes: int) -> List[int]:
    try:
        cuts = list(cutoffs)
    except TypeError:
        raise ValueError(f"cutoffs must be a sequence of integers, got {cutoffs!r}") from None
    ok = (
        len(cuts) > 0
        and all(isinstance(c, numbers.Integral) and not isinstance(c, bool) for c in cuts)
        and all(1 <= int(c) <= num_classes - 1 for c in cuts)
        and all(int(a) < int(b) for a, b in zip(cuts, cuts[1:]))
    )
    if not ok:
        raise ValueError(
            f"cutoffs must be strictly increasing integers in [1, {num_classes - 1}] "
            f"(num_classes={num_classes}), got {cuts}"
        )
    return [int(c) for c in cuts]
