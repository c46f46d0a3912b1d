"""Word vectors end to end on a slice of People's Daily: files, gensim, VisualDL, resume, 2 processes."""

import glob
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import paddle
import pytest
from conftest import write_pd_slice

from paddle_hsoftmax import build_huffman_tree
from paddle_hsoftmax.cli import main
from paddle_hsoftmax.data import read_peoples_daily
from paddle_hsoftmax.data.vocab import Vocab
from paddle_hsoftmax.data.windows import EncodedCorpus
from paddle_hsoftmax.models import Word2Vec
from paddle_hsoftmax.tasks import Word2VecConfig, Word2VecTask
from paddle_hsoftmax.trainer import Trainer, TrainerConfig

REPO = Path(__file__).resolve().parents[1]
SMALL = ["--dim", "16", "--epochs", "1", "--batch-size", "1024", "--no-progress", "--min-count", "3"]


@pytest.fixture(scope="module")
def pd_slice(tmp_path_factory) -> Path:
    """The first 2,000 lines of People's Daily (word/TAG format)."""
    return write_pd_slice(tmp_path_factory.mktemp("corpus") / "pd_2000.txt", 2000)


@pytest.fixture(scope="module")
def finished_run(pd_slice, tmp_path_factory):
    out = tmp_path_factory.mktemp("w2v") / "run"
    # 2 epochs without subsampling: measured held-in NLL 6.56 vs 6.72 untrained (1 epoch: 6.65; with
    # the default --sample 1e-3 even 3 epochs stay at 6.72, the subsampled pairs' distribution is not
    # the evaluated one)
    args = SMALL[:SMALL.index("--epochs")] + ["--epochs", "2", "--sample", "0"] + SMALL[SMALL.index("--epochs") + 2:]
    assert main(["word2vec", "--corpus", str(pd_slice), "--format", "tagged", "--output-dir", str(out)] + args) == 0
    return out


def test_outputs_load_in_gensim(finished_run):
    from gensim.models import KeyedVectors

    text = KeyedVectors.load_word2vec_format(str(finished_run / "vectors.txt"))
    binary = KeyedVectors.load_word2vec_format(str(finished_run / "vectors.bin"), binary=True)
    vocab = Vocab.load_tsv(finished_run / "vocab.tsv")
    assert list(text.index_to_key) == vocab.words == list(binary.index_to_key)
    assert text.vector_size == 16
    np.testing.assert_allclose(text.vectors, binary.vectors, atol=1e-5)
    assert np.isfinite(binary.vectors).all() and np.abs(binary.vectors).max() > 0


def test_metrics_and_checkpoint(finished_run):
    metrics = json.loads((finished_run / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["words_per_sec"] > 0 and metrics["epochs"] == 2
    # learned: below the same model untrained (node vectors start at zero, so the untrained NLL is
    # the mean code length x ln 2 of the evaluated pairs, already below ln V), with a margin
    config = Word2VecConfig(**metrics["config"])
    sentences = [[w for w, _ in s] for s in read_peoples_daily(config.corpus)]
    vocab = Vocab.build(sentences, min_count=config.min_count, max_vocab=config.max_vocab)
    untrained = Word2VecTask(config, vocab, EncodedCorpus.encode(sentences, vocab)).evaluate()
    assert metrics["heldin_nll_per_pair"] < untrained["heldin_nll_per_pair"] - 0.1, untrained
    assert metrics["information"]["huffman_mean_code_length"] >= metrics["information"]["unigram_entropy"]
    assert (finished_run / "checkpoints" / "last.pdckpt").exists()
    assert not list(finished_run.rglob("*.tmp"))


def test_visualdl_logs_read_back(finished_run):
    from visualdl import LogReader

    files = glob.glob(str(finished_run / "vdl" / "vdlrecords*"))
    assert files
    reader = LogReader(file_path=files[0])
    tags = reader.get_tags()
    assert {"train/loss", "train/lr", "train/words_per_sec", "eval/heldin_nll_per_pair"} <= set(tags["scalar"])
    assert "word_vectors" in tags["embeddings"]
    lr = [r.value for r in reader.get_data("scalar", "train/lr")]
    assert lr and all(a >= b for a, b in zip(lr, lr[1:]))  # linear decay
    assert "hparam" in tags["hyper_parameters"]


def test_finished_run_is_not_overwritten(finished_run, pd_slice, capsys):
    before = (finished_run / "vectors.txt").read_bytes()
    code = main(["word2vec", "--corpus", str(pd_slice), "--format", "tagged", "--output-dir", str(finished_run)] + SMALL)
    assert code == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (finished_run / "vectors.txt").read_bytes() == before


def _task(pd_slice, kernel="paddle", seed=0):
    sentences = [[w for w, _ in s] for s in read_peoples_daily(pd_slice)][:800]
    vocab = Vocab.build(sentences, min_count=3)
    corpus = EncodedCorpus.encode(sentences, vocab)
    config = Word2VecConfig(dim=16, batch_size=256, seed=seed, min_count=3, kernel=kernel, workers=1,
                            chunk_tokens=2000)  # fused: ~20 pieces of the stream per epoch
    return Word2VecTask(config, vocab, corpus)


class Interrupted(Exception):
    pass


@pytest.mark.parametrize("kernel", ["paddle", "fused"])
def test_resume_gives_identical_parameters(kernel, pd_slice, tmp_path):
    full = _task(pd_slice, kernel)
    assert full.kernel == kernel
    Trainer(TrainerConfig(str(tmp_path / "a"), epochs=2, progress=False, log_every=5)).fit(full)

    broken = _task(pd_slice, kernel)
    real_step = broken.train_step
    calls = {"n": 0}

    def dying_step(batch):
        calls["n"] += 1
        if calls["n"] > 11:
            raise Interrupted()
        return real_step(batch)

    broken.train_step = dying_step
    with pytest.raises(Interrupted):
        Trainer(TrainerConfig(str(tmp_path / "b"), epochs=2, progress=False, checkpoint_every=4)).fit(broken)

    resumed = _task(pd_slice, kernel)
    trainer = Trainer(TrainerConfig(str(tmp_path / "b"), epochs=2, progress=False, resume=True))
    trainer.fit(resumed)
    for (name, a), (_, b) in zip(full.net.state_dict().items(), resumed.net.state_dict().items()):
        assert np.array_equal(np.asarray(a), np.asarray(b)), name  # NumPy (fused) or Paddle tensors
    assert calls["n"] == 12 and trainer.state.epoch == 2


def test_skipgram_loss_is_sum_of_pair_losses():
    paddle.seed(0)
    tree = build_huffman_tree([9, 5, 4, 3, 2, 1])
    model = Word2Vec(6, 4, tree, mode="skipgram")
    model.output.weight.set_value(np.random.default_rng(0).normal(size=(5, 4)).astype("float32"))
    centres = paddle.to_tensor([0, 3])
    contexts = paddle.to_tensor([[1, 2, -1], [-1, 5, 0]])
    loss, pairs = model(centres, contexts)
    assert float(pairs) == 4
    h = model.embedding.weight
    pair_in = paddle.to_tensor([1, 2, 5, 0])
    pair_out = paddle.to_tensor([0, 0, 3, 3])
    expected = model.output(paddle.gather(h, pair_in), pair_out).sum()
    np.testing.assert_allclose(float(loss), float(expected), rtol=1e-5)


def test_cbow_passes_the_full_gradient_to_each_context():
    paddle.seed(0)
    tree = build_huffman_tree([9, 5, 4, 3, 2, 1])
    model = Word2Vec(6, 4, tree, mode="cbow")
    model.output.weight.set_value(np.random.default_rng(1).normal(size=(5, 4)).astype("float32"))
    model.embedding.weight.set_value(np.random.default_rng(2).normal(size=(6, 4)).astype("float32"))
    loss, _ = model(paddle.to_tensor([0]), paddle.to_tensor([[1, 2, -1, -1]]))
    loss.backward()
    g = model.embedding.weight.grad
    rows = np.asarray(g.rows())
    values = g._get_tensor_from_selected_rows().numpy()
    grad = np.zeros((6, 4))
    np.add.at(grad, rows, values)
    mean = model.embedding.weight.numpy()[[1, 2]].mean(axis=0)
    h = paddle.to_tensor(mean[None], stop_gradient=False)
    model.output(h, paddle.to_tensor([0])).sum().backward()
    np.testing.assert_allclose(grad[1], h.grad.numpy()[0], rtol=1e-5)
    np.testing.assert_allclose(grad[2], h.grad.numpy()[0], rtol=1e-5)


@pytest.mark.slow  # measured in the quick suite run of 2026-12-01: 6 s
def test_two_process_launch(pd_slice, tmp_path):
    out = tmp_path / "dp"
    env = dict(os.environ)
    env.pop("PADDLE_TRAINERS_NUM", None)
    proc = subprocess.run(
        [sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node", "2",
         "--log_dir", str(tmp_path / "logs"), str(REPO / "train.py"), "word2vec", "--corpus", str(pd_slice),
         "--format", "tagged", "--output-dir", str(out)] + SMALL,
        capture_output=True, text=True, cwd=tmp_path, timeout=600, env=env,
    )
    logs = "".join(p.read_text(errors="replace")[-3000:] for p in sorted((tmp_path / "logs").glob("workerlog.*")))
    assert proc.returncode == 0, logs
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["processes"] == 2
    assert (out / "vectors.bin").exists()
    assert len(glob.glob(str(out / "vdl" / "vdlrecords*"))) == 1  # rank 0 only


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--corpus", "/nonexistent/corpus.txt"], "no such file"),
        (["--min-count", "100000000"], "min_count=100000000 leaves 0 word"),
    ],
)
def test_bad_input_one_line(extra, message, pd_slice, tmp_path, capsys):
    args = ["word2vec", "--output-dir", str(tmp_path / "o"), "--corpus", str(pd_slice), "--format", "plain"] + SMALL
    code = main(args + extra)
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_non_utf8_corpus_names_line(tmp_path, capsys):
    bad = tmp_path / "latin.txt"
    bad.write_bytes(b"ok ok ok\ncaf\xe9 au lait\n")
    assert main(["word2vec", "--corpus", str(bad), "--output-dir", str(tmp_path / "o")] + SMALL) == 2
    assert f"{bad}:2: not UTF-8" in capsys.readouterr().err


def test_skipgram_over_another_output_layer_matches_hsoftmax():
    """Any output layer of the shared interface plugs in; with the same H-softmax layer passed
    explicitly, the generic path gives the shared-path result."""
    from paddle_hsoftmax import HierarchicalSoftmax, OutputLayer

    tree = build_huffman_tree([9, 5, 4, 3, 2, 1])
    shared = Word2Vec(6, 4, tree, mode="skipgram")
    shared.output.weight.set_value(np.random.default_rng(0).normal(size=(5, 4)).astype("float32"))

    class Wrapped(OutputLayer):  # same maths behind the generic interface only
        def __init__(self, inner):
            super().__init__(inner.feature_size, inner.num_classes)
            self.inner = inner

        def _nll(self, hidden, target):
            return self.inner._nll(hidden, target)

        def _full_log_prob(self, hidden):
            return self.inner._full_log_prob(hidden)

    inner = HierarchicalSoftmax(4, tree, bias=False)
    inner.weight.set_value(shared.output.weight.numpy())
    generic_out = Wrapped(inner)
    generic = Word2Vec(6, 4, None, mode="skipgram", output=generic_out)
    generic.embedding.weight.set_value(shared.embedding.weight.numpy())
    centres, contexts = paddle.to_tensor([0, 3]), paddle.to_tensor([[1, 2, -1], [-1, 5, 0]])
    a, _ = shared(centres, contexts)
    b, _ = generic(centres, contexts)
    np.testing.assert_allclose(float(a), float(b), rtol=1e-6)
    with pytest.raises(ValueError, match="expected"):
        Word2Vec(7, 4, None, output=generic_out)


def test_output_dir_that_is_a_file(pd_slice, tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("not a directory")
    assert main(["word2vec", "--corpus", str(pd_slice), "--format", "tagged", "--output-dir", str(target)] + SMALL) == 2
    assert "not a directory" in capsys.readouterr().err


def test_processes_get_equal_batches_covering_every_centre(pd_slice):
    sentences = [[w for w, _ in s] for s in read_peoples_daily(pd_slice)][:300]
    vocab = Vocab.build(sentences, min_count=3)
    corpus = EncodedCorpus.encode(sentences, vocab)
    config = Word2VecConfig(dim=8, batch_size=1000, min_count=3, kernel="paddle", sample=0)
    single = Word2VecTask(config, vocab, corpus)
    everything = np.concatenate([c for c, _, _ in single.epoch_batches(0)])
    shares = [list(Word2VecTask(config, vocab, corpus, rank=r, world=3).epoch_batches(0)) for r in range(3)]
    assert len({len(s) for s in shares}) == 1  # same number of steps on every process
    merged = np.concatenate([c for share in shares for c, _, _ in share])
    assert sorted(merged.tolist()) == sorted(everything.tolist())  # nothing dropped, nothing twice
    units = sum(u for share in shares for _, _, u in share)
    assert units == pytest.approx(corpus.raw_tokens)


def test_resuming_a_finished_run_keeps_honest_rates(pd_slice, tmp_path):
    out = tmp_path / "run"
    args = ["word2vec", "--corpus", str(pd_slice), "--format", "tagged", "--output-dir", str(out)] + SMALL
    assert main(args) == 0
    first = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert main(args + ["--resume"]) == 0  # nothing left to train: exports again
    again = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert again["steps"] == first["steps"]
    assert again["train_wall_seconds"] >= first["train_wall_seconds"]
    assert again["words_per_sec"] <= first["words_per_sec"] * 1.01


def test_tiny_vocabulary_end_to_end(tmp_path, capsys):
    """A vocabulary of 5 words (fewer than the 8 neighbours asked for) that holds a probe word:
    training finishes, metrics.json is written, and the neighbours are every other word, best
    first, as the cosines of the written vectors give them."""
    corpus = tmp_path / "tiny.txt"
    corpus.write_text("中国 经济 发展 很 快\n很 快 中国 发展 经济\n" * 40, encoding="utf-8")
    out = tmp_path / "run"
    assert main(["word2vec", "--corpus", str(corpus), "--output-dir", str(out), "--min-count", "1", "--dim", "8",
                 "--epochs", "1", "--no-progress"]) == 0
    assert "中国:" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["vocab_size"] == 5
    words, vectors = Vocab.load_tsv(out / "vocab.tsv").words, np.loadtxt(out / "vectors.txt", skiprows=1,
                                                                          usecols=range(1, 9), encoding="utf-8")
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    sims = unit @ unit[words.index("中国")]
    expected = [words[j] for j in np.argsort(-sims, kind="stable") if words[j] != "中国"]
    assert metrics["nearest"]["中国"] == expected


def test_nearest_asks_for_more_than_the_vocabulary():
    from paddle_hsoftmax.tasks.word2vec import Word2VecTask as W

    class Fake:
        vocab = Vocab.build([["a", "b", "a"]], min_count=1)

        def vectors(self):
            return np.array([[1.0, 0.0], [0.6, 0.8]])

    got = W.nearest(Fake(), ["a", "b", "zzz"], k=8)
    assert got == {"a": [("b", pytest.approx(0.6))], "b": [("a", pytest.approx(0.6))]}
    assert W.nearest(Fake(), ["a"], k=0) == {"a": []}
