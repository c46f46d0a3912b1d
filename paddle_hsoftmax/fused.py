"""The fused CPU word2vec kernel (``csrc/word2vec_hs.cc``), compiled on first use.

word2vec.c and gensim owe their speed to one tight loop that walks a centre word's tree path and
updates the vectors in place, pair after pair, with no autograd and no temporary ``[B, L, D]``
tensors. This module builds the same loop as a Paddle custom operator with
``paddle.utils.cpp_extension.load`` (g++ and OpenMP; ~20 s the first time, cached afterwards in
``$PADDLE_HSOFTMAX_BUILD_DIR`` or ``~/.cache/paddle_hsoftmax``). The pure-Paddle path
(:class:`~paddle_hsoftmax.models.Word2Vec` with autograd and SGD) stays the reference, the
GPU path and the data-parallel path; tests check that both compute the same losses and updates.
"""

from __future__ import annotations

import hashlib
import logging
import os
import platform
from pathlib import Path
from typing import Optional

import numpy as np
import paddle

__all__ = ["load_word2vec_kernel", "word2vec_hs_step"]

log = logging.getLogger(__name__)

_SOURCE = Path(__file__).with_name("csrc") / "word2vec_hs.cc"
_MODULE = None
_FAILED: Optional[str] = None


def _build_dir() -> str:
    root = os.environ.get("PADDLE_HSOFTMAX_BUILD_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "paddle_hsoftmax"
    )
    path = os.path.join(root, f"paddle-{paddle.__version__}")
    os.makedirs(path, exist_ok=True)
    return path


_NAME = "paddle_hsoftmax_word2vec"
_CFLAGS = ["-O3", "-fopenmp", "-march=native", "-fno-math-errno"]


class _RegisteredOp:
    """Calls the already-registered custom op directly (what ``load`` would generate)."""

    @staticmethod
    def word2vec_hs_step(*args):
        from paddle import _C_ops

        return _C_ops._run_custom_op("word2vec_hs_step", *args)


def _stamp() -> str:
    digest = hashlib.sha256(_SOURCE.read_bytes())
    digest.update(" ".join(_CFLAGS + [paddle.__version__, platform.machine()]).encode())
    return digest.hexdigest()


def _load_built(build_dir: str):
    """Register the library built by an earlier process, skipping ``load``'s rebuild check
    (which costs ~1.5 s per process). Returns None unless the stamp matches this source."""
    so_path = os.path.join(build_dir, _NAME, _NAME + ".so")
    stamp_path = os.path.join(build_dir, _NAME + ".stamp")
    try:
        with open(stamp_path, encoding="utf-8") as f:
            if f.read().strip() != _stamp() or not os.path.exists(so_path):
                return None
        from paddle.utils.cpp_extension.extension_utils import load_op_meta_info_and_register_op

        load_op_meta_info_and_register_op(so_path)
        return _RegisteredOp()
    except Exception as exc:  # private helper moved or library unreadable: build properly
        log.debug("fast load of %s failed (%s); using cpp_extension.load", so_path, exc)
        return None


def load_word2vec_kernel():
    """The compiled module, or None when it cannot be built here (the reason is logged once)."""
    global _MODULE, _FAILED
    if _MODULE is not None or _FAILED is not None:
        return _MODULE
    try:
        build_dir = _build_dir()
        _MODULE = _load_built(build_dir)
        if _MODULE is None:
            from paddle.utils.cpp_extension import load

            _MODULE = load(
                name=_NAME,
                sources=[str(_SOURCE)],
                extra_cxx_cflags=_CFLAGS,
                extra_ldflags=["-fopenmp"],
                build_directory=build_dir,
                verbose=False,
            )
            tmp = os.path.join(build_dir, _NAME + ".stamp.tmp")
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(_stamp())
            os.replace(tmp, os.path.join(build_dir, _NAME + ".stamp"))
    except Exception as exc:  # compiler missing, headers missing, ...: fall back to Paddle ops
        _FAILED = f"{type(exc).__name__}: {exc}"
        log.warning("fused word2vec kernel unavailable, using Paddle ops (%s)", _FAILED)
    return _MODULE


def word2vec_hs_step(
    syn0: paddle.Tensor,
    syn1: paddle.Tensor,
    path_nodes: paddle.Tensor,
    path_codes: paddle.Tensor,
    centres: np.ndarray,
    contexts: np.ndarray,
    alpha: float,
    cbow: bool = False,
    threads: int = 1,
    loss_stride: int = 1,
    max_exp: float = 0.0,
    shards: int = 0,
    round_centres: int = 16,
):
    """Apply word2vec's in-place SGD updates for ``centres[N]`` / ``contexts[N, K]`` (-1 = empty).

    Returns ``(sum of pair NLLs before their updates, pairs in that sum, all pairs)``; the loss
    covers the pairs of every ``loss_stride``-th centre (a log costs as much as the update).
    ``max_exp > 0`` skips the update of nodes with ``|h . v| >= max_exp``, as word2vec.c and
    gensim do with 6 (0 = exact SGD on every node). With ``shards = 0`` and ``threads > 1``
    the updates race as in word2vec.c (Hogwild), so results are not bit-reproducible; with one
    thread they are. ``shards = S >= 2`` trains the batch in rounds of ``S x round_centres``
    centres, each round cut into S shards trained on their own copy-on-write views of the rows
    they touch and merged in shard order: the same result for any ``threads`` (see
    ``csrc/word2vec_hs.cc``); ``shards = 1`` is the sequential loop.
    """
    module = load_word2vec_kernel()
    if module is None:
        raise RuntimeError(f"the fused word2vec kernel could not be built: {_FAILED}")
    with paddle.no_grad():
        # detach() shares storage: the kernel's in-place updates land in the parameters
        out = module.word2vec_hs_step(
            syn0.detach(),
            syn1.detach(),
            path_nodes,
            path_codes,
            paddle.to_tensor(np.ascontiguousarray(centres, dtype=np.int64)),
            paddle.to_tensor(np.ascontiguousarray(contexts, dtype=np.int64)),
            float(alpha),
            bool(cbow),
            int(threads),
            int(loss_stride),
            float(max_exp),
            int(shards),
            int(round_centres),
        )
    stats = out[-1].numpy()
    return float(stats[0]), float(stats[1]), float(stats[2])
