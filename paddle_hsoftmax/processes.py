"""Who this process is under ``python -m paddle.distributed.launch``, and its share of a batch.

Needs no Paddle unless the process was launched as one of several (then :func:`init` joins the
group): a single-process run that trains without Paddle (word vectors on the CPU) imports none.

Batches: :func:`split_rows` gives process ``r`` of ``w`` its contiguous slice of every array whose
first dimension is the batch (``np.array_split``: sizes differ by at most one), so ``--batch-size``
is the global batch and a run with N processes takes the same steps as one process.
"""

from __future__ import annotations

import os
import sys
from typing import Any, List, Optional, Tuple

import numpy as np

__all__ = ["launched_world", "launched_rank", "init", "rank", "world", "barrier", "split_rows",
           "broadcast_object", "all_gather_object"]


def launched_world() -> int:
    """Processes the launcher started (``PADDLE_TRAINERS_NUM``; 1 without the launcher)."""
    try:
        return max(1, int(os.environ.get("PADDLE_TRAINERS_NUM", "1")))
    except ValueError:
        return 1


def launched_rank() -> int:
    """This process's rank as the launcher set it (``PADDLE_TRAINER_ID``; 0 without the launcher)."""
    try:
        return int(os.environ.get("PADDLE_TRAINER_ID", "0"))
    except ValueError:
        return 0


def init() -> Tuple[int, int]:
    """Join the launcher's process group (once) and return ``(rank, world)``; ``(0, 1)`` alone,
    without importing Paddle."""
    if launched_world() > 1:
        import paddle.distributed as dist

        if not dist.is_initialized():
            dist.init_parallel_env()
    return rank(), world()


def _group():
    """``paddle.distributed`` once this process has joined a process group, else None (a process
    that has not imported Paddle has joined none)."""
    if "paddle" not in sys.modules:
        return None
    import paddle.distributed as dist

    return dist if dist.is_initialized() else None


def rank() -> int:
    group = _group()
    return group.get_rank() if group is not None else 0


def world() -> int:
    group = _group()
    return group.get_world_size() if group is not None else 1


def barrier() -> None:
    group = _group()
    if group is not None and group.get_world_size() > 1:
        group.barrier()


def split_rows(batch: Any, rank: int, world: int) -> Optional[Any]:
    """Process ``rank``'s share of ``batch``: every NumPy array (in a tuple / list, or alone) whose
    first dimension is the batch's is cut into ``world`` contiguous slices and slice ``rank``
    kept; other items (flags, scalars, ``None``) are kept as they are. The batch size is the first
    dimension of the first array. Returns None when the batch has fewer rows than processes (every
    process then skips it, so all take the same steps)."""
    items = list(batch) if isinstance(batch, (tuple, list)) else [batch]
    arrays = [x for x in items if isinstance(x, np.ndarray) and x.ndim >= 1]
    if not arrays:
        raise ValueError("a batch to share out needs at least one array whose first dimension is the batch")
    rows = arrays[0].shape[0]
    if rows < world:
        return None
    bounds = np.linspace(0, rows, world + 1).round().astype(np.int64)  # array_split's sizes, as slices
    lo, hi = int(bounds[rank]), int(bounds[rank + 1])
    out = [x[lo:hi] if isinstance(x, np.ndarray) and x.ndim >= 1 and x.shape[0] == rows else x for x in items]
    if isinstance(batch, tuple):
        return tuple(out)
    return out if isinstance(batch, list) else out[0]


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """``obj`` of process ``src`` on every process (small Python objects: scores, a decision)."""
    import paddle.distributed as dist

    if world() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_gather_object(obj: Any) -> List[Any]:
    """Every process's ``obj``, in rank order."""
    import paddle.distributed as dist

    if world() == 1:
        return [obj]
    out: List[Any] = []
    dist.all_gather_object(out, obj)
    return out
