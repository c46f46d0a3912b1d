"""``python train.py predict DIR``: label raw text lines with a trained classifier or tagger.

Reads lines from ``--input FILE`` (or standard input). A classifier writes ``label<TAB>text``
lines (with ``--probabilities``, the label's probability too); a tagger writes one
``token/TAG token/TAG ...`` line per input line (People's Daily's format, which ``train.py tag``
reads back). The run is opened through :class:`~paddle_hsoftmax.rundir.RunDir`, which reads its kind
from ``run.json`` (a run written before the record: from its files). It uses only the run's
``inference/`` export (``paddle.jit.save``), its token index, label or tag names and recorded
settings: no training code and no corpus.

An encoder-decoder (``train.py seq2seq``) writes one translation per input line (an empty line for
a blank one, with one warning line on stderr; so is a line longer than the run's
``--max-source-len``, translated from its first tokens), decoded as the
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
    from ..inference import load_classifier, load_tagger
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
        numbered = list(iter_lines(args.input))
    else:
        numbered = list(iter_stream_lines(sys.stdin.buffer, "<stdin>"))
    if kind == "seq2seq":
        return _translate(run_dir, numbered, args)
    texts = [line.strip() for _, line in numbered if line.strip()]
    if not texts:
        return 0
    if kind == "classify":
        predict, labels = load_classifier(run_dir)
        ids, probs = predict(texts, args.batch_size)
        for text, i, p in zip(texts, ids, probs):
            extra = f"\t{p[i]:.4f}" if args.probabilities else ""
            print(f"{labels[i]}{extra}\t{text}")
    else:
        predict, _ = load_tagger(run_dir)
        for tokens, tags in predict(texts, args.batch_size):
            print(" ".join(f"{w}/{t}" for w, t in zip(tokens, tags)))
    return 0


def _translate(run_dir, numbered, args) -> int:
    """One translation per input line, blank lines included (an empty line for each, so the
    output stays aligned with the input); one stderr warning line each for blank lines and for
    lines longer than the run's ``--max-source-len`` (translated from their first tokens). A line
    sharing no character with the training sources (punctuation only, unknown characters) has no
    retrieved gloss: it gets beam search's output (see :meth:`~paddle_hsoftmax.rerank.Reranker.decode`)."""
    from ..data.text import tokenize
    from ..inference import load_translator

    translate, config = load_translator(run_dir)
    where = args.input or "<stdin>"
    texts = [line.strip() for _, line in numbered]
    blank = [n for (n, _), t in zip(numbered, texts) if not t]
    tokens = {i: tokenize(t, config.source_tokenizer) for i, t in enumerate(texts) if t}
    long = [numbered[i][0] for i, toks in tokens.items() if len(toks) > config.max_source_len]

    def lines(numbers):
        shown = ", ".join(map(str, numbers[:5]))
        return f"line{'s' if len(numbers) > 1 else ''} {shown}{', ...' if len(numbers) > 5 else ''}"

    if blank:
        print(f"warning: {where}: {lines(blank)} blank: printed as empty lines", file=sys.stderr)
    if long:
        print(f"warning: {where}: {lines(long)} longer than the run's --max-source-len {config.max_source_len} "
              f"({config.source_tokenizer} tokens): translated from the first {config.max_source_len}", file=sys.stderr)
    kept = [i for i in tokens]
    out = [""] * len(texts)
    if kept:
        for i, translation in zip(kept, translate([texts[i] for i in kept], args.beam, args.batch_size)):
            out[i] = translation
    for translation in out:
        print(translation)
    return 0
