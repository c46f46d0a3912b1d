"""``python train.py word2vec``: train word vectors with hierarchical softmax and export them.

Settings: :class:`~paddle_hsoftmax.pipeline.configs.Word2VecConfig`. Outputs in ``--output-dir``:
``vectors.txt`` (word2vec text), ``vectors.bin`` (word2vec binary), ``vocab.tsv``, ``tree.npz``,
``checkpoints/last.pdckpt``, ``run.json``, ``metrics.json`` and ``vdl/``.
A directory that already holds a finished run (``metrics.json``) is refused unless ``--resume``
or ``--overwrite``.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

from ..data.text import CorpusError
from ..pipeline.configs import Word2VecConfig
from ..tree import format_information_table, information_table
from .common import add_settings, check_run, load_sentences, read_settings, start_run, trainer_config

__all__ = ["add_parser", "run"]

# a few probe words for the neighbours printout (People's Daily); other corpora use ranks
PROBES_ZH = ("中国", "经济", "北京", "改革", "足球")


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("word2vec", help="word vectors with hierarchical softmax (the default command)")
    add_settings(p, Word2VecConfig, output_dir="runs/word2vec")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    import paddle.distributed as dist

    from ..data.vocab import Vocab
    from ..data.windows import EncodedCorpus
    from ..export import write_word2vec_binary, write_word2vec_text
    from ..tasks.word2vec import Word2VecTask
    from ..trainer import Trainer

    wall_start = time.perf_counter()
    config, options = read_settings(args)
    run_dir = check_run("word2vec", config, options)  # joins the launcher's processes, if any
    rank, world = dist.get_rank() if dist.is_initialized() else 0, dist.get_world_size() if dist.is_initialized() else 1

    sentences, source = load_sentences(config.corpus, config.format, config.tokenizer)
    vocab = Vocab.build(sentences, min_count=config.min_count, max_vocab=config.max_vocab, source=source)
    corpus = EncodedCorpus.encode(sentences, vocab)
    if len(corpus) < 2:
        raise CorpusError(f"{source}: fewer than 2 in-vocabulary tokens")
    task = Word2VecTask(config, vocab, corpus, rank=rank, world=world)
    start_run(run_dir, "word2vec", config, options)  # rank 0 writes; every process waits for it
    info = information_table(vocab.counts)
    if rank == 0:
        print(f"corpus: {source}: {len(sentences):,} sentences, {corpus.raw_tokens:,} tokens, "
              f"vocabulary {len(vocab):,} (min_count {config.min_count})")
        print(format_information_table(info))
        print(f"training {config.model} / {config.tree} tree, dim {config.dim}, window {config.window}, "
              f"{config.epochs} epochs, {world} process(es), {task.kernel} kernel")

    trainer = Trainer(trainer_config(run_dir, config, options))
    metrics = trainer.fit(task)
    if rank != 0:
        return 0

    # over the whole run, including the part done before a --resume
    words = corpus.raw_tokens * config.epochs
    train_wall = metrics["wall_seconds"]
    metrics.update({
        "words_per_sec": words / max(train_wall, 1e-9),
        "train_wall_seconds": train_wall,
        "process_seconds": time.perf_counter() - wall_start,
        "corpus_tokens": corpus.raw_tokens,
        "vocab_size": len(vocab),
        "information": info,
        "config": dataclasses.asdict(config),
        "epochs_requested": config.epochs,
        "processes": world,
        "kernel": task.kernel,
    })
    vectors = task.vectors()
    out = run_dir.path
    write_word2vec_text(out / "vectors.txt", vocab.words, vectors)
    write_word2vec_binary(out / "vectors.bin", vocab.words, vectors)
    vocab.save_tsv(out / "vocab.tsv")
    task.tree.save(out / "tree.npz")
    probes = [w for w in PROBES_ZH if w in vocab] or [vocab.words[i] for i in (20, 50, 100, 200) if i < len(vocab)]
    neighbours = task.nearest(probes, k=8)
    metrics["nearest"] = {w: [n for n, _ in ns] for w, ns in neighbours.items()}
    run_dir.finish(metrics, chosen={"kernel": task.kernel})

    print(f"trained in {train_wall:.1f} s: {metrics['words_per_sec']:,.0f} words/s "
          f"(corpus tokens x epochs / training wall time); held-in NLL per pair "
          f"{metrics.get('heldin_nll_per_pair', float('nan')):.3f}")
    for w, ns in neighbours.items():
        print(f"  {w}: " + " ".join(n for n, _ in ns))
    print(f"wrote {out}/vectors.txt, vectors.bin, vocab.tsv, tree.npz, metrics.json, run.json, checkpoints/, vdl/")
    return 0
