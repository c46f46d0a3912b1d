"""One training loop for every task: schedule, progress bar, VisualDL, checkpoints and resume.

The trainer never knows which task it runs. A task (see :class:`Task`) owns the model, the
optimizer and the data; it yields host-side batches for an epoch *deterministically* from
``(seed, epoch)``, so a resumed run regenerates the epoch and skips the batches already done,
and ends with the parameters an uninterrupted run would have.

Checkpoints (``OUTPUT_DIR/checkpoints/last.pdckpt``: model, optimizer, trainer position) are
written to a temporary file, flushed and renamed, every epoch and at the end, so a run killed
mid-write leaves the previous checkpoint intact. VisualDL logs go to ``OUTPUT_DIR/vdl`` (rank 0
only): ``train/loss``, ``train/lr``, ``train/<units>_per_sec``, ``eval/*`` and the task's
hyper-parameters.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Protocol

import paddle
import paddle.distributed as dist

__all__ = ["TrainerConfig", "Task", "StepResult", "Trainer", "TrainingDiverged", "atomic_save"]

log = logging.getLogger(__name__)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclasses.dataclass
class TrainerConfig:
    """Settings of the loop itself (the task has its own).

    Attributes:
        output_dir: where checkpoints, ``vdl/`` and the task's outputs go.
        epochs: passes over the task's data.
        log_every: steps between VisualDL points and progress-bar updates.
        checkpoint_every: steps between extra checkpoints (0: only per epoch and at the end).
        resume: continue from ``checkpoints/last.pdckpt``.
        progress: show a tqdm bar.
        patience: stop after this many evaluations without a better ``task.selection_metric``
            (0: never stop early). The best model is kept in ``checkpoints/best.pdckpt``.
    """

    output_dir: str
    epochs: int = 5
    log_every: int = 20
    checkpoint_every: int = 0
    resume: bool = False
    progress: bool = True
    patience: int = 0


@dataclasses.dataclass
class StepResult:
    """What one training step reports: the summed loss (a tensor or float, read only when
    logged), how many loss terms it sums, the data units (e.g. corpus words) the step covered, and
    whether the step already updated the parameters itself (a fused kernel; no optimizer step)."""

    loss_sum: Any
    count: float
    units: float
    params_updated: bool = False


class Task(Protocol):
    """What the trainer needs from a task."""

    name: str
    unit_name: str  # e.g. "words"
    model: paddle.nn.Layer
    optimizer: Any

    def epoch_batches(self, epoch: int) -> Iterator[Any]:
        """This rank's batches of ``epoch``, the same every time for the same seed."""

    def units_per_epoch(self) -> float:
        """Data units in one epoch, for the schedule and the rate."""

    def learning_rate(self, progress: float) -> float:
        """Learning rate at ``progress`` in [0, 1] of the whole run."""

    def train_step(self, batch: Any) -> StepResult:
        """Forward and backward on ``batch`` (the trainer steps the optimizer)."""

    def evaluate(self) -> Dict[str, float]:
        """Evaluation scores, logged as ``eval/<name>``."""

    def hparams(self) -> Dict[str, Any]:
        """Hyper-parameters for VisualDL's hparams view and metrics.json."""

    # optional: def log_final(self, writer, step) -> None, called on rank 0 before the writer closes
    # optional: selection_metric: str, a key of evaluate()'s result, higher is better (or lower,
    #           with selection_mode = "min", e.g. perplexity); the trainer then keeps the best
    #           model in checkpoints/best.pdckpt and can stop early


def atomic_save(obj: Any, path: Path) -> None:
    """``paddle.save`` to ``path`` through a temporary file, fsync and rename."""
    tmp = path.with_name(path.name + ".tmp")
    paddle.save(obj, str(tmp))
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Trainer:
    """Runs a :class:`Task` for ``config.epochs`` epochs (see the module docstring)."""

    def __init__(self, config: TrainerConfig) -> None:
        self.config = config
        self.out = Path(config.output_dir)
        self.ckpt_dir = self.out / "checkpoints"
        self.rank = dist.get_rank() if dist.is_initialized() else 0
        self.world = dist.get_world_size() if dist.is_initialized() else 1
        self.writer = None
        # train_seconds: time inside training steps; wall_seconds: the whole loop (batch building,
        # evaluation, checkpoints), both summed over a run and the runs that resumed it
        self.state = {"epoch": 0, "batch": 0, "step": 0, "units": 0.0, "train_seconds": 0.0, "wall_seconds": 0.0,
                      "best": None, "best_epoch": 0, "stale": 0}
        self._wall_start: Optional[float] = None
        self._wall_base = 0.0

    # -- checkpoints -----------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.ckpt_dir / "last.pdckpt"

    @property
    def best_path(self) -> Path:
        return self.ckpt_dir / "best.pdckpt"

    def _track_best(self, task: Task, scores: Dict[str, float]) -> bool:
        """Update the best score; save the best model; return True when training should stop."""
        name = getattr(task, "selection_metric", None)
        if not name or name not in scores:
            return False
        value = float(scores[name])
        lower_is_better = getattr(task, "selection_mode", "max") == "min"
        best = self.state["best"]
        if best is None or (value < best if lower_is_better else value > best):
            self.state.update(best=value, best_epoch=self.state["epoch"], stale=0)
            if self.rank == 0:
                self.ckpt_dir.mkdir(parents=True, exist_ok=True)
                atomic_save({"model": task.model.state_dict(), "epoch": self.state["epoch"], name: value},
                            self.best_path)
            return False
        self.state["stale"] += 1
        return bool(self.config.patience) and self.state["stale"] >= self.config.patience

    def load_best(self, task: Task) -> None:
        """Put the best model's parameters (by ``task.selection_metric``) back into the task."""
        if self.best_path.exists():
            task.model.set_state_dict(paddle.load(str(self.best_path))["model"])

    def _update_wall(self) -> None:
        if self._wall_start is not None:
            self.state["wall_seconds"] = self._wall_base + time.perf_counter() - self._wall_start

    def save_checkpoint(self, task: Task) -> None:
        self._update_wall()
        if self.rank != 0:
            return
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        atomic_save(
            {"model": task.model.state_dict(), "optimizer": task.optimizer.state_dict(), "trainer": dict(self.state)},
            self.checkpoint_path,
        )

    def load_checkpoint(self, task: Task) -> None:
        if not self.checkpoint_path.exists():
            raise FileNotFoundError(f"{self.checkpoint_path}: no checkpoint to resume from")
        ckpt = paddle.load(str(self.checkpoint_path))
        task.model.set_state_dict(ckpt["model"])
        task.optimizer.set_state_dict(ckpt["optimizer"])
        self.state.update(ckpt["trainer"])
        log.info("resumed from %s at %s", self.checkpoint_path, self.state)

    # -- logging ---------------------------------------------------------------------------------
    def _open_writer(self):
        if self.rank != 0:
            return None
        from visualdl import LogWriter

        return LogWriter(logdir=str(self.out / "vdl"))

    def _scalar(self, tag: str, value: float, step: int) -> None:
        if self.writer is not None:
            self.writer.add_scalar(tag=tag, value=float(value), step=int(step))

    # -- the loop --------------------------------------------------------------------------------
    def fit(self, task: Task) -> Dict[str, Any]:
        """Train, evaluate after every epoch, checkpoint; return the final metrics."""
        from tqdm import tqdm

        cfg = self.config
        self.out.mkdir(parents=True, exist_ok=True)
        if cfg.resume:
            self.load_checkpoint(task)
        self._wall_base = float(self.state.get("wall_seconds", 0.0))
        self._wall_start = time.perf_counter()
        self.writer = self._open_writer()
        total_units = task.units_per_epoch() * cfg.epochs
        metrics: Dict[str, Any] = {}
        rate_name = f"train/{task.unit_name}_per_sec"
        try:
            while self.state["epoch"] < cfg.epochs and not (cfg.patience and self.state["stale"] >= cfg.patience):
                epoch = self.state["epoch"]
                skip = self.state["batch"]
                bar = tqdm(
                    desc=f"{task.name} epoch {epoch + 1}/{cfg.epochs}",
                    total=round(task.units_per_epoch()),
                    disable=not cfg.progress or self.rank != 0,
                    unit=f" {task.unit_name}",
                    unit_scale=True,
                    leave=False,
                )
                window_units, window_start = 0.0, time.perf_counter()
                for index, batch in enumerate(task.epoch_batches(epoch)):
                    if index < skip:
                        continue  # already done before the resume
                    t0 = time.perf_counter()
                    lr = task.learning_rate(min(1.0, self.state["units"] / max(total_units, 1.0)))
                    task.optimizer.set_lr(lr)
                    result = task.train_step(batch)
                    if not result.params_updated:
                        task.optimizer.step()
                        task.optimizer.clear_grad()
                    self.state["train_seconds"] += time.perf_counter() - t0
                    self.state["units"] += result.units * self.world
                    self.state["step"] += 1
                    self.state["batch"] = index + 1
                    window_units += result.units * self.world
                    bar.update(result.units * self.world)
                    step = self.state["step"]
                    if step % cfg.log_every == 0:
                        loss = float(result.loss_sum) / max(result.count, 1.0)
                        if not math.isfinite(loss):
                            raise TrainingDiverged(
                                f"loss became {loss} at epoch {epoch + 1}, step {step} (lr {lr:.3g}); "
                                f"the last good checkpoint is {self.checkpoint_path}"
                            )
                        rate = window_units / max(time.perf_counter() - window_start, 1e-9)
                        window_units, window_start = 0.0, time.perf_counter()
                        bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.4g}")
                        self.state["last_loss"] = loss
                        self._scalar("train/loss", loss, step)
                        self._scalar("train/lr", lr, step)
                        self._scalar(rate_name, rate, step)
                    if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
                        self.save_checkpoint(task)
                bar.close()
                self.state["epoch"] = epoch + 1
                self.state["batch"] = 0
                scores = task.evaluate() if self.rank == 0 else {}
                for name, value in scores.items():
                    self._scalar(f"eval/{name}", value, self.state["step"])
                metrics.update(scores)
                stop = self._track_best(task, scores)
                self.save_checkpoint(task)
                if stop:
                    log.info("early stop after epoch %d: no better %s for %d evaluations",
                             self.state["epoch"], task.selection_metric, self.config.patience)
                    metrics["stopped_early_at_epoch"] = self.state["epoch"]
                    break
            if not metrics and self.rank == 0:  # resumed a finished run: nothing left to train
                metrics.update(task.evaluate())
            eval_names = [f"eval/{k}" for k in metrics]
            self.save_checkpoint(task)  # the final state, wall time included (resume reads it)
            metrics.update(
                {
                    "wall_seconds": self.state["wall_seconds"],
                    "best_epoch": self.state["best_epoch"],
                    "epochs": cfg.epochs,
                    "steps": self.state["step"],
                    "train_seconds": self.state["train_seconds"],
                    "final_train_loss": self.state.get("last_loss", float("nan")),
                    f"{task.unit_name}_trained": self.state["units"],
                }
            )
            if self.writer is not None:
                final_log = getattr(task, "log_final", None)
                if final_log is not None:
                    final_log(self.writer, self.state["step"])
                # VisualDL takes int, float and str (a bool is refused): bools become "True"/"False"
                hp = {k: (str(v) if isinstance(v, bool) else v) for k, v in task.hparams().items()
                      if isinstance(v, (int, float, str))}
                self.writer.add_hparams(hparams_dict=hp, metrics_list=["train/loss"] + eval_names)
            return metrics
        finally:
            if self.writer is not None:
                self.writer.close()
                self.writer = None
