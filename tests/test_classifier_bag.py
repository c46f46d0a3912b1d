"""The classifier's bag of n-gram embeddings (fastText's text vector) beside the LSTM: the layer
against NumPy and finite differences, and under the H-softmax head a short real run that learns,
whose distribution sums to 1 and whose export predicts what the run scored."""

import json

import numpy as np
import paddle
import pytest

from paddle_hsoftmax.cli import main
from paddle_hsoftmax.data.datasets import chnsenti
from paddle_hsoftmax.models.classifier import NgramBag, TextClassifier


def test_ngram_bag_against_numpy_and_finite_differences():
    rng = np.random.default_rng(0)
    layer = NgramBag(7, 3, sparse=False)
    w = rng.normal(size=(7, 3)).astype(np.float32)
    w[0] = 0.0  # the padding row
    layer.embed.weight.set_value(w)
    ids = np.array([[1, 4, 6, 4], [2, 0, 0, 0], [0, 0, 0, 0]], dtype=np.int64)  # 0 = padding; text 3 is empty
    out = layer(paddle.to_tensor(ids))
    w64 = w.astype(np.float64)

    def f(wv):  # the float64 reference: the mean of the rows of the text's ids, zeros for no id
        return np.stack([wv[row[row > 0]].mean(0) if (row > 0).any() else np.zeros(3) for row in ids])

    np.testing.assert_allclose(out.numpy(), f(w64), rtol=1e-6, atol=1e-7)
    c = rng.normal(size=(3, 3))
    (out * paddle.to_tensor(c.astype(np.float32))).sum().backward()
    grad = layer.embed.weight.grad.numpy()
    eps = 1e-6
    for r, k in [(1, 0), (4, 2), (6, 1), (2, 2), (3, 0)]:
        up, down = w64.copy(), w64.copy()
        up[r, k] += eps
        down[r, k] -= eps
        np.testing.assert_allclose(grad[r, k], ((f(up) - f(down)) * c).sum() / (2 * eps), rtol=1e-4, atol=1e-6)
    assert grad[0].tolist() == [0.0, 0.0, 0.0] and grad[5].tolist() == [0.0, 0.0, 0.0]


def test_bag_joins_the_features_and_is_required():
    paddle.seed(0)
    model = TextClassifier(20, 3, embed_dim=4, hidden_size=4, bag_ngrams=9, bag_dim=5)
    model.eval()
    tokens, lengths = paddle.to_tensor([[3, 4, 0], [5, 6, 7]]), paddle.to_tensor([2, 3])
    ngrams = paddle.to_tensor([[1, 2, 0], [8, 0, 0]])
    assert model.feature_size == 8 + 5 and model.takes_ngrams
    assert model.features(tokens, lengths, ngrams).shape == [2, 13]
    np.testing.assert_allclose(np.exp(model(tokens, lengths, ngrams).numpy()).sum(-1), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match="n-gram ids"):
        model.features(tokens, lengths)


def test_same_seed_same_model_under_hsoftmax():
    """Every parameter, the H-softmax head's node vectors and the bag included, comes from the seed
    (the head was once built before the seed was set, so two runs of one command differed)."""
    from paddle_hsoftmax.tasks.classify import ClassifyConfig, ClassifyTask

    senti = chnsenti()
    small = {"train": senti["train"][:200], "valid": senti["valid"][:20], "test": senti["test"][:20]}
    config = dict(embed_dim=4, hidden_size=4, ngrams=2, bag_dim=4, output="hsoftmax")
    a = ClassifyTask(ClassifyConfig(**config), small).model.state_dict()
    paddle.seed(12345)  # whatever the global generator did in between
    paddle.randn([7])
    b = ClassifyTask(ClassifyConfig(**config), small).model.state_dict()
    assert a.keys() == b.keys() and any("output_layer" in k for k in a)
    for k in a:
        np.testing.assert_array_equal(a[k].numpy(), b[k].numpy(), err_msg=k)


@pytest.mark.slow
def test_bag_under_hsoftmax_learns_and_its_export_agrees(tmp_path, capsys):
    """Real reviews (small slices of chnsenti), the H-softmax head, the bag beside a tiny LSTM:
    better than the untrained model, and ``predict`` through the export scores the test file as
    the run did."""
    from paddle_hsoftmax.inference import load_classifier
    from paddle_hsoftmax.tasks.classify import ClassifyConfig, ClassifyTask

    senti = chnsenti()
    small = {"train": senti["train"][:1500], "valid": senti["valid"][:300], "test": senti["test"][:300]}
    config = ClassifyConfig(embed_dim=8, hidden_size=8, max_len=48, lr=5e-3, ngrams=2, bag_dim=16, output="hsoftmax")
    task = ClassifyTask(config, small)
    assert task.model.ngram is None and task.model.bag is not None  # the bag only: no NB table under H-softmax
    before = task.scores("valid")["accuracy"]
    for epoch in range(2):
        for batch in task.epoch_batches(epoch):
            task.train_step(batch)
            task.optimizer.step()
            task.optimizer.clear_grad()
    after = task.scores("valid")["accuracy"]
    assert after > max(before, 0.6) + 0.05, (before, after)

    for part, items in small.items():
        (tmp_path / f"{part}.tsv").write_text("".join(f"{a}\t{b}\n" for a, b in items), encoding="utf-8")
    out = tmp_path / "run"
    assert main(["classify", "--train", str(tmp_path / "train.tsv"), "--valid", str(tmp_path / "valid.tsv"),
                 "--test", str(tmp_path / "test.tsv"), "--output-dir", str(out), "--output", "hsoftmax",
                 "--ngrams", "2", "--bag-dim", "16", "--epochs", "1", "--embed-dim", "8", "--hidden", "8",
                 "--no-progress"]) == 0
    assert "a bag of 16-d embeddings beside the LSTM" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    predict, labels = load_classifier(out)
    ids, probs = predict([t for _, t in small["test"]])
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    assert metrics["test_accuracy"] == pytest.approx(np.mean([labels[i] == g for i, (g, _) in zip(ids, small["test"])]))
