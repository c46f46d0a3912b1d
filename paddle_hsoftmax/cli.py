"""Command line: ``python train.py [COMMAND] ...``.

Commands:
    word2vec  (default) word vectors with hierarchical softmax, on People's Daily unless --corpus.
    demo      a bigram LM with an H-softmax output over a Huffman and a balanced tree.
    classify  an LSTM text classifier on a built-in dataset or TSV / fastText files.
    tag       a BiLSTM (+CRF) sequence tagger on People's Daily (POS, NER, segmentation) or
              CoNLL / word-TAG files.
    predict   label or tag text lines with a trained classifier or tagger (its paddle.jit export).
    lm        an LSTM language model over any output layer (softmax, H-softmax, D-softmax, ...).
    seq2seq   an attention encoder-decoder (Chinese -> English CC-CEDICT glosses, or your pairs), BLEU.
    info      the information table (entropy, Huffman mean code length, log2|V|) of any corpus.

The parser is built inside :func:`main` (nothing happens at import). A
:class:`~paddle_hsoftmax.errors.UserError` (bad input, a bad setting, a run that diverged, a
predicted out-of-memory) exits with status 2 and one line on stderr naming the file (and the line)
or the flag, and the problem; an unpredicted ``MemoryError`` exits with status 1, also on one line.
Any other exception is a bug and keeps its traceback. Set ``PADDLE_HSOFTMAX_DEBUG=1`` to see the
traceback of a one-line error too.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
import time
import warnings
from typing import Optional, Sequence

import numpy as np

from .commands.common import add_settings, load_sentences, read_settings
from .errors import UserError
from .data.vocab import Vocab
from .tree import format_information_table, information_table

__all__ = ["main"]

log = logging.getLogger(__name__)


def _counts(sentences: Sequence[Sequence[str]], min_count: int, source: str) -> np.ndarray:
    """The kept words' counts, most frequent first (the vocabulary a tree would be built on)."""
    return Vocab.build(sentences, min_count=min_count, source=source).counts


def _cmd_info(args) -> int:
    config, _ = read_settings(args)
    sentences, source = load_sentences(config.corpus, config.format)
    counts = _counts(sentences, config.min_count, source)
    info = information_table(counts)
    print(f"corpus: {source} ({counts.sum():,} tokens kept, min_count {config.min_count})")
    print(format_information_table(info))
    if config.json:
        print(json.dumps(info, indent=2))
    return 0


def _cmd_demo(args) -> int:
    from .tasks.bigram import run_bigram_demo
    from .rundir import RunDir
    from .runtime import setup

    config, options = read_settings(args)
    setup(options.device)
    run = RunDir(options.output_dir)
    run.check(resume=False, overwrite=True)  # the demo replaces its own earlier output
    t0 = time.perf_counter()
    sentences, source = load_sentences(config.corpus, config.format)
    print(f"corpus: {source}: {len(sentences):,} sentences, {sum(map(len, sentences)):,} tokens "
          f"({time.perf_counter() - t0:.1f} s to read)")
    print()
    print(f"The seed's table (min_count {config.min_count}, whole corpus):")
    print(format_information_table(information_table(_counts(sentences, config.min_count, source))))
    print()
    print(f"Bigram LM, Embedding({config.dim}) -> HierarchicalSoftmax, {config.epochs} epoch(s), "
          f"batch {config.batch_size}, 90/10 sentence split:")
    run.prepare(resume=False, overwrite=True)
    for tree in config.trees:  # each tree's training is a run of the shared trainer, in OUTPUT_DIR/<tree>
        RunDir(run.file(tree)).prepare(resume=False, overwrite=True)
    run.start("demo", config)
    data, info, results = run_bigram_demo(sentences, config, progress=options.progress, output_dir=str(run.path))
    print(f"  vocabulary {len(data.words):,} (with <unk>), {len(data.train):,} training bigrams")
    print(f"  {'tree':<9} {'mean path':>9} {'computed':>8} {'train s':>8} {'bigrams/s':>10} {'valid ppl':>9} "
          f"{'|sum p - 1|':>11}")
    for r in results:
        print(f"  {r['tree']:<9} {r['mean_path_of_targets']:>9.2f} {r['mean_computed_slots']:>8.2f} "
              f"{r['train_seconds']:>8.2f} "
              f"{r['bigrams_per_sec']:>10,.0f} {r['perplexity']:>9.1f} {r['max_abs_prob_sum_error']:>11.1e}")
    by_tree = {r["tree"]: r for r in results}
    if {"huffman", "balanced"} <= set(by_tree):
        h, b = by_tree["huffman"], by_tree["balanced"]
        print(f"  balanced/Huffman: path length {b['mean_path_of_targets'] / h['mean_path_of_targets']:.2f}x, "
              f"training time {b['train_seconds'] / h['train_seconds']:.2f}x")
    report = {"config": dataclasses.asdict(config), "info": info, "results": results}
    run.write_json("demo.json", report)
    run.finish({"results": results, "info": info})
    print(f"\nwrote {run.file('demo.json')}")
    return 0


def _parser() -> argparse.ArgumentParser:
    from .commands import classify as classify_command
    from .commands import lm as lm_command
    from .commands import predict as predict_command
    from .commands import seq2seq as seq2seq_command
    from .commands import tag as tag_command
    from .commands import word2vec as word2vec_command
    from .pipeline.configs import BigramConfig, InfoConfig

    parser = argparse.ArgumentParser(prog="train.py", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command")
    word2vec_command.add_parser(sub)
    classify_command.add_parser(sub)
    tag_command.add_parser(sub)
    predict_command.add_parser(sub)
    lm_command.add_parser(sub)
    seq2seq_command.add_parser(sub)

    demo = sub.add_parser("demo", help="information table + H-softmax bigram LM, Huffman vs balanced")
    add_settings(demo, BigramConfig, output_dir="runs/demo")
    demo.set_defaults(func=_cmd_demo)

    info = sub.add_parser("info", help="unigram entropy vs Huffman and balanced code lengths")
    add_settings(info, InfoConfig, run=False)
    info.set_defaults(func=_cmd_info)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Parse ``argv`` and run the command; returns the exit status."""
    warnings.filterwarnings("ignore", message="No ccache found")
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0].startswith("-") and argv[0] not in ("-h", "--help"):
        argv = ["word2vec"] + argv
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("paddle_hsoftmax").setLevel(logging.INFO if args.verbose else logging.WARNING)
    try:
        if args.command in ("predict", "demo", "info"):
            from .commands.common import refuse_launcher

            refuse_launcher(args.command)
        return args.func(args)
    except (UserError, MemoryError) as exc:
        # only a UserError (bad input, bad setting, divergence, a predicted out-of-memory) is the
        # user's to fix: one line, exit 2; an unpredicted MemoryError is one line too, exit 1;
        # anything else is a bug and keeps its traceback
        if os.environ.get("PADDLE_HSOFTMAX_DEBUG"):
            raise
        unpredicted = not isinstance(exc, UserError)
        print(f"error: {_one_line(exc, unpredicted)}", file=sys.stderr)
        return 1 if unpredicted else 2


def _one_line(exc: BaseException, out_of_memory: bool = False) -> str:
    """``exc`` as one line for stderr: an ``OSError`` as ``FILE: reason``, an out-of-memory that
    was not predicted named as such, a message of several lines (Paddle's errors carry a C++ stack)
    cut to its first line."""
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    if len(lines) > 1:
        text += " (PADDLE_HSOFTMAX_DEBUG=1 shows the rest)"
    if out_of_memory:
        text = f"out of memory ({text}); PADDLE_HSOFTMAX_DEBUG=1 shows where"
    return text
