"""ONNX -> pyfront: each ONNX node is applied with pyfront's ops (one table: ONNX op type ->
builder) on symbols, building a pyfront graph with an unknown batch dimension. The model is a
GraphModule over that graph (what pf.load gives for a traced model): it runs eagerly,
hybridizes, trains (float initializers are Parameters) and saves as .pf.

Shape arithmetic (Shape -> Gather -> Concat -> Reshape) is folded while importing; the batch
size is carried through it as a symbol (BatchDim), so reshapes keep the batch dynamic.
"""
import math
import os

import numpy as np

from .. import errors, ops
from ..dtypes import as_dtype
from .common import OnnxError, UnsupportedOnnxError, require_onnx

__all__ = ["load_model", "BUILDERS", "MIN_OPSET"]

MIN_OPSET = 13          # Squeeze/Unsqueeze/Split/ReduceSum take axes as inputs from here on
_BIG = 1 << 62          # Slice bounds past this mean "to the end"
# The batch size while shapes are folded: a large prime, so that a dim of k * PROBE_BATCH is
# recognisably k times the batch (pyfront's symbolic shapes say only "unknown").
PROBE_BATCH = 1000003


class BatchDim:
    """k times the batch size, in a shape computed while importing."""

    __slots__ = ("k",)

    def __init__(self, k=1):
        self.k = k

    def __mul__(self, other):
        if isinstance(other, BatchDim):
            raise UnsupportedOnnxError("a shape uses the batch size squared")
        return BatchDim(self.k * int(other))

    __rmul__ = __mul__

    def __floordiv__(self, other):
        if isinstance(other, BatchDim) and other.k and self.k % other.k == 0:
            return self.k // other.k
        if not isinstance(other, BatchDim) and int(other) and self.k % int(other) == 0:
            return BatchDim(self.k // int(other))
        raise UnsupportedOnnxError("a shape divides the batch size by %r" % (other,))

    __truediv__ = __floordiv__

    def __add__(self, other):
        if not isinstance(other, BatchDim) and int(other) == 0:
            return self
        raise UnsupportedOnnxError("a shape adds %r to the batch size" % (other,))

    __radd__ = __add__
    __sub__ = __add__

    def __eq__(self, other):
        return isinstance(other, BatchDim) and other.k == self.k

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash(("batch", self.k))

    def __int__(self):
        raise UnsupportedOnnxError("a value depends on the batch size")

    __index__ = __int__

    def __repr__(self):
        return "batch" if self.k == 1 else "%d*batch" % self.k


class Initializer:
    """An ONNX initializer: a trainable Parameter where it is used as data (float, more than
    one value), a constant otherwise; its values are always known while importing."""

    __slots__ = ("name", "array")

    def __init__(self, name, array):
        self.name = name
        self.array = array


class BatchFill:
    """A constant whose shape involves the batch size (ConstantOfShape of a Shape): zero
    initial states, mostly, which pyfront's ops take as absent."""

    __slots__ = ("shape", "value")

    def __init__(self, shape, value):
        self.shape = shape
        self.value = value


def _normalized(v):
    """Folded values as numpy arrays: scalars 0-d, shapes int64 unless they hold the batch."""
    if isinstance(v, (Initializer, BatchFill)) or hasattr(v, "symbolic"):
        return v
    v = np.asarray(v)
    if v.dtype == object and not any(isinstance(d, BatchDim) for d in v.reshape(-1)):
        v = v.astype(np.int64)
    return v


def _is_static(v):
    return isinstance(v, (np.ndarray, Initializer))


def _array(v):
    return v.array if isinstance(v, Initializer) else v


# ---------------------------------------------------------------------------------------------

class Importer:
    """Walks the ONNX graph once, binding every value name to a pyfront symbol or, for values
    known while importing, to a numpy array."""

    def __init__(self, proto, input_shapes):
        from ..graph.symbol import Graph

        self.proto = proto
        self.graph = Graph(proto.graph.name or "onnx")
        self.env = {}
        self.params = {}           # parameter name -> Parameter
        self._param_cache = {}     # (initializer name, transform key) -> Parameter
        self.frozen = set()        # parameters that are statistics, not weights
        self.skip = set()          # nodes folded into an earlier node's builder
        self.consumers, self.producers = {}, {}
        for node in proto.graph.node:
            for name in node.input:
                if name:
                    self.consumers.setdefault(name, []).append(node)
            for name in node.output:
                self.producers[name] = node
        self.output_names = {o.name for o in proto.graph.output}
        self.input_shapes = input_shapes or {}
        self._probe = {}           # graph node id -> output shapes at batch PROBE_BATCH
        self.inputs = []           # the graph's input symbols

    def probe_shape(self, sym):
        """The shape of a symbol when the batch is PROBE_BATCH: every node's shape rule
        applied again to concrete shapes (nothing is allocated)."""
        from ..ops.core import Spec

        for node in self.graph.nodes:
            if node.id in self._probe:
                continue
            if node.kind == "op":
                specs = [Spec(self._probe[src.id][k], src.specs[k].dtype)
                         for src, k in node.inputs]
                self._probe[node.id] = [tuple(s.shape) for s in node.op.infer(specs, node.attrs)]
            else:
                self._probe[node.id] = [tuple(PROBE_BATCH if d is None else d
                                              for d in s.shape) for s in node.specs]
        return self._probe[sym.node.id][sym.index]

    # ---- values ----
    def tensor(self, name):
        """A value as something pyfront's ops take (a Symbol, a Parameter or a constant)."""
        v = self.env[name]
        if isinstance(v, Initializer):
            if v.array.dtype.kind == "f" and v.array.size > 1:
                # as a graph variable, so that every op on it is a graph node (an op applied
                # to a bare Parameter would run eagerly and leave a nameless copy)
                return self.graph.variable(self.param(name))
            v = v.array
        if isinstance(v, BatchFill):
            v = self.env[name] = self._fill(name, v)
        if isinstance(v, np.ndarray):
            if v.dtype == object:
                raise UnsupportedOnnxError("value %r depends on the batch size and is used as "
                                           "data" % name)
            from ..tensor import Tensor

            return Tensor(np.ascontiguousarray(v))
        return v

    def _fill(self, name, fill):
        """A batch-sized constant used as data (torch.zeros_like(x), say): the value broadcast
        to a symbol of its shape cut from a batch-carrying input."""
        from ..tensor import Tensor

        shape = [None if d == BatchDim(1) else d for d in fill.shape]
        if not shape or shape[0] is not None or any(isinstance(d, BatchDim) or d is None
                                                    for d in shape[1:]):
            raise UnsupportedOnnxError("value %r (a constant of shape %s) depends on the batch "
                                       "size other than in its first dim" % (name, fill.shape))
        value = Tensor(np.full([1] * len(shape), fill.value))
        return ops.expand_like(value, _batch_shaped(self, [None] + [int(d) for d in shape[1:]]))

    def static(self, name, what):
        v = self.env.get(name) if name else None
        if not _is_static(v):
            raise UnsupportedOnnxError("%s must be known when the model is imported (a "
                                       "constant or initializer), but %r is computed" % (what,
                                                                                         name))
        return _array(v)

    def param(self, name, transform=None, key=None, suffix="", trainable=True):
        """The initializer `name` as a Parameter, optionally transformed into pyfront's
        layout once, here, rather than on every call."""
        v = self.env[name]
        if not isinstance(v, Initializer):
            raise UnsupportedOnnxError("%r must be an initializer (weights)" % name)
        cache_key = (name, key)
        p = self._param_cache.get(cache_key)
        if p is None:
            from ..nn.module import Parameter

            array = np.ascontiguousarray(transform(v.array) if transform else v.array)
            pname = name + suffix
            while pname in self.params:
                pname += "_"
            p = Parameter(array, name=pname, dtype=as_dtype(array.dtype))
            self.params[pname] = p
            self._param_cache[cache_key] = p
            if not trainable:
                self.frozen.add(pname)
        return p

    def is_initializer(self, name):
        return isinstance(self.env.get(name), Initializer)

    def only_consumer(self, node, op_types):
        """The one node reading this node's single output, when it is one of op_types and the
        output is not a graph output (so it can be folded in)."""
        out = node.output[0]
        users = self.consumers.get(out, [])
        if len(users) == 1 and out not in self.output_names and users[0].op_type in op_types:
            return users[0]
        return None

    # ---- running ----
    def run(self):
        onnx = require_onnx()
        from onnx import numpy_helper

        g = self.proto.graph
        for init in g.initializer:
            self.env[init.name] = Initializer(init.name, _initializer_array(init, numpy_helper))
        inputs = self.inputs = []
        for vi in g.input:
            if vi.name in self.env:
                continue                    # an initializer listed as an input (IR < 4)
            shape, dtype = self._input_spec(vi, onnx)
            sym = self.graph.placeholder(vi.name, shape, dtype)
            self.env[vi.name] = sym
            inputs.append(sym)
        for node in g.node:
            if node.output[0] in self.skip:
                continue
            builder = BUILDERS[node.op_type]
            try:
                outs = builder(self, node)
            except (UnsupportedOnnxError, errors.ShapeError, errors.DTypeError, ValueError,
                    TypeError, IndexError) as e:
                # (IndexError: a value of the wrong rank in a damaged or hand-made file)
                raise UnsupportedOnnxError("ONNX node %r (%s): %s"
                                           % (node.name, node.op_type, e)) from None
            outs = outs if isinstance(outs, (list, tuple)) else [outs]
            for name, v in zip(node.output, outs):
                if name:
                    self.env[name] = _normalized(v)
        outputs = []
        for vi in g.output:
            v = self.env[vi.name]
            if not hasattr(v, "symbolic") or not v.symbolic:
                v = self.graph.constant(self.tensor(vi.name))
            outputs.append(v)
        return inputs, outputs

    def _input_spec(self, vi, onnx):
        t = vi.type.tensor_type
        dtype = as_dtype(np.dtype(onnx.helper.tensor_dtype_to_np_dtype(t.elem_type)))
        given = self.input_shapes.get(vi.name)
        dims = []
        for i, d in enumerate(t.shape.dim):
            if d.HasField("dim_value"):
                dims.append(int(d.dim_value))
            elif i == 0:
                dims.append(None)           # the batch
            elif given is not None:
                dims.append(int(given[i]))
            else:
                raise OnnxError(
                    "input %r has a symbolic dimension %d (%r) besides the batch: pass "
                    "input_shapes={%r: (...)} to fix it" % (vi.name, i, d.dim_param or "?",
                                                            vi.name))
        if given is not None and len(given) != len(dims):
            raise OnnxError("input_shapes[%r] has %d dims but the input has %d"
                            % (vi.name, len(given), len(dims)))
        return dims, dtype


def _default_opset(proto):
    for imp in proto.opset_import:
        if imp.domain in ("", "ai.onnx"):
            return imp.version
    raise OnnxError("the model imports no version of the default ONNX operator set")


def _initializer_array(init, numpy_helper):
    dims = tuple(init.dims)
    if init.HasField("raw_data"):
        from onnx import helper

        itemsize = np.dtype(helper.tensor_dtype_to_np_dtype(init.data_type)).itemsize
        need = math.prod(dims) * itemsize
        if len(init.raw_data) != need:
            raise OnnxError("initializer %r holds %d bytes, but shape %s of %s needs %d"
                            % (init.name, len(init.raw_data), dims,
                               helper.tensor_dtype_to_np_dtype(init.data_type), need))
    try:
        arr = numpy_helper.to_array(init)
    except Exception as e:  # noqa: BLE001 (onnx raises ValueError, TypeError, ... for bad data)
        raise OnnxError("initializer %r (shape %s): its data does not match its shape and "
                        "type: %s" % (init.name, dims, e)) from None
    if arr.shape != dims:
        raise OnnxError("initializer %r: %d values for shape %s" % (init.name, arr.size, dims))
    return arr


# ---------------------------------------------------------------------------------------------
# attributes

def _attrs(node):
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _attr(node, name, default=None):
    for a in node.attribute:
        if a.name == name:
            from onnx import helper

            v = helper.get_attribute_value(a)
            return v.decode() if isinstance(v, bytes) else v
    return default


def _input(node, i):
    return node.input[i] if len(node.input) > i and node.input[i] else None


def _ints(imp, node, i, attr_name, what):
    """Ints given as input i (newer opsets) or as an attribute (older ones)."""
    name = _input(node, i)
    if name is not None:
        return [int(v) for v in np.asarray(imp.static(name, what)).reshape(-1)]
    v = _attr(node, attr_name)
    return None if v is None else [int(a) for a in v]


def _rank(x):
    return len(x.shape)


def _norm_axis(axis, rank):
    return axis + rank if axis < 0 else axis


# ---------------------------------------------------------------------------------------------
# builders: fn(importer, node) -> value(s) for node.output

def _elementwise(pf_fn, np_fn):
    """A map over its inputs: folded with numpy when every input is known."""
    def build(imp, node):
        names = [n for n in node.input if n]
        if np_fn is not None and all(_is_static(imp.env[n]) for n in names):
            return np.asarray(np_fn(*[_array(imp.env[n]) for n in names]))
        return pf_fn(*[imp.tensor(n) for n in names])
    return build


def _variadic(pf_fn, np_fn):
    def build(imp, node):
        names = [n for n in node.input if n]
        if all(_is_static(imp.env[n]) for n in names):
            out = _array(imp.env[names[0]])
            for n in names[1:]:
                out = np_fn(out, _array(imp.env[n]))
            return np.asarray(out)
        out = imp.tensor(names[0])
        for n in names[1:]:
            out = pf_fn(out, imp.tensor(n))
        return out
    return build


def _int_div(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind in "iuO" and b.dtype.kind in "iuO":
        return a // b
    return a / b


def _identity(imp, node):
    return imp.env[node.input[0]]


def _build_dropout(imp, node):
    if len(node.output) > 1 and node.output[1]:
        if imp.consumers.get(node.output[1]) or node.output[1] in imp.output_names:
            raise UnsupportedOnnxError("the mask output of Dropout is used")
    return imp.env[node.input[0]]


_FUSED = {"Relu": "relu", "Sigmoid": "sigmoid", "Tanh": "tanh"}


def _fuse_activation(imp, node, allowed):
    """The activation that follows node (fused into its kernel), marking it as done."""
    nxt = imp.only_consumer(node, [t for t, a in _FUSED.items() if a in allowed])
    if nxt is None:
        return None, node
    imp.skip.add(nxt.output[0])
    return _FUSED[nxt.op_type], nxt


def _bind_fused(imp, first, last, value):
    """Outputs of a fused chain: the last node's output carries the value."""
    if last is not first:
        imp.env[last.output[0]] = value
    return value


_LINEAR_ACTS = ("relu", "sigmoid", "tanh")


def _build_gemm(imp, node):
    a = _attrs(node)
    alpha, beta = a.get("alpha", 1.0), a.get("beta", 1.0)
    x = imp.tensor(node.input[0])
    if a.get("transA", 0):
        x = ops.transpose(x)
    b_name, trans_b = node.input[1], bool(a.get("transB", 0))
    c_name = _input(node, 2)
    if imp.is_initializer(b_name) and imp.env[b_name].array.ndim != 2:
        raise UnsupportedOnnxError("Gemm's B must be a matrix, got shape %s"
                                   % (imp.env[b_name].array.shape,))
    if imp.is_initializer(b_name) and alpha == 1.0:
        kernel = imp.param(b_name, np.transpose if trans_b else None, key="T" if trans_b else None)
        bias = None
        if c_name is not None and beta == 1.0 and imp.is_initializer(c_name) and \
                tuple(imp.env[c_name].array.shape) == (kernel.shape[1],):
            bias, c_name = imp.param(c_name), None
        act, last = _fuse_activation(imp, node, _LINEAR_ACTS) if c_name is None else (None, node)
        y = ops.linear(x, kernel, bias, activation=act)
    else:
        y = ops.matmul(x, imp.tensor(b_name), transpose_b=trans_b)
        if alpha != 1.0:
            y = y * alpha
        last = node
    if c_name is not None:
        c = imp.tensor(c_name)
        y = y + (c * beta if beta != 1.0 else c)
    return _bind_fused(imp, node, last, y)


def _build_matmul(imp, node):
    a_name, b_name = node.input[0], node.input[1]
    if not imp.is_initializer(b_name) or imp.env[b_name].array.ndim != 2 or \
            _is_static(imp.env[a_name]):
        return ops.matmul(imp.tensor(a_name), imp.tensor(b_name))
    kernel = imp.param(b_name)
    bias, last = None, node
    add = imp.only_consumer(node, ["Add"])
    if add is not None:
        other = add.input[1] if add.input[0] == node.output[0] else add.input[0]
        if imp.is_initializer(other) and \
                tuple(imp.env[other].array.shape) == (kernel.shape[1],):
            bias, last = imp.param(other), add
            imp.skip.add(add.output[0])
    act = None
    if bias is not None:
        act, after = _fuse_activation(imp, last, _LINEAR_ACTS)
        last = after
    y = ops.linear(imp.tensor(a_name), kernel, bias, activation=act)
    return _bind_fused(imp, node, last, y)


def _conv_padding(node, x_shape, kernel, strides, dilations):
    auto = _attr(node, "auto_pad", "NOTSET")
    nd = len(kernel)
    if auto == "VALID":
        return "valid"
    if auto == "SAME_UPPER":
        return "same"
    if auto == "SAME_LOWER":
        pads = []
        for n, k, s, d in zip(x_shape[2:], kernel, strides, dilations):
            total = max((-(-n // s) - 1) * s + d * (k - 1) + 1 - n, 0)
            pads.append((total - total // 2, total // 2))
        return tuple(pads)
    p = list(_attr(node, "pads", [0] * (2 * nd)))
    return tuple((int(p[i]), int(p[i + nd])) for i in range(nd))


def _build_conv(imp, node):
    x = imp.tensor(node.input[0])
    w_name = node.input[1]
    w = imp.param(w_name) if imp.is_initializer(w_name) else imp.tensor(w_name)
    nd = len(w.shape) - 2
    if nd not in (1, 2, 3):
        raise UnsupportedOnnxError("%d-D convolution" % nd)
    kernel = list(w.shape[2:])
    strides = list(_attr(node, "strides", [1] * nd))
    dil = list(_attr(node, "dilations", [1] * nd))
    b_name = _input(node, 2)
    bias = None if b_name is None else (imp.param(b_name) if imp.is_initializer(b_name)
                                        else imp.tensor(b_name))
    act, last = _fuse_activation(imp, node, _LINEAR_ACTS)
    fn = {1: ops.conv1d, 2: ops.conv2d, 3: ops.conv3d}[nd]
    y = fn(x, w, bias, strides=strides, padding=_conv_padding(node, x.shape, kernel, strides, dil),
           dilation=dil, groups=int(_attr(node, "group", 1)), activation=act)
    return _bind_fused(imp, node, last, y)


def _conv_transpose_pads(node, a, in_sizes, kernel, strides, dilations, output_padding):
    """(begin pads, end pads, output_padding) of a ConvTranspose: the pads given, or worked
    out from output_shape or auto_pad SAME as ONNX says (the odd one at the end for
    SAME_UPPER, at the start otherwise); an output_shape past the unpadded size grows
    output_padding, as in ONNX Runtime."""
    nd = len(kernel)
    auto = _attr(node, "auto_pad", "NOTSET")
    target = a.get("output_shape")
    if target is None and auto not in ("SAME_UPPER", "SAME_LOWER"):
        pads = list(a.get("pads", [0] * (2 * nd)))
        return pads[:nd], pads[nd:], output_padding
    if None in tuple(in_sizes):
        raise UnsupportedOnnxError("output_shape or auto_pad %s with unknown spatial input "
                                   "sizes %s" % (auto, tuple(in_sizes)))
    target = [n * s for n, s in zip(in_sizes, strides)] if target is None else list(target)
    begin, end, output_padding = [], [], list(output_padding)
    for d in range(nd):
        full = (in_sizes[d] - 1) * strides[d] + output_padding[d] + \
            (kernel[d] - 1) * dilations[d] + 1
        total = full - int(target[d])
        if total < 0:
            output_padding[d] -= total
            total = 0
        small, large = total // 2, total - total // 2
        begin.append(small if auto == "SAME_UPPER" else large)
        end.append(large if auto == "SAME_UPPER" else small)
    return begin, end, output_padding


def _build_conv_transpose(imp, node):
    a = _attrs(node)
    x = imp.tensor(node.input[0])
    w_name = node.input[1]
    w = imp.param(w_name) if imp.is_initializer(w_name) else imp.tensor(w_name)
    nd = len(w.shape) - 2
    if nd not in (1, 2, 3):
        raise UnsupportedOnnxError("%d-D ConvTranspose" % nd)
    strides = list(a.get("strides", [1] * nd))
    dilations = list(a.get("dilations", [1] * nd))
    begin, end, output_padding = _conv_transpose_pads(
        node, a, x.shape[2:], w.shape[2:], strides, dilations,
        list(a.get("output_padding", [0] * nd)))
    common = [min(b, e) for b, e in zip(begin, end)]   # pyfront pads both ends alike
    b_name = _input(node, 2)
    # the bias is reshaped before it meets x: as a graph variable, so that the reshape is a
    # graph node and not an eager copy the graph would hold as a nameless tensor
    bias = None if b_name is None else (imp.graph.variable(imp.param(b_name))
                                        if imp.is_initializer(b_name) else imp.tensor(b_name))
    fn = {1: ops.conv_transpose1d, 2: ops.conv_transpose2d, 3: ops.conv_transpose3d}[nd]
    y = fn(x, w, bias, strides, common, output_padding, dilations, int(a.get("group", 1)))
    if common != begin or common != end:             # the rest of uneven padding: a crop
        key = (slice(None), slice(None)) + tuple(
            slice(b - c, y.shape[2 + i] - (e - c)) for i, (b, e, c) in
            enumerate(zip(begin, end, common)))
        y = ops.getitem(y, key)
    return y


# Resize "nearest" with whole-number scales repeats each element: for these coordinate
# modes and rounding rules the source index of output i is i // scale
_REPEATING_RESIZE = {("half_pixel", "round_prefer_floor"), ("half_pixel", "round_prefer_ceil"),
                     ("pytorch_half_pixel", "round_prefer_floor"),
                     ("pytorch_half_pixel", "round_prefer_ceil")}


def _resize_geometry(imp, node, x):
    """(output sizes, scale factors) of the spatial dims; batch and channels must stay."""
    rank = _rank(x)
    scales_name, sizes_name = _input(node, 2), _input(node, 3)
    in_sizes = list(x.shape)
    if sizes_name is not None:
        sizes = list(np.asarray(imp.static(sizes_name, "Resize sizes")).reshape(-1))
        axes = [_norm_axis(a, rank) for a in _attr(node, "axes", list(range(rank)))]
        out = list(in_sizes)
        for axis, size in zip(axes, sizes):      # the batch's own entry is the batch size
            out[axis] = None if in_sizes[axis] is None else int(size)
        factors = [1.0 if n is None else o / n for n, o in zip(in_sizes, out)]
    else:
        factors = [float(f) for f in np.asarray(imp.static(scales_name, "Resize scales"))
                   .reshape(-1)]
        out = [n if n is None else int(np.floor(n * f)) for n, f in zip(in_sizes, factors)]
    if len(factors) != rank or factors[:2] != [1.0, 1.0]:
        raise UnsupportedOnnxError("Resize by %s (the spatial dims only)" % (factors,))
    return out[2:], factors[2:], sizes_name is not None


def _source_coords(coords, n_in, n_out, scale):
    """Where output positions 0..n_out-1 of one axis fall in the input, by ONNX's
    coordinate_transformation_mode, in float32 as ONNX Runtime computes them."""
    f32 = np.float32
    dst = np.arange(n_out, dtype=f32)
    scale = f32(scale)
    if coords == "half_pixel":
        return (dst + f32(0.5)) / scale - f32(0.5)
    if coords == "pytorch_half_pixel":
        return (dst + f32(0.5)) / scale - f32(0.5) if n_out > 1 else np.zeros(n_out, f32)
    if coords == "align_corners":
        return dst * f32(n_in - 1) / f32(n_out - 1) if n_out > 1 else np.zeros(n_out, f32)
    if coords == "asymmetric":
        return dst / scale
    if coords == "tf_half_pixel_for_nn":
        return (dst + f32(0.5)) / scale
    if coords == "half_pixel_symmetric":
        adjustment = f32(n_out) / (scale * f32(n_in))
        offset = f32(n_in / 2) * (f32(1) - adjustment)
        return offset + (dst + f32(0.5)) / scale - f32(0.5)
    raise UnsupportedOnnxError("Resize coordinate_transformation_mode=%s" % coords)


_NEAREST = {"floor": np.floor, "ceil": np.ceil,
            "round_prefer_floor": lambda v: np.ceil(v - np.float32(0.5)),
            "round_prefer_ceil": lambda v: np.floor(v + np.float32(0.5))}


def _cubic_weights(ratio, a):
    """The four weights of Keys' cubic convolution for the neighbours at -1, 0, 1, 2 of
    floor(position), ratio = position - floor (ONNX Runtime's GetCubicCoeffs)."""
    r = ratio.astype(np.float64)
    return [((a * (r + 1) - 5 * a) * (r + 1) + 8 * a) * (r + 1) - 4 * a,
            ((a + 2) * r - (a + 3)) * r * r + 1,
            ((a + 2) * (1 - r) - (a + 3)) * (1 - r) * (1 - r) + 1,
            ((a * (2 - r) - 5 * a) * (2 - r) + 8 * a) * (2 - r) - 4 * a]


def _resize_taps(node, mode, n_in, n_out, scale):
    """[(input indices, weights or None)] of one axis: output i is the sum over the taps of
    weights[i] * x[indices[i]]."""
    src = _source_coords(_attr(node, "coordinate_transformation_mode", "half_pixel"), n_in,
                         n_out, scale)
    last = n_in - 1
    if mode == "nearest":
        rounding = _attr(node, "nearest_mode", "round_prefer_floor")
        if rounding not in _NEAREST:
            raise UnsupportedOnnxError("Resize nearest_mode=%s" % rounding)
        return [(np.clip(_NEAREST[rounding](src), 0, last).astype(np.int64), None)]
    if mode == "linear":
        src = np.clip(src, 0, last)
        lo = np.floor(src).astype(np.int64)
        frac = (src - lo).astype(np.float64)
        return [(lo, 1.0 - frac), (np.minimum(lo + 1, last), frac)]
    if mode != "cubic":
        raise UnsupportedOnnxError("Resize mode=%s" % mode)
    base = np.floor(src).astype(np.int64)
    weights = _cubic_weights(src - base, float(_attr(node, "cubic_coeff_a", -0.75)))
    indices = [base + k for k in (-1, 0, 1, 2)]
    if _attr(node, "exclude_outside", 0):     # neighbours outside the input weigh nothing
        weights = [np.where((i < 0) | (i > last), 0.0, w) for i, w in zip(indices, weights)]
        total = sum(weights)
        weights = [w / total for w in weights]
    return [(np.clip(i, 0, last), w) for i, w in zip(indices, weights)]


def _resample(x, axis, taps):
    """x along one axis as the weighted sum of the taps' takes (interpolate's own method)."""
    from ..tensor import Tensor

    out = None
    for indices, weights in taps:
        if weights is not None and not np.any(weights):
            continue
        if weights is None and np.array_equal(indices, np.arange(x.shape[axis])):
            part = x
        else:
            part = ops.take(x, indices, axis)
        if weights is not None:
            shape = (-1,) + (1,) * (len(x.shape) - 1 - axis)
            part = part * Tensor(np.ascontiguousarray(weights.reshape(shape),
                                                      dtype=x.dtype.np))
        out = part if out is None else out + part
    return out


def _build_resize(imp, node):
    x = imp.tensor(node.input[0])
    mode = _attr(node, "mode", "nearest")
    coords = _attr(node, "coordinate_transformation_mode", "half_pixel")
    rounding = _attr(node, "nearest_mode", "round_prefer_floor")
    sizes, factors, by_size = _resize_geometry(imp, node, x)
    if _attr(node, "antialias", 0) and any(f < 1 for f in factors):
        raise UnsupportedOnnxError("Resize with antialias=1 shrinking by %s" % (factors,))
    if _attr(node, "keep_aspect_ratio_policy", "stretch") != "stretch" and by_size:
        raise UnsupportedOnnxError("Resize keep_aspect_ratio_policy=%s"
                                   % _attr(node, "keep_aspect_ratio_policy"))
    given = {"size": sizes} if by_size else {"scale_factor": factors}
    if mode == "nearest" and (coords, rounding) == ("asymmetric", "floor"):
        return ops.interpolate(x, mode="nearest", **given)       # PyTorch's nearest
    if mode == "nearest" and (coords, rounding) in _REPEATING_RESIZE and \
            all(f == int(f) for f in factors):
        for d, f in enumerate(factors):
            if f > 1:
                x = ops.repeat_interleave(x, int(f), 2 + d)
        return x
    if mode == "linear" and (coords == "half_pixel" or coords == "align_corners" or
                             (coords == "pytorch_half_pixel" and min(sizes) > 1)):
        return ops.interpolate(x, mode="linear", align_corners=coords == "align_corners",
                               **given)
    # any other setting: one weighted sum of takes per axis, with ONNX's rules
    for d, (n_out, factor) in enumerate(zip(sizes, factors)):
        x = _resample(x, 2 + d, _resize_taps(node, mode, x.shape[2 + d], n_out, factor))
    return x


def _build_pool(kind):
    def build(imp, node):
        x = imp.tensor(node.input[0])
        nd = _rank(x) - 2
        ceil_mode = bool(_attr(node, "ceil_mode", 0))
        dilation = list(_attr(node, "dilations", [1] * nd))
        if len(node.output) > 1 and node.output[1]:
            raise UnsupportedOnnxError("the Indices output of MaxPool")
        k = list(_attr(node, "kernel_shape"))
        strides = list(_attr(node, "strides", [1] * nd))
        padding = _conv_padding(node, x.shape, k, strides, dilation)
        if kind == "max":
            fn = {1: ops.max_pool1d, 2: ops.max_pool2d, 3: ops.max_pool3d}[nd]
            return fn(x, k, strides, padding, dilation=dilation, ceil_mode=ceil_mode)
        if any(d != 1 for d in dilation):
            raise UnsupportedOnnxError("dilated average pooling")
        fn = {1: ops.avg_pool1d, 2: ops.avg_pool2d, 3: ops.avg_pool3d}[nd]
        return fn(x, k, strides, padding, ceil_mode=ceil_mode,
                  count_include_pad=bool(_attr(node, "count_include_pad", 0)))
    return build


def _build_global_pool(fn):
    return lambda imp, node: fn(imp.tensor(node.input[0]), keepdims=True)


def _build_batch_norm(imp, node):
    if _attr(node, "training_mode", 0) or any(o for o in node.output[1:]):
        raise UnsupportedOnnxError("the training form of BatchNormalization")
    x = imp.tensor(node.input[0])
    names = node.input[1:5]

    def vec(name, trainable):
        return imp.param(name, trainable=trainable) if imp.is_initializer(name) \
            else imp.tensor(name)
    gamma, beta = vec(names[0], True), vec(names[1], True)
    mean, var = vec(names[2], False), vec(names[3], False)
    return ops.batch_norm(x, mean, var, gamma, beta, training=False,
                          eps=float(_attr(node, "epsilon", 1e-5)))


def _build_layer_norm(imp, node):
    if any(o for o in node.output[1:]):
        raise UnsupportedOnnxError("the Mean/InvStdDev outputs of LayerNormalization")
    x = imp.tensor(node.input[0])
    axis = _norm_axis(int(_attr(node, "axis", -1)), _rank(x))
    shape = tuple(x.shape[axis:])
    scale = imp.param(node.input[1]) if imp.is_initializer(node.input[1]) \
        else imp.tensor(node.input[1])
    b_name = _input(node, 2)
    bias = None if b_name is None else (imp.param(b_name) if imp.is_initializer(b_name)
                                        else imp.tensor(b_name))
    return ops.layer_norm(x, shape, scale, bias, eps=float(_attr(node, "epsilon", 1e-5)))


def _build_softmax(fn):
    def build(imp, node):
        x = imp.tensor(node.input[0])
        axis = int(_attr(node, "axis", -1))      # opset 13's meaning: one axis
        return fn(x, axis)
    return build


def _build_flatten(imp, node):
    x = imp.env[node.input[0]]
    axis = int(_attr(node, "axis", 1))
    if _is_static(x):
        a = _array(x)
        axis = _norm_axis(axis, a.ndim)
        return a.reshape(int(np.prod(a.shape[:axis])), -1)
    axis = _norm_axis(axis, _rank(x))
    rest = x.shape[axis:]
    if None in rest:
        raise UnsupportedOnnxError("Flatten of the batch dimension into the features")
    return ops.reshape(x, (-1 if None in x.shape[:axis] else math.prod(x.shape[:axis]),
                           math.prod(rest)))


def _as_probe(d):
    return d.k * PROBE_BATCH if isinstance(d, BatchDim) else int(d)


def _from_probe(d):
    return BatchDim(d // PROBE_BATCH) if d % PROBE_BATCH == 0 and d else d


def _reshape_target(probe_in, target, allowzero):
    """ONNX's reshape target (0 copies a dim, -1 infers one, BatchDim is the batch) as a
    pyfront one, worked out at the probe batch size: the dim that holds the batch becomes
    pyfront's -1, every other dim is fixed."""
    out = [probe_in[i] if (not isinstance(d, BatchDim) and int(d) == 0 and not allowzero)
           else _as_probe(d) for i, d in enumerate(target)]
    total = math.prod(probe_in)
    if -1 in out:
        rest = math.prod(d for d in out if d != -1)
        if rest == 0 or total % rest:
            raise UnsupportedOnnxError("cannot reshape %s to %s" % (probe_in, target))
        out[out.index(-1)] = total // rest
    if math.prod(out) != total:
        raise UnsupportedOnnxError("cannot reshape %s to %s" % (probe_in, target))
    batch = [i for i, d in enumerate(out) if isinstance(_from_probe(d), BatchDim)]
    if len(batch) > 1:
        raise UnsupportedOnnxError("a reshape to %s puts the batch size in two places" % (target,))
    if batch:
        out[batch[0]] = -1
    return tuple(out)


def _build_reshape(imp, node):
    x = imp.env[node.input[0]]
    target = list(np.asarray(imp.static(node.input[1], "the target shape of Reshape")))
    allowzero = int(_attr(node, "allowzero", 0))
    if _is_static(x):
        a = _array(x)
        shape = [a.shape[i] if (int(d) == 0 and not allowzero) else int(d)
                 for i, d in enumerate(target)]
        return a.reshape(shape)
    target = _reshape_target(imp.probe_shape(x), target, allowzero)
    if -1 in target[1:] and None in x.shape:
        # pyfront's shape rule can place an unknown dim only in front: go through
        # (batch-holding, rest), two views of the same data
        x = ops.reshape(x, (-1, math.prod(d for d in target if d != -1)))
    return ops.reshape(x, target)


def _build_shape(imp, node):
    x = imp.env[node.input[0]]
    dims = list(_array(x).shape) if _is_static(x) else \
        [_from_probe(d) for d in imp.probe_shape(x)]
    start = int(_attr(node, "start", 0))
    end = _attr(node, "end")
    dims = dims[start:] if end is None else dims[start:int(end)]
    if any(isinstance(d, BatchDim) for d in dims):
        return np.array(dims, dtype=object)
    return np.array(dims, dtype=np.int64)


def _build_transpose(imp, node):
    x = imp.env[node.input[0]]
    rank = _array(x).ndim if _is_static(x) else _rank(x)
    perm = list(_attr(node, "perm", list(range(rank))[::-1]))
    if _is_static(x):
        return np.transpose(_array(x), perm)
    return ops.permute(x, *perm)


def _build_unsqueeze(imp, node):
    x = imp.env[node.input[0]]
    axes = _ints(imp, node, 1, "axes", "the axes of Unsqueeze")
    rank = (_array(x).ndim if _is_static(x) else _rank(x)) + len(axes)
    axes = sorted(_norm_axis(a, rank) for a in axes)
    if _is_static(x):
        a = _array(x)
        for ax in axes:
            a = np.expand_dims(a, ax)
        return a
    for ax in axes:
        x = ops.expand_dims(x, ax)
    return x


def _build_squeeze(imp, node):
    x = imp.env[node.input[0]]
    axes = _ints(imp, node, 1, "axes", "the axes of Squeeze")
    if _is_static(x):
        return np.squeeze(_array(x), axis=None if axes is None else tuple(axes))
    return ops.squeeze(x, None if axes is None else tuple(axes))


def _build_concat(imp, node):
    axis = int(_attr(node, "axis"))
    names = [n for n in node.input if n]
    if all(_is_static(imp.env[n]) for n in names):
        arrays = [np.asarray(_array(imp.env[n])) for n in names]
        kind = object if any(a.dtype == object for a in arrays) else None
        return np.concatenate([a.astype(kind) if kind else a for a in arrays], axis=axis)
    return ops.concat([imp.tensor(n) for n in names], axis=axis)


def _build_gather(imp, node):
    axis = int(_attr(node, "axis", 0))
    data, idx = imp.env[node.input[0]], imp.env[node.input[1]]
    if _is_static(data) and _is_static(idx) and not (
            isinstance(data, Initializer) and data.array.dtype.kind == "f"
            and data.array.size > 1):
        return np.take(_array(data), _array(idx), axis=axis)
    if _is_static(idx):
        idx = np.asarray(_array(idx)).astype(np.int64)
        if idx.ndim == 0:       # one position: a slice, no index tensor
            x = imp.tensor(node.input[0])
            return ops.getitem(x, (slice(None),) * _norm_axis(axis, _rank(x)) + (int(idx),))
    else:
        idx = imp.tensor(node.input[1])
    return ops.take(imp.tensor(node.input[0]), idx, axis=axis)


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "edge": "replicate",
              "wrap": "circular"}


def _build_pad(imp, node):
    x = imp.tensor(node.input[0])
    rank = _rank(x)
    pads = [int(v) for v in np.asarray(imp.static(node.input[1], "the pads of Pad")).reshape(-1)]
    axes = _ints(imp, node, 3, "axes", "the axes of Pad") or list(range(rank))
    if any(p < 0 for p in pads):
        raise UnsupportedOnnxError("negative pads (cropping) %s" % pads)
    pairs = [(0, 0)] * rank
    for i, axis in enumerate(axes):
        pairs[_norm_axis(axis, rank)] = (pads[i], pads[i + len(axes)])
    value = _input(node, 2)
    value = 0.0 if value is None else float(np.asarray(imp.static(value, "Pad's value")))
    mode = _attr(node, "mode", "constant")
    return ops.pad(x, pairs, mode=_PAD_MODES[mode], value=value)


def _build_gather_elements(imp, node):
    return ops.gather(imp.tensor(node.input[0]), int(_attr(node, "axis", 0)),
                      imp.tensor(node.input[1]))


def _slice_bound(v):
    v = int(v)
    return None if abs(v) >= _BIG else v


def _build_slice(imp, node):
    x = imp.env[node.input[0]]
    starts = list(np.asarray(imp.static(node.input[1], "Slice starts")).reshape(-1))
    ends = list(np.asarray(imp.static(node.input[2], "Slice ends")).reshape(-1))
    rank = _array(x).ndim if _is_static(x) else _rank(x)
    axes = _ints(imp, node, 3, "axes", "Slice axes") or list(range(len(starts)))
    steps = _ints(imp, node, 4, "steps", "Slice steps") or [1] * len(starts)
    key = [slice(None)] * rank
    shape = _array(x).shape if _is_static(x) else x.shape
    for s, e, a, st in zip(starts, ends, axes, steps):
        axis = _norm_axis(int(a), rank)
        batch_axis = shape[axis] is None or isinstance(shape[axis], BatchDim)
        if e == BatchDim(1) and batch_axis and not isinstance(s, BatchDim) and \
                int(s) == 0 and int(st) == 1:
            continue            # the batch dim up to the batch size (an operand's Shape)
        if isinstance(s, BatchDim) or isinstance(e, BatchDim):
            raise UnsupportedOnnxError("a slice bounded by the batch size")
        key[axis] = slice(_slice_bound(s), _slice_bound(e), int(st))
    if _is_static(x):
        return _array(x)[tuple(key)]
    if isinstance(x, BatchFill):        # the initial states of one layer of a stacked RNN
        return BatchFill(_sliced_shape(x.shape, key), x.value)
    return ops.getitem(x, tuple(key))


def _sliced_shape(shape, key):
    out = []
    for d, k in zip(shape, key):
        if isinstance(d, BatchDim):
            if k != slice(None):
                raise UnsupportedOnnxError("a slice of the batch dimension")
            out.append(d)
        else:
            out.append(len(range(*k.indices(int(d)))))
    return out


def _build_split(imp, node):
    x = imp.env[node.input[0]]
    axis = int(_attr(node, "axis", 0))
    sizes = _ints(imp, node, 1, "split", "the sizes of Split")
    rank = _array(x).ndim if _is_static(x) else _rank(x)
    axis = _norm_axis(axis, rank)
    n_out = len(node.output)
    if sizes is None:
        dim = (_array(x).shape if _is_static(x) else x.shape)[axis]
        parts = int(_attr(node, "num_outputs", n_out))
        each = -(-dim // parts)
        sizes = [min(each, dim - i * each) for i in range(parts)]
    if _is_static(x):
        return np.split(_array(x), np.cumsum(sizes)[:-1], axis=axis)
    return list(ops.split(x, sizes, axis))


def _build_cast(imp, node):
    from onnx import helper

    to = np.dtype(helper.tensor_dtype_to_np_dtype(int(_attr(node, "to"))))
    x = imp.env[node.input[0]]
    if _is_static(x):
        a = np.asarray(_array(x))
        return a if (a.dtype == object and to.kind in "iu") else a.astype(to)
    return ops.cast(x, as_dtype(to))


def _build_constant(imp, node):
    from onnx import numpy_helper

    a = node.attribute[0]
    if a.name == "value":
        return numpy_helper.to_array(a.t)
    v = _attr(node, a.name)
    if a.name in ("value_float", "value_floats"):
        return np.asarray(v, dtype=np.float32)
    if a.name in ("value_int", "value_ints"):
        return np.asarray(v, dtype=np.int64)
    raise UnsupportedOnnxError("Constant with a %s attribute" % a.name)


def _build_constant_of_shape(imp, node):
    from onnx import numpy_helper

    shape = np.asarray(imp.static(node.input[0], "the shape of ConstantOfShape"))
    value = _attr(node, "value")
    fill = numpy_helper.to_array(value).reshape(-1)[0] if value is not None \
        else np.float32(0)
    if shape.dtype == object:
        return BatchFill(list(shape), fill)
    return np.full([int(d) for d in shape], fill, dtype=np.asarray(fill).dtype)


def _build_range(imp, node):
    start, limit, delta = (np.asarray(imp.static(n, "the bounds of Range"))
                           for n in node.input[:3])
    return np.arange(start, limit, delta).astype(start.dtype)


def _batch_shaped(imp, shape):
    """A symbol of `shape` (None: the batch) whose values do not matter: the shape-only
    operand of expand_like, cut from a graph input that carries the batch."""
    source = next((sym for sym in imp.inputs if sym.shape and sym.shape[0] is None), None)
    if source is None:
        raise UnsupportedOnnxError("an Expand to the batch size in a model whose inputs have "
                                   "no batch dimension")
    like = ops.getitem(ops.reshape(source, (-1, math.prod(source.shape[1:]))),
                       (slice(None), slice(0, 1)))                      # (N, 1)
    like = ops.reshape(like, (-1,) + (1,) * (len(shape) - 1))
    for axis, d in enumerate(shape[1:], 1):
        if d > 1:
            like = ops.take(like, np.zeros(d, np.int64), axis=axis)
    return like


def _build_expand(imp, node):
    x = imp.env[node.input[0]]
    shape = list(np.asarray(imp.static(node.input[1], "the shape of Expand")).reshape(-1))
    if _is_static(x) and not any(isinstance(d, BatchDim) for d in shape):
        a = _array(x)
        return a * np.ones([int(d) for d in shape], dtype=a.dtype)
    x = imp.tensor(node.input[0])
    rank = max(len(shape), _rank(x))
    dims = [1] * (rank - _rank(x)) + list(x.shape)
    want = [1] * (rank - len(shape)) + shape
    out = []
    for have, d in zip(dims, want):
        if isinstance(d, BatchDim) or have is None:
            if (isinstance(d, BatchDim) and d.k != 1) or (have not in (None, 1)):
                raise UnsupportedOnnxError("an Expand of %s to %s" % (x.shape, shape))
            out.append(None)
        else:
            out.append(max(have, int(d)) if have == 1 or int(d) == 1 else int(d))
    if out[0] is not None and None not in out:
        return ops.broadcast_to(x, tuple(out))
    if None in out[1:]:
        raise UnsupportedOnnxError("an Expand of %s to %s (the batch first only)"
                                   % (x.shape, shape))
    return ops.expand_like(x, _batch_shaped(imp, out))


def _build_where(imp, node):
    names = node.input[:3]
    if all(_is_static(imp.env[n]) for n in names):
        return np.where(*[_array(imp.env[n]) for n in names])
    return ops.where(imp.tensor(names[0]), imp.tensor(names[1]), imp.tensor(names[2]))


def _build_clip(imp, node):
    x = imp.tensor(node.input[0])
    lo = float(imp.static(node.input[1], "Clip min")) if _input(node, 1) else -np.inf
    hi = float(imp.static(node.input[2], "Clip max")) if _input(node, 2) else np.inf
    if lo == 0.0 and hi == np.inf:
        return ops.relu(x)
    return ops.clip(x, lo, hi)


def _build_pow(imp, node):
    base, exponent = imp.env[node.input[0]], imp.env[node.input[1]]
    if _is_static(base) and _is_static(exponent):
        return np.power(_array(base), _array(exponent))
    if _is_static(exponent) and np.asarray(_array(exponent)).size == 1:
        return ops.pow(imp.tensor(node.input[0]), float(np.asarray(_array(exponent))))
    return ops.pow(imp.tensor(node.input[0]), imp.tensor(node.input[1]))


def _build_reduce(fn, np_fn):
    def build(imp, node):
        axes = _ints(imp, node, 1, "axes", "the axes of %s" % node.op_type)
        keepdims = bool(_attr(node, "keepdims", 1))
        if not axes:
            if _attr(node, "noop_with_empty_axes", 0):
                return imp.env[node.input[0]]
            axes = None
        x = imp.env[node.input[0]]
        if _is_static(x):
            return np_fn(_array(x), axis=None if axes is None else tuple(axes),
                         keepdims=keepdims)
        return fn(x, None if axes is None else tuple(axes), keepdims)
    return build


def _build_arg(fn):
    def build(imp, node):
        if _attr(node, "select_last_index", 0):
            raise UnsupportedOnnxError("select_last_index=1")
        return fn(imp.tensor(node.input[0]), int(_attr(node, "axis", 0)),
                  bool(_attr(node, "keepdims", 1)))
    return build


def _is_scalar(imp, name, value):
    """Whether `name` is a one-value constant equal to value, reading ahead to a Constant
    node not built yet (pattern matches look at nodes later in the graph)."""
    v = imp.env.get(name)
    producer = imp.producers.get(name)
    if v is None and producer is not None and producer.op_type == "Constant":
        v = _build_constant(imp, producer)
    return _is_static(v) and np.asarray(_array(v)).size == 1 and \
        np.isclose(float(np.asarray(_array(v)).reshape(-1)[0]), value, rtol=1e-6)


def _other_input(node, name):
    return node.input[1] if node.input[0] == name else node.input[0]


def _build_erf(imp, node):
    """Erf, or the whole exact GELU it is the middle of, x * (erf(x / sqrt 2) + 1) * 0.5 (how
    exporters write GELU before opset 20): one pyfront gelu, as pyfront's own export of it."""
    div = imp.producers.get(node.input[0])
    add = imp.only_consumer(node, ["Add"])
    mul = add and imp.only_consumer(add, ["Mul"])
    half = mul and imp.only_consumer(mul, ["Mul"])
    if div is not None and div.op_type == "Div" and half is not None and \
            _is_scalar(imp, div.input[1], np.sqrt(2.0)) and \
            _is_scalar(imp, _other_input(add, node.output[0]), 1.0) and \
            _other_input(mul, add.output[0]) == div.input[0] and \
            _is_scalar(imp, _other_input(half, mul.output[0]), 0.5) and \
            not _is_static(imp.env[div.input[0]]):
        for done in (add, mul, half):
            imp.skip.add(done.output[0])
        y = ops.gelu(imp.tensor(div.input[0]))
        imp.env[half.output[0]] = y
        return y
    return ops.erf(imp.tensor(node.input[0]))


def _build_leaky_relu(imp, node):
    return ops.leaky_relu(imp.tensor(node.input[0]), float(_attr(node, "alpha", 0.01)))


def _build_hard_sigmoid(imp, node):
    x = imp.tensor(node.input[0])
    alpha, beta = float(_attr(node, "alpha", 0.2)), float(_attr(node, "beta", 0.5))
    if np.isclose(alpha, 1.0 / 6, rtol=1e-6) and beta == 0.5:
        return ops.hardsigmoid(x)                  # PyTorch's, one kernel
    return ops.clip(ops.affine(x, alpha, beta), 0.0, 1.0)


def _build_alpha(fn, default):
    return lambda imp, node: fn(imp.tensor(node.input[0]), float(_attr(node, "alpha", default)))


def _build_selu(imp, node):
    a = _attrs(node)
    if not (np.isclose(a.get("alpha", 1.6732632), 1.6732632) and
            np.isclose(a.get("gamma", 1.0507010), 1.0507010)):
        raise UnsupportedOnnxError("Selu with alpha=%r, gamma=%r (the standard constants only)"
                                   % (a.get("alpha"), a.get("gamma")))
    return ops.selu(imp.tensor(node.input[0]))


def _build_is_inf(imp, node):
    x = imp.tensor(node.input[0])
    pos, neg = _attr(node, "detect_positive", 1), _attr(node, "detect_negative", 1)
    if pos and neg:
        return ops.isinf(x)
    return ops.equal(x, np.inf if pos else -np.inf)


def _build_gelu(imp, node):
    return ops.gelu(imp.tensor(node.input[0]), approximate=_attr(node, "approximate", "none"))


# RNNs: ONNX weights (directions, gates * hidden, in) in ONNX's gate order, time-major input
_TO_PYFRONT_GATES = {"LSTM": [0, 2, 3, 1],    # ONNX i, o, f, c -> pyfront i, f, g, o
                     "GRU": [1, 0, 2],        # ONNX z, r, h -> pyfront r, z, n
                     "RNN": [0]}
_DEFAULT_ACTS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"],
                 "RNN": ["Tanh"]}
_GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def _pyfront_gates(w, op_type):
    """(gates * hidden, ...) in ONNX's order -> (..., gates * hidden) in pyfront's."""
    parts = np.split(np.asarray(w), len(_TO_PYFRONT_GATES[op_type]), axis=0)
    return np.ascontiguousarray(np.concatenate([parts[i] for i in _TO_PYFRONT_GATES[op_type]],
                                               axis=0).T)


# the activations ONNX's recurrent ops may name: fn(x, alpha, beta), and how many of
# activation_alpha / activation_beta each consumes
_RNN_ACTIVATIONS = {
    "sigmoid": (lambda x, a, b: ops.sigmoid(x), 0), "tanh": (lambda x, a, b: ops.tanh(x), 0),
    "relu": (lambda x, a, b: ops.relu(x), 0),
    "leakyrelu": (lambda x, a, b: ops.leaky_relu(x, a if a is not None else 0.01), 1),
    "hardsigmoid": (lambda x, a, b: ops.clip(ops.affine(x, 0.2 if a is None else a,
                                                        0.5 if b is None else b), 0.0, 1.0), 2),
    "affine": (lambda x, a, b: ops.affine(x, a, b), 2),
    "scaledtanh": (lambda x, a, b: ops.tanh(x * b) * a, 2),
    "softsign": (lambda x, a, b: ops.softsign(x), 0),
    "softplus": (lambda x, a, b: ops.softplus(x), 0),
    "elu": (lambda x, a, b: ops.elu(x, 1.0 if a is None else a), 1)}


def _rnn_activations(op_type, a, directions):
    """One list of fn(x) per direction, with ONNX's alphas and betas bound in order."""
    names = [n.decode() if isinstance(n, bytes) else n for n in a.get("activations", [])] \
        or _DEFAULT_ACTS[op_type] * directions
    alphas, betas = list(a.get("activation_alpha", [])), list(a.get("activation_beta", []))
    fns = []
    for name in names:
        entry = _RNN_ACTIVATIONS.get(name.lower())
        if entry is None:
            raise UnsupportedOnnxError("%s activation %s" % (op_type, name))
        fn, takes = entry
        alpha = alphas.pop(0) if takes >= 1 and alphas else None
        beta = betas.pop(0) if takes >= 2 and betas else None
        fns.append(lambda x, fn=fn, alpha=alpha, beta=beta: fn(x, alpha, beta))
    per = len(names) // directions
    return [fns[d * per:(d + 1) * per] for d in range(directions)], names


def _native_rnn_kind(op_type, a, names, node):
    """The pyfront op that runs this node in one kernel, or None when only the step-by-step
    form can (other activations, clip, coupled gates, peepholes, GRU resetting first)."""
    lowered = [n.lower() for n in names]
    if "clip" in a or a.get("input_forget", 0) or (op_type == "LSTM" and _input(node, 7)):
        return None
    if op_type == "RNN":
        return ("simple_rnn", lowered[0]) if lowered[0] in ("tanh", "relu") and \
            len(set(lowered)) == 1 else None
    if any(n != d.lower() for n, d in zip(lowered, _DEFAULT_ACTS[op_type] * 2)):
        return None
    if op_type == "GRU" and not a.get("linear_before_reset", 0):
        return None
    return (op_type.lower(), None)


def _gate(v, i, hidden):
    return ops.getitem(v, (Ellipsis, slice(i * hidden, (i + 1) * hidden)))


def _rnn_steps(imp, node, op_type, a, d, sfx, reverse, x, mask, init, acts):
    """One direction of an ONNX LSTM/GRU/RNN written out step by step with pyfront's ops:
    (outputs (N, T, H), final states). Exact ONNX equations, for every setting the native
    kernels do not cover; trainable like the rest."""
    w_name, r_name, b_name = node.input[1], node.input[2], node.input[3]
    hidden = int(a["hidden_size"]) if "hidden_size" in a else imp.static(r_name, "R").shape[-1]
    key = "steps:%d" % d
    gh = _GATES[op_type] * hidden
    kernel = imp.param(w_name, lambda w: w[d].T, key, sfx)
    recurrent = imp.graph.variable(imp.param(r_name, lambda r: r[d].T, key, sfx))
    bias_x = imp.param(b_name, lambda b: b[d, :gh], key + "x", sfx)
    bias_h = imp.graph.variable(imp.param(b_name, lambda b: b[d, gh:], key + "h",
                                          sfx + ".recurrent"))
    peep = None
    if op_type == "LSTM" and _input(node, 7):
        peep = imp.graph.variable(imp.param(node.input[7], lambda p: p[d], key, sfx))
    clip = a.get("clip")

    def pre(v):
        return ops.clip(v, -clip, clip) if clip is not None else v
    xp = ops.linear(x, kernel, bias_x)                     # (N, T, gates * H), all steps
    h, c = init
    steps = x.shape[1]
    if steps is None:
        raise UnsupportedOnnxError("%s written out step by step needs a known sequence length"
                                   % op_type)
    order = range(steps - 1, -1, -1) if reverse else range(steps)
    ys = [None] * steps
    for t in order:
        xt = ops.getitem(xp, (slice(None), t))
        rec = bias_h if h is None else ops.matmul(h, recurrent) + bias_h
        if op_type == "RNN":
            h_new = acts[0](pre(xt + rec))
        elif op_type == "GRU":
            z = acts[0](pre(_gate(xt, 0, hidden) + _gate(rec, 0, hidden)))
            r = acts[0](pre(_gate(xt, 1, hidden) + _gate(rec, 1, hidden)))
            if a.get("linear_before_reset", 0):
                hh = r * _gate(rec, 2, hidden)
            elif h is None:
                hh = _gate(bias_h, 2, hidden)
            else:
                hh = ops.matmul(r * h, _gate(recurrent, 2, hidden)) + _gate(bias_h, 2, hidden)
            n = acts[1](pre(_gate(xt, 2, hidden) + hh))
            h_new = (1.0 - z) * n if h is None else (1.0 - z) * n + z * h
        else:
            gi, go, gf, gc = (_gate(xt, i, hidden) + _gate(rec, i, hidden) for i in range(4))
            if peep is not None and c is not None:
                gi, gf = gi + _gate(peep, 0, hidden) * c, gf + _gate(peep, 2, hidden) * c
            i_ = acts[0](pre(gi))
            f_ = 1.0 - i_ if a.get("input_forget", 0) else acts[0](pre(gf))
            c_new = i_ * acts[1](pre(gc)) if c is None else f_ * c + i_ * acts[1](pre(gc))
            if peep is not None:
                go = go + _gate(peep, 1, hidden) * c_new
            h_new = acts[0](pre(go)) * acts[2](c_new)
        if mask is not None:        # past a sequence's length: output 0, states carried
            m = ops.getitem(mask, (slice(None), slice(t, t + 1)))
            ys[t] = h_new * m
            h = ys[t] if h is None else ys[t] + h * (1.0 - m)
            if op_type == "LSTM":
                c = c_new * m if c is None else c_new * m + c * (1.0 - m)
        else:
            ys[t], h = h_new, h_new
            if op_type == "LSTM":
                c = c_new
    finals = (h, c) if op_type == "LSTM" else (h,)
    return ops.stack(ys, axis=1), finals


def _build_rnn(imp, node):
    op_type = node.op_type
    a = _attrs(node)
    direction = a.get("direction", b"forward")
    direction = direction.decode() if isinstance(direction, bytes) else direction
    dirs = ["forward", "reverse"] if direction == "bidirectional" else [direction]
    acts, names = _rnn_activations(op_type, a, len(dirs))
    native = _native_rnn_kind(op_type, a, names, node)
    layout = int(a.get("layout", 0))
    x = imp.tensor(node.input[0])
    if layout == 0:
        x = ops.permute(x, 1, 0, 2)
    w_name, r_name, b_name = node.input[1], node.input[2], _input(node, 3)
    W = imp.static(w_name, "%s weights W" % op_type)
    R = imp.static(r_name, "%s weights R" % op_type)
    hidden = int(a.get("hidden_size", R.shape[-1] if R.ndim else 0))
    gh = {"LSTM": 4, "GRU": 3, "RNN": 1}[op_type] * hidden      # gates times units
    expected = {"W": (len(dirs), gh, x.shape[2]), "R": (len(dirs), gh, hidden)}
    shapes = {"W": W.shape, "R": R.shape}
    if b_name is not None:
        expected["B"] = (len(dirs), 2 * gh)
        shapes["B"] = np.shape(imp.static(b_name, "%s bias B" % op_type))
    for what, shape in expected.items():
        if tuple(shapes[what]) != shape:
            raise UnsupportedOnnxError("%s of a %s %s with hidden_size %d must be %s, got %s"
                                       % (what, direction, op_type, hidden, shape,
                                          tuple(shapes[what])))
    if b_name is None:          # no bias in the file: a zero one, trainable like the others
        b_name = w_name + ".bias"
        imp.env.setdefault(b_name, Initializer(b_name, np.zeros((len(dirs), 2 * gh), W.dtype)))
        node = _with_input(node, 3, b_name)
    lens = _input(node, 4)
    mask = None
    steps = x.shape[1]
    if lens is not None:
        if _is_static(imp.env[lens]):
            lv = np.asarray(_array(imp.env[lens])).reshape(-1, 1)
            mask = ops.cast((np.arange(steps)[None, :] < lv).astype(np.float32), x.dtype)
        else:
            lv = ops.expand_dims(ops.cast(imp.tensor(lens), "int64"), 1)
            # in x's dtype: the recurrent kernels read float and integer masks, not bool
            mask = ops.cast(ops.less(np.arange(steps, dtype=np.int64)[None, :], lv), x.dtype)
    init_names = [_input(node, 5)] + ([_input(node, 6)] if op_type == "LSTM" else [])
    ys, finals = [], []
    for d, dname in enumerate(dirs):
        states = []
        for nm in init_names:
            v = imp.env.get(nm) if nm else None
            zero = v is None or (isinstance(v, BatchFill) and v.value == 0)
            states.append(None if zero else ops.getitem(imp.tensor(nm), d))
        sfx = "" if len(dirs) == 1 else "." + dname
        reverse = dname == "reverse"
        given = [s for s in states if s is not None]
        if native is None or 0 < len(given) < len(states):
            # (pyfront's LSTM takes both initial states or neither)
            out_y, out_states = _rnn_steps(imp, node, op_type, a, d, sfx, reverse, x, mask,
                                           states + [None] * (2 - len(states)), acts[d])
            ys.append(out_y)
            finals.append(out_states)
            continue
        key = "%s:%d" % (op_type, d)
        kernel = imp.param(w_name, lambda w, d=d: _pyfront_gates(w[d], op_type), key, sfx)
        recurrent = imp.param(r_name, lambda r, d=d: _pyfront_gates(r[d], op_type), key, sfx)
        if op_type == "GRU":
            biases = [imp.param(b_name, lambda b, d=d: _pyfront_gates(b[d, :gh, None],
                                                                      op_type)[0], key + "x", sfx),
                      imp.param(b_name, lambda b, d=d: _pyfront_gates(b[d, gh:, None],
                                                                      op_type)[0], key + "h",
                                sfx + ".recurrent")]
        else:   # pyfront's LSTM and RNN add the two biases ONNX keeps apart
            biases = [imp.param(b_name, lambda b, d=d: _pyfront_gates(
                (b[d, :gh] + b[d, gh:])[:, None], op_type)[0], key, sfx)]
        init = None if not given else (given if len(given) > 1 else given[0])
        if op_type == "LSTM":
            out = ops.lstm(x, kernel, recurrent, biases[0], initial_state=init, mask=mask,
                           reverse=reverse)
        elif op_type == "GRU":
            out = ops.gru(x, kernel, recurrent, biases[0], biases[1], initial_state=init,
                          mask=mask, reverse=reverse)
        else:
            out = ops.simple_rnn(x, kernel, recurrent, biases[0], initial_state=init,
                                 mask=mask, reverse=reverse, activation=native[1])
        ys.append(out[0])                     # (N, T, H)
        finals.append(out[1:])
    y = ops.stack(ys, axis=2)                 # (N, T, D, H)
    y = ops.permute(y, 0, 2, 1, 3) if layout else ops.permute(y, 1, 2, 0, 3)
    results = [y]
    for i in range(len(finals[0])):
        h = ops.stack([f[i] for f in finals], axis=1 if layout else 0)
        results.append(h)
    return results


def _with_input(node, i, name):
    """A copy of node with input i set (a default the file leaves out)."""
    copy = type(node)()
    copy.CopyFrom(node)
    while len(copy.input) <= i:
        copy.input.append("")
    copy.input[i] = name
    return copy


def _build_prelu(imp, node):
    x = imp.tensor(node.input[0])
    slope = imp.param(node.input[1]) if imp.is_initializer(node.input[1]) and \
        imp.env[node.input[1]].array.size > 1 else imp.tensor(node.input[1])
    return ops.where(ops.less(x, 0.0), x * slope, x)


def _channel_vector(imp, name):
    """A per-channel scale or shift as a graph variable: instance and group norm reshape it
    before it meets x, and that reshape must be a graph node, not an eager copy."""
    return imp.graph.variable(imp.param(name)) if imp.is_initializer(name) \
        else imp.tensor(name)


def _build_instance_norm(imp, node):
    return ops.instance_norm(imp.tensor(node.input[0]), _channel_vector(imp, node.input[1]),
                             _channel_vector(imp, node.input[2]),
                             eps=float(_attr(node, "epsilon", 1e-5)))


def _build_group_norm(imp, node):
    """GroupNormalization, scale and bias one per channel (opset 21's form; onnx.checker
    refuses opset 18's one per group)."""
    return ops.group_norm(imp.tensor(node.input[0]), int(_attr(node, "num_groups")),
                          _channel_vector(imp, node.input[1]),
                          _channel_vector(imp, node.input[2]),
                          eps=float(_attr(node, "epsilon", 1e-5)))


def _norm_axes(node, x):
    axis = _norm_axis(int(_attr(node, "axis", -1)), _rank(x))
    return tuple(range(axis, _rank(x)))


def _build_rms_norm(imp, node):
    x = imp.tensor(node.input[0])
    mean_square = ops.mean(x * x, _norm_axes(node, x), True)
    y = x * ops.rsqrt(mean_square + float(_attr(node, "epsilon", 1e-5)))
    scale = node.input[1]
    return y * (imp.param(scale) if imp.is_initializer(scale) else imp.tensor(scale))


def _build_mean_variance_norm(imp, node):
    """(x - mean) / (std + 1e-9) over axes (batch and spatial by default), ONNX's own form."""
    x = imp.tensor(node.input[0])
    axes = tuple(int(a) for a in _attr(node, "axes", [0, 2, 3]))
    centred = x - ops.mean(x, axes, True)
    return centred / (ops.sqrt(ops.mean(centred * centred, axes, True)) + 1e-9)


def _build_lrn(imp, node):
    """Local response normalisation across channels: x / (bias + alpha / size * the sum of
    squares over `size` neighbouring channels) ** beta."""
    x = imp.tensor(node.input[0])
    size = int(_attr(node, "size"))
    alpha, beta = float(_attr(node, "alpha", 1e-4)), float(_attr(node, "beta", 0.75))
    bias = float(_attr(node, "bias", 1.0))
    channels = x.shape[1]
    pairs = [(0, 0)] * _rank(x)
    pairs[1] = ((size - 1) // 2, size - 1 - (size - 1) // 2)
    padded = ops.pad(x * x, pairs)
    window = None
    for k in range(size):
        part = ops.getitem(padded, (slice(None), slice(k, k + channels)))
        window = part if window is None else window + part
    return x * ops.pow(ops.affine(window, alpha / size, bias), -beta)


def _build_hardmax(imp, node):
    x = imp.tensor(node.input[0])
    axis = _norm_axis(int(_attr(node, "axis", -1)), _rank(x))
    swap = list(range(_rank(x)))                # axis and the last swapped (its own inverse)
    swap[axis], swap[-1] = swap[-1], swap[axis]
    moved = ops.permute(x, *swap)
    return ops.permute(ops.one_hot(ops.argmax(moved, -1), moved.shape[-1], dtype=x.dtype),
                       *swap)


def _build_shrink(imp, node):
    x = imp.tensor(node.input[0])
    lambd, bias = float(_attr(node, "lambd", 0.5)), float(_attr(node, "bias", 0.0))
    return ops.where(ops.less(x, -lambd), x + bias,
                     ops.where(ops.greater(x, lambd), x - bias, x * 0.0))


def _build_thresholded_relu(imp, node):
    x = imp.tensor(node.input[0])
    return ops.where(ops.greater(x, float(_attr(node, "alpha", 1.0))), x, x * 0.0)


def _build_swish(imp, node):
    x = imp.tensor(node.input[0])
    alpha = float(_attr(node, "alpha", 1.0))
    return ops.silu(x) if alpha == 1.0 else x * ops.sigmoid(x * alpha)


def _build_lp_norm(imp, node):
    x = imp.tensor(node.input[0])
    p = int(_attr(node, "p", 2))
    if p not in (1, 2):
        raise UnsupportedOnnxError("LpNormalization with p=%d (1 or 2 only)" % p)
    return x / ops.norm(x, p, int(_attr(node, "axis", -1)), True)


def _build_mean(imp, node):
    total = _variadic(ops.add, np.add)(imp, node)
    count = len([n for n in node.input if n])
    return total / count if isinstance(total, np.ndarray) else ops.mul(total, 1.0 / count)


def _build_cast_like(imp, node):
    like = imp.env[node.input[1]]
    dtype = _array(like).dtype if _is_static(like) else like.dtype.np
    x = imp.env[node.input[0]]
    if _is_static(x):
        return np.asarray(_array(x)).astype(dtype)
    return ops.cast(x, as_dtype(dtype))


def _build_one_hot(imp, node):
    """OneHot by comparing each index with 0..depth-1: negative indices count from the end,
    any other index out of range is a row of off values, as ONNX says."""
    depth = int(np.asarray(imp.static(node.input[1], "OneHot's depth")).reshape(-1)[0])
    off, on = np.asarray(imp.static(node.input[2], "OneHot's values")).reshape(-1)[:2]
    idx = ops.cast(imp.tensor(node.input[0]), "int64")
    idx = ops.where(ops.less(idx, 0), idx + depth, idx)
    hot = ops.equal(ops.expand_dims(idx, -1), np.arange(depth, dtype=np.int64))
    y = ops.where(hot, np.asarray(on), np.asarray(off))
    axis = _norm_axis(int(_attr(node, "axis", -1)), _rank(y))
    if axis != _rank(y) - 1:
        order = list(range(_rank(y) - 1))
        y = ops.permute(y, *(order[:axis] + [_rank(y) - 1] + order[axis:]))
    return y


def _build_gather_nd(imp, node):
    """GatherND (batch_dims 0) as one take along a flattened axis: the last axis of the
    indices addresses the data's first q dims, turned into one linear index."""
    if int(_attr(node, "batch_dims", 0)):
        raise UnsupportedOnnxError("GatherND with batch_dims=%d" % _attr(node, "batch_dims"))
    data = imp.tensor(node.input[0])
    idx = ops.cast(imp.tensor(node.input[1]), "int64")
    q = idx.shape[-1]
    if q is None or None in tuple(data.shape[1:q]):
        raise UnsupportedOnnxError("GatherND of data %s by indices %s (the addressed dims "
                                   "after the first must be known)" % (data.shape, idx.shape))
    linear = None
    for j in range(q):
        part = ops.getitem(idx, (Ellipsis, j))
        if data.shape[j] is not None:         # negative positions count from the end
            part = ops.where(ops.less(part, 0), part + data.shape[j], part)
        part = part * math.prod(data.shape[j + 1:q])
        linear = part if linear is None else linear + part
    flat = ops.reshape(data, (-1,) + tuple(data.shape[q:]))
    return ops.take(flat, linear, 0)


def _build_size(imp, node):
    x = imp.env[node.input[0]]
    dims = np.shape(_array(x)) if _is_static(x) else \
        [_from_probe(d) for d in imp.probe_shape(x)]
    size = 1
    for d in dims:
        size = d * size
    return np.asarray(size, dtype=object if isinstance(size, BatchDim) else np.int64)


def _build_eye_like(imp, node):
    from onnx import helper

    shape = imp.env[node.input[0]]
    shape = np.shape(_array(shape)) if _is_static(shape) else tuple(shape.shape)
    if len(shape) != 2 or None in shape:
        raise UnsupportedOnnxError("EyeLike of a %s input (a matrix of known size only)"
                                   % (shape,))
    to = _attr(node, "dtype")
    dtype = np.dtype(helper.tensor_dtype_to_np_dtype(int(to))) if to is not None else \
        (_array(imp.env[node.input[0]]).dtype if _is_static(imp.env[node.input[0]])
         else imp.env[node.input[0]].dtype.np)
    return np.eye(shape[0], shape[1], int(_attr(node, "k", 0)), dtype=dtype)


def _build_tile(imp, node):
    reps = [int(r) for r in np.asarray(imp.static(node.input[1], "Tile repeats")).reshape(-1)]
    x = imp.env[node.input[0]]
    if _is_static(x):
        return np.tile(_array(x), reps)
    if x.shape[0] is None and reps[0] != 1:
        raise UnsupportedOnnxError("a Tile of the batch dimension")
    for axis, r in enumerate(reps):         # copies side by side (pf.tile needs every dim)
        if r != 1:
            x = ops.concat([x] * r, axis=axis)
    return x


def _build_cumsum(imp, node):
    if _attr(node, "exclusive", 0) or _attr(node, "reverse", 0):
        raise UnsupportedOnnxError("CumSum with exclusive or reverse")
    axis = int(np.asarray(imp.static(node.input[1], "CumSum's axis")))
    return ops.cumsum(imp.tensor(node.input[0]), axis)


def _reduce_norm(kind):
    """ReduceL1/L2/SumSquare/LogSumExp/LogSum composed from pyfront's ops."""
    def fn(x, axes, keepdims):
        axes = tuple(range(len(x.shape))) if axes is None else axes
        if kind == "logsumexp":
            return ops.logsumexp(x, axes, keepdims)
        if kind == "logsum":
            return ops.log(ops.sum(x, axes, keepdims))
        y = ops.sum(ops.abs(x) if kind == "l1" else x * x, axes, keepdims)
        return ops.sqrt(y) if kind == "l2" else y
    np_fn = {"l1": lambda a, axis, keepdims: np.abs(a).sum(axis=axis, keepdims=keepdims),
             "l2": lambda a, axis, keepdims: np.sqrt((a * a).sum(axis=axis, keepdims=keepdims)),
             "sumsquare": lambda a, axis, keepdims: (a * a).sum(axis=axis, keepdims=keepdims),
             "logsumexp": lambda a, axis, keepdims: np.log(np.exp(a).sum(axis=axis,
                                                                         keepdims=keepdims)),
             "logsum": lambda a, axis, keepdims: np.log(a.sum(axis=axis, keepdims=keepdims))}
    return _build_reduce(fn, np_fn[kind])


def _build_trilu(imp, node):
    upper = bool(_attr(node, "upper", 1))
    k = int(np.asarray(imp.static(node.input[1], "Trilu's k"))) if _input(node, 1) else 0
    x = imp.env[node.input[0]]
    if _is_static(x):
        return (np.triu if upper else np.tril)(_array(x), k)
    return (ops.triu if upper else ops.tril)(x, k)


def _build_mod(imp, node):
    fmod = bool(_attr(node, "fmod", 0))
    return _elementwise(ops.fmod if fmod else ops.remainder,
                        np.fmod if fmod else np.mod)(imp, node)


def _build_not(imp, node):
    x = imp.env[node.input[0]]
    if _is_static(x):
        return np.logical_not(_array(x))
    return ops.logical_not(x)


def _build_topk(imp, node):
    k = int(np.asarray(imp.static(node.input[1], "TopK's k")).reshape(-1)[0])
    x = imp.tensor(node.input[0])
    # pyfront's top-k is always sorted, ties in index order, as ONNX wants
    out = ops.topk(x, k, int(_attr(node, "axis", -1)), bool(_attr(node, "largest", 1)))
    return [out.values, out.indices]


def _build_scatter_elements(imp, node):
    reduction = _attr(node, "reduction", "none")
    if reduction not in ("none", "add"):
        raise UnsupportedOnnxError("ScatterElements with reduction=%s" % reduction)
    fn = ops.scatter if reduction == "none" else ops.scatter_add
    return fn(imp.tensor(node.input[0]), int(_attr(node, "axis", 0)),
              imp.tensor(node.input[1]), imp.tensor(node.input[2]))


def _build_depth_to_space(imp, node):
    """PixelShuffle: channel blocks moved into space (modes DCR and CRD), by reshape and
    permute; SpaceToDepth is the reverse."""
    x = imp.tensor(node.input[0])
    b = int(_attr(node, "blocksize"))
    _, c, h, w = x.shape
    if node.op_type == "SpaceToDepth":
        y = ops.reshape(x, (-1, c, h // b, b, w // b, b))
        return ops.reshape(ops.permute(y, 0, 3, 5, 1, 2, 4), (-1, c * b * b, h // b, w // b))
    if _attr(node, "mode", "DCR") == "DCR":
        y = ops.permute(ops.reshape(x, (-1, b, b, c // (b * b), h, w)), 0, 3, 4, 1, 5, 2)
    else:
        y = ops.permute(ops.reshape(x, (-1, c // (b * b), b, b, h, w)), 0, 1, 4, 2, 5, 3)
    return ops.reshape(y, (-1, c // (b * b), h * b, w * b))


def _einsum_terms(equation, n_operands):
    """(operand labels, output labels) of an einsum equation; no ellipsis, no label twice in
    one operand (diagonals)."""
    eq = equation.replace(" ", "")
    if "..." in eq:
        raise UnsupportedOnnxError("Einsum %r with an ellipsis" % equation)
    lhs, arrow, out = eq.partition("->")
    terms = lhs.split(",")
    if not arrow:       # implicit output: the labels seen once, in alphabetical order
        out = "".join(sorted(c for c in set(lhs) - {","} if lhs.count(c) == 1))
    if len(terms) != n_operands or any(len(set(t)) != len(t) for t in terms + [out]):
        raise UnsupportedOnnxError("Einsum %r (a label repeated in one operand, or %d "
                                   "operands)" % (equation, n_operands))
    return terms, out


def _reshaped(x, dims):
    """x reshaped to dims, whose unknown (batch) entry must lead."""
    if None in dims[1:]:
        raise UnsupportedOnnxError("an Einsum that moves the batch dimension inward")
    return ops.reshape(x, tuple(-1 if d is None else d for d in dims))


def _build_einsum(imp, node):
    """One- and two-operand einsums as sums, permutes, reshapes and one batched matmul."""
    terms, out = _einsum_terms(_attr(node, "equation"), len(node.input))
    xs = [imp.tensor(n) for n in node.input]
    size = {}
    for t, x in zip(terms, xs):
        size.update(zip(t, x.shape))
    # labels that appear in one operand only and not in the output are summed there first
    for i, (t, x) in enumerate(zip(terms, xs)):
        others = "".join(terms[:i] + terms[i + 1:]) + out
        lone = [a for a, c in enumerate(t) if c not in others]
        if lone:
            xs[i] = ops.sum(x, tuple(lone), False)
            terms[i] = "".join(c for c in t if c in others)
    if len(terms) == 1:
        return ops.permute(xs[0], *[terms[0].index(c) for c in out])
    (ta, tb), (a, b) = terms, xs
    batch = [c for c in ta if c in tb and c in out]
    summed = [c for c in ta if c in tb and c not in out]
    left = [c for c in ta if c not in tb]
    right = [c for c in tb if c not in ta]

    def group(labels):
        dims = [size[c] for c in labels]
        return None if None in dims else math.prod(dims)
    lead = [group(batch)] if batch else []     # without shared labels: one plain matmul
    a = _reshaped(ops.permute(a, *[ta.index(c) for c in batch + left + summed]),
                  lead + [group(left), group(summed)])
    b = _reshaped(ops.permute(b, *[tb.index(c) for c in batch + summed + right]),
                  lead + [group(summed), group(right)])
    y = _reshaped(ops.matmul(a, b), [size[c] for c in batch + left + right])
    order = batch + left + right
    return ops.permute(y, *[order.index(c) for c in out])


BUILDERS = {
    # elementwise
    "Add": _elementwise(ops.add, np.add), "Sub": _elementwise(ops.sub, np.subtract),
    "Mul": _elementwise(ops.mul, np.multiply), "Div": _elementwise(ops.div, _int_div),
    "Pow": _build_pow, "Max": _variadic(ops.maximum, np.maximum),
    "Min": _variadic(ops.minimum, np.minimum), "Sum": _variadic(ops.add, np.add),
    "Mean": _build_mean, "CastLike": _build_cast_like,
    "Neg": _elementwise(ops.neg, np.negative), "Abs": _elementwise(ops.abs, np.abs),
    "Exp": _elementwise(ops.exp, np.exp), "Log": _elementwise(ops.log, np.log),
    "Sqrt": _elementwise(ops.sqrt, np.sqrt), "Reciprocal": _elementwise(ops.reciprocal,
                                                                        np.reciprocal),
    "Sign": _elementwise(ops.sign, np.sign), "Floor": _elementwise(ops.floor, np.floor),
    "Ceil": _elementwise(ops.ceil, np.ceil), "Round": _elementwise(ops.round, np.round),
    "Sin": _elementwise(ops.sin, np.sin), "Cos": _elementwise(ops.cos, np.cos),
    "Erf": _build_erf, "Tanh": _elementwise(ops.tanh, np.tanh),
    "Sigmoid": _elementwise(ops.sigmoid, None), "Relu": _elementwise(ops.relu, None),
    "Softplus": _elementwise(ops.softplus, None), "LeakyRelu": _build_leaky_relu,
    "Gelu": _build_gelu, "Clip": _build_clip,
    "Elu": _build_alpha(ops.elu, 1.0), "Celu": _build_alpha(ops.celu, 1.0),
    "Selu": _build_selu, "HardSigmoid": _build_hard_sigmoid,
    "HardSwish": _elementwise(ops.hardswish, None), "Softsign": _elementwise(ops.softsign, None),
    "Mish": _elementwise(ops.mish, None), "Tan": _elementwise(ops.tan, np.tan),
    "Asin": _elementwise(ops.asin, np.arcsin), "Acos": _elementwise(ops.acos, np.arccos),
    "Atan": _elementwise(ops.atan, np.arctan), "Sinh": _elementwise(ops.sinh, np.sinh),
    "Cosh": _elementwise(ops.cosh, np.cosh), "Asinh": _elementwise(ops.asinh, np.arcsinh),
    "Acosh": _elementwise(ops.acosh, np.arccosh), "Atanh": _elementwise(ops.atanh, np.arctanh),
    "IsNaN": _elementwise(ops.isnan, np.isnan), "IsInf": _build_is_inf,
    "And": _elementwise(ops.logical_and, np.logical_and),
    "Or": _elementwise(ops.logical_or, np.logical_or),
    "Xor": _elementwise(ops.logical_xor, np.logical_xor),
    # comparisons and logic give pyfront's bool tensors
    "Equal": _elementwise(ops.equal, np.equal), "Less": _elementwise(ops.less, np.less),
    "LessOrEqual": _elementwise(ops.less_equal, np.less_equal),
    "Greater": _elementwise(ops.greater, np.greater),
    "GreaterOrEqual": _elementwise(ops.greater_equal, np.greater_equal),
    "Not": _build_not, "Mod": _build_mod, "Where": _build_where,
    "Identity": _identity, "Dropout": _build_dropout,
    # linear algebra and nn
    "Gemm": _build_gemm, "MatMul": _build_matmul, "Conv": _build_conv,
    "ConvTranspose": _build_conv_transpose, "Resize": _build_resize,
    "MaxPool": _build_pool("max"), "AveragePool": _build_pool("avg"),
    "GlobalAveragePool": _build_global_pool(ops.global_avg_pool),
    "GlobalMaxPool": _build_global_pool(ops.global_max_pool),
    "BatchNormalization": _build_batch_norm, "LayerNormalization": _build_layer_norm,
    "InstanceNormalization": _build_instance_norm, "PRelu": _build_prelu,
    "GroupNormalization": _build_group_norm, "RMSNormalization": _build_rms_norm,
    "MeanVarianceNormalization": _build_mean_variance_norm, "LRN": _build_lrn,
    "LpNormalization": _build_lp_norm, "Hardmax": _build_hardmax, "Shrink": _build_shrink,
    "ThresholdedRelu": _build_thresholded_relu, "Swish": _build_swish,
    "Softmax": _build_softmax(ops.softmax), "LogSoftmax": _build_softmax(ops.log_softmax),
    "LSTM": _build_rnn, "GRU": _build_rnn, "RNN": _build_rnn,
    # reductions
    "ReduceSum": _build_reduce(ops.sum, np.sum), "ReduceMean": _build_reduce(ops.mean, np.mean),
    "ReduceMax": _build_reduce(ops.max, np.max), "ReduceMin": _build_reduce(ops.min, np.min),
    "ReduceProd": _build_reduce(ops.prod, np.prod), "ReduceL1": _reduce_norm("l1"),
    "ReduceL2": _reduce_norm("l2"), "ReduceSumSquare": _reduce_norm("sumsquare"),
    "ReduceLogSumExp": _reduce_norm("logsumexp"), "ReduceLogSum": _reduce_norm("logsum"),
    "CumSum": _build_cumsum,
    "ArgMax": _build_arg(ops.argmax), "ArgMin": _build_arg(ops.argmin),
    # shapes and constants
    "Reshape": _build_reshape, "Flatten": _build_flatten, "Shape": _build_shape,
    "Transpose": _build_transpose, "Squeeze": _build_squeeze, "Unsqueeze": _build_unsqueeze,
    "Concat": _build_concat, "Gather": _build_gather, "Slice": _build_slice,
    "Pad": _build_pad, "GatherElements": _build_gather_elements, "Trilu": _build_trilu,
    "Tile": _build_tile, "TopK": _build_topk, "OneHot": _build_one_hot,
    "GatherND": _build_gather_nd, "Size": _build_size, "EyeLike": _build_eye_like,
    "ScatterElements": _build_scatter_elements, "DepthToSpace": _build_depth_to_space,
    "SpaceToDepth": _build_depth_to_space, "Einsum": _build_einsum,
    "Split": _build_split, "Cast": _build_cast, "Constant": _build_constant,
    "ConstantOfShape": _build_constant_of_shape, "Range": _build_range,
    "Expand": _build_expand,
}


# ---------------------------------------------------------------------------------------------

def read_proto(source):
    """The ModelProto of a path or bytes, its external data loaded, checked by onnx.checker;
    a file that is not a readable ONNX model is an OnnxError."""
    onnx = require_onnx()
    from google.protobuf.message import DecodeError

    base_dir = None
    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            proto = onnx.load_model_from_string(bytes(source))
        else:
            path = os.fspath(source)
            if not os.path.isfile(path):
                raise OnnxError("%s: no such ONNX file" % path)
            base_dir = os.path.dirname(os.path.abspath(path))
            proto = onnx.load_model(path, load_external_data=False)
    except (DecodeError, RuntimeError, ValueError, UnicodeDecodeError) as e:
        raise OnnxError("%s is not a readable ONNX model (truncated or corrupt): %s"
                        % (_label(source), e)) from None
    if not proto.graph.node and not proto.graph.output:
        raise OnnxError("%s holds no ONNX graph (empty, truncated or not an ONNX file)"
                        % _label(source))
    if _default_opset(proto) > onnx.defs.onnx_opset_version():
        _supported_opset(proto)             # raises, naming the opset
    if base_dir is not None:
        from onnx.external_data_helper import load_external_data_for_model, uses_external_data

        if any(uses_external_data(t) for t in proto.graph.initializer):
            try:
                load_external_data_for_model(proto, base_dir)
            except (OSError, ValueError, onnx.checker.ValidationError) as e:
                raise OnnxError("%s: cannot read its external data: %s"
                                % (_label(source), e)) from None
    try:
        # a file is checked by path: the checker then follows external data (over 2 GB)
        onnx.checker.check_model(proto if base_dir is None else path)
    except onnx.checker.ValidationError as e:
        raise OnnxError("%s is not a valid ONNX model: %s"
                        % (_label(source), str(e).strip().splitlines()[0])) from None
    except UnicodeDecodeError as e:
        # the checker's own message quotes a name whose bytes are not UTF-8 (a damaged file)
        problem = e.object.decode("utf-8", "replace").strip().splitlines()[0]
        raise OnnxError("%s is not a valid ONNX model (corrupt: a name is not UTF-8): %s"
                        % (_label(source), problem)) from None
    return proto


def _label(source):
    return "the ONNX bytes" if isinstance(source, (bytes, bytearray, memoryview)) \
        else os.fspath(source)


def _supported_opset(proto):
    """The model itself when its opset is one pyfront reads; an older one converted by
    onnx.version_converter to MIN_OPSET; an error naming the opset otherwise."""
    onnx = require_onnx()
    opset = _default_opset(proto)
    newest = onnx.defs.onnx_opset_version()
    if MIN_OPSET <= opset <= newest:
        return proto
    reason = "newer than the installed onnx package knows" if opset > newest else ""
    if opset < MIN_OPSET:
        try:
            from onnx import version_converter

            return version_converter.convert_version(proto, MIN_OPSET)
        except Exception as e:  # noqa: BLE001 (the converter raises many kinds)
            reason = "onnx.version_converter could not convert it: %s" % (
                str(e).strip().splitlines() or [type(e).__name__])[0]
    raise UnsupportedOnnxError("the model uses ONNX opset %d; pyfront imports opsets %d to %d "
                               "(%s)" % (opset, MIN_OPSET, newest, reason))


_CONTROL_FLOW = {"If", "Loop", "Scan"}


def _check_supported(proto):
    bad = ["%s (node %r)" % (n.op_type if n.domain in ("", "ai.onnx") else
                             "%s.%s" % (n.domain, n.op_type), n.name or "?")
           for n in proto.graph.node
           if n.domain not in ("", "ai.onnx") or n.op_type not in BUILDERS]
    if bad:
        flow = sorted({n.op_type for n in proto.graph.node if n.op_type in _CONTROL_FLOW})
        hint = "" if not flow else (
            " (%s: control flow with subgraphs; pyfront's graphs are static, so export the "
            "model with its loops unrolled and its branches fixed, e.g. torch.onnx.export's "
            "tracing mode)" % ", ".join(flow))
        raise UnsupportedOnnxError("pyfront has no import for %d ONNX node(s): %s%s"
                                   % (len(bad), ", ".join(bad), hint))


def _signature(proto, inputs, outputs):
    def spec(s, name):
        return {"name": name, "dtype": s.dtype.name,
                "shape": [-1 if d is None else int(d) for d in s.shape]}
    return {"inputs": [spec(s, s.name) for s in inputs],
            "outputs": [spec(s, o.name) for s, o in zip(outputs, proto.graph.output)]}


def load_model(source, input_shapes=None):
    """A pyfront model (a GraphModule in eval mode, with .signature) from an ONNX file or its
    bytes. input_shapes: {input name: shape} for inputs with symbolic dims besides the batch.
    Unsupported operators are all listed in one error, with their node names."""
    from ..graph.serialize import graph_to_json
    from ..io.model import GraphModule

    proto = _supported_opset(read_proto(source))
    _check_supported(proto)
    imp = Importer(proto, input_shapes)
    inputs, outputs = imp.run()
    names = {id(p): key for key, p in imp.params.items()}
    desc, constants = graph_to_json(imp.graph, inputs, outputs, names)
    used = {e["tensor"] for e in desc["nodes"] if e["kind"] == "variable"}
    # in name order, as pf.load gives them back: a copy shipped as bytes (Spark executors)
    # then lists its parameters in the same order as this model
    tensors = {k: imp.params[k].numpy() for k in sorted(used)}
    tensors.update(constants)
    model = GraphModule(desc, tensors, _signature(proto, inputs, outputs))
    model.name = proto.graph.name or "onnx_model"
    model.input_spec = [(tuple(s.shape), s.dtype) for s in inputs]   # pf.save traces with it
    for key in imp.frozen & used:
        p = model._values[key]
        p.trainable = False
        p.requires_grad = False
    model.eval()
    return model
