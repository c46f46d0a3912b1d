"""HierarchicalSoftmax against a float64 NumPy reference, finite differences and Paddle's built-in."""

import numpy as np
import paddle
import paddle.nn.functional as F
import pytest
from conftest import assert_exact_topk, EmbeddedOutput, export_round_trip, central_difference, param_difference

from paddle_hsoftmax import HierarchicalSoftmax, build_balanced_tree, build_huffman_tree


pytestmark = pytest.mark.usefixtures("float64_default")


def make_tree(kind, V, seed=0):
    if kind == "balanced":
        return build_balanced_tree(V)
    rng = np.random.default_rng(seed)
    counts = np.sort(rng.zipf(1.3, size=V) % 10_000 + 1)[::-1]
    return build_huffman_tree(counts)


def make_layer(tree, D, bias=True, sparse=False, seed=0):
    layer = HierarchicalSoftmax(D, tree, bias=bias, sparse=sparse)
    rng = np.random.default_rng(seed)
    layer.weight.set_value(rng.normal(0, 0.5, size=(tree.num_inner, D)))
    if bias:
        layer.bias.set_value(rng.normal(0, 0.5, size=(tree.num_inner,)))
    return layer


def reference(tree, W, b, h, target, ignore_index=-100):
    """float64 NumPy: NLL per row and the gradients of sum(NLL) w.r.t. W, b, h."""
    nll = np.zeros(len(target))
    dW, db, dh = np.zeros_like(W), np.zeros_like(b), np.zeros_like(h)
    for i, t in enumerate(target):
        if t == ignore_index:
            continue
        for d in range(tree.path_lengths[t]):
            n, c = tree.path_nodes[t, d], tree.path_codes[t, d]
            s = 1.0 if c == 1 else -1.0
            z = W[n] @ h[i] + b[n]
            nll[i] += np.logaddexp(0.0, -s * z)
            g = -s / (1.0 + np.exp(s * z))  # d softplus(-s z) / dz
            dW[n] += g * h[i]
            db[n] += g
            dh[i] += g * W[n]
    return nll, dW, db, dh


def dense_grad(param):
    g = param.grad
    if g.is_selected_rows():
        rows = np.asarray(g.rows())
        values = g._get_tensor_from_selected_rows().numpy()
        out = np.zeros(param.shape)
        np.add.at(out, rows, values)
        return out
    return g.numpy()


@pytest.mark.parametrize("kind", ["huffman", "balanced"])
@pytest.mark.parametrize("sparse", [False, True])
def test_matches_numpy_reference(kind, sparse):
    tree = make_tree(kind, 37)
    D = 6
    layer = make_layer(tree, D, sparse=sparse)
    rng = np.random.default_rng(1)
    h_np = rng.normal(size=(9, D))
    t_np = rng.integers(0, 37, size=9)
    t_np[3] = -100
    h = paddle.to_tensor(h_np, stop_gradient=False)
    nll = layer(h, paddle.to_tensor(t_np))
    nll.sum().backward()
    ref, dW, db, dh = reference(tree, layer.weight.numpy(), layer.bias.numpy(), h_np, t_np)
    np.testing.assert_allclose(nll.numpy(), ref, rtol=1e-12, atol=1e-12)
    assert nll.numpy()[3] == 0.0
    np.testing.assert_allclose(dense_grad(layer.weight), dW, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.bias.grad.numpy(), db, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h.grad.numpy(), dh, rtol=1e-10, atol=1e-12)


def test_sparse_gradient_touches_only_batch_rows():
    tree = make_tree("huffman", 500)
    layer = make_layer(tree, 4, sparse=True)
    target = np.array([0, 1, 2])
    layer(paddle.randn([3, 4]), paddle.to_tensor(target)).sum().backward()
    g = layer.weight.grad
    assert g.is_selected_rows()
    touched = set(np.asarray(g.rows()).tolist())
    on_paths = set(tree.path_nodes[target][tree.path_mask[target]].tolist())
    assert on_paths <= touched and touched - on_paths <= {0}  # padded slots point at the root
    assert len(touched) < tree.num_inner / 10


def test_finite_differences():
    tree = make_tree("huffman", 11)
    D = 3
    layer = make_layer(tree, D)
    rng = np.random.default_rng(2)
    h_np = rng.normal(size=(4, D))
    target = paddle.to_tensor([0, 4, 10, 7])
    h = paddle.to_tensor(h_np, stop_gradient=False)
    layer(h, target).sum().backward()
    analytic = {"weight": layer.weight.grad.numpy(), "bias": layer.bias.grad.numpy(), "h": h.grad.numpy()}

    def loss():
        with paddle.no_grad():
            return float(layer(paddle.to_tensor(h_np), target).sum())

    eps = 1e-6
    for name in ("weight", "bias"):
        param = getattr(layer, name)
        numeric = param_difference(loss, param, eps)
        np.testing.assert_allclose(analytic[name], numeric, rtol=1e-6, atol=1e-8)

    def loss_at(h_value):
        with paddle.no_grad():
            return float(layer(paddle.to_tensor(h_value), target).sum())

    numeric = central_difference(loss_at, h_np, eps)
    np.testing.assert_allclose(analytic["h"], numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("kind", ["huffman", "balanced"])
@pytest.mark.parametrize("V", [2, 3, 5, 64, 1000, 3001])
def test_full_log_prob_is_normalised(kind, V):
    tree = make_tree(kind, V)
    layer = make_layer(tree, 8)
    h = paddle.randn([5, 8]) * 2
    lp = layer.full_log_prob(h)
    assert lp.shape == [5, V]
    total = np.exp(lp.numpy()).sum(axis=-1)
    np.testing.assert_allclose(total, 1.0, rtol=1e-12)
    assert np.all(lp.numpy() <= 0)


@pytest.mark.parametrize("kind", ["huffman", "balanced"])
def test_log_prob_equals_full_log_prob_at_target(kind):
    tree = make_tree(kind, 200)
    layer = make_layer(tree, 5)
    h = paddle.randn([3, 7, 5])
    target = paddle.to_tensor(np.random.default_rng(3).integers(0, 200, size=(3, 7)))
    lp = layer.log_prob(h, target)
    assert lp.shape == [3, 7]
    full = layer.full_log_prob(h)
    assert full.shape == [3, 7, 200]
    picked = np.take_along_axis(full.numpy(), target.numpy()[..., None], axis=-1)[..., 0]
    np.testing.assert_allclose(lp.numpy(), picked, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", ["huffman", "balanced", "clustered"])
@pytest.mark.parametrize("V", [2, 3, 257])
def test_full_log_prob_top_down_equals_every_path(kind, V):
    """The level-by-level full_log_prob equals -forward for every word and the per-path sum."""
    if kind == "clustered":
        from paddle_hsoftmax.cluster_tree import build_clustered_tree

        rng = np.random.default_rng(1)
        tree = build_clustered_tree(rng.normal(size=(V, 4)), counts=rng.integers(1, 100, size=V))
    else:
        tree = make_tree(kind, V)
    layer = make_layer(tree, 6)
    h = paddle.randn([4, 6])
    full = layer.full_log_prob(h).numpy()  # (4, V)
    every = paddle.to_tensor(np.arange(V))
    nll = layer(h.unsqueeze(1).expand([4, V, 6]), every.unsqueeze(0).expand([4, V])).numpy()
    np.testing.assert_allclose(full, -nll, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(full, layer._full_log_prob_by_paths(h).numpy(), rtol=1e-12, atol=1e-12)


def test_predict_is_exact_topk():
    tree = make_tree("huffman", 300)
    layer = make_layer(tree, 6)
    h = paddle.randn([2, 4, 6])
    assert_exact_topk(layer, h, 5)
    with pytest.raises(ValueError, match=r"k must be in \[1, 300\]"):
        layer.predict(h, k=0)


@pytest.mark.parametrize("kind", ["huffman", "balanced"])
def test_relation_to_paddle_builtin(kind):
    """Paddle's F.hsigmoid_loss on the same tree = exact NLL + ln 2 per padded slot."""
    tree = make_tree(kind, 50)
    D = 7
    layer = make_layer(tree, D)
    rng = np.random.default_rng(4)
    h = paddle.to_tensor(rng.normal(size=(16, D)))
    t_np = rng.integers(0, 50, size=16)
    target = paddle.to_tensor(t_np)
    args = tree.to_paddle_hsigmoid()
    builtin = F.hsigmoid_loss(
        h,
        target,
        args["num_classes"],
        layer.weight,
        layer.bias.unsqueeze(-1),
        path_table=paddle.to_tensor(args["path_table"][t_np]),
        path_code=paddle.to_tensor(args["path_code"][t_np]),
    ).numpy()[:, 0]
    pads = tree.max_length - tree.path_lengths[t_np]
    exact = layer(h, target).numpy()
    np.testing.assert_allclose(builtin, exact + np.log(2) * pads, rtol=1e-10)
    if kind == "huffman":
        assert pads.max() > 0  # the difference is real, not vacuous


def test_ignore_index_everywhere_gives_zero():
    layer = make_layer(make_tree("huffman", 10), 4)
    h = paddle.randn([2, 3, 4])
    h.stop_gradient = False
    nll = layer(h, paddle.full([2, 3], -100, dtype="int64"))
    assert np.all(nll.numpy() == 0)
    nll.sum().backward()
    assert np.all(h.grad.numpy() == 0)


def test_custom_ignore_index_and_no_bias():
    tree = make_tree("balanced", 8)
    layer = HierarchicalSoftmax(4, tree, bias=False, ignore_index=0)
    assert layer.bias is None
    h = paddle.randn([3, 4])
    nll = layer(h, paddle.to_tensor([0, 3, 7]))
    assert nll.numpy()[0] == 0 and np.all(nll.numpy()[1:] > 0)


@pytest.mark.parametrize("bad, seen", [([0, 12], "[0, 12]"), ([-3, 2], "[-3, 2]"), ([-100, 10], "[10, 10]")])
def test_out_of_range_target_names_the_range(bad, seen):
    layer = make_layer(make_tree("huffman", 10), 4)
    with pytest.raises(ValueError) as err:
        layer(paddle.randn([2, 4]), paddle.to_tensor(bad))
    assert "[0, 9]" in str(err.value) and seen in str(err.value)


def test_shape_errors():
    layer = make_layer(make_tree("huffman", 10), 4)
    with pytest.raises(ValueError, match="feature_size=4"):
        layer(paddle.randn([2, 5]), paddle.to_tensor([1, 2]))
    with pytest.raises(ValueError, match="disagree"):
        layer(paddle.randn([3, 4]), paddle.to_tensor([1, 2]))
    with pytest.raises(ValueError, match="int32 or int64"):
        layer(paddle.randn([2, 4]), paddle.to_tensor([1.0, 2.0]))
    with pytest.raises(TypeError, match="Tree"):
        HierarchicalSoftmax(4, np.zeros((3, 3)))


def test_tree_lives_in_state_dict(tmp_path):
    tree = make_tree("huffman", 40)
    layer = make_layer(tree, 4)
    state = layer.state_dict()
    assert {"weight", "bias", "path_nodes", "path_codes"} <= set(state)
    path = str(tmp_path / "layer.pdparams")
    paddle.save(state, path)
    loaded = paddle.load(path)
    other = HierarchicalSoftmax(4, HierarchicalSoftmax.tree_from_state_dict(loaded))
    other.set_state_dict(loaded)
    h = paddle.randn([6, 4])
    target = paddle.to_tensor([0, 5, 9, 39, 20, 1])
    np.testing.assert_allclose(other(h, target).numpy(), layer(h, target).numpy(), rtol=1e-12)
    assert np.array_equal(other.tree().path_nodes, tree.path_nodes)
    # nested in a model: the prefix finds it
    model = paddle.nn.Sequential(paddle.nn.Linear(4, 4), layer)
    rebuilt = HierarchicalSoftmax.tree_from_state_dict(model.state_dict(), prefix="1.")
    assert np.array_equal(rebuilt.path_codes, tree.path_codes)
    with pytest.raises(KeyError, match="prefix 'out.'"):
        HierarchicalSoftmax.tree_from_state_dict(model.state_dict(), prefix="out.")


def test_float32_close_to_float64():
    tree = make_tree("huffman", 100)
    layer64 = make_layer(tree, 16)
    paddle.set_default_dtype("float32")
    layer32 = HierarchicalSoftmax(16, tree)
    layer32.weight.set_value(layer64.weight.numpy().astype("float32"))
    layer32.bias.set_value(layer64.bias.numpy().astype("float32"))
    h = np.random.default_rng(5).normal(size=(8, 16))
    t = paddle.to_tensor(np.arange(8) * 12)
    out32 = layer32(paddle.to_tensor(h, dtype="float32"), t).numpy()
    out64 = layer64(paddle.to_tensor(h), t).numpy()
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, out64, rtol=1e-5)


def test_to_static_export_and_jit_load(tmp_path):
    paddle.set_default_dtype("float32")
    model = EmbeddedOutput(60, 8, HierarchicalSoftmax(8, make_tree("huffman", 60)))
    context = paddle.to_tensor(np.arange(12).reshape(3, 4) % 60)
    target = paddle.to_tensor((np.arange(12).reshape(3, 4) * 5) % 60)
    specs = [paddle.static.InputSpec([None, None], "int64", "context"),
             paddle.static.InputSpec([None, None], "int64", "target")]
    export_round_trip(model, [context, target], specs, tmp_path)


def test_max_length_bound_gives_identical_results():
    tree = make_tree("huffman", 500)
    layer = make_layer(tree, 6)
    rng = np.random.default_rng(6)
    target_np = np.argsort(tree.path_lengths)[:20]  # the 20 shortest codes
    bound = int(tree.path_lengths[target_np].max())
    assert bound < tree.max_length
    h = paddle.to_tensor(rng.normal(size=(20, 6)), stop_gradient=False)
    target = paddle.to_tensor(target_np)
    full = layer(h, target)
    full.sum().backward()
    grad_full = h.grad.numpy().copy()
    h.clear_gradient()
    trimmed = layer(h, target, max_length=bound)
    trimmed.sum().backward()
    np.testing.assert_allclose(trimmed.numpy(), full.numpy(), rtol=1e-13)
    np.testing.assert_allclose(h.grad.numpy(), grad_full, rtol=1e-13)
    with pytest.raises(ValueError, match=f"max_length={bound - 1} is shorter"):
        layer(h, target, max_length=bound - 1)
    with pytest.raises(ValueError, match=r"max_length must be in \[1, "):
        layer(h, target, max_length=tree.max_length + 1)


def test_full_log_prob_follows_a_loaded_tree_of_the_same_shape():
    """Loading another tree with the same table shape (V words, same longest code) into a layer
    that already computed full_log_prob: the next call uses the new tree."""
    V = 16
    first = make_layer(build_balanced_tree(V), 4)
    h = paddle.randn([3, 4])
    first.full_log_prob(h)  # fills the level cache
    from paddle_hsoftmax.cluster_tree import build_clustered_tree

    # a clustered tree without counts is balanced too (same [16, 4] tables), with other leaves
    other_tree = build_clustered_tree(np.random.default_rng(5).normal(size=(V, 3)))
    assert other_tree.path_nodes.shape == build_balanced_tree(V).path_nodes.shape
    assert not np.array_equal(other_tree.path_nodes, build_balanced_tree(V).path_nodes) or \
        not np.array_equal(other_tree.path_codes, build_balanced_tree(V).path_codes)
    other = make_layer(other_tree, 4, seed=1)
    first.set_state_dict(other.state_dict())
    np.testing.assert_allclose(first.full_log_prob(h).numpy(), other.full_log_prob(h).numpy(), rtol=1e-12)
