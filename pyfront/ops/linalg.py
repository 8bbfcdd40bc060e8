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
    """Matrix product with numpy's rules (1-D operands are promoted, then squeezed)."""
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
    y = apply(_matmul, [a, b], {"transpose_a": bool(transpose_a),
                                "transpose_b": bool(transpose_b)})
    if squeeze_axes:
        y = squeeze(y, tuple(squeeze_axes))
    return y


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
