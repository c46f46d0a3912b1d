"""Sequence tagger: tagging file formats, masking, and that both heads learn a real tag set."""

import numpy as np
import paddle
import pytest
from conftest import write_pd_slice

from paddle_hsoftmax.data import CorpusError
from paddle_hsoftmax.data.tagged import read_tagged
from paddle_hsoftmax.data.vocab import TokenIndex
from paddle_hsoftmax.models.tagger import SequenceTagger


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
def test_padding_never_changes_tags_or_loss(crf):
    paddle.seed(0)
    model = SequenceTagger(20, 5, embed_dim=8, hidden_size=6, crf=crf)
    model.eval()
    alone_tokens, alone_len = paddle.to_tensor([[3, 4, 5]]), paddle.to_tensor([3])
    tags = paddle.to_tensor([[1, 2, 3]])
    batch = paddle.to_tensor([[3, 4, 5, 0, 0], [6, 7, 8, 9, 10]])
    lengths = paddle.to_tensor([3, 5])
    batch_tags = paddle.to_tensor([[1, 2, 3, 0, 0], [4, 4, 1, 0, 2]])
    np.testing.assert_allclose(model.loss(batch, lengths, batch_tags).numpy()[0],
                               model.loss(alone_tokens, alone_len, tags).numpy()[0], rtol=1e-5)
    assert model.decode(batch, lengths).numpy()[0, :3].tolist() == model.decode(alone_tokens, alone_len).numpy()[0].tolist()
    assert model.decode(batch, lengths).numpy()[0, 3:].tolist() == [0, 0]


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
    assert 0 < metrics["test_accuracy"] < 1 and metrics["test"]["unseen_tag_tokens"] == 1
    assert (tmp_path / "run" / "checkpoints" / "best.pdckpt").exists()
