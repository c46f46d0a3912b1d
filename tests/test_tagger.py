"""Sequence tagger: tagging file formats, masking, and that both heads learn a real tag set."""

import numpy as np
import paddle
import pytest
from conftest import write_pd_slice

from paddle_hsoftmax.data import CorpusError
from paddle_hsoftmax.data.tagged import read_tagged
from paddle_hsoftmax.data.vocab import TokenIndex
from paddle_hsoftmax.models.tagger import SequenceTagger
from paddle_hsoftmax.safe_io import load_state, load_tensors


def test_conll_and_wordtag_files(tmp_path):
    conll = tmp_path / "a.conll"
    conll.write_bytes("\ufeffEU\tB-ORG\r\nrejects\tO\n\nPeter\tB-PER\nBlackburn\tI-PER\n".encode("utf-8"))
    assert read_tagged(conll) == [(["EU", "rejects"], ["B-ORG", "O"]), (["Peter", "Blackburn"], ["B-PER", "I-PER"])]
    wt = write_pd_slice(tmp_path / "pd.txt", 3)
    sents = read_tagged(wt)
    assert len(sents) == 3 and sents[0][0][:2] == ["迈向", "充满"] and sents[0][1][:2] == ["v", "v"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("a\tB\tC\n", r"bad.txt:1: expected 2 columns \(token, tag\), got 3"),
        ("a\tO\nb\t\n", r"bad.txt:2: empty tag"),
        ("词/n 孤词\n", r"bad.txt:1: token '孤词' is not of the form word/TAG"),
        ("\n\n", r"no tagged sentences"),
    ],
)
def test_tagged_errors(tmp_path, text, message):
    bad = tmp_path / "bad.txt"
    bad.write_text(text, encoding="utf-8")
    with pytest.raises(CorpusError, match=message):
        read_tagged(bad)


@pytest.mark.parametrize("crf", [False, True])
@pytest.mark.parametrize("num_chars", [0, 12])
def test_padding_never_changes_tags_or_loss(crf, num_chars):
    """The same sentence alone and in a padded batch (more steps, longer words in the other
    sentence) gives the same loss and tags."""
    paddle.seed(0)
    model = SequenceTagger(20, 5, embed_dim=8, hidden_size=6, crf=crf, num_chars=num_chars, char_dim=4, char_filters=3)
    model.eval()
    alone_tokens, alone_len = paddle.to_tensor([[3, 4, 5]]), paddle.to_tensor([3])
    tags = paddle.to_tensor([[1, 2, 3]])
    batch = paddle.to_tensor([[3, 4, 5, 0, 0], [6, 7, 8, 9, 10]])
    lengths = paddle.to_tensor([3, 5])
    batch_tags = paddle.to_tensor([[1, 2, 3, 0, 0], [4, 4, 1, 0, 2]])
    alone_chars = batch_chars = None
    if num_chars:
        alone_chars = paddle.to_tensor([[[2, 3], [4, 0], [5, 6]]])  # (1, 3, 2)
        batch_chars = np.zeros((2, 5, 4), dtype=np.int64)  # (2, 5, 4): wider words, more steps
        batch_chars[0, :3, :2] = alone_chars.numpy()[0]
        batch_chars[1] = np.random.default_rng(0).integers(1, 12, size=(5, 4))
        batch_chars = paddle.to_tensor(batch_chars)
    np.testing.assert_allclose(model.loss(batch, lengths, batch_tags, batch_chars).numpy()[0],
                               model.loss(alone_tokens, alone_len, tags, alone_chars).numpy()[0], rtol=1e-5)
    together = model.decode(batch, lengths, batch_chars).numpy()
    assert together[0, :3].tolist() == model.decode(alone_tokens, alone_len, alone_chars).numpy()[0].tolist()
    assert together[0, 3:].tolist() == [0, 0]


def test_char_features_are_per_word_and_ignore_padding():
    from paddle_hsoftmax.models.char_cnn import CharCNN

    paddle.seed(1)
    cnn = CharCNN(10, char_dim=4, filters=5)
    word = paddle.to_tensor([[[3, 4, 5, 0, 0, 0]]])  # (1, 1, 6)
    short = paddle.to_tensor([[[3, 4, 5]]])
    np.testing.assert_allclose(cnn(word).numpy(), cnn(short).numpy(), rtol=1e-6)
    assert np.all(cnn(paddle.to_tensor([[[0, 0, 0]]])).numpy() == 0)  # a padded word: zeros
    # by hand: the max over positions of tanh(conv) of the real characters
    e = cnn.embed.weight.numpy()[[3, 4, 5]]  # (3, 4)
    w, b = cnn.conv.weight.numpy(), cnn.conv.bias.numpy()  # (5, 4, 3), (5,)
    padded = np.vstack([np.zeros((1, 4)), e, np.zeros((1, 4))])
    h = np.tanh(np.stack([np.einsum("fck,kc->f", w, padded[i:i + 3]) + b for i in range(3)]))
    np.testing.assert_allclose(cnn(short).numpy()[0, 0], h.max(axis=0), rtol=1e-5)


@pytest.mark.parametrize("crf", [False, True])
def test_jit_export_predicts_like_the_model(crf, tmp_path):
    from paddle_hsoftmax.inference import export_model
    from paddle_hsoftmax.models.crf import LinearChainCRF
    from paddle_hsoftmax.models.tagger import decode_scores

    paddle.seed(2)
    model = SequenceTagger(30, 7, embed_dim=8, hidden_size=8, crf=crf, num_chars=15, char_dim=4, char_filters=4)
    model.eval()
    rng = np.random.default_rng(0)
    tokens = paddle.to_tensor(rng.integers(1, 30, size=(3, 6)))
    lengths = paddle.to_tensor([6, 2, 4])
    chars = paddle.to_tensor(rng.integers(0, 15, size=(3, 6, 3)))
    export_model(model, tmp_path / "inference", with_chars=True)
    loaded = paddle.jit.load(str(tmp_path / "inference" / "model"))
    np.testing.assert_allclose(loaded(tokens, lengths, chars).numpy(), model(tokens, lengths, chars).numpy(),
                               rtol=1e-5, atol=1e-6)
    reloaded_crf = None
    if crf:
        reloaded_crf = LinearChainCRF(7)
        reloaded_crf.set_state_dict(load_tensors(tmp_path / "inference" / "crf.safetensors"))
    for t, l, c in [(tokens, lengths, chars), (tokens[:2, :3], paddle.to_tensor([3, 2]), chars[:2, :3])]:
        assert decode_scores(loaded(t, l, c), l, reloaded_crf).numpy().tolist() == model.decode(t, l, c).numpy().tolist()


@pytest.mark.slow  # measured in the quick suite run of 2026-12-01: 6 s with the CRF
@pytest.mark.parametrize("crf", [False, True])
def test_learns_pos_tags_on_a_slice(crf, tmp_path):
    """200 sentences of People's Daily (first 40 words each), a few epochs: training-set token accuracy far above the
    most-frequent-tag rate (a tagger that does not learn fails this)."""
    sents = [(w[:40], t[:40]) for w, t in read_tagged(write_pd_slice(tmp_path / "pd.txt", 200))]
    vocab = TokenIndex.build([w for w, _ in sents])
    tag_names = sorted({t for _, ts in sents for t in ts})
    tag_id = {t: i for i, t in enumerate(tag_names)}
    paddle.seed(0)
    model = SequenceTagger(len(vocab), len(tag_names), embed_dim=32, hidden_size=32, dropout=0.0, crf=crf)
    opt = paddle.optimizer.Adam(learning_rate=0.01, parameters=model.parameters())
    L = max(len(w) for w, _ in sents)
    tokens = np.zeros((len(sents), L), dtype=np.int64)
    tags = np.zeros((len(sents), L), dtype=np.int64)
    lengths = np.array([len(w) for w, _ in sents])
    for i, (w, t) in enumerate(sents):
        tokens[i, : len(w)] = vocab.encode(w)
        tags[i, : len(t)] = [tag_id[x] for x in t]
    for epoch in range(12):
        for s in range(0, len(sents), 50):
            loss = model.loss(paddle.to_tensor(tokens[s:s + 50]), paddle.to_tensor(lengths[s:s + 50]),
                              paddle.to_tensor(tags[s:s + 50])).sum() / lengths[s:s + 50].sum()
            loss.backward()
            opt.step()
            opt.clear_grad()
    model.eval()
    pred = model.decode(paddle.to_tensor(tokens), paddle.to_tensor(lengths)).numpy()
    mask = np.arange(L)[None] < lengths[:, None]
    accuracy = (pred == tags)[mask].mean()
    most_frequent = np.bincount(tags[mask]).max() / mask.sum()
    assert accuracy > max(0.8, most_frequent + 0.4), (accuracy, most_frequent)


def test_tag_command_on_own_files(tmp_path, capsys):
    """CoNLL files written from real People's Daily sentences (a user's own data), including a
    tag that only the test file has: the run works, reports it and scores it as an error."""
    import json

    from paddle_hsoftmax.cli import main

    sents = read_tagged(write_pd_slice(tmp_path / "pd.txt", 120))

    def conll(name, items):
        path = tmp_path / name
        path.write_text("".join("".join(f"{w}\t{t}\n" for w, t in zip(*s)) + "\n" for s in items), encoding="utf-8")
        return path

    test_items = sents[100:] + [(["新词"], ["NEWTAG"])]
    args = ["tag", "--train", str(conll("train.conll", sents[:80])), "--valid", str(conll("valid.conll", sents[80:100])),
            "--test", str(conll("test.conll", test_items)), "--output-dir", str(tmp_path / "run"), "--epochs", "2",
            "--embed-dim", "16", "--hidden", "16", "--no-progress", "--crf"]
    assert main(args) == 0
    assert "test:NEWTAG x1" in capsys.readouterr().out
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["test"]["unseen_tag_tokens"] == 1
    assert (tmp_path / "run" / "checkpoints" / "best.pdckpt").exists()
    assert (tmp_path / "run" / "chars.txt").exists()  # multi-character words: character features on
    assert "test_f1" not in metrics  # POS tags have no spans

    # the paddle.jit export (+ saved CRF) predicts what the best checkpoint predicts
    from paddle_hsoftmax.inference import load_tagger
    from paddle_hsoftmax.tasks.tag import TaggerInputs

    run = tmp_path / "run"
    predict, tag_names = load_tagger(run)
    # the reported test accuracy is what the exported model scores on the whole test file
    everything = predict([" ".join(words) for words, _ in test_items])
    hits = [p == g for (_, pred), (_, gold) in zip(everything, test_items) for p, g in zip(pred, gold)]
    assert len(hits) == metrics["test"]["tokens"]
    assert metrics["test_accuracy"] == pytest.approx(np.mean(hits), abs=1e-9)
    texts = [" ".join(words) for words, _ in sents[100:110]]
    predicted = predict(texts)
    inputs = TaggerInputs.load(run)
    eager = SequenceTagger(len(inputs.vocab), len(tag_names), embed_dim=16, hidden_size=16, crf=True,
                           num_chars=len(inputs.subunits))
    eager.set_state_dict(load_state(run / "checkpoints" / "best.pdckpt")["model"])
    eager.eval()
    for (words, _), (tokens, tags) in zip(sents[100:110], predicted):
        assert tokens == words
        ids, chars = inputs.encode(words)
        ref = eager.decode(paddle.to_tensor(ids[None]), paddle.to_tensor([len(ids)]), paddle.to_tensor(chars[None]))
        assert tags == [tag_names[i] for i in ref.numpy()[0]]
    source = tmp_path / "raw.txt"
    source.write_text("\n".join(texts[:3]) + "\n", encoding="utf-8")
    assert main(["predict", str(run), "--input", str(source)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[0] == " ".join(f"{w}/{t}" for w, t in zip(*predicted[0]))


def test_ner_spans_from_peoples_daily_slice(tmp_path, capsys):
    """Character-level BIO entities from real sentences (nr/ns/nt): span F1 is scored with
    seqeval, selects the best epoch, and `predict` tags raw characters."""
    import json

    from paddle_hsoftmax.cli import main
    from paddle_hsoftmax.data.datasets import ner_char_tags, read_peoples_daily

    sents = [ner_char_tags(s) for s in read_peoples_daily(write_pd_slice(tmp_path / "pd.txt", 90))]

    def conll(name, items):
        path = tmp_path / name
        path.write_text("".join("".join(f"{w}\t{t}\n" for w, t in zip(*s)) + "\n" for s in items), encoding="utf-8")
        return path

    out = tmp_path / "ner"
    args = ["tag", "--train", str(conll("train.conll", sents[:70])), "--valid", str(conll("valid.conll", sents[70:80])),
            "--test", str(conll("test.conll", sents[80:])), "--output-dir", str(out), "--epochs", "2",
            "--embed-dim", "16", "--hidden", "16", "--no-progress", "--tokenizer", "char"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "span scoring (bio)" in printed and "bigrams features" in printed  # one-character tokens
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert set(metrics["test"]["per_type"]) <= {"PER", "LOC", "ORG"}
    assert "valid_f1" in metrics and (out / "bigrams.txt").exists() and not (out / "chars.txt").exists()
    # the reported span F1 is seqeval's on what the exported model tags on the test sentences
    from paddle_hsoftmax.inference import load_tagger
    from paddle_hsoftmax.metrics import span_scores

    predict, _ = load_tagger(out)
    predicted = predict(["".join(chars) for chars, _ in sents[80:]])
    assert [tokens for tokens, _ in predicted] == [list(chars) for chars, _ in sents[80:]]
    expected = span_scores([tags for _, tags in sents[80:]], [tags for _, tags in predicted], "bio")
    assert metrics["test_f1"] == pytest.approx(expected["f1"], abs=1e-9)
    raw = tmp_path / "raw.txt"
    raw.write_text("江泽民在北京\n", encoding="utf-8")
    assert main(["predict", str(out), "--input", str(raw)]) == 0
    line = capsys.readouterr().out.strip()
    assert [tok.rpartition("/")[0] for tok in line.split()] == list("江泽民在北京")


def test_bigram_features_of_character_tokens():
    from paddle_hsoftmax.tasks.tag import TaggerInputs

    sents = [list("中国人民"), list("人民日报"), list("中国人民")]
    inputs = TaggerInputs.build(sents, min_count=1, mode="bigrams")
    ids, grams = inputs.encode(list("中国人民"))
    assert grams.shape == (4, 2)
    # left bigram of a character == right bigram of the one before it; ends use <s> and </s>
    assert grams[1:, 0].tolist() == grams[:-1, 1].tolist()
    assert inputs.subunits.encode(["<s>中", "民</s>"]).tolist() == [grams[0, 0], grams[3, 1]]
    # bigrams seen once in training read as unknown (id 1): 日报 appears once
    assert inputs.encode(list("日报"))[1][0, 1] == 1
    chars = TaggerInputs.build(sents, 1, "chars")
    zhong, guo, ren = chars.subunits.encode(["中", "国", "人"]).tolist()
    assert chars.encode(["中国", "人"])[1].tolist() == [[zhong, guo], [ren, 0]]  # (T, W), 0 = padding
