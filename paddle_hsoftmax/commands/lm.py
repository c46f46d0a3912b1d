"""``python train.py lm``: an LSTM language model over a chosen output layer, with perplexity.

On People's Daily (default) or ``--corpus FILE`` (whitespace tokens, or ``--format tagged``
word/TAG lines), split by sentences: shuffle with ``random.Random(0)``, 10% test, 10% valid, the
rest train; or your own split, ``--train-file``, ``--valid-file``, ``--test-file`` (read the same way). Settings: :class:`~paddle_hsoftmax.pipeline.configs.LMConfig`. Outputs in
``--output-dir``: ``run.json``, ``metrics.json`` (valid/test perplexity, tokens/s, epoch time,
parameter counts), ``vocab.tsv``, ``config.json``, ``checkpoints/``
(best by validation perplexity) and ``vdl/``.
"""

from __future__ import annotations

import dataclasses
import json
import time

from ..pipeline.configs import LMConfig
from .common import add_settings, check_run, load_sentences, read_settings, start_run, trainer_config

__all__ = ["add_parser", "run"]


def add_parser(sub):
    p = sub.add_parser("lm", help="LSTM language model: softmax / H-softmax / D-softmax / CNN-softmax / adaptive")
    add_settings(p, LMConfig)
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..data.datasets import split_811
    from ..tasks.lm import LMTask, sample_prompts
    from ..trainer import Trainer

    start = time.perf_counter()
    config, options = read_settings(args)
    run_dir = check_run("lm", config, options)
    if config.train:  # the user's own split
        splits = {part: load_sentences(getattr(config, part), config.format)[0] for part in ("train", "valid", "test")}
        source = config.train
    else:
        sentences, source = load_sentences(config.corpus, config.format)
        splits = split_811(sentences)
    task = LMTask(config, splits)
    start_run(run_dir, "lm", config, options)
    params = task.parameter_counts()
    print(f"data: {source}: " + ", ".join(f"{k} {len(task.streams[k]):,} tokens" for k in ("train", "valid", "test"))
          + f"; vocabulary {len(task.vocab):,} (min_count {config.min_count}, with <unk> and </s>)")
    tree = f", {config.tree} tree (mean path {task.tree.mean_code_length(task.vocab.counts):.2f})" if task.tree else ""
    print(f"model: LSTM {config.num_layers}x{config.hidden_size} -> {config.output}{tree}; "
          f"{params['parameters']:,} parameters, {params['output_parameters']:,} in the output layer")
    trainer = Trainer(trainer_config(run_dir, config, options))
    metrics = trainer.fit(task)
    if trainer.rank != 0:  # data parallel: rank 0 alone tests, exports and writes the run's files
        return 0
    trainer.load_best(task)
    valid, test = task.scores("valid"), task.scores("test")
    epochs_run = max(trainer.state.epoch, 1)
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
    prompts = sample_prompts(splits["test"] or splits["valid"], seed=config.seed, vocab=task.vocab)  # the user's text
    metrics["next_word_examples"] = {ctx: task.top_k(ctx.split(), 5) for ctx in prompts}
    if config.generate:
        starts = sample_prompts(splits["test"] or splits["valid"], n=config.generate, seed=config.seed,
                                vocab=task.vocab)
        texts = task.continue_text([p.split() for p in starts], seed=config.seed + 1)
        metrics["generated"] = [{"prompt": p, "continuation": t} for p, t in zip(starts, texts)]
    task.vocab.save_tsv(run_dir.file("vocab.tsv"))
    run_dir.write_text("config.json", json.dumps(dataclasses.asdict(config), indent=2))
    run_dir.finish(metrics, chosen={"best_epoch": metrics["best_epoch"]})
    print(f"best epoch {metrics['best_epoch']}: valid perplexity {valid['ppl']:.1f}, test perplexity "
          f"{test['ppl']:.1f}; {metrics['tokens_per_sec']:,.0f} tokens/s, {metrics['epoch_seconds']:.0f} s per epoch")
    for ctx, top in metrics["next_word_examples"].items():
        print(f"  {ctx} -> " + " ".join(f"{w} ({p:.3f})" for w, p in top))
    if metrics.get("generated"):
        print(f"{len(metrics['generated'])} continuation(s) sampled from the model:")
        for g in metrics["generated"]:
            print(f"  {g['prompt']} | {g['continuation']}")
    print(f"wrote {run_dir.path}/metrics.json, run.json, vocab.tsv, config.json, checkpoints/, vdl/")
    return 0
