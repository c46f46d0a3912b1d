"""``python -m paddle_hsoftmax.selfcheck [--device cpu|gpu]``: verify the layer where it runs.

A user on a GPU machine (AI Studio, a cloud box) cannot trust figures measured on someone else's
CPU. This command runs, on the device it is given, the checks the test suite makes of
:class:`~paddle_hsoftmax.HierarchicalSoftmax`, each against a float64 NumPy reference computed
from the layer's own parameters:

- ``nll``: ``forward`` equals ``sum over the path of softplus(-s (h . v + b))`` (Huffman and
  balanced trees, with ``ignore_index`` positions giving exactly 0);
- ``gradient``: the hidden, node-vector and bias gradients equal the analytic ones;
- ``normalised``: ``logsumexp(full_log_prob) == 0`` on every row;
- ``log_prob``: ``log_prob(h, t)`` equals ``full_log_prob(h)[t]``;
- ``predict``: ``predict(h, k)`` returns what ``topk(full_log_prob)`` returns (ties aside);
- ``sample`` (when the layer has it): draws pass a chi-square test against ``full_log_prob``;
- ``builtin`` (CPU only: Paddle's ``F.hsigmoid_loss`` has no GPU kernel): the built-in loss on
  the same tree equals ours + ln 2 per padded slot.

Then a speed table of at most ~30 s: forward + backward at B=1024, D=128 for V = 1e4, 1e5, 1e6
(our layer; the full softmax and the built-in beside it where they fit), and, at V = 1e4, ``predict(k=5)``
against the dense ``topk(full_log_prob)``, on a randomly initialised layer (a trained layer's
tree search visits fewer nodes: ``scripts/bench_predict.py``), after the process set-up every
training command makes (:func:`paddle_hsoftmax.runtime.setup`). Exit status 0 when every check
passes, 1 when one fails, 2 for a device this Paddle build cannot use.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
import warnings
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np

__all__ = ["main", "run_checks", "run_speed"]


# -- float64 references ------------------------------------------------------------------------
def _reference(h: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray], nodes: np.ndarray,
               codes: np.ndarray, target: np.ndarray):
    """float64 ``-log p(target | h)`` per row and the gradients of their sum with respect to
    ``h``, ``weight`` and ``bias``: ``h[N, D]``, tables ``[V, L]`` -> ``([N], [N, D], [V-1, D],
    [V-1] or None)``."""
    nll, gh, gw = np.zeros(len(target)), np.zeros_like(h), np.zeros_like(weight)
    gb = np.zeros(weight.shape[0]) if bias is not None else None
    for i, t in enumerate(target):
        for n, c in zip(nodes[t], codes[t]):
            if c < 0:
                break
            z = h[i] @ weight[n] + (bias[n] if bias is not None else 0.0)
            s = 1.0 if c == 1 else -1.0
            nll[i] += np.logaddexp(0.0, -s * z)  # softplus(-s z)
            coef = -s / (1.0 + np.exp(s * z))  # d softplus(-s z) / dz = -s sigmoid(-s z)
            gh[i] += coef * weight[n]
            gw[n] += coef * h[i]
            if gb is not None:
                gb[n] += coef
    return nll, gh, gw, gb


def _close(a, b, tol: float) -> float:
    """Largest error relative to ``max(1, |b|)``; the check passes when it is below ``tol``."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(1.0, np.abs(b)))) if a.size else 0.0


# -- the checks --------------------------------------------------------------------------------
def _layer(V: int, D: int, kind: str, seed: int, scale: float = 1.0):
    import paddle

    from .output import HierarchicalSoftmax
    from .tree import build_balanced_tree, build_huffman_tree

    counts = (1e6 / np.arange(1, V + 1)).astype(np.int64) + 1
    tree = build_huffman_tree(counts) if kind == "huffman" else build_balanced_tree(V)
    paddle.seed(seed)
    layer = HierarchicalSoftmax(D, tree)
    rng = np.random.default_rng(seed)
    layer.weight.set_value(rng.normal(0, scale, layer.weight.shape).astype("float32"))
    layer.bias.set_value(rng.normal(0, 0.5, layer.bias.shape).astype("float32"))
    return layer, tree, counts


def run_checks(seed: int = 0) -> List[Dict[str, object]]:
    """Every exactness check on the current device: a list of ``{check, tree, error, tol, ok}``."""
    import paddle
    import paddle.nn.functional as F

    results: List[Dict[str, object]] = []

    def record(name: str, kind: str, error: float, tol: float) -> None:
        results.append({"check": name, "tree": kind, "error": error, "tol": tol, "ok": bool(error <= tol)})

    rng = np.random.default_rng(seed)
    V, D, N = 300, 16, 64
    for kind in ("huffman", "balanced"):
        layer, tree, counts = _layer(V, D, kind, seed)
        w, b = layer.weight.numpy().astype(np.float64), layer.bias.numpy().astype(np.float64)
        h_np = rng.normal(0, 0.5, (N, D))
        t_np = rng.choice(V, size=N, p=counts / counts.sum())
        h = paddle.to_tensor(h_np.astype("float32"), stop_gradient=False)
        t = paddle.to_tensor(t_np)
        # nll (+ ignore_index), then the gradients of its sum
        ignored = t_np.copy()
        ignored[::7] = layer.ignore_index
        nll = layer(h, paddle.to_tensor(ignored))
        ours, gh, gw, gb = _reference(h_np, w, b, tree.path_nodes, tree.path_codes, t_np)
        ref = ours.copy()
        ref[::7] = 0.0
        record("nll", kind, _close(nll.numpy(), ref, 1e-4), 1e-4)
        h.clear_gradient()
        layer.clear_gradients()
        layer(h, t).sum().backward()
        record("gradient", kind, max(_close(h.grad.numpy(), gh, 1e-4), _close(layer.weight.grad.numpy(), gw, 1e-4),
                                     _close(layer.bias.grad.numpy(), gb, 1e-4)), 1e-4)
        with paddle.no_grad():
            full = layer.full_log_prob(h)  # (N, V)
            lse = paddle.logsumexp(full, axis=-1).numpy()
            record("normalised", kind, float(np.abs(lse).max()), 1e-4)
            lp = layer.log_prob(h, t).numpy()
            record("log_prob", kind, _close(lp, np.take_along_axis(full.numpy(), t_np[:, None], 1)[:, 0], 1e-4), 1e-4)
            worst = 0.0
            for k in (1, 5, 10):
                values, ids = layer.predict(h, k)
                dense_v, _ = paddle.topk(full, k)
                worst = max(worst, _close(values.numpy(), dense_v.numpy(), 1e-5))
                # ids must score what they claim (exact up to ties)
                got = np.take_along_axis(full.numpy(), ids.numpy(), 1)
                worst = max(worst, _close(got, dense_v.numpy(), 1e-5))
            record("predict", kind, worst, 1e-5)
        if hasattr(layer, "sample"):
            record("sample", kind, _sample_check(layer, D, seed), 1.0)
        if paddle.device.get_device() == "cpu":
            info = tree.to_paddle_hsigmoid()
            with paddle.no_grad():
                builtin = F.hsigmoid_loss(
                    h, t, V, layer.weight, bias=layer.bias.unsqueeze(-1),
                    path_table=paddle.gather(paddle.to_tensor(info["path_table"]), t),
                    path_code=paddle.gather(paddle.to_tensor(info["path_code"]), t),
                ).reshape([-1]).numpy()
            pads = (tree.path_codes[t_np] < 0).sum(axis=1)
            record("builtin", kind, _close(builtin, ours + math.log(2) * pads, 1e-4), 1e-4)
    return results


def _sample_check(layer, D: int, seed: int) -> float:
    """``1e-3 / p`` of a chi-square test of 20,000 draws for one hidden state against
    ``exp(full_log_prob)`` (pass: ``<= 1``, i.e. p >= 0.001), over the 50 most likely words
    plus one bin for the rest."""
    import paddle
    from scipy.stats import chisquare

    h = paddle.to_tensor(np.random.default_rng(seed + 1).normal(0, 0.3, (1, D)).astype("float32"))
    draws = 20_000
    with paddle.no_grad():
        p = np.exp(layer.full_log_prob(h).numpy()[0].astype(np.float64))
        ids = layer.sample(h.expand([draws, D])).numpy().reshape(-1)
    top = np.argsort(-p)[:50]
    observed = np.append(np.bincount(ids, minlength=p.size)[top], 0)
    observed[-1] = draws - observed[:-1].sum()
    expected = np.append(p[top], max(1.0 - p[top].sum(), 0.0)) * draws
    expected *= draws / expected.sum()
    pvalue = chisquare(observed, expected).pvalue
    return float(1e-3 / max(pvalue, 1e-300))


# -- speed -------------------------------------------------------------------------------------
def _median_ms(step: Callable[[], object], budget_s: float, max_reps: int = 50) -> float:
    step()  # warm-up (kernel build, allocator)
    times = []
    start = time.perf_counter()
    while not times or (time.perf_counter() - start < budget_s and len(times) < max_reps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def run_speed(sizes: Sequence[int] = (10_000, 100_000, 1_000_000), B: int = 1024, D: int = 128,
              budget_s: float = 1.0, seed: int = 0) -> List[Dict[str, object]]:
    """fwd+bwd and predict timings (ms, medians) per vocabulary size on the current device."""
    import paddle
    import paddle.nn.functional as F

    from .output import HierarchicalSoftmax
    from .tree import build_huffman_tree

    cpu = paddle.device.get_device() == "cpu"
    rows = []
    rng = np.random.default_rng(seed)
    for V in sizes:
        counts = (1e9 / np.arange(1, V + 1)).astype(np.int64) + 1
        tree = build_huffman_tree(counts)
        layer = HierarchicalSoftmax(D, tree, sparse=True, check_targets=False)
        target = paddle.to_tensor(rng.choice(V, size=B, p=counts / counts.sum()))
        h = paddle.randn([B, D])
        h.stop_gradient = False
        row: Dict[str, object] = {"V": V, "B": B, "D": D, "ms": {}}

        def ours():
            layer(h, target).sum().backward()
            layer.clear_gradients()

        row["ms"]["hsoftmax fwd+bwd"] = _median_ms(ours, budget_s)
        if cpu:
            info = tree.to_paddle_hsigmoid()
            table, code = paddle.to_tensor(info["path_table"]), paddle.to_tensor(info["path_code"])

            def builtin():
                F.hsigmoid_loss(h, target, V, layer.weight, bias=layer.bias.unsqueeze(-1), path_table=paddle.gather(table, target),
                                path_code=paddle.gather(code, target)).sum().backward()
                layer.clear_gradients()

            row["ms"]["builtin hsigmoid fwd+bwd"] = _median_ms(builtin, budget_s)
        if V <= 10_000:
            full_w = paddle.create_parameter([D, V], "float32")

            def full():
                F.cross_entropy(paddle.matmul(h, full_w), target.unsqueeze(-1)).sum().backward()
                full_w.clear_gradient()

            row["ms"]["full softmax fwd+bwd"] = _median_ms(full, budget_s)
        if V <= 10_000:  # the dense pass takes ~10 s at V = 1e5 on 2 CPU cores
            with paddle.no_grad():
                row["ms"]["predict k=5"] = _median_ms(lambda: layer.predict(h, 5), budget_s)
                row["ms"]["topk(full_log_prob) k=5"] = _median_ms(
                    lambda: paddle.topk(layer.full_log_prob(h), 5), budget_s)
        h.clear_gradient()
        rows.append(row)
    return rows


# -- command -----------------------------------------------------------------------------------
def _format_speed(rows: List[Dict[str, object]]) -> str:
    names = []
    for r in rows:
        names += [n for n in r["ms"] if n not in names]
    lines = [f"{'V':>9}  " + "  ".join(f"{n:>26}" for n in names)]
    for r in rows:
        cells = [f"{r['ms'][n]:>23.1f} ms" if n in r["ms"] else f"{'-':>26}" for n in names]
        lines.append(f"{r['V']:>9,}  " + "  ".join(cells))
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    warnings.filterwarnings("ignore", message="No ccache found")
    parser = argparse.ArgumentParser(prog="python -m paddle_hsoftmax.selfcheck", description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu, gpu or gpu:N")
    parser.add_argument("--no-speed", action="store_true", help="the exactness checks only")
    parser.add_argument("--sizes", default="10000,100000,1000000", help="vocabulary sizes of the speed table")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    args = parser.parse_args(argv)
    try:
        sizes = [int(float(s)) for s in args.sizes.split(",") if s.strip()]
        if not sizes or min(sizes) < 2:
            raise ValueError
    except ValueError:
        print(f"error: --sizes {args.sizes!r}: give vocabulary sizes >= 2 separated by commas", file=sys.stderr)
        return 2
    import paddle

    from .errors import UserError
    from .runtime import setup

    try:
        device = setup(args.device)  # what every training command does first
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"paddle {paddle.__version__} on {device}")
    checks = run_checks()
    for c in checks:
        print(f"  {'ok  ' if c['ok'] else 'FAIL'} {c['check']:<11} {c['tree']:<9} error {c['error']:.2e} "
              f"(tolerance {c['tol']:.0e})")
    failed = [c for c in checks if not c["ok"]]
    speed = []
    if not args.no_speed:
        speed = run_speed(sizes)
        print("speed (medians; B=1024, D=128, Huffman tree over Zipf counts, random weights):")
        print(_format_speed(speed))
    print(f"{len(checks) - len(failed)}/{len(checks)} checks passed" + ("" if not failed else
          ": FAILED " + ", ".join(f"{c['check']}/{c['tree']}" for c in failed)))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"paddle": paddle.__version__, "device": device, "checks": checks, "speed": speed}, f, indent=2)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
