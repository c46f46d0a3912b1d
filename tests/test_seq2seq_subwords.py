"""Subword targets for the encoder-decoder (``--subwords``): the byte-pair model on real CC-CEDICT
glosses (exact round trip, frequent words whole, rare ones in pieces, deterministic, a damaged file
one line), the task and translator over pieces (log-probabilities equal the model's NLL of the
pieces, translations are words), a model that says words it never saw whole (a word model cannot),
and the command + predict end to end."""

import json

import numpy as np
import paddle
import pytest

from conftest import seq2seq_slice_args
from paddle_hsoftmax.data.parallel import read_cedict
from paddle_hsoftmax.data.retrieval import augment_source
from paddle_hsoftmax.data.subwords import Subwords
from paddle_hsoftmax.data.text import CorpusError


@pytest.fixture(scope="module")
def cedict_slice():
    return read_cedict()[:3000]


def test_pieces_give_the_words_back_and_split_only_rare_words(cedict_slice):
    targets = [t for _, t in cedict_slice]
    sw = Subwords.learn(targets, 1500)
    assert 100 < len(sw) <= 1500
    assert all(sw.decode(sw.encode(t)) == t for t in targets)  # exact round trip
    assert sw.encode(["to", "the"]) == ["▁to", "▁the"]  # frequent words stay whole
    counts = {}
    for t in targets:
        for w in t:
            counts[w] = counts.get(w, 0) + 1
    rare = [w for w, c in counts.items() if c == 1 and len(w) >= 8]
    assert rare and all(len(sw.encode([w])) > 1 for w in rare)  # a word seen once is spelt in pieces
    unseen = ["zyxwvq", "naïve", "电脑"]  # characters never seen: still the same words back
    assert sw.decode(sw.encode(unseen)) == unseen
    assert Subwords.learn(targets, 1500).model == sw.model  # deterministic
    assert sw.encode([]) == [] and sw.decode([]) == []
    with pytest.raises(ValueError, match="size must be >= 1"):
        Subwords.learn(targets, 0)


def test_saved_model_loads_and_a_damaged_one_is_one_line(cedict_slice, tmp_path):
    sw = Subwords.learn([t for _, t in cedict_slice], 800)
    sw.save(tmp_path / "target_subwords.model")
    again = Subwords.load(tmp_path / "target_subwords.model")
    assert again.encode(["to", "ejaculate"]) == sw.encode(["to", "ejaculate"])
    bad = tmp_path / "bad.model"
    bad.write_bytes(b"\x00not a model")
    with pytest.raises(CorpusError, match=r"bad\.model: not a subword model") as e:
        Subwords.load(bad)
    assert "\n" not in str(e.value)


def test_task_and_translator_work_in_pieces_and_answer_in_words(cedict_slice):
    """Vocabulary, targets and copied neighbours in pieces; log_probs of word targets is the
    model's NLL of their pieces (with the retrieved or the given neighbours); translations are words."""
    from paddle_hsoftmax.tasks.seq2seq import Seq2SeqConfig, Seq2SeqTask, teacher_forcing

    pairs = [(s, t) for s, t in cedict_slice if len(t) <= 4][:400]
    config = Seq2SeqConfig(hidden_size=8, embed_dim=6, retrieve=1, copy=True, candidates=3, subwords=600)
    task = Seq2SeqTask(config, {"train": pairs[:300], "valid": pairs[300:350], "test": pairs[350:]})
    sw, tr, model = task.subwords, task.translator, task.model
    vocab = task.target_vocab.index
    assert "▁to" in vocab and "to" not in vocab
    unk = vocab["<unk>"]
    first = [vocab.get(p, unk) for p in sw.encode(pairs[0][1])] + [model.eos_id]
    assert task.targets[0].tolist() == first
    augmented = tr.prepare([pairs[300][0]])[0]  # the neighbour's gloss appended as pieces
    neighbour = task.retriever.pairs[task.retriever.index.nearest([pairs[300][0]], 1, None, task.retriever.metric)[0, 0]]
    assert augmented == augment_source(pairs[300][0], [(neighbour[0], sw.encode(neighbour[1]))])
    assert any(i >= 0 for i in tr.copy_ids(augmented))  # pieces the decoder can copy
    sources, targets = [s for s, _ in pairs[300:310]], [t for _, t in pairs[:10]]
    neighbours = [[pairs[i]] for i in range(20, 30)]
    for given in (None, neighbours):
        got = tr.log_probs(sources, targets, given, batch_size=3)
        prepared = (tr.prepare(sources) if given is None else
                    [augment_source(s, [(a, sw.encode(b)) for a, b in n]) for s, n in zip(sources, given)])
        for i, (prep, tgt) in enumerate(zip(prepared, targets)):
            ids = np.array([vocab.get(p, unk) for p in sw.encode(tgt)] + [model.eos_id])
            inputs, gold = teacher_forcing([ids], model.bos_id, model.eos_id)
            with paddle.no_grad():
                nll = model(paddle.to_tensor(tr.encode(prep)[None]), paddle.to_tensor([len(tr.encode(prep))]),
                            paddle.to_tensor(inputs), paddle.to_tensor(gold), paddle.to_tensor(tr.copy_ids(prep)[None]))
            assert got[i] == pytest.approx(-float(nll.sum()), rel=1e-5)
    for hyp in tr.translate(sources, beam_size=2) + tr.translate(sources, beam_size=0):
        assert hyp and not any("▁" in w for w in hyp)
    assert task.reranker.index is task.retriever.index  # the memory stays the word pairs


def compound_task(subwords: int, steps: int = 300):
    """Targets are one made-up word per pair, prefix + suffix, each named by one source character;
    the 6 words of the diagonal are held out of training (each of their halves is seen in 5 other
    words). Returns (greedy translations of the held-out sources, the held-out words)."""
    from paddle_hsoftmax.tasks.seq2seq import Seq2SeqConfig, Seq2SeqTask

    prefixes, suffixes = ["kalo", "mipu", "nesa", "toru", "beki", "fajo"], ["vend", "gris", "holm", "dack", "zult", "wepp"]
    pairs = [([a, b], [p + s]) for a, p in zip("甲乙丙丁戊己", prefixes) for b, s in zip("子丑寅卯辰巳", suffixes)]
    held = [pairs[7 * i] for i in range(6)]
    train = [p for p in pairs if p not in held] * 10
    config = Seq2SeqConfig(hidden_size=32, embed_dim=16, dropout=0.0, retrieve=0, copy=False, candidates=0,
                           output="softmax", target_min_count=1, subwords=subwords, lr=0.02)
    paddle.seed(0)
    task = Seq2SeqTask(config, {"train": train, "valid": held, "test": held})
    if subwords:  # the held-out words are spelt in their halves
        assert all(task.subwords.encode(t) == ["▁" + t[0][:4], t[0][4:]] for _, t in held)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        task.train_step(task.batch(rng.choice(len(train), 32, replace=False)))
        task.optimizer.step()
        task.optimizer.clear_grad()
    return task.translator.translate([s for s, _ in held], beam_size=0), [t for _, t in held]


def test_pieces_let_the_model_say_words_it_never_saw_whole():
    said, wanted = compound_task(subwords=68)  # the held-out words in two pieces, "▁kalo" "vend"
    # 5 or 6 of the 6 for each of the seeds 0-3 (measured): attention puts each piece together
    assert sum(s == w for s, w in zip(said, wanted)) >= 4, said
    said, wanted = compound_task(subwords=0)  # the control: a word model has no such word to say
    assert not any(s == w for s, w in zip(said, wanted))


def test_seq2seq_subwords_command_and_predict(cedict_slice, tmp_path, capsys):
    from paddle_hsoftmax.cli import main
    from paddle_hsoftmax.inference import load_translator

    out = tmp_path / "run"
    args, short = seq2seq_slice_args(cedict_slice, tmp_path, out)
    assert main(args + ["--epochs", "1", "--subwords", "400", "--retrieve", "1", "--decode", "beam"]) == 0
    capsys.readouterr()
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["config"]["subwords"] == 400
    assert (out / "target_subwords.model").is_file()
    vocab = (out / "target_vocab.tsv").read_text(encoding="utf-8")
    assert "▁to\t" in vocab
    memory = (out / "retrieval_memory.tsv").read_text(encoding="utf-8").splitlines()
    assert memory[0] == " ".join(short[0][0]) + "\t" + " ".join(short[0][1])  # the memory keeps words
    translate, config = load_translator(out)
    outputs = translate(["".join(s) for s, _ in short[550:570]])
    assert len(outputs) == 20 and all(o and "▁" not in o for o in outputs)
    lines = tmp_path / "in.txt"
    lines.write_text("火山\n电脑\n", encoding="utf-8")
    assert main(["predict", str(out), "--input", str(lines)]) == 0
    assert capsys.readouterr().out.splitlines() == translate(["火山", "电脑"])
    (out / "target_subwords.model").write_bytes(b"damaged")
    with pytest.raises(CorpusError, match=r"target_subwords\.model: not a subword model"):
        load_translator(out)


def test_a_run_from_before_subwords_still_predicts_words(cedict_slice, tmp_path, capsys):
    """A run whose record has no ``subwords`` setting (written before it existed) decoded words:
    ``predict`` must not look for pieces the new default would expect."""
    from paddle_hsoftmax.cli import main
    from paddle_hsoftmax.inference import load_translator

    out = tmp_path / "run"
    args, short = seq2seq_slice_args(cedict_slice, tmp_path, out)
    assert main(args + ["--epochs", "1", "--subwords", "0", "--retrieve", "1", "--decode", "beam"]) == 0
    capsys.readouterr()
    expected = load_translator(out)[0](["火山", "电脑"])
    for name in ("run.json", "config.json"):  # as an older version wrote them
        record = json.loads((out / name).read_text(encoding="utf-8"))
        (record["config"] if "config" in record else record).pop("subwords")
        (out / name).write_text(json.dumps(record), encoding="utf-8")
    assert not (out / "target_subwords.model").exists()
    translate, config = load_translator(out)
    assert config.subwords == 0 and translate(["火山", "电脑"]) == expected
