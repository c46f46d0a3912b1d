"""Luong's global attention over an encoder memory, and the memory the encoder leaves for a decoder.

Paper: Luong, Pham & Manning, "Effective Approaches to Attention-based Neural Machine Translation"
(EMNLP 2015), section 3.1: the *general* score ``score(h_t, m_s) = h_t . W_a m_s``, softmax over the
source positions, context ``c_t = sum_s a_t(s) m_s``. Padded source positions get -1e9 added to
their scores, so their weights underflow to 0 and a sentence attends the same way alone or in a
padded batch.

Shapes: query ``[B, T, H]``, memory ``[B, S, M]`` -> context ``[B, T, M]``, weights ``[B, T, S]``.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Tuple

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

__all__ = ["LuongAttention", "Memory", "MASKED"]

MASKED = -1e9  # added to the scores of masked source positions (exp underflows to exactly 0)


class Memory(NamedTuple):
    """What the encoder leaves for the decoder: memory ``[B, S, 2H]``, attention keys
    ``W_a m_s`` ``[B, S, H]`` and the additive padding mask ``[B, 1, S]`` (0 or -1e9); with a
    copy mechanism (:mod:`paddle_hsoftmax.models.copy`) also the copy keys ``[B, S, H]``, the
    copy mask (``[B, 1, S]``: 1.0 where a position can be copied, else 0.0) and the target ids
    the positions copy (``[B, S]``, 0 where they cannot: masked)."""

    values: paddle.Tensor
    keys: paddle.Tensor
    mask_bias: paddle.Tensor
    copy_keys: Optional[paddle.Tensor] = None
    copy_mask: Optional[paddle.Tensor] = None
    copy_ids: Optional[paddle.Tensor] = None

    def repeat(self, k: int) -> "Memory":
        """Each sentence's memory ``k`` times in a row (``[B * k, ...]``), for beam search."""
        return Memory(*(None if t is None else paddle.repeat_interleave(t, k, axis=0) for t in self))


class LuongAttention(nn.Layer):
    """Luong's global attention with the *general* score ``h_t . W_a m_s``.

    Args:
        query_size: H, the decoder state size.
        memory_size: M, the encoder memory size (2H for a BiLSTM).

    Shape:
        query ``[B, T, H]``, keys ``[B, S, H]`` (from :meth:`keys`), values ``[B, S, M]`` and an
        additive mask ``[B, 1, S]`` -> context ``[B, T, M]``, weights ``[B, T, S]``.
    """

    def __init__(self, query_size: int, memory_size: int) -> None:
        super().__init__()
        self.key = nn.Linear(memory_size, query_size, bias_attr=False)  # W_a

    def keys(self, memory: paddle.Tensor) -> paddle.Tensor:
        """``W_a m_s`` once per source: ``[B, S, M] -> [B, S, H]``."""
        return self.key(memory)

    def attend(self, query: paddle.Tensor, keys: paddle.Tensor, values: paddle.Tensor,
               mask_bias: paddle.Tensor) -> Tuple[paddle.Tensor, paddle.Tensor]:
        scores = paddle.matmul(query, keys, transpose_y=True)  # (B, T, S)
        weights = F.softmax(scores + mask_bias, axis=-1)  # (B, T, S), 0 where masked
        return paddle.matmul(weights, values), weights  # (B, T, M), (B, T, S)

    def forward(self, query: paddle.Tensor, memory: Memory) -> Tuple[paddle.Tensor, paddle.Tensor]:
        return self.attend(query, memory.keys, memory.values, memory.mask_bias)
