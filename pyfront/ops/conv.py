"""Convolution ops over 1, 2 or 3 spatial dims, channels first: conv1d/conv2d/conv3d with
stride, padding ("valid", "same", ints or (begin, end) pairs), dilation, groups and a fused bias
and activation. Their gradients are ops too, each differentiable, so double backward works."""
import numpy as np

from .. import errors
from . import core
from .core import Op, ShapeMismatch, Spec, apply, as_operand, check_shape, fmt_shape
from .linalg import LINEAR_ACTIVATIONS

__all__ = ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d"]

# the native epilogues (linalg's table) the conv kernel applies after the bias; their gradients
# need only the output
CONV_ACTIVATIONS = {a: LINEAR_ACTIVATIONS[a] for a in (None, "relu", "sigmoid", "tanh")}

SPATIAL_DIMS = {1: "length", 2: "height, width", 3: "depth, height, width"}


def int_tuple(value, nd, what):
    """An int or a sequence of nd ints, as a tuple of nd positive ints."""
    if isinstance(value, bool):
        raise ValueError("%s must be an int or %d ints, got %r" % (what, nd, value))
    if isinstance(value, int):
        value = (value,) * nd
    try:
        out = tuple(int(v) for v in value)
    except TypeError:
        raise ValueError("%s must be an int or %d ints, got %r" % (what, nd, value)) from None
    if len(out) != nd or any(v < 1 for v in out):
        raise ValueError("%s must be a positive int or %d positive ints, got %r"
                         % (what, nd, value))
    return out


def normalize_padding(padding, nd):
    """"valid", "same", an int, nd ints, or nd (begin, end) pairs -> "valid", "same" or a
    tuple of nd (begin, end) pairs (the form kept in attributes)."""
    if isinstance(padding, str):
        mode = padding.lower()
        if mode not in ("valid", "same"):
            raise ValueError("padding must be 'valid', 'same', an int or per-dim ints, got %r"
                             % (padding,))
        return mode
    if isinstance(padding, int) and not isinstance(padding, bool):
        padding = (padding,) * nd
    try:
        items = list(padding)
    except TypeError:
        raise ValueError("padding must be 'valid', 'same', an int or per-dim ints, got %r"
                         % (padding,)) from None
    if len(items) != nd:
        raise ValueError("padding needs one entry per spatial dim (%d), got %r" % (nd, padding))
    pairs = []
    for p in items:
        pair = (p, p) if isinstance(p, int) else tuple(p)
        if len(pair) != 2 or any(not isinstance(v, int) or isinstance(v, bool) or v < 0
                                 for v in pair):
            raise ValueError("padding entries must be non-negative ints or (begin, end) pairs, "
                             "got %r" % (padding,))
        pairs.append(pair)
    return tuple(pairs)


def conv_padding(padding, in_sizes, spans, strides):
    """(begin, end) padding per spatial dim. "same" gives ceil(in / stride) outputs with the
    odd pixel at the end (as TensorFlow and PyTorch); None for a dim of unknown size."""
    if padding == "valid":
        return [(0, 0)] * len(in_sizes)
    if padding == "same":
        pads = []
        for n, span, s in zip(in_sizes, spans, strides):
            if n is None:
                pads.append(None)
                continue
            total = max((-(-n // s) - 1) * s + span - n, 0)
            pads.append((total // 2, total - total // 2))
        return pads
    return [tuple(p) for p in padding]


def output_sizes(x_shape, k_sizes, attrs, window_word):
    """Output spatial sizes (None where unknown), checking that every window fits."""
    nd = len(k_sizes)
    in_sizes = list(x_shape[2:])
    dil = attrs.get("dilation", (1,) * nd)
    spans = [d * (k - 1) + 1 for k, d in zip(k_sizes, dil)]
    pads = conv_padding(attrs["padding"], in_sizes, spans, attrs["strides"])
    out = []
    for d, (n, span, s, pad) in enumerate(zip(in_sizes, spans, attrs["strides"], pads)):
        if n is None:
            out.append(None)
            continue
        padded = n + pad[0] + pad[1]
        if padded < span:
            raise ShapeMismatch(
                "the %s spans %d in spatial dim %d but the input %s%s has only %d there"
                % (window_word, span, d, fmt_shape(x_shape),
                   " padded by %s" % (tuple(pad),) if pad != (0, 0) else "", padded))
        out.append((padded - span) // s + 1)
    return out


def _check_rank(spec, nd, what, layout):
    if len(spec.shape) != nd + 2:
        raise ShapeMismatch("%s must be %s with %d dims, got %s" % (what, layout, nd + 2,
                                                                    fmt_shape(spec.shape)))


def _geometry_iattr(nd, x_shape, k_sizes, attrs, activation=None, pool=0):
    """The kernel's integer attributes for concrete shapes (pool: 2 for a fused 2x2 max pool
    of stride 2 after the convolution, graph optimisation's fuse_conv_pool)."""
    dil = tuple(attrs["dilation"])
    spans = [d * (k - 1) + 1 for k, d in zip(k_sizes, dil)]
    pads = conv_padding(attrs["padding"], list(x_shape[2:]), spans, attrs["strides"])
    return ((nd,) + tuple(attrs["strides"]) + dil + tuple(p[0] for p in pads)
            + tuple(p[1] for p in pads) + (attrs["groups"], CONV_ACTIVATIONS[activation])
            + ((pool,) if pool else ()))


class Conv(Op):
    """y = act(conv(x, kernel) + bias) for x (N, C, *in), kernel (O, C/groups, *k), bias (O,)."""

    inputs = ("input", "kernel", "bias")
    retain_inputs = (0, 1)
    retain_outputs = staticmethod(lambda attrs, needs: (0,) if attrs.get("activation") else ())

    def __init__(self, nd):
        self.nd = nd
        self.name = "conv%dd" % nd

    def infer(self, specs, attrs):
        nd = self.nd
        x, w = specs[0], specs[1]
        if not x.dtype.is_float or w.dtype is not x.dtype:
            raise errors.DTypeError("input and kernel must be float of one dtype, got %s and %s"
                                    % (x.dtype.name, w.dtype.name))
        _check_rank(x, nd, "the input", "(batch, channels, %s)" % SPATIAL_DIMS[nd])
        _check_rank(w, nd, "the kernel", "(out_channels, in_channels/groups, %s)"
                    % SPATIAL_DIMS[nd])
        groups = attrs["groups"]
        out_ch, per_group = w.shape[0], w.shape[1]
        if out_ch % groups:
            raise ShapeMismatch("the kernel %s has %d output channels, not divisible by "
                                "groups=%d" % (fmt_shape(w.shape), out_ch, groups))
        channels = x.shape[1]
        if channels is not None and channels != per_group * groups:
            if groups == 1:
                raise ShapeMismatch("the input %s has %d channels but the kernel %s expects %d"
                                    % (fmt_shape(x.shape), channels, fmt_shape(w.shape),
                                       per_group))
            raise ShapeMismatch("the input %s has %d channels but the kernel %s with groups=%d "
                                "expects %d (%d per group)"
                                % (fmt_shape(x.shape), channels, fmt_shape(w.shape), groups,
                                   per_group * groups, per_group))
        if len(specs) > 2:
            b = specs[2]
            if b.dtype is not x.dtype or tuple(b.shape) != (out_ch,):
                raise ShapeMismatch("the bias must be (%d,) of %s to match the kernel %s, got "
                                    "%s %s" % (out_ch, x.dtype.name, fmt_shape(w.shape),
                                               fmt_shape(b.shape), b.dtype.name))
        if attrs.get("activation") not in CONV_ACTIVATIONS:
            raise ShapeMismatch("activation %r cannot be fused into a convolution"
                                % (attrs.get("activation"),))
        window = "kernel %s" % fmt_shape(w.shape[2:])
        if max(attrs["dilation"]) > 1:
            window += " dilated by %s" % (tuple(attrs["dilation"]),)
        out = output_sizes(x.shape, w.shape[2:], attrs, window)
        if attrs.get("pool"):          # fused 2x2 max pool of stride 2 (floor), 2-D only
            if nd != 2 or attrs["pool"] != 2:
                raise ShapeMismatch("only a 2x2 max pool fuses into a 2-D convolution")
            out = [None if d is None else d // 2 for d in out]
        return [Spec((x.shape[0], out_ch) + tuple(out), x.dtype)]

    def forward(self, k, ins, outs, attrs):
        x, w = ins[0], ins[1]
        iattr = _geometry_iattr(self.nd, x.shape, w.shape[2:], attrs, attrs.get("activation"),
                                attrs.get("pool", 0))
        k.run("conv", [b.desc() for b in ins], [outs[0].desc()], iattr)

    def grad(self, ctx, g):
        from .elementwise import activation_grad

        if ctx.attrs.get("pool"):
            raise errors.PyfrontError(
                "internal: a convolution fused with the max pool after it has no gradient "
                "(graph optimisation fuses them only where nothing reads the convolution's "
                "output again, and a gradient does)")
        act = ctx.attrs.get("activation")
        # a fused ReLU's gradient is applied inside the gradient kernels, from the output y,
        # saving a pass over grad_y; other activations go through their gradient op
        mask = [ctx.output()] if act == "relu" else []
        if act not in (None, "relu"):
            g = activation_grad(act, ctx.output(), g)
        x, w = ctx.inputs[0], ctx.inputs[1]
        geometry = _geometry_attrs(ctx.attrs)
        gx = gw = gb = None
        if ctx.needs[0]:
            gx = apply(_GRAD_INPUT[self.nd], [g, w, x] + mask, geometry)
        bias = len(ctx.inputs) > 2 and ctx.needs[2]
        if ctx.needs[1] and bias:
            gw, gb = apply(_GRAD_PARAMS[self.nd], [x, g, w] + mask, geometry)
        elif ctx.needs[1]:
            gw = apply(_GRAD_WEIGHT[self.nd], [x, g, w] + mask, geometry)
        elif bias:
            gb = apply(_grad_bias, [g] + mask)
        return gx, gw, gb


def _geometry_attrs(attrs):
    return {"strides": attrs["strides"], "dilation": attrs["dilation"],
            "padding": attrs["padding"], "groups": attrs["groups"]}


def _check_grads(nd, x, w, g, specs, attrs):
    """A conv gradient op's rule: x and w must make a valid convolution whose output shape the
    gradient g (and the mask y, a fourth input) has."""
    want = _CONV[nd].infer([x, w], dict(attrs, activation=None))[0].shape
    check_shape("grad", g.shape, want)
    if len(specs) > 3:
        check_shape("y", specs[3].shape, want)


def _relu_masked(y, v):
    """v where y > 0, else 0: the gradient of a fused ReLU (None when there is no mask)."""
    from .elementwise import activation_grad

    return v if y is None else activation_grad("relu", y, v)


class ConvGradInput(Op):
    """The gradient of conv with respect to its input, shaped like `like` (the input). An
    optional fourth input y (the forward's output after a fused ReLU) masks grad to y > 0."""

    inputs = ("grad", "kernel", "like", "y")
    shape_inputs = (2,)

    def __init__(self, nd):
        self.nd = nd
        self.name = "conv%dd_grad_input" % nd

    def infer(self, specs, attrs):
        _check_grads(self.nd, Spec(specs[2].shape, specs[0].dtype), specs[1], specs[0], specs,
                     attrs)
        return [Spec(specs[2].shape, specs[0].dtype)]

    def forward(self, k, ins, outs, attrs):
        g, w = ins[0], ins[1]
        iattr = _geometry_iattr(self.nd, outs[0].shape, w.shape[2:], attrs)
        k.run("conv_grad_input", [g.desc(), w.desc()] + [b.desc() for b in ins[3:]],
              [outs[0].desc()], iattr)

    def grad(self, ctx, gg):
        # linear in grad (masked) and in kernel: gx = K^T (m g), so d<gg, gx>/dg = m (K gg),
        # d/dK = gw(gg, m g); the mask is piecewise constant in y
        g, w = ctx.inputs[0], ctx.inputs[1]
        y = ctx.inputs[3] if len(ctx.inputs) > 3 else None
        dg = _relu_masked(y, apply(_CONV[self.nd], [gg, w], dict(ctx.attrs, activation=None))) \
            if ctx.needs[0] else None
        dw = apply(_GRAD_WEIGHT[self.nd], [gg, g, w] + ctx.inputs[3:], ctx.attrs) \
            if ctx.needs[1] else None
        return (dg, dw, None) + (None,) * len(ctx.inputs[3:])


class ConvGradWeight(Op):
    """The gradient of conv with respect to its kernel, shaped like `like` (the kernel); an
    optional fourth input y masks grad as for ConvGradInput."""

    inputs = ("input", "grad", "like", "y")
    shape_inputs = (2,)

    def __init__(self, nd):
        self.nd = nd
        self.name = "conv%dd_grad_weight" % nd

    def infer(self, specs, attrs):
        _check_grads(self.nd, specs[0], Spec(specs[2].shape, specs[0].dtype), specs[1], specs,
                     attrs)
        return [Spec(specs[2].shape, specs[0].dtype)]

    def forward(self, k, ins, outs, attrs):
        x, g = ins[0], ins[1]
        iattr = _geometry_iattr(self.nd, x.shape, outs[0].shape[2:], attrs)
        k.run("conv_grad_weight", [x.desc(), g.desc()] + [b.desc() for b in ins[3:]],
              [outs[0].desc()], iattr)

    def grad(self, ctx, gg):
        # bilinear in input and (masked) grad: d<gg, gw>/dx = conv_grad_input(m g, gg),
        # d/dg = m conv(x, gg)
        x, g = ctx.inputs[0], ctx.inputs[1]
        y = ctx.inputs[3] if len(ctx.inputs) > 3 else None
        dx = apply(_GRAD_INPUT[self.nd], [g, gg, x] + ctx.inputs[3:], ctx.attrs) \
            if ctx.needs[0] else None
        dg = _relu_masked(y, apply(_CONV[self.nd], [x, gg], dict(ctx.attrs, activation=None))) \
            if ctx.needs[1] else None
        return (dx, dg, None) + (None,) * len(ctx.inputs[3:])


class ConvGradParams(Op):
    """The kernel's and the bias's gradients in one pass over grad (and x): ConvGradWeight's
    result and ConvGradBias's, the bias summed from grad rows the kernel has in cache."""

    inputs = ("input", "grad", "like", "y")
    shape_inputs = (2,)
    n_outputs = 2

    def __init__(self, nd):
        self.nd = nd
        self.name = "conv%dd_grad_params" % nd

    def infer(self, specs, attrs):
        like, g = specs[2], specs[1]
        _check_grads(self.nd, specs[0], Spec(like.shape, specs[0].dtype), g, specs, attrs)
        return [Spec(like.shape, specs[0].dtype), Spec((like.shape[0],), g.dtype)]

    def forward(self, k, ins, outs, attrs):
        x, g = ins[0], ins[1]
        iattr = _geometry_iattr(self.nd, x.shape, outs[0].shape[2:], attrs)
        k.run("conv_grad_weight", [x.desc(), g.desc()] + [b.desc() for b in ins[3:]],
              [outs[0].desc(), outs[1].desc()], iattr)

    def grad(self, ctx, gg):
        from .shape import expand_like, reshape

        ggw, ggb = gg
        x, g = ctx.inputs[0], ctx.inputs[1]
        y = ctx.inputs[3] if len(ctx.inputs) > 3 else None
        dx = apply(_GRAD_INPUT[self.nd], [g, ggw, x] + ctx.inputs[3:], ctx.attrs) \
            if ctx.needs[0] else None
        dg = None
        if ctx.needs[1]:
            spread = expand_like(reshape(ggb, (1, -1) + (1,) * self.nd), g)
            dg = _relu_masked(y, apply(_CONV[self.nd], [x, ggw], dict(ctx.attrs,
                                                                     activation=None)) + spread)
        return (dx, dg, None) + (None,) * len(ctx.inputs[3:])


class ConvGradBias(Op):
    """Sum of the output gradient over batch and positions: (N, O, *out) -> (O,); an optional
    second input y counts only positions where y > 0 (a fused ReLU's gradient)."""

    name = "conv_grad_bias"
    inputs = ("grad", "y")

    def infer(self, specs, attrs):
        g = specs[0]
        if not 3 <= len(g.shape) <= 5:
            raise ShapeMismatch("grad must be (batch, channels, *spatial) with 1 to 3 spatial "
                                "dims, got %s" % fmt_shape(g.shape))
        if len(specs) > 1:
            check_shape("y", specs[1].shape, g.shape)
        return [Spec((g.shape[1],), g.dtype)]

    def forward(self, k, ins, outs, attrs):
        g = ins[0]
        positions = 1
        for d in g.shape[2:]:
            positions *= d
        view = (g.shape[0], g.shape[1], positions)
        k.run("conv_grad_bias", [b.desc(view) for b in ins], [outs[0].desc()])

    def grad(self, ctx, gg):
        from .shape import expand_like, reshape

        g = ctx.inputs[0]
        y = ctx.inputs[1] if len(ctx.inputs) > 1 else None
        spread = expand_like(reshape(gg, (1, -1) + (1,) * (len(g.shape) - 2)), g)
        return (_relu_masked(y, spread),) + (None,) * len(ctx.inputs[1:])


_CONV = {nd: core.register(Conv(nd)) for nd in (1, 2, 3)}
_GRAD_INPUT = {nd: core.register(ConvGradInput(nd)) for nd in (1, 2, 3)}
_GRAD_WEIGHT = {nd: core.register(ConvGradWeight(nd)) for nd in (1, 2, 3)}
_GRAD_PARAMS = {nd: core.register(ConvGradParams(nd)) for nd in (1, 2, 3)}
_grad_bias = core.register(ConvGradBias)


def conv_nd(nd, x, kernel, bias, strides, padding, dilation, groups, activation):
    x, kernel = as_operand(x), as_operand(kernel)
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise ValueError("conv%dd: groups must be a positive int, got %r" % (nd, groups))
    if activation not in CONV_ACTIVATIONS:
        raise ValueError("conv%dd: activation must be one of %s (apply others separately), "
                         "got %r" % (nd, sorted(a for a in CONV_ACTIVATIONS if a), activation))
    attrs = {"strides": int_tuple(strides, nd, "conv%dd: strides" % nd),
             "dilation": int_tuple(dilation, nd, "conv%dd: dilation" % nd),
             "padding": normalize_padding(padding, nd), "groups": groups,
             "activation": activation}
    inputs = [x, kernel] + ([as_operand(bias)] if bias is not None else [])
    return apply(_CONV[nd], inputs, attrs)


def conv1d(x, kernel, bias=None, strides=1, padding="valid", dilation=1, groups=1,
           activation=None):
    """1-D convolution of x (N, C, L) with kernel (O, C/groups, k); bias (O,) optional.

    padding: "valid", "same", an int (both ends) or a (begin, end) pair in a 1-tuple.
    activation: None, "relu", "sigmoid" or "tanh", fused after the bias.
    """
    return conv_nd(1, x, kernel, bias, strides, padding, dilation, groups, activation)


def conv2d(x, kernel, bias=None, strides=1, padding="valid", dilation=1, groups=1,
           activation=None):
    """2-D convolution of x (N, C, H, W) with kernel (O, C/groups, kh, kw); see conv1d."""
    return conv_nd(2, x, kernel, bias, strides, padding, dilation, groups, activation)


def conv3d(x, kernel, bias=None, strides=1, padding="valid", dilation=1, groups=1,
           activation=None):
    """3-D convolution of x (N, C, D, H, W) with kernel (O, C/groups, kd, kh, kw); see conv1d."""
    return conv_nd(3, x, kernel, bias, strides, padding, dilation, groups, activation)


# ---------------------------------------------------------------------------------------------
# transposed convolution: the gradient of a convolution with respect to its input, as an op of
# its own (col2im after one GEMM per group, in the conv_grad_input kernel)

class ConvTranspose(Op):
    """y = conv_transpose(x, kernel) for x (N, Cin, *in) and kernel (Cin, Cout/groups, *k)
    (PyTorch's layout): the input-gradient of conv with that kernel, whose input would be y."""

    inputs = ("input", "kernel")
    retain_outputs = ()

    def __init__(self, nd):
        self.nd = nd
        self.name = "conv_transpose%dd" % nd

    def infer(self, specs, attrs):
        nd = self.nd
        x, w = specs
        if not x.dtype.is_float or w.dtype is not x.dtype:
            raise errors.DTypeError("input and kernel must be float of one dtype, got %s and %s"
                                    % (x.dtype.name, w.dtype.name))
        _check_rank(x, nd, "the input", "(batch, channels, %s)" % SPATIAL_DIMS[nd])
        _check_rank(w, nd, "the kernel", "(in_channels, out_channels/groups, %s)"
                    % SPATIAL_DIMS[nd])
        groups = attrs["groups"]
        if x.shape[1] is not None and x.shape[1] != w.shape[0]:
            raise ShapeMismatch("the input %s has %d channels but the kernel %s expects %d"
                                % (fmt_shape(x.shape), x.shape[1], fmt_shape(w.shape),
                                   w.shape[0]))
        if w.shape[0] % groups:
            raise ShapeMismatch("the kernel %s has %d input channels, not divisible by "
                                "groups=%d" % (fmt_shape(w.shape), w.shape[0], groups))
        out = []
        for d, n in enumerate(x.shape[2:]):
            if n is None:
                out.append(None)
                continue
            s, p, dil = attrs["strides"][d], attrs["padding"][d][0], attrs["dilation"][d]
            size = (n - 1) * s - 2 * p + dil * (w.shape[2 + d] - 1) + attrs["output_padding"][d] + 1
            if size < 1:
                raise ShapeMismatch("the output would have size %d in spatial dim %d (input %s, "
                                    "kernel %s, padding %d)" % (size, d, fmt_shape(x.shape),
                                                                fmt_shape(w.shape), p))
            out.append(size)
        return [Spec((x.shape[0], w.shape[1] * groups) + tuple(out), x.dtype)]

    def forward(self, k, ins, outs, attrs):
        x, w = ins
        iattr = _geometry_iattr(self.nd, outs[0].shape, w.shape[2:], attrs)
        k.run("conv_grad_input", [x.desc(), w.desc()], [outs[0].desc()], iattr)

    def grad(self, ctx, g):
        x, w = ctx.inputs
        geometry = _geometry_attrs(ctx.attrs)
        gx = apply(_CONV[self.nd], [g, w], dict(geometry, activation=None)) \
            if ctx.needs[0] else None
        gw = apply(_GRAD_WEIGHT[self.nd], [g, x, w], geometry) if ctx.needs[1] else None
        return gx, gw


_CONV_TRANSPOSE = {nd: core.register(ConvTranspose(nd)) for nd in (1, 2, 3)}


def conv_transpose_nd(nd, x, kernel, bias, strides, padding, output_padding, dilation, groups):
    x, kernel = as_operand(x), as_operand(kernel)
    name = "conv_transpose%dd" % nd
    if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
        raise ValueError("%s: groups must be a positive int, got %r" % (name, groups))
    strides = int_tuple(strides, nd, "%s: strides" % name)
    dilation = int_tuple(dilation, nd, "%s: dilation" % name)
    pads = _non_negative_tuple(padding, nd, "%s: padding" % name)
    extra = _non_negative_tuple(output_padding, nd, "%s: output_padding" % name)
    for d in range(nd):
        if extra[d] >= max(strides[d], dilation[d]):
            raise ValueError("%s: output_padding %d in dim %d must be smaller than the stride "
                             "or the dilation (%d, %d)" % (name, extra[d], d, strides[d],
                                                            dilation[d]))
    attrs = {"strides": strides, "dilation": dilation, "padding": tuple((p, p) for p in pads),
             "output_padding": extra, "groups": groups}
    y = apply(_CONV_TRANSPOSE[nd], [x, kernel], attrs)
    if bias is None:
        return y
    from .shape import reshape

    return y + reshape(as_operand(bias), (-1,) + (1,) * nd)


def _non_negative_tuple(value, nd, what):
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,) * nd
    out = tuple(value)
    if len(out) != nd or any(not isinstance(v, int) or isinstance(v, bool) or v < 0
                             for v in out):
        raise ValueError("%s must be a non-negative int or %d of them, got %r" % (what, nd, value))
    return out


def conv_transpose1d(x, kernel, bias=None, strides=1, padding=0, output_padding=0, dilation=1,
                     groups=1):
    """Transposed 1-D convolution (PyTorch's conv_transpose1d): x (N, Cin, L), kernel
    (Cin, Cout/groups, k), bias (Cout,); output length (L-1)*stride - 2*padding +
    dilation*(k-1) + output_padding + 1."""
    return conv_transpose_nd(1, x, kernel, bias, strides, padding, output_padding, dilation,
                             groups)


def conv_transpose2d(x, kernel, bias=None, strides=1, padding=0, output_padding=0, dilation=1,
                     groups=1):
    """Transposed 2-D convolution: x (N, Cin, H, W), kernel (Cin, Cout/groups, kh, kw)."""
    return conv_transpose_nd(2, x, kernel, bias, strides, padding, output_padding, dilation,
                             groups)


def conv_transpose3d(x, kernel, bias=None, strides=1, padding=0, output_padding=0, dilation=1,
                     groups=1):
    """Transposed 3-D convolution: x (N, Cin, D, H, W), kernel (Cin, Cout/groups, kd, kh, kw)."""
    return conv_transpose_nd(3, x, kernel, bias, strides, padding, output_padding, dilation,
                             groups)


# ---------------------------------------------------------------------------------------------
# torch.nn.functional's im2col family, composed of gathers: unfold (sliding windows as
# columns), fold (its adjoint: overlapping windows summed back) and the pixel shuffles

def _lead_shape(x, name, ndim_min):
    """x's leading (batch) dims for a reshape: the first may be unknown (-1); the trailing
    ndim_min dims must be known."""
    if len(x.shape) < ndim_min or None in tuple(x.shape[len(x.shape) - ndim_min:]) or \
            None in tuple(x.shape[1:len(x.shape) - ndim_min]):
        raise errors.ShapeError("%s: x must have at least %d dims, all known but the first, "
                                "got %s" % (name, ndim_min, fmt_shape(x.shape)))
    lead = tuple(x.shape[:len(x.shape) - ndim_min])
    return tuple(-1 if d is None else d for d in lead)


def _factor(value, name, what):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError("%s: %s must be a positive int, got %r" % (name, what, value))
    return value


def pixel_shuffle(x, upscale_factor):
    """PyTorch's F.pixel_shuffle: (*, C * r^2, H, W) -> (*, C, H * r, W * r), r the
    upscale_factor (sub-pixel convolution's rearrangement)."""
    from .shape import permute, reshape

    x = as_operand(x)
    name = core.located("pixel_shuffle")
    r = _factor(upscale_factor, name, "upscale_factor")
    lead = _lead_shape(x, name, 3)
    c, h, w = x.shape[-3:]
    if c % (r * r):
        raise errors.ShapeError("%s: the %d channels of x %s must be divisible by "
                                "upscale_factor^2 = %d" % (name, c, fmt_shape(x.shape), r * r))
    n = len(lead)
    y = reshape(x, lead + (c // (r * r), r, r, h, w))
    y = permute(y, tuple(range(n)) + (n, n + 3, n + 1, n + 4, n + 2))
    return reshape(y, lead + (c // (r * r), h * r, w * r))


def pixel_unshuffle(x, downscale_factor):
    """PyTorch's F.pixel_unshuffle, pixel_shuffle's inverse: (*, C, H * r, W * r) ->
    (*, C * r^2, H, W)."""
    from .shape import permute, reshape

    x = as_operand(x)
    name = core.located("pixel_unshuffle")
    r = _factor(downscale_factor, name, "downscale_factor")
    lead = _lead_shape(x, name, 3)
    c, h, w = x.shape[-3:]
    if h % r or w % r:
        raise errors.ShapeError("%s: height and width of x %s must be divisible by "
                                "downscale_factor %d" % (name, fmt_shape(x.shape), r))
    n = len(lead)
    y = reshape(x, lead + (c, h // r, r, w // r, r))
    y = permute(y, tuple(range(n)) + (n, n + 2, n + 4, n + 1, n + 3))
    return reshape(y, lead + (c * r * r, h // r, w // r))


def _window_geometry(name, kernel_size, dilation, padding, strides, sizes):
    """(kernel, dilation, padding, strides, output sizes) of 2-D sliding windows over a padded
    plane of `sizes` (PyTorch's unfold/fold rule)."""
    kernel = int_tuple(kernel_size, 2, "%s: kernel_size" % name)
    dilation = int_tuple(dilation, 2, "%s: dilation" % name)
    strides = int_tuple(strides, 2, "%s: stride" % name)
    pads = (padding, padding) if isinstance(padding, int) else tuple(padding)
    if len(pads) != 2 or any(isinstance(p, bool) or not isinstance(p, int) or p < 0
                             for p in pads):
        raise ValueError("%s: padding must be a non-negative int or 2 of them, got %r"
                         % (name, padding))
    out = tuple((n + 2 * p - d * (k - 1) - 1) // s + 1
                for n, p, d, k, s in zip(sizes, pads, dilation, kernel, strides))
    if min(out) < 1:
        raise errors.ShapeError("%s: the %s windows dilated by %s do not fit the plane %s padded "
                                "by %s" % (name, kernel, dilation, tuple(sizes), pads))
    return kernel, dilation, pads, strides, out


def _window_index(out, kernel, dilation, stride):
    """(out, kernel) positions in the padded dim of each window's taps."""
    return np.arange(out)[:, None] * stride + np.arange(kernel)[None, :] * dilation


def unfold(x, kernel_size, dilation=1, padding=0, strides=1):
    """PyTorch's F.unfold (im2col): x (N, C, H, W) or (C, H, W) -> (N, C * kh * kw, L), column
    l holding the l-th sliding window (row-major over the output positions), its rows ordered
    (channel, kernel row, kernel column). stride= is accepted."""
    from .shape import expand_dims, pad, permute, reshape, squeeze, take

    x = as_operand(x)
    name = core.located("unfold")
    unbatched = len(x.shape) == 3
    if unbatched:
        x = expand_dims(x, 0)
    if len(x.shape) != 4 or None in tuple(x.shape[1:]):
        raise errors.ShapeError("%s: x must be (batch, channels, height, width) or unbatched "
                                "(channels, height, width) with known sizes, got %s"
                                % (name, fmt_shape(x.shape[1:] if unbatched else x.shape)))
    kernel, dilation, pads, strides, out = _window_geometry(
        name, kernel_size, dilation, padding, strides, x.shape[2:])
    c = x.shape[1]
    y = pad(x, ((0, 0), (0, 0), (pads[0], pads[0]), (pads[1], pads[1])))
    y = take(y, _window_index(out[0], kernel[0], dilation[0], strides[0]), 2)
    y = take(y, _window_index(out[1], kernel[1], dilation[1], strides[1]), 4)
    y = permute(y, (0, 1, 3, 5, 2, 4))              # (N, C, kh, kw, oh, ow)
    y = reshape(y, (-1, c * kernel[0] * kernel[1], out[0] * out[1]))
    return squeeze(y, 0) if unbatched else y


def _overlap_index(size, pad, out, kernel, dilation, stride):
    """For each position of an unpadded dim of `size`, the flat (window, tap) entries that read
    it, as a (size, most) array; fewer entries are filled with out * kernel (a zero entry)."""
    taps = _window_index(out, kernel, dilation, stride).reshape(-1) - pad
    lists = [np.flatnonzero(taps == i) for i in range(size)]
    most = max(1, max(len(v) for v in lists))
    table = np.full((size, most), out * kernel, np.int64)
    for i, v in enumerate(lists):
        table[i, :len(v)] = v
    return table


def fold(x, output_size, kernel_size, dilation=1, padding=0, strides=1):
    """PyTorch's F.fold (col2im), unfold's adjoint: x (N, C * kh * kw, L) or (C * kh * kw, L)
    of sliding-window columns -> (N, C, *output_size), overlapping entries summed. stride= is
    accepted."""
    from .reduction import sum as reduce_sum
    from .shape import expand_dims, pad, permute, reshape, squeeze, take

    x = as_operand(x)
    name = core.located("fold")
    unbatched = len(x.shape) == 2
    if unbatched:
        x = expand_dims(x, 0)
    sizes = int_tuple(output_size, 2, "%s: output_size" % name)
    if len(x.shape) != 3 or None in tuple(x.shape[1:]):
        raise errors.ShapeError("%s: x must be (batch, channels * kernel taps, blocks) or "
                                "unbatched with known sizes, got %s"
                                % (name, fmt_shape(x.shape[1:] if unbatched else x.shape)))
    kernel, dilation, pads, strides, out = _window_geometry(
        name, kernel_size, dilation, padding, strides, sizes)
    taps = kernel[0] * kernel[1]
    if x.shape[1] % taps or x.shape[2] != out[0] * out[1]:
        raise errors.ShapeError("%s: x %s must be (batch, C * %d, %d): kernel %s gives %d taps "
                                "and output_size %s %s blocks"
                                % (name, fmt_shape(x.shape), taps, out[0] * out[1], kernel,
                                   taps, sizes, "x".join(map(str, out))))
    c = x.shape[1] // taps
    y = reshape(x, (-1, c, kernel[0], kernel[1], out[0], out[1]))
    y = reshape(permute(y, (0, 1, 4, 2, 5, 3)), (-1, c, out[0] * kernel[0], out[1] * kernel[1]))
    # each output position gathers the entries that read it (a zero entry pads the lists)
    for d in range(2):
        axis = 2 + d
        pairs = [(0, 0)] * 4
        pairs[axis] = (0, 1)
        table = _overlap_index(sizes[d], pads[d], out[d], kernel[d], dilation[d], strides[d])
        y = reduce_sum(take(pad(y, tuple(pairs)), table, axis), axis + 1)
    return squeeze(y, 0) if unbatched else y


__all__ += ["pixel_shuffle", "pixel_unshuffle", "unfold", "fold"]
