"""Exact top-k search and sampling down a hierarchical-softmax tree, batched, from GPU-capable ops.

Paper: Morin & Bengio (AISTATS 2005) for the tree factorisation; the pruned search is the one
fastText runs per row (``HierarchicalSoftmaxLoss::predict`` / ``dfs`` in ``src/loss.cc``), here
made level-synchronous so a whole batch moves down the tree together.

Idea: a node's log-probability (the sum of the log-sigmoids on the branches from the root) bounds
every leaf below it, since each further branch adds ``log sigmoid(.) <= 0``. So once a row holds
k leaves, any node at or below its k-th best log-probability can be dropped. The search keeps, per
row, a frontier of at most ``width`` inner nodes; one level is

    gather the frontier's node vectors (N, W, D) -> one batched product -> log-sigmoid of both
    branches (N, 2W) -> children from a [V-1, 2] table -> leaves merged into the row's top-k
    (``topk`` over k + 2W) -> inner children at or below the row's k-th value dropped -> ``topk``
    keeps the best W as the next frontier.

The only approximation is the frontier cap: a node that loses the ``topk`` to W better ones is
*pruned*, and the largest such log-probability is tracked per row. When it does not beat the
row's final k-th value, no leaf below any pruned node could have entered the top-k, so the row is
exact (ties aside); otherwise the caller repeats that row with a wider frontier
(:meth:`~paddle_hsoftmax.output.hsoftmax.HierarchicalSoftmax.predict`). Every level costs
``O(N W D)``, against ``O(N V D)`` for the dense ``topk(full_log_prob)``.

Sampling walks the same tables: one uniform per row and level against ``sigmoid(h . v + b)``
chooses the branch, ``O(path length)`` per draw.

Arguments (both functions): ``hidden [N, D]``, the layer's ``weight [V-1, D]`` and ``bias [V-1]``
(or None), ``children`` from :func:`children_table`, ``depth`` = the tree's longest path.

On CPU a C++ operator (``csrc/tree_search.cc``, :func:`fused_search_topk`) runs the same exact
search row by row in true best-first order (a heap per row, fastText's loop), since Paddle's CPU
``topk`` costs about a microsecond per row and call (measured: ``[1024, 72]`` -> 65 in 4 ms), which
is what the batched search spends most of its time on there; the Paddle-ops search stays the
GPU and reference path, and tests check that both give the dense pass's answer.

Shape: :func:`search_topk` -> values ``[N, k]``, word ids ``[N, k]``, best first; exact ``[N]``
(bool) and expanded ``[N]`` (inner nodes scored per row). :func:`sample_down` -> ids ``[N, S]``.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import numpy as np
import paddle
import paddle.nn.functional as F

__all__ = ["children_table", "SearchResult", "search_topk", "sample_down", "load_search_kernel", "fused_search_topk"]


def children_table(path_nodes: paddle.Tensor, path_codes: paddle.Tensor) -> paddle.Tensor:
    """The tree as a child table, from the padded path tables, on their device (no host read).

    Returns int64 ``[2 (V-1)]``: entry ``2 n + c`` is the child of inner node ``n`` on branch ``c``
    (0 left, 1 right): an inner node id in ``[0, V-2]``, or ``V - 1 + w`` for the leaf of word
    ``w``. Built with one scatter: every valid path slot ``(w, j)`` writes its next node (or its
    own leaf at the end of the path) at ``2 nodes[w, j] + codes[w, j]``; paths sharing a prefix
    write the same value, padded slots write to a spare entry that is cut off.
    """
    V, L = path_nodes.shape
    M = V - 1
    valid = path_codes >= 0  # (V, L)
    next_valid = paddle.concat([valid[:, 1:], paddle.zeros([V, 1], dtype="bool")], axis=1)  # (V, L)
    next_node = paddle.concat([path_nodes[:, 1:], paddle.zeros([V, 1], dtype=path_nodes.dtype)], axis=1)
    leaf = (paddle.arange(V, dtype="int64") + M).unsqueeze(1).expand([V, L])  # (V, L)
    child = paddle.where(next_valid, next_node.astype("int64"), leaf)  # (V, L)
    slot = paddle.where(valid, path_nodes * 2 + path_codes, paddle.full_like(path_nodes, 2 * M))  # (V, L)
    table = paddle.zeros([2 * M + 1], dtype="int64")
    table = paddle.scatter(table, slot.reshape([-1]).astype("int64"), child.reshape([-1]), overwrite=True)
    return table[: 2 * M]  # (2M,)


class SearchResult(NamedTuple):
    """One pass of :func:`search_topk`: ``log_probs [N, k]`` and ``ids [N, k]`` best first,
    ``exact [N]`` (no pruned node beat the row's k-th value), ``expanded [N]`` (inner nodes
    whose vector was scored) and ``passes [N]`` (search passes run for the row: 1 here; see
    :meth:`~paddle_hsoftmax.output.hsoftmax.HierarchicalSoftmax.search`)."""

    log_probs: paddle.Tensor
    ids: paddle.Tensor
    exact: paddle.Tensor
    expanded: paddle.Tensor
    passes: paddle.Tensor


def _node_logits(hidden: paddle.Tensor, weight: paddle.Tensor, bias: Optional[paddle.Tensor],
                 nodes: paddle.Tensor) -> paddle.Tensor:
    """``h_i . v_n + b_n`` for the nodes ``[N, W]`` of each row: ``-> [N, W]``."""
    N, W = nodes.shape
    flat = nodes.reshape([-1])  # (N W,)
    vectors = paddle.gather(weight, flat).reshape([N, W, -1])  # (N, W, D)
    z = paddle.matmul(vectors, hidden.unsqueeze(-1)).squeeze(-1)  # (N, W)
    if bias is not None:
        z = z + paddle.gather(bias, flat).reshape([N, W])
    return z


def search_topk(hidden: paddle.Tensor, weight: paddle.Tensor, bias: Optional[paddle.Tensor],
                children: paddle.Tensor, k: int, width: int, queue: int, max_steps: int,
                read_back: bool = True) -> SearchResult:
    """The k most probable words of each row by a batched best-first search.

    Args:
        k: results per row (``1 <= k <= V``).
        width: B, nodes expanded per row and step (the best B of the row's queue; the first steps
            use ``min(B, 2^step)``, all a queue can hold by then).
        queue: Q, unexpanded nodes kept per row, best first; a node that falls off the end is
            pruned (its log-probability is tracked for the exactness flag).
        max_steps: the loop's bound; rows not finished by then come back inexact.
        read_back: after each step read the rows' "finished" flags (one ``[n]`` bool) to stop
            when all are finished and to drop finished rows from the batch once a quarter of it
            is (the remaining steps then cost what the unfinished rows cost). On CPU the read is
            free; on a GPU it is a sync per step, so pass False there: the loop then runs
            ``max_steps`` fixed-shape steps without one, and rows that needed more come back
            inexact.

    The values are the sums of log-sigmoids from the root in the order ``full_log_prob`` adds
    them, so they agree with it to rounding (the node logits come from a batched product here,
    one ``[V-1, N]`` product there).
    """
    N = hidden.shape[0]
    M = weight.shape[0]
    dtype = hidden.dtype
    neg = paddle.full([1], float("-inf"), dtype=dtype)
    # the outputs, filled as rows finish (all at the end without read_back)
    out_v = paddle.full([N, k], float("-inf"), dtype=dtype)
    out_i = paddle.zeros([N, k], dtype="int64")
    out_exact = paddle.zeros([N], dtype="int64")  # (scatter has no bool kernel)
    out_expanded = paddle.zeros([N], dtype="int64")
    rows = np.arange(N)  # (n,) the batch rows still searched, on the host
    h = hidden
    top_v = paddle.full([N, k], float("-inf"), dtype=dtype)  # (n, k) the row's best leaves so far
    top_i = paddle.zeros([N, k], dtype="int64")
    queue_v = paddle.concat([paddle.zeros([N, 1], dtype=dtype),
                             paddle.full([N, queue - 1], float("-inf"), dtype=dtype)], axis=1)  # (n, Q), sorted
    queue_n = paddle.zeros([N, queue], dtype="int64")  # the root, then empty slots
    pruned = paddle.full([N], float("-inf"), dtype=dtype)  # best log-prob that fell off a queue
    expanded = paddle.zeros([N], dtype="int64")

    def finish(local):  # write the rows at positions ``local`` of the current batch to the outputs
        nonlocal out_v, out_i, out_exact, out_expanded
        at = paddle.to_tensor(rows[local])
        pick = paddle.to_tensor(local)
        out_v = paddle.scatter(out_v, at, paddle.gather(top_v, pick))
        out_i = paddle.scatter(out_i, at, paddle.gather(top_i, pick))
        exact = paddle.logical_and(paddle.gather(done, pick), paddle.gather(pruned <= top_v[:, k - 1], pick))
        out_exact = paddle.scatter(out_exact, at, exact.astype("int64"))
        out_expanded = paddle.scatter(out_expanded, at, paddle.gather(expanded, pick))

    done = paddle.zeros([N], dtype="bool")
    for step in range(max_steps):
        b = min(width, 2**step, queue)
        thr = top_v[:, k - 1 :]  # (n, 1) the row's k-th value: nodes at or below it are useless
        sel_v = queue_v[:, :b]  # (n, b) the queue is sorted: its first b are the best
        sel_v = paddle.where(sel_v > thr, sel_v, neg)
        sel_n = paddle.where(sel_v > neg, queue_n[:, :b], paddle.zeros_like(queue_n[:, :b]))
        expanded = expanded + (sel_v > neg).astype("int64").sum(axis=-1)
        z = _node_logits(h, weight, bias, sel_n)  # (n, b)
        child_v = paddle.concat([sel_v + F.log_sigmoid(-z), sel_v + F.log_sigmoid(z)], axis=-1)  # (n, 2b)
        child_n = paddle.gather(children, paddle.concat([sel_n * 2, sel_n * 2 + 1], axis=-1).reshape([-1]))
        child_n = child_n.reshape(child_v.shape)  # (n, 2b)
        is_leaf = child_n >= M
        # leaves join the row's top-k
        cand_v = paddle.concat([top_v, paddle.where(is_leaf, child_v, neg)], axis=-1)  # (n, k + 2b)
        cand_i = paddle.concat([top_i, child_n - M], axis=-1)
        top_v, pos = paddle.topk(cand_v, k=k, axis=-1)  # (n, k)
        top_i = paddle.take_along_axis(cand_i, pos, axis=-1)
        # inner children that can still hold a better leaf than the row's k-th join the queue
        keep = paddle.logical_and(paddle.logical_not(is_leaf), child_v > top_v[:, k - 1 :])  # (n, 2b)
        merged_v = paddle.concat([queue_v[:, b:], paddle.where(keep, child_v, neg)], axis=-1)  # (n, Q + b)
        merged_n = paddle.concat([queue_n[:, b:], child_n], axis=-1)
        best_v, pos = paddle.topk(merged_v, k=queue + 1, axis=-1)  # (n, Q + 1), sorted
        pruned = paddle.maximum(pruned, best_v[:, queue])
        queue_v = best_v[:, :queue]
        queue_n = paddle.take_along_axis(merged_n, pos[:, :queue], axis=-1)
        done = queue_v[:, 0] <= top_v[:, k - 1]  # (n,) nothing left that could beat the k-th
        if not read_back:
            continue
        finished = done.numpy()
        if finished.all():
            break
        if finished.sum() * 4 >= len(rows):  # drop the finished rows from the batch
            finish(np.flatnonzero(finished))
            keep_rows = np.flatnonzero(~finished)
            pick = paddle.to_tensor(keep_rows)
            h, top_v, top_i = paddle.gather(h, pick), paddle.gather(top_v, pick), paddle.gather(top_i, pick)
            queue_v, queue_n = paddle.gather(queue_v, pick), paddle.gather(queue_n, pick)
            pruned, expanded, done = paddle.gather(pruned, pick), paddle.gather(expanded, pick), paddle.gather(done, pick)
            rows = rows[keep_rows]
    finish(np.arange(len(rows)))
    return SearchResult(out_v, out_i, out_exact > 0, out_expanded, paddle.ones_like(out_expanded))


def sample_down(hidden: paddle.Tensor, weight: paddle.Tensor, bias: Optional[paddle.Tensor],
                children: paddle.Tensor, num_samples: int, depth: int, temperature: float = 1.0,
                seed: Optional[int] = None, stop_early: bool = True) -> paddle.Tensor:
    """``num_samples`` word ids per row drawn by walking from the root: ``[N, D] -> [N, S]``.

    At each node the walk goes right with probability ``sigmoid((h . v + b) / temperature)``;
    ``temperature = 1`` draws from the layer's distribution exactly. The uniforms for all levels
    come from one call (``paddle.uniform`` with ``seed``, or the global generator when None).
    ``stop_early``: as in :func:`search_topk` (one bool read per level, free on CPU).
    """
    N = hidden.shape[0]
    M = weight.shape[0]
    R = N * num_samples
    h = paddle.repeat_interleave(hidden, num_samples, axis=0) if num_samples > 1 else hidden  # (R, D)
    if seed is None:
        u = paddle.rand([depth, R], dtype=hidden.dtype)
    else:
        u = paddle.uniform([depth, R], dtype=hidden.dtype, min=0.0, max=1.0, seed=seed)  # (depth, R)
    node = paddle.zeros([R], dtype="int64")
    word = paddle.zeros([R], dtype="int64")
    done = paddle.zeros([R], dtype="bool")
    for level in range(depth):
        z = (paddle.gather(weight, node) * h).sum(axis=-1)  # (R,)
        if bias is not None:
            z = z + paddle.gather(bias, node)
        right = (u[level] < F.sigmoid(z / temperature)).astype("int64")  # (R,)
        child = paddle.gather(children, node * 2 + right)  # (R,)
        reached = paddle.logical_and(child >= M, paddle.logical_not(done))
        word = paddle.where(reached, child - M, word)
        done = paddle.logical_or(done, child >= M)
        node = paddle.where(done, paddle.zeros_like(child), child)
        if stop_early and bool(done.all()):
            break
    return word.reshape([N, num_samples])


_KERNEL = None


def load_search_kernel():
    """The compiled ``tree_search_topk`` op (built once, like the other fused kernels of
    :mod:`paddle_hsoftmax.fused`), or None when it cannot be built here."""
    global _KERNEL
    if _KERNEL is None:
        from .. import fused

        _KERNEL = fused._Kernel("paddle_hsoftmax_tree_search", fused._CSRC / "tree_search.cc", "tree-search")
    return _KERNEL.load()


def fused_search_topk(hidden: paddle.Tensor, weight: paddle.Tensor, bias: Optional[paddle.Tensor],
                      children: paddle.Tensor, k: int, threads: int = 0) -> SearchResult:
    """:func:`search_topk` on CPU with the C++ operator: exact for every row (its heap has no
    width limit), so ``exact`` is all True and ``passes`` all 1."""
    ops = load_search_kernel()
    if ops is None:
        raise RuntimeError("the tree-search kernel could not be built (see the warning logged above)")
    empty = paddle.zeros([0], dtype=hidden.dtype)
    values, ids, expanded = ops.tree_search_topk(hidden, weight, bias if bias is not None else empty,
                                                 children, int(k), int(threads))
    ones = paddle.ones_like(expanded)
    return SearchResult(values, ids, ones > 0, expanded, ones)
