"""Building the package's C++ kernels: the compiler, the build cache and its key, the lock.

Two kinds of build share this: Paddle custom operators (``paddle.utils.cpp_extension.load``,
:mod:`paddle_hsoftmax.fused`: the H-softmax layer's kernel and the tree search) and plain C
libraries loaded with ``ctypes`` (:func:`build_library`: the word2vec loop, which then needs no
Paddle at all). Builds are cached under ``$PADDLE_HSOFTMAX_BUILD_DIR`` (default
``~/.cache/paddle_hsoftmax``) in a directory named by a key over everything the binary depends on:
the source, the flags, the compiler's path and version, the CPU's feature flags (``/proc/cpuinfo``)
and, for custom operators, Paddle's and Python's versions; so a ``-march=native`` build made on
one CPU is never loaded on another (a home directory shared by several machines keeps one build
per CPU kind). Concurrent processes building the same key wait for each other (a file lock). The
compiler's own output goes to a ``build.log`` in the build directory, never to the terminal.
Needs no Paddle.
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
from pathlib import Path
from typing import Optional, Sequence

__all__ = ["ToolchainError", "CSRC", "CFLAGS", "LDFLAGS", "build_root", "build_key", "build_library",
           "file_lock", "output_to", "read_text", "report_unavailable"]

CSRC = Path(__file__).with_name("csrc")
CFLAGS = ["-O3", "-fopenmp", "-march=native", "-fno-math-errno"]
LDFLAGS = ["-fopenmp"]


def build_root() -> str:
    return os.environ.get("PADDLE_HSOFTMAX_BUILD_DIR") or os.path.join(
        os.path.expanduser("~"), ".cache", "paddle_hsoftmax"
    )


class ToolchainError(RuntimeError):
    """No usable C++ compiler: every fused kernel is unavailable (warned about once per process)."""


def _compiler() -> tuple:
    """``(absolute path, first line of --version)`` of the compiler every build runs
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


def build_key(source: Path, extra: Sequence[str] = ()) -> str:
    """The cache key of a kernel build: sha256 over the source, flags, ``extra`` (a custom
    operator's Paddle version), Python's version, the compiler and the CPU features (see the
    module docstring). Raises :class:`ToolchainError` without a compiler."""
    compiler, version = _compiler()
    digest = hashlib.sha256(Path(source).read_bytes())
    for part in (CFLAGS, LDFLAGS, [*extra, sys.version, platform.machine()],
                 [compiler, version, _cpu_features()]):
        digest.update("\0".join(part).encode())
        digest.update(b"\1")
    return digest.hexdigest()


@contextlib.contextmanager
def file_lock(path: str):
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
def output_to(path: str):
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


def read_text(path: str) -> Optional[str]:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip()
    except OSError:
        return None


def build_library(name: str, source: Path) -> str:
    """Compile ``source`` into a plain shared library (``-shared -fPIC``, no Paddle headers) in
    the build cache, or find the one built before; returns its path. Raises
    :class:`ToolchainError` without a compiler and ``RuntimeError`` (naming the ``build.log``)
    when the compilation fails."""
    source = Path(source)
    if not source.exists():
        raise FileNotFoundError(f"{source} is not installed (the C++ sources are package data: "
                                "reinstall paddle_hsoftmax)")
    compiler, _ = _compiler()
    key = build_key(source)
    build_dir = os.path.join(build_root(), "clib", f"{name}-{key[:16]}")
    os.makedirs(build_dir, exist_ok=True)
    so_path = os.path.join(build_dir, f"lib{name}.so")
    with file_lock(build_dir + ".lock"):
        stamp = os.path.join(build_dir, name + ".stamp")
        if read_text(stamp) == key and os.path.exists(so_path):
            return so_path
        build_log = os.path.join(build_dir, "build.log")
        tmp = so_path + ".tmp"
        cxx = shlex.split(os.environ.get("CXX") or "c++")
        command = [compiler, *cxx[1:], *CFLAGS, "-std=c++17", "-shared", "-fPIC", str(source), "-o", tmp, *LDFLAGS]
        with open(build_log, "w") as f:
            done = subprocess.run(command, stdout=f, stderr=subprocess.STDOUT, timeout=600)
        if done.returncode != 0:
            raise RuntimeError(f"{Path(compiler).name} exited with status {done.returncode} "
                               f"(compiler output: {build_log})")
        os.replace(tmp, so_path)
        with open(stamp + ".tmp", "w", encoding="utf-8") as f:
            f.write(key)
        os.replace(stamp + ".tmp", stamp)
    return so_path


_toolchain_warned = False


def report_unavailable(logger: logging.Logger, what: str, exc: BaseException) -> str:
    """Log why the fused ``what`` kernel cannot be used and return that reason in one line: a
    missing compiler (the same cause for every kernel) is ONE warning line per process, any other
    failure (headers, a compile error, a source not installed) one line per kernel."""
    global _toolchain_warned
    if isinstance(exc, ToolchainError):
        reason = str(exc)
        if not _toolchain_warned:
            _toolchain_warned = True
            logger.warning("paddle_hsoftmax: fused CPU kernels unavailable (%s); using the Paddle ops "
                           "(slower; install g++ to get them)", exc)
        return reason
    reason = " ".join(f"{type(exc).__name__}: {exc}".split())
    logger.warning("paddle_hsoftmax: fused %s kernel unavailable (%s); using the Paddle ops", what, reason)
    return reason
