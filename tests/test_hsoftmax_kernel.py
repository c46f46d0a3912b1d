"""The fused C++ hierarchical-softmax kernel (``csrc/hsoftmax.cc``) against the Paddle path and a
float64 NumPy reference: loss, hidden / weight / bias gradients, every option, and the fallback
when no compiler is there."""

import logging
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import paddle
import pytest

from conftest import central_difference
from paddle_hsoftmax import HierarchicalSoftmax, build, build_balanced_tree, build_huffman_tree, fused, word2vec_kernel

KERNEL = fused.load_hsoftmax_kernel() is not None
needs_kernel = pytest.mark.skipif(not KERNEL, reason=f"no fused kernel here ({fused._HSOFTMAX.failed})")

V, D = 37, 6


def make_tree(kind: str):
    if kind == "huffman":
        return build_huffman_tree((1000 / np.arange(1, V + 1)).astype(np.int64) + 1)  # Zipf: paths 2..9
    return build_balanced_tree(V)


def make_layer(tree, kernel, bias=True, sparse=False, seed=0, **kw):
    rng = np.random.default_rng(seed)
    layer = HierarchicalSoftmax(D, tree, bias=bias, sparse=sparse, kernel=kernel, **kw)
    layer.weight.set_value(rng.normal(0, 0.7, size=(tree.num_inner, D)).astype("float32"))
    if bias:
        layer.bias.set_value(rng.normal(0, 0.5, size=tree.num_inner).astype("float32"))
    return layer


def dense_grad(param) -> np.ndarray:
    g = param.grad
    if g.is_selected_rows():
        out = np.zeros(param.shape, dtype=np.float64)
        np.add.at(out, np.asarray(g.rows()), g._get_tensor_from_selected_rows().numpy())
        return out
    return g.numpy().astype(np.float64)


def reference(h, W, b, tree, target, weights, max_length=None, ignore_index=-100, scale=None):
    """float64 NLL ``[N, K]`` and the gradients of ``sum(weights * nll)`` for ``h[N, K, D]``."""
    N, K, _ = h.shape
    nll = np.zeros((N, K))
    gh, gW = np.zeros_like(h), np.zeros_like(W)
    gb = np.zeros(W.shape[0])
    for n in range(N):
        t = target[n]
        if t == ignore_index:
            continue
        length = tree.path_lengths[t] if max_length is None else min(tree.path_lengths[t], max_length)
        for l in range(length):
            node, s = tree.path_nodes[t, l], 2.0 * tree.path_codes[t, l] - 1.0
            z = h[n] @ W[node] + (b[node] if b is not None else 0.0)  # (K,)
            nll[n] += np.logaddexp(0.0, -s * z)
            dz = weights[n] * (-s / (1.0 + np.exp(s * z)))  # (K,)
            gh[n] += dz[:, None] * W[node]
            gW[node] += (scale[n, l] if scale is not None else 1.0) * (dz @ h[n])
            gb[node] += dz.sum()
    return nll, gh, gW, gb


def run(layer, h, target, weights, shared=False, **kw):
    """The layer's loss and gradients: ``sum(weights * nll)`` backpropagated."""
    hidden = paddle.to_tensor(h.astype("float32"), stop_gradient=False)
    t = paddle.to_tensor(target)
    nll = layer.nll_shared_path(hidden, t, **kw) if shared else layer(hidden, t, **kw)
    (nll * paddle.to_tensor(weights.astype("float32"))).sum().backward()
    gb = dense_grad(layer.bias) if layer.bias is not None else None
    return nll.numpy().astype(np.float64), hidden.grad.numpy().astype(np.float64), dense_grad(layer.weight), gb


def batch(seed=1, N=29, ignore=()):
    rng = np.random.default_rng(seed)
    target = rng.integers(0, V, size=N)
    target[list(ignore)] = -100
    return rng.normal(0, 1.0, size=(N, D)), target, rng.uniform(0.5, 2.0, size=N)


@needs_kernel
@pytest.mark.parametrize("kind", ["huffman", "balanced"])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("bias", [True, False])
def test_both_kernels_match_the_float64_reference(kind, sparse, bias):
    tree = make_tree(kind)
    h, target, weights = batch(ignore=(3, 17))
    W = make_layer(tree, "paddle", bias=bias).weight.numpy().astype(np.float64)
    b = make_layer(tree, "paddle", bias=True).bias.numpy().astype(np.float64) if bias else None
    ref = reference(h[:, None], W, b, tree, target, weights[:, None])
    for kernel in ("fused", "paddle"):
        nll, gh, gW, gb = run(make_layer(tree, kernel, bias=bias, sparse=sparse), h, target, weights)
        np.testing.assert_allclose(nll, ref[0][:, 0], rtol=1e-5, atol=1e-5, err_msg=kernel)
        np.testing.assert_allclose(gh, ref[1][:, 0], rtol=1e-4, atol=1e-5, err_msg=kernel)
        np.testing.assert_allclose(gW, ref[2], rtol=1e-4, atol=1e-5, err_msg=kernel)
        if bias:
            np.testing.assert_allclose(gb, ref[3], rtol=1e-4, atol=1e-5, err_msg=kernel)
        assert nll[3] == nll[17] == 0.0 and not gh[3].any() and not gh[17].any()


def test_reference_gradients_are_finite_differences():
    """The NumPy reference's analytic gradients against central differences of its own loss."""
    tree = make_tree("huffman")
    rng = np.random.default_rng(5)
    h, target, weights = rng.normal(size=(4, 2, D)), np.array([0, 7, 36, 20]), rng.uniform(0.5, 2, (4, 2))
    W, b = rng.normal(0, 0.7, size=(V - 1, D)), rng.normal(0, 0.5, size=V - 1)
    scale = rng.uniform(0.1, 1.0, size=(4, tree.max_length))
    _, gh, gW, gb = reference(h, W, b, tree, target, weights, scale=scale)

    def loss(h_=h, W_=W, b_=b):
        return float((weights * reference(h_, W_, b_, tree, target, weights)[0]).sum())

    np.testing.assert_allclose(gh, central_difference(lambda x: loss(h_=x), h), atol=1e-6)
    np.testing.assert_allclose(gb, central_difference(lambda x: loss(b_=x), b), atol=1e-6)
    # node_grad_scale scales the weight gradient only: unscaled it is the derivative
    _, _, gW1, _ = reference(h, W, b, tree, target, weights)
    np.testing.assert_allclose(gW1, central_difference(lambda x: loss(W_=x), W), atol=1e-6)
    assert not np.allclose(gW, gW1)


@needs_kernel
def test_fused_gradient_is_a_finite_difference_of_the_fused_loss():
    """Central differences of the fused kernel's own float32 loss (eps 1e-2, no reference in
    between): a wrong sign or a missing term in the C++ backward would show here."""
    tree = make_tree("huffman")
    layer = make_layer(tree, "fused")
    h, target, weights = batch(seed=4, N=5)
    _, gh, gW, gb = run(layer, h, target, weights)

    def loss_of(param):
        def f(value):
            param.set_value(value.astype("float32"))
            with paddle.no_grad():
                out = layer(paddle.to_tensor(h.astype("float32")), paddle.to_tensor(target)).numpy()
            return float((out.astype(np.float64) * weights).sum())

        return f

    w0, b0 = layer.weight.numpy().astype(np.float64), layer.bias.numpy().astype(np.float64)
    np.testing.assert_allclose(gW, central_difference(loss_of(layer.weight), w0, eps=1e-2), atol=2e-3)
    layer.weight.set_value(w0.astype("float32"))
    np.testing.assert_allclose(gb, central_difference(loss_of(layer.bias), b0, eps=1e-2), atol=2e-3)
    layer.bias.set_value(b0.astype("float32"))

    def loss_h(x):
        with paddle.no_grad():
            out = layer(paddle.to_tensor(x.astype("float32")), paddle.to_tensor(target)).numpy()
        return float((out.astype(np.float64) * weights).sum())

    np.testing.assert_allclose(gh, central_difference(loss_h, h, eps=1e-2), atol=2e-3)


@needs_kernel
def test_sparse_gradient_holds_only_the_batch_rows_and_equals_the_dense_one():
    tree = make_tree("huffman")
    h, target, weights = batch(ignore=(0,))
    sparse, dense = make_layer(tree, "fused", sparse=True), make_layer(tree, "fused", sparse=False)
    _, gh_s, gW_s, gb_s = run(sparse, h, target, weights)
    _, gh_d, gW_d, gb_d = run(dense, h, target, weights)
    g = sparse.weight.grad
    assert g.is_selected_rows() and not dense.weight.grad.is_selected_rows()
    rows = np.asarray(g.rows())
    on_paths = {int(n) for t in target[1:] for n in tree.path_nodes[t, : tree.path_lengths[t]]}
    assert len(rows) == len(set(rows.tolist())) and set(rows.tolist()) == on_paths  # each once, no other
    np.testing.assert_array_equal(gW_s, gW_d)
    np.testing.assert_array_equal(gh_s, gh_d)
    np.testing.assert_array_equal(gb_s, gb_d)


@needs_kernel
def test_ignore_index_of_any_value_and_a_batch_of_only_ignored_targets():
    tree = make_tree("balanced")
    h, target, weights = batch(seed=2, N=6)
    target[[1, 4]] = 5  # the ignored value is itself a word id here
    for kernel in ("fused", "paddle"):
        layer = make_layer(tree, kernel, ignore_index=5)
        nll, gh, _, _ = run(layer, h, target, weights)
        assert nll[1] == nll[4] == 0 and not gh[[1, 4]].any() and (nll[[0, 2, 3, 5]] > 0).all()
    fused_out = run(make_layer(tree, "fused", ignore_index=5), h, target, weights)
    paddle_out = run(make_layer(tree, "paddle", ignore_index=5), h, target, weights)
    for a, b in zip(fused_out, paddle_out):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # nothing left to score: zeros, and zero gradients
    nll, gh, gW, gb = run(make_layer(tree, "fused"), h[:3], np.full(3, -100), weights[:3])
    assert not nll.any() and not gh.any() and not gW.any() and not gb.any()


@needs_kernel
def test_max_length_bounds_and_truncation_agree():
    tree = make_tree("huffman")
    short = np.flatnonzero(tree.path_lengths <= 4)
    rng = np.random.default_rng(3)
    h, weights = rng.normal(size=(12, D)), rng.uniform(0.5, 2, 12)
    target = rng.choice(short, size=12)
    W = make_layer(tree, "paddle").weight.numpy().astype(np.float64)
    b = make_layer(tree, "paddle").bias.numpy().astype(np.float64)
    ref = reference(h[:, None], W, b, tree, target, weights[:, None])
    for kernel in ("fused", "paddle"):
        out = run(make_layer(tree, kernel), h, target, weights, max_length=4)
        np.testing.assert_allclose(out[0], ref[0][:, 0], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(out[2], ref[2], rtol=1e-4, atol=1e-5)
        with pytest.raises(ValueError, match="shorter than a target's path"):
            make_layer(tree, kernel)(paddle.to_tensor(h.astype("float32")), paddle.to_tensor(target), max_length=2)
    # unchecked, a bound below the paths keeps their first max_length nodes in both paths
    target = rng.integers(0, V, size=12)
    ref = reference(h[:, None], W, b, tree, target, weights[:, None], max_length=3)
    for kernel in ("fused", "paddle"):
        out = run(make_layer(tree, kernel, check_targets=False), h, target, weights, max_length=3)
        np.testing.assert_allclose(out[0], ref[0][:, 0], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(out[1], ref[1][:, 0], rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(out[2], ref[2], rtol=1e-4, atol=1e-5)


@needs_kernel
@pytest.mark.parametrize("kind", ["huffman", "balanced"])
def test_nll_shared_path_with_node_grad_scale(kind):
    """K hidden states per row against one path; the scale multiplies only the node gradients."""
    tree = make_tree(kind)
    rng = np.random.default_rng(6)
    N, K = 9, 3
    h, weights = rng.normal(size=(N, K, D)), rng.uniform(0.5, 2, size=(N, K))
    target = rng.integers(0, V, size=N)
    scale = rng.uniform(0.1, 1.0, size=(N, tree.max_length))
    W = make_layer(tree, "paddle").weight.numpy().astype(np.float64)
    b = make_layer(tree, "paddle").bias.numpy().astype(np.float64)
    ref = reference(h, W, b, tree, target, weights, scale=scale)
    for kernel in ("fused", "paddle"):
        for sparse in (False, True):
            layer = make_layer(tree, kernel, sparse=sparse)
            out = run(layer, h, target, weights, shared=True,
                      node_grad_scale=paddle.to_tensor(scale.astype("float32")))
            for got, want in zip(out, ref):
                np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=f"{kernel} {sparse}")


@needs_kernel
def test_batch_shape_dtype_and_kernel_selection(monkeypatch):
    tree = make_tree("huffman")
    calls = []
    real = fused.hsoftmax_nll
    monkeypatch.setattr(fused, "hsoftmax_nll", lambda *a, **k: calls.append(1) or real(*a, **k))
    rng = np.random.default_rng(7)
    h = rng.normal(size=(3, 4, D)).astype("float32")
    target = rng.integers(0, V, size=(3, 4))
    auto, ref = make_layer(tree, "auto"), make_layer(tree, "paddle")
    out = auto(paddle.to_tensor(h), paddle.to_tensor(target))
    assert calls and out.shape == [3, 4]
    np.testing.assert_allclose(out.numpy(), ref(paddle.to_tensor(h), paddle.to_tensor(target)).numpy(), rtol=1e-5)
    calls.clear()
    paddle.set_default_dtype("float64")
    try:
        auto64, forced = HierarchicalSoftmax(D, tree, kernel="auto"), HierarchicalSoftmax(D, tree, kernel="fused")
    finally:
        paddle.set_default_dtype("float32")
    auto64(paddle.to_tensor(h.astype("float64")), paddle.to_tensor(target))  # float64: the Paddle path
    assert not calls
    with pytest.raises(ValueError, match="float32 CPU tensors"):
        forced(paddle.to_tensor(h.astype("float64")), paddle.to_tensor(target))
    with pytest.raises(ValueError, match="kernel must be"):
        auto.kernel = "cuda"
    auto.kernel = "paddle"
    auto(paddle.to_tensor(h), paddle.to_tensor(target))
    assert not calls
    # an out-of-range target is refused by the kernel itself (the layer's own check then runs
    # only to word the error), even unchecked; ignore_index passes
    bad = paddle.to_tensor(np.array([0, 1, V, 2]))
    message = rf"Target values should be in \[0, {V - 1}\] \(or ignore_index=-100\), but values in range \[0, {V}\]"
    checked = make_layer(tree, "fused")
    for layer in (checked, make_layer(tree, "fused", check_targets=False)):
        with pytest.raises(ValueError, match=message):
            layer(paddle.to_tensor(h[0]), bad)
    fine = checked(paddle.to_tensor(h[0]), paddle.to_tensor(np.array([0, -100, V - 1, 2])))
    assert float(fine[1]) == 0.0


@needs_kernel
def test_to_static_uses_the_paddle_ops_and_agrees(tmp_path):
    tree = make_tree("huffman")
    layer = make_layer(tree, "fused")
    h = paddle.to_tensor(np.random.default_rng(8).normal(size=(5, D)).astype("float32"))
    target = paddle.to_tensor(np.array([0, 3, 9, 36, 12]))
    eager = layer(h, target).numpy()
    static = paddle.jit.to_static(layer.forward, full_graph=True)
    np.testing.assert_allclose(static(h, target).numpy(), eager, rtol=1e-5, atol=1e-6)


@needs_kernel
def test_threads_do_not_change_a_bit(monkeypatch):
    """Rows split over threads, node gradients summed per node in a fixed order: the same bits
    for 1 and 2 threads (a batch above the kernel's parallel threshold)."""
    tree = make_tree("huffman")
    rng = np.random.default_rng(9)
    N, K = 1500, 2  # N * K * path * D above the kernel's 65,536 multiply-adds
    h, weights = rng.normal(size=(N, K, D)), rng.uniform(0.5, 2, size=(N, K))
    target = rng.integers(0, V, size=N)
    outs = []
    for threads in (1, 2):
        monkeypatch.setattr(fused, "_threads", threads)
        outs.append(run(make_layer(tree, "fused", sparse=True), h, target, weights, shared=True))
    for a, b in zip(*outs):
        np.testing.assert_array_equal(a, b)


def test_build_key_covers_compiler_flags_and_cpu(monkeypatch):
    monkeypatch.setattr(build, "_compiler", lambda: ("/usr/bin/g++", "g++ 12.2.0"))
    monkeypatch.setattr(build, "_cpu_features", lambda: "avx2 fma sse4_2")
    source = build.CSRC / "hsoftmax.cc"
    key = build.build_key(source)
    assert build.build_key(source) == key
    assert build.build_key(source, extra=["3.3.1"]) != key  # a custom op: Paddle's version too
    monkeypatch.setattr(build, "_cpu_features", lambda: "avx2 avx512f fma sse4_2")
    assert build.build_key(source) != key  # another CPU: another build
    monkeypatch.setattr(build, "_cpu_features", lambda: "avx2 fma sse4_2")
    monkeypatch.setattr(build, "_compiler", lambda: ("/usr/bin/g++", "g++ 13.1.0"))
    assert build.build_key(source) != key
    monkeypatch.setattr(build, "_compiler", lambda: ("/usr/bin/g++", "g++ 12.2.0"))
    monkeypatch.setattr(build, "CFLAGS", build.CFLAGS + ["-ffast-math"])
    assert build.build_key(source) != key


def test_no_compiler_falls_back_with_one_warning(monkeypatch, tmp_path, caplog):
    """CXX names a compiler that does not exist: the layer runs the Paddle ops, after exactly one
    warning line for both kernels, and kernel='fused' says why it cannot run."""
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-g++"))
    monkeypatch.setenv("PADDLE_HSOFTMAX_BUILD_DIR", str(tmp_path / "build"))
    monkeypatch.setattr(fused, "_HSOFTMAX", fused._Kernel("hs_test", fused._CSRC / "hsoftmax.cc", "hs"))
    monkeypatch.setattr(word2vec_kernel, "_LIBRARY", word2vec_kernel._Library("w2v_test"))
    monkeypatch.setattr(build, "_toolchain_warned", False)
    tree = make_tree("huffman")
    h, target, weights = batch(N=7)
    with caplog.at_level(logging.WARNING, logger="paddle_hsoftmax"):
        out = run(make_layer(tree, "auto"), h, target, weights)
        assert word2vec_kernel.load() is None
        out2 = run(make_layer(tree, "auto"), h, target, weights)
    records = [r for r in caplog.records if r.name.startswith("paddle_hsoftmax")]
    assert len(records) == 1 and records[0].levelno == logging.WARNING
    assert "no-such-g++" in records[0].getMessage() and "error:" not in records[0].getMessage()
    ref = run(make_layer(tree, "paddle"), h, target, weights)
    for a, b, c in zip(out, out2, ref):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, c)
    assert not (tmp_path / "build").exists() or not any((tmp_path / "build").rglob("*.so"))
    with pytest.raises(RuntimeError, match="could not be built"):
        make_layer(tree, "fused")(paddle.to_tensor(h.astype("float32")), paddle.to_tensor(target))


def test_no_compiler_in_a_real_process_prints_one_line(tmp_path):
    """What a user sees: a fresh process without a compiler prints one warning line (no
    ``error:``) and trains with the Paddle ops."""
    script = textwrap.dedent(
        """
        import numpy as np, paddle
        from paddle_hsoftmax import HierarchicalSoftmax, build_huffman_tree
        from paddle_hsoftmax.word2vec_kernel import load as load_word2vec_kernel
        layer = HierarchicalSoftmax(8, build_huffman_tree(np.arange(50, 0, -1)))
        h = paddle.randn([16, 8]); h.stop_gradient = False
        layer(h, paddle.arange(16)).sum().backward()
        assert load_word2vec_kernel() is None
        print("trained", float(h.grad.abs().sum()) > 0)
        """
    )
    env = dict(os.environ, CXX=str(tmp_path / "missing-c++"), PADDLE_HSOFTMAX_BUILD_DIR=str(tmp_path / "b"))
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1]) + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run([sys.executable, "-W", "ignore", "-c", script], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "trained True"
    lines = [line for line in proc.stderr.splitlines() if "paddle_hsoftmax" in line or "rror" in line]
    assert len(lines) == 1 and "fused CPU kernels unavailable" in lines[0], proc.stderr
    assert "error:" not in proc.stderr.lower()
