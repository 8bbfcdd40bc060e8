"""pyfront graph -> ONNX: the model's inference graph, traced with an unknown batch dimension,
written node by node through one table (pyfront op name -> emitter). An op without an ONNX form
is refused by name: the exported graph is never silently different."""
import os

import numpy as np

from .. import autograd
from ..dtypes import as_dtype
from ..graph.symbol import numbered_names
from ..ops import core
from ..ops.conv import conv_padding
from ..tensor import Tensor
from .common import OnnxError, UnsupportedOnnxError, require_onnx

__all__ = ["export_model", "build_model_proto", "check_model", "trace_model", "EXPORTERS",
           "NO_ONNX_FORM"]

BATCH = "batch"
_BOOL = 9                           # onnx.TensorProto.BOOL
_INT64_MAX = np.iinfo(np.int64).max
_INT64_MIN = np.iinfo(np.int64).min
_EXTERNAL_DATA_BYTES = 1 << 30      # past this, tensors go to a file beside the model (2 GB cap)


def trace_model(model, example_inputs=None, input_shapes=None):
    """(the model itself, graph, input symbols, output symbols): the model's forward in eval
    mode traced with an unknown batch dimension, as pf.save traces it."""
    from ..nn.tracing import input_specs, trace_inference_graph, unwrap

    model = unwrap(model)
    specs = input_specs(model, input_shapes, example_inputs)
    return (model,) + tuple(trace_inference_graph(model, specs))


def _tensor_names(model):
    return {id(t): k for k, t in model.named_tensors()}


def _onnx_dtype(dtype):
    from onnx import helper

    return helper.np_dtype_to_tensor_dtype(np.dtype(as_dtype(dtype).np))


def _dims(shape):
    return [BATCH if (d is None and i == 0) else ("dim_%d" % i if d is None else int(d))
            for i, d in enumerate(shape)]


class Emitter:
    """Builds the ONNX graph: names of values, nodes, initializers (added on first use)."""

    def __init__(self, opset, tensor_names):
        from onnx import helper, numpy_helper

        self.helper, self.numpy_helper = helper, numpy_helper
        self.opset = opset
        self.tensor_names = tensor_names
        self.nodes, self.initializers = [], []
        self._names = {}              # (gnode id, output index) -> ONNX value name
        self._initialized = set()
        self._count = 0
        self.scope = ""               # the pyfront node being written: ONNX nodes carry its name

    # ---- names ----
    def fresh(self, base):
        self._count += 1
        return "%s__%d" % (base.replace(":", "_"), self._count)

    def value(self, gnode, index=0):
        """The ONNX name of a graph node's output; variables and constants become
        initializers the first time they are read."""
        key = (gnode.id, index)
        name = self._names.get(key)
        if name is not None:
            return name
        if gnode.kind == "variable":
            name = self.tensor_names.get(id(gnode.value)) or gnode.name
            self._initializer(name, gnode.value.numpy())
        elif gnode.kind == "constant":
            name = self.constant(gnode.value.numpy(), "constant")
        else:
            raise OnnxError("internal: node %s has no ONNX value yet" % gnode.name)
        self._names[key] = name
        return name

    def bind(self, gnode, names):
        for i, n in enumerate(names):
            if n is not None:
                self._names[(gnode.id, i)] = n

    def _initializer(self, name, array):
        if name not in self._initialized:
            self._initialized.add(name)
            self.initializers.append(self.numpy_helper.from_array(np.asarray(array), name))
        return name

    def constant(self, array, base="const"):
        return self._initializer(self.fresh(base), np.asarray(array))

    def ints(self, values, base="ints"):
        return self.constant(np.asarray(values, dtype=np.int64), base)

    def scalar(self, value, dtype, base="scalar"):
        return self.constant(np.asarray(value, dtype=as_dtype(dtype).np), base)

    # ---- nodes ----
    def node(self, op_type, inputs, n_outputs=1, **attrs):
        base = "%s/%s" % (self.scope, op_type) if self.scope else op_type
        outs = [self.fresh(base) for _ in range(n_outputs)]
        self.nodes.append(self.helper.make_node(op_type, list(inputs), outs,
                                                name=self.fresh(base), **attrs))
        return outs if n_outputs > 1 else outs[0]

    def reduce(self, op_type, x, axes, keepdims):
        """Reduce* with its axes as an attribute or an input, as the opset wants."""
        axes = [int(a) for a in axes]
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.node(op_type, [x, self.ints(axes, "axes")], keepdims=int(keepdims))
        return self.node(op_type, [x], axes=axes, keepdims=int(keepdims))

    def squeeze(self, x, axes):
        return self.node("Squeeze", [x, self.ints(axes, "axes")])

    def unsqueeze(self, x, axes):
        return self.node("Unsqueeze", [x, self.ints(axes, "axes")])


# ---------------------------------------------------------------------------------------------
# emitters: fn(e, node, ins) -> ONNX names of the node's outputs (a str for one output)

def _spec(node, i=0):
    return node.specs[i]


def _in_spec(node, i):
    src, k = node.inputs[i]
    return src.specs[k]


def _known(node, i):
    """The value of input i when it is a variable or constant (weights), or computed from
    such alone (torch's LSTM adds its two biases and transposes its weights in the graph),
    else None."""
    src, index = node.inputs[i]
    values = _source_values(src)
    return None if values is None else values[index]


def _source_values(src):
    """src's output arrays, evaluated now, when no placeholder feeds it; else None."""
    if src.kind in ("variable", "constant"):
        return [src.value.numpy()]
    if src.kind != "op":
        return None
    ins = []
    for j in range(len(src.inputs)):
        value = _known(src, j)
        if value is None:
            return None
        ins.append(Tensor(value))
    with autograd.no_grad():
        out = core.run_eager(src.op, ins, src.attrs)
    return [t.numpy() for t in (out if isinstance(out, tuple) else (out,))]


def _unary(op_type):
    return lambda e, node, ins: e.node(op_type, ins[:1])


def _binary(op_type):
    return lambda e, node, ins: e.node(op_type, ins[:2])


def _bitwise(op_type):
    """Integer bitwise ops: ONNX's Bitwise* from opset 18."""
    def emit(e, node, ins):
        if e.opset < 18:
            raise UnsupportedOnnxError("%s needs opset 18 (ONNX's %s): export with opset=18"
                                       % (node.op.name, op_type))
        return e.node(op_type, ins[:2])
    return emit


def _compare(op_type, negate=False):
    """pyfront comparisons give 0/1 in the operands' dtype; ONNX's give bool."""
    def emit(e, node, ins):
        y = e.node(op_type, ins[:2])
        if negate:
            y = e.node("Not", [y])
        return e.node("Cast", [y], to=_onnx_dtype(_spec(node).dtype))
    return emit


def _gelu_value(e, x, dtype):
    if e.opset >= 20:
        return e.node("Gelu", [x])
    half = e.node("Div", [x, e.scalar(np.sqrt(2.0), dtype)])
    cdf = e.node("Add", [e.node("Erf", [half]), e.scalar(1.0, dtype)])
    return e.node("Mul", [e.node("Mul", [x, cdf]), e.scalar(0.5, dtype)])


class _FusedActivation:
    """The activation a linear or conv node applies, seen as a node of its own: its emitter
    reads the parameters (alpha, lo/hi) the fusion copied into the fused node's attrs."""

    def __init__(self, node):
        self.attrs, self.specs, self.name = node.attrs, node.specs, node.name


def _activation(e, node, y):
    """The activation fused into a linear or conv node, written after it by the activation
    op's own emitter."""
    act = node.attrs.get("activation")
    if act is None:
        return y
    emit = EXPORTERS.get(act)
    if emit is None:
        raise UnsupportedOnnxError("no ONNX form for the fused activation %r" % (act,))
    return emit(e, _FusedActivation(node), [y])


def _emit_linear(e, node, ins):
    x = _in_spec(node, 0)
    if len(x.shape) == 2:
        y = e.node("Gemm", ins)
    else:
        y = e.node("MatMul", ins[:2])
        if len(ins) > 2:
            y = e.node("Add", [y, ins[2]])
    return _activation(e, node, y)


def _emit_matmul(e, node, ins):
    a, b = ins
    for i, flag in ((0, "transpose_a"), (1, "transpose_b")):
        if node.attrs[flag]:
            nd = len(_in_spec(node, i).shape)
            perm = list(range(nd - 2)) + [nd - 1, nd - 2]
            if i == 0:
                a = e.node("Transpose", [a], perm=perm)
            else:
                b = e.node("Transpose", [b], perm=perm)
    return e.node("MatMul", [a, b])


def _pads(attrs, x_shape, spans):
    pairs = conv_padding(attrs["padding"], list(x_shape[2:]), spans, attrs["strides"])
    if any(p is None for p in pairs):
        raise UnsupportedOnnxError("'same' padding of an input with unknown spatial size %s"
                                   % (x_shape,))
    return [p[0] for p in pairs] + [p[1] for p in pairs]


def _emit_conv(e, node, ins):
    x, w = _in_spec(node, 0), _in_spec(node, 1)
    a = node.attrs
    k = list(w.shape[2:])
    spans = [d * (n - 1) + 1 for n, d in zip(k, a["dilation"])]
    y = e.node("Conv", ins, kernel_shape=k, strides=list(a["strides"]),
               dilations=list(a["dilation"]), pads=_pads(a, x.shape, spans), group=a["groups"])
    return _activation(e, node, y)


def _emit_conv_transpose(e, node, ins):
    a = node.attrs
    k = list(_in_spec(node, 1).shape[2:])
    pads = [int(p[0]) for p in a["padding"]] + [int(p[1]) for p in a["padding"]]
    return e.node("ConvTranspose", ins, kernel_shape=k, strides=list(a["strides"]),
                  dilations=list(a["dilation"]), pads=pads,
                  output_padding=list(a["output_padding"]), group=int(a["groups"]))


def _emit_pool(op_type):
    def emit(e, node, ins):
        x = _in_spec(node, 0)
        a = node.attrs
        extra = {}
        if "count_include_pad" in a:
            extra["count_include_pad"] = int(a["count_include_pad"])
        return e.node(op_type, ins[:1], kernel_shape=list(a["pool_size"]),
                      strides=list(a["strides"]), pads=_pads(a, x.shape, a["pool_size"]),
                      **extra)
    return emit


def _channel_shape(ndim):
    return [1, -1] + [1] * (ndim - 2)


def _emit_batch_norm_eval(e, node, ins):
    return e.node("BatchNormalization", ins, epsilon=float(node.attrs["eps"]))


def _emit_batch_norm_batch_stats(e, node, ins):
    """Inference without running statistics: the batch's own, as the layer computes them."""
    x = _in_spec(node, 0)
    axes = [0] + list(range(2, len(x.shape)))
    mean = e.reduce("ReduceMean", ins[0], axes, True)
    centred = e.node("Sub", [ins[0], mean])
    var = e.reduce("ReduceMean", e.node("Mul", [centred, centred]), axes, True)
    std = e.node("Sqrt", [e.node("Add", [var, e.scalar(node.attrs["eps"], x.dtype)])])
    shape = e.ints(_channel_shape(len(x.shape)), "shape")
    y = e.node("Div", [centred, std])
    y = e.node("Mul", [y, e.node("Reshape", [ins[1], shape])])
    y = e.node("Add", [y, e.node("Reshape", [ins[2], shape])])
    return [y, None, None]


def _emit_layer_norm(e, node, ins):
    k = node.attrs["normalized_dims"]
    y = e.node("LayerNormalization", ins, axis=-k, epsilon=float(node.attrs["eps"]))
    return [y, None, None]          # the saved statistics have no use outside training


def _emit_softmax(op_type):
    return lambda e, node, ins: e.node(op_type, ins, axis=int(node.attrs["axis"]))


def _emit_reduce(op_type):
    return lambda e, node, ins: e.reduce(op_type, ins[0], node.attrs["axes"],
                                         node.attrs["keepdims"])


def _emit_arg(op_type):
    def emit(e, node, ins):
        axes = node.attrs["axes"]
        if len(axes) != 1:
            raise UnsupportedOnnxError("%s over several axes %s" % (node.op.name, axes))
        return e.node(op_type, ins, axis=int(axes[0]), keepdims=int(node.attrs["keepdims"]))
    return emit


def _emit_reshape(e, node, ins):
    shape = [-1 if d is None else int(d) for d in node.attrs["shape"]]
    return e.node("Reshape", [ins[0], e.ints(shape, "shape")])


def _emit_slice(e, node, ins):
    starts, ends, axes, steps = [], [], [], []
    for axis, (start, stop, step) in enumerate(node.attrs["slices"]):
        if (start, stop, step) == (None, None, 1):
            continue
        axes.append(axis)
        steps.append(step)
        starts.append(start if start is not None else (0 if step > 0 else _INT64_MAX))
        ends.append(stop if stop is not None else (_INT64_MAX if step > 0 else _INT64_MIN))
    y = ins[0]
    if axes:
        y = e.node("Slice", [y, e.ints(starts), e.ints(ends), e.ints(axes), e.ints(steps)])
    if node.attrs["drop"]:
        y = e.squeeze(y, list(node.attrs["drop"]))
    return y


def _emit_where(e, node, ins):
    cond = e.node("Cast", [ins[0]], to=_BOOL)
    return e.node("Where", [cond, ins[1], ins[2]])


def _emit_affine(e, node, ins):
    dtype = _spec(node).dtype
    y = e.node("Mul", [ins[0], e.scalar(node.attrs["scale"], dtype)])
    return e.node("Add", [y, e.scalar(node.attrs["shift"], dtype)])


def _emit_rsqrt(e, node, ins):
    return e.node("Reciprocal", [e.node("Sqrt", ins)])


def _emit_square(e, node, ins):
    return e.node("Mul", [ins[0], ins[0]])


def _emit_log1p(e, node, ins):
    return e.node("Log", [e.node("Add", [ins[0], e.scalar(1.0, _spec(node).dtype)])])


def _emit_expm1(e, node, ins):
    return e.node("Sub", [e.node("Exp", ins), e.scalar(1.0, _spec(node).dtype)])


def _emit_pow_scalar(e, node, ins):
    return e.node("Pow", [ins[0], e.scalar(node.attrs["exponent"], _spec(node).dtype)])


def _emit_clip(e, node, ins):
    dtype = _spec(node).dtype
    return e.node("Clip", [ins[0], e.scalar(node.attrs["lo"], dtype),
                           e.scalar(node.attrs["hi"], dtype)])


def _emit_gelu_tanh(e, node, ins):
    if e.opset >= 20:
        return e.node("Gelu", ins, approximate="tanh")
    x, dtype = ins[0], _spec(node).dtype
    cube = e.node("Mul", [e.node("Mul", [x, x]), x])
    inner = e.node("Add", [x, e.node("Mul", [cube, e.scalar(0.044715, dtype)])])
    t = e.node("Tanh", [e.node("Mul", [inner, e.scalar(np.sqrt(2.0 / np.pi), dtype)])])
    return e.node("Mul", [e.node("Mul", [x, e.node("Add", [t, e.scalar(1.0, dtype)])]),
                          e.scalar(0.5, dtype)])


def _emit_silu(e, node, ins):
    return e.node("Mul", [ins[0], e.node("Sigmoid", ins)])


def _emit_mish(e, node, ins):
    return e.node("Mul", [ins[0], e.node("Tanh", [e.node("Softplus", ins)])])


def _emit_logsigmoid(e, node, ins):
    return e.node("Neg", [e.node("Softplus", [e.node("Neg", ins)])])


def _emit_trunc(e, node, ins):
    return e.node("Mul", [e.node("Sign", ins), e.node("Floor", [e.node("Abs", ins)])])


def _emit_log_base(base):
    def emit(e, node, ins):
        return e.node("Div", [e.node("Log", ins), e.scalar(np.log(base), _spec(node).dtype)])
    return emit


def _emit_exp2(e, node, ins):
    return e.node("Pow", [e.scalar(2.0, _spec(node).dtype), ins[0]])


def _emit_remainder(e, node, ins):
    """The sign of the divisor, as numpy and PyTorch: ONNX's Mod does it for integers only."""
    if not _spec(node).dtype.is_float:
        return e.node("Mod", ins, fmod=0)
    quotient = e.node("Floor", [e.node("Div", ins)])
    return e.node("Sub", [ins[0], e.node("Mul", [quotient, ins[1]])])


def _emit_floor_divide(e, node, ins):
    dtype = _spec(node).dtype
    if dtype.is_float:
        return e.node("Floor", [e.node("Div", ins)])
    # ONNX's integer Div truncates: one less where the remainder is non-zero and its sign
    # (the dividend's, fmod) differs from the divisor's
    zero = e.scalar(0, dtype)
    rest = e.node("Mod", ins, fmod=1)
    off = e.node("And", [e.node("Not", [e.node("Equal", [rest, zero])]),
                         e.node("Xor", [e.node("Less", [rest, zero]),
                                        e.node("Less", [ins[1], zero])])])
    return e.node("Sub", [e.node("Div", ins), e.node("Cast", [off], to=_onnx_dtype(dtype))])


_PAD_MODES = {"constant": "constant", "reflect": "reflect", "replicate": "edge",
              "circular": "wrap"}


def _emit_pad(e, node, ins):
    a = node.attrs
    if a["mode"] == "circular" and e.opset < 19:
        return _circular_pad(e, ins[0], a["pads"])
    pads = [b for b, _ in a["pads"]] + [end for _, end in a["pads"]]
    inputs = [ins[0], e.ints(pads, "pads")]
    if a["mode"] == "constant":
        inputs.append(e.scalar(a["value"], _spec(node).dtype))
    return e.node("Pad", inputs, mode=_PAD_MODES[a["mode"]])


def _circular_pad(e, x, pads):
    """Circular padding before opset 19 (no Pad mode 'wrap'): per dim, the input's last
    `begin` and first `end` entries concatenated around it (the padded extent of the dims
    before included, which gives the corners the pad op gives)."""
    for axis, (begin, end) in enumerate(pads):
        if not begin and not end:
            continue
        parts = [x]
        if begin:
            parts.insert(0, e.node("Slice", [x, e.ints([-begin]), e.ints([_INT64_MAX]),
                                             e.ints([axis])]))
        if end:
            parts.append(e.node("Slice", [x, e.ints([0]), e.ints([end]), e.ints([axis])]))
        x = e.node("Concat", parts, axis=axis)
    return x


def _emit_cast(e, node, ins):
    return e.node("Cast", ins, to=_onnx_dtype(node.attrs["dtype"]))


def _emit_broadcast_to(e, node, ins):
    shape = [1 if d is None else int(d) for d in node.attrs["shape"]]   # Expand keeps batch
    return e.node("Expand", [ins[0], e.ints(shape, "shape")])


# RNN: pyfront keeps gates as (in, gates * units) with PyTorch's order; ONNX wants
# (directions, gates * units, in) with its own order.
_GATE_ORDER = {"lstm": [0, 3, 1, 2],      # pyfront i, f, g, o -> ONNX i, o, f, c
               "gru": [1, 0, 2],          # pyfront r, z, n -> ONNX z, r, h
               "simple_rnn": [0]}
_RNN_TYPE = {"lstm": "LSTM", "gru": "GRU", "simple_rnn": "RNN"}


def _gates(w, kind):
    parts = np.split(np.asarray(w), len(_GATE_ORDER[kind]), axis=-1)
    return np.concatenate([parts[i] for i in _GATE_ORDER[kind]], axis=-1)


def _emit_rnn(e, node, ins):
    kind = node.op.name
    n_bias = 2 if kind == "gru" else 1
    weights = [_known(node, i) for i in range(1, 3 + n_bias)]
    if any(w is None for w in weights):
        raise UnsupportedOnnxError("its weights are computed in the graph; ONNX's %s needs them "
                                   "as constants" % _RNN_TYPE[kind])
    kernel, recurrent = weights[0], weights[1]
    units = recurrent.shape[0]
    w = e.constant(_gates(kernel, kind).T[None], node.name + "_W")
    r = e.constant(_gates(recurrent, kind).T[None], node.name + "_R")
    bias_x = _gates(weights[2], kind)
    bias_h = _gates(weights[3], kind) if kind == "gru" else np.zeros_like(bias_x)
    b = e.constant(np.concatenate([bias_x, bias_h])[None], node.name + "_B")
    n_states = 2 if kind == "lstm" else 1
    first_state = 3 + n_bias
    mask_spec = _in_spec(node, first_state + n_states)
    seq_lens = ""
    if tuple(mask_spec.shape) != (0,):
        # ONNX runs each sequence over its first `length` steps: exact for masks that are
        # ones then zeros (right-padded batches), which is what padding produces
        mask = ins[first_state + n_states]
        valid = e.node("Cast", [e.node("Not", [e.node("Equal", [
            mask, e.scalar(0, mask_spec.dtype)])])], to=_onnx_dtype("int32"))
        seq_lens = e.reduce("ReduceSum", valid, [1], False)
    states = []
    for i in range(n_states):
        spec = _in_spec(node, first_state + i)
        states.append("" if tuple(spec.shape) == (0,) else e.unsqueeze(ins[first_state + i], [0]))
    x = e.node("Transpose", [ins[0]], perm=[1, 0, 2])           # ONNX runs time-major
    attrs = {"hidden_size": int(units),
             "direction": "reverse" if node.attrs["reverse"] else "forward"}
    if kind == "gru":
        attrs["linear_before_reset"] = 1                        # PyTorch's "reset after"
    if kind == "simple_rnn":
        attrs["activations"] = [node.attrs.get("activation", "tanh").capitalize()]
    inputs = [x, w, r, b, seq_lens] + states
    while inputs and inputs[-1] == "":
        inputs.pop()
    outs = e.node(_RNN_TYPE[kind], inputs, n_outputs=1 + n_states, **attrs)
    y = e.node("Transpose", [e.squeeze(outs[0], [1])], perm=[1, 0, 2])
    finals = [e.squeeze(s, [0]) for s in outs[1:]]
    return [y] + finals + [None]


def _emit_atan2(e, node, ins):
    """atan(a / b) moved to the quadrant of (b, a); ONNX has no Atan2. Where b is 0, a / b is
    +-inf and Atan gives +-pi/2 (0 / 0 gives NaN: atan2(0, 0) is 0, as numpy's)."""
    a, b = ins
    dtype = _spec(node).dtype
    zero = e.scalar(0.0, dtype)
    base = e.node("Atan", [e.node("Div", [a, b])])
    pi = e.node("Where", [e.node("Less", [a, zero]), e.scalar(-np.pi, dtype),
                          e.scalar(np.pi, dtype)])
    turned = e.node("Add", [base, e.node("Where", [e.node("Less", [b, zero]), pi, zero])])
    both_zero = e.node("And", [e.node("Equal", [a, zero]), e.node("Equal", [b, zero])])
    return e.node("Where", [both_zero, e.node("Mul", [a, zero]), turned])


def _emit_hypot(e, node, ins):
    a, b = ins
    return e.node("Sqrt", [e.node("Add", [e.node("Mul", [a, a]), e.node("Mul", [b, b])])])


def _emit_cumulate(e, node, ins):
    if node.attrs["prod"]:
        raise UnsupportedOnnxError("cumprod (ONNX has a running sum, CumSum, only)")
    axis = e.constant(np.asarray(node.attrs["axis"], dtype=np.int64), "axis")
    return e.node("CumSum", [ins[0], axis], reverse=int(node.attrs["reverse"]))


def _emit_argsort(e, node, ins):
    """TopK over the whole axis; ONNX puts equal values in index order, a stable sort."""
    axis = int(node.attrs["axis"])
    n = e.node("Slice", [e.node("Shape", ins), e.ints([axis]), e.ints([axis + 1])])
    _, indices = e.node("TopK", [ins[0], n], n_outputs=2, axis=axis,
                        largest=int(node.attrs["descending"]), sorted=1)
    return indices


def _emit_scatter(reduction):
    def emit(e, node, ins):
        extra = {} if reduction is None else {"reduction": reduction}
        return e.node("ScatterElements", ins, axis=int(node.attrs["axis"]), **extra)
    return emit


def _emit_take(e, node, ins):
    return e.node("Gather", ins, axis=int(node.attrs["axis"]))


def _emit_reshape_like(e, node, ins):
    return e.node("Reshape", [ins[0], e.node("Shape", [ins[1]])])


def _emit_expand_like(e, node, ins):
    return e.node("Expand", [ins[0], e.node("Shape", [ins[1]])])


EXPORTERS = {
    # unary maps and activations
    "neg": _unary("Neg"), "exp": _unary("Exp"), "log": _unary("Log"), "sqrt": _unary("Sqrt"),
    "abs": _unary("Abs"), "sign": _unary("Sign"), "reciprocal": _unary("Reciprocal"),
    "sin": _unary("Sin"), "cos": _unary("Cos"), "tanh": _unary("Tanh"),
    "sigmoid": _unary("Sigmoid"), "relu": _unary("Relu"), "softplus": _unary("Softplus"),
    "erf": _unary("Erf"), "floor": _unary("Floor"), "ceil": _unary("Ceil"),
    "round": _unary("Round"),
    "rsqrt": _emit_rsqrt, "square": _emit_square, "log1p": _emit_log1p, "expm1": _emit_expm1,
    "affine": _emit_affine, "pow_scalar": _emit_pow_scalar, "clip": _emit_clip,
    "leaky_relu": lambda e, node, ins: e.node("LeakyRelu", ins,
                                              alpha=float(node.attrs["alpha"])),
    "gelu": lambda e, node, ins: _gelu_value(e, ins[0], _spec(node).dtype),
    "gelu_tanh": _emit_gelu_tanh, "silu": _emit_silu, "mish": _emit_mish,
    "logsigmoid": _emit_logsigmoid, "trunc": _emit_trunc, "selu": _unary("Selu"),
    "softsign": _unary("Softsign"), "hardswish": _unary("HardSwish"),
    "hardsigmoid": lambda e, node, ins: e.node("HardSigmoid", ins, alpha=1.0 / 6, beta=0.5),
    "elu": lambda e, node, ins: e.node("Elu", ins, alpha=float(node.attrs["alpha"])),
    "celu": lambda e, node, ins: e.node("Celu", ins, alpha=float(node.attrs["alpha"])),
    "hardtanh": _emit_clip,
    "tan": _unary("Tan"), "asin": _unary("Asin"), "acos": _unary("Acos"),
    "atan": _unary("Atan"), "sinh": _unary("Sinh"), "cosh": _unary("Cosh"),
    "asinh": _unary("Asinh"), "acosh": _unary("Acosh"), "atanh": _unary("Atanh"),
    "log2": _emit_log_base(2.0), "log10": _emit_log_base(10.0), "exp2": _emit_exp2,
    "fmod": lambda e, node, ins: e.node("Mod", ins, fmod=1),
    "atan2": _emit_atan2, "hypot": _emit_hypot,
    "remainder": _emit_remainder, "floor_divide": _emit_floor_divide,
    # binary
    "add": _binary("Add"), "sub": _binary("Sub"), "mul": _binary("Mul"), "div": _binary("Div"),
    "pow": _binary("Pow"), "maximum": _binary("Max"), "minimum": _binary("Min"),
    "bitwise_and": _bitwise("BitwiseAnd"), "bitwise_or": _bitwise("BitwiseOr"),
    "bitwise_xor": _bitwise("BitwiseXor"),
    "equal": _compare("Equal"), "not_equal": _compare("Equal", negate=True),
    "less": _compare("Less"), "less_equal": _compare("LessOrEqual"),
    "greater": _compare("Greater"), "greater_equal": _compare("GreaterOrEqual"),
    "where": _emit_where,
    # linear algebra and nn
    "linear": _emit_linear, "matmul": _emit_matmul,
    "softmax": _emit_softmax("Softmax"), "log_softmax": _emit_softmax("LogSoftmax"),
    "conv1d": _emit_conv, "conv2d": _emit_conv, "conv3d": _emit_conv,
    "conv_transpose1d": _emit_conv_transpose, "conv_transpose2d": _emit_conv_transpose,
    "conv_transpose3d": _emit_conv_transpose,
    "max_pool1d": _emit_pool("MaxPool"), "max_pool2d": _emit_pool("MaxPool"),
    "max_pool3d": _emit_pool("MaxPool"), "avg_pool1d": _emit_pool("AveragePool"),
    "avg_pool2d": _emit_pool("AveragePool"), "avg_pool3d": _emit_pool("AveragePool"),
    "batch_norm_eval": _emit_batch_norm_eval,
    "batch_norm_batch_stats": _emit_batch_norm_batch_stats,
    "layer_norm": _emit_layer_norm,
    "lstm": _emit_rnn, "gru": _emit_rnn, "simple_rnn": _emit_rnn,
    # reductions
    "sum": _emit_reduce("ReduceSum"), "mean": _emit_reduce("ReduceMean"),
    "prod": _emit_reduce("ReduceProd"),
    "max": _emit_reduce("ReduceMax"), "min": _emit_reduce("ReduceMin"),
    "argmax": _emit_arg("ArgMax"), "argmin": _emit_arg("ArgMin"),
    "norm2": _emit_reduce("ReduceL2"), "cumulate": _emit_cumulate, "argsort": _emit_argsort,
    # shapes
    "reshape": _emit_reshape, "reshape_like": _emit_reshape_like,
    "stop_gradient": lambda e, node, ins: e.node("Identity", ins[:1]),
    "expand_like": _emit_expand_like, "broadcast_to": _emit_broadcast_to,
    "permute": lambda e, node, ins: e.node("Transpose", ins, perm=list(node.attrs["perm"])),
    "slice": _emit_slice, "take": _emit_take, "cast": _emit_cast, "pad": _emit_pad,
    "scatter": _emit_scatter(None), "scatter_add": _emit_scatter("add"),
    "gather": lambda e, node, ins: e.node("GatherElements", ins,
                                          axis=int(node.attrs["axis"])),
    "concat": lambda e, node, ins: e.node("Concat", ins, axis=int(node.attrs["axis"])),
}


# forward ops that stay refused, and why (gradient ops never reach an inference graph)
NO_ONNX_FORM = {
    "mse": "a loss: export the model's outputs and compute the loss outside",
    "cross_entropy": "a loss: export the model's outputs and compute the loss outside",
    "dropout": "training only: a model in eval mode has none",
    "batch_norm_train": "training statistics: a model in eval mode uses batch_norm_eval",
    "clip_by_norm": "part of an optimizer step", "grad_sum_of_squares": "part of an "
    "optimizer step", "sum_to_like": "a gradient's reduction to an operand's shape",
    # dense linear algebra runs LAPACK on the host: standard ONNX has Det alone (not mapped)
    **{"linalg." + name: "dense linear algebra (LAPACK on the host): no standard ONNX op"
       for name in ("inv", "det", "slogdet", "solve", "cholesky", "qr", "eigh", "eigvalsh",
                    "svd", "svdvals", "pinv", "matrix_exp")},
}


# ---------------------------------------------------------------------------------------------

def _needed_nodes(graph, outputs):
    from ..graph.symbol import upstream_ids

    needed = upstream_ids(s.node for s in outputs)
    return [n for n in graph.nodes if n.id in needed]


def build_model_proto(graph, inputs, outputs, tensor_names, opset=17, name="pyfront"):
    """The ONNX ModelProto of a traced graph (not yet checked)."""
    onnx = require_onnx()
    helper = onnx.helper
    if opset < 17:
        raise OnnxError("pyfront exports ONNX opset 17 or newer, got opset=%r" % (opset,))
    if opset > onnx.defs.onnx_opset_version():
        raise OnnxError("opset %d is newer than the installed onnx package knows (%d)"
                        % (opset, onnx.defs.onnx_opset_version()))
    nodes = _needed_nodes(graph, outputs)
    missing = sorted({n.op.name for n in nodes if n.kind == "op" and n.op.name not in EXPORTERS})
    if missing:
        where = ["%s (node %s)" % (n.op.name, n.name) for n in nodes
                 if n.kind == "op" and n.op.name in missing]
        why = ["%s: %s" % (m, NO_ONNX_FORM[m]) for m in missing if m in NO_ONNX_FORM]
        raise UnsupportedOnnxError("no ONNX form for pyfront op(s) %s: %s%s"
                                   % (", ".join(missing), "; ".join(where),
                                      "".join(" (%s)" % w for w in why)))
    e = Emitter(opset, tensor_names)
    graph_inputs = []
    for s in inputs:
        e.bind(s.node, [s.node.name])
        graph_inputs.append(helper.make_tensor_value_info(
            s.node.name, _onnx_dtype(s.dtype), _dims(s.shape)))
    for n in nodes:
        if n.kind != "op":
            continue
        ins = [e.value(src, k) for src, k in n.inputs]
        e.scope = n.name
        try:
            outs = EXPORTERS[n.op.name](e, n, ins)
        except UnsupportedOnnxError as err:
            raise UnsupportedOnnxError("%s (node %s): %s" % (n.op.name, n.name, err)) from None
        e.bind(n, [outs] if isinstance(outs, str) else outs)
    graph_outputs = []
    out_names = numbered_names("output", len(outputs))
    for s, out_name in zip(outputs, out_names):
        if (s.node.id, s.index) not in e._names and s.node.kind == "op":
            raise UnsupportedOnnxError("output %s of %s has no ONNX form (training-only "
                                       "statistics)" % (s.index, s.node.op.name))
        e.nodes.append(helper.make_node("Identity", [e.value(s.node, s.index)], [out_name],
                                        name="output_" + out_name))
        graph_outputs.append(helper.make_tensor_value_info(out_name, _onnx_dtype(s.dtype),
                                                           _dims(s.shape)))
    # weights an emitter folded into its own initializers (the RNNs' reordered gates) are
    # left unread: drop them
    read = {name for n in e.nodes for name in n.input}
    initializers = [t for t in e.initializers if t.name in read]
    g = helper.make_graph(e.nodes, name, graph_inputs, graph_outputs, initializers)
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name="pyfront")
    from .. import __version__

    model.producer_version = __version__
    model.ir_version = min(model.ir_version, _max_ir_version(opset))
    return model


def _max_ir_version(opset):
    """The IR version that goes with the opset (onnxruntime rejects newer IR than it knows)."""
    from onnx import helper

    for entry in helper.VERSION_TABLE:
        if entry[2] == opset:
            return entry[1]
    return 8


def check_model(model_or_path):
    """onnx.checker plus strict shape inference; problems become OnnxError."""
    onnx = require_onnx()
    try:
        onnx.checker.check_model(model_or_path, full_check=True)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as err:
        raise OnnxError("the exported ONNX model does not check: %s" % err) from None


def export_model(model, path, example_inputs=None, input_shapes=None, opset=17, check=True):
    """Write the model's inference graph as ONNX to `path` (batch dimension dynamic).

    model: a Module (built, or built here by example_inputs) or the path of a .pf file.
    example_inputs: one array per model input (only their shapes and dtypes are used);
    without them the shapes the model has seen (or input_shapes) are used.
    """
    from ..io.model import load_model as load_pf

    onnx = require_onnx()
    if isinstance(model, (str, os.PathLike)):
        model = load_pf(model)
    model, graph, ins, outs = trace_model(model, example_inputs, input_shapes)
    proto = build_model_proto(graph, ins, outs, _tensor_names(model), opset, model.name)
    path = os.fspath(path)
    big = sum(t.ByteSize() for t in proto.graph.initializer) > _EXTERNAL_DATA_BYTES
    if big:
        onnx.save_model(proto, path, save_as_external_data=True, all_tensors_to_one_file=True,
                        location=os.path.basename(path) + ".data")
    else:
        onnx.save_model(proto, path)
    if check:
        check_model(path if big else proto)
    return path

