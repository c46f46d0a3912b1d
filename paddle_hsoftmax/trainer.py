"""One training loop for every task: schedule, progress bar, VisualDL, checkpoints and resume.

The trainer never knows which task it runs. A task (see :class:`Task`) owns the model, the
optimizer and the data; it yields host-side batches for an epoch *deterministically* from
``(seed, epoch)``, so a resumed run regenerates the epoch and skips the batches already done,
and ends with the parameters an uninterrupted run would have.

Checkpoints (``OUTPUT_DIR/checkpoints/last.pdckpt``: model, optimizer, trainer position, the
random generators' states and the task's own resume state, if it has one) are data only: one
safetensors file per checkpoint, the tensors by name and the rest as JSON in its header
(:func:`~paddle_hsoftmax.safe_io.save_state`; never a pickle, so ``--resume`` of a directory
someone else wrote runs no code of theirs: a pickle there is refused in one line). They are written
to a temporary file, fsynced and renamed every ``checkpoint_every`` steps, every epoch and at the
end, so a run killed at any moment, mid-write included, resumes from the last
complete checkpoint and ends with the same parameters and scores as an uninterrupted run
(``scripts/reliability.py`` kills real runs to check it).

Non-finite training stops with :class:`TrainingDiverged` before anything non-finite is saved:
the loss is checked at every logging step, the parameters before every checkpoint and every
evaluation. VisualDL logs go to ``OUTPUT_DIR/vdl`` (rank 0 only): ``train/loss``, ``train/lr``,
``train/<units>_per_sec``, ``eval/*`` and the task's hyper-parameters.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import numpy as np

from . import processes
from .errors import ConfigError, UserError
from .export import atomic_path
from .rundir import RunDir, world_size_mismatch
from .safe_io import load_state, save_state

__all__ = ["TrainerConfig", "TrainerState", "Task", "StepResult", "Trainer", "TrainingDiverged", "atomic_save"]

log = logging.getLogger(__name__)


class TrainingDiverged(UserError, RuntimeError):
    """The loss or the parameters became NaN or infinite; nothing non-finite was saved, so
    ``checkpoints/last.pdckpt`` (if any) is the last good state. A :class:`UserError`: the usual
    cause is a setting (too high a learning rate), and ``train.py`` reports it in one line with
    exit status 2."""


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

    def __post_init__(self) -> None:
        for name, least in (("epochs", 0), ("log_every", 1), ("checkpoint_every", 0), ("patience", 0)):
            if getattr(self, name) < least:
                raise ValueError(f"{name} must be >= {least}, got {getattr(self, name)}")


@dataclasses.dataclass
class StepResult:
    """What one training step reports: the summed loss (a tensor or float, read only when
    logged), how many loss terms it sums, the data units (e.g. corpus words) the step covered, and
    whether the step already updated the parameters itself (a fused kernel; no optimizer step)."""

    loss_sum: Any
    count: float
    units: float
    params_updated: bool = False


@dataclasses.dataclass
class TrainerState:
    """Where a run is, saved in every checkpoint (``checkpoints/last.pdckpt``, key ``"trainer"``,
    as a plain dict) and read back by ``--resume``.

    Attributes:
        epoch: epochs finished.
        batch: batches of the current epoch done (0 between epochs).
        step: training steps done over the whole run.
        units: data units trained on (e.g. corpus words), all processes together.
        train_seconds: time inside training steps; wall_seconds: the whole loop (batch building,
            evaluation, checkpoints); both summed over a run and the runs that resumed it.
        best, best_epoch: the best selection score so far and the epoch that reached it.
        stale: evaluations since the best one (early stopping counts them).
        scores: the last evaluation's scores.
        stopped_early: the epoch after which patience ran out (0: it did not).
        last_loss: the last logged training loss (NaN before the first).
        world_size: the processes the run trains with (``--resume`` refuses another number).
    """

    epoch: int = 0
    batch: int = 0
    step: int = 0
    units: float = 0.0
    train_seconds: float = 0.0
    wall_seconds: float = 0.0
    best: Optional[float] = None
    best_epoch: int = 0
    stale: int = 0
    scores: Dict[str, float] = dataclasses.field(default_factory=dict)
    stopped_early: int = 0
    last_loss: float = float("nan")
    world_size: int = 1

    def to_dict(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "TrainerState":
        """Read what :meth:`to_dict` wrote (keys a newer version added keep their defaults; keys
        an older version had and this one does not are dropped)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


class Task:
    """What the trainer runs; a task subclasses this and owns the model, the optimizer and the data.

    Required (no default): :meth:`epoch_batches`, :meth:`units_per_epoch`, :meth:`train_step`,
    :meth:`evaluate`, and the attributes ``model`` and ``optimizer``. The rest are hooks with
    documented no-op defaults, so the trainer calls them without asking whether they exist.

    Attributes:
        name: shown on the progress bar.
        unit_name: the data unit (``"words"``, ``"tokens"``): ``train/<unit>_per_sec``.
        selection_metric: a key of :meth:`evaluate`'s result; when set, the trainer keeps the best
            model in ``checkpoints/best.pdckpt`` and can stop early (``None``: keep the last).
        selection_mode: ``"max"`` (higher is better) or ``"min"`` (e.g. perplexity).
        gradient: what :meth:`train_step` differentiates: ``"mean"``, the step's ``loss_sum /
            count`` (under data parallel each process's gradient is weighted by its count, so
            the step's gradient is the mean over the whole batch), or ``"sum"`` (summed).
        shards_data: under data parallel, :meth:`epoch_batches` already yields only this
            process's batches (default False: it yields the whole batches and the trainer gives
            each process its rows, :func:`~paddle_hsoftmax.distributed.split_rows`).
    """

    name: str = "task"
    unit_name: str = "examples"
    selection_metric: Optional[str] = None
    selection_mode: str = "max"
    gradient: str = "mean"
    shards_data: bool = False
    model: Any  # a paddle.nn.Layer, or any object with state_dict / set_state_dict / named_parameters
    optimizer: Any  # a Paddle optimizer, or None for a task that updates its parameters itself

    def epoch_batches(self, epoch: int) -> Iterator[Any]:
        """This rank's batches of ``epoch``, the same every time for the same seed."""
        raise NotImplementedError

    def units_per_epoch(self) -> float:
        """Data units in one epoch, for the schedule and the rate."""
        raise NotImplementedError

    def learning_rate(self, progress: float) -> float:
        """Learning rate at ``progress`` in [0, 1] of the whole run (default: the optimizer's own)."""
        return float(self.optimizer.get_lr())

    def set_learning_rate(self, lr: float) -> None:
        """Take the rate for the next step (default: the optimizer's ``set_lr``)."""
        self.optimizer.set_lr(lr)

    def train_step(self, batch: Any) -> StepResult:
        """Forward and backward on ``batch`` (the trainer steps the optimizer)."""
        raise NotImplementedError

    def evaluate(self) -> Dict[str, float]:
        """Evaluation scores, logged as ``eval/<name>``."""
        raise NotImplementedError

    def hparams(self) -> Dict[str, Any]:
        """Hyper-parameters for VisualDL's hparams view (default: none)."""
        return {}

    def resume_state(self) -> Any:
        """What a mid-epoch resume needs beside the parameters and the batches (e.g. a language
        model's LSTM state carried from window to window); saved in every checkpoint. Default:
        ``None``, nothing."""
        return None

    def set_resume_state(self, state: Any) -> None:
        """Take back what :meth:`resume_state` returned. The default takes back ``None`` only."""
        if state is not None:
            raise ValueError(f"task {self.name!r} saved a resume state but does not take one back")

    def log_final(self, writer, step: int) -> None:
        """Called on rank 0 with the VisualDL writer before it closes (default: nothing)."""


SAVE_DELAY_ENV = "PADDLE_HSOFTMAX_SAVE_DELAY"


def save_delay() -> float:
    """``$PADDLE_HSOFTMAX_SAVE_DELAY`` seconds (kill tests only; 0 when unset)."""
    return float(os.environ.get(SAVE_DELAY_ENV) or 0.0)


def atomic_save(obj: Any, path: Path) -> None:
    """``paddle.save`` to ``path`` through ``path + ".tmp"``: write, fsync, rename, fsync the
    directory (:func:`paddle_hsoftmax.export.atomic_path`); a failed write removes the temporary
    file. A reader, or a run killed at any moment, finds the old file or the new one, never a part
    of one.

    A pickle writer, kept for callers' own files: the trainer no longer uses it (its checkpoints
    are :func:`~paddle_hsoftmax.safe_io.save_state` files), and ``paddle.load`` of what it wrote
    runs code, so never load such a file from someone else.

    For kill tests only: with the environment variable ``PADDLE_HSOFTMAX_SAVE_DELAY=SECONDS`` it
    pauses that long between the complete temporary file and the rename, so that a test can
    aim a kill inside the write (``scripts/reliability.py``)."""
    import paddle

    with atomic_path(path, delay=float(os.environ.get(SAVE_DELAY_ENV) or 0.0)) as tmp:
        paddle.save(obj, str(tmp))  # paddle.save takes a path or a BytesIO: no open file to fsync


def rng_state() -> Dict[str, Any]:
    """Paddle's global generators (dropout draws from them): the CPU one, and the current
    device's when it is not the CPU; nothing in a process that has not imported Paddle (its
    tasks draw from their own seeded generators)."""
    paddle = sys.modules.get("paddle")
    if paddle is None:
        return {}
    state = {"cpu": paddle.get_rng_state("cpu")}
    device = paddle.get_device()
    if device != "cpu":
        state["device"], state["device_kind"] = paddle.get_rng_state(), device.split(":")[0]
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    """Restore what :func:`rng_state` returned (a device state is skipped, with a warning, when
    the run resumes on another kind of device: dropout then draws other masks). Skipped in a
    process that has not imported Paddle: nothing there draws from Paddle's generators."""
    paddle = sys.modules.get("paddle")
    if paddle is None or "cpu" not in state:
        return
    paddle.set_rng_state(state["cpu"], "cpu")
    if "device" in state:
        kind = paddle.get_device().split(":")[0]
        if kind == state["device_kind"] and len(paddle.get_rng_state()) == len(state["device"]):
            paddle.set_rng_state(state["device"])
        else:
            log.warning("checkpoint has %s random state, running on %s: not restored; the resumed run "
                        "will not repeat an uninterrupted one exactly", state["device_kind"], kind)


def nonfinite_parameters(model: Any) -> List[str]:
    """Names of ``model``'s parameters holding a NaN or an infinity (NumPy arrays checked in
    place; Paddle tensors with one device read in all)."""
    named = [(n, p) for n, p in model.named_parameters() if p is not None]
    bad = [n for n, p in named if isinstance(p, np.ndarray) and p.dtype.kind == "f" and not np.isfinite(p).all()]
    tensors = [(n, p) for n, p in named if not isinstance(p, np.ndarray)]
    if tensors:
        import paddle

        tensors = [(n, p) for n, p in tensors if p.dtype in (paddle.float16, paddle.bfloat16, paddle.float32,
                                                               paddle.float64)]
    if tensors:
        finite = paddle.stack([paddle.isfinite(p).all() for _, p in tensors]).numpy()
        bad += [n for (n, _), ok in zip(tensors, finite) if not ok]
    return bad


class Trainer:
    """Runs a :class:`Task` for ``config.epochs`` epochs (see the module docstring).

    :meth:`fit` reads in the order it runs: :meth:`_begin` (resume, writer), then per epoch
    :meth:`_train_epoch` (steps, logging, mid-epoch checkpoints) and :meth:`_end_epoch`
    (evaluate, keep the best, early stop, checkpoint), then :meth:`_final_metrics` and
    :meth:`_log_final`.
    """

    def __init__(self, config: TrainerConfig) -> None:
        self.config = config
        self.run = RunDir(config.output_dir)
        self.out = self.run.path
        self.ckpt_dir = self.run.checkpoints
        self.rank, self.world = processes.rank(), processes.world()
        self.writer = None
        self.state = TrainerState()
        self._wall_start: Optional[float] = None
        self._wall_base = 0.0
        self._saved_at: Optional[str] = None  # "epoch E, step S" of the last checkpoint written or read
        self._lr = float("nan")
        self.sync = None  # a distributed.GradientSync under data parallel

    # -- checkpoints -----------------------------------------------------------------------------
    @property
    def checkpoint_path(self) -> Path:
        return self.run.last_checkpoint

    @property
    def best_path(self) -> Path:
        return self.run.best_checkpoint

    def _track_best(self, task: Task, scores: Dict[str, float]) -> bool:
        """Update the best score; save the best model; return True when training should stop."""
        name = task.selection_metric
        if not name or name not in scores:
            return False
        value = float(scores[name])
        lower_is_better = task.selection_mode == "min"
        best = self.state.best
        # a NaN score is never an improvement (nor is an infinite one a first best)
        if math.isfinite(value) and (best is None or (value < best if lower_is_better else value > best)):
            self.state.best, self.state.best_epoch, self.state.stale = value, self.state.epoch, 0
            if self.rank == 0:
                self.ckpt_dir.mkdir(parents=True, exist_ok=True)
                save_state(self.best_path, {"model": task.model.state_dict(), "epoch": self.state.epoch,
                                            name: value}, delay=save_delay())
            return False
        self.state.stale += 1
        return bool(self.config.patience) and self.state.stale >= self.config.patience

    def load_best(self, task: Task) -> None:
        """Put the best model's parameters (by ``task.selection_metric``) back into the task."""
        if self.best_path.exists():
            saved = load_state(self.best_path)["model"]
            _check_shapes(self.best_path, task.model, saved)
            task.model.set_state_dict(saved)

    def _update_wall(self) -> None:
        if self._wall_start is not None:
            self.state.wall_seconds = self._wall_base + time.perf_counter() - self._wall_start

    def _position(self) -> str:
        return f"epoch {self.state.epoch + (self.state.batch > 0)}, step {self.state.step}"

    def _diverged(self, what: str) -> None:
        """Raise :class:`TrainingDiverged`: one line saying what, where, and what was kept."""
        kept = (f"kept the last good checkpoint, {self.checkpoint_path} ({self._saved_at})" if self._saved_at
                else "no checkpoint had been written")
        raise TrainingDiverged(f"training diverged at {self._position()} (lr {self._lr:.3g}): {what}; {kept}; "
                               "try a lower --lr")

    def check_finite(self, task: Task) -> None:
        """Raise :class:`TrainingDiverged` if a parameter holds a NaN or an infinity."""
        bad = nonfinite_parameters(task.model)
        if bad:
            self._diverged(f"non-finite values in {len(bad)} parameter(s), e.g. {bad[0]}")

    def save_checkpoint(self, task: Task) -> None:
        """Write ``last.pdckpt`` (rank 0), after checking that every parameter is finite."""
        self._update_wall()
        self.check_finite(task)
        resume_state = task.resume_state()
        if self.world > 1:  # each process's own generators and task state, in rank order
            mine = {"rng": rng_state(), "task": _to_numpy(resume_state)}
            ranks = processes.all_gather_object(mine)
        if self.rank != 0:
            return
        self.ckpt_dir.mkdir(parents=True, exist_ok=True)
        ckpt = {"model": task.model.state_dict(), "optimizer": optimizer_state(task.model, task.optimizer),
                "trainer": self.state.to_dict(), "rng": rng_state()}
        if resume_state is not None:
            ckpt["task"] = resume_state
        if self.world > 1:
            ckpt["ranks"] = ranks
        save_state(self.checkpoint_path, ckpt, delay=save_delay())
        self._saved_at = self._position()

    def load_checkpoint(self, task: Task) -> None:
        """Put ``last.pdckpt`` back: parameters, optimizer, position, random generators, task state.

        Raises:
            ConfigError: the checkpoint's parameters have other shapes than the task's model (the
                run was trained with other settings or data).
            CorpusError: a missing, truncated or damaged checkpoint, or a pickle (written by
                paddle_hsoftmax 0.1.0 or planted: never unpickled; the message says how to convert
                a run of one's own).
        """
        ckpt = load_state(self.checkpoint_path, what="checkpoint (--resume)")
        if not isinstance(ckpt, dict) or not {"model", "optimizer", "trainer"} <= set(ckpt):
            from .data.text import CorpusError

            raise CorpusError(f"{self.checkpoint_path}: not a resumable checkpoint (no model, optimizer and "
                              "trainer state in it)")
        saved_world = int(ckpt["trainer"].get("world_size", 1))
        if saved_world != self.world:
            raise ConfigError(world_size_mismatch(self.checkpoint_path, saved_world, self.world))
        _check_shapes(self.checkpoint_path, task.model, ckpt["model"])
        task.model.set_state_dict(ckpt["model"])
        set_optimizer_state(task.model, task.optimizer, ckpt["optimizer"])
        self.state = TrainerState.from_dict(ckpt["trainer"])
        own = ckpt["ranks"][self.rank] if self.world > 1 and "ranks" in ckpt else None
        if own is not None:
            set_rng_state(own["rng"])
            if own.get("task") is not None:
                task.set_resume_state(own["task"])
        else:
            if "rng" in ckpt:
                set_rng_state(ckpt["rng"])
            if "task" in ckpt:
                task.set_resume_state(ckpt["task"])
        self._saved_at = self._position()
        log.info("resumed from %s at %s", self.checkpoint_path, self.state)

    # -- logging ---------------------------------------------------------------------------------
    def _open_writer(self):
        if self.rank != 0:
            return None
        from visualdl import LogWriter

        return LogWriter(logdir=str(self.run.vdl))

    def _scalar(self, tag: str, value: float, step: int) -> None:
        if self.writer is not None:
            self.writer.add_scalar(tag=tag, value=float(value), step=int(step))

    # -- the loop --------------------------------------------------------------------------------
    def fit(self, task: Task) -> Dict[str, Any]:
        """Train, evaluate after every epoch, checkpoint; return the final metrics."""
        metrics = self._begin(task)
        try:
            while not self._done():
                self._train_epoch(task)
                metrics.update(self._end_epoch(task))
            if self.state.stopped_early:
                metrics["stopped_early_at_epoch"] = self.state.stopped_early
            if not metrics and self.rank == 0:  # a checkpoint from before scores were kept: evaluate again
                metrics.update(task.evaluate())
            eval_names = [f"eval/{k}" for k in metrics]
            self.save_checkpoint(task)  # the final state, wall time included (resume reads it)
            metrics.update(self._final_metrics(task))
            self._log_final(task, eval_names)
            return metrics
        finally:
            if self.writer is not None:
                self.writer.close()
                self.writer = None

    def _begin(self, task: Task) -> Dict[str, Any]:
        """Resume if asked, start the clocks and the writer; returns the scores so far (a resumed
        run starts from its last evaluation's)."""
        self.out.mkdir(parents=True, exist_ok=True)
        if self.config.resume:
            self.load_checkpoint(task)
        self.state.world_size = self.world
        if self.world > 1:
            import paddle

            from . import distributed

            if not isinstance(task.model, paddle.DataParallel):
                # one exchange per step after the backward pass (sparse gradients as rows), from
                # rank 0's parameters (a resumed run: every rank loaded the same checkpoint)
                distributed.broadcast_parameters(task.model)
                self.sync = distributed.GradientSync(task.model)
        self._wall_base = float(self.state.wall_seconds)
        self._wall_start = time.perf_counter()
        self.writer = self._open_writer()
        return dict(self.state.scores)

    def _done(self) -> bool:
        cfg = self.config
        return self.state.epoch >= cfg.epochs or bool(cfg.patience and self.state.stale >= cfg.patience)

    def _train_epoch(self, task: Task) -> None:
        """The rest of the current epoch: skip the batches done before a resume, then step, log
        every ``log_every`` steps (the loss checked finite), checkpoint every ``checkpoint_every``."""
        from tqdm import tqdm

        cfg, state = self.config, self.state
        epoch, skip = state.epoch, state.batch
        total_units = task.units_per_epoch() * cfg.epochs
        bar = tqdm(desc=f"{task.name} epoch {epoch + 1}/{cfg.epochs}", total=round(task.units_per_epoch()),
                   disable=not cfg.progress or self.rank != 0, unit=f" {task.unit_name}", unit_scale=True,
                   leave=False)
        window_units, window_start = 0.0, time.perf_counter()
        steps_before = state.step
        for index, batch in enumerate(task.epoch_batches(epoch)):
            if index < skip:
                continue  # already done before the resume
            if self.world > 1 and not task.shards_data:
                batch = processes.split_rows(batch, self.rank, self.world)
                if batch is None:  # fewer rows than processes: every process skips it
                    state.batch = index + 1
                    continue
            t0 = time.perf_counter()
            lr = self._lr = task.learning_rate(min(1.0, state.units / max(total_units, 1.0)))
            task.set_learning_rate(lr)
            result = task.train_step(batch)
            loss_sum, count, units = result.loss_sum, result.count, result.units
            if self.sync is not None:
                loss_sum, count, units = self.sync(loss_sum, count, units, mean=task.gradient == "mean")
            elif self.world > 1:  # a task that exchanges its own gradients (paddle.DataParallel)
                units = units * self.world
            if not result.params_updated:
                task.optimizer.step()
                task.optimizer.clear_grad()
            state.train_seconds += time.perf_counter() - t0
            state.units += units
            state.step += 1
            state.batch = index + 1
            window_units += units
            bar.update(units)
            if state.step % cfg.log_every == 0:
                loss = float(loss_sum) / max(count, 1.0)
                if not math.isfinite(loss):
                    self._diverged(f"the loss became {loss}")
                rate = window_units / max(time.perf_counter() - window_start, 1e-9)
                window_units, window_start = 0.0, time.perf_counter()
                bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.4g}")
                state.last_loss = loss
                self._scalar("train/loss", loss, state.step)
                self._scalar("train/lr", lr, state.step)
                self._scalar(f"train/{task.unit_name}_per_sec", rate, state.step)
            if cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0:
                self.save_checkpoint(task)
        bar.close()
        if self.world > 1 and state.step == steps_before and not skip:
            raise ConfigError(f"{self.world} processes but no training step in epoch {epoch + 1}: the data gives "
                              "fewer batches (or rows per batch) than processes; launch fewer processes "
                              "(--nproc_per_node) or use more data / a larger --batch-size")

    def _end_epoch(self, task: Task) -> Dict[str, float]:
        """Close the epoch: check the parameters (a NaN model is never scored, nor kept as best),
        evaluate (rank 0), keep the best model, decide on early stopping, checkpoint."""
        self.check_finite(task)
        self.state.epoch += 1
        self.state.batch = 0
        scores = task.evaluate() if self.rank == 0 else {}
        # every process takes rank 0's scores, so all keep the same best and stop together
        scores = processes.broadcast_object(scores) if self.world > 1 else scores
        for name, value in scores.items():
            self._scalar(f"eval/{name}", value, self.state.step)
        self.state.scores = dict(scores)
        if self._track_best(task, scores):
            log.info("early stop after epoch %d: no better %s for %d evaluations",
                     self.state.epoch, task.selection_metric, self.config.patience)
            self.state.stopped_early = self.state.epoch
        self.save_checkpoint(task)
        return scores

    def _final_metrics(self, task: Task) -> Dict[str, Any]:
        state = self.state
        return {
            "wall_seconds": state.wall_seconds,
            "best_epoch": state.best_epoch,
            "epochs": self.config.epochs,
            "steps": state.step,
            "train_seconds": state.train_seconds,
            "final_train_loss": state.last_loss,
            "world_size": self.world,
            f"{task.unit_name}_trained": state.units,
        }

    def _log_final(self, task: Task, eval_names: List[str]) -> None:
        """The task's own last logs and the hyper-parameters (VisualDL's hparams view)."""
        if self.writer is None:
            return
        task.log_final(self.writer, self.state.step)
        # VisualDL takes int, float and str (a bool is refused): bools become "True"/"False"
        hp = {k: (str(v) if isinstance(v, bool) else v) for k, v in task.hparams().items()
              if isinstance(v, (int, float, str))}
        self.writer.add_hparams(hparams_dict=hp, metrics_list=["train/loss"] + eval_names)


def optimizer_state(model: Any, optimizer) -> Dict[str, Any]:
    """``optimizer.state_dict()`` with each parameter's slots keyed by the parameter's place in
    the model (``{"by_parameter": {"1.weight": {"_moment1_0": ...}}}``) instead of Paddle's
    process-wide unique name (``linear_3.w_0_moment1_0``). No optimizer (a task that updates its
    parameters itself): ``{}``.

    Why: the unique names count the layers a process has built, so the second model of a notebook
    (or of any process that built one before) names its parameters ``linear_4...``; a checkpoint
    keyed by the first process's names cannot be resumed there (Paddle: "Optimizer set error,
    embedding_2.w_0_moment1_0 should in state dict"). The model's place names do not change."""
    if optimizer is None:
        return {}
    owners = sorted(((p.name, n) for n, p in model.named_parameters()), key=lambda t: -len(t[0]))
    by_parameter: Dict[str, Dict[str, Any]] = {}
    rest: Dict[str, Any] = {}
    for key, value in optimizer.state_dict().items():
        owner = next(((u, n) for u, n in owners if key.startswith(u + "_")), None)
        if owner is None:
            rest[key] = value
        else:
            by_parameter.setdefault(owner[1], {})[key[len(owner[0]):]] = value
    return {**rest, "by_parameter": by_parameter}


def set_optimizer_state(model: Any, optimizer, state: Dict[str, Any]) -> None:
    """Load what :func:`optimizer_state` saved (or an older checkpoint's plain ``state_dict``)
    into ``optimizer``, under this process's unique parameter names. Plain SGD keeps no state,
    so a task without an optimizer resumes a Paddle-path word2vec checkpoint and the other way
    round."""
    if optimizer is None:
        return
    state = dict(state)
    unique = {n: p.name for n, p in model.named_parameters()}
    for name, slots in state.pop("by_parameter", {}).items():
        for suffix, value in slots.items():
            state[unique.get(name, name) + suffix] = value
    optimizer.set_state_dict(state)


def _to_numpy(obj: Any) -> Any:
    """``obj`` with every Paddle tensor as a NumPy array (to send between processes)."""
    paddle = sys.modules.get("paddle")
    if paddle is not None and isinstance(obj, paddle.Tensor):
        return obj.numpy()
    if isinstance(obj, (list, tuple)):
        return type(obj)(_to_numpy(x) for x in obj)
    if isinstance(obj, dict):
        return {k: _to_numpy(v) for k, v in obj.items()}
    return obj


def _check_shapes(path: Path, model: Any, saved: Dict[str, Any]) -> None:
    """Refuse a checkpoint whose parameters have other shapes than ``model``'s (``set_state_dict``
    would only warn and leave those parameters as initialised)."""
    differ = []
    for name, param in model.state_dict().items():
        if name in saved and hasattr(saved[name], "shape") and list(saved[name].shape) != list(param.shape):
            differ.append(f"{name} {list(saved[name].shape)} (run) vs {list(param.shape)}")
    if differ:
        raise ConfigError(f"--resume {path}: the run's parameters have other shapes: " + "; ".join(differ[:3])
                          + (f" and {len(differ) - 3} more" if len(differ) > 3 else "")
                          + " (resume with the run's settings and data, or --overwrite)")
