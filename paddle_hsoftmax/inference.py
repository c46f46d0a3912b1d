"""Inference exports: ``paddle.jit.save`` a trained classifier or tagger, and load one back.

A run directory holds ``inference/model.*`` (the static graph and its parameters), the token
index (``tokens.txt``, plus ``chars.txt`` for a tagger with character features), the label or tag
names and ``config.json`` (the tokenizer). Loading needs none of the training code's data: only
``paddle.jit.load`` and these files, which is what a deployment would ship.

Exported signatures (all int64):
- classifier: ``(tokens [B, T], lengths [B]) -> log-probabilities [B, C]``;
- tagger: ``(tokens [B, T], lengths [B][, chars [B, T, W]]) -> emission scores [B, T, K]``; a CRF
  tagger's transition scores are saved beside it (``inference/crf.pdparams``) and decoding
  (Viterbi, or the per-step argmax) runs on the loaded scores.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable, List, Sequence, Tuple

import numpy as np

from .data import CorpusError

__all__ = ["export_model", "load_classifier", "load_tagger", "run_kind"]


def export_model(model, directory: Path, with_chars: bool = False) -> None:
    """``paddle.jit.save`` ``model`` as ``directory/model.*``; written beside and renamed into
    place, so an interrupted export never leaves a half-written ``directory``."""
    import paddle

    from paddle.static import InputSpec

    directory = Path(directory)
    spec = [InputSpec([None, None], "int64", "tokens"), InputSpec([None], "int64", "lengths")]
    if with_chars:
        spec.append(InputSpec([None, None, None], "int64", "chars"))
    model.eval()
    static = paddle.jit.to_static(model, input_spec=spec, full_graph=True)
    tmp = directory.with_name(directory.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    paddle.jit.save(static, str(tmp / "model"))
    crf = getattr(model, "crf", None)
    if crf is not None:
        paddle.save(crf.state_dict(), str(tmp / "crf.pdparams"))
    old = directory.with_name(directory.name + ".old")
    if directory.exists():
        directory.rename(old)
    tmp.rename(directory)
    shutil.rmtree(old, ignore_errors=True)


def run_kind(run_dir: Path) -> str:
    """``"classify"`` or ``"tag"``, from the files a finished run wrote."""
    run_dir = Path(run_dir)
    if not list((run_dir / "inference").glob("model.*")):
        raise CorpusError(f"{run_dir}: no inference/ export (paddle.jit.save) in this directory; "
                          "is it a finished `train.py classify` or `train.py tag` run?")
    for name, kind in (("labels.txt", "classify"), ("tags.txt", "tag")):
        if (run_dir / name).exists():
            return kind
    raise CorpusError(f"{run_dir}: neither labels.txt (classifier) nor tags.txt (tagger) found")


def _load(run_dir: Path, names_file: str):
    import paddle

    for name in ("tokens.txt", names_file, "config.json"):
        if not (run_dir / name).exists():
            raise CorpusError(f"{run_dir}: not a finished run (missing {name})")
    config = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))
    names = (run_dir / names_file).read_text(encoding="utf-8").split("\n")[:-1]
    model = paddle.jit.load(str(run_dir / "inference" / "model"))
    model.eval()
    return config, names, model


def load_classifier(run_dir: Path) -> Tuple[Callable, List[str]]:
    """``(predict, labels)``: ``predict(texts, batch_size)`` -> (label ids ``[N]``, probabilities ``[N, C]``)."""
    import paddle

    from .data.vocab import TokenIndex
    from .tasks.classify import ClassifyTask, tokenize_text

    run_dir = Path(run_dir)
    config, labels, model = _load(run_dir, "labels.txt")
    vocab = TokenIndex.load(run_dir / "tokens.txt")

    def predict(texts: Sequence[str], batch_size: int = 128):
        seqs = [vocab.encode(tokenize_text(t, config["tokenizer"])[: config["max_len"]]) for t in texts]
        seqs = [s if len(s) else np.array([TokenIndex.UNK]) for s in seqs]
        probs = np.zeros((len(seqs), len(labels)), dtype=np.float32)
        for start in range(0, len(seqs), batch_size):
            tokens, lengths = ClassifyTask.pad(seqs[start : start + batch_size])
            out = model(paddle.to_tensor(tokens), paddle.to_tensor(lengths))
            probs[start : start + batch_size] = np.exp(out.numpy())
        return probs.argmax(axis=1), probs

    return predict, labels


def load_tagger(run_dir: Path) -> Tuple[Callable, List[str]]:
    """``(predict, tags)``: ``predict(texts, batch_size)`` -> one ``(tokens, tag names)`` per text."""
    import paddle

    from .models.crf import LinearChainCRF
    from .models.tagger import decode_scores
    from .tasks.classify import tokenize_text
    from .tasks.tag import TaggerInputs

    run_dir = Path(run_dir)
    config, tags, model = _load(run_dir, "tags.txt")
    inputs = TaggerInputs.load(run_dir)
    crf = None
    if (run_dir / "inference" / "crf.pdparams").exists():
        crf = LinearChainCRF(len(tags))
        crf.set_state_dict(paddle.load(str(run_dir / "inference" / "crf.pdparams")))

    def predict(texts: Sequence[str], batch_size: int = 128):
        tokens = [tokenize_text(t, config["tokenizer"]) for t in texts]
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
