"""LSTM sequence tagger (the seed's synchronous sequence-to-sequence pattern): one tag per token.

Embedding -> BiLSTM/GRU -> linear emissions ``[B, T, K]`` -> either a softmax per step (loss:
cross-entropy summed over the real steps) or a linear-chain CRF (loss: ``log Z - s(gold)``,
decoding: Viterbi). Padded steps never count.

Shapes: tokens ``[B, T]`` (0 = padding), lengths ``[B]``, tags ``[B, T]``.
"""

from __future__ import annotations

import paddle
import paddle.nn as nn

from .classifier import RNN_CELLS
from .crf import LinearChainCRF

__all__ = ["SequenceTagger"]


class SequenceTagger(nn.Layer):
    """Embedding -> (Bi)RNN -> emissions -> softmax or CRF.

    Args:
        vocab_size: token vocabulary (id 0 = padding).
        num_tags: K.
        embed_dim, hidden_size, num_layers, bidirectional, cell, dropout: the encoder.
        crf: use a linear-chain CRF on top of the emissions.
    """

    def __init__(
        self,
        vocab_size: int,
        num_tags: int,
        embed_dim: int = 128,
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = True,
        cell: str = "lstm",
        dropout: float = 0.3,
        crf: bool = False,
    ) -> None:
        super().__init__()
        if cell not in RNN_CELLS:
            raise ValueError(f"cell must be one of {sorted(RNN_CELLS)}, got {cell!r}")
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.rnn = RNN_CELLS[cell](
            embed_dim, hidden_size, num_layers=num_layers, direction="bidirect" if bidirectional else "forward",
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(hidden_size * (2 if bidirectional else 1), num_tags)
        self.crf = LinearChainCRF(num_tags) if crf else None

    def emissions(self, tokens: paddle.Tensor, lengths: paddle.Tensor) -> paddle.Tensor:
        x = self.dropout(self.embed(tokens))  # (B, T, E)
        states, _ = self.rnn(x, sequence_length=lengths)  # (B, T, H)
        return self.proj(self.dropout(states))  # (B, T, K)

    def loss(self, tokens: paddle.Tensor, lengths: paddle.Tensor, tags: paddle.Tensor) -> paddle.Tensor:
        """Per-sentence negative log-likelihood ``[B]`` (summed over its real steps)."""
        scores = self.emissions(tokens, lengths)
        if self.crf is not None:
            return self.crf(scores, tags, lengths)
        T = scores.shape[1]
        mask = (paddle.arange(T, dtype=lengths.dtype).unsqueeze(0) < lengths.unsqueeze(1)).astype(scores.dtype)
        safe = paddle.where(mask > 0, tags, paddle.zeros_like(tags))
        # x - logsumexp(x): Paddle 3.3's CPU log_softmax is slow on long rows
        log_p = scores - paddle.logsumexp(scores, axis=-1, keepdim=True)  # (B, T, K)
        nll = -paddle.take_along_axis(log_p, safe.unsqueeze(-1), axis=-1).squeeze(-1)  # (B, T)
        return (nll * mask).sum(axis=1)

    def decode(self, tokens: paddle.Tensor, lengths: paddle.Tensor) -> paddle.Tensor:
        """Best tags ``[B, T]`` (Viterbi with a CRF, per-step argmax without); 0 on padding."""
        scores = self.emissions(tokens, lengths)
        if self.crf is not None:
            return self.crf.decode(scores, lengths)
        T = scores.shape[1]
        mask = paddle.arange(T, dtype=lengths.dtype).unsqueeze(0) < lengths.unsqueeze(1)
        best = scores.argmax(axis=-1)
        return paddle.where(mask, best, paddle.zeros_like(best))
