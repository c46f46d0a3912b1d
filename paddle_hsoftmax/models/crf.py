"""Linear-chain conditional random field over per-step scores (Lafferty et al. 2001).

For emissions ``E[B, T, K]`` (scores of each tag at each step), a transition matrix ``A[K, K]``
(``A[i, j]`` = score of tag j following tag i) and start/end scores, a tag sequence y of length n
scores ``s(y) = start[y_0] + sum_t E[t, y_t] + sum_t A[y_{t-1}, y_t] + end[y_{n-1}]`` and
``p(y | x) = exp(s(y)) / Z``. The loss is ``log Z - s(gold)``, with ``log Z`` from the forward
algorithm in log space (a loop over time, batched over sequences); decoding is Viterbi (Paddle's
``viterbi_decode`` operator). Both respect each sequence's length: padded steps change nothing.

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
        """Viterbi: the best tag sequence per row, ``[B, T]`` (0 on padded steps).

        Runs Paddle's ``viterbi_decode`` operator (one C++/CUDA kernel; dynamic graph only, see
        :func:`~paddle_hsoftmax.models.tagger.decode_scores`) on a ``[K + 2, K + 2]`` transition matrix holding the start scores
        in its last row and the end scores in its second-to-last row (the layout the operator
        reads with ``include_bos_eos_tag``, checked against brute force in the tests); the two
        extra tags can never be emitted.
        """
        K = self.num_tags
        B, T = paddle.shape(emissions)[0], paddle.shape(emissions)[1]
        never = -1e9
        top = paddle.concat([self.transitions, paddle.full([K, 2], never)], axis=1)
        stop_row = paddle.concat([self.end.unsqueeze(0), paddle.full([1, 2], never)], axis=1)
        start_row = paddle.concat([self.start.unsqueeze(0), paddle.full([1, 2], never)], axis=1)
        full = paddle.concat([top, stop_row, start_row], axis=0)  # (K + 2, K + 2)
        extra = paddle.full([B, T, 2], never, dtype=emissions.dtype)
        padded = paddle.concat([emissions, extra], axis=-1)  # (B, T, K + 2)
        _, path = paddle.text.viterbi_decode(padded, full, lengths, include_bos_eos_tag=True)  # (B, <=T)
        # the operator's path is as long as the longest sequence; pad it back to T
        path = paddle.concat([path, paddle.zeros([B, T], dtype=path.dtype)], axis=1)[:, :T]
        steps = paddle.arange(T, dtype=lengths.dtype).unsqueeze(0)
        return paddle.where(steps < lengths.unsqueeze(1), path, paddle.zeros_like(path))
