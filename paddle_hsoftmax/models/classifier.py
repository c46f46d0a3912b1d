"""Text classifier: sequence -> class (the seed's "sequence to class" pattern).

Two branches, each trained on its own loss, whose scores add up at prediction time (a weighted
product of experts: ``log_softmax(ngram + mix * rnn)``, ``mix`` a buffer chosen on validation data
by the task, :data:`MIX_GRID`):

- the recurrent branch: embedding -> (Bi)LSTM or GRU -> pooling over time -> MLP, optionally joined
  with the mean of the text's n-gram embeddings (:class:`NgramBag`: fastText's bag of n-grams, Joulin
  et al. 2017) -> scores ``[B, C]`` (a linear layer, or an output layer such as H-softmax);
- the n-gram branch (:class:`NgramNB`, optional): logistic regression over the text's distinct token
  1..n-grams, each feature scaled by its naive-Bayes log-count ratio (Wang & Manning, "Baselines
  and Bigrams: Simple, Good Sentiment and Topic Classification", ACL 2012: NBSVM / NB-LR).

Training adds the two branches' own losses (:meth:`TextClassifier.branch_scores`): the BiLSTM
over-fits a few thousand texts within two epochs, and a joint loss lets it drown the n-gram
branch (measured: README), so the weight of its vote is chosen afterwards on validation data.

Pooling (padding never counts):
- ``last``: each sequence's true last step; with a bidirectional RNN, the forward direction's
  last step joined with the backward direction's first step (where each has read the whole text);
- ``mean``: the mean over the real steps;
- ``max``: the element-wise max over the real steps.

- ``meanmax``: both joined (twice the width).

Shapes: tokens ``[B, T]`` (0 = padding), lengths ``[B]``, n-gram ids ``[B, N]`` (0 = padding) ->
log-probs ``[B, C]``.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from .options import POOLINGS, RNN_CELL_NAMES

__all__ = ["RNN_CELLS", "POOLINGS", "MIX_GRID", "TextClassifier", "NgramNB", "NgramBag", "masked_pool",
           "nb_log_count_ratios"]

RNN_CELLS = dict(zip(RNN_CELL_NAMES, (nn.GRU, nn.LSTM)))
MIX_GRID = (0.0, 0.1, 0.25, 0.5, 1.0)  # weights of the recurrent branch's vote tried on validation data


def masked_pool(states: paddle.Tensor, lengths: paddle.Tensor, pooling: str, bidirectional: bool) -> paddle.Tensor:
    """Pool RNN outputs ``[B, T, H]`` over the real steps of each sequence -> ``[B, H]``."""
    if pooling == "meanmax":
        return paddle.concat([masked_pool(states, lengths, "mean", bidirectional),
                              masked_pool(states, lengths, "max", bidirectional)], axis=-1)  # (B, 2H)
    H = states.shape[-1]
    # run-time T (unknown under to_static)
    steps = paddle.arange(paddle.shape(states)[1], dtype=lengths.dtype).unsqueeze(0)  # (1, T)
    mask = (steps < lengths.unsqueeze(1)).astype(states.dtype).unsqueeze(-1)  # (B, T, 1)
    if pooling == "mean":
        return (states * mask).sum(axis=1) / paddle.clip(lengths.astype(states.dtype), min=1.0).unsqueeze(-1)
    if pooling == "max":
        very_negative = paddle.full_like(states, -1e9)
        masked = paddle.where(mask > 0, states, very_negative)  # (B, T, H)
        # argmax + gather instead of max(): Paddle 3.3's CPU max-reduce backward takes ~2.7 s on
        # [64, 120, 256] (measured), the gather's backward a few ms; same values and gradient
        where = masked.argmax(axis=1, keepdim=True)  # (B, 1, H)
        return paddle.take_along_axis(masked, where, axis=1).squeeze(1)
    if pooling == "last":
        last = paddle.clip(lengths - 1, min=0)  # (B,)
        index = last.reshape([-1, 1, 1]).expand([-1, 1, H])  # (B, 1, H)
        at_last = paddle.take_along_axis(states, index, axis=1).squeeze(1)  # (B, H)
        if not bidirectional:
            return at_last
        half = H // 2
        return paddle.concat([at_last[:, :half], states[:, 0, half:]], axis=-1)
    raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")


def nb_log_count_ratios(counts: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """Naive-Bayes log-count ratios ``r[f, c]`` (one class against the rest), float32 ``[F, C]``.

    ``counts[f, c]``: how many training texts of class ``c`` hold feature ``f`` (binary features).
    With ``p_c = alpha + counts[:, c]`` and ``q_c = alpha + the other classes' counts``:
    ``r[:, c] = log(p_c / |p_c|_1) - log(q_c / |q_c|_1)`` (for two classes the columns are each
    other's negation: Wang & Manning's ``r``)."""
    counts = np.asarray(counts, dtype=np.float64)
    p = counts + alpha
    q = counts.sum(axis=1, keepdims=True) - counts + alpha
    return (np.log(p / p.sum(axis=0)) - np.log(q / q.sum(axis=0))).astype(np.float32)


class NgramNB(nn.Layer):
    """NB-weighted logistic regression over a bag of n-gram ids: ``score[b, c] = bias[c] +
    sum over the distinct n-grams f of text b of r[f, c] * w[f, c]``, with ``r`` the fixed
    naive-Bayes log-count ratios (:func:`nb_log_count_ratios`) and ``w`` learned (L2-penalised
    through ``weight_decay``: the penalty favours the features NB already finds telling).

    Args:
        ratios: ``[F, C]`` float32, row 0 (padding) zero.
        weight_decay: L2 coefficient on ``w`` (added to its gradient).

    Shape: n-gram ids ``[B, N]`` (0 = padding) -> scores ``[B, C]``.
    """

    def __init__(self, ratios: np.ndarray, weight_decay: float = 0.0) -> None:
        super().__init__()
        ratios = np.array(ratios, dtype=np.float32)
        ratios[0] = 0.0
        F_, C = ratios.shape
        # fixed: a parameter that is never trained (not a buffer made by paddle.to_tensor, whose
        # process-wide generated name would change the exported program from run to run)
        self.ratios = self.create_parameter(
            [F_, C], attr=paddle.ParamAttr(trainable=False),
            default_initializer=nn.initializer.Assign(ratios))
        self.ratios.stop_gradient = True
        self.weight = self.create_parameter(
            [F_, C], default_initializer=nn.initializer.Constant(0.0),
            attr=paddle.ParamAttr(regularizer=paddle.regularizer.L2Decay(weight_decay)) if weight_decay else None)
        self.bias = self.create_parameter([C], is_bias=True, default_initializer=nn.initializer.Constant(0.0))

    def forward(self, ngrams: paddle.Tensor) -> paddle.Tensor:
        r = F.embedding(ngrams, self.ratios)  # (B, N, C); padding rows are 0
        w = F.embedding(ngrams, self.weight)  # (B, N, C)
        return (r * w).sum(axis=1) + self.bias  # (B, C)


class NgramBag(nn.Layer):
    """fastText's text representation (Joulin et al., "Bag of Tricks for Efficient Text
    Classification", EACL 2017): the mean of the embeddings of the text's distinct n-grams. Where
    fastText hashes n-grams into buckets, the ids here are the training n-grams' own
    (:class:`~paddle_hsoftmax.pipeline.encoding.NgramIndex`), so no two share a row.

    Unlike :class:`NgramNB`, whose table is n-grams x classes, the table is n-grams x ``dim``: it
    serves any number of classes, e.g. under an H-softmax head (fastText's ``-loss hs``).

    Args:
        num_ngrams: F (id 0 is padding and stays zero).
        dim: D.
        sparse: the table's gradient holds only the rows a batch touched (``SelectedRows``; with
            Adam's ``lazy_mode`` only those rows are updated, as fastText's SGD does).

    Shape: n-gram ids ``[B, N]`` (0 = padding) -> ``[B, D]`` (zeros for a text with no known n-gram).
    """

    def __init__(self, num_ngrams: int, dim: int, sparse: bool = True) -> None:
        super().__init__()
        bound = 1.0 / dim  # fastText's input-matrix initialisation
        self.embed = nn.Embedding(num_ngrams, dim, padding_idx=0, sparse=sparse,
                                  weight_attr=paddle.ParamAttr(initializer=nn.initializer.Uniform(-bound, bound)))

    def forward(self, ngrams: paddle.Tensor) -> paddle.Tensor:
        vectors = self.embed(ngrams)  # (B, N, D); padding rows are 0
        count = (ngrams > 0).astype(vectors.dtype).sum(axis=1, keepdim=True)  # (B, 1)
        return vectors.sum(axis=1) / paddle.clip(count, min=1.0)  # (B, D)


class TextClassifier(nn.Layer):
    """Embedding -> RNN -> pooling -> MLP.

    Args:
        vocab_size: token vocabulary size (id 0 is padding).
        num_classes: C.
        embed_dim, hidden_size, num_layers: sizes.
        bidirectional: run the RNN both ways.
        cell: ``lstm`` or ``gru``.
        pooling: ``last``, ``mean`` or ``max``.
        dropout: on embeddings, between RNN layers and before the output.
        ngram_ratios: ``[F, C]`` naive-Bayes ratios of the n-gram branch (None: no such branch).
        ngram_decay: its L2 coefficient.
        bag_ngrams, bag_dim: with both > 0, the recurrent branch's features are joined with an
            :class:`NgramBag` of ``bag_ngrams`` n-gram ids and ``bag_dim`` dimensions (the model
            then takes n-gram ids even without the n-gram branch).
        head: ``softmax`` (scores from a linear layer) or an output layer of
            :mod:`paddle_hsoftmax.output` (e.g. :class:`~paddle_hsoftmax.output.HierarchicalSoftmax`,
            ``feature_size`` = the MLP's width, + ``bag_dim`` with a bag): then :meth:`features` feed it, and there is no
            n-gram branch.
    """

    def __init__(
        self,
        vocab_size: int,
        num_classes: int,
        embed_dim: int = 128,
        hidden_size: int = 128,
        num_layers: int = 1,
        bidirectional: bool = True,
        cell: str = "lstm",
        pooling: str = "mean",
        dropout: float = 0.2,
        ngram_ratios: Optional[np.ndarray] = None,
        ngram_decay: float = 0.0,
        head: object = "softmax",
        bag_ngrams: int = 0,
        bag_dim: int = 0,
    ) -> None:
        super().__init__()
        if cell not in RNN_CELLS:
            raise ValueError(f"cell must be one of {sorted(RNN_CELLS)}, got {cell!r}")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.pooling = pooling
        self.bidirectional = bidirectional
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.rnn = RNN_CELLS[cell](
            embed_dim, hidden_size, num_layers=num_layers, direction="bidirect" if bidirectional else "forward",
            dropout=dropout if num_layers > 1 else 0.0,
        )
        width = hidden_size * (2 if bidirectional else 1) * (2 if pooling == "meanmax" else 1)
        self.dropout = nn.Dropout(dropout)
        self.hidden = nn.Sequential(nn.Linear(width, width), nn.Tanh(), nn.Dropout(dropout))
        self.bag = NgramBag(bag_ngrams, bag_dim) if bag_ngrams > 0 and bag_dim > 0 else None
        width += bag_dim if self.bag is not None else 0
        if isinstance(head, str):
            if head != "softmax":
                raise ValueError(f"head must be 'softmax' or an output layer, got {head!r}")
            self.out = nn.Linear(width, num_classes)
            self.output_layer = None
        else:
            if ngram_ratios is not None:
                raise ValueError("the n-gram branch needs the softmax head (its table is n-grams x classes)")
            self.out = None
            self.output_layer = head
        self.ngram = NgramNB(ngram_ratios, ngram_decay) if ngram_ratios is not None else None
        # the recurrent branch's weight beside the n-gram branch (chosen by the task; never trained)
        self.mix = self.create_parameter([1], attr=paddle.ParamAttr(trainable=False),
                                         default_initializer=nn.initializer.Constant(1.0))
        self.mix.stop_gradient = True
        self.feature_size = width

    @property
    def takes_ngrams(self) -> bool:
        """Whether the model reads n-gram ids (the n-gram branch or the bag)."""
        return self.ngram is not None or self.bag is not None

    def features(self, tokens: paddle.Tensor, lengths: paddle.Tensor,
                 ngrams: Optional[paddle.Tensor] = None) -> paddle.Tensor:
        """The recurrent branch's last hidden layer ``[B, W]`` (joined with the n-gram bag's mean)."""
        x = self.dropout(self.embed(tokens))  # (B, T, E)
        states, _ = self.rnn(x, sequence_length=lengths)  # (B, T, H * dirs)
        pooled = masked_pool(states, lengths, self.pooling, self.bidirectional)  # (B, W)
        hidden = self.hidden(pooled)  # (B, W)
        if self.bag is None:
            return hidden
        if ngrams is None:
            raise ValueError("this classifier joins an n-gram bag to its features: pass the texts' n-gram ids")
        return paddle.concat([hidden, self.bag(ngrams)], axis=-1)  # (B, W + D)

    def branch_scores(self, tokens: paddle.Tensor, lengths: paddle.Tensor,
                      ngrams: Optional[paddle.Tensor] = None) -> Tuple[paddle.Tensor, Optional[paddle.Tensor]]:
        """Scores ``[B, C]`` of the recurrent branch and of the n-gram branch (None without one)."""
        rnn = self.out(self.features(tokens, lengths, ngrams))  # (B, C)
        return rnn, (self.ngram(ngrams) if self.ngram is not None else None)

    def forward(self, tokens: paddle.Tensor, lengths: paddle.Tensor,
                ngrams: Optional[paddle.Tensor] = None) -> paddle.Tensor:
        if self.output_layer is not None:
            return self.output_layer.full_log_prob(self.features(tokens, lengths, ngrams))  # (B, C)
        rnn, ngram = self.branch_scores(tokens, lengths, ngrams)
        return F.log_softmax(rnn if ngram is None else ngram + self.mix * rnn, axis=-1)  # (B, C)
