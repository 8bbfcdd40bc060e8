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


# ---------------------------------------------------------------------------------------------
# torch.nn.functional's other poolings, composed: adaptive max pooling (gathered windows and an
# argmax, so the gradient reaches one element per window, as PyTorch's), power-average
# pooling, max unpooling (a scatter) and embedding bags

def _adaptive_windows(n_in, n_out):
    """PyTorch's adaptive bins along a dim of n_in as an (n_out, widest) index array; past a
    narrower bin's end the index is n_in (a -inf pad), and whether any bin is narrower."""
    starts = (np.arange(n_out) * n_in) // n_out
    ends = -(-((np.arange(n_out) + 1) * n_in) // n_out)
    width = int((ends - starts).max())
    idx = starts[:, None] + np.arange(width)[None, :]
    return np.where(idx < ends[:, None], idx, n_in), bool((ends - starts).min() < width)


def _adaptive_max_pool(nd, x, output_size, return_indices, name):
    from .reduction import argmax
    from .shape import expand_dims, pad, permute, reshape, squeeze, take, take_along_axis

    name = core.located(name)
    x = as_operand(x)
    unbatched = len(x.shape) == nd + 1
    if unbatched:
        x = expand_dims(x, 0)
    if len(x.shape) != nd + 2 or None in tuple(x.shape[1:]):
        raise errors.ShapeError("%s: x must be (batch, channels, %s) or unbatched (channels, "
                                "%s) with known sizes, got %s"
                                % (name, SPATIAL_DIMS[nd], SPATIAL_DIMS[nd],
                                   fmt_shape(x.shape[1:] if unbatched else x.shape)))
    if not x.dtype.is_float:
        raise errors.DTypeError("%s: x must be float32 or float64, got %s"
                                % (name, x.dtype.name))
    sizes = (output_size,) * nd if isinstance(output_size, int) else tuple(output_size)
    if len(sizes) != nd:
        raise ValueError("%s: output_size needs %d sizes, got %r" % (name, nd, output_size))
    in_sizes = tuple(x.shape[2:])
    sizes = tuple(n if s is None else s for n, s in zip(in_sizes, sizes))
    if any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1
           for s in sizes):
        raise ValueError("%s: output sizes must be positive ints, got %r"
                         % (name, output_size))
    windows = []
    y = x
    for d, (n, out) in enumerate(zip(in_sizes, sizes)):
        idx, narrower = _adaptive_windows(n, out)
        axis = 2 + 2 * d          # (each gather before this one added a window dim)
        if narrower:
            pads = [(0, 0)] * len(y.shape)
            pads[axis] = (0, 1)
            y = pad(y, tuple(pads), value=float("-inf"))
        y = take(y, idx, axis)
        windows.append(idx)
    if nd == 2:
        y = permute(y, (0, 1, 2, 4, 3, 5))
    widths = [w.shape[1] for w in windows]
    y = reshape(y, (-1, x.shape[1]) + sizes + (int(np.prod(widths)),))
    best = argmax(y, -1, True)          # the first largest (NaN counts as largest)
    values = squeeze(take_along_axis(y, best, -1), -1)
    if not return_indices:
        return squeeze(values, 0) if unbatched else values
    # each window position's flat index into the input's plane, PyTorch's indices
    flat = windows[0]
    if nd == 2:
        flat = (windows[0][:, None, :, None] * in_sizes[1] +
                windows[1][None, :, None, :]).reshape(sizes + (-1,))
    first = (np.arange(int(np.prod(sizes))).reshape(sizes) * flat.shape[-1]).astype(np.int64)
    indices = take(flat.astype(np.int64).reshape(-1),
                   squeeze(best, -1) + core.constant_like(first, best))
    if unbatched:
        return squeeze(values, 0), squeeze(indices, 0)
    return values, indices


def adaptive_max_pool1d(x, output_size, return_indices=False):
    """PyTorch's adaptive_max_pool1d: (N, C, L) or (C, L) -> (..., output_size), the max over
    PyTorch's bins; with return_indices also each max's position along L (int64)."""
    return _adaptive_max_pool(1, x, output_size, return_indices, "adaptive_max_pool1d")


def adaptive_max_pool2d(x, output_size, return_indices=False):
    """PyTorch's adaptive_max_pool2d: (N, C, H, W) or (C, H, W) -> (..., *output_size) (an int
    for both; None keeps that dim); with return_indices also each max's flat position in its
    H x W plane (int64)."""
    return _adaptive_max_pool(2, x, output_size, return_indices, "adaptive_max_pool2d")


def _lp_pool(nd, x, norm_type, pool_size, strides, ceil_mode):
    from .elementwise import abs as absolute, equal, pow as power, where

    name = core.located("lp_pool%dd" % nd)
    x = as_operand(x)
    window = int_tuple(pool_size, nd, "%s: pool_size" % name)
    if isinstance(norm_type, bool) or not isinstance(norm_type, (int, float)) or \
            norm_type == 0 or norm_type != norm_type:
        raise ValueError("%s: norm_type must be a nonzero number, got %r" % (name, norm_type))
    if norm_type == float("inf"):
        return _max_pool(nd, absolute(x), window, strides, "valid", 1, ceil_mode)
    if norm_type == float("-inf"):
        return -_max_pool(nd, -absolute(x), window, strides, "valid", 1, ceil_mode)
    total = _avg_pool(nd, power(x, float(norm_type)), window, strides, "valid", True,
                      ceil_mode) * float(np.prod(window))
    # PyTorch's gradient is 0 where a window's sum is 0 (its relu(|sum|) has no slope there),
    # not the root's infinite slope: the root is taken of 1 there and its result replaced
    zero = equal(total, 0.0)
    return where(zero, 0.0, power(where(zero, 1.0, total), 1.0 / norm_type))


def lp_pool1d(x, norm_type, pool_size, strides=None, ceil_mode=False):
    """PyTorch's lp_pool1d: (sum over each window of x^p)^(1/p) over (N, C, L) or (C, L), p =
    norm_type (inf: the max of |x|); strides default to pool_size. kernel_size= and stride=
    are accepted."""
    return _lp_pool(1, x, norm_type, pool_size, strides, ceil_mode)


def lp_pool2d(x, norm_type, pool_size, strides=None, ceil_mode=False):
    """PyTorch's lp_pool2d over (N, C, H, W) or (C, H, W); see lp_pool1d."""
    return _lp_pool(2, x, norm_type, pool_size, strides, ceil_mode)


def max_unpool2d(x, indices, pool_size, strides=None, padding=0, output_size=None):
    """PyTorch's max_unpool2d: each value of x (N, C, H, W) or (C, H, W) written at its flat
    index (max_pool2d's indices, e.g. adaptive_max_pool2d's) in an output plane of zeros. The
    output size is (H - 1) * stride - 2 * padding + kernel_size unless output_size (2 sizes,
    or x's rank of them) says otherwise, within a stride of that."""
    from .shape import expand_dims, expand_like, getitem, pad, reshape, scatter, squeeze

    name = core.located("max_unpool2d")
    x = as_operand(x)
    indices = as_operand(indices)
    window = int_tuple(pool_size, 2, "%s: pool_size" % name)
    step = window if strides is None else int_tuple(strides, 2, "%s: strides" % name)
    pads = (padding,) * 2 if isinstance(padding, int) else tuple(padding)
    unbatched = len(x.shape) == 3
    if len(x.shape) not in (3, 4) or tuple(indices.shape) != tuple(x.shape) or \
            None in tuple(x.shape[-3:]):
        raise errors.ShapeError("%s: x must be (batch, channels, height, width) or unbatched, "
                                "with indices of its shape, got x %s and indices %s"
                                % (name, fmt_shape(x.shape), fmt_shape(indices.shape)))
    if indices.dtype.is_float:
        raise errors.DTypeError("%s: indices must be int64, got %s" % (name, indices.dtype.name))
    default = [(n - 1) * s + k - 2 * p
               for n, s, k, p in zip(x.shape[-2:], step, window, pads)]
    if output_size is None:
        sizes = default
    else:
        sizes = list(output_size)[-2:] if len(output_size) == len(x.shape) else \
            list(output_size)
        if len(sizes) != 2 or any(not default[d] - step[d] < sizes[d] < default[d] + step[d]
                                  for d in range(2)):
            raise ValueError("%s: output_size %r must be 2 sizes (or %d), each within a stride "
                             "of %s" % (name, output_size, len(x.shape), default))
    if min(sizes) < 1:
        raise ValueError("%s: the output size %s must be positive" % (name, sizes))
    plane = sizes[0] * sizes[1]
    if not indices.symbolic:
        flat = indices.cpu().numpy()
        if flat.size and (flat.min() < 0 or flat.max() >= plane):
            raise errors.IndexOutOfRange("%s: index %d is out of range for an output plane of "
                                         "%d x %d" % (name, flat[(flat < 0) | (flat >= plane)]
                                                      .flat[0], sizes[0], sizes[1]))
    if unbatched:
        x, indices = expand_dims(x, 0), expand_dims(indices, 0)
    channels = x.shape[1]
    values = reshape(x, (-1, channels, x.shape[2] * x.shape[3]))
    where_to = reshape(indices, (-1, channels, x.shape[2] * x.shape[3]))
    # zeros of (batch, channels, plane), the batch taken from x (unknown in a graph)
    zero = expand_like(core.constant_like(np.zeros((1, 1, 1), x.dtype.np), x),
                       getitem(values, (slice(None), slice(None), slice(0, 1))))
    zeros = pad(zero, (0, plane - 1))
    y = reshape(scatter(zeros, 2, where_to, values), (-1, channels) + tuple(sizes))
    return squeeze(y, 0) if unbatched else y


__all__ += ["adaptive_max_pool1d", "adaptive_max_pool2d", "lp_pool1d", "lp_pool2d",
            "max_unpool2d"]


def embedding_bag(indices, weight, offsets=None, max_norm=None, norm_type=2.0,
                  scale_grad_by_freq=False, mode="mean", sparse=False, per_sample_weights=None,
                  include_last_offset=False, padding_idx=None):
    """PyTorch's F.embedding_bag: the rows of weight (num_embeddings, dim) that indices pick,
    reduced per bag by mode "sum", "mean" or "max" -> (bags, dim). Bags are the rows of 2-D
    indices (bags, size), or the runs of 1-D indices that offsets (each bag's start) cut
    (include_last_offset: offsets carry the end of the last bag too). per_sample_weights (mode
    "sum") scale each index's row; padding_idx's entries count for nothing; an empty bag gives
    zeros. sparse is accepted (the gradient is dense here); max_norm and scale_grad_by_freq
    are not supported."""
    from .elementwise import equal, greater_equal, less, logical_and, not_equal, where
    from .linalg import matmul
    from .reduction import argmax, sum as reduce_sum
    from .shape import concat, expand_dims, getitem, squeeze, take, take_along_axis

    name = core.located("embedding_bag")
    if mode not in ("sum", "mean", "max"):
        raise ValueError("%s: mode must be 'sum', 'mean' or 'max', got %r" % (name, mode))
    if max_norm is not None or scale_grad_by_freq:
        raise ValueError("%s: max_norm and scale_grad_by_freq are not supported (max_norm "
                         "rewrites weight in place in PyTorch)" % name)
    indices, weight = as_operand(indices), as_operand(weight)
    if indices.dtype.is_float:
        raise errors.DTypeError("%s: indices must be int32 or int64, got %s"
                                % (name, indices.dtype.name))
    if len(weight.shape) != 2 or len(indices.shape) not in (1, 2):
        raise errors.ShapeError("%s: weight must be (num_embeddings, dim) and indices 1-D (with "
                                "offsets) or 2-D (bags, size), got weight %s and indices %s"
                                % (name, fmt_shape(weight.shape), fmt_shape(indices.shape)))
    scale = None
    if per_sample_weights is not None:
        if mode != "sum":
            raise ValueError("%s: per_sample_weights are taken with mode 'sum' only (PyTorch's "
                             "rule), got mode %r" % (name, mode))
        scale = as_operand(per_sample_weights, like=weight)
        if tuple(scale.shape) != tuple(indices.shape):
            raise errors.ShapeError("%s: per_sample_weights %s must have the shape of indices "
                                    "%s" % (name, fmt_shape(scale.shape),
                                            fmt_shape(indices.shape)))
    member = None          # which entries of each bag count, (bags, entries)
    if padding_idx is not None:
        rows = weight.shape[0]
        if rows is not None and not -rows <= padding_idx < rows:
            raise ValueError("%s: padding_idx %d is out of range for %d embeddings"
                             % (name, padding_idx, rows))
        member = not_equal(indices, padding_idx % rows if rows else padding_idx)
    picked = take(weight, indices, 0)
    if len(indices.shape) == 2:
        if offsets is not None:
            raise ValueError("%s: offsets must be None for 2-D indices %s (each row is a bag)"
                             % (name, fmt_shape(indices.shape)))
        entries = picked
    else:
        if offsets is None:
            raise ValueError("%s: 1-D indices %s need offsets" % (name,
                                                                  fmt_shape(indices.shape)))
        offsets = as_operand(offsets)
        n = indices.shape[0]
        if len(offsets.shape) != 1 or offsets.dtype.is_float or n is None:
            raise errors.ShapeError("%s: offsets must be 1-D integers and the indices' length "
                                    "known, got offsets %s %s and indices %s"
                                    % (name, fmt_shape(offsets.shape), offsets.dtype.name,
                                       fmt_shape(indices.shape)))
        if not offsets.symbolic:
            given = offsets.cpu().numpy()
            if not given.size or given[0] != 0 or (include_last_offset and given[-1] != n):
                raise ValueError("%s: offsets must start at 0%s, got %s for %d indices"
                                 % (name, " and end at the number of indices (with "
                                    "include_last_offset)" if include_last_offset else "",
                                    given.tolist(), n))
        # bag b runs from its offset to the next bag's, the last to the end of indices
        starts = getitem(offsets, slice(0, -1)) if include_last_offset else offsets
        ends = concat([getitem(offsets, slice(1, -1 if include_last_offset else None)),
                       core.constant_like(np.array([n], offsets.dtype.np), offsets)])
        position = core.constant_like(np.arange(n, dtype=offsets.dtype.np).reshape(1, n),
                                      offsets)
        inside = logical_and(greater_equal(position, expand_dims(starts, 1)),
                             less(position, expand_dims(ends, 1)))
        member = inside if member is None else logical_and(inside, expand_dims(member, 0))
        entries = expand_dims(picked, 0)
        if scale is not None:
            scale = expand_dims(scale, 0)
    if mode == "max":
        if member is None:
            best = argmax(entries, 1, True)
            return squeeze(take_along_axis(entries, best, 1), 1)
        masked = where(expand_dims(member, -1), entries, float("-inf"))
        best = argmax(masked, 1, True)
        found = squeeze(take_along_axis(masked, best, 1), 1)
        empty = equal(reduce_sum(member.astype(weight.dtype), 1, True), 0.0)
        return where(empty, 0.0, found)
    factor = None if member is None else member.astype(weight.dtype)
    if scale is not None:
        factor = scale if factor is None else factor * scale
    if len(indices.shape) == 1:
        total = matmul(factor, picked)
    else:
        total = reduce_sum(entries if factor is None else entries * expand_dims(factor, -1), 1)
    if mode == "sum":
        return total
    if member is None:
        return total / float(indices.shape[1])
    count = reduce_sum(member.astype(weight.dtype), 1, True)
    return total / where(equal(count, 0.0), 1.0, count)


__all__ += ["embedding_bag"]


# ---------------------------------------------------------------------------------------------
# spatial transformers: affine_grid makes sampling grids, grid_sample reads an input at them
# (gathers of the neighbouring pixels weighted by the fractions, in PyTorch's arithmetic)

def _base_grid(sizes, align_corners):
    """PyTorch's normalized pixel centres along each of sizes, in [-1, 1]."""
    axes = []
    for n in sizes:
        if align_corners:
            axes.append(np.linspace(-1.0, 1.0, n) if n > 1 else np.zeros(1))
        else:
            axes.append((np.arange(n) * 2.0 + 1.0) / n - 1.0)
    return axes


def affine_grid(theta, size, align_corners=None):
    """PyTorch's F.affine_grid: theta (N, 2, 3) and size (N, C, H, W) give the (N, H, W, 2)
    grid of theta applied to each output pixel's normalized (x, y, 1); theta (N, 3, 4) and
    size (N, C, D, H, W) the (N, D, H, W, 3) grid. align_corners None is False, as
    PyTorch's default."""
    from .linalg import matmul
    from .shape import reshape, transpose

    name = core.located("affine_grid")
    theta = as_operand(theta)
    size = tuple(int(s) for s in size)
    nd = len(size) - 2
    if nd not in (2, 3) or len(theta.shape) != 3 or tuple(theta.shape[1:]) != (nd, nd + 1) or \
            theta.shape[0] not in (None, size[0]):
        raise errors.ShapeError("%s: theta must be (N, 2, 3) with size (N, C, H, W), or (N, 3, "
                                "4) with size (N, C, D, H, W), got theta %s and size %s"
                                % (name, fmt_shape(theta.shape), size))
    if not theta.dtype.is_float:
        raise errors.DTypeError("%s: theta must be float, got %s" % (name, theta.dtype.name))
    spatial = size[2:]
    axes = _base_grid(spatial, bool(align_corners))
    # each output position's (x, y[, z], 1): x runs along the last dim
    mesh = np.meshgrid(*axes, indexing="ij")
    base = np.stack([m for m in mesh[::-1]] + [np.ones(spatial)], -1).reshape(1, -1, nd + 1)
    grid = matmul(core.constant_like(base.astype(theta.dtype.np), theta),
                  transpose(theta, 1, 2))
    return reshape(grid, (-1,) + spatial + (nd,))


_PADDING_MODES = ("zeros", "border", "reflection")


def _reflect(coord, twice_low, twice_high):
    """PyTorch's reflect_coordinates: coord reflected into [twice_low / 2, twice_high / 2]."""
    from .elementwise import abs as absolute, equal, floor, fmod, where

    if twice_low == twice_high:
        return coord * 0.0
    low, span = twice_low / 2.0, (twice_high - twice_low) / 2.0
    coord = absolute(coord - low)
    extra = fmod(coord, span)
    flips = floor(coord / span)
    return where(equal(fmod(flips, 2.0), 0.0), extra + low, span - extra + low)


def _padded_coordinate(coord, size, padding_mode, align_corners):
    """PyTorch's compute_coordinates: a source coordinate moved inside by the padding mode
    (zeros leaves it; what lies outside then reads 0)."""
    from .elementwise import clip

    if padding_mode == "border":
        return clip(coord, 0.0, float(size - 1))
    if padding_mode == "reflection":
        coord = _reflect(coord, 0, 2 * (size - 1)) if align_corners else \
            _reflect(coord, -1, 2 * size - 1)
        return clip(coord, 0.0, float(size - 1))
    return coord


def _cubic_coefficients(t):
    """The four weights of PyTorch's cubic convolution (A = -0.75) for fractions t."""
    a = -0.75

    def near(v):
        return ((v * (a + 2)) - (a + 3)) * v * v + 1.0

    def far(v):
        return ((v * a - 5 * a) * v + 8 * a) * v - 4 * a

    return far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)


def grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=None):
    """PyTorch's F.grid_sample: x (N, C, H, W) read at grid (N, Ho, Wo, 2) -> (N, C, Ho, Wo),
    or x (N, C, D, H, W) at grid (N, Do, Ho, Wo, 3); the grid's last dim holds normalized (x,
    y[, z]) in [-1, 1] (x along the width). mode "bilinear" (trilinear in 3-D), "nearest"
    (halves to even, as PyTorch's) or "bicubic" (2-D); padding_mode "zeros", "border" or
    "reflection"; align_corners None is False, as PyTorch's default. Gradients reach x and
    the grid."""
    from .elementwise import floor, greater_equal, less, logical_and, round as nearest, where
    from .shape import cast, expand_dims, reshape, take_along_axis

    name = core.located("grid_sample")
    x = as_operand(x)
    grid = as_operand(grid, like=x)
    nd = len(x.shape) - 2
    if nd not in (2, 3) or len(grid.shape) != nd + 2 or grid.shape[-1] != nd or \
            None in tuple(x.shape[1:]) or None in tuple(grid.shape[1:]) or \
            None not in (x.shape[0], grid.shape[0]) and x.shape[0] != grid.shape[0]:
        raise errors.ShapeError("%s: x (N, C, H, W) needs grid (N, Ho, Wo, 2), x (N, C, D, H, "
                                "W) grid (N, Do, Ho, Wo, 3), with known sizes; got x %s and "
                                "grid %s" % (name, fmt_shape(x.shape), fmt_shape(grid.shape)))
    if mode not in ("bilinear", "nearest", "bicubic") or (mode == "bicubic" and nd != 2):
        raise ValueError("%s: mode must be 'bilinear', 'nearest' or (for 4-D x) 'bicubic', got "
                         "%r" % (name, mode))
    if padding_mode not in _PADDING_MODES:
        raise ValueError("%s: padding_mode must be one of %s, got %r"
                         % (name, ", ".join(_PADDING_MODES), padding_mode))
    if not x.dtype.is_float:
        raise errors.DTypeError("%s: x must be float, got %s" % (name, x.dtype.name))
    align = bool(align_corners)
    channels, sizes = x.shape[1], tuple(x.shape[2:])
    out_sizes = tuple(grid.shape[1:-1])
    points = int(np.prod(out_sizes))
    flat_x = reshape(x, (-1, channels, int(np.prod(sizes))))
    strides = [int(np.prod(sizes[d + 1:])) for d in range(nd)]
    # the index of every channel: broadcasting (N, 1, P) indices to (N, C, P)
    across = core.constant_like(np.zeros((1, channels, 1), np.int64), x)

    def read(positions):
        """x at integer-valued float positions (one (N, *out) tensor per spatial dim), 0 where
        any lies outside: (N, C, *out)."""
        inside, flat = None, None
        for d, (p, n) in enumerate(zip(positions, sizes)):
            ok = logical_and(greater_equal(p, 0.0), less(p, float(n)))
            inside = ok if inside is None else logical_and(inside, ok)
            index = cast(where(ok, p, 0.0), "int64") * strides[d]
            flat = index if flat is None else flat + index
        flat = reshape(flat, (-1, 1, points)) + across
        values = reshape(take_along_axis(flat_x, flat, 2), (-1, channels) + out_sizes)
        return where(expand_dims(inside, 1), values, 0.0)

    # source coordinates per spatial dim (the grid's last dim runs x, y, z: reversed)
    coords = []
    for d, n in enumerate(sizes):
        g = grid[(Ellipsis, nd - 1 - d)]
        source = (g + 1.0) * ((n - 1) / 2.0) if align else ((g + 1.0) * n - 1.0) / 2.0
        coords.append(source if mode == "bicubic" else
                      _padded_coordinate(source, n, padding_mode, align))
    if mode == "nearest":
        return read([nearest(c) for c in coords])
    lows = [floor(c) for c in coords]
    fractions = [c - lo for c, lo in zip(coords, lows)]
    total = None
    if mode == "bilinear":
        for corner in np.ndindex(*(2,) * nd):
            weight = None
            for d, b in enumerate(corner):
                w = fractions[d] if b else 1.0 - fractions[d]
                weight = w if weight is None else weight * w
            term = read([lo + float(b) for lo, b in zip(lows, corner)]) * expand_dims(weight, 1)
            total = term if total is None else total + term
        return total
    rows, cols = _cubic_coefficients(fractions[0]), _cubic_coefficients(fractions[1])
    for i in range(4):
        for j in range(4):
            taps = [_padded_coordinate(lows[0] + float(i - 1), sizes[0], padding_mode, align),
                    _padded_coordinate(lows[1] + float(j - 1), sizes[1], padding_mode, align)]
            term = read(taps) * expand_dims(rows[i] * cols[j], 1)
            total = term if total is None else total + term
    return total


__all__ += ["affine_grid", "grid_sample"]
