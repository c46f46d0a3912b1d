"""The CRF against brute-force enumeration of every tag sequence on tiny cases."""

import itertools

import numpy as np
import paddle
import pytest
from conftest import param_difference

from paddle_hsoftmax.models.crf import LinearChainCRF


@pytest.fixture(autouse=True)
def float64():
    old = paddle.get_default_dtype()
    paddle.set_default_dtype("float64")
    yield
    paddle.set_default_dtype(old)


def brute(crf, emissions, length):
    A, s, e = crf.transitions.numpy(), crf.start.numpy(), crf.end.numpy()
    K = A.shape[0]
    scores = {}
    for y in itertools.product(range(K), repeat=length):
        v = s[y[0]] + e[y[-1]] + sum(emissions[t, y[t]] for t in range(length))
        v += sum(A[y[t - 1], y[t]] for t in range(1, length))
        scores[y] = v
    values = np.array(list(scores.values()))
    log_z = values.max() + np.log(np.exp(values - values.max()).sum())
    return scores, log_z


@pytest.mark.parametrize("seed", range(8))
def test_loss_and_viterbi_equal_brute_force(seed):
    rng = np.random.default_rng(seed)
    K, T = 3, 5
    crf = LinearChainCRF(K)
    crf.transitions.set_value(rng.normal(size=(K, K)))
    crf.start.set_value(rng.normal(size=K))
    crf.end.set_value(rng.normal(size=K))
    lengths = np.array([5, 3, 1, 2])
    emissions = rng.normal(size=(4, T, K)) * 2
    tags = rng.integers(0, K, size=(4, T))
    nll = crf(paddle.to_tensor(emissions), paddle.to_tensor(tags), paddle.to_tensor(lengths)).numpy()
    decoded = crf.decode(paddle.to_tensor(emissions), paddle.to_tensor(lengths)).numpy()
    for b, n in enumerate(lengths):
        scores, log_z = brute(crf, emissions[b], n)
        gold = tuple(tags[b, :n])
        np.testing.assert_allclose(nll[b], log_z - scores[gold], rtol=1e-10)
        best = max(scores, key=scores.get)
        assert tuple(decoded[b, :n]) == best
        assert np.all(decoded[b, n:] == 0)
        # probabilities of all sequences sum to 1
        np.testing.assert_allclose(sum(np.exp(v - log_z) for v in scores.values()), 1.0, rtol=1e-10)


def test_padding_does_not_change_a_sequence():
    rng = np.random.default_rng(7)
    crf = LinearChainCRF(4)
    e = rng.normal(size=(1, 3, 4))
    tags = np.array([[1, 2, 3]])
    alone = crf(paddle.to_tensor(e), paddle.to_tensor(tags), paddle.to_tensor([3])).numpy()
    padded_e = np.concatenate([e, rng.normal(size=(1, 4, 4)) * 50], axis=1)
    padded_t = np.concatenate([tags, rng.integers(0, 4, size=(1, 4))], axis=1)
    padded = crf(paddle.to_tensor(padded_e), paddle.to_tensor(padded_t), paddle.to_tensor([3])).numpy()
    np.testing.assert_allclose(padded, alone, rtol=1e-12)
    d1 = crf.decode(paddle.to_tensor(e), paddle.to_tensor([3])).numpy()
    d2 = crf.decode(paddle.to_tensor(padded_e), paddle.to_tensor([3])).numpy()
    assert d1[0].tolist() == d2[0, :3].tolist()


def test_gradient_by_finite_differences():
    rng = np.random.default_rng(3)
    crf = LinearChainCRF(3)
    e = paddle.to_tensor(rng.normal(size=(2, 4, 3)), stop_gradient=False)
    tags, lengths = paddle.to_tensor(rng.integers(0, 3, size=(2, 4))), paddle.to_tensor([4, 2])
    crf(e, tags, lengths).sum().backward()
    analytic = crf.transitions.grad.numpy().copy()

    def loss():
        with paddle.no_grad():
            return float(crf(e, tags, lengths).sum())

    numeric = param_difference(loss, crf.transitions)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-8)
