"""Tensor: memory (a numpy array on the CPU), shape, dtype, device, and its place on the tape."""
import numpy as np

from . import autograd, errors
from .backend import cpu, cuda
from .dtypes import as_dtype, get_default_dtype
from .ops import core
from .ops import elementwise as E
from .ops import shape as S
from .ops.methods import OpMethods, in_place_result

__all__ = ["Tensor", "tensor", "zeros", "ones", "full", "arange", "randn", "rand", "zeros_like",
           "ones_like", "storage_changed", "storage_epoch", "from_dlpack", "move_to_device",
           "full_like", "empty", "empty_like", "rand_like", "randn_like", "eye", "linspace",
           "logspace", "as_tensor", "from_numpy", "is_tensor", "numel", "randint", "randperm",
           "is_floating_point", "is_nonzero"]


class Tensor(OpMethods):
    """An n-dimensional array that can record the ops applied to it for autodiff.

    pf.tensor(data) copies, as torch.tensor and np.array do; pf.from_numpy and pf.as_tensor
    share a C-contiguous ndarray's memory (so does the constructor, Tensor(ndarray), which the
    library itself uses); t.numpy() returns the memory itself, without a copy.
    """

    # _ptr: (array, its cffi pointer) for eager dispatch, valid while array is _data
    __slots__ = ("_data", "dtype", "requires_grad", "grad", "_node", "_index", "name",
                 "_bufcache", "_ptr", "__weakref__")
    symbolic = False
    is_parameter = False

    def __init__(self, data, dtype=None, requires_grad=False, name=None):
        arr = _to_array(data, dtype)
        self._data = arr
        self.dtype = as_dtype(arr.dtype)
        self.requires_grad = bool(requires_grad)
        if self.requires_grad and not self.dtype.is_float:
            raise errors.DTypeError("only float tensors can require gradients, got %s"
                                    % self.dtype.name)
        self.grad = None
        self._node = None
        self._index = 0
        self.name = name
        self._bufcache = self._ptr = None

    @classmethod
    def _wrap(cls, array, dtype):
        t = Tensor.__new__(Tensor)
        t._data = array
        t.dtype = dtype
        t.requires_grad = False
        t.grad = None
        t._node = None
        t._index = 0
        t.name = None
        t._bufcache = t._ptr = None
        return t

    # not copied: the native pointers cached for this tensor's own memory, and its place on
    # the tape (a copy is a leaf, as torch's deepcopy of a tensor)
    _NOT_DEEP_COPIED = ("__weakref__", "_bufcache", "_ptr", "_node")

    def __deepcopy__(self, memo):
        """copy.deepcopy (of a model, or torch's clones of a layer): a tensor of the same class
        and attributes with memory of its own; a Parameter stays a Parameter."""
        import copy

        new = type(self).__new__(type(self))
        memo[id(self)] = new
        for klass in type(self).__mro__:
            for slot in getattr(klass, "__slots__", ()):
                if slot not in self._NOT_DEEP_COPIED and hasattr(self, slot):
                    setattr(new, slot, copy.deepcopy(getattr(self, slot), memo))
        new._bufcache = new._ptr = new._node = None
        return new

    def _buf(self):
        b = self._bufcache
        if b is None or b.array is not self._data:
            buf = cpu.Buf if type(self._data) is np.ndarray else cuda.Buf
            b = self._bufcache = buf(self._array(), self._data.shape, self.dtype)
        return b

    def _array(self):
        return self._data

    # ---- properties ----
    @property
    def shape(self):
        data = self._data          # (read directly: backward asks every gradient its shape)
        return data.shape if data is not None else self._array().shape

    @property
    def ndim(self):
        return self._array().ndim

    @property
    def size(self):
        """The number of elements (numpy's t.size), an int that can also be called as
        PyTorch's t.size(): the shape, or t.size(dim) that dim's length."""
        return _Size(self._array().size, self.shape)

    @property
    def device(self):
        """"cpu", or "cuda:N" for a tensor in GPU memory."""
        data = self._data
        return "cpu" if type(data) is np.ndarray or data is None else cuda.device_of(data)

    @property
    def is_leaf(self):
        return self._node is None

    def __len__(self):
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    # ---- numpy interop ----
    def numpy(self):
        """The tensor's memory as a numpy array (no copy: writes show in the tensor)."""
        arr = self._array()
        if type(arr) is not np.ndarray:
            raise errors.DeviceError("numpy(): the tensor is on %s; copy it to the host first "
                                     "with t.cpu().numpy()" % self.device)
        return arr

    def __dlpack__(self, **kwargs):
        """DLPack export of the tensor's memory (no copy), for torch/cupy/numpy.from_dlpack."""
        return self._array().__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self._array().__dlpack_device__()

    def __array__(self, dtype=None, copy=None):
        arr = self.numpy()       # GPU memory is not converted implicitly: DeviceError
        return arr if dtype is None else arr.astype(dtype)

    def item(self):
        arr = self._array()
        if arr.size != 1:
            raise ValueError("item() needs a tensor with one element, this one has shape %s"
                             % (arr.shape,))
        return arr.reshape(()).item()

    def tolist(self):
        return self._array().tolist()

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def __index__(self):
        if self.dtype.is_float:
            raise TypeError("only integer tensors can be used as an index")
        return int(self.item())

    def __bool__(self):
        arr = self._array()
        if arr.size != 1:
            raise ValueError("the truth value of a tensor with %d elements is ambiguous; "
                             "use .any() or .all() on t.numpy()" % arr.size)
        return bool(arr.reshape(()).item())

    def __repr__(self):
        body = np.array2string(self.cpu()._array(), separator=", ", prefix="tensor(")
        extra = ", dtype=%s" % self.dtype.name if self.dtype is not get_default_dtype() else ""
        if type(self._data) is not np.ndarray:
            extra += ", device='%s'" % self.device
        if self.requires_grad:
            extra += ", requires_grad=True"
        return "tensor(%s%s)" % (body, extra)

    # ---- autodiff ----
    def backward(self, grad=None, create_graph=False, retain_graph=None):
        """Accumulate gradients of this tensor into .grad of the leaves that require them
        (retain_graph: accepted for PyTorch's code; the tape is kept either way)."""
        autograd.backward([self], None if grad is None else [grad], create_graph=create_graph)

    def retain_grad(self):
        """Have backward fill this non-leaf tensor's .grad too (PyTorch's retain_grad; a
        leaf that requires grad gets its .grad anyway)."""
        autograd.retain_grad(self)

    @property
    def retains_grad(self):
        return autograd.retains_grad(self)

    @property
    def grad_fn(self):
        """None for a leaf; for the result of a recorded op, what backward runs through
        (autograd.GradFn: name(), next_functions), as PyTorch's."""
        return None if self._node is None else autograd.GradFn(self._node)

    def register_hook(self, fn):
        """Have backward call fn(grad) with this tensor's gradient, once it is whole; a
        tensor fn returns replaces the gradient (what reaches .grad and flows on), as
        PyTorch's. Returns a handle whose remove() unregisters fn."""
        return autograd.register_hook(self, fn)

    def detach(self):
        """The same memory, cut from the tape."""
        return Tensor._wrap(self._array(), self.dtype)

    def requires_grad_(self, flag=True):
        if flag and not self.dtype.is_float:
            raise errors.DTypeError("only float tensors can require gradients")
        self.requires_grad = bool(flag)
        return self

    def to(self, *args, dtype=None, device=None, non_blocking=False, copy=False):
        """PyTorch's forms: t.to(dtype) / t.to(dtype=...) converts the values; t.to("cuda"),
        t.to("cuda:1"), t.to("cpu") (or device=) copy them to that device (t itself when it
        is there already); t.to(other) takes other's dtype and device; t.to(device, dtype)
        both. copy=True gives a new tensor even when nothing changes (non_blocking is
        accepted and changes nothing: copies complete before to() returns)."""
        device, dtype = _to_target(self, args, device, dtype)
        t = self
        if device is not None:
            t = _on_device(t, device)
        if dtype is not None and as_dtype(dtype) is not t.dtype:
            t = t.astype(dtype)
        return S.clone(t) if copy and t is self else t

    def cpu(self):
        """The tensor in host memory (itself when it is there already)."""
        return self if type(self._data) is np.ndarray else _on_device(self, "cpu")

    @property
    def data(self):
        """The same memory, cut from the tape (PyTorch's t.data): writing into it (an
        initializer's normal_, an update under no_grad) writes into this tensor."""
        return self.detach()

    @data.setter
    def data(self, value):
        value = value if isinstance(value, Tensor) else Tensor(value, dtype=self.dtype)
        self._data = value._array()
        self.dtype = value.dtype
        self._ptr = None
        storage_changed()

    def zero_(self):
        return self.fill_(0)

    def fill_(self, value):
        """Every element set to value (a number, or a 0-d tensor whose gradient is the sum of
        this tensor's). Recording, the tensor becomes the op's result on the tape: gradients
        reach value, and none reaches what the tensor held before."""
        if self._writes_on_tape(value):
            return self._in_place(lambda t: _replace(t, value), "fill_")
        self._array()[...] = value.numpy() if isinstance(value, Tensor) else value
        autograd.note_in_place(self, "fill_")
        return self

    def normal_(self, mean=0.0, std=1.0):
        """Fill in place from N(mean, std^2), drawn from pyfront's generator (pf.manual_seed)."""
        from . import random

        self.copy_(random.generator().normal(mean, std, self.shape))
        return self

    def uniform_(self, a=0.0, b=1.0):
        """Fill in place from U[a, b), drawn from pyfront's generator (pf.manual_seed)."""
        from . import random

        self.copy_(random.generator().uniform(a, b, self.shape))
        return self

    def copy_(self, other):
        """Write other's values into this tensor's memory (shapes must match; the dtype is
        this tensor's). Recording, the tensor becomes the copy's result on the tape: gradients
        reach other, and none reaches what the tensor held before."""
        if self._writes_on_tape(other):
            if tuple(other.shape) != tuple(self.shape):
                raise errors.ShapeError("copy_: source shape %s differs from %s"
                                        % (tuple(other.shape), tuple(self.shape)))
            return self._in_place(lambda t: _replace(t, S.cast(other, t.dtype)), "copy_")
        src = np.asarray(other.cpu().numpy() if isinstance(other, Tensor) else other)
        dst = self._array()
        if src.shape != dst.shape:
            raise errors.ShapeError("copy_: source shape %s differs from %s"
                                    % (src.shape, dst.shape))
        cuda.copy_from_host(dst, src)   # host or GPU memory alike
        autograd.note_in_place(self, "copy_")
        return self

    def _writes_on_tape(self, source):
        """Whether an in-place write of source into this tensor must be recorded: gradients
        are being recorded and this tensor or the source takes part in them."""
        return autograd.is_grad_enabled() and (
            self.requires_grad or (isinstance(source, Tensor) and source.requires_grad))

    def _in_place(self, fn, name):
        """Make this tensor hold fn(its value) (same shape; dtype kept); name: the op's. The
        in-place methods (ops.methods) come here: without gradients (an update under
        no_grad, a tensor that needs none) the result is written into this tensor's memory;
        recording, the tensor becomes the op's result on the tape, as in PyTorch."""
        recording = autograd.is_grad_enabled()
        if recording and self.requires_grad and self._node is None:
            raise errors.PyfrontError("%s: a leaf tensor that requires grad cannot be written in "
                                      "place (use pf.no_grad() for an update, or a copy: "
                                      "t = t.clone())" % name)
        # the value the tape saw so far, under its own name: ops that keep their inputs for
        # backward must keep this one, not the tensor about to change
        before = self
        if recording:
            before = Tensor._wrap(self._data, self.dtype)
            before.requires_grad, before._node, before._index = (
                self.requires_grad, self._node, self._index)
            if self._node is not None:
                self._node.track(self._index, before)
        out = in_place_result(self, fn(before), name)
        if not (recording and out.requires_grad):
            self._array()[...] = out._array()     # (one device: the op ran on self's)
            autograd.note_in_place(self, name)
            return self
        autograd.note_in_place(self, name, rebound=True)
        self._data, self.requires_grad, self._node, self._index = (
            out._data, out.requires_grad, out._node, out._index)
        self._ptr = None
        if out._node is not None:
            out._node.track(out._index, self)
        storage_changed()
        return self

    def __setitem__(self, key, value):
        """t[key] = value, numpy's indexing rules. Without gradients the values are written
        into t's own memory; with them, t becomes the result of ops.shape.setitem (new memory,
        on the tape: gradients reach value and t's untouched elements), as PyTorch records an
        in-place write. A leaf that requires grad is refused, as in PyTorch."""
        from .ops.shape import setitem

        self._in_place(lambda t: setitem(t, key, value), "__setitem__")


def _replace(t, value):
    """A new tensor of t's shape holding value (broadcast; cast by the caller where needed):
    where(everywhere, value, t), so the tape sends value its gradient and t none."""
    return E.where(Tensor._wrap(np.ones(t.shape, bool), as_dtype("bool")), value, t)


def _to_target(t, args, device, dtype):
    """(device, dtype) named by Tensor.to's arguments (None: unchanged): positional dtype,
    device, tensor (its dtype and device) or (device, dtype), and the keywords."""
    if len(args) > 2:
        raise TypeError("to: takes at most 2 positional arguments (device, dtype), got %d"
                        % len(args))
    for a in args:
        if hasattr(a, "symbolic"):                 # another tensor: its dtype and device
            if len(args) > 1:
                raise TypeError("to: a tensor argument comes alone")
            found_device, found_dtype = a.device, a.dtype
        elif cuda.is_device(a):
            found_device, found_dtype = a, None
        else:
            found_device, found_dtype = None, as_dtype(a)
        for kind, found, given in (("device", found_device, device), ("dtype", found_dtype,
                                                                      dtype)):
            if found is not None and given is not None:
                raise TypeError("to: %s given twice (%r and %r)" % (kind, found, given))
        device = device if found_device is None else found_device
        dtype = dtype if found_dtype is None else found_dtype
    if device is not None and not cuda.is_device(device):
        raise ValueError("to: unknown device %r: use 'cpu', 'cuda' or 'cuda:N'" % (device,))
    return device, dtype


class _Size(int):
    """t.size: numpy's element count, callable as PyTorch's t.size() / t.size(dim)."""

    def __new__(cls, count, shape):
        value = int.__new__(cls, count)
        value.shape = tuple(shape)
        return value

    def __call__(self, dim=None):
        if dim is None:
            return self.shape
        if not -len(self.shape) <= dim < len(self.shape):
            raise errors.AxisError("size: dim %d is out of range for a tensor of shape %s"
                                   % (dim, self.shape))
        return self.shape[dim]


core.Tensor = Tensor
autograd.Tensor, autograd.as_operand = Tensor, core.as_operand   # (the tape sits below ops)


# Compiled plans capture the memory of the tensors they read (parameters, buffers): whatever
# gives a tensor a new array instead of writing into its array calls storage_changed(), so
# that plans built before are dropped instead of reading stale memory.
_storage_epoch = [0]


def storage_changed():
    """Say that some tensor's memory was replaced (plans holding its old array must rebuild)."""
    _storage_epoch[0] += 1


def storage_epoch():
    """A counter that changes whenever storage_changed() is called."""
    return _storage_epoch[0]


def _to_array(data, dtype=None):
    if isinstance(data, Tensor):
        arr = data.numpy()
    else:
        arr = data
    if dtype is not None:
        dt = as_dtype(dtype).np
    elif isinstance(arr, (np.ndarray, np.generic)):     # (a NumPy scalar keeps its dtype too)
        if arr.dtype.kind == "f":
            dt = arr.dtype if arr.dtype.itemsize in (4, 8) else np.dtype("float32")
        elif arr.dtype.kind in "iu":
            dt = arr.dtype if arr.dtype in (np.dtype("int32"), np.dtype("int64")) \
                else np.dtype("int64")
        elif arr.dtype.kind == "b":
            dt = arr.dtype
        else:
            raise errors.DTypeError("cannot make a tensor of numpy dtype %s" % arr.dtype)
    else:
        probe = np.asarray(arr)
        if probe.dtype.kind in "fb":
            dt = probe.dtype if probe.dtype.kind == "b" else get_default_dtype().np
        elif probe.dtype.kind in "iu":
            dt = np.dtype("int64")
        else:
            raise errors.DTypeError("cannot make a tensor of %r" % (type(data).__name__,))
        arr = probe
    out = np.asarray(arr, dtype=dt)
    if not out.flags.c_contiguous:
        out = np.ascontiguousarray(out)
    elif not out.flags.writeable:
        # kernels write into tensors in place (optimizer steps): a read-only array (a read-only
        # memory map, np.frombuffer of bytes) would crash them, so it is copied
        out = out.copy()
    return out


def tensor(data, dtype=None, requires_grad=False, name=None, device=None):
    """A tensor holding a copy of array-like data, as torch.tensor and np.array make one (a
    later write to the array does not reach the tensor, nor the other way; pf.from_numpy and
    pf.as_tensor share an array's memory instead). Python floats take the default dtype
    (pf.get_default_dtype: float32 unless set), float arrays keep float32 or float64, integer
    arrays default to int64 (int32 kept); a NumPy scalar keeps its dtype.
    device="cuda" (or "cuda:N") puts it on a GPU."""
    if device is None or device == "cpu":
        t = Tensor(data, dtype=dtype, requires_grad=requires_grad, name=name)
        source = data._data if isinstance(data, Tensor) else data
        if isinstance(source, np.ndarray) and np.may_share_memory(t._data, source):
            t._data = t._data.copy()
        return t
    cuda.parse_device(device)
    t = _on_device(Tensor(data, dtype=dtype, name=name), device)
    t.name = name
    return t.requires_grad_(requires_grad)


def _on_device(t, device):
    """t's values on device: t itself when they are there, else a copy (a leaf keeps
    requires_grad; the copy is not on the tape)."""
    array = cuda.array_to(t._array(), device)
    if array is t._data:
        return t
    out = Tensor._wrap(array, t.dtype)
    out.requires_grad = t.requires_grad and t._node is None
    return out


def move_to_device(tensors, device):
    """Move tensors' memory to device in place (model.to("cuda")): plans holding the old
    memory are dropped."""
    kind, _ = cuda.parse_device(device)
    if kind == "cuda":     # refused even with nothing to move yet, as torch refuses
        cuda.require("moving a tensor to %s" % device)
    changed = False
    for t in tensors:
        if t._data is not None:
            array = cuda.array_to(t._data, device)
            changed |= array is not t._data
            t._data = array
            t._ptr = None
        elif hasattr(t, "home_device"):   # a parameter waiting for its shape: it is made there
            t.home_device = None if kind == "cpu" else device
    if changed:
        storage_changed()


def from_dlpack(obj):
    """A tensor sharing the memory of obj (a torch/CuPy/numpy/JAX array, anything with
    __dlpack__) without a copy: CPU memory through numpy, CUDA memory through CuPy."""
    array = cuda.array_from_dlpack(obj)
    return Tensor._wrap(array, as_dtype(array.dtype))


def _float_dtype(dtype):
    """dtype, or the default float dtype (pf.set_default_dtype) when None."""
    return get_default_dtype() if dtype is None else as_dtype(dtype)


def zeros(*shape, dtype=None, requires_grad=False):
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return Tensor(np.zeros(shape, _float_dtype(dtype).np), requires_grad=requires_grad)


def ones(*shape, dtype=None, requires_grad=False):
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return Tensor(np.ones(shape, _float_dtype(dtype).np), requires_grad=requires_grad)


def full(shape, value, dtype=None, requires_grad=False):
    """shape filled with value; without dtype, PyTorch's choice from the value: bool for a
    bool, int64 for an int, the default float dtype for a float."""
    if dtype is None:
        dtype = "bool" if isinstance(value, (bool, np.bool_)) else \
            "int64" if isinstance(value, (int, np.integer)) else get_default_dtype()
    return Tensor(np.full(shape, value, as_dtype(dtype).np), requires_grad=requires_grad)


def _like_dtype(t, dtype):
    return as_dtype(dtype).np if dtype is not None else t.dtype.np


def zeros_like(t, dtype=None, requires_grad=False):
    return Tensor(np.zeros(t.shape, _like_dtype(t, dtype)), requires_grad=requires_grad)


def ones_like(t, dtype=None, requires_grad=False):
    return Tensor(np.ones(t.shape, _like_dtype(t, dtype)), requires_grad=requires_grad)


def full_like(t, value, dtype=None, requires_grad=False):
    return Tensor(np.full(t.shape, value, _like_dtype(t, dtype)), requires_grad=requires_grad)


def empty(*shape, dtype=None, requires_grad=False):
    """A tensor of that shape whose values are whatever the memory held (numpy's empty)."""
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return Tensor(np.empty(shape, _float_dtype(dtype).np), requires_grad=requires_grad)


def empty_like(t, dtype=None, requires_grad=False):
    return Tensor(np.empty(t.shape, _like_dtype(t, dtype)), requires_grad=requires_grad)


def rand_like(t, dtype=None, requires_grad=False):
    return rand(*t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def randn_like(t, dtype=None, requires_grad=False):
    return randn(*t.shape, dtype=dtype or t.dtype, requires_grad=requires_grad)


def eye(n, m=None, dtype=None, requires_grad=False):
    """The n x m identity (m = n by default)."""
    return Tensor(np.eye(n, m, dtype=_float_dtype(dtype).np), requires_grad=requires_grad)


def linspace(start, end, steps, dtype=None, requires_grad=False):
    """steps values from start to end inclusive, evenly spaced (PyTorch's; steps required)."""
    return Tensor(np.linspace(start, end, steps).astype(_float_dtype(dtype).np),
                  requires_grad=requires_grad)


def logspace(start, end, steps, base=10.0, dtype=None, requires_grad=False):
    """base ** linspace(start, end, steps)."""
    return Tensor((base ** np.linspace(start, end, steps)).astype(_float_dtype(dtype).np),
                  requires_grad=requires_grad)


def as_tensor(data, dtype=None):
    """data itself when it is a tensor of that dtype; else a tensor of data that shares a
    C-contiguous numpy array's memory where the dtype allows (torch.as_tensor's rule)."""
    if isinstance(data, Tensor) and (dtype is None or as_dtype(dtype) is data.dtype):
        return data
    return Tensor(data, dtype=dtype)


def from_numpy(array):
    """A tensor sharing the numpy array's memory (it must be C-contiguous, writable, and of a
    dtype pyfront has: float32/64, int32/64 or bool)."""
    if not isinstance(array, np.ndarray):
        raise TypeError("from_numpy: expected a numpy.ndarray, got %s" % type(array).__name__)
    if not (array.flags.c_contiguous and array.flags.writeable) or \
            array.dtype not in (np.dtype(d) for d in ("float32", "float64", "int32", "int64",
                                                         "bool")):
        raise errors.DTypeError("from_numpy: cannot share a %s array%s (pf.tensor copies it)"
                                % (array.dtype, "" if array.flags.c_contiguous else
                                   " that is not C-contiguous"))
    return Tensor(array)


def is_tensor(obj):
    return isinstance(obj, Tensor)


def numel(t):
    """The number of elements of t."""
    return int(np.prod(t.shape, dtype=np.int64))


def is_floating_point(t):
    """Whether t (a tensor or a graph value) has a float dtype, as torch.is_floating_point."""
    return core.as_operand(t).is_floating_point()


def is_nonzero(t):
    """The truth of a one-element tensor as a Python bool, as torch.is_nonzero: any other
    number of elements is ambiguous, a ValueError (a graph value has no truth yet: a
    TraceError, so that pf.jit runs the function eagerly)."""
    return core.as_operand(t).is_nonzero()


def arange(start, stop=None, step=1, dtype=None):
    """Evenly spaced values, as np.arange; int64 for integer arguments, else the default
    float dtype."""
    arr = np.arange(start, stop, step) if stop is not None else np.arange(start)
    if dtype is None and arr.dtype.kind == "f":
        dtype = get_default_dtype()    # numpy's float64 is not necessarily ours
    return Tensor(arr, dtype=dtype)


def _rng(seed):
    """A generator of its own for an explicit seed; pyfront's (pf.manual_seed) otherwise."""
    from . import random

    return np.random.default_rng(seed) if seed is not None else random.generator()


def randn(*shape, dtype=None, seed=None, requires_grad=False):
    """Samples of N(0, 1); seed= for a draw of its own, else pyfront's generator."""
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return Tensor(_rng(seed).standard_normal(shape).astype(_float_dtype(dtype).np),
                  requires_grad=requires_grad)


def rand(*shape, dtype=None, seed=None, requires_grad=False):
    """Samples of U[0, 1); seed= for a draw of its own, else pyfront's generator."""
    shape = shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape
    return Tensor(_rng(seed).random(shape).astype(_float_dtype(dtype).np),
                  requires_grad=requires_grad)


def randint(low, high=None, size=(), dtype="int64", seed=None):
    """Integers in [low, high) (PyTorch's randint(low, high, size); randint(high, size) starts
    at 0)."""
    if high is None or isinstance(high, (tuple, list)):   # randint(high, size)
        low, high, size = 0, low, size if high is None else high
    return Tensor(_rng(seed).integers(low, high, size).astype(as_dtype(dtype).np))


def randperm(n, dtype="int64", seed=None):
    """A random permutation of 0 .. n-1."""
    return Tensor(_rng(seed).permutation(n).astype(as_dtype(dtype).np))
