"""LSTM language model: vocabulary, stream batching, truncated BPTT, exact perplexity for every
output layer, tying, and the `lm` command on a slice of People's Daily."""

import json
import math

import numpy as np
import paddle
import pytest
from conftest import write_pd_slice

from paddle_hsoftmax.data import read_peoples_daily
from paddle_hsoftmax.data.datasets import split_811
from paddle_hsoftmax.models.lm import LSTMLanguageModel
from paddle_hsoftmax.output.registry import OUTPUT_LAYERS, build_output_layer
from paddle_hsoftmax.tasks.lm import EOS, UNK, LMConfig, LMTask, batchify, encode_stream, lm_vocab


@pytest.fixture(scope="module")
def pd_sentences(tmp_path_factory):
    path = write_pd_slice(tmp_path_factory.mktemp("pd") / "pd.txt", 300)
    return [[w for w, _ in s] for s in read_peoples_daily(path)]


def test_vocab_and_stream(pd_sentences):
    vocab = lm_vocab(pd_sentences, min_count=3)
    assert UNK in vocab and EOS in vocab
    assert np.all(np.diff(vocab.counts) <= 0)  # most frequent first
    assert vocab.counts[vocab.index[EOS]] == len(pd_sentences)
    stream = encode_stream(pd_sentences[:2] + [["从未见过的词"]], vocab)
    assert len(stream) == len(pd_sentences[0]) + len(pd_sentences[1]) + 4  # 3 x </s>, 1 x <unk>
    assert stream[-2] == vocab.index[UNK] and stream[-1] == vocab.index[EOS]
    # no rare word at all: <unk> still exists for test-time words
    assert UNK in lm_vocab([["a", "b"], ["a", "b"]], min_count=1)


def test_batchify():
    data = batchify(np.arange(23), 4)
    assert data.shape == (4, 5) and data[1].tolist() == [5, 6, 7, 8, 9]
    with pytest.raises(ValueError, match="7 tokens cannot fill 4 columns"):
        batchify(np.arange(7), 4)


def test_carried_state_equals_one_long_pass():
    """Truncated BPTT windows with the state carried give the same NLL as one pass over the
    whole sequence (the state is all that crosses a window boundary)."""
    paddle.seed(0)
    output = build_output_layer("softmax", 8, [str(i) for i in range(30)], list(range(30, 0, -1)))
    model = LSTMLanguageModel(30, output, embed_dim=6, hidden_size=8, num_layers=2, dropout=0.3)
    model.eval()
    seq = paddle.to_tensor(np.random.default_rng(0).integers(0, 30, size=(3, 21)))
    whole, _ = model(seq[:, :-1], seq[:, 1:])
    state, parts = model.initial_state(3), []
    for s in range(0, 20, 7):
        e = min(s + 7, 20)
        nll, state = model(seq[:, s:e], seq[:, s + 1:e + 1], state)
        parts.append(nll)
    np.testing.assert_allclose(paddle.concat(parts, axis=1).numpy(), whole.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", OUTPUT_LAYERS)
def test_perplexity_is_exact_for_every_output_layer(name, pd_sentences):
    """The task's perplexity equals exp(mean -log p(target)) read from the normalised
    full_log_prob, whose rows sum to 1."""
    splits = split_811(pd_sentences)
    config = LMConfig(output=name, embed_dim=12, hidden_size=16, min_count=3, bptt=9, batch_size=4,
                      eval_batch_size=3, correction_dim=4)
    task = LMTask(config, splits)
    got = task.scores("valid")
    data = batchify(task.streams["valid"], 3)
    task.model.eval()
    total, count, state = 0.0, 0, task.model.initial_state(3)
    with paddle.no_grad():
        for s in range(0, data.shape[1] - 1, 9):
            e = min(s + 9, data.shape[1] - 1)
            h, state = task.model.hidden(paddle.to_tensor(data[:, s:e]), state)
            lp = task.model.output.full_log_prob(h).numpy().astype(np.float64)  # (B, T, V)
            np.testing.assert_allclose(np.exp(lp).sum(-1), 1.0, rtol=1e-4)
            total -= np.take_along_axis(lp, data[:, s + 1:e + 1, None], axis=-1).sum()
            count += lp.shape[0] * lp.shape[1]
    assert got["tokens"] == count
    assert got["ppl"] == pytest.approx(math.exp(total / count), rel=1e-4)
    # untrained: near uniform, except that an untrained H-softmax over a Huffman tree already
    # gives each word 2^-(code length), close to its unigram frequency
    assert 1 < got["ppl"] < 1.5 * len(task.vocab)


def test_tied_embeddings_share_one_parameter(pd_sentences):
    task = LMTask(LMConfig(output="softmax", tie=True, embed_dim=12, hidden_size=16, min_count=3),
                  split_811(pd_sentences))
    assert task.model.output.weight is task.model.embed.weight
    counts = task.parameter_counts()
    untied = LMTask(LMConfig(output="softmax", embed_dim=12, hidden_size=16, output_dim=12, min_count=3),
                    split_811(pd_sentences)).parameter_counts()
    V = len(task.vocab)
    assert untied["parameters"] - counts["parameters"] == V * 12
    with pytest.raises(ValueError, match="--tie needs an output layer"):
        LMTask(LMConfig(output="hsoftmax", tie=True, embed_dim=12, hidden_size=16, min_count=3), split_811(pd_sentences))


def test_lower_is_better_selection(tmp_path):
    from paddle_hsoftmax.trainer import Task as BaseTask
    from paddle_hsoftmax.trainer import Trainer, TrainerConfig

    class Task(BaseTask):
        selection_metric, selection_mode = "valid_ppl", "min"
        model = paddle.nn.Linear(2, 2)

    trainer = Trainer(TrainerConfig(output_dir=str(tmp_path), patience=2))
    assert not trainer._track_best(Task, {"valid_ppl": 100.0})
    assert not trainer._track_best(Task, {"valid_ppl": 120.0})  # worse: one stale evaluation
    assert not trainer._track_best(Task, {"valid_ppl": 90.0}) and trainer.state.best == 90.0
    assert not trainer._track_best(Task, {"valid_ppl": 95.0})
    assert trainer._track_best(Task, {"valid_ppl": 91.0})  # two stale in a row: stop


@pytest.mark.parametrize("output, tree", [("hsoftmax", "huffman"), ("hsoftmax", "clustered"), ("adaptive", "huffman")])
def test_lm_command_learns(output, tree, tmp_path, capsys):
    from paddle_hsoftmax.cli import main

    corpus = write_pd_slice(tmp_path / "pd.txt", 400)
    out = tmp_path / "run"
    args = ["lm", "--corpus", str(corpus), "--format", "tagged", "--output", output, "--tree", tree,
            "--output-dir", str(out), "--epochs", "4", "--hidden", "32", "--embed-dim", "32", "--min-count", "3",
            "--no-progress", "--lr", "0.01"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "valid perplexity" in printed
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    # learned: the test NLL is below the same model untrained (same seed, same tree), with a margin
    # (measured, hsoftmax/huffman: 4.04 nats vs 4.37 untrained; 2 epochs at lr 0.005 gave only 4.35)
    sentences = [[w for w, _ in s] for s in read_peoples_daily(str(corpus))]
    fresh = LMTask(LMConfig(**metrics["config"]), split_811(sentences))
    assert len(fresh.vocab) == metrics["vocab_size"]
    untrained = fresh.scores("test")
    assert math.log(metrics["test_ppl"]) < untrained["nll"] - 0.15, (metrics["test_ppl"], untrained)
    assert metrics["tokens_per_sec"] > 0 and metrics["output_parameters"] > 0
    assert (out / "checkpoints" / "best.pdckpt").exists()
    if output == "hsoftmax":
        assert metrics["mean_path_length"] > 1


def test_sample_prompts_come_from_the_users_own_held_out_text(tmp_path, capsys):
    """An English corpus (CC-CEDICT glosses, 3,000 lines): the printed and recorded next-word
    examples start from sentences of its held-out split, chosen by the seed, never People's
    Daily's 中国 人民."""
    from paddle_hsoftmax.cli import main
    from paddle_hsoftmax.data.parallel import read_cedict
    from paddle_hsoftmax.tasks.lm import sample_prompts

    glosses = [t for _, t in read_cedict()[:3000] if len(t) >= 3]
    corpus = tmp_path / "en.txt"
    corpus.write_text("".join(" ".join(t) + "\n" for t in glosses), encoding="utf-8")
    out = tmp_path / "run"
    assert main(["lm", "--corpus", str(corpus), "--output", "hsoftmax", "--output-dir", str(out), "--epochs", "1",
                 "--hidden", "16", "--embed-dim", "16", "--min-count", "2", "--no-progress", "--generate", "3"]) == 0
    printed = capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    prompts = list(metrics["next_word_examples"])
    test = split_811([t.split() for t in corpus.read_text(encoding="utf-8").splitlines()])["test"]
    starts = {" ".join(s[:2]) for s in test if len(s) > 2}
    assert len(prompts) == 2 and set(prompts) <= starts and "中国 人民" not in prompts
    assert all(f"  {p} -> " in printed for p in prompts)
    vocab = lm_vocab(split_811([t.split() for t in corpus.read_text(encoding="utf-8").splitlines()])["train"], 2)
    assert all(w in vocab for p in prompts for w in p.split())  # no <unk> in a prompt
    # deterministic in the seed, and another seed draws other prompts
    assert sample_prompts(test, seed=0, vocab=vocab) == prompts
    assert sample_prompts(test, seed=1, vocab=vocab) != prompts
    assert sample_prompts([["one"], ["a", "b", "c"]], n=5) == ["a b"]  # fewer sentences than asked for
    # --generate 3: three continuations of held-out prompts, in the model's vocabulary, printed
    generated = metrics["generated"]
    assert len(generated) == 3 and {g["prompt"] for g in generated} <= starts
    assert any(g["continuation"] for g in generated) and all(len(g["continuation"].split()) <= 20 for g in generated)
    assert all(w in vocab.index and w != "</s>" for g in generated for w in g["continuation"].split())
    assert all(f"  {g['prompt']} | {g['continuation']}" in printed for g in generated)
