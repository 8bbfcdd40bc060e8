"""Device errors on a machine without a usable GPU: each missing piece (library, driver, device,
CuPy) is its own reason, every device operation says what it needed and why it cannot have it,
and tensors of two devices meeting in one op are refused naming both."""
import numpy as np
import pytest

import pyfront as pf
from pyfront import errors
from pyfront.backend import cuda


@pytest.fixture
def fresh_probe(monkeypatch):
    """The backend probes again (under the test's monkeypatches) and forgets it afterwards."""
    saved, saved_ids = dict(cuda._state), dict(cuda._kernel_ids)
    cuda._state.clear()
    yield
    cuda._state.clear()
    cuda._state.update(saved)
    cuda._kernel_ids.clear()
    cuda._kernel_ids.update(saved_ids)


@pytest.fixture
def no_gpu():
    if pf.cuda.is_available():
        pytest.skip("a GPU is usable here: the no-GPU error paths cannot be seen")
    return pf.cuda.why_not()


class FakeLibrary:
    """Stands in for libpyfront_cuda.so: reports a device count or a CUDA error."""

    def __init__(self, ffi, count=1, error=None):
        self.ffi, self.count, self.error = ffi, count, error
        self._message = ffi.new("char[]", (error or "").encode())

    def pf_cuda_abi_version(self):
        return cuda.ABI_VERSION

    def pf_cuda_device_count(self, out):
        out[0] = 0 if self.error else self.count
        return 9 if self.error else 0

    def pf_cuda_last_error(self):
        return self._message


def _fake(monkeypatch, **kwargs):
    import cffi

    ffi = cffi.FFI()
    ffi.cdef(cuda.header_cdef(cuda.header_path()))
    monkeypatch.setattr(cuda, "library_path", lambda: __file__)   # exists
    monkeypatch.setattr(cuda, "_open_library", lambda path: (ffi, FakeLibrary(ffi, **kwargs)))


def test_import_needs_no_gpu_and_why_not_is_a_sentence(no_gpu):
    assert pf.cuda.is_available() is False
    assert pf.cuda.device_count() == 0
    assert isinstance(no_gpu, str) and len(no_gpu) > 20
    with pytest.raises(errors.DeviceError, match="pf.cuda.synchronize\\(\\) needs CUDA, which "
                       "is not available: " + _re(no_gpu)):
        pf.cuda.synchronize()


def _re(text):
    import re

    return re.escape(text)


def test_reason_no_library(monkeypatch, fresh_probe, tmp_path):
    missing = str(tmp_path / "libpyfront_cuda.so")
    monkeypatch.setenv("PYFRONT_CUDA_LIBRARY", missing)
    assert not pf.cuda.is_available()
    assert pf.cuda.why_not() == (
        "pyfront was installed without its CUDA library (%s is missing: nvcc was not found "
        "when pyfront was built; install the CUDA toolkit and reinstall pyfront)" % missing)


def test_reason_library_that_does_not_load(monkeypatch, fresh_probe, tmp_path):
    bogus = tmp_path / "libpyfront_cuda.so"
    bogus.write_bytes(b"not an ELF file")
    monkeypatch.setenv("PYFRONT_CUDA_LIBRARY", str(bogus))
    assert pf.cuda.why_not().startswith("the CUDA library %s could not be loaded: " % bogus)


def test_reason_no_driver(monkeypatch, fresh_probe):
    _fake(monkeypatch, error="counting CUDA devices: CUDA error cudaErrorInsufficientDriver "
          "(CUDA driver version is insufficient for CUDA runtime version)")
    assert pf.cuda.why_not() == (
        "no usable NVIDIA driver (counting CUDA devices: CUDA error cudaErrorInsufficientDriver "
        "(CUDA driver version is insufficient for CUDA runtime version)): a driver for CUDA 13 "
        "or later is needed (the library was built with CUDA 13)")


def test_reason_no_device(monkeypatch, fresh_probe):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    _fake(monkeypatch, error="counting CUDA devices: CUDA error cudaErrorNoDevice (no CUDA-"
          "capable device is detected)")
    assert pf.cuda.why_not() == (
        "no CUDA device is visible (counting CUDA devices: CUDA error cudaErrorNoDevice (no "
        "CUDA-capable device is detected)) (CUDA_VISIBLE_DEVICES='')")
    assert pf.cuda.device_count() == 0


def test_reason_no_cupy(monkeypatch, fresh_probe):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "cupy" else real(name, *a))
    _fake(monkeypatch, count=2)
    assert pf.cuda.why_not() == ("CuPy is not installed (pyfront's GPU memory comes from CuPy's "
                                 "pool): pip install 'pyfront[cuda]'")
    with pytest.raises(errors.DeviceError, match="moving a tensor to cuda needs CUDA, which is "
                       "not available: CuPy is not installed"):
        pf.tensor([1.0, 2.0], device="cuda")


def test_real_library_here_names_the_driver_or_device(no_gpu):
    """On this machine the reason is the first thing really missing, whichever it is."""
    assert any(key in no_gpu for key in ("CUDA library", "NVIDIA driver", "CUDA device",
                                         "CuPy", "cuBLAS")), no_gpu


def test_every_device_operation_names_what_it_needed(no_gpu, torch):
    x = pf.tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    cases = [
        (lambda: pf.tensor([1.0], device="cuda"), "moving a tensor to cuda"),
        (lambda: pf.tensor([1.0], device="cuda:1"), "moving a tensor to cuda:1"),
        (lambda: x.to("cuda"), "moving a tensor to cuda"),
        (lambda: pf.nn.Dense(3, in_features=3).to("cuda"), "moving a tensor to cuda"),
        # no weights yet (they take their shape from the first input): refused all the same,
        # not left to be made on the CPU later
        (lambda: pf.nn.Sequential([pf.nn.Dense(3)]).to("cuda"), "moving a tensor to cuda"),
    ]
    for call, what in cases:
        with pytest.raises(errors.DeviceError) as info:
            call()
        assert str(info.value) == "%s needs CUDA, which is not available: %s" % (what, no_gpu)


def test_from_dlpack_of_cuda_memory_without_a_gpu(no_gpu):
    class CudaCapsuleOwner:
        def __dlpack_device__(self):
            return (2, 0)   # kDLCUDA, device 0

        def __dlpack__(self, **kwargs):
            raise AssertionError("must not be reached without a GPU")

    with pytest.raises(errors.DeviceError, match="pf.from_dlpack of CUDA memory needs CUDA"):
        pf.from_dlpack(CudaCapsuleOwner())


def test_bad_device_names_are_refused():
    with pytest.raises(ValueError, match="unknown device 'cuda:x': use 'cpu', 'cuda' or 'cuda:N'"):
        pf.tensor([1.0], device="cuda:x")
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        pf.tensor([1.0], device="tpu")


def test_cpu_device_is_a_no_op_and_dtype_conversion_still_works():
    x = pf.tensor([1.5, 2.5], requires_grad=True)
    assert x.device == "cpu"
    assert x.to("cpu") is x and x.cpu() is x
    assert pf.tensor([1.0], device="cpu").device == "cpu"
    y = x.to("float64")
    assert y.dtype is pf.float64 and y.numpy().tolist() == [1.5, 2.5]
    model = pf.nn.Dense(2, in_features=3)
    assert model.to("cpu") is model


def test_dlpack_shares_cpu_memory_both_ways(torch):
    t = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    x = pf.from_dlpack(t)
    assert x.shape == (2, 3) and x.dtype is pf.float32 and x.device == "cpu"
    t[0, 1] = 42.0                         # one memory: the write shows through pyfront
    assert x.numpy()[0, 1] == 42.0
    back = torch.from_dlpack(x)
    x.numpy()[1, 2] = -1.0
    assert back[1, 2].item() == -1.0
    assert (pf.relu(x).numpy() == np.maximum(t.numpy(), 0)).all()


class FakeDeviceArray:
    """What a tensor in GPU memory looks like to the dispatch point (a CuPy array's device,
    shape and dtype) without a GPU."""

    def __init__(self, shape, dtype, device=0):
        self.shape, self.dtype, self.ndim = shape, np.dtype(dtype), len(shape)
        self.device = type("Device", (), {"id": device})()
        self.size = int(np.prod(shape))


def _on_fake_device(shape, device=0):
    return pf.Tensor._wrap(FakeDeviceArray(shape, "float32", device), pf.float32)


def test_mixed_devices_name_both_inputs_devices():
    x = pf.tensor(np.ones((2, 3), np.float32))
    g = _on_fake_device((2, 3))
    assert g.device == "cuda:0"
    with pytest.raises(errors.DeviceError) as info:
        pf.add(x, g)
    message = str(info.value)
    assert message.startswith("add: inputs on different devices (")
    assert "on cpu" in message and "on cuda:0" in message, message
    with pytest.raises(errors.DeviceError, match="matmul: inputs on different devices .*cuda:1.*"
                       "cuda:0"):
        pf.matmul(_on_fake_device((2, 3), 1), _on_fake_device((3, 2), 0))


def test_mixed_devices_inside_a_layer_name_the_layer():
    g = _on_fake_device((4, 3))
    dense = pf.nn.Dense(2, in_features=3)
    with pytest.raises(errors.DeviceError, match="in layer 'dense.*on cuda:0.*on cpu|in layer "
                       "'dense.*on cpu.*on cuda:0"):
        dense(g)


def test_numpy_of_a_device_tensor_says_to_copy_first():
    with pytest.raises(errors.DeviceError, match="numpy\\(\\): the tensor is on cuda:0; copy it "
                       "to the host first with t.cpu\\(\\).numpy\\(\\)"):
        _on_fake_device((2,)).numpy()


def test_implicit_numpy_conversion_of_a_device_tensor_is_refused():
    with pytest.raises(errors.DeviceError, match="numpy\\(\\): the tensor is on cuda:0"):
        np.asarray(_on_fake_device((3,)))
