"""Retrieve-and-rerank decoding for the encoder-decoder: the model chooses among retrieved translations.

Papers: Shen, Sarkar & Och, "Discriminative Reranking for Machine Translation" (HLT-NAACL 2004)
for log-linear reranking of candidate translations with weights tuned on held-out data;
Hashimoto et al., "A Retrieve-and-Edit Framework for Predicting Structured Outputs" (NeurIPS 2018)
for retrieved training outputs as candidates.

Idea: the targets of the ``n`` training pairs whose sources are most similar to the input (Jaccard
over distinct tokens, :class:`~paddle_hsoftmax.data.retrieval.OverlapIndex`; a target repeated in
the list is kept once, at its best similarity) are the candidates; each is scored by

    score(c) = sim(x, x_c) + weight * log P(c </s> | x) / (|c| + 1)

where the second term is the model's mean log-probability per word (teacher forced, exact with any
output layer, H-softmax included), and the best-scoring candidate is the output. A model trained
with retrieval (``--retrieve``, fuzzy repair with copying) scores each candidate with that
candidate's own pair appended to the source: the probability that copying it is right, given how
its source differs from the input. ``weight = 0`` is
retrieval alone; :meth:`Reranker.tune` picks the weight from a fixed grid on validation pairs:
the one whose worse BLEU over two halves of them is the best (a weight that only wins on one half
by the ties it happens to break is not taken). A similarity alone cannot tell apart the many
training pairs that share one character with a two-character input; the model is meant to.

Shapes: everything here is per item on the host; the model runs on batches of (source, candidate)
rows through :meth:`~paddle_hsoftmax.pipeline.translate.Translator.log_probs`.
"""

from __future__ import annotations

import logging
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from .data.retrieval import OverlapIndex
from .pipeline.translate import bleu_chrf

__all__ = ["Candidates", "Reranker", "WEIGHT_GRID"]

log = logging.getLogger(__name__)

WEIGHT_GRID = (0.0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0)


class Candidates(NamedTuple):
    """One input's candidates: target token lists, their sources' similarities ``[c]`` and the
    model's mean log-probabilities ``[c]``."""

    targets: List[List[str]]
    similarity: np.ndarray
    mean_log_prob: np.ndarray

    def best(self, weight: float) -> List[str]:
        """The candidate with the highest ``similarity + weight * mean_log_prob`` (first on ties)."""
        if not self.targets:
            return []
        return self.targets[int(np.argmax(self.similarity + weight * self.mean_log_prob))]


class Reranker:
    """Candidates from a translation memory, scored by a translator.

    Args:
        translator: a :class:`~paddle_hsoftmax.pipeline.translate.Translator` (its ``log_probs``).
        memory: the training pairs ``[(source tokens, target tokens), ...]``.
        candidates: n, the nearest pairs retrieved per input (>= 1).
    """

    def __init__(self, translator, memory: Sequence[Tuple[List[str], List[str]]], candidates: int) -> None:
        if candidates < 1:
            raise ValueError(f"candidates must be >= 1, got {candidates}")
        if not memory:
            raise ValueError("the translation memory is empty")
        self.translator, self.memory, self.n = translator, list(memory), int(candidates)
        self.halves: Dict[float, Tuple[float, float]] = {}  # the last tuning's BLEU on each half
        retriever = translator.retriever
        if retriever is not None and retriever.pairs == self.memory:  # the same memory: one index
            self.index = retriever.index
        else:
            self.index = OverlapIndex([s for s, _ in self.memory])

    def candidates(self, sources: Sequence[Sequence[str]]) -> List[Candidates]:
        """Retrieve and score every input's candidates (one batched pass of the model)."""
        nearest, similarity = self.index.search(sources, self.n, metric="jaccard")  # (Q, n) each
        targets: List[List[List[str]]] = []
        sims: List[List[float]] = []
        pairs: List[List[int]] = []
        for row, sim in zip(nearest, similarity):
            seen, cands, best, used = set(), [], [], []
            for j, value in zip(row, sim):  # best first: a repeated target keeps its first (best) similarity
                if j < 0 or tuple(self.memory[j][1]) in seen:
                    continue
                seen.add(tuple(self.memory[j][1]))
                cands.append(list(self.memory[j][1]))
                best.append(float(value))
                used.append(int(j))
            targets.append(cands)
            sims.append(best)
            pairs.append(used)
        flat_sources = [src for src, cands in zip(sources, targets) for _ in cands]
        flat_targets = [c for cands in targets for c in cands]
        neighbours = None
        retriever = self.translator.retriever
        if retriever is not None:  # each candidate is scored with its own pair first among the neighbours
            neighbours = [[self.memory[j]] + [self.memory[i] for i in used if i != j][: retriever.k - 1]
                          for used in pairs for j in used]
        log_probs = (self.translator.log_probs(flat_sources, flat_targets, neighbours) if flat_targets
                     else np.zeros(0))
        lengths = np.array([len(c) + 1 for c in flat_targets], dtype=np.float64)  # words + </s>
        mean = log_probs / np.maximum(lengths, 1)
        out, at = [], 0
        for cands, sim in zip(targets, sims):
            out.append(Candidates(cands, np.array(sim, dtype=np.float64), mean[at : at + len(cands)]))
            at += len(cands)
        return out

    @staticmethod
    def choose(candidates: Sequence[Candidates], weight: float) -> List[List[str]]:
        """Each input's best candidate at ``weight`` (``[]`` for an input with none)."""
        return [c.best(weight) for c in candidates]

    def decode(self, sources: Sequence[Sequence[str]], weight: float, beam_size: int,
               candidates: Optional[Sequence[Candidates]] = None) -> List[List[str]]:
        """Each input's best candidate at ``weight``; an input with no candidate (it shares no
        token with any training source: a line of punctuation, unknown characters) gets the
        translator's beam search (``beam_size``; 0 = greedy) instead of an empty output."""
        candidates = self.candidates(sources) if candidates is None else candidates
        out = self.choose(candidates, weight)
        missing = [i for i, c in enumerate(candidates) if not c.targets]
        if missing:
            for i, hyp in zip(missing, self.translator.translate([sources[i] for i in missing], beam_size)):
                out[i] = hyp
        return out

    def tune(self, sources: Sequence[Sequence[str]], references: Sequence[Sequence[str]],
             grid: Sequence[float] = WEIGHT_GRID) -> Tuple[float, Dict[float, float]]:
        """``(weight, {weight: BLEU})``: the grid weight whose *worse* corpus BLEU over the two
        interleaved halves of these pairs (even and odd positions) is the best (the smallest
        weight on ties), with each weight's BLEU on all the pairs. A weight must win on both
        halves: one that wins on one half by the ties it breaks and loses on the other is not
        taken (a single grid point picked on all the pairs over-fits them). With fewer than 2
        pairs, the best BLEU on all of them. The halves' BLEU are kept in ``self.halves``."""
        candidates = self.candidates(sources)
        table, self.halves = {}, {}
        for w in grid:
            chosen = self.choose(candidates, w)
            table[float(w)] = bleu_chrf(chosen, references)["bleu"]
            if len(references) >= 2:
                self.halves[float(w)] = tuple(bleu_chrf(chosen[h::2], references[h::2])["bleu"] for h in (0, 1))
        robust = {w: min(self.halves[w]) if self.halves else table[w] for w in table}
        best = max(robust, key=lambda w: (robust[w], -w))
        log.info("rerank weight %s (validation BLEU %s; halves %s)", best, {w: round(b, 2) for w, b in table.items()},
                 {w: tuple(round(b, 2) for b in h) for w, h in self.halves.items()})
        return best, table
