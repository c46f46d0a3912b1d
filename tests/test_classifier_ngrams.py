"""The classifier's n-gram features with word tokens (words' character n-grams) and the rule that
weighs the BiLSTM's vote beside the n-gram branch (robust_mix)."""

import json

import numpy as np
import pytest

from paddle_hsoftmax.cli import main
from paddle_hsoftmax.data import CorpusError
from paddle_hsoftmax.pipeline.encoding import NgramIndex, token_ngrams, word_char_ngrams
from paddle_hsoftmax.tasks.classify import ClassifyConfig, ClassifyTask, robust_mix


def _two_class(ngram_margin, rnn_margin):
    """Scores ``[N, 2]`` whose class-1 margins are the given ones (gold is class 1 everywhere)."""
    n = len(ngram_margin)
    ngram, rnn = np.zeros((n, 2), np.float32), np.zeros((n, 2), np.float32)
    ngram[:, 1], rnn[:, 1] = ngram_margin, rnn_margin
    return rnn, ngram, np.ones(n, dtype=np.int64)


def _texts(fixed, broken, right=300, wrong=100):
    """N-gram margins and BiLSTM margins: ``fixed`` texts the vote turns right at any weight >= 0.1,
    ``broken`` ones it turns wrong, the rest untouched."""
    m = [-0.05] * fixed + [0.05] * broken + [1.0] * right + [-1.0] * wrong
    r = [1.0] * fixed + [-1.0] * broken + [0.0] * (right + wrong)
    return _two_class(m, r)


def test_robust_mix_takes_the_vote_only_beyond_the_noise():
    # +4 texts on 8 discordant ones: 4 <= 2 * sqrt(8) = 5.7, noise -> the n-gram branch alone
    rnn, ngram, gold = _texts(fixed=6, broken=2)
    weight, accs, gain = robust_mix(rnn, ngram, gold)
    assert (weight, gain) == (0.0, 0)
    assert accs[0.0] == pytest.approx(302 / 408) and accs[0.1] == pytest.approx(306 / 408)  # the plain best: 0.1
    # +38 texts on 42: 38 > 2 * sqrt(42) = 13.0 -> the smallest weight of the best accuracy
    rnn, ngram, gold = _texts(fixed=40, broken=2)
    weight, accs, gain = robust_mix(rnn, ngram, gold)
    assert (weight, gain) == (0.1, 38)
    assert accs[1.0] == accs[0.1] == pytest.approx(340 / 442)
    # a vote that only breaks texts is never taken
    rnn, ngram, gold = _texts(fixed=0, broken=30)
    assert robust_mix(rnn, ngram, gold)[0] == 0.0


def test_word_character_ngrams_never_collide_with_token_ngrams():
    chars = word_char_ngrams(["a", "b"], 3)
    assert chars == [" <a", " a>", " <a>", " <b", " b>", " <b>"]
    # tokens hold no white space: even tokens spelled like the character n-grams stay apart
    assert not set(chars) & set(token_ngrams(["a", "b", "<a>", "<a", "a>", "<b"], 3))
    assert all(g.startswith(" ") for g in chars)


def test_ngram_index_with_characters_saves_loads_and_shares_subwords(tmp_path):
    train = [["great", "movie,"], ["dull", "movie"], ["great", "fun"]]
    index = NgramIndex.build(train, 2, chars=4)
    assert index.chars == 4 and " <gr" in index.index and "great movie," in index.index
    # an inflection never seen in training still finds its word's character n-grams
    seen = set(index.encode(["movies"]).tolist())
    assert {index.index[" <mo"], index.index[" movi"]} <= seen
    assert index.index["movie"] not in seen
    path = tmp_path / "ngrams.txt"
    index.save(path)
    assert path.read_text(encoding="utf-8").splitlines()[0] == "order 2 chars 4"
    again = NgramIndex.load(path)
    assert (again.order, again.chars, again.grams) == (2, 4, index.grams)
    np.testing.assert_array_equal(again.encode(["dull", "fun!"]), index.encode(["dull", "fun!"]))
    # an index written before character n-grams existed: token n-grams only
    path.write_text("order 3\na\nb\n", encoding="utf-8")
    old = NgramIndex.load(path)
    assert (old.order, old.chars, len(old)) == (3, 0, 3)
    path.write_text("order 3 chars x\na\n", encoding="utf-8")
    with pytest.raises(CorpusError, match="ngrams.txt:1: not an n-gram index"):
        NgramIndex.load(path)


def test_character_ngrams_only_with_word_tokens():
    splits = {"train": [("p", "good film"), ("n", "bad film")], "valid": [("p", "good")], "test": [("n", "bad")]}
    words = ClassifyTask(ClassifyConfig(tokenizer="whitespace", embed_dim=4, hidden_size=4), splits)
    assert words.ngrams.chars == 5 and " <go" in words.ngrams.index
    chars = ClassifyTask(ClassifyConfig(tokenizer="char", embed_dim=4, hidden_size=4), splits)
    assert chars.ngrams.chars == 0  # characters are the tokens already
    none = ClassifyTask(ClassifyConfig(tokenizer="whitespace", ngram_chars=0, embed_dim=4, hidden_size=4), splits)
    assert none.ngrams.chars == 0 and " <go" not in none.ngrams.index


def test_english_words_end_to_end_predict_agrees(tmp_path, capsys):
    """English-style TSV with whitespace tokens: the run writes the character n-grams' index, and
    `predict` through the export scores the test file as the run did."""
    rng = np.random.default_rng(0)
    pos, neg = ["great", "superb", "moving", "funny"], ["dull", "boring", "awful", "flat"]
    filler = ["the", "film", "is", "and", "plot", "a", "cast"]

    def text(words):
        return " ".join(list(rng.choice(filler, 4)) + [w + rng.choice(["", "ly", ",", "!"]) for w in rng.choice(words, 2)])

    def write(name, n):
        items = [("pos", text(pos)) if i % 2 else ("neg", text(neg)) for i in range(n)]
        (tmp_path / name).write_text("".join(f"{a}\t{b}\n" for a, b in items), encoding="utf-8")
        return items

    write("train.tsv", 200), write("valid.tsv", 40)
    test_items = write("test.tsv", 40)
    out = tmp_path / "run"
    assert main(["classify", "--train", str(tmp_path / "train.tsv"), "--valid", str(tmp_path / "valid.tsv"),
                 "--test", str(tmp_path / "test.tsv"), "--output-dir", str(out),
                 "--epochs", "2", "--embed-dim", "8", "--hidden", "8", "--no-progress"]) == 0
    assert "word character 2..5-grams" in capsys.readouterr().out
    # --tokenizer auto (the default) picked words for English text, and the run records the pick
    assert json.loads((out / "config.json").read_text(encoding="utf-8"))["tokenizer"] == "whitespace"
    assert (out / "ngrams.txt").read_text(encoding="utf-8").splitlines()[0] == "order 3 chars 5"
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["test_accuracy"] > 0.8  # the sentiment words decide, glued punctuation or not

    from paddle_hsoftmax.inference import load_classifier

    predict, labels = load_classifier(out)
    ids, _ = predict([t for _, t in test_items])
    assert metrics["test_accuracy"] == pytest.approx(np.mean([labels[i] == g for i, (g, _) in zip(ids, test_items)]))
