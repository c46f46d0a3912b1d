"""word2vec's training loop in C++ (``csrc/word2vec_hs.cc``), loaded with ``ctypes``: no Paddle.

word2vec.c and gensim owe their speed to one tight loop that walks a centre word's tree path (or
draws its negatives) and updates the vectors in place, pair after pair, with no autograd and no
temporary tensors. That loop needs nothing from a deep-learning framework, so it is built as a
plain shared library (:func:`paddle_hsoftmax.build.build_library`: ``-O3 -march=native
-fopenmp``, cached per source, flags, compiler and CPU) and called with raw pointers.

Why not a Paddle custom operator (what it was): a word-vector run on the CPU then needs no Paddle
at all. Measured on this package's 2-core test machine: ``import paddle`` takes 1.4 s and
leaves the process at 301 MiB RSS, more than gensim's whole run on a 29M-token corpus (162 MiB). The Paddle path (``--kernel paddle``: GPU, data
parallel) is untouched, and tests check that both give the same updates.

Arrays: every function takes NumPy arrays or Paddle CPU tensors (the in-place updates then land
in the tensor's storage), C-contiguous, with the dtypes named below; anything else is a
``ValueError`` naming the argument. Shapes: ``syn0 [V, D]``; ``syn1 [V-1, D]`` (hierarchical
softmax, with the path tables ``[V, L]`` int64, -1 padded) or ``syn1neg [V, D]`` (negative
sampling, with the int32 unigram^0.75 table).
"""

from __future__ import annotations

import ctypes
import logging
from typing import Any, Optional, Tuple

import numpy as np

from . import build

__all__ = ["load", "available", "failure", "hs_step", "ns_step", "train_tokens", "SOURCE"]

log = logging.getLogger(__name__)

SOURCE = build.CSRC / "word2vec_hs.cc"

_f32p = ctypes.POINTER(ctypes.c_float)
_i64p = ctypes.POINTER(ctypes.c_int64)
_i32p = ctypes.POINTER(ctypes.c_int32)
_f64p = ctypes.POINTER(ctypes.c_double)
_i64, _int, _float = ctypes.c_int64, ctypes.c_int, ctypes.c_float

_SIGNATURES = {
    "phs_w2v_hs_step": [_f32p, _f32p, _i64, _i64, _i64p, _i64p, _i64, _i64p, _i64p, _i64, _i64, _float, _int,
                        _int, _int, _float, _int, _int, _f64p],
    "phs_w2v_ns_step": [_f32p, _f32p, _i64, _i64, _i32p, _i64, _i64p, _i64p, _i64p, _i64, _i64, _float, _int,
                        _int, _int, _int, _int, _int, _int, _f64p],
    "phs_w2v_train_tokens": [_f32p, _f32p, _i64, _i64, _i64p, _i64p, _i64, _i32p, _i64, _i32p, _i64, _f32p, _int,
                             _int, _float, _float, _int, _int, _float, _int, _int, _f64p],
}


class _Library:
    """The compiled library, built and loaded once per process (None with the reason when it
    cannot be: logged once, see :func:`paddle_hsoftmax.build.report_unavailable`)."""

    def __init__(self, name: str = "paddle_hsoftmax_word2vec") -> None:
        self.name = name
        self.lib: Optional[ctypes.CDLL] = None
        self.failed: Optional[str] = None

    def load(self) -> Optional[ctypes.CDLL]:
        if self.lib is not None or self.failed is not None:
            return self.lib
        try:
            lib = ctypes.CDLL(build.build_library(self.name, SOURCE))
            for fn, args in _SIGNATURES.items():
                getattr(lib, fn).argtypes = args
                getattr(lib, fn).restype = ctypes.c_int
            self.lib = lib
        except Exception as exc:  # no compiler, compile error, source not installed, bad library
            self.failed = build.report_unavailable(log, "word2vec", exc)
        return self.lib


_LIBRARY = _Library()


def load() -> Optional[ctypes.CDLL]:
    """The library, or None when it cannot be built here (the reason is logged once)."""
    return _LIBRARY.load()


def available() -> bool:
    return load() is not None


def failure() -> Optional[str]:
    """Why the library is not available (None when it is, or before the first :func:`load`)."""
    return _LIBRARY.failed


def _library() -> ctypes.CDLL:
    lib = load()
    if lib is None:
        raise RuntimeError(f"the fused word2vec kernel could not be built: {_LIBRARY.failed}")
    return lib


_DTYPES = {np.float32: ("float32", _f32p), np.int64: ("int64", _i64p), np.int32: ("int32", _i32p)}


def _pointer(x: Any, dtype, name: str, writable: bool = False) -> Tuple[Any, Tuple[int, ...], Any]:
    """``(ctypes pointer, shape, keep-alive)`` of ``x``: a NumPy array used in place, or a Paddle
    CPU tensor (its storage, through ``data_ptr``)."""
    label, ptype = _DTYPES[dtype]
    if isinstance(x, np.ndarray):
        if x.dtype != dtype or not x.flags.c_contiguous or (writable and not x.flags.writeable):
            raise ValueError(f"{name} must be a C-contiguous{' writable' if writable else ''} {label} array, "
                             f"got {x.dtype} {'contiguous' if x.flags.c_contiguous else 'strided'}")
        return x.ctypes.data_as(ptype), tuple(x.shape), x
    if hasattr(x, "data_ptr") and hasattr(x, "place"):  # a Paddle tensor
        if not x.place.is_cpu_place() or str(x.dtype) != f"paddle.{label}" or not x.is_contiguous():
            raise ValueError(f"{name} must be a contiguous {label} CPU tensor, got {x.dtype} on {x.place}")
        return ctypes.cast(ctypes.c_void_p(x.data_ptr()), ptype), tuple(int(s) for s in x.shape), x
    raise ValueError(f"{name} must be a NumPy array or a Paddle CPU tensor, got {type(x).__name__}")


def _ids(x: Any, dtype, name: str) -> Tuple[Any, Tuple[int, ...], Any]:
    """Read-only integer input: converted to a contiguous array of ``dtype`` if needed."""
    if not isinstance(x, np.ndarray) and hasattr(x, "data_ptr"):
        return _pointer(x, dtype, name)
    array = np.ascontiguousarray(x, dtype=dtype)
    return array.ctypes.data_as(_DTYPES[dtype][1]), tuple(array.shape), array


def _tables(syn0: Any, syn1: Any, rows1: str) -> Tuple[Any, Any, int, int, list]:
    p0, s0, k0 = _pointer(syn0, np.float32, "syn0", writable=True)
    p1, s1, k1 = _pointer(syn1, np.float32, "syn1", writable=True)
    if len(s0) != 2 or len(s1) != 2 or s0[1] != s1[1]:
        raise ValueError(f"syn0 [V, D] and syn1 [R, D] must share D, got {list(s0)} and {list(s1)}")
    V, D = s0
    want = V - 1 if rows1 == "V-1" else V
    if s1[0] != want:
        raise ValueError(f"syn1 must be [{rows1}, D] = [{want}, {D}], got {list(s1)}")
    return p0, p1, V, D, [k0, k1]


def _paths(path_nodes: Any, path_codes: Any, V: int) -> Tuple[Any, Any, int, list]:
    pn, sn, kn = _ids(path_nodes, np.int64, "path_nodes")
    pc, sc, kc = _ids(path_codes, np.int64, "path_codes")
    if len(sn) != 2 or sn != sc or sn[0] != V:
        raise ValueError(f"path tables must both be [V={V}, L], got {list(sn)} and {list(sc)}")
    return pn, pc, sn[1], [kn, kc]


def _centres(centres: Any, contexts: Any) -> Tuple[Any, Any, int, int, list]:
    pce, sce, kce = _ids(centres, np.int64, "centres")
    pcx, scx, kcx = _ids(contexts, np.int64, "contexts")
    if len(sce) != 1 or len(scx) != 2 or scx[0] != sce[0]:
        raise ValueError(f"centres must be [N] and contexts [N, K], got {list(sce)} and {list(scx)}")
    return pce, pcx, sce[0], scx[1], [kce, kcx]


def hs_step(syn0: Any, syn1: Any, path_nodes: Any, path_codes: Any, centres: Any, contexts: Any, alpha: float,
            cbow: bool = False, threads: int = 1, loss_stride: int = 1, max_exp: float = 0.0, shards: int = 0,
            round_centres: int = 16) -> Tuple[float, float, float]:
    """Apply word2vec's in-place SGD updates for ``centres[N]`` / ``contexts[N, K]`` (-1 = empty).

    Returns ``(sum of pair NLLs before their updates, pairs in that sum, all pairs)``; the loss
    covers the pairs of every ``loss_stride``-th centre (a log costs as much as the update).
    ``max_exp > 0`` skips the update of nodes with ``|h . v| >= max_exp``, as word2vec.c and
    gensim do with 6 (0 = exact SGD on every node). With ``shards = 0`` and ``threads > 1``
    the updates race as in word2vec.c (Hogwild), so results are not bit-reproducible; with one
    thread they are. ``shards = S >= 2`` trains the batch in rounds of ``S x round_centres``
    centres, each round cut into S shards trained on their own copy-on-write views of the rows
    they touch and merged in shard order: the same result for any ``threads`` (see
    ``csrc/word2vec_hs.cc``); ``shards = 1`` is the sequential loop. ``alpha = 0``: the exact
    loss, no update.
    """
    lib = _library()
    p0, p1, V, D, keep = _tables(syn0, syn1, "V-1")
    pn, pc, L, keep_p = _paths(path_nodes, path_codes, V)
    pce, pcx, N, K, keep_c = _centres(centres, contexts)
    stats = (ctypes.c_double * 3)()
    lib.phs_w2v_hs_step(p0, p1, V, D, pn, pc, L, pce, pcx, N, K, float(alpha), int(bool(cbow)), int(threads),
                        int(loss_stride), float(max_exp), int(shards), int(round_centres), stats)
    del keep, keep_p, keep_c
    return float(stats[0]), float(stats[1]), float(stats[2])


def ns_step(syn0: Any, syn1neg: Any, table: Any, centres: Any, contexts: Any, alpha: float, negative: int = 5,
            cbow: bool = False, threads: int = 1, loss_stride: int = 1, seed: int = 0,
            negatives: Optional[np.ndarray] = None, shards: int = 0,
            round_centres: int = 16) -> Tuple[float, float, float]:
    """:func:`hs_step` with negative sampling (word2vec.c's ``-negative``): ``syn1neg [V, D]``,
    ``table`` the int32 unigram^0.75 table. Each (context, centre) pair (CBOW: each window) trains
    the centre with label 1 and ``negative`` words drawn from ``table`` with label 0 (a draw equal
    to the centre is skipped); centre ``i`` draws from a generator seeded by ``(seed, i)``.
    ``negatives`` (``[N, K, negative]`` skip-gram, ``[N, negative]`` CBOW, -1 = none) fixes the
    draws instead (tests, the fixed evaluation). Returns ``(loss sum, pairs in it, all pairs)``,
    the loss of a pair being ``-log sigmoid(h . u_c) - sum_n log sigmoid(-h . u_n)``."""
    if negative < 1:
        raise ValueError(f"negative must be >= 1, got {negative}")
    lib = _library()
    p0, p1, V, D, keep = _tables(syn0, syn1neg, "V")
    pt, st, kt = _ids(table, np.int32, "table")
    pce, pcx, N, K, keep_c = _centres(centres, contexts)
    fixed, kf = None, None
    if negatives is not None:
        fixed, sf, kf = _ids(negatives, np.int64, "negatives")
        if int(np.prod(sf)) != N * (1 if cbow else K) * negative:
            raise ValueError(f"negatives must be [N, K, negative] (skip-gram) or [N, negative] (CBOW), got {list(sf)}")
    elif int(np.prod(st)) == 0:
        raise ValueError("an empty negative-sampling table")
    stats = (ctypes.c_double * 3)()
    lib.phs_w2v_ns_step(p0, p1, V, D, pt, int(np.prod(st)), pce, pcx, fixed, N, K, float(alpha), int(bool(cbow)),
                        int(threads), int(loss_stride), int(negative), int(seed) & 0x7FFFFFFF, int(shards),
                        int(round_centres), stats)
    del keep, kt, keep_c, kf
    return float(stats[0]), float(stats[1]), float(stats[2])


def train_tokens(syn0: Any, syn1: Any, tokens: np.ndarray, keep: Any, window: int, alpha0: float, alpha1: float,
                 path_nodes: Any = None, path_codes: Any = None, table: Any = None, negative: int = 0,
                 cbow: bool = False, threads: int = 1, loss_stride: int = 1, max_exp: float = 0.0,
                 seed: int = 0) -> Tuple[float, float, float, float]:
    """word2vec.c's whole loop over a piece of the corpus: ``tokens`` (int32 word ids, -1 after
    each sentence) are subsampled with ``keep[w]`` (float32 ``[V]``), each kept position draws its
    window reach in ``[1, window]`` and trains its pairs, alpha falling linearly from ``alpha0``
    to ``alpha1`` over the piece; sentences are shared out over ``threads`` (Hogwild).
    Hierarchical softmax with ``negative = 0`` (``syn1 [V-1, D]`` and the path tables), negative
    sampling with ``negative >= 1`` (``syn1neg [V, D]`` and ``table``). Sentence ``s`` draws from a
    generator seeded by ``(seed, s)``. Returns ``(loss sum, pairs in it, all pairs, kept tokens)``."""
    lib = _library()
    p0, p1, V, D, hold = _tables(syn0, syn1, "V" if negative > 0 else "V-1")
    ptok, stok, ktok = _ids(tokens, np.int32, "tokens")
    pk, sk, kk = _ids(keep, np.float32, "keep")
    if len(stok) != 1 or int(np.prod(sk)) != V:
        raise ValueError(f"tokens must be [T] and keep [V={V}], got {list(stok)} and {list(sk)}")
    pn = pc = pt = None
    L = table_size = 0
    if negative > 0:
        if table is None:
            raise ValueError("negative sampling needs the unigram table")
        pt, st, kt = _ids(table, np.int32, "table")
        table_size = int(np.prod(st))
        if table_size == 0:
            raise ValueError("an empty negative-sampling table")
        hold.append(kt)
    else:
        if path_nodes is None or path_codes is None:
            raise ValueError("hierarchical softmax needs the path tables")
        pn, pc, L, kp = _paths(path_nodes, path_codes, V)
        hold.extend(kp)
    stats = (ctypes.c_double * 4)()
    lib.phs_w2v_train_tokens(p0, p1, V, D, pn, pc, L, pt, table_size, ptok, stok[0], pk, int(window),
                             int(bool(cbow)), float(alpha0), float(alpha1), int(threads), int(loss_stride),
                             float(max_exp), int(negative), int(seed) & 0x7FFFFFFF, stats)
    del hold, ktok, kk
    return float(stats[0]), float(stats[1]), float(stats[2]), float(stats[3])
