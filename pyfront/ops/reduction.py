"""Reductions over axes: sum, mean, max, min, argmax, argmin."""
import math

from .. import errors
from ..backend.cpu import lib
from ..dtypes import int64
from . import core
from .core import Op, ShapeMismatch, Spec, apply, as_operand, normalize_axes, normalize_axis
from . import elementwise as _elementwise  # noqa: E402 (siblings: read at call time)
from . import shape as _shape  # noqa: E402 (siblings: read at call time)

__all__ = ["sum", "mean", "max", "min", "argmax", "argmin", "lower_reduce"]

_CODES = {"sum": lib.PF_R_SUM, "mean": lib.PF_R_MEAN, "max": lib.PF_R_MAX, "min": lib.PF_R_MIN,
          "argmax": lib.PF_R_ARGMAX, "argmin": lib.PF_R_ARGMIN}


def lower_reduce(k, x, out, axes, mode):
    """Emit the kernels that reduce buffer x over axes into out (any set of axes)."""
    shape = x.shape
    if not axes:
        if mode in ("argmax", "argmin"):      # the index into a single element
            k.run("fill", [], [out.desc()], (), (0.0,))
        else:
            k.run("copy", [x.desc()], [out.desc(x.shape)])
        return
    nd = len(shape)
    if list(axes) == list(range(axes[0], axes[-1] + 1)):
        view = (math.prod(shape[:axes[0]]), math.prod(shape[axes[0]:axes[-1] + 1]),
                math.prod(shape[axes[-1] + 1:]))
        k.run("reduce", [x.desc(view)], [out.desc()], (_CODES[mode],))
        return
    kept = [d for d in range(nd) if d not in axes]
    perm = kept + list(axes)
    moved_shape = tuple(shape[p] for p in perm)
    tmp = k.scratch(moved_shape, x.dtype)
    src = core.contiguous_strides(shape)
    k.run("copy", [x.desc(moved_shape, [src[p] for p in perm])], [tmp.desc()])
    view = (math.prod(moved_shape[:len(kept)]), math.prod(moved_shape[len(kept):]), 1)
    k.run("reduce", [tmp.desc(view)], [out.desc()], (_CODES[mode],))


class Reduce(Op):
    inputs = ("x",)

    def __init__(self, mode):
        self.name = mode
        self.mode = mode
        self.differentiable = mode not in ("argmax", "argmin")

    def infer(self, specs, attrs):
        x = specs[0]
        axes = attrs["axes"]
        for a in axes:
            normalize_axis(a, len(x.shape), self.name)
        if self.mode == "mean" and not x.dtype.is_float:
            raise errors.DTypeError("mean needs a float tensor, got %s" % x.dtype.name)
        if self.mode != "sum":
            for a in axes:
                if x.shape[a] == 0:
                    raise ShapeMismatch("cannot take the %s over axis %d of size 0"
                                        % (self.mode, a))
        if attrs["keepdims"]:
            shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
        else:
            shape = tuple(d for i, d in enumerate(x.shape) if i not in axes)
        dtype = int64 if self.mode in ("argmax", "argmin") else x.dtype
        return [Spec(shape, dtype)]

    def forward(self, k, ins, outs, attrs):
        lower_reduce(k, ins[0], outs[0], attrs["axes"], self.mode)

    def grad(self, ctx, g):
        x = ctx.inputs[0]
        axes = ctx.attrs["axes"]
        if self.mode in ("sum", "mean"):
            return (apply(_reduce_grad, [g, x], {"axes": axes, "mode": self.mode}),)
        y = ctx.output()
        spread = {"axes": axes, "mode": "sum"}
        equal = _elementwise.equal

        mask = equal(x, apply(_reduce_grad, [y, x], spread))
        count = apply(_reduce_grad, [sum(mask, axes, ctx.attrs["keepdims"]), x], spread)
        return (mask * apply(_reduce_grad, [g, x], spread) / count,)


class ReduceGrad(Op):
    """Spread g (reduced over axes) back over x's shape; divided by the count for a mean."""

    name = "reduce_grad"
    inputs = ("grad", "like")
    shape_inputs = (1,)

    def infer(self, specs, attrs):
        return [Spec(specs[1].shape, specs[0].dtype)]

    def forward(self, k, ins, outs, attrs):
        broadcast_strides = _elementwise.broadcast_strides

        g, out = ins[0], outs[0]
        axes = attrs["axes"]
        kept_shape = tuple(1 if i in axes else d for i, d in enumerate(out.shape))
        k.run("copy", [g.desc(out.shape, broadcast_strides(kept_shape, out.shape))],
              [out.desc()])
        if attrs["mode"] == "mean":
            count = math.prod(out.shape[a] for a in axes)
            k.run("unary", [out.desc()], [out.desc()], (lib.PF_U_AFFINE,),
                  (1.0 / count if count else 0.0, 0.0))

    def grad(self, ctx, gg):
        axes = ctx.attrs["axes"]
        g = ctx.inputs[0]
        keep = len(g.shape) == len(ctx.inputs[1].shape)
        red = mean if ctx.attrs["mode"] == "mean" else sum
        return red(gg, axes, keep), None


_reduce_grad = core.register(ReduceGrad)
_OPS = {}
for _mode in _CODES:
    _OPS[_mode] = Reduce(_mode)
    core.REGISTRY[_mode] = _OPS[_mode]


def _reduce(mode, x, axis, keepdims):
    x = as_operand(x)
    axes = tuple(sorted(normalize_axes(axis, len(x.shape), mode)))
    if mode in ("argmax", "argmin") and axis is None and len(x.shape) > 1:
        x = _shape.reshape(x, (-1,))
        axes = (0,)
    if mode == "sum" and x.dtype.name == "int32":
        x = _shape.cast(x, "int64")     # as numpy: integer sums do not wrap at 32 bits
    return apply(_OPS[mode], [x], {"axes": axes, "keepdims": bool(keepdims)})


def sum(x, axis=None, keepdims=False):  # noqa: A001 (numpy's name)
    return _reduce("sum", x, axis, keepdims)


def mean(x, axis=None, keepdims=False):
    return _reduce("mean", x, axis, keepdims)


def max(x, axis=None, keepdims=False):  # noqa: A001
    return _reduce("max", x, axis, keepdims)


def min(x, axis=None, keepdims=False):  # noqa: A001
    return _reduce("min", x, axis, keepdims)


def argmax(x, axis=None, keepdims=False):
    return _reduce("argmax", x, axis, keepdims)


def argmin(x, axis=None, keepdims=False):
    return _reduce("argmin", x, axis, keepdims)
