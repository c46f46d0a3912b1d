"""word2vec's data pipeline against hand-computed cases: subsampling, windows, vocab cut-offs."""

import gzip

import numpy as np
import pytest

from paddle_hsoftmax.data import CorpusError
from paddle_hsoftmax.data.text import iter_sentences, read_sentences
from paddle_hsoftmax.data.vocab import Vocab
from paddle_hsoftmax.data.windows import (
    EncodedCorpus,
    epoch_examples,
    keep_probabilities,
    subsample,
    window_contexts,
)


def test_keep_probabilities_word2vec_formula():
    counts = np.array([1000, 100, 10, 1])
    total = counts.sum()  # 1111
    t = 1e-2 * total  # 11.11
    expected = [min(1.0, (np.sqrt(c / t) + 1) * t / c) for c in counts]
    np.testing.assert_allclose(keep_probabilities(counts, 1e-2), expected)
    # by hand for the most frequent word: (sqrt(1000/11.11) + 1) * 11.11/1000 = 0.11651
    assert keep_probabilities(counts, 1e-2)[0] == pytest.approx(0.116515, rel=1e-4)
    assert np.all(keep_probabilities(counts, 0) == 1)


def test_subsample_rate_matches_probability():
    rng = np.random.default_rng(0)
    tokens = np.zeros(200_000, dtype=np.int32)
    tokens[::2] = 1
    keep = np.array([0.25, 1.0])
    kept, sent = subsample(tokens, np.zeros_like(tokens), keep, rng)
    assert (kept == 1).sum() == 100_000
    assert (kept == 0).sum() == pytest.approx(25_000, rel=0.03)


def test_window_one_by_hand():
    tokens = np.array([10, 11, 12, 13, 14], dtype=np.int32)
    sentence = np.array([0, 0, 0, 1, 1], dtype=np.int32)
    ctx = window_contexts(tokens, sentence, 1, np.random.default_rng(0))
    # slots: offset -1, +1; no crossing from sentence 0 into sentence 1
    assert ctx.tolist() == [[-1, 11], [10, 12], [11, -1], [-1, 14], [13, -1]]


def test_dynamic_window_reach_is_uniform_and_bounded():
    T, W = 20_000, 5
    tokens = np.arange(T, dtype=np.int32)
    ctx = window_contexts(tokens, np.zeros(T, dtype=np.int32), W, np.random.default_rng(1))
    inner = ctx[W:-W]
    offsets = np.array([o for o in range(-W, W + 1) if o != 0])
    present = inner >= 0
    # a context at offset o means every nearer offset is present too (a symmetric reach)
    reach = present[:, W:].sum(axis=1)
    assert np.array_equal(reach, present[:, :W].sum(axis=1))
    for r in range(1, W + 1):
        rows = inner[reach == r]
        centre = np.arange(W, T - W)[reach == r]
        expect = np.where(np.abs(offsets) <= r, centre[:, None] + offsets, -1)
        assert np.array_equal(rows, expect)
    freq = np.bincount(reach, minlength=W + 1)[1:] / len(reach)
    np.testing.assert_allclose(freq, 1 / W, atol=0.02)


def test_epoch_examples_cover_all_centres_in_order():
    vocab = Vocab(["a", "b", "c"], [3, 2, 1])
    corpus = EncodedCorpus.encode([["a", "b"], ["c", "a", "x"], ["b"]], vocab)
    assert corpus.tokens.tolist() == [0, 1, 2, 0, 1] and corpus.raw_tokens == 6
    out = list(epoch_examples(corpus, np.ones(3), 2, np.random.default_rng(0), chunk_tokens=2))
    centres = np.concatenate([c for c, _, _ in out]).tolist()
    assert centres == [0, 1, 2, 0]  # the lone "b" sentence has no context
    assert sum(n for _, _, n in out) == 5


def test_vocab_cutoffs_and_order():
    sents = [["b", "a", "a", "c"], ["a", "b", "d", "d"]]
    vocab = Vocab.build(sents, min_count=2)
    assert vocab.words == ["a", "b", "d"]  # 3, 2, 2: ties keep first appearance (b before d)
    assert vocab.counts.tolist() == [3, 2, 2]
    assert vocab.total_tokens == 8
    assert Vocab.build(sents, min_count=1, max_vocab=2).words == ["a", "b"]
    with pytest.raises(CorpusError, match="min_count=4 leaves 0 word"):
        Vocab.build(sents, min_count=4, source="toy")


def test_vocab_tsv_roundtrip(tmp_path):
    vocab = Vocab(["中国", "经济"], [7, 3], total_tokens=12)
    vocab.save_tsv(tmp_path / "vocab.tsv")
    back = Vocab.load_tsv(tmp_path / "vocab.tsv")
    assert back.words == vocab.words and back.counts.tolist() == [7, 3] and back.total_tokens == 12
    (tmp_path / "bad.tsv").write_text("a\t3\nb three\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="bad.tsv:2"):
        Vocab.load_tsv(tmp_path / "bad.tsv")


def test_text_reader_formats(tmp_path):
    plain = tmp_path / "a.txt"
    plain.write_bytes("\ufeff中国 经济\r\n\r\n发展\n".encode("utf-8"))
    assert read_sentences(plain) == [["中国", "经济"], ["发展"]]
    assert read_sentences(plain, "char") == [["中", "国", "经", "济"], ["发", "展"]]
    gz = tmp_path / "a.txt.gz"
    with gzip.open(gz, "wb") as f:
        f.write("one two\nthree\n".encode("utf-8"))
    assert read_sentences(gz) == [["one", "two"], ["three"]]


def test_text_reader_errors(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"fine line\nbad \xff\xfe bytes\n")
    with pytest.raises(CorpusError, match=r"bad.txt:2: not UTF-8"):
        read_sentences(bad)
    with pytest.raises(CorpusError, match="no such file"):
        list(iter_sentences(tmp_path / "missing.txt"))
    with pytest.raises(CorpusError, match="is a directory"):
        list(iter_sentences(tmp_path))
    empty = tmp_path / "empty.txt"
    empty.write_text(" \n\n")
    with pytest.raises(CorpusError, match="empty"):
        read_sentences(empty)
