"""Shape and layout ops: reshape (a view), transpose, indexing and slicing, concatenation,
broadcasting and its inverse (sum_to_like), dtype casts.

Ops that need another value's shape but not its data take it as a shape-only input
(`shape_inputs`): the graph compiler keeps no buffer alive for it. That keeps gradients exact
when the batch size is unknown until run time.
"""
import builtins
import math

import numpy as np

from .. import errors
from ..dtypes import as_dtype
from . import core
from .core import Op, ShapeMismatch, Spec, apply, as_operand, fmt_shape, normalize_axes, \
    normalize_axis
from . import elementwise as _elementwise  # noqa: E402 (siblings: read at call time)
from . import reduction as _reduction  # noqa: E402 (siblings: read at call time)

__all__ = ["reshape", "flatten", "squeeze", "expand_dims", "transpose", "permute",
           "getitem", "take", "concat", "stack", "broadcast_to", "sum_to_like", "expand_like",
           "cast", "split", "clone"]


# ---------------------------------------------------------------------------------------------
# reshape: a view, free in eager mode and an alias in compiled plans

class Reshape(Op):
    name = "reshape"
    view = True

    def infer(self, specs, attrs):
        x = specs[0]
        target = list(attrs["shape"])
        if target.count(-1) > 1:
            raise ShapeMismatch("only one dimension of the new shape may be -1: %s" % (target,))
        if x.shape and None in x.shape:
            # unknown batch: keep the batch dim symbolic when the reshape keeps it first
            known = math.prod(d for d in x.shape if d is not None)
            if -1 in target:
                rest = math.prod(d for d in target if d != -1)
                if target[0] == -1:
                    return [Spec((None,) + tuple(target[1:]), x.dtype)]
                if rest and known % rest == 0:
                    target[target.index(-1)] = None
                return [Spec(tuple(target), x.dtype)]
            return [Spec(tuple(target), x.dtype)]
        n = math.prod(x.shape)
        if -1 in target:
            rest = math.prod(d for d in target if d != -1)
            if rest == 0 or n % rest:
                raise ShapeMismatch("cannot reshape %s (%d elements) to %s"
                                    % (fmt_shape(x.shape), n, tuple(attrs["shape"])))
            target[target.index(-1)] = n // rest
        if math.prod(target) != n:
            raise ShapeMismatch("cannot reshape %s (%d elements) to %s (%d elements)"
                                % (fmt_shape(x.shape), n, tuple(target), math.prod(target)))
        return [Spec(tuple(target), x.dtype)]

    def grad(self, ctx, g):
        return (reshape_like(g, ctx.inputs[0]),)


_reshape = core.register(Reshape)


class ReshapeLike(Op):
    """Reshape to another value's shape (known only at run time in graphs)."""

    name = "reshape_like"
    inputs = ("x", "like")
    view = True
    shape_inputs = (1,)

    def infer(self, specs, attrs):
        x, like = specs
        if None not in x.shape + like.shape and math.prod(x.shape) != math.prod(like.shape):
            raise ShapeMismatch("cannot reshape %s to %s" % (fmt_shape(x.shape),
                                                             fmt_shape(like.shape)))
        return [Spec(like.shape, x.dtype)]

    def grad(self, ctx, g):
        return reshape_like(g, ctx.inputs[0]), None


_reshape_like = core.register(ReshapeLike)


def reshape(x, *shape):
    x = as_operand(x)
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    shape = tuple(int(d) for d in shape)
    if tuple(x.shape) == shape:
        return x
    return apply(_reshape, [x], {"shape": shape})


def reshape_like(x, like):
    if tuple(x.shape) == tuple(like.shape) and None not in tuple(x.shape):
        return x
    return apply(_reshape_like, [x, like])


def flatten(x, start_dim=1):
    """Collapse dims from start_dim on: (N, C, H, W) -> (N, C*H*W)."""
    x = as_operand(x)
    # a 0-d tensor flattens like a 1-d one (as in PyTorch): start_dim 0 or -1
    start = normalize_axis(start_dim, builtins.max(len(x.shape), 1), "flatten", "start_dim")
    if start == 0:
        return reshape(x, (-1,))
    lead, rest = tuple(x.shape[:start]), tuple(x.shape[start:])
    if None in rest:
        if None in lead:
            raise errors.ShapeError("flatten: cannot flatten %s with more than one unknown dim"
                                    % fmt_shape(x.shape))
        return reshape(x, lead + (-1,))
    return reshape(x, tuple(-1 if d is None else d for d in lead) + (math.prod(rest),))


def squeeze(x, axis=None):
    x = as_operand(x)
    shape = list(x.shape)
    if axis is None:
        new = [d for d in shape if d != 1]
    else:
        axes = normalize_axes(axis, len(shape), "squeeze")
        for a in axes:
            if shape[a] != 1:
                raise errors.ShapeError("squeeze: dim %d of %s is not 1" % (a, fmt_shape(shape)))
        new = [d for i, d in enumerate(shape) if i not in axes]
    return reshape(x, tuple(-1 if d is None else d for d in new))


def expand_dims(x, axis):
    x = as_operand(x)
    shape = list(x.shape)
    shape.insert(normalize_axis(axis, len(shape), "expand_dims", new_axis=True), 1)
    return reshape(x, tuple(-1 if d is None else d for d in shape))


# ---------------------------------------------------------------------------------------------
# transpose / permute: one strided copy

class Permute(Op):
    name = "permute"

    def infer(self, specs, attrs):
        x = specs[0]
        perm = attrs["perm"]
        if sorted(perm) != list(range(len(x.shape))):
            raise ShapeMismatch("permutation %s does not fit %d dims" % (perm, len(x.shape)))
        return [Spec(tuple(x.shape[p] for p in perm), x.dtype)]

    def forward(self, k, ins, outs, attrs):
        x = ins[0]
        perm = attrs["perm"]
        src_strides = core.contiguous_strides(x.shape)
        k.run("copy", [x.desc(outs[0].shape, [src_strides[p] for p in perm])], [outs[0].desc()])

    def grad(self, ctx, g):
        perm = ctx.attrs["perm"]
        inverse = [0] * len(perm)
        for i, p in enumerate(perm):
            inverse[p] = i
        return (permute(g, inverse),)


_permute = core.register(Permute)


def permute(x, *perm):
    x = as_operand(x)
    if len(perm) == 1 and isinstance(perm[0], (tuple, list)):
        perm = perm[0]
    perm = normalize_axes(tuple(perm), len(x.shape), "permute", "perm")
    if perm == tuple(range(len(x.shape))):
        return x
    return apply(_permute, [x], {"perm": perm})


def transpose(x, axis0=-2, axis1=-1):
    """Swap two axes (the last two by default: a tensor of rank < 2 is then its own
    transpose, as numpy's .T)."""
    x = as_operand(x)
    nd = len(x.shape)
    if nd < 2 and (axis0, axis1) == (-2, -1):
        return x
    perm = list(range(nd))
    a = normalize_axis(axis0, nd, "transpose", "axis0")
    b = normalize_axis(axis1, nd, "transpose", "axis1")
    perm[a], perm[b] = perm[b], perm[a]
    return permute(x, perm)


# ---------------------------------------------------------------------------------------------
# broadcasting and its inverse

class ExpandLike(Op):
    """Broadcast x to the shape of `like` (numpy rules), as one strided copy."""

    name = "expand_like"
    inputs = ("x", "like")
    shape_inputs = (1,)

    def infer(self, specs, attrs):
        x, like = specs
        out = core.broadcast_shapes(x.shape, like.shape)
        if len(out) != len(like.shape) or any(
                a is not None and b is not None and a != b for a, b in zip(out, like.shape)):
            raise ShapeMismatch("cannot broadcast %s to %s" % (fmt_shape(x.shape),
                                                               fmt_shape(like.shape)))
        return [Spec(like.shape, x.dtype)]

    def forward(self, k, ins, outs, attrs):
        broadcast_strides = _elementwise.broadcast_strides

        shape = outs[0].shape
        k.run("copy", [ins[0].desc(shape, broadcast_strides(ins[0].shape, shape))],
              [outs[0].desc()])

    def grad(self, ctx, g):
        return sum_to_like(g, ctx.inputs[0]), None


_expand_like = core.register(ExpandLike)


class SumToLike(Op):
    """Sum x over the dims that broadcasting added or stretched, to the shape of `like`."""

    name = "sum_to_like"
    inputs = ("x", "like")
    shape_inputs = (1,)

    def infer(self, specs, attrs):
        x, like = specs
        if len(like.shape) > len(x.shape):
            raise ShapeMismatch("cannot sum %s down to %s" % (fmt_shape(x.shape),
                                                              fmt_shape(like.shape)))
        return [Spec(like.shape, x.dtype)]

    @staticmethod
    def axes(x_shape, like_shape):
        lead = len(x_shape) - len(like_shape)
        axes = list(range(lead))
        for i, d in enumerate(like_shape):
            if d == 1 and x_shape[lead + i] != 1:
                axes.append(lead + i)
        return tuple(axes)

    def forward(self, k, ins, outs, attrs):
        lower_reduce = _reduction.lower_reduce

        x = ins[0]
        axes = self.axes(x.shape, outs[0].shape)
        lower_reduce(k, x, outs[0], axes, "sum")

    def grad(self, ctx, g):
        return expand_like(g, ctx.inputs[0]), None


_sum_to_like = core.register(SumToLike)


def expand_like(x, like):
    if tuple(x.shape) == tuple(like.shape) and None not in tuple(x.shape):
        return x
    return apply(_expand_like, [x, like])


def clone(x):
    """A copy in its own memory that stays on the tape: gradients flow through it (as
    PyTorch's clone); detach() is what cuts the graph. x broadcast to its own shape is exactly
    one strided copy whose gradient is the incoming one."""
    x = as_operand(x)
    return apply(_expand_like, [x, x])


def sum_to_like(x, like):
    """The gradient of broadcasting: sum x back down to like's shape."""
    if tuple(x.shape) == tuple(like.shape) and None not in tuple(x.shape):
        return x
    if None not in tuple(x.shape) + tuple(like.shape) and \
            not SumToLike.axes(x.shape, like.shape) and math.prod(x.shape) == math.prod(like.shape):
        return reshape_like(x, like)
    return apply(_sum_to_like, [x, like])


class BroadcastTo(Op):
    """x broadcast to a shape given by the user (numpy rules), as one strided copy."""

    name = "broadcast_to"

    def infer(self, specs, attrs):
        x = specs[0]
        shape = tuple(attrs["shape"])
        out = core.broadcast_shapes(x.shape, shape)
        if out != shape:
            raise ShapeMismatch("cannot broadcast %s to %s" % (fmt_shape(x.shape),
                                                               fmt_shape(shape)))
        return [Spec(shape, x.dtype)]

    forward = ExpandLike.forward

    def grad(self, ctx, g):
        return (sum_to_like(g, ctx.inputs[0]),)


_broadcast_to = core.register(BroadcastTo)


def broadcast_to(x, shape):
    """x broadcast to shape (a copy; numpy rules)."""
    x = as_operand(x)
    shape = tuple(int(d) for d in shape)
    if tuple(x.shape) == shape:
        return x
    return apply(_broadcast_to, [x], {"shape": shape})


# ---------------------------------------------------------------------------------------------
# casts

class Cast(Op):
    name = "cast"

    def infer(self, specs, attrs):
        return [Spec(specs[0].shape, as_dtype(attrs["dtype"]))]

    def forward(self, k, ins, outs, attrs):
        k.run("cast", [ins[0].desc()], [outs[0].desc()])

    def grad(self, ctx, g):
        x = ctx.inputs[0]
        if not x.dtype.is_float:
            return (None,)
        return (cast(g, x.dtype),)


_cast = core.register(Cast)


def cast(x, dtype):
    x = as_operand(x)
    dtype = as_dtype(dtype)
    if x.dtype is dtype:
        return x
    return apply(_cast, [x], {"dtype": dtype.name})


# ---------------------------------------------------------------------------------------------
# indexing: basic slices are one strided copy; integer arrays along one axis are a gather

class Slice(Op):
    """x[starts:stops:steps] on every dim (steps may be negative), then dims dropped."""

    name = "slice"

    def infer(self, specs, attrs):
        x = specs[0]
        if len(attrs["slices"]) != len(x.shape):     # (a graph file's slice of another rank)
            raise ShapeMismatch("%d slices for %d dims" % (len(attrs["slices"]), len(x.shape)))
        shape = []
        for d, (start, stop, step) in enumerate(attrs["slices"]):
            n = x.shape[d]
            if n is None:
                if (start, stop, step) != (None, None, 1):
                    raise ShapeMismatch("cannot slice the unknown batch dimension in a graph")
                shape.append(None)
                continue
            shape.append(len(range(*slice(start, stop, step).indices(n))))
        drop = set(attrs["drop"])
        return [Spec(tuple(s for i, s in enumerate(shape) if i not in drop), x.dtype)]

    @staticmethod
    def strided_view(in_shape, slices):
        """(offset in elements, full sliced shape, strides) of the slice of a contiguous array."""
        strides = core.contiguous_strides(in_shape)
        offset, shape, st = 0, [], []
        for d, (start, stop, step) in enumerate(slices):
            r = range(*slice(start, stop, step).indices(in_shape[d]))
            if len(r):
                offset += r.start * strides[d]
            shape.append(len(r))
            st.append(strides[d] * step)
        return offset, shape, st

    def forward(self, k, ins, outs, attrs):
        x = ins[0]
        offset, shape, strides = self.strided_view(x.shape, attrs["slices"])
        if math.prod(shape) == 0:
            return
        k.run("copy", [x.desc(shape, strides, offset)], [outs[0].desc(shape)])

    def grad(self, ctx, g):
        return (apply(_slice_grad, [g, ctx.inputs[0]], ctx.attrs),)


_slice = core.register(Slice)


class SliceGrad(Op):
    """Zeros shaped like x with g written into the slice: the gradient of Slice."""

    name = "slice_grad"
    inputs = ("grad", "like")
    shape_inputs = (1,)

    def infer(self, specs, attrs):
        return [Spec(specs[1].shape, specs[0].dtype)]

    def forward(self, k, ins, outs, attrs):
        out = outs[0]
        k.run("fill", [], [out.desc()], (), (0.0,))
        offset, shape, strides = Slice.strided_view(out.shape, attrs["slices"])
        if math.prod(shape) == 0:
            return
        k.run("copy", [ins[0].desc(shape)], [out.desc(shape, strides, offset)], (1,))

    def grad(self, ctx, gg):
        return apply(_slice, [gg], ctx.attrs), None


_slice_grad = core.register(SliceGrad)


class Take(Op):
    """Gather along one axis by integer indices: x.take(indices, axis)."""

    name = "take"
    inputs = ("x", "indices")

    def infer(self, specs, attrs):
        x, idx = specs
        if idx.dtype.is_float:
            raise errors.DTypeError("indices must be int32 or int64, got %s" % idx.dtype.name)
        axis = normalize_axis(attrs["axis"], len(x.shape), self.name)
        return [Spec(tuple(x.shape[:axis]) + tuple(idx.shape) + tuple(x.shape[axis + 1:]),
                     x.dtype)]

    def forward(self, k, ins, outs, attrs):
        x, idx = ins
        axis = attrs["axis"]
        view = (math.prod(x.shape[:axis]), x.shape[axis], math.prod(x.shape[axis + 1:]))
        k.run("take", [x.desc(view), idx.desc()], [outs[0].desc()])

    def grad(self, ctx, g):
        return apply(_take_grad, [ctx.inputs[1], g, ctx.inputs[0]], ctx.attrs), None


_take = core.register(Take)


class TakeGrad(Op):
    name = "take_grad"
    inputs = ("indices", "grad", "like")
    shape_inputs = (2,)

    def infer(self, specs, attrs):
        return [Spec(specs[2].shape, specs[1].dtype)]

    def forward(self, k, ins, outs, attrs):
        idx, g = ins[0], ins[1]
        out = outs[0]
        axis = attrs["axis"]
        view = (math.prod(out.shape[:axis]), out.shape[axis], math.prod(out.shape[axis + 1:]))
        k.run("take_grad", [idx.desc(), g.desc()], [out.desc(view)])

    def grad(self, ctx, gg):
        return None, apply(_take, [gg, ctx.inputs[0]], ctx.attrs), None


_take_grad = core.register(TakeGrad)


def take(x, indices, axis=0):
    """Elements of x at integer indices along axis (negative indices count from the end)."""
    x = as_operand(x)
    axis = normalize_axis(axis, len(x.shape), "take")
    if not hasattr(indices, "symbolic"):
        arr = np.asarray(indices)
        if arr.dtype.kind == "b":      # a mask, as numpy reads it (not indices 0 and 1)
            if arr.shape != (x.shape[axis],):
                raise errors.IndexOutOfRange("a boolean mask of shape %s for an axis of size %s"
                                             % (arr.shape, x.shape[axis]))
            arr = np.flatnonzero(arr)
        elif arr.dtype.kind not in "iu" and arr.size:
            raise IndexError("indices must be integers, got %s" % arr.dtype)
        indices = as_operand(arr if arr.dtype.kind == "i" else arr.astype(np.int64))
    if not indices.symbolic and x.shape[axis] is not None:
        n = x.shape[axis]
        arr = indices._data
        if arr.size and (arr.min() < -n or arr.max() >= n):
            bad = arr[(arr < -n) | (arr >= n)].flat[0]
            raise errors.IndexOutOfRange("index %d is out of range for axis %d of size %d"
                                         % (bad, axis, n))
        if arr.size and arr.min() < 0:
            indices = core.Tensor._wrap(np.where(arr < 0, arr + n, arr), indices.dtype)
    return apply(_take, [x, indices], {"axis": axis})


def getitem(x, key):
    """numpy-style basic indexing (ints, slices, None, Ellipsis) and one integer-array index."""
    x = as_operand(x)
    if not isinstance(key, tuple):
        key = (key,)
    # expand Ellipsis
    n_real = builtins.sum(1 for k in key if k is not None and k is not Ellipsis)
    if builtins.sum(1 for k in key if k is Ellipsis) > 1:
        raise IndexError("an index can only have a single ellipsis")
    expanded = []
    for k in key:
        if k is Ellipsis:
            expanded.extend([slice(None)] * (len(x.shape) - n_real))
        else:
            expanded.append(k)
    key = expanded
    if builtins.sum(1 for k in key if k is not None) > len(x.shape):
        raise IndexError("too many indices for a tensor of shape %s" % fmt_shape(x.shape))
    slices, drop, new_axes, array_index = [], [], [], None
    dim = 0
    out_pos = 0
    for k in key:
        if k is None:
            new_axes.append(out_pos)
            out_pos += 1
            continue
        n = x.shape[dim]
        if isinstance(k, (int, np.integer)) and not isinstance(k, bool):
            k = int(k)
            if n is not None and not -n <= k < n:
                raise errors.IndexOutOfRange("index %d is out of range for dim %d of size %d"
                                             % (k, dim, n))
            if n is None and k < 0:
                raise IndexError("negative index into the unknown batch dimension")
            k = k % n if n is not None else k
            slices.append((k, k + 1, 1))
            drop.append(dim)
        elif isinstance(k, slice):
            if k.step == 0:
                raise ValueError("slice step cannot be zero")
            slices.append((k.start, k.stop, 1 if k.step is None else k.step))
            out_pos += 1
        else:
            if array_index is not None:
                raise IndexError("only one integer-array index is supported")
            array_index = (dim, k)
            slices.append((None, None, 1))
            out_pos += 1
        dim += 1
    while dim < len(x.shape):
        slices.append((None, None, 1))
        dim += 1
        out_pos += 1
    y = x
    if any(s != (None, None, 1) for s in slices) or drop:
        y = apply(_slice, [x], {"slices": tuple(slices), "drop": tuple(drop)})
    if array_index is not None:
        adim = array_index[0] - builtins.sum(1 for d in drop if d < array_index[0])
        y = take(y, array_index[1], axis=adim)
    for pos in new_axes:
        y = expand_dims(y, pos)
    return y


# ---------------------------------------------------------------------------------------------
# concatenation

class Concat(Op):
    name = "concat"
    inputs = ("x",)

    def infer(self, specs, attrs):
        first = specs[0]
        axis = normalize_axis(attrs["axis"], len(first.shape), self.name)
        total = 0
        for s in specs:
            if len(s.shape) != len(first.shape):
                raise ShapeMismatch("inputs have different numbers of dims")
            if s.dtype is not first.dtype:
                raise errors.DTypeError("inputs have dtypes %s and %s" % (first.dtype.name,
                                                                         s.dtype.name))
            for d, (a, b) in enumerate(zip(s.shape, first.shape)):
                if d != axis and a is not None and b is not None and a != b:
                    raise ShapeMismatch("sizes differ in dim %d (only the concatenation axis %d "
                                        "may differ)" % (d, axis))
            total = None if total is None or s.shape[axis] is None else total + s.shape[axis]
        shape = list(first.shape)
        shape[axis] = total
        return [Spec(tuple(shape), first.dtype)]

    def forward(self, k, ins, outs, attrs):
        axis = attrs["axis"]
        out = outs[0]
        strides = core.contiguous_strides(out.shape)
        offset = 0
        for x in ins:
            if x.size:
                k.run("copy", [x.desc()], [out.desc(x.shape, strides, offset * strides[axis])])
            offset += x.shape[axis]

    def grad(self, ctx, g):
        axis = ctx.attrs["axis"]
        grads, start = [], 0
        for x, need in zip(ctx.inputs, ctx.needs):
            size = x.shape[axis]
            if need:
                slices = [(None, None, 1)] * len(g.shape)
                slices[axis] = (start, start + size, 1)
                grads.append(apply(_slice, [g], {"slices": tuple(slices), "drop": ()}))
            else:
                grads.append(None)
            start += size
        return tuple(grads)


_concat = core.register(Concat)


def concat(tensors, axis=0):
    tensors = [as_operand(t) for t in tensors]
    if not tensors:
        raise ValueError("concat needs at least one tensor")
    axis = normalize_axis(axis, len(tensors[0].shape), "concat")
    if len(tensors) == 1:
        return tensors[0]
    if len(tensors) > 16:
        return concat([concat(tensors[i:i + 16], axis) for i in range(0, len(tensors), 16)],
                      axis)
    return apply(_concat, tensors, {"axis": axis})


def stack(tensors, axis=0):
    tensors = [as_operand(t) for t in tensors]
    if not tensors:
        raise ValueError("stack needs at least one tensor")
    axis = normalize_axis(axis, len(tensors[0].shape), "stack", new_axis=True)
    return concat([expand_dims(t, axis) for t in tensors], axis)


def split(x, sizes, axis=0):
    """Split along axis into pieces of the given sizes (or into `sizes` equal pieces)."""
    x = as_operand(x)
    axis = normalize_axis(axis, len(x.shape), "split")
    n = x.shape[axis]
    if n is None:
        raise errors.ShapeError("split: cannot split the unknown dim %d of %s"
                                % (axis, fmt_shape(x.shape)))
    if _is_int(sizes):
        if sizes < 1 or n % sizes:
            raise errors.ShapeError("split: dim %d of size %d is not divisible into %d parts"
                                    % (axis, n, sizes))
        sizes = [n // sizes] * sizes
    sizes = list(sizes)
    if not all(_is_int(s) and s >= 0 for s in sizes) or builtins.sum(sizes) != n:
        raise errors.ShapeError("split: sizes %s must be non-negative ints that add up to the "
                                "size %d of dim %d" % (sizes, n, axis))
    out, start = [], 0
    for s in sizes:
        key = [slice(None)] * len(x.shape)
        key[axis] = slice(start, start + s)
        out.append(getitem(x, tuple(key)))
        start += s
    return out


def _is_int(v):
    return hasattr(v, "__index__") and not isinstance(v, bool)
