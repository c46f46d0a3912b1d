"""``python train.py classify``: an LSTM text classifier on a built-in dataset or your own files.

Outputs in ``--output-dir``: ``metrics.json`` (test accuracy, macro F1, per-class scores,
confusion matrix, training time), ``tokens.txt``, ``labels.txt``, ``config.json``,
``checkpoints/`` (``best.pdckpt`` by validation accuracy) and ``vdl/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

from ..data import CorpusError
from ..data.datasets import chnsenti
from ..data.labeled import CLASSIFICATION_FORMATS, read_classification
from .common import add_run_options, start_run

__all__ = ["add_parser", "run"]

DATASETS = {"chnsenti": chnsenti}


def add_parser(sub):
    from ..models.classifier import POOLINGS, RNN_CELLS
    from ..tasks.classify import ClassifyConfig

    d = ClassifyConfig()
    p = sub.add_parser("classify", help="LSTM text classifier (sequence -> class)")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", choices=sorted(DATASETS), help="built-in dataset (from installed packages)")
    src.add_argument("--train", help="training file: TSV label<TAB>text or fastText __label__x text")
    p.add_argument("--valid", help="validation file (same format); required with --train")
    p.add_argument("--test", help="test file (same format); required with --train")
    p.add_argument("--format", choices=CLASSIFICATION_FORMATS, default="auto")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--tokenizer", choices=("char", "whitespace", "jieba"), default=d.tokenizer)
    p.add_argument("--pooling", choices=POOLINGS, default=d.pooling)
    p.add_argument("--cell", choices=sorted(RNN_CELLS), default=d.cell)
    p.add_argument("--bidirectional", action=argparse.BooleanOptionalAction, default=d.bidirectional,
                   help="BiLSTM (default) or, with --no-bidirectional, one direction")
    p.add_argument("--embed-dim", type=int, default=d.embed_dim)
    p.add_argument("--hidden", type=int, default=d.hidden_size)
    p.add_argument("--layers", type=int, default=d.num_layers)
    p.add_argument("--dropout", type=float, default=d.dropout)
    p.add_argument("--max-len", type=int, default=d.max_len)
    p.add_argument("--min-count", type=int, default=d.min_count)
    p.add_argument("--init-vectors", default=None,
                   help="word2vec text/binary vectors (e.g. from train.py word2vec) to start the embeddings from")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    add_run_options(p, epochs=8, seed=d.seed, patience=3, selected_by="validation accuracy")
    p.set_defaults(func=run)
    return p


def _splits(args):
    if args.dataset:
        return DATASETS[args.dataset](), args.dataset
    if not (args.valid and args.test):
        raise CorpusError("--train needs --valid and --test as well")
    splits = {part: read_classification(getattr(args, part), args.format) for part in ("train", "valid", "test")}
    labels = sorted({label for label, _ in splits["train"]})
    if len(labels) < 2:
        raise CorpusError(f"{args.train}: {len(labels)} label(s) {labels} in the training file; "
                          "a classifier needs at least 2")
    return splits, args.train


def run(args) -> int:
    from ..export import atomic_write_text
    from ..inference import export_model
    from ..tasks.classify import ClassifyConfig, ClassifyTask
    from ..trainer import Trainer, TrainerConfig

    start = time.perf_counter()
    out = start_run(args)
    splits, source = _splits(args)
    config = ClassifyConfig(
        tokenizer=args.tokenizer, pooling=args.pooling, cell=args.cell, bidirectional=args.bidirectional,
        embed_dim=args.embed_dim, hidden_size=args.hidden, num_layers=args.layers, dropout=args.dropout,
        min_count=args.min_count, max_len=args.max_len, batch_size=args.batch_size, lr=args.lr,
        init_vectors=args.init_vectors, seed=args.seed,
    )
    if args.epochs < 1:
        raise ValueError(f"--epochs must be >= 1, got {args.epochs}")
    task = ClassifyTask(config, splits)
    print(f"data: {source}: " + ", ".join(f"{k} {len(v):,}" for k, v in splits.items())
          + f"; {len(task.labels)} labels, {len(task.vocab):,} tokens")
    if task.init_coverage is not None:
        print(f"embeddings initialised from {args.init_vectors}: {task.init_coverage:.1%} of the tokens found")
    if task.unseen_labels:
        print("labels not seen in training (scored as errors): "
              + ", ".join(f"{k} x{n}" for k, n in sorted(task.unseen_labels.items())))
    trainer = Trainer(TrainerConfig(output_dir=str(out), epochs=args.epochs, resume=args.resume,
                                    checkpoint_every=args.checkpoint_every,
                                    progress=not args.no_progress, patience=args.patience, log_every=20))
    metrics = trainer.fit(task)
    trainer.load_best(task)
    test = task.scores("test")
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
    export_model(task.model, out / "inference")
    task.vocab.save(out / "tokens.txt")
    atomic_write_text(out / "labels.txt", "\n".join(task.labels) + "\n")
    atomic_write_text(out / "config.json", json.dumps(dataclasses.asdict(config), indent=2))
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2, ensure_ascii=False))
    print(f"best epoch {metrics['best_epoch']} (valid accuracy {trainer.state['best']:.4f}); "
          f"test accuracy {test['accuracy']:.4f}, macro F1 {test['macro_f1']:.4f}; "
          f"training {metrics['wall_seconds']:.0f} s")
    print(f"wrote {out}/metrics.json, tokens.txt, labels.txt, config.json, inference/, checkpoints/, vdl/")
    return 0
