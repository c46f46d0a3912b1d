"""``python train.py predict DIR``: label raw text lines with a trained classifier or tagger.

Reads lines from ``--input FILE`` (or standard input). A classifier writes ``label<TAB>text``
lines (with ``--probabilities``, the label's probability too); a tagger writes one
``token/TAG token/TAG ...`` line per input line (People's Daily's format, which ``train.py tag``
reads back). The run is opened through :class:`~paddle_hsoftmax.rundir.RunDir`, which reads its kind
from ``run.json`` (a run written before the record: from its files). It uses only the run's
``inference/`` export (``paddle.jit.save``), its token index, label or tag names and recorded
settings: no training code and no corpus.

An encoder-decoder (``train.py seq2seq``) writes one translation per input line, decoded as the
run chose (recorded in ``run.json``; ``--decode``: the model reranking retrieved training glosses, or beam search with the
run's beam size; ``auto`` picked the better on validation); ``--beam N`` forces beam search (0 =
greedy). It loads ``checkpoints/best.pdckpt`` (and ``retrieval_memory.tsv``): there is no
``paddle.jit`` export of the decoding loop; the parameters (a safetensors file) are loaded into the
model rebuilt from the run's settings and the saved vocabularies (see
:func:`~paddle_hsoftmax.inference.load_translator`).

Safe on a run someone else wrote: everything it reads is data (safetensors, JSON, text, Paddle's
PIR program JSON and parameter file); a pickle in the run (what version 0.1.0 wrote, or a planted
one) is refused in one line naming it, before anything parses it (exit status 2), and so is a
missing, empty or damaged file.
"""

from __future__ import annotations

import sys

from ..data.text import iter_lines, iter_stream_lines

__all__ = ["add_parser", "run"]


def add_parser(sub):
    p = sub.add_parser("predict", help="label, tag or translate text lines with a trained run")
    p.add_argument("run_dir", help="a `train.py classify`, `train.py tag` or `train.py seq2seq` output directory")
    p.add_argument("--input", default=None, help="text file, one text per line (default: standard input)")
    p.add_argument("--probabilities", action="store_true", help="classifier: also print the label's probability")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--device", default="cpu", help="cpu, gpu or gpu:N (the run's export loads on any of them)")
    p.add_argument("--beam", type=int, default=None,
                   help="seq2seq: beam search of this size instead of the run's default decoding (0 = greedy)")
    p.set_defaults(func=run)
    return p


def run(args) -> int:
    from ..errors import ConfigError
    from ..inference import load_classifier, load_tagger, load_translator
    from ..rundir import RunDir
    from ..runtime import setup

    if args.beam is not None and args.beam < 0:
        raise ConfigError(f"--beam must be >= 0 (0 = greedy), got {args.beam}")
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
    setup(args.device)
    run = RunDir.open(args.run_dir, kinds=("classify", "tag", "seq2seq"))
    run_dir, kind = run.path, run.kind
    if args.input:
        lines = [line for _, line in iter_lines(args.input)]
    else:
        lines = [line for _, line in iter_stream_lines(sys.stdin.buffer, "<stdin>")]
    texts = [line.strip() for line in lines if line.strip()]
    if not texts:
        return 0
    if kind == "classify":
        predict, labels = load_classifier(run_dir)
        ids, probs = predict(texts, args.batch_size)
        for text, i, p in zip(texts, ids, probs):
            extra = f"\t{p[i]:.4f}" if args.probabilities else ""
            print(f"{labels[i]}{extra}\t{text}")
    elif kind == "seq2seq":
        translate, _ = load_translator(run_dir)
        for translation in translate(texts, args.beam, args.batch_size):
            print(translation)
    else:
        predict, _ = load_tagger(run_dir)
        for tokens, tags in predict(texts, args.batch_size):
            print(" ".join(f"{w}/{t}" for w, t in zip(tokens, tags)))
    return 0
