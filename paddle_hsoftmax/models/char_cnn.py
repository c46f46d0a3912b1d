"""Character-level word features: a CNN over each word's characters, max-pooled (Ma & Hovy 2016,
"End-to-end Sequence Labeling via Bi-directional LSTM-CNNs-CRF").

A word the tagger never saw in training still has characters it saw: 爱国主义者 is unknown as a
word but its characters, and the affixes they form, point to a noun. The features are joined to
the word embedding, so known words keep their own vectors too.

Shapes: chars ``[B, T, W]`` (character ids, 0 = padding; W = longest word in the batch)
-> features ``[B, T, F]`` (zeros for padded words).
"""

from __future__ import annotations

import paddle
import paddle.nn as nn

__all__ = ["CharCNN"]


class CharCNN(nn.Layer):
    """Embedding -> Conv1D (same length, ``kernel_size``) -> tanh -> max over the real characters.

    Args:
        num_chars: character vocabulary (id 0 = padding).
        char_dim: character embedding size.
        filters: F, the number of convolution filters (the feature size).
        kernel_size: characters per window (odd).
    """

    def __init__(self, num_chars: int, char_dim: int = 32, filters: int = 64, kernel_size: int = 3) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 1, got {kernel_size}")
        self.filters = filters
        self.embed = nn.Embedding(num_chars, char_dim, padding_idx=0)
        self.conv = nn.Conv1D(char_dim, filters, kernel_size, padding=kernel_size // 2, data_format="NLC")

    def forward(self, chars: paddle.Tensor) -> paddle.Tensor:
        B, T, W = paddle.shape(chars)[0], paddle.shape(chars)[1], paddle.shape(chars)[2]
        flat = chars.reshape([-1, W])  # (B*T, W)
        h = paddle.tanh(self.conv(self.embed(flat)))  # (B*T, W, F)
        real = (flat > 0).unsqueeze(-1)  # (B*T, W, 1)
        masked = paddle.where(real, h, paddle.full_like(h, -2.0))  # tanh > -1 > -2: pads never win
        # argmax + gather instead of max(): Paddle 3.3's CPU max-reduce backward is very slow
        where = masked.argmax(axis=1, keepdim=True)  # (B*T, 1, F)
        pooled = paddle.take_along_axis(masked, where, axis=1).squeeze(1)  # (B*T, F)
        has_chars = real.any(axis=1).astype(pooled.dtype)  # (B*T, 1): padded words get zeros
        return (pooled * has_chars).reshape([B, T, self.filters])  # (B, T, F)
