"""Fuzzing with hypothesis: tree builders, output layers and file readers on random inputs.

- trees (Huffman, balanced, clustered): random counts with ties, ones, huge values (up to 2**62)
  and sizes from 2 up: full prefix codes (Kraft sum 1), Huffman cost equal to a heapq reference,
  the same tables on a second build; invalid counts (zeros, one word) raise ``ValueError``;
- output layers (all five): random batch shapes (empty ones included), ``ignore_index``
  patterns, all-ignored batches, large hidden values: finite non-negative losses, exactly 0 at
  ignored positions, ``full_log_prob`` rows that sum to 1 and agree with the loss, finite
  gradients;
- readers: random bytes and random near-valid text either parse (into well-formed results) or
  raise ``CorpusError``, never another exception; CRLF and BOM variants parse like the clean
  text; vector and vocabulary files round-trip.

Examples per property: 25 by default (the suite stays fast); ``PADDLE_HSOFTMAX_FUZZ_EXAMPLES=N``
runs N (``scripts/reliability_inputs.py`` uses 1,000).
"""

import math
import os
import re

import numpy as np
import paddle
import pytest
from conftest import assert_full_prefix_tree, reference_huffman_cost
from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from paddle_hsoftmax.cluster_tree import build_clustered_tree
from paddle_hsoftmax.data.datasets import read_peoples_daily
from paddle_hsoftmax.data.labeled import read_classification
from paddle_hsoftmax.data.parallel import read_parallel_files, read_parallel_tsv
from paddle_hsoftmax.data.tagged import read_tagged
from paddle_hsoftmax.data.text import CorpusError, read_sentences
from paddle_hsoftmax.data.vectors import read_word2vec
from paddle_hsoftmax.data.vocab import TokenIndex, Vocab
from paddle_hsoftmax.export import write_word2vec_binary, write_word2vec_text
from paddle_hsoftmax.output.registry import OUTPUT_LAYERS, build_output_layer
from paddle_hsoftmax.tree import Tree, build_balanced_tree, build_huffman_tree, validate_counts

EXAMPLES = int(os.environ.get("PADDLE_HSOFTMAX_FUZZ_EXAMPLES", "25"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large],
)


# ----------------------------------------------------------------------------------------------
# Trees
# ----------------------------------------------------------------------------------------------


# ties (small values), ones, and huge values side by side
count_values = st.one_of(st.just(1), st.integers(1, 4), st.integers(1, 10**6), st.integers(2**40, 2**62))
counts_lists = st.lists(count_values, min_size=2, max_size=300)


@FUZZ
@given(counts_lists)
def test_huffman_is_an_optimal_full_prefix_code(counts):
    tree = build_huffman_tree(counts)
    assert_full_prefix_tree(tree)
    assert tree.num_leaves == len(counts)
    assert sum(c * int(d) for c, d in zip(counts, tree.path_lengths)) == reference_huffman_cost(counts)
    again = build_huffman_tree(list(counts))
    for name in ("path_nodes", "path_codes", "path_lengths"):
        assert np.array_equal(getattr(tree, name), getattr(again, name))


@FUZZ
@given(counts_lists, st.randoms(use_true_random=False))
def test_huffman_cost_ignores_word_order(counts, rnd):
    shuffled = list(counts)
    rnd.shuffle(shuffled)
    a, b = build_huffman_tree(counts), build_huffman_tree(shuffled)
    cost = lambda tree, c: sum(x * int(d) for x, d in zip(c, tree.path_lengths))  # noqa: E731
    assert cost(a, counts) == cost(b, shuffled)


@FUZZ
@given(st.lists(st.one_of(st.integers(1, 10), st.integers(2**62, 2**64 - 1)), min_size=2, max_size=40))
def test_huffman_on_numpy_unsigned_counts_near_2_to_the_64(counts):
    """uint64 counts past int64's range keep their value (they used to wrap negative)."""
    tree = build_huffman_tree(np.asarray(counts, dtype=np.uint64))
    assert_full_prefix_tree(tree)
    assert sum(c * int(d) for c, d in zip(counts, tree.path_lengths)) == reference_huffman_cost(counts)


@FUZZ
@given(st.binary(max_size=400), st.integers(0, 10**6))
def test_tree_load_of_a_damaged_file_raises_value_error_naming_it(tmp_path, data, cut):
    good = tmp_path / "good.npz"
    build_huffman_tree([5, 3, 2, 1, 1]).save(good)
    raw = good.read_bytes()
    npy = tmp_path / "array.npy"
    np.save(npy, np.arange(3))  # a valid .npy: one array, not an archive
    for name, content in (("random.npz", data), ("cut.npz", raw[: cut % len(raw)]), ("npy.npz", npy.read_bytes())):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(ValueError, match=re.escape(str(path))):
            Tree.load(path)


@FUZZ
@given(st.lists(st.integers(-3, 3), min_size=0, max_size=20))
def test_invalid_counts_raise_value_error_naming_the_position(counts):
    bad = [i for i, c in enumerate(counts) if c <= 0]
    assume(bad or len(counts) < 2)
    with pytest.raises(ValueError) as info:
        build_huffman_tree(counts)
    if len(counts) >= 2:
        assert f"counts[{bad[0]}]" in str(info.value)
    else:
        assert "at least 2 words" in str(info.value)


@FUZZ
@given(st.integers(2, 5000))
def test_balanced_tree_depths(V):
    tree = build_balanced_tree(V)
    assert_full_prefix_tree(tree)
    depth = math.ceil(math.log2(V))
    assert tree.path_lengths.max() == depth and tree.path_lengths.min() >= depth - 1


@st.composite
def word_vectors(draw):
    """``[V, D]`` vectors with repeated rows, zero rows and ties, sometimes with counts."""
    V = draw(st.integers(2, 120))
    D = draw(st.integers(1, 6))
    pool = draw(st.lists(st.lists(st.floats(-4, 4, allow_nan=False, width=32), min_size=D, max_size=D),
                         min_size=1, max_size=8))
    rows = draw(st.lists(st.one_of(st.sampled_from(pool), st.just([0.0] * D)), min_size=V, max_size=V))
    counts = draw(st.one_of(st.none(), st.lists(count_values, min_size=V, max_size=V)))
    return np.asarray(rows, dtype=np.float64), counts


@FUZZ
@given(word_vectors(), st.integers(0, 2**32 - 1), st.integers(1, 6))
def test_clustered_tree_is_a_deterministic_full_prefix_code(data, seed, iterations):
    vectors, counts = data
    tree = build_clustered_tree(vectors, counts=counts, seed=seed, iterations=iterations)
    assert_full_prefix_tree(tree)
    again = build_clustered_tree(vectors.copy(), counts=counts, seed=seed, iterations=iterations)
    assert np.array_equal(tree.path_nodes, again.path_nodes) and np.array_equal(tree.path_codes, again.path_codes)
    if counts is None:  # median cuts: a balanced tree
        depth = math.ceil(math.log2(len(vectors)))
        assert tree.path_lengths.max() == depth and tree.path_lengths.min() >= depth - 1


@FUZZ
@given(st.lists(st.one_of(st.integers(-2, 2**63), st.floats(allow_nan=True), st.booleans(), st.text(max_size=2)),
                max_size=6))
def test_validate_counts_accepts_or_raises_value_error(values):
    try:
        out = validate_counts(values)
    except ValueError:
        return
    assert len(out) == len(values) >= 2
    assert all(int(x) > 0 and int(x) == x for x in out.tolist())


# ----------------------------------------------------------------------------------------------
# Output layers
# ----------------------------------------------------------------------------------------------

IGNORE = -100


@st.composite
def layer_batches(draw):
    name = draw(st.sampled_from(OUTPUT_LAYERS))
    V = draw(st.integers(2, 40))
    D = draw(st.integers(4 if name == "adaptive" else 1, 8))  # adaptive: tail widths D // 4 >= 1
    shape = draw(st.lists(st.integers(0, 5), min_size=1, max_size=3))
    n = int(np.prod(shape))
    targets = draw(st.lists(st.integers(0, V - 1), min_size=n, max_size=n))
    ignored = draw(st.one_of(st.just([False] * n), st.just([True] * n),
                             st.lists(st.booleans(), min_size=n, max_size=n)))
    scale = draw(st.sampled_from([0.01, 1.0, 30.0, 1000.0]))
    counts = draw(st.lists(st.integers(1, 1000), min_size=V, max_size=V))
    seed = draw(st.integers(0, 2**31 - 1))
    return name, V, D, shape, targets, ignored, scale, sorted(counts, reverse=True), seed


@FUZZ
@given(layer_batches())
def test_output_layers_on_random_batches(case):
    name, V, D, shape, targets, ignored, scale, counts, seed = case
    paddle.seed(seed)
    rng = np.random.default_rng(seed)
    layer = build_output_layer(name, D, [f"w{i}" for i in range(V)], counts, ignore_index=IGNORE)
    hidden = paddle.to_tensor((rng.standard_normal(shape + [D]) * scale).astype(np.float32), stop_gradient=False)
    t = np.where(np.asarray(ignored, dtype=bool), IGNORE, np.asarray(targets, dtype=np.int64)).reshape(shape)
    target = paddle.to_tensor(t)

    nll = layer(hidden, target)
    assert list(nll.shape) == shape
    value = nll.numpy()
    assert np.all(np.isfinite(value)) and np.all(value >= -1e-4), value
    assert np.all(value[t == IGNORE] == 0.0)
    nll.sum().backward()
    assert np.all(np.isfinite(hidden.grad.numpy()))
    if (t == IGNORE).all():
        assert np.all(hidden.grad.numpy() == 0.0)
    for p in layer.parameters():
        if p.grad is not None:
            assert np.all(np.isfinite(p.grad.numpy())), p.name

    layer.eval()
    with paddle.no_grad():
        lp = layer.full_log_prob(hidden).numpy().astype(np.float64)
        assert lp.shape == tuple(shape) + (V,)
        assert np.all(lp <= 1e-5)
        if lp.size:
            assert np.allclose(np.exp(lp).sum(axis=-1), 1.0, atol=1e-4)
            picked = np.take_along_axis(lp, np.where(t == IGNORE, 0, t)[..., None], axis=-1)[..., 0]
            np.testing.assert_allclose(-picked[t != IGNORE], layer(hidden, target).numpy()[t != IGNORE],
                                       rtol=1e-3, atol=1e-3 * max(1.0, scale))


# ----------------------------------------------------------------------------------------------
# Readers
# ----------------------------------------------------------------------------------------------

# characters that matter to the formats, plus CJK and odd whitespace
alphabet = st.sampled_from(list("ab中国/_\t \r\n:0123456789.-+e") + ["__label__", "\ufeff", "\u3000", "\x85", "\x00"])
near_text = st.lists(alphabet, max_size=200).map("".join)
raw_bytes = st.one_of(st.binary(max_size=600), near_text.map(lambda s: s.encode("utf-8")),
                      near_text.map(lambda s: s.encode("gb18030")))

READERS = {
    "plain": lambda p: read_sentences(p),
    "plain-char": lambda p: read_sentences(p, "char"),
    "peoples-daily": read_peoples_daily,
    "classification": read_classification,
    "tsv": lambda p: read_classification(p, "tsv"),
    "fasttext": lambda p: read_classification(p, "fasttext"),
    "tagged": read_tagged,
    "conll": lambda p: read_tagged(p, "conll"),
    "wordtag": lambda p: read_tagged(p, "wordtag"),
    "parallel-tsv": read_parallel_tsv,
    "vocab-tsv": Vocab.load_tsv,
    "token-index": TokenIndex.load,
    "vectors": read_word2vec,
}


def _well_formed(kind, result):
    """What a successful parse promises, per reader."""
    if kind.startswith("plain"):
        assert result and all(s and all(t and not any(c.isspace() for c in t) for t in s) for s in result)
    elif kind == "peoples-daily":
        assert all(s and all(w and tag for w, tag in s) for s in result)
    elif kind in ("classification", "tsv", "fasttext"):
        assert result and all(label and text and text == text.strip() for label, text in result)
    elif kind in ("tagged", "conll", "wordtag"):
        assert result and all(toks and len(toks) == len(tags) and all(toks) and all(tags) for toks, tags in result)
    elif kind == "parallel-tsv":
        assert result and all(s and t for s, t in result)
    elif kind == "vectors":
        words, vectors = result
        assert vectors.shape[0] == len(words) and np.all(np.isfinite(vectors))


@FUZZ
@given(raw_bytes, st.sampled_from(sorted(READERS)), st.sampled_from([".txt", ".bin"]))
def test_readers_parse_or_raise_corpus_error(tmp_path, data, kind, suffix):
    path = tmp_path / f"input{suffix}"
    path.write_bytes(data)
    try:
        result = READERS[kind](path)
    except CorpusError as exc:
        assert str(path) in str(exc) and "\n" not in str(exc)
        event(f"{kind}: CorpusError")
        return
    event(f"{kind}: parsed")
    _well_formed(kind, result)


@FUZZ
@given(raw_bytes, raw_bytes)
def test_aligned_files_parse_or_raise_corpus_error(tmp_path, a, b):
    (tmp_path / "src.txt").write_bytes(a)
    (tmp_path / "tgt.txt").write_bytes(b)
    try:
        pairs = read_parallel_files(tmp_path / "src.txt", tmp_path / "tgt.txt")
    except CorpusError as exc:
        assert str(tmp_path) in str(exc) and "\n" not in str(exc)
        return
    assert pairs and all(s and t for s, t in pairs)


@FUZZ
@given(st.lists(st.text(st.characters(codec="utf-8", exclude_characters="\n\r\x00"), max_size=30), min_size=1,
                max_size=20), st.sampled_from(sorted(READERS)))
def test_crlf_and_bom_read_like_the_clean_file(tmp_path, lines, kind):
    clean = "\n".join(lines) + "\n"
    results = []
    for name, text in (("clean", clean), ("crlf", clean.replace("\n", "\r\n")), ("bom", "\ufeff" + clean)):
        path = tmp_path / f"{name}.txt"
        path.write_bytes(text.encode("utf-8"))
        try:
            results.append(("ok", READERS[kind](path)))
        except CorpusError as exc:
            results.append(("error", str(exc).replace(str(path), "FILE")))
    if kind == "vectors" and results[0][0] == "ok":
        results = [(s, (r[0], r[1].tolist())) if s == "ok" else (s, r) for s, r in results]
    assert results[1] == results[0]
    assert results[2] == results[0]


words_st = st.lists(st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=8)
                    .filter(lambda w: not any(c.isspace() for c in w)), min_size=1, max_size=30, unique=True)


@FUZZ
@given(words_st, st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_vector_files_round_trip(tmp_path, words, dim, seed):
    vectors = np.random.default_rng(seed).standard_normal((len(words), dim)).astype(np.float32) * 10
    write_word2vec_binary(tmp_path / "v.bin", words, vectors)
    write_word2vec_text(tmp_path / "v.txt", words, vectors)
    got_words, got = read_word2vec(tmp_path / "v.bin")
    assert got_words == words and np.array_equal(got, vectors)
    got_words, got = read_word2vec(tmp_path / "v.txt")
    assert got_words == words
    np.testing.assert_allclose(got, vectors, rtol=1e-5, atol=1e-5)


@FUZZ
@given(words_st.filter(lambda ws: len(ws) >= 2 and all("\t" not in w and "\r" not in w for w in ws)),
       st.lists(st.integers(0, 2**40), min_size=30, max_size=30))
def test_vocab_files_round_trip(tmp_path, words, counts):
    vocab = Vocab(words, counts[: len(words)], total_tokens=sum(counts))
    vocab.save_tsv(tmp_path / "vocab.tsv")
    loaded = Vocab.load_tsv(tmp_path / "vocab.tsv")
    assert loaded.words == vocab.words and loaded.counts.tolist() == vocab.counts.tolist()
    assert loaded.total_tokens == vocab.total_tokens
    index = TokenIndex(words)
    index.save(tmp_path / "tokens.txt")
    assert TokenIndex.load(tmp_path / "tokens.txt").tokens == index.tokens
