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
the one with the best BLEU on all of them, kept only when a paired bootstrap test (Koehn,
"Statistical Significance Tests for Machine Translation Evaluation", EMNLP 2004; sacrebleu's
``PairedTest``) finds it better than retrieval alone at p < 0.05, else weight 0. A similarity alone
cannot tell apart the many training pairs that share one character with a two-character input;
the model is meant to.

Why a test and not the former rule (the best worse BLEU over two interleaved halves): measured on
the seed-1 run of 2026-12-03 with the former defaults, the model's weights 0.001-0.02 beat
retrieval alone on 4 of 6 blocks of 1,000 validation pairs (one tie, one loss; +0.8 BLEU on all
6,000; test +0.66), but on the halves of the first 1,000 to 5,000 pairs they gained 0.8-3.4 BLEU
on one half and lost 0.3-1.4 on the other, so the worse half chose weight 0 every time. The test
asks whether the gain on all the pairs is more than resampling noise; it needs many pairs (the
command tunes on all validation pairs by default: p = 0.15 on 1,000, 0.04 on 6,000 for that model).

Shapes: everything here is per item on the host; the model runs on batches of (source, candidate)
rows through :meth:`~paddle_hsoftmax.pipeline.translate.Translator.log_probs`.
"""

from __future__ import annotations

import logging
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

from .data.retrieval import OverlapIndex
from .pipeline.translate import bleu_chrf

__all__ = ["Candidates", "Reranker", "WEIGHT_GRID", "SIGNIFICANCE", "paired_bootstrap_p"]

log = logging.getLogger(__name__)

SIGNIFICANCE = 0.05  # a weight > 0 must beat retrieval alone at p below this (paired bootstrap)
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
        self.p_value: Optional[float] = None  # the last tuning's test against retrieval alone
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
             grid: Sequence[float] = WEIGHT_GRID, level: float = SIGNIFICANCE) -> Tuple[float, Dict[float, float]]:
        """``(weight, {weight: BLEU})``: the grid weight with the best corpus BLEU on these pairs
        (the smallest weight on ties), with each weight's BLEU. When the smallest grid weight is 0
        (retrieval alone), a larger one is taken only if sacrebleu's paired bootstrap test (1,000
        resamples, its fixed seed) finds it better than weight 0 at ``p < level``; the p-value is
        kept in ``self.p_value`` (None when no test was run)."""
        candidates = self.candidates(sources)
        chosen = {float(w): self.choose(candidates, w) for w in grid}
        table = {w: bleu_chrf(hyps, references)["bleu"] for w, hyps in chosen.items()}
        best = max(table, key=lambda w: (table[w], -w))
        base = min(table)
        self.p_value = None
        if base == 0.0 and best != base and len(references) >= 2:
            self.p_value = paired_bootstrap_p(chosen[base], chosen[best], references)
            if self.p_value >= level:
                best = base
        log.info("rerank weight %s (validation BLEU %s; p-value against retrieval alone %s)", best,
                 {w: round(b, 2) for w, b in table.items()}, self.p_value)
        return best, table


def paired_bootstrap_p(baseline: Sequence[Sequence[str]], system: Sequence[Sequence[str]],
                       references: Sequence[Sequence[str]]) -> float:
    """sacrebleu's paired bootstrap p-value for the corpus-BLEU difference between ``system`` and
    ``baseline`` on these references (token lists; 1,000 resamples, sacrebleu's fixed seed). The
    test is two-sided (Moses' bootstrap-hypothesis-difference-significance); :meth:`Reranker.tune`
    asks it only about a weight whose BLEU is above retrieval's. Identical outputs give 1.0
    (sacrebleu's own count gives them its smallest p-value, by design of its statistic)."""
    if [list(h) for h in system] == [list(h) for h in baseline]:
        return 1.0
    from sacrebleu.metrics import BLEU
    from sacrebleu.significance import PairedTest

    def join(rows):
        return [" ".join(r) for r in rows]

    test = PairedTest([("baseline", join(baseline)), ("system", join(system))], {"BLEU": BLEU()},
                      [join(references)], test_type="bs", n_samples=1000)
    _, results = test()
    return float(results["BLEU"][1].p_value)
