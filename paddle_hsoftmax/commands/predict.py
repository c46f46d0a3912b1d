"""``python train.py predict DIR``: label raw text lines with a trained classifier.

Reads lines from ``--input FILE`` (or standard input) and writes ``label<TAB>text`` lines (or,
with ``--probabilities``, the label's probability too). It uses only ``DIR/inference/`` (the
``paddle.jit.save`` export), ``DIR/tokens.txt``, ``DIR/labels.txt`` and ``DIR/config.json``: no
training code and no corpus.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ..data import CorpusError
from ..data.text import iter_lines

__all__ = ["add_parser", "run", "load_classifier"]


def add_parser(sub):
    p = sub.add_parser("predict", help="label text lines with a trained classifier")
    p.add_argument("run_dir", help="a `train.py classify` output directory")
    p.add_argument("--input", default=None, help="text file, one text per line (default: standard input)")
    p.add_argument("--probabilities", action="store_true", help="also print the label's probability")
    p.add_argument("--batch-size", type=int, default=128)
    p.set_defaults(func=run)
    return p


def load_classifier(run_dir: Path):
    """``(predict_fn, labels)``: predict_fn(list of texts) -> (label ids, probabilities [N, C])."""
    import paddle

    from ..data.vocab import TokenIndex
    from ..tasks.classify import ClassifyTask, tokenize_text

    for name in ("tokens.txt", "labels.txt", "config.json"):
        if not (run_dir / name).exists():
            raise CorpusError(f"{run_dir}: not a finished classify run (missing {name})")
    if not list((run_dir / "inference").glob("model.*")):
        raise CorpusError(f"{run_dir}: no inference/ export (paddle.jit.save) in this run")
    config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    vocab = TokenIndex.load(run_dir / "tokens.txt")
    labels = (run_dir / "labels.txt").read_text(encoding="utf-8").split("\n")[:-1]
    model = paddle.jit.load(str(run_dir / "inference" / "model"))
    model.eval()

    def predict(texts, batch_size=128):
        seqs = [vocab.encode(tokenize_text(t, config["tokenizer"])[: config["max_len"]]) for t in texts]
        seqs = [s if len(s) else np.array([TokenIndex.UNK]) for s in seqs]
        probs = np.zeros((len(seqs), len(labels)), dtype=np.float32)
        for start in range(0, len(seqs), batch_size):
            tokens, lengths = ClassifyTask.pad(seqs[start : start + batch_size])
            out = model(paddle.to_tensor(tokens), paddle.to_tensor(lengths))
            probs[start : start + batch_size] = np.exp(out.numpy())
        return probs.argmax(axis=1), probs

    return predict, labels


def run(args) -> int:
    run_dir = Path(args.run_dir)
    predict, labels = load_classifier(run_dir)
    if args.input:
        lines = [line for _, line in iter_lines(args.input)]
    else:
        lines = sys.stdin.read().splitlines()
    texts = [line.strip() for line in lines if line.strip()]
    if not texts:
        return 0
    ids, probs = predict(texts, args.batch_size)
    for text, i, p in zip(texts, ids, probs):
        extra = f"\t{p[i]:.4f}" if args.probabilities else ""
        print(f"{labels[i]}{extra}\t{text}")
    return 0
