"""The interface every large-vocabulary output layer shares.

A model hands its hidden states to an output layer and never needs to know which one it got
(fastText's ``loss.cc`` idea: the loss is a strategy). Every layer implements::

    forward(hidden[..., D], target[...]) -> nll[...]      # exact per-position NLL; ignore_index -> 0
    log_prob(hidden, target) -> [...]                     # log p(target | hidden)
    full_log_prob(hidden) -> [..., V]                     # normalised: logsumexp over V == 0
    predict(hidden, k) -> (log_probs[..., k], ids[..., k])

Subclasses implement ``_nll(hidden[N, D], target[N]) -> [N]`` and ``_full_log_prob(hidden[N, D])
-> [N, V]`` on flat inputs; this base class does the reshaping, ``ignore_index`` masking and the
optional target range check.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import paddle
import paddle.nn as nn

__all__ = ["OutputLayer", "LogitOutputLayer", "TopK"]


class TopK(NamedTuple):
    """Result of :meth:`OutputLayer.predict`: best-first log-probabilities and word ids."""

    log_probs: paddle.Tensor
    ids: paddle.Tensor


class OutputLayer(nn.Layer):
    """Base class: a normalised distribution over ``num_classes`` words given a hidden state.

    Args:
        feature_size: D, the size of the hidden state.
        num_classes: V, the vocabulary size.
        ignore_index: target value whose positions get NLL 0 and no gradient.
        check_targets: in dynamic mode, check that targets lie in ``[0, V-1]`` (or equal
            ``ignore_index``) and raise ``ValueError`` naming the range seen. The check reads two
            scalars back to the host, one sync per call on a GPU; turn it off in tight training
            loops whose data is already validated. It is skipped under ``paddle.jit.to_static``.
    """

    def __init__(
        self,
        feature_size: int,
        num_classes: int,
        ignore_index: int = -100,
        check_targets: bool = True,
    ) -> None:
        super().__init__()
        if feature_size < 1:
            raise ValueError(f"feature_size must be >= 1, got {feature_size}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.feature_size = int(feature_size)
        self.num_classes = int(num_classes)
        self.ignore_index = int(ignore_index)
        self.check_targets = bool(check_targets)

    # -- what subclasses provide ---------------------------------------------------------------
    def _nll(self, hidden: paddle.Tensor, target: paddle.Tensor, **options) -> paddle.Tensor:
        """Exact NLL for flat ``hidden[N, D]`` and valid ``target[N]``; returns ``[N]``.
        ``options`` are the layer-specific keyword arguments of :meth:`forward`."""
        raise NotImplementedError

    def _full_log_prob(self, hidden: paddle.Tensor) -> paddle.Tensor:
        """Normalised log-probabilities for flat ``hidden[N, D]``; returns ``[N, V]``."""
        raise NotImplementedError

    # -- the shared interface ------------------------------------------------------------------
    def forward(self, hidden: paddle.Tensor, target: paddle.Tensor, **options) -> paddle.Tensor:
        """Per-position negative log-likelihood; ``[..., D], [...] -> [...]``."""
        flat_h, flat_t = self._flatten(hidden, target)
        valid = flat_t != self.ignore_index  # (N,)
        safe_t = paddle.where(valid, flat_t, paddle.zeros_like(flat_t))
        nll = self._nll(flat_h, safe_t, **options)  # (N,)
        nll = nll * valid.astype(nll.dtype)
        return self._restore(nll, target)

    def log_prob(self, hidden: paddle.Tensor, target: paddle.Tensor, **options) -> paddle.Tensor:
        """``log p(target | hidden)``; ``[..., D], [...] -> [...]`` (0 at ignored positions)."""
        return -self.forward(hidden, target, **options)

    def full_log_prob(self, hidden: paddle.Tensor) -> paddle.Tensor:
        """Log-probabilities of every word; ``[..., D] -> [..., V]``, each row sums to 1 in prob."""
        self._check_hidden(hidden)
        flat_h = hidden.reshape([-1, self.feature_size])
        lp = self._full_log_prob(flat_h)  # (N, V)
        return lp.reshape(_shape_of(hidden, last=self.num_classes))

    def predict(self, hidden: paddle.Tensor, k: int = 1) -> TopK:
        """Exact top-k words: ``[..., D] -> (log_probs[..., k], ids[..., k])``, best first."""
        if not 1 <= k <= self.num_classes:
            raise ValueError(f"k must be in [1, {self.num_classes}], got {k}")
        values, ids = paddle.topk(self.full_log_prob(hidden), k=k, axis=-1)
        return TopK(values, ids)

    # -- helpers -------------------------------------------------------------------------------
    def _check_hidden(self, hidden: paddle.Tensor) -> None:
        if hidden.shape[-1] != self.feature_size:
            raise ValueError(
                f"hidden must end in feature_size={self.feature_size}, got shape {list(hidden.shape)}"
            )

    def _flatten(self, hidden: paddle.Tensor, target: paddle.Tensor):
        self._check_hidden(hidden)
        if paddle.in_dynamic_mode():
            if list(hidden.shape[:-1]) != list(target.shape):
                raise ValueError(
                    f"hidden {list(hidden.shape)} and target {list(target.shape)} disagree: "
                    "hidden must be target's shape plus a feature axis"
                )
            if target.dtype not in (paddle.int64, paddle.int32):
                raise ValueError(f"target must be int32 or int64, got {target.dtype}")
            if self.check_targets:
                self._check_range(target)
        return hidden.reshape([-1, self.feature_size]), target.reshape([-1]).astype("int64")

    def _check_range(self, target: paddle.Tensor) -> None:
        """Raise if a non-ignored target is outside [0, V-1] (one small host read)."""
        if target.size == 0:
            return
        t = target.reshape([-1])
        valid = t != self.ignore_index
        big = paddle.full_like(t, self.num_classes)
        lo = paddle.where(valid, t, big).min()
        hi = paddle.where(valid, t, paddle.full_like(t, -1)).max()
        bounds = paddle.stack([lo, hi]).numpy()
        lo_v, hi_v = int(bounds[0]), int(bounds[1])
        if hi_v < 0 and lo_v >= self.num_classes:
            return  # every position is ignored
        if lo_v < 0 or hi_v >= self.num_classes:
            raise ValueError(
                f"Target values should be in [0, {self.num_classes - 1}] (or ignore_index="
                f"{self.ignore_index}), but values in range [{lo_v}, {hi_v}] were found"
            )

    @staticmethod
    def _restore(flat: paddle.Tensor, like: paddle.Tensor) -> paddle.Tensor:
        return flat.reshape(_shape_of(like))


class LogitOutputLayer(OutputLayer):
    """An output layer that scores every word with one logit and normalises them with a single
    softmax over all V (full softmax, D-softmax, CNN-softmax): subclasses provide
    :meth:`logits`; the NLL and the log-probabilities follow, exactly::

        -log p(w | h) = logsumexp(logits) - logits[w]

    ``logits - logsumexp(logits)`` rather than ``F.log_softmax``: Paddle 3.3's CPU
    ``log_softmax`` kernel is superlinearly slow on long rows (8 s over ``[1024, 8000]``).
    """

    def logits(self, hidden: paddle.Tensor) -> paddle.Tensor:
        """Unnormalised scores for flat ``hidden[N, D]``; returns ``[N, V]``."""
        raise NotImplementedError

    def _nll(self, hidden: paddle.Tensor, target: paddle.Tensor) -> paddle.Tensor:
        logits = self.logits(hidden)  # (N, V)
        picked = paddle.take_along_axis(logits, target.unsqueeze(-1), axis=-1).squeeze(-1)  # (N,)
        return paddle.logsumexp(logits, axis=-1) - picked  # (N,)

    def _full_log_prob(self, hidden: paddle.Tensor) -> paddle.Tensor:
        logits = self.logits(hidden)  # (N, V)
        return logits - paddle.logsumexp(logits, axis=-1, keepdim=True)


def _shape_of(x: paddle.Tensor, last: Optional[int] = None):
    """``x``'s shape for ``reshape`` (with the last dimension replaced by ``last`` if given):
    a list of ints in dynamic mode, a run-time shape tensor under ``to_static``, where batch
    dimensions are unknown until the graph runs."""
    if paddle.in_dynamic_mode():
        dims = list(x.shape)
        return dims if last is None else dims[:-1] + [last]
    dims = paddle.shape(x).astype("int64")
    if last is None:
        return dims
    return paddle.concat([dims[:-1], paddle.full([1], last, dtype="int64")])
