"""Hierarchical softmax over padded tree paths, exact and built from GPU-capable ops only.

Paper: Morin & Bengio, "Hierarchical Probabilistic Neural Network Language Model" (AISTATS 2005);
Mikolov et al., "Distributed Representations of Words and Phrases and their Compositionality"
(NeurIPS 2013) for the Huffman tree.

Idea: word ``w`` is a leaf; at each inner node ``n`` on its root-to-leaf path the walk goes right
with probability ``sigmoid(h . v_n + b_n)``. With ``s = +1`` for a right branch and ``-1`` for a
left one::

    -log p(w | h) = sum over the path of  softplus(-s * (h . v_n + b_n))

The layer gathers the node vectors of each target's padded path (``[N, L, D]``), scores them with
one batched product, and masks the padded slots so they contribute exactly 0 (Paddle's built-in
``F.hsigmoid_loss`` adds ln 2 for each of them and has a CPU kernel only).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import paddle
import paddle.nn.functional as F
from paddle.autograd import PyLayer

from .. import fused
from ..tree import Tree
from .base import OutputLayer, TopK, _check_sampling
from .tree_search import (SearchResult, children_table, fused_search_topk, load_search_kernel, sample_down,
                          search_topk)

__all__ = ["HierarchicalSoftmax"]

_NO_IGNORE = -(1 << 62)  # an ignore_index no target equals


class HierarchicalSoftmax(OutputLayer):
    """Exact hierarchical-softmax output layer.

    Args:
        feature_size: D, size of the hidden state.
        tree: a :class:`~paddle_hsoftmax.tree.Tree` (Huffman, balanced, clustered, ...) with V leaves.
        bias: learn a bias per inner node.
        sparse: gather node vectors with ``F.embedding(sparse=True)``, so the weight gradient holds
            only the rows the batch touched (a ``SelectedRows``); the step then costs the same at
            V = 1e6 as at V = 1e4. Use an optimizer that accepts sparse gradients (SGD, Adam with
            ``lazy_mode``...). The bias gradient stays dense (V-1 floats).
        ignore_index: target value that gives NLL 0 and no gradient.
        check_targets: see :class:`~paddle_hsoftmax.output.base.OutputLayer`.
        kernel: the training forward/backward (``forward``, ``nll_shared_path``). ``"auto"``:
            the fused C++ kernel (:func:`paddle_hsoftmax.fused.hsoftmax_nll`: each target's real
            path walked in place, Huffman trees cost their mean code length) in dynamic mode on
            CPU in float32 when it builds, else the Paddle ops; ``"fused"``: the kernel, an error
            where it cannot run (still the Paddle ops under ``paddle.jit.to_static``);
            ``"paddle"``: always the Paddle ops (GPU, export, the reference). Same values and
            gradients either way (tests/test_hsoftmax_kernel.py). Settable as an attribute.

    Parameters and buffers:
        weight: ``[V-1, D]``, row i = inner node i of the tree tables.
        bias: ``[V-1]`` or None.
        path_nodes, path_codes: int64 ``[V, L]`` buffers (the tree, -1 padded), saved in the
            ``state_dict`` and moved with the layer.

    Shape:
        - forward: hidden ``[..., D]``, target ``[...]`` -> nll ``[...]``
        - full_log_prob: ``[..., D] -> [..., V]``; predict: ``-> ([..., k], [..., k])``

    ``predict`` is exact and searches the tree: a node's log-probability bounds every leaf below
    it, so a batched best-first search with per-row thresholds finds the top-k while scoring a
    few dozen nodes per row of a trained tree instead of all V-1 (:meth:`search`,
    :mod:`.tree_search`; a C++ operator on CPU); ``sample`` draws words by walking down the
    tree, ``O(path length)``.
    """

    # [N, V]-sized tables at the peak of full_log_prob (measured: 7.1; see OutputLayer)
    full_log_prob_tables = 8
    # predict searches the tree; "auto" | "search" | "dense" is the default method of predict
    dense_predict = False
    predict_method = "auto"

    def __init__(
        self,
        feature_size: int,
        tree: Tree,
        bias: bool = True,
        sparse: bool = False,
        ignore_index: int = -100,
        check_targets: bool = True,
        kernel: str = "auto",
    ) -> None:
        if not isinstance(tree, Tree):
            raise TypeError(f"tree must be a paddle_hsoftmax.Tree, got {type(tree).__name__}")
        super().__init__(feature_size, tree.num_leaves, ignore_index, check_targets)
        self.sparse = bool(sparse)
        self.kernel = kernel
        self.num_inner = tree.num_inner
        self.max_length = tree.max_length
        self.tree_kind = tree.kind
        std = 1.0 / np.sqrt(feature_size)
        self.weight = self.create_parameter(
            [self.num_inner, feature_size],
            default_initializer=paddle.nn.initializer.Uniform(-std, std),
        )
        if bias:
            self.bias = self.create_parameter(
                [self.num_inner], is_bias=True, default_initializer=paddle.nn.initializer.Constant(0.0)
            )
        else:
            self.bias = None
        self.register_buffer("path_nodes", paddle.to_tensor(tree.path_nodes, dtype="int64"))
        self.register_buffer("path_codes", paddle.to_tensor(tree.path_codes.astype(np.int64)))

    def extra_repr(self) -> str:
        return (
            f"feature_size={self.feature_size}, num_classes={self.num_classes}, "
            f"tree={self.tree_kind}, max_length={self.max_length}, "
            f"bias={self.bias is not None}, sparse={self.sparse}"
        )

    def tree(self) -> Tree:
        """The tree tables currently held in the buffers, as a NumPy :class:`Tree`."""
        return _tree_from_tables(self.path_nodes, self.path_codes, self.tree_kind)

    @staticmethod
    def tree_from_state_dict(state_dict, prefix: str = "") -> Tree:
        """Rebuild the :class:`Tree` saved in a ``state_dict`` (keys ``prefix + "path_nodes"``
        and ``prefix + "path_codes"``), so a saved model can be re-created without its corpus:
        ``HierarchicalSoftmax(D, HierarchicalSoftmax.tree_from_state_dict(sd, "out."))``.
        Paddle skips (with a warning) buffers whose shape differs from the layer's, so build
        the layer from the saved tree before ``set_state_dict``."""
        try:
            nodes, codes = state_dict[prefix + "path_nodes"], state_dict[prefix + "path_codes"]
        except KeyError as exc:
            raise KeyError(f"no hierarchical-softmax tree under prefix {prefix!r}: missing {exc}") from None
        return _tree_from_tables(nodes, codes, "loaded")

    # -- the path tables of a batch ------------------------------------------------------------
    def _paths(self, target: paddle.Tensor, dtype, max_length: Optional[int] = None):
        """Padded paths of ``target[N]``: node ids ``[N, L]`` (pads -> 0) and signs ``[N, L]``
        (+1 right, -1 left, 0 on padded slots); ``L = max_length`` when given."""
        nodes = paddle.gather(self.path_nodes, target)  # (N, L), -1 padded
        codes = paddle.gather(self.path_codes, target)  # (N, L), -1 padded
        if max_length is not None:  # slice the batch's rows, never the [V, L] tables
            nodes, codes = nodes[:, :max_length], codes[:, :max_length]
        valid = codes >= 0
        nodes = paddle.where(valid, nodes, paddle.zeros_like(nodes))
        signs = (codes * 2 - 1).astype(dtype) * valid.astype(dtype)  # (N, L)
        return nodes, signs

    # -- OutputLayer ---------------------------------------------------------------------------
    def forward(
        self, hidden: paddle.Tensor, target: paddle.Tensor, max_length: Optional[int] = None
    ) -> paddle.Tensor:
        """Exact NLL per position; ``[..., D], [...] -> [...]``.

        Args:
            max_length: optional host-side bound on the path lengths of this batch's targets.
                Only the first ``max_length`` slots of each path are computed, so a batch of
                frequent words (short Huffman codes) costs what their codes cost instead of the
                longest code in the tree. The caller computes it from data it already holds on
                the host (``tree.path_lengths[batch_targets].max()``; see
                :func:`paddle_hsoftmax.data.batching.split_by_length`). A bound below a
                target's path length would drop nodes, so with ``check_targets`` it is verified.
        """
        if max_length is not None:
            max_length = int(max_length)
            if not 1 <= max_length <= self.max_length:
                raise ValueError(f"max_length must be in [1, {self.max_length}], got {max_length}")
            if self.check_targets and paddle.in_dynamic_mode():
                self._check_length_bound(target, max_length)
            if max_length == self.max_length:
                max_length = None
        if self._use_fused(hidden):  # the kernel masks ignore_index itself: no where / multiply
            # the kernel range-checks every target as it reads its path, so the layer's own check
            # (eight ops and a host read) runs only to word the error when the kernel refuses one
            flat_h, flat_t = self._flatten(hidden, target, check_range=False)  # (N, D), (N,)
            try:
                nll = fused.hsoftmax_nll(
                    flat_h, self.weight, self.bias, self.path_nodes, self.path_codes, flat_t,
                    max_length, self.ignore_index, self.sparse,
                )  # (N,)
            except Exception as e:  # Paddle's wrapping of the op's error; only the message tells
                if fused.TARGET_OUT_OF_RANGE not in str(e):
                    raise
                self._check_range(target)  # raises the layer's ValueError
                raise
            return self._restore(nll, target)
        return super().forward(hidden, target, max_length=max_length)

    @property
    def kernel(self) -> str:
        return self._kernel

    @kernel.setter
    def kernel(self, value: str) -> None:
        if value not in ("auto", "fused", "paddle"):
            raise ValueError(f"kernel must be 'auto', 'fused' or 'paddle', got {value!r}")
        self._kernel = value

    @paddle.jit.not_to_static
    def _use_fused(self, hidden: paddle.Tensor) -> bool:
        """Whether this call runs the fused kernel (see ``kernel``); never under to_static."""
        if self._kernel == "paddle" or not paddle.in_dynamic_mode():
            return False
        fits = (hidden.dtype == paddle.float32 and self.weight.dtype == paddle.float32
                and hidden.place.is_cpu_place())
        if self._kernel == "auto":
            return fits and paddle.get_device() == "cpu" and fused.load_hsoftmax_kernel() is not None
        if not fits:
            raise ValueError(f"kernel='fused' needs float32 CPU tensors, got hidden {hidden.dtype} on "
                             f"{hidden.place}, weight {self.weight.dtype}; use kernel='auto' or 'paddle'")
        if fused.load_hsoftmax_kernel() is None:
            raise RuntimeError(f"kernel='fused': the C++ kernel could not be built ({fused._HSOFTMAX.failed})")
        return True

    def _check_length_bound(self, target: paddle.Tensor, max_length: int) -> None:
        t = target.reshape([-1]).astype("int64")
        valid = t != self.ignore_index
        if t.size == 0 or not bool(valid.any()):
            return
        t = paddle.where(valid, t, paddle.zeros_like(t))
        t = paddle.clip(t, 0, self.num_classes - 1)  # the range check reports bad ids
        longest = int(((paddle.gather(self.path_codes, t) >= 0).astype("int64").sum(-1) * valid.astype("int64")).max())
        if longest > max_length:
            raise ValueError(
                f"max_length={max_length} is shorter than a target's path ({longest} nodes); "
                "pass tree.path_lengths[targets].max()"
            )

    def _nll(self, hidden: paddle.Tensor, target: paddle.Tensor, max_length: Optional[int] = None) -> paddle.Tensor:
        return self._nll_shared(hidden.unsqueeze(1), target, max_length).squeeze(1)  # (N,)

    def nll_shared_path(
        self,
        hidden: paddle.Tensor,
        target: paddle.Tensor,
        max_length: Optional[int] = None,
        node_grad_scale: Optional[paddle.Tensor] = None,
    ) -> paddle.Tensor:
        """NLL of one target per row for K hidden states per row: ``[N, K, D], [N] -> [N, K]``.

        The target's path is gathered once and scored against all K hidden states in one batched
        product ``(N, K, D) x (N, D, L)``: skip-gram's K context vectors all predict the same
        centre word (word2vec.c shares the path the same way). ``target`` must be in range
        (checked when ``check_targets``); mask unused K slots by multiplying the result.

        ``node_grad_scale`` (``[N, L]``, optional) multiplies the gradient that flows into each
        gathered node vector (not the loss, not the hidden gradient). Big-batch SGD with a summed
        loss adds up thousands of updates to the nodes near the root, which word2vec.c applies
        one at a time; scaling them down per occurrence keeps that sum bounded.
        """
        if hidden.ndim != 3 or hidden.shape[-1] != self.feature_size:
            raise ValueError(f"hidden must be [N, K, {self.feature_size}], got {list(hidden.shape)}")
        if self.check_targets and paddle.in_dynamic_mode():
            self._check_range(target)
            if max_length is not None:
                self._check_length_bound(target, max_length)
        return self._nll_shared(hidden, target.astype("int64"), max_length, node_grad_scale)

    def _nll_shared(
        self,
        hidden: paddle.Tensor,
        target: paddle.Tensor,
        max_length: Optional[int],
        node_grad_scale: Optional[paddle.Tensor] = None,
    ) -> paddle.Tensor:
        if self._use_fused(hidden):  # targets are in range here: no ignore_index value matches
            return fused.hsoftmax_nll(hidden, self.weight, self.bias, self.path_nodes, self.path_codes, target,
                                      max_length, _NO_IGNORE, self.sparse, node_grad_scale)  # (N, K)
        nodes, signs = self._paths(target, hidden.dtype, max_length)  # (N, L), (N, L)
        w = F.embedding(nodes, self.weight, sparse=self.sparse)  # (N, L, D)
        if node_grad_scale is not None:
            w = _ScaleGrad.apply(w, node_grad_scale.astype(w.dtype))
        # one batched product: (N, K, D) x (N, L, D)^T -> (N, K, L)
        logits = paddle.matmul(hidden, w, transpose_y=True)
        if self.bias is not None:
            # a [V-1, 1] embedding lookup: its dense gradient is only V floats
            logits = logits + F.embedding(nodes, self.bias.unsqueeze(-1)).squeeze(-1).unsqueeze(1)
        signs = signs.unsqueeze(1)  # (N, 1, L)
        # -log sigmoid(s * z) = softplus(-s * z); padded slots have s = 0 and weight |s| = 0
        per_node = F.softplus(-signs * logits) * paddle.abs(signs)  # (N, K, L)
        return per_node.sum(axis=-1)  # (N, K)

    # -- exact top-k search and sampling down the tree ------------------------------------------
    def predict(self, hidden: paddle.Tensor, k: int = 1, method: Optional[str] = None,
                width: Optional[int] = None) -> TopK:
        """Exact top-k words: ``[..., D] -> (log_probs[..., k], ids[..., k])``, best first.

        Args:
            k: words per position, ``1 <= k <= V``.
            method: ``"search"``: the pruned search down the tree (:meth:`search`); ``"dense"``:
                ``topk(full_log_prob)``; ``"auto"`` (default): the search unless the tree is so
                small that the dense pass costs less (:meth:`search_pays`), and always the
                dense pass under ``paddle.jit.to_static`` (the search's widening decision is
                made on the host). None: the layer's ``predict_method`` attribute ("auto").
            width: the search's first frontier width (default :meth:`search_width`).

        Both methods return the same words and log-probabilities (ties aside; the values agree
        to rounding).
        """
        if not 1 <= k <= self.num_classes:
            raise ValueError(f"k must be in [1, {self.num_classes}], got {k}")
        method = self.predict_method if method is None else method
        if method not in ("auto", "search", "dense"):
            raise ValueError(f"method must be 'auto', 'search' or 'dense', got {method!r}")
        self._check_hidden(hidden)
        if method == "dense" or not paddle.in_dynamic_mode() or (method == "auto" and not self.search_pays(k)):
            return super().predict(hidden, k)
        found = self.search(hidden.reshape([-1, self.feature_size]), k, width)
        shape = list(hidden.shape[:-1]) + [k]
        return TopK(found.log_probs.reshape(shape), found.ids.reshape(shape))

    def search_width(self, k: int) -> int:
        """Nodes expanded per row and step for top-``k``: ``max(8, 2k)`` (measured on the trained
        bigram model of ``scripts/bench_predict.py``); the queue holds 8 times as many."""
        return max(8, 2 * k)

    def search_pays(self, k: int) -> bool:
        """Whether the search is expected to beat the dense pass: not for tiny trees, where its
        queue (8 W nodes per row, W = :meth:`search_width`) would hold a fair part of the
        ``V - 1`` inner nodes the dense pass scores."""
        return 32 * self.search_width(k) < self.num_inner

    def search(self, hidden: paddle.Tensor, k: int, width: Optional[int] = None,
               kernel: Optional[str] = None) -> SearchResult:
        """Exact top-k of flat ``hidden[N, D]`` by the batched best-first search
        (:func:`~paddle_hsoftmax.output.tree_search.search_topk`).

        ``kernel`` (default: the layer's ``kernel`` attribute): ``"auto"`` runs the C++ search
        (:func:`~paddle_hsoftmax.output.tree_search.fused_search_topk`, exact in one pass) in
        dynamic mode on CPU tensors when it builds, else the Paddle ops; ``"fused"`` insists on
        it; ``"paddle"`` always uses the Paddle ops below.

        A first pass runs every row with width W and a queue of 8W nodes; rows whose pruned nodes
        could still beat their k-th result (or, without per-step reads on a GPU, rows not
        finished in the step budget) run again with 4 times the width, queue and steps (one host
        read of an ``[N]`` flag per pass decides which rows); rows still inexact then, or once a
        pass would cost about what the dense pass costs, take ``topk(full_log_prob)``.

        Returns a :class:`~paddle_hsoftmax.output.tree_search.SearchResult`: ``log_probs, ids
        [N, k]``, ``exact`` (all True), ``expanded [N]`` (inner nodes scored per row over all
        passes; ``V - 1`` added for a dense row) and ``passes [N]`` (search passes per row, 0 for
        rows finished by the dense pass).
        """
        if not 1 <= k <= self.num_classes:
            raise ValueError(f"k must be in [1, {self.num_classes}], got {k}")
        width = self.search_width(k) if width is None else int(width)
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        cache = self._tree_cache()
        kernel = self.kernel if kernel is None else kernel
        if kernel not in ("auto", "fused", "paddle"):
            raise ValueError(f"kernel must be 'auto', 'fused' or 'paddle', got {kernel!r}")
        on_cpu = hidden.place.is_cpu_place() and paddle.in_dynamic_mode()
        if kernel == "fused" and not on_cpu:
            raise ValueError(f"kernel='fused' searches CPU tensors in dynamic mode; hidden is on {hidden.place}")
        if kernel != "paddle" and on_cpu and hidden.dtype in (paddle.float32, paddle.float64) \
                and (kernel == "fused" or load_search_kernel() is not None):
            return fused_search_topk(hidden, self.weight, self.bias, cache.children, k, fused.kernel_threads())
        # on CPU the per-step reads are free; on a GPU they would sync every step
        read_back = hidden.place.is_cpu_place()
        steps = max(1, self.num_inner // (2 * width)) if read_back else 4 * self.max_length

        def run(h, w, s):
            return search_topk(h, self.weight, self.bias, cache.children, k, w, 8 * w, s, read_back)

        found = run(hidden, width, steps)
        values, ids, expanded = found.log_probs, found.ids, found.expanded
        passes = paddle.ones_like(expanded)
        rows, exact = None, found.exact  # rows of the last pass (None: all)
        for attempt in range(2):
            bad = np.flatnonzero(~exact.numpy())  # the one host read per pass
            if bad.size == 0:
                break
            bad = paddle.to_tensor(bad)
            rows = bad if rows is None else paddle.gather(rows, bad)
            width, steps = 4 * width, 4 * steps
            sub = paddle.gather(hidden, rows)  # (n, D)
            if attempt == 1 or 32 * width >= self.num_inner:
                dense_v, dense_i = paddle.topk(self._full_log_prob(sub), k=k, axis=-1)  # (n, k)
                values = paddle.scatter(values, rows, dense_v)
                ids = paddle.scatter(ids, rows, dense_i)
                expanded = paddle.scatter(expanded, rows, paddle.gather(expanded, rows) + self.num_inner)
                passes = paddle.scatter(passes, rows, paddle.zeros_like(rows))
                break
            found = run(sub, width, steps)
            values = paddle.scatter(values, rows, found.log_probs)
            ids = paddle.scatter(ids, rows, found.ids)
            expanded = paddle.scatter(expanded, rows, paddle.gather(expanded, rows) + found.expanded)
            passes = paddle.scatter(passes, rows, paddle.gather(passes, rows) + 1)
            exact = found.exact
        return SearchResult(values, ids, paddle.ones_like(values[:, 0]).astype("bool"), expanded, passes)

    def sample(self, hidden: paddle.Tensor, num_samples: int = 1, temperature: float = 1.0,
               seed: Optional[int] = None) -> paddle.Tensor:
        """Words drawn by walking down the tree: ``[..., D] -> ids [..., num_samples]``.

        ``O(path length)`` per draw: at each node one uniform against ``sigmoid(z / temperature)``
        (``z = h . v + b``) picks the branch, for all rows and draws at once
        (:func:`~paddle_hsoftmax.output.tree_search.sample_down`). With ``temperature = 1`` the
        draws follow :meth:`full_log_prob` exactly. Another temperature scales every node's
        logit, the tree's own temperature: it sharpens (< 1) or flattens (> 1) each branch, which
        is not ``p(w) ** (1 / T)`` renormalised over the vocabulary (that would need the dense
        pass; :meth:`OutputLayer.sample` does that for the other layers).

        Args:
            seed: ``None`` uses Paddle's global generator (``paddle.seed``); an int >= 1 gives the
                same draws on every call.
        """
        self._check_hidden(hidden)
        _check_sampling(num_samples, temperature, seed)
        flat = hidden.reshape([-1, self.feature_size])  # (N, D)
        cache = self._tree_cache()
        ids = sample_down(flat, self.weight, self.bias, cache.children, int(num_samples), self.max_length,
                          float(temperature), seed, stop_early=flat.place.is_cpu_place())  # (N, S)
        return ids.reshape(list(hidden.shape[:-1]) + [int(num_samples)])

    def _tree_cache(self) -> "_TreeCache":
        """What the search, the sampler and ``full_log_prob`` derive from the path tables, built
        once per tree.

        A ``set_state_dict`` writes new tables into the same buffer tensors (``Tensor.set_value``:
        same object, same version counter), so neither identity nor ``_inplace_version`` reveals
        it. The cache therefore keeps a device copy of the tables and compares them on the device
        (``equal_all``, ``O(V L)``): one bool read per call, never the ``[V, L]`` tables; a
        buffer replaced by assignment (another tensor object) rebuilds without the compare."""
        nodes, codes = self.path_nodes, self.path_codes
        cache = getattr(self, "_tree_tables", None)
        if cache is None or not cache.holds(nodes, codes) or not cache.current():
            cache = _TreeCache(nodes, codes)
            self._tree_tables = cache
        return cache

    def _full_log_prob(self, hidden: paddle.Tensor) -> paddle.Tensor:
        """Every word's log-probability, top-down: each node's log-probability is its parent's
        plus the log-sigmoid of the branch taken, one tree level at a time, so every inner node
        and leaf is computed once (``O(N V)`` additions instead of ``O(N V L)`` for summing each
        leaf's padded path). Under ``paddle.jit.to_static`` the tables cannot be read on the host,
        so the export sums each word's path instead (same values)."""
        if not paddle.in_dynamic_mode():
            return self._full_log_prob_by_paths(hidden)
        # rows, not columns: gathering whole rows of a [nodes, N] table is a contiguous copy,
        # gathering columns of an [N, nodes] one is a strided walk (several times slower on CPU)
        logits = paddle.matmul(self.weight, hidden, transpose_y=True)  # (V-1, N)
        if self.bias is not None:
            logits = logits + self.bias.unsqueeze(1)
        # rows: [log sigmoid(-z) for left branches | log sigmoid(z) for right branches]
        branch = paddle.concat([F.log_sigmoid(-logits), F.log_sigmoid(logits)], axis=0)  # (2(V-1), N)
        levels, leaf_order = self._levels()
        inner = paddle.zeros([1, paddle.shape(hidden)[0]], dtype=logits.dtype)  # (1, N): the root, log p = 0
        leaves = []
        for parent_pos, branch_row, leaf_rows, inner_rows in levels:
            # children of this level: parent's log-prob + the branch's log-sigmoid
            child = paddle.gather(inner, parent_pos) + paddle.gather(branch, branch_row)  # (children, N)
            leaves.append(paddle.gather(child, leaf_rows))
            inner = paddle.gather(child, inner_rows)
        log_p = paddle.concat(leaves, axis=0)  # (V, N), leaves in level order
        return paddle.gather(log_p, leaf_order).t()  # (N, V), word order

    def _levels(self):
        """The tree by levels as device index tensors, built once per tree (see
        :meth:`_tree_cache`: no host read of the tables unless they changed).

        Returns ``(levels, leaf_order)``: for each depth ``d``, the children at depth ``d + 1``
        as ``(position of each child's parent among the inner nodes at depth d, its row in
        the branch table, the positions of the leaves among them, those of the inner nodes)``;
        ``leaf_order[w]`` is word w's row in the concatenation of the levels' leaves.
        """
        return self._tree_cache().levels()

    def _full_log_prob_by_paths(self, hidden: paddle.Tensor) -> paddle.Tensor:
        """Every word's log-probability as the sum over its padded path (one ``[N, V]`` gather
        per path slot): graph-friendly, ``O(N V L)``."""
        logits = paddle.matmul(hidden, self.weight, transpose_y=True)  # (N, V-1)
        if self.bias is not None:
            logits = logits + self.bias
        zero = paddle.zeros([paddle.shape(logits)[0], 1], dtype=logits.dtype)
        # columns: [log sigmoid(-z) for left branches | log sigmoid(z) for right | 0 for padding]
        table = paddle.concat([F.log_sigmoid(-logits), F.log_sigmoid(logits), zero], axis=1)
        codes = self.path_codes
        column = paddle.where(
            codes >= 0, self.path_nodes + codes * self.num_inner, paddle.full_like(codes, 2 * self.num_inner)
        )  # (V, L)
        log_p = paddle.index_select(table, column[:, 0], axis=1)  # (N, V)
        for slot in range(1, self.max_length):
            log_p = log_p + paddle.index_select(table, column[:, slot], axis=1)
        return log_p


class _ScaleGrad(PyLayer):
    """Identity forward; backward multiplies the gradient of ``x[N, L, D]`` by ``scale[N, L]``."""

    @staticmethod
    def forward(ctx, x, scale):
        ctx.save_for_backward(scale)
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        (scale,) = ctx.saved_tensor()
        return grad * scale.unsqueeze(-1).expand(grad.shape), None


class _TreeCache:
    """Tables derived from one tree's ``path_nodes`` / ``path_codes`` buffers (see
    ``HierarchicalSoftmax._tree_cache``): the child table of the search and the sampler (built on
    the device), and, on first use, the level tables of ``full_log_prob`` (built on the host from
    one read of the tables, kept on the device)."""

    def __init__(self, nodes: paddle.Tensor, codes: paddle.Tensor) -> None:
        self.nodes, self.codes = nodes, codes  # the buffer tensors themselves (identity)
        self.nodes_copy, self.codes_copy = nodes.clone(), codes.clone()  # their values, on their device
        self.children = children_table(nodes, codes)  # (2(V-1),)
        self._levels = None

    def holds(self, nodes: paddle.Tensor, codes: paddle.Tensor) -> bool:
        return nodes is self.nodes and codes is self.codes

    def current(self) -> bool:
        """The buffers still hold the tables this cache was built from (one bool read)."""
        same = paddle.logical_and(paddle.equal_all(self.nodes, self.nodes_copy),
                                  paddle.equal_all(self.codes, self.codes_copy))
        return bool(same)

    def levels(self):
        if self._levels is None:
            self._levels = _level_tables(self.nodes_copy.numpy(), self.codes_copy.numpy())
        return self._levels


def _level_tables(nodes: np.ndarray, codes: np.ndarray):
    """``HierarchicalSoftmax._levels`` from host copies of the path tables."""
    lengths = (codes >= 0).sum(axis=1)
    V = nodes.shape[0]
    n_inner = V - 1
    # every edge (parent inner node, code, child) with the child's depth; a child is inner
    # node nodes[w, j+1] or, at the end of the path, the leaf w (id n_inner + w)
    parent, code, child, depth = [], [], [], []
    for j in range(nodes.shape[1]):
        rows = np.flatnonzero(lengths > j)
        last = lengths[rows] == j + 1
        parent.append(nodes[rows, j])
        code.append(codes[rows, j])
        child.append(np.where(last, n_inner + rows, nodes[rows, np.minimum(j + 1, nodes.shape[1] - 1)]))
        depth.append(np.full(rows.size, j + 1))
    parent, code, child, depth = map(np.concatenate, (parent, code, child, depth))
    _, first = np.unique(child, return_index=True)  # each edge once (shared path prefixes repeat it)
    parent, code, child, depth = parent[first], code[first], child[first], depth[first]
    levels, leaf_cols = [], []
    position = {0: 0}  # inner node -> position among the inner nodes of its level
    for d in range(1, int(depth.max()) + 1):
        at = np.flatnonzero(depth == d)
        order = at[np.argsort(child[at], kind="stable")]
        is_leaf = child[order] >= n_inner
        parent_pos = np.fromiter((position[p] for p in parent[order]), dtype=np.int64, count=order.size)
        branch_row = parent[order] + code[order].astype(np.int64) * n_inner
        levels.append(tuple(paddle.to_tensor(a, dtype="int64") for a in
                            (parent_pos, branch_row, np.flatnonzero(is_leaf), np.flatnonzero(~is_leaf))))
        inner_children = child[order][~is_leaf]
        position = {int(c): i for i, c in enumerate(inner_children)}
        leaf_cols.append(child[order][is_leaf] - n_inner)
    leaf_order = np.empty(V, dtype=np.int64)
    leaf_order[np.concatenate(leaf_cols)] = np.arange(V)
    return levels, paddle.to_tensor(leaf_order)


def _tree_from_tables(nodes, codes, kind: str) -> Tree:
    nodes = nodes.numpy() if isinstance(nodes, paddle.Tensor) else np.asarray(nodes)
    codes = codes.numpy() if isinstance(codes, paddle.Tensor) else np.asarray(codes)
    return Tree(nodes, codes, (nodes >= 0).sum(axis=1), kind=kind)
