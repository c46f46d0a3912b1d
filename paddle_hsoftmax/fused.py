"""The fused CPU kernels that are Paddle custom operators (``csrc/hsoftmax.cc``,
``csrc/tree_search.cc``), compiled on first use: the hierarchical-softmax layer's training forward
and backward, and its tree search.

word2vec.c and gensim owe their speed to one tight loop that walks a centre word's tree path and
updates the vectors in place, with no autograd and no temporary ``[B, L, D]`` tensors.
``csrc/hsoftmax.cc`` does that walk for :class:`~paddle_hsoftmax.output.HierarchicalSoftmax` (each
target's real path, not the padded one) with autograd around it (:func:`hsoftmax_nll`). The
pure-Paddle paths stay the reference, the GPU path, the export path and the data-parallel path;
tests check that both compute the same losses and gradients. (The word2vec loop itself is a plain
C library that needs no Paddle: :mod:`paddle_hsoftmax.word2vec_kernel`.)

Building: ``paddle.utils.cpp_extension.load`` with the C++ compiler named by ``$CXX`` (default
``c++``; g++ >= 8 with OpenMP), ~20 s per kernel the first time, cached by
:mod:`paddle_hsoftmax.build`'s key (source, flags, Paddle's and Python's versions, compiler, CPU
features). When a kernel cannot be built (no compiler, missing headers, a source file not
installed) the caller falls back to the Paddle path after ONE warning line; the compiler's own
output goes to a ``build.log`` named in that line, never to the terminal.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import Dict, Optional

import paddle

from . import build
from .build import CSRC as _CSRC

__all__ = [
    "load_hsoftmax_kernel",
    "hsoftmax_nll",
    "kernel_threads",
    "set_kernel_threads",
]

log = logging.getLogger(__name__)



class _Ops:
    """Calls registered custom ops by name: ``ops.word2vec_hs_step(*inputs, *attrs)``."""

    def __getattr__(self, name):
        from paddle import _C_ops

        def call(*args):
            return _C_ops._run_custom_op(name, *args)

        return call


class _Kernel:
    """One C++ source compiled into one library of custom ops, built, cached and loaded once."""

    def __init__(self, name: str, source: Path, what: str) -> None:
        self.name, self.source, self.what = name, Path(source), what
        self.ops: Optional[_Ops] = None
        self.failed: Optional[str] = None

    def load(self) -> Optional[_Ops]:
        """The registered ops, or None when they cannot be built here (logged once)."""
        if self.ops is not None or self.failed is not None:
            return self.ops
        try:
            self.ops = self._load()
        except Exception as exc:  # no compiler, headers missing, compile error, source not installed
            self.failed = build.report_unavailable(log, self.what, exc)
        return self.ops

    def _load(self) -> _Ops:
        if not self.source.exists():
            raise FileNotFoundError(f"{self.source} is not installed (the C++ sources are package data: "
                                    "reinstall paddle_hsoftmax)")
        key = build.build_key(self.source, extra=[paddle.__version__])
        root = os.path.join(build.build_root(), f"paddle-{paddle.__version__}")
        build_dir = os.path.join(root, f"{self.name}-{key[:16]}")
        os.makedirs(build_dir, exist_ok=True)
        with build.file_lock(build_dir + ".lock"):
            stamp = os.path.join(build_dir, self.name + ".stamp")
            so_path = os.path.join(build_dir, self.name, self.name + ".so")
            if build.read_text(stamp) == key and os.path.exists(so_path) and self._register(so_path):
                return _Ops()
            self._build(build_dir)
            tmp = stamp + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(key)
            os.replace(tmp, stamp)
        return _Ops()

    @staticmethod
    def _register(so_path: str) -> bool:
        """Register a library built by an earlier process, skipping ``load``'s rebuild check
        (~1.5 s per process)."""
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "No ccache found", printed on import
                from paddle.utils.cpp_extension.extension_utils import load_op_meta_info_and_register_op

            load_op_meta_info_and_register_op(so_path)
            return True
        except Exception as exc:  # private helper moved or library unreadable: build properly
            log.debug("fast load of %s failed (%s); using cpp_extension.load", so_path, exc)
            return False

    def _build(self, build_dir: str) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "No ccache found", printed on import
            from paddle.utils.cpp_extension import load

        build_log = os.path.join(build_dir, "build.log")
        log.info("compiling the fused %s kernel (once per machine and CPU, ~20 s) in %s", self.what, build_dir)
        try:
            with warnings.catch_warnings(), build.output_to(build_log):
                warnings.simplefilter("ignore")  # "No ccache found" and the like
                load(
                    name=self.name,
                    sources=[str(self.source)],
                    extra_cxx_cflags=build.CFLAGS,
                    extra_ldflags=build.LDFLAGS,
                    build_directory=build_dir,
                    verbose=False,
                )
        except Exception as exc:
            raise RuntimeError(f"{exc} (compiler output: {build_log})") from None


_HSOFTMAX = _Kernel("paddle_hsoftmax_hsoftmax", _CSRC / "hsoftmax.cc", "hierarchical-softmax")


def load_hsoftmax_kernel():
    """The hierarchical-softmax ops, or None when they cannot be built here (logged once)."""
    return _HSOFTMAX.load()


# -- hierarchical softmax ----------------------------------------------------------------------
_threads = 1
# the words of the kernel's error for a target outside [0, V-1] (csrc/hsoftmax.cc, hsoftmax_paths)
TARGET_OUT_OF_RANGE = "hsoftmax: target"


def kernel_threads() -> int:
    """Threads the hierarchical-softmax kernel uses (0 = OpenMP's default)."""
    return _threads


def set_kernel_threads(threads: int) -> None:
    """Threads for the hierarchical-softmax kernel; results do not depend on it (see
    ``csrc/hsoftmax.cc``). 0 = OpenMP's default."""
    global _threads
    if threads < 0:
        raise ValueError(f"threads must be >= 0, got {threads}")
    _threads = int(threads)


_EMPTY: Dict[str, paddle.Tensor] = {}


def _empty() -> paddle.Tensor:
    """A 0-element float32 tensor: the ops' "no bias" / "no scale" input."""
    if "f" not in _EMPTY:
        _EMPTY["f"] = paddle.zeros([0], dtype="float32")
    return _EMPTY["f"]


def hsoftmax_nll(
    hidden: paddle.Tensor,
    weight: paddle.Tensor,
    bias: Optional[paddle.Tensor],
    path_nodes: paddle.Tensor,
    path_codes: paddle.Tensor,
    target: paddle.Tensor,
    max_length: Optional[int] = None,
    ignore_index: int = -100,
    sparse: bool = False,
    node_grad_scale: Optional[paddle.Tensor] = None,
) -> paddle.Tensor:
    """Hierarchical-softmax NLL on CPU with the fused kernel: ``[N, K, D], [N] -> [N, K]`` (or
    ``[N, D], [N] -> [N]``).

    The same function as the layer's Paddle path (``HierarchicalSoftmax._nll_shared``), with
    gradients for ``hidden``, ``weight`` and ``bias``. Each target's path is walked to its real
    length (at most ``max_length`` nodes); a target equal to ``ignore_index`` gives 0 and no
    gradient; other targets must lie in ``[0, V-1]`` (else an error). The rows the batch touches
    are gathered with ``F.embedding(sparse=sparse)``, so ``weight.grad`` is the SelectedRows of
    those rows with ``sparse=True`` and a dense ``[V-1, D]`` tensor otherwise; the op reads the
    bias in place and its gradient is dense. ``node_grad_scale[N, >= L]`` multiplies the
    gradient flowing into each path slot's node vector (see
    :meth:`HierarchicalSoftmax.nll_shared_path`).
    """
    ops = _HSOFTMAX.load()
    if ops is None:
        raise RuntimeError(f"the fused hierarchical-softmax kernel could not be built: {_HSOFTMAX.failed}")
    unique, slots, offsets, occurrences = ops.hsoftmax_paths(
        path_nodes, path_codes, target, int(weight.shape[0]), int(max_length or 0), int(ignore_index)
    )  # (U,), (N, Lb), (U + 1,), (nnz,)
    rows = paddle.nn.functional.embedding(unique, weight, sparse=sparse)  # (U, D)
    scale = _empty() if node_grad_scale is None else node_grad_scale.astype("float32")
    # the op's registered gradient (csrc/hsoftmax.cc) gives hidden, rows and bias their
    # gradients; measured 0.6 ms per step less than the same kernels behind a PyLayer
    return ops.hsoftmax_forward(hidden, rows, _empty() if bias is None else bias, unique, slots, offsets,
                                occurrences, scale, _threads)[0]  # (N, K) or (N,)
