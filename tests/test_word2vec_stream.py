"""Streaming: the corpus as a token-id file in the run directory, read a piece at a time; a
corpus that changes during a run (or before --resume) stops it in one line, the checkpoint kept;
negative sampling end to end with both kernels."""

import json

import numpy as np
import pytest
from conftest import write_pd_slice

from paddle_hsoftmax.cli import main
from paddle_hsoftmax.data import windows
from paddle_hsoftmax.data.vocab import Vocab
from paddle_hsoftmax.data.windows import EncodedCorpus, split_stream
from paddle_hsoftmax.safe_io import load_state
from paddle_hsoftmax.tasks import Word2VecConfig, Word2VecTask
from paddle_hsoftmax.trainer import Trainer, TrainerConfig

SENTENCES = [["a", "b", "c"], ["zz"], ["b", "a", "a", "q", "c", "b"], ["c"]]


def test_file_stream_equals_memory_stream(tmp_path):
    vocab = Vocab.build(SENTENCES, min_count=2)
    mem = EncodedCorpus.encode(SENTENCES, vocab)
    disk = EncodedCorpus.encode_to_file(SENTENCES, vocab, tmp_path / "c.ids")
    assert np.array_equal(mem.stream, np.fromfile(tmp_path / "c.ids", dtype=np.int32))
    assert (disk.num_tokens, disk.num_sentences, disk.raw_tokens) == (mem.num_tokens, mem.num_sentences, 11)
    assert mem.stream.tolist() == [0, 1, 2, -1, 1, 0, 0, 2, 1, -1, 2, -1]  # OOV dropped, empty line gone
    for size in (1, 3, 5, 100):
        pieces = list(disk.chunks(size))
        assert all(p[-1] == -1 for p in pieces)
        assert np.array_equal(np.concatenate(pieces), mem.stream)
    assert np.array_equal(disk.tokens, mem.tokens) and np.array_equal(disk.sentence, mem.sentence)
    assert split_stream(mem.stream)[1].tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 2]


def test_long_sentences_are_cut(monkeypatch):
    monkeypatch.setattr(windows, "MAX_SENTENCE", 4)
    vocab = Vocab(["a"], [10])
    corpus = EncodedCorpus.encode([["a"] * 10], vocab)
    assert corpus.stream.tolist() == [0, 0, 0, 0, -1, 0, 0, 0, 0, -1, 0, 0, -1]


@pytest.fixture(scope="module")
def text_corpus(tmp_path_factory):
    """The first 1,500 lines of People's Daily as plain text (words only)."""
    tagged = write_pd_slice(tmp_path_factory.mktemp("c") / "pd.txt", 1500)
    plain = tagged.with_name("pd_plain.txt")
    from paddle_hsoftmax.data import read_peoples_daily

    plain.write_text("\n".join(" ".join(w for w, _ in s) for s in read_peoples_daily(tagged)) + "\n", encoding="utf-8")
    return plain


SMALL = ["--dim", "8", "--min-count", "3", "--no-progress", "--chunk-tokens", "4000"]


def test_run_directory_holds_the_encoded_corpus(text_corpus, tmp_path):
    out = tmp_path / "run"
    assert main(["word2vec", "--corpus", str(text_corpus), "--output-dir", str(out), "--epochs", "1"] + SMALL) == 0
    meta = json.loads((out / "corpus.json").read_text(encoding="utf-8"))
    vocab = Vocab.load_tsv(out / "vocab.tsv")
    sentences = [line.split() for line in text_corpus.read_text(encoding="utf-8").splitlines() if line.split()]
    expected = EncodedCorpus.encode(sentences, vocab)
    assert np.array_equal(np.fromfile(out / "corpus.ids", dtype=np.int32), expected.stream)
    assert meta["source"]["path"] == str(text_corpus) and len(meta["source"]["sha256"]) == 64
    assert meta["raw_tokens"] == expected.raw_tokens
    assert not list(tmp_path.glob(".*.ids.tmp"))  # the temporary file moved in


def test_corpus_changed_during_a_run_stops_it_and_keeps_the_checkpoint(text_corpus, tmp_path, capsys, monkeypatch):
    corpus = tmp_path / "corpus.txt"
    corpus.write_bytes(text_corpus.read_bytes())
    out = tmp_path / "run"
    real = Word2VecTask.train_step
    calls = {"n": 0}

    def step_then_edit(self, batch):
        calls["n"] += 1
        if calls["n"] == 1:  # during epoch 1: someone appends to the corpus
            with open(corpus, "a", encoding="utf-8") as f:
                f.write("新 的 一 行\n")
        return real(self, batch)

    monkeypatch.setattr(Word2VecTask, "train_step", step_then_edit)
    args = ["word2vec", "--corpus", str(corpus), "--output-dir", str(out), "--epochs", "3"] + SMALL
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(corpus) in err[0] and "changed during training" in err[0], err
    ckpt = load_state(out / "checkpoints" / "last.pdckpt")
    assert ckpt["trainer"]["epoch"] == 1  # epoch 1 finished and saved; epoch 2 refused to start
    monkeypatch.setattr(Word2VecTask, "train_step", real)
    # --resume on the changed text: refused, the checkpoint untouched
    before = (out / "checkpoints" / "last.pdckpt").read_bytes()
    assert main(args + ["--resume"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(corpus) in err[0] and "changed since the run started" in err[0], err
    assert (out / "checkpoints" / "last.pdckpt").read_bytes() == before
    # the original text back (same bytes, a new modification time): the run resumes and finishes
    corpus.write_bytes(text_corpus.read_bytes())
    assert main(args + ["--resume"]) == 0
    assert json.loads((out / "metrics.json").read_text(encoding="utf-8"))["epochs"] == 3


@pytest.mark.parametrize("model", ["cbow", pytest.param("skipgram", marks=pytest.mark.slow)])
def test_negative_sampling_learns_alike_with_both_kernels(model, text_corpus):
    """The same settings with the fused kernel (word2vec.c's sequential updates) and the Paddle
    path (batched SGD, capped row gradients): both far below the untrained loss, and within 0.1
    of each other (measured on 2,000 lines, 2 epochs: 2.620 vs 2.614 CBOW, 2.634 vs 2.684
    skip-gram, from 4.14 untrained)."""
    sentences = [line.split() for line in text_corpus.read_text(encoding="utf-8").splitlines() if line.split()]
    vocab = Vocab.build(sentences, min_count=3)
    corpus = EncodedCorpus.encode(sentences, vocab)
    got = {}
    for kernel in ("fused", "paddle"):
        config = Word2VecConfig(dim=16, min_count=3, kernel=kernel, loss="ns", model=model, sample=0, epochs=2,
                                workers=1, batch_size=1024)
        task = Word2VecTask(config, vocab, corpus)
        if task.kernel != kernel:
            pytest.skip("no C++ compiler for the fused kernel")
        untrained = task.evaluate()["heldin_ns_loss_per_pair"]
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            got[kernel] = Trainer(TrainerConfig(d, epochs=2, progress=False)).fit(task)["heldin_ns_loss_per_pair"]
        assert got[kernel] < untrained - 1.0, (kernel, untrained, got[kernel])
    assert abs(got["fused"] - got["paddle"]) < 0.1, got


def test_a_cpu_run_never_imports_paddle_and_resumes_on_the_paddle_path(text_corpus, tmp_path):
    """What `python train.py` does on a CPU: the C loop on NumPy arrays, in a process that never
    imports Paddle (a real process: pytest's own has Paddle loaded). Its checkpoint uses the Paddle
    model's names, so the Paddle path resumes it (one more epoch) and the other way round."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from paddle_hsoftmax import word2vec_kernel

    if not word2vec_kernel.available():
        pytest.skip("no C++ compiler for the fused kernel")
    repo = Path(__file__).resolve().parents[1]
    out = tmp_path / "run"
    script = (
        "import sys; from paddle_hsoftmax.cli import main; "
        f"rc = main(['word2vec', '--corpus', {str(text_corpus)!r}, '--output-dir', {str(out)!r}, '--epochs', '1', "
        + ", ".join(repr(a) for a in SMALL) + "]); "
        "print('rc', rc, 'paddle', 'paddle' in sys.modules)"
    )
    env = dict(os.environ, PYTHONPATH=str(repo) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == "rc 0 paddle False", proc.stdout + proc.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["kernel"] == "fused"
    saved = load_state(out / "checkpoints" / "last.pdckpt")["model"]
    assert {"embedding.weight", "output.weight"} <= set(saved)
    # the Paddle path takes the fused run's checkpoint (epoch 2 of 2) and lowers the held-in NLL
    assert main(["word2vec", "--corpus", str(text_corpus), "--output-dir", str(out), "--epochs", "2", "--resume",
                 "--kernel", "paddle"] + SMALL) == 0
    resumed = json.loads((out / "metrics.json").read_text())
    assert resumed["kernel"] == "paddle"
    assert resumed["heldin_nll_per_pair"] < metrics["heldin_nll_per_pair"]


@pytest.mark.parametrize("max_sentence", [10_000, 3])
def test_one_pass_equals_count_then_encode(text_corpus, tmp_path, monkeypatch, max_sentence):
    """The one-pass build gives the vocabulary (ties included) and the byte-identical stream of
    Vocab.build + encode_to_file: on real text, with sentences cut short, with lines that lose every
    word (out-of-vocabulary) and a block boundary inside the text."""
    from paddle_hsoftmax.data.text import iter_sentences

    monkeypatch.setattr(windows, "MAX_SENTENCE", max_sentence)
    monkeypatch.setattr(windows, "ENCODE_BLOCK", 97)  # blocks end inside sentences, some longer than a block
    lines = list(iter_sentences(text_corpus, "whitespace"))[:600]
    lines[5:5] = [["rare1", "rare2"], [], ["rare3"] * 7]  # left empty by min_count 3
    for min_count, max_vocab in ((3, None), (1, 50)):
        vocab = Vocab.build(lines, min_count=min_count, max_vocab=max_vocab)
        ref = EncodedCorpus.encode_to_file(lines, vocab, tmp_path / "ref.ids")
        got_vocab, got = EncodedCorpus.count_and_encode_to_file(iter(lines), tmp_path / "one.ids",
                                                                min_count=min_count, max_vocab=max_vocab)
        assert got_vocab.words == vocab.words and got_vocab.counts.tolist() == vocab.counts.tolist()
        assert got_vocab.total_tokens == vocab.total_tokens
        assert (tmp_path / "one.ids").read_bytes() == (tmp_path / "ref.ids").read_bytes()
        assert got.meta() == ref.meta()
        assert not (tmp_path / "one.ids.first").exists()
