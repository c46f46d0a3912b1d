#!/usr/bin/env python
"""paddle_hsoftmax word2vec vs gensim Word2Vec and fastText, HS and NS, same corpus and settings.

One run, one machine, contenders one after the other (never two at once on the 2 cores), their
order alternating from seed to seed; each contender in its own process (peak RSS from ``wait4``):

- settings: skip-gram and CBOW, ``hs`` (gensim ``hs=1, negative=0``; fastText ``-loss hs``) and
  ``ns`` (gensim ``hs=0, negative=5``; fastText ``-loss ns -neg 5``); fastText without subword
  n-grams (``minn = maxn = 0``, ``bucket = 0``); the same alpha for all (``--alpha``);

- English: gensim's shipped ``lee_background.cor`` plus the 106-article Wikipedia sample
  (``WikiCorpus``), tokenised once with ``gensim.utils.simple_preprocess`` and written to one file
  both contenders read (lines cut at 10,000 tokens, gensim's sentence limit, so neither truncates).
  Quality: WordSim353 and SimLex-999 Spearman and Google-analogy accuracy (top 30,000 words), with the same
  evaluation code for both (``paddle_hsoftmax.evaluate``, which matches gensim's own evaluators);
  ``--seeds`` runs per contender, mean and spread reported.
- People's Daily 1998-01 (tags stripped), speed only (no Chinese similarity set ships offline);
  ``--balanced``: our Huffman vs balanced tree, median training-time ratio against path ratio.
- ``--repeat N``: each corpus N times over (memory: ``--repeat 10 --epochs 1 --gensim-input linesentence``).

Speed: words/s = raw corpus tokens x epochs / wall-clock seconds, both for the whole process
(start to exit: imports, reading, vocabulary, training, saving) and for training alone (as each
tool reports it). Prints a table, writes JSON.

    flock /tmp/bench.lock python scripts/compare_gensim.py --json runs/compare_gensim.json
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
from gensim.models.word2vec import LineSentence
corpus, out, seed, workers, epochs, sg, loss, alpha, source = sys.argv[1:10]
sg, hs = int(sg), int(loss == "hs")
if source == "linesentence":  # streamed from the file every epoch
    sentences = LineSentence(corpus)
else:  # read into a list first
    sentences = [line.split() for line in open(corpus, encoding="utf-8") if line.strip()]
model = Word2Vec(sg=sg, hs=hs, negative=0 if hs else 5, vector_size=100, window=5, min_count=5, sample=1e-3,
                 alpha=float(alpha), min_alpha=0.0001, workers=int(workers), seed=int(seed))
t1 = time.perf_counter()
model.build_vocab(sentences)
t2 = time.perf_counter()
model.train(sentences, total_examples=model.corpus_count, epochs=int(epochs))
t3 = time.perf_counter()
model.wv.save_word2vec_format(out, binary=True)
print(json.dumps({"train_seconds": t3 - t2, "vocab_seconds": t2 - t1, "vocab_size": len(model.wv)}))
"""

# fastText's own loop: -loss hs|ns, no subword n-grams (minn = maxn = 0, bucket 0: no hash rows),
# the same window, dimension, min_count, sample, alpha and epochs; its timing includes its own
# reading of the file (it builds the vocabulary inside train_unsupervised)
FASTTEXT_RUN = r"""
import json, sys, time
import fasttext
corpus, out, seed, workers, epochs, sg, loss, alpha = sys.argv[1:9]
t0 = time.perf_counter()
model = fasttext.train_unsupervised(corpus, model="skipgram" if int(sg) else "cbow", loss=loss, dim=100, ws=5,
                                    minCount=5, minn=0, maxn=0, wordNgrams=1, bucket=0, neg=5, t=1e-3,
                                    lr=float(alpha), epoch=int(epochs), thread=int(workers), verbose=0)
t1 = time.perf_counter()
words = model.get_words()
with open(out, "w", encoding="utf-8") as f:
    f.write(f"{len(words)} 100\n")
    for w in words:
        f.write(w + " " + " ".join(f"{x:.6f}" for x in model.get_word_vector(w)) + "\n")
print(json.dumps({"train_seconds": t1 - t0, "vocab_size": len(words)}))
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


def _run(cmd, cwd=None) -> tuple:
    """Run ``cmd`` under ``/usr/bin/time``; ``(wall seconds, peak RSS of that process in MiB,
    stdout)``. (Not ``wait4``'s usage: Linux carries a process's peak RSS across ``exec``, so a
    child forked from this script would report at least this script's own peak.)"""
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-f", "__maxrss_kb=%M"] + cmd, capture_output=True, text=True, cwd=cwd)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[:3]} failed:\n{proc.stderr[-2000:]}")
    marks = [line for line in proc.stderr.splitlines() if line.startswith("__maxrss_kb=")]
    rss = int(marks[-1].split("=")[1]) / 1024.0 if marks else float("nan")
    return wall, rss, proc.stdout


def run_ours(corpus: Path, out: Path, seed: int, workers: int, epochs: int, tree: str = "huffman", model="skipgram",
             loss="hs", alpha=0.025, **_) -> dict:
    cmd = [sys.executable, str(REPO / "train.py"), "word2vec", "--corpus", str(corpus), "--output-dir", str(out),
           "--seed", str(seed), "--workers", str(workers), "--epochs", str(epochs), "--tree", tree,
           "--model", model, "--loss", loss, "--lr", str(alpha), "--no-progress", "--overwrite"]
    wall, rss, _ = _run(cmd, cwd=REPO)
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    return {"wall_seconds": wall, "peak_rss_mib": rss, "train_seconds": metrics["train_wall_seconds"],
            "vocab_size": metrics["vocab_size"], "vectors": str(out / "vectors.bin"), "kernel": metrics["kernel"],
            "mean_path": metrics["information"]["huffman_mean_code_length" if tree == "huffman" else
                                                 "balanced_mean_code_length"]}


def run_gensim(corpus: Path, out: Path, seed: int, workers: int, epochs: int, model="skipgram", loss="hs",
               alpha=0.025, gensim_input="list", **_) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    vectors = out / "vectors.bin"
    wall, rss, stdout = _run([sys.executable, "-c", GENSIM_RUN, str(corpus), str(vectors), str(seed), str(workers),
                              str(epochs), str(int(model == "skipgram")), loss, str(alpha), gensim_input])
    report = json.loads(stdout.strip().splitlines()[-1])
    return {"wall_seconds": wall, "peak_rss_mib": rss, "train_seconds": report["train_seconds"],
            "vocab_size": report["vocab_size"], "vectors": str(vectors)}


def run_fasttext(corpus: Path, out: Path, seed: int, workers: int, epochs: int, model="skipgram", loss="hs",
                 alpha=0.025, **_) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    vectors = out / "vectors.txt"
    wall, rss, stdout = _run([sys.executable, "-c", FASTTEXT_RUN, str(corpus), str(vectors), str(seed), str(workers),
                              str(epochs), str(int(model == "skipgram")), loss, str(alpha)])
    report = json.loads(stdout.strip().splitlines()[-1])
    return {"wall_seconds": wall, "peak_rss_mib": rss, "train_seconds": report["train_seconds"],
            "vocab_size": report["vocab_size"], "vectors": str(vectors)}


RUNNERS = {"ours": run_ours, "gensim": run_gensim, "fasttext": run_fasttext}


def quality(vectors: str) -> dict:
    from gensim.test.utils import datapath

    from paddle_hsoftmax.evaluate import evaluate_analogy, evaluate_similarity, load_vectors

    words, vecs = load_vectors(vectors)
    sim = evaluate_similarity(words, vecs, datapath("wordsim353.tsv"))
    simlex = evaluate_similarity(words, vecs, datapath("simlex999.txt"))
    ana = evaluate_analogy(words, vecs, datapath("questions-words.txt"), restrict=30000)
    return {"wordsim353": sim["spearman"], "wordsim353_pairs": sim["pairs_used"],
            "simlex999": simlex["spearman"], "simlex999_pairs": simlex["pairs_used"],
            "analogy": ana["accuracy"], "analogy_questions": ana["questions_used"]}


def summary(values):
    values = list(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return {"mean": statistics.fmean(values), "sd": sd, "runs": values}


def repeated(path: Path, times: int) -> Path:
    """``path`` written ``times`` times one after the other (a bigger corpus, same vocabulary)."""
    if times <= 1:
        return path
    big = path.with_name(f"{path.stem}_x{times}{path.suffix}")
    data = path.read_bytes()
    with open(big, "wb") as f:
        for _ in range(times):
            f.write(data)
    return big


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seeds", type=int, default=2, help="runs per contender, corpus and setting")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--json", default="runs/compare_gensim.json")
    p.add_argument("--corpora", default="english,peoples_daily")
    p.add_argument("--contenders", default="ours,gensim,fasttext")
    p.add_argument("--models", default="skipgram,cbow")
    p.add_argument("--losses", default="hs,ns")
    p.add_argument("--alpha", type=float, default=0.025, help="the same initial alpha for every contender")
    p.add_argument("--repeat", type=int, default=1, help="each corpus this many times over (memory runs)")
    p.add_argument("--gensim-input", choices=("list", "linesentence"), default="list",
                   help="gensim reads a list of sentences built first, or streams the file (LineSentence)")
    p.add_argument("--no-quality", action="store_true", help="speed and memory only")
    p.add_argument("--balanced", action="store_true", help="also time our balanced tree on People's Daily")
    args = p.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="compare_gensim_"))
    result = {"settings": {"vector_size": 100, "window": 5, "min_count": 5, "sample": 1e-3, "alpha": args.alpha,
                           "min_alpha": 0.0001, "negative (ns)": 5, "epochs": args.epochs, "workers": args.workers,
                           "repeat": args.repeat, "gensim_input": args.gensim_input},
              "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared with other jobs)",
              "python": platform.python_version(), "corpora": {}}
    builders = {"english": english_corpus, "peoples_daily": peoples_daily_corpus}
    who_all = args.contenders.split(",")
    for name in args.corpora.split(","):
        path = work / f"{name}.txt"
        tokens = builders[name](path) * args.repeat
        path = repeated(path, args.repeat)
        words = tokens * args.epochs
        entry = result["corpora"].setdefault(name, {"tokens": tokens, "settings": {}})
        for model in args.models.split(","):
            for loss in args.losses.split(","):
                key = f"{model}/{loss}"
                rows = {who: [] for who in who_all}
                for seed in range(args.seeds):
                    # contenders alternate: a change of machine load hits them alike
                    order = who_all if seed % 2 == 0 else who_all[::-1]
                    for who in order:
                        load = os.getloadavg()[0]
                        r = RUNNERS[who](path, work / f"{name}_{model}_{loss}_{who}_{seed}", seed, args.workers,
                                         args.epochs, model=model, loss=loss, alpha=args.alpha,
                                         gensim_input=args.gensim_input)
                        r["load_before"] = load
                        r["words_per_sec_process"] = words / r["wall_seconds"]
                        r["words_per_sec_training"] = words / r["train_seconds"]
                        if name == "english" and not args.no_quality:
                            r.update(quality(r["vectors"]))
                        rows[who].append(r)
                        q = (f", WS353 {r['wordsim353']:.3f}, SimLex {r['simlex999']:.3f}, analogy {r['analogy']:.3f}"
                             if "wordsim353" in r else "")
                        print(f"{name:<14} {key:<12} {who:<8} seed {seed}: {r['words_per_sec_training']:>9,.0f} "
                              f"words/s training, {r['words_per_sec_process']:>9,.0f} whole process, "
                              f"peak RSS {r['peak_rss_mib']:,.0f} MiB, load {load:.1f}{q}", flush=True)
                e = {who: {k: summary(r[k] for r in rows[who]) for k in rows[who][0]
                           if isinstance(rows[who][0][k], (int, float))} for who in who_all}
                for who in who_all:
                    if who != "ours" and "ours" in e:
                        for kind in ("training", "process"):
                            e[f"ours_vs_{who}_{kind}"] = (e["ours"][f"words_per_sec_{kind}"]["mean"]
                                                          / e[who][f"words_per_sec_{kind}"]["mean"])
                entry["settings"][key] = e
        if args.balanced and name == "peoples_daily":
            bal = [run_ours(path, work / f"pd_balanced_{seed}", seed, args.workers, args.epochs, tree="balanced",
                            alpha=args.alpha) for seed in range(args.seeds)]
            huff = [run_ours(path, work / f"pd_huffman_{seed}", seed, args.workers, args.epochs, alpha=args.alpha)
                    for seed in range(args.seeds)]
            entry["huffman_vs_balanced"] = {
                "balanced_train_seconds": [r["train_seconds"] for r in bal],
                "huffman_train_seconds": [r["train_seconds"] for r in huff],
                "time_ratio": statistics.median(r["train_seconds"] for r in bal)
                / statistics.median(r["train_seconds"] for r in huff),
                "path_ratio": bal[0]["mean_path"] / huff[0]["mean_path"],
            }

    print()
    print("| corpus | tokens | model / loss | contender | words/s (training) | words/s (whole process) | peak RSS MiB "
          "| WordSim353 | SimLex999 | analogy |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, entry in result["corpora"].items():
        for key, e in entry["settings"].items():
            for who in who_all:
                s = e[who]
                q = " | ".join(f"{s[m]['mean']:.3f} ± {s[m]['sd']:.3f}" if m in s else "-"
                               for m in ("wordsim353", "simlex999", "analogy"))
                print(f"| {name} | {entry['tokens']:,} | {key} | {who} | {s['words_per_sec_training']['mean']:,.0f} | "
                      f"{s['words_per_sec_process']['mean']:,.0f} | {s['peak_rss_mib']['mean']:,.0f} | {q} |")
    for name, entry in result["corpora"].items():
        for key, e in entry["settings"].items():
            for who in who_all:
                if who == "ours" or "ours" not in e:
                    continue
                line = (f"{name} {key}: ours / {who} speed = {e[f'ours_vs_{who}_training']:.2f}x training, "
                        f"{e[f'ours_vs_{who}_process']:.2f}x whole process")
                if "wordsim353" in e["ours"]:
                    line += ", quality ours - {}: ".format(who) + ", ".join(
                        f"{m} {e['ours'][m]['mean'] - e[who][m]['mean']:+.3f}" for m in ("wordsim353", "simlex999", "analogy"))
                print(line)
        if "huffman_vs_balanced" in entry:
            hb = entry["huffman_vs_balanced"]
            print(f"{name}: balanced / Huffman training time {hb['time_ratio']:.2f}x, mean path length {hb['path_ratio']:.2f}x")
    if args.json:
        from paddle_hsoftmax.export import atomic_write_text

        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        result["command"] = " ".join(["python"] + sys.argv)
        atomic_write_text(args.json, json.dumps(result, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
