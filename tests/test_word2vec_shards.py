"""The fused word2vec kernel's deterministic mode (``shards``): the same vectors for any number
of threads, and each round equal to its shards' independent updates added in shard order."""

import numpy as np
import paddle
import pytest

from paddle_hsoftmax import build_huffman_tree
from paddle_hsoftmax.word2vec_kernel import available as word2vec_kernel_available
from paddle_hsoftmax.word2vec_kernel import hs_step as word2vec_hs_step

pytestmark = pytest.mark.skipif(not word2vec_kernel_available(), reason="no C++ compiler for the fused kernel")


def setup(V=300, D=16, N=512, K=6, seed=0):
    rng = np.random.default_rng(seed)
    counts = (1e5 / np.arange(1, V + 1)).astype(np.int64) + 1
    tree = build_huffman_tree(counts)
    p = counts / counts.sum()
    centres = rng.choice(V, size=N, p=p)
    ctx = rng.choice(V, size=(N, K), p=p)
    ctx[rng.random(ctx.shape) < 0.3] = -1
    s0 = rng.normal(0, 0.3, (V, D)).astype("float32")
    s1 = rng.normal(0, 0.3, (V - 1, D)).astype("float32")
    tables = paddle.to_tensor(tree.path_nodes), paddle.to_tensor(tree.path_codes.astype(np.int64))
    return s0, s1, tables, centres, ctx


def train(s0, s1, tables, centres, ctx, steps=3, **kw):
    w0, w1 = paddle.to_tensor(s0.copy()), paddle.to_tensor(s1.copy())
    stats = []
    for _ in range(steps):
        stats.append(word2vec_hs_step(w0, w1, *tables, centres, ctx, alpha=0.05, max_exp=6.0, **kw))
    return w0.numpy(), w1.numpy(), stats


@pytest.mark.parametrize("cbow", [False, True])
@pytest.mark.parametrize("shards, round_centres", [(8, 4), (3, 7)])
def test_same_vectors_for_any_thread_count(cbow, shards, round_centres):
    data = setup()
    runs = [train(*data, cbow=cbow, threads=t, shards=shards, round_centres=round_centres) for t in (1, 2, 3)]
    for other in runs[1:]:
        assert np.array_equal(runs[0][0], other[0]) and np.array_equal(runs[0][1], other[1])
        assert runs[0][2] == other[2]  # the loss sums too, bit for bit
    # and it trained: the vectors moved, and the loss of the last step is below the first's
    assert not np.array_equal(runs[0][0], data[0])
    first, last = runs[0][2][0], runs[0][2][-1]
    assert last[0] / last[1] < first[0] / first[1]


@pytest.mark.parametrize("cbow", [False, True])
def test_one_shard_is_the_sequential_loop(cbow):
    data = setup()
    a = train(*data, cbow=cbow, threads=2, shards=1)
    b = train(*data, cbow=cbow, threads=1, shards=0)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


@pytest.mark.parametrize("cbow", [False, True])
def test_a_round_adds_each_shards_own_update(cbow):
    """Two shards of one centre each, one round: the result is the start plus each centre's
    update computed alone from the start (the sequential kernel, one centre at a time)."""
    s0, s1, tables, centres, ctx = setup(N=2, seed=4)
    got0, got1, _ = train(s0, s1, tables, centres, ctx, steps=1, cbow=cbow, threads=2, shards=2, round_centres=1)
    want0, want1 = s0.astype(np.float64).copy(), s1.astype(np.float64).copy()
    for i in range(2):
        one0, one1, _ = train(s0, s1, tables, centres[i:i + 1], ctx[i:i + 1], steps=1, cbow=cbow, threads=1, shards=0)
        want0 += one0 - s0
        want1 += one1 - s1
    np.testing.assert_allclose(got0, want0, atol=1e-6)
    np.testing.assert_allclose(got1, want1, atol=1e-6)
    # and not the sequential result: both paths start at the root, whose update the second
    # centre sees there
    _, seq1, _ = train(s0, s1, tables, centres, ctx, steps=1, cbow=cbow, threads=1, shards=0)
    assert np.abs(got1 - seq1).max() > 1e-6  # float32 rounding is ~3e-8 here


# -- through the word2vec task: --reproducible --------------------------------------------------
from conftest import write_pd_slice  # noqa: E402

from paddle_hsoftmax.data import read_peoples_daily  # noqa: E402
from paddle_hsoftmax.data.vocab import Vocab  # noqa: E402
from paddle_hsoftmax.data.windows import EncodedCorpus  # noqa: E402
from paddle_hsoftmax.tasks import Word2VecConfig, Word2VecTask  # noqa: E402
from paddle_hsoftmax.trainer import Trainer, TrainerConfig  # noqa: E402


@pytest.fixture(scope="module")
def sentences(tmp_path_factory):
    path = write_pd_slice(tmp_path_factory.mktemp("corpus") / "pd_800.txt", 800)
    return [[w for w, _ in s] for s in read_peoples_daily(path)]


def _task(sentences, workers):
    vocab = Vocab.build(sentences, min_count=3)
    config = Word2VecConfig(dim=16, batch_size=256, min_count=3, kernel="fused", workers=workers, reproducible=True)
    return Word2VecTask(config, vocab, EncodedCorpus.encode(sentences, vocab))


def _params(task):
    return {k: np.array(v) for k, v in task.net.state_dict().items()}  # a copy (NumPy arrays or Paddle tensors)


def test_reproducible_training_is_the_same_with_one_or_two_threads_and_after_a_kill(sentences, tmp_path):
    one = _task(sentences, workers=1)
    Trainer(TrainerConfig(str(tmp_path / "one"), epochs=2, progress=False)).fit(one)
    two = _task(sentences, workers=2)
    Trainer(TrainerConfig(str(tmp_path / "two"), epochs=2, progress=False)).fit(two)
    a, b = _params(one), _params(two)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    untrained = _params(_task(sentences, workers=2))
    assert not np.array_equal(a["embedding.weight"], untrained["embedding.weight"])

    class Killed(Exception):
        pass

    broken = _task(sentences, workers=2)
    real_step, calls = broken.train_step, {"n": 0}

    def dying_step(batch):
        calls["n"] += 1
        if calls["n"] > 7:
            raise Killed()
        return real_step(batch)

    broken.train_step = dying_step
    with pytest.raises(Killed):
        Trainer(TrainerConfig(str(tmp_path / "killed"), epochs=2, progress=False, checkpoint_every=3)).fit(broken)
    resumed = _task(sentences, workers=2)
    Trainer(TrainerConfig(str(tmp_path / "killed"), epochs=2, progress=False, resume=True)).fit(resumed)
    c = _params(resumed)
    assert all(np.array_equal(a[k], c[k]) for k in a)
