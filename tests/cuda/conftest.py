"""Fixtures of the CUDA tests: `gpu` skips (saying why) where no GPU can be used; tests that need
none (the build, the error paths) run everywhere."""
import pytest

import pyfront as pf


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
