"""Evaluation: our similarity/analogy code agrees with gensim's evaluators on the same vectors."""

import numpy as np
import pytest
from gensim.models import KeyedVectors
from gensim.test.utils import datapath

from paddle_hsoftmax.evaluate import evaluate_analogy, evaluate_similarity, load_vectors, main, nearest
from paddle_hsoftmax.export import write_word2vec_binary, write_word2vec_text


@pytest.fixture(scope="module")
def vectors(tmp_path_factory):
    """Vectors for the words of WordSim353 and of the first analogy sections, random but with a
    structure (capital/country offsets) so the scores are not all zero."""
    words = []
    with open(datapath("wordsim353.tsv"), encoding="utf-8") as f:
        for line in f:
            if not line.startswith("#"):
                words += [w.lower() for w in line.split("\t")[:2]]
    with open(datapath("questions-words.txt"), encoding="utf-8") as f:
        for line in list(f)[:600]:
            if not line.startswith(":"):
                words += [w.lower() for w in line.split()]
    words = list(dict.fromkeys(words))
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(len(words), 20)).astype(np.float32)
    offset = rng.normal(size=20).astype(np.float32) * 3
    with open(datapath("questions-words.txt"), encoding="utf-8") as f:
        for line in list(f)[1:300]:
            a, b, c, d = [w.lower() for w in line.split()]
            vecs[words.index(b)] = vecs[words.index(a)] + offset
            vecs[words.index(d)] = vecs[words.index(c)] + offset
    path = tmp_path_factory.mktemp("vec") / "vectors.bin"
    write_word2vec_binary(path, words, vecs)
    write_word2vec_text(path.with_suffix(".txt"), words, vecs)
    return path


def test_text_and_binary_load_the_same(vectors):
    w1, v1 = load_vectors(vectors)
    w2, v2 = load_vectors(vectors.with_suffix(".txt"))
    assert w1 == w2
    np.testing.assert_allclose(v1, v2, rtol=1e-5, atol=1e-6)


def test_similarity_matches_gensim(vectors):
    words, vecs = load_vectors(vectors)
    ours = evaluate_similarity(words, vecs, datapath("wordsim353.tsv"))
    kv = KeyedVectors.load_word2vec_format(str(vectors), binary=True)
    pearson, spearman, oov = kv.evaluate_word_pairs(datapath("wordsim353.tsv"))
    assert ours["spearman"] == pytest.approx(spearman.statistic, abs=1e-6)
    assert ours["pairs_used"] == ours["pairs_total"] == 353


def test_analogy_matches_gensim(vectors):
    words, vecs = load_vectors(vectors)
    ours = evaluate_analogy(words, vecs, datapath("questions-words.txt"))
    kv = KeyedVectors.load_word2vec_format(str(vectors), binary=True)
    score, _ = kv.evaluate_word_analogies(datapath("questions-words.txt"))
    assert ours["accuracy"] == pytest.approx(score, abs=1e-9)
    assert 0.2 < ours["accuracy"] < 1.0  # the planted offsets are found, the rest are not


def test_nearest_and_cli(vectors, tmp_path, capsys):
    words, vecs = load_vectors(vectors)
    top = nearest(words, vecs, words[0], k=3)
    assert len(top) == 3 and words[0] not in [w for w, _ in top]
    assert main([str(vectors), "--similarity", datapath("wordsim353.tsv"), "--neighbours", words[0],
                 "--json", str(tmp_path / "scores.json")]) == 0
    assert "Spearman" in capsys.readouterr().out
    assert (tmp_path / "scores.json").exists()
    assert main([str(tmp_path / "missing")]) == 2
