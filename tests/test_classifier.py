"""LSTM classifier: masking, pooling, file formats, errors, and a short real run on chnsenti."""

import json

import numpy as np
import paddle
import pytest

from paddle_hsoftmax.cli import main
from paddle_hsoftmax.data import CorpusError
from paddle_hsoftmax.data.datasets import chnsenti, split_811
from paddle_hsoftmax.data.labeled import read_classification
from paddle_hsoftmax.metrics import classification_scores
from paddle_hsoftmax.models.classifier import TextClassifier, masked_pool
from paddle_hsoftmax.safe_io import load_state


@pytest.fixture(scope="module")
def senti():
    return chnsenti()


def test_chnsenti_split_is_deduplicated_and_disjoint(senti):
    sizes = {k: len(v) for k, v in senti.items()}
    assert sum(sizes.values()) == 8332 + 9031
    assert sizes["test"] == sizes["valid"] == (8332 + 9031) // 10
    texts = {k: {t for _, t in v} for k, v in senti.items()}
    assert not texts["train"] & texts["test"] and not texts["train"] & texts["valid"]
    assert split_811(list(range(20)))["test"] == split_811(list(range(20)))["test"]  # deterministic


@pytest.mark.parametrize("pooling", ["last", "mean", "max"])
@pytest.mark.parametrize("bidirectional", [True, False])
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_padding_never_changes_the_output(pooling, bidirectional, cell):
    paddle.seed(0)
    model = TextClassifier(30, 3, embed_dim=8, hidden_size=6, pooling=pooling, bidirectional=bidirectional, cell=cell)
    model.eval()
    sentence = paddle.to_tensor([[5, 7, 9, 2]])
    alone = model(sentence, paddle.to_tensor([4])).numpy()
    batch = paddle.to_tensor([[5, 7, 9, 2, 0, 0, 0], [3, 4, 5, 6, 7, 8, 9]])
    padded = model(batch, paddle.to_tensor([4, 7])).numpy()
    np.testing.assert_allclose(padded[0], alone[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.exp(padded).sum(axis=-1), 1.0, rtol=1e-5)


def test_pooling_by_hand():
    states = paddle.to_tensor(np.arange(2 * 3 * 4, dtype="float32").reshape(2, 3, 4))
    lengths = paddle.to_tensor([2, 3])
    s = states.numpy()
    np.testing.assert_allclose(masked_pool(states, lengths, "mean", False).numpy()[0], s[0, :2].mean(0))
    np.testing.assert_allclose(masked_pool(states, lengths, "max", False).numpy()[0], s[0, :2].max(0))
    np.testing.assert_allclose(masked_pool(states, lengths, "last", False).numpy()[0], s[0, 1])
    # bidirectional: forward half at the last real step, backward half at step 0
    both = masked_pool(states, lengths, "last", True).numpy()[0]
    np.testing.assert_allclose(both, np.concatenate([s[0, 1, :2], s[0, 0, 2:]]))


def test_formats_and_errors(tmp_path):
    tsv = tmp_path / "a.tsv"
    tsv.write_bytes("\ufeffpos\t好 看\r\nneg\t难看\n\n".encode("utf-8"))
    assert read_classification(tsv) == [("pos", "好 看"), ("neg", "难看")]
    ft = tmp_path / "a.ft"
    ft.write_text("__label__sports the match\n__label__news today\n", encoding="utf-8")
    assert read_classification(ft) == [("sports", "the match"), ("news", "today")]
    bad = tmp_path / "bad.tsv"
    bad.write_text("pos\tfine\nno tab here\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"bad.tsv:2: expected 'label<TAB>text'"):
        read_classification(bad)
    bad.write_text("__label__a text\n__label__b __label__c two labels\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"bad.tsv:2: several labels"):
        read_classification(bad)
    bad.write_text("pos\t   \n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"bad.tsv:1: label 'pos' has no text"):
        read_classification(bad)


def test_scores_by_hand():
    s = classification_scores([0, 0, 1, 1, 2], [0, 1, 1, 1, 0], ["a", "b", "c"])
    assert s["accuracy"] == pytest.approx(3 / 5)
    # a: P 1/2 R 1/2 F 1/2; b: P 2/3 R 1 F 0.8; c: 0
    assert s["macro_f1"] == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert s["confusion"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]


def test_own_tsv_files_end_to_end(senti, tmp_path, capsys):
    """A user's own files (here: slices of the real review data in English-style TSV), with a
    label that only the test file has: reported, scored as an error, not crashed on."""
    def write(name, items):
        path = tmp_path / name
        path.write_text("".join(f"{label}\t{text}\n" for label, text in items), encoding="utf-8")
        return path

    train = write("train.tsv", senti["train"][:600])
    valid = write("valid.tsv", senti["valid"][:200])
    test_items = senti["test"][:199] + [("mixed", "一般般吧")]
    test = write("test.tsv", test_items)
    out = tmp_path / "run"
    code = main(["classify", "--train", str(train), "--valid", str(valid), "--test", str(test), "--output-dir",
                 str(out), "--epochs", "2", "--embed-dim", "16", "--hidden", "16", "--max-len", "64",
                 "--no-progress", "--pooling", "last", "--baseline"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "test:mixed x1" in printed
    assert "baseline TF-IDF token 1-3-grams + logistic regression" in printed
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert 0.5 < metrics["baseline"]["test_accuracy"] <= 199 / 200  # the unseen label counts as an error
    assert metrics["baseline"]["C"] in (0.3, 1.0, 3.0, 10.0, 30.0)
    assert metrics["test"]["unseen_label_items"] == 1
    assert (out / "checkpoints" / "best.pdckpt").exists()
    assert (out / "labels.txt").read_text(encoding="utf-8").split() == ["neg", "pos"]

    # the paddle.jit export predicts what the best checkpoint predicts, through `predict`
    from paddle_hsoftmax.inference import load_classifier
    from paddle_hsoftmax.data.vocab import TokenIndex
    from paddle_hsoftmax.pipeline.encoding import NgramIndex
    from paddle_hsoftmax.tasks.classify import tokenize_text

    texts = [text for _, text in senti["test"][:40]]
    predict, labels = load_classifier(out)
    # the reported test accuracy is what the exported model scores on the whole test file (the
    # label only the test file has counted wrong)
    all_ids, _ = predict([text for _, text in test_items])
    expected = np.mean([labels[i] == gold for i, (gold, _) in zip(all_ids, test_items)])
    assert metrics["test_accuracy"] == pytest.approx(expected, abs=1e-9)
    ids, probs = predict(texts)
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    vocab = TokenIndex.load(out / "tokens.txt")
    grams = NgramIndex.load(out / "ngrams.txt")
    saved = load_state(out / "checkpoints" / "best.pdckpt")["model"]
    assert grams.order == 3 and tuple(saved["ngram.ratios"].shape) == (len(grams), 2)
    eager = TextClassifier(len(vocab), 2, embed_dim=16, hidden_size=16, pooling="last",
                           dropout=config["dropout"], ngram_ratios=np.zeros((len(grams), 2), np.float32))
    eager.set_state_dict(saved)
    eager.eval()
    for text, i, p in zip(texts[:10], ids, probs):
        tokens = tokenize_text(text, "char")[:64]
        seq, g = vocab.encode(tokens), grams.encode(tokens)
        ref = np.exp(eager(paddle.to_tensor(seq[None]), paddle.to_tensor([len(seq)]),
                           paddle.to_tensor(g[None] if len(g) else np.zeros((1, 1), np.int64))).numpy()[0])
        np.testing.assert_allclose(p, ref, rtol=1e-4, atol=1e-6)
        assert i == ref.argmax()
    source = tmp_path / "new.txt"
    source.write_text("\n".join(texts[:3]) + "\n", encoding="utf-8")
    assert main(["predict", str(out), "--input", str(source), "--probabilities"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and all(line.split("\t")[0] in labels for line in lines)


def test_classify_cli_errors(tmp_path, capsys):
    assert main(["classify", "--train", str(tmp_path / "x.tsv"), "--output-dir", str(tmp_path / "o")]) == 2
    assert "--valid-file and --test-file" in capsys.readouterr().err
    missing = tmp_path / "missing.tsv"
    assert main(["classify", "--train", str(missing), "--valid", str(missing), "--test", str(missing),
                 "--output-dir", str(tmp_path / "o2")]) == 2
    assert "no such file" in capsys.readouterr().err
    # a bag of n-grams without n-grams: one line, before the output directory is touched
    assert main(["classify", "--dataset", "chnsenti", "--ngrams", "0", "--bag-dim", "16",
                 "--output-dir", str(tmp_path / "o3")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--bag-dim 16 needs --ngrams > 0" in err[0], err
    assert not (tmp_path / "o3").exists()


def test_init_vectors_fill_known_tokens(senti, tmp_path):
    from paddle_hsoftmax.export import write_word2vec_text
    from paddle_hsoftmax.tasks.classify import ClassifyConfig, ClassifyTask

    small = {"train": senti["train"][:200], "valid": senti["valid"][:50], "test": senti["test"][:50]}
    words = ["好", "差", "不存在的词"]
    vectors = np.arange(3 * 8, dtype=np.float32).reshape(3, 8)
    path = tmp_path / "v.txt"
    write_word2vec_text(path, words, vectors)
    task = ClassifyTask(ClassifyConfig(embed_dim=8, hidden_size=8, init_vectors=str(path)), small)
    table = task.model.embed.weight.numpy()
    for w, v in zip(words[:2], vectors[:2]):
        np.testing.assert_allclose(table[task.vocab.index[w]], v)
    assert 0 < task.init_coverage < 1
    with pytest.raises(ValueError, match="8 dimensions, --embed-dim is 16"):
        ClassifyTask(ClassifyConfig(embed_dim=16, hidden_size=8, init_vectors=str(path)), small)


def test_nb_ratios_by_hand():
    from paddle_hsoftmax.models.classifier import nb_log_count_ratios

    X = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 1]], dtype=np.float64)  # 3 texts, 3 features
    y = np.array([1, 1, 0])
    r = nb_log_count_ratios(X.T @ np.eye(2)[y], alpha=1.0)
    p = np.array([2, 1, 0]) + 1.0  # class 1
    q = np.array([0, 0, 1]) + 1.0  # class 0
    np.testing.assert_allclose(r[:, 1], np.log(p / p.sum()) - np.log(q / q.sum()), rtol=1e-6)
    np.testing.assert_allclose(r[:, 0], -r[:, 1], rtol=1e-6)  # two classes: each other's negation


def test_ngram_branch_against_numpy_and_finite_differences():
    from paddle_hsoftmax.models.classifier import NgramNB

    rng = np.random.default_rng(0)
    ratios = rng.normal(size=(7, 3)).astype(np.float32)
    layer = NgramNB(ratios, weight_decay=0.0)
    w = rng.normal(size=(7, 3)).astype(np.float32)
    layer.weight.set_value(w)
    ids = np.array([[1, 4, 6, 0], [2, 0, 0, 0]], dtype=np.int64)  # 0 = padding
    scores = layer(paddle.to_tensor(ids))
    r64, w64 = ratios.astype(np.float64), w.astype(np.float64)
    r64[0] = 0.0
    ref = np.stack([(r64[row] * w64[row]).sum(0) for row in ids])
    np.testing.assert_allclose(scores.numpy(), ref, rtol=1e-5, atol=1e-6)
    # gradient of sum(scores * c) against central differences of the NumPy reference (float64)
    c = rng.normal(size=(2, 3))
    (scores * paddle.to_tensor(c.astype(np.float32))).sum().backward()
    grad = layer.weight.grad.numpy()

    def f(wv):
        return sum((r64[row] * wv[row]).sum(0) @ c[b] for b, row in enumerate(ids))

    eps = 1e-6
    for f_, k in [(1, 0), (4, 2), (6, 1), (2, 2), (3, 0), (0, 1)]:
        up, down = w64.copy(), w64.copy()
        up[f_, k] += eps
        down[f_, k] -= eps
        np.testing.assert_allclose(grad[f_, k], (f(up) - f(down)) / (2 * eps), rtol=1e-4, atol=1e-6)
    assert grad[0].tolist() == [0.0, 0.0, 0.0] and grad[5].tolist() == [0.0, 0.0, 0.0]


@pytest.mark.slow
def test_ngram_branch_and_hsoftmax_head_learn(senti):
    """Trained briefly on real reviews, each configuration beats its untrained self on held-out
    texts by a margin; the H-softmax head's distribution sums to 1 and its tree search agrees
    with the argmax of the full distribution."""
    from paddle_hsoftmax.tasks.classify import ClassifyConfig, ClassifyTask

    small = {"train": senti["train"][:1500], "valid": senti["valid"][:300], "test": senti["test"][:300]}
    for extra in ({"ngrams": 3}, {"ngrams": 0, "output": "hsoftmax"}):
        config = ClassifyConfig(embed_dim=16, hidden_size=16, max_len=48, lr=5e-3, **extra)
        task = ClassifyTask(config, small)
        before = task.scores("valid")["accuracy"]
        for _ in range(2):
            for batch in task.epoch_batches(0):
                task.train_step(batch)
                task.optimizer.step()
                task.optimizer.clear_grad()
        after = task.scores("valid")["accuracy"]
        assert after > max(before, 0.6) + 0.05, (extra, before, after)
        if extra.get("output") == "hsoftmax":
            ids = task.data["valid"][0][:50]
            tokens, lengths = task.pad(ids)
            task.model.eval()
            full = task.model(paddle.to_tensor(tokens), paddle.to_tensor(lengths)).numpy()
            np.testing.assert_allclose(np.exp(full).sum(-1), 1.0, rtol=1e-5)
            searched = task.model.output_layer.predict(
                task.model.features(paddle.to_tensor(tokens), paddle.to_tensor(lengths)), k=1).ids.numpy()[:, 0]
            np.testing.assert_array_equal(searched, full.argmax(-1))
