"""Pooling ops over 1, 2 or 3 spatial dims, channels first: max and average pooling (window,
stride, padding as for convolutions) with gradients that are ops themselves, and global
average/max pooling as reductions over the spatial dims."""
import numpy as np

from .. import errors
from .conv import SPATIAL_DIMS, int_tuple, conv_padding, normalize_padding, output_sizes
from . import core
from .core import Op, ShapeMismatch, Spec, apply, as_operand, check_shape, fmt_shape

__all__ = ["max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
           "global_avg_pool", "global_max_pool", "interpolate", "upsample"]


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
    retain_outputs = ()

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
        check_shape("grad", specs[1].shape, _pooled_shape(self.nd, specs[0], attrs))
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
        check_shape("values", specs[1].shape, specs[0].shape)
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
    retain_inputs = retain_outputs = ()       # the input's shape is all the gradient needs

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
        check_shape("grad", specs[0].shape, _pooled_shape(self.nd, specs[1], attrs))
        return [Spec(specs[1].shape, specs[0].dtype)]

    def forward(self, k, ins, outs, attrs):
        k.run("avg_pool_grad", [ins[0].desc()], [outs[0].desc()],
              _iattr(self.nd, outs[0].shape, attrs))

    def grad(self, ctx, gg):
        # linear: its adjoint is the pooling itself
        return apply(_AVG[self.nd], [gg], ctx.attrs), None


_MAX = {nd: core.register(MaxPool(nd)) for nd in (1, 2, 3)}
_MAX_GRAD = {nd: core.register(MaxPoolGrad(nd)) for nd in (1, 2, 3)}
_MAX_GATHER = {nd: core.register(MaxPoolGather(nd)) for nd in (1, 2, 3)}
_AVG = {nd: core.register(AvgPool(nd)) for nd in (1, 2, 3)}
_AVG_GRAD = {nd: core.register(AvgPoolGrad(nd)) for nd in (1, 2, 3)}


def pool_attrs(nd, pool_size, strides, padding, what):
    """Checked attributes of an nd pooling: strides default to the window."""
    window = int_tuple(pool_size, nd, "%s: pool_size" % what)
    return {"pool_size": window,
            "strides": window if strides is None else int_tuple(strides, nd,
                                                                "%s: strides" % what),
            "padding": normalize_padding(padding, nd)}


def _unbatched(pool):
    """pool(nd, x, ...) also taking x without its batch dim, (C, *spatial), as PyTorch's
    pooling does: pooled as a batch of one, which is then dropped."""
    def pooling(nd, x, *args):
        x = as_operand(x)
        if len(x.shape) == nd + 1:
            from .shape import expand_dims, squeeze

            return squeeze(pool(nd, expand_dims(x, 0), *args), 0)
        return pool(nd, x, *args)
    return pooling


@_unbatched
def _max_pool(nd, x, pool_size, strides, padding, dilation=1, ceil_mode=False):
    name = "max_pool%dd" % nd
    x = as_operand(x)
    attrs = pool_attrs(nd, pool_size, strides, padding, name)
    dilation = int_tuple(dilation, nd, "%s: dilation" % name)
    if ceil_mode:
        attrs["padding"] = _ceil_padding(nd, x, attrs, dilation, name)
    if max(dilation) > 1 or not x.dtype.is_float:
        return _window_max(nd, x, attrs, dilation, name)
    return apply(_MAX[nd], [x], attrs)


@_unbatched
def _avg_pool(nd, x, pool_size, strides, padding, count_include_pad, ceil_mode=False):
    name = "avg_pool%dd" % nd
    x = as_operand(x)
    attrs = pool_attrs(nd, pool_size, strides, padding, name)
    attrs["count_include_pad"] = bool(count_include_pad)
    if not ceil_mode:
        return apply(_AVG[nd], [x], attrs)
    given = tuple(tuple(p) for p in _pads(attrs, list(x.shape[2:])))
    attrs["padding"] = _ceil_padding(nd, x, attrs, (1,) * nd, name)
    if attrs["padding"] == given or not count_include_pad:
        return apply(_AVG[nd], [x], attrs)
    # PyTorch counts the given padding but not the windows' overhang past it: average over the
    # input only, then rescale by (positions in the input) / (positions PyTorch counts)
    y = apply(_AVG[nd], [x], dict(attrs, count_include_pad=False))
    ratio = np.ones((1, 1), np.float64)
    for d in range(nd):
        n, (b, e), k, st = x.shape[2 + d], given[d], attrs["pool_size"][d], attrs["strides"][d]
        starts = np.arange(y.shape[2 + d]) * st - b
        inside = np.minimum(starts + k, n) - np.maximum(starts, 0)
        counted = np.minimum(starts + k, n + e) - starts
        ratio = ratio[..., None] * (inside / counted)
    return y * core.constant_like(ratio.astype(x.dtype.np), x)


def _ceil_padding(nd, x, attrs, dilation, name):
    """End padding that makes the floor of the output-size rule give PyTorch's ceil_mode
    sizes (a last window must still start inside the input or its begin padding)."""
    if isinstance(attrs["padding"], str) and attrs["padding"] != "valid":
        raise ValueError("%s: ceil_mode needs explicit padding, not %r" % (name, attrs["padding"]))
    pads = conv_padding(attrs["padding"], list(x.shape[2:]), attrs["pool_size"], attrs["strides"])
    out = []
    for d, (b, e) in enumerate(pads):
        n = x.shape[2 + d]
        if n is None:
            raise errors.ShapeError("%s: ceil_mode needs the spatial size of %s"
                                    % (name, fmt_shape(x.shape)))
        span, st = dilation[d] * (attrs["pool_size"][d] - 1) + 1, attrs["strides"][d]
        size = -(-(n + b + e - span) // st) + 1
        if (size - 1) * st >= n + b:
            size -= 1
        out.append((b, e + max(0, (size - 1) * st + span - (n + b + e))))
    return tuple(out)


def _window_max(nd, x, attrs, dilation, name):
    """Max pooling composed from ops, for dilated windows and integer inputs (which the native
    kernel does not take): the windows gathered along each spatial dim, then a max."""
    from .reduction import max as reduce_max
    from .shape import pad, take

    if len(x.shape) != nd + 2 or None in tuple(x.shape[2:]):
        raise errors.ShapeError("%s: the input must be (batch, channels, %s) with known spatial "
                                "sizes, got %s" % (name, SPATIAL_DIMS[nd], fmt_shape(x.shape)))
    window = attrs["pool_size"]
    spans = [dl * (k - 1) + 1 for k, dl in zip(window, dilation)]
    pads = conv_padding(attrs["padding"], list(x.shape[2:]), spans, attrs["strides"])
    lowest = float("-inf") if x.dtype.is_float else float(np.iinfo(x.dtype.np).min)
    y = pad(x, ((0, 0), (0, 0)) + tuple(tuple(p) for p in pads), value=lowest)
    for d in range(nd):
        n = y.shape[2 + 2 * d]
        if n < spans[d]:
            raise errors.ShapeError("%s: the pool window %s dilated by %s spans %d in spatial dim "
                                    "%d but the padded input %s has only %d there"
                                    % (name, tuple(window), tuple(dilation), spans[d], d,
                                       fmt_shape(x.shape), n))
        out = (n - spans[d]) // attrs["strides"][d] + 1
        index = (np.arange(out)[:, None] * attrs["strides"][d]
                 + np.arange(window[d])[None, :] * dilation[d])
        y = take(y, index, 2 + 2 * d)
    axes = tuple(3 + 2 * d for d in range(nd))
    return reduce_max(y, axes)


def max_pool1d(x, pool_size, strides=None, padding="valid", dilation=1, ceil_mode=False):
    """Max over windows of x (N, C, L), or of an unbatched (C, L) (PyTorch's: the result
    unbatched too; so for the 2d and 3d forms). strides default to pool_size; padding as
    conv1d (padded positions never win); dilation spaces the window's taps; ceil_mode keeps a
    last, partial window (PyTorch's). Integer inputs keep their dtype."""
    return _max_pool(1, x, pool_size, strides, padding, dilation, ceil_mode)


def max_pool2d(x, pool_size, strides=None, padding="valid", dilation=1, ceil_mode=False):
    """Max over windows of x (N, C, H, W); see max_pool1d."""
    return _max_pool(2, x, pool_size, strides, padding, dilation, ceil_mode)


def max_pool3d(x, pool_size, strides=None, padding="valid", dilation=1, ceil_mode=False):
    """Max over windows of x (N, C, D, H, W); see max_pool1d."""
    return _max_pool(3, x, pool_size, strides, padding, dilation, ceil_mode)


def avg_pool1d(x, pool_size, strides=None, padding="valid", count_include_pad=True,
               ceil_mode=False):
    """Mean over windows of x (N, C, L) or an unbatched (C, L) (as max_pool1d). With
    count_include_pad (PyTorch's default) padded positions count as zeros; without, windows
    average only their part inside the input (TensorFlow's "same"). ceil_mode as PyTorch's
    (a partial last window averages the positions inside the input and the given
    padding)."""
    return _avg_pool(1, x, pool_size, strides, padding, count_include_pad, ceil_mode)


def avg_pool2d(x, pool_size, strides=None, padding="valid", count_include_pad=True,
               ceil_mode=False):
    """Mean over windows of x (N, C, H, W); see avg_pool1d."""
    return _avg_pool(2, x, pool_size, strides, padding, count_include_pad, ceil_mode)


def avg_pool3d(x, pool_size, strides=None, padding="valid", count_include_pad=True,
               ceil_mode=False):
    """Mean over windows of x (N, C, D, H, W); see avg_pool1d."""
    return _avg_pool(3, x, pool_size, strides, padding, count_include_pad, ceil_mode)


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


# ---------------------------------------------------------------------------------------------
# resizing: nearest, (bi/tri)linear and bicubic interpolation, gathers along each spatial dim
# weighted by constants

INTERPOLATE_MODES = ("nearest", "nearest-exact", "linear", "bilinear", "trilinear", "bicubic")


def interpolate(x, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """PyTorch's F.interpolate over the spatial dims of x (N, C, *spatial): give the output
    size or a scale factor (an int/float or one per dim). "nearest" takes
    floor(out_index * scale) (PyTorch's legacy rule), "nearest-exact" the pixel whose centre
    is nearest, floor((out_index + 0.5) * scale), both in PyTorch's float32 arithmetic;
    "linear"/"bilinear"/"trilinear" (the same separable rule in 1, 2 or 3 dims) use
    half-pixel centres, or the corner pixels with align_corners=True; "bicubic" (2 spatial
    dims, as PyTorch's) is PyTorch's cubic convolution (A = -0.75, border pixels repeated)."""
    from .shape import take

    x = as_operand(x)
    nd = len(x.shape) - 2
    if nd < 1 or None in tuple(x.shape[2:]):
        raise errors.ShapeError("interpolate: x must be (batch, channels, *spatial) with known "
                                "spatial sizes, got %s" % fmt_shape(x.shape))
    if mode not in INTERPOLATE_MODES:
        raise ValueError("interpolate: mode must be one of %s, got %r"
                         % (", ".join(INTERPOLATE_MODES), mode))
    if mode.startswith("nearest") and align_corners:
        raise ValueError("interpolate: align_corners only applies to the linear and cubic "
                         "modes")
    if mode == "bicubic" and nd != 2:
        raise errors.ShapeError("interpolate: mode 'bicubic' needs x (batch, channels, height, "
                                "width), got %s" % fmt_shape(x.shape))
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: give exactly one of size and scale_factor")
    in_sizes = tuple(x.shape[2:])
    if size is not None:
        out_sizes = (size,) * nd if isinstance(size, int) else tuple(size)
        scales = [i / o for i, o in zip(in_sizes, out_sizes)]
    else:
        factors = (scale_factor,) * nd if isinstance(scale_factor, (int, float)) \
            else tuple(scale_factor)
        if len(factors) != nd or any(f <= 0 for f in factors):
            raise ValueError("interpolate: scale_factor must be positive, one or %d of them, "
                             "got %r" % (nd, scale_factor))
        out_sizes = tuple(int(np.floor(i * f)) for i, f in zip(in_sizes, factors))
        scales = [1.0 / f for f in factors]
    if len(out_sizes) != nd or any(not isinstance(o, (int, np.integer)) or o < 1
                                   for o in out_sizes):
        raise ValueError("interpolate: size must be positive ints, one or %d of them, got %r"
                         % (nd, size))
    factors = (None,) * nd if scale_factor is None else factors
    if mode == "bicubic":
        return _bicubic(x, in_sizes, out_sizes, factors, align_corners)
    y = x
    for d, (n, out, scale) in enumerate(zip(in_sizes, out_sizes, scales)):
        axis = 2 + d
        dst = np.arange(out, dtype=np.float64)
        if mode in ("nearest", "nearest-exact"):
            y = take(y, _nearest_index(n, out, factors[d], mode == "nearest-exact"), axis)
            continue
        if align_corners:
            src = dst * ((n - 1) / (out - 1)) if out > 1 else dst * 0.0
        else:
            src = np.maximum((dst + 0.5) * scale - 0.5, 0.0)
        lo = np.minimum(np.floor(src).astype(np.int64), n - 1)
        hi = np.minimum(lo + 1, n - 1)
        frac = (src - lo).reshape((-1,) + (1,) * (nd - 1 - d)).astype(x.dtype.np)
        y = take(y, lo, axis) * core.constant_like(1.0 - frac, x) + \
            take(y, hi, axis) * core.constant_like(frac, x)
    return y


def _nearest_index(n, out, factor, exact):
    """The source index of each of `out` outputs along a dim of n, in PyTorch's float32
    arithmetic (its CPU kernel's): the scale is in / out, or 1 / scale_factor when one was
    given; "nearest" takes floor(out_index * scale), "nearest-exact" the pixel whose centre
    is nearest, floor(max(scale * (out_index + 0.5) - 0.5, 0) + 0.5)."""
    f = np.float32
    scale = f(1.0 / factor) if factor is not None else f(n) / f(out)
    if exact:
        # scale * (i + 0.5) - 0.5 is one fused multiply-add there (rounded once, to float32:
        # taken exactly in float64 here); rounding the product first moves some indices
        src = (np.float64(scale) * (np.arange(out) + 0.5) - 0.5).astype(f)
        src = np.floor(np.maximum(src, f(0)) + f(0.5))
    else:
        src = np.floor(np.arange(out).astype(f) * scale)
    return np.minimum(src.astype(np.int64), n - 1)


def _cubic_weights(t):
    """The four weights of PyTorch's cubic convolution (A = -0.75) for fractions t, for the
    pixels at -1, 0, 1 and 2 from the floor, in PyTorch's order of operations and t's dtype
    (PyTorch's opmath: float32 for float32 inputs)."""
    f = t.dtype.type
    a = f(-0.75)

    def near(v):        # |v| <= 1
        return ((a + f(2)) * v - (a + f(3))) * v * v + f(1)

    def far(v):         # 1 < |v| < 2
        return ((a * v - f(5) * a) * v + f(8) * a) * v - f(4) * a

    return far(t + f(1)), near(t), near(f(1) - t), far(f(1) - t + f(1))


def _bicubic(x, in_sizes, out_sizes, factors, align_corners):
    """PyTorch's bicubic upsampling: separable, the width first and then the height (the
    order PyTorch's kernel sums in), each output a weighted sum of four neighbours with the
    indices clamped to the border; scales, source positions and weights computed as PyTorch
    does, in x's dtype."""
    from .shape import take

    f = x.dtype.np.type
    y = x
    for d in (1, 0):
        n, out, axis = in_sizes[d], out_sizes[d], 2 + d
        # PyTorch's area_pixel_compute_scale and area_pixel_compute_source_index (cubic:
        # not clamped at 0)
        if align_corners:
            src = np.arange(out).astype(f) * (f(n - 1) / f(out - 1) if out > 1 else f(0))
        else:
            scale = f(1.0 / factors[d]) if factors[d] is not None else f(n) / f(out)
            # (one fused multiply-add in PyTorch's kernel, as for "nearest-exact")
            src = (np.float64(scale) * (np.arange(out) + 0.5) - 0.5).astype(f)
        low = np.minimum(np.floor(src), n - 1)
        weights = _cubic_weights(np.clip(src - low, f(0), f(1)).astype(f))
        low = low.astype(np.int64)
        shape = (-1,) + (1,) * (1 - d)
        total = None
        for k, w in enumerate(weights):
            tap = take(y, np.clip(low - 1 + k, 0, n - 1), axis) * \
                core.constant_like(w.reshape(shape), x)
            total = tap if total is None else total + tap
        y = total
    return y


def upsample(x, scale_factor=2, mode="nearest", align_corners=None):
    """x enlarged by scale_factor (interpolate with a scale)."""
    return interpolate(x, scale_factor=scale_factor, mode=mode, align_corners=align_corners)


# ---------------------------------------------------------------------------------------------
# adaptive average pooling: PyTorch's windows (bin i of n_out over n_in covers
# [floor(i * n_in / n_out), ceil((i + 1) * n_in / n_out))), one constant averaging matrix per
# spatial dim applied as a product: the mean over a window of a grid is the product of the
# per-dim means, so every output size works, divisible or not

def _adaptive_matrix(n_in, n_out):
    m = np.zeros((n_out, n_in), np.float64)
    for i in range(n_out):
        lo, hi = (i * n_in) // n_out, -(-((i + 1) * n_in) // n_out)
        m[i, lo:hi] = 1.0 / (hi - lo)
    return m


def _adaptive_avg_pool(nd, x, output_size, name):
    from .linalg import matmul
    from .shape import permute

    x = as_operand(x)
    if len(x.shape) != nd + 2:
        raise errors.ShapeError("%s needs a (batch, channels, %d spatial dims) input, got %s"
                                % (name, nd, core.fmt_shape(x.shape)))
    sizes = (output_size,) * nd if isinstance(output_size, int) else tuple(output_size)
    if len(sizes) != nd:
        raise ValueError("%s: output_size needs %d sizes, got %r" % (name, nd, output_size))
    sizes = tuple(x.shape[2 + d] if s is None else s for d, s in enumerate(sizes))
    if any(not isinstance(s, (int, np.integer)) or s < 1 for s in sizes) or None in x.shape[2:]:
        raise ValueError("%s: output sizes must be positive ints and the spatial dims known, "
                         "got %r for x %s" % (name, output_size, core.fmt_shape(x.shape)))
    nd_all = nd + 2
    for d, n_out in enumerate(sizes):
        n_in = x.shape[2 + d]
        if n_in == n_out:
            continue
        mat = core.constant_like(_adaptive_matrix(n_in, n_out).T.astype(x.dtype.np), x)
        # the pooled dim last, multiplied by the (n_in, n_out) averaging matrix, put back
        order = [a for a in range(nd_all) if a != 2 + d] + [2 + d]
        back = [order.index(a) for a in range(nd_all)]
        x = permute(matmul(permute(x, tuple(order)), mat), tuple(back))
    return x


def adaptive_avg_pool1d(x, output_size):
    """PyTorch's adaptive_avg_pool1d: (N, C, L) -> (N, C, output_size)."""
    return _adaptive_avg_pool(1, x, output_size, "adaptive_avg_pool1d")


def adaptive_avg_pool2d(x, output_size):
    """PyTorch's adaptive_avg_pool2d: (N, C, H, W) -> (N, C, *output_size) (an int for both;
    None keeps that dim)."""
    return _adaptive_avg_pool(2, x, output_size, "adaptive_avg_pool2d")


def adaptive_avg_pool3d(x, output_size):
    """PyTorch's adaptive_avg_pool3d: (N, C, D, H, W) -> (N, C, *output_size)."""
    return _adaptive_avg_pool(3, x, output_size, "adaptive_avg_pool3d")


__all__ += ["adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d"]
