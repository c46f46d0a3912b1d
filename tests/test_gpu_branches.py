"""The GPU branches, run on this CPU-only machine with Paddle's device queries replaced by mocks:
what the package chooses and predicts when it believes it is on a GPU. (No GPU can run Paddle in
this project; these tests check the decisions, not CUDA kernels.)"""

import types

import paddle
import pytest

from paddle_hsoftmax import fused, runtime
from paddle_hsoftmax.errors import ConfigError
from paddle_hsoftmax.output import base
from paddle_hsoftmax.output.hsoftmax import HierarchicalSoftmax
from paddle_hsoftmax.tasks.word2vec import Word2VecTask
from paddle_hsoftmax.tree import build_huffman_tree

GiB = 2**30


@pytest.fixture
def on_gpu(monkeypatch):
    """``paddle.get_device()`` says ``gpu:1``; the device has 8 GiB, of which Paddle reserved 1."""
    calls = []
    monkeypatch.setattr(paddle.device, "get_device", lambda: "gpu:1")
    monkeypatch.setattr(paddle, "get_device", lambda: "gpu:1")
    monkeypatch.setattr(paddle.device.cuda, "get_device_properties",
                        lambda index: calls.append(index) or types.SimpleNamespace(total_memory=8 * GiB))
    monkeypatch.setattr(paddle.device.cuda, "memory_reserved", lambda index: 1 * GiB)
    return calls


def test_gpu_memory_is_the_devices_total_minus_what_paddle_reserved(on_gpu):
    free, source = base.available_memory()
    assert free == 7 * GiB and source == "gpu:1 total - reserved"
    assert on_gpu == [1]  # the device's own index, not device 0
    base.check_memory(6 * GiB, "a table")  # fits: nothing raised
    with pytest.raises(base.MemoryBudgetError, match=r"a table needs about 8\.0 GiB but 7\.0 GiB is available "
                                                     r"\(gpu:1 total - reserved\); use smaller batches"):
        base.check_memory(8 * GiB, "a table", "use smaller batches")


def test_gpu_memory_unknown_checks_nothing(on_gpu, monkeypatch):
    def broken(index):
        raise RuntimeError("no driver")

    monkeypatch.setattr(paddle.device.cuda, "get_device_properties", broken)
    assert base.available_memory() == (None, "gpu:1: free memory unknown")
    base.check_memory(10**15, "a huge table")  # unknown free memory: the allocation is left to Paddle


def test_the_layer_never_picks_the_cpu_kernel_on_a_gpu(on_gpu, monkeypatch):
    tree = build_huffman_tree([50, 30, 10, 5, 3, 2])
    layer = HierarchicalSoftmax(8, tree)
    hidden = paddle.randn([4, 8])
    monkeypatch.setattr(fused, "load_hsoftmax_kernel", lambda: pytest.fail("the CPU kernel was loaded on a GPU"))
    assert layer.kernel == "auto" and not layer._use_fused(hidden)


def test_the_layer_picks_the_fused_kernel_on_the_cpu_when_it_builds(monkeypatch):
    tree = build_huffman_tree([50, 30, 10, 5, 3, 2])
    layer = HierarchicalSoftmax(8, tree)
    monkeypatch.setattr(fused, "load_hsoftmax_kernel", lambda: object())
    assert layer._use_fused(paddle.randn([4, 8]))  # the same call as above, on the CPU: the kernel
    monkeypatch.setattr(fused, "load_hsoftmax_kernel", lambda: None)
    assert not layer._use_fused(paddle.randn([4, 8]))  # no compiler: the Paddle path


def test_word2vec_takes_the_paddle_path_on_a_gpu_and_refuses_the_fused_kernel_there(on_gpu):
    def task(kernel):
        # the task takes Paddle's current device when Paddle is loaded (here: the patched GPU)
        return types.SimpleNamespace(config=types.SimpleNamespace(kernel=kernel), world=1, device=paddle.get_device())

    assert Word2VecTask._choose_kernel(task("auto")) == "paddle"
    with pytest.raises(ConfigError, match="--kernel fused runs in a single CPU process"):
        Word2VecTask._choose_kernel(task("fused"))


def test_device_gpu_selects_the_gpu_and_leaves_the_cpu_tuning_alone(monkeypatch):
    chosen, tuned = [], []
    monkeypatch.setattr(paddle.device, "is_compiled_with_cuda", lambda: True)
    monkeypatch.setattr(paddle, "set_device", lambda name: chosen.append(name) or f"Place({name})")
    monkeypatch.setattr(runtime, "tune_malloc", lambda: tuned.append("malloc"))
    monkeypatch.setattr(runtime, "set_cpu_threads", lambda n: tuned.append("threads"))
    assert runtime.setup("GPU:1") == "Place(gpu:1)"
    assert chosen == ["gpu:1"] and tuned == []
    assert runtime.setup("cpu") == "Place(cpu)" and tuned == ["malloc", "threads"]
    with pytest.raises(ConfigError, match="--device must be cpu, gpu or gpu:N, got 'cuda'"):
        runtime.setup("cuda")
