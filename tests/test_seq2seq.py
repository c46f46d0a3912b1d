"""Encoder-decoder: attention ignores padding, beam search agrees with greedy and with the exact
teacher-forced probabilities, the H-softmax decoder is normalised, the CC-CEDICT rules on real
lines, parallel-file errors, and `seq2seq` + `predict` end to end on a slice of CC-CEDICT."""

import json

import numpy as np
import paddle
import pytest
from conftest import TINY_SRC_V, TINY_V, seq2seq_slice_args, tiny_seq2seq

from paddle_hsoftmax.data.datasets import split_811
from paddle_hsoftmax.data.parallel import (cedict_path, gloss_tokens, read_cedict, read_parallel_files,
                                           read_parallel_tsv)
from paddle_hsoftmax.data.text import CorpusError
from paddle_hsoftmax.models.seq2seq import Seq2Seq, length_penalty
from paddle_hsoftmax.tasks.seq2seq import bleu_chrf, char_overlap_baseline

V, SRC_V = TINY_V, TINY_SRC_V


def tiny_model(output="softmax", input_feed=True, seed=0):
    return tiny_seq2seq(output, input_feed, seed)


def padded(rows):
    lengths = np.array([len(r) for r in rows], dtype=np.int64)
    out = np.zeros((len(rows), lengths.max()), dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return paddle.to_tensor(out), paddle.to_tensor(lengths)


SOURCES = [[3, 1, 4], [1, 5, 2, 6, 5, 3, 5], [8, 7]]


@pytest.mark.parametrize("input_feed", [True, False])
def test_attention_masks_source_padding(input_feed):
    """A sentence alone and the same sentence padded in a batch get the same NLL, the same
    attention weights (zero on padding) and the same greedy / beam output."""
    model = tiny_model(input_feed=input_feed)
    inputs = paddle.to_tensor([[V, 2, 7, 1]])
    targets = paddle.to_tensor([[2, 7, 1, 0]])
    src, lens = padded(SOURCES)
    alone_src, alone_len = padded(SOURCES[:1])
    with paddle.no_grad():
        alone = model(alone_src, alone_len, inputs, targets).numpy()
        batch = model(src, lens, paddle.concat([inputs] * 3), paddle.concat([targets] * 3)).numpy()
        np.testing.assert_allclose(batch[0], alone[0], rtol=1e-5, atol=1e-6)
        memory, _ = model.encode(src, lens)
        _, weights = model.attention(paddle.ones([3, 1, 8]), memory)  # (3, 1, S)
    w = weights.numpy()  # Paddle's CPU softmax floors exp at about e^-64: "zero" is below 1e-27
    assert np.all(w[0, 0, 3:] < 1e-27) and np.all(w[2, 0, 2:] < 1e-27)
    np.testing.assert_allclose(weights.numpy().sum(-1), 1.0, rtol=1e-5)
    assert model.greedy(src, lens, 6)[0] == model.greedy(alone_src, alone_len, 6)[0]
    in_batch, alone = model.beam_search(src, lens, 3, 6)[0], model.beam_search(alone_src, alone_len, 3, 6)[0]
    assert [h.ids for h in in_batch] == [h.ids for h in alone]
    assert [h.score for h in in_batch] == pytest.approx([h.score for h in alone], rel=1e-5)


@pytest.mark.parametrize("output", ["softmax", "hsoftmax"])
def test_beam_of_one_is_greedy(output):
    model = tiny_model(output, seed=1)
    src, lens = padded(SOURCES)
    greedy = model.greedy(src, lens, 7)
    beam = model.beam_search(src, lens, 1, 7)
    assert [b[0].ids for b in beam] == greedy


@pytest.mark.parametrize("output", ["softmax", "hsoftmax"])
def test_beam_hypotheses_sorted_and_exact(output):
    """Hypotheses come best first by log P / lp(len); each finished one's log P equals the
    teacher-forced log-probability of its words and </s> (the output layer's exact NLL)."""
    model = tiny_model(output, seed=2)
    src, lens = padded(SOURCES)
    alpha = 0.8
    results = model.beam_search(src, lens, 4, 5, alpha=alpha)
    for b, hyps in enumerate(results):
        assert 1 <= len(hyps) <= 4
        scores = [h.score for h in hyps]
        assert scores == sorted(scores, reverse=True)
        for h in hyps:
            if len(h.ids) < 5:  # finished with </s> (longer ones were cut at max_len)
                assert h.score == pytest.approx(h.log_prob / length_penalty(len(h.ids) + 1, alpha))
                words = h.ids + [0]
                with paddle.no_grad():
                    nll = model(src[b : b + 1, : int(lens[b])], lens[b : b + 1], paddle.to_tensor([[V] + h.ids]),
                                paddle.to_tensor([words]))
                assert -float(nll.sum()) == pytest.approx(h.log_prob, rel=1e-4, abs=1e-4)


def test_hsoftmax_decoder_step_is_normalised():
    model = tiny_model("hsoftmax")
    src, lens = padded(SOURCES)
    memory, state = model.encode(src, lens)
    feed, _ = model.step(paddle.full([3], V, dtype="int64"), state, paddle.zeros([3, 8]), memory)
    probs = np.exp(model.step_log_probs(feed).numpy().astype(np.float64))  # (3, V)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)


# -- data ------------------------------------------------------------------------------------------
REAL_HEADWORDS = ("G友 ", "〇 ", "咱們 ", "大廈 ", "為毛 ", "王 王 [Wang2]", "課文 ", "鉄 ", "一下兒 ",
                  "七律 ", "雞 鸡 [ji1]", "心心相印 ")


@pytest.fixture(scope="module")
def real_lines(tmp_path_factory):
    """Real CC-CEDICT lines (with the file's header comments) copied to a small file."""
    lines = cedict_path().read_text(encoding="utf-8").splitlines()
    picked = [line for line in lines if line.startswith("#")][:3]
    picked += [line for line in lines if line.startswith(REAL_HEADWORDS)]
    path = tmp_path_factory.mktemp("cedict") / "cedict.txt"
    path.write_text("\n".join(picked) + "\n", encoding="utf-8")
    return path


def test_cedict_rules_on_real_lines(real_lines):
    got = {"".join(src): " ".join(tgt) for src, tgt in read_cedict(real_lines)}
    assert got == {
        "咱们": "we or us",  # parenthesised note removed
        "为毛": "why ?",  # "(Internet slang)" removed, punctuation split off
        "课文": "text",  # CL: classifier sense never used
        "鸡": "fowl",
        "心心相印": "two hearts beat as one ; a kindred spirit",
    }
    # dropped: G友 (Latin letter), 〇 (not a CJK ideograph), 大厦 (only a "used in" note), 王
    # (surname only), 鉄 / 一下儿 (variants), 七律 (abbr. for)
    assert gloss_tokens("To Stand (sth) Up, Don't!") == ["to", "stand", "(", "sth", ")", "up", ",", "don't", "!"]


@pytest.fixture(scope="module")
def cedict():
    return read_cedict()


@pytest.mark.slow  # measured in the quick suite run of 2026-12-01: 5 s with the fixture
def test_cedict_split_is_deterministic_and_disjoint(cedict):
    a, b = split_811(cedict), split_811(read_cedict())
    assert {k: len(v) for k, v in a.items()} == {"test": 11301, "valid": 11301, "train": 90410}
    assert a == b
    keys = {part: {("".join(s), " ".join(t)) for s, t in pairs} for part, pairs in a.items()}
    assert sum(map(len, keys.values())) == len(cedict)  # no pair in two splits, none repeated
    assert not any(ch.isascii() or ch == "〇" for s, _ in cedict for ch in s)  # CJK ideographs only


@pytest.mark.parametrize("text, message", [
    ("猫\tcat\n狗 dog\n", r"pairs\.tsv:2: expected 'source<TAB>target', found no tab"),
    ("猫\tcat\n\t dog\n", r"pairs\.tsv:2: empty source side"),
    ("猫\tcat\n\n狗\t  \n", r"pairs\.tsv:3: empty target side"),
])
def test_tsv_errors_name_file_and_line(tmp_path, text, message):
    path = tmp_path / "pairs.tsv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CorpusError, match=message):
        read_parallel_tsv(path)


def test_aligned_files_and_errors(tmp_path):
    src, tgt = tmp_path / "src.txt", tmp_path / "tgt.txt"
    src.write_text("我 爱 你\n\n猫\n", encoding="utf-8")
    tgt.write_text("i love you\n\ncat\n", encoding="utf-8")
    assert read_parallel_files(src, tgt, "whitespace") == [(["我", "爱", "你"], ["i", "love", "you"]),
                                                            (["猫"], ["cat"])]
    assert read_parallel_files(src, tgt)[0][0] == ["我", "爱", "你"]  # char: spaces are not tokens
    tgt.write_text("i love you\n\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"tgt\.txt: has 2 lines but .*src\.txt has 3"):
        read_parallel_files(src, tgt)
    tgt.write_text("i love you\nhello\ncat\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"src\.txt:2: blank line, but line 2 of .*tgt\.txt is not"):
        read_parallel_files(src, tgt)


def test_retrieval_baseline_and_scores():
    train = [(list("火山"), ["volcano"]), (list("火车"), ["train"]), (list("山"), ["mountain"]),
             (list("水"), ["water"]), (list("河水"), ["water"])]
    got = char_overlap_baseline(train, [list("火山灰"), list("火"), list("猫")])
    # 火山灰 shares 2 with 火山; 火 ties 火山 / 火车 -> first; 猫 shares nothing -> most frequent gloss
    assert got == [["volcano"], ["volcano"], ["water"]]
    perfect = bleu_chrf([["a", "cat", "sat", "on", "the", "mat"]], [["a", "cat", "sat", "on", "the", "mat"]])
    assert perfect["bleu"] == pytest.approx(100.0) and perfect["chrf"] == pytest.approx(100.0)


# -- end to end --------------------------------------------------------------------------------------
def test_seq2seq_command_and_predict(cedict, tmp_path, capsys):
    from paddle_hsoftmax.cli import main

    out = tmp_path / "run"
    args, short = seq2seq_slice_args(cedict, tmp_path, out)
    # the plain encoder-decoder: no retrieval, no copying, beam search only
    args += ["--epochs", "2", "--beam", "3", "--retrieve", "0", "--no-copy", "--candidates", "0"]
    assert main(args) == 0
    assert "retrieval baseline" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["tokens_per_sec"] > 0 and metrics["train_seconds"] > 0
    # the reported scores are BLEU / chrF of what the saved run translates (beam 3 and greedy)
    from paddle_hsoftmax.inference import load_translator

    translate, _ = load_translator(out)
    sources, refs = ["".join(s) for s, _ in short[550:570]], [list(t) for _, t in short[550:570]]
    beam = bleu_chrf([h.split() for h in translate(sources, beam_size=3)], refs)
    greedy = bleu_chrf([h.split() for h in translate(sources, beam_size=0)], refs)
    assert metrics["test_bleu"] == pytest.approx(beam["bleu"]) and metrics["test_chrf"] == pytest.approx(beam["chrf"])
    assert metrics["test_greedy_bleu"] == pytest.approx(greedy["bleu"])
    assert metrics["beam_size"] == 3 and metrics["test_items"] == 20
    assert {"bleu", "chrf"} <= set(metrics["baseline"]) and metrics["baseline"]["train_pairs"] == 500
    assert "rerank" not in metrics and not (out / "retrieval_memory.tsv").exists()
    for name in ("source_tokens.txt", "target_vocab.tsv", "config.json", "checkpoints/best.pdckpt"):
        assert (out / name).exists(), name

    from paddle_hsoftmax.inference import load_translator, run_kind

    assert run_kind(out) == "seq2seq"
    translate, config = load_translator(out)
    assert config.beam_size == 3
    lines = tmp_path / "in.txt"
    lines.write_text("火山\n\n电脑\n", encoding="utf-8")
    assert main(["predict", str(out), "--input", str(lines)]) == 0
    captured = capsys.readouterr()
    printed = captured.out.splitlines()
    a, b = translate(["火山", "电脑"])
    assert printed == [a, "", b]  # one line per input line: the blank one stays blank
    assert a and b and all(len(p.split()) <= 6 for p in printed)
    assert captured.err.splitlines() == [f"warning: {lines}: line 2 blank: printed as empty lines"]


def test_seq2seq_tree_choice_is_recorded_and_reloaded(cedict, tmp_path, capsys):
    """``--tree clustered``: the decoder's H-softmax tree comes from word2vec vectors of the
    targets; the run keeps it (target_tree.npz) and predict rebuilds the same model from it."""
    from paddle_hsoftmax.cli import main
    from paddle_hsoftmax.inference import load_translator
    from paddle_hsoftmax.tree import Tree

    out = tmp_path / "run"
    args, _ = seq2seq_slice_args(cedict, tmp_path, out)
    args += ["--epochs", "1", "--beam", "2", "--retrieve", "0", "--no-copy", "--candidates", "0", "--tree", "clustered"]
    assert main(args) == 0
    capsys.readouterr()
    record = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert record["kind"] == "seq2seq" and record["config"]["tree"] == "clustered" and "target_tree.npz" in record["files"]
    tree = Tree.load(out / "target_tree.npz")
    assert tree.kind != "huffman"
    translate, config = load_translator(out)
    assert config.tree == "clustered"
    lines = tmp_path / "in.txt"
    lines.write_text("火山\n电脑\n", encoding="utf-8")
    assert main(["predict", str(out), "--input", str(lines)]) == 0
    assert capsys.readouterr().out.splitlines() == translate(["火山", "电脑"])
    # --resume with another tree is refused, naming the setting
    assert main(args[:-1] + ["balanced", "--resume"]) == 2
    assert "--tree clustered (run) vs balanced" in capsys.readouterr().err


def test_banned_ids_are_never_decoded():
    """A banned word (the task bans <unk>) never appears in greedy or beam output, even where it
    is the most probable word; the step distribution itself stays normalised and unchanged."""
    model = tiny_model()
    src, lengths = padded(SOURCES)
    free = model.greedy(src, lengths, max_len=6)
    favourite = max({w for row in free for w in row}, key=lambda w: sum(row.count(w) for row in free))
    assert any(favourite in row for row in free)  # the unbanned model does say it
    banned = Seq2Seq(SRC_V, model.output, bos_id=V, eos_id=0, embed_dim=6, hidden_size=8, banned_ids=(favourite,))
    banned.set_state_dict(model.state_dict())
    banned.eval()
    assert all(favourite not in row for row in banned.greedy(src, lengths, max_len=6))
    for hyps in banned.beam_search(src, lengths, beam_size=3, max_len=6):
        assert all(favourite not in h.ids for h in hyps)
    with pytest.raises(ValueError, match="banned_ids must be output classes"):
        Seq2Seq(SRC_V, model.output, bos_id=V, eos_id=0, banned_ids=(0,))


# -- beam search that behaves --------------------------------------------------------------------------
def biased_model(word, bias=20.0, copy=False):
    """The tiny softmax encoder-decoder with ``word``'s output bias raised by ``bias``: the most
    probable next word at every step, whatever came before."""
    model = tiny_seq2seq("softmax", seed=3, copy=copy)
    b = model.output.bias.numpy()
    b[word] += bias
    model.output.bias.set_value(b)
    return model


def longest_run(ids, word):
    best = run = 0
    for w in ids:
        run = run + 1 if w == word else 0
        best = max(best, run)
    return best


def test_end_of_sentence_never_wins_before_the_first_word():
    """A model whose favourite word is </s> (the issue's empty beam for 电脑桌): greedy and beam
    search still give one word, then stop (</s> is the best second step); only ``min_len = 0``
    gives the empty output the old search returned."""
    model = biased_model(0)
    src, lens = padded(SOURCES)
    assert model.greedy(src, lens, 6, min_len=0) == [[], [], []]  # the old rule: the empty hypothesis wins
    assert all(hyps[0].ids == [] for hyps in model.beam_search(src, lens, 5, 6, min_len=0))
    greedy = model.greedy(src, lens, 6)
    assert [len(g) for g in greedy] == [1, 1, 1]
    for beam in (1, 3, 5):
        results = model.beam_search(src, lens, beam, 6)
        assert all(len(hyps) == beam and all(h.ids for h in hyps) for hyps in results)
        assert [hyps[0].ids for hyps in results] == greedy if beam == 1 else all(
            len(hyps[0].ids) == 1 for hyps in results)
    with pytest.raises(ValueError, match="min_len"):
        model.beam_search(src, lens, 3, 4, min_len=5)


def test_no_word_more_than_three_times_in_a_row_unless_the_source_has_it():
    """A model that says w5 at every step (the issue's "a a a a a a ...") stops repeating it after
    three (the fourth w5 is banned, </s> or another word follows); with copying, a source holding
    five w5 in a row allows five; ``max_repeat = 0`` is the old unlimited search."""
    model = biased_model(5)
    src, lens = padded(SOURCES)
    assert all(g == [5] * 8 for g in model.greedy(src, lens, 8, max_repeat=0))
    for out in [model.greedy(src, lens, 8)] + [[h.ids for hyps in model.beam_search(src, lens, k, 8) for h in hyps]
                                               for k in (1, 4)]:
        assert all(longest_run(ids, 5) == 3 for ids in out), out
        assert all(ids for ids in out)
    copier = biased_model(5, copy=True)
    src = paddle.to_tensor([[1, 2, 2, 2, 2, 2, 3], [1, 2, 2, 3, 4, 4, 4]])
    lens = paddle.to_tensor([7, 7])
    copy_ids = paddle.to_tensor([[-1, 5, 5, 5, 5, 5, -1], [-1, 5, 5, -1, 7, 7, 7]])  # source 0: w5 five times
    greedy = copier.greedy(src, lens, 8, copy_ids)
    assert longest_run(greedy[0], 5) == 5 and longest_run(greedy[1], 5) == 3, greedy
    for hyps in copier.beam_search(src, lens, 3, 8, copy_ids=copy_ids)[1:]:
        assert all(longest_run(h.ids, 5) <= 3 for h in hyps)


def trained_mapping_model(output):
    """A tiny encoder-decoder trained (600 Adam steps, ~4 s) on a mapping whose answer is known:
    source tokens s_1..s_n (1 <= n <= 4, ids 1..8) -> target words w_{s_1}..w_{s_n}, then </s>."""
    paddle.seed(0)
    from paddle_hsoftmax.output.registry import build_output_layer

    words = ["</s>"] + [f"w{i}" for i in range(1, V)]
    layer = build_output_layer(output, 16, words, list(range(2 * V, V, -1)), ignore_index=-100)
    model = Seq2Seq(SRC_V, layer, bos_id=V, eos_id=0, embed_dim=16, hidden_size=16, dropout=0.0)
    opt = paddle.optimizer.Adam(learning_rate=0.02, parameters=model.parameters())
    rng = np.random.default_rng(0)
    for _ in range(600):  # 300 left one of the ten rows a word short on an Intel Xeon
        n = int(rng.integers(1, 5))
        src = rng.integers(1, SRC_V, (32, n))
        tgt = np.concatenate([src, np.zeros((32, 1), dtype=np.int64)], axis=1)
        inputs = np.concatenate([np.full((32, 1), V), src], axis=1)
        loss = model(paddle.to_tensor(src), paddle.to_tensor(np.full(32, n)), paddle.to_tensor(inputs),
                     paddle.to_tensor(tgt)).mean()
        loss.backward()
        opt.step()
        opt.clear_grad()
    model.eval()
    return model


@pytest.mark.parametrize("output", ["softmax", "hsoftmax"])
def test_beam_search_finds_the_known_answer(output):
    """On the learnt mapping, beam search (1, 3, 5) and greedy decoding give exactly the right words
    for unseen sources of every length, three-in-a-row repeats included; the untrained model does not."""
    rng = np.random.default_rng(1)
    rows = [list(rng.integers(1, SRC_V, n)) for n in (1, 2, 3, 4, 4, 3, 2, 1)] + [[4, 4, 4], [6]]
    src, lens = padded(rows)
    untrained = tiny_model(output)
    assert untrained.greedy(src, lens, 6) != [list(map(int, r)) for r in rows]
    model = trained_mapping_model(output)
    want = [list(map(int, r)) for r in rows]
    assert model.greedy(src, lens, 6) == want
    for beam in (1, 3, 5):
        assert [hyps[0].ids for hyps in model.beam_search(src, lens, beam, 6)] == want


def test_loops_of_two_and_three_words_are_cut_after_three():
    """"to give a give a give a give a" (the greedy output of a trained run for 催产): the word
    that would start a fourth repetition of a 1-, 2- or 3-word loop is banned; three are allowed."""
    model = tiny_model()
    bans = model._row_bans([[7, 1, 2, 1, 2, 1, 2], [1, 2, 1, 2], [4, 1, 2, 3, 1, 2, 3, 1, 2, 3], [5, 5, 5], [6, 5, 5],
                            [5, 5, 5, 5]], [{}, {}, {}, {}, {}, {5: 5}], 9, 1, 3)
    assert [sorted(set(row[row >= 0].tolist())) for row in bans] == [[1], [], [1], [5], [], []]
    assert model._row_bans([[1, 2, 1, 2, 1, 2]], [{}], 6, 1, 0) is None  # max_repeat 0: no limit
    assert model._row_bans([[]], [{}], 0, 1, 3)[0].tolist()[0] == 0  # </s> before the first word
