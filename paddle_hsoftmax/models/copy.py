"""Copying source words into the output (pointer-generator) on top of any output layer.

Paper: See, Liu & Manning, "Get To The Point: Summarization with Pointer-Generator Networks" (ACL
2017); Gu et al., "Incorporating Copying Mechanism in Sequence-to-Sequence Learning" (ACL 2016).

Idea: at each decoder step a second attention ``a_t`` over the *copyable* source positions (those
holding a word of the target vocabulary) and a gate ``p_gen = sigmoid(w . [h~_t; c'_t] + b)`` mix
two distributions over the V target words::

    P(w) = p_gen * P_out(w) + (1 - p_gen) * sum_{s: id(s) = w} a_t(s)

``P_out`` is the output layer's (full softmax, hierarchical softmax, ...). Training needs only
``P_out(y)`` of the target word, which every output layer gives exactly as an NLL, so the mixture
keeps H-softmax's cost: ``-log P(y)`` is a two-term log-sum-exp of ``log p_gen - nll`` and
``log(1 - p_gen) + log(copy mass of y)`` (a term is dropped, not approximated, when its mass is
0). Decoding builds the full ``[N, V]`` mixture from ``full_log_prob`` and a scatter-add of the
copy weights, or, when the output layer has a fast exact top-k (the H-softmax's tree search), only
the mixture of a few candidates (:func:`mix_candidates`): a word outside the source gets
``p_gen * P_out(w)``, so the mixture's top k lies within the output layer's top k and the source
words. A sentence with no copyable position gets ``p_gen = 1`` (the plain decoder).

The copy attention has its own ``W_a`` (where to copy from is not what to read), its query is the
attentional state ``h~_t``, so it runs on all T steps at once after the decoder loop.

Shapes: attentional states ``[B, T, H]``, memory ``[B, S, M]``, copy ids ``[B, S]``; targets
``[B, T]``; in decoding ``N = B * beam`` rows of ``[N, V]``.
"""

from __future__ import annotations

from typing import Tuple

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from .attention import MASKED, LuongAttention, Memory

__all__ = ["CopyAttention", "mix_nll", "mix_log_probs", "mix_candidates"]

_NEG = -1e30  # log of a zero mass (finite, so that exp(_NEG - m) is 0 without inf - inf)


def _log_add(a: paddle.Tensor, b: paddle.Tensor) -> paddle.Tensor:
    """``log(exp(a) + exp(b))``, stable."""
    m = paddle.maximum(a, b)
    return m + paddle.log(paddle.exp(a - m) + paddle.exp(b - m))


def _log_mass(log_gate: paddle.Tensor, mass: paddle.Tensor) -> paddle.Tensor:
    """``log_gate + log(mass)`` where ``mass > 0``, else -1e30 (no NaN gradient at 0)."""
    positive = mass > 0
    return paddle.where(positive, log_gate + paddle.log(paddle.where(positive, mass, paddle.ones_like(mass))),
                        paddle.full_like(mass, _NEG))


class CopyAttention(nn.Layer):
    """The copy attention and the generate/copy gate.

    Args:
        query_size: H, the attentional state size.
        memory_size: M, the encoder memory size.

    Shape:
        attentional ``[B, T, H]`` and a :class:`Memory` with copy fields -> ``(log p_gen [B, T],
        log (1 - p_gen) [B, T], copy weights [B, T, S])``; the weights are 0 on positions that
        cannot be copied, and a row with none has ``log p_gen = 0``, ``log(1 - p_gen) = -1e30``.
    """

    def __init__(self, query_size: int, memory_size: int) -> None:
        super().__init__()
        self.attention = LuongAttention(query_size, memory_size)
        self.gate = nn.Linear(query_size + memory_size, 1)

    def keys(self, values: paddle.Tensor) -> paddle.Tensor:
        return self.attention.keys(values)  # (B, S, H)

    def forward(self, attentional: paddle.Tensor, memory: Memory) -> Tuple[paddle.Tensor, paddle.Tensor, paddle.Tensor]:
        bias = (1.0 - memory.copy_mask) * MASKED  # (B, 1, S)
        context, weights = self.attention.attend(attentional, memory.copy_keys, memory.values, bias)
        weights = weights * memory.copy_mask  # (B, T, S): exactly 0 off the copyable positions
        logit = self.gate(paddle.concat([attentional, context], axis=-1)).squeeze(-1)  # (B, T)
        can_copy = (memory.copy_mask.sum(axis=-1) > 0).expand_as(logit)  # (B, T)
        log_gen = paddle.where(can_copy, F.log_sigmoid(logit), paddle.zeros_like(logit))
        log_copy = paddle.where(can_copy, F.log_sigmoid(-logit), paddle.full_like(logit, _NEG))
        return log_gen, log_copy, weights


def mix_nll(nll: paddle.Tensor, targets: paddle.Tensor, log_gen: paddle.Tensor, log_copy: paddle.Tensor,
            weights: paddle.Tensor, copy_ids: paddle.Tensor, ignore_index: int) -> paddle.Tensor:
    """``-log P(y)`` of the mixture for every target: ``[B, T]`` (0 where ``ignore_index``).

    Args:
        nll: the output layer's exact ``-log P_out(y)``, ``[B, T]``.
        targets: ``[B, T]`` target ids.
        log_gen, log_copy: the gate, ``[B, T]`` each.
        weights: copy weights ``[B, T, S]``.
        copy_ids: the target id each source position copies, ``[B, S]``.
    """
    match = (copy_ids.unsqueeze(1) == targets.unsqueeze(2)).astype(weights.dtype)  # (B, T, S)
    mass = (weights * match).sum(axis=-1)  # (B, T): the copy probability of y
    log_p = _log_add(log_gen - nll, _log_mass(log_copy, mass))  # (B, T)
    return paddle.where(targets != ignore_index, -log_p, paddle.zeros_like(log_p))


def mix_log_probs(log_probs: paddle.Tensor, log_gen: paddle.Tensor, log_copy: paddle.Tensor,
                  weights: paddle.Tensor, copy_ids: paddle.Tensor) -> paddle.Tensor:
    """The mixture's log-probabilities ``[N, V]`` from the output layer's ``[N, V]``, the gate
    ``[N]`` and copy weights and ids ``[N, S]``."""
    copied = paddle.put_along_axis(paddle.zeros_like(log_probs), copy_ids, weights, axis=1, reduce="add")  # (N, V)
    return _log_add(log_gen.unsqueeze(-1) + log_probs, _log_mass(log_copy.unsqueeze(-1), copied))  # (N, V)


def mix_candidates(gen_log_probs: paddle.Tensor, ids: paddle.Tensor, log_gen: paddle.Tensor,
                   log_copy: paddle.Tensor, weights: paddle.Tensor, copy_ids: paddle.Tensor) -> paddle.Tensor:
    """The mixture's log-probabilities of candidate words only: ``[N, C]``.

    Args:
        gen_log_probs: the output layer's ``log P_out`` of each candidate, ``[N, C]``.
        ids: the candidates' word ids ``[N, C]`` (the output layer's top k, then the source
            words); a word may appear more than once.
        log_gen, log_copy: the gate, ``[N]`` each.
        weights, copy_ids: copy weights and the ids they copy, ``[N, S]``.

    Each word's copy mass is summed over the source positions holding it, as
    :func:`mix_log_probs` does; a candidate that repeats an earlier one in its row gets ``-inf``,
    so a ``topk`` over the row returns each word once.
    """
    C = ids.shape[1]
    match = (ids.unsqueeze(2) == copy_ids.unsqueeze(1)).astype(weights.dtype)  # (N, C, S)
    mass = (match * weights.unsqueeze(1)).sum(axis=-1)  # (N, C)
    mixed = _log_add(log_gen.unsqueeze(-1) + gen_log_probs, _log_mass(log_copy.unsqueeze(-1), mass))  # (N, C)
    earlier = paddle.tril(paddle.ones([C, C], dtype="int32"), diagonal=-1).astype("bool")  # [c, c']: c' < c
    repeated = paddle.logical_and(ids.unsqueeze(2) == ids.unsqueeze(1), earlier.unsqueeze(0)).any(axis=-1)  # (N, C)
    return paddle.where(repeated, paddle.full_like(mixed, float("-inf")), mixed)
