"""Fixtures of the CUDA tests: `gpu` skips (saying why) where no GPU can be used; tests that need
none (the build, the error paths) run everywhere; `fake_gpu` stands in for GPUs where the
device routing (which memory goes where) is what a test checks."""
import contextlib
import types

import numpy as np
import pytest

import pyfront as pf
from pyfront.backend import cuda
from pyfront.ops import core


@pytest.fixture(scope="session")
def gpu():
    """CuPy, on a machine where pyfront's CUDA backend works; else the test is skipped with the
    reason (no GPU is present, no driver, no CuPy...)."""
    if not pf.cuda.is_available():
        pytest.skip("no GPU is present or usable: %s" % pf.cuda.why_not())
    import cupy

    return cupy


@pytest.fixture
def poisoned(gpu, monkeypatch):
    """Every array the CUDA backend allocates for an op's outputs starts as NaN (floats) or a
    sentinel (integers, bools): an element a kernel forgets to write shows in the result."""
    from pyfront.backend import cuda

    def empty(shape, dtype):
        if dtype.is_float:
            return gpu.full(shape, float("nan"), dtype=dtype.np)
        if dtype.is_bool:
            return gpu.full(shape, True, dtype=dtype.np)
        return gpu.full(shape, -7777777, dtype=dtype.np)

    monkeypatch.setattr(cuda, "empty", empty)
    return gpu


class _FakeGpuMemory(np.ndarray):
    """Host memory that pyfront takes for memory of GPU `gpu_id` (with CuPy's set())."""

    gpu_id = 0

    @property
    def device(self):
        return types.SimpleNamespace(id=self.gpu_id)

    def set(self, host):
        assert type(host) is np.ndarray and host.shape == self.shape and \
            host.dtype == self.dtype and host.flags.c_contiguous, "CuPy's set() refuses it"
        self.view(np.ndarray)[...] = host


class _Gpu0(_FakeGpuMemory):
    gpu_id = 0


class _Gpu1(_FakeGpuMemory):
    gpu_id = 1


_KINDS = {"cuda": _Gpu0, "cuda:0": _Gpu0, "cuda:1": _Gpu1}


@pytest.fixture
def fake_gpu(monkeypatch):
    """Two stand-in GPUs for tests of device routing without one: tensors .to("cuda:N") hold
    host memory marked as GPU N's, and the CUDA backend's allocation, descriptors and kernels
    are the CPU's, inside cuda.device_scope (the eager path and the tape are the real ones). An
    op meeting two devices is refused as on a real GPU. Returns the log of (op, input devices,
    current device) of each op run on them."""
    log = []
    current = ["cuda:0"]

    def array_to(array, spec):
        if spec == "cpu" and type(array) is np.ndarray:
            return array
        host = np.array(array, order="C")       # a copy, as between devices (0-d kept)
        return host if spec == "cpu" else host.view(_KINDS[spec])

    @contextlib.contextmanager
    def device_scope(device):
        saved = current[0]
        current[0] = device
        try:
            yield
        finally:
            current[0] = saved

    real_run_eager = core.run_eager

    def run_eager(op, inputs, attrs, backend=core.cpu):
        if backend is cuda:
            log.append((op.name, [x.device for x in inputs], current[0]))
        return real_run_eager(op, inputs, attrs, backend)

    monkeypatch.setattr(cuda, "require", lambda what: {"count": 2, "reason": None})
    monkeypatch.setattr(cuda, "array_to", array_to)
    monkeypatch.setattr(cuda, "device_scope", device_scope)
    monkeypatch.setattr(cuda, "empty", lambda shape, dtype: np.empty(shape, dtype.np).view(
        _KINDS[current[0]]))
    monkeypatch.setattr(cuda, "Buf", core.cpu.Buf)
    monkeypatch.setattr(cuda, "Emitter", lambda op, context: core.EagerEmitter(op))
    monkeypatch.setattr(cuda, "run", core.cpu.run)
    monkeypatch.setattr(core, "run_eager", run_eager)
    return log
