"""Elementwise ops: unary maps, activations and their gradients, broadcasting binary ops, where.

Each is fusable: `elementwise` tells the graph compiler how to put it in a fused kernel.
"""
import math

from .. import errors
from ..backend.cpu import lib
from ..dtypes import result_type
from . import core
from .core import Op, ShapeMismatch, Spec, apply, as_operand, broadcast_shapes

__all__ = [
    "neg", "exp", "log", "sqrt", "rsqrt", "abs", "sign", "square", "reciprocal", "sin", "cos",
    "tanh", "sigmoid", "relu", "leaky_relu", "gelu", "softplus", "erf", "floor", "ceil", "round",
    "log1p", "expm1", "clip", "pow", "add", "sub", "mul", "div", "maximum", "minimum", "equal",
    "not_equal", "less", "less_equal", "greater", "greater_equal", "where", "affine",
    "activation_grad", "broadcast_strides",
]


def broadcast_strides(in_shape, out_shape):
    """Strides (in elements) that view a contiguous in_shape as out_shape by broadcasting."""
    strides = [0] * len(out_shape)
    offset = len(out_shape) - len(in_shape)
    acc = 1
    for i in range(len(in_shape) - 1, -1, -1):
        strides[i + offset] = 0 if in_shape[i] == 1 and out_shape[i + offset] != 1 else acc
        acc *= in_shape[i]
    return strides


def _require_float(spec, name):
    if not spec.dtype.is_float:
        raise errors.DTypeError("%s needs a float tensor, got %s" % (name, spec.dtype.name))


# ---------------------------------------------------------------------------------------------
# unary

class Unary(Op):
    """y = f(x), float in, float out. params: attribute names passed as the kernel's fattr."""

    inputs = ("x",)

    def __init__(self, name, code, grad_rule, params=()):
        self.name = name
        self.code = code
        self.grad_rule = grad_rule
        self.params = params

    def param_values(self, attrs):
        return tuple(float(attrs[p]) for p in self.params)

    @property
    def elementwise(self):
        return ("unary", self.code)

    def infer(self, specs, attrs):
        _require_float(specs[0], self.name)
        return [specs[0]]

    def forward(self, k, ins, outs, attrs):
        k.run("unary", [ins[0].desc()], [outs[0].desc()], (self.code,), self.param_values(attrs))

    def grad(self, ctx, g):
        return (self.grad_rule(ctx, g),)


def _unary(name, code, grad_rule, params=()):
    op = Unary(name, code, grad_rule, params)
    core.REGISTRY[name] = op
    return op


class ActivationGrad(Op):
    """dx = g * f'(v), v being x or y as the activation needs: one fused kernel, not three ops."""

    inputs = ("v", "grad")

    def __init__(self, name, code, uses, second_rule, params=()):
        self.name = name
        self.code = code
        self.uses = uses               # "x" or "y": what v is
        self.second_rule = second_rule  # d(dx)/dv * gg, for higher-order gradients
        self.params = params

    def param_values(self, attrs):
        return tuple(float(attrs[p]) for p in self.params)

    @property
    def elementwise(self):
        return ("unary_grad", self.code)

    def infer(self, specs, attrs):
        v, g = specs
        _require_float(v, self.name)
        if tuple(v.shape) != tuple(g.shape) and None not in v.shape + g.shape:
            raise ShapeMismatch("value %s and gradient %s differ" % (core.fmt_shape(v.shape),
                                                                      core.fmt_shape(g.shape)))
        if v.dtype is not g.dtype:
            raise errors.DTypeError("gradient dtype %s differs from %s" % (g.dtype.name,
                                                                          v.dtype.name))
        return [v]

    def forward(self, k, ins, outs, attrs):
        k.run("unary_grad", [ins[0].desc(), ins[1].desc()], [outs[0].desc()], (self.code,),
              self.param_values(attrs))

    def grad(self, ctx, gg):
        v, g = ctx.inputs
        dv = self.second_rule(v, g, gg, ctx.attrs) if ctx.needs[0] else None
        dg = apply(self, [v, gg], ctx.attrs) if ctx.needs[1] else None
        return dv, dg


def _act_grad(name, code, uses, second_rule, params=()):
    op = ActivationGrad(name, code, uses, second_rule, params)
    core.REGISTRY[name] = op
    return op


def _zero(v, g, gg, attrs):
    return None


_relu_grad = _act_grad("relu_grad", lib.PF_G_RELU, "y", _zero)
_leaky_relu_grad = _act_grad("leaky_relu_grad", lib.PF_G_LEAKY_RELU, "x", _zero, ("alpha",))
_sigmoid_grad = _act_grad("sigmoid_grad", lib.PF_G_SIGMOID, "y",
                          lambda y, g, gg, a: gg * g * (1.0 - 2.0 * y))
_tanh_grad = _act_grad("tanh_grad", lib.PF_G_TANH, "y", lambda y, g, gg, a: gg * g * y * -2.0)
_gelu_grad = _act_grad("gelu_grad", lib.PF_G_GELU, "x",
                       lambda x, g, gg, a: gg * g * exp(square(x) * -0.5)
                       * (1.0 / math.sqrt(2 * math.pi)) * (2.0 - square(x)))
_softplus_grad = _act_grad("softplus_grad", lib.PF_G_SOFTPLUS, "x",
                           lambda x, g, gg, a: gg * g * sigmoid(x) * (1.0 - sigmoid(x)))

ACTIVATION_GRADS = {"relu": _relu_grad, "leaky_relu": _leaky_relu_grad,
                    "sigmoid": _sigmoid_grad, "tanh": _tanh_grad, "gelu": _gelu_grad,
                    "softplus": _softplus_grad}


def activation_grad(name, v, g, **attrs):
    """The gradient op of a named activation applied to (x or y, upstream gradient)."""
    return apply(ACTIVATION_GRADS[name], [v, g], attrs)


def _zeros_grad(ctx, g):
    return g * 0.0


_neg = _unary("neg", lib.PF_U_NEG, lambda c, g: -g)
_exp = _unary("exp", lib.PF_U_EXP, lambda c, g: g * c.output())
_log = _unary("log", lib.PF_U_LOG, lambda c, g: g / c.inputs[0])
_sqrt = _unary("sqrt", lib.PF_U_SQRT, lambda c, g: g * 0.5 / c.output())
_rsqrt = _unary("rsqrt", lib.PF_U_RSQRT,
                lambda c, g: g * -0.5 * c.output() * c.output() * c.output())
_abs = _unary("abs", lib.PF_U_ABS, lambda c, g: g * sign(c.inputs[0]))
_sign = _unary("sign", lib.PF_U_SIGN, _zeros_grad)
_square = _unary("square", lib.PF_U_SQUARE, lambda c, g: g * 2.0 * c.inputs[0])
_reciprocal = _unary("reciprocal", lib.PF_U_RECIPROCAL,
                     lambda c, g: -g * c.output() * c.output())
_sin = _unary("sin", lib.PF_U_SIN, lambda c, g: g * cos(c.inputs[0]))
_cos = _unary("cos", lib.PF_U_COS, lambda c, g: -g * sin(c.inputs[0]))
_tanh = _unary("tanh", lib.PF_U_TANH, lambda c, g: apply(_tanh_grad, [c.output(), g]))
_sigmoid = _unary("sigmoid", lib.PF_U_SIGMOID,
                  lambda c, g: apply(_sigmoid_grad, [c.output(), g]))
_relu = _unary("relu", lib.PF_U_RELU, lambda c, g: apply(_relu_grad, [c.output(), g]))
_leaky_relu = _unary("leaky_relu", lib.PF_U_LEAKY_RELU,
                     lambda c, g: apply(_leaky_relu_grad, [c.inputs[0], g], c.attrs), ("alpha",))
_gelu = _unary("gelu", lib.PF_U_GELU, lambda c, g: apply(_gelu_grad, [c.inputs[0], g]))
_softplus = _unary("softplus", lib.PF_U_SOFTPLUS,
                   lambda c, g: apply(_softplus_grad, [c.inputs[0], g]))
_erf = _unary("erf", lib.PF_U_ERF,
              lambda c, g: g * (2.0 / math.sqrt(math.pi)) * exp(-square(c.inputs[0])))
_floor = _unary("floor", lib.PF_U_FLOOR, _zeros_grad)
_ceil = _unary("ceil", lib.PF_U_CEIL, _zeros_grad)
_round = _unary("round", lib.PF_U_ROUND, _zeros_grad)
_log1p = _unary("log1p", lib.PF_U_LOG1P, lambda c, g: g / (c.inputs[0] + 1.0))
_expm1 = _unary("expm1", lib.PF_U_EXPM1, lambda c, g: g * (c.output() + 1.0))
_affine = _unary("affine", lib.PF_U_AFFINE,
                 lambda c, g: affine(g, c.attrs["scale"], 0.0), ("scale", "shift"))
_pow_scalar = _unary("pow_scalar", lib.PF_U_POW_SCALAR,
                     lambda c, g: g * c.attrs["exponent"]
                     * pow(c.inputs[0], c.attrs["exponent"] - 1.0), ("exponent",))
_clip = _unary("clip", lib.PF_U_CLIP,
               lambda c, g: g * (greater_equal(c.inputs[0], c.attrs["lo"])
                                 * less_equal(c.inputs[0], c.attrs["hi"])), ("lo", "hi"))


def _float_operand(x, name):
    x = as_operand(x)
    if not x.dtype.is_float:
        x = x.astype("float32")
    return x


def neg(x):
    x = as_operand(x)
    if not x.dtype.is_float:     # the unary kernel is float-only; integers negate exactly here
        return mul(x, -1)
    return apply(_neg, [x])


def exp(x): return apply(_exp, [_float_operand(x, "exp")])
def log(x): return apply(_log, [_float_operand(x, "log")])
def sqrt(x): return apply(_sqrt, [_float_operand(x, "sqrt")])
def rsqrt(x): return apply(_rsqrt, [_float_operand(x, "rsqrt")])
def sign(x): return apply(_sign, [_float_operand(x, "sign")])
def square(x): return apply(_square, [_float_operand(x, "square")])
def reciprocal(x): return apply(_reciprocal, [_float_operand(x, "reciprocal")])
def sin(x): return apply(_sin, [_float_operand(x, "sin")])
def cos(x): return apply(_cos, [_float_operand(x, "cos")])
def tanh(x): return apply(_tanh, [_float_operand(x, "tanh")])
def sigmoid(x): return apply(_sigmoid, [_float_operand(x, "sigmoid")])
def relu(x): return apply(_relu, [_float_operand(x, "relu")])
def gelu(x): return apply(_gelu, [_float_operand(x, "gelu")])
def softplus(x): return apply(_softplus, [_float_operand(x, "softplus")])
def erf(x): return apply(_erf, [_float_operand(x, "erf")])
def floor(x): return apply(_floor, [_float_operand(x, "floor")])
def ceil(x): return apply(_ceil, [_float_operand(x, "ceil")])
def round(x): return apply(_round, [_float_operand(x, "round")])  # noqa: A001 (numpy's name)
def log1p(x): return apply(_log1p, [_float_operand(x, "log1p")])
def expm1(x): return apply(_expm1, [_float_operand(x, "expm1")])


def abs(x):  # noqa: A001 (numpy's name)
    x = as_operand(x)
    if not x.dtype.is_float:
        return maximum(x, -x)
    return apply(_abs, [x])


def leaky_relu(x, alpha=0.01):
    return apply(_leaky_relu, [_float_operand(x, "leaky_relu")], {"alpha": float(alpha)})


def affine(x, scale=1.0, shift=0.0):
    """scale * x + shift in one pass."""
    return apply(_affine, [_float_operand(x, "affine")],
                 {"scale": float(scale), "shift": float(shift)})


def clip(x, lo, hi):
    if lo > hi:
        raise ValueError("clip: lo (%r) must not exceed hi (%r)" % (lo, hi))
    return apply(_clip, [_float_operand(x, "clip")], {"lo": float(lo), "hi": float(hi)})


# ---------------------------------------------------------------------------------------------
# binary, with numpy broadcasting

class Binary(Op):
    inputs = ("a", "b")

    def __init__(self, name, code, grad_rule, ints=True, compare=False):
        self.name = name
        self.code = code
        self.grad_rule = grad_rule
        self.ints = ints
        self.compare = compare
        self.differentiable = grad_rule is not None

    @property
    def elementwise(self):
        return ("binary", self.code)

    def infer(self, specs, attrs):
        a, b = specs
        if a.dtype is not b.dtype:
            raise errors.DTypeError("operands have dtypes %s and %s (cast one first)"
                                    % (a.dtype.name, b.dtype.name))
        if not self.ints and not a.dtype.is_float:
            raise errors.DTypeError("%s needs float operands, got %s" % (self.name, a.dtype.name))
        return [Spec(broadcast_shapes(a.shape, b.shape), a.dtype)]

    def forward(self, k, ins, outs, attrs):
        shape = outs[0].shape
        a, b = ins
        da = a.desc(shape, broadcast_strides(a.shape, shape))
        db = b.desc(shape, broadcast_strides(b.shape, shape))
        k.run("binary", [da, db], [outs[0].desc()], (self.code,))

    def grad(self, ctx, g):
        a, b = ctx.inputs
        ga, gb = self.grad_rule(ctx, g)
        if ga is not None and ctx.needs[0]:
            ga = sum_to_like(ga, a)
        if gb is not None and ctx.needs[1]:
            gb = sum_to_like(gb, b)
        return ga, gb


def _binary(name, code, grad_rule, ints=True, compare=False):
    op = Binary(name, code, grad_rule, ints, compare)
    core.REGISTRY[name] = op
    return op


def _max_masks(ctx):
    a, b = ctx.inputs
    ma = greater(a, b) + equal(a, b) * 0.5
    return ma, 1.0 - ma


_add = _binary("add", lib.PF_B_ADD, lambda c, g: (g, g))
_sub = _binary("sub", lib.PF_B_SUB, lambda c, g: (g, -g if c.needs[1] else None))
_mul = _binary("mul", lib.PF_B_MUL, lambda c, g: (g * c.inputs[1] if c.needs[0] else None,
                                                  g * c.inputs[0] if c.needs[1] else None))
_div = _binary("div", lib.PF_B_DIV, lambda c, g: (
    g / c.inputs[1] if c.needs[0] else None,
    -(g * c.output()) / c.inputs[1] if c.needs[1] else None), ints=False)
_pow = _binary("pow", lib.PF_B_POW, lambda c, g: (
    g * c.inputs[1] * pow(c.inputs[0], c.inputs[1] - 1.0) if c.needs[0] else None,
    g * c.output() * log(c.inputs[0]) if c.needs[1] else None), ints=False)
_maximum = _binary("maximum", lib.PF_B_MAX,
                   lambda c, g: tuple(g * m for m in _max_masks(c)))
_minimum = _binary("minimum", lib.PF_B_MIN,
                   lambda c, g: tuple(g * m for m in reversed(_max_masks(c))))
_eq = _binary("equal", lib.PF_B_EQ, None, compare=True)
_ne = _binary("not_equal", lib.PF_B_NE, None, compare=True)
_lt = _binary("less", lib.PF_B_LT, None, compare=True)
_le = _binary("less_equal", lib.PF_B_LE, None, compare=True)
_gt = _binary("greater", lib.PF_B_GT, None, compare=True)
_ge = _binary("greater_equal", lib.PF_B_GE, None, compare=True)


def _operands(a, b):
    """Two operands of one dtype: Python numbers adopt the tensor's, tensors are promoted."""
    if not hasattr(a, "symbolic") and not hasattr(b, "symbolic"):
        a = as_operand(a)
    if hasattr(a, "symbolic"):
        b = as_operand(b, like=a)
    else:
        a = as_operand(a, like=b)
    if a.dtype is not b.dtype:
        dt = result_type(a.dtype, b.dtype)
        a = a.astype(dt) if a.dtype is not dt else a
        b = b.astype(dt) if b.dtype is not dt else b
    return a, b


def add(a, b): return apply(_add, list(_operands(a, b)))
def sub(a, b): return apply(_sub, list(_operands(a, b)))
def mul(a, b): return apply(_mul, list(_operands(a, b)))
def maximum(a, b): return apply(_maximum, list(_operands(a, b)))
def minimum(a, b): return apply(_minimum, list(_operands(a, b)))
def equal(a, b): return apply(_eq, list(_operands(a, b)))
def not_equal(a, b): return apply(_ne, list(_operands(a, b)))
def less(a, b): return apply(_lt, list(_operands(a, b)))
def less_equal(a, b): return apply(_le, list(_operands(a, b)))
def greater(a, b): return apply(_gt, list(_operands(a, b)))
def greater_equal(a, b): return apply(_ge, list(_operands(a, b)))


def div(a, b):
    a, b = _operands(a, b)
    if not a.dtype.is_float:
        a, b = a.astype("float32"), b.astype("float32")
    return apply(_div, [a, b])


def pow(a, b):  # noqa: A001 (numpy's name)
    if isinstance(b, (int, float)) and not isinstance(b, bool) and hasattr(a, "symbolic"):
        x = a if a.dtype.is_float else a.astype("float32")
        return apply(_pow_scalar, [x], {"exponent": float(b)})
    a, b = _operands(a, b)
    if not a.dtype.is_float:
        a, b = a.astype("float32"), b.astype("float32")
    return apply(_pow, [a, b])


# ---------------------------------------------------------------------------------------------
# where

class Where(Op):
    name = "where"
    inputs = ("cond", "a", "b")

    def infer(self, specs, attrs):
        c, a, b = specs
        if a.dtype is not b.dtype:
            raise errors.DTypeError("a and b have dtypes %s and %s" % (a.dtype.name, b.dtype.name))
        return [Spec(broadcast_shapes(c.shape, a.shape, b.shape), a.dtype)]

    def forward(self, k, ins, outs, attrs):
        shape = outs[0].shape
        descs = [x.desc(shape, broadcast_strides(x.shape, shape)) for x in ins]
        k.run("where", descs, [outs[0].desc()])

    def grad(self, ctx, g):
        c, a, b = ctx.inputs
        zero = g * 0.0
        ga = sum_to_like(where(c, g, zero), a) if ctx.needs[1] else None
        gb = sum_to_like(where(c, zero, g), b) if ctx.needs[2] else None
        return None, ga, gb


_where = core.register(Where)


def where(cond, a, b):
    """Elements of a where cond is nonzero, else of b (broadcasting all three)."""
    a, b = _operands(a, b)
    return apply(_where, [as_operand(cond), a, b])


# imported last: shape ops use the elementwise ones in their gradients
from .shape import sum_to_like  # noqa: E402
