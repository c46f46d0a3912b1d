"""``python train.py word2vec``: train word vectors (hierarchical softmax or negative sampling) and export them.

Settings: :class:`~paddle_hsoftmax.pipeline.configs.Word2VecConfig`. Outputs in ``--output-dir``:
``vectors.txt`` (word2vec text), ``vectors.bin`` (word2vec binary), ``vocab.tsv``, ``tree.npz``
(H-softmax), ``corpus.ids`` + ``corpus.json`` (the corpus as int32 word ids, encoded once and
read a piece at a time while training; its source file's size, time and sha256),
``checkpoints/last.pdckpt``, ``run.json``, ``metrics.json`` and ``vdl/``.

Streaming: the text is read once (counted and written to ``corpus.ids`` in one pass,
:meth:`~paddle_hsoftmax.data.windows.EncodedCorpus.count_and_encode_to_file`), never held in
memory; a text that changes while a run trains stops it at the next epoch (checked at each
epoch's start, and its sha256 on ``--resume``), the last checkpoint kept.
A directory that already holds a finished run (``metrics.json``) is refused unless ``--resume``
or ``--overwrite``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence, Tuple

from ..data.text import CorpusError
from ..pipeline.configs import Word2VecConfig
from ..tree import format_information_table, information_table
from .common import add_settings, check_run, load_sentences, read_settings, start_run, trainer_config

CORPUS_IDS, CORPUS_META = "corpus.ids", "corpus.json"

__all__ = ["add_parser", "run"]

# a few probe words for the neighbours printout (People's Daily); other corpora use ranks
PROBES_ZH = ("中国", "经济", "北京", "改革", "足球")


def add_parser(sub) -> argparse.ArgumentParser:
    p = sub.add_parser("word2vec", help="word vectors with hierarchical softmax or negative sampling (the default command)")
    add_settings(p, Word2VecConfig, output_dir="runs/word2vec")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from .. import processes, word2vec_kernel
    from ..data.vocab import Vocab
    from ..data.windows import EncodedCorpus
    from ..export import write_word2vec_binary, write_word2vec_text
    from ..tasks.word2vec import Word2VecTask
    from ..trainer import Trainer

    wall_start = time.perf_counter()
    config, options = read_settings(args)
    # one CPU process with the C loop needs no Paddle: it is then never imported (1.4 s and ~300 MiB)
    paddle_free = (options.device.strip().lower() == "cpu" and processes.launched_world() == 1
                   and config.kernel != "paddle" and word2vec_kernel.available())
    run_dir = check_run("word2vec", config, options, paddle=not paddle_free)  # joins the launcher's processes
    rank, world = processes.rank(), processes.world()

    sentences, source, source_file = corpus_sentences(config)
    meta_path, ids_path = run_dir.path / CORPUS_META, run_dir.path / CORPUS_IDS
    meta = _read_meta(meta_path) if options.resume and world == 1 else None
    if meta is not None and meta.get("source"):
        # the same bytes (sha256) as when the run started; their current size and time from now on
        meta["source"] = _check_unchanged_since_start(meta["source"], meta_path)
    pending = None
    counted = dict(min_count=config.min_count, max_vocab=config.max_vocab)
    if world > 1 or meta is not None:
        vocab = Vocab.build(sentences(), source=source, **counted)
    if world > 1:  # each process holds the corpus (the Paddle path's data parallelism)
        corpus = EncodedCorpus.encode(sentences(), vocab)
    elif meta is not None and meta.get("vocab_size") == len(vocab) and ids_path.is_file():
        corpus = EncodedCorpus.from_meta(ids_path, meta)  # --resume: the run's own token-id file
        pending = False
    else:  # count and encode in one pass over the text
        pending = _temporary_ids_file(run_dir.path)
        try:
            vocab, corpus = EncodedCorpus.count_and_encode_to_file(sentences(), pending, source_name=source,
                                                                   source=source_file, **counted)
        except BaseException:
            pending.unlink(missing_ok=True)
            raise
    if len(corpus) < 2:
        if pending:
            pending.unlink(missing_ok=True)
        raise CorpusError(f"{source}: fewer than 2 in-vocabulary tokens")
    try:
        task = Word2VecTask(config, vocab, corpus, rank=rank, world=world, device="cpu" if paddle_free else None)
        start_run(run_dir, "word2vec", config, options)  # rank 0 writes; every process waits for it
    except BaseException:
        if pending:
            pending.unlink(missing_ok=True)
        raise
    if pending:  # the run directory exists now: the stream moves in
        os.replace(pending, ids_path)
        corpus.path = ids_path
    if pending is not None:
        run_dir.write_json(CORPUS_META, {**corpus.meta(), "vocab_size": len(vocab)})
    info = information_table(vocab.counts)
    if rank == 0:
        print(f"corpus: {source}: {corpus.num_sentences:,} sentences, {corpus.raw_tokens:,} tokens, "
              f"vocabulary {len(vocab):,} (min_count {config.min_count})")
        print(format_information_table(info))
        output = (f"negative sampling ({config.negative} per pair)" if config.loss == "ns"
                  else f"{config.tree} tree")
        print(f"training {config.model} / {output}, dim {config.dim}, window {config.window}, "
              f"{config.epochs} epochs, {world} process(es), {task.kernel} kernel")

    # a fused step covers chunk_tokens words (~0.1 s): log every one of them
    trainer = Trainer(trainer_config(run_dir, config, options, log_every=1 if task.stream_steps else 20))
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
    if task.tree is not None:
        task.tree.save(out / "tree.npz")
    probes = [w for w in PROBES_ZH if w in vocab] or [vocab.words[i] for i in (20, 50, 100, 200) if i < len(vocab)]
    neighbours = task.nearest(probes, k=8)
    metrics["nearest"] = {w: [n for n, _ in ns] for w, ns in neighbours.items()}
    run_dir.finish(metrics, chosen={"kernel": task.kernel})

    what = "negative-sampling loss" if config.loss == "ns" else "NLL"
    print(f"trained in {train_wall:.1f} s: {metrics['words_per_sec']:,.0f} words/s "
          f"(corpus tokens x epochs / training wall time); held-in {what} per pair "
          f"{metrics.get(task.eval_metric, float('nan')):.3f}")
    for w, ns in neighbours.items():
        print(f"  {w}: " + " ".join(n for n, _ in ns))
    print(f"wrote {out}/vectors.txt, vectors.bin, vocab.tsv{', tree.npz' if task.tree is not None else ''}, "
          "corpus.ids, metrics.json, run.json, checkpoints/, vdl/")
    return 0


def corpus_sentences(config) -> Tuple[Callable[[], Iterable[Sequence[str]]], str, Optional[Path]]:
    """``(sentences, source name, source file)``: ``sentences()`` starts a new pass over the
    corpus's token lists; a plain text file is streamed line by line (never held in memory), a
    ``word/TAG`` file or People's Daily is read into a list once."""
    from ..data.datasets import peoples_daily_path
    from ..data.text import check_readable_file, iter_sentences

    if config.corpus is not None and config.format == "plain":
        path = check_readable_file(config.corpus)
        if next(iter_sentences(path, config.tokenizer), None) is None:
            raise CorpusError(f"{config.corpus}: the corpus is empty (no tokens)")
        return (lambda: iter_sentences(path, config.tokenizer)), config.corpus, path
    held, source = load_sentences(config.corpus, config.format, config.tokenizer)
    path = Path(config.corpus) if config.corpus is not None else peoples_daily_path()
    return (lambda: held), source, path


def _read_meta(path: Path) -> Optional[dict]:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return meta if isinstance(meta, dict) and "length" in meta else None


def _check_unchanged_since_start(source: dict, meta_path: Path) -> dict:
    """--resume: the corpus must be the text the run started on (sha256 in ``corpus.json``);
    returns its stamp with the file's size and modification time now."""
    from ..data.windows import file_sha256

    path = Path(source["path"])
    try:
        digest = file_sha256(path)
    except OSError as exc:
        raise CorpusError(f"{path}: the run's corpus cannot be read ({exc.strerror}); the run's checkpoint "
                          "is kept") from None
    if digest != source.get("sha256"):
        raise CorpusError(f"{path}: the corpus file changed since the run started (sha256 differs from "
                          f"{meta_path}); the run's checkpoint is kept: resume with the original text, or "
                          "start again with --overwrite")
    st = path.stat()
    return {**source, "size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns)}


def _temporary_ids_file(run_path: Path) -> Path:
    """A new file beside the run directory (same file system) for the token ids, moved in once
    the run directory is set up."""
    parent = run_path.resolve().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{run_path.name}.", suffix=".ids.tmp", dir=parent)
    except OSError as exc:
        raise CorpusError(f"{parent}: cannot write the corpus's token-id file ({exc.strerror})") from None
    os.close(fd)
    return Path(name)
