"""The one dispatch point and the op record.

An op is defined once, as a subclass of Op with:
  - infer(specs, attrs)  -> output Specs: the shape/dtype rule (dims may be None: unknown batch)
  - forward(k, ins, outs, attrs): emits native kernels through the emitter k; the same code runs
    now (eager) or is recorded into a compiled plan
  - grad(ctx, gouts) -> input gradients, written with other ops, so it builds tape entries
    (higher-order gradients) or graph nodes (compiled backward) without a second definition.
apply() sends Tensor inputs to eager execution and Symbol inputs to the graph builder.
"""
import collections
import contextlib
import threading
import types

import numpy as np

from .. import autograd, errors
from ..backend import cpu
from ..dtypes import as_dtype, result_type

Spec = collections.namedtuple("Spec", "shape dtype")

# set by pyfront.tensor at import: the class eager results are wrapped in
Tensor = None


class ShapeMismatch(errors.ShapeError):
    """Raised inside shape rules; apply() turns it into a ShapeError naming everything (one
    that escapes elsewhere is still a ShapeError)."""


# ---------------------------------------------------------------------------------------------
# name scopes: layers push their names so that errors and graph nodes say where they come from

# (the stack lives with the tape, which runs gradient rules in the scope their op ran in)
name_scope, current_scope = autograd.name_scope, autograd.current_scope


# ---------------------------------------------------------------------------------------------
# shape helpers for rules

def fmt_shape(shape):
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + \
        ("," if len(shape) == 1 else "") + ")"


def broadcast_shapes(*shapes):
    """numpy broadcasting; None (unknown) is taken to match whatever it meets."""
    ndim = max(len(s) for s in shapes)
    out = []
    for i in range(ndim):
        dim = 1
        for s in shapes:
            j = i - (ndim - len(s))
            if j < 0:
                continue
            d = s[j]
            if d == 1:
                continue
            if d is None:
                dim = None if dim == 1 else dim
            elif dim == 1 or dim is None:
                dim = d
            elif d != dim:
                raise ShapeMismatch("shapes %s cannot be broadcast together"
                                    % " and ".join(fmt_shape(s) for s in shapes))
        out.append(dim)
    return tuple(out)


def normalize_axis(axis, ndim, op, arg="axis", new_axis=False):
    """axis checked against [-ndim, ndim) and made non-negative; with new_axis (the position
    of an axis being inserted: expand_dims, stack) against [-ndim-1, ndim]. Out of range is an
    AxisError naming the op, the argument and the rank: an axis taken modulo the rank silently
    answers a different question."""
    if type(axis) is not int:        # (the common case skips the checks: eager dispatch)
        if isinstance(axis, bool) or not hasattr(axis, "__index__"):
            raise errors.ShapeError("%s: %s must be an int, got %r" % (located(op), arg, axis))
        axis = axis.__index__()      # numpy integers too
    size = ndim + 1 if new_axis else ndim
    if not -size <= axis < size:
        valid = "[%d, %d]" % (-size, size - 1) if size else "none: a 0-d tensor has no axes"
        raise errors.AxisError("%s: %s %d is out of range for a tensor of rank %d (valid: %s)"
                               % (located(op), arg, axis, ndim, valid))
    return axis + size if axis < 0 else axis


def normalize_axes(axis, ndim, op, arg="axis"):
    """A tuple of non-negative axes in the order given (None means all), each checked as by
    normalize_axis; a repeated axis is an error."""
    if axis is None:
        return tuple(range(ndim))
    if not isinstance(axis, (tuple, list)):
        axis = (axis,)
    axes = tuple(normalize_axis(a, ndim, op, arg) for a in axis)
    if len(set(axes)) != len(axes):
        raise errors.ShapeError("%s: repeated axis in %s %r for a tensor of rank %d"
                                % (located(op), arg, tuple(axis), ndim))
    return axes


def check_shape(what, shape, expected):
    """ShapeMismatch unless shape equals expected, an unknown (None) dim on either side matching
    any size. Gradient ops' rules check the gradients they are handed with it against the shape
    the forward op gives: a wrong one must not reach a kernel."""
    if len(shape) != len(expected) or any(a != b for a, b in zip(shape, expected)
                                          if a is not None and b is not None):
        raise ShapeMismatch("%s must be %s, got %s" % (what, fmt_shape(expected),
                                                     fmt_shape(shape)))


def located(op):
    """op's name as an error message should give it: with the layer it runs in, if any."""
    scope = current_scope()
    return "%s in layer '%s'" % (op, scope) if scope else op


def contiguous_strides(shape):
    return cpu._contiguous_strides(shape)


# ---------------------------------------------------------------------------------------------
# the op record

class Op:
    """One operation. Subclasses set name, inputs (names for messages) and the three rules."""

    name = "op"
    inputs = ("x",)           # names of the inputs, for error messages
    n_outputs = 1
    differentiable = True
    view = False              # output shares the input's memory (reshape); no forward kernel
    elementwise = None        # ("unary"|"binary"|"unary_grad", code) when fusable
    shape_inputs = ()         # inputs whose shape, not data, the op needs
    stateful = False          # never constant-folded or deduplicated (random ops)
    mutates = ()              # inputs updated in place (running statistics, generator state):
                              # they must be parameters, buffers or plain tensors, never the
                              # results of other ops; compiled graphs keep such ops always
    retain_inputs = None      # the input / output indices grad() reads (ctx.inputs[i],
    retain_outputs = None     # ctx.output(i)): the eager tape frees the rest (None: all; or a
                              # function of (attrs, needs) giving them)

    def infer(self, specs, attrs):
        raise NotImplementedError

    def forward(self, k, ins, outs, attrs):
        raise NotImplementedError

    def grad(self, ctx, gouts):
        raise errors.PyfrontError("op %r has no gradient" % self.name)

    def __repr__(self):
        return "<op %s>" % self.name


REGISTRY = {}


def register(op):
    """Register an op by name (graphs name ops in files; loading looks them up here): an Op
    subclass (decorator use: the class is instantiated once) or a configured Op instance.
    Returns the instance."""
    if isinstance(op, type):
        op = op()
    if op.name in REGISTRY:
        raise RuntimeError("op %r registered twice" % op.name)
    REGISTRY[op.name] = op
    return op


def get_op(name):
    try:
        return REGISTRY[name]
    except KeyError:
        raise errors.ModelFormatError("unknown op %r: the graph names an op this version of "
                                      "pyfront does not have (a custom op must be registered "
                                      "with pf.custom_op in this process before loading: "
                                      "nothing named by a file is imported)" % name) from None


# ---------------------------------------------------------------------------------------------
# errors that name the user's things

def describe(x, i, op):
    label = op.inputs[i] if i < len(op.inputs) else op.inputs[-1] + str(i)
    shape = fmt_shape(x.shape)
    name = getattr(x, "name", None)
    kind = getattr(x, "kind", None) or ("parameter" if getattr(x, "is_parameter", False)
                                        else "tensor")
    where = " [%s '%s']" % (kind, name) if name else ""
    return "%s: %s %s%s" % (label, shape, x.dtype.name, where)


def shape_error(op, inputs, message, cls=errors.ShapeError):
    details = "; ".join(describe(x, i, op) for i, x in enumerate(inputs))
    return cls("%s: %s (inputs: %s)" % (located(op.name), message, details))


def infer(op, inputs, attrs):
    try:
        specs = op.infer([Spec(x.shape, x.dtype) for x in inputs], attrs)
    except ShapeMismatch as e:
        raise shape_error(op, inputs, str(e)) from None
    except errors.DTypeError as e:
        raise shape_error(op, inputs, str(e), errors.DTypeError) from None
    # the native kernels take at most MAX_DIMS dims: refused here, at the op that would make
    # or take such a tensor, not later by a kernel (a view has no kernel until its backward)
    for x in (*inputs, *specs):
        if len(x.shape) > MAX_DIMS:
            raise shape_error(op, inputs, "%s %s has %d dims; pyfront's tensors have at most %d"
                              % ("the result" if isinstance(x, Spec) else "an input",
                                 fmt_shape(x.shape), len(x.shape), MAX_DIMS))
    return specs


MAX_DIMS = cpu.MAX_DIMS


# ---------------------------------------------------------------------------------------------
# emitters: where forward() sends its kernels

class EagerEmitter:
    """Runs kernels at once."""


    def __init__(self, op):
        self.op = op
        self.scratch_bufs = []

    def run(self, kernel, ins, outs, iattr=(), fattr=(), workspace=None):
        cpu.run(kernel, ins, outs, iattr, fattr, workspace, context=self._context())

    def _context(self):
        scope = current_scope()
        return "%s%s: " % (self.op.name, " in layer '%s'" % scope if scope else "")

    def scratch(self, shape, dtype):
        # Held here until the op's forward returns: a descriptor does not keep its memory
        # alive, and forward() often keeps only descriptors (matmul's materialised operands
        # were freed and reused before the product ran).
        buf = cpu.Buf(cpu.empty(shape, dtype), shape, dtype)
        self.scratch_bufs.append(buf)
        return buf


class _Recorder(EagerEmitter):
    """The eager emitter of an op's first call on given shapes, dtypes and attributes: runs
    the kernels and keeps their pf_args, so that later calls replay them with only the data
    pointers changed (forward() emits the same kernels for the same shapes and attributes:
    compiled plans rely on that too)."""

    def __init__(self, op):
        super().__init__(op)
        self.calls = []

    def run(self, kernel, ins, outs, iattr=(), fattr=(), workspace=None):
        super().run(kernel, ins, outs, iattr, fattr, workspace)
        kid = cpu.kernel_id(kernel)
        if self.calls is None or workspace is not None or kid in cpu._WORKSPACE_KERNELS:
            self.calls = None        # scratch sized per call: not replayed (yet)
        else:
            self.calls.append((kid, *cpu.new_args(ins, outs, iattr, fattr)))

    def scratch(self, shape, dtype):
        self.calls = None
        return super().scratch(shape, dtype)

    def store(self, cache, key, specs, bufs):
        """Keep the calls as a _Replay if every descriptor points into exactly one of bufs
        (the inputs, then the outputs) that aliases no other; None if they never will."""
        if len(cache) >= 4096:
            cache.clear()
        if not self.calls:
            cache[key] = None
            return
        # (a shape-only input has no memory: a range no pointer falls in)
        ranges = [(int(_ffi.cast("uintptr_t", b.pointer())), b.size * b.dtype.itemsize)
                  if b is not None else (-1, 0) for b in bufs]
        for i, (lo, n) in enumerate(ranges):
            for lo2, n2 in ranges[i + 1:]:
                if lo < lo2 + max(n2, 1) and lo2 < lo + max(n, 1):
                    return           # x * x: the next call with these shapes may not alias
        steps = _ffi.new("pf_step[]", len(self.calls))
        patches, keep = [], [steps]
        for step, (kid, a, kept) in zip(steps, self.calls):
            for descs, n in ((a.inputs, a.n_in), (a.outputs, a.n_out)):
                for i in range(n):
                    d = descs[i]
                    if d == _ffi.NULL:
                        continue
                    p = int(_ffi.cast("uintptr_t", d.data))
                    j = next((j for j, (lo, n) in enumerate(ranges) if lo <= p < lo + max(n, 1)),
                             None)
                    if j is None:    # memory of its own (a constant): not replayable
                        cache[key] = None
                        return
                    # its own copy: Bufs cache their descriptors, which patching must not touch
                    descs[i] = d = _ffi.new("pf_tensor *", d[0])
                    keep.append(d)
                    patches.append((d, j, p - ranges[j][0]))
            step.kernel = kid
            step.args = a[0]         # (a copy: after the descriptors were replaced)
            keep.append(kept)        # attribute arrays
        cache[key] = _Replay(specs, steps, patches, len(bufs), keep)


def spec_nbytes(spec):
    """Bytes of a value of this (concrete) Spec."""
    n = spec.dtype.itemsize
    for d in spec.shape:
        n *= d
    return n


class _Replay:
    """An op's recorded kernel calls for one key of the replay cache, run by one native call
    (pf_replay_run) with the data pointers of the call's inputs and new outputs."""

    __slots__ = ("specs", "dtypes", "floats", "native", "buffers", "keep", "single", "shape",
                 "np_dtype", "dtype", "tracks", "tapes", "large")

    def __init__(self, specs, steps, patches, n_buffers, keep):
        self.specs = specs
        self.dtypes = [(s.shape, s.dtype.np) for s in specs]
        self.floats = _float_outputs(specs)      # the outputs that can carry gradients
        # the common case, inlined by apply(): one output
        self.single = len(specs) == 1
        self.shape, self.np_dtype, self.dtype = specs[0].shape, specs[0].dtype.np, specs[0].dtype
        # outputs of cpu.CACHE_MIN_BYTES or more take reused memory (cpu.host_empty)
        self.large = any(spec_nbytes(s) >= cpu.CACHE_MIN_BYTES for s in specs)
        self.buffers = _ffi.new("void *[]", n_buffers)
        native_patches = _ffi.new("pf_patch[]", len(patches))
        for dst, (d, j, offset) in zip(native_patches, patches):
            dst.desc, dst.buffer, dst.offset = d, j, offset
        self.native = _ffi.new("pf_replay *", {
            "steps": steps, "patches": native_patches, "buffers": self.buffers,
            "n_steps": len(steps), "n_patches": len(patches), "n_buffers": n_buffers})
        self.keep = (keep, native_patches)
        self.tracks = False      # set by run_eager: the op takes part in autodiff
        self.tapes = {}          # needs -> what a tape entry keeps (autograd.retained)

    def run(self, op, inputs):
        new = _host_empty if self.large else _np_empty
        arrays = [new(shape, dt) for shape, dt in self.dtypes]
        buffers = self.buffers
        i = 0
        for x in inputs:
            data = x._data           # (None for a shape-only input's stand-in: no descriptor)
            buffers[i] = _from_buffer(data) if data is not None else _NULL
            i += 1
        for a in arrays:
            buffers[i] = _from_buffer(a)
            i += 1
        status = _replay_run(self.native)
        if status:
            _replay_failed(op, status)
        return arrays


def _replay_failed(op, status):
    scope = current_scope()
    cpu.raise_native_error(status, "%s%s: " % (op.name, " in layer '%s'" % scope if scope
                                               else ""))


_ffi, _replay_run, _np_empty, _ndarray = cpu.ffi, cpu.lib.pf_replay_run, np.empty, np.ndarray
_host_empty = cpu.host_empty
_NUMBERS = (float, int, bool)
_constants = {}      # (number, type, dtype) -> its shared 0-d Tensor (read-only array)
_from_buffer, _NULL = _ffi.from_buffer, _ffi.NULL
class _Local(threading.local):
    trace_graph = None        # the graph being traced into on this thread (see tracing)


_local = _Local()
_new_tensor = object.__new__
_UNSEEN = object()
_grad_mode = autograd.grad_mode
# the attributes of a tape entry whose op has none: one shared read-only mapping, not a new
# dict per recorded op
_NO_ATTRS = types.MappingProxyType({})


def _replays():
    """This thread's replay cache (a replay's descriptors are patched in place for each call,
    and a native call releases the GIL: threads must not share them). apply() reads it as
    _local.replays directly."""
    try:
        return _local.replays
    except AttributeError:
        _local.replays = {}
        return _local.replays


class _NoReplays(dict):
    """The replay cache while a function is traced into a graph: it never holds an entry, so
    every op takes _apply's general path, where an op on parameters joins the graph."""

    def get(self, key, default=None):
        return None

    def __setitem__(self, key, value):
        pass


_NO_REPLAYS = _NoReplays()


@contextlib.contextmanager
def tracing(graph):
    """Trace into graph: an op whose inputs are all concrete but one of them a parameter (or
    needs a gradient) becomes a node of graph too, reading the parameter as a variable. Run
    eagerly instead, `x * (a + b)` would bake a + b into the graph as a constant: a compiled
    model would neither train a and b nor see their new values."""
    saved = _local.trace_graph, _replays()
    _local.trace_graph, _local.replays = graph, _NO_REPLAYS
    try:
        yield graph
    finally:
        _local.trace_graph, _local.replays = saved


# ---------------------------------------------------------------------------------------------
# dispatch

def apply(op, inputs, attrs=None):
    """The one dispatch point: eager for Tensors, a graph node when any input is a Symbol."""
    # The common eager call first, inline (on small tensors an op costs little more than its
    # dispatch): one or two host tensors, one output, and a replay of this op on these shapes,
    # dtypes and attributes. Everything else takes the general path below.
    replay = b = None
    try:
        if len(inputs) == 2:
            a, b = inputs
            da, db = a._data, b._data
            if type(da) is _ndarray and type(db) is _ndarray:
                key = (op, da.shape, a.dtype, db.shape, b.dtype)
                if attrs:
                    key = (*key, *attrs.items(), *map(type, attrs.values()))
                replay = _local.replays.get(key)
        elif len(inputs) == 1:
            a, = inputs
            da = a._data
            if type(da) is _ndarray:
                key = (op, da.shape, a.dtype)
                if attrs:
                    key = (*key, *attrs.items(), *map(type, attrs.values()))
                replay = _local.replays.get(key)
    except (AttributeError, TypeError):   # a Symbol; no cache yet; an unhashable attribute
        replay = None
    if replay is not None and replay.single:
        # data pointers: the one a tensor keeps for its array (a result of this path, a
        # number constant), else made now
        out = (_host_empty if replay.large else _np_empty)(replay.shape, replay.np_dtype)
        pout = _from_buffer(out)
        buffers = replay.buffers
        p = a._ptr
        buffers[0] = p[1] if p is not None and p[0] is da else _from_buffer(da)
        if b is None:
            buffers[1] = pout
        else:
            p = b._ptr
            buffers[1] = p[1] if p is not None and p[0] is db else _from_buffer(db)
            buffers[2] = pout
        status = _replay_run(replay.native)
        if status:
            _replay_failed(op, status)
        node = uncached = None
        if replay.tracks and _grad_mode.enabled:
            needs = (a.requires_grad,) if b is None else (a.requires_grad, b.requires_grad)
            if True in needs:   # (tracks: the op has a float output)
                # _record's work, inline: the tape entry's retention is cached per needs
                cached = replay.tapes.get(needs)
                if cached is not None and cached[0] is op.retain_inputs and \
                        cached[1] is op.retain_outputs:
                    node = _Node(op, inputs, attrs or _NO_ATTRS, [out], needs, _grad_mode.scope,
                                 replay.specs, cached[2])
                else:
                    uncached = needs
        t = _new_tensor(Tensor)       # (one store a statement: no tuple built and unpacked)
        t._data = out
        t.dtype = replay.dtype
        t.requires_grad = node is not None
        t.grad = None
        t._node = node
        t._index = 0
        t.name = None
        t._bufcache = None
        t._ptr = (out, pout)
        if uncached is not None:    # recording, its retention not cached yet: _record caches it
            _record(op, inputs, attrs or {}, [out], (t,), replay, needs=uncached)
        return t
    return _apply(op, inputs, attrs or {})


def _apply(op, inputs, attrs):
    for x in inputs:
        if x.symbolic:
            return x.graph.add_node(op, inputs, attrs)
    graph = _local.trace_graph
    if graph is not None:
        for x in inputs:
            if x.requires_grad or getattr(x, "is_parameter", False):
                return graph.add_node(op, inputs, attrs)
    for x in inputs:
        if type(x._data) not in _HOST_ARRAYS:
            return _device_eager(op, inputs, attrs)
    return run_eager(op, inputs, attrs)


# a tensor's memory on the host: a numpy array, or None (a parameter not materialised yet,
# which fails later with its own message)
_HOST_ARRAYS = (np.ndarray, type(None))


def _device_eager(op, inputs, attrs):
    """Some input lives in GPU memory: all must live on that one device (an error names each
    input's device otherwise), and the CUDA backend runs the op as run_eager does on the CPU.
    0-d host tensors that need no gradient (Python numbers made operands: x * 2) follow the
    device, as PyTorch lets CPU scalars meet CUDA tensors."""
    devices = [x.device for x in inputs]
    device = next(d for d in devices if d != "cpu")
    inputs = [x.to(device) if d == "cpu" and x.ndim == 0 and not x.requires_grad else x
              for x, d in zip(inputs, devices)]
    devices = [x.device for x in inputs]
    if len(set(devices)) > 1:
        where = ", ".join("%s on %s" % (op.inputs[i] if i < len(op.inputs) else
                                        op.inputs[-1] + str(i), d) for i, d in enumerate(devices))
        raise errors.DeviceError("%s: inputs on different devices (%s): move them to one device "
                                 "with .to(device) first" % (located(op.name), where))
    from ..backend import cuda

    with cuda.device_scope(device):   # outputs, kernels and cuBLAS on the inputs' GPU
        return run_eager(op, inputs, attrs, cuda)


def run_eager(op, inputs, attrs, backend=cpu):
    """Run op now on concrete inputs (tensors, or shape-only stand-ins for the inputs the op
    reads only the shape of): apply's eager half, also used by constant folding."""
    replay = key = None
    if backend is cpu and not op.view:
        cache = _replays()
        shape_inputs = op.shape_inputs
        try:
            key = [op]               # (flat, as apply() builds it)
            for i, x in enumerate(inputs):
                key += (x.shape if i in shape_inputs else x._data.shape, x.dtype)
            if attrs:
                key += (*attrs.items(), *map(type, attrs.values()))
            key = tuple(key)
            replay = cache.get(key, _UNSEEN)
        except (AttributeError, TypeError):   # a stand-in without memory; an unhashable attr
            key = None
        if replay is None:                    # seen, and not replayable
            key = None
        elif replay is _UNSEEN:
            replay = None
    if replay is not None:
        specs = replay.specs
        arrays = replay.run(op, inputs)
    else:
        specs = infer(op, inputs, attrs)
        if op.view:
            arrays = [inputs[0]._data.reshape(specs[0].shape)]
        else:
            arrays = [backend.empty(s.shape, s.dtype) for s in specs]
            ins = [None if i in op.shape_inputs else x._buf() for i, x in enumerate(inputs)]
            outs = [backend.Buf(a, s.shape, s.dtype) for a, s in zip(arrays, specs)]
            emitter = EagerEmitter(op) if key is None else _Recorder(op)
            if backend is not cpu:
                emitter = backend.Emitter(op, emitter._context())
            op.forward(emitter, ins, outs, attrs)
            if key is not None:
                emitter.store(cache, key, specs, ins + outs)
                replay = cache.get(key)
                if replay is not None:
                    replay.tracks = op.differentiable and bool(replay.floats)
    results = [Tensor._wrap(a, s.dtype) for a, s in zip(arrays, specs)]
    if op.differentiable and _grad_mode.enabled:
        for x in inputs:
            if x.requires_grad:
                _record(op, inputs, attrs, arrays, results, replay, specs)
                break
    return results[0] if op.n_outputs == 1 else tuple(results)


_Node = autograd.Node


def _record(op, inputs, attrs, arrays, results, replay, specs=None, needs=None):
    """The tape entry of an op application that an input needing a gradient took part in."""
    # integer results (a cast to int64, argmax-like outputs) carry no gradient
    floats = replay.floats if replay is not None else _float_outputs(specs)
    if not floats:
        return
    if needs is None:
        needs = tuple([x.requires_grad for x in inputs])
    kept = None
    if replay is not None:
        # (checked against the op's declarations, which a test may change)
        ri, ro = op.retain_inputs, op.retain_outputs
        cached = replay.tapes.get(needs)
        if cached is not None and cached[0] is ri and cached[1] is ro:
            kept = cached[2]
        else:
            kept = autograd.retained(op, attrs, needs)
            replay.tapes[needs] = ri, ro, kept
        specs = replay.specs
    node = autograd.Node(op, inputs, attrs, arrays, needs, _grad_mode.scope, specs, kept)
    for i in floats:
        t = results[i]
        t.requires_grad = True
        t._node = node
        t._index = i


def _float_outputs(specs):
    return [i for i, s in enumerate(specs) if s.dtype.is_float]


def as_operand(x, like=None, dtype=None):
    """Tensors and Symbols pass through; Python numbers and arrays become constant Tensors.

    Python numbers (and lists of them) meeting a tensor (`like`) take the dtype the promotion
    rule gives (dtypes.result_type, PyTorch's), so that `x * 2` stays float32, `labels + 1`
    stays int64 and `labels * 0.5` is float32. Otherwise pf.tensor's rules apply (float32,
    int64 and bool by default, float64 and int32 arrays kept).
    """
    if dtype is not None and type(x) in _NUMBERS:
        return number_operand(x, dtype)
    if hasattr(x, "symbolic"):
        return x
    if dtype is None and like is not None and not isinstance(x, np.ndarray):
        kind = np.asarray(x).dtype.kind
        sample = {"f": 1.0, "i": 1, "u": 1, "b": True}.get(kind)
        if sample is not None:
            dtype = result_type(like.dtype, sample)
    if dtype is None:
        return Tensor(x)
    dtype = as_dtype(dtype)
    arr = np.asarray(x, dtype=dtype.np)
    if not arr.flags.c_contiguous:       # (np.ascontiguousarray would make a 0-d array 1-d)
        arr = np.ascontiguousarray(arr)
    return Tensor._wrap(arr, dtype)


def number_operand(x, dtype):
    """A Python number x as a 0-d constant tensor of dtype (a DType or a name): what
    `x * 1.5` multiplies by. Made once per (value, type, dtype) and shared, tensor and
    read-only array alike (ops never write their inputs, and the constant is no leaf that
    gradients accumulate into); 0 is not shared (-0.0 == 0.0 would share one)."""
    made = _constants.get((x, type(x), dtype))
    if made is None:
        dt = as_dtype(dtype)
        arr = np.asarray(x, dtype=dt.np)
        if not x:
            return Tensor._wrap(arr, dt)
        arr.flags.writeable = False
        if len(_constants) >= 1024:
            _constants.clear()
        made = _constants[(x, type(x), dtype)] = Tensor._wrap(arr, dt)
        made._ptr = arr, _from_buffer(arr)
    return made


def constant_like(x, like, dtype=None):
    """as_operand(x, dtype=dtype) for a constant an op makes itself (a ratio, index array, or
    zeros standing in for an absent input), on the device of the tensor it meets: an op on
    tensors of two devices is refused, so a host constant meeting a GPU tensor follows it.
    Graph symbols and host tensors keep it in host memory."""
    t = as_operand(x, dtype=dtype)
    if not getattr(like, "symbolic", True) and type(like._data) not in _HOST_ARRAYS and \
            not t.symbolic:
        return t.to(like.device)
    return t
