"""Batch and layer normalisation. Forward and backward run as fused native kernels; the
gradients of those backward kernels are composed from plain ops, so higher-order gradients
(and their graphs) work too."""
import math

import numpy as np

from .. import errors
from ..dtypes import as_dtype
from . import core
from .core import Op, ShapeMismatch, Spec, apply, as_operand, check_shape, fmt_shape
from . import elementwise as _elementwise  # noqa: E402 (siblings: read at call time)
from . import reduction as _reduction  # noqa: E402 (siblings: read at call time)
from . import shape as _shape  # noqa: E402 (siblings: read at call time)

__all__ = ["batch_norm", "layer_norm", "group_norm", "instance_norm"]


def _known(shape):
    return None not in tuple(shape)


# ---------------------------------------------------------------------------------------------
# the second-order rule shared by batch and layer norm
#
# Both backward kernels compute, per normalisation group (a channel for batch norm, a row for
# layer norm), with xh = (x - mean) * rstd and h = g * gamma:
#     dx = rstd * (h - mean(h) - xh * mean(h * xh)),  dgamma = sum(g * xh),  dbeta = sum(g)
# where mean and rstd are the batch statistics of x itself. The rule below differentiates that
# map with respect to x (through mean and rstd as well), gamma and g. It recomputes mean and rstd
# from x with ops rather than reading the saved statistics: the saved ones take no gradient, so
# a rule built on them is right in value but its own derivative (the third) would treat them as
# constants.

def _norm_grad_of_grad(x, gamma_b, g, gx, ggamma_b, gbeta_b, axes, eps):
    """(d/dx, d/dgamma before summing to gamma's shape, d/dg) of <gx, dx> + <ggamma, dgamma> +
    <gbeta, dbeta>. *_b are broadcastable against x; sums and means run over `axes`; eps is the
    forward's."""
    _reduce_grad = _reduction._reduce_grad
    rmean = _reduction.mean
    rsum = _reduction.sum
    expand_like = _shape.expand_like
    rsqrt = _elementwise.rsqrt

    def total(v):
        return rsum(v, axes, True)

    def average(v):
        return rmean(v, axes, True)

    def spread_mean(v):
        # the gradient of a mean over `axes`: v / count, broadcast back over x
        return apply(_reduce_grad, [v, x], {"axes": axes, "mode": "mean"})

    xc = x - average(x)
    rstd_b = rsqrt(average(xc * xc) + eps)
    xh = xc * rstd_b
    h = g * gamma_b
    dg = dgamma = x_part = d_rstd = None
    if gx is not None:
        m_gx_xh = average(gx * xh)
        m_h_xh = average(h * xh)
        hh = rstd_b * (gx - average(gx) - xh * m_gx_xh)
        dg = hh * gamma_b
        dgamma = hh * g
        x_part = -rstd_b * (gx * m_h_xh + m_gx_xh * h)
        d_rstd = total(gx * h) - total(gx) * average(h) - total(gx * xh) * m_h_xh
    if ggamma_b is not None:
        dg = ggamma_b * xh if dg is None else dg + ggamma_b * xh
        x_part = ggamma_b * g if x_part is None else x_part + ggamma_b * g
    if gbeta_b is not None:
        dg = expand_like(gbeta_b, g) if dg is None else dg + gbeta_b
    if x_part is None:
        return None, dgamma, dg
    d_mean = -rstd_b * total(x_part)
    d_rstd = total(x_part * xc) if d_rstd is None else d_rstd + total(x_part * xc)
    dx = rstd_b * x_part + spread_mean(d_mean) + \
        spread_mean(-d_rstd * rstd_b * rstd_b * rstd_b) * xc
    return dx, dgamma, dg


# ---------------------------------------------------------------------------------------------
# batch normalisation over dim 1 of (N, C, *spatial)

def _bn_view(shape):
    return (shape[0], shape[1], math.prod(shape[2:]))


def _bn_axes(ndim):
    return (0,) + tuple(range(2, ndim))


def _bn_broadcast(v, ndim):
    """A (C,) vector shaped (1, C, 1, ...) to broadcast against (N, C, *spatial)."""
    reshape = _shape.reshape

    return reshape(v, (1, v.shape[0]) + (1,) * (ndim - 2))


def _check_bn_specs(specs, stats_from, training):
    x = specs[0]
    if not x.dtype.is_float:
        raise errors.DTypeError("x must be float32 or float64, got %s" % x.dtype.name)
    if len(x.shape) < 2:
        raise ShapeMismatch("x must be (batch, channels, *spatial), got %s" % fmt_shape(x.shape))
    channels = x.shape[1]
    if channels is None:
        raise ShapeMismatch("the channel dim (1) of x must be known, got %s" % fmt_shape(x.shape))
    names = ("gamma", "beta", "running_mean", "running_var")
    for i, s in enumerate(specs[1:], 1):
        label = names[i - 1]
        if tuple(s.shape) != (channels,):
            raise ShapeMismatch("x %s has %d channels (dim 1) but %s has shape %s"
                                % (fmt_shape(x.shape), channels, label, fmt_shape(s.shape)))
        if i < stats_from and s.dtype is not x.dtype:
            raise errors.DTypeError("%s is %s but x is %s" % (label, s.dtype.name, x.dtype.name))
        if i >= stats_from and not s.dtype.is_float:
            raise errors.DTypeError("%s must be float, got %s" % (label, s.dtype.name))
    if training and _known(x.shape) and x.shape[0] * math.prod(x.shape[2:]) <= 1:
        raise ShapeMismatch("training needs more than one value per channel, got x of shape %s"
                            % fmt_shape(x.shape))
    return x, channels


class BatchNormTrain(Op):
    """Normalise with the batch statistics; outputs (y, mean, invstd), the statistics being
    kept for the backward. With running statistics (inputs 3 and 4) the same kernel updates
    them in place: running = (1 - momentum) * running + momentum * batch statistic, using
    the unbiased variance, as PyTorch does."""

    n_outputs = 3
    retain_inputs, retain_outputs = (0, 1), (1, 2)     # x, gamma, mean, invstd; not y

    def __init__(self, track):
        self.track = track
        if track:
            self.name = "batch_norm_train"
            self.inputs = ("x", "gamma", "beta", "running_mean", "running_var")
            self.stateful = True
            self.mutates = (3, 4)
        else:
            self.name = "batch_norm_batch_stats"
            self.inputs = ("x", "gamma", "beta")

    def infer(self, specs, attrs):
        x, channels = _check_bn_specs(specs, 3, True)
        stat = Spec((channels,), x.dtype)
        return [x, stat, stat]

    def forward(self, k, ins, outs, attrs):
        view = _bn_view(ins[0].shape)
        outputs = [outs[0].desc(view), outs[1].desc(), outs[2].desc()]
        if self.track:
            outputs += [ins[3].desc(), ins[4].desc()]
        k.run("batch_norm_train", [ins[0].desc(view), ins[1].desc(), ins[2].desc()], outputs,
              (), (attrs["eps"], attrs["momentum"]))

    def grad(self, ctx, gouts):
        # Outputs 1 and 2 are the saved statistics; only batch_norm_grad consumes them, and its
        # own gradient already follows their dependence on x, so their gradients stop here.
        gy = gouts[0]
        x, gamma = ctx.inputs[0], ctx.inputs[1]
        dx, dgamma, dbeta = apply(_bn_grad, [x, gamma, ctx.output(1), ctx.output(2), gy],
                                  {"eps": ctx.attrs["eps"]})
        rest = (None,) * (len(ctx.inputs) - 3)
        return (dx, dgamma if ctx.needs[1] else None, dbeta if ctx.needs[2] else None) + rest


class BatchNormGrad(Op):
    """(dx, dgamma, dbeta) of batch norm from x, gamma, the batch statistics and g; attrs:
    eps, the forward's (the gradient of this op recomputes the statistics from x)."""

    name = "batch_norm_grad"
    inputs = ("x", "gamma", "mean", "invstd", "grad")
    n_outputs = 3
    retain_inputs = (0, 1, 4)       # the rule recomputes the statistics from x

    def infer(self, specs, attrs):
        x, gamma, mean, invstd, g = specs
        _check_bn_specs([x, gamma], 2, False)
        for what, s in (("mean", mean), ("invstd", invstd)):
            check_shape(what, s.shape, gamma.shape)
        check_shape("grad", g.shape, x.shape)
        return [x, gamma, gamma]

    def forward(self, k, ins, outs, attrs):
        view = _bn_view(ins[0].shape)
        k.run("batch_norm_grad",
              [ins[0].desc(view), ins[1].desc(), ins[2].desc(), ins[3].desc(), ins[4].desc(view)],
              [outs[0].desc(view), outs[1].desc(), outs[2].desc()])

    def grad(self, ctx, gouts):
        # mean and invstd are the batch statistics of x: their dependence on x is folded into
        # the gradient for x, and they get none of their own.
        rsum = _reduction.sum
        reshape = _shape.reshape

        x, gamma, _, _, g = ctx.inputs
        gx, ggamma, gbeta = gouts
        nd = len(x.shape)
        axes = _bn_axes(nd)

        def b(v):
            return None if v is None else _bn_broadcast(v, nd)

        dx, dgamma, dg = _norm_grad_of_grad(x, b(gamma), g, gx, b(ggamma), b(gbeta), axes,
                                            ctx.attrs["eps"])
        if dgamma is not None and ctx.needs[1]:
            dgamma = reshape(rsum(dgamma, axes), (gamma.shape[0],))
        else:
            dgamma = None
        return (dx if ctx.needs[0] else None), dgamma, None, None, \
            (dg if ctx.needs[4] else None)


class BatchNormEval(Op):
    """Normalise with given (running) statistics: y = (x - mean) / sqrt(var + eps) * gamma +
    beta in one pass. Its gradient is composed from plain ops."""

    name = "batch_norm_eval"
    inputs = ("x", "gamma", "beta", "running_mean", "running_var")

    def infer(self, specs, attrs):
        x, _ = _check_bn_specs(specs, 3, False)
        return [x]

    def forward(self, k, ins, outs, attrs):
        view = _bn_view(ins[0].shape)
        k.run("batch_norm_eval", [ins[0].desc(view)] + [b.desc() for b in ins[1:]],
              [outs[0].desc(view)], (), (attrs["eps"],))

    def grad(self, ctx, g):
        rsqrt = _elementwise.rsqrt
        rsum = _reduction.sum
        cast = _shape.cast
        reshape = _shape.reshape

        x, gamma, beta, rmean, rvar = ctx.inputs
        nd = len(x.shape)
        axes = _bn_axes(nd)
        channels = (x.shape[1],)
        inv = rsqrt(cast(rvar, x.dtype) + ctx.attrs["eps"])
        scale = gamma * inv
        dx = g * _bn_broadcast(scale, nd) if ctx.needs[0] else None
        sum_g = reshape(rsum(g, axes), channels)
        sum_gx = None
        if ctx.needs[1] or ctx.needs[4]:
            xc = x - _bn_broadcast(cast(rmean, x.dtype), nd)
            sum_gx = reshape(rsum(g * xc, axes), channels)
        dgamma = sum_gx * inv if ctx.needs[1] else None
        dbeta = sum_g if ctx.needs[2] else None
        drmean = cast(-(sum_g * scale), rmean.dtype) if ctx.needs[3] else None
        drvar = cast(sum_gx * scale * inv * inv * -0.5, rvar.dtype) if ctx.needs[4] else None
        return dx, dgamma, dbeta, drmean, drvar


_bn_train = BatchNormTrain(True)
_bn_batch_stats = BatchNormTrain(False)
_bn_grad = core.register(BatchNormGrad)
_bn_eval = core.register(BatchNormEval)
for _op in (_bn_train, _bn_batch_stats):
    core.register(_op)


def _affine_operand(v, shape, dtype, fill, x):
    """gamma/beta, or the constant ones/zeros (on x's device) standing in when there are none."""
    return core.constant_like(np.full(shape, fill, dtype=dtype.np), x) if v is None else \
        as_operand(v)


def batch_norm(x, running_mean=None, running_var=None, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalisation over dim 1 of (N, C, *spatial) or (N, C), as
    torch.nn.functional.batch_norm: in training the batch statistics normalise (biased
    variance) and running_mean/running_var, when given, are updated in place with `momentum`
    (new = (1 - momentum) * old + momentum * batch, unbiased variance); otherwise the running
    statistics normalise."""
    x = as_operand(x)
    if len(x.shape) < 2 or x.shape[1] is None:
        raise errors.ShapeError("batch_norm%s: x must be (batch, channels, *spatial) with a known "
                                "channel count, got %s" % (_where(), fmt_shape(x.shape)))
    if (running_mean is None) != (running_var is None):
        raise ValueError("batch_norm: give both running_mean and running_var, or neither")
    if not 0 <= momentum <= 1:
        raise ValueError("batch_norm: momentum must be in [0, 1], got %r" % (momentum,))
    if not eps >= 0:
        raise ValueError("batch_norm: eps must be >= 0, got %r" % (eps,))
    channels = (x.shape[1],)
    dtype = x.dtype if x.dtype.is_float else as_dtype("float32")
    weight = _affine_operand(weight, channels, dtype, 1.0, x)
    bias = _affine_operand(bias, channels, dtype, 0.0, x)
    attrs = {"eps": float(eps), "momentum": float(momentum)}
    if training:
        if running_mean is None:
            return apply(_bn_batch_stats, [x, weight, bias], attrs)[0]
        return apply(_bn_train, [x, weight, bias, as_operand(running_mean),
                                 as_operand(running_var)], attrs)[0]
    if running_mean is None:
        raise ValueError("batch_norm: evaluation (training=False) needs running_mean and "
                         "running_var")
    return apply(_bn_eval, [x, weight, bias, as_operand(running_mean), as_operand(running_var)],
                 {"eps": float(eps)})


def _where():
    scope = core.current_scope()
    return " in layer '%s'" % scope if scope else ""


# ---------------------------------------------------------------------------------------------
# layer normalisation over the trailing dims

def _ln_split(shape, k):
    return math.prod(shape[:len(shape) - k]), math.prod(shape[len(shape) - k:])


def _ln_broadcast(v, k):
    """Per-row statistics shaped to broadcast against x (k trailing unit dims)."""
    expand_dims = _shape.expand_dims

    for _ in range(k):
        v = expand_dims(v, -1)
    return v


class LayerNorm(Op):
    """Normalise over the last `normalized_dims` dims; outputs (y, mean, rstd), the per-row
    statistics being kept for the backward."""

    name = "layer_norm"
    inputs = ("x", "gamma", "beta")
    n_outputs = 3
    retain_inputs, retain_outputs = (0, 1), (1, 2)     # x, gamma, mean, rstd; not y

    def infer(self, specs, attrs):
        x, gamma, beta = specs
        k = attrs["normalized_dims"]
        if not x.dtype.is_float:
            raise errors.DTypeError("x must be float32 or float64, got %s" % x.dtype.name)
        trailing = tuple(x.shape[len(x.shape) - k:]) if len(x.shape) >= k else None
        if trailing is None or trailing != tuple(gamma.shape):
            raise ShapeMismatch("the last %d dims of x %s must equal normalized_shape %s"
                                % (k, fmt_shape(x.shape), fmt_shape(gamma.shape)))
        for label, s in (("gamma", gamma), ("beta", beta)):
            if tuple(s.shape) != tuple(gamma.shape):
                raise ShapeMismatch("%s has shape %s, expected %s" % (label, fmt_shape(s.shape),
                                                                      fmt_shape(gamma.shape)))
            if s.dtype is not x.dtype:
                raise errors.DTypeError("%s is %s but x is %s" % (label, s.dtype.name,
                                                                  x.dtype.name))
        stat = Spec(tuple(x.shape[:len(x.shape) - k]), x.dtype)
        return [x, stat, stat]

    def forward(self, k, ins, outs, attrs):
        rows, width = _ln_split(ins[0].shape, attrs["normalized_dims"])
        k.run("layer_norm", [ins[0].desc((rows, width)), ins[1].desc((width,)),
                             ins[2].desc((width,))],
              [outs[0].desc((rows, width)), outs[1].desc((rows,)), outs[2].desc((rows,))],
              (), (attrs["eps"],))

    def grad(self, ctx, gouts):
        # as for batch norm: the saved statistics (outputs 1, 2) take no gradient of their own
        x, gamma, _ = ctx.inputs
        dx, dgamma, dbeta = apply(_ln_grad, [x, gamma, ctx.output(1), ctx.output(2), gouts[0]],
                                  ctx.attrs)
        return dx, (dgamma if ctx.needs[1] else None), (dbeta if ctx.needs[2] else None)


class LayerNormGrad(Op):
    """(dx, dgamma, dbeta) of layer norm from x, gamma, the row statistics and g."""

    name = "layer_norm_grad"
    inputs = ("x", "gamma", "mean", "rstd", "grad")
    n_outputs = 3
    retain_inputs = (0, 1, 4)       # the rule recomputes the statistics from x

    def infer(self, specs, attrs):
        x, gamma, mean, rstd, g = specs
        _, stat, _ = _layer_norm.infer([x, gamma, gamma], attrs)
        for what, s in (("mean", mean), ("rstd", rstd)):
            check_shape(what, s.shape, stat.shape)
        check_shape("grad", g.shape, x.shape)
        return [x, gamma, gamma]

    def forward(self, k, ins, outs, attrs):
        rows, width = _ln_split(ins[0].shape, attrs["normalized_dims"])
        k.run("layer_norm_grad",
              [ins[0].desc((rows, width)), ins[1].desc((width,)), ins[2].desc((rows,)),
               ins[3].desc((rows,)), ins[4].desc((rows, width))],
              [outs[0].desc((rows, width)), outs[1].desc((width,)), outs[2].desc((width,))])

    def grad(self, ctx, gouts):
        sum_to_like = _shape.sum_to_like

        x, gamma, _, _, g = ctx.inputs
        gx, ggamma, gbeta = gouts
        k = ctx.attrs["normalized_dims"]
        nd = len(x.shape)
        axes = tuple(range(nd - k, nd))
        dx, dgamma, dg = _norm_grad_of_grad(x, gamma, g, gx, ggamma, gbeta, axes,
                                            ctx.attrs["eps"])
        dgamma = sum_to_like(dgamma, gamma) if dgamma is not None and ctx.needs[1] else None
        return (dx if ctx.needs[0] else None), dgamma, None, None, \
            (dg if ctx.needs[4] else None)


_layer_norm = core.register(LayerNorm)
_ln_grad = core.register(LayerNormGrad)


def normalized_shape_tuple(shape):
    """layer_norm's normalized_shape as a tuple of positive ints (an int is one dim)."""
    if isinstance(shape, (int, np.integer)):
        shape = (shape,)
    try:
        shape = tuple(int(d) for d in shape)
    except TypeError:
        raise TypeError("normalized_shape must be an int or a tuple of ints, got %r"
                        % (shape,)) from None
    if not shape or any(d < 1 for d in shape):
        raise ValueError("normalized_shape must be one or more positive sizes, got %r"
                         % (shape,))
    return shape


def layer_norm(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Layer normalisation over the trailing dims given by normalized_shape, as
    torch.nn.functional.layer_norm (biased variance; weight and bias of normalized_shape)."""
    x = as_operand(x)
    shape = normalized_shape_tuple(normalized_shape)
    if not eps >= 0:
        raise ValueError("layer_norm: eps must be >= 0, got %r" % (eps,))
    dtype = x.dtype if x.dtype.is_float else as_dtype("float32")
    weight = _affine_operand(weight, shape, dtype, 1.0, x)
    bias = _affine_operand(bias, shape, dtype, 0.0, x)
    return apply(_layer_norm, [x, weight, bias],
                 {"normalized_dims": len(shape), "eps": float(eps)})[0]


def group_norm(x, num_groups, weight=None, bias=None, eps=1e-5):
    """Group normalisation of x (N, C, *spatial), as torch.nn.functional.group_norm: the C
    channels in num_groups groups, each group of each sample normalised over its channels and
    positions (biased variance), then weight and bias (C,) per channel. Runs the native layer
    norm kernel on the (N, groups, rest) view."""
    x = as_operand(x)
    if len(x.shape) < 2 or x.shape[1] is None:
        raise errors.ShapeError("group_norm: x must be (batch, channels, *spatial) with known "
                                "channels, got %s" % fmt_shape(x.shape))
    channels = x.shape[1]
    if isinstance(num_groups, bool) or not isinstance(num_groups, int) or num_groups < 1 or \
            channels % num_groups:
        raise errors.ShapeError("group_norm: num_groups=%r must be a positive int dividing the "
                                "%d channels of %s" % (num_groups, channels, fmt_shape(x.shape)))
    if None in tuple(x.shape[2:]):
        raise errors.ShapeError("group_norm: the spatial dims of %s must be known"
                                % fmt_shape(x.shape))
    rest = channels // num_groups * math.prod(x.shape[2:])
    grouped = _shape.reshape(x, (-1, num_groups, rest))
    y = _shape.reshape_like(layer_norm(grouped, (rest,), eps=eps), x)
    view = (1, channels) + (1,) * (len(x.shape) - 2)
    if weight is not None:
        y = y * _shape.reshape(as_operand(weight, like=x), view)
    if bias is not None:
        y = y + _shape.reshape(as_operand(bias, like=x), view)
    return y


def instance_norm(x, weight=None, bias=None, eps=1e-5):
    """Instance normalisation (each channel of each sample over its positions), as
    torch.nn.functional.instance_norm without running statistics: group_norm with one group
    per channel."""
    x = as_operand(x)
    if len(x.shape) < 3:
        raise errors.ShapeError("instance_norm: x must be (batch, channels, *spatial) with at "
                                "least one spatial dim, got %s" % fmt_shape(x.shape))
    return group_norm(x, x.shape[1], weight, bias, eps)


# ---------------------------------------------------------------------------------------------
# torch.nn.functional's rms_norm and local_response_norm, composed

def rms_norm(x, normalized_shape, weight=None, eps=None):
    """PyTorch's F.rms_norm: x / sqrt(mean(x^2) + eps) over the trailing dims normalized_shape,
    times weight (normalized_shape) if given; eps None is the machine epsilon of x's dtype
    (PyTorch's default)."""
    from .elementwise import rsqrt
    from .reduction import mean

    x = as_operand(x)
    shape = normalized_shape_tuple(normalized_shape)
    if not x.dtype.is_float:
        raise errors.DTypeError("rms_norm: x must be float32 or float64, got %s" % x.dtype.name)
    k = len(shape)
    if len(x.shape) < k or any(a is not None and a != b
                               for a, b in zip(x.shape[len(x.shape) - k:], shape)):
        raise errors.ShapeError("%s: the last %d dims of x %s must equal normalized_shape %s"
                                % (core.located("rms_norm"), k, fmt_shape(x.shape),
                                   fmt_shape(shape)))
    if eps is None:
        eps = float(np.finfo(x.dtype.np).eps)
    axes = tuple(range(len(x.shape) - k, len(x.shape)))
    y = x * rsqrt(mean(x * x, axes, True) + float(eps))
    if weight is None:
        return y
    weight = as_operand(weight, like=x)
    if tuple(weight.shape) != shape:
        raise errors.ShapeError("rms_norm: weight %s must have normalized_shape %s"
                                % (fmt_shape(weight.shape), fmt_shape(shape)))
    return y * weight


def local_response_norm(x, size, alpha=1e-4, beta=0.75, k=1.0):
    """PyTorch's F.local_response_norm over x (N, C, *spatial): x / (k + alpha * a)^beta, a the
    mean of x^2 over a window of `size` channels around each (zeros past the ends, counted)."""
    from .elementwise import pow as power
    from .reduction import mean
    from .shape import pad, take

    x = as_operand(x)
    if len(x.shape) < 3 or x.shape[1] is None:
        raise errors.ShapeError("%s: x must be (batch, channels, *spatial) with at least 3 "
                                "dims and known channels, got %s"
                                % (core.located("local_response_norm"), fmt_shape(x.shape)))
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError("local_response_norm: size must be a positive int, got %r" % (size,))
    channels = x.shape[1]
    pads = [(0, 0)] * len(x.shape)
    pads[1] = (size // 2, (size - 1) // 2)
    window = np.arange(channels)[:, None] + np.arange(size)[None, :]
    squares = take(pad(x * x, tuple(pads)), window, 1)      # (N, C, size, *spatial)
    return x / power(mean(squares, 2) * float(alpha) + float(k), float(beta))


__all__ += ["rms_norm", "local_response_norm"]
