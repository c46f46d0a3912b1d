"""Atomic writes: a write that fails half-way leaves the old file whole and no temporary file
behind; an export interrupted between its renames is still found; a run directory is never
silently reused."""

import errno
import json
import os

import numpy as np
import paddle
import pytest

from paddle_hsoftmax.commands.common import prepare_output
from paddle_hsoftmax.data import CorpusError
from paddle_hsoftmax.export import atomic_open, atomic_write_text, write_word2vec_binary, write_word2vec_text
from paddle_hsoftmax.trainer import atomic_save


class DiskFull(Exception):
    pass


def _no_tmp(directory):
    return not [p for p in directory.rglob("*") if p.name.endswith(".tmp")]


def test_failure_inside_atomic_open_keeps_the_old_file(tmp_path):
    path = tmp_path / "metrics.json"
    atomic_write_text(path, json.dumps({"accuracy": 0.9}))
    with pytest.raises(DiskFull):
        with atomic_open(path) as f:
            f.write('{"accuracy": 0.')  # half a file
            raise DiskFull()
    assert json.loads(path.read_text(encoding="utf-8")) == {"accuracy": 0.9}
    assert _no_tmp(tmp_path)
    with pytest.raises(ValueError, match="mode must be 'w' or 'wb', got 'a'"):
        with atomic_open(path, "a"):
            pass


@pytest.mark.parametrize("writer, binary", [(write_word2vec_text, False), (write_word2vec_binary, True)])
def test_vectors_survive_a_failed_fsync(writer, binary, tmp_path, monkeypatch):
    """The disk fills up when the new vectors are flushed: the old vectors stay, whole."""
    from gensim.models import KeyedVectors

    path = tmp_path / "vectors"
    old = np.arange(12, dtype=np.float32).reshape(3, 4)
    writer(path, ["a", "b", "c"], old)
    before = path.read_bytes()

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(OSError, match="No space left"):
        writer(path, ["a", "b", "c", "d"], np.ones((4, 4), dtype=np.float32))
    monkeypatch.undo()
    assert path.read_bytes() == before and _no_tmp(tmp_path)
    loaded = KeyedVectors.load_word2vec_format(str(path), binary=binary)
    assert loaded.index_to_key == ["a", "b", "c"] and np.allclose(loaded.vectors, old)


def test_checkpoint_survives_a_save_that_dies_half_way(tmp_path, monkeypatch):
    """``paddle.save`` writes half the new checkpoint, then fails: the old one still loads."""
    path = tmp_path / "last.pdckpt"
    atomic_save({"model": {"w": paddle.to_tensor([1.0, 2.0])}, "trainer": {"step": 4}}, path)
    real_save = paddle.save

    def dying_save(obj, target):
        real_save(obj, target)
        with open(target, "r+b") as f:
            f.truncate(os.path.getsize(target) // 2)
        raise DiskFull()

    monkeypatch.setattr(paddle, "save", dying_save)
    with pytest.raises(DiskFull):
        atomic_save({"model": {"w": paddle.to_tensor([9.0, 9.0])}, "trainer": {"step": 8}}, path)
    monkeypatch.undo()
    ckpt = paddle.load(str(path))
    assert ckpt["trainer"]["step"] == 4 and ckpt["model"]["w"].numpy().tolist() == [1.0, 2.0]
    assert _no_tmp(tmp_path)


def test_save_replaces_what_a_killed_save_left(tmp_path):
    """A kill between write and rename leaves ``last.pdckpt.tmp`` (possibly partial): nothing
    reads it, and the next save writes over it."""
    path = tmp_path / "last.pdckpt"
    atomic_save({"step": 1}, path)
    (tmp_path / "last.pdckpt.tmp").write_bytes(b"\x80\x04partial")
    assert paddle.load(str(path)) == {"step": 1}
    atomic_save({"step": 2}, path)
    assert paddle.load(str(path)) == {"step": 2} and _no_tmp(tmp_path)


def test_export_killed_between_its_renames_is_still_found(tmp_path):
    """``export_model`` swaps ``inference/`` by two renames; a kill between them leaves only
    ``inference.old``, which the loaders use and the next export puts back and replaces."""
    from paddle_hsoftmax.inference import export_dir, export_model
    from paddle_hsoftmax.models.classifier import TextClassifier

    paddle.seed(0)
    model = TextClassifier(20, 2, embed_dim=4, hidden_size=4)
    run = tmp_path / "run"
    export_model(model, run / "inference")
    assert export_dir(run) == run / "inference" and _no_tmp(run)
    (run / "inference").rename(run / "inference.old")  # the state between the two renames
    assert export_dir(run) == run / "inference.old"
    loaded = paddle.jit.load(str(export_dir(run) / "model"))
    tokens, lengths = paddle.to_tensor([[2, 3, 4]]), paddle.to_tensor([3])
    model.eval()
    np.testing.assert_allclose(loaded(tokens, lengths).numpy(), model(tokens, lengths).numpy(), rtol=1e-5)
    export_model(model, run / "inference")
    assert sorted(p.name for p in run.iterdir()) == ["inference"]


def test_run_directory_is_never_silently_reused(tmp_path):
    out = tmp_path / "run"
    prepare_output(out, resume=False, overwrite=False)  # new: fine
    with pytest.raises(CorpusError, match="nothing to resume"):
        prepare_output(out, resume=True, overwrite=False)

    (out / "checkpoints").mkdir()
    atomic_save({"step": 3}, out / "checkpoints" / "last.pdckpt")  # an interrupted run
    with pytest.raises(CorpusError, match=r"interrupted run .*--resume to continue it, --overwrite"):
        prepare_output(out, resume=False, overwrite=False)
    prepare_output(out, resume=True, overwrite=False)
    assert (out / "checkpoints" / "last.pdckpt").exists()

    atomic_write_text(out / "metrics.json", "{}")  # a finished run
    with pytest.raises(CorpusError, match=r"finished run \(metrics.json\); pass --overwrite"):
        prepare_output(out, resume=False, overwrite=False)
    prepare_output(out, resume=False, overwrite=True)
    assert not (out / "metrics.json").exists() and not (out / "checkpoints").exists()

    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(CorpusError, match="not a directory"):
        prepare_output(file, resume=False, overwrite=True)
