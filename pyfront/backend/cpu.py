"""The CPU backend: the native C kernel library (pyfront._native, cffi API mode).

Loads the library and its BLAS, owns the thread setting, turns numpy memory into the ABI's
pf_tensor descriptors and native status codes into Python exceptions.
"""
import math
import os
import threading

import numpy as np

from .. import errors
from .._native import ffi, lib

__all__ = ["Buf", "run", "kernel_id", "set_num_threads", "get_num_threads", "blas_info",
           "raise_native_error", "new_args", "new_steps", "register_kernel", "include_dir",
           "wait_readable", "HOST_KERNEL", "host_function"]

# The ABI (native/include/pyfront.h) this code was written for. An editable install does not
# rebuild C on import, so a library compiled from an older header would be called with the
# wrong declarations: refuse it before anything else touches it.
ABI_VERSION = 5


def check_abi_version():
    """Raise ImportError naming both versions if the compiled library is from another ABI."""
    built = lib.pf_abi_version()
    if built != ABI_VERSION:
        import pyfront._native as native

        raise ImportError("pyfront's native library %s was built for ABI version %d, but this "
                          "pyfront expects version %d: the build is stale. Rebuild it with "
                          "`pip install -e .` again (from the source checkout)."
                          % (native.__file__, built, ABI_VERSION))


check_abi_version()

MAX_DIMS = lib.PF_MAX_DIMS

_STATUS_ERRORS = {
    lib.PF_ERR_ARGUMENT: errors.NativeError,
    lib.PF_ERR_SHAPE: errors.ShapeError,
    lib.PF_ERR_DTYPE: errors.DTypeError,
    lib.PF_ERR_INDEX: errors.IndexOutOfRange,
    lib.PF_ERR_NUMERIC: errors.NumericError,
    lib.PF_ERR_MEMORY: MemoryError,
    lib.PF_ERR_BLAS: errors.NativeError,
    lib.PF_ERR_UNKNOWN_KERNEL: errors.NativeError,
    lib.PF_ERR_INTERNAL: errors.NativeError,
}


def raise_native_error(status, context=""):
    failure, written = getattr(_host_failure, "error", (None, None))
    _host_failure.error = None, None
    # a host kernel's exception (see host_function), unless a native kernel failed since and
    # replaced the last error that the host kernel wrote
    if failure is not None and ffi.string(lib.pf_last_error()) == written:
        if isinstance(failure, errors.PyfrontError):
            raise type(failure)(context + str(failure)) from None
        raise errors.NativeError("%s%s: %s" % (context, type(failure).__name__, failure)) \
            from failure
    message = ffi.string(lib.pf_last_error()).decode("utf-8", "replace")
    cls = _STATUS_ERRORS.get(status, errors.NativeError)
    raise cls(context + message if context else message)


def _load_blas():
    # locate the wheel's library without importing scipy_openblas32 (its __init__ pulls in
    # importlib.metadata and costs a large share of pyfront's import time)
    import importlib.util

    spec = importlib.util.find_spec("scipy_openblas32")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("pyfront needs the scipy-openblas32 package (its BLAS): "
                          "pip install scipy-openblas32")
    path = os.path.join(list(spec.submodule_search_locations)[0], "lib",
                        "libscipy_openblas.so")
    status = lib.pf_load_blas(path.encode(), b"scipy_")
    if status != lib.PF_OK:
        raise_native_error(status, "loading the BLAS: ")


def blas_info():
    """Which BLAS the native library uses (OpenBLAS build and path)."""
    return ffi.string(lib.pf_blas_info()).decode()


def _default_threads():
    env = os.environ.get("PYFRONT_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
    if env:
        try:
            return max(1, int(env))
        except ValueError:
            raise ValueError("PYFRONT_NUM_THREADS must be a positive integer, got %r" % env)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def set_num_threads(n):
    """Threads for the native kernels and their BLAS: one pool serves both."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError("set_num_threads: n must be a positive int, got %r" % (n,))
    status = lib.pf_set_num_threads(n)
    if status != lib.PF_OK:
        raise_native_error(status, "set_num_threads: ")
    _cap_numpy_blas()


def wait_readable(fd, spin_ns):
    """Spin, without the GIL, until file descriptor fd is readable, at most spin_ns
    nanoseconds (yielding the CPU between checks): True once it is, False when the spin
    ended first and a blocking read should follow (pf_wait_readable)."""
    return bool(lib.pf_wait_readable(int(fd), int(spin_ns)))


def _cap_numpy_blas():
    """One BLAS pool per process: numpy's own OpenBLAS is kept to PYFRONT_NUMPY_BLAS_THREADS
    threads (default 1) while pyfront's pool does the parallel work. An idle OpenBLAS pool
    spins after each numpy product and halved pyfront's 2-thread GEMM here; 0 leaves numpy
    alone."""
    wanted = os.environ.get("PYFRONT_NUMPY_BLAS_THREADS", "1")
    try:
        threads = int(wanted)
    except ValueError:
        raise ValueError("PYFRONT_NUMPY_BLAS_THREADS must be an integer, got %r" % wanted)
    if threads <= 0:
        return
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split(None, 5)[5].strip() for line in f
                     if "openblas" in line and line.count(" ") >= 5}
    except OSError:
        return
    ours = ffi.string(lib.pf_blas_info()).decode()
    for path in paths:
        if path.endswith(".so") or ".so." in path or "-" in os.path.basename(path):
            if path in ours:
                continue
            lib.pf_cap_foreign_blas(path.encode(), threads)   # best effort: not numpy's? fine


def get_num_threads():
    return lib.pf_get_num_threads()


_kernel_ids = {}


def kernel_id(name):
    """The native kernel table's id for a kernel name."""
    try:
        return _kernel_ids[name]
    except KeyError:
        raise errors.NativeError("the native library has no kernel %r" % name) from None


_WORKSPACE_KERNELS = set()
_registered = {}      # name -> the function objects: their library must stay loaded


def register_kernel(name, function, workspace=None):
    """Add a native kernel compiled outside pyfront to the kernel table under `name`.

    function: `int kernel(const pf_args *args)` (and workspace, optional: `int size(const
    pf_args *args, int64_t *bytes)`), written in C against native/include/pyfront.h
    (include_dir()) and built by the caller, e.g. with cffi; given as a cffi function pointer
    of any FFI instance (ffi.addressof(lib, "kernel")) or an integer address. Eager ops and
    compiled plans then reach it by name, in the same native loop as the built-in kernels."""
    if not isinstance(name, str) or not name:
        raise ValueError("register_kernel: name must be a non-empty string, got %r" % (name,))
    fn = ffi.cast("pf_user_kernel", _function_address(function, "function"))
    ws = ffi.NULL if workspace is None else \
        ffi.cast("pf_user_workspace", _function_address(workspace, "workspace"))
    status = lib.pf_register_kernel(name.encode(), fn, ws)
    if status:
        raise_native_error(status, "register_kernel(%r): " % name)
    kid = lib.pf_kernel_lookup(name.encode())
    _kernel_ids[name] = kid
    if workspace is not None:
        _WORKSPACE_KERNELS.add(kid)
    _registered[name] = (function, workspace)
    return kid


def _function_address(function, what):
    if isinstance(function, int) and not isinstance(function, bool):
        address = function
    else:
        try:
            address = int(ffi.cast("uintptr_t", function))
        except TypeError:
            raise TypeError("register_kernel: %s must be a cffi function pointer or an integer "
                            "address, got %r" % (what, function)) from None
    if not address:
        raise ValueError("register_kernel: %s is a null pointer" % what)
    return address


def include_dir():
    """The folder holding pyfront.h, the ABI a user's kernel is compiled against."""
    here = os.path.dirname(os.path.abspath(__file__))
    path = os.path.normpath(os.path.join(here, "..", "..", "native", "include"))
    if not os.path.isfile(os.path.join(path, "pyfront.h")):
        raise errors.PyfrontError("pyfront.h is not at %s: user kernels are built against a "
                                  "source checkout of pyfront (pip install -e .)" % path)
    return path


# ---- kernels written in Python ----
# Some ops compute on the host with code no native kernel holds (LAPACK through numpy.linalg).
# They still emit a kernel, HOST_KERNEL, so that eager calls, eager replays and compiled plans
# run them in the one native loop like any other: a cffi callback in the kernel table calls
# the Python function whose id is the call's iattr[0]. A failure writes its message as the
# C library's last error (for callers of the ABI), and the exception itself waits in
# _host_failure (kernels run on the thread that called pf_run / pf_run_steps) for the
# raise_native_error that the failed status leads to, which raises it again whole.

HOST_KERNEL = "host_python"
_host_functions = []
_host_failure = threading.local()
# bytes of a failure's message kept as the last error (pf_set_error keeps up to about 760)
_HOST_MESSAGE_BYTES = 512
_NP_OF_CODE = {lib.PF_FLOAT32: np.dtype(np.float32), lib.PF_FLOAT64: np.dtype(np.float64),
               lib.PF_INT32: np.dtype(np.int32), lib.PF_INT64: np.dtype(np.int64),
               lib.PF_BOOL: np.dtype(np.bool_)}


def host_function(function):
    """Make function(inputs, outputs) a kernel: returns the id that a call of HOST_KERNEL
    gives as its one integer attribute. inputs and outputs are numpy arrays on the call's
    contiguous operands; the function writes its results into outputs. An exception it
    raises fails the call and is raised again, its message behind the op's context, by
    whoever ran the kernel."""
    _host_functions.append(function)
    return len(_host_functions) - 1


def _host_array(t):
    # (descriptors from raw ABI calls can be anything: refused before memory is touched)
    if t == ffi.NULL or t.dtype not in _NP_OF_CODE or not 0 <= t.ndim <= MAX_DIMS:
        raise errors.NativeError("a host kernel got a null or malformed tensor descriptor")
    shape = tuple(t.shape[0:t.ndim])
    dtype = _NP_OF_CODE[t.dtype]
    n = math.prod(shape)
    if min(shape, default=0) < 0 or (n and t.data == ffi.NULL):
        raise errors.NativeError("a host kernel got shape %s with %s data"
                                 % (shape, "null" if t.data == ffi.NULL else "its"))
    if n == 0:
        return np.empty(shape, dtype)
    if tuple(t.strides[0:t.ndim]) != _contiguous_strides(shape):
        raise errors.NativeError("host kernels take contiguous operands, got shape %s with "
                                 "strides %s" % (shape, tuple(t.strides[0:t.ndim])))
    return np.frombuffer(ffi.buffer(t.data, n * dtype.itemsize), dtype).reshape(shape)


def _status_of(exc):
    for status, cls in _STATUS_ERRORS.items():
        if type(exc) is cls:
            return status
    return lib.PF_ERR_INTERNAL


@ffi.callback("pf_user_kernel", error=lib.PF_ERR_INTERNAL)
def _run_host(a):
    try:
        if not (a.n_iattr >= 1 and a.iattr != ffi.NULL and
                0 <= a.iattr[0] < len(_host_functions) and
                0 <= a.n_in <= lib.PF_MAX_IN and 0 <= a.n_out <= lib.PF_MAX_OUT):
            raise errors.NativeError("%s: no host function id, or too many operands"
                                     % HOST_KERNEL)
        function = _host_functions[a.iattr[0]]
        function([_host_array(a.inputs[i]) for i in range(a.n_in)],
                 [_host_array(a.outputs[i]) for i in range(a.n_out)])
    except Exception as e:       # raised again by raise_native_error, on this thread
        status = lib.pf_set_error(_status_of(e), (str(e) or type(e).__name__).encode(
            "utf-8", "replace")[:_HOST_MESSAGE_BYTES])
        _host_failure.error = e, ffi.string(lib.pf_last_error())
        return status
    return lib.PF_OK


def _export_abi_symbols():
    """Make the library's functions visible to libraries loaded after it: a user's kernel
    compiled against pyfront.h calls pf_set_error, and Python loads extension modules with
    their symbols private (RTLD_LOCAL)."""
    import ctypes

    import pyfront._native as native

    ctypes.CDLL(native.__file__, mode=os.RTLD_GLOBAL | getattr(os, "RTLD_NOLOAD", 0))


def _init():
    _export_abi_symbols()
    for i in range(lib.pf_kernel_count()):
        _kernel_ids[ffi.string(lib.pf_kernel_name(i)).decode()] = i
        if lib.pf_kernel_has_workspace(i):
            _WORKSPACE_KERNELS.add(i)
    _load_blas()
    set_num_threads(_default_threads())
    register_kernel(HOST_KERNEL, _run_host)
    if os.environ.get("PYFRONT_DEBUG", "0") not in ("", "0"):
        lib.pf_set_debug(1)


_init()


_strides_cache = {}


def _contiguous_strides(shape):
    strides = _strides_cache.get(shape)
    if strides is None:
        acc, out = 1, []
        for d in reversed(shape):
            out.append(acc)
            acc *= d
        strides = tuple(reversed(out))
        if len(_strides_cache) < 4096:
            _strides_cache[tuple(shape)] = strides
    return strides


class Buf:
    """Memory with a shape and dtype, as the kernels see it: a region of a numpy array.

    Eager tensors wrap their own array; a compiled plan's values are regions of one arena.
    desc() gives the pf_tensor descriptor (cached for the plain contiguous view).
    """

    __slots__ = ("array", "offset", "shape", "dtype", "_ptr", "_desc", "_keep", "_checked")

    def __init__(self, array, shape, dtype, offset=0, check=True):
        self.array = array          # numpy array owning the memory (1-D uint8 arena, or data)
        self.offset = offset        # bytes from the array's start
        self.shape = tuple(shape)
        self.dtype = dtype          # pyfront DType
        self._ptr = None
        self._desc = None
        self._keep = None
        # The kernels trust descriptors blindly: a region outside the array is refused here.
        # check=False only for placeholders whose descriptors never reach a kernel's data
        # (a plan's dry run that sizes workspaces).
        self._checked = check
        if check and (offset < 0 or offset + self.size * dtype.itemsize > array.nbytes or
                      (self.shape and min(self.shape) < 0)):
            raise errors.NativeError("a buffer of shape %s %s at byte %d does not fit in %d bytes"
                                     % (self.shape, dtype.name, offset, array.nbytes))

    @property
    def size(self):
        return math.prod(self.shape)

    def pointer(self, extra_bytes=0):
        if self._ptr is None:
            base = ffi.from_buffer(self.array, require_writable=False)
            self._ptr = ffi.cast("char *", base) + self.offset
            self._keep = base  # the cdata must outlive the pointer
        return self._ptr + extra_bytes if extra_bytes else self._ptr

    def desc(self, shape=None, strides=None, offset_elems=0):
        """A descriptor of this memory; by default the contiguous view of the whole buffer."""
        plain = shape is None and strides is None and offset_elems == 0
        if plain and self._desc is not None:
            return self._desc
        shape = self.shape if shape is None else tuple(shape)
        if len(shape) > MAX_DIMS:
            raise errors.ShapeError("tensors have at most %d dims, got shape %s"
                                    % (MAX_DIMS, shape))
        if strides is None:
            strides = _contiguous_strides(shape)
        if not plain and self._checked:
            self._check_view(shape, strides, offset_elems)
        # one initialiser: cffi fills the struct in C
        d = _new("pf_tensor *", {"data": self.pointer(offset_elems * self.dtype.itemsize),
                                 "dtype": self.dtype.code, "ndim": len(shape),
                                 "shape": shape, "strides": strides})
        if plain:
            self._desc = d
        return d

    def _check_view(self, shape, strides, offset_elems):
        """Every element a strided view can reach must lie inside the array."""
        if len(strides) != len(shape) or any(n < 0 for n in shape):
            raise errors.NativeError("a view of shape %s with strides %s"
                                     % (shape, tuple(strides)))
        if 0 in shape:
            return
        lo = hi = offset_elems
        for n, st in zip(shape, strides):
            if st > 0:
                hi += st * (n - 1)
            else:
                lo += st * (n - 1)
        size = self.dtype.itemsize
        if self.offset + lo * size < 0 or self.offset + (hi + 1) * size > self.array.nbytes:
            raise errors.NativeError("a view of shape %s, strides %s at element %d reaches "
                                     "outside its %d-byte array"
                                     % (shape, tuple(strides), offset_elems, self.array.nbytes))


# pf_tensor descriptors must outlive the calls that use them; Buf keeps its own, and the
# objects made for one call are held by the Python frame that calls run().

_run = lib.pf_run


_new = ffi.new
_NULL = ffi.NULL
_attr_cache = {}


def _attr_array(ctype, values):
    """Attribute arrays are few and immutable: made once, shared by every call."""
    key = (ctype, values)
    arr = _attr_cache.get(key)
    if arr is None:
        conv = int if ctype == "int64_t[]" else float
        arr = _new(ctype, [conv(v) for v in values])
        if len(_attr_cache) < 65536:
            _attr_cache[key] = arr
    return arr


def new_args(ins, outs, iattr=(), fattr=(), workspace=None):
    """A pf_args block; returns (args, keepalive) where keepalive must outlive its use."""
    if len(ins) > lib.PF_MAX_IN or len(outs) > lib.PF_MAX_OUT:
        raise errors.NativeError("too many operands: %d in, %d out" % (len(ins), len(outs)))
    init = {"n_in": len(ins), "n_out": len(outs), "inputs": ins, "outputs": outs}
    keep = [ins, outs]
    if iattr:
        ia = _attr_array("int64_t[]", tuple(iattr))
        init["iattr"] = ia
        init["n_iattr"] = len(iattr)
        keep.append(ia)
    if fattr:
        fa = _attr_array("double[]", tuple(fattr))
        init["fattr"] = fa
        init["n_fattr"] = len(fattr)
        keep.append(fa)
    a = _new("pf_args *", init)
    if workspace is not None:
        a.workspace = workspace.pointer()
        a.workspace_bytes = workspace.size * workspace.dtype.itemsize
        keep.append(workspace)
    return a, keep


_scratch = threading.local()


def _eager_workspace(kernel, a, context):
    """Scratch memory for an eager call: one buffer per thread, grown as needed and reused
    (megabytes per step would otherwise go back and forth to the OS as page faults)."""
    nbytes = workspace_bytes(kernel, a, context)
    if not nbytes:
        return None
    buf = getattr(_scratch, "buf", None)
    if buf is None or buf.nbytes < nbytes:
        buf = _scratch.buf = np.empty(nbytes, np.uint8)
    return buf


def run(kernel, ins, outs, iattr=(), fattr=(), workspace=None, context=""):
    """Run one kernel now on descriptors; raise a Python exception on a native error.
    Kernels that want scratch memory get it here unless the caller gives a workspace."""
    a, keep = new_args(ins, outs, iattr, fattr, workspace)
    kid = kernel_id(kernel)
    if workspace is None and kid in _WORKSPACE_KERNELS:
        buf = _eager_workspace(kernel, a, context)
        if buf is not None:
            a.workspace = ffi.from_buffer(buf)
            a.workspace_bytes = buf.nbytes
            keep.append(buf)
    status = _run(kid, a)
    if status:
        raise_native_error(status, context)


def new_steps(n):
    return ffi.new("pf_step[]", n)


def workspace_bytes(kernel, args, context=""):
    """Scratch bytes the kernel wants for these arguments; sizing checks the arguments, so
    its errors carry the caller's context (the op) like the kernel's own."""
    out = ffi.new("int64_t *")
    status = lib.pf_workspace_size(kernel_id(kernel), args, out)
    if status:
        raise_native_error(status, context)
    return out[0]


def empty(shape, dtype):
    return host_empty(shape, dtype.np)


# ---- reused host memory for large tensors ----
# Eager code makes and drops the same large activations every step. glibc hands each array
# above its mmap threshold to the system and back (or trims the heap under it), so every step
# paid a page fault and a page clear for every page of every activation: a third of an eager
# CNN training step. Tensors of CACHE_MIN_BYTES and more take their memory from blocks kept
# here for reuse (exact sizes, rounded up to 64 KiB), at most CACHE_MAX_BYTES of them idle, as
# other frameworks' caching allocators do; only pyfront's own tensors, so other libraries in
# the process keep glibc's behaviour. Idle blocks of a size not asked for in the last
# CACHE_AGE large allocations are given back: a loop of fixed shapes reuses everything, one
# whose shapes change (sequence lengths, a last smaller batch) does not keep blocks it no
# longer asks for. PYFRONT_CACHE_HOST_MEMORY=0 turns it off.
CACHE_MIN_BYTES = 1 << 20
CACHE_MAX_BYTES = 256 << 20
CACHE_AGE = 256
_cache_on = os.environ.get("PYFRONT_CACHE_HOST_MEMORY", "1") != "0"
_idle_blocks = {}         # rounded size -> [(uint8 block, its address)]
_asked = {}               # rounded size -> the large allocation that last asked for it
_clock = [0]              # large allocations so far


class _CachedBlock:
    """Owns one cached block while arrays use it: numpy keeps the object a view was made
    from (through __array_interface__) as the array's base, so the block goes back to the
    cache only when the last array or view on it is gone."""

    __slots__ = ("block", "__array_interface__")

    def __init__(self, block, shape, typestr):
        self.block = block
        self.__array_interface__ = {"shape": shape, "typestr": typestr, "version": 3,
                                    "data": (block[1], False)}

    def __del__(self):
        try:
            _give_back(self.block)
        except Exception:       # interpreter shutdown: the module may be half gone
            pass


def idle_bytes():
    """Bytes of host memory the cache holds for reuse."""
    return sum(size * len(blocks) for size, blocks in list(_idle_blocks.items()))


def _give_back(block):
    size = block[0].nbytes
    # (a size aged out while its block was in use is not kept either; list append and pop
    # are atomic, so threads need no lock here)
    if _cache_on and size in _asked and idle_bytes() + size <= CACHE_MAX_BYTES:
        _idle_blocks.setdefault(size, []).append(block)


def host_empty(shape, np_dtype):
    """np.empty(shape, np_dtype), from the cache of reused blocks when it is large."""
    dt = np.dtype(np_dtype)
    nbytes = math.prod(shape) * dt.itemsize
    if nbytes < CACHE_MIN_BYTES or not _cache_on:
        return np.empty(shape, dt)
    size = (nbytes + 0xFFFF) & ~0xFFFF
    now = _clock[0] = _clock[0] + 1
    _asked[size] = now
    if now % 64 == 0:
        _evict_stale(now)
    try:
        block = _idle_blocks[size].pop()
    except (KeyError, IndexError):
        raw = np.empty(size, np.uint8)
        block = (raw, raw.__array_interface__["data"][0])
    return np.asarray(_CachedBlock(block, tuple(shape), dt.str))


def _evict_stale(now):
    """Give back the idle blocks of sizes not asked for in the last CACHE_AGE large
    allocations."""
    for size, when in list(_asked.items()):
        if now - when > CACHE_AGE:
            _asked.pop(size, None)
            _idle_blocks.pop(size, None)


def release_cached_memory():
    """Give the idle cached blocks of large tensors back to the system (the cache refills
    as large tensors are made again); returns the bytes released."""
    released = idle_bytes()
    _idle_blocks.clear()
    _asked.clear()
    return released
