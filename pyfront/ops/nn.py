"""Neural-network ops: softmax and log-softmax over an axis, cross-entropy from logits with
integer labels, mean squared error. The losses run as fused kernels; when a gradient must
itself be differentiated (create_graph) their gradients are composed from plain ops instead."""
import math

import numpy as np

from .. import autograd, errors
from . import core
from .core import Op, ShapeMismatch, Spec, apply, as_operand, fmt_shape, normalize_axis
from . import elementwise as _elementwise  # noqa: E402 (siblings: read at call time)
from . import reduction as _reduction  # noqa: E402 (siblings: read at call time)
from . import shape as _shape  # noqa: E402 (siblings: read at call time)

__all__ = ["softmax", "log_softmax", "softmin", "cross_entropy", "mse", "one_hot"]

_REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}


def _axis_view(shape, axis):
    return (math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:]))


class Softmax(Op):
    inputs = ("x",)

    def __init__(self, log):
        self.log = log
        self.name = "log_softmax" if log else "softmax"

    def infer(self, specs, attrs):
        x = specs[0]
        if not x.dtype.is_float:
            raise errors.DTypeError("%s needs a float tensor, got %s" % (self.name,
                                                                        x.dtype.name))
        normalize_axis(attrs["axis"], len(x.shape), self.name)
        return [x]

    def forward(self, k, ins, outs, attrs):
        view = _axis_view(ins[0].shape, attrs["axis"])
        k.run(self.name, [ins[0].desc(view)], [outs[0].desc(view)])

    def grad(self, ctx, g):
        return (apply(_GRADS[self.log], [ctx.output(), g], ctx.attrs),)


class SoftmaxGrad(Op):
    """dx of (log-)softmax from its output y and the upstream gradient g."""

    inputs = ("y", "grad")

    def __init__(self, log):
        self.log = log
        self.name = "log_softmax_grad" if log else "softmax_grad"

    def infer(self, specs, attrs):
        return [specs[0]]

    def forward(self, k, ins, outs, attrs):
        view = _axis_view(ins[0].shape, attrs["axis"])
        k.run(self.name, [ins[0].desc(view), ins[1].desc(view)], [outs[0].desc(view)])

    def grad(self, ctx, gg):
        exp = _elementwise.exp
        rsum = _reduction.sum

        y, g = ctx.inputs
        axis = ctx.attrs["axis"]
        if self.log:
            e = exp(y)
            dy = -gg * e * rsum(g, axis, True) if ctx.needs[0] else None
            dg = gg - rsum(gg * e, axis, True) if ctx.needs[1] else None
        else:
            s = rsum(g * y, axis, True)
            dy = gg * (g - s) - g * rsum(gg * y, axis, True) if ctx.needs[0] else None
            dg = apply(self, [y, gg], ctx.attrs) if ctx.needs[1] else None
        return dy, dg


_softmax = Softmax(False)
_log_softmax = Softmax(True)
_GRADS = {False: SoftmaxGrad(False), True: SoftmaxGrad(True)}
for _op in (_softmax, _log_softmax, _GRADS[False], _GRADS[True]):
    core.REGISTRY[_op.name] = _op


def softmax(x, axis=-1):
    x = as_operand(x)
    return apply(_softmax, [x], {"axis": normalize_axis(axis, len(x.shape), "softmax")})


def softmin(x, axis=-1):
    """softmax(-x): weights that favour the smallest values."""
    return softmax(-as_operand(x), axis)


def log_softmax(x, axis=-1):
    x = as_operand(x)
    return apply(_log_softmax, [x], {"axis": normalize_axis(axis, len(x.shape), "log_softmax")})


def one_hot(labels, classes, dtype="float32"):
    """(N,) integer labels -> (N, classes) rows of zeros with a one at the label (any shape of
    labels gains a trailing dim). A label outside [0, classes) raises IndexOutOfRange: tensor
    labels are checked here; symbolic labels pass through a gather from the class ids (the
    identity for labels in range), whose native kernel refuses an out-of-range index when the
    compiled plan runs."""
    equal = _elementwise.equal
    expand_dims = _shape.expand_dims
    take = _shape.take

    if isinstance(classes, bool) or not hasattr(classes, "__index__") or classes < 1:
        raise errors.ShapeError("one_hot: classes must be a positive int, got %r" % (classes,))
    labels = as_operand(labels)
    if labels.dtype.is_float:
        raise errors.DTypeError("one_hot: labels must be int32 or int64, got %s"
                                % labels.dtype.name)
    ids = as_operand(np.arange(classes, dtype=labels.dtype.np))
    if labels.symbolic:
        labels = take(ids, labels)
    else:
        flat = labels.numpy().reshape(-1)
        bad = np.flatnonzero((flat < 0) | (flat >= classes))
        if bad.size:
            raise errors.IndexOutOfRange("one_hot: label %d at position %d is out of range for "
                                         "%d classes" % (flat[bad[0]], bad[0], classes))
    return equal(expand_dims(labels, -1), ids).astype(dtype)


# ---------------------------------------------------------------------------------------------
# losses

class CrossEntropy(Op):
    name = "cross_entropy"
    inputs = ("logits", "labels")

    def infer(self, specs, attrs):
        z, y = specs
        if not z.dtype.is_float:
            raise errors.DTypeError("logits must be float, got %s" % z.dtype.name)
        if y.dtype.is_float:
            raise errors.DTypeError("labels must be integer class indices (int32/int64), got %s"
                                    % y.dtype.name)
        if len(z.shape) != 2:
            raise ShapeMismatch("logits must be (batch, classes), got %s" % fmt_shape(z.shape))
        if len(y.shape) != 1:
            raise ShapeMismatch("labels must be (batch,), got %s" % fmt_shape(y.shape))
        if z.shape[0] is not None and y.shape[0] is not None and z.shape[0] != y.shape[0]:
            raise ShapeMismatch("%d rows of logits but %d labels" % (z.shape[0], y.shape[0]))
        if attrs["reduction"] == "mean" and z.shape[0] == 0:
            raise ShapeMismatch("mean cross-entropy of an empty batch")
        shape = (z.shape[0],) if attrs["reduction"] == "none" else ()
        return [Spec(shape, z.dtype)]

    def forward(self, k, ins, outs, attrs):
        k.run("cross_entropy", [ins[0].desc(), ins[1].desc()], [outs[0].desc()],
              (_REDUCTIONS[attrs["reduction"]], attrs["ignore_index"]))

    def grad(self, ctx, g):
        z, labels = ctx.inputs
        if autograd.is_grad_enabled():
            return _cross_entropy_grad_composed(z, labels, g, ctx.attrs), None
        return apply(_ce_grad, [z, labels, g], ctx.attrs), None


class CrossEntropyGrad(Op):
    name = "cross_entropy_grad"
    inputs = ("logits", "labels", "grad")
    differentiable = False   # differentiated through the composed form instead

    def infer(self, specs, attrs):
        return [specs[0]]

    def forward(self, k, ins, outs, attrs):
        k.run("cross_entropy_grad", [ins[0].desc(), ins[1].desc(), ins[2].desc()],
              [outs[0].desc()], (_REDUCTIONS[attrs["reduction"]], attrs["ignore_index"]))


def _cross_entropy_grad_composed(z, labels, g, attrs):
    """(softmax(z) - onehot(labels)) * g (/ count), from differentiable ops."""
    not_equal = _elementwise.not_equal
    rsum = _reduction.sum
    expand_dims = _shape.expand_dims

    keep = not_equal(labels, attrs["ignore_index"]).astype(z.dtype)
    safe = labels * keep.astype(labels.dtype)
    delta = (softmax(z) - one_hot(safe, z.shape[1], z.dtype)) * expand_dims(keep, -1)
    if attrs["reduction"] == "none":
        return delta * expand_dims(g, -1)
    if attrs["reduction"] == "mean":
        return delta * (g / rsum(keep))
    return delta * g


_cross_entropy = core.register(CrossEntropy)
_ce_grad = core.register(CrossEntropyGrad)


def cross_entropy(logits, labels, reduction="mean", ignore_index=-100):
    """Softmax cross-entropy of (batch, classes) logits against integer labels."""
    if reduction not in _REDUCTIONS:
        raise ValueError("reduction must be 'mean', 'sum' or 'none', got %r" % (reduction,))
    logits = as_operand(logits)
    labels = as_operand(labels)
    return apply(_cross_entropy, [logits, labels],
                 {"reduction": reduction, "ignore_index": int(ignore_index)})


class MSE(Op):
    name = "mse"
    inputs = ("prediction", "target")

    def infer(self, specs, attrs):
        p, t = specs
        if not p.dtype.is_float or t.dtype is not p.dtype:
            raise errors.DTypeError("prediction and target must be float of one dtype, got %s "
                                    "and %s" % (p.dtype.name, t.dtype.name))
        if len(p.shape) != len(t.shape) or any(
                a is not None and b is not None and a != b for a, b in zip(p.shape, t.shape)):
            raise ShapeMismatch("prediction %s and target %s differ" % (fmt_shape(p.shape),
                                                                         fmt_shape(t.shape)))
        if attrs["reduction"] == "mean" and None not in p.shape and math.prod(p.shape) == 0:
            raise ShapeMismatch("mean squared error of an empty batch")
        return [Spec(p.shape if attrs["reduction"] == "none" else (), p.dtype)]

    def forward(self, k, ins, outs, attrs):
        k.run("mse", [ins[0].desc(), ins[1].desc()], [outs[0].desc()],
              (_REDUCTIONS[attrs["reduction"]],))

    def grad(self, ctx, g):
        p, t = ctx.inputs
        if autograd.is_grad_enabled():
            d = (p - t) * 2.0
            if ctx.attrs["reduction"] == "mean":
                d = d * (g * (1.0 / math.prod(p.shape)))
            else:
                d = d * g
            return d, (-d if ctx.needs[1] else None)
        dp = apply(_mse_grad, [p, t, g], ctx.attrs)
        return dp, (-dp if ctx.needs[1] else None)


class MSEGrad(Op):
    name = "mse_grad"
    inputs = ("prediction", "target", "grad")
    differentiable = False

    def infer(self, specs, attrs):
        return [specs[0]]

    def forward(self, k, ins, outs, attrs):
        k.run("mse_grad", [ins[0].desc(), ins[1].desc(), ins[2].desc()], [outs[0].desc()],
              (_REDUCTIONS[attrs["reduction"]],))


_mse = core.register(MSE)
_mse_grad = core.register(MSEGrad)


def mse(prediction, target, reduction="mean"):
    """Mean squared error (or its sum, or the elementwise squares with reduction='none')."""
    if reduction not in _REDUCTIONS:
        raise ValueError("reduction must be 'mean', 'sum' or 'none', got %r" % (reduction,))
    prediction = as_operand(prediction)
    target = as_operand(target, like=prediction)
    if target.dtype is not prediction.dtype:
        target = target.astype(prediction.dtype)
    return apply(_mse, [prediction, target], {"reduction": reduction})
