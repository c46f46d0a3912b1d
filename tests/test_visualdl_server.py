"""The real VisualDL server serves a finished run's curves, hyper-parameters and word vectors.

A small word2vec run on a People's Daily slice through the command line, then ``visualdl --logdir
RUN/vdl`` on loopback and a free port. Through VisualDL's HTTP API (``/app/api/...``, the routes of
``visualdl/server/api.py``) the run's scalars must come back with the values the run logged, and
the embedding projector must serve the exported vectors with their words. The server is always
stopped.
"""

import csv
import io
import json
import math
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import numpy as np
import pytest
from conftest import write_pd_slice

from paddle_hsoftmax.cli import main
from paddle_hsoftmax.evaluate import load_vectors

pytest.importorskip("visualdl")

DIM = 16


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("vdl_run")
    corpus = write_pd_slice(root / "pd_1000.txt", 1000)
    out = root / "word2vec"
    args = ["word2vec", "--corpus", str(corpus), "--format", "tagged", "--min-count", "2", "--dim", str(DIM),
            "--epochs", "2", "--batch-size", "256", "--chunk-tokens", "2000", "--output-dir", str(out), "--no-progress"]
    assert main(args) == 0
    return out


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(run_dir, tmp_path_factory):
    """``(base URL, logdir)`` of a running ``visualdl`` server; stopped afterwards, always.

    The log directory is given relative to the server's working directory, as in ``visualdl
    --logdir runs/word2vec/vdl``: VisualDL 2.5.3 builds its response-cache keys with
    ``os.path.join(prefix, run)``, so an absolute ``--logdir`` gives the embedding metadata and
    the embedding tensor the same key, and whichever is asked for second gets the first's bytes."""
    logdir = "vdl"
    port = _free_port()
    log_path = tmp_path_factory.mktemp("visualdl") / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "visualdl.server.app", "--logdir", logdir, "--host", "127.0.0.1",
             "--port", str(port), "--disable-telemetry"],
            stdout=log, stderr=subprocess.STDOUT, cwd=run_dir,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"visualdl exited with {proc.returncode}:\n{log_path.read_text(errors='replace')}")
            try:
                with urllib.request.urlopen(base + "/alive", timeout=5) as r:
                    if r.status in (200, 204):
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"visualdl did not answer on {base} within 90 s:\n{log_path.read_text(errors='replace')}")
            time.sleep(0.3)
        yield base, logdir
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)


def _get(base: str, route: str, **params) -> bytes:
    url = f"{base}/app/api/{route}" + ("?" + urllib.parse.urlencode(params) if params else "")
    with urllib.request.urlopen(url, timeout=60) as r:
        assert r.status == 200
        return r.read()


def _api(base: str, route: str, **params):
    body = json.loads(_get(base, route, **params))
    assert body["status"] == 0, f"{route}: {body['msg']}"
    return body["data"]


def test_scalars_are_served_as_logged(run_dir, server):
    base, logdir = server
    metrics = json.loads((run_dir / "metrics.json").read_text(encoding="utf-8"))
    assert _api(base, "runs") == [logdir]
    tags = _api(base, "scalar/tags")
    assert tags["runs"] == [logdir]
    assert {"train/loss", "train/lr", "train/words_per_sec", "eval/heldin_nll_per_pair"} <= set(tags["tags"][0])

    loss = _api(base, "scalar/list", run=logdir, tag="train/loss")  # [[wall time ms, step, value], ...]
    steps = [step for _, step, _ in loss]
    every = 1 if metrics["kernel"] == "fused" else 20  # word2vec logs every fused step (a piece of the corpus)
    assert len(loss) == metrics["steps"] // every
    assert steps == sorted(steps) and all(s % every == 0 for s in steps)
    assert all(math.isfinite(v) and v > 0 for _, _, v in loss)

    lr = [v for _, _, v in _api(base, "scalar/list", run=logdir, tag="train/lr")]
    assert len(lr) == len(loss) and all(a > b for a, b in zip(lr, lr[1:]))  # word2vec's linear decay

    nll = _api(base, "scalar/list", run=logdir, tag="eval/heldin_nll_per_pair")
    assert len(nll) == 2  # one evaluation per epoch
    assert nll[-1][2] == pytest.approx(metrics["heldin_nll_per_pair"], rel=1e-6)
    assert nll[-1][1] == metrics["steps"]


def test_hyperparameters_are_served(server):
    base, logdir = server
    (entry,) = _api(base, "hparams/list")
    assert entry["name"] == logdir
    assert entry["hparams"]["dim"] == DIM and entry["hparams"]["tree"] == "huffman"
    assert "eval/heldin_nll_per_pair" in entry["metrics"]


def test_word_vectors_are_served_to_the_projector(run_dir, server):
    base, logdir = server
    words, vectors = load_vectors(run_dir / "vectors.bin")
    n = min(2000, len(words))  # the task logs the most frequent words
    (embedding,) = _api(base, "embedding/list")
    assert embedding["name"] == f"{logdir}/word_vectors"
    assert embedding["shape"] == [n, DIM]

    labels = _get(base, "embedding/metadata", name=embedding["name"]).decode("utf-8")
    assert ["".join(row) for row in csv.reader(io.StringIO(labels), delimiter="\t")] == words[:n]

    served = np.frombuffer(_get(base, "embedding/tensor", name=embedding["name"]), dtype=np.float32)
    np.testing.assert_allclose(served.reshape(n, DIM), vectors[:n], rtol=1e-6, atol=1e-7)
