#!/usr/bin/env python
"""paddle_hsoftmax word2vec vs gensim Word2Vec(sg=1, hs=1, negative=0), same corpus and settings.

One run, one machine, contenders one after the other (never two at once on the 2 cores):

- English: gensim's shipped ``lee_background.cor`` plus the 106-article Wikipedia sample
  (``WikiCorpus``), tokenised once with ``gensim.utils.simple_preprocess`` and written to one file
  both contenders read (lines cut at 10,000 tokens, gensim's sentence limit, so neither truncates).
  Quality: WordSim353 Spearman and Google-analogy accuracy (top 30,000 words), with the same
  evaluation code for both (``paddle_hsoftmax.evaluate``, which matches gensim's own evaluators);
  ``--seeds`` runs per contender, mean and spread reported.
- People's Daily 1998-01 (tags stripped), speed only (no Chinese similarity set ships offline),
  plus our Huffman vs balanced tree: median training-time ratio against mean-path-length ratio.

Speed: words/s = raw corpus tokens x epochs / wall-clock seconds, both for the whole process
(start to exit: imports, reading, vocabulary, training, saving) and for training alone (as each
tool reports it). Prints a table, writes JSON.

    python scripts/compare_gensim.py --json runs/compare_gensim.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

GENSIM_RUN = r"""
import json, sys, time
t0 = time.perf_counter()
from gensim.models import Word2Vec
corpus, out, seed, workers, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
sentences = [line.split() for line in open(corpus, encoding="utf-8") if line.strip()]
model = Word2Vec(sg=1, hs=1, negative=0, vector_size=100, window=5, min_count=5, sample=1e-3,
                 alpha=0.025, min_alpha=0.0001, workers=workers, seed=seed)
t1 = time.perf_counter()
model.build_vocab(sentences)
t2 = time.perf_counter()
model.train(sentences, total_examples=model.corpus_count, epochs=epochs)
t3 = time.perf_counter()
model.wv.save_word2vec_format(out, binary=True)
print(json.dumps({"train_seconds": t3 - t2, "vocab_seconds": t2 - t1, "vocab_size": len(model.wv)}))
"""


def english_corpus(path: Path) -> int:
    from gensim.corpora import WikiCorpus
    from gensim.test.utils import datapath
    from gensim.utils import simple_preprocess

    tokens = 0
    with open(path, "w", encoding="utf-8") as out:
        def emit(toks):
            nonlocal tokens
            for i in range(0, len(toks), 10_000):
                out.write(" ".join(toks[i : i + 10_000]) + "\n")
            tokens += len(toks)

        with open(datapath("lee_background.cor"), encoding="utf-8") as f:
            for line in f:
                toks = simple_preprocess(line)
                if toks:
                    emit(toks)
        wiki = WikiCorpus(datapath("enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"),
                          dictionary={})
        for toks in wiki.get_texts():
            if toks:
                emit(list(toks))
    return tokens


def peoples_daily_corpus(path: Path) -> int:
    from paddle_hsoftmax.data import read_peoples_daily

    tokens = 0
    with open(path, "w", encoding="utf-8") as out:
        for sent in read_peoples_daily():
            out.write(" ".join(w for w, _ in sent) + "\n")
            tokens += len(sent)
    return tokens


def run_ours(corpus: Path, out: Path, seed: int, workers: int, epochs: int, tree: str = "huffman") -> dict:
    cmd = [sys.executable, str(REPO / "train.py"), "word2vec", "--corpus", str(corpus), "--output-dir", str(out),
           "--seed", str(seed), "--workers", str(workers), "--epochs", str(epochs), "--tree", tree,
           "--no-progress", "--overwrite"]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"train.py failed:\n{proc.stderr[-2000:]}")
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    return {"wall_seconds": wall, "train_seconds": metrics["train_wall_seconds"], "vocab_size": metrics["vocab_size"],
            "vectors": str(out / "vectors.bin"), "kernel": metrics["kernel"],
            "mean_path": metrics["information"]["huffman_mean_code_length" if tree == "huffman" else
                                                 "balanced_mean_code_length"]}


def run_gensim(corpus: Path, out: Path, seed: int, workers: int, epochs: int) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    vectors = out / "vectors.bin"
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", GENSIM_RUN, str(corpus), str(vectors), str(seed), str(workers),
                           str(epochs)], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"gensim failed:\n{proc.stderr[-2000:]}")
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    return {"wall_seconds": wall, "train_seconds": report["train_seconds"], "vocab_size": report["vocab_size"],
            "vectors": str(vectors)}


def quality(vectors: str) -> dict:
    from gensim.test.utils import datapath

    from paddle_hsoftmax.evaluate import evaluate_analogy, evaluate_similarity, load_vectors

    words, vecs = load_vectors(vectors)
    sim = evaluate_similarity(words, vecs, datapath("wordsim353.tsv"))
    ana = evaluate_analogy(words, vecs, datapath("questions-words.txt"), restrict=30000)
    return {"wordsim353": sim["spearman"], "wordsim353_pairs": sim["pairs_used"],
            "analogy": ana["accuracy"], "analogy_questions": ana["questions_used"]}


def summary(values):
    values = list(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "sd": sd, "runs": values}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=3, help="runs per contender and corpus")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--json", default="runs/compare_gensim.json")
    p.add_argument("--skip-peoples-daily", action="store_true")
    args = p.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="compare_gensim_"))
    result = {"settings": {"sg": 1, "hs": 1, "negative": 0, "vector_size": 100, "window": 5, "min_count": 5,
                           "sample": 1e-3, "alpha": 0.025, "min_alpha": 0.0001, "epochs": args.epochs,
                           "workers": args.workers},
              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs", "python": platform.python_version(),
              "corpora": {}}
    corpora = {"english": (work / "english.txt", english_corpus)}
    if not args.skip_peoples_daily:
        corpora["peoples_daily"] = (work / "peoples_daily.txt", peoples_daily_corpus)

    for name, (path, build) in corpora.items():
        tokens = build(path)
        words = tokens * args.epochs
        seeds = range(args.seeds)
        rows = {"ours": [], "gensim": []}
        for seed in seeds:
            for who, runner in (("ours", run_ours), ("gensim", run_gensim)):
                r = runner(path, work / f"{name}_{who}_{seed}", seed, args.workers, args.epochs)
                r["words_per_sec_process"] = words / r["wall_seconds"]
                r["words_per_sec_training"] = words / r["train_seconds"]
                if name == "english":
                    r.update(quality(r["vectors"]))
                rows[who].append(r)
                print(f"{name:<14} {who:<7} seed {seed}: {r['words_per_sec_training']:>9,.0f} words/s training, "
                      f"{r['words_per_sec_process']:>9,.0f} whole process"
                      + (f", WS353 {r['wordsim353']:.3f}, analogy {r['analogy']:.3f}" if name == "english" else ""),
                      flush=True)
        entry = {"tokens": tokens}
        for who in rows:
            entry[who] = {k: summary(r[k] for r in rows[who]) for k in rows[who][0]
                          if isinstance(rows[who][0][k], (int, float))}
        entry["speed_ratio_training"] = (entry["ours"]["words_per_sec_training"]["mean"]
                                         / entry["gensim"]["words_per_sec_training"]["mean"])
        entry["speed_ratio_process"] = (entry["ours"]["words_per_sec_process"]["mean"]
                                        / entry["gensim"]["words_per_sec_process"]["mean"])
        if name == "peoples_daily":
            # one balanced-tree run per seed, each right after nothing else: median time ratio
            bal = [run_ours(path, work / f"pd_balanced_{seed}", seed, args.workers, args.epochs, tree="balanced")
                   for seed in seeds]
            huff_t = statistics.median(r["train_seconds"] for r in rows["ours"])
            bal_t = statistics.median(r["train_seconds"] for r in bal)
            entry["huffman_vs_balanced"] = {
                "balanced_train_seconds": [r["train_seconds"] for r in bal],
                "huffman_train_seconds": [r["train_seconds"] for r in rows["ours"]],
                "time_ratio": bal_t / huff_t,
                "path_ratio": bal[0]["mean_path"] / rows["ours"][0]["mean_path"],
            }
        result["corpora"][name] = entry

    print()
    print("| corpus | tokens | contender | words/s (training) | words/s (whole process) | WordSim353 | analogy |")
    print("|---|---|---|---|---|---|---|")
    for name, e in result["corpora"].items():
        for who in ("ours", "gensim"):
            s = e[who]
            q = (f"{s['wordsim353']['mean']:.3f} ± {s['wordsim353']['sd']:.3f} | "
                 f"{s['analogy']['mean']:.3f} ± {s['analogy']['sd']:.3f}") if "wordsim353" in s else "- | -"
            print(f"| {name} | {e['tokens']:,} | {who} | {s['words_per_sec_training']['mean']:,.0f} | "
                  f"{s['words_per_sec_process']['mean']:,.0f} | {q} |")
    for name, e in result["corpora"].items():
        print(f"{name}: ours / gensim speed = {e['speed_ratio_training']:.2f}x training, "
              f"{e['speed_ratio_process']:.2f}x whole process")
        if "huffman_vs_balanced" in e:
            hb = e["huffman_vs_balanced"]
            print(f"{name}: balanced / Huffman training time {hb['time_ratio']:.2f}x, "
                  f"mean path length {hb['path_ratio']:.2f}x")
        if "wordsim353" in e["ours"]:
            d_ws = e["ours"]["wordsim353"]["mean"] - e["gensim"]["wordsim353"]["mean"]
            d_an = e["ours"]["analogy"]["mean"] - e["gensim"]["analogy"]["mean"]
            print(f"{name}: ours - gensim: WordSim353 {d_ws:+.3f}, analogy {d_an:+.3f}")
    if args.json:
        from paddle_hsoftmax.export import atomic_write_text

        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        result["command"] = " ".join(["python"] + sys.argv)
        atomic_write_text(args.json, json.dumps(result, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
