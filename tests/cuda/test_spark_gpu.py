"""SparkTrainer(use_gpu=True), checked without a GPU: which CUDA device a task picks from the
GPU Spark assigned it, the errors when it has none or cannot use CUDA, and a worker's model,
steps and weight exchange on a (stand-in) GPU giving the CPU's numbers."""
import types

import numpy as np
import pytest

import pyfront as pf
from pyfront import errors, nn
from pyfront.backend import cuda

pytest.importorskip("pyspark", reason="pyspark (the [spark] extra) is not installed")
from pyfront.spark import worker  # noqa: E402


def _task(*addresses):
    """A TaskContext stand-in whose task was granted these GPU addresses (none: no resource)."""
    resources = {"gpu": types.SimpleNamespace(addresses=list(addresses))} if addresses else {}
    return types.SimpleNamespace(resources=lambda: resources)


@pytest.fixture
def two_gpus(monkeypatch):
    monkeypatch.setattr(cuda, "is_available", lambda: True)
    monkeypatch.setattr(cuda, "device_count", lambda: 2)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def test_cpu_tasks_never_look_for_a_gpu():
    assert worker.task_device(False, ctx=_task()) == "cpu"


def test_task_trains_on_the_gpu_spark_assigned(two_gpus):
    assert worker.task_device(True, ctx=_task("1")) == "cuda:1"
    assert worker.task_device(True, ctx=_task("0", "1")) == "cuda:0"


def test_address_is_its_position_among_the_executors_visible_gpus(two_gpus, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert worker.task_device(True, ctx=_task("3")) == "cuda:1"
    with pytest.raises(errors.DeviceError, match=r"Spark assigned GPU 0, but this executor sees "
                       r"only CUDA_VISIBLE_DEVICES=2,3"):
        worker.task_device(True, ctx=_task("0"))


def test_task_without_a_gpu_names_the_spark_settings(two_gpus):
    with pytest.raises(errors.DeviceError, match=r"use_gpu=True\): Spark assigned this task no "
                       r"GPU; give executors and tasks GPUs with "
                       r"spark.executor.resource.gpu.amount, "
                       r"spark.executor.resource.gpu.discoveryScript and "
                       r"spark.task.resource.gpu.amount"):
        worker.task_device(True, ctx=_task())


def test_address_beyond_the_visible_devices_or_not_an_index(two_gpus):
    with pytest.raises(errors.DeviceError, match=r"assigned GPU 5 \(CUDA device 5\), but this "
                       r"executor's Python sees 2 CUDA device\(s\)"):
        worker.task_device(True, ctx=_task("5"))
    with pytest.raises(errors.DeviceError, match=r"GPU address 'GPU-1a2b', which is not a CUDA "
                       r"device index"):
        worker.task_device(True, ctx=_task("GPU-1a2b"))


def test_executor_without_cuda_says_why(monkeypatch):
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(cuda, "is_available", lambda: False)
    monkeypatch.setattr(cuda, "why_not", lambda: "CuPy is not installed (...)")
    with pytest.raises(errors.DeviceError, match=r"Spark assigned GPU 0, but CUDA is not usable "
                       r"in this executor's Python: CuPy is not installed \(\.\.\.\)"):
        worker.task_device(True, ctx=_task("0"))


def _spec(model, strategy):
    from pyfront.spark.common import TensorLayout, model_to_bytes

    state = model.state_dict()
    names = [n for n, _ in model.named_parameters()]
    return worker.RunSpec(
        run_id="r", model_bytes=model_to_bytes(model, (4,)), input_shapes=[(4,)],
        label_kinds=["class"], loss="sparse_categorical_crossentropy", loss_weights=None,
        metric_specs=[], optimizer_spec=(pf.optim.SGD, {"lr": 0.1}), strategy=strategy,
        batch_size=8, seed=0, weight_layout=TensorLayout(list(state.items())), grad_names=names,
        opt_layout=None, compiled=False, use_gpu=True)


@pytest.mark.parametrize("strategy", ["sync", "average"])
def test_worker_run_on_a_gpu_gives_the_cpus_numbers(fake_gpu, strategy):
    """Weights in (host -> GPU), a step on the GPU, weights and gradients out (GPU -> host)."""
    pf.random.seed(0)
    model = nn.Sequential([nn.Dense(6, activation="relu", in_features=4),
                           nn.Dense(3, in_features=6)])
    spec = _spec(model, strategy)
    rng = np.random.default_rng(1)
    xs, ys = [rng.standard_normal((8, 4)).astype(np.float32)], [rng.integers(0, 3, 8)]
    weights = spec.weight_layout.pack(model.state_dict()) * 0.5
    results = []
    for device in ("cpu", "cuda:1"):
        run = worker._Run(spec)
        run.use_device(device)
        assert {t.device for t in run.tensors.values()} == {device}
        run.load_weights(weights)
        if strategy == "sync":
            loss, grads, _ = run.gradients(xs, ys)
            results.append([loss] + [np.asarray(g) for g in grads])
        else:
            loss, _ = run.train_step(xs, ys)
            results.append([loss] + [run.host(n) for n in spec.weight_layout.names])
    for cpu_value, gpu_value in zip(*results):
        np.testing.assert_allclose(gpu_value, cpu_value, rtol=1e-6)
    assert fake_gpu and {scope for _, _, scope in fake_gpu} == {"cuda:1"}

