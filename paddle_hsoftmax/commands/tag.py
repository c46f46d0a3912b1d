"""``python train.py tag``: a BiLSTM tagger (softmax or ``--crf``) on People's Daily (POS, named
entities, word segmentation) or your own CoNLL / word-TAG files.

Outputs in ``--output-dir``: ``metrics.json`` (test token accuracy; span precision / recall / F1
for BIO/BIOES or b/m/e/s tag sets; training time), ``tokens.txt`` (+ ``chars.txt`` or
``bigrams.txt``), ``tags.txt``,
``config.json``, ``inference/`` (``paddle.jit.save``; ``train.py predict`` uses it),
``checkpoints/`` (best by validation F1 or accuracy) and ``vdl/``.
"""

from __future__ import annotations

import dataclasses
import json
import time

from ..data import CorpusError
from ..data.datasets import pd_cws, pd_ner, pd_pos
from ..data.tagged import TAGGED_FORMATS, read_tagged
from .common import add_run_options, start_run

__all__ = ["add_parser", "run"]

DATASETS = {"pd-pos": pd_pos, "pd-ner": pd_ner, "pd-cws": pd_cws}
# how `predict` splits raw text for a model trained on each built-in set
DATASET_TOKENIZERS = {"pd-pos": "whitespace", "pd-ner": "char", "pd-cws": "char"}


def add_parser(sub):
    from ..models.classifier import RNN_CELLS
    from ..tasks.tag import TagConfig

    d = TagConfig()
    p = sub.add_parser("tag", help="BiLSTM sequence tagger (one tag per token), softmax or CRF")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", choices=sorted(DATASETS))
    src.add_argument("--train", help="CoNLL (token<TAB>tag, blank line between sentences) or word/TAG lines")
    p.add_argument("--valid")
    p.add_argument("--test")
    p.add_argument("--format", choices=TAGGED_FORMATS, default="auto")
    p.add_argument("--tokenizer", choices=("whitespace", "char", "jieba"), default=None,
                   help="how `predict` splits raw text (default: char for pd-ner/pd-cws, else whitespace)")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--crf", action="store_true", help="linear-chain CRF on top (Viterbi decoding)")
    p.add_argument("--cell", choices=sorted(RNN_CELLS), default=d.cell)
    p.add_argument("--embed-dim", type=int, default=d.embed_dim)
    p.add_argument("--hidden", type=int, default=d.hidden_size)
    p.add_argument("--layers", type=int, default=d.num_layers)
    p.add_argument("--dropout", type=float, default=d.dropout)
    p.add_argument("--features", choices=("auto", "chars", "bigrams", "none"), default=d.features,
                   help="sub-token features: a CNN over each word's characters (chars) or over the "
                        "character bigrams around each character (bigrams); auto picks by token length")
    p.add_argument("--char-dim", type=int, default=d.char_dim,
                   help="sub-token embedding size (0 = no sub-token features)")
    p.add_argument("--char-filters", type=int, default=d.char_filters)
    p.add_argument("--min-count", type=int, default=d.min_count)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    add_run_options(p, epochs=5, seed=d.seed, patience=2, selected_by="validation span F1 (or accuracy)")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..export import atomic_write_text
    from ..inference import export_model
    from ..tasks.tag import TagConfig, TagTask
    from ..trainer import Trainer, TrainerConfig

    start = time.perf_counter()
    out = start_run(args)
    if args.dataset:
        splits, source = DATASETS[args.dataset](), args.dataset
    else:
        if not (args.valid and args.test):
            raise CorpusError("--train needs --valid and --test as well")
        splits = {part: read_tagged(getattr(args, part), args.format) for part in ("train", "valid", "test")}
        source = args.train
    if args.epochs < 1:
        raise ValueError(f"--epochs must be >= 1, got {args.epochs}")
    config = TagConfig(crf=args.crf, cell=args.cell, embed_dim=args.embed_dim, hidden_size=args.hidden,
                       num_layers=args.layers, dropout=args.dropout, features=args.features, char_dim=args.char_dim,
                       char_filters=args.char_filters, min_count=args.min_count, batch_size=args.batch_size,
                       lr=args.lr, tokenizer=args.tokenizer or DATASET_TOKENIZERS.get(args.dataset, "whitespace"),
                       seed=args.seed)
    task = TagTask(config, splits)
    print(f"data: {source}: " + ", ".join(f"{k} {len(v):,} sentences" for k, v in splits.items())
          + f"; {len(task.tags)} tags, {len(task.vocab):,} tokens"
          + (f", {task.inputs.mode} features ({len(task.inputs.subunits):,} {task.inputs.mode})" if task.uses_chars else "")
          + (f"; span scoring ({task.scheme})" if task.scheme else ""))
    if task.unseen_tags:
        print("tags not seen in training (scored as errors): "
              + ", ".join(f"{k} x{n}" for k, n in sorted(task.unseen_tags.items())))
    trainer = Trainer(TrainerConfig(output_dir=str(out), epochs=args.epochs, resume=args.resume,
                                    checkpoint_every=args.checkpoint_every,
                                    progress=not args.no_progress, patience=args.patience))
    metrics = trainer.fit(task)
    trainer.load_best(task)
    test = task.scores("test")
    metrics.update({"test_accuracy": test["accuracy"], "test": test, "tags": task.tags,
                    **({"test_f1": test["f1"]} if task.scheme else {}),
                    "unseen_tags": task.unseen_tags, "config": dataclasses.asdict(task.config),
                    "process_seconds": time.perf_counter() - start})
    export_model(task.model, out / "inference", with_chars=task.uses_chars)
    task.inputs.save(out)
    atomic_write_text(out / "tags.txt", "\n".join(task.tags) + "\n")
    atomic_write_text(out / "config.json", json.dumps(dataclasses.asdict(task.config), indent=2))
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2, ensure_ascii=False))
    spans = f", span F1 {test['f1']:.4f} (P {test['precision']:.4f}, R {test['recall']:.4f})" if task.scheme else ""
    print(f"best epoch {metrics['best_epoch']} ({task.selection_metric} {trainer.state['best']:.4f}); "
          f"test token accuracy {test['accuracy']:.4f}{spans}; training {metrics['wall_seconds']:.0f} s")
    print(f"wrote {out}/metrics.json, tokens.txt, tags.txt, config.json, inference/, checkpoints/, vdl/")
    return 0
