"""``python -m paddle_hsoftmax.selfcheck``: its checks pass on a correct layer, fail on a broken
one, and a device this build cannot use is refused in one line."""

import subprocess
import sys

import paddle
import pytest

from paddle_hsoftmax import selfcheck
from paddle_hsoftmax.output.hsoftmax import HierarchicalSoftmax


def test_every_check_passes_on_this_device():
    results = selfcheck.run_checks()
    names = {r["check"] for r in results}
    assert {"nll", "gradient", "normalised", "log_prob", "predict", "builtin"} <= names
    assert [r for r in results if not r["ok"]] == []


def test_a_wrong_nll_is_caught(monkeypatch):
    right = HierarchicalSoftmax.forward

    def off_by_a_little(self, hidden, target, **kw):
        return right(self, hidden, target, **kw) + 1e-3

    monkeypatch.setattr(HierarchicalSoftmax, "forward", off_by_a_little)
    failed = {r["check"] for r in selfcheck.run_checks() if not r["ok"]}
    assert "nll" in failed


def test_speed_table_has_every_contender():
    rows = selfcheck.run_speed(sizes=(1000,), B=64, D=16, budget_s=0.05)
    assert set(rows[0]["ms"]) >= {"hsoftmax fwd+bwd", "builtin hsigmoid fwd+bwd", "full softmax fwd+bwd",
                                  "predict k=5", "topk(full_log_prob) k=5"}
    assert all(v > 0 for v in rows[0]["ms"].values())


@pytest.mark.skipif(paddle.device.is_compiled_with_cuda(), reason="this Paddle build has CUDA")
def test_gpu_on_a_cpu_build_is_one_line_exit_2():
    proc = subprocess.run([sys.executable, "-m", "paddle_hsoftmax.selfcheck", "--device", "gpu"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --device gpu"), proc.stderr


def test_main_writes_json(tmp_path):
    out = tmp_path / "check.json"
    assert selfcheck.main(["--no-speed", "--json", str(out)]) == 0
    assert '"checks"' in out.read_text()
