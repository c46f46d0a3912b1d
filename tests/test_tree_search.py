"""The H-softmax's tree search and sampler against the dense distribution: exact top-k on random
and trained layers of every tree kind, widening, the level/child caches following a loaded tree,
chi-square tests of the sampler (and of a broken one), the encoder-decoder's beam search against
its dense reference, and the language model's next words and generation."""

import numpy as np
import paddle
import pytest
from conftest import assert_exact_topk
from scipy.stats import chisquare

from paddle_hsoftmax import HierarchicalSoftmax, build_balanced_tree, build_huffman_tree
from paddle_hsoftmax.cluster_tree import build_clustered_tree
from paddle_hsoftmax.output import FullSoftmax
from paddle_hsoftmax.output import hsoftmax as hsoftmax_module
from paddle_hsoftmax.output.tree_search import children_table, sample_down, search_topk


pytestmark = pytest.mark.usefixtures("float64_default")


def zipf_counts(V, seed=0):
    return np.sort(np.random.default_rng(seed).zipf(1.3, size=V) % 10_000 + 1)[::-1]


def make_tree(kind, V, seed=0):
    if kind == "huffman":
        return build_huffman_tree(zipf_counts(V, seed))
    if kind == "balanced":
        return build_balanced_tree(V)
    return build_clustered_tree(np.random.default_rng(seed).normal(size=(V, 4)), counts=zipf_counts(V, seed))


def random_layer(tree, D=6, bias=True, scale=1.5, seed=0):
    layer = HierarchicalSoftmax(D, tree, bias=bias)
    rng = np.random.default_rng(seed)
    dtype = paddle.get_default_dtype()
    layer.weight.set_value(rng.normal(0, scale, size=(tree.num_inner, D)).astype(dtype))
    if bias:
        layer.bias.set_value(rng.normal(0, 0.5, size=(tree.num_inner,)).astype(dtype))
    layer.predict_method = "search"  # even where "auto" would take the dense pass
    return layer


def trained_layer(kind, V=300, D=8, bias=True, steps=150):
    """A layer trained on contexts whose next word depends on them (peaked distributions, as in
    a real model): context c in [0, 20) -> word (7 c + noise) mod V."""
    paddle.seed(1)
    emb = paddle.nn.Embedding(20, D)
    layer = HierarchicalSoftmax(D, make_tree(kind, V), bias=bias)
    opt = paddle.optimizer.Adam(learning_rate=0.05, parameters=list(emb.parameters()) + list(layer.parameters()))
    rng = np.random.default_rng(0)
    for _ in range(steps):
        c = rng.integers(0, 20, 256)
        t = (7 * c + rng.integers(0, 3, 256)) % V
        loss = layer(emb(paddle.to_tensor(c)), paddle.to_tensor(t)).mean()
        loss.backward()
        opt.step()
        opt.clear_grad()
    layer.predict_method = "search"
    with paddle.no_grad():
        return layer, emb(paddle.arange(20)).detach()


@pytest.mark.parametrize("kind", ["huffman", "balanced", "clustered"])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("kernel", ["fused", "paddle"])  # the C++ search on CPU, the Paddle-ops one
def test_search_is_the_dense_topk_on_random_layers(kind, bias, kernel):
    layer = random_layer(make_tree(kind, 257), bias=bias)
    layer.kernel = kernel
    h = paddle.randn([3, 5, 6])
    for k in range(1, 11):
        assert_exact_topk(layer, h, k)
    dense = layer.predict(h, 4, method="dense")
    found = layer.predict(h, 4)
    np.testing.assert_array_equal(found.ids.numpy(), dense.ids.numpy())


@pytest.mark.parametrize("kind", ["huffman", "balanced", "clustered"])
@pytest.mark.parametrize("kernel", ["fused", "paddle"])
def test_search_is_the_dense_topk_on_trained_layers_and_visits_few_nodes(kind, kernel):
    layer, h = trained_layer(kind)
    layer.kernel = kernel
    for k in range(1, 11):
        assert_exact_topk(layer, h, k)
    found = layer.search(h, 1)
    # a trained tree is searched, not swept: a fraction of the 299 nodes of the dense pass (8 per
    # step are expanded, so a balanced tree's 9 levels cost about 50 before the first leaf)
    assert np.median(found.expanded.numpy()) < 75, found.expanded.numpy()


def test_narrow_search_widens_or_falls_back_and_stays_exact():
    """Width 1 and a 2-node queue lose nodes that still matter: those rows run again (wider) or
    take the dense pass, and the answer is still the dense top-k."""
    layer = random_layer(make_tree("huffman", 500), scale=0.3)  # flat: many nodes matter
    h = paddle.randn([16, 6])
    dense_v, dense_i = paddle.topk(layer.full_log_prob(h), k=5)
    cache = layer._tree_cache()
    one = search_topk(h, layer.weight, layer.bias, cache.children, 5, 1, 2, 1000)
    assert not one.exact.numpy().all()  # the check can fail: a pass this narrow is not exact
    wrong = ~np.all(one.ids.numpy() == dense_i.numpy(), axis=1)
    assert np.all(~one.exact.numpy()[wrong])  # every wrong row is flagged
    found = layer.search(h, 5, width=1, kernel="paddle")
    np.testing.assert_array_equal(found.ids.numpy(), dense_i.numpy())
    np.testing.assert_allclose(found.log_probs.numpy(), dense_v.numpy(), rtol=1e-12)
    assert (found.passes.numpy() != 1).any()


def test_search_without_reads_flags_unfinished_rows():
    """The GPU mode (no per-step reads, a fixed step budget): rows finished in the budget are
    exact, the others are flagged, never silently wrong."""
    layer = random_layer(make_tree("huffman", 300))
    h = paddle.randn([12, 6])
    dense_i = paddle.topk(layer.full_log_prob(h), k=3)[1].numpy()
    children = layer._tree_cache().children
    for steps in (2, 6, 200):
        r = search_topk(h, layer.weight, layer.bias, children, 3, 4, 32, steps, read_back=False)
        exact = r.exact.numpy()
        np.testing.assert_array_equal(r.ids.numpy()[exact], dense_i[exact])
        if steps == 2:
            assert not exact.any()
        if steps == 200:
            assert exact.all()


def test_children_table_from_the_path_tables():
    tree = make_tree("huffman", 40)
    table = children_table(paddle.to_tensor(tree.path_nodes), paddle.to_tensor(tree.path_codes.astype(np.int64)))
    table = table.numpy().reshape(-1, 2)
    M = tree.num_inner
    for w in range(tree.num_leaves):  # walking the table along each code reaches the word
        node = 0
        for c in tree.code(w):
            node = table[node, int(c)]
            if node >= M:
                break
        assert node == M + w


def test_fused_search_in_float32_matches_the_paddle_search():
    paddle.set_default_dtype("float32")
    layer = random_layer(make_tree("huffman", 400), D=8)
    h = paddle.randn([32, 8])
    fused, ops = layer.search(h, 5, kernel="fused"), layer.search(h, 5, kernel="paddle")
    np.testing.assert_array_equal(fused.ids.numpy(), ops.ids.numpy())
    np.testing.assert_allclose(fused.log_probs.numpy(), ops.log_probs.numpy(), rtol=1e-5, atol=1e-6)
    assert fused.exact.numpy().all() and (fused.expanded.numpy() <= ops.expanded.numpy() + 8).all()


def test_auto_uses_the_dense_pass_on_tiny_trees():
    layer = HierarchicalSoftmax(4, build_balanced_tree(12))
    assert not layer.search_pays(1)
    assert HierarchicalSoftmax(4, build_balanced_tree(30_000)).search_pays(5)
    with pytest.raises(ValueError, match="method must be"):
        layer.predict(paddle.randn([2, 4]), 1, method="fast")


# -- the caches follow the tree ----------------------------------------------------------------------
def test_caches_follow_a_loaded_tree_of_the_same_shape(monkeypatch):
    """set_state_dict writes another same-shaped tree into the same buffers: predict, sample and
    full_log_prob use it at once; and the level tables are built from the host once per tree,
    not per call."""
    V = 16
    first = random_layer(build_balanced_tree(V), D=4)
    other_tree = build_clustered_tree(np.random.default_rng(5).normal(size=(V, 3)))
    assert other_tree.path_nodes.shape == build_balanced_tree(V).path_nodes.shape
    other = random_layer(other_tree, D=4, seed=1)
    h = paddle.randn([5, 4])
    expected = (other.full_log_prob(h).numpy(), other.predict(h, 3).ids.numpy(), other.sample(h, 50, seed=3).numpy())
    builds = []
    real = hsoftmax_module._level_tables
    monkeypatch.setattr(hsoftmax_module, "_level_tables", lambda *a: builds.append(1) or real(*a))
    for _ in range(3):
        first.full_log_prob(h)
        first.predict(h, 3)
    assert len(builds) == 1  # once per tree, not per call
    first.set_state_dict(other.state_dict())
    np.testing.assert_allclose(first.full_log_prob(h).numpy(), expected[0], rtol=1e-12)
    np.testing.assert_array_equal(first.predict(h, 3).ids.numpy(), expected[1])
    np.testing.assert_array_equal(first.sample(h, 50, seed=3).numpy(), expected[2])
    assert len(builds) == 2
    # a buffer replaced by assignment (another tensor object)
    third = random_layer(build_balanced_tree(V), D=4, seed=1)
    third.predict(h, 2)
    third.path_nodes = paddle.to_tensor(other_tree.path_nodes)
    third.path_codes = paddle.to_tensor(other_tree.path_codes.astype(np.int64))
    np.testing.assert_array_equal(third.predict(h, 3).ids.numpy(), other.predict(h, 3).ids.numpy())


# -- sampling ----------------------------------------------------------------------------------------
def chi_square_p(ids: np.ndarray, log_probs: np.ndarray) -> float:
    """p-value of the draws ``ids`` against the distribution ``exp(log_probs)`` (float64)."""
    p = np.exp(log_probs.astype(np.float64))
    p /= p.sum()
    observed = np.bincount(ids, minlength=p.size)
    return float(chisquare(observed, p * ids.size).pvalue)


@pytest.mark.parametrize("kind", ["huffman", "balanced"])
def test_tree_sampler_follows_the_distribution(kind):
    layer = random_layer(make_tree(kind, 10), D=3, scale=0.8)
    h = paddle.randn([2, 3])
    logp = layer.full_log_prob(h).numpy()
    ids = layer.sample(h, 20_000, seed=11).numpy()  # (2, 20000)
    assert ids.shape == (2, 20_000)
    for row in range(2):
        assert chi_square_p(ids[row], logp[row]) > 1e-4
    # temperature divides every node's logit: the distribution of a layer with weight / T
    cold = random_layer(make_tree(kind, 10), D=3, scale=0.8)
    cold.weight.set_value(layer.weight.numpy() / 0.5)
    cold.bias.set_value(layer.bias.numpy() / 0.5)
    warm_ids = layer.sample(h, 20_000, temperature=0.5, seed=12).numpy()
    assert chi_square_p(warm_ids[0], cold.full_log_prob(h).numpy()[0]) > 1e-4
    assert chi_square_p(warm_ids[0], logp[0]) < 1e-6  # and T = 0.5 is not T = 1


def test_a_wrong_sampler_fails_the_chi_square_test():
    """The test can fail: a walk that takes the other branch (an off-by-one in the child index)
    is rejected."""
    layer = random_layer(make_tree("huffman", 10), D=3, scale=0.8)
    h = paddle.randn([1, 3])
    children = layer._tree_cache().children
    swapped = children.reshape([-1, 2])[:, ::-1].reshape([-1])  # left <-> right
    wrong = sample_down(h, layer.weight, layer.bias, swapped, 20_000, layer.max_length, seed=11).numpy()[0]
    assert chi_square_p(wrong, layer.full_log_prob(h).numpy()[0]) < 1e-6
    right = sample_down(h, layer.weight, layer.bias, children, 20_000, layer.max_length, seed=11).numpy()[0]
    assert chi_square_p(right, layer.full_log_prob(h).numpy()[0]) > 1e-4


def test_sampling_seeds_shapes_and_arguments():
    layer = random_layer(make_tree("huffman", 50), D=4)
    h = paddle.randn([2, 3, 4])
    a, b = layer.sample(h, 7, seed=5), layer.sample(h, 7, seed=5)
    assert a.shape == [2, 3, 7] and a.dtype == paddle.int64
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.array_equal(a.numpy(), layer.sample(h, 7, seed=6).numpy())
    assert a.numpy().min() >= 0 and a.numpy().max() < 50
    for bad, match in ((dict(num_samples=0), "num_samples"), (dict(temperature=0.0), "temperature"),
                       (dict(seed=0), "seed must be None")):
        with pytest.raises(ValueError, match=match):
            layer.sample(h, **bad)


def test_generic_sampler_of_the_other_layers():
    layer = FullSoftmax(3, 9)
    h = paddle.randn([1, 3]) * 2
    logp = layer.full_log_prob(h).numpy()[0]
    ids = layer.sample(h, 20_000, seed=2).numpy()[0]
    assert chi_square_p(ids, logp) > 1e-4
    hot = layer.sample(h, 20_000, temperature=2.0, seed=3).numpy()[0]
    assert chi_square_p(hot, logp / 2.0) > 1e-4  # p ** (1/T), renormalised
    assert chi_square_p(hot, logp) < 1e-6


# -- the encoder-decoder's beam search ------------------------------------------------------------
def trained_seq2seq(copy: bool, V: int = 60, steps: int = 40):
    """A small encoder-decoder with an H-softmax decoder over V words, trained on source tokens
    mapped to target words (the copy ids point at the same words), ``<unk>``-like id 3 banned."""
    from paddle_hsoftmax.models.seq2seq import Seq2Seq
    from paddle_hsoftmax.output.registry import build_output_layer

    paddle.seed(0)
    words = ["</s>"] + [f"w{i}" for i in range(1, V)]
    layer = build_output_layer("hsoftmax", 8, words, list(range(2 * V, V, -1)), ignore_index=-100)
    model = Seq2Seq(20, layer, bos_id=V, eos_id=0, embed_dim=8, hidden_size=16, dropout=0.0, copy=copy,
                    banned_ids=(3,))
    opt = paddle.optimizer.Adam(learning_rate=0.02, parameters=model.parameters())
    rng = np.random.default_rng(0)
    for _ in range(steps):
        src = rng.integers(1, 20, (16, 4))
        tgt = np.concatenate([(src[:, :3] * 3) % (V - 1) + 1, np.zeros((16, 1), dtype=np.int64)], axis=1)
        inputs = np.concatenate([np.full((16, 1), V), tgt[:, :-1]], axis=1)
        copy_ids = paddle.to_tensor((src * 3) % (V - 1) + 1) if copy else None
        loss = model(paddle.to_tensor(src), paddle.to_tensor(np.full(16, 4)), paddle.to_tensor(inputs),
                     paddle.to_tensor(tgt), copy_ids).mean()
        loss.backward()
        opt.step()
        opt.clear_grad()
    model.eval()
    src = rng.integers(1, 20, (6, 4))
    copy_ids = paddle.to_tensor(np.where(src % 2 == 0, (src * 3) % (V - 1) + 1, -1)) if copy else None
    return model, paddle.to_tensor(src), paddle.to_tensor(np.array([4, 3, 4, 2, 4, 1])), copy_ids


@pytest.mark.parametrize("copy", [False, True])
def test_beam_search_with_the_tree_search_equals_the_dense_beam_search(copy, monkeypatch):
    paddle.set_default_dtype("float32")
    model, src, lens, copy_ids = trained_seq2seq(copy)
    model.output.predict_method = "search"
    calls = []
    real = model.output.search
    monkeypatch.setattr(model.output, "search", lambda *a, **kw: calls.append(1) or real(*a, **kw))
    for beam in (1, 3, 5):
        model.dense_decoding = True
        reference = model.beam_search(src, lens, beam, 6, copy_ids=copy_ids)
        model.dense_decoding = False
        searched = model.beam_search(src, lens, beam, 6, copy_ids=copy_ids)
        assert [[h.ids for h in hyps] for hyps in searched] == [[h.ids for h in hyps] for hyps in reference]
        for a, b in zip(searched, reference):
            np.testing.assert_allclose([h.score for h in a], [h.score for h in b], rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose([h.log_prob for h in a], [h.log_prob for h in b], rtol=1e-5, atol=1e-6)
            assert all(3 not in h.ids for h in a)
    assert calls  # the tree search answered
    model.dense_decoding = True
    reference = model.greedy(src, lens, 6, copy_ids)
    model.dense_decoding = False
    assert model.greedy(src, lens, 6, copy_ids) == reference


# -- the language model --------------------------------------------------------------------------
def test_language_model_next_words_and_generation():
    from paddle_hsoftmax.models.lm import LSTMLanguageModel

    V = 300
    model = LSTMLanguageModel(V, random_layer(make_tree("huffman", V), D=8), embed_dim=8, hidden_size=8)
    prompts = [[1, 2, 3], [4], [5, 6]]
    top = model.next_words(prompts, k=4)
    model.eval()
    for i, p in enumerate(prompts):
        h, _ = model.hidden(paddle.to_tensor([p]))
        dense = paddle.topk(model.output.full_log_prob(h[:, -1]), k=4)
        np.testing.assert_array_equal(top.ids.numpy()[i], dense[1].numpy()[0])
    model.train()
    out = model.generate(prompts, 6, seed=3)
    assert out.shape == [3, 6] and model.training  # the mode is restored
    np.testing.assert_array_equal(out.numpy(), model.generate(prompts, 6, seed=3).numpy())
    # a [B, T] tensor of prompts continues as the same prompts given as a list
    as_tensor = model.generate(paddle.to_tensor([[5, 6], [1, 2]]), 4, seed=9).numpy()
    np.testing.assert_array_equal(as_tensor, model.generate([[5, 6], [1, 2]], 4, seed=9).numpy())
    stop = int(out.numpy()[0, 0])
    stopped = model.generate(prompts, 6, seed=3, stop_id=stop).numpy()
    assert np.all(stopped[0] == stop)
    with pytest.raises(ValueError, match="n_words"):
        model.generate(prompts, 0)
