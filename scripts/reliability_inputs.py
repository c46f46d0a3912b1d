#!/usr/bin/env python
"""Hostile input and fuzzing at scale: every reader and command against a corpus of bad files.

    python scripts/reliability_inputs.py [--json runs/reliability.json] [--fuzz-examples 1000]
        [--skip-fuzz] [--skip-training] [--only TEXT] [--keep DIR]

Part 1, hostile input. :func:`write_hostile_corpus` writes, for every input format the package
reads, a clean file and bad variants of it: empty, blank lines, random bytes, NUL bytes, GBK and
UTF-16 text, a 10 MB line, the format's own mistakes (a missing tab, three CoNLL columns, a tag
without a word, a label without text, ...), Windows line endings, a UTF-8 byte-order mark, a
directory, a missing file and an unreadable one. Every command-line entry that reads a file
(:data:`ENTRIES`: ``info`` / ``word2vec`` / ``lm --corpus``, ``classify --train/--valid/--test``
and ``--init-vectors``, ``tag --train/--valid/--test``, ``seq2seq --train`` with one or two files,
``predict RUN --input`` for a classifier, a tagger and an encoder-decoder) is run on each variant:

- a bad file must end with exit status 2 and exactly one stderr line ``error: FILE[:LINE]: ...``
  naming the file, and the line where the problem has one; no traceback;
- a CRLF / BOM variant must exit 0 with the same result as the clean file (the same vectors,
  metrics, predictions);
- a 10 MB line must either work or be refused like a bad file, within ``--timeout`` seconds;
  these run as real ``python train.py`` processes, with their peak RSS (``/usr/bin/time``).

Everything else runs in this process through ``paddle_hsoftmax.cli.main`` with stdout and stderr
captured (the same exit status and message as the command line), plus real ``python train.py``
runs of one bad file per entry, which also catch what only a fresh process prints.

Part 2, fuzzing: ``tests/test_fuzz.py`` with ``PADDLE_HSOFTMAX_FUZZ_EXAMPLES=N`` (hypothesis
examples per property; the test suite runs 25), counting the examples hypothesis ran.

Prints a table (entry x input -> exit status, first stderr line, OK/FAIL) and the totals (bad
inputs tried and passed, fuzz examples run, failures); ``--json`` writes them.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gzip
import io
import json
import logging
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

REPO = Path(__file__).resolve().parents[1]

ERROR, SAME, OK, EITHER = "error", "same", "ok", "either"
HUGE_LINE_BYTES = 10 << 20

# ----------------------------------------------------------------------------------------------
# Clean files, one per format
# ----------------------------------------------------------------------------------------------

WORDS = {"中国": "ns", "经济": "n", "发展": "v", "北京": "ns", "改革": "vn", "人民": "n", "市场": "n",
         "企业": "n", "我们": "r", "今天": "t", "世界": "n", "和平": "n", "the": "x", "cat": "x"}
GLOSS = {"中国": "china", "经济": "economy", "发展": "develop", "北京": "beijing", "改革": "reform",
         "人民": "people", "市场": "market", "企业": "enterprise", "我们": "we", "今天": "today",
         "世界": "world", "和平": "peace"}
POSITIVE, NEGATIVE = "好棒美赞爱乐喜佳优妙", "差烂坏糟恨厌悲劣次怒"


def _sentences(n: int, seed: int, words=tuple(WORDS)) -> List[List[str]]:
    rng = random.Random(seed)
    return [[rng.choice(words) for _ in range(rng.randint(4, 12))] for _ in range(n)]


def _reviews(n: int, seed: int) -> List[Tuple[str, str]]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        label, pool = ("pos", POSITIVE) if i % 2 else ("neg", NEGATIVE)
        out.append((label, "这个" + "".join(rng.choice(pool) for _ in range(rng.randint(3, 8)))))
    return out


def _pairs(n: int, seed: int) -> List[Tuple[str, str]]:
    return [("".join(s), " ".join(GLOSS[w] for w in s))
            for s in (x[:3] for x in _sentences(n, seed, tuple(GLOSS)))]


def clean_texts() -> Dict[str, str]:
    """The clean file of every format, as text (``vectors_bin`` is written separately)."""
    text = _sentences(150, 0)
    conll = _sentences(60, 1)
    reviews = _reviews(80, 2)
    pairs = _pairs(80, 3)
    chars = sorted({c for _, t in reviews for c in t})
    rng = np.random.default_rng(4)
    vec_rows = [f"{c} " + " ".join(f"{x:.4f}" for x in rng.standard_normal(8)) for c in chars]
    return {
        "text": "".join(" ".join(s) + "\n" for s in text),
        "tagged": "".join(" ".join(f"{w}/{WORDS[w]}" for w in s) + "\n" for s in text),
        "tsv": "".join(f"{label}\t{t}\n" for label, t in reviews),
        "fasttext": "".join(f"__label__{label} {t}\n" for label, t in reviews),
        "conll": "".join("".join(f"{w}\t{WORDS[w]}\n" for w in s) + "\n" for s in conll),
        "wordtag": "".join(" ".join(f"{w}/{WORDS[w]}" for w in s) + "\n" for s in conll),
        "pairs": "".join(f"{s}\t{t}\n" for s, t in pairs),
        "source": "".join(f"{s}\n" for s, _ in pairs),
        "target": "".join(f"{t}\n" for _, t in pairs),
        "lines": "".join(f"{t}\n" for _, t in reviews[:12]),
        "vectors_txt": f"{len(chars)} 8\n" + "".join(r + "\n" for r in vec_rows),
    }


def _vectors_bin(text: str) -> bytes:
    """``vectors_txt`` in word2vec's binary format."""
    lines = text.splitlines()
    out = [lines[0].encode() + b"\n"]
    for line in lines[1:]:
        word, *values = line.split(" ")
        out.append(word.encode("utf-8") + b" " + np.asarray(values, dtype="<f4").tobytes() + b"\n")
    return b"".join(out)


# ----------------------------------------------------------------------------------------------
# Bad variants
# ----------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Variant:
    """One input file and what a command must do with it.

    ``expect``: ``error`` (exit 2, one stderr line naming the file, and ``FILE:line:`` when
    ``line`` is set), ``same`` (exit 0, the clean file's result), ``ok`` (exit 0) or ``either``
    (``ok`` or a proper ``error``). ``skip`` says why it cannot be tried here; ``prefix`` is a
    command the run must go through (a real process, see :func:`_unreadable`)."""

    fmt: str
    name: str
    path: Path
    expect: str
    line: Optional[int] = None
    skip: str = ""
    prefix: Tuple[str, ...] = ()


def _replace_line(text: str, lineno: int, new: str) -> str:
    lines = text.split("\n")
    lines[lineno - 1] = new
    return "\n".join(lines)


# variants whose expectation holds in a training file only (one label is fine in a test file)
TRAIN_ONLY = ("one-label-only",)
# the bad inputs also run as real `python train.py` processes (the first of these in each entry)
SUBPROCESS_SAMPLES = ("gbk", "non-utf8-word", "utf16")


def _first_non_ascii_line(text: str) -> int:
    return next(i for i, line in enumerate(text.split("\n"), start=1) if not line.isascii())


def _huge_line(fmt: str) -> str:
    """A ~10 MB line in the format's own shape."""
    def fill(unit: str) -> str:
        return unit * (HUGE_LINE_BYTES // len(unit.encode("utf-8")) + 1)

    return {
        "text": fill("中国 经济 the cat "),
        "tagged": fill("中国/ns 经济/n "),
        "wordtag": fill("中国/ns 经济/n "),
        "tsv": "pos\t" + fill("好看的电影"),
        "fasttext": "__label__pos " + fill("好看的电影"),
        "conll": fill("中国") + "\tns",
        "pairs": fill("中国") + "\t" + fill("china "),
        "source": fill("中国"),
        "target": fill("china "),
        "lines": fill("这个电影好看"),
        "vectors_txt": "中" + fill(" 0.5"),
    }[fmt]


def _specific(fmt: str, clean: str) -> List[Tuple[str, str, str, Optional[int]]]:
    """``(name, text, expect, line)`` mistakes of one format."""
    r = _replace_line
    specific = {
        "tsv": [("missing-tab", r(clean, 2, "pos 这个好棒"), ERROR, 2),
                ("label-only", r(clean, 3, "pos\t"), ERROR, 3),
                ("label-only-no-tab", r(clean, 3, "pos"), ERROR, 3),
                ("text-without-label", r(clean, 2, "\t这个好棒"), ERROR, 2),
                ("one-label-only", clean.replace("neg\t", "pos\t"), ERROR, None)],
        "fasttext": [("no-label", r(clean, 2, "这个好棒 __label__pos"), ERROR, 2),
                     ("empty-label", r(clean, 2, "__label__ 这个好棒"), ERROR, 2),
                     ("label-only", r(clean, 3, "__label__pos"), ERROR, 3),
                     ("multi-label", r(clean, 2, "__label__pos __label__neg 这个好棒"), ERROR, 2)],
        "conll": [("three-columns", r(clean, 2, "中国\tns\tB-LOC"), ERROR, 2),
                  ("tag-without-word", r(clean, 2, "\tns"), ERROR, 2),
                  ("word-without-tag", r(clean, 2, "中国\t"), ERROR, 2),
                  ("word-only", r(clean, 2, "中国"), ERROR, 2),
                  ("runaway-sentence", "中国\tns\n" * 12_000, ERROR, 10_001)],
        "wordtag": [("tag-without-word", r(clean, 2, "/ns 中国/ns"), ERROR, 2),
                    ("word-without-tag", r(clean, 2, "中国 经济/n"), ERROR, 2)],
        "tagged": [("word-without-tag", r(clean, 2, "中国 经济/n"), ERROR, 2)],
        "pairs": [("missing-tab", r(clean, 2, "中国 china"), ERROR, 2),
                  ("empty-target", r(clean, 2, "中国\t "), ERROR, 2),
                  ("empty-source", r(clean, 2, "\tchina"), ERROR, 2)],
        "source": [("one-line-short", clean[: clean.rindex("\n", 0, len(clean) - 1) + 1], ERROR, None),
                   ("blank-against-text", r(clean, 3, ""), ERROR, 3)],
        "vectors_txt": [("glove-no-header", clean.split("\n", 1)[1], ERROR, 1),
                        ("bad-header", r(clean, 1, "vectors eight"), ERROR, 1),
                        ("header-promises-1e12", r(clean, 1, "1000000000000 8"), ERROR, None),
                        ("short-row", r(clean, 3, "好 0.1 0.2"), ERROR, 3),
                        ("not-a-number", r(clean, 3, "好 0.1 0.2 0.3 abc 0.5 0.6 0.7 0.8"), ERROR, 3),
                        ("nan-value", r(clean, 3, "好 0.1 0.2 0.3 nan 0.5 0.6 0.7 0.8"), ERROR, 3),
                        ("wrong-dimension", "1 5\n好 0.1 0.2 0.3 0.4 0.5\n", ERROR, None)],
    }
    return specific.get(fmt, [])


# root reads a chmod-000 file through the capabilities CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH;
# util-linux's setpriv starts a process without them (still uid 0, so the interpreter under
# /root stays reachable), where chmod 000 blocks reading as it does for any user
NO_DAC = ("setpriv", "--bounding-set=-dac_override,-dac_read_search")


def _unreadable(path: Path) -> Tuple[str, Tuple[str, ...]]:
    """chmod 000 ``path``; ``(why it cannot be tried, prefix)``: ``("", ())`` where chmod 000
    blocks this process; as root ``("", NO_DAC)`` where setpriv blocks it in a child, else the
    reason it is skipped."""
    path.chmod(0)
    try:
        with open(path, "rb"):
            pass
    except PermissionError:
        return "", ()
    try:
        probe = subprocess.run([*NO_DAC, "cat", str(path)], capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return "chmod 000 does not block reading here (running as root, no setpriv)", ()
    if probe.returncode != 0 and b"Permission denied" in probe.stderr:
        return "", NO_DAC
    return "chmod 000 does not block reading here (running as root; setpriv could not drop the capabilities)", ()


def write_hostile_corpus(directory: Path) -> Dict[str, List[Variant]]:
    """Write every format's clean file and bad variants under ``directory``.

    Returns ``{format: [Variant(name="clean", ...), Variant(...), ...]}``; formats: ``text``,
    ``tagged``, ``tsv``, ``fasttext``, ``conll``, ``wordtag``, ``pairs``, ``source``, ``target``,
    ``lines`` (text to predict), ``vectors_txt``, ``vectors_bin``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    corpus: Dict[str, List[Variant]] = {}
    clean = clean_texts()
    for fmt, text in clean.items():
        d = directory / fmt
        d.mkdir(exist_ok=True)
        empty_ok = OK if fmt == "lines" else ERROR  # nothing to predict is not an error
        variants: List[Tuple[str, bytes, str, Optional[int]]] = [
            ("clean", text.encode("utf-8"), OK, None),
            ("empty", b"", empty_ok, None),
            ("blank-lines", b"\n  \n\t\n", empty_ok, None),
            ("random-bytes", b"\xff" + bytes(rng.getrandbits(8) for _ in range(4095)), ERROR, 1),
            ("nul-bytes", b"\x00" * 1024, ERROR, 1),
            ("nul-in-line-3", _replace_line(text, 3, "\x00".join(text.split("\n")[2].partition(" ")[::2]))
             .encode("utf-8"), ERROR, 3),
            *([("gbk", text.encode("gbk"), ERROR, _first_non_ascii_line(text))] if not text.isascii() else []),
            ("utf16", text.encode("utf-16"), ERROR, 1),
            ("10mb-line", _replace_line(text, text.count("\n"), _huge_line(fmt)).encode("utf-8"), EITHER, None),
            ("crlf", text.replace("\n", "\r\n").encode("utf-8"), SAME, None),
            ("bom", ("\ufeff" + text).encode("utf-8"), SAME, None),
            ("bom-crlf", ("\ufeff" + text.replace("\n", "\r\n")).encode("utf-8"), SAME, None),
        ]
        variants += [(name, t.encode("utf-8"), expect, line) for name, t, expect, line in _specific(fmt, text)]
        if fmt in ("text", "tagged"):
            variants += [("plain-text-named.gz", text.encode("utf-8"), ERROR, 1),
                         ("truncated.gz", gzip.compress(text.encode("utf-8"))[:200], ERROR, None)]
        corpus[fmt] = []
        for name, data, expect, line in variants:
            suffix = ".gz" if name.endswith(".gz") else ".txt"
            path = d / (name.replace(".gz", "") + suffix)
            path.write_bytes(data)
            corpus[fmt].append(Variant(fmt, name, path, expect, line))
        corpus[fmt] += _special(d, text.encode("utf-8"), fmt)
    # the binary vectors: binary content is their normal state
    d = directory / "vectors_bin"
    d.mkdir(exist_ok=True)
    good = _vectors_bin(clean["vectors_txt"])
    header_end = good.index(b"\n") + 1
    gbk_word = good[:header_end] + "好".encode("gbk") + good[header_end + len("好".encode()):]
    noise = bytes(rng.getrandbits(8) for _ in range(4096))
    binary = [("clean", good, OK), ("empty", b"", ERROR), ("random-bytes", noise, ERROR),
              ("nul-bytes", b"\x00" * 1024, ERROR), ("header-only", good[:header_end], ERROR),
              ("header-promises-1e12", b"1000000000000 8\n" + good[header_end:], ERROR),
              ("truncated", good[: len(good) // 2], ERROR), ("non-utf8-word", gbk_word, ERROR),
              ("text-file-named.bin", clean["vectors_txt"].encode("utf-8"), ERROR)]
    corpus["vectors_bin"] = []
    for name, data, expect in binary:
        path = d / f"{name.replace('.bin', '')}.bin"
        path.write_bytes(data)
        corpus["vectors_bin"].append(Variant("vectors_bin", name, path, expect))
    corpus["vectors_bin"] += _special(d, good, "vectors_bin", suffix=".bin")
    return corpus


def _special(d: Path, data: bytes, fmt: str, suffix: str = ".txt") -> List[Variant]:
    """A directory, a missing file and an unreadable file where the format's file should be."""
    (d / f"a-directory{suffix}").mkdir(exist_ok=True)
    unreadable = d / f"unreadable{suffix}"
    unreadable.write_bytes(data)
    return [Variant(fmt, "directory", d / f"a-directory{suffix}", ERROR),
            Variant(fmt, "missing", d / f"missing{suffix}", ERROR),
            Variant(fmt, "unreadable", unreadable, ERROR, None, *_unreadable(unreadable))]


# ----------------------------------------------------------------------------------------------
# Command-line entries that read a file
# ----------------------------------------------------------------------------------------------

TINY = ["--epochs", "1", "--no-progress"]


@dataclasses.dataclass
class Entry:
    """A command-line entry reading one file of format ``fmt``: ``argv(file, output_dir, ctx)``
    builds the command; ``result(stdout, output_dir)`` is what a CRLF/BOM run must reproduce;
    ``trains``: a successful run trains a model (seconds); ``bad_only``: only the error
    variants are tried (the reader is already tried with the rest in another position)."""

    name: str
    fmt: str
    argv: Callable[[Path, Path, Dict[str, Path]], List[str]]
    result: Callable[[str, Path], object]
    trains: bool = True
    bad_only: bool = False


def _info_result(stdout: str, out: Path) -> object:
    return stdout.split("\n", 1)[1]  # the first line names the file


def _metrics(*keys: str) -> Callable[[str, Path], object]:
    def result(stdout: str, out: Path) -> object:
        metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
        return {k: metrics[k] for k in keys}
    return result


def _vectors_result(stdout: str, out: Path) -> object:
    return (out / "vectors.txt").read_text(encoding="utf-8")


def _stdout(stdout: str, out: Path) -> object:
    return stdout


def _classify(part: str) -> Callable:
    def argv(f: Path, out: Path, ctx: Dict[str, Path]) -> List[str]:
        files = {"train": ctx["tsv"], "valid": ctx["tsv"], "test": ctx["tsv"], part: f}
        return ["classify", "--train", str(files["train"]), "--valid", str(files["valid"]), "--test",
                str(files["test"]), "--output-dir", str(out), "--embed-dim", "8", "--hidden", "8", *TINY]
    return argv


def _tag(part: str) -> Callable:
    def argv(f: Path, out: Path, ctx: Dict[str, Path]) -> List[str]:
        files = {"train": ctx["conll"], "valid": ctx["conll"], "test": ctx["conll"], part: f}
        return ["tag", "--train", str(files["train"]), "--valid", str(files["valid"]), "--test",
                str(files["test"]), "--output-dir", str(out), "--embed-dim", "8", "--hidden", "8",
                "--char-dim", "4", "--char-filters", "4", *TINY]
    return argv


SEQ2SEQ = ["--embed-dim", "8", "--hidden", "8", "--beam", "2", "--eval-items", "8", "--max-test", "8",
           "--min-count", "1", *TINY]


def _seq2seq(part: str, side: Optional[str] = None) -> Callable:
    def argv(f: Path, out: Path, ctx: Dict[str, Path]) -> List[str]:
        files: Dict[str, List[str]] = {p: [str(ctx["pairs"])] for p in ("train", "valid", "test")}
        if side is None:
            files[part] = [str(f)]
        else:
            files[part] = [str(f), str(ctx["target"])] if side == "source" else [str(ctx["source"]), str(f)]
        return ["seq2seq", "--train", *files["train"], "--valid", *files["valid"], "--test", *files["test"],
                "--output-dir", str(out), *SEQ2SEQ]
    return argv


def _predict(run: str) -> Callable:
    def argv(f: Path, out: Path, ctx: Dict[str, Path]) -> List[str]:
        return ["predict", str(ctx[run]), "--input", str(f)]
    return argv


ENTRIES: List[Entry] = [
    Entry("info --corpus", "text", lambda f, o, c: ["info", "--corpus", str(f), "--min-count", "1"],
          _info_result, trains=False),
    Entry("info --corpus --format tagged", "tagged",
          lambda f, o, c: ["info", "--corpus", str(f), "--format", "tagged", "--min-count", "1"],
          _info_result, trains=False),
    Entry("word2vec --corpus", "text",
          lambda f, o, c: ["word2vec", "--corpus", str(f), "--output-dir", str(o), "--dim", "8", "--min-count", "1",
                           "--workers", "1", *TINY], _vectors_result),
    Entry("lm --corpus", "text",
          lambda f, o, c: ["lm", "--corpus", str(f), "--output-dir", str(o), "--embed-dim", "8", "--hidden", "8",
                           "--min-count", "1", "--batch-size", "4", "--bptt", "8", "--max-train-tokens", "2000",
                           *TINY], _metrics("valid_ppl", "test_ppl")),
    Entry("classify --train (TSV)", "tsv", _classify("train"), _metrics("test_accuracy", "labels")),
    Entry("classify --valid (TSV)", "tsv", _classify("valid"), _metrics("test_accuracy"), bad_only=True),
    Entry("classify --test (TSV)", "tsv", _classify("test"), _metrics("test_accuracy"), bad_only=True),
    Entry("classify --train (fastText)", "fasttext", _classify("train"), _metrics("test_accuracy", "labels")),
    Entry("classify --init-vectors (text)", "vectors_txt",
          lambda f, o, c: _classify("train")(c["tsv"], o, c) + ["--init-vectors", str(f)],
          _metrics("test_accuracy", "init_vectors_coverage")),
    Entry("classify --init-vectors (binary)", "vectors_bin",
          lambda f, o, c: _classify("train")(c["tsv"], o, c) + ["--init-vectors", str(f)],
          _metrics("test_accuracy", "init_vectors_coverage")),
    Entry("tag --train (CoNLL)", "conll", _tag("train"), _metrics("test_accuracy", "tags")),
    Entry("tag --valid (CoNLL)", "conll", _tag("valid"), _metrics("test_accuracy"), bad_only=True),
    Entry("tag --test (CoNLL)", "conll", _tag("test"), _metrics("test_accuracy"), bad_only=True),
    Entry("tag --train (word/TAG)", "wordtag", _tag("train"), _metrics("test_accuracy", "tags")),
    Entry("seq2seq --train (TSV)", "pairs", _seq2seq("train"), _metrics("test_bleu", "pairs")),
    Entry("seq2seq --test (TSV)", "pairs", _seq2seq("test"), _metrics("test_bleu"), bad_only=True),
    Entry("seq2seq --train SOURCE target", "source", _seq2seq("train", "source"), _metrics("test_bleu", "pairs")),
    Entry("seq2seq --train source TARGET", "target", _seq2seq("train", "target"), _metrics("test_bleu", "pairs")),
    Entry("predict classifier --input", "lines", _predict("classify_run"), _stdout, trains=False),
    Entry("predict tagger --input", "lines", _predict("tag_run"), _stdout, trains=False),
    Entry("predict seq2seq --input", "lines", _predict("seq2seq_run"), _stdout, trains=False),
]


# ----------------------------------------------------------------------------------------------
# Running
# ----------------------------------------------------------------------------------------------


class _CurrentStderr(io.TextIOBase):
    """A stream that writes to whatever ``sys.stderr`` is now (so the logging handler that
    ``cli.main`` installs once follows every capture)."""

    def write(self, s: str) -> int:
        return sys.stderr.write(s)


def run_in_process(argv: List[str]) -> Tuple[int, str, str, float]:
    """``(exit status, stdout, stderr, seconds)`` of ``paddle_hsoftmax.cli.main(argv)`` with both
    streams captured; an exception that escapes ``main`` is reported as status 1 with its
    traceback, as the real command line would."""
    from paddle_hsoftmax.cli import main

    if not logging.getLogger().handlers:
        logging.basicConfig(handlers=[logging.StreamHandler(_CurrentStderr())])
    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = main(argv)
        except SystemExit as exc:
            rc = exc.code if isinstance(exc.code, int) else 1
        except BaseException:  # what the real process would print before dying
            traceback.print_exc()
            rc = 1
    return rc, out.getvalue(), err.getvalue(), time.perf_counter() - start


def run_subprocess(argv: List[str], timeout: float, prefix: Sequence[str] = ()
                   ) -> Tuple[int, str, str, float, Optional[int]]:
    """``(exit status, stdout, stderr, seconds, peak RSS bytes or None)`` of a real
    ``python train.py argv`` (status 124 when it ran past ``timeout``), started through
    ``prefix`` (a command such as :data:`NO_DAC`) if given."""
    cmd = [*prefix, sys.executable, str(REPO / "train.py"), *argv]
    with tempfile.NamedTemporaryFile(suffix=".rss") as rss:
        if Path("/usr/bin/time").exists():
            cmd = ["/usr/bin/time", "-q", "-f", "%M", "-o", rss.name, *cmd]
        start = time.perf_counter()
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=timeout, cwd=REPO)
            rc, out, err = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as exc:
            rc, out, err = 124, str(exc.stdout or ""), str(exc.stderr or "")
        seconds = time.perf_counter() - start
        text = Path(rss.name).read_text().strip()
        peak = int(text.splitlines()[-1]) * 1024 if text and text.splitlines()[-1].isdigit() else None
    return rc, out, err, seconds, peak


def judge(variant: Variant, rc: int, err: str, result: object, clean: object) -> Tuple[bool, str]:
    """``(passed, why not)`` for one run of ``variant``."""
    lines = [line for line in err.splitlines() if line.strip()]

    def proper_error(need_line: bool) -> Tuple[bool, str]:
        if rc != 2:
            return False, f"exit status {rc}, expected 2"
        if "Traceback" in err:
            return False, "traceback on stderr"
        if len(lines) != 1:
            return False, f"{len(lines)} stderr lines, expected 1"
        if not lines[0].startswith("error: "):
            return False, "stderr line does not start with 'error: '"
        if str(variant.path) not in lines[0]:
            return False, "the message does not name the file"
        if need_line and variant.line is not None and f"{variant.path}:{variant.line}:" not in lines[0]:
            return False, f"the message does not name line {variant.line}"
        return True, ""

    if variant.expect == ERROR:
        return proper_error(True)
    ok = rc == 0 and "Traceback" not in err
    if variant.expect == OK:
        return ok, "" if ok else f"exit status {rc}, expected 0"
    if variant.expect == SAME:
        if not ok:
            return False, f"exit status {rc}, expected 0"
        return (True, "") if result == clean else (False, "result differs from the clean file's")
    if ok:  # EITHER
        return True, ""
    return proper_error(False)


@dataclasses.dataclass
class Row:
    entry: str
    input: str
    expect: str
    status: str  # "OK", "FAIL", "SKIP"
    exit: Optional[int]
    stderr: str
    seconds: float
    how: str  # "in-process" or "subprocess"
    why: str = ""
    peak_rss_mb: Optional[float] = None


def train_runs(corpus: Dict[str, List[Variant]], work: Path) -> Dict[str, Path]:
    """The clean files by format, and real classify / tag / seq2seq runs for ``predict``."""
    ctx = {fmt: next(v.path for v in vs if v.name == "clean") for fmt, vs in corpus.items()}
    for run, entry in (("classify_run", "classify --train (TSV)"), ("tag_run", "tag --train (CoNLL)"),
                       ("seq2seq_run", "seq2seq --train (TSV)")):
        spec = next(e for e in ENTRIES if e.name == entry)
        out = work / run
        rc, _, err, _ = run_in_process(spec.argv(ctx[spec.fmt], out, ctx))
        if rc != 0:
            raise RuntimeError(f"training the {run} on clean files failed ({rc}): {err.strip()[-500:]}")
        ctx[run] = out
    return ctx


def run_hostile(work: Path, only: str = "", skip_training: bool = False, timeout: float = 600.0,
                subprocess_checks: bool = True, log: Callable[[str], None] = print) -> List[Row]:
    """Every entry on every variant of its format; returns the table's rows."""
    corpus = write_hostile_corpus(work / "inputs")
    ctx = train_runs(corpus, work / "runs")
    rows: List[Row] = []
    counter = 0
    for entry in ENTRIES:
        if only and only not in entry.name:
            continue
        clean_result = None
        sampled = False
        for variant in corpus[entry.fmt]:
            if entry.bad_only and (variant.expect != ERROR or variant.name in TRAIN_ONLY):
                continue
            counter += 1
            out = work / "out" / f"{counter:04d}"
            if variant.skip:
                rows.append(Row(entry.name, variant.name, variant.expect, "SKIP", None, "", 0.0, "-", variant.skip))
                continue
            costly = entry.trains and variant.expect in (SAME, OK, EITHER)
            if costly and skip_training and variant.name != "clean":
                rows.append(Row(entry.name, variant.name, variant.expect, "SKIP", None, "", 0.0, "-",
                                "--skip-training"))
                continue
            argv = entry.argv(variant.path, out, ctx)
            peak = None
            if variant.prefix:
                rc, stdout, err, seconds, peak = run_subprocess(argv, timeout, variant.prefix)
                how = "subprocess, " + variant.prefix[0]
            elif variant.expect == EITHER or (subprocess_checks and not sampled and variant.name in SUBPROCESS_SAMPLES):
                rc, stdout, err, seconds, peak = run_subprocess(argv, timeout)
                how = "subprocess"
                sampled = sampled or variant.name in SUBPROCESS_SAMPLES
            else:
                rc, stdout, err, seconds = run_in_process(argv)
                how = "in-process"
            result = None
            if rc == 0 and variant.expect in (SAME, OK):
                try:
                    result = entry.result(stdout, out)
                except (OSError, KeyError, ValueError) as exc:
                    result = f"<no result: {exc}>"
            if variant.name == "clean":
                clean_result = result
            passed, why = judge(variant, rc, err, result, clean_result)
            first = next((line for line in err.splitlines() if line.strip()), "")
            row = Row(entry.name, variant.name, variant.expect, "OK" if passed else "FAIL", rc, first[:300],
                      round(seconds, 2), how, why, round(peak / 2**20, 1) if peak else None)
            rows.append(row)
            log(_format_row(row))
            shutil.rmtree(out, ignore_errors=True)
    return rows


# ----------------------------------------------------------------------------------------------
# Fuzzing
# ----------------------------------------------------------------------------------------------


def run_fuzz(examples: int, log: Callable[[str], None] = print) -> Dict[str, object]:
    """``tests/test_fuzz.py`` with ``examples`` hypothesis examples per property."""
    env = dict(os.environ, PADDLE_HSOFTMAX_FUZZ_EXAMPLES=str(examples))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_fuzz.py",
                           "--hypothesis-show-statistics"], capture_output=True, text=True, cwd=REPO, env=env)
    seconds = time.perf_counter() - start
    text = proc.stdout + proc.stderr
    per_test: Dict[str, int] = {}
    current = None
    for line in text.splitlines():
        m = re.match(r"^(tests/test_fuzz\.py::\S+):$", line.strip())
        if m:
            current = m.group(1).split("::")[1]
            continue
        m = re.search(r"(\d+) passing, (\d+) failing", line)
        if m and current:
            per_test[current] = per_test.get(current, 0) + int(m.group(1)) + int(m.group(2))
    summary = next((line for line in reversed(text.splitlines()) if " passed" in line or " failed" in line), "")
    failed = int(m.group(1)) if (m := re.search(r"(\d+) failed", summary)) else (0 if proc.returncode == 0 else 1)
    log(f"fuzz: {sum(per_test.values()):,} examples over {len(per_test)} properties in {seconds:.0f} s: {summary}")
    if proc.returncode != 0:
        log(text[-4000:])
    return {"examples_per_property": examples, "examples_run": sum(per_test.values()), "per_property": per_test,
            "failures": failed, "seconds": round(seconds, 1), "pytest_summary": summary}


# ----------------------------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------------------------


def _format_row(row: Row) -> str:
    rss = f" {row.peak_rss_mb:,.0f} MB" if row.peak_rss_mb else ""
    why = f" [{row.why}]" if row.why else ""
    return (f"{row.status:<4} {row.entry:<34} {row.input:<22} {row.expect:<6} exit {row.exit!s:<4} "
            f"{row.seconds:>6.1f} s{rss} {row.how:<10} {row.stderr[:110]}{why}")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", default=None, help="write the rows and totals here")
    parser.add_argument("--fuzz-examples", type=int, default=1000, help="hypothesis examples per property")
    parser.add_argument("--skip-fuzz", action="store_true")
    parser.add_argument("--skip-hostile", action="store_true")
    parser.add_argument("--skip-training", action="store_true",
                        help="skip the CRLF/BOM/10 MB runs that train a model (errors only)")
    parser.add_argument("--only", default="", help="run only entries whose name contains this")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per subprocess run")
    parser.add_argument("--keep", default=None, help="work in this directory and keep it")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    report: Dict[str, object] = {}
    failures = 0
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="reliability_"))
    try:
        if not args.skip_hostile:
            rows = run_hostile(work, args.only, args.skip_training, args.timeout)
            tried = [r for r in rows if r.status != "SKIP"]
            bad = [r for r in tried if r.expect in (ERROR, EITHER)]
            totals = {"runs": len(tried), "bad_inputs_tried": len(bad),
                      "bad_inputs_passed": sum(r.status == "OK" for r in bad),
                      "valid_unusual_tried": sum(r.expect in (SAME, OK) for r in tried),
                      "valid_unusual_passed": sum(r.expect in (SAME, OK) and r.status == "OK" for r in tried),
                      "skipped": sum(r.status == "SKIP" for r in rows),
                      "failures": sum(r.status == "FAIL" for r in rows),
                      "subprocess_runs": sum(r.how == "subprocess" for r in tried)}
            failures += totals["failures"]
            report["hostile"] = {"rows": [dataclasses.asdict(r) for r in rows], "totals": totals}
            print()
            for r in rows:
                if r.status != "OK":
                    print(_format_row(r))
            print(f"hostile input: {totals['bad_inputs_passed']}/{totals['bad_inputs_tried']} bad inputs handled, "
                  f"{totals['valid_unusual_passed']}/{totals['valid_unusual_tried']} clean/CRLF/BOM runs as "
                  f"expected, {totals['skipped']} skipped, {totals['failures']} failures")
        if not args.skip_fuzz:
            fuzz = run_fuzz(args.fuzz_examples)
            failures += int(fuzz["failures"])
            report["fuzz"] = fuzz
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report["seconds"] = round(time.perf_counter() - start, 1)
    report["failures"] = failures
    print(f"total: {failures} failure(s) in {report['seconds']:.0f} s")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
        print(f"wrote {args.json}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    sys.exit(main())
