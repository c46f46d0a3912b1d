"""Data-only files for what a run directory holds: nothing a user loads can run code.

Problem -> idea: ``paddle.load`` unpickles, and a pickle runs whatever its author put in its
``__reduce__``: opening a stranger's ``.pdparams`` is running a stranger's program. So every
parameter and checkpoint file this package writes is a safetensors file (a JSON header of names,
dtypes, shapes and offsets, then raw little-endian bytes; read by ``safetensors.numpy.load_file``,
which parses the header and copies bytes, nothing else), and everything else is JSON or text.

- :func:`save_state` / :func:`load_state`: a nested structure (dicts with string keys, lists,
  tuples, ``None``, bools, ints, floats, strings, Paddle tensors, NumPy arrays and scalars,
  Paddle's random-generator states) as ONE safetensors file: each tensor under its path in the
  structure (``model/embedding.weight``, ``optimizer/linear_0.w_0_moment1_0``), the structure
  itself as JSON in the header's metadata. The checkpoints (``checkpoints/last.pdckpt``,
  ``best.pdckpt``) are such files: one file, so one atomic rename still replaces a whole
  checkpoint. Bit-exact: tensors keep their dtype and bytes, floats go through JSON's
  shortest-repr round trip, generator states are their own integers.
- :func:`save_tensors` / :func:`load_tensors`: a flat ``name -> tensor`` file (a CRF's
  transitions, ``inference/crf.safetensors``).
- :func:`check_not_pickle`: a file that starts like a pickle (or a zip archive, PyTorch's
  pickle container) is refused *before* anything parses it, in one line naming the file and
  ``python -m paddle_hsoftmax.convert RUN`` (which unpickles only when asked, for a run the user
  made).

Every failure is a :class:`~paddle_hsoftmax.data.text.CorpusError` (exit status 2, one line
naming the file): a pickle (:class:`UnsafeFileError`), a truncated or damaged file, a file of
another format.

Shape: tensors are stored with their own shapes (0-d included); nothing is reshaped.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np

from .data.text import CorpusError
from .export import atomic_path

__all__ = ["UnsafeFileError", "FORMAT", "save_state", "load_state", "save_tensors", "load_tensors",
           "check_not_pickle", "is_pickle", "sha256_file", "CONVERT_HINT"]

PathLike = Union[str, os.PathLike]
FORMAT = "paddle_hsoftmax.state/1"  # the metadata "format" of a save_state file
CONVERT_HINT = "python -m paddle_hsoftmax.convert RUN_DIR"

# pickle protocols 2-5 start with PROTO (0x80) and the protocol number; protocols 0 and 1 with an
# opcode such as "(" (MARK), "}" / "]" (empty dict / list) or "c" (GLOBAL); a zip archive is
# PyTorch's pickle container
_PICKLE_STARTS = (b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05", b"(", b"}", b"]", b"c", b"PK\x03\x04")


class UnsafeFileError(CorpusError):
    """A file that would run code when loaded (a pickle): refused, never opened by a loader."""


def is_pickle(path: PathLike) -> bool:
    """Whether ``path`` starts like a pickle (or a zip archive) and not like a safetensors file
    (8-byte little-endian header length, then ``{``): reads 9 bytes, parses nothing."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return False
    if len(head) == 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") + 8 <= size:
        return False
    return any(head.startswith(s) for s in _PICKLE_STARTS)


def check_not_pickle(path: PathLike, what: str = "file") -> None:
    """Raise :class:`UnsafeFileError` if ``path`` is a pickle (see :func:`is_pickle`)."""
    if is_pickle(path):
        raise UnsafeFileError(
            f"{path}: a pickle {what} (written by paddle_hsoftmax 0.1.0 or by someone else), not loaded: unpickling "
            f"runs whatever code the file's author put in it; if you made this run yourself, convert it with "
            f"`{CONVERT_HINT}`")


def sha256_file(path: PathLike) -> str:
    """The file's SHA-256, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# -- reading and writing safetensors files ---------------------------------------------------------
def _to_numpy(value) -> np.ndarray:
    """A C-contiguous NumPy array of the tensor, 0-d kept 0-d (``np.ascontiguousarray`` would
    make it 1-d); a Paddle bfloat16 tensor comes out as its uint16 bits (Paddle's convention)."""
    array = np.asarray(value if isinstance(value, (np.ndarray, np.generic)) else value.numpy())
    return array if array.flags.c_contiguous else array.copy(order="C")


def _write(path: PathLike, arrays: Dict[str, np.ndarray], metadata: Dict[str, str], delay: float) -> None:
    from safetensors.numpy import save_file

    with atomic_path(path, delay=delay) as tmp:
        save_file(arrays, str(tmp), metadata=metadata)


def _read(path: PathLike, what: str) -> Tuple[Dict[str, np.ndarray], Dict[str, str]]:
    """``(arrays, metadata)`` of a safetensors file; one-line errors naming it."""
    from safetensors import safe_open
    from safetensors.numpy import load_file

    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"{path}: missing {what}")
    check_not_pickle(path, what)
    size = path.stat().st_size
    if size < 10:
        raise CorpusError(f"{path}: damaged {what} ({size} bytes: empty or truncated)")
    try:
        with safe_open(str(path), framework="np") as f:
            metadata = dict(f.metadata() or {})
        arrays = load_file(str(path))
    except Exception as exc:  # safetensors raises SafetensorError, OSError or ValueError on damage
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CorpusError(f"{path}: damaged {what}, not a readable safetensors file ({reason})") from None
    return arrays, metadata


def save_tensors(path: PathLike, tensors: Dict[str, Any], metadata: Optional[Dict[str, str]] = None,
                 delay: float = 0.0) -> None:
    """Write ``name -> tensor`` (Paddle or NumPy) as a safetensors file, atomically (temporary
    file, fsync, rename, fsync of the directory)."""
    _write(path, {str(k): _to_numpy(v) for k, v in tensors.items()}, dict(metadata or {}), delay)


def load_tensors(path: PathLike, what: str = "parameters file") -> Dict[str, np.ndarray]:
    """``name -> NumPy array`` of a safetensors file written by :func:`save_tensors`.

    Raises:
        CorpusError: missing, a pickle (:class:`UnsafeFileError`), truncated or damaged.
    """
    return _read(path, what)[0]


# -- nested structures -----------------------------------------------------------------------------
def _encode(obj: Any, key: str, arrays: Dict[str, np.ndarray]) -> Any:
    """JSON for ``obj``; tensors go to ``arrays`` under ``key`` (their path in the structure).
    Paddle is not imported for it: a process without Paddle holds no Paddle tensor."""
    paddle = sys.modules.get("paddle")
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return obj
    if isinstance(obj, float):
        return {"$float": repr(obj)}  # NaN and infinities too; repr round-trips every float exactly
    if paddle is not None and isinstance(obj, paddle.Tensor):
        arrays[key] = _to_numpy(obj)
        return {"$tensor": key, "as": "paddle"}
    if isinstance(obj, np.ndarray):
        arrays[key] = _to_numpy(obj)
        return {"$tensor": key, "as": "numpy"}
    if isinstance(obj, np.generic):
        arrays[key] = _to_numpy(obj)
        return {"$tensor": key, "as": "scalar"}
    if type(obj).__name__ == "GeneratorState" and hasattr(obj, "__getstate__"):
        device, seed, offset, state = obj.__getstate__()
        return {"$generator": [int(device), int(seed), int(offset), bytes(state).decode("ascii")]}
    if isinstance(obj, dict):
        bad = [k for k in obj if not isinstance(k, str) or "/" in k]
        if bad:
            raise TypeError(f"save_state: dict keys must be strings without '/', got {bad[0]!r} under {key!r}")
        return {"$dict": {k: _encode(v, f"{key}/{k}" if key else k, arrays) for k, v in obj.items()}}
    if isinstance(obj, (list, tuple)):
        items = [_encode(v, f"{key}/{i}" if key else str(i), arrays) for i, v in enumerate(obj)]
        return {"$tuple": items} if isinstance(obj, tuple) else items
    raise TypeError(f"save_state: cannot store a {type(obj).__name__} (at {key!r}) as data")


def _decode(node: Any, arrays: Dict[str, np.ndarray], path: Path) -> Any:
    if node is None or isinstance(node, (bool, int, str)):
        return node
    if isinstance(node, list):
        return [_decode(v, arrays, path) for v in node]
    if not isinstance(node, dict) or len(node) not in (1, 2):
        raise CorpusError(f"{path}: damaged checkpoint (unexpected entry {str(node)[:60]!r} in its structure)")
    if "$float" in node:
        return float(node["$float"])
    if "$dict" in node:
        return {k: _decode(v, arrays, path) for k, v in node["$dict"].items()}
    if "$tuple" in node:
        return tuple(_decode(v, arrays, path) for v in node["$tuple"])
    if "$tensor" in node:
        if node["$tensor"] not in arrays:
            raise CorpusError(f"{path}: damaged checkpoint (tensor {node['$tensor']!r} is missing)")
        value = arrays[node["$tensor"]]
        if node.get("as") == "paddle":
            import paddle

            return paddle.to_tensor(value)
        return value[()] if node.get("as") == "scalar" else value
    if "$generator" in node:
        import paddle

        device, seed, offset, state = node["$generator"]
        cls = type(paddle.get_rng_state("cpu")[0])
        generator = cls.__new__(cls)
        generator.__setstate__((int(device), int(seed), int(offset), list(state.encode("ascii"))))
        return generator
    raise CorpusError(f"{path}: damaged checkpoint (unexpected entry {str(node)[:60]!r} in its structure)")


def save_state(path: PathLike, obj: Any, delay: float = 0.0) -> None:
    """Write the nested structure ``obj`` (see the module docstring) as one safetensors file,
    atomically; ``delay`` (kill tests only) pauses between the complete temporary file and the
    rename (:func:`~paddle_hsoftmax.export.atomic_path`)."""
    arrays: Dict[str, np.ndarray] = {}
    tree = _encode(obj, "", arrays)
    _write(path, arrays, {"format": FORMAT, "structure": json.dumps(tree, ensure_ascii=True)}, delay)


def load_state(path: PathLike, what: str = "checkpoint") -> Any:
    """What :func:`save_state` wrote: Paddle tensors where Paddle tensors were saved, NumPy
    arrays and scalars where NumPy ones were.

    Raises:
        CorpusError: missing, a pickle (:class:`UnsafeFileError`: the file was not parsed),
            truncated, damaged, or a safetensors file that is not a ``save_state`` file.
    """
    path = Path(path)
    arrays, metadata = _read(path, what)
    if metadata.get("format") != FORMAT:
        raise CorpusError(f"{path}: not a paddle_hsoftmax {what} (safetensors metadata format "
                          f"{metadata.get('format')!r}, expected {FORMAT!r})")
    try:
        tree = json.loads(metadata["structure"])
    except (KeyError, ValueError) as exc:
        raise CorpusError(f"{path}: damaged {what} (its structure is not JSON: {exc})") from None
    return _decode(tree, arrays, path)
