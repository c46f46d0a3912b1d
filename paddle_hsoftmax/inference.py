"""Inference exports: ``paddle.jit.save`` a trained classifier or tagger, and load one back.

A run directory (:class:`~paddle_hsoftmax.rundir.RunDir`) holds ``inference/model.*`` (the static
graph and its parameters), the token index (``tokens.txt``, plus ``chars.txt`` for a tagger with
character features), the label or tag names and ``run.json`` (the kind and the settings: the
tokenizer). Loading needs none of the training code's data: only
``paddle.jit.load`` and these files, which is what a deployment would ship.

Exported signatures (all int64):
- classifier: ``(tokens [B, T], lengths [B][, ngrams [B, N]]) -> log-probabilities [B, C]`` (n-gram
  ids from the run's ``ngrams.txt``, when it has one);
- tagger: ``(tokens [B, T], lengths [B][, chars [B, T, W]]) -> emission scores [B, T, K]``; a CRF
  tagger's transition scores are saved beside it (``inference/crf.safetensors``) and decoding
  (Viterbi, or the per-step argmax) runs on the loaded scores.

Nothing loaded here unpickles (see :mod:`paddle_hsoftmax.safe_io`). ``paddle.jit.load`` with
Paddle's PIR program format (``model.json`` + ``model.pdiparams``, the default in Paddle 3) parses
the program as JSON and the parameters with Paddle's C++ tensor reader; its *old* loader (taken when
``FLAGS_enable_pir_api=0``) unpickles ``model.pdiparams.info`` (checked in Paddle 3.3.1's
``jit/translated_layer.py``), so the loaders here refuse to run with that flag off, and the exporter
removes any ``.info`` file. The program is a graph of Paddle operators, not Python, but Paddle
has operators that read and write files (``save``, ``load``...): :func:`load_jit` refuses a
program holding any of them (none of this package's exports does). A damaged or empty export is
one line naming the file.

An encoder-decoder (``train.py seq2seq``) is not exported: its beam search is a Python loop over
decoder steps. :func:`load_translator` rebuilds the model from the run's settings and the two
vocabularies (``source_tokens.txt``, ``target_vocab.tsv``; the output layer, H-softmax tree
included, is a function of the target words and counts) and loads the best checkpoint's
parameters (a safetensors file, :func:`~paddle_hsoftmax.safe_io.load_state`); so it needs this
package, but no data.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from pathlib import Path
from typing import Callable, List, Sequence, Tuple

import numpy as np

from .data.text import CorpusError, tokenize
from .pipeline.encoding import pad
from .rundir import RunDir

__all__ = ["export_model", "export_dir", "load_jit", "load_classifier", "load_tagger", "load_translator", "run_kind"]


def _fsync_tree(directory: Path) -> None:
    """fsync every file under ``directory``, then the directories themselves."""
    from .export import fsync_directory

    for path in sorted(directory.rglob("*")):
        if path.is_file():
            with open(path, "rb") as f:
                os.fsync(f.fileno())
    for sub in sorted((d for d in directory.rglob("*") if d.is_dir()), reverse=True):
        fsync_directory(sub)
    fsync_directory(directory)


def export_dir(run_dir: Path) -> Path:
    """``run_dir/inference``, or ``inference.old`` when a run was killed between the two renames
    of :func:`export_model` (see :attr:`~paddle_hsoftmax.rundir.RunDir.inference`)."""
    return RunDir(run_dir).inference


def export_model(model, directory: Path, with_chars: bool = False, with_ngrams: bool = False) -> None:
    """``paddle.jit.save`` ``model`` as ``directory/model.*``: written (and fsynced) beside it as
    ``directory.tmp``, then swapped in by two renames (``directory`` -> ``directory.old``,
    ``directory.tmp`` -> ``directory``), so an interrupted export never leaves a half-written
    ``directory``; a kill between the renames leaves the previous export as ``directory.old``,
    which the loaders use (:func:`export_dir`) and the next export puts back first."""
    import paddle

    from paddle.static import InputSpec

    from .export import fsync_directory

    directory = Path(directory)
    old = directory.with_name(directory.name + ".old")
    if not directory.exists() and old.is_dir():
        old.rename(directory)  # a previous export was killed between its two renames
    spec = [InputSpec([None, None], "int64", "tokens"), InputSpec([None], "int64", "lengths")]
    if with_chars:
        spec.append(InputSpec([None, None, None], "int64", "chars"))
    if with_ngrams:  # a classifier's n-gram branch: [B, N] n-gram ids
        spec.append(InputSpec([None, None], "int64", "ngrams"))
    model.eval()
    static = paddle.jit.to_static(model, input_spec=spec, full_graph=True)
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    paddle.jit.save(static, str(tmp / "model"))
    (tmp / "model.pdiparams.info").unlink(missing_ok=True)  # a pickle (old loader only): never shipped
    crf = getattr(model, "crf", None)
    if crf is not None:
        from .safe_io import save_tensors

        save_tensors(tmp / "crf.safetensors", crf.state_dict())
    _fsync_tree(tmp)
    shutil.rmtree(old, ignore_errors=True)
    if directory.exists():
        directory.rename(old)
    tmp.rename(directory)
    fsync_directory(directory.parent)
    shutil.rmtree(old, ignore_errors=True)


def run_kind(run_dir: Path) -> str:
    """``"classify"``, ``"tag"``, ``"seq2seq"``...: the run's kind, from its ``run.json`` (for a run
    written before the record, from the files it holds)."""
    return RunDir(run_dir).kind


# operators a crafted PIR program could use to touch files or run Python (an exported classifier or
# tagger uses none: embedding, rnn, matmul, log_softmax, ... and data / fetch)
_IO_OP_WORDS = ("save", "load", "read_file", "py_func", "print", "rpc", "send", "recv", "listen")


def _op_names(node) -> set:
    """Names (``"1.matmul"``) of every operator in a PIR program's JSON, nested blocks included."""
    names, stack = set(), [node]
    while stack:
        x = stack.pop()
        if isinstance(x, dict):
            for op in x.get("ops", ()) if isinstance(x.get("ops"), list) else ():
                if isinstance(op, dict) and isinstance(op.get("#"), str):
                    names.add(op["#"])
            stack.extend(x.values())
        elif isinstance(x, list):
            stack.extend(x)
    return names


def load_jit(directory: Path):
    """``paddle.jit.load(directory / "model")``, data only: refuses Paddle's old loader (it
    unpickles ``model.pdiparams.info``) and a pickle in the directory; a missing, empty or damaged
    ``model.json`` / ``model.pdiparams`` is a one-line :class:`CorpusError` naming the file."""
    import json

    import paddle

    from .safe_io import check_not_pickle

    directory = Path(directory)
    if not paddle.framework.use_pir_api():
        raise CorpusError(f"{directory}: not loaded with FLAGS_enable_pir_api=0: Paddle's old program loader "
                          "unpickles model.pdiparams.info, which runs code a stranger's file may hold; unset the flag")
    program, params = directory / "model.json", directory / "model.pdiparams"
    for path in (program, params):
        if not path.is_file():
            raise CorpusError(f"{path}: missing (the run's paddle.jit export is incomplete: train it again)")
        check_not_pickle(path, "inference file")
        if path.stat().st_size == 0:
            raise CorpusError(f"{path}: empty (a damaged paddle.jit export: train the run again)")
    try:
        with open(program, "rb") as f:
            graph = json.load(f)
    except (UnicodeDecodeError, ValueError) as exc:
        raise CorpusError(f"{program}: damaged paddle.jit program, not JSON ({exc})") from None
    io_ops = sorted(op for op in _op_names(graph) if any(word in op for word in _IO_OP_WORDS))
    if io_ops:
        raise CorpusError(f"{program}: not loaded: the program holds operators that read or write files or call "
                          f"Python ({', '.join(io_ops[:3])}); no export of this package has them")
    try:
        model = paddle.jit.load(str(directory / "model"))
    except Exception as exc:  # Paddle's C++ readers raise RuntimeError, ValueError, KeyError on damage
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        culprit = program if "model file" in str(exc) else params
        raise CorpusError(f"{culprit}: damaged paddle.jit export ({lines[0] if lines else type(exc).__name__})") \
            from None
    model.eval()
    return model


def _read_names(run: RunDir, name: str) -> List[str]:
    path = run.file(name)
    try:
        return path.read_text(encoding="utf-8").split("\n")[:-1]
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None


def _load(run: RunDir, names_file: str, kind: str):
    run.require("tokens.txt", names_file, kind=kind)
    config = run.settings()
    names = _read_names(run, names_file)
    if not names:
        raise CorpusError(f"{run.file(names_file)}: empty (one name per line expected)")
    model = load_jit(run.inference)
    return config, names, model


def _set_params(layer, saved, path: Path) -> None:
    """``layer.set_state_dict(saved)`` after checking that every parameter is there with its
    shape (``set_state_dict`` would only warn and keep the initial values)."""
    import paddle

    missing, differ = [], []
    for name, param in layer.state_dict().items():
        if name not in saved:
            missing.append(name)
        elif list(saved[name].shape) != list(param.shape):
            differ.append(f"{name} {list(saved[name].shape)} vs {list(param.shape)}")
    if missing or differ:
        what = (f"missing {missing[0]}" + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")) if missing \
            else f"other shapes: {differ[0]}"
        raise CorpusError(f"{path}: does not fit the run's model ({what}); a file from another run?")
    layer.set_state_dict({k: paddle.to_tensor(v) if isinstance(v, np.ndarray) else v for k, v in saved.items()})


def load_classifier(run_dir: Path) -> Tuple[Callable, List[str]]:
    """``(predict, labels)``: ``predict(texts, batch_size)`` -> (label ids ``[N]``, probabilities ``[N, C]``)."""
    import paddle

    from .data.vocab import TokenIndex

    run = RunDir.open(run_dir, kinds=("classify",))
    config, labels, model = _load(run, "labels.txt", "classify")
    vocab = TokenIndex.load(run.file("tokens.txt"))
    ngram_index = None
    if "ngrams.txt" in set((run.record() or {}).get("files") or ()) or run.file("ngrams.txt").exists():
        from .pipeline.encoding import NgramIndex

        run.require("ngrams.txt", kind="classify")
        ngram_index = NgramIndex.load(run.file("ngrams.txt"))

    def predict(texts: Sequence[str], batch_size: int = 128):
        token_lists = [tokenize(t, config["tokenizer"])[: config["max_len"]] for t in texts]
        seqs = [vocab.encode(t) for t in token_lists]
        seqs = [s if len(s) else np.array([TokenIndex.UNK]) for s in seqs]
        grams = [ngram_index.encode(t) for t in token_lists] if ngram_index is not None else None
        probs = np.zeros((len(seqs), len(labels)), dtype=np.float32)
        for start in range(0, len(seqs), batch_size):
            tokens, lengths = pad(seqs[start : start + batch_size])
            inputs = [paddle.to_tensor(tokens), paddle.to_tensor(lengths)]
            if grams is not None:
                rows = [g if len(g) else np.zeros(1, dtype=np.int64) for g in grams[start : start + batch_size]]
                inputs.append(paddle.to_tensor(pad(rows)[0]))
            out = model(*inputs)
            probs[start : start + batch_size] = np.exp(out.numpy())
        return probs.argmax(axis=1), probs

    return predict, labels


def load_tagger(run_dir: Path) -> Tuple[Callable, List[str]]:
    """``(predict, tags)``: ``predict(texts, batch_size)`` -> one ``(tokens, tag names)`` per text."""
    import paddle

    from .models.crf import LinearChainCRF
    from .models.tagger import decode_scores
    from .pipeline.tagging import TaggerInputs

    run = RunDir.open(run_dir, kinds=("tag",))
    config, tags, model = _load(run, "tags.txt", "tag")
    recorded = set((run.record() or {}).get("files") or ())
    for name in TaggerInputs.MODES:  # the model's sub-token index: without it the export gets too few inputs
        if f"{name}.txt" in recorded:
            run.require(f"{name}.txt", kind="tag")
    inputs = TaggerInputs.load(run.path)
    crf = None
    legacy = run.inference / "crf.pdparams"
    if legacy.exists() and not run.crf_params.exists():
        from .safe_io import check_not_pickle

        check_not_pickle(legacy, "CRF parameters file")  # what 0.1.0 wrote: refused, with how to convert
        raise CorpusError(f"{legacy}: not a safetensors file; expected {run.crf_params.name} beside it")
    if run.crf_params.exists() or config.get("crf"):
        from .safe_io import load_tensors

        crf = LinearChainCRF(len(tags))
        saved = load_tensors(run.crf_params, "CRF parameters file")
        _set_params(crf, saved, run.crf_params)

    def predict(texts: Sequence[str], batch_size: int = 128):
        tokens = [tokenize(t, config["tokenizer"]) for t in texts]
        out: List[Tuple[List[str], List[str]]] = [([], [])] * len(texts)
        order = [i for i in np.argsort([len(t) for t in tokens], kind="stable") if tokens[i]]
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            ids, lengths, chars = inputs.batch([inputs.encode(tokens[i]) for i in idx])
            feed = [paddle.to_tensor(ids), paddle.to_tensor(lengths)]
            if chars is not None:
                feed.append(paddle.to_tensor(chars))
            pred = decode_scores(model(*feed), feed[1], crf).numpy()  # (B, T)
            for row, i in enumerate(idx):
                out[i] = (tokens[i], [tags[k] for k in pred[row, : len(tokens[i])]])
        return out

    return predict, tags


def load_translator(run_dir: Path):
    """``(translate, config)``: see :func:`open_translator`; ``translate(texts, beam_size=None,
    batch_size=64)`` -> one space-joined translation per text."""
    translator, reranker, weight, config = open_translator(run_dir)

    def translate(texts: Sequence[str], beam_size=None, batch_size: int = 64) -> List[str]:
        if beam_size is None and reranker is not None:
            sources = [tokenize(t, config.source_tokenizer) for t in texts]
            return [" ".join(h) for h in reranker.decode(sources, weight, config.beam_size)]
        beam = config.beam_size if beam_size is None else beam_size
        return translator.translate_text(texts, beam, batch_size)

    return translate, config


def open_translator(run_dir: Path):
    """``(translator, reranker or None, rerank weight, config)`` for a ``train.py seq2seq`` run:
    the :class:`~paddle_hsoftmax.pipeline.translate.Translator` and, when the run chose reranking
    (recorded in ``run.json``), the :class:`~paddle_hsoftmax.rerank.Reranker` and its weight, which
    :func:`load_translator`'s ``translate`` uses by default (else beam search with the run's beam
    size; a given ``beam_size`` forces beam search, 0 = greedy). From
    ``checkpoints/best.pdckpt`` (the best validation BLEU); retrieval and reranking read the run's
    ``retrieval_memory.tsv``. No ``paddle.jit`` export: the parameters (safetensors, never a
    pickle) are loaded into a model built from the run's settings and saved vocabularies (and its
    ``target_tree.npz`` for a clustered H-softmax tree)."""
    import paddle

    from .data.vocab import TokenIndex, Vocab
    from .pipeline.configs import Seq2SeqConfig
    from .pipeline.translate import Translator, build_model

    run = RunDir.open(run_dir, kinds=("seq2seq",))
    run.require("source_tokens.txt", "target_vocab.tsv", "checkpoints/best.pdckpt", kind="seq2seq")
    raw = run.settings()
    known = {f.name for f in dataclasses.fields(Seq2SeqConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise CorpusError(f"{run.record_path if run.record() else run.file('config.json')}: unknown settings "
                          f"{unknown} (written by another version?)")
    # a run from before --subwords (2026-12-08) decoded words; the new default would look for its pieces
    raw.setdefault("subwords", 0)
    config = Seq2SeqConfig(**raw)
    chosen = run.chosen()  # a run from before run.json wrote its choices into config.json itself
    weight = float(chosen.get("rerank_weight", config.rerank_weight))
    decode = chosen.get("decode", config.decode)
    source_vocab = TokenIndex.load(run.file("source_tokens.txt"))
    target_vocab = Vocab.load_tsv(run.file("target_vocab.tsv"))
    tree = None
    if config.output == "hsoftmax" and config.tree == "clustered":
        from .tree import Tree

        run.require("target_tree.npz", kind="seq2seq")
        tree = Tree.load(run.file("target_tree.npz"))
    model = build_model(config, source_vocab, target_vocab, tree=tree)
    from .safe_io import load_state

    saved = load_state(run.best_checkpoint, "checkpoint")
    if not isinstance(saved, dict) or not isinstance(saved.get("model"), dict):
        raise CorpusError(f"{run.best_checkpoint}: not a model checkpoint (no model parameters in it)")
    _set_params(model, saved["model"], run.best_checkpoint)
    model.eval()
    memory = None
    if config.retrieve or config.candidates:
        from .data.parallel import read_parallel_tsv

        run.require("retrieval_memory.tsv", kind="seq2seq")
        memory = read_parallel_tsv(run.file("retrieval_memory.tsv"), "whitespace")
    subwords = None
    if config.subwords:
        from .data.subwords import Subwords

        run.require("target_subwords.model", kind="seq2seq")
        subwords = Subwords.load(run.file("target_subwords.model"))
    retriever = None
    if config.retrieve:
        from .data.retrieval import Retriever

        retriever = Retriever(memory, config.retrieve, encode_target=None if subwords is None else subwords.encode)
    translator = Translator(model, source_vocab, target_vocab, config, retriever, subwords)
    reranker = None
    if config.candidates and weight >= 0 and decode == "rerank":
        from .rerank import Reranker

        reranker = Reranker(translator, memory, config.candidates)

    return translator, reranker, weight, config
