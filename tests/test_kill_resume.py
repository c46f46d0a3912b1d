"""Runs killed with SIGKILL and resumed end exactly where uninterrupted runs end; a run whose loss
or parameters turn NaN stops with one clear line and keeps its last good checkpoint."""

import concurrent.futures
import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import paddle
import pytest

from paddle_hsoftmax.errors import UserError
from paddle_hsoftmax.safe_io import load_state
from paddle_hsoftmax.trainer import StepResult, Task, Trainer, TrainerConfig, TrainingDiverged, nonfinite_parameters

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("reliability", REPO / "scripts" / "reliability.py")
reliability = sys.modules.setdefault("reliability", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(reliability)


@pytest.fixture(scope="module")
def kill_runs(tmp_path_factory):
    """Every task on the tiniest real slices: a reference run, and a run killed twice (once while
    a checkpoint is being written) and resumed; every task side by side."""
    work = tmp_path_factory.mktemp("kills")
    specs = reliability.build_tasks(work, "tiny")
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=len(specs))
    futures = {name: pool.submit(reliability.run_task, spec, work, 2, 1) for name, spec in specs.items()}
    yield futures
    pool.shutdown(wait=True)


@pytest.mark.slow  # measured in the quick suite run of 2026-12-01: 35 s for the 4 tasks
@pytest.mark.parametrize("task", reliability.TASKS)
def test_killed_and_resumed_run_equals_the_uninterrupted_one(task, kill_runs):
    summary = kill_runs[task].result()
    assert summary["kills"] >= 2 and summary["resumes"] >= 1
    assert summary["kills_in_checkpoint_write"] >= 1  # the first kill is aimed inside a checkpoint write
    for trial in summary["trials"]:
        assert trial["metrics_compared"] >= 8 and trial["files_compared"] >= 2
        assert trial["leftover_tmp"] == []  # what a kill left half-written was replaced or removed
        assert trial["param_max_abs_diff"] == 0.0 and trial["optimizer_max_abs_diff"] == 0.0, trial
        assert trial["trainer_state_diff"] == [] and trial["metrics_diff"] == [] and trial["files_diff"] == [], trial


class ToyTask(Task):
    """A tiny regression task with dropout, batches drawn from ``(seed, epoch)``; it can turn its
    loss into NaN at one step (``nan_at``) or stop the process at one (``die_at``)."""

    name, unit_name, selection_metric = "toy", "rows", "score"

    def __init__(self, nan_at=None, die_at=None, dropout=0.5):
        paddle.seed(7)
        self.model = paddle.nn.Sequential(paddle.nn.Linear(3, 8), paddle.nn.Dropout(dropout), paddle.nn.Linear(8, 1))
        self.optimizer = paddle.optimizer.Adam(learning_rate=0.01, parameters=self.model.parameters())
        self.nan_at, self.die_at, self.calls = nan_at, die_at, 0

    def epoch_batches(self, epoch):
        rng = np.random.default_rng([0, epoch])
        for _ in range(6):
            yield rng.normal(size=(4, 3)).astype("float32")

    def units_per_epoch(self):
        return 24.0

    def learning_rate(self, progress):
        return 0.01

    def train_step(self, batch):
        self.calls += 1
        if self.calls == self.die_at:
            raise KeyboardInterrupt  # as a kill would, between two steps
        self.model.train()
        loss = ((self.model(paddle.to_tensor(batch)) - 1.0) ** 2).sum()
        if self.calls == self.nan_at:
            loss = loss * float("nan")
        (loss / 4).backward()
        return StepResult(loss_sum=loss.detach(), count=4.0, units=4.0)

    def evaluate(self):
        self.model.eval()
        with paddle.no_grad():
            x = paddle.to_tensor(np.random.default_rng(9).normal(size=(16, 3)).astype("float32"))
            return {"score": -float(((self.model(x) - 1.0) ** 2).mean())}

    def hparams(self):
        return {}


def _params(model):
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def _fit(config: TrainerConfig, **task_options):
    """A fresh ToyTask trained under ``config``, with Paddle's name counters as a new process has
    them (optimizer state is keyed by parameter names)."""
    with paddle.utils.unique_name.guard():
        task = ToyTask(**task_options)
        trainer = Trainer(config)
        trainer.fit(task)
    return task, trainer


def test_mid_epoch_resume_repeats_dropout_masks(tmp_path):
    """The generator state travels in the checkpoint: after a stop at step 9 (checkpoint at
    step 8), the resumed run draws the masks the uninterrupted one drew."""
    full, _ = _fit(TrainerConfig(str(tmp_path / "a"), epochs=2, progress=False, checkpoint_every=4))
    with pytest.raises(KeyboardInterrupt):
        _fit(TrainerConfig(str(tmp_path / "b"), epochs=2, progress=False, checkpoint_every=4), die_at=9)
    resumed, trainer = _fit(TrainerConfig(str(tmp_path / "b"), epochs=2, progress=False, checkpoint_every=4,
                                          resume=True))
    assert trainer.state.step == 12 and resumed.calls == 4  # steps 9-12 only
    a, b = _params(full.model), _params(resumed.model)
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_nan_stops_training_and_keeps_the_last_good_checkpoint(tmp_path):
    """The NaN comes at step 9 (epoch 2), between the checkpoints of steps 8 and 10, and no logged
    loss shows it (log_every 100): the parameter check before the step-10 checkpoint stops the run."""
    out = tmp_path / "run"
    with pytest.raises(TrainingDiverged) as info:
        _fit(TrainerConfig(str(out), epochs=3, progress=False, checkpoint_every=2, log_every=100), nan_at=9)
    message = str(info.value)
    assert isinstance(info.value, UserError) and "\n" not in message  # train.py: one line, exit status 2
    assert "epoch 2, step 10" in message and "non-finite" in message
    assert f"{out / 'checkpoints' / 'last.pdckpt'} (epoch 2, step 8)" in message
    last = load_state(out / "checkpoints" / "last.pdckpt")
    assert last["trainer"]["step"] == 8
    assert all(np.isfinite(v.numpy()).all() for v in last["model"].values())
    best = load_state(out / "checkpoints" / "best.pdckpt")
    assert best["epoch"] == 1 and all(np.isfinite(v.numpy()).all() for v in best["model"].values())
    assert not list(out.rglob("*.tmp"))

    # --resume from the kept checkpoint, without the NaN, finishes the run
    resumed, _ = _fit(TrainerConfig(str(out), epochs=3, progress=False, checkpoint_every=2, resume=True))
    assert nonfinite_parameters(resumed.model) == [] and resumed.calls == 10


def test_nan_loss_is_caught_at_the_logged_step(tmp_path):
    with pytest.raises(TrainingDiverged, match=r"epoch 1, step 3 \(lr 0.01\): the loss became nan; kept the last "
                                               r"good checkpoint, .*last.pdckpt \(epoch 1, step 2\)"):
        _fit(TrainerConfig(str(tmp_path), epochs=1, progress=False, checkpoint_every=2, log_every=1), nan_at=3)
    assert load_state(tmp_path / "checkpoints" / "last.pdckpt")["trainer"]["step"] == 2


def test_nan_score_never_becomes_the_best(tmp_path):
    trainer = Trainer(TrainerConfig(str(tmp_path)))
    task = ToyTask()
    trainer._track_best(task, {"score": math.nan})
    assert trainer.state.best is None and not (tmp_path / "checkpoints" / "best.pdckpt").exists()
    trainer._track_best(task, {"score": -1.0})
    trainer._track_best(task, {"score": math.nan})
    assert trainer.state.best == -1.0 and trainer.state.stale == 1


def test_absurd_learning_rate_exits_2_with_one_line(tmp_path, capsys):
    """A real command: word vectors (Paddle path) at lr 1e6 overflow within a few steps."""
    from conftest import write_pd_slice

    from paddle_hsoftmax.cli import main

    corpus = write_pd_slice(tmp_path / "pd.txt", 200)
    out = tmp_path / "run"
    code = main(["word2vec", "--corpus", str(corpus), "--format", "tagged", "--min-count", "2", "--dim", "8",
                 "--batch-size", "128", "--epochs", "2", "--kernel", "paddle", "--lr", "1e6", "--no-progress",
                 "--checkpoint-every", "3", "--output-dir", str(out)])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: training diverged at epoch 1") and "try a lower --lr" in err[0]
    assert not (out / "metrics.json").exists() and not (out / "vectors.txt").exists()
    ckpt = out / "checkpoints" / "last.pdckpt"
    if ckpt.exists():  # whatever was kept is finite
        assert all(np.isfinite(v.numpy()).all() for v in load_state(ckpt)["model"].values())
