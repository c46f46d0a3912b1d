"""Token-overlap retrieval: the training pairs whose sources share the most distinct tokens with a query.

Two users: the character-overlap baseline of ``train.py seq2seq`` (answer with the nearest training
pair's target) and retrieval-augmented translation (Bulte & Tezcan, "Neural Fuzzy Repair:
Integrating Fuzzy Matches into Neural Machine Translation", ACL 2019): the source is extended with
its nearest training pairs (``source <sep> neighbour source <sep> neighbour target``), so the
decoder can copy from or repair the neighbour's translation instead of generating every word.

Similarity (``metric``): ``"shared"``, the number of *distinct* tokens two sources share
(characters for Chinese headwords), or ``"jaccard"``, that number over the size of their union
(so a one-character query prefers the one-character entry to a long compound containing it); ties
go to the pair that comes first in the memory. Computed as one sparse product per chunk of queries: ``Q [q, C] @ M^T [C, N]`` over binary token-incidence matrices (C distinct tokens, N
memory pairs), so 90k leave-one-out queries over CC-CEDICT take seconds, not a Python loop over
postings lists.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

__all__ = ["OverlapIndex", "Retriever", "SEP", "METRICS", "augment_source"]

SEP = "<sep>"  # between the source and each retrieved pair's source and target
METRICS = ("shared", "jaccard")


class OverlapIndex:
    """Nearest memory sources by distinct shared tokens.

    Args:
        sources: the memory's sources, each a token list (N of them).
    """

    def __init__(self, sources: Sequence[Sequence[str]]) -> None:
        from scipy import sparse

        self.token_ids: Dict[str, int] = {}
        rows: List[int] = []
        cols: List[int] = []
        for i, src in enumerate(sources):
            for token in set(src):
                rows.append(i)
                cols.append(self.token_ids.setdefault(token, len(self.token_ids)))
        self.size = len(sources)
        self._sizes = np.fromiter((len(set(s)) for s in sources), dtype=np.float64, count=len(sources))  # (N,)
        shape = (self.size, max(len(self.token_ids), 1))
        ones = np.ones(len(rows), dtype=np.int32)
        self._by_token = sparse.csr_matrix((ones, (cols, rows)), shape=shape[::-1])  # (C, N)

    def _queries(self, queries: Sequence[Sequence[str]]):
        from scipy import sparse

        rows, cols = [], []
        for i, query in enumerate(queries):
            for token in set(query):
                j = self.token_ids.get(token)
                if j is not None:
                    rows.append(i)
                    cols.append(j)
        ones = np.ones(len(rows), dtype=np.int32)
        return sparse.csr_matrix((ones, (rows, cols)), shape=(len(queries), self._by_token.shape[0]))  # (q, C)

    def nearest(self, queries: Sequence[Sequence[str]], k: int = 1, exclude: Optional[Sequence[int]] = None,
                metric: str = "shared", chunk: int = 2048) -> np.ndarray:
        """Memory indices ``[Q, k]`` of each query's ``k`` nearest sources, best first; -1 where
        fewer than ``k`` memory sources share a token with the query (see :meth:`search`)."""
        return self.search(queries, k, exclude, metric, chunk)[0]

    def search(self, queries: Sequence[Sequence[str]], k: int = 1, exclude: Optional[Sequence[int]] = None,
               metric: str = "shared", chunk: int = 2048) -> Tuple[np.ndarray, np.ndarray]:
        """``(indices [Q, k], similarities [Q, k])`` of each query's ``k`` nearest memory sources,
        best first; index -1 and similarity 0 where fewer than ``k`` share a token with it.

        Args:
            queries: token lists.
            k: neighbours per query.
            exclude: one memory index per query that may not be returned (leave-one-out when the
                queries are the memory itself), or None.
            metric: ``"shared"`` (distinct shared tokens) or ``"jaccard"`` (shared / union).
            chunk: queries per sparse product (memory ~ chunk x the postings of their tokens).
        """
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {metric!r}")
        if exclude is not None and len(exclude) != len(queries):
            raise ValueError(f"exclude has {len(exclude)} entries for {len(queries)} queries")
        out = np.full((len(queries), k), -1, dtype=np.int64)
        similarity = np.zeros((len(queries), k), dtype=np.float64)
        for start in range(0, len(queries), chunk):
            part = queries[start : start + chunk]
            shared = (self._queries(part) @ self._by_token).tocsr()  # (q, N)
            for r in range(shared.shape[0]):
                lo, hi = shared.indptr[r], shared.indptr[r + 1]
                index, score = shared.indices[lo:hi], shared.data[lo:hi].astype(np.float64)
                if exclude is not None:
                    keep = index != exclude[start + r]
                    index, score = index[keep], score[keep]
                if len(index) == 0:
                    continue
                if metric == "jaccard":  # shared / (|q| + |m| - shared)
                    score = score / (len(set(part[r])) + self._sizes[index] - score)
                if k == 1:
                    best = score.max()
                    out[start + r, 0], similarity[start + r, 0] = index[score == best].min(), best
                else:
                    order = np.lexsort((index, -score))[:k]  # most similar first, then memory order
                    out[start + r, : len(order)], similarity[start + r, : len(order)] = index[order], score[order]
        return out, similarity


def augment_source(source: Sequence[str], neighbours: Sequence[tuple]) -> List[str]:
    """``source <sep> n1 source <sep> n1 target <sep> n2 source ...``: the fuzzy-repair input.

    Args:
        source: the query's tokens.
        neighbours: ``(source tokens, target tokens)`` pairs, best first (may be empty).
    """
    out = list(source)
    for src, tgt in neighbours:
        out += [SEP, *src, SEP, *tgt]
    return out


class Retriever:
    """A translation memory: each source gets its ``k`` nearest memory pairs appended
    (:func:`augment_source`).

    Args:
        pairs: the memory, ``[(source tokens, target tokens), ...]`` (the training pairs).
        k: neighbours appended to each source (>= 1).
        metric: the similarity (:data:`METRICS`).
        encode_target: what a neighbour's target becomes in the augmented source (default: its
            tokens as they are; subword pieces for a decoder over pieces, so it can copy them).
    """

    def __init__(self, pairs: Sequence[tuple], k: int, metric: str = "jaccard",
                 encode_target: Optional[Callable[[Sequence[str]], List[str]]] = None) -> None:
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        if not pairs:
            raise ValueError("the retrieval memory is empty")
        self.pairs, self.k, self.metric = list(pairs), int(k), metric
        self.encode_target = encode_target or list
        self.index = OverlapIndex([s for s, _ in self.pairs])
        self._appended = [(s, self.encode_target(t)) for s, t in self.pairs]  # what augment appends

    def augment(self, sources: Sequence[Sequence[str]], leave_one_out: bool = False) -> List[List[str]]:
        """The augmented sources. ``leave_one_out``: ``sources`` are the memory's own sources, in
        order, and source i may not retrieve pair i (training: a pair never sees its own target)."""
        if leave_one_out and len(sources) != len(self.pairs):
            raise ValueError(f"leave_one_out needs the memory's {len(self.pairs)} sources, got {len(sources)}")
        exclude = np.arange(len(sources)) if leave_one_out else None
        nearest = self.index.nearest(sources, self.k, exclude, self.metric)  # (Q, k)
        return [augment_source(src, [self._appended[j] for j in row if j >= 0]) for src, row in zip(sources, nearest)]

    def augment_with(self, source: Sequence[str], neighbours: Sequence[tuple]) -> List[str]:
        """``source`` augmented with the given memory pairs (instead of its nearest ones)."""
        return augment_source(source, [(s, self.encode_target(t)) for s, t in neighbours])
