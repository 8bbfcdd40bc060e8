"""Matrix products on the BLAS: matmul (numpy semantics, batched, broadcast batch dims) and
linear (x @ W + b with a fused activation: the dense layer's forward in one kernel)."""
import math

from .. import errors
from ..backend.cpu import lib
from . import core
from .core import Op, ShapeMismatch, Spec, apply, as_operand, fmt_shape
from . import elementwise as _elementwise  # noqa: E402 (siblings: read at call time)
from . import reduction as _reduction  # noqa: E402 (siblings: read at call time)
from . import shape as _shape  # noqa: E402 (siblings: read at call time)

__all__ = ["matmul", "linear", "LINEAR_ACTIVATIONS"]


class MatMul(Op):
    """a @ b for a, b with at least 2 dims; attrs transpose_a / transpose_b swap the last two."""

    name = "matmul"
    retain_inputs = staticmethod(lambda attrs, needs: tuple(i for i in (0, 1) if needs[1 - i]))
    retain_outputs = ()
    inputs = ("a", "b")

    @staticmethod
    def dims(a_shape, b_shape, ta, tb):
        m, ka = (a_shape[-1], a_shape[-2]) if ta else (a_shape[-2], a_shape[-1])
        kb, n = (b_shape[-1], b_shape[-2]) if tb else (b_shape[-2], b_shape[-1])
        return m, ka, kb, n

    def infer(self, specs, attrs):
        a, b = specs
        if a.dtype is not b.dtype:
            raise errors.DTypeError("operands have dtypes %s and %s" % (a.dtype.name,
                                                                       b.dtype.name))
        if not a.dtype.is_float:
            raise errors.DTypeError("matmul needs float operands, got %s" % a.dtype.name)
        if len(a.shape) < 2 or len(b.shape) < 2:
            raise ShapeMismatch("operands need at least 2 dims")
        m, ka, kb, n = self.dims(a.shape, b.shape, attrs["transpose_a"], attrs["transpose_b"])
        if ka is not None and kb is not None and ka != kb:
            raise ShapeMismatch("inner dimensions differ: %s has %d columns, %s has %d rows%s"
                                % (fmt_shape(a.shape), ka, fmt_shape(b.shape), kb,
                                   " (after transposes)" if attrs["transpose_a"] or
                                   attrs["transpose_b"] else ""))
        batch = core.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        return [Spec(tuple(batch) + (m, n), a.dtype)]

    def forward(self, k, ins, outs, attrs):
        out = outs[0]
        batch = tuple(out.shape[:-2])
        nb = math.prod(batch)
        m, n = out.shape[-2], out.shape[-1]
        if nb == 1:
            descs = [x.desc(x.shape[-2:]) for x in ins]
            od = out.desc((m, n))
        else:
            descs = []
            for x in ins:
                xb = tuple(x.shape[:-2])
                rows, cols = x.shape[-2], x.shape[-1]
                padded = (1,) * (len(batch) - len(xb)) + xb
                if padded == batch:
                    descs.append(x.desc((nb, rows, cols)))
                elif math.prod(xb) == 1:
                    descs.append(x.desc((nb, rows, cols), (0, cols, 1)))  # one matrix for all
                else:
                    # partial batch broadcast: materialise the broadcast operand
                    broadcast_strides = _elementwise.broadcast_strides

                    full = batch + (rows, cols)
                    tmp = k.scratch(full, x.dtype)
                    k.run("copy", [x.desc(full, broadcast_strides(x.shape, full))], [tmp.desc()])
                    descs.append(tmp.desc((nb, rows, cols)))
            od = out.desc((nb, m, n))
        k.run("gemm", descs, [od], (int(attrs["transpose_a"]), int(attrs["transpose_b"])))

    def grad(self, ctx, g):
        a, b = ctx.inputs
        ta, tb = ctx.attrs["transpose_a"], ctx.attrs["transpose_b"]
        sum_to_like = _shape.sum_to_like

        ga = gb = None
        if ctx.needs[0]:
            ga = matmul(b, g, transpose_a=tb, transpose_b=True) if ta else \
                matmul(g, b, transpose_b=not tb)
            ga = sum_to_like(ga, a)
        if ctx.needs[1]:
            gb = matmul(g, a, transpose_a=True, transpose_b=ta) if tb else \
                matmul(a, g, transpose_a=not ta)
            gb = sum_to_like(gb, b)
        return ga, gb


_matmul = core.register(MatMul)


def matmul(a, b, transpose_a=False, transpose_b=False):
    """Matrix product with numpy's rules (1-D operands are promoted, then squeezed). Float
    operands go to the BLAS; int32/int64 ones are multiplied exactly, as PyTorch's
    (a composition: see _integer_matmul)."""
    reshape = _shape.reshape
    squeeze = _shape.squeeze

    a, b = as_operand(a), as_operand(b)
    if a.dtype is not b.dtype:
        from ..dtypes import result_type

        dt = result_type(a.dtype, b.dtype)
        a, b = a.astype(dt), b.astype(dt)
    squeeze_axes = []
    if len(a.shape) == 1:
        a = reshape(a, (1, a.shape[0]))
        squeeze_axes.append(-2)
    if len(b.shape) == 1:
        b = reshape(b, (b.shape[0], 1))
        squeeze_axes.append(-1)
    if a.dtype.is_float or a.dtype.is_bool:      # (bool: refused by the op, as by PyTorch)
        y = apply(_matmul, [a, b], {"transpose_a": bool(transpose_a),
                                    "transpose_b": bool(transpose_b)})
    else:
        y = _integer_matmul(a, b, transpose_a, transpose_b)
    if squeeze_axes:
        y = squeeze(y, tuple(squeeze_axes))
    return y


# elements of the (..., m, block, n) products _integer_matmul holds at once (32 MiB of int64)
_INTEGER_BLOCK = 1 << 22


def _integer_matmul(a, b, ta, tb):
    """a @ b for int32/int64 operands of at least 2 dims, exact as PyTorch's integer matmul
    (products and sums wrap in the dtype): the BLAS takes floats only, so it is the sum over
    the inner dim of broadcast products, (a[..., :, :, None] * b[..., None, :, :]).sum(-2),
    taken in blocks of the inner dim that bound the temporary."""
    swapaxes, expand_dims = _shape.swapaxes, _shape.expand_dims
    if ta:
        a = swapaxes(a, -1, -2)
    if tb:
        b = swapaxes(b, -1, -2)
    (m, ka), (kb, n) = a.shape[-2:], b.shape[-2:]
    if ka is not None and kb is not None and ka != kb:
        raise errors.ShapeError("matmul: inner dimensions differ: a %s has %d columns, b %s has "
                                "%d rows%s" % (fmt_shape(a.shape), ka, fmt_shape(b.shape), kb,
                                               " (after transposes)" if ta or tb else ""))
    k = ka if ka is not None else kb
    if k is None:
        raise errors.ShapeError("matmul: integer operands need a known inner dim, got a %s and "
                                "b %s" % (fmt_shape(a.shape), fmt_shape(b.shape)))
    try:
        core.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except core.ShapeMismatch:
        raise errors.ShapeError("matmul: the batch dims of a %s and b %s do not broadcast"
                                % (fmt_shape(a.shape), fmt_shape(b.shape))) from None
    a, b = expand_dims(a, -1), expand_dims(b, -3)       # (..., m, k, 1) and (..., 1, k, n)
    block = max(1, _INTEGER_BLOCK // max(1, (m or 1) * (n or 1)))
    total = None
    for start in range(0, max(k, 1), block):
        stop = min(start + block, k)
        part = _reduction.sum(_slice_inner(a, start, stop) * _slice_inner(b, start, stop), -2)
        total = part if total is None else total + part
    return total if total.dtype is a.dtype else total.astype(a.dtype)   # int32 sums widen


def _slice_inner(x, start, stop):
    """x[..., start:stop, :]."""
    if (start, stop) == (0, x.shape[-2]):
        return x
    return x[(slice(None),) * (len(x.shape) - 2) + (slice(start, stop),)]


# ---------------------------------------------------------------------------------------------
# linear

LINEAR_ACTIVATIONS = {None: lib.PF_ACT_NONE, "relu": lib.PF_ACT_RELU,
                      "sigmoid": lib.PF_ACT_SIGMOID, "tanh": lib.PF_ACT_TANH,
                      "gelu": lib.PF_ACT_GELU, "leaky_relu": lib.PF_ACT_LEAKY_RELU}
# elementwise activations the kernel applies with the elementwise kernel's own loop
# (PF_ACT_UNARY with the op's unary code and parameters): fused for inference, where nothing
# needs the pre-activation
UNARY_ACTIVATIONS = ("elu", "selu", "celu", "silu", "mish", "softsign", "logsigmoid",
                     "hardsigmoid", "hardswish", "hardtanh", "gelu_tanh", "softplus")
# activations whose gradient can be taken from the output alone (the pre-activation is gone)
_GRAD_FROM_OUTPUT = {None, "relu", "sigmoid", "tanh"}


class Linear(Op):
    """y = act(x @ W + b) for x (..., K), W (K, N), b (N,)."""

    name = "linear"
    inputs = ("x", "kernel", "bias")
    retain_inputs = (0, 1)
    retain_outputs = staticmethod(lambda attrs, needs: (0,) if attrs.get("activation") else ())

    def infer(self, specs, attrs):
        x, w = specs[0], specs[1]
        if not x.dtype.is_float or w.dtype is not x.dtype:
            raise errors.DTypeError("linear needs float x and kernel of one dtype, got %s and %s"
                                    % (x.dtype.name, w.dtype.name))
        if len(w.shape) != 2:
            raise ShapeMismatch("the kernel must be (in_features, out_features), got %s"
                                % fmt_shape(w.shape))
        if len(x.shape) < 1:
            raise ShapeMismatch("x needs at least 1 dim")
        if x.shape[-1] is not None and w.shape[0] is not None and x.shape[-1] != w.shape[0]:
            raise ShapeMismatch("x has %d features but the kernel expects %d"
                                % (x.shape[-1], w.shape[0]))
        if len(specs) > 2:
            b = specs[2]
            if b.dtype is not x.dtype or tuple(b.shape) != (w.shape[1],):
                raise ShapeMismatch("the bias must be (%s,) of %s, got %s %s"
                                    % (w.shape[1], x.dtype.name, fmt_shape(b.shape),
                                       b.dtype.name))
        act = attrs.get("activation")
        if act not in LINEAR_ACTIVATIONS and act not in UNARY_ACTIVATIONS:
            raise ShapeMismatch("unknown activation %r" % act)
        return [Spec(tuple(x.shape[:-1]) + (w.shape[1],), x.dtype)]

    def forward(self, k, ins, outs, attrs):
        x, w = ins[0], ins[1]
        kdim = w.shape[0]
        m = math.prod(x.shape[:-1])
        descs = [x.desc((m, kdim)), w.desc()] + ([ins[2].desc()] if len(ins) > 2 else [])
        act = attrs.get("activation")
        if act in UNARY_ACTIVATIONS:
            op = core.REGISTRY[act]
            k.run("linear", descs, [outs[0].desc((m, w.shape[1]))],
                  (lib.PF_ACT_UNARY, op.code), op.param_values(attrs) + (0.0, 0.0))
            return
        k.run("linear", descs, [outs[0].desc((m, w.shape[1]))], (LINEAR_ACTIVATIONS[act],),
              (attrs.get("alpha", 0.01),))

    def grad(self, ctx, g):
        activation_grad = _elementwise.activation_grad
        reduce_sum = _reduction.sum
        reshape = _shape.reshape

        act = ctx.attrs.get("activation")
        if act not in _GRAD_FROM_OUTPUT:
            raise errors.PyfrontError("linear with a fused %s activation is not differentiable; "
                                      "apply the activation separately" % act)
        if act is not None:
            g = activation_grad(act, ctx.output(), g)
        x, w = ctx.inputs[0], ctx.inputs[1]
        nd = len(x.shape)
        g2 = g if nd == 2 else reshape(g, (-1, w.shape[1]))
        x2 = x if nd == 2 else reshape(x, (-1, w.shape[0]))
        gx = gw = gb = None
        if ctx.needs[0]:
            gx = matmul(g2, w, transpose_b=True)
            if nd != 2:
                reshape_like = _shape.reshape_like

                gx = reshape_like(gx, x)
        if ctx.needs[1]:
            gw = matmul(x2, g2, transpose_a=True)
        if len(ctx.inputs) > 2 and ctx.needs[2]:
            gb = reduce_sum(g2, 0)
        return gx, gw, gb


_linear = core.register(Linear)


def linear(x, kernel, bias=None, activation=None, alpha=0.01):
    """act(x @ kernel + bias), one fused kernel. kernel is (in_features, out_features)."""
    x, kernel = as_operand(x), as_operand(kernel)
    inputs = [x, kernel] + ([as_operand(bias)] if bias is not None else [])
    attrs = {"activation": activation}
    if activation == "leaky_relu":
        attrs["alpha"] = float(alpha)
    elif activation in UNARY_ACTIVATIONS and core.REGISTRY[activation].params:
        raise ValueError("linear: activation %r takes parameters: apply it after linear "
                         "(compiled graphs fuse the two)" % activation)
    return apply(_linear, inputs, attrs)


# ---------------------------------------------------------------------------------------------
# PyTorch's and NumPy's other products, composed of matmul and the shape ops

def _rank(name, x, ranks, what):
    x = as_operand(x)
    if len(x.shape) not in ranks:
        raise errors.ShapeError("%s needs %s, got %s" % (name, what, core.fmt_shape(x.shape)))
    return x


def mm(a, b):
    """The product of two matrices (no broadcasting: PyTorch's mm)."""
    return matmul(_rank("mm", a, (2,), "2-D operands"), _rank("mm", b, (2,), "2-D operands"))


def bmm(a, b):
    """Batched products of (B, n, m) and (B, m, p) (no broadcasting: PyTorch's bmm)."""
    a, b = _rank("bmm", a, (3,), "3-D operands"), _rank("bmm", b, (3,), "3-D operands")
    if None not in (a.shape[0], b.shape[0]) and a.shape[0] != b.shape[0]:
        raise errors.ShapeError("bmm: batch sizes differ: a %s, b %s"
                                % (core.fmt_shape(a.shape), core.fmt_shape(b.shape)))
    return matmul(a, b)


def mv(a, v):
    """Matrix times vector."""
    return matmul(_rank("mv", a, (2,), "a matrix"), _rank("mv", v, (1,), "a vector"))


def dot(a, b):
    """The inner product of two vectors."""
    return matmul(_rank("dot", a, (1,), "1-D operands"), _rank("dot", b, (1,), "1-D operands"))


def inner(a, b):
    """Sums over the last axis of both (NumPy's inner)."""
    a, b = as_operand(a), as_operand(b)
    if not a.shape or not b.shape:
        return a * b
    return tensordot(a, b, ([-1], [-1]))


def outer(a, b):
    """a[:, None] * b[None, :] for vectors a and b."""
    a, b = _rank("outer", a, (1,), "vectors"), _rank("outer", b, (1,), "vectors")
    return _shape.reshape(a, (-1, 1)) * _shape.reshape(b, (1, -1))


def addmm(x, a, b, beta=1.0, alpha=1.0):
    """beta * x + alpha * (a @ b) (x broadcast), PyTorch's addmm."""
    return _scaled_sum(x, mm(a, b), beta, alpha)


def baddbmm(x, a, b, beta=1.0, alpha=1.0):
    """beta * x + alpha * bmm(a, b), PyTorch's baddbmm."""
    return _scaled_sum(x, bmm(a, b), beta, alpha)


def _scaled_sum(x, product, beta, alpha):
    if alpha != 1:
        product = product * alpha
    if beta == 0:       # PyTorch: x is ignored (its NaNs too)
        return product
    return product + (x if beta == 1 else as_operand(x) * beta)


# ---- more of torch.* (3): addbmm, addmv, addr, chain_matmul, bilinear (F.bilinear and
# nn.Bilinear's forward), and cov and corrcoef (a covariance is a matrix product) ----

def addbmm(x, batch1, batch2, beta=1.0, alpha=1.0):
    """beta * x + alpha * sum_b batch1[b] @ batch2[b], as torch.addbmm: the batch summed in
    one product, (n, B m) @ (B m, p)."""
    a = _rank("addbmm", batch1, (3,), "3-D batch1")
    b = _rank("addbmm", batch2, (3,), "3-D batch2")
    if not _pairs(a.shape[0], b.shape[0]) or not _pairs(a.shape[2], b.shape[1]):
        raise errors.ShapeError("addbmm: batch1 %s and batch2 %s must be (B, n, m) and "
                                "(B, m, p)" % (core.fmt_shape(a.shape), core.fmt_shape(b.shape)))
    wide = _shape.reshape(_shape.permute(a, (1, 0, 2)), (a.shape[1], -1))
    tall = _shape.reshape(b, (-1, b.shape[2]))
    return _scaled_sum(x, matmul(wide, tall), beta, alpha)


def _pairs(m, n):
    """Whether two sizes can be equal (an unknown one can)."""
    return m is None or n is None or m == n


def addmv(x, mat, vec, beta=1.0, alpha=1.0):
    """beta * x + alpha * (mat @ vec), as torch.addmv."""
    return _scaled_sum(x, mv(mat, vec), beta, alpha)


def addr(x, vec1, vec2, beta=1.0, alpha=1.0):
    """beta * x + alpha * outer(vec1, vec2), as torch.addr."""
    return _scaled_sum(x, outer(vec1, vec2), beta, alpha)


def chain_matmul(*matrices):
    """The product of 2-D matrices, as torch.chain_matmul (linalg.multi_dot's 2-D case):
    multiplied in the order that takes the fewest multiplications (left to right where a
    size is unknown)."""
    if not matrices:
        raise ValueError("chain_matmul: needs at least one matrix")
    ms = [_rank("chain_matmul", m, (2,), "2-D matrices") for m in matrices]
    for i in range(len(ms) - 1):
        if not _pairs(ms[i].shape[1], ms[i + 1].shape[0]):
            raise errors.ShapeError("chain_matmul: matrix %d %s cannot multiply matrix %d %s"
                                    % (i, core.fmt_shape(ms[i].shape), i + 1,
                                       core.fmt_shape(ms[i + 1].shape)))
    if len(ms) == 1:
        return _shape.clone(ms[0])
    sizes = [ms[0].shape[0]] + [m.shape[1] for m in ms]
    split = _chain_order(tuple(sizes)) if None not in sizes else None

    def product(i, j):
        if i == j:
            return ms[i]
        k = split[i][j] if split is not None else j - 1
        return matmul(product(i, k), product(k + 1, j))
    return product(0, len(ms) - 1)


def _chain_order(sizes):
    """split[i][j]: where the cheapest product of matrices i..j divides (matrix k of shape
    (sizes[k], sizes[k + 1])), by the matrix-chain dynamic programme."""
    n = len(sizes) - 1
    cost = [[0] * n for _ in range(n)]
    split = [[0] * n for _ in range(n)]
    for length in range(2, n + 1):
        for i in range(n - length + 1):
            j = i + length - 1
            cost[i][j], split[i][j] = min(
                (cost[i][k] + cost[k + 1][j] + sizes[i] * sizes[k + 1] * sizes[j + 1], k)
                for k in range(i, j))
    return split


def bilinear(input1, input2, weight, bias=None):
    """y[..., o] = sum_ij input1[..., i] weight[o, i, j] input2[..., j] + bias[o], as
    torch's F.bilinear (nn.Bilinear's forward): inputs (*, in1) and (*, in2) with the same
    leading dims, weight (out, in1, in2), bias (out,)."""
    x1, x2, w = as_operand(input1), as_operand(input2), as_operand(weight)
    s1, s2 = tuple(x1.shape), tuple(x2.shape)
    if len(w.shape) != 3 or not s1 or len(s1) != len(s2) or \
            not all(_pairs(a, b) for a, b in zip(s1[:-1], s2[:-1])) or \
            not _pairs(s1[-1], w.shape[1]) or not _pairs(s2[-1], w.shape[2]):
        raise errors.ShapeError(
            "%s: expected input1 (*, in1) and input2 (*, in2) with the same leading dims for "
            "weight (out, in1, in2), got input1 %s, input2 %s, weight %s"
            % (core.located("bilinear"), core.fmt_shape(s1), core.fmt_shape(s2),
               core.fmt_shape(w.shape)))
    out, n1, n2 = w.shape
    a = _shape.reshape(x1, (-1, n1))
    b = _shape.reshape(x2, (-1, 1, n2))
    # input1 against every (out, in2) slice of the weight in one product: (rows, out * in2)
    t = _shape.reshape(linear(a, _shape.reshape(_shape.permute(w, (1, 0, 2)), (n1, out * n2))),
                       (-1, out, n2))
    y = _reduction.sum(t * b, -1)
    if bias is not None:
        y = y + bias
    return _reshape(y, s1[:-1] + (out,))


def cov(input, *, correction=1, fweights=None, aweights=None):  # noqa: A002
    """The covariance matrix of the variables in input's rows (a 1-D input: one variable),
    observations in its columns, as torch.cov: correction 1 is Bessel's, 0 the population's;
    fweights (integer frequencies) and aweights (float weights) weigh the observations.
    One variable gives a 0-d result; no more degrees of freedom than correction, inf/NaN
    (with torch's warning)."""
    import warnings

    from ..dtypes import get_default_dtype

    E, R = _elementwise, _reduction
    x = as_operand(input)
    if len(x.shape) > 2:
        raise errors.ShapeError("cov: input must be 1-D or 2-D (variables, observations), got "
                                "%s" % core.fmt_shape(x.shape))
    if not x.dtype.is_float:
        x = _shape.cast(x, get_default_dtype())
    if len(x.shape) < 2:
        x = _shape.reshape(x, (1, -1))
    n = x.shape[1]
    w = aw = None
    if fweights is not None:
        w = _shape.cast(_observation_weights("fweights", fweights, n, integer=True), x.dtype)
    if aweights is not None:
        aw = _shape.cast(_observation_weights("aweights", aweights, n, integer=False), x.dtype)
        w = aw if w is None else w * aw
    if w is None:
        # (a graph with an unknown number of observations counts them)
        w_sum = n if n is not None else R.sum(
            _shape.expand_like(as_operand(1.0, dtype=x.dtype), x[:1]))
        avg = R.mean(x, 1)
    else:
        w_sum = R.sum(w)
        avg = R.sum(x * w, 1) / w_sum
    if aw is not None and correction != 0:
        dof = w_sum - R.sum(w * aw) * float(correction) / w_sum
    else:
        dof = w_sum - correction
    if isinstance(dof, (int, float)):
        if dof <= 0:
            warnings.warn("cov: degrees of freedom is <= 0 (correction %r for %d observations)"
                          % (correction, n), UserWarning, stacklevel=2)
        dof = float(max(dof, 0))
    else:
        dof = E.maximum(dof, 0.0)
    centred = x - _shape.expand_dims(avg, 1)
    product = matmul(centred, _shape.transpose(centred if w is None else centred * w, 0, 1))
    return _shape.squeeze(product / dof)


def _observation_weights(name, weights, n, integer):
    """cov's fweights / aweights checked: 0-d or 1-D of one per observation, integers or
    floats as named, non-negative (checked eagerly)."""
    weights = as_operand(weights)
    if len(weights.shape) > 1 or (weights.shape and weights.shape[0] != n):
        raise errors.ShapeError("cov: %s must be 0-d or 1-D with one weight per observation "
                                "(%s), got %s" % (name, n, core.fmt_shape(weights.shape)))
    if weights.dtype.is_float == integer or weights.dtype.is_bool:
        raise errors.DTypeError("cov: %s must be %s, got %s" % (
            name, "integers" if integer else "float32 or float64", weights.dtype.name))
    if not weights.symbolic and (weights.cpu().numpy() < 0).any():
        raise ValueError("cov: %s must be non-negative, got %s"
                         % (name, weights.cpu().numpy().tolist()))
    return weights


def corrcoef(input):  # noqa: A002
    """The Pearson correlation coefficients of the variables in input's rows, as
    torch.corrcoef: cov normalised by the standard deviations, clipped to [-1, 1]."""
    E = _elementwise
    c = cov(input)
    if not c.shape:
        return c / c
    std = E.sqrt(_shape.diagonal(c))
    c = c / _shape.expand_dims(std, 1)
    c = c / _shape.expand_dims(std, 0)
    return E.clip(c, -1.0, 1.0)


__all__ += ["addbmm", "addmv", "addr", "chain_matmul", "bilinear", "cov", "corrcoef"]


def tensordot(a, b, dims=2):
    """Sum over the last `dims` axes of a and the first of b, or over the paired axes
    dims = (axes of a, axes of b) (NumPy's and PyTorch's tensordot)."""
    a, b = as_operand(a), as_operand(b)
    if isinstance(dims, int):
        axes_a, axes_b = list(range(len(a.shape) - dims, len(a.shape))), list(range(dims))
    else:
        axes_a, axes_b = ([d] if isinstance(d, int) else list(d) for d in dims)
    axes_a = list(core.normalize_axes(tuple(axes_a), len(a.shape), "tensordot", "dims"))
    axes_b = list(core.normalize_axes(tuple(axes_b), len(b.shape), "tensordot", "dims"))
    if len(axes_a) != len(axes_b) or any(a.shape[i] != b.shape[j] or a.shape[i] is None
                                         for i, j in zip(axes_a, axes_b)):
        raise errors.ShapeError("tensordot: axes %s of a %s do not pair with axes %s of b %s"
                                % (axes_a, core.fmt_shape(a.shape), axes_b,
                                   core.fmt_shape(b.shape)))
    keep_a = [i for i in range(len(a.shape)) if i not in axes_a]
    keep_b = [j for j in range(len(b.shape)) if j not in axes_b]
    k = math.prod(a.shape[i] for i in axes_a)
    a2 = _shape.reshape(_shape.permute(a, tuple(keep_a + axes_a)), (-1, k))
    b2 = _shape.reshape(_shape.permute(b, tuple(axes_b + keep_b)), (k, -1))
    return _reshape(matmul(a2, b2), tuple(a.shape[i] for i in keep_a) +
                    tuple(b.shape[j] for j in keep_b))


def kron(a, b):
    """The Kronecker product of two tensors of one rank."""
    a, b = as_operand(a), as_operand(b)
    if len(a.shape) != len(b.shape):
        raise errors.ShapeError("kron: needs operands of one rank, got %s and %s"
                                % (core.fmt_shape(a.shape), core.fmt_shape(b.shape)))
    nd = len(a.shape)
    # a's dims interleaved with b's: (a0, 1, a1, 1, ...) * (1, b0, 1, b1, ...)
    av = _shape.reshape(a, tuple(d for n in a.shape for d in (n, 1)))
    bv = _shape.reshape(b, tuple(d for n in b.shape for d in (1, n)))
    return _shape.reshape(av * bv, tuple(a.shape[i] * b.shape[i] for i in range(nd)))


def cross(a, b, axis=-1):
    """The cross product of 3-vectors along axis (broadcasting the others)."""
    a, b = as_operand(a), as_operand(b)
    ax = core.normalize_axis(axis, len(a.shape), "cross")
    if a.shape[ax] != 3 or b.shape[ax] != 3:
        raise errors.ShapeError("cross: axis %d must have size 3 in a %s and b %s"
                                % (axis, core.fmt_shape(a.shape), core.fmt_shape(b.shape)))
    lead = (slice(None),) * ax

    def at(x, i):
        return x[lead + (slice(i, i + 1),)]

    parts = [at(a, 1) * at(b, 2) - at(a, 2) * at(b, 1),
             at(a, 2) * at(b, 0) - at(a, 0) * at(b, 2),
             at(a, 0) * at(b, 1) - at(a, 1) * at(b, 0)]
    return _shape.concat(parts, ax)


def cdist(x1, x2, p=2.0):
    """Pairwise p-norm distances between the rows of x1 (.., P, M) and x2 (.., R, M)."""
    x1, x2 = as_operand(x1), as_operand(x2)
    diff = _shape.expand_dims(x1, -2) - _shape.expand_dims(x2, -3)
    return _reduction.norm(diff, p, -1)


def einsum(equation, *operands):
    """Einstein summation over the labelled axes (NumPy's and PyTorch's einsum): "ij,jk->ik",
    "bhqd,bhkd->bhqk", implicit outputs ("ij,jk"), "..." for leading axes, repeated labels in
    one operand for diagonals ("ii->i"). Operands are contracted pairwise left to right, each
    pair as one batched matmul; a label that no later operand or the output needs is summed
    as soon as it is alone."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = operands[0]
    ops = [as_operand(o) for o in operands]
    eq = equation.replace(" ", "")
    lhs, arrow, out = eq.partition("->")
    terms = lhs.split(",")
    if len(terms) != len(ops):
        raise errors.ShapeError("einsum: %r names %d operands, got %d"
                                % (equation, len(terms), len(ops)))
    # "..." stands for the leading axes an operand has beyond its letters
    ell_rank = 0
    for t, o in zip(terms, ops):
        if "..." in t:
            ell_rank = max(ell_rank, len(o.shape) - (len(t) - 3))
    ell = [chr(0x3B1 + i) for i in range(ell_rank)]      # Greek letters: never user labels
    labels = []
    for t, o in zip(terms, ops):
        if "..." in t:
            head, _, tail = t.partition("...")
            n = len(o.shape) - len(head) - len(tail)
            t = list(head) + ell[ell_rank - n:] + list(tail)
        else:
            t = list(t)
        if len(t) != len(o.shape) or not all(c.isalpha() for c in t):
            raise errors.ShapeError("einsum: term %r does not fit an operand of shape %s"
                                    % ("".join(t), core.fmt_shape(o.shape)))
        labels.append(t)
    if arrow:
        if "..." in out:
            head, _, tail = out.partition("...")
            out = list(head) + ell + list(tail)
        else:
            out = list(out)
    else:       # implicit: "..." first, then the labels used once, alphabetically
        counts = {}
        for t in labels:
            for c in t:
                counts[c] = counts.get(c, 0) + 1
        out = ell + sorted(c for c, n in counts.items() if n == 1 and c not in ell)
    sizes = {}          # label -> its size (None: unknown until run time, a graph's batch)
    for t, o in zip(labels, ops):
        for c, n in zip(t, o.shape):
            known = sizes.get(c, 1)
            if known not in (1, n) and n not in (1, None) and known is not None:
                raise errors.ShapeError("einsum: label %r has sizes %d and %d in %r"
                                        % (c, known, n, equation))
            if c not in sizes or (n != 1 and n is not None) or known == 1 and n is None:
                sizes[c] = n
    for c in out:
        if c not in sizes:
            raise errors.ShapeError("einsum: output label %r is in no operand of %r"
                                    % (c, equation))
    # repeated labels within one operand: take the diagonal
    for i, (t, o) in enumerate(zip(labels, ops)):
        while len(set(t)) < len(t):
            c = next(c for c in t if t.count(c) > 1)
            first, second = t.index(c), t.index(c, t.index(c) + 1)
            o = _shape.diagonal(o, 0, first, second)       # the diagonal goes last
            t = [x for k, x in enumerate(t) if k not in (first, second)] + [c]
        labels[i], ops[i] = t, o

    def needed_after(k):
        later = set(out)
        for t in labels[k + 1:]:
            later.update(t)
        return later

    def sum_alone(t, o, keep):
        axes = [k for k, c in enumerate(t) if c not in keep]
        if axes:
            o = _reduction.sum(o, tuple(axes))
            t = [c for c in t if c in keep]
        return t, o

    t, acc = sum_alone(labels[0], ops[0], needed_after(0))
    for k in range(1, len(ops)):
        keep = needed_after(k)
        u, o = sum_alone(labels[k], ops[k], keep | set(t))
        t, acc = sum_alone(t, acc, keep | set(u))
        t, acc = _contract(t, acc, u, o, keep, sizes)
    t, acc = sum_alone(t, acc, set(out))
    if sorted(t) != sorted(out):
        raise errors.ShapeError("einsum: %r repeats an output label" % (equation,))
    return _shape.permute(acc, tuple(t.index(c) for c in out)) if t != out else acc


def _contract(ta, a, tb, b, keep, sizes):
    """One pairwise step of einsum: labels in both and kept are batch dims, in both and not
    kept are summed by a matmul, the rest are a's rows and b's columns."""
    batch = [c for c in ta if c in tb and c in keep]
    summed = [c for c in ta if c in tb and c not in keep]
    rows = [c for c in ta if c not in tb]
    cols = [c for c in tb if c not in ta]

    def arrange(t, x, order):
        x = _shape.permute(x, tuple(t.index(c) for c in order))
        want = tuple(sizes[c] for c in order)
        if any(d == 1 and w != 1 for d, w in zip(x.shape, want)):   # size-1 dims broadcast
            x = _shape.broadcast_to(x, want)
        return x

    def size(group):
        dims = [sizes[c] for c in group]
        return None if None in dims else math.prod(dims)

    a = arrange(ta, a, batch + rows + summed)
    b = arrange(tb, b, batch + summed + cols)
    nb = tuple(sizes[c] for c in batch)
    m, n, k = size(rows), size(cols), size(summed)
    prod = matmul(_reshape(a, nb + (m, k)), _reshape(b, nb + (k, n)))
    return batch + rows + cols, _reshape(
        prod, nb + tuple(sizes[c] for c in rows) + tuple(sizes[c] for c in cols))


def _reshape(x, shape):
    """reshape to shape, whose one unknown dim (None, a graph's batch) becomes -1 (einsum's
    and tensordot's results)."""
    if shape.count(None) > 1:
        raise errors.ShapeError("cannot reshape to %s: more than one unknown dim (give the "
                                "graph's inputs their sizes)" % core.fmt_shape(shape))
    return _shape.reshape(x, tuple(-1 if d is None else d for d in shape))


__all__ += ["mm", "bmm", "mv", "dot", "inner", "outer", "addmm", "baddbmm", "tensordot", "kron",
            "cross", "cdist", "einsum"]
