"""The CUDA backend: libpyfront_cuda.so (native/cuda, the C library's twin) on CuPy's memory.

Importing this module touches no GPU and imports no CuPy. The first use probes, in order, the
library (built by `pip install .` where nvcc exists), the NVIDIA driver, a device, CuPy and
cuBLAS; the first that is missing is the reason why_not() gives and every device operation's
DeviceError repeats. Kernels run on CuPy's current stream, asynchronously: errors that only the
data shows (an index out of range) surface at synchronize() (or after every kernel with
PYFRONT_DEBUG=1), naming the kernel.
"""
import contextlib
import importlib.util
import os
import re
import threading

from .. import errors
from .._native import ffi as native_ffi
from . import cpu

__all__ = ["is_available", "why_not", "device_count", "synchronize", "require", "parse_device",
           "is_device", "device_scope", "array_to", "copy_from_host", "array_from_dlpack",
           "device_of", "Buf", "Emitter", "empty", "run", "kernel_id", "kernel_names",
           "run_steps", "graph_capture", "graph_launch", "graph_destroy", "library_path",
           "header_path", "header_cdef", "Plan", "Graph", "ABI_VERSION"]

# The ABI of the CUDA section of native/include/pyfront.h this code was written for
# (PF_CUDA_ABI_VERSION).
ABI_VERSION = 1
LIBRARY_NAME = "libpyfront_cuda.so"
_SECTION = re.compile(r"^#ifdef PF_CUDA_API$(.*?)^#endif /\* PF_CUDA_API \*/$", re.S | re.M)


def header_path():
    """The ABI header the CUDA library was built from: installed beside the package by a wheel
    build (pyfront/include/pyfront.h), else the checkout's native/include/pyfront.h."""
    import pyfront._native as native

    installed = os.path.join(os.path.dirname(native.__file__), "include", "pyfront.h")
    return installed if os.path.exists(installed) else os.path.join(cpu.include_dir(),
                                                                    "pyfront.h")


def header_cdef(path):
    """The header's CUDA section as cffi's cdef (ABI mode): comments, preprocessor lines and
    the PF_CUDA_API visibility mark dropped. Descriptors (pf_args, pf_step) are made by the C
    library's ffi (backend.cpu.new_args), so pointers to them cross as void pointers."""
    with open(path, encoding="utf-8") as f:
        section = _SECTION.search(f.read())
    if section is None:
        raise errors.PyfrontError("%s has no CUDA section (#ifdef PF_CUDA_API ... #endif /* "
                                  "PF_CUDA_API */)" % path)
    body = re.sub(r"/\*.*?\*/", "", section.group(1), flags=re.S)
    body = "\n".join(line for line in body.splitlines() if not line.lstrip().startswith("#"))
    body = re.sub(r"\bPF_CUDA_API\s+", "", body)
    return re.sub(r"\bpf_(args|step)\s*\*", "void *", body)


_STATUS_ERRORS = {1: errors.NativeError, 2: errors.ShapeError, 3: errors.DTypeError,
                  4: errors.IndexOutOfRange, 5: errors.NumericError, 6: MemoryError,
                  7: errors.NativeError, 8: errors.NativeError, 9: errors.NativeError}

_lock = threading.Lock()
_state = {}          # filled once by _probe(): lib, ffi, cupy, reason, count
_kernel_ids = {}


def library_path():
    """Where the CUDA library is looked for: PYFRONT_CUDA_LIBRARY, else beside pyfront's C
    library (pyfront/libpyfront_cuda.so)."""
    override = os.environ.get("PYFRONT_CUDA_LIBRARY")
    if override:
        return override
    import pyfront._native as native

    return os.path.join(os.path.dirname(native.__file__), LIBRARY_NAME)


def _cublas_candidates():
    """libcublas from the nvidia wheels (CUDA 13: nvidia/cu13/lib; CUDA 12: nvidia/cublas/lib),
    then the sonames the system loader finds (CuPy may have loaded one already)."""
    override = os.environ.get("PYFRONT_CUBLAS")
    if override:
        return [override]
    found = []
    spec = importlib.util.find_spec("nvidia")
    for root in (spec.submodule_search_locations or []) if spec else []:
        for sub, name in (("cu13/lib", "libcublas.so.13"), ("cublas/lib", "libcublas.so.13"),
                          ("cublas/lib", "libcublas.so.12")):
            path = os.path.join(root, sub, name)
            if os.path.exists(path):
                found.append(path)
    return found + ["libcublas.so.13", "libcublas.so.12"]


def _probe():
    """Load and check everything once; the first thing missing becomes the reason."""
    if _state:
        return _state
    with _lock:
        if _state:
            return _state
        result = {"lib": None, "ffi": None, "cupy": None, "count": 0, "reason": None}
        result["reason"] = _probe_into(result)
        _state.update(result)
    return _state


def _open_library(path):
    """(ffi, lib) of the CUDA library at path; OSError if the loader refuses it."""
    import cffi

    ffi = cffi.FFI()
    ffi.cdef(header_cdef(header_path()))
    return ffi, ffi.dlopen(path)


def _probe_into(result):
    path = library_path()
    if not os.path.exists(path):
        return ("pyfront was installed without its CUDA library (%s is missing: nvcc was not "
                "found when pyfront was built; install the CUDA toolkit and reinstall pyfront)"
                % path)
    try:
        ffi, lib = _open_library(path)
    except (OSError, errors.PyfrontError) as e:   # refused by the loader; no header beside it
        return "the CUDA library %s could not be loaded: %s" % (path, e)
    built = lib.pf_cuda_abi_version()
    if built != ABI_VERSION:
        return ("the CUDA library %s was built for CUDA ABI version %d, but this pyfront expects "
                "version %d: the build is stale (reinstall pyfront)" % (path, built, ABI_VERSION))
    count = ffi.new("int *")
    if lib.pf_cuda_device_count(count) != 0:
        message = ffi.string(lib.pf_cuda_last_error()).decode("utf-8", "replace")
        if "cudaErrorNoDevice" in message:
            return "no CUDA device is visible (%s)%s" % (message, _visible_devices_note())
        return ("no usable NVIDIA driver (%s): a driver for CUDA 13 or later is needed (the "
                "library was built with CUDA 13)" % message)
    if count[0] == 0:
        return "no CUDA device is visible%s" % _visible_devices_note()
    if importlib.util.find_spec("cupy") is None:
        return ("CuPy is not installed (pyfront's GPU memory comes from CuPy's pool): "
                "pip install 'pyfront[cuda]'")
    try:
        import cupy
    except ImportError as e:   # a CuPy for another CUDA major version, a broken install
        return "CuPy could not be imported (%s): pip install 'pyfront[cuda]'" % e
    for candidate in _cublas_candidates():
        if lib.pf_cuda_load_cublas(candidate.encode()) == 0:
            break
    else:
        return ("cuBLAS could not be loaded (%s): pip install 'pyfront[cuda]' brings the "
                "nvidia-cublas wheel, or set PYFRONT_CUBLAS to a libcublas.so"
                % ffi.string(lib.pf_cuda_last_error()).decode("utf-8", "replace"))
    if os.environ.get("PYFRONT_DEBUG", "0") not in ("", "0"):
        lib.pf_cuda_set_debug(1)
    lib.pf_cuda_set_tf32(1 if os.environ.get("PYFRONT_CUDA_TF32", "0") == "1" else 0)
    for i in range(lib.pf_cuda_kernel_count()):
        _kernel_ids[ffi.string(lib.pf_cuda_kernel_name(i)).decode()] = i
    result.update(lib=lib, ffi=ffi, cupy=cupy, count=count[0])
    return None


def _visible_devices_note():
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    return "" if visible is None else " (CUDA_VISIBLE_DEVICES=%r)" % visible


def is_available():
    """True when tensors can live on a GPU: library, driver, device, CuPy and cuBLAS found."""
    return _probe()["reason"] is None


def why_not():
    """Why is_available() is False, in one sentence; None when it is True."""
    return _probe()["reason"]


def require(what):
    """The loaded state, or a DeviceError saying that `what` needs a GPU and why there is none."""
    state = _probe()
    if state["reason"] is not None:
        raise errors.DeviceError("%s needs CUDA, which is not available: %s"
                                 % (what, state["reason"]))
    return state


def device_count():
    """Visible CUDA devices (0 where CUDA is not available)."""
    return _probe()["count"]


def synchronize():
    """Wait for the GPU's queued work and raise what the kernels found in the data."""
    lib = require("pf.cuda.synchronize()")["lib"]
    _set_stream()
    _check(lib.pf_cuda_synchronize(), "synchronize: ")


# ---------------------------------------------------------------------------------------------
# devices

def is_device(spec):
    """True for "cpu", "cuda", "cuda:N" (what .to() takes as a device rather than a dtype)."""
    return isinstance(spec, str) and (spec == "cpu" or spec == "cuda" or spec.startswith("cuda:"))


def parse_device(spec):
    """("cpu", None) or ("cuda", index) from "cpu", "cuda", "cuda:N"; ValueError otherwise."""
    if spec == "cpu":
        return "cpu", None
    if spec == "cuda":
        return "cuda", 0
    if isinstance(spec, str) and spec.startswith("cuda:") and spec[5:].isdigit():
        return "cuda", int(spec[5:])
    raise ValueError("unknown device %r: use 'cpu', 'cuda' or 'cuda:N'" % (spec,))


def device_of(array):
    """The device name of a tensor's memory: "cpu" for numpy, "cuda:N" for a CuPy array."""
    device = getattr(array, "device", None)
    index = getattr(device, "id", None)
    return "cpu" if index is None else "cuda:%d" % index


def device_scope(device):
    """A context in which device ("cuda:N") is CuPy's and the CUDA runtime's current device:
    eager ops on its tensors allocate their outputs and run their kernels (and cuBLAS, whose
    handles are per device) there. With one GPU there is nothing to switch."""
    state = require("running an op on %s" % device)
    if state["count"] == 1:
        return _ONE_DEVICE
    return state["cupy"].cuda.Device(parse_device(device)[1])


_ONE_DEVICE = contextlib.nullcontext()


def array_to(array, spec):
    """array (numpy or CuPy) on the device spec names: itself when it is there, else a copy."""
    kind, index = parse_device(spec)
    if kind == "cpu":
        return array if device_of(array) == "cpu" else array.get()
    state = require("moving a tensor to %s" % spec)
    if index >= state["count"]:
        raise errors.DeviceError("device %s does not exist: %d CUDA device(s) are visible"
                                 % (spec, state["count"]))
    if device_of(array) == "cuda:%d" % index:
        return array
    cupy = state["cupy"]
    with cupy.cuda.Device(index):
        return cupy.ascontiguousarray(cupy.asarray(array))


def copy_from_host(array, values):
    """Write host values (numpy, broadcast to array's shape, cast to its dtype) into array, in
    place: numpy's assignment for host memory, CuPy's set() (one copy) for GPU memory."""
    import numpy as np

    if type(array) is np.ndarray:
        array[...] = values
    else:
        array.set(np.ascontiguousarray(np.broadcast_to(values, array.shape), array.dtype))


def array_from_dlpack(obj):
    """An array sharing obj's memory through DLPack: numpy for CPU memory, CuPy for CUDA's."""
    kind = obj.__dlpack_device__()[0] if hasattr(obj, "__dlpack_device__") else 1
    if kind == 1:   # kDLCPU
        import numpy as np

        array = np.from_dlpack(obj)
    elif kind in (2, 3, 13):   # kDLCUDA, kDLCUDAHost, kDLCUDAManaged
        array = require("pf.from_dlpack of CUDA memory")["cupy"].from_dlpack(obj)
    else:
        raise errors.DeviceError("pf.from_dlpack: DLPack device type %d is neither the CPU nor "
                                 "CUDA" % kind)
    if not array.flags.c_contiguous:
        raise errors.DeviceError("pf.from_dlpack: the array is not C-contiguous (strides %s); "
                                 "tensors share only contiguous memory" % (array.strides,))
    return array


# ---------------------------------------------------------------------------------------------
# kernels

class Buf(cpu.Buf):
    """A region of a CuPy array, described to the CUDA kernels by its device address."""

    __slots__ = ()

    def pointer(self, extra_bytes=0):
        if self._ptr is None:
            self._ptr = native_ffi.cast("char *", self.array.data.ptr) + self.offset
        return self._ptr + extra_bytes if extra_bytes else self._ptr


def empty(shape, dtype):
    return _probe()["cupy"].empty(shape, dtype=dtype.np)


class Emitter:
    """The eager emitter of CUDA tensors: runs each kernel now, on the current stream."""

    def __init__(self, op, context):
        self.op = op
        self.context = context
        self.scratch_bufs = []

    def run(self, kernel, ins, outs, iattr=(), fattr=(), workspace=None):
        run(kernel, ins, outs, iattr, fattr, workspace, context=self.context)

    def scratch(self, shape, dtype):
        buf = Buf(empty(shape, dtype), shape, dtype)
        self.scratch_bufs.append(buf)
        return buf


_stream = [None]


def _set_stream():
    state = _probe()
    ptr = state["cupy"].cuda.get_current_stream().ptr
    if ptr != _stream[0]:
        state["lib"].pf_cuda_set_stream(state["ffi"].cast("void *", ptr))
        _stream[0] = ptr


def _check(status, context=""):
    if status:
        state = _probe()
        message = state["ffi"].string(state["lib"].pf_cuda_last_error()).decode("utf-8",
                                                                                "replace")
        cls = _STATUS_ERRORS.get(status, errors.NativeError)
        raise cls(context + message if context else message)


def kernel_names():
    """Names in the CUDA kernel table (the C table's names; those not yet ported are absent)."""
    require("the CUDA kernel table")
    return sorted(_kernel_ids)


def kernel_id(name):
    require("running the kernel %r on the GPU" % name)
    try:
        return _kernel_ids[name]
    except KeyError:
        raise errors.DeviceError("the CUDA library has no kernel %r yet: the ops that need it "
                                 "run only on the CPU (move their inputs with .cpu())"
                                 % name) from None


def run(kernel, ins, outs, iattr=(), fattr=(), workspace=None, context=""):
    """Run one CUDA kernel on descriptors of device memory; a refused call raises at once."""
    kid = kernel_id(kernel)
    a, keep = cpu.new_args(ins, outs, iattr, fattr, workspace)
    _set_stream()
    _check(_probe()["lib"].pf_cuda_run(kid, a), context)


def run_steps(steps, begin, end):
    """pf_cuda_run_steps over a pf_step array (backend.cpu.new_steps) of CUDA kernel ids."""
    state = require("running a plan on the GPU")
    failed = state["ffi"].new("int64_t *")
    _set_stream()
    status = state["lib"].pf_cuda_run_steps(steps, begin, end, failed)
    if status:
        _check(status, "plan step %d: " % failed[0])


def graph_capture(steps, begin, end):
    """Capture steps [begin, end) as a CUDA graph (on the current stream, which must not be the
    legacy default stream); returns an opaque handle for graph_launch / graph_destroy."""
    state = require("capturing a CUDA graph")
    handle = state["ffi"].new("void **")
    failed = state["ffi"].new("int64_t *")
    _set_stream()
    status = state["lib"].pf_cuda_graph_capture(steps, begin, end, handle, failed)
    if status:
        _check(status, "capturing plan step %d: " % failed[0] if failed[0] >= 0 else "")
    return handle[0]


def graph_launch(handle):
    state = require("replaying a CUDA graph")
    _set_stream()
    _check(state["lib"].pf_cuda_graph_launch(handle))


def graph_destroy(handle):
    _check(require("destroying a CUDA graph")["lib"].pf_cuda_graph_destroy(handle))


class Plan:
    """CUDA kernel steps over device arrays, run by one native call (pf_cuda_run_steps) or
    captured once as a CUDA graph and replayed: the GPU side of a compiled plan's step list.

        plan = Plan()
        plan.add("linear", [plan.desc(x), plan.desc(w)], [plan.desc(y)], (0,))
        plan.run()                       # steps one by one
        graph = plan.capture()           # then graph.launch() per step; graph.close()

    Descriptors and attribute arrays live as long as the plan; the arrays must too.
    """

    def __init__(self):
        self._entries = []
        self._keep = []
        self._steps = None

    def desc(self, array, shape=None, strides=None):
        """A descriptor of a CuPy array (or of a strided view of it: shape and strides in
        elements)."""
        from ..dtypes import as_dtype

        buf = Buf(array, array.shape, as_dtype(array.dtype))
        self._keep.append(buf)
        return buf.desc(shape, strides)

    def add(self, kernel, ins, outs, iattr=(), fattr=()):
        args, keep = cpu.new_args(ins, outs, iattr, fattr)
        self._keep += [args, keep]
        self._entries.append((kernel_id(kernel), args))
        self._steps = None
        return len(self._entries) - 1

    @property
    def steps(self):
        """The pf_step array (built once the steps are all added)."""
        if self._steps is None:
            self._steps = cpu.new_steps(len(self._entries))
            for i, (kid, args) in enumerate(self._entries):
                self._steps[i].kernel = kid
                self._steps[i].args = args[0]
        return self._steps

    def __len__(self):
        return len(self._entries)

    def run(self):
        run_steps(self.steps, 0, len(self))

    def capture(self):
        """The steps as a CUDA graph (recorded, not run) on the current stream, which must not
        be the legacy default stream."""
        return Graph(graph_capture(self.steps, 0, len(self)), self)


class Graph:
    """A captured plan: launch() replays every step with one call; close() frees it."""

    def __init__(self, handle, plan):
        self.handle, self.plan = handle, plan

    def launch(self):
        graph_launch(self.handle)

    def close(self):
        if self.handle is not None:
            graph_destroy(self.handle)
            self.handle = None
