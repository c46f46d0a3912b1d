"""The fused CPU kernels (``csrc/*.cc``), compiled on first use: word2vec's training loop and the
hierarchical-softmax layer's training forward and backward.

word2vec.c and gensim owe their speed to one tight loop that walks a centre word's tree path and
updates the vectors in place, pair after pair, with no autograd and no temporary ``[B, L, D]``
tensors. ``csrc/word2vec_hs.cc`` is that loop as a Paddle custom operator; ``csrc/hsoftmax.cc``
does the same walk for :class:`~paddle_hsoftmax.output.HierarchicalSoftmax` (each target's real
path, not the padded one) with autograd around it (:func:`hsoftmax_nll`). The pure-Paddle paths
stay the reference, the GPU path, the export path and the data-parallel path; tests check that
both compute the same losses, updates and gradients.

Building: ``paddle.utils.cpp_extension.load`` with the C++ compiler named by ``$CXX`` (default
``c++``; g++ >= 8 with OpenMP), ~20 s per kernel the first time. Builds are cached under
``$PADDLE_HSOFTMAX_BUILD_DIR`` (default ``~/.cache/paddle_hsoftmax``) in a directory named by a
key over everything the binary depends on: the source, the flags, Paddle's and Python's versions,
the compiler's path and version, and the CPU's feature flags (``/proc/cpuinfo``), so a
``-march=native`` build made on one CPU is never loaded on another (a home directory shared by
several machines keeps one build per CPU kind). Concurrent processes building the same key wait
for each other (a file lock). When a kernel cannot be built (no compiler, missing headers, a
source file not installed) the caller falls back to the Paddle path after ONE warning line; the
compiler's own output goes to a ``build.log`` named in that line, never to the terminal.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import platform
import shlex
import shutil
import subprocess
import sys
import warnings
from pathlib import Path
from typing import Dict, Optional

import numpy as np
import paddle

__all__ = [
    "load_word2vec_kernel",
    "word2vec_hs_step",
    "word2vec_ns_step",
    "word2vec_train_tokens",
    "load_hsoftmax_kernel",
    "hsoftmax_nll",
    "kernel_threads",
    "set_kernel_threads",
    "build_key",
]

log = logging.getLogger(__name__)

_CSRC = Path(__file__).with_name("csrc")
_SOURCE = _CSRC / "word2vec_hs.cc"
_CFLAGS = ["-O3", "-fopenmp", "-march=native", "-fno-math-errno"]
_LDFLAGS = ["-fopenmp"]


def _build_root() -> str:
    return os.environ.get("PADDLE_HSOFTMAX_BUILD_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "paddle_hsoftmax"
    )


class ToolchainError(RuntimeError):
    """No usable C++ compiler: every fused kernel is unavailable (warned about once per process)."""


def _compiler() -> tuple:
    """``(absolute path, first line of --version)`` of the compiler ``cpp_extension`` will run
    (``$CXX``, default ``c++``), or :class:`ToolchainError`."""
    name = os.environ.get("CXX") or "c++"
    parts = shlex.split(name)
    exe = shutil.which(parts[0]) if parts else None
    if exe is None:
        raise ToolchainError(f"no C++ compiler: CXX={name!r} is not on PATH")
    try:
        out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        raise ToolchainError(f"the C++ compiler {exe} does not run ({exc})") from None
    if out.returncode != 0:
        raise ToolchainError(f"`{exe} --version` failed with status {out.returncode}")
    first = (out.stdout or out.stderr).strip().splitlines()
    return os.path.realpath(exe), first[0] if first else "unknown version"


def _cpu_features() -> str:
    """The CPU's feature flags (``flags`` of ``/proc/cpuinfo``, sorted) or, elsewhere, what
    ``platform`` says about the processor: ``-march=native`` compiles for exactly these."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return " ".join(sorted(set(line.split(":", 1)[1].split())))
    except OSError:
        pass
    return f"{platform.processor()} {platform.machine()}"


def build_key(source: Path) -> str:
    """The cache key of a kernel build: sha256 over the source, flags, versions, compiler and
    CPU features (see the module docstring). Raises :class:`ToolchainError` without a compiler."""
    compiler, version = _compiler()
    digest = hashlib.sha256(Path(source).read_bytes())
    for part in (_CFLAGS, _LDFLAGS, [paddle.__version__, sys.version, platform.machine()],
                 [compiler, version, _cpu_features()]):
        digest.update("\0".join(part).encode())
        digest.update(b"\1")
    return digest.hexdigest()


@contextlib.contextmanager
def _file_lock(path: str):
    """An exclusive lock on ``path`` (a no-op where ``fcntl`` does not exist)."""
    try:
        import fcntl
    except ImportError:  # Windows: builds are not serialised
        yield
        return
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


@contextlib.contextmanager
def _output_to(path: str):
    """Send this process's stdout and stderr (file descriptors 1 and 2, which the compiler's
    subprocess inherits) to ``path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(path, "w") as f:
            os.dup2(f.fileno(), 1)
            os.dup2(f.fileno(), 2)
            try:
                yield
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
    finally:
        for fd in saved:
            os.close(fd)


class _Ops:
    """Calls registered custom ops by name: ``ops.word2vec_hs_step(*inputs, *attrs)``."""

    def __getattr__(self, name):
        from paddle import _C_ops

        def call(*args):
            return _C_ops._run_custom_op(name, *args)

        return call


_toolchain_warned = False


class _Kernel:
    """One C++ source compiled into one library of custom ops, built, cached and loaded once."""

    def __init__(self, name: str, source: Path, what: str) -> None:
        self.name, self.source, self.what = name, Path(source), what
        self.ops: Optional[_Ops] = None
        self.failed: Optional[str] = None

    def load(self) -> Optional[_Ops]:
        """The registered ops, or None when they cannot be built here (logged once)."""
        global _toolchain_warned
        if self.ops is not None or self.failed is not None:
            return self.ops
        try:
            self.ops = self._load()
        except ToolchainError as exc:  # the same cause for every kernel: one line per process
            self.failed = str(exc)
            if not _toolchain_warned:
                _toolchain_warned = True
                log.warning("paddle_hsoftmax: fused CPU kernels unavailable (%s); using the Paddle ops "
                            "(slower; install g++ to get them)", exc)
        except Exception as exc:  # headers missing, compile error, source not installed, ...
            self.failed = f"{type(exc).__name__}: {exc}"
            log.warning("paddle_hsoftmax: fused %s kernel unavailable (%s); using the Paddle ops",
                        self.what, " ".join(self.failed.split()))
        return self.ops

    def _load(self) -> _Ops:
        if not self.source.exists():
            raise FileNotFoundError(f"{self.source} is not installed (the C++ sources are package data: "
                                    "reinstall paddle_hsoftmax)")
        key = build_key(self.source)
        root = os.path.join(_build_root(), f"paddle-{paddle.__version__}")
        build_dir = os.path.join(root, f"{self.name}-{key[:16]}")
        os.makedirs(build_dir, exist_ok=True)
        with _file_lock(build_dir + ".lock"):
            stamp = os.path.join(build_dir, self.name + ".stamp")
            so_path = os.path.join(build_dir, self.name, self.name + ".so")
            if _read(stamp) == key and os.path.exists(so_path) and self._register(so_path):
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
            with warnings.catch_warnings(), _output_to(build_log):
                warnings.simplefilter("ignore")  # "No ccache found" and the like
                load(
                    name=self.name,
                    sources=[str(self.source)],
                    extra_cxx_cflags=_CFLAGS,
                    extra_ldflags=_LDFLAGS,
                    build_directory=build_dir,
                    verbose=False,
                )
        except Exception as exc:
            raise RuntimeError(f"{exc} (compiler output: {build_log})") from None


def _read(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return None


_WORD2VEC = _Kernel("paddle_hsoftmax_word2vec", _SOURCE, "word2vec")
_HSOFTMAX = _Kernel("paddle_hsoftmax_hsoftmax", _CSRC / "hsoftmax.cc", "hierarchical-softmax")
_FAILED: Optional[str] = None


def load_word2vec_kernel():
    """The word2vec ops, or None when they cannot be built here (the reason is logged once)."""
    global _FAILED
    ops = _WORD2VEC.load()
    _FAILED = _WORD2VEC.failed
    return ops


def load_hsoftmax_kernel():
    """The hierarchical-softmax ops, or None when they cannot be built here (logged once)."""
    return _HSOFTMAX.load()


# -- hierarchical softmax ----------------------------------------------------------------------
_threads = 1


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
    """Hierarchical-softmax NLL on CPU with the fused kernel: ``[N, K, D], [N] -> [N, K]``.

    The same function as the layer's Paddle path (``HierarchicalSoftmax._nll_shared``), with
    gradients for ``hidden``, ``weight`` and ``bias``. Each target's path is walked to its real
    length (at most ``max_length`` nodes); a target equal to ``ignore_index`` gives 0 and no
    gradient; other targets must lie in ``[0, V-1]`` (else an error). The rows the batch touches
    are gathered with ``F.embedding(sparse=sparse)``, so ``weight.grad`` is the SelectedRows of
    those rows with ``sparse=True`` and a dense ``[V-1, D]`` tensor otherwise; the bias gradient is
    dense. ``node_grad_scale[N, >= L]`` multiplies the gradient flowing into each path slot's node
    vector (see :meth:`HierarchicalSoftmax.nll_shared_path`).
    """
    ops = _HSOFTMAX.load()
    if ops is None:
        raise RuntimeError(f"the fused hierarchical-softmax kernel could not be built: {_HSOFTMAX.failed}")
    unique, slots, offsets, occurrences = ops.hsoftmax_paths(
        path_nodes, path_codes, target, int(weight.shape[0]), int(max_length or 0), int(ignore_index)
    )  # (U,), (N, Lb), (U + 1,), (nnz,)
    rows = paddle.nn.functional.embedding(unique, weight, sparse=sparse)  # (U, D)
    has_bias = bias is not None
    bias_rows = paddle.gather(bias, unique) if has_bias else _empty()  # (U,)
    scale = _empty() if node_grad_scale is None else node_grad_scale.astype("float32")
    # the op's registered gradient (csrc/hsoftmax.cc) gives hidden, rows and bias_rows their
    # gradients; measured 0.6 ms per step less than the same kernels behind a PyLayer
    return ops.hsoftmax_forward(hidden, rows, bias_rows, slots, offsets, occurrences, scale, _threads)[0]  # (N, K)


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


def _int64(array) -> paddle.Tensor:
    return paddle.to_tensor(np.ascontiguousarray(array, dtype=np.int64))


def word2vec_ns_step(
    syn0: paddle.Tensor,
    syn1neg: paddle.Tensor,
    table: paddle.Tensor,
    centres: np.ndarray,
    contexts: np.ndarray,
    alpha: float,
    negative: int = 5,
    cbow: bool = False,
    threads: int = 1,
    loss_stride: int = 1,
    seed: int = 0,
    negatives: Optional[np.ndarray] = None,
    shards: int = 0,
    round_centres: int = 16,
):
    """:func:`word2vec_hs_step` with negative sampling (word2vec.c's ``-negative``): ``syn1neg``
    ``[V, D]``, ``table`` the int32 unigram^0.75 table. Each (context, centre) pair (CBOW: each
    window) trains the centre with label 1 and ``negative`` words drawn from ``table`` with label 0
    (a draw equal to the centre is skipped); centre ``i`` draws from a generator seeded by
    ``(seed, i)``. ``negatives`` (``[N, K, negative]`` skip-gram, ``[N, negative]`` CBOW, -1 =
    none) fixes the draws instead (tests). Returns ``(loss sum, pairs in it, all pairs)``, the loss
    of a pair being ``-log sigmoid(h . u_c) - sum_n log sigmoid(-h . u_n)``."""
    module = load_word2vec_kernel()
    if module is None:
        raise RuntimeError(f"the fused word2vec kernel could not be built: {_FAILED}")
    fixed = np.zeros(0, np.int64) if negatives is None else negatives
    with paddle.no_grad():
        out = module.word2vec_ns_step(
            syn0.detach(), syn1neg.detach(), table, _int64(centres), _int64(contexts), _int64(fixed),
            float(alpha), bool(cbow), int(threads), int(loss_stride), int(negative), int(seed) & 0x7FFFFFFF,
            int(shards), int(round_centres),
        )
    stats = out[-1].numpy()
    return float(stats[0]), float(stats[1]), float(stats[2])


def word2vec_train_tokens(
    syn0: paddle.Tensor,
    syn1: paddle.Tensor,
    tokens: np.ndarray,
    keep: paddle.Tensor,
    window: int,
    alpha0: float,
    alpha1: float,
    path_nodes: Optional[paddle.Tensor] = None,
    path_codes: Optional[paddle.Tensor] = None,
    table: Optional[paddle.Tensor] = None,
    negative: int = 0,
    cbow: bool = False,
    threads: int = 1,
    loss_stride: int = 1,
    max_exp: float = 0.0,
    seed: int = 0,
):
    """word2vec.c's whole loop over a piece of the corpus, in C++: ``tokens`` (int32 word ids,
    -1 after each sentence) are subsampled with ``keep[w]`` (float32 ``[V]``), each kept position
    draws its window reach in ``[1, window]`` and trains its pairs, alpha falling linearly from
    ``alpha0`` to ``alpha1`` over the piece; sentences are shared out over ``threads`` (Hogwild).
    Hierarchical softmax with ``negative = 0`` (``syn1 [V-1, D]`` and the path tables), negative
    sampling with ``negative >= 1`` (``syn1neg [V, D]`` and ``table``). Sentence ``s`` draws from a
    generator seeded by ``(seed, s)``. Returns ``(loss sum, pairs in it, all pairs, kept tokens)``."""
    module = load_word2vec_kernel()
    if module is None:
        raise RuntimeError(f"the fused word2vec kernel could not be built: {_FAILED}")
    empty64 = _EMPTY.setdefault("i64", paddle.zeros([0, 1], dtype="int64"))
    empty32 = _EMPTY.setdefault("i32", paddle.zeros([0], dtype="int32"))
    with paddle.no_grad():
        out = module.word2vec_train_tokens(
            syn0.detach(), syn1.detach(),
            empty64 if path_nodes is None else path_nodes, empty64 if path_codes is None else path_codes,
            empty32 if table is None else table,
            paddle.to_tensor(np.ascontiguousarray(tokens, dtype=np.int32)), keep,
            int(window), bool(cbow), float(alpha0), float(alpha1), int(threads), int(loss_stride), float(max_exp),
            int(negative), int(seed) & 0x7FFFFFFF,
        )
    stats = out[-1].numpy()
    return float(stats[0]), float(stats[1]), float(stats[2]), float(stats[3])
