"""CNNSoftmax against a float64 NumPy reference, finite differences, and its eval-mode cache."""

import numpy as np
import paddle
import pytest
from conftest import assert_exact_topk, export_round_trip, central_difference, param_difference

from paddle_hsoftmax.output.cnn_softmax import CNNSoftmax, word_char_table

# frequent People's Daily (1998-01) words, one to seven characters
WORDS = [
    "的", "了", "在", "是", "和", "中国", "人民", "北京", "经济", "发展", "我们", "一个", "工作",
    "社会主义", "改革", "企业", "问题", "建设", "国家", "政府", "市场", "领导", "记者", "新华社",
    "今年", "群众", "地区", "世界", "中华人民共和国", "有",
]


pytestmark = pytest.mark.usefixtures("float64_default")


def make_layer(words=WORDS, D=6, seed=0, max_chars=16, **kwargs):
    """A layer over ``words`` with every parameter drawn at random (correction included)."""
    table, chars = word_char_table(words, max_chars=max_chars)
    kwargs.setdefault("char_dim", 4)
    kwargs.setdefault("filters", 5)
    layer = CNNSoftmax(D, table, len(chars), **kwargs)
    rng = np.random.default_rng(seed)
    for p in layer.parameters():
        p.set_value(rng.normal(0, 0.5, size=p.shape))
    return layer


def reference_embeddings(layer):
    """float64 NumPy CNN: embedding lookup, same-length conv, activation, masked max, projection,
    correction term. Paddle's Conv1D weight is [out, in, k], applied as a cross-correlation."""
    table = layer.word_chars.numpy()
    V, W = table.shape
    emb = layer.char_embedding.weight.numpy().copy()
    emb[0] = 0.0  # padding_idx
    x = emb[table]  # (V, W, C)
    real = table > 0
    act = np.tanh if layer.activation == "tanh" else (lambda z: np.maximum(z, 0.0))
    pooled = []
    for conv in layer.convs:
        w, b = conv.weight.numpy(), conv.bias.numpy()  # (F, C, k), (F,)
        k = w.shape[2]
        xp = np.pad(x, ((0, 0), (k // 2, k // 2), (0, 0)))
        out = np.stack([np.einsum("vkc,fck->vf", xp[:, j : j + k], w) + b for j in range(W)], axis=1)
        a = np.where(real[..., None], act(out), -np.inf)  # (V, W, F)
        p = a.max(axis=1)
        p[~real.any(axis=1)] = 0.0
        pooled.append(p)
    e = np.concatenate(pooled, axis=1) @ layer.projection.weight.numpy()  # Linear: x @ W, W [in, out]
    if layer.correction is not None:
        e = e + layer.correction.numpy() @ layer.correction_projection.weight.numpy()
    return e


def reference_nll(layer, h, target, ignore_index=-100):
    logits = h @ reference_embeddings(layer).T + layer.bias.numpy()  # (N, V)
    m = logits.max(axis=1, keepdims=True)
    lse = (m + np.log(np.exp(logits - m).sum(axis=1, keepdims=True)))[:, 0]
    nll = np.zeros(len(target))
    ok = target != ignore_index
    nll[ok] = lse[ok] - logits[ok, target[ok]]
    return nll


# -- word_char_table -----------------------------------------------------------------------------
def test_word_char_table():
    table, chars = word_char_table(["中国", "人民", "", "中华人民共和国", "的"], max_chars=4)
    assert table.dtype == np.int64 and table.shape == (5, 4)
    assert chars[0] == "" and len(set(chars)) == len(chars)
    decoded = ["".join(chars[i] for i in row if i) for row in table]
    assert decoded == ["中国", "人民", "", "中华人民", "的"]  # truncated to 4, empty stays empty
    assert np.all(table[2] == 0) and table[4, 1:].tolist() == [0, 0, 0]
    assert table[0, 0] == table[3, 0]  # 中 has one id
    assert [chars[i] for i in table[0, :2]] == ["中", "国"] and table.min() >= 0
    # the table is as wide as the longest kept word, at least 1
    assert word_char_table(["的", "了"])[0].shape == (2, 1)
    assert word_char_table(["", ""])[0].shape == (2, 1)
    # specials are one character each, not spelled
    table, chars = word_char_table(["<unk>", "<eos>", "中国"], specials=["<unk>", "<eos>"])
    assert chars[1:3] == ["<unk>", "<eos>"] and table[:2, 0].tolist() == [1, 2] and np.all(table[:2, 1:] == 0)
    with pytest.raises(ValueError, match="max_chars must be an int >= 1, got 0"):
        word_char_table(["中国"], max_chars=0)
    with pytest.raises(ValueError, match="int 7 at index 1"):
        word_char_table(["中国", 7])


# -- (a) normalised, (b) NumPy reference -------------------------------------------------------
@pytest.mark.parametrize("kwargs", [{}, {"kernel_size": (1, 3, 5), "filters": (3, 4, 2), "correction_dim": 3}])
def test_full_log_prob_is_normalised(kwargs):
    layer = make_layer(**kwargs)
    h = paddle.randn([4, 5, 6]) * 3
    lp = layer.full_log_prob(h)
    assert lp.shape == [4, 5, len(WORDS)]
    np.testing.assert_allclose(paddle.logsumexp(lp, axis=-1).numpy(), 0.0, atol=1e-12)
    assert np.all(lp.numpy() <= 0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"kernel_size": 5, "activation": "relu"},
        {"kernel_size": (1, 3, 5), "filters": (3, 4, 2), "correction_dim": 3},
        {"kernel_size": (3, 1), "filters": 2, "activation": "relu", "correction_dim": 1},
    ],
)
def test_matches_numpy_reference(kwargs):
    layer = make_layer(**kwargs)
    rng = np.random.default_rng(1)
    h_np = rng.normal(size=(11, 6))
    t_np = rng.integers(0, len(WORDS), size=11)
    t_np[4] = -100
    nll = layer(paddle.to_tensor(h_np), paddle.to_tensor(t_np)).numpy()
    np.testing.assert_allclose(layer.output_embeddings().numpy(), reference_embeddings(layer), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(nll, reference_nll(layer, h_np, t_np), rtol=1e-12, atol=1e-12)
    assert nll[4] == 0.0
    lp = layer.log_prob(paddle.to_tensor(h_np), paddle.to_tensor(t_np)).numpy()
    full = layer.full_log_prob(paddle.to_tensor(h_np)).numpy()
    ok = t_np != -100
    np.testing.assert_allclose(lp[ok], full[ok, t_np[ok]], rtol=1e-12)


def test_embedding_does_not_depend_on_table_width():
    """Padding columns are zeros, like the convolution's own padding: a wider table changes nothing."""
    layer = make_layer(kernel_size=(1, 3, 5), filters=3, correction_dim=2)
    narrow = layer.output_embeddings().numpy()
    table = layer.word_chars.numpy()
    layer.word_chars = paddle.to_tensor(np.pad(table, ((0, 0), (0, 3))))
    np.testing.assert_allclose(layer.output_embeddings().numpy(), narrow, rtol=1e-13, atol=1e-14)


# -- (c) finite differences ---------------------------------------------------------------------
def test_finite_differences():
    words = ["中国", "人民", "的", "", "经济发展", "北京"]
    layer = make_layer(words, D=3, char_dim=3, filters=(2, 2), kernel_size=(1, 3), correction_dim=2, seed=3)
    rng = np.random.default_rng(2)
    h_np = rng.normal(size=(5, 3))
    target = paddle.to_tensor([0, 4, 3, 5, -100])
    h = paddle.to_tensor(h_np, stop_gradient=False)
    layer(h, target).sum().backward()
    params = dict(layer.named_parameters())
    assert set(params) == {
        "char_embedding.weight", "convs.0.weight", "convs.0.bias", "convs.1.weight", "convs.1.bias",
        "projection.weight", "correction", "correction_projection.weight", "bias",
    }
    analytic = {name: p.grad.numpy() for name, p in params.items()}

    def loss(h_value):
        with paddle.no_grad():
            return float(layer(paddle.to_tensor(h_value), target).sum())

    eps = 1e-6
    for name, param in params.items():
        numeric = param_difference(lambda: loss(h_np), param, eps)
        np.testing.assert_allclose(analytic[name], numeric, rtol=1e-5, atol=1e-8, err_msg=name)
    assert np.all(analytic["char_embedding.weight"][0] == 0)  # padding row
    assert np.any(analytic["correction"][3] != 0)  # the word without characters still learns
    numeric = central_difference(loss, h_np, eps)
    np.testing.assert_allclose(h.grad.numpy(), numeric, rtol=1e-5, atol=1e-8)
    assert np.all(h.grad.numpy()[4] == 0)


# -- (d) predict ----------------------------------------------------------------------------------
def test_predict_is_exact_topk():
    layer = make_layer(correction_dim=2)
    h = paddle.randn([2, 3, 6])
    assert_exact_topk(layer, h, 4)
    with pytest.raises(ValueError, match=rf"k must be in \[1, {len(WORDS)}\]"):
        layer.predict(h, k=len(WORDS) + 1)


# -- (e) the eval-mode cache ----------------------------------------------------------------------
class _Model(paddle.nn.Layer):
    def __init__(self, out):
        super().__init__()
        self.proj = paddle.nn.Linear(6, 6)
        self.out = out

    def forward(self, h, target):
        return self.out(self.proj(h), target)


def test_eval_cache_equals_live_and_is_invalidated():
    layer = make_layer(kernel_size=(1, 3), filters=3, correction_dim=2)
    model = _Model(layer)
    h = paddle.randn([4, 6])
    target = paddle.to_tensor([0, 5, 28, 7])
    model.train()
    live = layer.output_embeddings().numpy()
    live_nll = model(h, target).numpy()
    assert layer._cache is None

    model.eval()
    cached = layer.output_embeddings()
    assert cached.stop_gradient and layer._cache is not None
    assert np.array_equal(cached.numpy(), live)  # exactly the training-mode computation
    assert layer.output_embeddings() is cached  # reused
    assert np.array_equal(model(h, target).numpy(), live_nll)
    assert layer.output_embeddings() is cached

    layer.train()  # the layer's own train() clears it
    assert layer._cache is None
    layer.eval()
    assert layer.output_embeddings() is not cached
    model.train()  # a parent's train() does not call the layer's; the training-mode call clears it
    assert layer._cache is not None
    opt = paddle.optimizer.SGD(learning_rate=0.5, parameters=model.parameters())
    model(h, target).sum().backward()
    assert layer._cache is None
    opt.step()
    opt.clear_grad()
    fresh_live = layer.output_embeddings().numpy()
    assert not np.allclose(fresh_live, live)
    model.eval()
    after = layer.output_embeddings().numpy()
    assert np.array_equal(after, fresh_live)
    np.testing.assert_allclose(after, reference_embeddings(layer), rtol=1e-12, atol=1e-13)


def test_eval_cache_notices_parameter_changes_in_eval_mode():
    layer = make_layer(correction_dim=2)
    layer.eval()
    first = layer.output_embeddings().numpy()
    # set_value on one parameter
    w = layer.convs[0].bias
    w.set_value(w.numpy() + 0.25)
    changed = layer.output_embeddings().numpy()
    assert not np.allclose(changed, first)
    np.testing.assert_allclose(changed, reference_embeddings(layer), rtol=1e-12, atol=1e-13)
    # set_state_dict of a parent (which never calls the layer's own methods)
    other = make_layer(correction_dim=2, seed=9)
    model, source = _Model(layer), _Model(other)
    model.eval()
    model.set_state_dict(source.state_dict())
    np.testing.assert_allclose(layer.output_embeddings().numpy(), other.output_embeddings().numpy(), rtol=1e-14)
    # an optimizer step taken in eval mode on the correction, which is cached
    opt = paddle.optimizer.SGD(learning_rate=1.0, parameters=[layer.correction])
    (layer.correction ** 2).sum().backward()
    before = layer.output_embeddings().numpy()
    opt.step()
    np.testing.assert_allclose(layer.output_embeddings().numpy(), reference_embeddings(layer), rtol=1e-12, atol=1e-13)
    assert not np.allclose(layer.output_embeddings().numpy(), before)
    # by hand
    layer.clear_cache()
    assert layer._cache is None


def test_eval_mode_gradients_reach_hidden_and_bias_only():
    layer = make_layer(correction_dim=2)
    layer.eval()
    h = paddle.randn([3, 6])
    h.stop_gradient = False
    layer(h, paddle.to_tensor([1, 2, 3])).sum().backward()
    assert h.grad is not None and layer.bias.grad is not None
    assert layer.projection.weight.grad is None and layer.correction.grad is None
    layer.train()
    h.clear_gradient()
    layer(h, paddle.to_tensor([1, 2, 3])).sum().backward()
    assert layer.projection.weight.grad is not None and layer.correction.grad is not None


# -- (f) parameter counts -------------------------------------------------------------------------
def _count(layer):
    return sum(int(np.prod(p.shape)) for p in layer.parameters())


@pytest.mark.parametrize("correction_dim", [0, 3])
def test_parameter_count(correction_dim):
    D = 6
    small, chars = word_char_table(WORDS[:10], max_chars=7)
    big, _ = word_char_table(WORDS, max_chars=7)
    num_chars = int(big.max()) + 1
    a = CNNSoftmax(D, small, num_chars, correction_dim=correction_dim)
    b = CNNSoftmax(D, big, num_chars, correction_dim=correction_dim)
    names = {n for n, _ in b.named_parameters()}
    V_a, V_b = 10, len(WORDS)
    if correction_dim == 0:
        assert not any("correction" in n for n in names) and b.correction is None
        assert _count(b) - _count(a) == V_b - V_a  # only the per-word bias grows with V
        cnn = num_chars * 16 + (128 * 16 * 3 + 128) + 128 * D
        assert _count(b) == cnn + V_b
    else:
        plain = CNNSoftmax(D, big, num_chars)
        assert _count(b) - _count(plain) == V_b * correction_dim + correction_dim * D
        assert _count(b) - _count(a) == (V_b - V_a) * (1 + correction_dim)


# -- (g) a word without characters ---------------------------------------------------------------
@pytest.mark.parametrize("correction_dim", [0, 2])
def test_word_without_characters_is_defined(correction_dim):
    words = ["中国", "", "人民", ""]
    layer = make_layer(words, correction_dim=correction_dim, kernel_size=(1, 3), activation="relu")
    e = layer.output_embeddings().numpy()
    assert np.all(np.isfinite(e))
    expected = np.zeros(6)
    if correction_dim:
        expected = layer.correction.numpy()[1] @ layer.correction_projection.weight.numpy()
    np.testing.assert_allclose(e[1], expected, rtol=1e-13, atol=1e-15)
    h = paddle.randn([2, 6])
    h.stop_gradient = False
    nll = layer(h, paddle.to_tensor([1, 3]))
    assert np.all(np.isfinite(nll.numpy()))
    nll.sum().backward()
    assert all(np.all(np.isfinite(p.grad.numpy())) for p in layer.parameters() if p.grad is not None)


# -- (h) ignore_index -----------------------------------------------------------------------------
def test_ignore_index_gives_zero():
    layer = make_layer()
    h = paddle.randn([2, 3, 6])
    h.stop_gradient = False
    nll = layer(h, paddle.full([2, 3], -100, dtype="int64"))
    assert np.all(nll.numpy() == 0)
    nll.sum().backward()
    assert np.all(h.grad.numpy() == 0)
    table, chars = word_char_table(WORDS)
    custom = CNNSoftmax(6, table, len(chars), ignore_index=0)
    out = custom(paddle.randn([3, 6]), paddle.to_tensor([0, 3, 29])).numpy()
    assert out[0] == 0 and np.all(out[1:] > 0)


# -- construction, state_dict ---------------------------------------------------------------------
def test_argument_errors_name_the_values():
    table, chars = word_char_table(WORDS)
    n = len(chars)
    with pytest.raises(ValueError, match=r"\[0, 3\].*num_chars=4.*\[0, "):
        CNNSoftmax(6, table, 4)
    with pytest.raises(ValueError, match=r"shape \[30\]"):
        CNNSoftmax(6, table[:, 0], n)
    with pytest.raises(ValueError, match="dtype float64"):
        CNNSoftmax(6, table.astype(float), n)
    with pytest.raises(ValueError, match="num_chars must be >= 2.*got 1"):
        CNNSoftmax(6, np.zeros((3, 2), dtype=np.int64), 1)
    with pytest.raises(ValueError, match="num_classes must be >= 2, got 1"):
        CNNSoftmax(6, table[:1], n)
    with pytest.raises(ValueError, match="kernel_size must be odd.*got 4"):
        CNNSoftmax(6, table, n, kernel_size=4)
    with pytest.raises(ValueError, match=r"kernel_size must be odd.*got \(1, 2\)"):
        CNNSoftmax(6, table, n, kernel_size=(1, 2))
    with pytest.raises(ValueError, match=r"one per width \(2 widths \[1, 3\]\), got \[4\]"):
        CNNSoftmax(6, table, n, kernel_size=(1, 3), filters=[4])
    with pytest.raises(ValueError, match="filters must be.*got 0"):
        CNNSoftmax(6, table, n, filters=0)
    with pytest.raises(ValueError, match="activation must be one of.*got 'gelu'"):
        CNNSoftmax(6, table, n, activation="gelu")
    with pytest.raises(ValueError, match="correction_dim must be >= 0.*got -1"):
        CNNSoftmax(6, table, n, correction_dim=-1)
    with pytest.raises(ValueError, match="char_dim must be >= 1, got 0"):
        CNNSoftmax(6, table, n, char_dim=0)
    with pytest.raises(ValueError, match="feature_size must be >= 1, got 0"):
        CNNSoftmax(0, table, n)
    layer = CNNSoftmax(6, paddle.to_tensor(table), n)  # a tensor table works too
    with pytest.raises(ValueError, match=r"Target values should be in \[0, 29\].*\[0, 30\]"):
        layer(paddle.randn([2, 6]), paddle.to_tensor([0, 30]))


def test_state_dict_round_trip(tmp_path):
    layer = make_layer(kernel_size=(1, 3), filters=3, correction_dim=2)
    state = layer.state_dict()
    assert "word_chars" in state and "correction" in state and "bias" in state
    path = str(tmp_path / "out.pdparams")
    paddle.save(state, path)
    loaded = paddle.load(path)
    table = np.asarray(loaded["word_chars"])
    num_chars = loaded["char_embedding.weight"].shape[0]
    other = CNNSoftmax(6, table, num_chars, char_dim=4, kernel_size=(1, 3), filters=3, correction_dim=2)
    other.set_state_dict(loaded)
    h = paddle.randn([5, 6])
    target = paddle.to_tensor([0, 5, 9, 29, 20])
    np.testing.assert_allclose(other(h, target).numpy(), layer(h, target).numpy(), rtol=1e-13)


def test_float32_close_to_float64():
    layer64 = make_layer(correction_dim=2)
    paddle.set_default_dtype("float32")
    table, chars = word_char_table(WORDS)
    layer32 = CNNSoftmax(6, table, len(chars), char_dim=4, filters=5, correction_dim=2)
    layer32.set_state_dict({k: v if k == "word_chars" else v.astype("float32") for k, v in layer64.state_dict().items()})
    h = np.random.default_rng(5).normal(size=(8, 6))
    t = paddle.to_tensor(np.arange(8) * 3)
    out32 = layer32(paddle.to_tensor(h, dtype="float32"), t).numpy()
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, layer64(paddle.to_tensor(h), t).numpy(), rtol=1e-5)


def test_to_static_export_and_jit_load(tmp_path):
    """Nothing is cached under to_static: the exported graph runs the CNN itself."""
    paddle.set_default_dtype("float32")
    table, chars = word_char_table(["中国", "人民", "", "北京", "的", "经济"])

    class Model(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.out = CNNSoftmax(8, table, len(chars), kernel_size=(1, 3), filters=4, correction_dim=2)

        def forward(self, hidden, target):
            return self.out(hidden, target)

    model = Model()
    model.eval()
    hidden = paddle.randn([2, 3, 8])
    target = paddle.to_tensor([[0, 1, 2], [3, 4, 5]])
    specs = [paddle.static.InputSpec([None, None, 8], "float32", "hidden"),
             paddle.static.InputSpec([None, None], "int64", "target")]
    export_round_trip(model, [hidden, target], specs, tmp_path)
