"""The contract every registered op keeps, checked for the whole registry:

  - eager equals the compiled plan, also when the batch size changes between calls;
  - tape gradients equal graph gradients and float64 central finite differences;
  - double backward equals finite differences of the first gradient, on the tape and in a
    graph, where defined;
  - the op survives graph serialization (graph/serialize.py, through JSON text);
  - a wrong input shape raises a ShapeError (or DTypeError) that names the op, never another
    exception and never a native error from a kernel that was handed the wrong shape.

CASES maps every op name in ops.core.REGISTRY to a Case: a function of tensors (eager) or
symbols (graph) whose graph contains that op, and its inputs. An op without a case fails
test_every_registered_op_has_a_case. Adding an op means adding a line or two here:

    "my_op": Case(pf.my_op, F(N, 4), F(4)),              # N: the batch dim, varied
    "my_op_grad": Case(grad_of(pf.my_op), F(N, 4), F(N, 4)),   # its gradient op, reached
                                                         # through the forward's gradient

A check that cannot apply is switched off in the case with the reason (no_grad=..., no_double=...,
any_shape=...); a failure that is a known, unfixed bug is listed in KNOWN_BUGS (strict xfail).
"""
import ast
import json

import numpy as np
import pytest

import pyfront as pf
from pyfront import errors
from pyfront.graph.serialize import graph_from_json, graph_to_json
from pyfront.ops import core
from pyfront.ops.dropout import new_state
from pyfront.ops.shape import reshape_like
# ops registered outside pyfront/ops: imported here so that the registry is whole whatever
# the tests before this one imported
from pyfront.ops.clipping import clip_by_norm, sum_of_squares

N = "N"                    # the batch dim in an input's shape: compiled with None, run at 2 and 3
BATCHES = (2, 3, 2)        # the last size repeats: a cached plan is reused after another size


class In:
    """One input: shape (N for the batch), dtype, and the range its values are drawn from.
    away: values are at least this far from zero (kinks, poles), with random signs.
    unique: integers distinct along the last dim (scatter indices)."""

    def __init__(self, shape, dtype="float32", lo=-1.5, hi=1.5, away=0.0, unique=False):
        self.shape, self.dtype, self.lo, self.hi, self.away = shape, dtype, lo, hi, away
        self.unique = unique

    @property
    def is_float(self):
        return self.dtype.startswith("float")

    def concrete(self, n):
        return tuple(n if d is N else d for d in self.shape)

    def symbolic(self):
        return tuple(None if d is N else d for d in self.shape)

    def make(self, rng, n, float_dtype=None):
        shape = self.concrete(n)
        if self.unique:
            rows = [rng.permutation(np.arange(self.lo, self.hi))[:shape[-1]]
                    for _ in range(int(np.prod(shape[:-1])))]
            return np.array(rows, dtype=self.dtype).reshape(shape)
        if not self.is_float:
            return rng.integers(self.lo, self.hi, shape).astype(self.dtype)
        if self.away:
            v = rng.uniform(self.away, self.hi, shape) * rng.choice([-1.0, 1.0], shape)
        else:
            v = rng.uniform(self.lo, self.hi, shape)
        return np.asarray(v, dtype=float_dtype or self.dtype)


def F(*shape, **kw):
    return In(shape, "float32", **kw)


def I(*shape, hi=3, lo=0, unique=False):     # noqa: E743 (an integer input, as F is a float)
    return In(shape, "int64", lo=lo, hi=hi, unique=unique)


class Case:
    """fn(*inputs) -> a value or a tuple of values, written with ops so that it runs eagerly and
    builds a graph. wrt: the inputs gradients are checked for (default: the float ones).
    no_grad / no_double / any_shape: why that check does not apply."""

    def __init__(self, fn, *inputs, wrt=None, no_grad=None, no_double=None, any_shape=None,
                 tol=1e-5):
        self.fn, self.inputs = fn, inputs
        self.wrt = tuple(i for i, x in enumerate(inputs) if x.is_float) if wrt is None else wrt
        self.no_grad, self.no_double, self.any_shape, self.tol = no_grad, no_double, any_shape, tol


def grad_of(fn, wrt=(0,)):
    """(*args, seed) -> the gradients of fn(*args) (its first output) seeded with seed, with
    respect to the args at positions wrt: how a case reaches an op's gradient ops, on the tape
    (differentiable: create_graph) and in a graph (Graph.gradients)."""
    def gradients(*args):
        *xs, seed = args
        if any(getattr(x, "symbolic", False) for x in args):
            return tuple(seed.graph.gradients(_first(fn(*xs)), [xs[i] for i in wrt], [seed]))
        with pf.enable_grad():
            xs = [pf.tensor(x.numpy(), requires_grad=True) if i in wrt and not x.requires_grad
                  else x for i, x in enumerate(xs)]
            return tuple(pf.grad(_first(fn(*xs)), [xs[i] for i in wrt], grad_outputs=seed,
                                 create_graph=True))
    return gradients


def _first(out):
    return out[0] if isinstance(out, (tuple, list)) else out


def _unary(fn, **kw):
    return Case(fn, F(N, 3, **kw), any_shape="elementwise: every shape is valid")


def _act_grad(fn, **kw):
    return Case(grad_of(fn), F(N, 3, **kw), F(N, 3))


def _conv_cases(nd):
    conv = {1: pf.conv1d, 2: pf.conv2d, 3: pf.conv3d}[nd]
    transposed = {1: pf.conv_transpose1d, 2: pf.conv_transpose2d, 3: pf.conv_transpose3d}[nd]
    x, k, b = F(N, 2, *(4,) * nd), F(3, 2, *(2,) * nd), F(3)
    g = F(N, 3, *(3,) * nd)
    with_bias = lambda x, k, b: conv(x, k, b)            # noqa: E731
    return {
        "conv%dd" % nd: Case(lambda x, k, b: conv(x, k, b, padding=1, strides=2, activation="tanh"),
                             x, k, b),
        "conv%dd_grad_input" % nd: Case(grad_of(with_bias, (0,)), x, k, b, g),
        "conv%dd_grad_weight" % nd: Case(grad_of(lambda x, k: conv(x, k), (1,)), x, k, g),
        "conv%dd_grad_params" % nd: Case(grad_of(with_bias, (1, 2)), x, k, b, g),
        "conv_transpose%dd" % nd: Case(lambda x, k, b: transposed(x, k, b, strides=2, padding=1,
                                                                  output_padding=1),
                                       F(N, 2, *(3,) * nd), F(2, 3, *(2,) * nd), F(3)),
    }


def _pool_cases(nd):
    mp = {1: pf.max_pool1d, 2: pf.max_pool2d, 3: pf.max_pool3d}[nd]
    ap = {1: pf.avg_pool1d, 2: pf.avg_pool2d, 3: pf.avg_pool3d}[nd]
    x, g = F(N, 2, *(4,) * nd), F(N, 2, *(2,) * nd)
    pool = lambda x: mp(x, 2)                            # noqa: E731
    avg = lambda x: ap(x, 3, strides=2, padding="same", count_include_pad=False)  # noqa: E731
    return {
        "max_pool%dd" % nd: Case(pool, x),
        "max_pool%dd_grad" % nd: Case(grad_of(pool), x, g),
        "max_pool%dd_gather" % nd: Case(grad_of(grad_of(pool), (1,)), x, g, x),
        "avg_pool%dd" % nd: Case(avg, x),
        "avg_pool%dd_grad" % nd: Case(grad_of(avg), x, g),
    }


def _rnn_cases(kind, gates, fn):
    h = 2
    ins = (F(N, 3, 2), F(2, gates * h), F(h, gates * h), F(gates * h)) + \
        ((F(gates * h),) if kind == "gru" else ())
    wrt = tuple(range(len(ins)))
    second = "second-order gradients of recurrent ops are not implemented (they say so)"
    return {kind: Case(fn, *ins, no_double=second),
            kind + "_grad": Case(grad_of(fn, wrt), *ins, F(N, 3, h), no_grad=second)}


def _bn(x, w, b, mean=None, var=None, training=True):
    return pf.batch_norm(x, mean, var, w, b, training=training)


def _bn_tracked(x, w, b):
    # fresh running statistics at every call: the op updates them in place
    return pf.batch_norm(x, pf.zeros(3), pf.ones(3), w, b, training=True)


def _dropout(x):
    # a fresh generator state at every call: the same mask eagerly and compiled
    return pf.dropout(x, 0.5, state=new_state(seed=7))


def _linalg_cases():
    """Dense linear algebra (pyfront/ops/decompositions.py) on matrices made well-conditioned
    (a dominant diagonal, symmetric positive-definite for Cholesky); singular and eigen vectors
    enter squared, so that the sign LAPACK picks for each does not matter."""
    def shifted(a, by=3.0):
        return a + pf.tensor(by * np.eye(a.shape[-2], a.shape[-1], dtype=a.dtype.np))

    def eigh(a):
        w, v = pf.linalg.eigh(a + a.mT)
        return w, v * v

    def svd(a):
        u, s, vh = pf.linalg.svd(a, full_matrices=False)
        return u * u, s, vh * vh

    square, tall = F(N, 3, 3), F(N, 4, 3)
    return {
        "linalg.inv": Case(lambda a: pf.linalg.inv(shifted(a)), square),
        "linalg.det": Case(lambda a: pf.linalg.det(shifted(a)), square),
        "linalg.slogdet": Case(lambda a: tuple(pf.linalg.slogdet(shifted(a))), square),
        "linalg.solve": Case(lambda a, b: pf.linalg.solve(shifted(a), b), square, F(N, 3, 2)),
        "linalg.cholesky": Case(lambda a: pf.linalg.cholesky(shifted(a @ a.mT)), square),
        "linalg.qr": Case(lambda a: tuple(pf.linalg.qr(shifted(a))), tall),
        "linalg.eigh": Case(eigh, square),
        "linalg.eigvalsh": Case(lambda a: pf.linalg.eigvalsh(a + a.mT), square),
        "linalg.svd": Case(svd, tall),
        "linalg.svdvals": Case(pf.linalg.svdvals, tall),
        "linalg.pinv": Case(lambda a: pf.linalg.pinv(shifted(a)), tall),
        "linalg.matrix_exp": Case(pf.linalg.matrix_exp, square),
    }


_NOT_DIFF = "integer or boolean result: no gradient"
_CLIPPING = "runs on gradients before the update: declared without a gradient"

def _merge(*groups):
    """One dict of cases; a name given twice is an error (a dict keeps the last silently)."""
    cases = {}
    for group in groups:
        for name, case in group.items():
            if name in cases:
                raise RuntimeError("two contract cases for %r" % name)
            cases[name] = case
    return cases


CASES = _merge({
    # ---- unary elementwise ----
    "neg": _unary(pf.neg), "exp": _unary(pf.exp), "log": _unary(pf.log, lo=0.3, hi=2.0),
    "sqrt": _unary(pf.sqrt, lo=0.3, hi=2.0), "rsqrt": _unary(pf.rsqrt, lo=0.3, hi=2.0),
    "abs": _unary(pf.abs, away=0.1), "sign": _unary(pf.sign, away=0.1),
    "square": _unary(pf.square), "reciprocal": _unary(pf.reciprocal, away=0.3),
    "sin": _unary(pf.sin), "cos": _unary(pf.cos), "tanh": _unary(pf.tanh),
    "sigmoid": _unary(pf.sigmoid), "relu": _unary(pf.relu, away=0.1), "gelu": _unary(pf.gelu),
    "softplus": _unary(pf.softplus), "erf": _unary(pf.erf), "floor": _unary(pf.floor),
    "ceil": _unary(pf.ceil), "round": _unary(pf.round), "log1p": _unary(pf.log1p, lo=-0.5),
    "expm1": _unary(pf.expm1), "leaky_relu": _unary(lambda x: pf.leaky_relu(x, 0.2), away=0.1),
    "affine": _unary(lambda x: pf.affine(x, 1.5, -0.5)),
    "clip": _unary(lambda x: pf.clip(x, -0.5, 0.7)),
    "pow_scalar": _unary(lambda x: pf.pow(x, 2.5), lo=0.3, hi=2.0),
    "trunc": _unary(pf.trunc), "tan": _unary(pf.tan, lo=-1.2, hi=1.2),
    "asin": _unary(pf.asin, lo=-0.9, hi=0.9), "acos": _unary(pf.acos, lo=-0.9, hi=0.9),
    "atan": _unary(pf.atan), "sinh": _unary(pf.sinh), "cosh": _unary(pf.cosh),
    "asinh": _unary(pf.asinh), "acosh": _unary(pf.acosh, lo=1.2, hi=3.0),
    "atanh": _unary(pf.atanh, lo=-0.9, hi=0.9), "log2": _unary(pf.log2, lo=0.3, hi=2.0),
    "log10": _unary(pf.log10, lo=0.3, hi=2.0), "exp2": _unary(pf.exp2),
    "elu": _unary(lambda x: pf.elu(x, 0.7), away=0.1),
    "selu": _unary(pf.selu, away=0.1), "celu": _unary(lambda x: pf.celu(x, 0.7), away=0.1),
    "silu": _unary(pf.silu), "mish": _unary(pf.mish), "softsign": _unary(pf.softsign, away=0.1),
    "logsigmoid": _unary(pf.logsigmoid),
    "hardsigmoid": _unary(pf.hardsigmoid, lo=-4.0, hi=4.0),
    "hardswish": _unary(pf.hardswish, lo=-4.0, hi=4.0),
    "hardtanh": _unary(lambda x: pf.hardtanh(x, -0.5, 0.7)),
    "gelu_tanh": _unary(lambda x: pf.gelu(x, approximate="tanh")),
    # ---- activation gradients ----
    "relu_grad": _act_grad(pf.relu, away=0.1),
    "leaky_relu_grad": _act_grad(lambda x: pf.leaky_relu(x, 0.2), away=0.1),
    "sigmoid_grad": _act_grad(pf.sigmoid), "tanh_grad": _act_grad(pf.tanh),
    "gelu_grad": _act_grad(pf.gelu), "softplus_grad": _act_grad(pf.softplus),
    "elu_grad": _act_grad(lambda x: pf.elu(x, 0.7), away=0.1),
    "selu_grad": _act_grad(pf.selu, away=0.1),
    "celu_grad": _act_grad(lambda x: pf.celu(x, 0.7), away=0.1),
    "silu_grad": _act_grad(pf.silu), "mish_grad": _act_grad(pf.mish),
    "softsign_grad": _act_grad(pf.softsign, away=0.1),
    "logsigmoid_grad": _act_grad(pf.logsigmoid),
    "hardsigmoid_grad": _act_grad(pf.hardsigmoid, lo=-4.0, hi=4.0),
    "hardswish_grad": _act_grad(pf.hardswish, lo=-4.0, hi=4.0),
    "gelu_tanh_grad": _act_grad(lambda x: pf.gelu(x, approximate="tanh")),
    # ---- binary elementwise (the second operand broadcast) ----
    "add": Case(pf.add, F(N, 3), F(3)), "sub": Case(pf.sub, F(N, 3), F(N, 1)),
    "mul": Case(pf.mul, F(N, 3), F(3)), "div": Case(pf.div, F(N, 3), F(3, away=0.5)),
    "pow": Case(pf.pow, F(N, 3, lo=0.3, hi=2.0), F(3)),
    "maximum": Case(pf.maximum, F(N, 3), F(3)), "minimum": Case(pf.minimum, F(N, 3), F(3)),
    "equal": Case(pf.equal, I(N, 3), I(3), no_grad=_NOT_DIFF),
    "not_equal": Case(pf.not_equal, I(N, 3), I(3), no_grad=_NOT_DIFF),
    "less": Case(pf.less, I(N, 3), I(3), no_grad=_NOT_DIFF),
    "less_equal": Case(pf.less_equal, I(N, 3), I(3), no_grad=_NOT_DIFF),
    "greater": Case(pf.greater, I(N, 3), I(3), no_grad=_NOT_DIFF),
    "greater_equal": Case(pf.greater_equal, I(N, 3), I(3), no_grad=_NOT_DIFF),
    "where": Case(pf.where, I(N, 3, hi=2), F(N, 3), F(3)),
    "atan2": Case(pf.atan2, F(N, 3, away=0.2), F(3, away=0.2)),
    "hypot": Case(pf.hypot, F(N, 3, away=0.2), F(3)),
    "fmod": Case(pf.fmod, F(N, 3, lo=-3.0, hi=3.0), F(3, lo=0.7, hi=1.3)),
    "remainder": Case(pf.remainder, F(N, 3, lo=-3.0, hi=3.0), F(3, lo=0.7, hi=1.3)),
    "bitwise_and": Case(pf.bitwise_and, I(N, 3), I(3), no_grad=_NOT_DIFF),
    "bitwise_or": Case(pf.bitwise_or, I(N, 3), I(3), no_grad=_NOT_DIFF),
    "bitwise_xor": Case(pf.bitwise_xor, I(N, 3), I(3), no_grad=_NOT_DIFF),
    "floor_divide": Case(pf.floor_divide, F(N, 3, lo=-3.0, hi=3.0), F(3, lo=0.7, hi=1.3),
                         no_grad="piecewise constant: declared without a gradient"),
    # ---- reductions ----
    "sum": Case(lambda x: pf.sum(x, axis=1), F(N, 3, 2)),
    "mean": Case(lambda x: pf.mean(x, axis=(0, 2), keepdims=True), F(N, 3, 2)),
    "max": Case(lambda x: pf.max(x, axis=-1), F(N, 3, 2)),
    "min": Case(lambda x: pf.min(x, axis=1), F(N, 3, 2)),
    "argmax": Case(lambda x: pf.argmax(x, axis=1), F(N, 4), no_grad=_NOT_DIFF),
    "argmin": Case(lambda x: pf.argmin(x, axis=0), F(N, 4), no_grad=_NOT_DIFF),
    "prod": Case(lambda x: pf.prod(x, axis=1), F(N, 3, 2, away=0.3)),
    "norm2": Case(lambda x: pf.norm(x, 2, axis=1), F(N, 3, 2)),
    "cumulate": Case(lambda x: pf.cumprod(x, 1), F(N, 4, away=0.3)),
    "argsort": Case(lambda x: pf.argsort(x, axis=1), F(N, 4), no_grad=_NOT_DIFF),
    "reduce_grad": Case(grad_of(lambda x: pf.mean(x, axis=1)), F(N, 3, 2), F(N, 2)),
    # ---- shapes ----
    "reshape": Case(lambda x: pf.reshape(x, (-1, 2, 3)), F(N, 6)),
    "stop_gradient": Case(pf.stop_gradient, F(N, 3),
                          no_grad="a constant to differentiation by design (tested against "
                          "detach in tests/ops/test_torch_parity_edges.py)",
                          any_shape="takes a tensor of any shape"),
    "reshape_like": Case(reshape_like, F(N, 6), F(N, 2, 3)),
    "permute": Case(lambda x: pf.permute(x, 2, 0, 1), F(N, 3, 2)),
    "broadcast_to": Case(lambda x: pf.broadcast_to(x, (2, 3, 4)), F(3, 1)),
    "expand_like": Case(pf.expand_like, F(1, 3), F(N, 3)),
    "sum_to_like": Case(pf.sum_to_like, F(N, 3), F(1, 3)),
    "cast": Case(lambda x: pf.cast(x, "float64"), F(N, 3),
                 any_shape="elementwise: every shape is valid"),
    "concat": Case(lambda a, b: pf.concat([a, b], axis=1), F(N, 2), F(N, 3)),
    "slice": Case(lambda x: x[:, 1:3], F(N, 4)),
    "slice_grad": Case(grad_of(lambda x: x[:, 1:3]), F(N, 4), F(N, 2)),
    "take": Case(lambda x, i: pf.take(x, i, axis=1), F(N, 4), I(5, hi=4)),
    "take_grad": Case(grad_of(lambda x, i: pf.take(x, i, axis=1)), F(N, 4), I(5, hi=4),
                      F(N, 5), wrt=(0, 2)),
    "gather": Case(lambda x, i: pf.gather(x, 1, i), F(N, 4), I(N, 5, lo=-4, hi=4)),
    "gather_grad": Case(grad_of(lambda x, i: pf.gather(x, 1, i)), F(N, 4), I(N, 5, hi=4),
                        F(N, 5), wrt=(0, 2)),
    "scatter": Case(lambda x, i, v: pf.scatter(x, 1, i, v), F(N, 4), I(N, 3, hi=4, unique=True),
                    F(N, 3)),
    "scatter_add": Case(lambda x, i, s: pf.scatter_add(x, 1, i, s), F(N, 4), I(N, 5, hi=4),
                        F(N, 5)),
    "pad": Case(lambda x: pf.pad(x, (1, 2), "reflect"), F(N, 4)),
    "pad_grad": Case(grad_of(lambda x: pf.pad(x, (2, 1), "replicate")), F(N, 3), F(N, 6)),
    # ---- linear algebra ----
    "matmul": Case(pf.matmul, F(N, 3), F(3, 2)),
    "linear": Case(lambda x, k, b: pf.linear(x, k, b, activation="tanh"), F(N, 3), F(3, 2),
                   F(2)),
    # ---- softmax and losses ----
    "softmax": Case(pf.softmax, F(N, 4)), "log_softmax": Case(pf.log_softmax, F(N, 4)),
    "softmax_grad": Case(grad_of(pf.softmax), F(N, 4), F(N, 4)),
    "log_softmax_grad": Case(grad_of(pf.log_softmax), F(N, 4), F(N, 4)),
    "cross_entropy": Case(pf.cross_entropy, F(N, 4), I(N, hi=4)),
    "cross_entropy_grad": Case(grad_of(pf.cross_entropy), F(N, 4), I(N, hi=4), F(),
                               wrt=(0, 2)),
    "mse": Case(pf.mse, F(N, 3), F(N, 3)),
    "mse_grad": Case(grad_of(pf.mse), F(N, 3), F(N, 3), F()),
    # ---- normalisation ----
    "batch_norm_batch_stats": Case(_bn, F(N, 3, 2), F(3), F(3)),
    "batch_norm_train": Case(_bn_tracked, F(N, 3, 2), F(3), F(3)),
    "batch_norm_eval": Case(lambda x, w, b, m, v: _bn(x, w, b, m, v, training=False),
                            F(N, 3, 2), F(3), F(3), F(3), F(3, lo=0.5, hi=2.0)),
    "batch_norm_grad": Case(grad_of(_bn, (0, 1, 2)), F(N, 3, 2), F(3), F(3), F(N, 3, 2)),
    "layer_norm": Case(lambda x, w, b: pf.layer_norm(x, (3,), w, b), F(N, 3), F(3), F(3)),
    "layer_norm_grad": Case(grad_of(lambda x, w, b: pf.layer_norm(x, (3,), w, b), (0, 1, 2)),
                            F(N, 3), F(3), F(3), F(N, 3)),
    # ---- gradient clipping (pyfront/ops/clipping.py) ----
    "grad_sum_of_squares": Case(lambda a, b: sum_of_squares([a, b]), F(N, 3), F(2),
                                no_grad=_CLIPPING, any_shape="sums inputs of any shapes"),
    "clip_by_norm": Case(lambda g: clip_by_norm(g, sum_of_squares([g]), 1.0), F(N, 3),
                         no_grad=_CLIPPING),
    # ---- dropout ----
    "dropout": Case(_dropout, F(N, 8)),
    "dropout_replay": Case(grad_of(_dropout), F(N, 8), F(N, 8)),
    # ---- convolution (bias gradient alone: the bias is the only input asked for) ----
    "conv_grad_bias": Case(grad_of(lambda x, k, b: pf.conv2d(x, k, b), (2,)),
                           F(N, 2, 4, 4), F(3, 2, 2, 2), F(3), F(N, 3, 3, 3)),
}, _conv_cases(1), _conv_cases(2), _conv_cases(3),   # conv, its gradients, conv_transpose
    _pool_cases(1), _pool_cases(2), _pool_cases(3),
    _rnn_cases("lstm", 4, pf.lstm), _rnn_cases("gru", 3, pf.gru),
    _rnn_cases("simple_rnn", 1, pf.simple_rnn), _linalg_cases())

NAMES = sorted(CASES)

# Bugs this test found and that are not fixed yet: each check's known failures, by op, with
# the bug. xfail(strict=True): a fix makes the test pass, which fails it until the entry goes.
KNOWN_BUGS = {}     # check ("wrong_shapes", "double_backward") -> {op name: the bug}


def _names(check):
    known = KNOWN_BUGS.get(check, {})
    return [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=known[n]))
            if n in known else n for n in NAMES]


def test_no_case_is_written_twice_in_one_dict():
    # _merge catches a name in two groups; a dict display keeps the last of two equal keys
    for node in ast.walk(ast.parse(open(__file__, encoding="utf-8").read())):
        if isinstance(node, ast.Dict):
            keys = [k.value for k in node.keys if isinstance(k, ast.Constant)]
            assert len(keys) == len(set(keys)), sorted(k for k in keys if keys.count(k) > 1)


def test_every_registered_op_has_a_case():
    missing = sorted(set(core.REGISTRY) - set(CASES))
    assert not missing, "registered ops without a contract case in %s: %s" % (__file__, missing)
    stale = sorted(set(CASES) - set(core.REGISTRY))
    assert not stale, "cases for ops that are not registered: %s" % stale


def test_known_bugs_name_cases_that_exist():
    for check, bugs in KNOWN_BUGS.items():
        assert set(bugs) <= set(CASES), (check, sorted(set(bugs) - set(CASES)))


def test_checks_are_switched_off_only_with_a_reason():
    for name, case in CASES.items():
        for reason in (case.no_grad, case.no_double, case.any_shape):
            assert reason is None or (isinstance(reason, str) and len(reason) > 10), name
        if not core.REGISTRY[name].differentiable:
            assert case.no_grad, "%s is not differentiable: its case must say why" % name


# ---------------------------------------------------------------------------------------------
# helpers

def _outputs(out):
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _arrays(case, n, seed=0, float_dtype=None):
    rng = np.random.default_rng(seed)
    return [x.make(rng, n, float_dtype) for x in case.inputs]


def _build(case, float_dtype=None):
    """The case as a graph over placeholders (the batch unknown): (graph, inputs, outputs)."""
    g = pf.Graph("contract")
    with g:
        syms = [g.placeholder("in%d" % i, x.symbolic(),
                              float_dtype if float_dtype and x.is_float else x.dtype)
                for i, x in enumerate(case.inputs)]
        outs = _outputs(case.fn(*syms))
    return g, syms, outs


def _eager(case, arrays):
    with pf.no_grad():
        return [o.numpy() for o in _outputs(case.fn(*[pf.tensor(a) for a in arrays]))]


def _run_compiled(g, outs, arrays):
    exe = g.compile(outputs=outs)
    got = exe.run({"in%d" % i: a for i, a in enumerate(arrays)})
    return exe, [got[o.name] for o in outs]


def _stateful(g):
    return any(n.kind == "op" and n.op.stateful for n in g.nodes)


def _assert_close(got, want, tol, what):
    for i, (a, b) in enumerate(zip(got, want)):
        assert a.shape == b.shape and a.dtype == b.dtype, (what, i, a.shape, b.shape, a.dtype,
                                                           b.dtype)
        if np.issubdtype(b.dtype, np.floating):
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol, err_msg="%s %d" % (what, i))
        else:
            np.testing.assert_array_equal(a, b, err_msg="%s %d" % (what, i))


# ---------------------------------------------------------------------------------------------
# eager == compiled, several batch sizes

@pytest.mark.parametrize("name", NAMES)
def test_eager_equals_compiled_across_batch_sizes(name):
    case = CASES[name]
    g, syms, outs = _build(case)
    assert name in {n.op.name for n in g.nodes if n.kind == "op"}, \
        "the case for %s builds a graph without that op" % name
    exe = None
    for seed, n in enumerate(BATCHES):
        if exe is None or _stateful(g):        # stateful ops: a fresh state, as eagerly
            g, syms, outs = _build(case)
            exe = g.compile(outputs=outs)
        arrays = _arrays(case, n, seed)
        got = exe.run({"in%d" % i: a for i, a in enumerate(arrays)})
        _assert_close([got[o.name] for o in outs], _eager(case, arrays), case.tol,
                      "%s, batch %d" % (name, n))


# ---------------------------------------------------------------------------------------------
# gradients: tape == graph == finite differences (float64)

def _weights(shapes, seed=11):
    rng = np.random.default_rng(seed)
    return [rng.uniform(0.5, 1.5, s) for s in shapes]


def _loss(case, xs, weights):
    """sum_i <out_i, weights_i> over the float outputs: one scalar whose gradient involves
    every output."""
    total = None
    for o, w in zip(_outputs(case.fn(*xs)), weights):
        if o.dtype.is_float:
            term = pf.sum(o * w)
            total = term if total is None else total + term
    return total


def _float_output_shapes(case, arrays):
    return [o.shape for o in _eager(case, arrays)]


def _float64(case, n=2, seed=3):
    return _arrays(case, n, seed, "float64")


def _tape_grads(case, arrays, weights, create_graph=False):
    xs = [pf.tensor(a, requires_grad=(i in case.wrt)) for i, a in enumerate(arrays)]
    loss = _loss(case, xs, weights)
    grads = pf.grad(loss, [xs[i] for i in case.wrt], create_graph=create_graph,
                    allow_unused=True)
    return xs, grads


def _dense(grads, arrays, wrt):
    return [np.zeros_like(arrays[i]) if g is None else g.numpy() for g, i in zip(grads, wrt)]


def _numeric(f, arrays, wrt, eps=1e-6):
    """Central differences of the scalar f(arrays) for each element of arrays[i], i in wrt."""
    out = []
    for i in wrt:
        grad = np.zeros_like(arrays[i])
        flat, gflat = arrays[i].reshape(-1), grad.reshape(-1)
        for j in range(flat.size):
            keep = flat[j]
            flat[j] = keep + eps
            hi = f(arrays)
            flat[j] = keep - eps
            lo = f(arrays)
            flat[j] = keep
            gflat[j] = (hi - lo) / (2 * eps)
        out.append(grad)
    return out


def _loss_value(case, weights):
    def f(arrays):
        with pf.no_grad():
            return _loss(case, [pf.tensor(a) for a in arrays], weights).item()
    return f


def _directional(grads, directions):
    """sum_i <grads_i, directions_i>: a scalar whose gradient is a second-derivative product."""
    total = None
    for gr, v in zip(grads, directions):
        if gr is not None:
            term = pf.sum(gr * v)
            total = term if total is None else total + term
    return total


def _graph_gradients(case, arrays, scalar):
    """The gradients of scalar(graph, input symbols) for the wrt inputs, built with
    Graph.gradients and run compiled (zeros where the scalar does not depend on an input)."""
    g = pf.Graph("contract_grad")
    with g:
        xs = [g.placeholder("in%d" % i, a.shape, a.dtype) for i, a in enumerate(arrays)]
        y = scalar(g, xs)
        grads = g.gradients(y, [xs[i] for i in case.wrt]) if y is not None else \
            [None] * len(case.wrt)
    fetch = [s for s in grads if s is not None]
    got = g.compile(outputs=fetch).run({"in%d" % i: a for i, a in enumerate(arrays)}) \
        if fetch else {}
    return [np.zeros_like(arrays[i]) if s is None else got[s.name]
            for s, i in zip(grads, case.wrt)]


def _gradient_case(name):
    case = CASES[name]
    if case.no_grad:
        pytest.skip(case.no_grad)
    return case


@pytest.mark.parametrize("name", NAMES)
def test_tape_gradients_equal_graph_gradients_and_finite_differences(name):
    case = _gradient_case(name)
    arrays = _float64(case)
    weights = _weights(_float_output_shapes(case, arrays))
    _, grads = _tape_grads(case, arrays, weights)
    tape = _dense(grads, arrays, case.wrt)
    graph = _graph_gradients(case, arrays, lambda g, xs: _loss(case, xs, weights))
    for k, (a, b) in enumerate(zip(graph, tape)):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-10,
                                   err_msg="%s: graph vs tape gradient of input %d"
                                   % (name, case.wrt[k]))
    numeric = _numeric(_loss_value(case, weights), arrays, case.wrt)
    for k, (a, b) in enumerate(zip(tape, numeric)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6,
                                   err_msg="%s: tape vs numeric gradient of input %d"
                                   % (name, case.wrt[k]))


@pytest.mark.parametrize("name", _names("double_backward"))
def test_double_backward_equals_finite_differences_of_the_gradient(name):
    case = _gradient_case(name)
    if case.no_double:
        pytest.skip(case.no_double)
    _check_double_backward(name, case)


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
def test_graph_second_derivatives_of_the_fused_losses(reduction):
    # their graph gradients go through kernel gradient ops (mse_grad, cross_entropy_grad),
    # which were skipped as gradient-free: graph second derivatives came out zero
    _check_double_backward("mse", Case(lambda p, t: pf.mse(p, t, reduction), F(N, 3), F(N, 3)))
    _check_double_backward("cross_entropy", Case(
        lambda z, y: pf.cross_entropy(z, y, reduction, ignore_index=0), F(N, 4), I(N, hi=4)))


def _check_double_backward(name, case):
    arrays = _float64(case)
    weights = _weights(_float_output_shapes(case, arrays))
    directions = _weights([arrays[i].shape for i in case.wrt], seed=12)

    def directional(arrays, create_graph):
        xs, grads = _tape_grads(case, arrays, weights, create_graph)
        return xs, _directional(grads, directions)

    xs, s = directional(arrays, True)
    if s is None or not s.requires_grad:
        second = [np.zeros_like(arrays[i]) for i in case.wrt]
    else:
        second = _dense(pf.grad(s, [xs[i] for i in case.wrt], allow_unused=True), arrays,
                        case.wrt)
    numeric = _numeric(lambda a: directional(a, False)[1].item(), arrays, case.wrt)
    for k, (a, b) in enumerate(zip(second, numeric)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6,
                                   err_msg="%s: second derivative of input %d"
                                   % (name, case.wrt[k]))

    def graph_directional(g, xs):
        firsts = g.gradients(_loss(case, xs, weights), [xs[i] for i in case.wrt])
        return _directional(firsts, directions)

    graph = _graph_gradients(case, arrays, graph_directional)
    for k, (a, b) in enumerate(zip(graph, second)):
        np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-9,
                                   err_msg="%s: graph vs tape second derivative of input %d"
                                   % (name, case.wrt[k]))


# ---------------------------------------------------------------------------------------------
# serialization

@pytest.mark.parametrize("name", NAMES)
def test_graph_survives_serialization(name):
    case = CASES[name]
    g, syms, outs = _build(case)
    variables = [n.value for n in g.nodes if n.kind == "variable"]
    names = {id(t): "var%d" % i for i, t in enumerate(variables)}
    # copies taken before anything runs: ops may update their variables in place
    tensors = {names[id(t)]: pf.tensor(t.numpy().copy()) for t in variables}
    desc, constants = graph_to_json(g, syms, outs, names)
    desc = json.loads(json.dumps(desc))                  # through text, as in a file
    tensors.update({k: pf.tensor(v) for k, v in constants.items()})
    g2, syms2, outs2 = graph_from_json(desc, tensors)
    assert [n.op.name for n in g2.nodes if n.kind == "op"] == \
        [n.op.name for n in g.nodes if n.kind == "op" and
         any(n is m for m in _needed(g, outs))]
    arrays = _arrays(case, 3)
    _, want = _run_compiled(g, outs, arrays)
    exe = g2.compile(outputs=outs2)
    got = exe.run({s.name: a for s, a in zip(syms2, arrays)})
    _assert_close([got[o.name] for o in outs2], want, 0, name)


def _needed(g, outs):
    from pyfront.graph.symbol import upstream_ids

    ids = upstream_ids(o.node for o in outs)
    return [n for n in g.nodes if n.id in ids]


# ---------------------------------------------------------------------------------------------
# shape errors name the op

def _perturbations(shape):
    """Wrong shapes to try for an input: one more in the last dim, one dim less, one dim
    more, and a scalar."""
    out = []
    if shape:
        out.append(shape[:-1] + (shape[-1] + 1,))
        out.append(shape[1:])
    out.append((2,) + shape)
    if len(shape) > 1:
        out.append(())
    return out


def _data(spec, shape, rng):
    # positive floats: a shape the op accepts must not then fail on a value (a variance); square
    # matrices diagonally dominant, so symmetric positive-definite (no singular inverse or
    # solve, no failed Cholesky factor)
    if spec.dtype.is_float:
        data = rng.uniform(0.5, 1.5, shape)
        if len(shape) >= 2 and shape[-1] == shape[-2]:
            data = data + 2 * shape[-1] * np.eye(shape[-1])
        return data.astype(spec.dtype.np)
    return np.zeros(shape, spec.dtype.np)


@pytest.mark.parametrize("name", _names("wrong_shapes"))
def test_wrong_shapes_raise_shape_errors_that_name_the_op(name):
    case = CASES[name]
    op = core.REGISTRY[name]
    g = pf.Graph("contract_shapes")
    with g:
        syms = [g.placeholder("in%d" % i, x.concrete(2), x.dtype)
                for i, x in enumerate(case.inputs)]
        case.fn(*syms)
    node = next(n for n in g.nodes if n.kind == "op" and n.op is op)
    specs = [s.specs[k] for s, k in node.inputs]
    rng = np.random.default_rng(0)
    raised = 0
    for i, spec in enumerate(specs):
        for shape in _perturbations(tuple(spec.shape)):
            args = [pf.tensor(_data(sp, shape if j == i else tuple(sp.shape), rng))
                    for j, sp in enumerate(specs)]
            try:
                with pf.no_grad():
                    core.apply(op, args, dict(node.attrs))
            except (errors.ShapeError, errors.DTypeError) as e:
                assert str(e).startswith(name + ":") or str(e).startswith(name + " "), \
                    "%s: input %d as %s: the error does not name the op: %s" % (name, i, shape, e)
                raised += 1
            except Exception as e:   # noqa: BLE001 (any other failure is the bug reported)
                pytest.fail("%s: input %d (%s) as %s raised %s instead of a ShapeError: %s"
                            % (name, i, op.inputs[min(i, len(op.inputs) - 1)], shape,
                               type(e).__name__, e))
    if case.any_shape:
        assert raised == 0, "%s takes any shape (%s) but raised" % (name, case.any_shape)
    else:
        assert raised, "%s: no wrong input shape was refused" % name
