"""Elementwise ops: unary maps, activations and their gradients, broadcasting binary ops,
comparisons and logical ops (bool results), where; special functions composed of them (erfc,
erfinv, lgamma, digamma, polygamma, the Bessel i0 family, the normal distribution's), the
parts of integers and floats (gcd, lcm, frexp, nextafter) and elementwise random draws
(bernoulli, normal, multinomial).

Float ops are fusable: `elementwise` tells the graph compiler how to put them in a fused kernel.
Operands of binary ops are promoted by the one rule in dtypes.result_type.
"""
import builtins
import collections
import functools
import math

import numpy as np

from .. import errors, random
from ..backend.cpu import lib
from ..dtypes import as_dtype, bool_, get_default_dtype, result_type, scalar_category
from . import core
from .core import Op, ShapeMismatch, Spec, apply, as_operand, broadcast_shapes

__all__ = [
    "neg", "exp", "log", "sqrt", "rsqrt", "abs", "sign", "square", "reciprocal", "sin", "cos",
    "tanh", "sigmoid", "relu", "leaky_relu", "gelu", "softplus", "erf", "floor", "ceil", "round",
    "log1p", "expm1", "clip", "clamp", "pow", "add", "sub", "mul", "div", "maximum", "minimum",
    "equal", "not_equal", "less", "less_equal", "greater", "greater_equal", "where", "affine",
    "trunc", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "log2",
    "log10", "exp2", "fmod", "remainder", "floor_divide", "atan2", "hypot", "lerp",
    "elu", "selu", "celu", "silu", "swish", "mish", "softsign", "logsigmoid", "hardsigmoid",
    "hardswish", "hardtanh", "relu6", "prelu", "glu",
    "logical_and", "logical_or", "logical_xor", "logical_not", "bitwise_and", "bitwise_or",
    "bitwise_xor", "bitwise_not", "bitwise_left_shift", "bitwise_right_shift", "isnan",
    "isinf", "isfinite",
    "true_divide", "multiply", "subtract", "divide", "negative", "positive", "frac", "deg2rad",
    "rad2deg", "float_power", "addcmul", "addcdiv", "logit", "xlogy", "logaddexp", "logaddexp2",
    "signbit", "copysign", "heaviside", "nan_to_num", "isclose", "allclose", "sinc",
    "eq", "ne", "lt", "le", "gt", "ge", "absolute", "clamp_min", "clamp_max",
    "fmax", "fmin", "isposinf", "isneginf", "erfc", "erfinv", "lgamma", "bernoulli", "normal",
    "multinomial",
    "ACTIVATIONS", "activation_grad", "broadcast_strides",
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
    retain_outputs = ()       # gradients read x; those that read y alone say so below

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
    return core.register(op)


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
    return core.register(op)


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
# (above PyTorch's threshold 20 softplus is x itself: a constant slope)
_softplus_grad = _act_grad("softplus_grad", lib.PF_G_SOFTPLUS, "x",
                           lambda x, g, gg, a: gg * g * less_equal(x, 20.0) * sigmoid(x)
                           * (1.0 - sigmoid(x)))



def _where_nonpositive(x, value):
    """value where x <= 0, else 0: the second derivative of the exponential-linear family."""
    return less_equal(x, 0.0) * value


def _silu_second(x, g, gg, a):
    s = sigmoid(x)
    return gg * g * s * (1.0 - s) * (2.0 + x * (1.0 - 2.0 * s))


def _mish_second(x, g, gg, a):
    t, s = tanh(softplus(x)), sigmoid(x)
    return gg * g * (1.0 - square(t)) * s * (2.0 + x * (1.0 - s) - 2.0 * x * s * t)


_GELU_C, _GELU_K = math.sqrt(2.0 / math.pi), 0.044715


def _gelu_tanh_second(x, g, gg, a):
    t = tanh((x + _GELU_K * x * square(x)) * _GELU_C)
    du = (1.0 + 3.0 * _GELU_K * square(x)) * _GELU_C
    return gg * g * (1.0 - square(t)) * (du - x * t * square(du) + x * x * (3.0 * _GELU_K * _GELU_C))


_SELU_ALPHA, _SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946
_elu_grad = _act_grad("elu_grad", lib.PF_G_ELU, "x",
                      lambda x, g, gg, a: gg * g * _where_nonpositive(x, exp(x) * a["alpha"]),
                      ("alpha",))
_selu_grad = _act_grad("selu_grad", lib.PF_G_SELU, "x",
                       lambda x, g, gg, a: gg * g * _where_nonpositive(
                           x, exp(x) * (_SELU_ALPHA * _SELU_SCALE)))
_celu_grad = _act_grad("celu_grad", lib.PF_G_CELU, "x",
                       lambda x, g, gg, a: gg * g * _where_nonpositive(
                           x, exp(x / a["alpha"]) / a["alpha"]), ("alpha",))
_silu_grad = _act_grad("silu_grad", lib.PF_G_SILU, "x", _silu_second)
_mish_grad = _act_grad("mish_grad", lib.PF_G_MISH, "x", _mish_second)
_softsign_grad = _act_grad("softsign_grad", lib.PF_G_SOFTSIGN, "x",
                           lambda x, g, gg, a: gg * g * -2.0 * sign(x)
                           / (1.0 + abs(x)) ** 3)
_logsigmoid_grad = _act_grad("logsigmoid_grad", lib.PF_G_LOGSIGMOID, "x",
                             lambda x, g, gg, a: -(gg * g * sigmoid(x) * sigmoid(-x)))
_hardsigmoid_grad = _act_grad("hardsigmoid_grad", lib.PF_G_HARDSIGMOID, "x", _zero)
_hardswish_grad = _act_grad("hardswish_grad", lib.PF_G_HARDSWISH, "x",
                            lambda x, g, gg, a: gg * g * (logical_and(greater(x, -3.0),
                                                                      less(x, 3.0)) / 3.0))
_gelu_tanh_grad = _act_grad("gelu_tanh_grad", lib.PF_G_GELU_TANH, "x", _gelu_tanh_second)

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
# d(x**p)/dx is 0 for p == 0 (PyTorch's value at x == 0, not 0 * inf)
_pow_scalar = _unary("pow_scalar", lib.PF_U_POW_SCALAR,
                     lambda c, g: g * 0.0 if c.attrs["exponent"] == 0 else
                     g * c.attrs["exponent"] * pow(c.inputs[0], c.attrs["exponent"] - 1.0),
                     ("exponent",))
_clip = _unary("clip", lib.PF_U_CLIP,
               lambda c, g: g * (greater_equal(c.inputs[0], c.attrs["lo"])
                                 * less_equal(c.inputs[0], c.attrs["hi"])), ("lo", "hi"))

# hardtanh shares clip's kernel; its gradient is PyTorch's: zero on the bounds themselves
_hardtanh = _unary("hardtanh", lib.PF_U_CLIP,
                   lambda c, g: g * logical_and(greater(c.inputs[0], c.attrs["lo"]),
                                                less(c.inputs[0], c.attrs["hi"])), ("lo", "hi"))
_trunc = _unary("trunc", lib.PF_U_TRUNC, _zeros_grad)
_tan = _unary("tan", lib.PF_U_TAN, lambda c, g: g * (1.0 + square(c.output())))
_asin = _unary("asin", lib.PF_U_ASIN, lambda c, g: g * rsqrt(1.0 - square(c.inputs[0])))
_acos = _unary("acos", lib.PF_U_ACOS, lambda c, g: -g * rsqrt(1.0 - square(c.inputs[0])))
_atan = _unary("atan", lib.PF_U_ATAN, lambda c, g: g / (1.0 + square(c.inputs[0])))
_sinh = _unary("sinh", lib.PF_U_SINH, lambda c, g: g * cosh(c.inputs[0]))
_cosh = _unary("cosh", lib.PF_U_COSH, lambda c, g: g * sinh(c.inputs[0]))
_asinh = _unary("asinh", lib.PF_U_ASINH, lambda c, g: g * rsqrt(square(c.inputs[0]) + 1.0))
_acosh = _unary("acosh", lib.PF_U_ACOSH, lambda c, g: g * rsqrt(square(c.inputs[0]) - 1.0))
_atanh = _unary("atanh", lib.PF_U_ATANH, lambda c, g: g / (1.0 - square(c.inputs[0])))
_log2 = _unary("log2", lib.PF_U_LOG2, lambda c, g: g / (c.inputs[0] * math.log(2.0)))
_log10 = _unary("log10", lib.PF_U_LOG10, lambda c, g: g / (c.inputs[0] * math.log(10.0)))
_exp2 = _unary("exp2", lib.PF_U_EXP2, lambda c, g: g * c.output() * math.log(2.0))
for _op in (_exp, _sqrt, _rsqrt, _reciprocal, _tanh, _sigmoid, _relu, _expm1, _tan, _exp2):
    _op.retain_inputs, _op.retain_outputs = (), (0,)      # gradients from y alone
for _op in (_neg, _affine, _sign, _floor, _ceil, _round, _trunc):
    _op.retain_inputs = ()                                # gradients from g alone


def _from_x(grad_op):
    """The gradient rule of an activation whose derivative is computed from its input."""
    return lambda c, g: apply(grad_op, [c.inputs[0], g], c.attrs)


_elu = _unary("elu", lib.PF_U_ELU, _from_x(_elu_grad), ("alpha",))
_selu = _unary("selu", lib.PF_U_SELU, _from_x(_selu_grad))
_celu = _unary("celu", lib.PF_U_CELU, _from_x(_celu_grad), ("alpha",))
_silu = _unary("silu", lib.PF_U_SILU, _from_x(_silu_grad))
_mish = _unary("mish", lib.PF_U_MISH, _from_x(_mish_grad))
_softsign = _unary("softsign", lib.PF_U_SOFTSIGN, _from_x(_softsign_grad))
_logsigmoid = _unary("logsigmoid", lib.PF_U_LOGSIGMOID, _from_x(_logsigmoid_grad))
_hardsigmoid = _unary("hardsigmoid", lib.PF_U_HARDSIGMOID, _from_x(_hardsigmoid_grad))
_hardswish = _unary("hardswish", lib.PF_U_HARDSWISH, _from_x(_hardswish_grad))
_gelu_tanh = _unary("gelu_tanh", lib.PF_U_GELU_TANH, _from_x(_gelu_tanh_grad))


def _float_operand(x, name):
    if not hasattr(x, "symbolic"):
        x = as_operand(x)
    if not x.dtype.is_float:
        x = x.astype(get_default_dtype())
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
def sign(x):
    """-1, 0 or 1 (0 for NaN, as PyTorch's); integers and bool keep their dtype."""
    x = as_operand(x)
    if x.dtype is bool_:
        return logical_not(logical_not(x))          # (a new tensor: bool's sign is itself)
    if x.dtype.is_float:
        return apply(_sign, [x])
    return sub(greater(x, 0).astype(x.dtype), less(x, 0).astype(x.dtype))   # integers stay
def square(x): return apply(_square, [_float_operand(x, "square")])
def reciprocal(x): return apply(_reciprocal, [_float_operand(x, "reciprocal")])
def sin(x): return apply(_sin, [_float_operand(x, "sin")])
def cos(x): return apply(_cos, [_float_operand(x, "cos")])
def tanh(x): return apply(_tanh, [_float_operand(x, "tanh")])
def sigmoid(x): return apply(_sigmoid, [_float_operand(x, "sigmoid")])
def relu(x): return apply(_relu, [_float_operand(x, "relu")])
def trunc(x): return _rounding(_trunc, x, "trunc")
def tan(x): return apply(_tan, [_float_operand(x, "tan")])
def asin(x): return apply(_asin, [_float_operand(x, "asin")])
def acos(x): return apply(_acos, [_float_operand(x, "acos")])
def atan(x): return apply(_atan, [_float_operand(x, "atan")])
def sinh(x): return apply(_sinh, [_float_operand(x, "sinh")])
def cosh(x): return apply(_cosh, [_float_operand(x, "cosh")])
def asinh(x): return apply(_asinh, [_float_operand(x, "asinh")])
def acosh(x): return apply(_acosh, [_float_operand(x, "acosh")])
def atanh(x): return apply(_atanh, [_float_operand(x, "atanh")])
def log2(x): return apply(_log2, [_float_operand(x, "log2")])
def log10(x): return apply(_log10, [_float_operand(x, "log10")])
def exp2(x): return apply(_exp2, [_float_operand(x, "exp2")])
def selu(x): return apply(_selu, [_float_operand(x, "selu")])
def silu(x): return apply(_silu, [_float_operand(x, "silu")])
def mish(x): return apply(_mish, [_float_operand(x, "mish")])
def softsign(x): return apply(_softsign, [_float_operand(x, "softsign")])
def logsigmoid(x): return apply(_logsigmoid, [_float_operand(x, "logsigmoid")])
def hardsigmoid(x): return apply(_hardsigmoid, [_float_operand(x, "hardsigmoid")])
def hardswish(x): return apply(_hardswish, [_float_operand(x, "hardswish")])


swish = silu


def gelu(x, approximate="none"):
    """x * Phi(x); approximate="tanh": PyTorch's tanh approximation (its own op)."""
    if approximate == "tanh":
        return apply(_gelu_tanh, [_float_operand(x, "gelu")])
    if approximate != "none":
        raise ValueError("gelu: approximate must be 'none' or 'tanh', got %r" % (approximate,))
    return apply(_gelu, [_float_operand(x, "gelu")])


def softplus(x, beta=1.0, threshold=20.0):
    """log(1 + exp(beta * x)) / beta, and x itself where beta * x > threshold (PyTorch's
    definition). The defaults run one native op; other values compose it."""
    x = _float_operand(x, "softplus")
    if beta == 1 and threshold == 20:
        return apply(_softplus, [x])
    if beta <= 0:
        raise ValueError("softplus: beta must be positive, got %r" % (beta,))
    bx = x * float(beta)
    return where(greater(bx, float(threshold)), x, apply(_softplus, [bx]) / float(beta))


def elu(x, alpha=1.0):
    return apply(_elu, [_float_operand(x, "elu")], {"alpha": float(alpha)})


def celu(x, alpha=1.0):
    if alpha == 0:
        raise ValueError("celu: alpha must not be 0")
    return apply(_celu, [_float_operand(x, "celu")], {"alpha": float(alpha)})


def hardtanh(x, min_val=-1.0, max_val=1.0):
    if min_val > max_val:
        raise ValueError("hardtanh: min_val (%r) must not exceed max_val (%r)" % (min_val, max_val))
    return apply(_hardtanh, [_float_operand(x, "hardtanh")],
                 {"lo": float(min_val), "hi": float(max_val)})


def relu6(x):
    return hardtanh(x, 0.0, 6.0)


def prelu(x, weight):
    """max(0, x) + weight * min(0, x); weight has one value, or one per channel (axis 1)."""
    x = _float_operand(x, "prelu")
    weight = as_operand(weight)
    wshape = tuple(weight.shape)
    if len(wshape) > 1 or (wshape and wshape[0] != 1 and
                           (len(x.shape) < 2 or x.shape[1] not in (None, wshape[0]))):
        scope = core.current_scope()
        raise errors.ShapeError("prelu%s: weight must have 1 value or one per channel (axis 1 "
                                "of x %s), got shape %s"
                                % (" in layer '%s'" % scope if scope else "",
                                   core.fmt_shape(x.shape), core.fmt_shape(wshape)))
    if wshape and wshape[0] != 1 and len(x.shape) > 2:
        weight = _shape.reshape(weight, (wshape[0],) + (1,) * (len(x.shape) - 2))
    return where(greater(x, 0.0), x, x * weight)


def glu(x, axis=-1):
    """a * sigmoid(b), a and b the two halves of x along axis."""
    x = as_operand(x)
    ax = core.normalize_axis(axis, len(x.shape), "glu")
    n = x.shape[ax]
    if n is not None and n % 2:
        raise errors.ShapeError("glu: axis %d of x %s has odd size %d; it must split in halves"
                                % (axis, core.fmt_shape(x.shape), n))
    half = n // 2
    lead = (slice(None),) * ax
    return x[lead + (slice(0, half),)] * sigmoid(x[lead + (slice(half, None),)])


# ---- torch.nn.functional's shrink and threshold activations, composed of where and clip: each
# condition is written as PyTorch's kernel tests it, so NaN takes PyTorch's branch (and its
# gradient); rrelu, which draws, is dropout's neighbour (ops/dropout.py)

def hardshrink(x, lambd=0.5):
    """x where |x| > lambd, else 0 (torch's F.hardshrink)."""
    x = _float_operand(x, "hardshrink")
    return where(less_equal(abs(x), float(lambd)), 0.0, x)


def softshrink(x, lambd=0.5):
    """x - lambd above lambd, x + lambd below -lambd, else 0 (torch's F.softshrink): x minus x
    clipped to [-lambd, lambd]."""
    if not lambd >= 0:
        raise ValueError("softshrink: lambd must be >= 0, got %r" % (lambd,))
    x = _float_operand(x, "softshrink")
    return x - clip(x, -float(lambd), float(lambd))


def tanhshrink(x):
    """x - tanh(x) (torch's F.tanhshrink)."""
    x = _float_operand(x, "tanhshrink")
    return x - tanh(x)


def threshold(x, threshold, value, inplace=False):
    """x where x > threshold, else value (torch's F.threshold). inplace is accepted for
    PyTorch's signature; the result is always a new tensor."""
    x = as_operand(x)
    return where(less_equal(x, threshold), value, x)


__all__ += ["hardshrink", "softshrink", "tanhshrink", "threshold"]


def erf(x): return apply(_erf, [_float_operand(x, "erf")])
def _rounding(op, x, name):
    """floor, ceil, round and trunc: integers are whole already and keep their dtype (a new
    tensor, as PyTorch's); floats and bool go through the kernel."""
    x = as_operand(x)
    if not x.dtype.is_float and x.dtype is not bool_:
        return mul(x, 1)
    return apply(op, [_float_operand(x, name)])


def floor(x): return _rounding(_floor, x, "floor")
def ceil(x): return _rounding(_ceil, x, "ceil")
def round(x, decimals=0):  # noqa: A001 (numpy's name)
    """Halves to even (PyTorch's and NumPy's). decimals= rounds to that many decimal places
    as PyTorch does it, in x's dtype: round(x * 10**d) / 10**d, or for d < 0
    round(x / 10**-d) * 10**-d (so 1.25 with one decimal is 1.2: 12.5 goes to even)."""
    if not decimals:
        return _rounding(_round, x, "round")
    x = as_operand(x)
    if not x.dtype.is_float:
        raise errors.DTypeError("round: decimals=%d needs a float tensor, got %s (PyTorch "
                                "refuses integers there too)" % (decimals, x.dtype.name))
    scale = 10.0 ** builtins.abs(int(decimals))
    if decimals > 0:
        return div(apply(_round, [mul(x, scale)]), scale)
    return mul(apply(_round, [div(x, scale)]), scale)
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


def clip(x, lo=None, hi=None, *, min=None, max=None):  # noqa: A002 (PyTorch's names)
    """x limited to [lo, hi] (min= and max= are PyTorch's names for them); either bound may
    be None (no limit on that side) or a tensor (broadcast against x). Integer tensors stay
    integer. Where lo > hi every element is hi, and a NaN bound makes every element NaN, as
    in PyTorch."""
    for name, ours, torch_value in (("min", lo, min), ("max", hi, max)):
        if ours is not None and torch_value is not None:
            raise TypeError("clip: got both %s and %s=" % ("lo" if name == "min" else "hi",
                                                          name))
    lo = min if lo is None else lo
    hi = max if hi is None else hi
    if lo is None and hi is None:
        raise ValueError("clip: give lo, hi or both")
    x = as_operand(x)
    if hasattr(lo, "symbolic") or hasattr(hi, "symbolic") or not x.dtype.is_float:
        # tensor bounds (or integers): max with lo, then min with hi, elementwise
        y = x if lo is None else maximum(x, lo)
        return y if hi is None else minimum(y, hi)
    lo = -math.inf if lo is None else float(lo)
    hi = math.inf if hi is None else float(hi)
    if math.isnan(lo) or math.isnan(hi):
        # (the kernel's comparisons would let every element through); x * 0 keeps the
        # tape, with the zero gradient PyTorch gives there
        return x * 0.0 + math.nan
    return apply(_clip, [x], {"lo": builtins.min(lo, hi), "hi": hi})


def clamp(x, min=None, max=None):  # noqa: A002 (PyTorch's argument names)
    return clip(x, min, max)


# ---------------------------------------------------------------------------------------------
# binary, with numpy broadcasting

_FLOAT, _INT, _BOOL = "float", "int", "bool"


def _category(dtype):
    return _FLOAT if dtype.is_float else _BOOL if dtype.is_bool else _INT


class Binary(Op):
    """c = a op b, one dtype in and out; `kinds`: the dtype categories the op takes."""

    inputs = ("a", "b")
    kernel = "binary"

    def __init__(self, name, code, grad_rule, kinds=(_FLOAT, _INT)):
        self.name = name
        self.code = code
        self.grad_rule = grad_rule
        self.kinds = kinds
        self.differentiable = grad_rule is not None

    @property
    def elementwise(self):
        return ("binary", self.code)

    def out_dtype(self, dtype):
        return dtype

    def infer(self, specs, attrs):
        a, b = specs
        if a.dtype is not b.dtype:
            raise errors.DTypeError("operands have dtypes %s and %s (cast one first)"
                                    % (a.dtype.name, b.dtype.name))
        if _category(a.dtype) not in self.kinds:
            raise errors.DTypeError("%s does not take %s operands" % (self.name, a.dtype.name))
        return [Spec(broadcast_shapes(a.shape, b.shape), self.out_dtype(a.dtype))]

    def forward(self, k, ins, outs, attrs):
        shape = outs[0].shape
        a, b = ins
        da = a.desc(shape, broadcast_strides(a.shape, shape))
        db = b.desc(shape, broadcast_strides(b.shape, shape))
        k.run(self.kernel, [da, db], [outs[0].desc()], (self.code,))

    def grad(self, ctx, g):
        a, b = ctx.inputs
        ga, gb = self.grad_rule(ctx, g)
        # (an eager gradient of the operand's own shape needs no reduction: skipped without a
        # call, as most are; graph shapes may hold unknown dims, which sum_to_like resolves)
        needs = ctx.needs
        if ga is not None and needs[0] and (ga.symbolic or ga.shape != a.shape):
            ga = sum_to_like(ga, a)
        if gb is not None and needs[1] and (gb.symbolic or gb.shape != b.shape):
            gb = sum_to_like(gb, b)
        return ga, gb


class Compare(Binary):
    """a op b as a bool tensor (any dtype in); never fused: the fused programs are float."""

    kernel = "compare"
    elementwise = None

    def __init__(self, name, code):
        super().__init__(name, code, None, (_FLOAT, _INT, _BOOL))

    def out_dtype(self, dtype):
        return bool_


def _binary(name, code, grad_rule, kinds=(_FLOAT, _INT)):
    op = Binary(name, code, grad_rule, kinds)
    return core.register(op)


def _compare(name, code):
    op = Compare(name, code)
    return core.register(op)


def _max_masks(ctx):
    a, b = ctx.inputs
    ma = greater(a, b) + equal(a, b) * 0.5
    return ma, 1.0 - ma


def _pow_grad(c, g):
    a, b = c.inputs
    # PyTorch's values where the formulas give 0 * inf: d/da is 0 where b == 0, d/db is 0 where
    # a == 0 and b >= 0
    ga = gb = None
    if c.needs[0]:
        ga = where(equal(b, 0.0), 0.0, g * b * pow(a, b - 1.0))
    if c.needs[1]:
        gb = g * where(logical_and(equal(a, 0.0), greater_equal(b, 0.0)), 0.0,
                       c.output() * log(a))
    return ga, gb


_add = _binary("add", lib.PF_B_ADD, lambda c, g: (g, g))
_sub = _binary("sub", lib.PF_B_SUB, lambda c, g: (g, -g if c.needs[1] else None))
_mul = _binary("mul", lib.PF_B_MUL, lambda c, g: (g * c.inputs[1] if c.needs[0] else None,
                                                  g * c.inputs[0] if c.needs[1] else None),
               (_FLOAT, _INT, _BOOL))
_div = _binary("div", lib.PF_B_DIV, lambda c, g: (
    g / c.inputs[1] if c.needs[0] else None,
    -(g * c.output()) / c.inputs[1] if c.needs[1] else None), (_FLOAT,))
_pow = _binary("pow", lib.PF_B_POW, _pow_grad)
_maximum = _binary("maximum", lib.PF_B_MAX,
                   lambda c, g: tuple(g * m for m in _max_masks(c)), (_FLOAT, _INT, _BOOL))
_minimum = _binary("minimum", lib.PF_B_MIN,
                   lambda c, g: tuple(g * m for m in reversed(_max_masks(c))),
                   (_FLOAT, _INT, _BOOL))
_fmod = _binary("fmod", lib.PF_B_FMOD, lambda c, g: (
    g if c.needs[0] else None,
    -g * trunc(c.inputs[0] / c.inputs[1]) if c.needs[1] else None))
_remainder = _binary("remainder", lib.PF_B_REMAINDER, lambda c, g: (
    g if c.needs[0] else None,
    -g * floor(c.inputs[0] / c.inputs[1]) if c.needs[1] else None))
_floor_divide = _binary("floor_divide", lib.PF_B_FLOOR_DIVIDE, None)


def _atan2_grad(c, g):
    # PyTorch's formulas and order of operations: g * b / (a^2 + b^2) and g * -a / (...),
    # with the reciprocal taken as 0 at a == b == 0 (0 / 0 there; PyTorch's gradient is 0).
    # 1 / inf gives that 0 without a NaN in either branch of the where.
    a, b = c.inputs
    den = square(a) + square(b)
    recip = reciprocal(where(equal(den, 0.0), math.inf, den))
    return (g * b * recip if c.needs[0] else None,
            g * neg(a) * recip if c.needs[1] else None)


_atan2 = _binary("atan2", lib.PF_B_ATAN2, _atan2_grad, (_FLOAT,))
# what the gradients read: add and sub nothing (shapes), mul and div the other operand where
# the one that needs a gradient is multiplied by it
_add.retain_inputs = _add.retain_outputs = _sub.retain_inputs = _sub.retain_outputs = ()
_mul.retain_inputs, _mul.retain_outputs = (lambda a, n: tuple(i for i in (0, 1) if n[1 - i])), ()
_div.retain_inputs, _div.retain_outputs = (1,), (lambda a, n: (0,) if n[1] else ())
_hypot = _binary("hypot", lib.PF_B_HYPOT, lambda c, g: (
    g * c.inputs[0] / c.output() if c.needs[0] else None,
    g * c.inputs[1] / c.output() if c.needs[1] else None), (_FLOAT,))
_bitwise_and = _binary("bitwise_and", lib.PF_B_BITWISE_AND, None, (_INT,))
_bitwise_or = _binary("bitwise_or", lib.PF_B_BITWISE_OR, None, (_INT,))
_bitwise_xor = _binary("bitwise_xor", lib.PF_B_BITWISE_XOR, None, (_INT,))
_eq = _compare("equal", lib.PF_B_EQ)
_ne = _compare("not_equal", lib.PF_B_NE)
_lt = _compare("less", lib.PF_B_LT)
_le = _compare("less_equal", lib.PF_B_LE)
_gt = _compare("greater", lib.PF_B_GT)
_ge = _compare("greater_equal", lib.PF_B_GE)


_PY_NUMBERS = (float, int, bool)


def _operands(a, b, min_category=None):
    """Two operands (a list, as apply() takes them) of the one dtype the promotion rule
    (dtypes.result_type) gives them; with min_category "float", integer and bool operands
    become float32 (true division)."""
    # a float tensor with a Python number (x * 1.5, 1 - x) keeps its dtype (result_type's rule)
    if type(b) in _PY_NUMBERS and hasattr(a, "symbolic") and a.dtype.is_float:
        return [a, core.number_operand(b, a.dtype)]
    if type(a) in _PY_NUMBERS and hasattr(b, "symbolic") and b.dtype.is_float:
        return [core.number_operand(a, b.dtype), b]
    if hasattr(a, "symbolic") and hasattr(b, "symbolic") and a.dtype is b.dtype and (
            min_category is None or a.dtype.is_float):
        return [a, b]                  # the common case, kept cheap: eager dispatch
    ca, cb = scalar_category(a), scalar_category(b)
    if ca is not None and cb is not None:
        a, ca = as_operand(a), None
    if ca is None and not hasattr(a, "symbolic"):
        a = as_operand(a, like=b if hasattr(b, "symbolic") else None)
    if cb is None and not hasattr(b, "symbolic"):
        b = as_operand(b, like=a if hasattr(a, "symbolic") else None)
    dt = result_type(a if ca is not None else a.dtype, b if cb is not None else b.dtype)
    if min_category == _FLOAT and not dt.is_float:
        dt = result_type(dt, 1.0)
    a = as_operand(a, dtype=dt) if ca is not None else a if a.dtype is dt else a.astype(dt)
    b = as_operand(b, dtype=dt) if cb is not None else b if b.dtype is dt else b.astype(dt)
    return [a, b]


def add(a, b):
    a, b = _operands(a, b)
    return apply(_maximum if a.dtype is bool_ else _add, [a, b])   # bool + bool: or


def sub(a, b):
    a, b = _operands(a, b)
    if a.dtype is bool_:
        raise errors.DTypeError("sub: subtracting bool tensors is not defined (PyTorch refuses "
                                "it too); use logical_xor or cast to an integer dtype")
    return apply(_sub, [a, b])


def mul(a, b): return apply(_mul, _operands(a, b))
def maximum(a, b): return apply(_maximum, _operands(a, b))
def minimum(a, b): return apply(_minimum, _operands(a, b))
def equal(a, b): return apply(_eq, _operands(a, b))
def not_equal(a, b): return apply(_ne, _operands(a, b))
def less(a, b): return apply(_lt, _operands(a, b))
def less_equal(a, b): return apply(_le, _operands(a, b))
def greater(a, b): return apply(_gt, _operands(a, b))
def greater_equal(a, b): return apply(_ge, _operands(a, b))
def div(a, b, *, rounding_mode=None):
    """a / b, a float result (true division). PyTorch's rounding_mode= rounds the quotient:
    "floor" is floor_divide (Python's //), "trunc" rounds toward zero (C's integer division);
    both keep integer operands integer."""
    if rounding_mode is None:
        return apply(_div, _operands(a, b, _FLOAT))
    if rounding_mode == "floor":
        return floor_divide(a, b)
    if rounding_mode != "trunc":
        raise ValueError("div: rounding_mode must be None, 'floor' or 'trunc', got %r"
                         % (rounding_mode,))
    a, b = _integer_or_float("div", a, b)
    if a.dtype.is_float:
        return trunc(apply(_div, [a, b]))
    # exact for integers: a - fmod(a, b) is a multiple of b (and fmod refuses a zero b)
    return floor_divide(a - fmod(a, b), b)
def atan2(a, b): return apply(_atan2, _operands(a, b, _FLOAT))
def hypot(a, b): return apply(_hypot, _operands(a, b, _FLOAT))


def _integer_or_float(name, a, b):
    a, b = _operands(a, b)
    if a.dtype is bool_:
        raise errors.DTypeError("%s does not take bool operands (cast to an integer dtype)"
                                % name)
    return a, b


def fmod(a, b):
    """C's fmod: the remainder of a / b truncated toward zero; the sign of a."""
    return apply(_fmod, list(_integer_or_float("fmod", a, b)))


def remainder(a, b):
    """Python's (and PyTorch's) %: a - b * floor(a / b); the sign of b."""
    return apply(_remainder, list(_integer_or_float("remainder", a, b)))


def floor_divide(a, b):
    """Python's //: floor(a / b), integer for integer operands (a zero divisor is an error)."""
    return apply(_floor_divide, list(_integer_or_float("floor_divide", a, b)))


def pow(a, b):  # noqa: A001 (numpy's name)
    """a ** b. Integer ** integer stays integer; a negative Python-int exponent of an integer
    tensor is refused, as in PyTorch."""
    if scalar_category(b) in (1, 2) and hasattr(a, "symbolic") and a.dtype.is_float:
        return apply(_pow_scalar, [a], {"exponent": float(b)})
    if scalar_category(b) == 1 and b < 0 and hasattr(a, "symbolic") and not a.dtype.is_float:
        raise errors.DTypeError("pow: integers to negative integer powers are not allowed "
                                "(exponent %d on a %s tensor)" % (b, a.dtype.name))
    a, b = _operands(a, b)
    if a.dtype is bool_:
        a, b = a.astype("int64"), b.astype("int64")
    return apply(_pow, [a, b])


def lerp(start, end, weight):
    """start + weight * (end - start)."""
    return start + weight * (end - start)


# ---------------------------------------------------------------------------------------------
# logical ops and float classification: bool results

def _truth(x):
    x = as_operand(x)
    return x if x.dtype is bool_ else not_equal(x, 0)


def logical_and(a, b): return apply(_minimum, _operands(_truth(a), _truth(b)))
def logical_or(a, b): return apply(_maximum, _operands(_truth(a), _truth(b)))
def logical_xor(a, b): return not_equal(_truth(a), _truth(b))
def logical_not(x): return equal(_truth(x), False)


# bitwise ops: integers bit by bit, bool the logical ops (PyTorch's & | ^ ~); floats refused
def _bitwise(name, op, logical, a, b):
    a, b = _operands(a, b)
    if a.dtype is bool_:
        return logical(a, b)
    if a.dtype.is_float:
        raise errors.DTypeError("%s takes integer or bool tensors, got %s (compare first for a "
                                "mask, or use logical_%s)" % (name, a.dtype.name, name[8:]))
    return apply(op, [a, b])


def bitwise_and(a, b): return _bitwise("bitwise_and", _bitwise_and, logical_and, a, b)
def bitwise_or(a, b): return _bitwise("bitwise_or", _bitwise_or, logical_or, a, b)
def bitwise_xor(a, b): return _bitwise("bitwise_xor", _bitwise_xor, logical_xor, a, b)


def bitwise_not(x):
    """~x: every bit flipped for integers (~5 == -6), logical not for bool."""
    x = as_operand(x)
    if x.dtype is bool_:
        return logical_not(x)
    if x.dtype.is_float:
        raise errors.DTypeError("bitwise_not takes integer or bool tensors, got %s (use "
                                "logical_not)" % x.dtype.name)
    return apply(_bitwise_xor, _operands(x, -1))


# shifts (PyTorch's << and >>), composed: a << k is a * 2**k and a >> k is floor(a / 2**k),
# which is exactly the arithmetic shift of two's complement integers (negatives included)

def _shift_operands(name, a, b):
    a, b = _operands(a, b)
    if a.dtype is bool_:                       # (PyTorch shifts bools as integers too)
        a, b = a.astype("int64"), b.astype("int64")
    if a.dtype.is_float:
        raise errors.DTypeError("%s takes integer tensors, got %s (PyTorch refuses floats "
                                "too)" % (name, a.dtype.name))
    return a, b, 8 * a.dtype.itemsize


def bitwise_left_shift(a, b):
    """a << b, as PyTorch's: bits shifted out of the dtype are lost (the result wraps, as
    a * 2**b does), and a shift below 0 or of the dtype's width or more gives 0."""
    if type(b) is int and hasattr(a, "symbolic") and not a.dtype.is_float:
        bits = 8 * a.dtype.itemsize if a.dtype is not bool_ else 64
        if a.dtype is bool_:
            a = a.astype("int64")
        if not 0 <= b < bits:
            return mul(a, 0)
        factor = 1 << b                        # as the dtype holds it: 1 << 63 is -2**63
        return mul(a, factor - (1 << bits) if factor >= 1 << (bits - 1) else factor)
    a, b, bits = _shift_operands("bitwise_left_shift", a, b)
    # 2**(bits - 1) does not fit the dtype: that last shift doubles the one before it
    shifted = a * pow(2, clip(b, 0, bits - 2))
    shifted = where(equal(b, bits - 1), shifted * 2, shifted)
    return where(logical_and(greater_equal(b, 0), less(b, bits)), shifted, 0)


def bitwise_right_shift(a, b):
    """a >> b, as PyTorch's: an arithmetic shift (floor(a / 2**b): -5 >> 1 is -3); a shift
    below 0 or of the dtype's width - 1 or more leaves the sign alone (0 or -1)."""
    if type(b) is int and hasattr(a, "symbolic") and not a.dtype.is_float:
        if a.dtype is bool_:
            a = a.astype("int64")
        bits = 8 * a.dtype.itemsize
        if 0 <= b < bits - 1:
            return floor_divide(a, 1 << b)
        return neg(less(a, 0).astype(a.dtype))
    a, b, bits = _shift_operands("bitwise_right_shift", a, b)
    sign = neg(less(a, 0).astype(a.dtype))
    shifted = floor_divide(a, pow(2, clip(b, 0, bits - 2)))
    return where(logical_or(less(b, 0), greater_equal(b, bits - 1)), sign, shifted)


def isnan(x):
    x = as_operand(x)
    return not_equal(x, x) if x.dtype.is_float else equal(x, x) * False


def isinf(x):
    x = as_operand(x)
    return equal(abs(x), math.inf) if x.dtype.is_float else equal(x, x) * False


def isfinite(x):
    x = as_operand(x)
    return less(abs(x), math.inf) if x.dtype.is_float else equal(x, x)


# ---------------------------------------------------------------------------------------------
# where

class Where(Op):
    name = "where"
    retain_inputs, retain_outputs = (0,), ()        # the condition; a and b by shape
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
        # the branch not taken gets an exact 0, as PyTorch's (g * 0 would pass on a NaN or inf
        # in g: compositions guard a branch's poles with where, whose gradient must stop there)
        c, a, b = ctx.inputs
        ga = sum_to_like(where(c, g, 0.0), a) if ctx.needs[1] else None
        gb = sum_to_like(where(c, 0.0, g), b) if ctx.needs[2] else None
        return None, ga, gb


_where = core.register(Where)


def where(condition, input=None, other=None):  # noqa: A002 (PyTorch's names)
    """Elements of input where condition is true (nonzero), else of other (broadcasting all
    three). where(condition) alone is nonzero(condition, as_tuple=True), as PyTorch's (eager
    only: the count depends on the values)."""
    if input is None and other is None:
        return _shape.nonzero(condition, as_tuple=True)
    if input is None or other is None:
        raise TypeError("where: give both input and other (or neither: where(condition) is "
                        "nonzero(condition, as_tuple=True))")
    a, b = _operands(input, other)
    return apply(_where, [as_operand(condition), a, b])


# ---------------------------------------------------------------------------------------------
# more of NumPy's and PyTorch's elementwise names, composed of the ops above (their gradients
# are the compositions')

def true_divide(a, b): return div(a, b)
def multiply(a, b): return mul(a, b)
def subtract(a, b): return sub(a, b)
def divide(a, b, *, rounding_mode=None): return div(a, b, rounding_mode=rounding_mode)
def negative(x): return neg(x)
def positive(x): return as_operand(x)
def frac(x): return x - trunc(x)
def deg2rad(x): return mul(_float_operand(x, "deg2rad"), math.pi / 180.0)
def eq(a, b): return equal(a, b)
def ne(a, b): return not_equal(a, b)
def lt(a, b): return less(a, b)
def le(a, b): return less_equal(a, b)
def gt(a, b): return greater(a, b)
def ge(a, b): return greater_equal(a, b)
def absolute(x): return abs(x)
def clamp_min(x, min): return clip(x, min, None)  # noqa: A002 (PyTorch's argument names)
def clamp_max(x, max): return clip(x, None, max)  # noqa: A002
def rad2deg(x): return mul(_float_operand(x, "rad2deg"), 180.0 / math.pi)


def float_power(a, b):
    """a ** b in float64 (PyTorch's float_power)."""
    a, b = as_operand(a), b if scalar_category(b) else as_operand(b)
    return pow(a.astype("float64"), b if scalar_category(b) else b.astype("float64"))


def addcmul(x, t1, t2, value=1.0):
    """x + value * t1 * t2."""
    return x + value * (t1 * t2)


def addcdiv(x, t1, t2, value=1.0):
    """x + value * t1 / t2."""
    return x + value * (t1 / t2)


def logit(x, eps=None):
    """log(x / (1 - x)); with eps, x is clamped to [eps, 1 - eps] first. -inf and inf at 0
    and 1, where the gradient is inf, as PyTorch's."""
    x = _float_operand(x, "logit")
    if eps is not None:
        x = clip(x, eps, 1.0 - eps)
    # log(x / (1 - x)) gives PyTorch's values exactly, but its chain of gradients is 0 / 0 at
    # x == 1. At 0 and 1 the value comes from log(x) - log1p(-x) instead (the same -inf and
    # inf; gradient 1/x + 1/(1 - x), inf there), and the other branch sees x moved off the
    # edges, so that neither branch's unused (zero) gradient meets a 0 / 0.
    edge = logical_or(equal(x, 0.0), equal(x, 1.0))
    inner = where(edge, 0.5, x)
    return where(edge, log(x) - log1p(neg(x)), log(inner / (1.0 - inner)))


def xlogy(x, y):
    """x * log(y), 0 where x is 0 (unless y is NaN), as PyTorch's. Where x is 0 and y is not
    positive, log is taken of 1 instead, so that the gradient there is finite too."""
    x, y = _operands(x, y, _FLOAT)
    out = x * log(where(logical_and(equal(x, 0), less_equal(y, 0)), 1.0, y))
    return where(isnan(y), y, out)


def logaddexp(a, b):
    """log(exp(a) + exp(b)) without overflow (equal infinities give themselves)."""
    a, b = _operands(a, b, _FLOAT)
    m = maximum(a, b)
    d = where(equal(a, b), 0.0, a - b)       # inf - inf: the two are equal
    return m + log1p(exp(neg(abs(d))))


def logaddexp2(a, b):
    """log2(2**a + 2**b) without overflow."""
    ln2 = math.log(2.0)
    return logaddexp(mul(_float_operand(a, "logaddexp2"), ln2),
                     mul(_float_operand(b, "logaddexp2"), ln2)) / ln2


def signbit(x):
    """Whether x's sign bit is set (-0.0 included), as bool."""
    x = as_operand(x)
    if not x.dtype.is_float:
        return less(x, 0)
    # 1 / -0.0 is -inf: the only way to see the sign of a zero without bit access
    return logical_or(less(x, 0), logical_and(equal(x, 0), less(div(1.0, x), 0)))


def copysign(a, b):
    """|a| with the sign of b (-0.0 counts as negative), as float."""
    a = _float_operand(a, "copysign")
    return where(signbit(as_operand(b)), neg(abs(a)), abs(a))


def heaviside(x, values):
    """0 where x < 0, values where x == 0, 1 where x > 0."""
    x, values = _operands(x, values)
    return where(equal(x, 0), values, where(greater(x, 0), 1, 0).astype(x.dtype))


def nan_to_num(x, nan=0.0, posinf=None, neginf=None):
    """NaN, +inf and -inf replaced by nan, posinf and neginf (by default 0 and the dtype's
    largest and lowest finite values); the gradient passes where nothing was replaced."""
    x = as_operand(x)
    if not x.dtype.is_float:
        return x
    info = np.finfo(x.dtype.np)
    posinf = float(info.max) if posinf is None else posinf
    neginf = float(info.min) if neginf is None else neginf
    out = where(isnan(x), nan, x)
    out = where(equal(x, math.inf), posinf, out)
    return where(equal(x, -math.inf), neginf, out)


def isclose(a, b, rtol=1e-5, atol=1e-8, equal_nan=False):
    """|a - b| <= atol + rtol * |b| elementwise, as bool (equal infinities are close)."""
    a, b = _operands(a, b)
    if not a.dtype.is_float:
        a, b = a.astype("float64"), b.astype("float64")
    close = logical_or(equal(a, b), less_equal(abs(a - b), atol + rtol * abs(b)))
    return logical_or(close, logical_and(isnan(a), isnan(b))) if equal_nan else close


def allclose(a, b, rtol=1e-5, atol=1e-8, equal_nan=False):
    """Whether every element is close (isclose), as a Python bool."""
    from . import reduction

    return bool(reduction.all(isclose(a, b, rtol, atol, equal_nan)).item())


def sinc(x):
    """sin(pi x) / (pi x), 1 at 0."""
    x = _float_operand(x, "sinc")
    zero = equal(x, 0)
    px = where(zero, 1.0, x) * math.pi
    return where(zero, 1.0, sin(px) / px)


# ---------------------------------------------------------------------------------------------
# PyTorch's fmax / fmin and infinity tests

def fmax(a, b):
    """The larger of a and b, the other one where one is NaN (NaN only where both are), as
    PyTorch's fmax; a tie's gradient goes to a, as PyTorch's does (maximum splits it)."""
    a, b = _operands(a, b)
    return where(logical_or(greater_equal(a, b), isnan(b)), a, b)


def fmin(a, b):
    """The smaller of a and b, the other one where one is NaN, as PyTorch's fmin."""
    a, b = _operands(a, b)
    return where(logical_or(less_equal(a, b), isnan(b)), a, b)


def isposinf(x):
    """Whether x is +inf, as bool (False for integers)."""
    x = as_operand(x)
    return equal(x, math.inf) if x.dtype.is_float else equal(x, x) * False


def isneginf(x):
    """Whether x is -inf, as bool (False for integers)."""
    x = as_operand(x)
    return equal(x, -math.inf) if x.dtype.is_float else equal(x, x) * False


# ---------------------------------------------------------------------------------------------
# special functions without a kernel of their own: compositions of the native ones, accurate
# to a few ulps in float64, whose gradients are the compositions' (they match the analytic
# derivatives to rounding). float32 goes through float64, so its results are correctly
# rounded but for rare ties.

def _through_float64(fn, x):
    if x.dtype.name == "float64":
        return fn(x)
    return _shape.cast(fn(_shape.cast(x, "float64")), x.dtype)


def _polynomial(coefficients, z):
    """c[0] + c[1] z + ... by Horner's rule (coefficients lowest first)."""
    out = coefficients[-1]
    for c in reversed(coefficients[:-1]):
        out = out * z + c
    return out


# W. J. Cody's rational approximations of erfc(y) exp(y^2) (Math. Comp. 23, 1969; netlib's
# calerf): C/D for 0.46875 < y <= 4, P/Q for y > 4
_CODY_C = (5.64188496988670089e-1, 8.88314979438837594e0, 6.61191906371416295e1,
           2.98635138197400131e2, 8.81952221241769090e2, 1.71204761263407058e3,
           2.05107837782607147e3, 1.23033935479799725e3, 2.15311535474403846e-8)
_CODY_D = (1.57449261107098347e1, 1.17693950891312499e2, 5.37181101862009858e2,
           1.62138957456669019e3, 3.29079923573345963e3, 4.36261909014324716e3,
           3.43936767414372164e3, 1.23033935480374942e3)
_CODY_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
           1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_CODY_Q = (2.56852019228982242e0, 1.87295284992346047e0, 5.27905102951428412e-1,
           6.05183413124413191e-2, 2.33520497626869185e-3)
_CODY_SMALL = 0.46875


def erfc(x):
    """1 - erf(x), without that difference's cancellation for large x (erfc(10) is 2e-45, not
    0): Cody's rational approximations beyond |x| = 0.46875, 1 - erf(x) within."""
    return _through_float64(_erfc64, _float_operand(x, "erfc"))


def _erfc64(x):
    y = abs(x)
    small = less_equal(y, _CODY_SMALL)
    # each branch takes a value in its own range where it is not used: where() sends the
    # unused branch a zero gradient, and zero times an infinite slope would still be NaN.
    # Beyond 30 erfc is 0 in float64 (and its slope too).
    y = minimum(where(small, 1.0, y), 30.0)
    scaled = _erfcx_cody(y)
    # exp(-y^2) as exp(-a^2) exp(-(y - a)(y + a)) with a = y rounded down to 1/16: y^2 itself
    # would carry y's rounding error, amplified by the exponential
    a = trunc(y * 16.0) / 16.0
    tail = exp(-(a * a)) * exp(-((y - a) * (y + a))) * scaled
    tail = where(less(x, 0.0), 2.0 - tail, tail)
    return where(isnan(x), x, where(small, 1.0 - erf(x), tail))


def _erfcx_cody(y):
    """erfc(y) exp(y^2) for y > 0.46875 (inf included): Cody's two rational approximations."""
    mid = minimum(y, 4.0)
    num, den = _CODY_C[8] * mid, mid
    for c, d in zip(_CODY_C[:7], _CODY_D[:7]):
        num, den = (num + c) * mid, (den + d) * mid
    near = (num + _CODY_C[7]) / (den + _CODY_D[7])
    far_y = maximum(y, 4.0)
    z = reciprocal(far_y * far_y)
    num, den = _CODY_P[5] * z, z
    for p, q in zip(_CODY_P[:4], _CODY_Q[:4]):
        num, den = (num + p) * z, (den + q) * z
    far = (1.0 / math.sqrt(math.pi) - z * (num + _CODY_P[4]) / (den + _CODY_Q[4])) / far_y
    return where(less_equal(y, 4.0), near, far)


# PyTorch's initial approximation of erfinv (calc_erfinv, after G. L. Pavlis), refined by
# Newton steps
_ERFINV_A = (0.886226899, -1.645349621, 0.914624893, -0.140543331)
_ERFINV_B = (-2.118377725, 1.442710462, -0.329097515, 0.012229801)
_ERFINV_C = (-1.970840454, -1.624906493, 3.429567803, 1.641345311)
_ERFINV_D = (3.543889200, 1.637067800)


def erfinv(x):
    """The inverse of erf on [-1, 1]: +-inf at +-1, NaN outside. Its gradient is
    sqrt(pi) / 2 * exp(erfinv(x)^2), reached through the Newton steps that refine it."""
    return _through_float64(_erfinv64, _float_operand(x, "erfinv"))


def _erfinv64(x):
    inside = less(abs(x), 1.0)
    x_in = where(inside, x, 0.0)         # the gradient flows through the Newton steps only
    start = _shape.stop_gradient(x_in)
    z = start * start
    central = start * _polynomial(_ERFINV_A, z) / (_polynomial((1.0,) + _ERFINV_B, z))
    is_central = less_equal(abs(start), 0.7)
    slope = 2.0 / math.sqrt(math.pi)
    y = where(is_central, central, 0.0)
    x_c = where(is_central, x_in, 0.0)
    for _ in range(2):
        y = y - (erf(y) - x_c) / (slope * exp(-(y * y)))
    # beyond 0.7 the steps solve erfc(|y|) = 1 - |x| instead: 1 - |x| is exact there, and
    # erfc keeps the digits that rounding erf(y) to x would lose (x = 1 - 1e-15 has few left)
    t = _erfc_inverse(1.0 - abs(where(is_central, 0.9, start)),
                      1.0 - abs(where(is_central, 0.9, x_in)))
    y = where(is_central, y, copysign(t, x_in))
    # +-1 give +-inf (x * inf keeps the sign, and the slope is infinite there), beyond (and
    # NaN) NaN, of NaN slope, as PyTorch's; each product sees 1 where it is not taken
    edge = equal(abs(x), 1.0)
    beyond = logical_not(logical_or(inside, edge))
    return where(inside, y, where(edge, where(edge, x, 1.0) * math.inf,
                                  where(beyond, x, 1.0) * math.nan))


def _erfc_inverse(q_start, q):
    """y > 0 with erfc(y) = q, for 0 < q <= 0.3: PyTorch's tail approximation at q_start (q
    without its gradient), then Newton steps on log(erfc(y)) = log(q), erfc written as
    erfcx(y) exp(-y^2): they keep the digits of a small q (1 - erf(y) would lose them), and
    in logarithms they converge as fast for q = 1e-300 as for q = 0.1."""
    w = sqrt(-log(q_start / 2.0))
    t = _polynomial(_ERFINV_C, w) / _polynomial((1.0,) + _ERFINV_D, w)
    log_q = log(q)
    for _ in range(3):           # (the start is rougher than erfinv's central one: one more)
        scaled = _erfcx_cody(t)
        t = t + (log(scaled) - t * t - log_q) * scaled * (math.sqrt(math.pi) / 2.0)
    return t


# lgamma(2 + z) = (1 - Euler's gamma) z + sum_k (-1)^k (zeta(k) - 1) / k z^k, k >= 2: for
# |z| <= 1/2 the terms shrink fourfold each, so 28 reach float64's precision
_LGAMMA_SERIES = (
    0.42278433509846713939, 0.322467033424113218, -0.0673523010531980951,
    0.0205808084277845479, -0.00738555102867398527, 0.00289051033074152329,
    -0.00119275391170326098, 0.000509669524743042422, -0.00022315475845357938,
    0.0000994575127818085337, -0.0000449262367381331417, 0.0000205072127756706916,
    -9.4394882752683959e-6, 4.3748667899074878e-6, -2.03921575380136624e-6,
    9.55141213040741983e-7, -4.49246919876456604e-7, 2.12071848055546659e-7,
    -1.00432248239680996e-7, 4.76981016936398057e-8, -2.27110946089431649e-8,
    1.08386592148969541e-8, -5.18347504197004666e-9, 2.48367454380247832e-9,
    -1.19214014058609121e-9, 5.73136724167886201e-10, -2.75952288512423315e-10,
    1.33047643742444895e-10)
# Stirling's series beyond 10: B_2k / (2k (2k - 1)) x^(1 - 2k)
_STIRLING = (1 / 12, -1 / 360, 1 / 1260, -1 / 1680, 1 / 1188, -691 / 360360, 1 / 156,
             -3617 / 122400)
_HALF_LOG_2PI = 0.91893853320467274178


def lgamma(x):
    """log|Gamma(x)|: inf at 0 and the negative integers. Its gradient is digamma(x), the
    derivative of the composition (the series' derivatives, as accurate as the series)."""
    return _through_float64(_lgamma64, _float_operand(x, "lgamma"))


def _lgamma64(x):
    finite = isfinite(x)
    x_f = where(finite, x, 2.0)
    reflect = less_equal(x_f, 0.0)
    # x <= 0 by the reflection formula lgamma(x) = log(pi / |sin(pi x)|) - lgamma(1 - x)
    y = where(reflect, 1.0 - x_f, x_f)
    positive = _lgamma_positive(y)
    x_neg = where(reflect, x_f, -0.5)
    # |sin(pi x)| from x's distance to the nearest integer (exact): pi x itself would lose
    # the digits that decide how near a pole x is
    sin_pi = sin(abs(x_neg - round(x_neg)) * math.pi)
    out = where(reflect, (math.log(math.pi) - log(sin_pi)) - positive, positive)
    return where(finite, out, abs(x))


def _lgamma_positive(y):
    """lgamma(y) for y > 0: the series around 2 (after one or two steps of
    lgamma(y) = lgamma(y + 1) - log(y) below 1.5, or up to eight of
    lgamma(y) = lgamma(y - 1) + log(y - 1) from below 10), Stirling's series from 10 on."""
    big = greater_equal(y, 10.0)
    below_half = less(y, 0.5)
    below_1_5 = less(y, 1.5)
    y_s = where(big, 2.0, y)
    steps = maximum(floor(y_s - 1.5), 0.0)           # 0 .. 8 steps down to [1.5, 2.5)
    z = where(below_half, y_s, where(below_1_5, y_s - 1.0, y_s - steps - 2.0))
    series = _polynomial(_LGAMMA_SERIES, z) * z
    product = 1.0
    for k in range(1, 9):
        product = product * where(greater_equal(steps, float(k)), y_s - float(k), 1.0)
    small = series - where(below_1_5, log1p(z), 0.0) - log(where(below_half, y_s, 1.0)) \
        + log(product)
    y_b = where(big, y, 10.0)
    w = reciprocal(y_b)
    stirling = (y_b - 0.5) * log(y_b) - y_b + _HALF_LOG_2PI + w * _polynomial(_STIRLING, w * w)
    return where(big, stirling, small)


# ---------------------------------------------------------------------------------------------
# more of torch.*'s special functions, composed as lgamma is (float32 through float64):
# digamma, polygamma, mvlgamma, the modified Bessel functions, and torch.special's normal
# distribution functions (pf.special reaches i0e, i1, i1e, ndtr, ndtri, log_ndtr, entr and
# xlog1py, which torch.* does not have)

# lgamma's series and Stirling's, differentiated term by term: digamma is the derivative of
# lgamma's own composition, so it equals lgamma's gradient (to rounding)
_DIGAMMA_SERIES = tuple((j + 1) * c for j, c in enumerate(_LGAMMA_SERIES))
_DIGAMMA_STIRLING = tuple((2 * k + 1) * a for k, a in enumerate(_STIRLING))


def digamma(x):
    """psi(x) = d/dx lgamma(x), as torch.digamma: -inf at +0, inf at -0, NaN at the negative
    integers and -inf. Its gradient is the composition's (polygamma(1, x))."""
    return _through_float64(_digamma64, _float_operand(x, "digamma"))


def _digamma64(x):
    finite = isfinite(x)
    x_f = where(finite, x, 2.0)
    reflect = less_equal(x_f, 0.0)
    positive = _digamma_positive(where(reflect, 1.0 - x_f, x_f))
    # psi(x) = psi(1 - x) - pi cot(pi x) below 1, with x's distance to the nearest integer
    # (exact) in the cotangent, as lgamma's reflection
    d = _pole_distance(where(reflect, x_f, -0.5))
    out = where(reflect, positive - math.pi * _cot_pi(d), positive)
    out = where(logical_and(reflect, equal(d, 0.0)), math.nan, out)
    out = where(equal(x, 0.0), where(signbit(x), math.inf, -math.inf), out)
    return where(finite, out, where(equal(x, math.inf), x, math.nan))


def _pole_distance(x):
    """x - round(x): exact, in [-1/2, 1/2]; 0 at the poles."""
    return x - round(x)


def _cot_pi(d):
    """cot(pi d) for d in [-1/2, 1/2], d != 0 (d = 0 reads 1/2, whose cotangent is 0: the
    caller replaces the poles, and their gradient must stay finite)."""
    d = where(equal(d, 0.0), 0.5, d) * math.pi
    return cos(d) / sin(d)


def _digamma_positive(y):
    """psi(y) for y > 0: the derivative of _lgamma_positive, branch by branch."""
    big = greater_equal(y, 10.0)
    below_half = less(y, 0.5)
    below_1_5 = less(y, 1.5)
    y_s = where(big, 2.0, y)
    steps = maximum(floor(y_s - 1.5), 0.0)
    z = where(below_half, y_s, where(below_1_5, y_s - 1.0, y_s - steps - 2.0))
    small = _polynomial(_DIGAMMA_SERIES, z) - where(below_1_5, reciprocal(1.0 + z), 0.0) \
        - where(below_half, reciprocal(where(below_half, y_s, 1.0)), 0.0)
    for k in range(1, 9):
        taken = greater_equal(steps, float(k))
        small = small + where(taken, reciprocal(where(taken, y_s - float(k), 1.0)), 0.0)
    y_b = where(big, y, 10.0)
    w = reciprocal(y_b)
    stirling = log(y_b) - 0.5 * w - w * w * _polynomial(_DIGAMMA_STIRLING, w * w)
    return where(big, stirling, small)


def polygamma(n, x):
    """The n-th derivative of digamma (n = 0 is digamma), as torch.polygamma: for n >= 1,
    (-1)^(n+1) n! sum_k 1 / (x + k)^(n+1), summed exactly up to 16 + n and from there by its
    asymptotic series; below 1/2 by the reflection formula. At the poles (0 and the negative
    integers) (-1)^(n+1) inf, at +inf 0, at -inf NaN."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError("polygamma: n must be an int >= 0, got %r" % (n,))
    x = _float_operand(x, "polygamma")
    if n == 0:
        return digamma(x)
    return _through_float64(functools.partial(_polygamma64, int(n)), x)


# B_2k / (2k)!, k = 1 .. 12: the asymptotic series' coefficients, before the falling factorials
_BERNOULLI_OVER_FACTORIAL = (
    1 / 12, -1 / 720, 1 / 30240, -1 / 1209600, 1 / 47900160, -691 / 1307674368000,
    1 / 74724249600, -3617 / 10670622842880000, 43867 / 5109094217170944000,
    -174611 / 802857662698291200000, 77683 / 14101100039391805440000,
    -236364091 / 1693824136731743669452800000)


def _polygamma64(n, x):
    finite = isfinite(x)
    x_f = where(finite, x, 2.0)
    reflect = less(x_f, 0.5)
    # below 1/2: psi^(n)(x) = (-1)^n psi^(n)(1 - x) - pi^(n+1) P_n(cot(pi x)), P_n the n-th
    # derivative of cot written as a polynomial of cot
    positive = _polygamma_positive(n, where(reflect, 1.0 - x_f, x_f))
    d = _pole_distance(where(reflect, x_f, 0.25))
    c = _cot_pi(d)
    out = where(reflect, positive * float((-1) ** n)
                - math.pi ** (n + 1) * _polynomial(_cot_derivative(n), c), positive)
    pole = float((-1) ** (n + 1)) * math.inf
    out = where(logical_and(reflect, equal(d, 0.0)), pole, out)
    return where(finite, out, where(equal(x, math.inf), 0.0, math.nan))


@functools.lru_cache(maxsize=None)
def _cot_derivative(n):
    """The coefficients (lowest first) of P_n with d^n/du^n cot(u) = P_n(cot(u)):
    P_0(c) = c and P_(k+1)(c) = -(1 + c^2) P_k'(c)."""
    p = [0.0, 1.0]
    for _ in range(n):
        dp = [i * p[i] for i in range(1, len(p))] or [0.0]
        nxt = [0.0] * (len(dp) + 2)
        for i, a in enumerate(dp):
            nxt[i] -= a
            nxt[i + 2] -= a
        p = nxt
    return tuple(p)


def _polygamma_positive(n, y):
    """psi^(n)(y) for y >= 1/2 and n >= 1: the terms 1 / (y + k)^(n+1) until y + k passes
    16 + n, then the asymptotic series there (its error below float64's rounding)."""
    bound = 16 + n
    shift = maximum(ceil(bound - y), 0.0)
    total = 0.0
    for k in range(bound):
        taken = less(float(k), shift)
        term = pow(where(taken, y + float(k), 1.0), -float(n + 1))
        total = total + where(taken, term, 0.0)
    t = y + shift
    w = reciprocal(t)
    # (n-1)!/t^n + n!/(2 t^(n+1)) + sum_k B_2k (2k+n-1)! / ((2k)! t^(2k+n)), over n! / t^n
    rising = [b * math.prod(range(n + 1, 2 * k + n))
              for k, b in enumerate(_BERNOULLI_OVER_FACTORIAL, 1)]
    tail = pow(w, float(n)) * (1.0 / n + 0.5 * w + w * w * _polynomial(rising, w * w))
    return (total + tail) * (float((-1) ** (n + 1)) * math.factorial(n))


def mvlgamma(x, p):
    """The log of the multivariate gamma function of dimension p, as torch.mvlgamma:
    p (p - 1) / 4 log(pi) + sum_(i < p) lgamma(x - i / 2). Every element must exceed
    (p - 1) / 2 (checked eagerly; a graph's values are not known when it is built)."""
    if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or p < 1:
        raise ValueError("mvlgamma: p must be an int >= 1, got %r" % (p,))
    x = _float_operand(x, "mvlgamma")
    if not x.symbolic:
        from .reduction import all as reduce_all

        if not reduce_all(greater(x, (p - 1) / 2)).item():
            raise ValueError("mvlgamma: every element of x %s must exceed (p - 1) / 2 = %s"
                             % (core.fmt_shape(x.shape), (p - 1) / 2))
    out = lgamma(x)
    for i in range(1, int(p)):
        out = out + lgamma(x - i / 2)
    return out + p * (p - 1) / 4 * math.log(math.pi)


# Chebyshev series (sum' c_k T_k(t)) of exp(-a) I0(a) and exp(-a) I1(a) / a on 0 <= a <= 8
# (t = a / 4 - 1), and of sqrt(a) exp(-a) I0(a), sqrt(a) exp(-a) I1(a) beyond 8 (t = 16/a - 1):
# interpolants at 60 Chebyshev points computed with mpmath at 40 digits, cut where the terms
# fall below 2e-18 of the largest (relative error about 1e-15)
_I0_NEAR = (
    0.33839763720473803, -0.3046826723431984, 0.17162090152220877, -0.09490109704804764,
    0.04930528423967071, -0.02373741480589947, 0.010546460394594998, -0.004324309995050576,
    0.0016394756169413357, -0.0005763755745385824, 0.00018850288509584165,
    -5.754195010082104e-05, 1.6448448070728896e-05, -4.4167383584587505e-06,
    1.1173875391201037e-06, -2.670793853940612e-07, 6.046995022541919e-08,
    -1.300025009986248e-08, 2.6598237246823866e-09, -5.189795601635263e-10,
    9.675809035373237e-11, -1.726826291441556e-11, 2.95505266312964e-12,
    -4.856446783111929e-13, 7.676185498604936e-14, -1.1685332877993451e-14,
    1.715391285555133e-15, -2.431279846547955e-16, 3.3307945188222384e-17,
    -4.4153416464793395e-18)
_I1_NEAR = (
    0.12629359322181682, -0.17641651835783406, 0.1026436586898471, -0.05294598120809499,
    0.024726449030626516, -0.010564084894626197, 0.004156422944312888,
    -0.0015135724506312532, 0.0005122859561685758, -0.00016176081582589674,
    4.781565107550054e-05, -1.3273163656039436e-05, 3.4702513081376785e-06,
    -8.568720264695455e-07, 2.0032947535521353e-07, -4.445059128796328e-08,
    9.381537386495773e-09, -1.8872497517228294e-09, 3.625590281552117e-10,
    -6.663489723502027e-11, 1.1736186298890901e-11, -1.9839743977649436e-12,
    3.223793365945575e-13, -5.042185504727912e-14, 7.600684294735408e-15,
    -1.1055969477353862e-15, 1.5536319577362005e-16, -2.111421214358166e-17,
    2.7779141127610464e-18, -3.541581772542136e-19)
_I0_FAR = (
    0.4022452055070544, 0.0033691164782556943, 6.889758346916825e-05, 2.8913705208347567e-06,
    2.0489185894690638e-07, 2.266668990498178e-08, 3.3962320257083865e-09,
    4.94060238822497e-10, 1.1889147107846439e-11, -3.1499165279632416e-11,
    -1.3215811840447713e-11, -1.7941785315068062e-12, 7.180124451383666e-13,
    3.8527783827421426e-13, 1.54008621752141e-14, -4.150569347287222e-14,
    -9.554846698828307e-15, 3.8116806693526224e-15, 1.7725601330565263e-15,
    -3.425485619677219e-16, -2.8276239805165836e-16, 3.461222867697461e-17,
    4.46562142029676e-17, -4.830504485944182e-18, -7.233180487874754e-18,
    9.921475412173699e-19, 1.193650890845982e-18)
_I1_FAR = (
    0.38928811750914005, -0.009761097491361469, -0.00011058893876262371,
    -3.882564808877691e-06, -2.512236237870209e-07, -2.6314688468895196e-08,
    -3.835380385964237e-09, -5.589743462196584e-10, -1.8974958123505413e-11,
    3.2526035830154884e-11, 1.4125807436613782e-11, 2.0356285441470896e-12,
    -7.198551776245908e-13, -4.0835511110921974e-13, -2.1015418427726643e-14,
    4.272440016711951e-14, 1.0420276984128802e-14, -3.8144030724370075e-15,
    -1.8803547755107825e-15, 3.3082023109209285e-16, 2.96262899764595e-16,
    -3.209525921993424e-17, -4.6503053684893586e-17, 4.414348323071708e-18,
    7.517296310842105e-18, -9.314178867326884e-19, -1.242193275194891e-18)


def _chebyshev(coefficients, t):
    """sum' c_k T_k(t) (c_0 counted once) by Clenshaw's recurrence."""
    b1, b2 = coefficients[-1], 0.0
    for c in reversed(coefficients[1:-1]):
        b1, b2 = t * b1 * 2.0 - b2 + c, b1
    return t * b1 - b2 + coefficients[0]


def _bessel_scaled64(x, order):
    """exp(-|x|) I_order(x) for order 0 or 1 (odd for 1), in float64."""
    a = abs(x)
    near = less_equal(a, 8.0)
    # each branch sees its own range only, so that where's unused gradient stays finite
    # (where, not minimum / maximum: those share a tie's gradient between the two)
    a_near, a_far = where(near, a, 8.0), where(near, 8.0, a)
    t_near, t_far = a_near * 0.25 - 1.0, 16.0 / a_far - 1.0
    if order == 0:
        return where(near, _chebyshev(_I0_NEAR, t_near),
                     _chebyshev(_I0_FAR, t_far) / sqrt(a_far))
    far = _chebyshev(_I1_FAR, t_far) / sqrt(a_far)
    # x itself, not |x|, near 0: the gradient there is 1/2, not sign(0) * ... = 0
    return where(near, where(near, x, 0.0) * _chebyshev(_I1_NEAR, t_near),
                 where(less(x, 0.0), neg(far), far))


def i0(x):
    """The modified Bessel function of the first kind of order 0, as torch.i0 (NaN at
    +-inf, as torch's); its gradient is i1(x)."""
    return _through_float64(lambda v: exp(abs(v)) * _bessel_scaled64(v, 0),
                            _float_operand(x, "i0"))


def i0e(x):
    """exp(-|x|) i0(x), without i0's overflow (torch.special.i0e)."""
    return _through_float64(lambda v: _bessel_scaled64(v, 0), _float_operand(x, "i0e"))


def i1(x):
    """The modified Bessel function of the first kind of order 1 (torch.special.i1)."""
    return _through_float64(lambda v: exp(abs(v)) * _bessel_scaled64(v, 1),
                            _float_operand(x, "i1"))


def i1e(x):
    """exp(-|x|) i1(x), without i1's overflow (torch.special.i1e)."""
    return _through_float64(lambda v: _bessel_scaled64(v, 1), _float_operand(x, "i1e"))


_SQRT_HALF = math.sqrt(0.5)


def ndtr(x):
    """The standard normal distribution function, erfc(-x / sqrt(2)) / 2, exact in the left
    tail too (torch.special.ndtr)."""
    return erfc(neg(_float_operand(x, "ndtr")) * _SQRT_HALF) * 0.5


def ndtri(p):
    """The inverse of ndtr on [0, 1] (-inf at 0, inf at 1, NaN outside), as
    torch.special.ndtri: sqrt(2) erfinv(2p - 1) in the middle, and in the tails the solution
    of erfc(y) = 2 min(p, 1 - p), which keeps the digits of a small p."""
    return _through_float64(_ndtri64, _float_operand(p, "ndtri"))


def _ndtri64(p):
    low, high = less(p, 0.15), greater(p, 0.85)
    tail = logical_or(low, high)
    middle = where(tail, 0.5, p)
    q = where(low, 2.0 * p, where(high, 2.0 * (1.0 - p), 0.2))
    q = where(greater(q, 0.0), q, 0.2)           # 0 and 1 and beyond: handled below
    y = _erfc_inverse(_shape.stop_gradient(q), q) * math.sqrt(2.0)
    out = where(tail, where(low, neg(y), y), erfinv(middle * 2.0 - 1.0) * math.sqrt(2.0))
    out = where(equal(p, 0.0), -math.inf, where(equal(p, 1.0), math.inf, out))
    return where(logical_and(greater_equal(p, 0.0), less_equal(p, 1.0)), out, math.nan)


def log_ndtr(x):
    """log(ndtr(x)) without its underflow, as torch.special.log_ndtr: below -1 from the
    scaled complementary error function, log(erfcx(-x / sqrt 2) / 2) - x^2 / 2."""
    return _through_float64(_log_ndtr64, _float_operand(x, "log_ndtr"))


def _log_ndtr64(x):
    left = less(x, -1.0)
    x_left = where(left, x, -1.0)
    far = log(_erfcx_cody(neg(x_left) * _SQRT_HALF) * 0.5) - x_left * x_left * 0.5
    near = log1p(erfc(where(left, -1.0, x) * _SQRT_HALF) * -0.5)
    return where(left, far, near)


def entr(x):
    """-x log(x) for x > 0, 0 at 0, -inf below (NaN stays NaN), as torch.special.entr. The
    gradient at 0 is 0 (torch's is inf)."""
    x = _float_operand(x, "entr")
    positive = greater(x, 0.0)
    inner = where(positive, x, 1.0)
    out = where(positive, neg(inner * log(inner)), where(equal(x, 0.0), 0.0, -math.inf))
    return where(isnan(x), x, out)


def xlog1py(x, y):
    """x * log1p(y), 0 where x is 0 (unless y is NaN), as torch.special.xlog1py."""
    x, y = _operands(x, y, _FLOAT)
    out = x * log1p(where(logical_and(equal(x, 0), less_equal(y, -1)), 0.0, y))
    return where(isnan(y), y, out)


# ---------------------------------------------------------------------------------------------
# integers and the parts of floats: gcd, lcm, frexp, ldexp, nextafter; rsub, sgn, angle

def _integer_operands(name, a, b):
    """a and b promoted to one integer dtype; a DTypeError naming both otherwise."""
    given = ["%s %s" % (v.dtype.name, core.fmt_shape(v.shape)) if hasattr(v, "dtype") else
             type(v).__name__ for v in (a, b)]
    a, b = _operands(a, b)
    if a.dtype.is_float or a.dtype is bool_:
        raise errors.DTypeError("%s: a and b must be integers (int32, int64), got a %s and b %s"
                                % (name, *given))
    return a, b


# Euclid's steps: a pair below F(k + 2) (Fibonacci) takes at most k of them, and F(47) and
# F(93) pass int32's and int64's largest values; one more for a first step that only swaps
_EUCLID_STEPS = {"int32": 47, "int64": 93}


def gcd(a, b):
    """The greatest common divisor of the integers a and b (broadcast), never negative,
    gcd(0, 0) = 0, as torch.gcd: Euclid's algorithm on |a| and |b|, eagerly until every pair
    is done, in a graph for as many steps as the dtype's worst case takes."""
    from .reduction import any as reduce_any

    a, b = _integer_operands("gcd", a, b)
    x, y = _shape.broadcast_tensors(abs(a), abs(b))
    for _ in range(_EUCLID_STEPS[x.dtype.name]):
        if not y.symbolic and not reduce_any(y).item():
            break
        done = equal(y, 0)
        x, y = where(done, x, y), where(done, 0, remainder(x, where(done, 1, y)))
    return x


def lcm(a, b):
    """The least common multiple of the integers a and b, never negative, 0 where either is
    0, as torch.lcm."""
    a, b = _integer_operands("lcm", a, b)
    g = gcd(a, b)
    return abs(floor_divide(a, where(equal(g, 0), 1, g)) * b)


Frexp = collections.namedtuple("frexp", "mantissa exponent")


def _frexp64(x):
    """(m, e, regular) with x = m 2^e, |m| in [1/2, 1), e a float, for float64 x whose
    elements are finite and not 0 (regular; the others read 1)."""
    regular = logical_and(isfinite(x), not_equal(x, 0.0))
    x = where(regular, x, 1.0)
    e = floor(log2(abs(_shape.stop_gradient(x)))) + 1.0
    # 2^-e in two factors: one would overflow for the subnormals' e (below -1022)
    half = trunc(e * -0.5)
    m = x * exp2(half) * exp2(neg(e) - half)
    # log2 rounds: a value just below a power of two may read as that power, or the other way
    over, under = greater_equal(abs(m), 1.0), less(abs(m), 0.5)
    m = where(over, m * 0.5, where(under, m * 2.0, m))
    e = where(over, e + 1.0, where(under, e - 1.0, e))
    return m, e, regular


def frexp(x):
    """(mantissa, exponent) with x = mantissa * 2**exponent and |mantissa| in [0.5, 1) (0,
    +-inf and NaN give themselves and exponent 0), as torch.frexp: the mantissa in x's dtype,
    the exponent int32. The mantissa's gradient is 2**-exponent, as torch's."""
    x = as_operand(x)
    if not x.dtype.is_float:
        raise errors.DTypeError("frexp: x must be float32 or float64, got %s %s"
                                % (x.dtype.name, core.fmt_shape(x.shape)))
    x64 = x if x.dtype.name == "float64" else _shape.cast(x, "float64")
    m, e, regular = _frexp64(x64)
    mantissa = where(regular, m, x64)
    exponent = _shape.cast(where(regular, e, 0.0), "int32")
    return Frexp(mantissa if x64 is x else _shape.cast(mantissa, x.dtype), exponent)


def ldexp(x, other):
    """x * 2**other, as torch.ldexp: a float result (integers give the default float dtype);
    differentiable in both."""
    x, other = _operands(x, other, _FLOAT)
    return x * exp2(other)


def nextafter(x, other):
    """The next float after x toward other (other itself where they are equal; NaN where
    either is), as torch.nextafter, in their promoted float dtype. No gradient flows through
    it (torch's has none either)."""
    x, other = _operands(x, other)
    if not x.dtype.is_float:
        raise errors.DTypeError("nextafter: x and other must be float32 or float64, got %s %s"
                                % (x.dtype.name, core.fmt_shape(x.shape)))
    info = np.finfo(x.dtype.np)
    x, other = _shape.stop_gradient(x), _shape.stop_gradient(other)
    if x.dtype.name == "float64":
        return _nextafter64(x, other, info)
    return _shape.cast(_nextafter64(_shape.cast(x, "float64"), _shape.cast(other, "float64"),
                                    info), x.dtype)


def _nextafter64(x, y, info):
    """nextafter in float64 arithmetic for x's own format (info: its finfo). Each step is an
    exact sum: the result is representable in that format."""
    smallest = 2.0 ** (info.minexp - info.nmant)      # the smallest subnormal
    largest = float(info.max)
    m, e, _ = _frexp64(x)
    direction = sign(y - x)
    # one unit in the last place of x's binade; toward zero from a power of two, half of it
    ulp = exp2(e - float(info.nmant + 1))
    away = greater(direction * x, 0.0)
    ulp = where(logical_or(away, not_equal(abs(m), 0.5)), ulp, ulp * 0.5)
    out = x + direction * maximum(ulp, smallest)
    out = where(greater(out, largest), math.inf, where(less(out, -largest), -math.inf, out))
    out = where(equal(x, 0.0), direction * smallest, out)
    out = where(isinf(x), sign(x) * largest, out)
    out = where(equal(x, y), y, out)
    return where(logical_or(isnan(x), isnan(y)), x + y, out)


def rsub(x, other, alpha=1):
    """other - alpha * x, as torch.rsub."""
    return sub(other, x if alpha == 1 else mul(x, alpha))


def sgn(x):
    """torch.sgn: x / |x| for complex numbers, which pyfront has no dtype for; sign(x) for
    real ones."""
    return sign(x)


def angle(x):
    """The argument of x read as a complex number, as torch.angle of a real tensor: pi where
    x < 0, else 0 (NaN stays NaN); integers give the default float dtype. No gradient flows
    to x (torch's is 0)."""
    x = _float_operand(x, "angle")
    half_turns = where(less(x, 0.0), core.number_operand(math.pi, x.dtype), 0.0)
    return where(isnan(x), x, half_turns)


__all__ += ["digamma", "polygamma", "mvlgamma", "i0", "gcd", "lcm", "frexp", "ldexp",
            "nextafter", "rsub", "sgn", "angle"]


# ---------------------------------------------------------------------------------------------
# random sampling, eager: draws from pyfront's generator (pf.manual_seed) or the numpy
# Generator given as generator=. In a graph a draw would be a constant, the same on every
# run: a TraceError (pf.jit runs such a function eagerly), as dropout is the one op that
# draws inside compiled plans.

def _sampling(name, operands, generator):
    """The generator to draw with, once no operand is a graph value."""
    if any(getattr(t, "symbolic", False) for t in operands):
        raise errors.TraceError("%s: a graph would replay one draw on every call (compiled plans "
                                "draw random numbers only in dropout)" % name)
    if generator is None:
        return random.generator()
    if not hasattr(generator, "standard_normal"):
        raise TypeError("%s: generator must be a numpy.random.Generator, got %r"
                        % (name, generator))
    return generator


def _drawn(values, dtype, sources):
    """The drawn values as a tensor of dtype; its gradient toward the tensors it was drawn
    from is zero, as PyTorch's (the draw is no differentiable function of them)."""
    tensors = [t for t in sources if hasattr(t, "symbolic")]
    out = core.constant_like(np.ascontiguousarray(values, dtype=dtype.np),
                             tensors[0] if tensors else None)
    for t in tensors:
        if t.requires_grad:
            out = where(as_operand(False), t, out)
    return out


def bernoulli(x, p=None, *, generator=None):
    """1 with probability x (or p, a number, for every element of x's shape), else 0, in x's
    float dtype, as PyTorch's bernoulli."""
    x = as_operand(x)
    rng = _sampling("bernoulli", [x], generator)
    if not x.dtype.is_float:
        raise errors.DTypeError("bernoulli: x must be float32 or float64, got %s" % x.dtype.name)
    probability = x.numpy() if p is None else np.full(x.shape, float(p))
    if not ((probability >= 0) & (probability <= 1)).all():
        raise ValueError("bernoulli: probabilities must be in [0, 1]")
    return _drawn(rng.random(x.shape) < probability, x.dtype, [x])


def normal(mean, std=1.0, size=None, *, generator=None):
    """Samples of N(mean, std^2), as PyTorch's normal: mean and std tensors (broadcast
    together) or numbers; with two numbers, size gives the shape (the default float dtype)."""
    tensors = [t for t in (mean, std) if hasattr(t, "symbolic")]
    rng = _sampling("normal", tensors, generator)
    if not tensors:
        if size is None:
            raise TypeError("normal: with a number mean and std, give size")
        shape, dtype = tuple(size), get_default_dtype()
    else:
        if size is not None:
            raise TypeError("normal: size goes with a number mean and std only")
        if any(not t.dtype.is_float for t in tensors):
            raise errors.DTypeError("normal: mean and std must be float tensors, got %s"
                                    % ", ".join(t.dtype.name for t in tensors))
        dtype = functools.reduce(result_type, [t.dtype for t in tensors])
        shape = np.broadcast_shapes(*[tuple(t.shape) for t in tensors])
    m, sd = (t.numpy() if hasattr(t, "symbolic") else t for t in (mean, std))
    if np.any(np.asarray(sd) < 0):
        raise ValueError("normal: std must be >= 0")
    return _drawn(m + sd * rng.standard_normal(shape), dtype, tensors)


def multinomial(x, num_samples, replacement=False, *, generator=None):
    """num_samples category indices per row of the weights x (1-D or 2-D, non-negative,
    each row's sum positive), int64, as PyTorch's multinomial: without replacement by
    PyTorch's race of exponential clocks (weight / Exp(1), largest first: categories of
    weight 0 come last)."""
    x = as_operand(x)
    rng = _sampling("multinomial", [x], generator)
    if not x.dtype.is_float or len(x.shape) not in (1, 2):
        raise errors.DTypeError("multinomial: x must be 1-D or 2-D float weights, got %s %s"
                                % (core.fmt_shape(x.shape), x.dtype.name))
    rows = x.numpy().astype(np.float64).reshape(-1, x.shape[-1])
    k = rows.shape[1]
    if isinstance(num_samples, bool) or not isinstance(num_samples, int) or num_samples < 1 \
            or (not replacement and num_samples > k):
        raise ValueError("multinomial: num_samples must be an int in [1, %s], got %r"
                         % ("inf" if replacement else k, num_samples))
    if not (np.isfinite(rows) & (rows >= 0)).all() or not (rows.sum(1) > 0).all():
        raise ValueError("multinomial: weights must be finite, non-negative, and each row's "
                         "sum positive")
    if replacement:
        cdf = np.cumsum(rows, 1)
        u = rng.random((rows.shape[0], num_samples)) * cdf[:, -1:]
        drawn = np.stack([np.searchsorted(c, v, side="right") for c, v in zip(cdf, u)])
        # (a rounding at the top end must not pick a trailing category of weight 0)
        last = k - 1 - np.argmax(rows[:, ::-1] > 0, 1)
        drawn = np.minimum(drawn, last[:, None])
    else:
        clocks = rows / rng.exponential(size=rows.shape)
        drawn = np.argsort(-clocks, 1, kind="stable")[:, :num_samples]
    return _drawn(drawn.reshape(tuple(x.shape[:-1]) + (num_samples,)), as_dtype("int64"), [])


def _activations():
    """Activation names layers accept (Dense(..., activation="silu")) -> functions of x."""
    names = ("relu", "sigmoid", "tanh", "gelu", "softplus", "elu", "selu", "celu", "silu",
             "swish", "mish", "softsign", "logsigmoid", "hardsigmoid", "hardswish", "hardtanh",
             "relu6")
    table = {n: globals()[n] for n in names}
    table["gelu_tanh"] = lambda x: gelu(x, approximate="tanh")
    table["glu"] = glu      # halves the last dim: Dense(2 * n, activation="glu") gives n
    return table


ACTIVATIONS = _activations()


# imported last: shape ops use the elementwise ones in their gradients
from . import shape as _shape  # noqa: E402
from .shape import sum_to_like  # noqa: E402
