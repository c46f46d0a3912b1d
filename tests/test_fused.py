"""The fused C++ word2vec kernel against the pure-Paddle path (autograd + SGD)."""

import numpy as np
import paddle
import pytest

from paddle_hsoftmax import build_balanced_tree, build_huffman_tree
from paddle_hsoftmax.word2vec_kernel import available as word2vec_kernel_available
from paddle_hsoftmax.word2vec_kernel import hs_step as word2vec_hs_step
from paddle_hsoftmax.models import Word2Vec

pytestmark = pytest.mark.skipif(not word2vec_kernel_available(), reason="no C++ compiler for the fused kernel")


def dense(param):
    g = param.grad
    out = np.zeros(param.shape, dtype=np.float64)
    np.add.at(out, np.asarray(g.rows()), g._get_tensor_from_selected_rows().numpy())
    return out


def model_with_random_weights(mode, tree, V=12, D=8, seed=0):
    rng = np.random.default_rng(seed)
    model = Word2Vec(V, D, tree, mode=mode, seed=seed)
    model.embedding.weight.set_value(rng.normal(0, 0.3, size=(V, D)).astype("float32"))
    model.output.weight.set_value(rng.normal(0, 0.3, size=(V - 1, D)).astype("float32"))
    return model


@pytest.mark.parametrize("mode, contexts", [("skipgram", [[4, -1, -1]]), ("cbow", [[4, 7, -1]])])
@pytest.mark.parametrize("tree_kind", ["huffman", "balanced"])
def test_one_update_equals_paddle_sgd(mode, contexts, tree_kind):
    """One centre with one skip-gram pair (or one CBOW window): word2vec's sequential update
    is exactly one SGD step on the summed loss."""
    counts = np.arange(12, 0, -1) * 3
    tree = build_huffman_tree(counts) if tree_kind == "huffman" else build_balanced_tree(12)
    model = model_with_random_weights(mode, tree)
    centres = np.array([11])
    ctx = np.array(contexts)
    loss, pairs = model(paddle.to_tensor(centres), paddle.to_tensor(ctx))
    loss.backward()
    before0, before1 = model.embedding.weight.numpy().copy(), model.output.weight.numpy().copy()
    g0, g1 = dense(model.embedding.weight), dense(model.output.weight)
    alpha = 0.05
    fused_loss, loss_pairs, all_pairs = word2vec_hs_step(
        model.embedding.weight, model.output.weight, model.output.path_nodes, model.output.path_codes,
        centres, ctx, alpha=alpha, cbow=mode == "cbow",
    )
    assert fused_loss == pytest.approx(float(loss), rel=1e-5)
    assert loss_pairs == all_pairs == float(pairs)
    np.testing.assert_allclose(model.embedding.weight.numpy(), before0 - alpha * g0, atol=1e-6)
    np.testing.assert_allclose(model.output.weight.numpy(), before1 - alpha * g1, atol=1e-6)


def test_loss_of_a_batch_with_zero_learning_rate_matches():
    tree = build_huffman_tree(np.arange(30, 0, -1))
    model = model_with_random_weights("skipgram", tree, V=30, D=8)
    rng = np.random.default_rng(3)
    centres = rng.integers(0, 30, size=50)
    ctx = rng.integers(-1, 30, size=(50, 6))
    loss, pairs = model(paddle.to_tensor(centres), paddle.to_tensor(ctx))
    before = model.embedding.weight.numpy().copy()
    fused_loss, loss_pairs, all_pairs = word2vec_hs_step(
        model.embedding.weight, model.output.weight, model.output.path_nodes, model.output.path_codes,
        centres, ctx, alpha=0.0,
    )
    assert fused_loss == pytest.approx(float(loss), rel=1e-5)
    assert all_pairs == float(pairs) == loss_pairs
    assert np.array_equal(model.embedding.weight.numpy(), before)
    # loss_stride: only every 5th centre's pairs are summed
    part, part_pairs, _ = word2vec_hs_step(
        model.embedding.weight, model.output.weight, model.output.path_nodes, model.output.path_codes,
        centres, ctx, alpha=0.0, loss_stride=5,
    )
    assert part_pairs == float((ctx[::5] >= 0).sum())
    assert 0 < part < fused_loss


def test_max_exp_skips_only_saturated_nodes():
    tree = build_balanced_tree(4)
    model = model_with_random_weights("skipgram", tree, V=4, D=2)
    model.embedding.weight.set_value(np.array([[10, 0], [0.1, 0], [0, 0], [0, 0]], dtype="float32"))
    model.output.weight.set_value(np.ones((3, 2), dtype="float32"))
    before = model.output.weight.numpy().copy()
    args = (model.embedding.weight, model.output.weight, model.output.path_nodes, model.output.path_codes)
    word2vec_hs_step(*args, np.array([3]), np.array([[0]]), alpha=0.1, max_exp=6.0)  # |f| = 10
    assert np.array_equal(model.output.weight.numpy(), before)
    word2vec_hs_step(*args, np.array([3]), np.array([[1]]), alpha=0.1, max_exp=6.0)  # |f| = 0.1
    assert not np.array_equal(model.output.weight.numpy(), before)
