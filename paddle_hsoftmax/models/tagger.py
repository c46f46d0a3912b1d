"""LSTM sequence tagger (the seed's synchronous sequence-to-sequence pattern): one tag per token.

Embedding (+ optional character-CNN features, which give unknown words a representation) ->
BiLSTM/GRU -> linear emissions ``[B, T, K]`` -> either a softmax per step (loss: cross-entropy
summed over the real steps) or a linear-chain CRF (loss: ``log Z - s(gold)``, decoding: Viterbi).
Padded steps never count. ``forward`` gives the emissions (what an export holds), ``decode``
the tags.

Shapes: tokens ``[B, T]`` (0 = padding), lengths ``[B]``, chars ``[B, T, W]`` (0 = padding),
tags ``[B, T]``.
"""

from __future__ import annotations

import paddle
import paddle.nn as nn

from .char_cnn import CharCNN
from .classifier import RNN_CELLS
from .crf import LinearChainCRF

__all__ = ["SequenceTagger", "decode_scores"]


class SequenceTagger(nn.Layer):
    """Embedding -> (Bi)RNN -> emissions -> softmax or CRF.

    Args:
        vocab_size: token vocabulary (id 0 = padding).
        num_tags: K.
        embed_dim, hidden_size, num_layers, bidirectional, cell, dropout: the encoder.
        crf: use a linear-chain CRF on top of the emissions.
        num_chars: character vocabulary for :class:`CharCNN` features (0: no character features).
        char_dim, char_filters: the character CNN's embedding size and feature size.
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
        num_chars: int = 0,
        char_dim: int = 32,
        char_filters: int = 64,
    ) -> None:
        super().__init__()
        if cell not in RNN_CELLS:
            raise ValueError(f"cell must be one of {sorted(RNN_CELLS)}, got {cell!r}")
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.chars = CharCNN(num_chars, char_dim, char_filters) if num_chars > 0 else None
        width = embed_dim + (char_filters if num_chars > 0 else 0)
        self.rnn = RNN_CELLS[cell](
            width, hidden_size, num_layers=num_layers, direction="bidirect" if bidirectional else "forward",
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.dropout = nn.Dropout(dropout)
        self.proj = nn.Linear(hidden_size * (2 if bidirectional else 1), num_tags)
        self.crf = LinearChainCRF(num_tags) if crf else None

    def forward(self, tokens: paddle.Tensor, lengths: paddle.Tensor, chars=None) -> paddle.Tensor:
        """Emission scores ``[B, T, K]`` (what ``paddle.jit.save`` exports)."""
        x = self.embed(tokens)  # (B, T, E)
        if self.chars is not None:
            if chars is None:
                raise ValueError("this tagger uses character features: pass chars [B, T, W]")
            x = paddle.concat([x, self.chars(chars)], axis=-1)  # (B, T, E + F)
        x = self.dropout(x)
        states, _ = self.rnn(x, sequence_length=lengths)  # (B, T, H)
        return self.proj(self.dropout(states))  # (B, T, K)

    def loss(self, tokens: paddle.Tensor, lengths: paddle.Tensor, tags: paddle.Tensor, chars=None) -> paddle.Tensor:
        """Per-sentence negative log-likelihood ``[B]`` (summed over its real steps)."""
        scores = self(tokens, lengths, chars)
        if self.crf is not None:
            return self.crf(scores, tags, lengths)
        T = scores.shape[1]
        mask = (paddle.arange(T, dtype=lengths.dtype).unsqueeze(0) < lengths.unsqueeze(1)).astype(scores.dtype)
        safe = paddle.where(mask > 0, tags, paddle.zeros_like(tags))
        # x - logsumexp(x): Paddle 3.3's CPU log_softmax is slow on long rows
        log_p = scores - paddle.logsumexp(scores, axis=-1, keepdim=True)  # (B, T, K)
        nll = -paddle.take_along_axis(log_p, safe.unsqueeze(-1), axis=-1).squeeze(-1)  # (B, T)
        return (nll * mask).sum(axis=1)

    def decode(self, tokens: paddle.Tensor, lengths: paddle.Tensor, chars=None) -> paddle.Tensor:
        """Best tags ``[B, T]`` (Viterbi with a CRF, per-step argmax without); 0 on padding."""
        return decode_scores(self(tokens, lengths, chars), lengths, self.crf)


def decode_scores(scores: paddle.Tensor, lengths: paddle.Tensor, crf=None) -> paddle.Tensor:
    """Tags ``[B, T]`` from emission scores ``[B, T, K]``: Viterbi through ``crf`` (a
    :class:`LinearChainCRF`) or the per-step argmax; 0 on padded steps.

    Kept apart from the layer because an exported tagger decodes outside the exported graph:
    Paddle 3.3's static graph declares ``viterbi_decode``'s path as float32 (it is int64), so any
    op after it fails under ``paddle.jit.save``.
    """
    if crf is not None:
        return crf.decode(scores, lengths)
    T = paddle.shape(scores)[1]
    mask = paddle.arange(T, dtype=lengths.dtype).unsqueeze(0) < lengths.unsqueeze(1)  # (B, T)
    best = scores.argmax(axis=-1)  # (B, T)
    return paddle.where(mask, best, paddle.zeros_like(best))
