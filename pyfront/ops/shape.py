"""Shape and layout ops: reshape (a view), transpose, indexing and slicing, concatenation,
broadcasting and its inverse (sum_to_like), dtype casts.

Ops that need another value's shape but not its data take it as a shape-only input
(`shape_inputs`): the graph compiler keeps no buffer alive for it. That keeps gradients exact
when the batch size is unknown until run time.
"""
import builtins
import functools
import math

import numpy as np

from .. import errors
from ..backend import cpu
from ..dtypes import as_dtype, result_type
from . import core
from .core import Op, ShapeMismatch, Spec, apply, as_operand, check_shape, fmt_shape, \
    normalize_axes, normalize_axis
from . import elementwise as _elementwise  # noqa: E402 (siblings: read at call time)
from . import reduction as _reduction  # noqa: E402 (siblings: read at call time)

__all__ = ["reshape", "flatten", "squeeze", "expand_dims", "transpose", "permute",
           "getitem", "take", "concat", "stack", "broadcast_to", "sum_to_like", "expand_like",
           "cast", "split", "clone", "array_split", "chunk", "unbind", "flip", "roll", "tile",
           "repeat", "repeat_interleave", "tril", "triu", "diagonal", "diag", "meshgrid",
           "gather", "take_along_axis", "scatter", "scatter_add", "index_select", "masked_fill",
           "pad", "cat", "setitem"]


# ---------------------------------------------------------------------------------------------
# reshape: a view, free in eager mode and an alias in compiled plans

class Reshape(Op):
    name = "reshape"
    retain_inputs = retain_outputs = ()       # shapes only
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


class StopGradient(Op):
    """x itself, a constant to differentiation (TensorFlow's stop_gradient, MXNet's BlockGrad):
    what Tensor.detach() and Symbol.detach() make in graphs, so a traced detach cuts the
    gradient as the eager one does. A view: no copy, no step in a compiled plan."""

    name = "stop_gradient"
    retain_inputs = retain_outputs = ()
    view = True
    differentiable = False

    def infer(self, specs, attrs):
        return [Spec(specs[0].shape, specs[0].dtype)]


_stop_gradient = core.register(StopGradient)


def stop_gradient(x):
    """x's values, through which no gradient flows (eager or in a graph)."""
    return apply(_stop_gradient, [as_operand(x)])


class ReshapeLike(Op):
    """Reshape to another value's shape (known only at run time in graphs)."""

    name = "reshape_like"
    retain_inputs = retain_outputs = ()       # shapes only
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


def flatten(x, start_dim=1, end_dim=-1):
    """Collapse dims start_dim..end_dim (both included): (N, C, H, W) -> (N, C*H*W). The
    default start_dim=1 keeps the batch dim (Keras' Flatten, torch.nn.Flatten);
    torch.flatten's default is 0: pass start_dim=0 to flatten everything. end_dim (-1, the
    last dim, by default) is torch.flatten's."""
    x = as_operand(x)
    # a 0-d tensor flattens like a 1-d one (as in PyTorch): start_dim 0 or -1
    nd = builtins.max(len(x.shape), 1)
    try:
        start = normalize_axis(start_dim, nd, "flatten", "start_dim")
        end = normalize_axis(end_dim, nd, "flatten", "end_dim")
    except errors.AxisError as e:     # the rank says less than the shape to a layer's user
        raise errors.AxisError("%s; x is %s" % (e, fmt_shape(x.shape))) from None
    if start > end:
        raise errors.ShapeError("%s: start_dim %d comes after end_dim %d for x %s"
                                % (core.located("flatten"), start_dim, end_dim,
                                   fmt_shape(x.shape)))
    if end < len(x.shape) - 1:
        # the dims after end_dim stay: flatten the front part, then put them back
        shape = tuple(x.shape)
        middle = shape[start:end + 1]
        size = None if None in middle else math.prod(middle)
        new = shape[:start] + (size,) + shape[end + 1:]
        if new.count(None) > 1:
            raise errors.ShapeError("flatten: cannot flatten %s with more than one unknown dim"
                                    % fmt_shape(x.shape))
        return reshape(x, tuple(-1 if d is None else d for d in new))
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
    elif not shape:
        # PyTorch: a 0-d tensor squeezes to itself along dim 0 or -1
        normalize_axes(axis, 1, "squeeze")
        return x
    else:
        # PyTorch's rule: a named dim whose size is not 1 stays (squeeze(x, 0) of a (2, 3) x
        # is x). An unknown one (a graph's batch) is refused: whether it is 1, and so the
        # result's rank, is only known when the graph runs.
        axes = normalize_axes(axis, len(shape), "squeeze")
        for a in axes:
            if shape[a] is None:
                raise errors.ShapeError("squeeze: dim %d of %s is unknown; squeezing it would "
                                        "give a rank that depends on the data"
                                        % (a, fmt_shape(shape)))
        axes = [a for a in axes if shape[a] == 1]
        if not axes:
            return x
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
    retain_inputs = retain_outputs = ()       # shapes only

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


def permute(x, *perm, dims=None):
    """x with its axes in the order perm (ints, or one tuple; PyTorch's dims= keyword too)."""
    x = as_operand(x)
    if dims is not None:
        if perm:
            raise TypeError("permute: got the order both positionally and as dims=")
        perm = (dims,)
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
    retain_inputs = retain_outputs = ()       # shapes only
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
    retain_inputs = retain_outputs = ()       # shapes only
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
    retain_inputs = retain_outputs = ()       # shapes only

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
    retain_inputs = retain_outputs = ()       # the dtype only

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
    retain_inputs = retain_outputs = ()       # shapes only

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
        g, like = specs
        check_shape("grad", g.shape, _slice.infer([like], attrs)[0].shape)
        return [Spec(like.shape, g.dtype)]

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
    retain_inputs, retain_outputs = (1,), ()       # the indices
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
        idx, g, like = specs
        normalize_axis(attrs["axis"], len(like.shape), self.name)     # named as this op
        check_shape("grad", g.shape, _take.infer([like, idx], attrs)[0].shape)
        return [Spec(like.shape, g.dtype)]

    def forward(self, k, ins, outs, attrs):
        idx, g = ins[0], ins[1]
        out = outs[0]
        axis = attrs["axis"]
        view = (math.prod(out.shape[:axis]), out.shape[axis], math.prod(out.shape[axis + 1:]))
        k.run("take_grad", [idx.desc(), g.desc()], [out.desc(view)])

    def grad(self, ctx, gg):
        return None, apply(_take, [gg, ctx.inputs[0]], ctx.attrs), None


_take_grad = core.register(TakeGrad)


def take(x, indices, axis=None):
    """Elements of x at integer indices along axis (negative indices count from the end); with
    no axis, of x flattened (NumPy's np.take and PyTorch's torch.take)."""
    x = as_operand(x)
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    axis = normalize_axis(axis, len(x.shape), "take")
    made = not hasattr(indices, "symbolic")     # numpy or lists: ours to place on x's device
    if made:
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
    if made:
        indices = core.constant_like(indices, x)
    return apply(_take, [x, indices], {"axis": axis})


def getitem(x, key):
    """numpy indexing: basic (ints, slices, None, Ellipsis) as one strided copy; advanced
    (integer arrays, several of them broadcast together, and boolean masks) as numpy does,
    by a gather of the flat positions numpy's own indexing picks; integers next to arrays
    select their dims first, as PyTorch's (x[0, :, i, j] keeps i and j's dims in place).
    Integer arrays may be graph values (pf.jit) when x's shape is known; a boolean mask
    needs its values (eager, or a constant)."""
    x = as_operand(x)
    if not isinstance(key, tuple):
        key = (key,)
    if any(getattr(k, "symbolic", False) and k.dtype.name == "bool" for k in key):
        # pf.jit falls back to eager for this signature, with its warning
        raise errors.TraceError("getitem: a boolean mask in a graph selects a number "
                                "of elements known only from its values (use where or "
                                "masked_fill to keep the shape)")
    flat = _flat_positions(x, key, "getitem")
    if flat is not None:
        return take(reshape(x, (-1,)), flat, 0)
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
        y = take(y, _wrap_negative(array_index[1], y.shape[adim]), axis=adim)
    for pos in new_axes:
        y = expand_dims(y, pos)
    return y


def _int_key(k):
    """Whether an index part is one integer (a basic index, not an array)."""
    return isinstance(k, (int, np.integer)) and not isinstance(k, bool)


def _index_array(k):
    """The numpy array an advanced index part stands for, or None for a basic part."""
    if k is None or k is Ellipsis or isinstance(k, slice) or (
            isinstance(k, (int, np.integer)) and not isinstance(k, bool)):
        return None
    if hasattr(k, "symbolic"):
        if k.symbolic:
            return None
        return k.numpy()
    return np.asarray(k)


def _wrap_negative(indices, n):
    """Index values known only as a graph value, with numpy's negative indices counted from
    the end of a dim of size n (eager values are wrapped by take itself). An index below -n
    stays negative, so the take kernel still refuses it at run time."""
    if not getattr(indices, "symbolic", False) or n is None:
        return indices
    return _elementwise.where(_elementwise.less(indices, 0), indices + n, indices)


def _flat_positions(x, key, op, always=False):
    """The flat positions of x that numpy's x[key] picks, in its result's shape, when key
    needs more than basic indexing and one integer array (or when always); else None. A
    numpy array, or a graph value when some index arrays are graph values themselves."""
    arrays = [_index_array(k) for k in key]
    advanced = [a for a in arrays if a is not None]
    n_symbolic = builtins.sum(1 for k in key if getattr(k, "symbolic", False))
    if not always and not n_symbolic and (
            not advanced or (len(advanced) == 1 and advanced[0].dtype.kind != "b")):
        return None
    if not always and n_symbolic == 1 and not advanced:
        return None                  # one integer array: getitem's take along its axis
    if (n_symbolic and None not in tuple(x.shape)
            and not any(getattr(k, "symbolic", False) and k.dtype.name == "bool" for k in key)):
        return _symbolic_positions(x, key, op)
    if n_symbolic or None in tuple(x.shape):
        raise errors.ShapeError("%s: boolean masks need known values, and several index arrays "
                                "a known shape, got x %s" % (op, fmt_shape(x.shape)))
    for a in advanced:
        if a.dtype.kind not in "iub" and a.size:
            raise IndexError("%s: arrays used as indices must be integers or booleans, got %s"
                             % (op, a.dtype))
    np_key = tuple(k if a is None else (a if a.dtype.kind == "b" else a.astype(np.int64))
                   for k, a in zip(key, arrays))
    positions = np.arange(math.prod(x.shape), dtype=np.int64).reshape(x.shape)
    try:
        if advanced and any(_int_key(k) for k in key):
            # integers select their dims away before the arrays index, as in PyTorch (NumPy
            # counts them among the arrays: x[0, :, i, j] would put i and j's dims first)
            ints = tuple(k if _int_key(k) or k is Ellipsis else slice(None)
                         for k, a in zip(key, arrays) if k is not None
                         for _ in range(a.ndim if a is not None and a.dtype.kind == "b" else 1))
            positions = positions[ints]
            np_key = tuple(k for k in np_key if not _int_key(k))
        return np.ascontiguousarray(positions[np_key])
    except IndexError as e:
        raise errors.IndexOutOfRange("%s: the index arrays or boolean mask do not fit a tensor "
                                     "of shape %s: %s" % (op, fmt_shape(x.shape), e)) from None


def _symbolic_positions(x, key, op):
    """_flat_positions for a key whose integer index arrays include graph values (pf.jit,
    hybridize, declarative graphs) on an x of known shape: x's table of flat positions, cut
    by the key's basic parts, is gathered at the linear index the arrays make together, laid
    out as eager indexing does (the arrays' broadcast dims in place when the arrays are
    adjacent in the key, first otherwise; integers select their dims away first, as
    PyTorch's do). Each graph-valued array reaches the linear index through a take of its
    dim's strides, so an index out of range is refused at run time instead of landing on
    another element; integers and constant arrays are checked now."""
    shape = tuple(x.shape)

    def constant_array(k):
        a = _index_array(k)
        if a.dtype.kind not in "iub" and a.size:
            raise IndexError("%s: arrays used as indices must be integers or booleans, got %s"
                             % (op, a.dtype))
        return a

    def width(k):      # dims of x a key part uses
        if k is None or k is Ellipsis:
            return 0
        if isinstance(k, slice) or getattr(k, "symbolic", False) or _int_key(k):
            return 1
        a = constant_array(k)
        return a.ndim if a.dtype.kind == "b" else 1
    used = builtins.sum(width(k) for k in key)
    if used > len(shape):
        raise IndexError("%s: too many indices for a tensor of shape %s" % (op, fmt_shape(shape)))
    parts = []     # ("new", None), ("basic", slice), ("int", i) or ("array", values)
    for k in key:
        if k is Ellipsis:
            parts.extend([("basic", slice(None))] * (len(shape) - used))
        elif k is None:
            parts.append(("new", None))
        elif isinstance(k, slice):
            parts.append(("basic", k))
        elif _int_key(k):
            n = shape[builtins.sum(1 for kind, _ in parts if kind != "new")]
            if not -n <= k < n:
                raise errors.IndexOutOfRange("%s: index %d is out of range for a dim of size %d"
                                             % (op, k, n))
            parts.append(("int", int(k)))
        elif getattr(k, "symbolic", False):
            parts.append(("array", k))
        else:
            a = constant_array(k)
            if a.dtype.kind == "b" and not a.ndim:
                raise IndexError("%s: a 0-d boolean index next to index arrays that are graph "
                                 "values is not supported" % op)
            if a.dtype.kind == "b":    # numpy reads a mask as the index arrays of its Trues
                dim = builtins.sum(1 for kind, _ in parts if kind != "new")
                if a.shape != shape[dim:dim + a.ndim]:
                    raise errors.IndexOutOfRange(
                        "%s: a boolean mask of shape %s does not fit dims %d.. of a tensor of "
                        "shape %s" % (op, a.shape, dim, fmt_shape(shape)))
                parts.extend(("array", i) for i in np.nonzero(a))
            else:
                parts.append(("array", a.astype(np.int64)))
    basic_key, adv_dims, sizes, arrays = [], [], [], []
    out_dim = x_dim = 0
    for kind, v in parts:
        if kind == "array":
            adv_dims.append(out_dim)
            sizes.append(shape[x_dim])
            arrays.append(v)
        basic_key.append(v if kind != "array" else slice(None))
        out_dim += kind != "int"
        x_dim += kind != "new"
    # an integer selects its dim away first, as PyTorch's does: it neither joins the arrays'
    # broadcast nor separates them (x[0, :, i, j] keeps i and j adjacent)
    kinds = [kind for kind, _ in parts if kind != "int"]
    first = kinds.index("array")
    adjacent = builtins.all(k == "array" for k in kinds[first:first + len(arrays)])
    table = np.arange(math.prod(shape), dtype=np.int64).reshape(shape)[tuple(basic_key)]
    table = np.moveaxis(table, adv_dims, range(len(arrays)))
    rest = table.shape[len(arrays):]
    table = np.ascontiguousarray(table.reshape((math.prod(sizes),) + rest))
    strides = [math.prod(sizes[i + 1:]) for i in range(len(sizes))]
    linear = None
    for a, n, stride in zip(arrays, sizes, strides):
        if getattr(a, "symbolic", False):
            if a.dtype.is_float or a.dtype.name == "bool":
                raise IndexError("%s: arrays used as indices must be integers, got %s"
                                 % (op, a.dtype.name))
            term = take(core.constant_like(np.arange(n, dtype=np.int64) * stride, x),
                        _wrap_negative(a, n), 0)
        else:
            if a.size and (a.min() < -n or a.max() >= n):
                bad = a[(a < -n) | (a >= n)].flat[0]
                raise errors.IndexOutOfRange("%s: index %d is out of range for a dim of size %d"
                                             % (op, bad, n))
            term = core.constant_like(np.where(a < 0, a + n, a) * stride, x)
        linear = term if linear is None else linear + term
    positions = take(core.constant_like(table, x), linear, 0)
    lead = len(linear.shape)
    if adjacent and adv_dims[0]:
        positions = movedim(positions, tuple(range(lead)),
                            tuple(range(adv_dims[0], adv_dims[0] + lead)))
    return positions


def _mask_assignment(x, key, value):
    """x[mask] = value as where(mask, value, x) when mask is a boolean tensor over x's leading
    dims and value fits the remaining dims: no index values are needed, so this also works
    while a graph is built (a symbolic mask). None when the key is anything else."""
    if isinstance(key, tuple):
        if len(key) != 1:
            return None
        key = key[0]
    if not (hasattr(key, "symbolic") and key.dtype.name == "bool"):
        return None
    k = len(key.shape)
    if k > len(x.shape) or any(a is not None and b is not None and a != b
                               for a, b in zip(key.shape, x.shape)):
        return None
    value = as_operand(value, like=x)
    if len(value.shape) > len(x.shape) - k:
        return None
    if value.dtype is not x.dtype:
        value = cast(value, x.dtype)
    mask = reshape(key, tuple(-1 if d is None else d for d in key.shape)
                   + (1,) * (len(x.shape) - k)) if k < len(x.shape) else key
    return _elementwise.where(mask, value, x)


def _batch_wide_assignment(x, key, value):
    """x[key] = value on a graph value whose batch dim is unknown: possible when the key
    takes the whole batch (its first part is `:` or `...`) and value is one number, as
    where(mask, value, x) with a constant mask over the other dims."""
    value = as_operand(value, like=x)
    first = key[0] if key else Ellipsis
    whole_batch = first is Ellipsis or (isinstance(first, slice) and first == slice(None))
    if (x.shape[0] is not None or None in tuple(x.shape[1:])
            or not whole_batch or any(k is None or getattr(k, "symbolic", False) for k in key)
            or any(d != 1 for d in value.shape)):
        raise errors.ShapeError(
            "setitem: on a graph value of shape %s (unknown batch dim) x[key] = value needs a "
            "key that takes the whole batch (x[:, ...] or x[..., j]) and a single-number value "
            "(got value of shape %s), or a boolean mask" % (fmt_shape(x.shape),
                                                             fmt_shape(value.shape)))
    mask = np.zeros((1,) + tuple(x.shape[1:]), dtype=bool)
    try:
        mask[tuple(k.numpy() if hasattr(k, "numpy") else k for k in key)] = True
    except IndexError as e:
        raise errors.IndexOutOfRange("setitem: the key does not fit a tensor of shape %s: %s"
                                     % (fmt_shape(x.shape), e)) from None
    if value.dtype is not x.dtype:
        value = cast(value, x.dtype)
    return _elementwise.where(as_operand(mask), reshape(value, ()), x)


def setitem(x, key, value):
    """x with x[key] = value (value broadcast to the indexed shape), as a new value: a scatter
    of the flat positions x[key] picks. Gradients flow to value and to the untouched elements
    of x. Tensor.__setitem__ is this, written back into the tensor."""
    x = as_operand(x)
    masked = _mask_assignment(x, key, value)
    if masked is not None:
        return masked
    if not isinstance(key, tuple):
        key = (key,)
    if None in tuple(x.shape):
        return _batch_wide_assignment(x, key, value)
    flat = _flat_positions(x, key, "setitem", always=True)
    value = as_operand(value, like=x)
    if value.dtype is not x.dtype:
        value = cast(value, x.dtype)
    value = reshape(broadcast_to(value, flat.shape), (-1,))
    out = scatter(reshape(x, (-1,)), 0, flat.reshape(-1), value)
    return reshape(out, tuple(x.shape))


# ---------------------------------------------------------------------------------------------
# concatenation

class Concat(Op):
    name = "concat"
    retain_inputs = retain_outputs = ()       # shapes only
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
    for i, t in enumerate(tensors):
        if not t.shape:
            raise errors.ShapeError("concat: tensor %d is 0-d and has no axis to join along "
                                    "(stack makes a 1-d tensor of 0-d ones)" % i)
    axis = normalize_axis(axis, len(tensors[0].shape), "concat")
    if any(t.dtype is not tensors[0].dtype for t in tensors):
        # mixed dtypes join in the one the promotion rule gives them, as in PyTorch
        dt = functools.reduce(result_type, [t.dtype for t in tensors])
        tensors = [t if t.dtype is dt else t.astype(dt) for t in tensors]
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


def split(x, split_size_or_sections, axis=0):
    """PyTorch's split: an int is the size of each piece (the last one smaller when the size
    does not divide), a list gives every piece's size. numpy's split (a number of equal
    pieces, or split points) is pf.array_split; pf.chunk takes a number of pieces."""
    x = as_operand(x)
    axis = normalize_axis(axis, len(x.shape), "split")
    n = _known_dim(x, axis, "split")
    sizes = split_size_or_sections
    if _is_int(sizes):
        if sizes < 1 and not (sizes == 0 and n == 0):
            raise errors.ShapeError("split: the piece size must be at least 1, got %d" % sizes)
        sizes = [builtins.min(sizes, n - s) for s in range(0, n, sizes)] if n else [0]
    sizes = list(sizes)
    if not all(_is_int(s) and s >= 0 for s in sizes) or builtins.sum(sizes) != n:
        raise errors.ShapeError("split: sizes %s must be non-negative ints that add up to the "
                                "size %d of dim %d" % (sizes, n, axis))
    return _pieces(x, sizes, axis)


def _is_int(v):
    return hasattr(v, "__index__") and not isinstance(v, bool)


# ---------------------------------------------------------------------------------------------
# more of the shape family: chunking, flipping, rolling, tiling, triangles, diagonals

def array_split(x, sections, axis=0):
    """numpy's array_split: `sections` pieces as equal as possible (the first ones one larger),
    or a list of split points. pf.split is PyTorch's meaning (pieces of a given size)."""
    x = as_operand(x)
    axis = normalize_axis(axis, len(x.shape), "array_split")
    n = _known_dim(x, axis, "array_split")
    if _is_int(sections):
        if sections < 1:
            raise errors.ShapeError("array_split: sections must be at least 1, got %d" % sections)
        each, extra = divmod(n, sections)
        sizes = [each + 1] * extra + [each] * (sections - extra)
    else:
        points = [0] + [builtins.min(builtins.max(int(p), 0), n) for p in sections] + [n]
        sizes = [builtins.max(b - a, 0) for a, b in zip(points, points[1:])]
    return _pieces(x, sizes, axis)


def chunk(x, chunks, axis=0):
    """PyTorch's chunk: at most `chunks` pieces of ceil(n / chunks) elements (the last may be
    smaller, and fewer pieces come back when the size does not allow `chunks`)."""
    x = as_operand(x)
    axis = normalize_axis(axis, len(x.shape), "chunk")
    n = _known_dim(x, axis, "chunk")
    if not _is_int(chunks) or chunks < 1:
        raise errors.ShapeError("chunk: chunks must be a positive int, got %r" % (chunks,))
    each = builtins.max(-(-n // chunks), 1)
    # a dim of size 0 gives `chunks` empty pieces, as PyTorch's
    return _pieces(x, [builtins.min(each, n - s) for s in range(0, n, each)] or [0] * chunks,
                   axis)


def unbind(x, axis=0):
    """The slices of x along axis, each without that axis (PyTorch's unbind)."""
    x = as_operand(x)
    axis = normalize_axis(axis, len(x.shape), "unbind")
    n = _known_dim(x, axis, "unbind")
    key = [slice(None)] * axis
    return [getitem(x, tuple(key + [i])) for i in range(n)]


def _known_dim(x, axis, op):
    n = x.shape[axis]
    if n is None:
        raise errors.ShapeError("%s: cannot split the unknown dim %d of %s"
                                % (op, axis, fmt_shape(x.shape)))
    return n


def _pieces(x, sizes, axis):
    out, start = [], 0
    for s in sizes:
        out.append(_axis_slice(x, axis, start, start + s))
        start += s
    return out


def _axis_slice(x, axis, start, stop, step=1):
    slices = [(None, None, 1)] * len(x.shape)
    slices[axis] = (start, stop, step)
    return apply(_slice, [x], {"slices": tuple(slices), "drop": ()})


def flip(x, axis=None):
    """x reversed along the given axes (all by default; PyTorch's flip(dims), numpy's flip)."""
    x = as_operand(x)
    if not x.shape:     # PyTorch: a 0-d tensor flips to itself along dim 0 or -1
        normalize_axes(axis, 1, "flip")
        return x
    axes = normalize_axes(axis, len(x.shape), "flip")
    if not axes:
        return x
    slices = [(None, None, -1) if d in axes else (None, None, 1) for d in range(len(x.shape))]
    return apply(_slice, [x], {"slices": tuple(slices), "drop": ()})


def roll(x, shifts, axis=None):
    """Elements shifted along axis with wrap-around (numpy/PyTorch roll); axis None rolls the
    flattened tensor and restores the shape."""
    x = as_operand(x)
    if axis is None:
        return reshape_like(roll(reshape(x, (-1,)), shifts, 0), x) if x.shape else x
    axes = normalize_axes(axis, len(x.shape), "roll")
    shifts = (shifts,) * len(axes) if _is_int(shifts) else tuple(shifts)
    if len(shifts) != len(axes):
        raise errors.ShapeError("roll: %d shifts for %d axes" % (len(shifts), len(axes)))
    for a, s in zip(axes, shifts):
        n = _known_dim(x, a, "roll")
        s = s % n if n else 0
        if s:
            x = concat([_axis_slice(x, a, n - s, n), _axis_slice(x, a, 0, n - s)], a)
    return x


def tile(x, reps):
    """numpy's tile (PyTorch's Tensor.repeat): x repeated reps[i] times along dim i; reps
    longer than x's rank prepend dims, shorter reps repeat only the last dims."""
    x = as_operand(x)
    reps = (reps,) if _is_int(reps) else tuple(reps)
    if any(not _is_int(r) or r < 0 for r in reps):
        raise errors.ShapeError("tile: reps must be non-negative ints, got %r" % (reps,))
    nd = builtins.max(len(reps), len(x.shape))
    reps = (1,) * (nd - len(reps)) + reps
    shape = (1,) * (nd - len(x.shape)) + tuple(x.shape)
    if None in shape:
        raise errors.ShapeError("tile: the shape %s must be known" % fmt_shape(x.shape))
    interleaved = builtins.sum(((1, d) for d in shape), ())
    expanded = builtins.sum(((r, d) for r, d in zip(reps, shape)), ())
    y = broadcast_to(reshape(x, interleaved), expanded)
    return reshape(y, tuple(r * d for r, d in zip(reps, shape)))


def repeat(x, *sizes):
    """PyTorch's Tensor.repeat(*sizes) = numpy's tile (the whole tensor repeated). numpy's
    repeat (each element repeated) is pf.repeat_interleave."""
    if len(sizes) == 1 and not _is_int(sizes[0]):
        sizes = tuple(sizes[0])
    x = as_operand(x)
    if len(sizes) < len(x.shape):
        raise errors.ShapeError("repeat: %d sizes for a tensor of rank %d (PyTorch needs at "
                                "least one per dim; pf.tile repeats the last dims)"
                                % (len(sizes), len(x.shape)))
    return tile(x, sizes)


def repeat_interleave(x, repeats, axis=None):
    """numpy's repeat (PyTorch's repeat_interleave): each element repeated `repeats` times
    (an int or one count per element) along axis; axis None flattens first."""
    x = as_operand(x)
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    axis = normalize_axis(axis, len(x.shape), "repeat_interleave")
    n = _known_dim(x, axis, "repeat_interleave")
    counts = np.asarray(repeats.numpy() if hasattr(repeats, "numpy") else repeats)
    if counts.ndim == 0:
        counts = np.full(n, int(counts))
    if counts.shape != (n,) or (counts < 0).any():
        raise errors.ShapeError("repeat_interleave: repeats must be one non-negative count or "
                                "%d of them (one per element of dim %d), got shape %s"
                                % (n, axis, counts.shape))
    return take(x, np.repeat(np.arange(n), counts), axis)


def _triangle(x, k, lower, op):
    x = as_operand(x)
    if len(x.shape) < 2 or None in x.shape[-2:]:
        raise errors.ShapeError("%s: needs a tensor of rank >= 2 with known last dims, got %s"
                                % (op, fmt_shape(x.shape)))
    rows, cols = x.shape[-2:]
    keep = np.tri(rows, cols, k, dtype=bool) if lower else ~np.tri(rows, cols, k - 1, dtype=bool)
    return _elementwise.where(_mask_constant(keep), x, as_operand(0, dtype=x.dtype))  # dtype kept


def _mask_constant(mask):
    """A constant condition for where: bool where pyfront has it, else int32 0/1."""
    try:
        return as_operand(mask, dtype="bool")
    except TypeError:
        return as_operand(mask.astype(np.int32))


def tril(x, k=0):
    """The lower triangle of the last two dims (elements above diagonal k zeroed)."""
    return _triangle(x, k, True, "tril")


def triu(x, k=0):
    """The upper triangle of the last two dims (elements below diagonal k zeroed)."""
    return _triangle(x, k, False, "triu")


def diagonal(x, offset=0, axis1=0, axis2=1):
    """The diagonal of the (axis1, axis2) planes as the last dim (numpy/PyTorch diagonal)."""
    x = as_operand(x)
    nd = len(x.shape)
    a = normalize_axis(axis1, nd, "diagonal", "axis1")
    b = normalize_axis(axis2, nd, "diagonal", "axis2")
    if a == b:
        raise errors.ShapeError("diagonal: axis1 and axis2 are both %d" % a)
    rest = [d for d in range(nd) if d not in (a, b)]
    y = permute(x, rest + [a, b])
    rows, cols = y.shape[-2:]
    if None in (rows, cols):
        raise errors.ShapeError("diagonal: the dims %d and %d of %s must be known"
                                % (a, b, fmt_shape(x.shape)))
    i = np.arange(builtins.max(0, builtins.min(rows - builtins.max(-offset, 0),
                                               cols - builtins.max(offset, 0))))
    flat = (i + builtins.max(-offset, 0)) * cols + i + builtins.max(offset, 0)
    lead = tuple(-1 if d is None else d for d in y.shape[:-2])
    return take(reshape(y, lead + (rows * cols,)), flat, len(lead))


def diag(x, k=0):
    """1-D x: a square matrix with x on diagonal k; 2-D x: its diagonal k (as numpy/PyTorch)."""
    x = as_operand(x)
    if len(x.shape) == 2:
        return diagonal(x, k, 0, 1)
    if len(x.shape) != 1 or x.shape[0] is None:
        raise errors.ShapeError("diag: needs a 1-D or 2-D tensor, got %s" % fmt_shape(x.shape))
    n = x.shape[0]
    size = n + builtins.abs(k)
    # every cell reads x or the appended zero at position n
    index = np.full((size, size), n, dtype=np.int64)
    i = np.arange(n)
    index[i + builtins.max(-k, 0), i + builtins.max(k, 0)] = i
    padded = concat([x, core.constant_like(np.zeros(1, x.dtype.np), x)], 0)
    return take(padded, index, 0)


def meshgrid(*tensors, indexing="ij"):
    """Coordinate grids from 1-D (or 0-d) tensors; indexing "ij" (PyTorch's default, matrix) or "xy"
    (numpy's default, Cartesian: the first two dims swapped). Say which: the two libraries'
    defaults differ."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    if indexing not in ("ij", "xy"):
        raise ValueError("meshgrid: indexing must be 'ij' or 'xy', got %r" % (indexing,))
    # a 0-d input is a grid axis of one point, as in PyTorch
    tensors = [reshape(t, (1,)) if not t.shape else t for t in map(as_operand, tensors)]
    for t in tensors:
        if len(t.shape) != 1:
            raise errors.ShapeError("meshgrid: inputs must be 1-D (or 0-d), got %s"
                                    % fmt_shape(t.shape))
    sizes = [t.shape[0] for t in tensors]
    swap = indexing == "xy" and len(tensors) >= 2
    if swap:
        sizes[0], sizes[1] = sizes[1], sizes[0]
    out = []
    for i, t in enumerate(tensors):
        pos = {0: 1, 1: 0}.get(i, i) if swap else i
        view = [1] * len(tensors)
        view[pos] = sizes[pos]
        out.append(broadcast_to(reshape(t, tuple(view)), tuple(sizes)))
    return out


# ---------------------------------------------------------------------------------------------
# gather and scatter along an axis (native kernels; indices may be negative)

def _oki(shape, axis):
    return (math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:]))


def _check_index_spec(idx, op):
    if idx.dtype.name not in ("int32", "int64"):
        raise errors.DTypeError("%s: indices must be int32 or int64, got %s"
                                % (op, idx.dtype.name))


def _same_but_axis(a, b, axis, what):
    if len(a) != len(b) or any(d != axis and p is not None and q is not None and p != q
                               for d, (p, q) in enumerate(zip(a, b))):
        raise ShapeMismatch("%s %s must match %s %s in every dim%s"
                            % (what[0], fmt_shape(a), what[1], fmt_shape(b),
                               "" if axis < 0 else " but the axis %d" % axis))


class Gather(Op):
    """y[..., k, ...] = x[..., idx[..., k, ...], ...] along one axis (take_along_axis)."""

    name = "gather"
    retain_inputs, retain_outputs = (1,), ()       # the indices
    inputs = ("x", "indices")

    def infer(self, specs, attrs):
        x, idx = specs
        _check_index_spec(idx, self.name)
        axis = normalize_axis(attrs["axis"], len(x.shape), self.name)
        _same_but_axis(idx.shape, x.shape, axis, ("indices", "x"))
        return [Spec(tuple(idx.shape), x.dtype)]

    def forward(self, k, ins, outs, attrs):
        x, idx = ins
        axis = attrs["axis"]
        o, n, i = _oki(x.shape, axis)
        view = (o, idx.shape[axis], i)
        k.run("gather_axis", [x.desc((o, n, i)), idx.desc(view)], [outs[0].desc(view)])

    def grad(self, ctx, g):
        return apply(_gather_grad, [ctx.inputs[1], g, ctx.inputs[0]], ctx.attrs), None


_gather = core.register(Gather)


class GatherGrad(Op):
    """Zeros shaped like x with g added at the gathered positions (repeats add up)."""

    name = "gather_grad"
    inputs = ("indices", "grad", "like")
    shape_inputs = (2,)

    def infer(self, specs, attrs):
        idx, g, like = specs
        _check_index_spec(idx, self.name)
        axis = normalize_axis(attrs["axis"], len(like.shape), self.name)
        _same_but_axis(idx.shape, like.shape, axis, ("indices", "x"))
        _same_but_axis(g.shape, idx.shape, -1, ("grad", "indices"))
        return [Spec(like.shape, g.dtype)]

    def forward(self, k, ins, outs, attrs):
        idx, g = ins[0], ins[1]
        out = outs[0]
        o, n, i = _oki(out.shape, attrs["axis"])
        view = (o, idx.shape[attrs["axis"]], i)
        k.run("gather_axis_grad", [idx.desc(view), g.desc(view)], [out.desc((o, n, i))])

    def grad(self, ctx, gg):
        return None, apply(_gather, [gg, ctx.inputs[0]], ctx.attrs), None


_gather_grad = core.register(GatherGrad)


class Scatter(Op):
    """A copy of x with src written (scatter) or added (scatter_add) at idx along one axis."""

    inputs = ("x", "indices", "src")
    add = False

    def infer(self, specs, attrs):
        x, idx, src = specs
        _check_index_spec(idx, self.name)
        axis = normalize_axis(attrs["axis"], len(x.shape), self.name)
        _same_but_axis(idx.shape, x.shape, axis, ("indices", "x"))
        _same_but_axis(src.shape, idx.shape, -1, ("src", "indices"))
        if src.dtype is not x.dtype:
            raise errors.DTypeError("src is %s but x is %s" % (src.dtype.name, x.dtype.name))
        return [Spec(x.shape, x.dtype)]

    def forward(self, k, ins, outs, attrs):
        x, idx, src = ins
        out = outs[0]
        o, n, i = _oki(x.shape, attrs["axis"])
        view = (o, idx.shape[attrs["axis"]], i)
        if x.size:
            k.run("copy", [x.desc()], [out.desc()])
        k.run("scatter_axis", [idx.desc(view), src.desc(view)], [out.desc((o, n, i))],
              (int(self.add),))

    def grad(self, ctx, g):
        idx = ctx.inputs[1]
        g_src = apply(_gather, [g, idx], ctx.attrs)
        g_x = None
        if ctx.needs[0]:
            # assigned positions lost x's value: their gradient is zero
            g_x = g if self.add else apply(_scatter, [g, idx, g_src * 0.0], ctx.attrs)
        return g_x, None, g_src if ctx.needs[2] else None


class ScatterAssign(Scatter):
    name = "scatter"


class ScatterAdd(Scatter):
    name = "scatter_add"
    add = True


_scatter = core.register(ScatterAssign)
_scatter_add = core.register(ScatterAdd)


def _index_operand(indices, op, x):
    """Tensors as given; numpy or lists as int32/int64 constants on x's device."""
    if hasattr(indices, "symbolic"):
        return indices
    arr = np.asarray(indices)
    if arr.dtype.kind not in "iu" and arr.size:
        raise errors.DTypeError("%s: indices must be integers, got %s" % (op, arr.dtype))
    return core.constant_like(arr.astype(np.int64) if arr.dtype != np.int32 else arr, x)


def gather(x, axis, indices):
    """PyTorch's gather(input, dim, index): out[i][j] = x[idx[i][j]][j] for dim 0, and so on.
    indices may be smaller than x in the other dims (x is cut to them), never larger."""
    x = as_operand(x)
    indices = _index_operand(indices, "gather", x)
    if not x.shape and not indices.shape:
        # PyTorch gathers a 0-d tensor along dim 0 or -1, as a one-element 1-d one
        normalize_axis(axis, 1, "gather")
        return reshape(gather(reshape(x, (1,)), 0, reshape(indices, (1,))), ())
    axis = normalize_axis(axis, len(x.shape), "gather")
    if len(indices.shape) != len(x.shape):
        raise errors.ShapeError("gather: indices %s must have the rank of x %s"
                                % (fmt_shape(indices.shape), fmt_shape(x.shape)))
    cut = tuple(slice(None) if d == axis or q is None or p == q else slice(0, q)
                for d, (p, q) in enumerate(zip(x.shape, indices.shape)))
    if any(s != slice(None) for s in cut):
        if any(q is not None and p is not None and q > p
               for d, (p, q) in enumerate(zip(x.shape, indices.shape)) if d != axis):
            raise errors.ShapeError("gather: indices %s are larger than x %s outside the axis %d"
                                    % (fmt_shape(indices.shape), fmt_shape(x.shape), axis))
        x = getitem(x, cut)
    return apply(_gather, [x, indices], {"axis": axis})


def take_along_axis(x, indices, axis):
    """numpy's take_along_axis (indices broadcast against x outside the axis); axis=None
    takes from x flattened, as numpy's and PyTorch's take_along_dim without a dim."""
    x = as_operand(x)
    indices = _index_operand(indices, "take_along_axis", x)
    if axis is None:
        x, indices, axis = reshape(x, (-1,)), reshape(indices, (-1,)), 0
    axis = normalize_axis(axis, len(x.shape), "take_along_axis")
    if len(indices.shape) != len(x.shape):
        raise errors.ShapeError("take_along_axis: indices %s must have the rank of x %s"
                                % (fmt_shape(indices.shape), fmt_shape(x.shape)))
    try:
        shape = core.broadcast_shapes(tuple(d for k, d in enumerate(x.shape) if k != axis),
                                      tuple(d for k, d in enumerate(indices.shape) if k != axis))
    except ShapeMismatch:
        raise errors.ShapeError("take_along_axis: indices %s do not broadcast against x %s "
                                "outside the axis %d" % (fmt_shape(indices.shape),
                                                         fmt_shape(x.shape), axis)) from None
    full_x = shape[:axis] + (x.shape[axis],) + shape[axis:]
    full_i = shape[:axis] + (indices.shape[axis],) + shape[axis:]
    if None not in full_x and tuple(x.shape) != full_x:
        x = broadcast_to(x, full_x)
    if None not in full_i and tuple(indices.shape) != full_i:
        indices = broadcast_to(indices, full_i)
    return apply(_gather, [x, indices], {"axis": axis})


def _scatter_call(op, x, axis, indices, src, name):
    x = as_operand(x)
    indices = _index_operand(indices, name, x)
    axis = normalize_axis(axis, len(x.shape), name)
    src = as_operand(src, like=x)
    ishape, xshape, sshape = tuple(indices.shape), tuple(x.shape), tuple(src.shape)
    known = None not in ishape + xshape + sshape and len(ishape) == len(xshape)
    if known and len(sshape) == len(ishape) and sshape != ishape and \
            all(i <= s for i, s in zip(ishape, sshape)):
        # PyTorch reads src only where the indices are: a larger src is cut to them
        src = getitem(src, tuple(slice(0, i) for i in ishape))
    elif sshape != ishape and None not in ishape:
        src = broadcast_to(src, indices.shape)
    if known and any(i < n for d, (i, n) in enumerate(zip(ishape, xshape)) if d != axis) and \
            all(i <= n for d, (i, n) in enumerate(zip(ishape, xshape)) if d != axis):
        # indices shorter than x outside the axis write only the leading block of x there
        # (PyTorch's rule): scatter into that block, and put it back in place of x's
        block = tuple(slice(None) if d == axis else slice(0, i) for d, i in enumerate(ishape))
        return setitem(x, block, apply(op, [getitem(x, block), indices, src], {"axis": axis}))
    return apply(op, [x, indices, src], {"axis": axis})


def scatter(x, axis, indices, src=None, value=None, *, reduce=None):
    """PyTorch's scatter(input, dim, index, src): a copy of x with src[i][j] written at
    [idx[i][j]][j] (dim 0), and so on; src (or value=, PyTorch's name for a number) may be a
    number (cast to x's dtype, as PyTorch's value=) or a tensor of x's dtype broadcast to the
    indices' shape. indices match x outside the axis. Repeated indices: one of the writes wins.
    reduce="add" adds src instead (scatter_add), reduce="multiply" multiplies x by it
    (repeated indices multiply up, in the indices' order, as PyTorch's loop does). PyTorch
    has no gradient for the reduce forms; here they are compositions and differentiable."""
    if (src is None) == (value is None):
        raise TypeError("scatter: give src or value (one of them)")
    src = value if src is None else src
    x = as_operand(x)
    src = as_operand(src, dtype=x.dtype) if type(src) in (int, float, bool) else \
        as_operand(src, like=x)
    if reduce is None:
        return _scatter_call(_scatter, x, axis, indices, src, "scatter")
    if reduce == "add":
        return _scatter_call(_scatter_add, x, axis, indices, src, "scatter")
    if reduce != "multiply":
        raise ValueError("scatter: reduce must be None, 'add' or 'multiply', got %r"
                         % (reduce,))
    # multiply: one factor per position along the axis. In slice j of the indices every
    # position of x is written at most once (its coordinates off the axis pick it), so
    # scattering that slice into ones gives exact factors, applied in the order of j.
    indices = _index_operand(indices, "scatter", x)
    ax = normalize_axis(axis, len(x.shape), "scatter")
    n = _known_dim(indices, ax, "scatter")
    if tuple(src.shape) != tuple(indices.shape) and None not in tuple(indices.shape):
        if len(src.shape) == len(indices.shape) and all(
                i is not None and s is not None and i <= s
                for i, s in zip(indices.shape, src.shape)):
            src = getitem(src, tuple(slice(0, i) for i in indices.shape))
        else:
            src = broadcast_to(src, tuple(indices.shape))
    ones = expand_like(core.constant_like(1, x, dtype=x.dtype), x)
    for j in range(n):
        factor = _scatter_call(_scatter, ones, ax, _axis_slice(indices, ax, j, j + 1),
                               _axis_slice(src, ax, j, j + 1), "scatter")
        x = x * factor
    return x


def scatter_add(x, axis, indices, src):
    """PyTorch's scatter_add: as scatter, but src is added (repeated indices add up)."""
    return _scatter_call(_scatter_add, x, axis, indices, src, "scatter_add")


def index_select(x, axis, indices):
    """PyTorch's index_select(input, dim, index): whole slices along axis (= take); a 0-d
    index selects one slice and keeps the dim, as PyTorch's."""
    indices = as_operand(indices)
    if len(indices.shape) == 0:
        indices = reshape(indices, (1,))
    return take(x, indices, axis)


def masked_fill(x, mask, value):
    """x with `value` where mask is true (mask broadcast against x); the result keeps x's
    dtype, as PyTorch's (value is cast to it: 1.7 into an int64 tensor is 1)."""
    x = as_operand(x)
    value = as_operand(value, like=x)
    if value.dtype is not x.dtype:
        value = value.astype(x.dtype)
    return _elementwise.where(as_operand(mask), value, x)


# ---------------------------------------------------------------------------------------------
# pad: constant, reflect, replicate, circular; native copies in both directions

PAD_MODES = ("constant", "reflect", "replicate", "circular")


class Pad(Op):
    """x padded by (begin, end) per dim. Non-constant modes fill the border from the interior
    one axis after another, each pass over the extent the previous ones produced (so corners
    come out as PyTorch's)."""

    name = "pad"
    retain_inputs = retain_outputs = ()       # shapes only

    def infer(self, specs, attrs):
        x = specs[0]
        pads = attrs["pads"]
        if len(pads) != len(x.shape):
            raise ShapeMismatch("%d (begin, end) pairs for a tensor of rank %d"
                                % (len(pads), len(x.shape)))
        out = []
        for d, (n, (b, e)) in enumerate(zip(x.shape, pads)):
            if n is None:
                if (b, e) != (0, 0):
                    raise ShapeMismatch("cannot pad the unknown dim %d" % d)
                out.append(None)
                continue
            limit = {"reflect": n - 1, "circular": n, "replicate": None if n else 0}.get(
                attrs["mode"])
            if limit is not None and (b or e) and builtins.max(b, e) > limit:
                raise ShapeMismatch("%s padding of (%d, %d) in dim %d of size %d: at most %d"
                                    % (attrs["mode"], b, e, d, n, limit))
            out.append(n + b + e)
        return [Spec(tuple(out), x.dtype)]

    def forward(self, k, ins, outs, attrs):
        x, out = ins[0], outs[0]
        maps = _pad_maps(tuple(x.shape), attrs["pads"], attrs["mode"])
        k.run("pad", [x.desc(), maps.desc()], [out.desc()],
              (attrs["pads"][-1][0], x.shape[-1]), (attrs["value"],))

    def grad(self, ctx, g):
        if ctx.attrs["mode"] == "constant":
            slices = tuple((b, None if e == 0 else -e, 1) for b, e in ctx.attrs["pads"])
            return (apply(_slice, [g], {"slices": slices, "drop": ()}),)
        return (apply(_pad_grad, [g, ctx.inputs[0]], ctx.attrs),)


_pad = core.register(Pad)
_pad_maps_cache = {}


def _pad_maps(shape, pads, mode):
    """The pad kernel's index maps: for each dim, each output index's source index (-1: the
    constant). Cached: compiled plans keep pointing at their memory."""
    key = (shape, pads, mode)
    maps = _pad_maps_cache.get(key)
    if maps is None:
        parts = []
        for n, (b, e) in zip(shape, pads):
            i = np.arange(-b, n + e)
            if mode == "constant":
                parts.append(np.where((i >= 0) & (i < n), i, -1))
            elif mode == "reflect":
                i = np.abs(i)
                parts.append(np.where(i >= n, 2 * (n - 1) - i, i))
            elif mode == "replicate":
                parts.append(np.clip(i, 0, n - 1))
            else:
                parts.append(i % n if n else i)
        array = np.ascontiguousarray(np.concatenate(parts), dtype=np.int64)
        maps = cpu.Buf(array, array.shape, as_dtype("int64"))
        if len(_pad_maps_cache) < 1024:
            _pad_maps_cache[key] = maps
    return maps


class PadGrad(Op):
    """The gradient of a non-constant pad: each element of x gets the sum of the gradient at
    every padded position that reads it (the pad's own index maps)."""

    name = "pad_grad"
    inputs = ("grad", "like")
    shape_inputs = (1,)

    def infer(self, specs, attrs):
        g, like = specs
        expect = Pad.infer(self, [like], attrs)[0].shape
        if len(g.shape) != len(expect) or any(
                p is not None and q is not None and p != q for p, q in zip(g.shape, expect)):
            raise ShapeMismatch("grad %s does not match the padded shape %s"
                                % (fmt_shape(g.shape), fmt_shape(expect)))
        return [Spec(like.shape, g.dtype)]

    def forward(self, k, ins, outs, attrs):
        # one pass: each element of x gathers the gradient of every position that read it
        out = outs[0]
        maps = _pad_maps(tuple(out.shape), attrs["pads"], attrs["mode"])
        k.run("pad_grad", [ins[0].desc(), maps.desc()], [out.desc()],
              tuple(b for b, _ in attrs["pads"]))

    def grad(self, ctx, gg):
        return apply(_pad, [gg], ctx.attrs), None


_pad_grad = core.register(PadGrad)


def pad(x, pad, mode="constant", value=0.0):
    """x padded as PyTorch's F.pad: `pad` is a flat sequence of (begin, end) counts starting
    from the LAST dim — (left, right) pads the last dim, (left, right, top, bottom) the last
    two, and so on. numpy's pad_width is also taken: one (begin, end) pair per dim, first dim
    first, given as a sequence of pairs. Modes: constant (with value), reflect (the edge not
    repeated), replicate (the edge repeated), circular (wrap around). In constant mode a
    negative count crops that many elements instead, as PyTorch's."""
    x = as_operand(x)
    nd = len(x.shape)
    if mode not in PAD_MODES:
        raise ValueError("pad: mode must be one of %s, got %r" % (", ".join(PAD_MODES), mode))
    spec = list(pad)
    if spec and all(isinstance(p, (tuple, list)) for p in spec):
        if len(spec) != nd or any(len(p) != 2 for p in spec):
            raise errors.ShapeError("pad: numpy-style pad_width needs %d (begin, end) pairs for "
                                    "a tensor of shape %s, got %r" % (nd, fmt_shape(x.shape), pad))
        pairs = [tuple(p) for p in spec]
    else:
        if len(spec) % 2 or len(spec) // 2 > nd:
            raise errors.ShapeError("pad: PyTorch-style pad needs an even number of counts, at "
                                    "most 2 per dim (%d dims in %s), got %r"
                                    % (nd, fmt_shape(x.shape), pad))
        pairs = [(0, 0)] * nd
        for i in range(len(spec) // 2):
            pairs[nd - 1 - i] = (spec[2 * i], spec[2 * i + 1])
    if not all(_is_int(v) for p in pairs for v in p):
        raise errors.ShapeError("pad: counts must be ints, got %r" % (pad,))
    pairs = tuple((int(b), int(e)) for b, e in pairs)
    if any(v < 0 for p in pairs for v in p):
        if mode != "constant":
            raise errors.ShapeError("pad: negative counts (cropping) are taken in constant mode "
                                    "only, got %r in %s mode" % (pad, mode))
        for d, (b, e) in enumerate(pairs):
            n = x.shape[d]
            if n is not None and n + builtins.min(b, 0) + builtins.min(e, 0) < 0:
                raise errors.ShapeError("pad: counts %r crop more than the %d elements of dim %d "
                                        "of %s" % (pad, n, d, fmt_shape(x.shape)))
        x = getitem(x, tuple(slice(-builtins.min(b, 0), e if e < 0 else None)
                             for b, e in pairs))
        pairs = tuple((builtins.max(b, 0), builtins.max(e, 0)) for b, e in pairs)
    if not any(b or e for b, e in pairs):
        return x
    return apply(_pad, [x], {"pads": pairs, "mode": mode, "value": float(value)})


cat = concat     # PyTorch's name


# ---------------------------------------------------------------------------------------------
# more of PyTorch's and NumPy's shape names, composed of the ops above

def unsqueeze(x, axis):
    """PyTorch's name of expand_dims."""
    return expand_dims(x, axis)


def movedim(x, source, destination):
    """Move the axes `source` to the positions `destination` (ints or sequences), the other
    axes keeping their order (PyTorch's movedim, NumPy's moveaxis)."""
    x = as_operand(x)
    nd = len(x.shape)
    src = normalize_axes(source if isinstance(source, (tuple, list)) else (source,), nd,
                         "movedim", "source")
    dst = normalize_axes(destination if isinstance(destination, (tuple, list))
                         else (destination,), nd, "movedim", "destination")
    if len(src) != len(dst):
        raise errors.ShapeError("movedim: source %r and destination %r differ in length"
                                % (source, destination))
    rest = iter([a for a in range(nd) if a not in src])
    placed = dict(zip(dst, src))
    return permute(x, tuple(placed[i] if i in placed else next(rest) for i in range(nd)))


moveaxis = movedim


def swapaxes(x, axis0, axis1):
    """Swap two axes (NumPy's swapaxes, PyTorch's swapdims)."""
    return transpose(x, axis0, axis1)


swapdims = swapaxes


def narrow(x, axis, start, length):
    """The slice [start, start + length) along axis (PyTorch's narrow)."""
    x = as_operand(x)
    ax = normalize_axis(axis, len(x.shape), "narrow")
    n = x.shape[ax]
    if n is not None:
        if start < 0:
            start += n
        if not (0 <= start and length >= 0 and start + length <= n):
            raise errors.ShapeError("narrow: [%d, %d) is outside axis %d of size %d of x %s"
                                    % (start, start + length, ax, n, fmt_shape(x.shape)))
    return getitem(x, (slice(None),) * ax + (slice(start, start + length),))


def select(x, axis, index):
    """The slice at index along axis, that axis removed (PyTorch's select)."""
    x = as_operand(x)
    ax = normalize_axis(axis, len(x.shape), "select")
    return getitem(x, (slice(None),) * ax + (index,))


def unflatten(x, axis, sizes):
    """Split axis into the dims `sizes` (one may be -1, inferred from the dim's size), as
    torch.unflatten; an unknown dim (the batch) may be split when sizes has no -1."""
    x = as_operand(x)
    shape = tuple(x.shape)
    ax = normalize_axis(axis, len(shape), "unflatten")
    sizes = [int(d) for d in sizes]
    n = shape[ax]
    if n is not None:
        known = math.prod(d for d in sizes if d != -1)
        if (-1 in sizes and (known == 0 or n % known)) or (-1 not in sizes and known != n):
            raise errors.ShapeError("unflatten: cannot unflatten dim %d of size %d of %s into %s"
                                    % (ax, n, fmt_shape(shape), tuple(sizes)))
        if -1 in sizes:
            sizes[sizes.index(-1)] = n // known
    target = list(shape[:ax]) + sizes + list(shape[ax + 1:])
    if builtins.sum(d is None or d == -1 for d in target) > 1:
        raise errors.ShapeError("unflatten: only one dim may be unknown, got %s split into %s"
                                % (fmt_shape(shape), tuple(sizes)))
    return reshape(x, tuple(-1 if d is None else d for d in target))


def atleast_1d(x):
    x = as_operand(x)
    return reshape(x, (1,)) if not x.shape else x


def atleast_2d(x):
    x = as_operand(x)
    return reshape(x, (1, 1)) if not x.shape else expand_dims(x, 0) if len(x.shape) == 1 else x


def atleast_3d(x):
    """NumPy's rule: (n,) -> (1, n, 1), (m, n) -> (m, n, 1)."""
    x = as_operand(x)
    if len(x.shape) >= 3:
        return x
    if len(x.shape) == 2:
        return expand_dims(x, 2)
    return reshape(atleast_1d(x), (1, -1, 1))


def hstack(tensors):
    """Concatenate along axis 1 (axis 0 for 1-D tensors), NumPy's hstack."""
    tensors = [atleast_1d(t) for t in tensors]
    return concat(tensors, 0 if len(tensors[0].shape) == 1 else 1)


def vstack(tensors):
    """Concatenate along axis 0, 1-D tensors as rows."""
    return concat([atleast_2d(t) for t in tensors], 0)


def dstack(tensors):
    """Concatenate along axis 2 (depth), NumPy's dstack."""
    return concat([atleast_3d(t) for t in tensors], 2)


def column_stack(tensors):
    """1-D tensors as columns, 2-D ones as they are, side by side."""
    cols = []
    for t in tensors:
        t = as_operand(t)
        cols.append(reshape(t, (-1, 1)) if len(t.shape) <= 1 else t)
    return concat(cols, 1)


def fliplr(x):
    return flip(x, 1)


def flipud(x):
    return flip(x, 0)


def rot90(x, k=1, axis=(0, 1)):
    """Rotate by 90 degrees k times in the plane of the two axes, from the first toward the
    second (PyTorch's rot90(x, k, dims))."""
    x = as_operand(x)
    a0, a1 = normalize_axes(tuple(axis), len(x.shape), "rot90")
    k %= 4
    if k == 0:
        return x
    if k == 2:
        return flip(x, (a0, a1))
    if k == 1:
        return transpose(flip(x, a1), a0, a1)
    return flip(transpose(x, a0, a1), a1)


def broadcast_shapes(*shapes):
    """The shape the given shapes broadcast to (an error naming them if they do not)."""
    return tuple(core.broadcast_shapes(*[tuple(s) for s in shapes]))


def broadcast_tensors(*tensors):
    """The tensors broadcast to their common shape."""
    tensors = [as_operand(t) for t in tensors]
    shape = broadcast_shapes(*[t.shape for t in tensors])
    return [t if tuple(t.shape) == shape else broadcast_to(t, shape) for t in tensors]


def masked_select(x, mask):
    """The elements of x where mask is true, as a 1-D tensor (mask broadcast against x)."""
    x, mask = broadcast_tensors(x, mask)
    return getitem(x, mask)


def block_diag(*tensors):
    """The 2-D tensors (0-d and 1-D ones as rows) placed along a diagonal, zeros elsewhere."""
    mats = [atleast_2d(t) for t in tensors]
    if any(len(m.shape) != 2 for m in mats):
        raise errors.ShapeError("block_diag takes tensors of at most 2 dims, got %s"
                                % ", ".join(fmt_shape(m.shape) for m in mats))
    total = builtins.sum(m.shape[1] for m in mats)
    rows, left = [], 0
    for m in mats:
        right = total - left - m.shape[1]
        rows.append(pad(m, ((0, 0), (left, right))))
        left += m.shape[1]
    return concat(rows, 0)


def _triangle_indices(row, col, offset, upper):
    r, c = (np.triu_indices if upper else np.tril_indices)(row, offset, col)
    return as_operand(np.stack([r, c]).astype(np.int64))


def tril_indices(row, col, offset=0):
    """The (2, n) int64 row and column indices of the lower triangle of a row x col matrix."""
    return _triangle_indices(row, col, offset, False)


def triu_indices(row, col, offset=0):
    """The (2, n) int64 row and column indices of the upper triangle of a row x col matrix."""
    return _triangle_indices(row, col, offset, True)


def _along(indices, axis, shape):
    """1-D indices along axis, broadcast over the other dims of shape (index_add's form to
    scatter_add's)."""
    indices = as_operand(indices)
    if len(indices.shape) != 1:
        raise errors.ShapeError("the index must be 1-D, got %s" % fmt_shape(indices.shape))
    view = [1] * len(shape)
    view[axis] = -1
    return broadcast_to(reshape(indices, tuple(view)), tuple(shape))


def index_add(x, axis, indices, source, alpha=1):
    """x with alpha * source's slices added at indices along axis (repeats add up)."""
    x, source = as_operand(x), as_operand(source)
    ax = normalize_axis(axis, len(x.shape), "index_add")
    if alpha != 1:
        source = source * alpha
    return scatter_add(x, ax, _along(indices, ax, source.shape), source)


def index_fill(x, axis, indices, value):
    """x with the slices at indices along axis set to value."""
    x, indices = as_operand(x), as_operand(indices)
    ax = normalize_axis(axis, len(x.shape), "index_fill")
    n = x.shape[ax]
    if len(indices.shape) != 1 or n is None:
        raise errors.ShapeError("index_fill: needs 1-D indices and a known axis %d, got "
                                "indices %s and x %s" % (ax, fmt_shape(indices.shape),
                                                         fmt_shape(x.shape)))
    positions = as_operand(np.arange(n, dtype=np.int64).reshape(n, 1))
    wrapped = _elementwise.remainder(indices, n)          # negative indices count from the end
    hit = _reduction.any(_elementwise.equal(positions, reshape(wrapped, (1, -1))), 1)
    view = [1] * len(x.shape)
    view[ax] = n
    return masked_fill(x, reshape(hit, tuple(view)), value)


def nonzero(x, as_tuple=False):
    """The indices of the nonzero elements: an (n, ndim) int64 tensor, or with as_tuple one
    1-D tensor per dim (NumPy's nonzero). Eager only: the count depends on the values, which
    a graph does not know (boolean masks index graphs directly: x[mask])."""
    x = as_operand(x)
    if x.symbolic:
        raise errors.TraceError("nonzero: the number of results depends on the values; in a "
                                "graph index with the mask itself (x[mask]) or use where()")
    values = x.numpy()
    if values.ndim == 0:    # PyTorch: one index into no dims, or none
        hit = bool(values)
        if as_tuple:
            return (as_operand(np.zeros(int(hit), np.int64)),)
        return as_operand(np.zeros((int(hit), 0), np.int64))
    found = np.nonzero(values)
    if as_tuple:
        return tuple(as_operand(i.astype(np.int64)) for i in found)
    return as_operand(np.stack(found, axis=1).astype(np.int64).reshape(-1, len(x.shape)))


def argwhere(x):
    """nonzero(x) as an (n, ndim) tensor."""
    return nonzero(x)


__all__ += ["unsqueeze", "movedim", "moveaxis", "swapaxes", "swapdims", "narrow", "select",
            "unflatten", "atleast_1d", "atleast_2d", "atleast_3d", "hstack", "vstack", "dstack",
            "column_stack", "fliplr", "flipud", "rot90", "broadcast_shapes", "broadcast_tensors",
            "masked_select", "block_diag", "tril_indices", "triu_indices", "index_add",
            "index_fill", "nonzero", "argwhere"]


def embedding(indices, weight):
    """Rows of weight (num_embeddings, dim) at integer indices of any shape (PyTorch's
    F.embedding(input, weight)): take(weight, indices, 0)."""
    return take(weight, indices, 0)


__all__ += ["embedding", "stop_gradient"]


def take_along_dim(x, indices, dim=None):
    """PyTorch's take_along_dim: take_along_axis, from x flattened when dim is None."""
    return take_along_axis(x, indices, dim)


def concatenate(tensors, axis=0):
    """NumPy's name of concat."""
    return concat(tensors, axis)


def ravel(x):
    """x as one dim (a copy, as every reshape here)."""
    return reshape(x, (-1,))


__all__ += ["take_along_dim", "concatenate", "ravel"]


# ---------------------------------------------------------------------------------------------
# more of PyTorch's shape and indexing names (2): splits, embedding diagonals, windows,
# index and slice scatters, scatter_reduce

def t(x):
    """PyTorch's t: a matrix transposed; 0-d and 1-D tensors as they are; more dims refused."""
    x = as_operand(x)
    if len(x.shape) > 2:
        raise errors.ShapeError("t: x %s has %d dims; t transposes tensors of at most 2 (use "
                                "transpose or permute)" % (fmt_shape(x.shape), len(x.shape)))
    return transpose(x, 0, 1) if len(x.shape) == 2 else x


def tensor_split(x, indices_or_sections, axis=0):
    """PyTorch's tensor_split: an int n makes n pieces as equal as possible (the first ones one
    larger); a list of indices splits before each, read as Python slices (x[:i0], x[i0:i1],
    ..., x[ik:]). A 0-d integer tensor counts as the int, a 1-D one as the list."""
    x = as_operand(x)
    axis = normalize_axis(axis, len(x.shape), "tensor_split")
    n = _known_dim(x, axis, "tensor_split")
    split = indices_or_sections
    if hasattr(split, "symbolic"):
        if split.symbolic or split.dtype.is_float or split.dtype.is_bool or \
                len(split.shape) > 1:
            raise errors.ShapeError("tensor_split: indices_or_sections must be an int, a list "
                                    "of ints, or an integer tensor with known values of at "
                                    "most 1 dim, got %s %s" % (fmt_shape(split.shape),
                                                               split.dtype.name))
        split = split.numpy().tolist()
    if _is_int(split):
        if split < 1:
            raise errors.ShapeError("tensor_split: the number of sections must be at least 1, "
                                    "got %d" % split)
        return array_split(x, int(split), axis)
    points = [int(i) for i in split]
    return [_axis_slice(x, axis, start, stop)
            for start, stop in zip([0] + points, points + [n])]


def _split_at(op, x, indices_or_sections, axis, min_dims):
    x = as_operand(x)
    if len(x.shape) < min_dims:
        raise errors.ShapeError("%s: x %s needs at least %d dims"
                                % (op, fmt_shape(x.shape), min_dims))
    if _is_int(indices_or_sections):
        n = _known_dim(x, axis, op)
        if not indices_or_sections or n % indices_or_sections:
            raise errors.ShapeError("%s: dim %d of x %s (size %d) does not split into %d equal "
                                    "pieces" % (op, axis, fmt_shape(x.shape), n,
                                                indices_or_sections))
    return tensor_split(x, indices_or_sections, axis)


def hsplit(x, indices_or_sections):
    """tensor_split along dim 1 (dim 0 of a 1-D tensor); an int must divide the dim."""
    x = as_operand(x)
    return _split_at("hsplit", x, indices_or_sections, 0 if len(x.shape) == 1 else 1, 1)


def vsplit(x, indices_or_sections):
    """tensor_split along dim 0 of a tensor of 2 dims or more; an int must divide the dim."""
    return _split_at("vsplit", x, indices_or_sections, 0, 2)


def dsplit(x, indices_or_sections):
    """tensor_split along dim 2 of a tensor of 3 dims or more; an int must divide the dim."""
    return _split_at("dsplit", x, indices_or_sections, 2, 3)


def _zeros_beside(x, axis):
    """Zeros of x's dtype and shape but for a size of 1 along axis (unknown dims as x's)."""
    shape = list(x.shape)
    shape[axis] = 1
    if None not in shape:
        return core.constant_like(np.zeros(shape, x.dtype.np), x)
    if x.shape[axis] == 0:
        raise errors.ShapeError("x %s: dims must be known where dim %d is empty"
                                % (fmt_shape(x.shape), axis))
    return _elementwise.where(as_operand(True), as_operand(0, dtype=x.dtype),
                              _axis_slice(x, axis, 0, 1))


def diag_embed(x, offset=0, axis1=-2, axis2=-1):
    """Matrices with x's last dim on their diagonal `offset` (PyTorch's diag_embed): the result
    has one dim more, the matrices lying along its dims axis1 (rows) and axis2 (columns)."""
    x = as_operand(x)
    if not x.shape:
        raise errors.ShapeError("diag_embed: x must have at least 1 dim, got a 0-d tensor")
    nd = len(x.shape) + 1
    a = normalize_axis(axis1, nd, "diag_embed", "axis1")
    b = normalize_axis(axis2, nd, "diag_embed", "axis2")
    if a == b:
        raise errors.ShapeError("diag_embed: axis1 and axis2 are both %d" % a)
    n = _known_dim(x, nd - 2, "diag_embed")
    size = n + builtins.abs(offset)
    # every cell reads x or the appended zero at position n
    index = np.full((size, size), n, dtype=np.int64)
    i = np.arange(n)
    index[i + builtins.max(-offset, 0), i + builtins.max(offset, 0)] = i
    padded = concat([x, _zeros_beside(x, nd - 2)], nd - 2)
    return movedim(take(padded, index, nd - 2), (nd - 2, nd - 1), (a, b))


def sliding_windows(x, axis, size, step):
    """PyTorch's Tensor.unfold(dimension, size, step): the windows of `size` elements `step`
    apart along axis, that axis then counting windows and a new last dim running through
    each window."""
    x = as_operand(x)
    if not x.shape:         # PyTorch: a 0-d tensor is one window of one element
        normalize_axis(axis, 1, "unfold")
        x, ax = reshape(x, (1,)), None
    else:
        ax = normalize_axis(axis, len(x.shape), "unfold")
    along = 0 if ax is None else ax
    n = _known_dim(x, along, "unfold")
    if not _is_int(size) or not _is_int(step) or not 0 <= size <= n or step < 1:
        raise errors.ShapeError("unfold: size must be an int in [0, %d] (the size of dim %d of "
                                "x %s) and step a positive int, got size %r and step %r"
                                % (n, along, fmt_shape(x.shape), size, step))
    starts = np.arange((n - size) // step + 1, dtype=np.int64) * step
    windows = take(x, starts[:, None] + np.arange(size, dtype=np.int64), along)
    out = movedim(windows, along + 1, -1)
    return reshape(out, (size,)) if ax is None else out


def index_copy(x, axis, indices, source):
    """x with the slices at indices along axis replaced by source's, as PyTorch's index_copy
    (a repeated index: one of the writes wins)."""
    x, source = as_operand(x), as_operand(source, like=x)
    if not x.shape:
        normalize_axis(axis, 1, "index_copy")
        return reshape(index_copy(reshape(x, (1,)), 0, reshape(as_operand(indices), (-1,)),
                                  reshape(source, (1,))), ())
    ax = normalize_axis(axis, len(x.shape), "index_copy")
    indices = as_operand(indices)
    if len(indices.shape) > 1 or len(source.shape) != len(x.shape) or any(
            d != ax and p is not None and q is not None and p != q
            for d, (p, q) in enumerate(zip(source.shape, x.shape))) or \
            source.shape[ax] != (indices.shape[0] if indices.shape else 1):
        raise errors.ShapeError("index_copy: source %s must be x %s with dim %d the length of "
                                "the 1-D indices %s" % (fmt_shape(source.shape),
                                                        fmt_shape(x.shape), ax,
                                                        fmt_shape(indices.shape)))
    return scatter(x, ax, _along(reshape(indices, (-1,)), ax, source.shape), source)


def masked_scatter(x, mask, source):
    """x with source's elements, in order, written where mask (broadcast against x) is true,
    as PyTorch's masked_scatter. source needs at least as many elements as mask has trues."""
    E = _elementwise
    x, mask, source = as_operand(x), as_operand(mask), as_operand(source)
    if not mask.dtype.is_bool:
        raise errors.DTypeError("masked_scatter: mask must be bool, got %s" % mask.dtype.name)
    if source.dtype is not x.dtype:
        raise errors.DTypeError("masked_scatter: source is %s but x is %s"
                                % (source.dtype.name, x.dtype.name))
    x, mask = broadcast_tensors(x, mask)
    flat_mask = reshape(mask, (-1,))
    flat_source = reshape(source, (-1,))
    available = flat_source.shape[0]
    if not mask.symbolic:
        wanted = int(mask.numpy().sum())
        if wanted > available:
            raise errors.ShapeError("masked_scatter: mask %s has %d trues but source %s only %d "
                                    "elements" % (fmt_shape(mask.shape), wanted,
                                                  fmt_shape(source.shape), available))
    if available == 0:      # (then no true either: nothing to write)
        return clone(x)
    # the k-th true takes source's k-th element (the take refuses one beyond source's end)
    order = _reduction.cumsum(flat_mask, 0) - 1
    taken = take(flat_source, E.where(flat_mask, order, 0), 0)
    return reshape_like(E.where(flat_mask, taken, reshape(x, (-1,))), x)


def slice_scatter(x, src, axis=0, start=None, end=None, step=1):
    """x with x[start:end:step] along axis replaced by src (of that slice's shape), as
    PyTorch's slice_scatter."""
    x = as_operand(x)
    ax = normalize_axis(axis, len(x.shape), "slice_scatter")
    if not _is_int(step) or step < 1:
        raise errors.ShapeError("slice_scatter: step must be a positive int, got %r" % (step,))
    key = (slice(None),) * ax + (slice(start, end, step),)
    n = _known_dim(x, ax, "slice_scatter")
    want = tuple(x.shape[:ax]) + (len(range(n)[slice(start, end, step)]),) + \
        tuple(x.shape[ax + 1:])
    src = as_operand(src, like=x)
    if len(src.shape) != len(want) or any(p is not None and q is not None and p != q
                                          for p, q in zip(src.shape, want)):
        raise errors.ShapeError("slice_scatter: src %s must have the slice's shape %s (x %s, "
                                "dim %d, %s:%s:%s)" % (fmt_shape(src.shape), fmt_shape(want),
                                                       fmt_shape(x.shape), ax, start, end,
                                                       step))
    return setitem(x, key, src)


def vander(x, N=None, increasing=False):  # noqa: N803 (PyTorch's name)
    """The Vandermonde matrix of 1-D x: columns x**(N-1), ..., x**0 (increasing: the other way
    round), N = len(x) by default, as PyTorch's vander (integers and bool as int64). The
    powers are running products, so the gradient is exact at zeros too."""
    x = as_operand(x)
    if len(x.shape) != 1:
        raise errors.ShapeError("vander: x must be 1-D, got %s" % fmt_shape(x.shape))
    if not x.dtype.is_float:
        x = cast(x, "int64")
    n = _known_dim(x, 0, "vander")
    columns = n if N is None else N
    if not _is_int(columns) or columns < 0:
        raise errors.ShapeError("vander: N must be a non-negative int, got %r" % (N,))
    out = core.constant_like(np.ones((n, builtins.min(columns, 1)), x.dtype.np), x)
    if columns > 1:
        powers = _reduction.cumprod(tile(reshape(x, (n, 1)), (1, columns - 1)), 1)
        out = concat([out, powers], 1)
    return out if increasing else flip(out, 1)


def cartesian_prod(*tensors):
    """The Cartesian product of 1-D tensors as the rows of an (n1 * n2 * ..., k) tensor, as
    PyTorch's cartesian_prod (one tensor: itself). Mixed dtypes are promoted."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    tensors = [as_operand(t) for t in tensors]
    if not tensors or any(len(t.shape) != 1 for t in tensors):
        raise errors.ShapeError("cartesian_prod: takes 1-D tensors, got %s"
                                % ", ".join(fmt_shape(t.shape) for t in tensors))
    if len(tensors) == 1:
        return tensors[0]
    return stack([reshape(g, (-1,)) for g in meshgrid(*tensors, indexing="ij")], 1)


cartesian_product = cartesian_prod


_SCATTER_REDUCTIONS = ("sum", "prod", "mean", "amax", "amin")


def scatter_reduce(x, axis, indices, src, reduce, *, include_self=True):
    """PyTorch's scatter_reduce: x with src's elements reduced into the positions the indices
    name along axis (as scatter's), by reduce "sum", "prod", "mean", "amax" or "amin"; with
    include_self=False x's own value at a position that receives some is left out. Integer
    means round down, as PyTorch's. Gradients as PyTorch's: amax/amin share them evenly among
    the elements equal to the result (none where that is infinite)."""
    if reduce not in _SCATTER_REDUCTIONS:
        raise ValueError("scatter_reduce: reduce must be one of %s, got %r"
                         % (", ".join(_SCATTER_REDUCTIONS), reduce))
    x = as_operand(x)
    indices = _index_operand(indices, "scatter_reduce", x)
    src = as_operand(src, like=x)
    if src.dtype is not x.dtype:
        raise errors.DTypeError("scatter_reduce: src is %s but x is %s"
                                % (src.dtype.name, x.dtype.name))
    if x.dtype.is_bool:
        raise errors.DTypeError("scatter_reduce: x is bool (cast it to an integer dtype)")
    if not x.shape:
        normalize_axis(axis, 1, "scatter_reduce")
        return reshape(scatter_reduce(reshape(x, (1,)), 0, reshape(indices, (1,)),
                                      reshape(src, (1,)), reduce,
                                      include_self=include_self), ())
    ax = normalize_axis(axis, len(x.shape), "scatter_reduce")
    ishape, xshape, sshape = tuple(indices.shape), tuple(x.shape), tuple(src.shape)
    if None in ishape + xshape + sshape or not len(ishape) == len(xshape) == len(sshape) or \
            any(i > s for i, s in zip(ishape, sshape)) or \
            any(i > n for d, (i, n) in enumerate(zip(ishape, xshape)) if d != ax):
        raise errors.ShapeError("scatter_reduce: indices %s must have the rank of x %s and src "
                                "%s, be no larger than src, and no larger than x outside dim %d "
                                "(all known)" % (fmt_shape(ishape), fmt_shape(xshape),
                                                 fmt_shape(sshape), ax))
    if sshape != ishape:        # src is read only where the indices are, as PyTorch's
        src = getitem(src, tuple(slice(0, i) for i in ishape))
    if any(i < n for d, (i, n) in enumerate(zip(ishape, xshape)) if d != ax):
        # indices shorter than x outside the axis reach only the leading block of x there
        block = tuple(slice(None) if d == ax else slice(0, i) for d, i in enumerate(ishape))
        return setitem(x, block, _scatter_reduce_block(getitem(x, block), ax, indices, src,
                                                       reduce, include_self))
    return _scatter_reduce_block(x, ax, indices, src, reduce, include_self)


def _filled(x, value):
    """x's shape and dtype, every element value."""
    return _elementwise.where(as_operand(True), as_operand(value, dtype=x.dtype), x)


def _scatter_reduce_block(x, ax, indices, src, reduce, include_self):
    """scatter_reduce where indices and src have x's shape outside ax."""
    E = _elementwise
    n = x.shape[ax]
    if indices.shape[ax] == 0:
        return clone(x)
    if n == 0:
        raise errors.IndexOutOfRange("scatter_reduce: dim %d of x %s is empty: no index is in "
                                     "range" % (ax, fmt_shape(x.shape)))
    indices = E.where(E.less(indices, 0), indices + n, indices)
    received = E.greater(apply(_scatter_add, [_filled(x, 0), indices, _filled(src, 1)],
                               {"axis": ax}), 0)
    if reduce in ("sum", "mean"):
        base = x if include_self else E.where(received, as_operand(0, dtype=x.dtype), x)
        total = apply(_scatter_add, [base, indices, src], {"axis": ax})
        if reduce == "sum":
            return total
        count = apply(_scatter_add, [_filled(x, 1 if include_self else 0), indices,
                                     _filled(src, 1)], {"axis": ax})
        count = E.where(E.equal(count, 0), as_operand(1, dtype=x.dtype), count)
        return total / count if x.dtype.is_float else E.floor_divide(total, count)
    if x.dtype.is_float:
        identity = {"prod": 1.0, "amax": -math.inf, "amin": math.inf}[reduce]
    else:
        info = np.iinfo(x.dtype.np)
        identity = {"prod": 1, "amax": int(info.min), "amin": int(info.max)}[reduce]
    combine = {"prod": E.mul, "amax": E.maximum, "amin": E.minimum}[reduce]
    base = x if include_self else E.where(received, as_operand(identity, dtype=x.dtype), x)
    # prod differentiates through the products; amax and amin get PyTorch's gradient below
    extreme = reduce != "prod"
    if extreme:
        base, values = stop_gradient(base), stop_gradient(src)
    else:
        values = src
    # the contributions grouped by target (a stable sort of the indices), each group reduced
    # by a running scan that restarts where the target changes, and the group's last element
    # (its result) scattered once into identities; the others go to a spare slot past the
    # end of the axis, cut off after
    order = _reduction.argsort(indices, ax)
    targets = take_along_axis(indices, order, ax)
    values = take_along_axis(values, order, ax)

    def combine_groups(earlier, later):
        (t0, v0), (t1, v1) = earlier, later
        return t1, E.where(E.equal(t0, t1), combine(v0, v1), v1)

    _, values = _reduction.running((targets, values), ax, combine_groups, "scatter_reduce")
    following = concat([_axis_slice(targets, ax, 1, None),
                        _filled(_axis_slice(targets, ax, 0, 1), -1)], ax)
    last = E.not_equal(targets, following)
    spare = concat([_filled(x, identity), _filled(_axis_slice(x, ax, 0, 1), identity)], ax)
    reduced = apply(_scatter, [spare, E.where(last, targets, n), values], {"axis": ax})
    result = combine(base, _axis_slice(reduced, ax, 0, n))
    if not extreme or not x.dtype.is_float:
        return result
    # PyTorch's gradient of amax / amin: the elements equal to the result (x's own where it
    # takes part) share it evenly. Subtracting the shares of (result - element), each exactly
    # 0, leaves the value (signed zeros too) and gives it that gradient; infinite elements
    # are left out (their difference would be NaN)
    at_target = take_along_axis(result, indices, ax)
    own = E.logical_and(E.logical_and(E.equal(x, result), E.isfinite(x)),
                        E.logical_or(E.logical_not(received), as_operand(bool(include_self))))
    ties = E.logical_and(E.equal(src, at_target), E.isfinite(src))
    count = cast(own, x.dtype) + apply(_scatter_add, [_filled(x, 0), indices,
                                                      cast(ties, x.dtype)], {"axis": ax})
    gaps = E.where(own, result - x, 0.0) + apply(
        _scatter_add, [_filled(x, 0), indices, E.where(ties, at_target - src, 0.0)],
        {"axis": ax})
    return result - gaps / E.maximum(count, 1.0)


__all__ += ["t", "tensor_split", "hsplit", "vsplit", "dsplit", "diag_embed", "sliding_windows",
            "index_copy", "masked_scatter", "slice_scatter", "vander", "cartesian_prod",
            "cartesian_product", "scatter_reduce"]


def unravel_index(indices, shape):
    """The coordinates that the flat indices have in a tensor of `shape` (row-major), a tuple
    of int64 tensors of indices' shape, as torch.unravel_index (whose arithmetic it follows:
    a negative index, or one past the end, wraps around)."""
    E = _elementwise
    sizes = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if builtins.any(isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1
           for d in sizes):
        raise ValueError("unravel_index: shape must be positive ints, got %r" % (shape,))
    indices = as_operand(indices)
    if indices.dtype.is_float or indices.dtype.is_bool:
        raise errors.DTypeError("unravel_index: indices must be integers, got %s %s"
                                % (indices.dtype.name, core.fmt_shape(indices.shape)))
    indices = cast(indices, "int64")
    strides = [math.prod(sizes[i + 1:]) for i in range(len(sizes))]
    return tuple(E.remainder(E.floor_divide(indices, stride), size)
                 for stride, size in zip(strides, sizes))


__all__ += ["unravel_index"]
