"""Reductions over axes (sum, mean, prod, max, min, argmax, argmin, any, all, var, std,
logsumexp, norm, median, quantile, mode), scans (cumsum, cumprod, cummax, logcumsumexp), sorting
(sort, argsort, topk), searching and counting (bucketize, searchsorted, isin, histc, histogram,
bincount, unique) and integrals (trapezoid, cumulative_trapezoid)."""
import builtins
import collections
import math

import numpy as np

from .. import errors
from ..backend.cpu import lib
from ..dtypes import get_default_dtype, int64
from . import core
from .core import Op, ShapeMismatch, Spec, apply, as_operand, check_shape, normalize_axes, \
    normalize_axis
from . import elementwise as _elementwise  # noqa: E402 (siblings: read at call time)
from . import shape as _shape  # noqa: E402 (siblings: read at call time)

__all__ = ["sum", "mean", "max", "min", "argmax", "argmin", "prod", "any", "all", "var", "std",
           "logsumexp", "norm", "cumsum", "cumprod", "sort", "argsort", "topk", "median",
           "lower_reduce"]

_CODES = {"sum": lib.PF_R_SUM, "mean": lib.PF_R_MEAN, "max": lib.PF_R_MAX, "min": lib.PF_R_MIN,
          "argmax": lib.PF_R_ARGMAX, "argmin": lib.PF_R_ARGMIN, "prod": lib.PF_R_PROD}

# what max/min/sort/topk/median return along a dim, as PyTorch's named tuples do
ValuesIndices = collections.namedtuple("ValuesIndices", "values indices")


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
        if mode in ("sum", "mean"):
            self.retain_inputs = self.retain_outputs = ()    # the input's shape only

    def infer(self, specs, attrs):
        x = specs[0]
        axes = attrs["axes"]
        for a in axes:
            normalize_axis(a, len(x.shape), self.name)
        if self.mode == "mean" and not x.dtype.is_float:
            raise errors.DTypeError("mean needs a float tensor, got %s" % x.dtype.name)
        if self.mode not in ("sum", "prod", "mean"):     # an empty mean is NaN, as in PyTorch
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
        spread = {"axes": axes, "mode": "sum"}
        E = _elementwise
        if self.mode == "prod":
            # exact with zeros, as PyTorch: the product of the others is P / x without zeros,
            # P (the product of the nonzero ones) at a lone zero, and 0 with two zeros or more
            keep = ctx.attrs["keepdims"]
            zero = E.equal(x, 0.0)
            nonzero_prod = prod(E.where(zero, 1.0, x), axes, keep)
            zeros = apply(_reduce_grad, [sum(zero, axes, keep), x], spread)
            p = apply(_reduce_grad, [nonzero_prod, x], spread)
            others = E.where(E.equal(zeros, 0), p / E.where(zero, 1.0, x),
                             E.where(E.logical_and(E.equal(zeros, 1), zero), p, 0.0))
            return (others * apply(_reduce_grad, [g, x], spread),)
        y = ctx.output()
        mask = E.equal(x, apply(_reduce_grad, [y, x], spread))
        count = apply(_reduce_grad, [sum(mask, axes, ctx.attrs["keepdims"]), x], spread)
        return (mask * apply(_reduce_grad, [g, x], spread) / count,)


class ReduceGrad(Op):
    """Spread g (reduced over axes) back over x's shape; divided by the count for a mean."""

    name = "reduce_grad"
    inputs = ("grad", "like")
    shape_inputs = (1,)

    def infer(self, specs, attrs):
        g, like = specs
        axes = [normalize_axis(a, len(like.shape), self.name) for a in attrs["axes"]]
        # g is like reduced over axes, with them kept as 1s or dropped (told apart by rank, as
        # the gradient rule does)
        if len(g.shape) == len(like.shape):
            want = tuple(1 if i in axes else d for i, d in enumerate(like.shape))
        else:
            want = tuple(d for i, d in enumerate(like.shape) if i not in axes)
        check_shape("grad (like %s reduced over axes %s)" % (core.fmt_shape(like.shape),
                                                             tuple(axes)), g.shape, want)
        return [Spec(like.shape, g.dtype)]

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
    _OPS[_mode] = core.register(Reduce(_mode))


def _reduction_axes(axis, x, name):
    """normalize_axes for a reduction, except that a 0-d tensor takes dim 0 or -1 and reduces
    as with no axis, as PyTorch's reductions do (torch.sum(torch.tensor(3.), 0) is 3). An
    empty tuple of dims reduces nothing, as NumPy's axis=() (PyTorch's sum takes it as every
    dim: code that sums over a computed list of broadcast dims would then total an unbroadcast
    operand)."""
    if not x.shape and axis is not None:
        normalize_axes(axis, 1, name)       # out of range or repeated: refused as for rank 1
        return ()
    return normalize_axes(axis, len(x.shape), name)


def _reduce(mode, x, axis, keepdims, dtype=None):
    x = as_operand(x)
    if dtype is not None:
        # PyTorch's dtype=: the input cast first, and the result of that dtype (an int32 sum
        # asked for stays int32 rather than widening)
        return _shape.cast(_reduce(mode, _shape.cast(x, dtype), axis, keepdims), dtype)
    axes = tuple(sorted(_reduction_axes(axis, x, mode)))
    if mode in ("argmax", "argmin") and axis is None and len(x.shape) > 1:
        # the index into the flattened tensor, as PyTorch's; keepdim keeps every dim as a 1
        # (torch.argmax(matrix, keepdim=True) is 1x1)
        index = _reduce(mode, _shape.reshape(x, (-1,)), 0, False)
        return _shape.reshape(index, (1,) * len(x.shape)) if keepdims else index
    if x.dtype.is_bool:
        if mode in ("max", "min"):      # or / and, through integers (the kernel takes no bool)
            return _shape.cast(_reduce(mode, _shape.cast(x, "int32"), axis, keepdims), "bool")
        if mode == "mean":
            raise errors.DTypeError("mean needs a float tensor, got bool")
        x = _shape.cast(x, "int64")     # sums and products of bools count, as in PyTorch
    if mode in ("sum", "prod") and x.dtype.name == "int32":
        x = _shape.cast(x, "int64")     # as numpy: integer sums do not wrap at 32 bits
    return apply(_OPS[mode], [x], {"axes": axes, "keepdims": bool(keepdims)})


def sum(x, axis=None, keepdims=False, *, dtype=None):  # noqa: A001 (numpy's name)
    """The sum over axis (all axes by default; an empty tuple reduces nothing, as NumPy's);
    dtype= casts x to it first, as PyTorch's."""
    return _reduce("sum", x, axis, keepdims, dtype)


def mean(x, axis=None, keepdims=False, *, dtype=None):
    """The mean over axis; NaN over an empty axis (as PyTorch). dtype= casts x first (an
    integer tensor's mean with dtype=float32)."""
    return _reduce("mean", x, axis, keepdims, dtype)


def prod(x, axis=None, keepdims=False, *, dtype=None):
    return _reduce("prod", x, axis, keepdims, dtype)


def _extreme(mode, x, dim, keepdim, axis, keepdims):
    keep = bool(keepdim if keepdims is None else keepdims)
    if axis is not None:
        # NumPy's spelling: the values alone (several axes allowed, ties share the gradient)
        if dim is not None:
            raise TypeError("%s: got both dim=%r and axis=%r" % (mode, dim, axis))
        return _reduce(mode, x, axis, keep)
    if dim is None:
        return _reduce(mode, x, None, keep)
    if hasattr(dim, "symbolic"):
        # PyTorch's max(a, b): the elementwise extreme of two tensors
        return (_elementwise.maximum if mode == "max" else _elementwise.minimum)(x, dim)
    if isinstance(dim, (tuple, list)):
        # several dims, which torch.max refuses: the values alone, as amax and NumPy's max
        return _reduce(mode, x, dim, keep)
    return _values_indices(mode, x, dim, keep)


def _values_indices(mode, x, dim, keep):
    """PyTorch's max(x, dim) / min(x, dim): (values, indices) along one dim. The values are
    gathered at the indices, so that their gradient goes to that one element as PyTorch's does
    (torch.max(t([[1., 3., 3.]]), 1) sends it to index 1 alone, where amax splits it between
    the ties); a NaN wins, at its first index."""
    x = as_operand(x)
    if not x.shape:     # a 0-d tensor: dim 0 or -1, the value itself at index 0
        normalize_axis(dim, 1, mode)
        return ValuesIndices(_shape.clone(x), _reduce("arg" + mode, x, None, False))
    ax = normalize_axis(dim, len(x.shape), mode)
    if x.shape[ax] == 0:
        raise errors.ShapeError("%s: cannot take the %s over axis %d of size 0 of x %s"
                                % (mode, mode, dim, core.fmt_shape(x.shape)))
    index = _reduce("arg" + mode, x, ax, True)
    values = _shape.take_along_axis(x, index, ax)
    if not keep:
        values, index = _shape.squeeze(values, ax), _shape.squeeze(index, ax)
    return ValuesIndices(values, index)


def max(x, dim=None, keepdim=False, *, axis=None, keepdims=None):  # noqa: A001
    """PyTorch's max: over every element, a value (ties share the gradient evenly); along one
    dim, positional or dim=, the named tuple (values, indices) (the gradient goes to the
    index); with a tensor second argument, maximum(x, other). axis= (NumPy's spelling, one
    axis or several, as a tuple of dims) gives the values alone, as amax does."""
    return _extreme("max", x, dim, keepdim, axis, keepdims)


def min(x, dim=None, keepdim=False, *, axis=None, keepdims=None):  # noqa: A001
    """The minimum; the forms as for max."""
    return _extreme("min", x, dim, keepdim, axis, keepdims)


def argmax(x, axis=None, keepdims=False):
    return _reduce("argmax", x, axis, keepdims)


def argmin(x, axis=None, keepdims=False):
    return _reduce("argmin", x, axis, keepdims)


def any(x, axis=None, keepdims=False):  # noqa: A001
    """Whether any element over axis is true (nonzero), as a bool tensor; False when empty."""
    return _elementwise.greater(sum(_elementwise._truth(x), axis, keepdims), 0)


def all(x, axis=None, keepdims=False):  # noqa: A001
    """Whether every element over axis is true (nonzero), as a bool tensor; True when empty."""
    return _elementwise.equal(sum(_elementwise.logical_not(x), axis, keepdims), 0)


def _count(x, axes):
    """How many elements a reduction over axes takes: an int, or a tensor for unknown dims."""
    dims = [x.shape[a] for a in axes]
    if None not in dims:
        return math.prod(dims)
    one = _shape.expand_like(as_operand(1.0, dtype=x.dtype), x)
    return sum(one, axes)


def var(x, axis=None, correction=1, keepdims=False, *, unbiased=None):
    """Variance over axis with `correction` (1: Bessel's, PyTorch's default; 0: the population
    variance; unbiased=True/False, PyTorch's older spelling, for 1/0). The sum of squares is
    divided by max(0, N - correction), as PyTorch's: inf (NaN for no spread, or over an empty
    axis) when the correction leaves no degree of freedom."""
    x = as_operand(x)
    if not x.dtype.is_float:
        raise errors.DTypeError("var needs a float tensor, got %s" % x.dtype.name)
    if isinstance(axis, bool):      # PyTorch's var(x, unbiased): the flag in dim's place
        axis, unbiased = None, axis
    if unbiased is not None:
        correction = 1 if unbiased else 0
    elif correction is None:        # PyTorch's correction=None: the default
        correction = 1
    axes = _reduction_axes(axis, x, "var")
    d = x - mean(x, axes, keepdims=True)
    n = _count(x, axes)
    if isinstance(n, int):
        dof = float(n - correction if n > correction else 0)
    else:
        dof = _elementwise.maximum(n - correction, 0.0)
    return sum(d * d, axes, keepdims) / dof


def std(x, axis=None, correction=1, keepdims=False, *, unbiased=None):
    """sqrt(var(x, axis, correction)), with a gradient of 0 where it is 0 (all values equal),
    as PyTorch's, rather than sqrt's 1/0 times var's 0: the square root is taken of 1 there,
    and its result replaced by 0, so that no gradient reaches the infinite slope."""
    E = _elementwise
    v = var(x, axis, correction, keepdims, unbiased=unbiased)
    zero = E.equal(v, 0.0)
    return E.where(zero, 0.0, E.sqrt(E.where(zero, 1.0, v)))


def logsumexp(x, axis, keepdims=False):
    """log(sum(exp(x))) over axis without overflow: the maximum is taken out first (held at 0
    where it is infinite, as PyTorch does, so that all -inf gives -inf rather than NaN)."""
    E = _elementwise
    x = as_operand(x)
    axes = _reduction_axes(axis, x, "logsumexp")
    m = amax(x, axes, keepdims=True) if _count_known_nonzero(x, axes) else None
    if m is None:       # empty axis: log(0)
        return E.log(sum(E.exp(x), axes, keepdims))
    m = E.where(E.isfinite(m), m, 0.0)
    out = E.log(sum(E.exp(x - m), axes, keepdims=True)) + m
    return out if keepdims else _shape.squeeze(out, axes) if axes else out


def _count_known_nonzero(x, axes):
    return 0 not in [x.shape[a] for a in axes]


class Norm2(Op):
    """sqrt(sum(x * x)) over axes, one op so that its gradient at a zero vector is 0 (as in
    PyTorch) rather than 0 * inf."""

    name = "norm2"
    inputs = ("x",)

    def infer(self, specs, attrs):
        x = specs[0]
        if not x.dtype.is_float:
            raise errors.DTypeError("norm needs a float tensor, got %s" % x.dtype.name)
        axes = attrs["axes"]
        _check_axes(axes, len(x.shape))
        if attrs["keepdims"]:
            shape = tuple(1 if i in axes else d for i, d in enumerate(x.shape))
        else:
            shape = tuple(d for i, d in enumerate(x.shape) if i not in axes)
        return [Spec(shape, x.dtype)]

    def forward(self, k, ins, outs, attrs):
        x, out = ins[0], outs[0]
        sq = k.scratch(x.shape, x.dtype)
        k.run("unary", [x.desc()], [sq.desc()], (lib.PF_U_SQUARE,))
        lower_reduce(k, sq, out, attrs["axes"], "sum")
        k.run("unary", [out.desc()], [out.desc()], (lib.PF_U_SQRT,))

    def grad(self, ctx, g):
        E = _elementwise
        x, y = ctx.inputs[0], ctx.output()
        scale = E.where(E.equal(y, 0.0), 0.0, g / y)
        return (x * apply(_reduce_grad, [scale, x], {"axes": ctx.attrs["axes"], "mode": "sum"}),)


_norm2 = core.register(Norm2)


def norm(x, p=2, axis=None, keepdims=False):
    """The p-norm over axis (all elements by default): p a positive number, inf, -inf, 0 (the
    count of nonzeros) or "fro" (2 over the given axes: Frobenius for a matrix)."""
    E = _elementwise
    x = as_operand(x)
    if not x.dtype.is_float:
        x = _shape.cast(x, get_default_dtype())
    axes = tuple(sorted(_reduction_axes(axis, x, "norm")))
    if p == "fro" or p == 2:
        return apply(_norm2, [x], {"axes": axes, "keepdims": bool(keepdims)})
    if isinstance(p, str):
        raise ValueError("norm: p must be a number, inf, -inf or 'fro', got %r" % (p,))
    if p == math.inf:
        return amax(E.abs(x), axes, keepdims)
    if p == -math.inf:
        return amin(E.abs(x), axes, keepdims)
    if p == 0:
        return sum(_shape.cast(E.not_equal(x, 0.0), x.dtype), axes, keepdims)
    if p == 1:
        return sum(E.abs(x), axes, keepdims)
    if p < 0:
        raise ValueError("norm: p must be positive, inf, -inf, 0 or 'fro', got %r" % (p,))
    return E.pow(sum(E.pow(E.abs(x), float(p)), axes, keepdims), 1.0 / p)


# ---------------------------------------------------------------------------------------------
# scans: cumsum, cumprod

def _check_axes(axes, ndim):
    """Inside a shape rule: axes out of range are a ShapeMismatch, which core.infer turns into
    a ShapeError naming the op and its inputs."""
    for a in axes:
        if not -ndim <= a < ndim:
            raise ShapeMismatch("axis %d is out of range for a tensor of rank %d" % (a, ndim))


def _axis_view(shape, axis):
    return (math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:]))


class Cumulate(Op):
    """Running sum or product along one axis; attrs: axis, prod (bool), reverse (bool: from the
    end, the gradient of a forward sum)."""

    name = "cumulate"
    inputs = ("x",)

    def infer(self, specs, attrs):
        x = specs[0]
        _check_axes([attrs["axis"]], len(x.shape))
        if x.dtype.is_bool:
            raise errors.DTypeError("cumsum/cumprod take numbers, got bool (cast first)")
        return [x]

    def forward(self, k, ins, outs, attrs):
        x = ins[0]
        view = _axis_view(x.shape, attrs["axis"])
        k.run("cumulate", [x.desc(view)], [outs[0].desc(view)],
              (int(attrs["prod"]), int(attrs["reverse"])))

    def grad(self, ctx, g):
        x = ctx.inputs[0]
        axis, rev = ctx.attrs["axis"], ctx.attrs["reverse"]
        if not ctx.attrs["prod"]:
            return (apply(self, [g], {"axis": axis, "prod": False, "reverse": not rev}),)
        # d/dx_i = sum over j >= i of g_j * (the product up to j without x_i), exact with zeros:
        # before the first zero it is sum g_j y_j / x_i; at the first zero, the same sum with
        # that zero taken as 1 in the products; after it, 0 (each product holds that zero)
        E = _elementwise
        back = {"axis": axis, "prod": False, "reverse": not rev}
        zero = E.equal(x, 0.0)
        seen = apply(self, [_shape.cast(zero, "int64")], dict(back, reverse=rev))
        first_zero = E.logical_and(zero, E.equal(seen, 1))
        y = ctx.output()
        before = apply(self, [g * y], back) / E.where(zero, 1.0, x)
        y_skip = apply(self, [E.where(first_zero, 1.0, x)], ctx.attrs)
        at_zero = apply(self, [g * y_skip * E.greater_equal(seen, 1)], back)
        return (E.where(E.equal(seen, 0), before, E.where(first_zero, at_zero, 0.0)),)


_cumulate = core.register(Cumulate)


def _scan(x, axis, product, name, dtype=None):
    x = as_operand(x)
    if dtype is not None:       # PyTorch's dtype=: cast first, and keep that dtype
        return _shape.cast(_scan(_shape.cast(x, dtype), axis, product, name), dtype)
    if x.dtype.is_bool or x.dtype.name == "int32":
        x = _shape.cast(x, "int64")        # as PyTorch: integer scans are int64
    if not x.shape:                        # a 0-d tensor is its own running sum
        normalize_axis(axis, 1, name)
        return _shape.clone(x)
    axis = normalize_axis(axis, len(x.shape), name)
    return apply(_cumulate, [x], {"axis": axis, "prod": product, "reverse": False})


def cumsum(x, axis, *, dtype=None):
    """Running sums along axis (PyTorch's dim): y[i] = x[0] + ... + x[i]; dtype= casts x to
    it first, as PyTorch's."""
    return _scan(x, axis, False, "cumsum", dtype)


def cumprod(x, axis, *, dtype=None):
    """Running products along axis (its gradient exact with zeros too, as PyTorch's)."""
    return _scan(x, axis, True, "cumprod", dtype)


# ---------------------------------------------------------------------------------------------
# sorting: the native stable sort gives the order; values are gathered by it, so that their
# gradient is the gather's (a scatter back to where each value came from)

class Argsort(Op):
    name = "argsort"
    inputs = ("x",)
    differentiable = False

    def infer(self, specs, attrs):
        x = specs[0]
        _check_axes([attrs["axis"]], len(x.shape))
        if x.dtype.is_bool:
            raise errors.DTypeError("argsort takes numbers, got bool (cast first)")
        return [Spec(x.shape, int64)]

    def forward(self, k, ins, outs, attrs):
        x = ins[0]
        view = _axis_view(x.shape, attrs["axis"])
        values = k.scratch(x.shape, x.dtype)
        k.run("sort", [x.desc(view)], [values.desc(view), outs[0].desc(view)],
              (int(attrs["descending"]),))


_argsort = core.register(Argsort)


def argsort(x, axis=-1, descending=False, *, stable=False):
    """The indices that sort x along axis; stable (ties keep their order), NaN last (first when
    descending), as PyTorch's stable sort. stable= is PyTorch's flag, accepted so ported calls
    run: every sort here is stable."""
    x = as_operand(x)
    if x.dtype.is_bool:
        x = _shape.cast(x, "int32")
    if not x.shape:
        normalize_axis(axis, 1, "argsort")
        return _shape.cast(x * 0, "int64")
    axis = normalize_axis(axis, len(x.shape), "argsort")
    return apply(_argsort, [x], {"axis": axis, "descending": bool(descending)})


def sort(x, axis=-1, descending=False, *, stable=False):
    """(values, indices) of x sorted along axis (a named tuple, as PyTorch's); stable always
    (stable= is accepted for PyTorch's calls), as argsort."""
    x = as_operand(x)
    idx = argsort(x, axis, descending)
    if not x.shape:
        return ValuesIndices(_shape.clone(x), idx)
    return ValuesIndices(_shape.take_along_axis(x, idx, axis), idx)


def topk(x, k, axis=-1, largest=True, sorted=True):  # noqa: A002 (PyTorch's name)
    """(values, indices) of the k largest (smallest with largest=False) along axis, in order.
    sorted=False is accepted: PyTorch leaves the order unspecified then, and it is sorted
    here too. A 0-d tensor is its own top 1 (index 0), as in PyTorch."""
    x = as_operand(x)
    ax = _count_along("topk", x, k, 0, axis)
    if ax is None:
        return ValuesIndices(_shape.clone(x), argsort(x))
    idx = argsort(x, ax, descending=largest)
    idx = idx[(slice(None),) * ax + (slice(0, k),)]
    return ValuesIndices(_shape.take_along_axis(x, idx, ax), idx)


def median(x, axis=None, keepdims=False):
    """The lower median (PyTorch's: the smaller of the two middle values for an even count),
    NaN where there is a NaN (PyTorch's median; its nanmedian skips them). Over all elements
    (axis None) a value, whose gradient is shared evenly among the elements equal to it;
    along one axis, the named tuple (values, indices), the gradient going to the index (that
    of the first NaN where there is one), as PyTorch's."""
    E = _elementwise
    x = as_operand(x)
    if axis is None:
        flat = _shape.reshape(x, (-1,))
        n = flat.shape[0]
        if n == 0:
            raise errors.ShapeError("median of an empty tensor")
        middle = (n - 1) // 2
        m = _shape.reshape(_shape.take_along_axis(flat, argsort(flat, 0)[middle:middle + 1], 0),
                           ())
        if not x.dtype.is_float:
            return m
        m = E.where(any(E.isnan(flat)), math.nan, m)
        return _tie_shared(flat, m)
    ax = normalize_axis(axis, len(x.shape), "median")
    n = x.shape[ax]
    if n == 0:
        raise errors.ShapeError("median over axis %d of size 0 of x %s"
                                % (axis, core.fmt_shape(x.shape)))
    middle = (n - 1) // 2
    index = argsort(x, ax)[(slice(None),) * ax + (slice(middle, middle + 1),)]
    if x.dtype.is_float:        # a NaN sorts last: take the first one where there is one
        nan = E.isnan(x)
        index = E.where(any(nan, ax, keepdims=True), argmax(nan, ax, keepdims=True), index)
    values = _shape.take_along_axis(x, index, ax)
    if not keepdims:
        values, index = _shape.squeeze(values, ax), _shape.squeeze(index, ax)
    return ValuesIndices(values, index)


def _tie_shared(x, m):
    """m (a 0-d value found in x without gradient: a median), with x's gradient shared evenly
    among the elements equal to it (the NaNs where m is NaN), as PyTorch's median() does.
    Where m is finite it is the max of those elements with the others held at -inf (exact,
    and max's own gradient shares ties); where it is inf or NaN, their sum over their count
    (exact there: k infinities sum to infinity, and NaN stays NaN, where max's tie mask,
    NaN == NaN being false, would give 0/0). Neither branch's gradient is NaN when unused: the
    max then ties over all -infs or the infs, and the count is never 0."""
    E = _elementwise
    tie = E.equal(x, m)
    finite = amax(E.where(tie, x, -math.inf))
    tie_or_nan = E.logical_or(tie, E.isnan(x))     # a NaN in x makes m NaN
    other = sum(E.where(tie_or_nan, x, 0.0)) / sum(tie_or_nan)
    return E.where(E.isfinite(m), finite, other)


def kthvalue(x, k, axis=-1, keepdims=False):
    """(values, indices) of the k-th smallest element along axis (k counts from 1)."""
    x = as_operand(x)
    ax = _count_along("kthvalue", x, k, 1, axis)
    if ax is None:
        return ValuesIndices(_shape.clone(x), argsort(x))
    return _sorted_position(x, ax, k - 1, keepdims)


def _count_along(name, x, k, lowest, axis):
    """axis normalised, once k is checked to be an int in [lowest, the axis' size]. None for
    a 0-d tensor, which takes axis 0 or -1 and k == 1, as PyTorch's (its topk also takes k=0
    there and still returns the value: refused here, a 0-d result cannot hold no element)."""
    if not x.shape:
        normalize_axis(axis, 1, name)
        if isinstance(k, bool) or not isinstance(k, int) or k != 1:
            raise errors.ShapeError("%s: k must be 1 for a 0-d tensor (its one element), got %r"
                                    % (name, k))
        return None
    ax = normalize_axis(axis, len(x.shape), name)
    n = x.shape[ax]
    if not isinstance(k, int) or k < lowest or (n is not None and k > n):
        raise errors.ShapeError("%s: k must be an int in [%d, %s] for axis %d of x %s, got %r"
                                % (name, lowest, n, axis, core.fmt_shape(x.shape), k))
    return ax


def _sorted_position(x, ax, position, keepdims):
    """(values, indices) of the element at `position` of x sorted along ax (ascending)."""
    idx = argsort(x, ax)[(slice(None),) * ax + (slice(position, position + 1),)]
    values = _shape.take_along_axis(x, idx, ax)
    if not keepdims:
        values, idx = _shape.squeeze(values, ax), _shape.squeeze(idx, ax)
    return ValuesIndices(values, idx)



# ---------------------------------------------------------------------------------------------
# more of PyTorch's and NumPy's reductions, composed of the ones above

def amax(x, axis=None, keepdims=False):
    """The maximum over axis (all by default; several allowed), values only (PyTorch's amax:
    the gradient is shared evenly among tied maxima)."""
    return _reduce("max", x, axis, keepdims)


def amin(x, axis=None, keepdims=False):
    """The minimum over axis, values only (PyTorch's amin)."""
    return _reduce("min", x, axis, keepdims)


MinMax = collections.namedtuple("MinMax", "min max")


def aminmax(x, axis=None, keepdims=False):
    """(min, max) over axis, a named tuple as PyTorch's aminmax."""
    return MinMax(amin(x, axis, keepdims), amax(x, axis, keepdims))


def nansum(x, axis=None, keepdims=False):
    """The sum over axis with NaNs taken as zero."""
    x = as_operand(x)
    if x.dtype.is_float:
        x = _elementwise.where(_elementwise.isnan(x), 0.0, x)
    return sum(x, axis, keepdims)


def nanmean(x, axis=None, keepdims=False):
    """The mean over axis of the elements that are not NaN (NaN where there are none)."""
    x = as_operand(x)
    if not x.dtype.is_float:
        raise errors.DTypeError("nanmean needs a float tensor, got %s" % x.dtype.name)
    keep = _elementwise.logical_not(_elementwise.isnan(x))
    total = sum(_elementwise.where(keep, x, 0.0), axis, keepdims)
    return total / sum(_shape.cast(keep, x.dtype), axis, keepdims)


def count_nonzero(x, axis=None):
    """How many elements over axis are not zero, as int64."""
    return sum(_shape.cast(_elementwise._truth(x), "int64"), axis)


def var_mean(x, axis=None, correction=1, keepdims=False):
    """(var, mean) over axis, as PyTorch's var_mean."""
    return var(x, axis, correction, keepdims), mean(x, axis, keepdims)


def std_mean(x, axis=None, correction=1, keepdims=False):
    """(std, mean) over axis, as PyTorch's std_mean."""
    return std(x, axis, correction, keepdims), mean(x, axis, keepdims)


def diff(x, n=1, axis=-1, prepend=None, append=None):
    """The n-th forward difference along axis: x[1:] - x[:-1], n times. prepend / append
    are joined to x along axis first (PyTorch's and NumPy's): tensors of x's rank and of its
    shape off the axis, or (NumPy's, which PyTorch refuses) numbers and 0-d tensors, taken
    as one slice along the axis."""
    x = as_operand(x)
    ax = normalize_axis(axis, len(x.shape), "diff")
    if prepend is not None or append is not None:
        parts = []
        for what, part in (("prepend", prepend), (None, x), ("append", append)):
            if part is None:
                continue
            if not hasattr(part, "symbolic"):     # a number or array: a constant on x's device
                part = core.constant_like(as_operand(part, like=x), x)
            if what is not None and not part.shape:
                part = _shape.broadcast_to(_shape.reshape(part, (1,) * len(x.shape)),
                                           tuple(1 if d == ax else s
                                                 for d, s in enumerate(x.shape)))
            elif what is not None and (len(part.shape) != len(x.shape) or builtins.any(
                    p != s for d, (p, s) in enumerate(zip(part.shape, x.shape)) if d != ax)):
                raise errors.ShapeError("diff: %s %s must have the shape of x %s except along "
                                        "axis %d" % (what, core.fmt_shape(part.shape),
                                                     core.fmt_shape(x.shape), ax))
            parts.append(part)
        x = _shape.concat(parts, ax)
    lead = (slice(None),) * ax
    for _ in range(n):
        x = x[lead + (slice(1, None),)] - x[lead + (slice(None, -1),)]
    return x


def trace(x):
    """The sum of a matrix's main diagonal."""
    x = as_operand(x)
    if len(x.shape) != 2:
        raise errors.ShapeError("trace needs a matrix, got x %s" % core.fmt_shape(x.shape))
    return sum(_shape.diagonal(x))


__all__ += ["amax", "amin", "aminmax", "nansum", "nanmean", "count_nonzero", "var_mean",
            "std_mean", "kthvalue", "diff", "trace"]


def normalize(x, p=2.0, axis=1, eps=1e-12):
    """x divided by its p-norm along axis, the norm held at eps or more (PyTorch's
    F.normalize: unit rows of embeddings)."""
    x = as_operand(x)
    n = norm(x, p, axis, keepdims=True)
    return x / _elementwise.maximum(n, eps)


__all__ += ["normalize"]


# ---------------------------------------------------------------------------------------------
# running scans by doubling (cummax, cummin, logcumsumexp; shape.scatter_reduce's segments)

def running(values, axis, combine, name):
    """The inclusive scan along axis of a tuple of tensors of one shape: position i ends up
    holding combine(... combine(v[0], v[1]) ..., v[i]) for an associative
    combine(earlier, later) -> tuple. Hillis and Steele's doubling: log2(n) rounds of
    whole-tensor ops, so that a graph holds O(log n) nodes, not n."""
    n = values[0].shape[axis]
    if n is None:
        raise errors.ShapeError("%s: the dim %d it runs along must be known, got %s"
                                % (name, axis, core.fmt_shape(values[0].shape)))
    lead = (slice(None),) * axis
    step = 1
    while step < n:
        earlier = tuple(v[lead + (slice(0, n - step),)] for v in values)
        later = tuple(v[lead + (slice(step, n),)] for v in values)
        values = tuple(_shape.concat([v[lead + (slice(0, step),)], m], axis)
                       for v, m in zip(values, combine(earlier, later)))
        step *= 2
    return values


def positions(x, axis):
    """0, 1, ... along axis, as int64 of x's shape (unknown dims taken from x)."""
    view = [1] * len(x.shape)
    view[axis] = x.shape[axis]
    steps = core.constant_like(np.arange(x.shape[axis], dtype=np.int64).reshape(view), x)
    return _shape.expand_like(steps, x)


def _scalar_pair(x, axis, op):
    """(values, indices) of an op over a 0-d x: dim 0 or -1 is its only one, and the value is
    itself at index 0, as PyTorch's."""
    normalize_axis(axis, 1, op)
    return ValuesIndices(_shape.clone(x), core.constant_like(np.zeros((), np.int64), x))


def _nonempty_axis(x, axis, op):
    """axis of x normalised; a ShapeError where it has no elements to choose one from."""
    ax = normalize_axis(axis, len(x.shape), op)
    if x.shape[ax] == 0:
        raise errors.ShapeError("%s over axis %d of size 0 of x %s"
                                % (op, axis, core.fmt_shape(x.shape)))
    return ax


def cummax(x, axis):
    """(values, indices) of the running maximum along axis, as PyTorch's cummax: a tie moves
    the index to the later element, and a NaN holds from where it appears (its index moving
    to later NaNs). The gradient goes to the element at the index."""
    return _running_extreme("cummax", x, axis, _elementwise.greater_equal)


def cummin(x, axis):
    """(values, indices) of the running minimum along axis (ties and NaNs as cummax)."""
    return _running_extreme("cummin", x, axis, _elementwise.less_equal)


def _running_extreme(name, x, axis, wins):
    E = _elementwise
    x = as_operand(x)
    if not x.shape:
        return _scalar_pair(x, axis, name)
    ax = normalize_axis(axis, len(x.shape), name)

    def combine(earlier, later):
        (v0, i0), (v1, i1) = earlier, later
        later_wins = E.logical_or(E.isnan(v1), E.logical_and(E.logical_not(E.isnan(v0)),
                                                             wins(v1, v0)))
        return E.where(later_wins, v1, v0), E.where(later_wins, i1, i0)

    _, index = running((_shape.stop_gradient(x), positions(x, ax)), ax, combine, name)
    return ValuesIndices(_shape.take_along_axis(x, index, ax), index)


def logcumsumexp(x, axis):
    """log(cumsum(exp(x))) along axis, as running logaddexps: exact where the terms differ by
    hundreds (log(cumsum(exp(x - max))) would underflow to -inf there)."""
    x = as_operand(x)
    if not x.dtype.is_float:
        raise errors.DTypeError("logcumsumexp needs a float tensor, got %s" % x.dtype.name)
    if not x.shape:
        normalize_axis(axis, 1, "logcumsumexp")
        return _shape.clone(x)
    ax = normalize_axis(axis, len(x.shape), "logcumsumexp")
    return running((x,), ax, lambda a, b: (_elementwise.logaddexp(a[0], b[0]),),
                   "logcumsumexp")[0]


# ---------------------------------------------------------------------------------------------
# order statistics: nanmedian, quantile, nanquantile, mode, msort

def nanmedian(x, axis=None, keepdims=False):
    """median with the NaNs left out (NaN only where all are NaN), as PyTorch's nanmedian:
    over all elements a value whose gradient is shared among the elements equal to it;
    along one axis the named tuple (values, indices), the gradient going to the index."""
    E = _elementwise
    x = as_operand(x)
    if not x.dtype.is_float:        # no NaN to leave out
        return median(x, axis, keepdims)
    if axis is None:
        flat = _shape.reshape(x, (-1,))
        if flat.shape[0] == 0:
            raise errors.ShapeError("nanmedian of an empty tensor")
        count = sum(E.logical_not(E.isnan(flat)))
        middle = _shape.reshape(E.maximum(E.floor_divide(count - 1, 2), 0), (1,))
        m = _shape.reshape(_shape.take(flat, _shape.take(argsort(flat, 0), middle, 0), 0), ())
        return _tie_shared(flat, m)
    if not x.shape:
        return _scalar_pair(x, axis, "nanmedian")
    ax = _nonempty_axis(x, axis, "nanmedian")
    # NaNs sort last: the middle of the first `count` sorted elements (the first one, a NaN,
    # where all are NaN)
    count = sum(E.logical_not(E.isnan(x)), ax, keepdims=True)
    middle = E.maximum(E.floor_divide(count - 1, 2), 0)
    index = _shape.take_along_axis(argsort(x, ax), middle, ax)
    values = _shape.take_along_axis(x, index, ax)
    if not keepdims:
        values, index = _shape.squeeze(values, ax), _shape.squeeze(index, ax)
    return ValuesIndices(values, index)


_INTERPOLATIONS = ("linear", "lower", "higher", "midpoint", "nearest")


def quantile(x, q, axis=None, keepdims=False, *, interpolation="linear"):
    """The q-th quantiles of x over axis (all elements by default), as PyTorch's: q a number
    or a 1-D tensor of them in [0, 1] (then the quantiles make a new first dim); between two
    sorted elements `interpolation` (linear, lower, higher, midpoint, nearest) decides. NaN
    where a NaN is among the elements. The gradient goes to the elements interpolated."""
    return _quantile("quantile", x, q, axis, keepdims, interpolation, False)


def nanquantile(x, q, axis=None, keepdims=False, *, interpolation="linear"):
    """quantile with the NaNs left out (NaN only where all are NaN)."""
    return _quantile("nanquantile", x, q, axis, keepdims, interpolation, True)


def _check_q(name, q):
    if q.ndim > 1:
        raise errors.ShapeError("%s: q must be a number or a 1-D tensor, got shape %s"
                                % (name, q.shape))
    if q.size and not ((q >= 0) & (q <= 1)).all():
        raise ValueError("%s: q must be in [0, 1], got %s" % (name, q))


def _quantile(name, x, q, axis, keepdims, interpolation, skip_nan):
    E = _elementwise
    x = as_operand(x)
    if not x.dtype.is_float:
        raise errors.DTypeError("%s: x must be float32 or float64, got %s"
                                % (name, x.dtype.name))
    if interpolation not in _INTERPOLATIONS:
        raise ValueError("%s: interpolation must be one of %s, got %r"
                         % (name, ", ".join(_INTERPOLATIONS), interpolation))
    if hasattr(q, "symbolic"):
        if not q.symbolic:
            _check_q(name, q.numpy())
        q = _shape.cast(q, x.dtype)
    else:
        values = np.asarray(q, dtype=np.float64)
        _check_q(name, values)
        q = core.constant_like(values.astype(x.dtype.np), x)
    if len(q.shape) > 1:
        raise errors.ShapeError("%s: q must be a number or a 1-D tensor, got shape %s"
                                % (name, core.fmt_shape(q.shape)))
    nd = len(x.shape)
    if axis is None or not nd:
        if axis is not None:
            normalize_axis(axis, 1, name)
        along, ax = _shape.reshape(x, (-1,)), None
    else:
        ax = normalize_axis(axis, nd, name)
        along = _shape.movedim(x, ax, -1)
    n = along.shape[-1]
    if n == 0 or n is None:
        raise errors.ShapeError("%s: x %s must have a known, non-zero number of elements along "
                                "the reduced dims" % (name, core.fmt_shape(x.shape)))
    ordered = sort(along, -1).values           # NaNs last
    qs = _shape.reshape(q, (-1,))
    if skip_nan:
        count = sum(E.logical_not(E.isnan(ordered)), -1, keepdims=True)
        rank = qs * (_shape.cast(count, x.dtype) - 1.0)
        rank = E.where(E.less(rank, 0.0), 0.0, rank)      # all NaN: the first, a NaN
    else:                                                 # a NaN: the last, a NaN
        rank = E.where(any(E.isnan(ordered), -1, keepdims=True), float(n - 1),
                       qs * float(n - 1))
    rank = {"lower": E.floor, "higher": E.ceil, "nearest": E.round}.get(interpolation,
                                                                       lambda r: r)(rank)
    below = E.floor(rank)
    out = _shape.take_along_axis(ordered, _shape.cast(below, "int64"), -1)
    if interpolation in ("linear", "midpoint"):
        above = _shape.take_along_axis(ordered, _shape.cast(E.ceil(rank), "int64"), -1)
        weight = rank - below if interpolation == "linear" else \
            E.where(E.equal(below, rank), 0.0, 0.5)
        # PyTorch's lerp, which takes the nearer end as its base
        out = E.where(E.less(weight, 0.5), out + weight * (above - out),
                      above - (above - out) * (1.0 - weight))
    out = _shape.movedim(out, -1, 0)
    if not q.shape:
        out = out[0]
    if keepdims:
        lead = tuple(out.shape[:1]) if q.shape else ()
        out = _shape.reshape(out, lead + (1,) * nd) if ax is None else \
            _shape.expand_dims(out, ax + len(lead))
    return out


def mode(x, axis=-1, keepdims=False):
    """(values, indices): the most frequent value along axis (the smallest of those equally
    frequent) and the index of its last occurrence, as PyTorch's mode. The gradient goes to
    the element at the index."""
    E = _elementwise
    x = as_operand(x)
    if not x.shape:
        return _scalar_pair(x, axis, "mode")
    ax = _nonempty_axis(x, axis, "mode")
    # sorted (stably), equal values make runs whose last element is their last occurrence:
    # each element's place in its run counts up to the run's length, and the first longest
    # run holds the smallest of the most frequent values
    value = _shape.stop_gradient(x)
    order = argsort(value, ax)
    ordered = _shape.take_along_axis(value, order, ax)
    place = positions(x, ax)
    lead = (slice(None),) * ax
    rest, before = lead + (slice(1, None),), lead + (slice(None, -1),)
    starts = _shape.concat([place[lead + (slice(0, 1),)], E.where(
        E.not_equal(ordered[rest], ordered[before]), place[rest], 0)], ax)
    start = running((starts,), ax, lambda a, b: (E.maximum(a[0], b[0]),), "mode")[0]
    length = place - start
    longest = E.equal(length, amax(length, ax, keepdims=True))
    at = argmax(_shape.cast(longest, "int32"), ax, keepdims=True)
    index = _shape.take_along_axis(order, at, ax)
    values = _shape.take_along_axis(x, index, ax)
    if not keepdims:
        values, index = _shape.squeeze(values, ax), _shape.squeeze(index, ax)
    return ValuesIndices(values, index)


def msort(x):
    """x sorted along its first dim (PyTorch's msort: sort(x, 0).values)."""
    return sort(x, 0).values


# ---------------------------------------------------------------------------------------------
# counting and searching: histc, bincount, bucketize, isin, unique, unique_consecutive

def histc(x, bins=100, min=0, max=0):  # noqa: A002 (PyTorch's names)
    """Counts of x's elements in `bins` equal bins over [min, max] (over x's own range when
    min == max; widened by 1 on each side when that range is one value), as PyTorch's histc:
    elements outside and NaNs are not counted; the last bin holds its right edge. The counts
    have x's (float) dtype and no gradient."""
    E = _elementwise
    x = as_operand(x)
    if not x.dtype.is_float:
        raise errors.DTypeError("histc: x must be float32 or float64, got %s" % x.dtype.name)
    if isinstance(bins, bool) or not isinstance(bins, int) or bins < 1:
        raise ValueError("histc: bins must be a positive int, got %r" % (bins,))
    if min > max:
        raise ValueError("histc: max %r must not be below min %r" % (max, min))
    flat = _shape.stop_gradient(_shape.reshape(x, (-1,)))
    counts = core.constant_like(np.zeros(bins + 1, x.dtype.np), x)
    if min == max:
        if flat.shape[0] == 0:
            return counts[:bins]
        lo, hi = amin(flat), amax(flat)
        if not flat.symbolic and not np.isfinite([lo.item(), hi.item()]).all():
            raise ValueError("histc: the range of x, [%s, %s], is not finite: give min and max"
                             % (lo.item(), hi.item()))
    else:
        lo, hi = as_operand(float(min), dtype=x.dtype), as_operand(float(max), dtype=x.dtype)
    same = E.equal(lo, hi)
    lo, hi = E.where(same, lo - 1.0, lo), E.where(same, hi + 1.0, hi)
    inside = E.logical_and(E.greater_equal(flat, lo), E.less_equal(flat, hi))
    # PyTorch's bin: (x - lo) * bins / (hi - lo) rounded down, in x's dtype; the outside
    # and the NaNs go to a spare bin that is cut off
    position = E.minimum(E.floor((flat - lo) * float(bins) / (hi - lo)), float(bins - 1))
    position = _shape.cast(E.where(inside, position, float(bins)), "int64")
    ones = _shape.expand_like(as_operand(1.0, dtype=x.dtype), flat)
    return _shape.scatter_add(counts, 0, position, ones)[:bins]


def bincount(x, weights=None, minlength=0):
    """How often each value 0 .. max(x) occurs in x, a 1-D tensor of non-negative ints (at
    least minlength counts; with weights, their sums, float64 for integer weights), as
    PyTorch's bincount. Eager only: the length depends on the values. Weights' gradient is
    the one of their sum (PyTorch has none)."""
    x = as_operand(x)
    if x.symbolic:
        raise errors.TraceError("bincount: the length of its result, max(x) + 1, depends on "
                                "the values of x, which a graph does not know")
    if len(x.shape) != 1 or x.dtype.is_float or x.dtype.is_bool:
        raise errors.DTypeError("bincount: x must be a 1-D tensor of non-negative integers, "
                                "got %s %s" % (core.fmt_shape(x.shape), x.dtype.name))
    values = x.numpy()
    if values.size and values.min() < 0:
        raise ValueError("bincount: x must be non-negative, got %d" % values.min())
    if isinstance(minlength, bool) or not isinstance(minlength, int) or minlength < 0:
        raise ValueError("bincount: minlength must be a non-negative int, got %r"
                         % (minlength,))
    length = builtins.max(int(values.max()) + 1 if values.size else 0, minlength)
    if weights is None:
        return core.constant_like(np.bincount(values, minlength=length).astype(np.int64), x)
    weights = as_operand(weights)
    if tuple(weights.shape) != tuple(x.shape):
        raise errors.ShapeError("bincount: weights %s must have the shape of x %s"
                                % (core.fmt_shape(weights.shape), core.fmt_shape(x.shape)))
    if not weights.dtype.is_float:
        weights = _shape.cast(weights, "float64")
    zeros = core.constant_like(np.zeros(length, weights.dtype.np), x)
    return _shape.scatter_add(zeros, 0, x, weights)


def bucketize(x, boundaries, *, out_int32=False, right=False):
    """For each element of x the index of its bucket among the sorted 1-D boundaries, as
    PyTorch's bucketize: the number of boundaries below it (right=True: at or below it);
    NaN goes past the last. int64 (int32 with out_int32)."""
    E = _elementwise
    x, boundaries = as_operand(x), as_operand(boundaries)
    if len(boundaries.shape) != 1 or boundaries.shape[0] is None:
        raise errors.ShapeError("bucketize: boundaries must be 1-D of a known length, got %s"
                                % core.fmt_shape(boundaries.shape))
    found = _count_passed(x, boundaries, _search_test(right))
    return _shape.cast(found, "int32") if out_int32 else found


def _search_test(right):
    """PyTorch's test of a sorted bound b against a value v (bucketize, searchsorted), under
    which NaN passes every bound: b < v, or b <= v with right."""
    E = _elementwise
    if right:
        return lambda b, v: E.logical_not(E.greater(b, v))
    return lambda b, v: E.logical_not(E.greater_equal(b, v))


def _count_passed(x, ordered, passes, rows=False):
    """How many of the 1-D ordered values each element of x passes (passes(bound, x) true for
    a prefix of them): a binary search by halving steps, log2(len(ordered)) gathers. rows:
    ordered is N-D, and each row of x (its last dim) is searched in ordered's matching row."""
    E = _elementwise
    n = ordered.shape[-1]
    found = _shape.expand_like(core.constant_like(np.zeros((), np.int64), x), x)
    step = 1 << (n.bit_length() - 1) if n else 0
    while step:
        # found: how many the element is known to pass; try `step` more
        candidate = found + step
        at = E.minimum(candidate, n) - 1
        bound = _shape.take_along_axis(ordered, at, -1) if rows else _shape.take(ordered, at, 0)
        found = E.where(E.logical_and(E.less_equal(candidate, n), passes(bound, x)), candidate,
                        found)
        step //= 2
    return found


def isin(elements, test_elements, *, assume_unique=False, invert=False):
    """Whether each element of `elements` is in test_elements (either may be a number), as
    bool; NaN is in nothing. A binary search of the sorted test elements (assume_unique is
    accepted: it changes nothing here)."""
    E = _elementwise
    elements, test = as_operand(elements), as_operand(test_elements)
    flat = _shape.reshape(test, (-1,))
    n = flat.shape[0]
    if n == 0:
        found = E.not_equal(elements, elements) * False
    else:
        # sorted, NaNs last: the values below an element are a prefix (NaN is below none)
        ordered = sort(_shape.stop_gradient(flat)).values
        at = E.minimum(_count_passed(elements, ordered, E.less), n - 1)
        found = E.equal(_shape.take(ordered, at, 0), elements)
    return E.logical_not(found) if invert else found


def unique(x, sorted=True, return_inverse=False, return_counts=False, axis=None):  # noqa: A002
    """The distinct values of x in ascending order (sorted=False gives them sorted too, as
    PyTorch's CPU unique does), or with axis the distinct slices along it; with
    return_inverse each element's (slice's) index among them, with return_counts how often
    each occurs (a tuple then, as PyTorch's). NaNs are distinct. Eager only: the number of
    distinct values depends on the values; no gradient (PyTorch has none)."""
    x = as_operand(x)
    if x.symbolic:
        raise errors.TraceError("unique: the number of distinct values depends on the values "
                                "of x, which a graph does not know")
    values = x.numpy()
    if axis is None:
        found, inverse, counts = np.unique(values.reshape(-1), return_inverse=True,
                                           return_counts=True, equal_nan=False)
        inverse = inverse.reshape(values.shape)
    else:
        ax = normalize_axis(axis, values.ndim, "unique")
        found, inverse, counts = np.unique(values, return_inverse=True, return_counts=True,
                                           axis=ax, equal_nan=False)
        inverse = inverse.reshape(-1)
    return _with_inverse_counts(x, found, inverse, counts, return_inverse, return_counts)


def _with_inverse_counts(x, found, inverse, counts, return_inverse, return_counts):
    out = [core.constant_like(np.ascontiguousarray(found), x, dtype=x.dtype)]
    if return_inverse:
        out.append(core.constant_like(inverse.astype(np.int64), x))
    if return_counts:
        out.append(core.constant_like(counts.astype(np.int64), x))
    return out[0] if len(out) == 1 else tuple(out)


def unique_consecutive(x, return_inverse=False, return_counts=False, axis=None):
    """x with each run of equal consecutive values (slices along axis) kept once, as
    PyTorch's unique_consecutive; return_inverse and return_counts as unique's. Eager only,
    for the same reason."""
    x = as_operand(x)
    if x.symbolic:
        raise errors.TraceError("unique_consecutive: the number of runs depends on the values "
                                "of x, which a graph does not know")
    values = x.numpy()
    if axis is None:
        rows = values.reshape(-1, 1)
    else:
        ax = normalize_axis(axis, values.ndim, "unique_consecutive")
        moved = np.moveaxis(values, ax, 0)
        rows = moved.reshape(moved.shape[0], -1)
    starts = np.ones(rows.shape[0], bool)
    starts[1:] = (rows[1:] != rows[:-1]).any(axis=1)
    inverse = np.cumsum(starts) - 1
    counts = np.diff(np.append(np.flatnonzero(starts), rows.shape[0]))
    if axis is None:
        found, inverse = values.reshape(-1)[starts], inverse.reshape(values.shape)
    else:
        found = np.moveaxis(moved[starts], 0, ax)
    return _with_inverse_counts(x, found, inverse, counts, return_inverse, return_counts)


# ---------------------------------------------------------------------------------------------
# integrals and distances: trapezoid, dist

def trapezoid(y, x=None, *, dx=None, axis=-1):
    """The trapezoidal rule along axis: samples y at points x (1-D along the axis, or of y's
    rank), or spaced dx apart (1 by default), as PyTorch's trapezoid; 0 for no samples."""
    y = as_operand(y)
    if x is not None and dx is not None:
        raise TypeError("trapezoid: give x or dx, not both")
    ax = normalize_axis(axis, len(y.shape), "trapezoid")
    if y.shape[ax] == 0:
        return sum(y, ax)
    lead = (slice(None),) * ax
    if x is None:
        ends = _shape.select(y, ax, 0) + _shape.select(y, ax, -1)
        return (sum(y, ax) - ends * 0.5) * (1.0 if dx is None else dx)
    widths = _sample_widths(x, y, ax, axis, "trapezoid")
    return sum(widths * (y[lead + (slice(1, None),)] + y[lead + (slice(None, -1),)]), ax) / 2.0


def _sample_widths(x, y, ax, axis, op):
    """The spacings of the sample points x (1-D along axis ax of y, or of y's rank) along the
    axis: the trapezoids' widths."""
    x = as_operand(x)
    if len(x.shape) == 1:
        if x.shape[0] != y.shape[ax]:
            raise errors.ShapeError("%s: x %s must have one point per sample along axis %d of "
                                    "y %s" % (op, core.fmt_shape(x.shape), ax,
                                              core.fmt_shape(y.shape)))
        view = [1] * len(y.shape)
        view[ax] = -1
        return diff(_shape.reshape(x, tuple(view)), 1, ax)
    return diff(x, 1, axis)


def dist(x, other, p=2):
    """The p-norm of x - other over every element, as PyTorch's dist."""
    return norm(_elementwise.sub(x, other), p)


__all__ += ["cummax", "cummin", "logcumsumexp", "nanmedian", "quantile", "nanquantile", "mode",
            "msort", "histc", "bincount", "bucketize", "isin", "unique", "unique_consecutive",
            "trapezoid", "dist"]


# ---------------------------------------------------------------------------------------------
# more of torch.* (3): searchsorted, histogram, cumulative_trapezoid, renorm

def searchsorted(sorted_sequence, input, *, out_int32=False, right=False,  # noqa: A002
                 side=None, sorter=None):
    """For each value of input, where it would go in sorted_sequence to keep it sorted, as
    torch.searchsorted: the number of elements below it (right=True or side="right": at or
    below it; NaN goes past all). sorted_sequence is 1-D, or N-D with input's leading dims,
    each row of input searched in its own row; sorter: the indices that sort
    sorted_sequence along its last dim, if it is not sorted itself. input may be a number
    (a 0-d result). int64 (int32 with out_int32)."""
    if side is not None:
        if side not in ("left", "right"):
            raise ValueError("searchsorted: side must be 'left' or 'right', got %r" % (side,))
        if right and side == "left":
            raise ValueError("searchsorted: side='left' and right=True contradict each other")
        right = side == "right"
    seq = as_operand(sorted_sequence)
    values = as_operand(input, like=seq)
    if not seq.shape or seq.shape[-1] is None:
        raise errors.ShapeError("searchsorted: sorted_sequence must have at least one dim, of "
                                "a known length, got %s" % core.fmt_shape(seq.shape))
    if sorter is not None:
        sorter = as_operand(sorter)
        if sorter.dtype.is_float or sorter.dtype.is_bool or \
                tuple(sorter.shape) != tuple(seq.shape):
            raise errors.ShapeError("searchsorted: sorter must be integer indices of "
                                    "sorted_sequence's shape %s, got %s %s"
                                    % (core.fmt_shape(seq.shape), core.fmt_shape(sorter.shape),
                                       sorter.dtype.name))
        seq = _shape.take_along_axis(seq, sorter, -1)
    rows = len(seq.shape) > 1
    if rows and (len(values.shape) != len(seq.shape) or builtins.any(
            a != b for a, b in zip(values.shape[:-1], seq.shape[:-1])
            if a is not None and b is not None)):
        raise errors.ShapeError("searchsorted: an N-D sorted_sequence %s needs input with the "
                                "same leading dims, got %s" % (core.fmt_shape(seq.shape),
                                                              core.fmt_shape(values.shape)))
    found = _count_passed(values, seq, _search_test(right), rows)
    return _shape.cast(found, "int32") if out_int32 else found


Histogram = collections.namedtuple("histogram", "hist bin_edges")


def histogram(input, bins, *, range=None, weight=None, density=False):  # noqa: A002
    """(hist, bin_edges) of input's elements, as torch.histogram: `bins` equal bins over
    range (over input's own minimum and maximum when None, widened by 1/2 each way when they
    are equal; [0, 1] when input is empty), or bins the increasing 1-D tensor of the edges.
    An element in [edge_i, edge_i+1) counts in bin i, the last bin holds its right edge too;
    elements outside and NaNs count nowhere. weight (input's shape) counts each element
    with its weight; density divides by the total and the bin widths. Float input, results
    of its dtype; no gradient (torch's has none)."""
    E = _elementwise
    x = as_operand(input)
    if not x.dtype.is_float:
        raise errors.DTypeError("histogram: input must be float32 or float64, got %s %s"
                                % (x.dtype.name, core.fmt_shape(x.shape)))
    flat = _shape.stop_gradient(_shape.reshape(x, (-1,)))
    if isinstance(bins, (int, np.integer)) and not isinstance(bins, bool):
        if bins < 1:
            raise ValueError("histogram: bins must be a positive int, got %r" % (bins,))
        edges = _bin_edges(x, flat, int(bins), range)
    else:
        if range is not None:
            raise TypeError("histogram: range goes with a number of bins, not with bin edges")
        edges = as_operand(bins)
        if len(edges.shape) != 1 or not edges.shape[0] or edges.dtype is not x.dtype:
            raise errors.ShapeError("histogram: bins must be a number or a 1-D tensor of at "
                                    "least one edge, of input's dtype %s, got %s %s"
                                    % (x.dtype.name, core.fmt_shape(edges.shape),
                                       edges.dtype.name))
        if not edges.symbolic and not (np.diff(edges.cpu().numpy()) > 0).all():
            raise ValueError("histogram: the bin edges must increase, got %s"
                             % edges.cpu().numpy().tolist())
    n_bins = edges.shape[0] - 1
    # the last edge that each element passes (PyTorch's binary search); the last bin holds
    # its right edge, and the outside and the NaNs go to a spare bin that is cut off
    position = _count_passed(flat, edges, _search_test(True)) - 1
    inside = E.logical_and(E.greater_equal(flat, edges[0]), E.less_equal(flat, edges[-1]))
    position = E.where(inside, E.minimum(position, n_bins - 1), n_bins)
    counts = core.constant_like(np.zeros(n_bins + 1, x.dtype.np), x)
    if weight is None:
        src = _shape.expand_like(as_operand(1.0, dtype=x.dtype), flat)
    else:
        weight = as_operand(weight)
        if tuple(weight.shape) != tuple(x.shape) or weight.dtype is not x.dtype:
            raise errors.ShapeError("histogram: weight must have input's shape %s and dtype "
                                    "%s, got %s %s" % (core.fmt_shape(x.shape), x.dtype.name,
                                                       core.fmt_shape(weight.shape),
                                                       weight.dtype.name))
        src = _shape.stop_gradient(_shape.reshape(weight, (-1,)))
    hist = _shape.scatter_add(counts, 0, position, src)[:n_bins]
    if density:
        hist = hist / (sum(hist) * diff(edges))
    return Histogram(hist, edges)


def _bin_edges(x, flat, bins, limits):
    """bins + 1 equally spaced edges over limits, or over flat's own range, as
    torch.histogram places them (torch.linspace's arithmetic, in x's dtype)."""
    E = _elementwise
    if limits is not None:
        lo, hi = (float(v) for v in limits)
        if not lo <= hi:
            raise ValueError("histogram: range's minimum %r must not exceed its maximum %r"
                             % (lo, hi))
        lo, hi = as_operand(lo, dtype=x.dtype), as_operand(hi, dtype=x.dtype)
    elif flat.shape[0] == 0:
        lo, hi = as_operand(0.0, dtype=x.dtype), as_operand(1.0, dtype=x.dtype)
    else:
        lo, hi = amin(flat), amax(flat)
        if not flat.symbolic and not np.isfinite([lo.item(), hi.item()]).all():
            raise ValueError("histogram: the range of input, [%s, %s], is not finite: give "
                             "range" % (lo.item(), hi.item()))
    same = E.equal(lo, hi)
    lo, hi = E.where(same, lo - 0.5, lo), E.where(same, hi + 0.5, hi)
    # torch.linspace: from the start up to the middle, from the end down after it
    place = core.constant_like(np.arange(bins + 1, dtype=x.dtype.np), x)
    step = (hi - lo) / float(bins)
    return E.where(E.less(place, float((bins + 1) // 2)), lo + step * place,
                   hi - step * (float(bins) - place))


def cumulative_trapezoid(y, x=None, *, dx=None, axis=-1):
    """The trapezoidal rule's running integrals along axis (one fewer than the samples), as
    torch.cumulative_trapezoid: samples y at points x (1-D along the axis, or of y's rank),
    or spaced dx apart (1 by default)."""
    y = as_operand(y)
    if x is not None and dx is not None:
        raise TypeError("cumulative_trapezoid: give x or dx, not both")
    ax = normalize_axis(axis, len(y.shape), "cumulative_trapezoid")
    lead = (slice(None),) * ax
    pairs = y[lead + (slice(1, None),)] + y[lead + (slice(None, -1),)]
    if x is None:
        return cumsum(pairs * ((1.0 if dx is None else dx) / 2.0), ax)
    widths = _sample_widths(x, y, ax, axis, "cumulative_trapezoid")
    return cumsum(widths / 2.0 * pairs, ax)


def renorm(x, p, axis, maxnorm):
    """x with each slice along axis (x.select(axis, i)) whose p-norm exceeds maxnorm scaled
    to that norm, as torch.renorm (its factor maxnorm / (norm + 1e-7)); the gradient goes
    through the norm too, as torch's."""
    E = _elementwise
    x = as_operand(x)
    if not x.dtype.is_float:
        raise errors.DTypeError("renorm: x must be float32 or float64, got %s %s"
                                % (x.dtype.name, core.fmt_shape(x.shape)))
    if len(x.shape) < 2:
        raise errors.ShapeError("renorm: x needs at least 2 dims, got %s"
                                % core.fmt_shape(x.shape))
    if isinstance(p, str) or not p > 0:
        raise ValueError("renorm: p must be a positive number, got %r" % (p,))
    if not maxnorm >= 0:
        raise ValueError("renorm: maxnorm must be >= 0, got %r" % (maxnorm,))
    ax = normalize_axis(axis, len(x.shape), "renorm")
    size = norm(x, p, tuple(i for i in range(len(x.shape)) if i != ax), keepdims=True)
    factor = E.where(E.greater(size, float(maxnorm)), float(maxnorm) / (size + 1e-7), 1.0)
    return x * factor


__all__ += ["searchsorted", "histogram", "cumulative_trapezoid", "renorm"]
