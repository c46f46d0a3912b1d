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

Memory: an ``[N, V]`` table (every layer's ``full_log_prob``; the logits of the full softmax,
D-softmax and CNN-softmax in ``forward`` too) is the one allocation that grows with batch x
vocabulary. Before it is formed, :func:`check_memory` compares its predicted size with the memory
available (``MemAvailable`` of ``/proc/meminfo`` on CPU, the device's free memory on GPU) and
raises :class:`MemoryBudgetError` naming the shape and both figures, instead of letting the
process be killed or swap. Requests under 256 MiB are never checked (no system call on the hot
path).
"""

from __future__ import annotations

import os
from typing import NamedTuple, Optional, Sequence, Tuple

import paddle
import paddle.nn as nn

from ..errors import UserError

__all__ = ["OutputLayer", "LogitOutputLayer", "TopK", "MemoryBudgetError", "available_memory", "check_memory"]

CHECK_ABOVE_BYTES = 256 << 20


class MemoryBudgetError(UserError, MemoryError):
    """An allocation predicted not to fit in the memory available, raised before it is tried."""


def available_memory() -> Tuple[Optional[int], str]:
    """``(bytes, where the figure comes from)`` that a new allocation on the current device can
    use, or ``(None, reason)`` when it cannot be told.

    CPU: ``MemAvailable`` in ``/proc/meminfo`` (Linux), else free pages from ``os.sysconf``. GPU:
    the device's total memory minus what Paddle's allocator has reserved (other processes on the
    same GPU are not seen).
    """
    device = paddle.device.get_device()
    if device.startswith("gpu"):
        try:
            index = int(device.split(":")[1]) if ":" in device else 0
            total = paddle.device.cuda.get_device_properties(index).total_memory
            return int(total - paddle.device.cuda.memory_reserved(index)), f"{device} total - reserved"
        except (AttributeError, RuntimeError, ValueError):
            return None, f"{device}: free memory unknown"
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024, "MemAvailable in /proc/meminfo"
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), "free pages (os.sysconf)"
    except (AttributeError, OSError, ValueError):
        return None, "free memory unknown"


def _size(n: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:,.1f} {unit}"
    return f"{int(n)} bytes"


def check_memory(nbytes: int, what: str, hint: str = "") -> None:
    """Raise :class:`MemoryBudgetError` if ``nbytes`` (a prediction) exceeds the memory available.

    Args:
        nbytes: the predicted peak of the allocation(s), in bytes; under ``CHECK_ABOVE_BYTES``
            (256 MiB) nothing is checked, so small calls cost no system call.
        what: the allocation, named for the message (``"full_log_prob [N, V] = [...]"``).
        hint: what the user can change (appended to the message).
    """
    if nbytes < CHECK_ABOVE_BYTES:
        return
    free, source = available_memory()
    if free is not None and nbytes > free:
        raise MemoryBudgetError(f"{what} needs about {_size(nbytes)} but {_size(free)} is available ({source})"
                                + (f"; {hint}" if hint else ""))


@paddle.jit.not_to_static
def _check_table(rows: Sequence[int], num_classes: int, dtype, copies: int, what: str, hint: str) -> None:
    """:func:`check_memory` for ``copies`` tables ``[N, V]`` of ``dtype``; ``rows`` is the batch
    shape (skipped when a dimension is unknown, ``-1``)."""
    n = 1
    for d in rows:
        if d is None or d < 0:
            return
        n *= int(d)
    itemsize = 8 if dtype == paddle.float64 else 2 if dtype in (paddle.float16, paddle.bfloat16) else 4
    check_memory(
        n * num_classes * itemsize * copies,
        f"{what} [N, V] = [{n:,}, {num_classes:,}] ({copies} such tables at the peak)",
        hint,
    )


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

    # whether ``predict`` is ``topk(full_log_prob)`` (callers that need a few best words of a
    # distribution they also reshape, like the beam search with copying, then rank it densely);
    # the H-softmax's tree search is not
    dense_predict = True

    # ``[N, V]`` tables alive at the peak of ``full_log_prob``, for :func:`check_memory`: measured
    # RSS on CPU at N=2,000, V=50,000: full softmax 2.0, D-softmax 3.0, CNN-softmax 1.5, adaptive
    # 3.8 (the H-softmax overrides it)
    full_log_prob_tables = 4

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
        if paddle.in_dynamic_mode():  # under to_static the batch shape is not known
            _check_table(hidden.shape[:-1], self.num_classes, hidden.dtype, self.full_log_prob_tables,
                         "full_log_prob", "pass fewer rows at a time (a smaller evaluation or decoding batch)")
        flat_h = hidden.reshape([-1, self.feature_size])
        lp = self._full_log_prob(flat_h)  # (N, V)
        return lp.reshape(_shape_of(hidden, last=self.num_classes))

    def predict(self, hidden: paddle.Tensor, k: int = 1) -> TopK:
        """Exact top-k words: ``[..., D] -> (log_probs[..., k], ids[..., k])``, best first."""
        if not 1 <= k <= self.num_classes:
            raise ValueError(f"k must be in [1, {self.num_classes}], got {k}")
        values, ids = paddle.topk(self.full_log_prob(hidden), k=k, axis=-1)
        return TopK(values, ids)

    def sample(self, hidden: paddle.Tensor, num_samples: int = 1, temperature: float = 1.0,
               seed: Optional[int] = None) -> paddle.Tensor:
        """Words drawn from the distribution: ``[..., D] -> ids [..., num_samples]``.

        By inverse transform over the dense ``full_log_prob`` (``cumsum`` and ``searchsorted``,
        ``O(V)`` per row); ``temperature`` divides the log-probabilities before renormalising
        (``p ** (1 / T)``). The H-softmax overrides this with a walk down its tree.

        Args:
            seed: ``None`` uses Paddle's global generator (``paddle.seed``); an int >= 1 gives the
                same draws on every call.
        """
        _check_sampling(num_samples, temperature, seed)
        logp = self.full_log_prob(hidden).reshape([-1, self.num_classes])  # (N, V)
        if float(temperature) != 1.0:
            logp = logp / float(temperature)
        cdf = paddle.cumsum(paddle.exp(logp - paddle.logsumexp(logp, axis=-1, keepdim=True)), axis=-1)  # (N, V)
        shape = [logp.shape[0], int(num_samples)]
        if seed is None:
            u = paddle.rand(shape, dtype=cdf.dtype)
        else:
            u = paddle.uniform(shape, dtype=cdf.dtype, min=0.0, max=1.0, seed=int(seed))
        u = u * cdf[:, -1:]  # (N, S): the total may round below 1
        ids = paddle.clip(paddle.searchsorted(cdf, u, right=True), max=self.num_classes - 1)  # (N, S)
        return ids.reshape(list(hidden.shape[:-1]) + [int(num_samples)])

    # -- helpers -------------------------------------------------------------------------------
    def _check_hidden(self, hidden: paddle.Tensor) -> None:
        if hidden.shape[-1] != self.feature_size:
            raise ValueError(
                f"hidden must end in feature_size={self.feature_size}, got shape {list(hidden.shape)}"
            )

    def _flatten(self, hidden: paddle.Tensor, target: paddle.Tensor, check_range: bool = True):
        """``[..., D], [...] -> [N, D], [N]`` (int64), shapes and (with ``check_targets`` and
        ``check_range``) the target range checked in dynamic mode."""
        self._check_hidden(hidden)
        if paddle.in_dynamic_mode():
            if list(hidden.shape[:-1]) != list(target.shape):
                raise ValueError(
                    f"hidden {list(hidden.shape)} and target {list(target.shape)} disagree: "
                    "hidden must be target's shape plus a feature axis"
                )
            if target.dtype not in (paddle.int64, paddle.int32):
                raise ValueError(f"target must be int32 or int64, got {target.dtype}")
            if self.check_targets and check_range:
                self._check_range(target)
            if hidden.ndim == 2 and target.dtype == paddle.int64:  # already flat: no op to record
                return hidden, target
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
        if paddle.in_dynamic_mode() and like.ndim == 1:
            return flat
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

    # ``[N, V]`` tables at the peak of forward + backward (measured as above: full softmax and
    # D-softmax 4.0, CNN-softmax 3.4); forward alone, without gradients, about half
    nll_tables = 4

    def _nll(self, hidden: paddle.Tensor, target: paddle.Tensor) -> paddle.Tensor:
        if paddle.in_dynamic_mode():  # under to_static the batch shape is not known
            tables = self.nll_tables if paddle.is_grad_enabled() else max(self.nll_tables // 2, 1)
            _check_table(hidden.shape[:-1], self.num_classes, hidden.dtype, tables, "softmax logits",
                         "use a smaller batch (N = batch x steps), or an output layer that never forms [N, V] "
                         "in training (hsoftmax, adaptive)")
        logits = self.logits(hidden)  # (N, V)
        picked = paddle.take_along_axis(logits, target.unsqueeze(-1), axis=-1).squeeze(-1)  # (N,)
        return paddle.logsumexp(logits, axis=-1) - picked  # (N,)

    def _full_log_prob(self, hidden: paddle.Tensor) -> paddle.Tensor:
        logits = self.logits(hidden)  # (N, V)
        return logits - paddle.logsumexp(logits, axis=-1, keepdim=True)


def _check_sampling(num_samples, temperature, seed) -> None:
    """The arguments every ``sample`` takes, checked with the rule and the value seen."""
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1:
        raise ValueError(f"num_samples must be an integer >= 1, got {num_samples!r}")
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}") from None
    if not (t > 0 and t != float("inf")):
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 1):
        raise ValueError(f"seed must be None (Paddle's global generator) or an integer >= 1, got {seed!r}")


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
