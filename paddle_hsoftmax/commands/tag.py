"""``python train.py tag``: a BiLSTM tagger (softmax or ``--crf``) on People's Daily (POS, named
entities, word segmentation) or your own CoNLL / word-TAG files.

Settings: :class:`~paddle_hsoftmax.pipeline.configs.TagConfig`. Outputs in ``--output-dir``:
``run.json``, ``metrics.json`` (test token accuracy; span precision / recall / F1 for BIO/BIOES or
b/m/e/s tag sets; training time), ``tokens.txt`` (+ ``chars.txt`` or ``bigrams.txt``), ``tags.txt``,
``config.json``, ``inference/`` (``paddle.jit.save``; ``train.py predict`` uses it),
``checkpoints/`` (best by validation F1 or accuracy) and ``vdl/``.
"""

from __future__ import annotations

import dataclasses
import json
import time

from ..pipeline.configs import TagConfig
from .common import add_settings, check_run, read_settings, start_run, trainer_config

__all__ = ["add_parser", "run"]


def add_parser(sub):
    p = sub.add_parser("tag", help="BiLSTM sequence tagger (one tag per token), softmax or CRF")
    add_settings(p, TagConfig)
    p.set_defaults(func=run)
    return p


def _splits(config: TagConfig):
    from ..data.datasets import pd_cws, pd_ner, pd_pos
    from ..data.tagged import read_tagged

    if config.dataset:
        return {"pd-pos": pd_pos, "pd-ner": pd_ner, "pd-cws": pd_cws}[config.dataset](), config.dataset
    return {part: read_tagged(getattr(config, part), config.format) for part in ("train", "valid", "test")}, config.train


def run(args) -> int:
    from ..inference import export_model
    from ..pipeline.configs import require_source
    from ..tasks.tag import TagTask
    from ..trainer import Trainer

    start = time.perf_counter()
    config, options = read_settings(args)
    require_source(config)
    run_dir = check_run("tag", config, options)
    splits, source = _splits(config)
    task = TagTask(config, splits)
    start_run(run_dir, "tag", config, options)
    print(f"data: {source}: " + ", ".join(f"{k} {len(v):,} sentences" for k, v in splits.items())
          + f"; {len(task.tags)} tags, {len(task.vocab):,} tokens"
          + (f", {task.inputs.mode} features ({len(task.inputs.subunits):,} {task.inputs.mode})" if task.uses_chars else "")
          + (f"; span scoring ({task.scheme})" if task.scheme else ""))
    if task.unseen_tags:
        print("tags not seen in training (scored as errors): "
              + ", ".join(f"{k} x{n}" for k, n in sorted(task.unseen_tags.items())))
    trainer = Trainer(trainer_config(run_dir, config, options))
    metrics = trainer.fit(task)
    if trainer.rank != 0:  # data parallel: rank 0 alone tests, exports and writes the run's files
        return 0
    trainer.load_best(task)
    test = task.scores("test")
    metrics.update({"test_accuracy": test["accuracy"], "test": test, "tags": task.tags,
                    **({"test_f1": test["f1"]} if task.scheme else {}),
                    "unseen_tags": task.unseen_tags, "config": dataclasses.asdict(task.config),
                    "process_seconds": time.perf_counter() - start})
    export_model(task.model, run_dir.file("inference"), with_chars=task.uses_chars)
    task.inputs.save(run_dir.path)
    run_dir.write_text("tags.txt", "\n".join(task.tags) + "\n")
    run_dir.write_text("config.json", json.dumps(dataclasses.asdict(task.config), indent=2))
    run_dir.finish(metrics, chosen={"best_epoch": metrics["best_epoch"], "features": task.config.features})
    spans = f", span F1 {test['f1']:.4f} (P {test['precision']:.4f}, R {test['recall']:.4f})" if task.scheme else ""
    print(f"best epoch {metrics['best_epoch']} ({task.selection_metric} {trainer.state.best:.4f}); "
          f"test token accuracy {test['accuracy']:.4f}{spans}; training {metrics['wall_seconds']:.0f} s")
    print(f"wrote {run_dir.path}/metrics.json, run.json, tokens.txt, tags.txt, config.json, inference/, "
          "checkpoints/, vdl/")
    return 0
