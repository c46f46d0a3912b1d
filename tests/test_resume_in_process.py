"""A run stopped inside a notebook (the kernel's "interrupt": a ``KeyboardInterrupt`` between
checkpoints) and resumed with ``--resume`` in the same Python process ends exactly where an
uninterrupted run of the same process ends: nothing the first attempt left in the process (Paddle's
generator, the default dtype, the device, logging handlers, the kernel cache) leaks into the second."""

import importlib.util
import re
import sys
from pathlib import Path

import pytest

from paddle_hsoftmax import cli
from paddle_hsoftmax.trainer import Trainer

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("reliability", REPO / "scripts" / "reliability.py")
reliability = sys.modules.setdefault("reliability", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(reliability)


@pytest.mark.parametrize("task", ["classify", "lm"])
def test_interrupted_and_resumed_in_one_process_equals_the_uninterrupted_run(task, tmp_path, monkeypatch):
    spec = reliability.build_tasks(tmp_path, "tiny")[task]
    ref, got = tmp_path / "ref", tmp_path / "got"
    assert cli.main(spec.args + ["--output-dir", str(ref)]) == 0

    calls = {"saves": 0}
    save = Trainer.save_checkpoint

    def interrupted_at_the_third_checkpoint(self, task_):
        calls["saves"] += 1
        if calls["saves"] == 3:  # the steps since the second checkpoint are lost, as after a real stop
            raise KeyboardInterrupt
        save(self, task_)

    monkeypatch.setattr(Trainer, "save_checkpoint", interrupted_at_the_third_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        cli.main(spec.args + ["--output-dir", str(got)])
    monkeypatch.undo()
    assert calls["saves"] == 3 and (got / "checkpoints" / "last.pdckpt").is_file()
    assert not (got / "metrics.json").exists()  # the run did stop before its end

    assert cli.main(spec.args + ["--output-dir", str(got), "--resume"]) == 0
    report = reliability.compare_runs(ref, got)
    assert report["param_max_abs_diff"] == 0.0 and report["optimizer_max_abs_diff"] == 0.0, report
    assert report["trainer_state_diff"] == [] and report["metrics_diff"] == [], report
    assert report["metrics_compared"] >= 8 and report["files_compared"] >= 2
    # the exported program names its variables by the process's layer count (``linear_5.b_0`` in
    # the second model of a process, ``linear_1.b_0`` in the first); apart from those names, equal
    assert set(report["files_diff"]) <= {"inference/model.json"}, report
    if report["files_diff"]:
        program = [_without_unique_names((run / "inference" / "model.json").read_text(encoding="utf-8"))
                   for run in (ref, got)]
        assert program[0] == program[1]


def _without_unique_names(text: str) -> str:
    text = re.sub(r"/([A-Za-z]+)(?:_\d+)?/", r"/\1/", text)  # /Embedding/, /Embedding_1/
    return re.sub(r"([A-Za-z])_\d+\.", r"\1_N.", text)  # linear_1.b_0, linear_5.b_0
