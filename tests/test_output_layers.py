"""FullSoftmax, DifferentiatedSoftmax and AdaptiveSoftmax against float64 NumPy references,
finite differences, hand gradients and (for the adaptive softmax) Paddle's own module."""

import numpy as np
import paddle
import pytest
from conftest import assert_exact_topk, EmbeddedOutput, export_round_trip, central_difference, param_difference

from paddle_hsoftmax.output import AdaptiveSoftmax, DifferentiatedSoftmax, FullSoftmax, default_bands


pytestmark = pytest.mark.usefixtures("float64_default")


V, D = 31, 8
BANDS = ([4, 9, 18], [4, 2, 2])  # D-softmax test split of V = 31, D = 8
CUTOFFS = [5, 15]  # adaptive: shortlist 0..4, clusters 5..14 and 15..30
KINDS = ["full", "dsoftmax", "adaptive", "adaptive-paddle"]


def make_layer(kind, seed=0, **kwargs):
    if kind == "full":
        layer = FullSoftmax(D, V, **kwargs)
    elif kind == "dsoftmax":
        layer = DifferentiatedSoftmax(D, *BANDS, **kwargs)
    else:
        impl = "paddle" if kind == "adaptive-paddle" else "logsumexp"
        layer = AdaptiveSoftmax(D, V, CUTOFFS, div_value=2.0, head_bias=True, impl=impl, **kwargs)
    rng = np.random.default_rng(seed)
    for p in layer.parameters():  # random biases too, so they are tested
        p.set_value(rng.normal(0, 0.5, size=p.shape).astype(paddle.get_default_dtype()))
    return layer


def log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def dense_weight(layer):
    """The ``[V, D]`` output matrix a full/D-softmax layer is equivalent to (block diagonal for D-softmax)."""
    if isinstance(layer, FullSoftmax):
        return layer.weight.numpy()
    W = np.zeros((layer.num_classes, layer.feature_size))
    for k, w in enumerate(layer.weights):
        b, d = layer.band_offsets, layer.dim_offsets
        W[b[k] : b[k + 1], d[k] : d[k + 1]] = w.numpy()
    return W


def softmax_reference(W, b, h, target, ignore_index=-100):
    """float64 NumPy full softmax: NLL per row and gradients of sum(NLL) w.r.t. W, b, h."""
    logits = h @ W.T + b  # (N, V)
    lp = log_softmax(logits)
    valid = target != ignore_index
    safe = np.where(valid, target, 0)
    nll = -lp[np.arange(len(h)), safe] * valid
    dlogits = np.exp(lp)
    dlogits[np.arange(len(h)), safe] -= 1.0
    dlogits *= valid[:, None]
    return nll, dlogits.T @ h, dlogits.sum(0), dlogits @ W


def adaptive_full_reference(layer, h):
    """float64 NumPy adaptive-softmax log-probabilities ``[N, V]`` from the layer's parameters."""
    m = layer.adaptive
    head = h @ m.head_weight.numpy()
    if m.head_bias is not None:
        head = head + m.head_bias.numpy()
    head_lp = log_softmax(head)
    S = layer.shortlist_size
    parts = [head_lp[:, :S]]
    for i in range(layer.num_clusters):
        tail = h @ getattr(m, f"tail_{i}_proj").numpy() @ getattr(m, f"tail_{i}_out").numpy()
        parts.append(log_softmax(tail) + head_lp[:, S + i : S + i + 1])
    return np.concatenate(parts, axis=1)


def reference_nll(layer, h, target, ignore_index=-100):
    valid = target != ignore_index
    safe = np.where(valid, target, 0)
    if isinstance(layer, AdaptiveSoftmax):
        lp = adaptive_full_reference(layer, h)
    else:
        b = layer.bias.numpy() if layer.bias is not None else np.zeros(layer.num_classes)
        lp = log_softmax(h @ dense_weight(layer).T + b)
    return -lp[np.arange(len(h)), safe] * valid


def all_clusters_target(n, rng):
    """Targets hitting the head, every band/cluster and both ends of the vocabulary."""
    t = rng.integers(0, V, size=n)
    t[:6] = [0, 4, 5, 14, 15, V - 1]
    return t


# -- (a) normalisation --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_full_log_prob_is_normalised(kind):
    layer = make_layer(kind)
    h = paddle.randn([2, 5, D]) * 3
    lp = layer.full_log_prob(h)
    assert lp.shape == [2, 5, V]
    lse = np.log(np.exp(lp.numpy()).sum(axis=-1))
    np.testing.assert_allclose(lse, 0.0, atol=1e-12)
    assert np.all(lp.numpy() <= 0)


# -- (b) forward against the NumPy reference ----------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_forward_matches_numpy_reference(kind):
    layer = make_layer(kind)
    rng = np.random.default_rng(1)
    h_np = rng.normal(size=(12, D))
    t_np = all_clusters_target(12, rng)
    t_np[7] = -100
    nll = layer(paddle.to_tensor(h_np.reshape(3, 4, D)), paddle.to_tensor(t_np.reshape(3, 4)))
    assert nll.shape == [3, 4]
    np.testing.assert_allclose(nll.numpy().ravel(), reference_nll(layer, h_np, t_np), rtol=1e-12, atol=1e-12)
    assert nll.numpy().ravel()[7] == 0.0


@pytest.mark.parametrize("kind", KINDS)
def test_log_prob_equals_full_log_prob_at_target(kind):
    layer = make_layer(kind)
    rng = np.random.default_rng(3)
    h = paddle.to_tensor(rng.normal(size=(3, 7, D)))
    target = paddle.to_tensor(rng.integers(0, V, size=(3, 7)))
    lp = layer.log_prob(h, target)
    full = layer.full_log_prob(h).numpy()
    picked = np.take_along_axis(full, target.numpy()[..., None], axis=-1)[..., 0]
    np.testing.assert_allclose(lp.numpy(), picked, rtol=1e-12, atol=1e-12)


def test_full_softmax_reference_gradients():
    layer = make_layer("full")
    rng = np.random.default_rng(2)
    h_np = rng.normal(size=(9, D))
    t_np = rng.integers(0, V, size=9)
    t_np[4] = -100
    h = paddle.to_tensor(h_np, stop_gradient=False)
    nll = layer(h, paddle.to_tensor(t_np))
    nll.sum().backward()
    ref, dW, db, dh = softmax_reference(layer.weight.numpy(), layer.bias.numpy(), h_np, t_np)
    np.testing.assert_allclose(nll.numpy(), ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.weight.grad.numpy(), dW, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.bias.grad.numpy(), db, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h.grad.numpy(), dh, rtol=1e-10, atol=1e-12)


def test_dsoftmax_reference_gradients():
    """D-softmax is the full softmax with a block-diagonal matrix: its gradients are the blocks."""
    layer = make_layer("dsoftmax")
    rng = np.random.default_rng(2)
    h_np = rng.normal(size=(9, D))
    t_np = all_clusters_target(9, rng)
    t_np[8] = -100
    h = paddle.to_tensor(h_np, stop_gradient=False)
    nll = layer(h, paddle.to_tensor(t_np))
    nll.sum().backward()
    ref, dW, db, dh = softmax_reference(dense_weight(layer), layer.bias.numpy(), h_np, t_np)
    np.testing.assert_allclose(nll.numpy(), ref, rtol=1e-12, atol=1e-12)
    b, d = layer.band_offsets, layer.dim_offsets
    for k, w in enumerate(layer.weights):
        np.testing.assert_allclose(w.grad.numpy(), dW[b[k] : b[k + 1], d[k] : d[k + 1]], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.bias.grad.numpy(), db, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(h.grad.numpy(), dh, rtol=1e-10, atol=1e-12)


# -- (c) finite differences ---------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_finite_differences(kind):
    layer = make_layer(kind)
    rng = np.random.default_rng(4)
    h_np = rng.normal(size=(6, D))
    target = paddle.to_tensor(all_clusters_target(6, rng))
    h = paddle.to_tensor(h_np, stop_gradient=False)
    layer(h, target).sum().backward()

    def loss(h_value):
        with paddle.no_grad():
            return float(layer(paddle.to_tensor(h_value), target).sum())

    eps = 1e-6
    for name, param in layer.named_parameters():
        assert param.grad is not None, name
        numeric = param_difference(lambda: loss(h_np), param, eps)
        np.testing.assert_allclose(param.grad.numpy(), numeric, rtol=1e-5, atol=1e-8, err_msg=name)
    numeric = central_difference(loss, h_np, eps)
    np.testing.assert_allclose(h.grad.numpy(), numeric, rtol=1e-5, atol=1e-8)


# -- (d) predict --------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_predict_is_exact_topk(kind):
    layer = make_layer(kind)
    h = paddle.randn([2, 4, D])
    assert_exact_topk(layer, h, 5)


# -- (e) ignore_index and the range check ------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_ignored_positions_give_zero_and_no_gradient(kind):
    layer = make_layer(kind)
    rng = np.random.default_rng(5)
    h_np = rng.normal(size=(8, D))
    t_np = all_clusters_target(8, rng)
    t_np[[1, 6]] = -100
    h = paddle.to_tensor(h_np, stop_gradient=False)
    nll = layer(h, paddle.to_tensor(t_np))
    assert nll.numpy()[1] == 0.0 and nll.numpy()[6] == 0.0
    nll.sum().backward()
    assert np.all(h.grad.numpy()[[1, 6]] == 0.0)
    grads = {n: p.grad.numpy().copy() for n, p in layer.named_parameters()}
    layer.clear_gradients()
    keep = t_np != -100  # the same loss without the ignored rows: identical parameter gradients
    layer(paddle.to_tensor(h_np[keep]), paddle.to_tensor(t_np[keep])).sum().backward()
    for n, p in layer.named_parameters():
        np.testing.assert_allclose(grads[n], p.grad.numpy(), rtol=1e-12, atol=1e-14, err_msg=n)
    # every position ignored
    h.clear_gradient()
    nll = layer(h, paddle.full([8], -100, dtype="int64"))
    assert np.all(nll.numpy() == 0)
    nll.sum().backward()
    assert np.all(h.grad.numpy() == 0)


@pytest.mark.parametrize("kind", KINDS)
def test_out_of_range_target_names_the_range(kind):
    layer = make_layer(kind)
    with pytest.raises(ValueError) as err:
        layer(paddle.randn([2, D]), paddle.to_tensor([3, V]))
    assert f"[0, {V - 1}]" in str(err.value) and f"[3, {V}]" in str(err.value)


# -- (f) D-softmax bookkeeping and validation ---------------------------------------------------
def test_dsoftmax_bands_partition_vocabulary_and_hidden_state():
    layer = make_layer("dsoftmax")
    sizes, dims = BANDS
    assert layer.num_classes == sum(sizes) and layer.band_offsets == [0, 4, 13, 31]
    assert sum(layer.band_dims) == D and layer.dim_offsets == [0, 4, 6, 8]
    bands = layer.band_of(np.arange(V))
    assert bands.dtype == np.int64
    assert np.bincount(bands, minlength=3).tolist() == sizes  # every word in exactly one band
    assert np.all(np.diff(bands) >= 0)  # contiguous, most frequent first
    for k in range(3):
        assert np.all(bands[layer.band_offsets[k] : layer.band_offsets[k + 1]] == k)
    as_tensor = layer.band_of(paddle.to_tensor(np.arange(V).reshape(1, V)))
    assert as_tensor.shape == [1, V]
    np.testing.assert_array_equal(as_tensor.numpy()[0], bands)
    with pytest.raises(ValueError, match=r"\[0, 30\].*\[-1, 3\]"):
        layer.band_of([-1, 3])
    with pytest.raises(ValueError, match=r"\[0, 31\]"):
        layer.band_of(paddle.to_tensor([0, 31]))


@pytest.mark.parametrize("bias", [True, False])
def test_dsoftmax_parameter_count(bias):
    layer = DifferentiatedSoftmax(D, *BANDS, bias=bias)
    sizes, dims = BANDS
    expected = sum(s * d + (s if bias else 0) for s, d in zip(sizes, dims))
    assert layer.num_parameters() == expected
    assert sum(int(np.prod(p.shape)) for p in layer.parameters()) == expected
    assert [list(w.shape) for w in layer.weights] == [[s, d] for s, d in zip(sizes, dims)]
    assert expected < FullSoftmax(D, V, bias=bias).weight.size + (V if bias else 0)
    assert set(layer.state_dict()) == {"weights.0", "weights.1", "weights.2"} | ({"bias"} if bias else set())


@pytest.mark.parametrize(
    "args, kwargs, pattern",
    [
        (([4, 9, 18], [4, 2, 1]), {}, r"sum to feature_size=8, got \[4, 2, 1\] \(sum 7\)"),
        (([4, 9, 18], [4, 4]), {}, r"3 sizes \[4, 9, 18\] and 2 dims \[4, 4\]"),
        (([4, 0, 18], [4, 2, 2]), {}, r"band_sizes must be positive integers, got \[4, 0, 18\]"),
        (([4, 9, 18], [4, -2, 6]), {}, r"band_dims must be positive integers, got \[4, -2, 6\]"),
        (([4, 9.5, 18], [4, 2, 2]), {}, r"band_sizes .* got \[4, 9.5, 18\]"),
        (([], []), {}, "band_sizes must not be empty"),
        (([4, 9, 18], [4, 2, 2]), {"num_classes": 30}, r"sum to num_classes=30, got \[4, 9, 18\] \(sum 31\)"),
        (([1], [8]), {}, "num_classes must be >= 2, got 1"),
    ],
)
def test_dsoftmax_bad_arguments(args, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        DifferentiatedSoftmax(D, *args, **kwargs)


def test_dsoftmax_single_band_is_full_softmax():
    ds = DifferentiatedSoftmax(D, [V], [D])
    full = FullSoftmax(D, V)
    full.weight.set_value(ds.weights[0].numpy())
    ds.bias.set_value(np.linspace(-1, 1, V))
    full.bias.set_value(np.linspace(-1, 1, V))
    h, t = paddle.randn([5, D]), paddle.to_tensor([0, 3, 30, 12, 7])
    np.testing.assert_allclose(ds(h, t).numpy(), full(h, t).numpy(), rtol=1e-13)


@pytest.mark.parametrize("V_", [2, 3, 5, 6, 13, 40, 1000, 20_000, 800_000])
@pytest.mark.parametrize("D_", [1, 2, 3, 4, 6, 8, 512])
def test_default_bands_are_valid(V_, D_):
    sizes, dims = default_bands(V_, D_)
    assert sum(sizes) == V_ and sum(dims) == D_
    assert len(sizes) == len(dims) <= min(3, D_)
    assert min(sizes) >= 1 and min(dims) >= 1
    assert dims == sorted(dims, reverse=True)
    if V_ >= 6 and D_ >= 3:
        assert len(sizes) == 3


def test_default_bands_values():
    assert default_bands(100_000, 512) == ([2000, 8000, 90_000], [256, 128, 128])
    assert default_bands(1000, 64) == ([100, 400, 500], [32, 16, 16])
    assert default_bands(2, 8) == ([1, 1], [4, 4])
    layer = DifferentiatedSoftmax(16, *default_bands(5000, 16))
    assert layer.num_classes == 5000 and layer.num_parameters() < 5000 * 16 + 5000
    with pytest.raises(ValueError, match="num_classes must be an integer >= 2, got 1"):
        default_bands(1, 8)


# -- (g) FullSoftmax weight tying ---------------------------------------------------------------
def test_full_softmax_tied_weight():
    class TiedLM(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.emb = paddle.nn.Embedding(V, D)
            self.out = FullSoftmax(D, V, weight=self.emb.weight)

        def forward(self, context, target):
            return self.out(self.emb(context).mean(axis=1), target)

    model = TiedLM()
    assert model.out.weight is model.emb.weight and model.out.tied
    assert len(model.parameters()) == 2  # the shared matrix once, plus the output bias
    context = paddle.to_tensor([[1, 2], [3, 4], [5, 6]])
    target = paddle.to_tensor([7, 8, 30])
    # the gradient into the shared matrix = embedding path + output path
    h = model.emb(context).mean(axis=1)
    h_np = h.numpy()
    model(context, target).sum().backward()
    _, dW_out, _, dh = softmax_reference(model.emb.weight.numpy(), model.out.bias.numpy(), h_np, target.numpy())
    expected = dW_out.copy()
    for i, row in enumerate(context.numpy()):
        for w in row:
            expected[w] += dh[i] / len(row)
    np.testing.assert_allclose(model.emb.weight.grad.numpy(), expected, rtol=1e-10, atol=1e-12)
    # an SGD step moves both uses, and the state_dict restores both
    opt = paddle.optimizer.SGD(learning_rate=0.1, parameters=model.parameters())
    opt.step()
    assert model.out.weight is model.emb.weight
    other = TiedLM()
    other.set_state_dict(model.state_dict())
    np.testing.assert_array_equal(other.out.weight.numpy(), model.emb.weight.numpy())


def test_full_softmax_bad_tied_weight():
    with pytest.raises(ValueError, match=r"\[31, 8\], got \[8, 31\]"):
        FullSoftmax(D, V, weight=paddle.nn.Linear(D, V).weight)
    with pytest.raises(TypeError, match="ndarray"):
        FullSoftmax(D, V, weight=np.zeros((V, D)))


def test_full_softmax_no_bias_and_custom_ignore_index():
    layer = FullSoftmax(4, 10, bias=False, ignore_index=0)
    assert layer.bias is None and len(layer.parameters()) == 1
    nll = layer(paddle.randn([3, 4]), paddle.to_tensor([0, 3, 9]))
    assert nll.numpy()[0] == 0 and np.all(nll.numpy()[1:] > 0)


def test_full_softmax_float32_close_to_float64():
    layer64 = make_layer("full")
    paddle.set_default_dtype("float32")
    layer32 = FullSoftmax(D, V)
    layer32.weight.set_value(layer64.weight.numpy().astype("float32"))
    layer32.bias.set_value(layer64.bias.numpy().astype("float32"))
    h = np.random.default_rng(5).normal(size=(8, D))
    t = paddle.to_tensor(np.arange(8) * 3)
    out32 = layer32(paddle.to_tensor(h, dtype="float32"), t).numpy()
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, layer64(paddle.to_tensor(h), t).numpy(), rtol=1e-5)


# -- adaptive softmax: Paddle's module, registration, validation --------------------------------
def test_adaptive_matches_paddle_module():
    layer = make_layer("adaptive")
    rng = np.random.default_rng(6)
    h = paddle.to_tensor(rng.normal(size=(10, D)))
    t = paddle.to_tensor(all_clusters_target(10, rng))
    out, loss = layer.adaptive(h, t)  # Paddle: (log p(target), mean NLL)
    nll = layer(h, t).numpy()
    np.testing.assert_allclose(nll, -out.numpy(), rtol=1e-12)
    np.testing.assert_allclose(float(loss), nll.mean(), rtol=1e-12)
    np.testing.assert_allclose(layer.full_log_prob(h).numpy(), layer.adaptive.log_prob(h).numpy(), rtol=1e-12)
    np.testing.assert_allclose(layer.full_log_prob(h).numpy(), adaptive_full_reference(layer, h.numpy()), rtol=1e-12)
    # Paddle's own top-1 (float ids) agrees with the exact top-k
    np.testing.assert_array_equal(layer.adaptive.predict(h).numpy().astype(np.int64), layer.predict(h).ids.numpy()[:, 0])


def test_adaptive_impls_agree_including_gradients():
    fast, ref = make_layer("adaptive"), make_layer("adaptive-paddle")
    rng = np.random.default_rng(7)
    h_np = rng.normal(size=(11, D))
    t_np = all_clusters_target(11, rng)
    t_np[9] = -100
    grads = []
    for layer in (fast, ref):
        h = paddle.to_tensor(h_np, stop_gradient=False)
        nll = layer(h, paddle.to_tensor(t_np))
        nll.sum().backward()
        grads.append((nll.numpy(), h.grad.numpy(), {n: p.grad.numpy() for n, p in layer.named_parameters()}))
    np.testing.assert_allclose(grads[0][0], grads[1][0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(grads[0][1], grads[1][1], rtol=1e-10, atol=1e-13)
    for n in grads[0][2]:
        np.testing.assert_allclose(grads[0][2][n], grads[1][2][n], rtol=1e-10, atol=1e-13, err_msg=n)


@pytest.mark.parametrize("kind", ["adaptive", "adaptive-paddle"])
@pytest.mark.parametrize("targets", [[0, 1, 2, 3], [5, 6, 14, 14], [30, 20, 15, 29], [2]])
def test_adaptive_batches_missing_clusters(kind, targets):
    layer = make_layer(kind)
    h = paddle.randn([len(targets), D])
    t = np.asarray(targets)
    np.testing.assert_allclose(layer(h, paddle.to_tensor(t)).numpy(), reference_nll(layer, h.numpy(), t), rtol=1e-12)


def test_adaptive_registers_tail_parameters():
    layer = AdaptiveSoftmax(D, V, CUTOFFS, div_value=2.0)
    assert len(layer.adaptive.parameters()) == 5  # Paddle alone registers only head_weight
    assert set(layer.state_dict()) == {
        "adaptive.head_weight", "adaptive.tail_0_proj", "adaptive.tail_0_out",
        "adaptive.tail_1_proj", "adaptive.tail_1_out",
    }
    assert layer.tail_dims == [4, 2] and layer.bounds == [0, 5, 15, 31]
    assert list(layer.adaptive.tail_1_out.shape) == [2, 16]
    # a state_dict round trip restores the tails, and an optimizer updates them
    other = AdaptiveSoftmax(D, V, CUTOFFS, div_value=2.0)
    other.set_state_dict(layer.state_dict())
    h, t = paddle.randn([4, D]), paddle.to_tensor([0, 7, 20, 30])
    np.testing.assert_allclose(other(h, t).numpy(), layer(h, t).numpy(), rtol=1e-13)
    before = layer.adaptive.tail_1_out.numpy().copy()
    opt = paddle.optimizer.SGD(learning_rate=0.5, parameters=layer.parameters())
    layer(h, t).sum().backward()
    opt.step()
    assert not np.allclose(layer.adaptive.tail_1_out.numpy(), before)


@pytest.mark.parametrize(
    "cutoffs, div_value, pattern",
    [
        ([15, 5], 2.0, r"strictly increasing integers in \[1, 30\] \(num_classes=31\), got \[15, 5\]"),
        ([5, 31], 2.0, r"got \[5, 31\]"),
        ([0, 5], 2.0, r"got \[0, 5\]"),
        ([5, 5], 2.0, r"got \[5, 5\]"),
        ([5.0], 2.0, r"got \[5.0\]"),
        ([], 2.0, r"got \[\]"),
        ([5, 15], 4.0, r"div_value=4.0 with feature_size=8 gives tail projection widths \[2, 0\]"),
        ([5, 15], 0.0, "div_value must be a positive number, got 0.0"),
    ],
)
def test_adaptive_bad_arguments(cutoffs, div_value, pattern):
    with pytest.raises(ValueError, match=pattern):
        AdaptiveSoftmax(D, V, cutoffs, div_value=div_value)


def test_adaptive_bad_impl():
    with pytest.raises(ValueError, match="impl must be one of"):
        AdaptiveSoftmax(D, V, CUTOFFS, div_value=2.0, impl="fast")


# -- to_static ----------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["full", "dsoftmax", "adaptive"])
def test_to_static_export_and_jit_load(kind, tmp_path):
    """Paddle's own adaptive code (impl="paddle") does not convert: it branches on host values."""
    paddle.set_default_dtype("float32")
    model = EmbeddedOutput(V, D, make_layer(kind))
    context = paddle.to_tensor(np.arange(12).reshape(3, 4) % V)
    target = paddle.to_tensor((np.arange(12).reshape(3, 4) * 5) % V)
    specs = [paddle.static.InputSpec([None, None], "int64", "context"),
             paddle.static.InputSpec([None, None], "int64", "target")]
    loaded = export_round_trip(model, [context, target], specs, tmp_path)
    shortlist_only = paddle.to_tensor(np.arange(12).reshape(3, 4) % 5)  # adaptive: empty tail clusters
    np.testing.assert_allclose(
        loaded(context, shortlist_only).numpy(), model(context, shortlist_only).numpy(), rtol=1e-5
    )
