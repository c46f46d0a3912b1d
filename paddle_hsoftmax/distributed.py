"""Data parallel under ``python -m paddle.distributed.launch``: one gradient exchange per step that
sends sparse gradients as the rows they touch (who this process is and its share of a batch:
:mod:`paddle_hsoftmax.processes`, which needs no Paddle).

Problem -> idea: Paddle's ``DataParallel`` reducer all-reduces every gradient densely and crashes
on a sparse (``SelectedRows``) one, so an H-softmax or embedding table of ``[V, D]`` travels whole
every step (512 MB at V = 1e6, D = 128), nearly all of it zeros. :class:`GradientSync` instead
runs after the backward pass:

- the dense gradients (and the step's loss sum, loss-term count and data units) go in ONE flat
  buffer through one ``all_reduce(SUM)``;
- each sparse gradient goes as its touched rows: an ``all_gather`` of the row counts, then of the
  row ids and the row values (padded to the largest count), concatenated in rank order (a fixed
  order: every process builds the same merged gradient, bit for bit) and handed back to the
  optimizer as a sparse gradient, so SGD / lazy Adam update only those rows.

Loss scaling: a task's backward is of its *mean* loss (``loss_sum / count`` of its own share) or of
its *sum* (word2vec). For a mean, each process's gradient is weighted by its ``count`` and the sum
divided by the total count, so the result is the gradient of the mean over the whole batch, what
one process computes on the whole batch (float rounding aside): ranks whose shares hold different
numbers of tokens are weighted right. For a sum, the gradients are summed.

"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

import numpy as np
import paddle

from .processes import rank, world

__all__ = ["broadcast_parameters", "GradientSync", "sparse_parameters"]


def broadcast_parameters(model: paddle.nn.Layer, src: int = 0) -> None:
    """Every process starts from process ``src``'s parameters and buffers."""
    import paddle.distributed as dist

    if world() == 1:
        return
    # buffers that hold nothing yet (an RNN's flattened-weight cache) live on no device: skipped
    buffers = [b for b in model.buffers() if b is not None and b._is_initialized()
               and (b.place.is_cpu_place() or b.place.is_gpu_place())]
    with paddle.no_grad():
        for t in list(model.parameters()) + buffers:
            dist.broadcast(t, src=src)


def sparse_parameters(model: paddle.nn.Layer) -> List[paddle.Tensor]:
    """Parameters whose gradient is sparse (``SelectedRows``): the weights of layers built with
    ``sparse=True`` (``nn.Embedding``'s ``_sparse``, or a ``sparse`` attribute)."""
    out, seen = [], set()
    for layer in model.sublayers(include_self=True):
        if getattr(layer, "_sparse", False) is True or getattr(layer, "sparse", False) is True:
            w = getattr(layer, "weight", None)
            if isinstance(w, paddle.Tensor) and not w.stop_gradient and id(w) not in seen:
                seen.add(id(w))
                out.append(w)
    return out


class GradientSync:
    """The per-step gradient exchange of the module docstring, for one model's parameters.

    Args:
        model: the model (its trainable parameters, in their order, which every process shares).
        sparse: send sparse gradients as rows (default); False: all-reduce them densely like
            Paddle's reducer would (the comparison ``scripts/bench_dp_grads.py`` measures).

    Attributes:
        last_bytes: ``{"dense", "sparse"}``: the bytes this process contributed to the last
            exchange (its all-reduce buffer; its padded row ids and values).
        last_rows: the distinct rows of its sparse gradients it sent in the last exchange.
    """

    def __init__(self, model: paddle.nn.Layer, sparse: bool = True) -> None:
        params = [p for p in model.parameters() if not p.stop_gradient]
        unique, seen = [], set()
        for p in params:
            if id(p) not in seen:
                seen.add(id(p))
                unique.append(p)
        sparse_ids = {id(p) for p in sparse_parameters(model)} if sparse else set()
        self.sparse = [p for p in unique if id(p) in sparse_ids]
        self.dense = [p for p in unique if id(p) not in sparse_ids]
        self.last_bytes: Dict[str, int] = {"dense": 0, "sparse": 0}
        self.last_rows = 0

    def __call__(self, loss_sum: Any, count: float, units: float, mean: bool = True) -> Tuple[float, float, float]:
        """Exchange this step's gradients; return the whole step's ``(loss_sum, count, units)``.

        ``mean``: the backward was of ``loss_sum / count`` (weighted by ``count``); else of the sum."""
        import paddle.distributed as dist

        weight = float(count) if mean else 1.0
        pieces, present = [], []
        for p in self.dense:
            g = p.grad
            if g is not None and g.is_selected_rows():  # a sparse gradient sent densely
                g = _dense_of(p)
            present.append(0.0 if g is None else 1.0)
            pieces.append((paddle.zeros([int(np.prod(p.shape))], dtype="float32") if g is None
                           else g.astype("float32").flatten() * weight))
        loss = loss_sum if isinstance(loss_sum, paddle.Tensor) else paddle.to_tensor(float(loss_sum))
        tail = paddle.concat([paddle.to_tensor(present + [float(count), float(units)], dtype="float32"),
                              loss.astype("float32").reshape([1])])
        buffer = paddle.concat(pieces + [tail]) if pieces else tail
        self.last_bytes = {"dense": int(buffer.shape[0]) * 4, "sparse": 0}
        dist.all_reduce(buffer)
        n_dense = int(buffer.shape[0]) - tail.shape[0]
        scalars = buffer[n_dense:].numpy()
        k = len(self.dense)
        total_count, total_units, total_loss = float(scalars[k]), float(scalars[k + 1]), float(scalars[k + 2])
        scale = 1.0 / max(total_count, 1e-12) if mean else 1.0
        offset = 0
        for p, had in zip(self.dense, scalars[:k]):
            size = int(np.prod(p.shape))
            if had > 0:
                value = (buffer[offset : offset + size] * scale).reshape(p.shape).astype(p.dtype)
                _set_dense_grad(p, value)
            elif p.grad is not None:
                p.clear_gradient(False)
            offset += size
        if self.sparse:
            self._sparse_exchange(weight, scale)
        return total_loss, total_count, total_units

    def _sparse_exchange(self, weight: float, scale: float) -> None:
        import paddle.distributed as dist

        w = world()
        locals_ = []
        for p in self.sparse:
            g = p.grad
            if g is None:
                locals_.append((np.zeros(0, dtype=np.int64), None))
            elif not g.is_selected_rows():
                raise RuntimeError(f"parameter {p.name} was declared sparse but has a dense gradient")
            else:
                locals_.append(_merged_rows(g))
        counts = paddle.to_tensor(np.asarray([len(r) for r, _ in locals_], dtype=np.int64))
        gathered: List[paddle.Tensor] = []
        dist.all_gather(gathered, counts)
        table = np.stack([t.numpy() for t in gathered])  # (world, n_sparse)
        self.last_rows = int(table[rank()].sum())
        for j, (p, (rows, values)) in enumerate(zip(self.sparse, locals_)):
            per_rank = table[:, j]
            most = int(per_rank.max())
            if most == 0:
                if p.grad is not None:
                    p.clear_gradient(False)
                continue
            dim = int(np.prod(p.shape[1:]))
            ids = np.full(most, 0, dtype=np.int64)
            ids[: len(rows)] = rows
            vals = paddle.zeros([most, dim], dtype="float32")
            if values is not None and len(rows):
                vals = paddle.concat([values.astype("float32").reshape([len(rows), dim]) * weight,
                                      paddle.zeros([most - len(rows), dim], dtype="float32")]) \
                    if most > len(rows) else values.astype("float32").reshape([most, dim]) * weight
            self.last_bytes["sparse"] += most * (8 + 4 * dim)
            all_ids: List[paddle.Tensor] = []
            all_vals: List[paddle.Tensor] = []
            dist.all_gather(all_ids, paddle.to_tensor(ids))
            dist.all_gather(all_vals, vals)
            keep_ids = [all_ids[r][: int(per_rank[r])] for r in range(w) if per_rank[r]]
            keep_vals = [all_vals[r][: int(per_rank[r])] for r in range(w) if per_rank[r]]
            merged_ids = paddle.concat(keep_ids)
            merged_vals = (paddle.concat(keep_vals) * scale).reshape([-1] + list(p.shape[1:])).astype(p.dtype)
            _set_sparse_grad(p, merged_ids, merged_vals)


def _merged_rows(g: paddle.Tensor) -> Tuple[np.ndarray, paddle.Tensor]:
    """A sparse gradient's distinct rows (ascending) and their summed values: a lookup gradient
    holds one row per lookup (a word seen 300 times in a batch: 300 rows), so merging first sends
    each touched row once."""
    rows = np.asarray(g.rows(), dtype=np.int64)
    values = g._get_tensor_from_selected_rows()
    distinct, inverse = np.unique(rows, return_inverse=True)
    if len(distinct) == len(rows) and (len(rows) < 2 or bool((np.diff(rows) > 0).all())):
        return rows, values
    merged = paddle.zeros([len(distinct)] + list(values.shape[1:]), dtype=values.dtype)
    return distinct, merged.index_add(paddle.to_tensor(inverse.reshape(-1).astype(np.int64)), 0, values)


def _dense_of(p: paddle.Tensor) -> paddle.Tensor:
    """A sparse gradient of ``p`` as a dense ``p.shape`` tensor (rows summed)."""
    g = p.grad
    rows = paddle.to_tensor(np.asarray(g.rows(), dtype=np.int64))
    values = g._get_tensor_from_selected_rows()
    return paddle.zeros(p.shape, dtype=values.dtype).index_add(rows, 0, values)


def _set_dense_grad(p: paddle.Tensor, value: paddle.Tensor) -> None:
    g = p.grad
    if g is not None and not g.is_selected_rows():
        g.set_value(value)
        return
    p.clear_gradient(False)
    # no gradient yet on this process (the parameter was not used by its share): make one
    paddle.autograd.backward([p * 1.0], [value])


def _set_sparse_grad(p: paddle.Tensor, ids: paddle.Tensor, values: paddle.Tensor) -> None:
    """Make ``p``'s gradient the sparse ``(ids, values)``: the backward of a sparse embedding
    lookup of ``ids`` in ``p`` with output gradient ``values`` is exactly that ``SelectedRows``."""
    import paddle.nn.functional as F

    p.clear_gradient(False)
    paddle.autograd.backward([F.embedding(ids, p, sparse=True)], [values])
