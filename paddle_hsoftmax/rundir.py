"""A run directory: one class owns its layout, its record (``run.json``) and its life cycle.

Layout (every command)::

    OUTPUT_DIR/
      run.json              the record: kind, settings, versions, status, files, values chosen after training
      metrics.json          the scores (written last: its presence marks a finished run)
      checkpoints/          last.pdckpt (resume), best.pdckpt (the selected model): safetensors files
      vdl/                  VisualDL logs
      inference/            paddle.jit export (classify, tag): model.json, model.pdiparams, and
                            crf.safetensors (a CRF tagger's transitions)
      ...                   the task's own files (vocabularies, vectors, trees), listed in run.json

Nothing in it is a pickle (see :mod:`paddle_hsoftmax.safe_io`): every file a loader reads is data
(safetensors, JSON, TSV/text, ``np.load(allow_pickle=False)`` trees, Paddle's PIR program JSON and
parameter file), so ``predict`` or ``--resume`` of a directory someone else wrote runs no code of
theirs. :meth:`RunDir.pickle_files` lists what an older version (0.1.0) left as pickles;
``python -m paddle_hsoftmax.convert RUN_DIR`` converts them (unpickling only when asked).

``run.json`` is written when training starts (status ``running``: an interrupted run knows what
it was) and again when it finishes (status ``finished``, the files it holds, and what was chosen
after training: a tuned rerank weight, the decoding, the best epoch; never written back into the
settings). ``train.py predict`` and ``--resume`` open a run through :meth:`RunDir.open`, which reads
the kind from the record; for a run written before the record existed it infers the kind from the
files present, as earlier versions did.

Life cycle of a training command: :meth:`RunDir.check` (read-only: refuses to replace a run
unless ``--overwrite`` / ``--resume``, and a ``--resume`` whose shape settings differ) runs before
anything is written; :meth:`RunDir.prepare` (create, probe, clear on ``--overwrite``) only after
the settings, the data and the model have all been built; then :meth:`RunDir.start`, training,
:meth:`RunDir.finish`.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import shutil
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

from .data.text import CorpusError
from .errors import ConfigError
from .export import atomic_write_text

__all__ = ["RunDir", "RUN_KINDS", "world_size_mismatch"]

RUN_KINDS = ("word2vec", "classify", "tag", "lm", "seq2seq", "demo")
RECORD_FORMAT = 1


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def versions() -> Dict[str, str]:
    """The package's and Paddle's versions (recorded with every run). Paddle's is read from its
    installed metadata, without importing it (a word-vector run on the CPU never loads Paddle)."""
    from importlib import metadata

    from . import __version__

    out = {"paddle_hsoftmax": __version__}
    paddle = sys.modules.get("paddle")
    if paddle is not None:
        out["paddle"] = paddle.__version__
        return out
    for dist in ("paddlepaddle", "paddlepaddle-gpu"):
        try:
            out["paddle"] = metadata.version(dist)
            break
        except metadata.PackageNotFoundError:
            continue
    return out


class RunDir:
    """The run in ``path`` (which need not exist yet).

    Attributes:
        path: the directory.
    """

    RECORD = "run.json"
    METRICS = "metrics.json"

    def __init__(self, path: Union[str, Path]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # -- layout ------------------------------------------------------------------------------------
    def file(self, name: str) -> Path:
        """``path / name``."""
        return self.path / name

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def last_checkpoint(self) -> Path:
        return self.checkpoints / "last.pdckpt"

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoints / "best.pdckpt"

    @property
    def crf_params(self) -> Path:
        """``inference/crf.safetensors``: a CRF tagger's transition scores."""
        return self.inference / "crf.safetensors"

    LEGACY_PICKLES = ("checkpoints/last.pdckpt", "checkpoints/best.pdckpt", "inference/crf.pdparams",
                      "inference/model.pdiparams.info")

    def pickle_files(self) -> List[Path]:
        """The run's files that are pickles (what paddle_hsoftmax 0.1.0 wrote, or what someone
        planted): found by their first bytes, never parsed."""
        from .safe_io import is_pickle

        inference = self.inference.relative_to(self.path).as_posix()
        names = [n.replace("inference/", inference + "/", 1) for n in self.LEGACY_PICKLES]
        return [self.path / n for n in names if (self.path / n).is_file() and is_pickle(self.path / n)]

    @property
    def vdl(self) -> Path:
        return self.path / "vdl"

    @property
    def inference(self) -> Path:
        """The ``paddle.jit`` export, or ``inference.old`` when an export was killed between its
        two renames (the old export, complete, is still there)."""
        directory = self.path / "inference"
        old = directory.with_name(directory.name + ".old")
        return old if not directory.exists() and old.is_dir() else directory

    @property
    def metrics_path(self) -> Path:
        return self.path / self.METRICS

    @property
    def record_path(self) -> Path:
        return self.path / self.RECORD

    # -- state -------------------------------------------------------------------------------------
    def is_finished(self) -> bool:
        return self.metrics_path.exists()

    def record(self) -> Optional[Dict[str, Any]]:
        """``run.json`` as a dict, or None for a run written before the record existed.

        Raises:
            CorpusError: a ``run.json`` that is not a JSON object.
        """
        if not self.record_path.exists():
            return None
        try:
            data = json.loads(self.record_path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise CorpusError(f"{self.record_path}: not a run record ({exc})") from None
        if not isinstance(data, dict):
            raise CorpusError(f"{self.record_path}: not a run record (expected a JSON object)")
        return data

    @property
    def kind(self) -> str:
        """The command that wrote the run (from ``run.json``; inferred from the files of a run
        written before the record existed)."""
        record = self.record()
        if record is not None and record.get("kind") in RUN_KINDS:
            return record["kind"]
        return self._infer_kind()

    def _infer_kind(self) -> str:
        if (self.path / "target_vocab.tsv").exists():  # only `train.py seq2seq` writes it
            return "seq2seq"
        if not list(self.inference.glob("model.*")):
            raise CorpusError(f"{self.path}: no inference/ export (paddle.jit.save) in this directory; "
                              "is it a finished `train.py classify` or `train.py tag` run?")
        for name, kind in (("labels.txt", "classify"), ("tags.txt", "tag")):
            if (self.path / name).exists():
                return kind
        raise CorpusError(f"{self.path}: neither labels.txt (classifier) nor tags.txt (tagger) found")

    def settings(self) -> Dict[str, Any]:
        """The run's recorded settings (``run.json``'s ``config``; ``config.json`` for an older run)."""
        record = self.record()
        if record is not None and isinstance(record.get("config"), dict):
            return dict(record["config"])
        path = self.path / "config.json"
        if not path.exists():
            raise CorpusError(f"{self.path}: not a finished run (missing run.json and config.json)")
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise CorpusError(f"{path}: not a settings file ({exc})") from None

    def chosen(self) -> Dict[str, Any]:
        """What the run chose after training (``run.json``'s ``chosen``; empty for an older run)."""
        record = self.record() or {}
        return dict(record.get("chosen") or {})

    def require(self, *names: str, kind: Optional[str] = None) -> None:
        """Raise :class:`CorpusError` unless every file ``names`` exists."""
        for name in names:
            if not (self.path / name).exists():
                what = f"a finished `train.py {kind}` run" if kind else "a finished run"
                raise CorpusError(f"{self.path / name}: missing ({self.path} is not {what} without it)")

    @classmethod
    def open(cls, path: Union[str, Path], kinds: Optional[Sequence[str]] = None) -> "RunDir":
        """An existing run; ``kinds``: the kinds the caller can read.

        Raises:
            CorpusError: no such directory, or a run of another kind.
        """
        run = cls(path)
        if not run.path.is_dir():
            raise CorpusError(f"{run.path}: no such run directory")
        if kinds is not None and run.kind not in kinds:
            raise CorpusError(f"{run.path}: a `train.py {run.kind}` run; expected one of: "
                              + ", ".join(f"train.py {k}" for k in kinds))
        return run

    # -- life cycle --------------------------------------------------------------------------------
    def check(self, resume: bool, overwrite: bool, kind: Optional[str] = None, config: Any = None,
              world_size: Optional[int] = None) -> None:
        """Refuse (read-only, before anything is written) to replace a run unless ``overwrite``
        or ``resume``: a finished one (``metrics.json``) or an interrupted one
        (``checkpoints/last.pdckpt``, which ``resume`` continues). With ``resume``, the run must be
        of ``kind`` and its shape settings (fields declared ``shape=True``) equal ``config``'s.

        Raises:
            CorpusError: what is in the way; ConfigError: a resume with other shape settings.
        """
        out = self.path
        if out.exists() and not out.is_dir():
            raise CorpusError(f"{out}: exists and is not a directory")
        if not (resume or overwrite):
            if self.metrics_path.exists():
                raise CorpusError(f"{out}: holds a finished run (metrics.json); pass --overwrite to replace it "
                                  "or choose another --output-dir")
            if self.last_checkpoint.exists():
                raise CorpusError(f"{out}: holds an interrupted run (checkpoints/last.pdckpt); pass --resume to "
                                  "continue it, --overwrite to start again, or choose another --output-dir")
        if resume and not self.last_checkpoint.exists():
            raise CorpusError(f"{out}: nothing to resume (no checkpoints/last.pdckpt)")
        if resume and config is not None:
            self.check_resume(kind, config, world_size)

    def check_resume(self, kind: Optional[str], config: Any, world_size: Optional[int] = None) -> None:
        """Refuse a resume whose settings change the model's shape (one line naming them all), or
        (``world_size`` given) that runs with another number of processes than the run did."""
        from .config import shape_differences

        record = self.record()
        if record is None:  # a run from before the record: the trainer compares the parameters' shapes
            return
        if kind is not None and record.get("kind") not in (None, kind):
            raise ConfigError(f"{self.path}: holds a `train.py {record.get('kind')}` run; cannot resume it "
                              f"with `train.py {kind}`")
        saved = int(record.get("world_size", 1))
        if world_size is not None and saved != world_size:
            raise ConfigError(world_size_mismatch(self.path, saved, world_size))
        differ = shape_differences(type(config), record.get("config") or {}, config)
        if differ:
            raise ConfigError(f"--resume {self.path}: settings that change the model differ from the run's: "
                              + "; ".join(differ) + " (resume with the run's settings, or --overwrite)")

    def prepare(self, resume: bool, overwrite: bool) -> None:
        """Create the directory (checked writable); ``overwrite`` (without ``resume``) clears the
        old run's checkpoints, logs, metrics and record. Call :meth:`check` first."""
        self.check(resume, overwrite)
        out = self.path
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
            for name in (self.METRICS, self.RECORD):
                (out / name).unlink(missing_ok=True)

    def start(self, kind: str, config: Any, resume: bool = False, world_size: int = 1) -> None:
        """Write ``run.json`` with status ``running`` (a resume keeps the record's start time and
        adds one to its ``resumed`` count); ``world_size``: the data-parallel processes."""
        old = self.record() if resume else None
        record = {
            "format": RECORD_FORMAT,
            "kind": kind,
            "status": "running",
            "config": dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config),
            "versions": versions(),
            "started": (old or {}).get("started", _now()),
            "resumed": int((old or {}).get("resumed", 0)) + (1 if resume else 0),
            "world_size": int(world_size),
            "files": [],
            "chosen": {},
        }
        self._write_record(record)

    def write_text(self, name: str, text: str) -> Path:
        """Write ``path / name`` atomically."""
        path = self.path / name
        atomic_write_text(path, text)
        return path

    def write_json(self, name: str, obj: Any) -> Path:
        return self.write_text(name, json.dumps(obj, indent=2, ensure_ascii=False))

    def files(self) -> List[str]:
        """The run's files, relative (``vdl/`` as one entry; temporary files left out)."""
        out = []
        for p in sorted(self.path.rglob("*")):
            rel = p.relative_to(self.path)
            if rel.parts[0] == "vdl" or p.name.endswith(".tmp") or not p.is_file():
                continue
            out.append(rel.as_posix())
        if self.vdl.is_dir():
            out.append("vdl/")
        return sorted(out)

    def finish(self, metrics: Dict[str, Any], chosen: Optional[Dict[str, Any]] = None) -> None:
        """Write ``metrics.json``, then the record with status ``finished``, the files the run
        holds and ``chosen`` (values picked after training: a tuned weight, the best epoch)."""
        self.write_json(self.METRICS, metrics)
        record = self.record() or {"format": RECORD_FORMAT, "versions": versions(), "started": _now()}
        record.update(status="finished", finished=_now(), chosen=dict(chosen or {}))
        record["files"] = sorted(set(self.files()) | {self.RECORD})
        self._write_record(record)

    def _write_record(self, record: Dict[str, Any]) -> None:
        self.write_json(self.RECORD, record)


def world_size_mismatch(path: Union[str, Path], saved: int, now: int) -> str:
    """The one line for a ``--resume`` of a run trained with ``saved`` processes by ``now``
    (the record's check and the checkpoint's, :meth:`Trainer.load_checkpoint`, say the same)."""
    how = (f"python -m paddle.distributed.launch --nproc_per_node {saved} ..." if saved > 1
           else "without paddle.distributed.launch")
    return (f"--resume {path}: the run trained with {saved} process(es), this launch has {now}; resume it with "
            f"the same number ({how})")
