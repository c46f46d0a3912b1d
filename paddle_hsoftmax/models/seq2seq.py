"""Encoder-decoder with attention (asynchronous seq2seq) over any large-vocabulary output layer.

Paper: Luong, Pham & Manning, "Effective Approaches to Attention-based Neural Machine Translation"
(EMNLP 2015): global attention with the *general* score and input feeding; Sutskever, Vinyals &
Le (NeurIPS 2014) for the encoder-decoder and beam search; Wu et al., "Google's Neural Machine
Translation System" (2016) for the length normalisation of beam scores.

Idea: a BiLSTM reads the source into a memory ``m_s`` (``[B, S, 2H]``); its final forward and
backward states (h and c), through a linear bridge (``tanh`` on h), start an LSTM decoder. At each
target step the decoder state ``h_t`` attends over the memory with Luong's general score
``h_t . W_a m_s`` (source padding masked out, so a sentence gets the same output alone or in a
padded batch), and the attentional state ``h~_t = tanh(W_c [c_t; h_t])`` goes to the output layer (full
softmax, hierarchical softmax, ...: see :mod:`paddle_hsoftmax.output`), which gives the exact NLL
of the next word in training (teacher forcing) and the normalised ``full_log_prob`` in decoding.
With input feeding, ``h~_{t-1}`` is concatenated to the next step's input embedding (so the decoder
runs step by step); without it, the decoder LSTM runs over the whole target at once and attention
is one batched product. Optionally (``copy=True``) a pointer-generator copy mechanism mixes the
output layer's distribution with copying source words (:mod:`paddle_hsoftmax.models.copy`), e.g.
from a retrieved translation appended to the source (:mod:`paddle_hsoftmax.data.retrieval`).

Decoding: greedy (the best allowed word of each step) and batched beam search. Beam
hypotheses are ranked by ``log P(y) / lp(y)`` with GNMT's ``lp(y) = ((5 + |y|) / 6) ** alpha``
(``|y|`` counts the words and the closing ``</s>``; ``alpha = 0`` ranks by ``log P`` alone). Both
never output an empty sentence (``</s>`` is banned before ``min_len = 1`` words: a model trained
on short glosses can rank "stop now" above every first word) nor a word more than ``max_repeat =
3`` times in a row, unless the source's copyable words hold a longer run of it (the degenerate
"a a a a ..." loop), nor a loop of 2 or 3 distinct words more than 3 times ("give a give a give
a give a"): a hard version of GNMT's penalties, checked per hypothesis on the host. A
sentence's finished hypotheses are its ``beam_size`` best by that score (a better one found later
replaces the worst), and its search stops once it has ``beam_size`` of them and no live
hypothesis, normalised at its present length, scores above the worst (stopping at the first
``beam_size`` finished, OpenNMT's rule, let the short hypotheses of the first steps end the
search before longer, better-scored ones finished), or at ``max_len`` words, where the unfinished
beams are scored as they stand.

Each step ranks, per beam, only the ``2 K`` best next words (the step's global best ``2 K``
continuations lie within them), taken from the output layer's exact ``predict``: for the
H-softmax that is the tree search, which never forms the ``[N, V]`` distribution; with the copy
mechanism the candidates are the output layer's top words plus the source words (the mixture's
top ``2 K`` lies within them, :func:`~paddle_hsoftmax.models.copy.mix_candidates`). Layers whose
``predict`` is a dense pass anyway rank ``step_log_probs`` directly. ``dense_decoding = True``
ranks every word of every beam (the reference; same hypotheses and scores).

Shapes: source ids ``[B, S]`` (0 = padding) and lengths ``[B]``; decoder inputs and targets
``[B, T]`` -> nll ``[B, T]`` (targets equal to the output layer's ``ignore_index`` give 0).
"""

from __future__ import annotations

from typing import List, NamedTuple, Optional, Sequence, Tuple

import numpy as np
import paddle
import paddle.nn as nn

from ..output.base import OutputLayer
from .attention import MASKED, LuongAttention, Memory
from .copy import CopyAttention, mix_candidates, mix_log_probs, mix_nll

__all__ = ["LuongAttention", "Memory", "Hypothesis", "Seq2Seq", "length_penalty"]

State = Tuple[paddle.Tensor, paddle.Tensor]


def length_penalty(length: int, alpha: float) -> float:
    """GNMT's ``((5 + length) / 6) ** alpha``; beam scores are ``log P / length_penalty``."""
    return ((5.0 + length) / 6.0) ** alpha


class Hypothesis(NamedTuple):
    """One beam-search result: word ids (without ``</s>``), the normalised score it was ranked
    by, and its total log-probability."""

    ids: List[int]
    score: float
    log_prob: float


class Seq2Seq(nn.Layer):
    """Embedding -> BiLSTM encoder -> LSTM decoder with Luong attention -> output layer.

    Args:
        source_vocab_size: source ids ``[0, source_vocab_size)``, 0 = padding.
        output: the output layer over the V target words (``</s>`` among them); its
            ``feature_size`` D may differ from H (a projection is added).
        bos_id: the decoder's start symbol; its embedding row is ``V`` (one extra row, not an
            output class), so ``bos_id`` must equal ``output.num_classes``.
        eos_id: the target id that ends a sentence.
        embed_dim: E, for source and target embeddings.
        hidden_size: H: decoder state, attentional state and each encoder direction.
        dropout: on the embeddings and on the attentional state before the output layer.
        input_feed: concatenate ``h~_{t-1}`` to the decoder input (Luong et al. section 3.3).
        banned_ids: target ids that greedy and beam search never output (e.g. ``<unk>``: a
            gloss made of ``<unk>`` is useless, and a small model trained on rare-word glosses
            learns that ``<unk>`` is the safest first word; Marian bans it by default). Training
            and ``step_log_probs`` are unaffected.
        copy: add the pointer-generator copy mechanism (:mod:`paddle_hsoftmax.models.copy`); then
            every call that takes a source also takes ``copy_ids`` ``[B, S]``: the target id each
            source position would copy, -1 where it cannot be copied.
    """

    def __init__(
        self,
        source_vocab_size: int,
        output: OutputLayer,
        bos_id: int,
        eos_id: int,
        embed_dim: int = 128,
        hidden_size: int = 256,
        dropout: float = 0.2,
        input_feed: bool = True,
        banned_ids: Sequence[int] = (),
        copy: bool = False,
    ) -> None:
        super().__init__()
        V = output.num_classes
        if bos_id != V:
            raise ValueError(f"bos_id must be the row after the {V} output classes ({V}), got {bos_id}")
        if not 0 <= eos_id < V:
            raise ValueError(f"eos_id must be an output class in [0, {V - 1}], got {eos_id}")
        bad = [i for i in banned_ids if not 0 <= i < V or i == eos_id]
        if bad:
            raise ValueError(f"banned_ids must be output classes in [0, {V - 1}] other than </s>, got {bad}")
        self.banned_ids = tuple(int(i) for i in banned_ids)
        if source_vocab_size < 2:
            raise ValueError(f"source_vocab_size must be >= 2, got {source_vocab_size}")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        H, E = hidden_size, embed_dim
        self.hidden_size, self.input_feed = H, bool(input_feed)
        self.bos_id, self.eos_id, self.vocab_size = bos_id, eos_id, V
        self.src_embed = nn.Embedding(source_vocab_size, E, padding_idx=0)
        self.encoder = nn.LSTM(E, H, direction="bidirect")
        self.bridge = nn.Linear(4 * H, 2 * H)  # [h_fwd; h_bwd; c_fwd; c_bwd] -> decoder [h0; c0]
        self.tgt_embed = nn.Embedding(V + 1, E)  # row V = <s>
        self.decoder = nn.LSTM(E + H if input_feed else E, H)
        self.attention = LuongAttention(H, 2 * H)
        self.combine = nn.Linear(2 * H + H, H, bias_attr=False)  # W_c [c_t; h_t]
        self.dropout = nn.Dropout(dropout)
        D = output.feature_size
        self.proj = nn.Linear(H, D) if D != H else None
        self.output = output
        self.copier = CopyAttention(H, 2 * H) if copy else None
        self.dense_decoding = False  # True: rank all K x V continuations (the reference path)

    # -- encoder -----------------------------------------------------------------------------------
    def encode(self, source: paddle.Tensor, lengths: paddle.Tensor,
               copy_ids: Optional[paddle.Tensor] = None) -> Tuple[Memory, State]:
        """The memory and the decoder's initial state; padding after ``lengths`` is ignored.
        ``copy_ids`` ``[B, S]`` (-1: not copyable) is required with the copy mechanism."""
        x = self.dropout(self.src_embed(source))  # (B, S, E)
        values, (h, c) = self.encoder(x, sequence_length=lengths)  # (B, S, 2H); h, c (2, B, H)
        final = paddle.concat([h[0], h[1], c[0], c[1]], axis=-1)  # (B, 4H): both directions' last states
        h0, c0 = paddle.split(self.bridge(final), 2, axis=-1)  # (B, H) each
        state = (paddle.tanh(h0).unsqueeze(0), c0.unsqueeze(0))  # (1, B, H) each
        positions = paddle.arange(source.shape[1], dtype=lengths.dtype)  # (S,)
        valid = (positions.unsqueeze(0) < lengths.unsqueeze(1)).astype(values.dtype)  # (B, S)
        mask_bias = ((1.0 - valid) * MASKED).unsqueeze(1)  # (B, 1, S)
        if self.copier is None:
            return Memory(values, self.attention.keys(values), mask_bias), state
        if copy_ids is None or copy_ids.shape != source.shape:
            got = None if copy_ids is None else copy_ids.shape
            raise ValueError(f"the copy mechanism needs copy_ids shaped like the source {source.shape}, got {got}")
        copyable = valid * (copy_ids >= 0).astype(valid.dtype)  # (B, S)
        return Memory(values, self.attention.keys(values), mask_bias, self.copier.keys(values),
                      copyable.unsqueeze(1), paddle.clip(copy_ids, min=0)), state

    # -- decoder -----------------------------------------------------------------------------------
    def _attend(self, states: paddle.Tensor, memory: Memory) -> paddle.Tensor:
        """Attentional states ``h~ = tanh(W_c [c; h])``: ``[B, T, H] -> [B, T, H]``."""
        context, _ = self.attention(states, memory)  # (B, T, 2H)
        return paddle.tanh(self.combine(paddle.concat([context, states], axis=-1)))  # (B, T, H)

    def step(self, prev: paddle.Tensor, state: State, feed: paddle.Tensor, memory: Memory):
        """One decoder step: previous words ``[N]``, state, previous ``h~`` ``[N, H]`` ->
        ``(h~ [N, H], state)``."""
        x = self.tgt_embed(prev)  # (N, E)
        if self.input_feed:
            x = paddle.concat([x, feed], axis=-1)  # (N, E + H)
        out, state = self.decoder(x.unsqueeze(1), state)  # (N, 1, H)
        return self._attend(out, memory).squeeze(1), state  # (N, H)

    def decode(self, inputs: paddle.Tensor, memory: Memory, state: State) -> paddle.Tensor:
        """Teacher forcing: attentional states ``[B, T, H]`` for decoder inputs ``[B, T]``
        (``<s>`` then the target words)."""
        if not self.input_feed:
            x = self.dropout(self.tgt_embed(inputs))  # (B, T, E)
            states, _ = self.decoder(x, state)  # (B, T, H)
            return self._attend(states, memory)  # (B, T, H)
        embedded = self.dropout(self.tgt_embed(inputs))  # (B, T, E)
        feed = paddle.zeros([inputs.shape[0], self.hidden_size], dtype=embedded.dtype)  # (B, H)
        outputs = []
        for t in range(inputs.shape[1]):
            x = paddle.concat([embedded[:, t], feed], axis=-1).unsqueeze(1)  # (B, 1, E + H)
            out, state = self.decoder(x, state)  # (B, 1, H)
            feed = self._attend(out, memory).squeeze(1)  # (B, H)
            outputs.append(feed)
        return paddle.stack(outputs, axis=1)  # (B, T, H)

    def features(self, attentional: paddle.Tensor) -> paddle.Tensor:
        """The output layer's input: ``[..., H] -> [..., D]`` (dropout, then the projection)."""
        h = self.dropout(attentional)
        return self.proj(h) if self.proj is not None else h

    def forward(self, source: paddle.Tensor, lengths: paddle.Tensor, inputs: paddle.Tensor,
                targets: paddle.Tensor, copy_ids: Optional[paddle.Tensor] = None) -> paddle.Tensor:
        """Exact NLL of every target word, ``[B, T]`` (0 where the target is ``ignore_index``)."""
        memory, state = self.encode(source, lengths, copy_ids)
        attentional = self.decode(inputs, memory, state)  # (B, T, H)
        nll = self.output(self.features(attentional), targets)  # (B, T)
        if self.copier is None:
            return nll
        log_gen, log_copy, weights = self.copier(attentional, memory)  # (B, T), (B, T), (B, T, S)
        return mix_nll(nll, targets, log_gen, log_copy, weights, memory.copy_ids, self.output.ignore_index)

    def step_log_probs(self, attentional: paddle.Tensor, memory: Optional[Memory] = None) -> paddle.Tensor:
        """The normalised next-word distribution: ``[N, H] -> log-probabilities [N, V]``
        (with the copy mechanism, of the mixture: ``memory`` is then required)."""
        logp = self.output.full_log_prob(self.features(attentional))  # (N, V)
        if self.copier is None:
            return logp
        log_gen, log_copy, weights = self.copier(attentional.unsqueeze(1), memory)  # (N, 1), (N, 1), (N, 1, S)
        return mix_log_probs(logp, log_gen.squeeze(1), log_copy.squeeze(1), weights.squeeze(1), memory.copy_ids)

    def _decoding_log_probs(self, attentional: paddle.Tensor, memory: Memory) -> paddle.Tensor:
        """``step_log_probs`` with the banned ids set to -1e9 (never chosen)."""
        logp = self.step_log_probs(attentional, memory)  # (N, V)
        if not self.banned_ids:
            return logp
        ban = np.zeros([1, self.vocab_size], dtype=np.float32)
        ban[0, list(self.banned_ids)] = -1e9
        return logp + paddle.to_tensor(ban, dtype=logp.dtype)  # (N, V)

    def _step_topk(self, attentional: paddle.Tensor, memory: Memory, k: int,
                   row_bans: Optional[np.ndarray] = None) -> Tuple[paddle.Tensor, paddle.Tensor]:
        """The ``k`` best next words of each row as :meth:`_decoding_log_probs` ranks them (banned
        ids at -1e9), exactly: ``[N, H] -> (log-probabilities [N, k], ids [N, k])``, best first.
        ``row_bans`` ``[N, R]`` (host ints, -1 = none): further ids banned in each row (``</s>``
        before the first word, a word repeated too often), also at -1e9.

        With a layer whose ``predict`` avoids the dense pass (``dense_predict = False``: the
        H-softmax's tree search), the candidates are its top ``k + len(banned_ids) + R`` words (the
        best ``k`` allowed words are among them), plus, with the copy mechanism, the source
        words: a word outside the source has mixture probability ``p_gen P_out(w)``, no more than
        that of each of the ``k`` allowed words above it in ``P_out`` (whose copy mass only
        adds), so the mixture's top ``k`` lies within these candidates (ties aside). A dense layer
        ranks the ``k + R`` best of :meth:`_decoding_log_probs` the same way.
        """
        V = self.vocab_size
        k = min(k, V)
        R = 0 if row_bans is None else int(row_bans.shape[1])
        if self.dense_decoding or getattr(self.output, "dense_predict", True):
            values, ids = paddle.topk(self._decoding_log_probs(attentional, memory), k=min(k + R, V), axis=-1)
            global_bans = False  # already at -1e9 in the dense distribution
        else:
            h = self.features(attentional)  # (N, D)
            values, ids = self.output.predict(h, k=min(k + len(self.banned_ids) + R, V))  # (N, k')
            if self.copier is not None:
                log_gen, log_copy, weights = self.copier(attentional.unsqueeze(1), memory)  # (N, 1), (N, 1), (N, 1, S)
                N, S = memory.copy_ids.shape
                flat = h.unsqueeze(1).expand([N, S, h.shape[-1]]).reshape([N * S, -1])  # (N S, D)
                source = -self.output._nll(flat, memory.copy_ids.reshape([-1])).reshape([N, S])  # log P_out of each source word
                ids = paddle.concat([ids, memory.copy_ids], axis=-1)  # (N, k' + S)
                values = mix_candidates(paddle.concat([values, source], axis=-1), ids, log_gen.squeeze(1),
                                        log_copy.squeeze(1), weights.squeeze(1), memory.copy_ids)
            global_bans = bool(self.banned_ids)
        banned = list(self.banned_ids) if global_bans else []
        if banned:
            is_banned = (ids.unsqueeze(-1) == paddle.to_tensor(banned, dtype=ids.dtype)).any(axis=-1)  # (N, C)
            values = values + is_banned.astype(values.dtype) * -1e9
        if R:
            per_row = paddle.to_tensor(row_bans.astype(np.int64))  # (N, R)
            is_banned = (ids.unsqueeze(-1) == per_row.unsqueeze(1)).any(axis=-1)  # (N, C)
            values = values + is_banned.astype(values.dtype) * -1e9
        if banned or R or values.shape[1] != k:
            values, pos = paddle.topk(values, k=k, axis=-1)  # (N, k)
            ids = paddle.take_along_axis(ids, pos, axis=-1)
        return values, ids

    LOOP_PERIODS = (1, 2, 3)  # word loops caught: "a a a", "give a give a give a", "x y z x y z x y z"

    def _row_bans(self, histories: Sequence[Sequence[int]], allowed_runs: Sequence[dict], t: int,
                  min_len: int, max_repeat: int) -> Optional[np.ndarray]:
        """``[N, 1 + len(LOOP_PERIODS)]`` ids each row may not take next (-1 = none): ``</s>``
        while the row has fewer than ``min_len`` words; and, for each period p, the word that
        would start a ``max_repeat + 1``-th repetition of the row's last p words when they are
        already repeated ``max_repeat`` times in a row (p = 1: the same word; a longer run of it in
        the source, ``allowed_runs``, is allowed); ``None`` when nothing is banned."""
        N, P = len(histories), len(self.LOOP_PERIODS)
        bans = np.full((N, 1 + P), -1, dtype=np.int64)
        if t < min_len:
            bans[:, 0] = self.eos_id
        any_ban = t < min_len
        if max_repeat > 0 and t >= max_repeat:
            for n, (hist, allowed) in enumerate(zip(histories, allowed_runs)):
                for j, p in enumerate(self.LOOP_PERIODS):
                    if len(hist) < p * max_repeat:
                        break
                    unit = hist[len(hist) - p:]
                    reps = 1
                    while (reps + 1) * p <= len(hist) and hist[len(hist) - (reps + 1) * p: len(hist) - reps * p] == unit:
                        reps += 1
                    if p == 1:
                        reps_allowed = max(max_repeat, allowed.get(unit[0], 0))
                    else:
                        reps_allowed = max_repeat
                    if reps >= reps_allowed and (p == 1 or len(set(unit)) == p):
                        bans[n, 1 + j] = unit[0]
                        any_ban = True
        return bans if any_ban else None

    @staticmethod
    def _source_runs(copy_ids: Optional[paddle.Tensor], B: int) -> List[dict]:
        """Per sentence, ``{target id: longest run of it in the source}`` (copyable positions of
        ``copy_ids`` ``[B, S]``, -1 = not a target word; empty dicts without copy ids)."""
        if copy_ids is None:
            return [{} for _ in range(B)]
        out = []
        for row in copy_ids.numpy().tolist():
            runs: dict = {}
            prev, length = None, 0
            for w in row:
                length = length + 1 if w == prev else 1
                prev = w
                if w >= 0:
                    runs[w] = max(runs.get(w, 0), length)
            out.append(runs)
        return out

    # -- decoding (eval mode; reads back to the host between steps) -------------------------------
    @paddle.no_grad()
    def greedy(self, source: paddle.Tensor, lengths: paddle.Tensor, max_len: int,
               copy_ids: Optional[paddle.Tensor] = None, min_len: int = 1, max_repeat: int = 3) -> List[List[int]]:
        """The best allowed word at every step until ``</s>`` or ``max_len`` words; ids without
        ``</s>``. Allowed: ``</s>`` only after ``min_len`` words, and no word more than
        ``max_repeat`` times in a row unless the source (its copyable words) has a longer run of
        it (0: no limit); the same rules as :meth:`beam_search`, whose ``beam_size = 1`` this is."""
        self._check_decoding(max_len, min_len, max_repeat)
        memory, state = self.encode(source, lengths, copy_ids)
        B = source.shape[0]
        allowed = self._source_runs(copy_ids, B)
        prev = paddle.full([B], self.bos_id, dtype="int64")  # (B,)
        feed = paddle.zeros([B, self.hidden_size])  # (B, H)
        history: List[List[int]] = [[] for _ in range(B)]
        done = np.zeros(B, dtype=bool)
        for t in range(max_len):
            feed, state = self.step(prev, state, feed, memory)
            bans = self._row_bans(history, allowed, t, min_len, max_repeat)
            prev = self._step_topk(feed, memory, 1, bans)[1][:, 0]  # (B,) the best allowed word
            for b, w in enumerate(prev.numpy().tolist()):
                if not done[b]:
                    if w == self.eos_id:
                        done[b] = True
                    else:
                        history[b].append(int(w))
            if done.all():
                break
        return history

    def _check_decoding(self, max_len: int, min_len: int, max_repeat: int) -> None:
        if max_len < 1:
            raise ValueError(f"max_len must be >= 1, got {max_len}")
        if not 0 <= min_len <= max_len:
            raise ValueError(f"min_len must be in [0, max_len = {max_len}], got {min_len}")
        if max_repeat < 0:
            raise ValueError(f"max_repeat must be >= 0 (0: no limit), got {max_repeat}")

    @paddle.no_grad()
    def beam_search(self, source: paddle.Tensor, lengths: paddle.Tensor, beam_size: int, max_len: int,
                    alpha: float = 0.6, copy_ids: Optional[paddle.Tensor] = None, min_len: int = 1,
                    max_repeat: int = 3) -> List[List[Hypothesis]]:
        """Up to ``beam_size`` hypotheses per sentence, best first by ``log P / lp`` (see the
        module docstring). ``</s>`` is allowed only after ``min_len`` words (so never an empty
        output by default), and no hypothesis repeats a word more than ``max_repeat`` times in a
        row unless the source's copyable words have a longer run of it (0: no limit).
        ``beam_size = 1`` gives the greedy result."""
        if beam_size < 1:
            raise ValueError(f"beam_size must be >= 1, got {beam_size}")
        self._check_decoding(max_len, min_len, max_repeat)
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        B, K, V = source.shape[0], beam_size, self.vocab_size
        allowed = [runs for runs in self._source_runs(copy_ids, B) for _ in range(K)]  # per beam row
        memory, (h, c) = self.encode(source, lengths, copy_ids)
        memory = memory.repeat(K)  # (B*K, ...)
        state = (paddle.repeat_interleave(h, K, axis=1), paddle.repeat_interleave(c, K, axis=1))  # (1, B*K, H)
        feed = paddle.zeros([B * K, self.hidden_size])  # (B*K, H)
        prev = paddle.full([B * K], self.bos_id, dtype="int64")  # (B*K,)
        scores = np.full((B, K), -np.inf)
        scores[:, 0] = 0.0  # one live beam per sentence at the start
        history = [[[] for _ in range(K)] for _ in range(B)]
        finished: List[List[Hypothesis]] = [[] for _ in range(B)]  # the K best, best first
        done = np.zeros(B, dtype=bool)
        width = min(2 * K, K * V)  # enough candidates to keep K alive after K of them end
        for t in range(max_len):
            feed, state = self.step(prev, state, feed, memory)
            bans = self._row_bans([hist for rows in history for hist in rows], allowed, t, min_len, max_repeat)
            if self.dense_decoding:
                logp = self._decoding_log_probs(feed, memory)  # (B*K, V): every word of every beam
                if bans is not None:
                    mask = np.zeros([B * K, V], dtype=np.float32)
                    for n, row in enumerate(bans):
                        mask[n, row[row >= 0]] = -1e9
                    logp = logp + paddle.to_tensor(mask, dtype=logp.dtype)
                cand_v, cand_i = logp, paddle.arange(V, dtype="int64").unsqueeze(0).expand([B * K, V])
            else:  # each beam's best `width` words hold the step's best `width` continuations
                cand_v, cand_i = self._step_topk(feed, memory, width, bans)  # (B*K, c)
            c = cand_v.shape[1]
            total = cand_v.reshape([B, K * c]) + paddle.to_tensor(scores, dtype=cand_v.dtype).repeat_interleave(
                c, axis=1)  # (B, K*c)
            values, flat = paddle.topk(total, k=width, axis=-1)  # (B, width)
            words_of = paddle.take_along_axis(cand_i.reshape([B, K * c]), flat, axis=-1)  # (B, width)
            values, flat, words_of = values.numpy().astype(np.float64), flat.numpy(), words_of.numpy()
            origin = np.zeros((B, K), dtype=np.int64)
            words = np.full((B, K), self.eos_id, dtype=np.int64)
            new_scores = np.full((B, K), -np.inf)
            new_history = [[[] for _ in range(K)] for _ in range(B)]
            for b in range(B):
                if done[b]:
                    continue  # its beams idle (score -inf) until every sentence is done
                alive = 0
                for value, index, word in zip(values[b], flat[b], words_of[b]):
                    if value < -1e8 or alive == K:  # -1e9: banned (or a dead beam's -inf)
                        break
                    beam, word = int(index) // c, int(word)
                    if word == self.eos_id:
                        self._keep(finished[b], Hypothesis(list(history[b][beam]),
                                                           float(value / length_penalty(t + 1, alpha)), float(value)), K)
                        continue
                    origin[b, alive], words[b, alive], new_scores[b, alive] = beam, word, value
                    new_history[b][alive] = history[b][beam] + [word]
                    alive += 1
                # done: K finished, and no live hypothesis scores above the worst of them at its
                # present length (each further word lowers log P; lp grows only slowly)
                live = new_scores[b][np.isfinite(new_scores[b])]
                done[b] = len(finished[b]) >= K and (
                    not len(live) or live.max() / length_penalty(t + 1, alpha) <= finished[b][-1].score)
            scores, history = new_scores, new_history
            if done.all():
                break
            rows = paddle.to_tensor((origin + np.arange(B)[:, None] * K).reshape(-1))  # (B*K,)
            state = (paddle.gather(state[0], rows, axis=1), paddle.gather(state[1], rows, axis=1))
            feed = paddle.gather(feed, rows, axis=0)  # (B*K, H)
            prev = paddle.to_tensor(words.reshape(-1))  # (B*K,)
        for b in range(B):  # max_len reached: unfinished beams are scored as they stand
            if not done[b]:
                for k in range(K):
                    if np.isfinite(scores[b, k]):
                        n = len(history[b][k])
                        self._keep(finished[b], Hypothesis(history[b][k], float(scores[b, k] / length_penalty(n, alpha)),
                                                           float(scores[b, k])), K)
        return finished

    @staticmethod
    def _keep(kept: List[Hypothesis], hyp: Hypothesis, k: int) -> None:
        """Insert ``hyp`` into ``kept`` (best first by score, at most ``k``; ties: the earlier first)."""
        at = len(kept)
        while at and kept[at - 1].score < hyp.score:
            at -= 1
        if at < k:
            kept.insert(at, hyp)
            del kept[k:]
