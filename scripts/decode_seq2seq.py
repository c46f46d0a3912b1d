#!/usr/bin/env python
"""Decode trained encoder-decoder runs side by side: BLEU, chrF, empty outputs, repeats, seconds.

For each ``train.py seq2seq`` run directory given, loads the saved model (``checkpoints/best.pdckpt``,
as ``train.py predict`` does) and decodes the first ``--max-test`` pairs of ``--part`` of
CC-CEDICT with each ``--beams`` size (0 = greedy) and, with ``--alphas``, each GNMT length
normalisation; scores with sacrebleu (``corpus_bleu``, ``corpus_chrf``) and counts the empty
outputs and those with a word more than three times in a row; ``--rerank N`` also scores
reranking with the weight tuned as training tunes it, on the first N validation pairs. ``--old-rules`` also decodes with
the rules this repository had before (``</s>`` allowed first, no repeat limit: ``min_len = 0``,
``max_repeat = 0``). Runs are decoded one after another in one process, so the seconds compare.

    python scripts/decode_seq2seq.py runs/cedict --beams 0 5 --max-test 3000 --json runs/decode.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings

warnings.filterwarnings("ignore", message="No ccache found")

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from paddle_hsoftmax.data.parallel import cedict_pairs  # noqa: E402
from paddle_hsoftmax.export import atomic_write_text  # noqa: E402
from paddle_hsoftmax.inference import open_translator  # noqa: E402
from paddle_hsoftmax.pipeline.translate import bleu_chrf  # noqa: E402


def longest_run(words) -> int:
    best = run = 0
    for i, w in enumerate(words):
        run = run + 1 if i and w == words[i - 1] else 1
        best = max(best, run)
    return best


def decode(translator, sources, beam: int, alpha: float, old_rules: bool):
    model, config = translator.model, translator.config
    saved = config.alpha, config.max_repeat
    config.alpha = alpha
    if old_rules:  # the former search: </s> may come first, no repeat limit
        config.max_repeat = 0
        greedy, beam_search = model.greedy, model.beam_search
        model.greedy = lambda *a, **kw: greedy(*a, **{**kw, "min_len": 0})
        model.beam_search = lambda *a, **kw: beam_search(*a, **{**kw, "min_len": 0})
    try:
        start = time.perf_counter()
        hyps = translator.translate(sources, beam)
        return hyps, time.perf_counter() - start
    finally:
        config.alpha, config.max_repeat = saved
        if old_rules:
            del model.greedy, model.beam_search


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", help="train.py seq2seq output directories")
    p.add_argument("--part", default="test", choices=("valid", "test"))
    p.add_argument("--skip", type=int, default=0, help="start after the first N pairs of --part")
    p.add_argument("--max-test", type=int, default=3000, help="pairs decoded (0 = all)")
    p.add_argument("--beams", type=int, nargs="+", default=[0, 5], help="beam sizes (0 = greedy)")
    p.add_argument("--alphas", type=float, nargs="+", default=None, help="length normalisations (default: the run's)")
    p.add_argument("--old-rules", action="store_true", help="also decode with min_len 0 and no repeat limit")
    p.add_argument("--dense-too", action="store_true",
                   help="also decode ranking every word of every beam (dense_decoding: the reference path)")
    p.add_argument("--rerank", type=int, default=0,
                   help="also rerank retrieved glosses, the weight tuned on the first N validation pairs")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    pairs = cedict_pairs()[args.part][args.skip:][: args.max_test or None]
    sources, refs = [s for s, _ in pairs], [t for _, t in pairs]
    rows = []
    for run in args.runs:
        translator, _, _, config = open_translator(run)
        for dense, rules in [(d, r) for d in ([False, True] if args.dense_too else [False])
                             for r in ([False, True] if args.old_rules else [False])]:
            translator.model.dense_decoding = dense
            for beam in args.beams:
                for alpha in (args.alphas or [config.alpha]) if beam else [config.alpha]:
                    hyps, seconds = decode(translator, sources, beam, alpha, rules)
                    row = {"run": run, "output": config.output, "dense": dense, "beam": beam, "alpha": alpha if beam else None,
                           "rules": "old" if rules else "new", **bleu_chrf(hyps, refs), "seconds": seconds,
                           "empty": sum(not h for h in hyps), "repeats_over_3": sum(longest_run(h) > 3 for h in hyps),
                           "mean_words": sum(map(len, hyps)) / max(len(hyps), 1), "items": len(hyps),
                           "examples": {"".join(s): " ".join(h) for s, h in zip(sources[:10], hyps[:10])}}
                    rows.append(row)
                    print(f"{run} {config.output}{' dense' if dense else ''} {row['rules']} rules, {'beam ' + str(beam) if beam else 'greedy'}"
                          f"{f' alpha {alpha:g}' if beam else ''}: BLEU {row['bleu']:.2f} chrF {row['chrf']:.2f}, "
                          f"{row['empty']} empty, {row['repeats_over_3']} with a word > 3 times in a row, "
                          f"{row['mean_words']:.2f} words, {seconds:.1f} s", flush=True)
        if args.rerank:  # the weight tuned as training does (best BLEU, paired bootstrap against weight 0)
            from paddle_hsoftmax.rerank import Reranker

            valid = cedict_pairs()["valid"][: args.rerank]
            reranker = Reranker(translator, translator.retriever.pairs, config.candidates)
            weight, table = reranker.tune([s for s, _ in valid], [t for _, t in valid])
            candidates = reranker.candidates(sources)
            for name, w in (("rerank", weight), ("retrieval alone", 0.0)):
                hyps = reranker.decode(sources, w, config.beam_size, candidates)
                row = {"run": run, "output": config.output, "decoding": name, "weight": w, **bleu_chrf(hyps, refs),
                       "valid_bleu_by_weight": table, "p_value_against_retrieval": reranker.p_value,
                       "empty": sum(not h for h in hyps), "items": len(hyps)}
                rows.append(row)
                print(f"{run} {config.output} {name} (weight {w:g}, tuned on {len(valid)} validation pairs): "
                      f"BLEU {row['bleu']:.2f} chrF {row['chrf']:.2f}, {row['empty']} empty", flush=True)
    if args.json:
        atomic_write_text(args.json, json.dumps({"settings": vars(args), "rows": rows}, indent=2, ensure_ascii=False))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
