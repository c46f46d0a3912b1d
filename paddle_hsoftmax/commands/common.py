"""What every training command does with its output directory."""

from __future__ import annotations

import shutil
from pathlib import Path

from ..data import CorpusError

__all__ = ["prepare_output", "start_run"]


def prepare_output(out: Path, resume: bool, overwrite: bool) -> None:
    """Create ``out``, refusing to replace a finished run (``metrics.json``) unless ``overwrite``
    or ``resume``; ``overwrite`` clears the old checkpoints, logs and metrics."""
    if out.exists() and not out.is_dir():
        raise CorpusError(f"{out}: exists and is not a directory")
    if (out / "metrics.json").exists() and not (resume or overwrite):
        raise CorpusError(f"{out}: holds a finished run (metrics.json); pass --overwrite to replace it "
                          "or choose another --output-dir")
    if resume and not (out / "checkpoints" / "last.pdckpt").exists():
        raise CorpusError(f"{out}: nothing to resume (no checkpoints/last.pdckpt)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise CorpusError(f"{out}: output directory is not writable ({exc.strerror})") from None
    if overwrite and not resume:
        for name in ("checkpoints", "vdl"):
            shutil.rmtree(out / name, ignore_errors=True)
        for name in ("metrics.json",):
            (out / name).unlink(missing_ok=True)


def start_run(args) -> Path:
    """The usual start of a single-process training command: device (``--device``), the CPU
    allocator and math threads, and the output directory (``--output-dir``, ``--resume``,
    ``--overwrite``). Returns the output directory."""
    import os

    from ..runtime import set_cpu_threads, set_device, tune_malloc

    set_device(args.device)
    if args.device == "cpu":
        tune_malloc()
        set_cpu_threads(os.cpu_count() or 1)
    out = Path(args.output_dir)
    prepare_output(out, args.resume, args.overwrite)
    return out
