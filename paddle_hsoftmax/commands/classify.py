"""``python train.py classify``: a text classifier (BiLSTM + NB-weighted n-gram logistic regression)
on a built-in dataset or your own files; ``--baseline`` also fits TF-IDF + logistic regression
(scikit-learn) on the same split and prints both.

Settings: :class:`~paddle_hsoftmax.pipeline.configs.ClassifyConfig` (every flag, and the keys of a
``--config`` file). Outputs in ``--output-dir``: ``run.json`` (kind, settings, versions, files),
``metrics.json`` (test accuracy, macro F1, per-class scores, confusion matrix, training time),
``tokens.txt``, ``ngrams.txt`` (with the n-gram branch or bag), ``labels.txt``, ``config.json``, ``inference/``, ``checkpoints/`` (``best.pdckpt``
by validation accuracy) and ``vdl/``.
"""

from __future__ import annotations

import dataclasses
import json
import time

from ..data.text import CorpusError
from ..pipeline.configs import ClassifyConfig
from .common import add_settings, check_run, read_settings, start_run, trainer_config

__all__ = ["add_parser", "run"]


def _datasets():
    from ..data.datasets import chnsenti

    return {"chnsenti": chnsenti}


def add_parser(sub):
    p = sub.add_parser("classify", help="text classifier: BiLSTM + NB-weighted n-grams (sequence -> class)")
    add_settings(p, ClassifyConfig)
    p.set_defaults(func=run)
    return p


def _splits(config: ClassifyConfig):
    from ..data.labeled import read_classification

    if config.dataset:
        return _datasets()[config.dataset](), config.dataset
    splits = {part: read_classification(getattr(config, part), config.format) for part in ("train", "valid", "test")}
    labels = sorted({label for label, _ in splits["train"]})
    if len(labels) < 2:
        raise CorpusError(f"{config.train}: {len(labels)} label(s) {labels} in the training file; "
                          "a classifier needs at least 2")
    return splits, config.train


def run(args) -> int:
    from ..inference import export_model
    from ..pipeline.configs import require_source
    from ..tasks.classify import ClassifyTask, resolve_tokenizer, tfidf_baseline
    from ..trainer import Trainer

    start = time.perf_counter()
    config, options = read_settings(args)
    require_source(config)
    splits, source = _splits(config)
    resolve_tokenizer(config, splits)  # before the run is checked: a --resume compares the pick
    run_dir = check_run("classify", config, options)
    if config.baseline:
        tfidf_baseline.check_available()
    task = ClassifyTask(config, splits)
    start_run(run_dir, "classify", config, options)
    print(f"data: {source}: " + ", ".join(f"{k} {len(v):,}" for k, v in splits.items())
          + f"; {len(task.labels)} labels, {len(task.vocab):,} tokens")
    if task.init_coverage is not None:
        print(f"embeddings initialised from {config.init_vectors}: {task.init_coverage:.1%} of the tokens found")
    if task.ngrams is not None:
        chars = f" and word character 2..{task.ngrams.chars}-grams" if task.ngrams.chars else ""
        users = (["NB-weighted logistic regression"] if task.model.ngram is not None else []) + (
            [f"a bag of {config.bag_size()}-d embeddings beside the LSTM"] if task.model.bag is not None else [])
        print(f"n-grams: {len(task.ngrams):,} token 1..{config.ngrams}-grams{chars}: " + " and ".join(users))
    if task.ngram_note:
        print(task.ngram_note)
    if task.unseen_labels:
        print("labels not seen in training (scored as errors): "
              + ", ".join(f"{k} x{n}" for k, n in sorted(task.unseen_labels.items())))
    trainer = Trainer(trainer_config(run_dir, config, options))
    metrics = trainer.fit(task)
    if trainer.rank != 0:  # data parallel: rank 0 alone tests, exports and writes the run's files
        return 0
    trainer.load_best(task)
    test = task.scores("test")
    metrics.update(task.branch_test_accuracy())
    baseline = None
    if config.baseline:
        baseline = tfidf_baseline(splits, config.tokenizer, config.max_len, labels=task.labels)
        metrics["baseline"] = baseline
    metrics.update({
        "test_accuracy": test["accuracy"],
        "test_macro_f1": test["macro_f1"],
        "test": test,
        "labels": task.labels,
        "unseen_labels": task.unseen_labels,
        "init_vectors_coverage": task.init_coverage,
        "config": dataclasses.asdict(config),
        "process_seconds": time.perf_counter() - start,
    })
    export_model(task.model, run_dir.file("inference"), with_ngrams=task.model.takes_ngrams)
    task.vocab.save(run_dir.file("tokens.txt"))
    if task.ngrams is not None:
        task.ngrams.save(run_dir.file("ngrams.txt"))
    run_dir.write_text("labels.txt", "\n".join(task.labels) + "\n")
    run_dir.write_text("config.json", json.dumps(dataclasses.asdict(config), indent=2))
    run_dir.finish(metrics, chosen={"best_epoch": metrics["best_epoch"]})
    out = run_dir.path
    print(f"best epoch {metrics['best_epoch']} (valid accuracy {trainer.state.best:.4f}); "
          f"test accuracy {test['accuracy']:.4f}, macro F1 {test['macro_f1']:.4f}; "
          f"training {metrics['wall_seconds']:.0f} s")
    if "test_accuracy_ngram_branch" in metrics:
        print(f"branches alone: n-gram {metrics['test_accuracy_ngram_branch']:.4f}, BiLSTM "
              f"{metrics['test_accuracy_rnn_branch']:.4f} test accuracy; the BiLSTM's vote weighs "
              f"{float(task.model.mix.numpy()[0]):g} (chosen on validation)")
    if baseline is not None:
        print(f"baseline {baseline['method']} (C={baseline['C']:g} chosen on validation): test accuracy "
              f"{baseline['test_accuracy']:.4f}, macro F1 {baseline['test_macro_f1']:.4f}; this model "
              f"{test['accuracy'] - baseline['test_accuracy']:+.4f}")
    print(f"wrote {out}/metrics.json, run.json, tokens.txt, " + ("ngrams.txt, " if task.ngrams is not None else "")
          + "labels.txt, config.json, inference/, checkpoints/, vdl/")
    return 0
