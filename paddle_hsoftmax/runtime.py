"""Process-level settings: the device to run on, and the C allocator on CPU (:func:`setup` does both).

Why the allocator: Paddle's CPU tensors come from glibc ``malloc``. Blocks above glibc's mmap
threshold (128 KiB by default, adjusted dynamically) are mapped fresh and unmapped on free, so a
training step that allocates a few MB of activations pays a page fault per 4 KiB page, every step.
On the 2-core machine this package is tested on, that made an embedding lookup of
``[1024 x 17, 128]`` rows about 10x slower (7.3 ms vs 0.8 ms). Raising the mmap and trim thresholds
keeps freed blocks in the heap for reuse. It changes no results, only where memory comes from.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
from typing import Optional

import paddle

from .errors import ConfigError

__all__ = ["setup", "tune_malloc", "set_cpu_threads", "set_device"]

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def tune_malloc(mmap_threshold: int = 1 << 30, trim_threshold: int = (1 << 31) - 1) -> bool:
    """Keep large freed blocks in glibc's heap (see the module docstring).

    Returns True when glibc accepted both settings, False elsewhere (other C libraries, macOS,
    Windows), where it does nothing.
    """
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = mallopt(_M_MMAP_THRESHOLD, int(mmap_threshold)) == 1
    ok = (mallopt(_M_TRIM_THRESHOLD, int(trim_threshold)) == 1) and ok
    log.debug("glibc mallopt thresholds set: %s", ok)
    return ok


def set_cpu_threads(num_threads: int) -> bool:
    """Let Paddle's CPU math library (BLAS/oneDNN) use ``num_threads`` threads.

    Paddle's CPU build uses one thread unless ``OMP_NUM_THREADS`` says otherwise; on 2 cores a
    ``[1024, 128] x [128, 10000]`` matmul took 129 ms with one thread and 66 ms with two. Returns
    False when this Paddle build has no such switch.
    """
    if num_threads < 1:
        raise ValueError(f"num_threads must be >= 1, got {num_threads}")
    core = getattr(getattr(paddle, "base", None), "core", None)
    setter = getattr(core, "set_num_threads", None)
    if setter is None:
        return False
    setter(int(num_threads))
    return True


def set_device(device: str) -> str:
    """Select ``"cpu"``, ``"gpu"`` or ``"gpu:N"`` and return Paddle's name for it.

    Raises:
        ConfigError: for an unknown name, or ``gpu`` when this Paddle build has no CUDA.
    """
    device = device.strip().lower()
    if device == "cpu":
        return paddle.set_device("cpu").__str__()
    if device == "gpu" or device.startswith("gpu:"):
        if not paddle.device.is_compiled_with_cuda():
            raise ConfigError(
                f"--device {device}: this Paddle build has no CUDA support "
                "(install paddlepaddle-gpu 3.x from Paddle's own index; see the README's GPU install)"
            )
        return paddle.set_device(device).__str__()
    raise ConfigError(f"--device must be cpu, gpu or gpu:N, got {device!r}")


def setup(device: str = "cpu", threads: Optional[int] = None) -> str:
    """The process set-up every command (and notebook) does first: select ``device``; on CPU keep
    freed blocks in glibc's heap (:func:`tune_malloc`) and let the math library use ``threads``
    threads (default: every core). Returns Paddle's name for the device."""
    name = set_device(device)
    if device.strip().lower() == "cpu":
        tune_malloc()
        set_cpu_threads(max(1, threads if threads is not None else (os.cpu_count() or 1)))
    return name
