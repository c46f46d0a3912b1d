"""Retrieval-augmented sources and the copy mechanism: the overlap index against brute force on real
CC-CEDICT pairs, the copy mixture against a float64 NumPy reference and finite differences, its
step distribution normalised and equal to the teacher-forced NLL, padding ignored, beam 1 = greedy,
and the command + predict end to end with ``--retrieve 1 --copy``."""

import json

import numpy as np
import paddle
import pytest

from conftest import TINY_SRC_V, TINY_V, central_difference, seq2seq_slice_args, tiny_seq2seq
from paddle_hsoftmax.data.parallel import read_cedict
from paddle_hsoftmax.data.retrieval import SEP, OverlapIndex, Retriever, augment_source
from paddle_hsoftmax.models.copy import mix_log_probs, mix_nll
from paddle_hsoftmax.models.seq2seq import Seq2Seq
from paddle_hsoftmax.output.registry import build_output_layer
from paddle_hsoftmax.pipeline.translate import bleu_chrf
from paddle_hsoftmax.tasks.seq2seq import IGNORE

V, SRC_V = TINY_V, TINY_SRC_V


@pytest.fixture(scope="module")
def cedict_slice():
    return read_cedict()[:3000]


def brute_nearest(memory, query, k, exclude=None):
    scored = [(-len(set(src) & set(query)), i) for i, src in enumerate(memory)
              if i != exclude and set(src) & set(query)]
    return [i for _, i in sorted(scored)[:k]]


def test_overlap_index_equals_brute_force(cedict_slice):
    memory = [s for s, _ in cedict_slice[:2000]]
    queries = [s for s, _ in cedict_slice[2000:2300]] + [["猫", "猫"], ["Ω"], []]
    index = OverlapIndex(memory)
    got = index.nearest(queries, k=3, chunk=64)
    for q, row in zip(queries, got):
        want = brute_nearest(memory, q, 3)
        assert list(row[: len(want)]) == want and all(row[len(want):] == -1)
    loo = index.nearest(memory[:300], k=2, exclude=np.arange(300))
    for i, row in enumerate(loo):
        assert i not in row
        want = brute_nearest(memory, memory[i], 2, exclude=i)
        assert list(row[: len(want)]) == want


def test_retriever_leave_one_out_and_augment(cedict_slice):
    pairs = cedict_slice[:500]
    retriever = Retriever(pairs, k=1)
    augmented = retriever.augment([s for s, _ in pairs], leave_one_out=True)
    for (src, tgt), aug in zip(pairs, augmented):
        assert aug[: len(src)] == src
        if len(aug) > len(src):  # a neighbour was found: never the pair itself
            first, second = aug.index(SEP), len(aug) - aug[::-1].index(SEP) - 1
            assert (aug[first + 1 : second], aug[second + 1 :]) != (src, tgt)
            assert set(aug[first + 1 : second]) & set(src)
    assert augment_source(["a"], [(["b"], ["x", "y"]), (["c"], ["z"])]) == ["a", SEP, "b", SEP, "x", "y", SEP, "c",
                                                                           SEP, "z"]
    with pytest.raises(ValueError, match="leave_one_out needs the memory's 500 sources, got 2"):
        retriever.augment([["a"], ["b"]], leave_one_out=True)


# -- the mixture ---------------------------------------------------------------------------------------
def reference_mix(nll, targets, logit, scores, mask, copy_ids):
    """float64 NumPy: -log(p_gen P_out(y) + (1 - p_gen) sum_{s: id(s) = y} a(s)), 0 when ignored."""
    p_gen = 1 / (1 + np.exp(-logit))  # (B, T)
    e = np.exp(scores - scores.max(-1, keepdims=True)) * mask[:, None, :]
    a = e / e.sum(-1, keepdims=True)  # (B, T, S)
    mass = (a * (copy_ids[:, None, :] == targets[:, :, None])).sum(-1)
    out = -np.log(p_gen * np.exp(-nll) + (1 - p_gen) * mass)
    return np.where(targets == IGNORE, 0.0, out)


def mixture_case(seed=0):
    rng = np.random.default_rng(seed)
    B, T, S = 3, 4, 5
    nll = rng.uniform(0.1, 6.0, (B, T))
    targets = rng.integers(0, 4, (B, T))
    targets[2, 3] = IGNORE
    logit = rng.normal(size=(B, T))
    scores = rng.normal(size=(B, T, S))
    mask = np.array([[1, 1, 0, 1, 1], [1, 0, 0, 0, 0], [1, 1, 1, 1, 1]], dtype=np.float64)
    copy_ids = rng.integers(0, 4, (B, S))
    copy_ids[1, 0] = 9  # row 1 can copy only a word no target asks for: mass 0 everywhere
    return nll, targets, logit, scores, mask, copy_ids


def test_mix_nll_matches_float64_reference_and_finite_differences():
    nll, targets, logit, scores, mask, copy_ids = mixture_case()
    got = paddle_mix(dict(nll=nll, logit=logit, scores=scores), targets, mask, copy_ids).numpy()
    want = reference_mix(nll, targets, logit, scores, mask, copy_ids)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    assert np.all(got[1] > nll[1])  # nothing to copy: only the generate term, times p_gen < 1
    for which in ("nll", "logit", "scores"):
        values = dict(nll=nll, logit=logit, scores=scores)
        x = paddle.to_tensor(values[which], stop_gradient=False)
        args = {k: (x if k == which else v) for k, v in values.items()}
        loss = paddle_mix(args, targets, mask, copy_ids).sum()
        loss.backward()

        def f(value):
            vals = dict(values, **{which: value})
            return reference_mix(vals["nll"], targets, vals["logit"], vals["scores"], mask, copy_ids).sum()

        np.testing.assert_allclose(x.grad.numpy(), central_difference(f, values[which]), rtol=1e-6, atol=1e-8)


def paddle_mix(args, targets, mask, copy_ids):
    import paddle.nn.functional as F

    t = lambda x: x if isinstance(x, paddle.Tensor) else paddle.to_tensor(x)  # noqa: E731
    logit, scores, nll = t(args["logit"]), t(args["scores"]), t(args["nll"])
    weights = F.softmax(scores + (1 - t(mask))[:, None, :] * -1e9, axis=-1) * t(mask)[:, None, :]
    return mix_nll(nll, t(targets), F.log_sigmoid(logit), F.log_sigmoid(-logit), weights, t(copy_ids), IGNORE)


def test_mix_log_probs_sums_to_one_and_counts_repeated_words():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2, 6))
    log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    weights = np.array([[0.5, 0.3, 0.2], [0.0, 1.0, 0.0]])
    ids = np.array([[4, 4, 1], [0, 2, 5]])
    log_gen, log_copy = np.log([0.25, 0.6]), np.log([0.75, 0.4])
    got = mix_log_probs(*(paddle.to_tensor(x) for x in (log_probs, log_gen, log_copy, weights, ids))).numpy()
    want = 0.25 * np.exp(log_probs[0])
    want[4] += 0.75 * 0.8
    want[1] += 0.75 * 0.2
    np.testing.assert_allclose(np.exp(got[0]), want, rtol=1e-12)
    np.testing.assert_allclose(np.exp(got).sum(-1), 1.0, rtol=1e-12)


# -- the model -----------------------------------------------------------------------------------------
def copy_model(output="softmax", seed=0):
    return tiny_seq2seq(output, seed=seed, copy=True)


SOURCES = [[3, 1, 4], [1, 5, 2, 6, 5, 3, 5], [8, 7]]
COPY = [[5, -1, 5], [2, 3, -1, 7, 7, 11, -1], [-1, -1]]  # the last sentence has nothing to copy


def padded(rows, fill):
    width = max(len(r) for r in rows)
    out = np.full((len(rows), width), fill, dtype=np.int64)
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return paddle.to_tensor(out)


def batch(rows=slice(None)):
    src, copy = SOURCES[rows], COPY[rows]
    return padded(src, 0), paddle.to_tensor([len(s) for s in src]), padded(copy, -1)


@pytest.mark.parametrize("output", ["softmax", "hsoftmax"])
def test_copy_step_is_normalised_and_equals_teacher_forcing(output):
    model = copy_model(output, seed=3)
    src, lens, copy = batch()
    memory, state = model.encode(src, lens, copy)
    words = [[5, 7, 0], [11, 2, 0], [4, 9, 0]]
    feed = paddle.zeros([3, 8])
    prev = paddle.full([3], V, dtype="int64")
    total = np.zeros(3)
    with paddle.no_grad():
        for t in range(3):
            feed, state = model.step(prev, state, feed, memory)
            logp = model.step_log_probs(feed, memory).numpy().astype(np.float64)  # (3, V)
            np.testing.assert_allclose(np.exp(logp).sum(-1), 1.0, rtol=1e-5)
            target = np.array([w[t] for w in words])
            total += logp[np.arange(3), target]
            prev = paddle.to_tensor(target)
        nll = model(src, lens, paddle.to_tensor([[V] + w[:-1] for w in words]), paddle.to_tensor(words), copy)
    np.testing.assert_allclose(-nll.numpy().sum(-1), total, rtol=1e-4)
    plain = model.output.full_log_prob(model.features(feed)).numpy()[2]  # nothing to copy: the plain decoder
    np.testing.assert_allclose(model.step_log_probs(feed, memory).numpy()[2], plain, rtol=1e-5, atol=1e-6)


def test_copy_ignores_padding_and_beam_of_one_is_greedy():
    model = copy_model(seed=4)
    src, lens, copy = batch()
    alone = batch(slice(0, 1))
    inputs, targets = paddle.to_tensor([[V, 5, 7]]), paddle.to_tensor([[5, 7, 0]])
    with paddle.no_grad():
        together = model(src, lens, paddle.concat([inputs] * 3), paddle.concat([targets] * 3), copy).numpy()
        single = model(*alone[:2], inputs, targets, alone[2]).numpy()
    np.testing.assert_allclose(together[0], single[0], rtol=1e-5, atol=1e-6)
    greedy = model.greedy(src, lens, 6, copy)
    assert greedy[0] == model.greedy(*alone[:2], 6, alone[2])[0]
    assert [h[0].ids for h in model.beam_search(src, lens, 1, 6, copy_ids=copy)] == greedy
    with pytest.raises(ValueError, match="copy mechanism needs copy_ids"):
        model.greedy(src, lens, 6)


def copy_task_loss(copy: bool, steps: int = 250) -> float:
    """Train on pairs whose two target words sit in the source behind the *same* source token:
    only the copy ids say which words they are. The last batch's mean NLL."""
    paddle.seed(5)
    words = ["</s>"] + [f"w{i}" for i in range(1, V)]
    layer = build_output_layer("softmax", 8, words, list(range(2 * V, V, -1)), ignore_index=IGNORE)
    model = Seq2Seq(SRC_V, layer, bos_id=V, eos_id=0, embed_dim=6, hidden_size=8, dropout=0.3, copy=copy)
    rng = np.random.default_rng(0)
    opt = paddle.optimizer.Adam(learning_rate=0.02, parameters=model.parameters())
    src = paddle.to_tensor(np.tile([8, 2, 2, 8], (16, 1)))  # (16, 4)
    lengths = paddle.to_tensor(np.full(16, 4))
    for _ in range(steps):
        target = rng.integers(1, V, (16, 2))  # two random words per pair
        ids = paddle.to_tensor(np.concatenate([np.full((16, 1), -1), target, np.full((16, 1), -1)], axis=1))
        inputs = paddle.to_tensor(np.concatenate([np.full((16, 1), V), target[:, :1]], axis=1))
        loss = model(src, lengths, inputs, paddle.to_tensor(target), ids if copy else None).mean()
        loss.backward()
        opt.step()
        opt.clear_grad()
    return float(loss)


def test_copy_learns_to_copy_what_no_generator_can_predict():
    assert copy_task_loss(copy=True) < 0.05
    assert copy_task_loss(copy=False) > 1.5  # the control: about log(11) = 2.4 for the first word


# -- end to end --------------------------------------------------------------------------------------
def test_seq2seq_retrieve_copy_command_and_predict(cedict_slice, tmp_path, capsys):
    from paddle_hsoftmax.cli import main
    from paddle_hsoftmax.inference import load_translator

    out = tmp_path / "run"
    args, short = seq2seq_slice_args(cedict_slice, tmp_path, out)
    args += ["--epochs", "1", "--beam", "2", "--retrieve", "1", "--copy", "--decode", "rerank"]
    assert main(args) == 0
    capsys.readouterr()
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["config"]["retrieve"] == 1 and metrics["config"]["copy"] is True
    rerank = metrics["rerank"]
    assert rerank["candidates"] == 10 and rerank["tuned_on"] == 50
    assert str(rerank["weight"]) in rerank["valid_bleu_by_weight"]  # a weight of the tuning grid
    assert rerank["decode"] == "rerank" and rerank["valid_bleu"] == rerank["valid_bleu_by_weight"][str(rerank["weight"])]
    table, p = rerank["valid_bleu_by_weight"], rerank["p_value_against_retrieval"]
    if rerank["weight"] == 0.0:  # retrieval alone: the best, or the best did not pass the test
        assert table["0.0"] == max(table.values()) or p >= 0.05
    else:  # the best weight on validation, and better than retrieval alone at p < 0.05
        assert table[str(rerank["weight"])] == max(table.values()) and p < 0.05
    assert metrics["test_rerank_bleu"] == rerank["bleu"] and {"bleu", "chrf"} <= set(rerank["retrieval_only"])
    record = json.loads((out / "run.json").read_text())  # what predict uses: the run's record, not its settings
    assert record["chosen"]["rerank_weight"] == rerank["weight"] and record["chosen"]["decode"] == "rerank"
    assert record["config"]["rerank_weight"] == -1.0 and record["config"]["decode"] == "rerank"
    memory = (out / "retrieval_memory.tsv").read_text(encoding="utf-8").splitlines()
    assert len(memory) == 500 and memory[0] == " ".join(short[0][0]) + "\t" + " ".join(short[0][1])
    translate, config = load_translator(out)
    # the reported rerank BLEU is that of what the saved run outputs (its chosen decoding) on the test pairs
    from paddle_hsoftmax.pipeline.translate import bleu_chrf

    test_pairs = short[550:570]
    outputs = translate(["".join(s) for s, _ in test_pairs])
    assert rerank["bleu"] == pytest.approx(bleu_chrf([h.split() for h in outputs], [list(t) for _, t in test_pairs])["bleu"])
    lines = tmp_path / "in.txt"
    lines.write_text("火山\n电脑\n", encoding="utf-8")
    assert main(["predict", str(out), "--input", str(lines)]) == 0
    reranked = capsys.readouterr().out.splitlines()
    assert reranked == translate(["火山", "电脑"])
    memory_glosses = {line.split("\t")[1] for line in memory}
    assert all(r in memory_glosses for r in reranked)  # reranking outputs a retrieved training gloss
    assert main(["predict", str(out), "--input", str(lines), "--beam", "2"]) == 0
    assert capsys.readouterr().out.splitlines() == translate(["火山", "电脑"], beam_size=2)
    # bad input in a real process: a blank line, punctuation only, a line longer than
    # --max-source-len: one output line each and one warning line per kind, never a traceback;
    # the 电脑桌 / 催产 are never empty, by reranking, beam search or greedy decoding
    import itertools
    import subprocess
    import sys
    from pathlib import Path

    train = str(Path(__file__).resolve().parents[1] / "train.py")
    text = "电脑桌\n\n。，！？\n" + "电脑" * 40 + "\n催产\n"
    for extra in ([], ["--beam", "5"], ["--beam", "0"]):
        proc = subprocess.run([sys.executable, train, "predict", str(out)] + extra, input=text, capture_output=True,
                              text=True, timeout=300)
        assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
        printed = proc.stdout.splitlines()
        assert len(printed) == 5 and printed[1] == "", printed
        assert all(printed[i].strip() for i in (0, 2, 3, 4)), (extra, printed)
        assert all(len(list(run)) <= 3 for i in (0, 4) for _, run in itertools.groupby(printed[i].split()))
        warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning: ")]
        assert warnings == ["warning: <stdin>: line 2 blank: printed as empty lines",
                            "warning: <stdin>: line 4 longer than the run's --max-source-len 64 (char tokens): "
                            "translated from the first 64"], proc.stderr
    (out / "retrieval_memory.tsv").unlink()
    with pytest.raises(Exception, match=r"retrieval_memory\.tsv: missing"):
        load_translator(out)


# -- retrieve and rerank -------------------------------------------------------------------------------
def test_jaccard_search_equals_brute_force(cedict_slice):
    memory = [s for s, _ in cedict_slice[:1500]]
    queries = [s for s, _ in cedict_slice[1500:1700]]
    index, sims = OverlapIndex(memory).search(queries, k=4, metric="jaccard")
    for q, row, sim in zip(queries, index, sims):
        scored = sorted((-len(set(m) & set(q)) / len(set(m) | set(q)), i) for i, m in enumerate(memory)
                        if set(m) & set(q))[:4]
        assert list(row[: len(scored)]) == [i for _, i in scored]
        np.testing.assert_allclose(sim[: len(scored)], [-s for s, _ in scored], rtol=1e-12)
    with pytest.raises(ValueError, match="metric must be one of"):
        OverlapIndex(memory).search(queries, metric="cosine")


class FixedScores:
    """A stand-in translator: log P(target) = -len(target) * 0.5, minus 10 for targets with 'of'."""

    retriever = None

    def __init__(self):
        self.calls = []

    def log_probs(self, sources, targets, neighbours=None):
        self.calls.append(len(targets))
        return np.array([-0.5 * (len(t) + 1) - 10.0 * ("of" in t) for t in targets])


def test_reranker_candidates_weight_and_tuning(cedict_slice):
    from paddle_hsoftmax.rerank import Reranker, paired_bootstrap_p

    memory = cedict_slice[:2000]
    queries = [s for s, _ in cedict_slice[2000:2200]]
    refs = [t for _, t in cedict_slice[2000:2200]]
    translator = FixedScores()
    reranker = Reranker(translator, memory, candidates=5)
    cands = reranker.candidates(queries)
    assert translator.calls == [sum(len(c.targets) for c in cands)]  # one batched pass
    index, sims = reranker.index.search(queries, 5, metric="jaccard")
    for c, row, sim in zip(cands, index, sims):
        assert len({tuple(t) for t in c.targets}) == len(c.targets) <= 5  # repeated glosses kept once
        assert list(c.similarity) == sorted(c.similarity, reverse=True)
        if c.targets:
            assert c.targets[0] == memory[row[0]][1] and c.similarity[0] == sim[0]
            assert c.best(0.0) == c.targets[0]  # weight 0: retrieval alone
            mean = [-0.5 - 10.0 * ("of" in t) / (len(t) + 1) for t in c.targets]  # per word and </s>
            np.testing.assert_allclose(c.mean_log_prob, mean)
            assert c.best(1e6) == c.targets[int(np.argmax(mean))]
    weight, table = reranker.tune(queries, refs, grid=(0.0, 1.0, 1e6))
    assert set(table) == {0.0, 1.0, 1e6}
    for w in table:
        assert table[w] == pytest.approx(bleu_chrf(reranker.choose(cands, w), refs)["bleu"])
    best = max(table, key=lambda w: (table[w], -w))
    if best == 0.0:
        assert weight == 0.0 and reranker.p_value is None  # nothing to test
    else:  # the best is kept only when it beats retrieval alone (weight 0) significantly
        p = paired_bootstrap_p(reranker.choose(cands, 0.0), reranker.choose(cands, best), refs)
        assert reranker.p_value == p and weight == (best if p < 0.05 else 0.0)
    # a fixed weight (a grid without 0) is not tested
    assert reranker.tune(queries, refs, grid=(1.0,))[0] == 1.0 and reranker.p_value is None


def test_paired_bootstrap_p_tells_a_better_system():
    """The p-value is small when two systems clearly differ, large when they are the same or
    differ by one sentence in 200: sacrebleu's paired bootstrap (two-sided) on token lists."""
    from paddle_hsoftmax.rerank import paired_bootstrap_p

    refs = [[f"w{i}", f"x{i}", "of", f"y{i}"] for i in range(200)]
    bad = [[f"w{i}", "z", "z", "z"] if i % 2 else list(r) for i, r in enumerate(refs)]
    assert paired_bootstrap_p(bad, refs, refs) < 0.01
    assert paired_bootstrap_p(bad, bad, refs) > 0.5
    assert paired_bootstrap_p(bad, [list(refs[1])] + bad[1:], refs) > 0.05


def test_translator_log_probs_are_the_models(cedict_slice):
    """Translator.log_probs equals the model's teacher-forced NLL on the retrieved (or given)
    neighbours, in any batch order."""
    from paddle_hsoftmax.tasks.seq2seq import Seq2SeqConfig, Seq2SeqTask, teacher_forcing

    pairs = [(s, t) for s, t in cedict_slice if len(t) <= 4][:400]
    config = Seq2SeqConfig(hidden_size=8, embed_dim=6, retrieve=1, copy=True, candidates=3, target_min_count=1,
                           subwords=0)  # words (pieces: tests/test_seq2seq_subwords.py)
    task = Seq2SeqTask(config, {"train": pairs[:300], "valid": pairs[300:350], "test": pairs[350:]})
    tr, model = task.translator, task.model
    sources, targets = [s for s, _ in pairs[300:310]], [t for _, t in pairs[:10]]
    neighbours = [[pairs[i]] for i in range(20, 30)]
    for given in (None, neighbours):
        got = tr.log_probs(sources, targets, given, batch_size=3)
        prepared = tr.prepare(sources) if given is None else [augment_source(s, n) for s, n in zip(sources, given)]
        for i, (prep, tgt) in enumerate(zip(prepared, targets)):
            ids = np.array([task.target_vocab.index.get(w, task.target_vocab.index["<unk>"]) for w in tgt]
                           + [model.eos_id])
            inputs, gold = teacher_forcing([ids], model.bos_id, model.eos_id)
            with paddle.no_grad():
                nll = model(paddle.to_tensor(tr.encode(prep)[None]), paddle.to_tensor([len(tr.encode(prep))]),
                            paddle.to_tensor(inputs), paddle.to_tensor(gold), paddle.to_tensor(tr.copy_ids(prep)[None]))
            assert got[i] == pytest.approx(-float(nll.sum()), rel=1e-5)
    assert task.selection_metric == "valid_select"
    scores = task.evaluate()  # selection: the best grid weight's rerank BLEU plus the model's own (beam) BLEU
    _, table = task.rerank_validation()
    assert scores["valid_rerank_best"] == max(table.values()) >= scores["valid_rerank_bleu"]
    assert scores["valid_select"] == pytest.approx(scores["valid_rerank_best"] + scores["valid_bleu"])
    assert task.reranker.index is task.retriever.index  # one index over the training pairs


def test_learning_rate_decays_linearly_to_the_ratio(cedict_slice):
    """``--min-lr-ratio r``: lr at the start, lr x r at the end of the last epoch, linear between;
    1 keeps it constant; the optimizer gets what the schedule says."""
    from paddle_hsoftmax.tasks.seq2seq import Seq2SeqConfig, Seq2SeqTask

    pairs = [(s, t) for s, t in cedict_slice if len(t) <= 4][:200]
    splits = {"train": pairs[:150], "valid": pairs[150:175], "test": pairs[175:]}
    for ratio, expected in ((0.1, (4e-3, 2.2e-3, 4e-4)), (1.0, (4e-3, 4e-3, 4e-3))):
        task = Seq2SeqTask(Seq2SeqConfig(hidden_size=8, embed_dim=6, lr=4e-3, min_lr_ratio=ratio, candidates=0), splits)
        got = [task.learning_rate(p) for p in (0.0, 0.5, 1.0)]
        assert got == pytest.approx(expected)
        task.set_learning_rate(got[1])
        assert task.optimizer.get_lr() == pytest.approx(got[1])
