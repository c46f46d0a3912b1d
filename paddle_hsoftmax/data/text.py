"""Plain-text corpus reader: one sentence per line, ``.gz`` accepted, and the package's tokenizers.

``whitespace`` splits on runs of whitespace (pre-segmented text, English); ``char`` makes every
non-space character a token (unsegmented Chinese); ``jieba`` segments Chinese words. A UTF-8 byte-order mark and Windows line
endings are accepted. Everything else that is not UTF-8 text raises :class:`CorpusError` naming the
file and the line: bytes that do not decode (with a hint when they read as GBK / GB18030, the
usual encoding of older Chinese files), NUL bytes (a binary file), a device instead of a file.
"""

from __future__ import annotations

import gzip
import itertools
import os
import re
import stat
import zlib
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator, List, Tuple, Union

from ..errors import ConfigError, UserError

__all__ = ["CorpusError", "TOKENIZERS", "CORPUS_FORMATS", "HAN_RANGES", "tokenize", "guess_tokenizer", "excerpt", "check_readable_file", "iter_lines",
           "iter_stream_lines", "iter_sentences", "read_sentences"]


class CorpusError(UserError, ValueError):
    """A corpus file that cannot be read, or data that cannot train (too few words, an empty
    split); the message names the file, the line and the problem."""


TOKENIZERS = ("whitespace", "char", "jieba")
CORPUS_FORMATS = ("plain", "tagged")  # a corpus of tokens per line, or of word/TAG tokens (People's Daily)
# CJK Unified Ideographs, extension A, compatibility ideographs, extensions B-F (Chinese characters)
HAN_RANGES = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef"
_HAN = re.compile(f"[{HAN_RANGES}]")


def tokenize(line: str, tokenizer: str) -> List[str]:
    """Split one line into tokens: ``whitespace`` (pre-segmented text, English), ``char`` (every
    non-space character: unsegmented Chinese) or ``jieba`` (Chinese word segmentation; the optional
    jieba package). The one tokenizer of the package: training data and ``predict`` both come here."""
    if tokenizer == "whitespace":
        return line.split()
    if tokenizer == "char":
        return [ch for ch in line if not ch.isspace()]
    if tokenizer == "jieba":
        try:
            import jieba
        except ImportError:
            raise ConfigError("--tokenizer jieba needs the jieba package: pip install jieba") from None
        return [t for t in jieba.lcut(line) if t.strip()]
    raise ValueError(f"tokenizer must be one of {TOKENIZERS}, got {tokenizer!r}")


# Chinese characters, Japanese kana and Korean syllables: scripts written without spaces between words
_CJK = re.compile(f"[{HAN_RANGES}\u3040-\u30ff\uac00-\ud7af]")


def guess_tokenizer(texts: Iterable[str], sample: int = 2000) -> str:
    """``char`` when the first ``sample`` texts hold more CJK characters (scripts written without
    spaces between words: unsegmented Chinese) than space-separated words without one (English,
    numbers, Latin brand names inside Chinese text), else ``whitespace``: what ``--tokenizer
    auto`` picks from the training texts. A segmented Chinese file (words between spaces) counts
    as CJK: its words are then split into characters (pass ``--tokenizer whitespace``)."""
    cjk = other = 0
    for text in itertools.islice(texts, sample):
        cjk += len(_CJK.findall(text))
        other += sum(1 for word in text.split() if not _CJK.search(word))
    return "char" if cjk > other else "whitespace"


def excerpt(text: str, limit: int = 60) -> str:
    """``repr`` of ``text`` cut to its first ``limit`` characters (with ``...`` and the full length
    when cut), for error messages that quote a line: a 10 MB line must not become a 10 MB message."""
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text):,} characters)"


def _decode_error(path: Union[str, os.PathLike], lineno: int, line_bytes: bytes,
                  exc: UnicodeDecodeError) -> CorpusError:
    """The error for a line that is not UTF-8, with a conversion hint for GBK / GB18030 text."""
    hint = ""
    try:
        if _HAN.search(line_bytes.decode("gb18030")):
            hint = f"; it reads as GBK/GB18030 Chinese: convert it with iconv -f GB18030 -t UTF-8 {path} > NEW_FILE"
    except UnicodeDecodeError:
        pass
    return CorpusError(f"{path}:{lineno}: not UTF-8 text ({exc.reason} at byte {exc.start} of the line){hint}")


def check_readable_file(path: Union[str, os.PathLike]) -> Path:
    """``path`` as a :class:`~pathlib.Path` if it names a file (or a pipe) that can be opened.

    Raises:
        CorpusError: missing, a directory, a device or socket (``/dev/zero`` would never end a
            line), or not readable (naming the reason the system gave).
    """
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise CorpusError(f"{path}: no such file") from None
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read ({exc.strerror})") from None
    if stat.S_ISDIR(mode):
        raise CorpusError(f"{path}: is a directory, expected a text file")
    if stat.S_ISFIFO(mode):
        return path  # a pipe: opening it here would wait for its writer
    if not stat.S_ISREG(mode):
        raise CorpusError(f"{path}: not a regular file (a device or a socket), expected a text file")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read ({exc.strerror})") from None
    return path


def iter_lines(path: Union[str, os.PathLike]) -> Iterator[Tuple[int, str]]:
    """``(line number, text)`` for every line of a UTF-8 file (``.gz`` read as gzip), without the
    line ending (``\\n`` or ``\\r\\n``); a byte-order mark is dropped. Every reader of the package
    goes through here.

    Raises:
        CorpusError: missing file, directory, device, unreadable, broken gzip, non-UTF-8 bytes or
            NUL bytes (naming the line).
    """
    path = check_readable_file(path)
    lineno = 0
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as raw:
            for lineno, line in iter_stream_lines(raw, path):
                yield lineno, line
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise CorpusError(f"{path}:{lineno + 1}: cannot read ({exc})") from None


def iter_stream_lines(raw: BinaryIO, name: Union[str, os.PathLike] = "<stdin>") -> Iterator[Tuple[int, str]]:
    """:func:`iter_lines` for an open binary stream (``sys.stdin.buffer``), its errors naming
    ``name``."""
    for lineno, line_bytes in enumerate(raw, start=1):
        try:
            line = line_bytes.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise _decode_error(name, lineno, line_bytes, exc) from None
        nul = line.find("\x00")
        if nul >= 0:
            raise CorpusError(f"{name}:{lineno}: NUL byte at character {nul} of the line: a binary file, not text")
        if lineno == 1:
            line = line.lstrip("\ufeff")
        yield lineno, line.rstrip("\r\n")


def iter_sentences(path: Union[str, os.PathLike], tokenizer: str = "whitespace") -> Iterator[List[str]]:
    """Yield the non-empty token lists of ``path``, one per line (errors: see :func:`iter_lines`).

    Equal tokens are one ``str`` object (a corpus holds each word once): 8 bytes per token in the
    sentence lists instead of ~85 for a string of its own (People's Daily: 1.1M tokens, ~85 MB
    less), for ~45 ns per token.
    """
    if tokenizer not in TOKENIZERS:
        raise ValueError(f"tokenizer must be one of {TOKENIZERS}, got {tokenizer!r}")
    shared = {}.setdefault
    for _, line in iter_lines(path):
        tokens = tokenize(line, tokenizer)
        if tokens:
            yield list(map(shared, tokens, tokens))


def read_sentences(path: Union[str, os.PathLike], tokenizer: str = "whitespace") -> List[List[str]]:
    """All sentences of ``path`` (see :func:`iter_sentences`); raises if there are none."""
    sentences = list(iter_sentences(path, tokenizer))
    if not sentences:
        raise CorpusError(f"{path}: the corpus is empty (no tokens)")
    return sentences
