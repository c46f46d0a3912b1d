"""Negative sampling: a float64 NumPy reference for the loss and its gradients, the fused kernel
against the Paddle path (one update with fixed draws, a batch's loss), the unigram^0.75 table,
the kernel's own loop over the token stream, and the command's bad input."""

import numpy as np
import paddle
import pytest

from paddle_hsoftmax import build_huffman_tree
from paddle_hsoftmax.cli import main
from paddle_hsoftmax.data.windows import split_stream, unigram_table, window_contexts
from paddle_hsoftmax.word2vec_kernel import available as word2vec_kernel_available
from paddle_hsoftmax.word2vec_kernel import hs_step as word2vec_hs_step
from paddle_hsoftmax.word2vec_kernel import ns_step as word2vec_ns_step
from paddle_hsoftmax.word2vec_kernel import train_tokens as word2vec_train_tokens
from paddle_hsoftmax.models import Word2Vec

needs_kernel = pytest.mark.skipif(not word2vec_kernel_available(), reason="no C++ compiler for the fused kernel")


def ns_reference(syn0, syn1, centres, contexts, negatives, cbow):
    """float64: (summed loss, d loss / d syn0, d loss / d syn1) of negative sampling, written
    from the definition: per pair -log s(h.u_c) - sum_n log s(-h.u_n), s = sigmoid; a draw equal
    to the centre or -1 is no target; CBOW's h is the mean and each context gets the full
    gradient of h (word2vec.c, gensim cbow_mean=1)."""
    s0, s1 = syn0.astype(np.float64), syn1.astype(np.float64)
    g0, g1 = np.zeros_like(s0), np.zeros_like(s1)
    loss = 0.0
    sig = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731

    def pair(h, w, negs):
        nonlocal loss
        gh = np.zeros_like(h)
        for t, label in [(w, 1.0)] + [(n, 0.0) for n in negs if n >= 0 and n != w]:
            f = h @ s1[t]
            loss += -np.log(sig(f)) if label else -np.log(sig(-f))
            d = sig(f) - label  # d loss / d f
            gh += d * s1[t]
            g1[t] += d * h
        return gh

    for i, w in enumerate(centres):
        ctx = [c for c in contexts[i] if c >= 0]
        if cbow:
            if not ctx:
                continue
            gh = pair(s0[ctx].mean(axis=0), w, negatives[i])
            for c in ctx:
                g0[c] += gh
        else:
            for k, c in enumerate(contexts[i]):
                if c >= 0:
                    g0[c] += pair(s0[c], w, negatives[i][k])
    return loss, g0, g1


def dense(param):
    g = param.grad
    out = np.zeros(param.shape, dtype=np.float64)
    np.add.at(out, np.asarray(g.rows()), g._get_tensor_from_selected_rows().numpy())
    return out


def ns_model(mode, V=12, D=8, seed=0):
    rng = np.random.default_rng(seed)
    model = Word2Vec(V, D, None, mode=mode, seed=seed, loss="ns")
    model.embedding.weight.set_value(rng.normal(0, 0.3, size=(V, D)).astype("float32"))
    model.output.weight.set_value(rng.normal(0, 0.3, size=(V, D)).astype("float32"))
    return model


def batch(mode, V=12, N=6, K=4, n=3, seed=1):
    """Random centres, contexts (-1 holes) and negatives, some equal to their centre."""
    rng = np.random.default_rng(seed)
    centres = rng.integers(0, V, size=N)
    contexts = rng.integers(-1, V, size=(N, K))
    contexts[:, 0] = rng.integers(0, V, size=N)  # every centre has a context
    negatives = rng.integers(-1, V, size=(N, n) if mode == "cbow" else (N, K, n))
    if mode == "cbow":
        negatives[0, 0] = centres[0]
    else:
        negatives[0, 0, 0] = centres[0]
    return centres, contexts, negatives


@pytest.mark.parametrize("mode", ["skipgram", "cbow"])
def test_paddle_path_matches_the_float64_reference(mode):
    model = ns_model(mode)
    centres, contexts, negatives = batch(mode)
    ref_loss, ref_g0, ref_g1 = ns_reference(model.embedding.weight.numpy(), model.output.weight.numpy(),
                                            centres, contexts, negatives, mode == "cbow")
    loss, pairs = model(paddle.to_tensor(centres), paddle.to_tensor(contexts), negatives=paddle.to_tensor(negatives))
    loss.backward()
    assert float(pairs) == ((contexts >= 0).sum() if mode == "skipgram" else len(centres))
    assert float(loss) == pytest.approx(ref_loss, rel=1e-5)
    np.testing.assert_allclose(dense(model.embedding.weight), ref_g0, atol=1e-5)
    np.testing.assert_allclose(dense(model.output.weight), ref_g1, atol=1e-5)


def test_reference_gradient_is_the_finite_difference_of_its_loss():
    """The reference itself, checked against central differences in float64 (CBOW: the output
    rows only; its context rows get the full gradient of the mean by convention, not 1/K of it)."""
    rng = np.random.default_rng(4)
    s0, s1 = rng.normal(0, 0.5, (6, 3)), rng.normal(0, 0.5, (6, 3))
    centres, contexts, negatives = np.array([2, 5]), np.array([[1, 3], [4, -1]]), np.array([[[0, 5], [2, 1]], [[3, 3], [0, 0]]])
    for cbow, negs in ((False, negatives), (True, negatives[:, 0])):
        _, g0, g1 = ns_reference(s0, s1, centres, contexts, negs, cbow)
        for table, grad in (((s1, g1),) if cbow else ((s0, g0), (s1, g1))):
            num = np.zeros_like(table)
            for idx in np.ndindex(table.shape):
                old = table[idx]
                table[idx] = old + 1e-6
                up = ns_reference(s0, s1, centres, contexts, negs, cbow)[0]
                table[idx] = old - 1e-6
                down = ns_reference(s0, s1, centres, contexts, negs, cbow)[0]
                table[idx] = old
                num[idx] = (up - down) / 2e-6
            np.testing.assert_allclose(grad, num, atol=1e-6)


@needs_kernel
@pytest.mark.parametrize("mode, contexts, negatives", [
    ("skipgram", [[4, -1]], [[[1, 7, 9], [-1, -1, -1]]]),
    ("cbow", [[4, 7]], [[1, 9, 3]]),
])
def test_one_fused_update_equals_paddle_sgd(mode, contexts, negatives):
    """One pair (one CBOW window) with distinct fixed draws: word2vec.c's sequential update is
    exactly one SGD step on the pair's loss."""
    model = ns_model(mode)
    centres, ctx, negs = np.array([11]), np.array(contexts), np.array(negatives)
    loss, pairs = model(paddle.to_tensor(centres), paddle.to_tensor(ctx), negatives=paddle.to_tensor(negs))
    loss.backward()
    before0, before1 = model.embedding.weight.numpy().copy(), model.output.weight.numpy().copy()
    g0, g1 = dense(model.embedding.weight), dense(model.output.weight)
    alpha = 0.05
    table = paddle.to_tensor(unigram_table(np.arange(12, 0, -1)))
    fused_loss, loss_pairs, all_pairs = word2vec_ns_step(
        model.embedding.weight, model.output.weight, table, centres, ctx, alpha=alpha, negative=3,
        cbow=mode == "cbow", negatives=negs,
    )
    assert fused_loss == pytest.approx(float(loss), rel=1e-5)
    assert loss_pairs == all_pairs == float(pairs)
    np.testing.assert_allclose(model.embedding.weight.numpy(), before0 - alpha * g0, atol=1e-6)
    np.testing.assert_allclose(model.output.weight.numpy(), before1 - alpha * g1, atol=1e-6)


@needs_kernel
@pytest.mark.parametrize("mode", ["skipgram", "cbow"])
def test_fused_loss_of_a_batch_equals_the_reference(mode):
    model = ns_model(mode)
    centres, contexts, negatives = batch(mode, N=20)
    ref_loss, _, _ = ns_reference(model.embedding.weight.numpy(), model.output.weight.numpy(), centres, contexts,
                                  negatives, mode == "cbow")
    before = model.embedding.weight.numpy().copy()
    table = paddle.to_tensor(unigram_table(np.ones(12)))
    loss, _, pairs = word2vec_ns_step(model.embedding.weight, model.output.weight, table, centres, contexts,
                                      alpha=0.0, negative=3, cbow=mode == "cbow", negatives=negatives)
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    assert np.array_equal(model.embedding.weight.numpy(), before)


def test_unigram_table_draws_follow_counts_to_the_075():
    counts = np.array([1000, 300, 50, 7, 1])
    table = unigram_table(counts, size=200_000)
    share = np.bincount(table, minlength=5) / len(table)
    p = counts**0.75 / (counts**0.75).sum()
    np.testing.assert_allclose(share, p, rtol=1e-3, atol=1e-5)
    assert set(unigram_table(np.array([10**9, 1]), size=1000).tolist()) == {0, 1}  # a rare word keeps a slot


@needs_kernel
def test_table_draws_in_the_kernel_follow_the_table():
    """Negative draws made inside the kernel: with h = 0 every target's update is
    alpha * (label - 1/2) * 0 for the output rows, but the context row moves by
    sum of -alpha/2 * u_n... so read the draws through a one-hot output table instead:
    u_w = e_w, h = e_0, one pair per centre: neu1e accumulates g * u_t = -alpha/2 * e_t per drawn t."""
    V, n, N = 8, 5, 4000
    counts = np.array([400, 200, 100, 50, 25, 12, 6, 3])
    table = unigram_table(counts)
    syn0 = paddle.to_tensor(np.zeros((V, V), dtype="float32"))
    syn1 = paddle.to_tensor(np.eye(V, dtype="float32"))
    centres = np.full(N, 7)
    contexts = np.zeros((N, 1), dtype=np.int64)
    # syn0[0] stays ~0 (steps of 1e-6), so every sigmoid is 1/2: each draw t adds -alpha/2 to syn0[0, t]
    alpha = 1e-6
    word2vec_ns_step(syn0, syn1, paddle.to_tensor(table), centres, contexts, alpha=alpha, negative=n, seed=3)
    drawn = -syn0.numpy()[0] / (alpha / 2)
    drawn[7] = 0.0  # the centre itself (+alpha/2 per pair, and draws of 7 are skipped)
    p = counts**0.75 / (counts**0.75).sum()
    p[7] = 0
    share = drawn / drawn.sum()
    np.testing.assert_allclose(share, p / p.sum(), atol=0.01)
    assert drawn.sum() == pytest.approx(N * n * (1 - (counts**0.75 / (counts**0.75).sum())[7]), rel=0.02)


def stream_of(sentences):
    return np.concatenate([np.r_[s, -1] for s in sentences]).astype(np.int32)


@needs_kernel
@pytest.mark.parametrize("cbow", [False, True])
def test_token_loop_window_one_without_subsampling_is_the_neighbours(cbow):
    """With window 1 and no subsampling the kernel's own windows are exactly each word's
    neighbours within its sentence: at alpha 0 its loss and pairs equal the centre op's on
    the NumPy-built windows."""
    rng = np.random.default_rng(0)
    V, D = 30, 8
    counts = (1000 / np.arange(1, V + 1)).astype(np.int64) + 1
    tree = build_huffman_tree(counts)
    s0 = paddle.to_tensor(rng.normal(0, 0.3, (V, D)).astype("float32"))
    s1 = paddle.to_tensor(rng.normal(0, 0.3, (V - 1, D)).astype("float32"))
    nodes, codes = paddle.to_tensor(tree.path_nodes), paddle.to_tensor(tree.path_codes.astype(np.int64))
    block = stream_of([rng.integers(0, V, size=L) for L in (1, 2, 7, 13, 30)])
    keep = paddle.to_tensor(np.ones(V, dtype="float32"))
    loss, loss_pairs, pairs, kept = word2vec_train_tokens(s0, s1, block, keep, 1, 0.0, 0.0, path_nodes=nodes,
                                                          path_codes=codes, cbow=cbow, threads=2)
    ids, sentence = split_stream(block)
    ctx = window_contexts(ids, sentence, 1, np.random.default_rng(0))
    has = (ctx >= 0).any(axis=1)
    ref, ref_pairs, _ = word2vec_hs_step(s0, s1, nodes, codes, ids[has], ctx[has], alpha=0.0, cbow=cbow)
    assert kept == len(ids)
    assert pairs == loss_pairs == ref_pairs
    assert loss == pytest.approx(ref, rel=1e-5)


@needs_kernel
def test_token_loop_subsamples_with_the_keep_probabilities():
    V = 10
    block = stream_of([np.arange(V).repeat(50)] * 40)
    keep = np.linspace(0.1, 1.0, V).astype("float32")
    s0 = paddle.to_tensor(np.zeros((V, 4), dtype="float32"))
    s1 = paddle.to_tensor(np.zeros((V, 4), dtype="float32"))
    table = paddle.to_tensor(unigram_table(np.ones(V)))
    _, _, _, kept = word2vec_train_tokens(s0, s1, block, paddle.to_tensor(keep), 5, 0.0, 0.0, table=table,
                                          negative=2, threads=1, seed=1)
    expected = 2000 * keep.sum()
    assert abs(kept - expected) < 4 * np.sqrt(2000 * (keep * (1 - keep)).sum())


@needs_kernel
@pytest.mark.parametrize("negative", [0, 3])
def test_token_loop_is_the_same_for_the_same_seed_with_one_thread(negative):
    rng = np.random.default_rng(2)
    V, D = 40, 8
    counts = (1000 / np.arange(1, V + 1)).astype(np.int64) + 1
    block = stream_of([rng.integers(0, V, size=L) for L in rng.integers(1, 40, size=50)])
    keep = paddle.to_tensor(np.full(V, 0.7, dtype="float32"))
    tree = build_huffman_tree(counts)
    extra = (dict(table=paddle.to_tensor(unigram_table(counts)), negative=negative) if negative else
             dict(path_nodes=paddle.to_tensor(tree.path_nodes),
                  path_codes=paddle.to_tensor(tree.path_codes.astype(np.int64))))
    runs = []
    for seed in (5, 5, 6):
        s0 = paddle.to_tensor(np.random.default_rng(0).normal(0, 0.3, (V, D)).astype("float32"))
        s1 = paddle.to_tensor(np.zeros((V if negative else V - 1, D), dtype="float32"))
        word2vec_train_tokens(s0, s1, block, keep, 5, 0.05, 0.01, threads=1, seed=seed, **extra)
        runs.append(s0.numpy())
    assert np.array_equal(runs[0], runs[1]) and not np.array_equal(runs[0], runs[2])


@pytest.mark.parametrize("extra, message", [
    (["--loss", "ns", "--negative", "0"], "--negative must be >= 1 with --loss ns, got 0"),
])
def test_bad_loss_settings_one_line(extra, message, tmp_path, capsys):
    corpus = tmp_path / "c.txt"
    corpus.write_text("a b c d\n" * 20, encoding="utf-8")
    code = main(["word2vec", "--corpus", str(corpus), "--output-dir", str(tmp_path / "o"), "--no-progress"] + extra)
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "o").exists()


@needs_kernel
@pytest.mark.parametrize("loss", ["hs", "ns"])
def test_token_loop_with_two_threads_keeps_every_update_of_the_hot_rows(loss):
    """With two threads each trains on its own copy of the output rows every pair touches (the
    nodes nearest the root; the most frequent words' rows) and folds its changes in every few
    centres: none may be lost. Two threads must move those rows as one thread does (Hogwild
    order aside: measured 3% / 1% apart), where dropping a thread's changes moves them ~half."""
    rng = np.random.default_rng(0)
    V, D = 300, 16
    counts = (10000 / np.arange(1, V + 1)).astype(np.int64) + 1
    tree = build_huffman_tree(counts)
    block = stream_of([rng.choice(V, size=40, p=counts / counts.sum()) for _ in range(3000)])
    keep = np.ones(V, dtype="float32")
    init = rng.normal(0, 0.3, (V, D)).astype("float32")
    kw = (dict(path_nodes=tree.path_nodes, path_codes=tree.path_codes.astype(np.int64)) if loss == "hs"
          else dict(table=unigram_table(counts), negative=5))
    moved = {}
    for threads in (1, 2):
        s0, s1 = init.copy(), np.zeros((V - 1 if loss == "hs" else V, D), dtype="float32")
        word2vec_train_tokens(s0, s1, block, keep, 3, 0.01, 0.01, threads=threads, seed=1, **kw)
        moved[threads] = s1[:64]
    one, two = moved[1], moved[2]
    assert np.linalg.norm(two - one) / np.linalg.norm(one) < 0.1
    assert np.linalg.norm(two) / np.linalg.norm(one) == pytest.approx(1.0, abs=0.05)
