#!/usr/bin/env python
"""The fused word2vec kernel against gensim's training loop, in one process, without our trainer.

Both train ``--model`` (skip-gram) with ``--loss`` (hs: hierarchical softmax; ns: negative
sampling, 5 draws) on the same People's Daily vocabulary for ``--epochs`` epochs with 1 and with 2
threads (gensim ``workers``; our kernel's OpenMP threads), the contenders alternating. Timed:
gensim's ``Word2Vec.train`` and our loop ``epoch_batches`` + ``train_step`` (reading the token
stream and the kernel's own subsampling and windows included; evaluation, checkpoints and logging
excluded). Words/s = raw corpus tokens x epochs / seconds.
This isolates the kernel from the process start-up and the trainer around it that
``compare_gensim.py`` includes. Prints a table, writes JSON.

    python scripts/kernel_vs_gensim.py --json runs/kernel_vs_gensim.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--model", choices=("skipgram", "cbow"), default="skipgram")
    p.add_argument("--loss", choices=("hs", "ns"), default="hs")
    p.add_argument("--threads", default="1,2")
    p.add_argument("--json", default="runs/kernel_vs_gensim.json")
    args = p.parse_args(argv)
    logging.getLogger("gensim").setLevel(logging.WARNING)

    from gensim.models import Word2Vec as GensimWord2Vec

    from paddle_hsoftmax.data import read_peoples_daily
    from paddle_hsoftmax.data.vocab import Vocab
    from paddle_hsoftmax.data.windows import EncodedCorpus
    from paddle_hsoftmax.runtime import tune_malloc
    from paddle_hsoftmax.tasks import Word2VecConfig, Word2VecTask

    tune_malloc()
    sentences = [[w for w, _ in s] for s in read_peoples_daily()]
    tokens = sum(map(len, sentences))
    words = tokens * args.epochs
    vocab = Vocab.build(sentences, min_count=5)
    corpus = EncodedCorpus.encode(sentences, vocab)
    rows = []
    sg, hs = int(args.model == "skipgram"), int(args.loss == "hs")
    for threads in [int(t) for t in args.threads.split(",")]:
        model = GensimWord2Vec(sg=sg, hs=hs, negative=0 if hs else 5, vector_size=100, window=5, min_count=5,
                               workers=threads, seed=0, alpha=0.025)
        model.build_vocab(sentences)
        t0 = time.perf_counter()
        model.train(sentences, total_examples=model.corpus_count, epochs=args.epochs)
        gensim_s = time.perf_counter() - t0

        task = Word2VecTask(Word2VecConfig(workers=threads, kernel="fused", model=args.model, loss=args.loss, lr=0.025,
                                           epochs=args.epochs), vocab, corpus)
        total = task.units_per_epoch() * args.epochs
        done = 0.0
        t0 = time.perf_counter()
        for epoch in range(args.epochs):
            for batch in task.epoch_batches(epoch):
                task.set_learning_rate(task.learning_rate(done / total))
                done += task.train_step(batch).units
        ours_s = time.perf_counter() - t0
        rows.append({"threads": threads, "gensim_words_per_sec": words / gensim_s,
                     "ours_words_per_sec": words / ours_s, "ratio": gensim_s / ours_s})
        print(f"threads {threads}: gensim {words / gensim_s:,.0f} words/s, ours {words / ours_s:,.0f} words/s, "
              f"ours/gensim {gensim_s / ours_s:.2f}x", flush=True)
    result = {"corpus": "People's Daily 1998-01", "tokens": tokens, "epochs": args.epochs, "rows": rows,
              "model": args.model, "loss": args.loss, "load_average": os.getloadavg()[0],
              "machine": f"{os.cpu_count()} CPUs (shared)", "command": " ".join(["python"] + sys.argv)}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2), encoding="utf-8")
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
