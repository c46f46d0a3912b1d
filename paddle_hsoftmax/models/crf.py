"""Linear-chain conditional random field over per-step scores (Lafferty et al. 2001).

For emissions ``E[B, T, K]`` (scores of each tag at each step), a transition matrix ``A[K, K]``
(``A[i, j]`` = score of tag j following tag i) and start/end scores, a tag sequence y of length n
scores ``s(y) = start[y_0] + sum_t E[t, y_t] + sum_t A[y_{t-1}, y_t] + end[y_{n-1}]`` and
``p(y | x) = exp(s(y)) / Z``. The loss is ``log Z - s(gold)``, with ``log Z`` from the forward
algorithm in log space; decoding is Viterbi. Both loop over time (T steps), batched over
sequences, and respect each sequence's length: padded steps change nothing.

Shapes: emissions ``[B, T, K]``, tags ``[B, T]``, lengths ``[B]`` (>= 1).
"""

from __future__ import annotations

import paddle
import paddle.nn as nn

__all__ = ["LinearChainCRF"]


class LinearChainCRF(nn.Layer):
    """Transition, start and end scores, with the CRF loss and Viterbi decoding.

    Args:
        num_tags: K.
    """

    def __init__(self, num_tags: int) -> None:
        super().__init__()
        if num_tags < 1:
            raise ValueError(f"num_tags must be >= 1, got {num_tags}")
        self.num_tags = num_tags
        init = nn.initializer.Uniform(-0.1, 0.1)
        self.transitions = self.create_parameter([num_tags, num_tags], default_initializer=init)
        self.start = self.create_parameter([num_tags], default_initializer=init)
        self.end = self.create_parameter([num_tags], default_initializer=init)

    def _step_mask(self, lengths: paddle.Tensor, T: int, dtype) -> paddle.Tensor:
        steps = paddle.arange(T, dtype=lengths.dtype).unsqueeze(0)  # (1, T)
        return (steps < lengths.unsqueeze(1)).astype(dtype)  # (B, T)

    def gold_score(self, emissions: paddle.Tensor, tags: paddle.Tensor, lengths: paddle.Tensor) -> paddle.Tensor:
        """``s(gold)`` per sequence: ``[B]``."""
        B, T, K = emissions.shape
        mask = self._step_mask(lengths, T, emissions.dtype)  # (B, T)
        safe = paddle.where(mask > 0, tags, paddle.zeros_like(tags))  # (B, T)
        emit = paddle.take_along_axis(emissions, safe.unsqueeze(-1), axis=-1).squeeze(-1)  # (B, T)
        score = (emit * mask).sum(axis=1) + paddle.gather(self.start, safe[:, 0])  # (B,)
        if T > 1:
            pair = paddle.gather(self.transitions.reshape([-1]), (safe[:, :-1] * K + safe[:, 1:]).reshape([-1]))
            score = score + (pair.reshape([B, T - 1]) * mask[:, 1:]).sum(axis=1)
        last = paddle.take_along_axis(safe, (lengths - 1).unsqueeze(1), axis=1).squeeze(1)  # (B,)
        return score + paddle.gather(self.end, last)

    def log_partition(self, emissions: paddle.Tensor, lengths: paddle.Tensor) -> paddle.Tensor:
        """``log Z`` per sequence by the forward algorithm: ``[B]``."""
        B, T, K = emissions.shape
        mask = self._step_mask(lengths, T, emissions.dtype)  # (B, T)
        alpha = self.start.unsqueeze(0) + emissions[:, 0]  # (B, K)
        for t in range(1, T):
            # (B, K, 1) + (K, K) + (B, 1, K) -> logsumexp over the previous tag -> (B, K)
            nxt = paddle.logsumexp(alpha.unsqueeze(2) + self.transitions.unsqueeze(0), axis=1) + emissions[:, t]
            keep = mask[:, t].unsqueeze(1)  # (B, 1): past a sequence's end alpha stays
            alpha = keep * nxt + (1 - keep) * alpha
        return paddle.logsumexp(alpha + self.end.unsqueeze(0), axis=1)

    def forward(self, emissions: paddle.Tensor, tags: paddle.Tensor, lengths: paddle.Tensor) -> paddle.Tensor:
        """Negative log-likelihood of the gold tags: ``[B]``."""
        return self.log_partition(emissions, lengths) - self.gold_score(emissions, tags, lengths)

    def decode(self, emissions: paddle.Tensor, lengths: paddle.Tensor) -> paddle.Tensor:
        """Viterbi: the best tag sequence per row, ``[B, T]`` (0 on padded steps)."""
        B, T, K = emissions.shape
        mask = self._step_mask(lengths, T, emissions.dtype)
        score = self.start.unsqueeze(0) + emissions[:, 0]  # (B, K)
        history = []
        for t in range(1, T):
            total = score.unsqueeze(2) + self.transitions.unsqueeze(0)  # (B, K_prev, K)
            best_prev = total.argmax(axis=1)  # (B, K)
            nxt = total.max(axis=1) + emissions[:, t]
            keep = mask[:, t].unsqueeze(1)
            score = keep * nxt + (1 - keep) * score
            # past the end, point each tag at itself so the backtrace passes through unchanged
            identity = paddle.arange(K, dtype=best_prev.dtype).unsqueeze(0).expand([B, K])
            history.append(paddle.where(keep > 0, best_prev, identity))
        best = (score + self.end.unsqueeze(0)).argmax(axis=1)  # (B,)
        path = [best]
        for back in reversed(history):
            best = paddle.take_along_axis(back, best.unsqueeze(1), axis=1).squeeze(1)
            path.append(best)
        tags = paddle.stack(path[::-1], axis=1)  # (B, T)
        return tags * mask.astype(tags.dtype)
