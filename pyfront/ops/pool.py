"""Pooling ops over 1, 2 or 3 spatial dims, channels first: max and average pooling (window,
stride, padding as for convolutions) with gradients that are ops themselves, and global
average/max pooling as reductions over the spatial dims."""
from .. import errors
from .conv import SPATIAL_DIMS, int_tuple, conv_padding, normalize_padding, output_sizes
from .conv import register_instance
from .core import Op, ShapeMismatch, Spec, apply, as_operand, fmt_shape

__all__ = ["max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
           "global_avg_pool", "global_max_pool"]


def _pads(attrs, in_sizes):
    return conv_padding(attrs["padding"], in_sizes, attrs["pool_size"], attrs["strides"])


def _iattr(nd, x_shape, attrs):
    pads = _pads(attrs, list(x_shape[2:]))
    iattr = ((nd,) + tuple(attrs["pool_size"]) + tuple(attrs["strides"])
             + tuple(p[0] for p in pads) + tuple(p[1] for p in pads))
    if "count_include_pad" in attrs:
        iattr += (int(attrs["count_include_pad"]),)
    return iattr


def _pooled_shape(nd, x, attrs):
    """Shape rule shared by the pooling ops: rank, dtype, window inside the padded input."""
    if not x.dtype.is_float:
        raise errors.DTypeError("pooling needs a float input, got %s" % x.dtype.name)
    if len(x.shape) != nd + 2:
        raise ShapeMismatch("the input must be (batch, channels, %s) with %d dims, got %s"
                            % (SPATIAL_DIMS[nd], nd + 2, fmt_shape(x.shape)))
    window = tuple(attrs["pool_size"])
    pads = _pads(attrs, list(x.shape[2:]))
    for d, (pad, k) in enumerate(zip(pads, window)):
        if pad is not None and max(pad) >= k:
            raise ShapeMismatch("padding %s in spatial dim %d must be smaller than the pool "
                                "window %s" % (tuple(pad), d, window))
    out = output_sizes(x.shape, window, dict(attrs, dilation=(1,) * nd),
                       "pool window %s" % (window,))
    return tuple(x.shape[:2]) + tuple(out)


class MaxPool(Op):
    inputs = ("input",)

    def __init__(self, nd):
        self.nd = nd
        self.name = "max_pool%dd" % nd

    def infer(self, specs, attrs):
        return [Spec(_pooled_shape(self.nd, specs[0], attrs), specs[0].dtype)]

    def forward(self, k, ins, outs, attrs):
        k.run("max_pool", [ins[0].desc()], [outs[0].desc()], _iattr(self.nd, ins[0].shape, attrs))

    def grad(self, ctx, g):
        return (apply(_MAX_GRAD[self.nd], [ctx.inputs[0], g], ctx.attrs),)


class MaxPoolGrad(Op):
    """grad_x of max pooling: grad_y sent to each window's argmax (recomputed from x)."""

    inputs = ("input", "grad")

    def __init__(self, nd):
        self.nd = nd
        self.name = "max_pool%dd_grad" % nd

    def infer(self, specs, attrs):
        return [specs[0]]

    def forward(self, k, ins, outs, attrs):
        k.run("max_pool_grad", [ins[0].desc(), ins[1].desc()], [outs[0].desc()],
              _iattr(self.nd, ins[0].shape, attrs))

    def grad(self, ctx, gg):
        # piecewise constant in x; linear in grad, whose adjoint reads gg at the argmaxes
        dg = apply(_MAX_GATHER[self.nd], [ctx.inputs[0], gg], ctx.attrs) if ctx.needs[1] \
            else None
        return None, dg


class MaxPoolGather(Op):
    """values (shaped like x) read at each window's argmax of x: pooled shape."""

    inputs = ("input", "values")

    def __init__(self, nd):
        self.nd = nd
        self.name = "max_pool%dd_gather" % nd

    def infer(self, specs, attrs):
        return [Spec(_pooled_shape(self.nd, specs[0], attrs), specs[1].dtype)]

    def forward(self, k, ins, outs, attrs):
        k.run("max_pool_gather", [ins[0].desc(), ins[1].desc()], [outs[0].desc()],
              _iattr(self.nd, ins[0].shape, attrs))

    def grad(self, ctx, gg):
        dv = apply(_MAX_GRAD[self.nd], [ctx.inputs[0], gg], ctx.attrs) if ctx.needs[1] \
            else None
        return None, dv


class AvgPool(Op):
    inputs = ("input",)

    def __init__(self, nd):
        self.nd = nd
        self.name = "avg_pool%dd" % nd

    def infer(self, specs, attrs):
        return [Spec(_pooled_shape(self.nd, specs[0], attrs), specs[0].dtype)]

    def forward(self, k, ins, outs, attrs):
        k.run("avg_pool", [ins[0].desc()], [outs[0].desc()], _iattr(self.nd, ins[0].shape, attrs))

    def grad(self, ctx, g):
        return (apply(_AVG_GRAD[self.nd], [g, ctx.inputs[0]], ctx.attrs),)


class AvgPoolGrad(Op):
    """grad_x of average pooling, shaped like `like` (the input)."""

    inputs = ("grad", "like")
    shape_inputs = (1,)

    def __init__(self, nd):
        self.nd = nd
        self.name = "avg_pool%dd_grad" % nd

    def infer(self, specs, attrs):
        return [Spec(specs[1].shape, specs[0].dtype)]

    def forward(self, k, ins, outs, attrs):
        k.run("avg_pool_grad", [ins[0].desc()], [outs[0].desc()],
              _iattr(self.nd, outs[0].shape, attrs))

    def grad(self, ctx, gg):
        # linear: its adjoint is the pooling itself
        return apply(_AVG[self.nd], [gg], ctx.attrs), None


_MAX = {nd: register_instance(MaxPool(nd)) for nd in (1, 2, 3)}
_MAX_GRAD = {nd: register_instance(MaxPoolGrad(nd)) for nd in (1, 2, 3)}
_MAX_GATHER = {nd: register_instance(MaxPoolGather(nd)) for nd in (1, 2, 3)}
_AVG = {nd: register_instance(AvgPool(nd)) for nd in (1, 2, 3)}
_AVG_GRAD = {nd: register_instance(AvgPoolGrad(nd)) for nd in (1, 2, 3)}


def pool_attrs(nd, pool_size, strides, padding, what):
    """Checked attributes of an nd pooling: strides default to the window."""
    window = int_tuple(pool_size, nd, "%s: pool_size" % what)
    return {"pool_size": window,
            "strides": window if strides is None else int_tuple(strides, nd,
                                                                "%s: strides" % what),
            "padding": normalize_padding(padding, nd)}


def _max_pool(nd, x, pool_size, strides, padding):
    attrs = pool_attrs(nd, pool_size, strides, padding, "max_pool%dd" % nd)
    return apply(_MAX[nd], [as_operand(x)], attrs)


def _avg_pool(nd, x, pool_size, strides, padding, count_include_pad):
    attrs = pool_attrs(nd, pool_size, strides, padding, "avg_pool%dd" % nd)
    attrs["count_include_pad"] = bool(count_include_pad)
    return apply(_AVG[nd], [as_operand(x)], attrs)


def max_pool1d(x, pool_size, strides=None, padding="valid"):
    """Max over windows of x (N, C, L). strides default to pool_size; padding as conv1d
    (padded positions never win)."""
    return _max_pool(1, x, pool_size, strides, padding)


def max_pool2d(x, pool_size, strides=None, padding="valid"):
    """Max over windows of x (N, C, H, W); see max_pool1d."""
    return _max_pool(2, x, pool_size, strides, padding)


def max_pool3d(x, pool_size, strides=None, padding="valid"):
    """Max over windows of x (N, C, D, H, W); see max_pool1d."""
    return _max_pool(3, x, pool_size, strides, padding)


def avg_pool1d(x, pool_size, strides=None, padding="valid", count_include_pad=True):
    """Mean over windows of x (N, C, L). With count_include_pad (PyTorch's default) padded
    positions count as zeros; without, windows average only their part inside the input
    (TensorFlow's "same")."""
    return _avg_pool(1, x, pool_size, strides, padding, count_include_pad)


def avg_pool2d(x, pool_size, strides=None, padding="valid", count_include_pad=True):
    """Mean over windows of x (N, C, H, W); see avg_pool1d."""
    return _avg_pool(2, x, pool_size, strides, padding, count_include_pad)


def avg_pool3d(x, pool_size, strides=None, padding="valid", count_include_pad=True):
    """Mean over windows of x (N, C, D, H, W); see avg_pool1d."""
    return _avg_pool(3, x, pool_size, strides, padding, count_include_pad)


def _spatial_axes(x, what):
    x = as_operand(x)
    if len(x.shape) < 3:
        raise errors.ShapeError("%s needs (batch, channels, *spatial) with at least 3 dims, got "
                                "%s" % (what, fmt_shape(x.shape)))
    return x, tuple(range(2, len(x.shape)))


def global_avg_pool(x, keepdims=False):
    """Mean over every spatial dim: (N, C, *spatial) -> (N, C), or (N, C, 1, ...) kept."""
    from .reduction import mean

    x, axes = _spatial_axes(x, "global_avg_pool")
    return mean(x, axes, keepdims)


def global_max_pool(x, keepdims=False):
    """Max over every spatial dim: (N, C, *spatial) -> (N, C), or (N, C, 1, ...) kept."""
    from .reduction import max as reduce_max

    x, axes = _spatial_axes(x, "global_max_pool")
    return reduce_max(x, axes, keepdims)
