"""Property-based tests: every native kernel, driven through the ops with random shapes (0-size
dims, up to 5-D, broadcasting) and values (inf and NaN for elementwise ops), gives numpy's
answer or a clean pyfront error. The raw ABI is fuzzed with malformed calls in a subprocess,
so that a crash fails a test instead of killing pytest."""
import json
import math
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import pyfront as pf
from pyfront.backend.cpu import lib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# PYFRONT_FUZZ_EXAMPLES=2000 for a long hunt; the default keeps the file well under a minute
FUZZ = settings(max_examples=int(os.environ.get("PYFRONT_FUZZ_EXAMPLES", "60")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

FLOATS = st.sampled_from([np.float32, np.float64])
_erf = np.vectorize(math.erf, otypes=[np.float64])
_erfc = np.vectorize(math.erfc, otypes=[np.float64])


def _gelu(x):
    with np.errstate(all="ignore"):
        y = 0.5 * x * _erfc(-x / math.sqrt(2))
    return np.where(np.isneginf(x), 0.0, np.where(np.isposinf(x), np.inf, y))


UNARY = {
    "neg": np.negative, "exp": np.exp, "log": np.log, "sqrt": np.sqrt,
    "rsqrt": lambda x: 1 / np.sqrt(x), "abs": np.abs, "square": np.square,
    "sign": lambda x: np.where(np.isnan(x), 0, np.sign(x)),     # PyTorch's sign(nan) is 0
    "reciprocal": np.reciprocal, "sin": np.sin, "cos": np.cos, "tanh": np.tanh,
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)), "relu": lambda x: np.where(x < 0, 0.0, x),
    "leaky_relu": lambda x: np.where(x < 0, 0.01 * x, x), "gelu": _gelu,
    "softplus": lambda x: np.logaddexp(0, x), "erf": _erf, "floor": np.floor, "ceil": np.ceil,
    "round": np.rint, "log1p": np.log1p, "expm1": np.expm1,
    "trunc": np.trunc, "tan": np.tan, "asin": np.arcsin, "acos": np.arccos, "atan": np.arctan,
    "sinh": np.sinh, "cosh": np.cosh, "asinh": np.arcsinh, "acosh": np.arccosh,
    "atanh": np.arctanh, "log2": np.log2, "log10": np.log10, "exp2": np.exp2,
    "silu": lambda x: x / (1 + np.exp(-x)), "softsign": lambda x: x / (1 + np.abs(x)),
    "logsigmoid": lambda x: -np.logaddexp(0, -x),
    "elu": lambda x: np.where(x > 0, x, np.expm1(np.minimum(x, 0))),
    "selu": lambda x: 1.0507009873554804934193349852946 * np.where(
        x > 0, x, 1.6732632423543772848170429916717 * np.expm1(np.minimum(x, 0))),
    "hardsigmoid": lambda x: np.clip(x / 6 + 0.5, 0, 1),
    "hardswish": lambda x: x * np.clip(x + 3, 0, 6) / 6,
}
# PyTorch's integer pow: wraps around; 1 and -1 to negative powers are +-1, others 0
_INT_POW = {np.dtype(t): np.frompyfunc(
    lambda a, b, bits=bits: (1 if a == 1 else (-1 if b % 2 else 1) if a == -1 else 0) if b < 0
    else (lambda v: v - (1 << bits) if v >= 1 << (bits - 1) else v)(pow(int(a), int(b), 1 << bits)),
    2, 1) for t, bits in ((np.int32, 32), (np.int64, 64))}
BINARY = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide,
          "pow": np.power, "maximum": np.maximum, "minimum": np.minimum, "equal": np.equal,
          "not_equal": np.not_equal, "less": np.less, "less_equal": np.less_equal,
          "greater": np.greater, "greater_equal": np.greater_equal, "fmod": np.fmod,
          "remainder": np.remainder, "floor_divide": np.floor_divide, "atan2": np.arctan2,
          "hypot": np.hypot}
_FLOAT_ONLY = ("div", "atan2", "hypot")         # integer operands become float32
_IN_DTYPE = ("fmod", "remainder", "floor_divide")  # the reference in the operands' own dtype


def _values(dtype, shape, special=True, bound=None):
    width = 32 if dtype == np.float32 else 64
    if bound is not None:
        elements = st.floats(-bound, bound, width=width)
    else:
        elements = st.floats(width=width, allow_nan=special, allow_infinity=special,
                             min_value=None if special else -1e6,
                             max_value=None if special else 1e6)
    return hnp.arrays(dtype, shape, elements=elements)


def _close(got, want, dtype, scale=1.0):
    """Same shape, same NaN and infinity positions, finite values within float tolerance."""
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    assert got.shape == want.shape
    nan = np.isnan(want)
    assert np.array_equal(np.isnan(got), nan), (got, want)
    inf = np.isinf(want)
    assert np.array_equal(got[inf], want[inf]), (got, want)
    fin = ~(nan | inf)
    eps = 2e-6 if dtype == np.float32 else 1e-12
    atol = min(eps * scale, 1e300) + 1e-37    # (scale may overflow for huge inputs)
    np.testing.assert_allclose(got[fin], want[fin], rtol=eps, atol=atol)


def _clean(call):
    """Run call; a pyfront error is the only acceptable way to fail. Returns (ok, value)."""
    try:
        return True, call()
    except pf.PyfrontError:
        return False, None


# ---------------------------------------------------------------------------------------------
# elementwise

@FUZZ
@given(data=st.data(), name=st.sampled_from(sorted(UNARY)), dtype=FLOATS,
       shape=hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=4))
def test_unary_kernel(data, name, dtype, shape):
    x = data.draw(_values(dtype, shape))
    y = getattr(pf, name)(pf.tensor(x))
    assert y.dtype.np == dtype
    with np.errstate(all="ignore"):
        want = UNARY[name](x.astype(np.float64)).astype(dtype)
    _close(y.numpy(), want, dtype)


@FUZZ
@given(data=st.data(), name=st.sampled_from(["relu", "leaky_relu", "sigmoid", "tanh", "gelu",
                                             "softplus", "silu", "elu", "softsign",
                                             "logsigmoid", "mish", "hardswish"]), dtype=FLOATS,
       shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4))
def test_activation_gradient_kernel(data, name, dtype, shape):
    x = data.draw(_values(dtype, shape, special=False, bound=30.0))
    t = pf.tensor(x, requires_grad=True)
    getattr(pf, name)(t).sum().backward()
    x64 = x.astype(np.float64)
    s = 1 / (1 + np.exp(-x64))
    t_sp = np.tanh(np.logaddexp(0, x64))
    want = {"relu": (x64 > 0) * 1.0, "leaky_relu": np.where(x64 > 0, 1.0, 0.01),
            "sigmoid": s * (1 - s), "tanh": 1 - np.tanh(x64) ** 2,
            "softplus": np.where(x64 > 20, 1.0, s),     # PyTorch's threshold: x above 20
            "silu": s * (1 + x64 * (1 - s)), "elu": np.where(x64 > 0, 1.0, np.exp(x64)),
            "softsign": 1 / (1 + np.abs(x64)) ** 2, "logsigmoid": 1 - s,
            "mish": t_sp + x64 * s * (1 - t_sp ** 2),
            "hardswish": np.where(x64 < -3, 0.0, np.where(x64 <= 3, x64 / 3 + 0.5, 1.0)),
            "gelu": 0.5 * _erfc(-x64 / math.sqrt(2)) + x64 * np.exp(-x64 ** 2 / 2) /
            math.sqrt(2 * math.pi)}[name]
    got = t.grad.numpy()
    # the gradient is taken from the rounded output for sigmoid/tanh: allow that rounding
    np.testing.assert_allclose(got, want, rtol=1e-5 if dtype == np.float32 else 1e-10,
                               atol=4e-7 if dtype == np.float32 else 1e-14)


@FUZZ
@given(data=st.data(), name=st.sampled_from(sorted(BINARY)),
       dtype=st.sampled_from([np.float32, np.float64, np.int32, np.int64]),
       shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=5,
                                                max_side=3),
       mismatch=st.booleans())
def test_binary_kernel(data, name, dtype, shapes, mismatch):
    sa, sb = shapes.input_shapes
    if mismatch:      # shapes drawn independently: they may not broadcast at all
        sb = data.draw(hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=3))
    if np.dtype(dtype).kind == "f":
        a, b = data.draw(_values(dtype, sa)), data.draw(_values(dtype, sb))
    else:
        a = data.draw(hnp.arrays(dtype, sa, elements=st.integers(-1000, 1000)))
        b = data.draw(hnp.arrays(dtype, sb, elements=st.integers(-1000, 1000)))
    integer = np.dtype(dtype).kind == "i"
    try:
        with np.errstate(all="ignore"):
            if integer and name == "pow":
                # (frompyfunc gives a bare Python int for 0-d operands)
                want = np.asarray(_INT_POW[np.dtype(dtype)](*np.broadcast_arrays(a, b))
                                  ).astype(dtype)
            elif name in _IN_DTYPE:
                want = BINARY[name](a, b)
            else:
                want = BINARY[name](a.astype(np.float64), b.astype(np.float64))
    except ValueError:                       # numpy: shapes do not broadcast
        with pytest.raises(pf.ShapeError, match=name):
            getattr(pf, name)(pf.tensor(a), pf.tensor(b))
        return
    if integer and name in _IN_DTYPE and want.size and np.any(np.broadcast_to(b, want.shape) == 0):
        with pytest.raises(pf.NumericError, match="division by zero"):
            getattr(pf, name)(pf.tensor(a), pf.tensor(b))
        return
    y = getattr(pf, name)(pf.tensor(a), pf.tensor(b))
    out_dtype = np.float32 if name in _FLOAT_ONLY and integer else dtype
    if name in ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal"):
        out_dtype = np.bool_
    assert y.dtype.np == out_dtype
    with np.errstate(all="ignore"):
        want = want.astype(out_dtype)
    _close(y.numpy(), want, np.float64 if out_dtype == np.bool_ else out_dtype)


@FUZZ
@given(data=st.data(), dtype=FLOATS,
       shapes=hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=4,
                                                max_side=3))
def test_where_kernel(data, dtype, shapes):
    sc, sa, sb = shapes.input_shapes
    cond = data.draw(hnp.arrays(np.int64, sc, elements=st.integers(0, 1)))
    a, b = data.draw(_values(dtype, sa)), data.draw(_values(dtype, sb))
    y = pf.where(pf.tensor(cond), pf.tensor(a), pf.tensor(b))
    _close(y.numpy(), np.where(cond != 0, a, b), dtype)


@FUZZ
@given(data=st.data(), src=FLOATS, dst=st.sampled_from([np.float32, np.float64, np.int32,
                                                        np.int64, np.bool_]),
       shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4))
def test_cast_kernel(data, src, dst, shape):
    x = data.draw(_values(src, shape))
    ok, y = _clean(lambda: pf.cast(pf.tensor(x), dst))
    limit = 2.0 ** 31 if dst == np.int32 else 2.0 ** 63
    convertible = np.dtype(dst).kind in "fb" or bool(np.all((x >= -limit) & (x < limit)))
    assert ok == convertible
    if ok:
        with np.errstate(all="ignore"):
            assert np.array_equal(y.numpy(), x.astype(dst), equal_nan=np.dtype(dst).kind == "f")


@FUZZ
@given(data=st.data(), shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0,
                                                                max_dims=4, max_side=3))
def test_bool_kernels(data, shapes):
    """bool operands: logical ops (binary max/min/ne), comparisons, bool + and *, where with a
    bool condition, casts both ways and any/all, against numpy."""
    sa, sb = shapes.input_shapes
    a = data.draw(hnp.arrays(np.bool_, sa))
    b = data.draw(hnp.arrays(np.bool_, sb))
    ta, tb = pf.tensor(a), pf.tensor(b)
    for got, want in ((pf.logical_and(ta, tb), a & b), (pf.logical_or(ta, tb), a | b),
                      (pf.logical_xor(ta, tb), a ^ b), (ta + tb, a | b), (ta * tb, a & b),
                      (pf.less(ta, tb), a < b), (pf.equal(ta, tb), a == b), (~ta, ~a)):
        assert got.dtype is pf.bool and np.array_equal(got.numpy(), want)
    x = data.draw(_values(np.float32, sb))
    assert np.array_equal(pf.where(ta, pf.tensor(x), 0.0).numpy(),
                          np.where(a, x, np.float32(0)), equal_nan=True)
    assert np.array_equal(pf.cast(ta, "int32").numpy(), a.astype(np.int32))
    assert pf.any(ta).item() == bool(a.any()) and pf.all(ta).item() == bool(a.all())


# ---------------------------------------------------------------------------------------------
# reductions, softmax, losses

@FUZZ
@given(data=st.data(), mode=st.sampled_from(["sum", "mean", "max", "min", "argmax", "argmin",
                                             "prod"]),
       dtype=FLOATS, shape=hnp.array_shapes(min_dims=0, max_dims=5, min_side=0, max_side=4),
       keepdims=st.booleans())
def test_reduce_kernel(data, mode, dtype, shape, keepdims):
    x = data.draw(_values(dtype, shape, special=data.draw(st.booleans())))
    nd = len(shape)
    if mode.startswith("arg"):
        axis = data.draw(st.none() | st.integers(-nd, nd - 1)) if nd else None
        keepdims = keepdims and axis is not None
    else:
        axis = data.draw(st.none() | st.lists(st.integers(0, nd - 1), unique=True, max_size=nd)
                         .map(tuple)) if nd else None
    ok, y = _clean(lambda: getattr(pf, mode)(pf.tensor(x), axis=axis, keepdims=keepdims))
    reduced = [d for d in range(nd) if axis is None or d in np.atleast_1d(axis) % max(nd, 1)]
    empty_axis = any(shape[d] == 0 for d in reduced)
    if mode not in ("sum", "mean", "prod") and empty_axis and x.size == 0:
        assert not ok                     # numpy: an error (the mean: NaN, as here)
        return
    assert ok
    x64 = x.astype(np.float64)
    # numpy's mean of an empty slice is NaN with a RuntimeWarning (pyfront's too, silently)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if mode.startswith("arg"):
            flat = x64.reshape(-1) if axis is None else x64
            want = getattr(np, mode)(flat, axis=None if axis is None else axis)
            if keepdims:
                want = np.expand_dims(want, axis)
            assert y.dtype is pf.int64 and np.array_equal(y.numpy(), want)
            return
        want = getattr(np, mode)(x64, axis=axis, keepdims=keepdims).astype(dtype)
    n = max(1, int(np.prod([shape[d] for d in reduced])))
    finite = x64[np.isfinite(x64)]
    with np.errstate(all="ignore"):
        scale = 4 * n * (np.abs(finite).max() if finite.size else 1)
        if mode == "prod":     # relative error of a product: n roundings of the result
            _close(y.numpy(), want, dtype, scale=1.0) if n == 1 else np.testing.assert_allclose(
                y.numpy(), want, rtol=4 * n * (2e-7 if dtype == np.float32 else 1e-15),
                atol=1e-30)
            return
    _close(y.numpy(), want, dtype, scale=scale)


@FUZZ
@given(data=st.data(), log=st.booleans(), dtype=FLOATS,
       shape=hnp.array_shapes(min_dims=1, max_dims=4, min_side=0, max_side=4))
def test_softmax_kernels(data, log, dtype, shape):
    x = data.draw(_values(dtype, shape, special=False, bound=60.0))
    axis = data.draw(st.integers(-len(shape), len(shape) - 1))
    t = pf.tensor(x, requires_grad=True)
    y = (pf.log_softmax if log else pf.softmax)(t, axis)
    x64 = x.astype(np.float64)
    lsm = x64 - x64.max(axis, keepdims=True) if x.size else x64
    lsm = lsm - np.log(np.exp(lsm).sum(axis, keepdims=True)) if x.size else x64
    _close(y.numpy(), lsm if log else np.exp(lsm), dtype, scale=60)
    w = data.draw(_values(dtype, shape, special=False, bound=2.0))
    (y * pf.tensor(w)).sum().backward()
    p = np.exp(lsm)
    w64 = w.astype(np.float64)
    if log:
        want = w64 - p * w64.sum(axis, keepdims=True)
    else:
        want = p * (w64 - (w64 * p).sum(axis, keepdims=True))
    _close(t.grad.numpy(), want, dtype, scale=8)


@FUZZ
@given(data=st.data(), dtype=FLOATS, n=st.integers(0, 5), c=st.integers(0, 5),
       reduction=st.sampled_from(["mean", "sum", "none"]), label_dtype=st.sampled_from(
           [np.int32, np.int64]), ignore=st.sampled_from([-100, 0, 2]))
def test_cross_entropy_kernels(data, dtype, n, c, reduction, label_dtype, ignore):
    z = data.draw(_values(dtype, (n, c), special=data.draw(st.booleans())))
    labels = data.draw(hnp.arrays(label_dtype, (n,), elements=st.integers(-1, c)
                                  | st.just(ignore)))
    t = pf.tensor(z, requires_grad=True)
    ok, loss = _clean(lambda: pf.cross_entropy(t, pf.tensor(labels), reduction, ignore))
    used = labels != ignore
    if np.any(used & ((labels < 0) | (labels >= c))):
        assert not ok
        with pytest.raises(pf.IndexOutOfRange, match="out of range"):
            pf.cross_entropy(t, pf.tensor(labels), reduction, ignore)
        return
    z64 = z.astype(np.float64)
    rows = np.zeros(n)
    grad = np.zeros((n, c))
    with np.errstate(all="ignore"):
        for i in np.flatnonzero(used):
            e = np.exp(z64[i] - z64[i].max())
            rows[i] = z64[i].max() + np.log(e.sum()) - z64[i, labels[i]]
            grad[i] = e / e.sum()
            grad[i, labels[i]] -= 1
    if not np.all(np.isfinite(rows)):      # NaN logits, or -inf at the label: no finite loss
        assert not ok
        with pytest.raises(pf.NumericError, match="row"):
            pf.cross_entropy(t, pf.tensor(labels), reduction, ignore)
        return
    assert ok
    if reduction == "mean" and not used.any():    # a mean over no labels: NaN, as torch's
        assert np.isnan(loss.item())
        loss.backward()
        assert not t.grad.numpy().any()
        return
    scale = 1.0 / used.sum() if reduction == "mean" else 1.0
    with np.errstate(all="ignore"):
        want = {"none": rows, "sum": rows.sum(), "mean": rows.sum() * scale}[reduction]
        want = np.asarray(want).astype(dtype)
    finite = np.abs(z64[np.isfinite(z64)])
    big = float(finite.max()) if finite.size else 1.0
    _close(loss.numpy(), want, dtype, scale=min(4 * big * max(n, 1), 1e300))
    loss.sum().backward()
    _close(t.grad.numpy(), grad * scale, dtype, scale=4)


@FUZZ
@given(data=st.data(), dtype=FLOATS, reduction=st.sampled_from(["mean", "sum", "none"]),
       shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4))
def test_mse_kernels(data, dtype, reduction, shape):
    special = data.draw(st.booleans())
    p = data.draw(_values(dtype, shape, special=special, bound=None if special else 1e3))
    q = data.draw(_values(dtype, shape, special=False, bound=1e3))
    tp = pf.tensor(p, requires_grad=True)
    ok, loss = _clean(lambda: pf.mse(tp, pf.tensor(q), reduction))
    d = p.astype(np.float64) - q
    with np.errstate(all="ignore"):
        want = {"none": d * d, "sum": (d * d).sum(),
                "mean": (d * d).mean() if p.size else np.nan}     # torch's mean of nothing
        want = np.asarray(want[reduction]).astype(dtype)
        grad = 2 * d / (p.size if reduction == "mean" else 1)
    if reduction == "mean" and p.size == 0:
        assert ok and np.isnan(loss.item())
        return
    if not np.all(np.isfinite(want)):
        assert not ok       # NaN or Inf inputs, or a loss beyond the float range
        return
    assert ok
    _close(loss.numpy(), want, dtype, scale=1e6 * 8)
    loss.sum().backward()
    _close(tp.grad.numpy(), grad, dtype, scale=1e4)


# ---------------------------------------------------------------------------------------------
# products, layout, optimizers (more than 8 rows by up to 70 columns reach the register tiles)

@FUZZ
@given(data=st.data(), dtype=FLOATS,
       batch=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
       m=st.integers(0, 14), k=st.integers(0, 6), n=st.integers(0, 70), ta=st.booleans(),
       tb=st.booleans())
def test_gemm_kernel(data, dtype, batch, m, k, n, ta, tb):
    ba, bb = batch.input_shapes
    a = data.draw(_values(dtype, ba + ((k, m) if ta else (m, k)), special=False, bound=10.0))
    b = data.draw(_values(dtype, bb + ((n, k) if tb else (k, n)), special=False, bound=10.0))
    y = pf.matmul(pf.tensor(a), pf.tensor(b), transpose_a=ta, transpose_b=tb)
    want = np.matmul(np.swapaxes(a, -1, -2) if ta else a, np.swapaxes(b, -1, -2) if tb else b)
    _close(y.numpy(), want.astype(np.float64), dtype, scale=100 * max(k, 1))


@FUZZ
@given(data=st.data(), dtype=FLOATS, m=st.integers(0, 14), k=st.integers(0, 6),
       n=st.integers(0, 70), bias=st.booleans(),
       act=st.sampled_from([None, "relu", "sigmoid", "tanh", "gelu", "leaky_relu"]))
def test_linear_kernel(data, dtype, m, k, n, bias, act):
    x = data.draw(_values(dtype, (m, k), special=False, bound=5.0))
    w = data.draw(_values(dtype, (k, n), special=False, bound=5.0))
    b = data.draw(_values(dtype, (n,), special=False, bound=5.0))
    y = pf.linear(pf.tensor(x), pf.tensor(w), pf.tensor(b) if bias else None, activation=act)
    z = x.astype(np.float64) @ w + (b if bias else 0)
    with np.errstate(all="ignore"):
        want = {None: z, "relu": np.maximum(z, 0), "sigmoid": 1 / (1 + np.exp(-z)),
                "tanh": np.tanh(z), "gelu": _gelu(z), "leaky_relu": np.where(z > 0, z, 0.01 * z)}
    _close(y.numpy(), want[act], dtype, scale=25 * max(k, 1))


def _slice_for(draw, n):
    step = draw(st.integers(-3, 3).filter(bool))
    start = draw(st.none() | st.integers(-n - 2, n + 2))
    stop = draw(st.none() | st.integers(-n - 2, n + 2))
    return slice(start, stop, step)


@FUZZ
@given(data=st.data(), dtype=st.sampled_from([np.float32, np.float64, np.int32, np.int64]),
       shape=hnp.array_shapes(min_dims=1, max_dims=5, min_side=0, max_side=4))
def test_copy_take_and_fill_kernels(data, dtype, shape):
    """Slicing (copy, and fill + accumulate in its gradient), permutes, broadcast_to, concat and
    take (and take_grad) against numpy."""
    x = data.draw(hnp.arrays(dtype, shape, elements=st.integers(-100, 100)))
    t = pf.tensor(x)
    key = tuple(_slice_for(data.draw, n) for n in shape)
    assert np.array_equal(t[key].numpy(), x[key])
    perm = data.draw(st.permutations(range(len(shape))))
    assert np.array_equal(pf.permute(t, perm).numpy(), np.transpose(x, perm))
    target = data.draw(hnp.broadcastable_shapes(shape, max_dims=5, max_side=3))
    ok, y = _clean(lambda: pf.broadcast_to(t, np.broadcast_shapes(shape, target)))
    assert ok and np.array_equal(y.numpy(), np.broadcast_to(x, np.broadcast_shapes(shape, target)))
    axis = data.draw(st.integers(0, len(shape) - 1))
    assert np.array_equal(pf.concat([t, t[..., ::-1]], axis).numpy(),
                          np.concatenate([x, x[..., ::-1]], axis))
    idx = data.draw(hnp.arrays(np.int64, data.draw(hnp.array_shapes(min_dims=0, max_dims=2,
                                                                    min_side=0, max_side=4)),
                               elements=st.integers(-shape[axis] - 1, shape[axis])))
    ok, y = _clean(lambda: pf.take(t, idx, axis))
    in_range = bool(np.all((idx >= -shape[axis]) & (idx < shape[axis])))
    assert ok == in_range
    if ok:
        assert np.array_equal(y.numpy(), np.take(x, idx, axis))
    if np.dtype(dtype).kind == "f":
        g = pf.tensor(x, requires_grad=True)
        out = g[key] * 2.0
        if in_range:
            out = out.sum() + pf.take(g, idx, axis).sum()
        out.sum().backward()
        want = np.zeros(shape)
        want[key] += 2.0
        if in_range:
            np.add.at(want, (slice(None),) * axis + (np.where(idx < 0, idx + shape[axis], idx),),
                      1.0)
        assert np.array_equal(g.grad.numpy(), want)


@FUZZ
@given(data=st.data(), dtype=st.sampled_from([np.float32, np.float64, np.int32, np.int64]),
       shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=5),
       reverse=st.booleans())
def test_scan_and_sort_kernels(data, dtype, shape, reverse):
    """cumulate (cumsum, cumprod, and the reversed sum of their gradients) and sort along any
    axis, against numpy; the sort is stable and puts NaN last."""
    if np.dtype(dtype).kind == "f":
        x = data.draw(_values(dtype, shape, special=data.draw(st.booleans()), bound=None)
                      if data.draw(st.booleans()) else hnp.arrays(dtype, shape,
                                                                 elements=st.integers(-3, 3)))
    else:
        x = data.draw(hnp.arrays(dtype, shape, elements=st.integers(-3, 3)))
    nd = len(shape)
    axis = data.draw(st.integers(-nd, nd - 1)) if nd else 0
    t = pf.tensor(x)
    wide = np.int64 if np.dtype(dtype).kind == "i" else dtype
    with np.errstate(all="ignore"):
        for fn, ref in ((pf.cumsum, np.cumsum), (pf.cumprod, np.cumprod)):
            y = fn(t, axis)
            want = ref(x.astype(np.float64), axis=axis if nd else None).reshape(shape)
            assert y.dtype.np == wide and y.shape == shape
            if np.dtype(dtype).kind == "i":
                assert np.array_equal(y.numpy(), want.astype(np.int64))
            else:
                finite = np.abs(x[np.isfinite(x)]).max() if np.isfinite(x).any() else 1.0
                n = shape[axis] if nd else 1
                _close(y.numpy(), want.astype(dtype), dtype,
                       scale=4 * n * max(finite, 1.0) ** (n if fn is pf.cumprod else 1))
    if not nd:
        return
    for descending in (False, True):
        v, i = pf.sort(t, axis, descending=descending)
        key = -x if descending and np.dtype(dtype).kind == "i" else x
        order = np.argsort(key, axis=axis, kind="stable")
        if descending and np.dtype(dtype).kind == "f":
            order = _stable_desc(x, axis)
        assert i.dtype is pf.int64 and np.array_equal(i.numpy(), order)
        assert np.array_equal(v.numpy(), np.take_along_axis(x, order, axis), equal_nan=True)


def _stable_desc(x, axis):
    """Indices of a stable descending sort with NaN first (PyTorch's order), by numpy."""
    moved = np.moveaxis(x, axis, -1)
    out = np.empty(moved.shape, np.int64)
    for idx in np.ndindex(moved.shape[:-1]):
        row = moved[idx]
        out[idx] = sorted(range(len(row)), key=lambda k: (not np.isnan(row[k]),
                                                          -row[k] if not np.isnan(row[k]) else 0, k))
    return np.moveaxis(out, -1, axis)


@FUZZ
@given(data=st.data(), dtype=FLOATS, shape=hnp.array_shapes(min_dims=0, max_dims=3, max_side=5),
       kind=st.sampled_from(["sgd", "adam", "adamw"]), momentum=st.sampled_from([0.0, 0.9]),
       nesterov=st.booleans(), wd=st.sampled_from([0.0, 0.1]))
def test_optimizer_kernels(data, dtype, shape, kind, momentum, nesterov, wd):
    p0 = data.draw(_values(dtype, shape, special=False, bound=3.0))
    grads = [data.draw(_values(dtype, shape, special=False, bound=3.0)) for _ in range(2)]
    param = pf.tensor(p0.copy(), requires_grad=True)
    lr = 0.1
    if kind == "sgd":
        nesterov = nesterov and momentum > 0
        opt = pf.optim.SGD([param], lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=wd)
    else:
        opt = (pf.optim.Adam if kind == "adam" else pf.optim.AdamW)([param], lr=lr,
                                                                   weight_decay=wd)
    p = p0.astype(np.float64)
    buf = m = v = None
    for step, g in enumerate(grads, 1):
        param.grad = pf.tensor(g)
        opt.step()
        g = g.astype(np.float64)
        if kind == "sgd":
            d = g + wd * p
            if momentum:
                buf = d if buf is None else momentum * buf + d
                d = d + momentum * buf if nesterov else buf
            p = p - lr * d
        else:
            if kind == "adamw":
                p = p * (1 - lr * wd)
            else:
                g = g + wd * p
            m = (1 - 0.9) * g if m is None else 0.9 * m + 0.1 * g
            v = (1 - 0.999) * g * g if v is None else 0.999 * v + 0.001 * g * g
            p = p - lr / (1 - 0.9 ** step) * m / (np.sqrt(v) / math.sqrt(1 - 0.999 ** step) + 1e-8)
    _close(param.numpy(), p, dtype, scale=1e3 if dtype == np.float32 else 1.0)


# ---------------------------------------------------------------------------------------------
# fused elementwise programs, through the raw ABI

_FUSED_UNARY = {lib.PF_U_NEG: np.negative, lib.PF_U_ABS: np.abs, lib.PF_U_SQUARE: np.square,
                lib.PF_U_SIN: np.sin, lib.PF_U_TANH: np.tanh, lib.PF_U_EXP: np.exp,
                lib.PF_U_SIGMOID: lambda x: 1 / (1 + np.exp(-x)),
                lib.PF_U_RELU: lambda x: np.where(x < 0, 0.0, x),
                lib.PF_U_AFFINE: lambda x: 0.5 * x - 1.0,
                lib.PF_U_CLIP: lambda x: np.clip(x, -0.5, 1.0)}
_FUSED_BINARY = {lib.PF_B_ADD: np.add, lib.PF_B_SUB: np.subtract, lib.PF_B_MUL: np.multiply,
                 lib.PF_B_MAX: np.maximum, lib.PF_B_MIN: np.minimum,
                 lib.PF_B_GT: lambda a, b: (a > b) * 1.0}
_FUSED_GRAD = {lib.PF_G_RELU: lambda y, g: np.where(y > 0, g, 0.0),
               lib.PF_G_TANH: lambda y, g: g * (1 - y * y),
               lib.PF_G_SIGMOID: lambda y, g: g * y * (1 - y)}


@FUZZ
@given(data=st.data(),
       shapes=hnp.mutually_broadcastable_shapes(num_shapes=3, min_dims=0, max_dims=5,
                                                max_side=4),
       n_ops=st.integers(1, 10))
def test_fused_kernel_runs_random_programs(data, shapes, n_ops):
    from pyfront.backend import cpu

    out_shape = shapes.result_shape
    n_in = data.draw(st.integers(1, 3))
    arrays = [data.draw(_values(np.float64, s, special=False, bound=2.0))
              for s in shapes.input_shapes[:n_in]]
    regs = {}
    program = []
    for i, a in enumerate(arrays):
        program += [lib.PF_F_LOAD, i, i, 0, 0, 0]
        regs[i] = np.broadcast_to(a, out_shape)
    fattr = [0.5, -1.0, -0.5, 1.0]      # affine's (a, b) at slot 0, clip's (lo, hi) at slot 2
    for _ in range(n_ops):
        kind = data.draw(st.sampled_from(["unary", "binary", "grad"]))
        dst = data.draw(st.integers(0, 7))
        a, b = data.draw(st.sampled_from(sorted(regs))), data.draw(st.sampled_from(sorted(regs)))
        if kind == "unary":
            op = data.draw(st.sampled_from(sorted(_FUSED_UNARY)))
            slot = 2 if op == lib.PF_U_CLIP else 0
            program += [lib.PF_F_UNARY, dst, a, 0, op, slot]
            with np.errstate(all="ignore"):
                regs[dst] = _FUSED_UNARY[op](regs[a])
        elif kind == "binary":
            op = data.draw(st.sampled_from(sorted(_FUSED_BINARY)))
            program += [lib.PF_F_BINARY, dst, a, b, op, 0]
            with np.errstate(all="ignore"):
                regs[dst] = _FUSED_BINARY[op](regs[a], regs[b])
        else:
            op = data.draw(st.sampled_from(sorted(_FUSED_GRAD)))
            program += [lib.PF_F_UNARY_GRAD, dst, a, b, op, 0]
            with np.errstate(all="ignore"):
                regs[dst] = _FUSED_GRAD[op](regs[a], regs[b])
    stored = data.draw(st.lists(st.sampled_from(sorted(regs)), min_size=1, max_size=2))
    outs = [np.full(out_shape, np.nan) for _ in stored]
    for j, r in enumerate(stored):
        program += [lib.PF_F_STORE, 0, r, j, 0, 0]
    ins = []
    from pyfront.ops.elementwise import broadcast_strides
    for a in arrays:
        ins.append(cpu.Buf(a, a.shape, pf.float64).desc(out_shape,
                                                        broadcast_strides(a.shape, out_shape)))
    cpu.run("fused", ins, [cpu.Buf(o, o.shape, pf.float64).desc() for o in outs], program, fattr)
    for o, r in zip(outs, stored):
        _close(o, np.broadcast_to(regs[r], out_shape), np.float64, scale=1.0)


# ---------------------------------------------------------------------------------------------
# the raw ABI: malformed calls, in a subprocess

_RAW_FUZZ = r'''
import json, sys
import numpy as np
from pyfront.backend.cpu import ffi, lib

KEEP = []
summary = {"calls": 0, "refused": 0, "accepted": [], "silent": [], "base_failed": []}


def tensor(array):
    KEEP.append(array)
    t = ffi.new("pf_tensor *")
    KEEP.append(t)
    t.data = ffi.cast("void *", array.ctypes.data)
    t.dtype = {np.float32: 0, np.float64: 1, np.int32: 2, np.int64: 3, np.bool_: 4}[array.dtype.type]
    t.ndim = array.ndim
    for d in range(array.ndim):
        t.shape[d] = array.shape[d]
        t.strides[d] = array.strides[d] // array.itemsize
    return t


def args(ins, outs, iattr=(), fattr=()):
    a = ffi.new("pf_args *")
    KEEP.append(a)
    a.n_in, a.n_out = len(ins), len(outs)
    for i, t in enumerate(ins):
        a.inputs[i] = t
    for i, t in enumerate(outs):
        a.outputs[i] = t
    if iattr:
        ia = ffi.new("int64_t[]", list(iattr)); KEEP.append(ia)
        a.iattr, a.n_iattr = ia, len(iattr)
    if fattr:
        fa = ffi.new("double[]", list(fattr)); KEEP.append(fa)
        a.fattr, a.n_fattr = fa, len(fattr)
    return a


def f(*shape, dtype=np.float32, fill=0.5):
    return tensor(np.full(shape, fill, dtype))


def call(name, a, expect_refusal, label):
    kid = lib.pf_kernel_lookup(name.encode())
    lib.pf_clear_error()
    status = lib.pf_run(kid, a)
    summary["calls"] += 1
    message = ffi.string(lib.pf_last_error()).decode()
    if status == 0 and expect_refusal:
        summary["accepted"].append("%s: %s" % (name, label))
    elif status != 0:
        summary["refused"] += 1
        if not message:
            summary["silent"].append("%s: %s (status %d)" % (name, label, status))
    return status


BASE = {
    "unary": lambda: ([f(2, 3)], [f(2, 3)], [lib.PF_U_EXP], []),
    "unary_grad": lambda: ([f(2, 3), f(2, 3)], [f(2, 3)], [lib.PF_G_TANH], []),
    "binary": lambda: ([f(2, 3), f(2, 3)], [f(2, 3)], [lib.PF_B_ADD], []),
    "compare": lambda: ([f(2, 3), f(2, 3)], [f(2, 3, dtype=np.bool_)], [lib.PF_B_LT], []),
    "cumulate": lambda: ([f(2, 3, 4)], [f(2, 3, 4)], [0, 1], []),
    "sort": lambda: ([f(2, 3, 4)], [f(2, 3, 4), f(2, 3, 4, dtype=np.int64)], [1], []),
    "where": lambda: ([f(2, 3), f(2, 3), f(2, 3)], [f(2, 3)], [], []),
    "cast": lambda: ([f(2, 3)], [f(2, 3, dtype=np.float64)], [], []),
    "fill": lambda: ([], [f(2, 3)], [], [1.5]),
    "fused": lambda: ([f(2, 3), f(2, 3)], [f(2, 3)],
                      [0, 0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 3, 2, 0, 1, 0, 0, 5, 0, 2, 0, 0, 0], []),
    "reduce": lambda: ([f(2, 3, 4)], [f(2, 4)], [lib.PF_R_SUM], []),
    "gemm": lambda: ([f(2, 3), f(3, 4)], [f(2, 4)], [0, 0], []),
    "linear": lambda: ([f(2, 3), f(3, 4), f(4)], [f(2, 4)], [lib.PF_ACT_RELU], []),
    "copy": lambda: ([f(2, 3)], [f(2, 3)], [], []),
    "take": lambda: ([f(1, 4, 3), f(2, dtype=np.int64, fill=1)], [f(1, 2, 3)], [], []),
    "take_grad": lambda: ([f(2, dtype=np.int64, fill=1), f(1, 2, 3)], [f(1, 4, 3)], [], []),
    "softmax": lambda: ([f(2, 3, 1)], [f(2, 3, 1)], [], []),
    "log_softmax": lambda: ([f(2, 3, 1)], [f(2, 3, 1)], [], []),
    "softmax_grad": lambda: ([f(2, 3, 1), f(2, 3, 1)], [f(2, 3, 1)], [], []),
    "log_softmax_grad": lambda: ([f(2, 3, 1), f(2, 3, 1)], [f(2, 3, 1)], [], []),
    "cross_entropy": lambda: ([f(3, 4), f(3, dtype=np.int64, fill=1)], [f(1)], [1, -100], []),
    "cross_entropy_grad": lambda: ([f(3, 4), f(3, dtype=np.int64, fill=1), f(1)], [f(3, 4)],
                                   [1, -100], []),
    "mse": lambda: ([f(2, 3), f(2, 3)], [f(1)], [1], []),
    "mse_grad": lambda: ([f(2, 3), f(2, 3), f(1)], [f(2, 3)], [1], []),
    "sgd_update": lambda: ([f(5), tensor(np.array([0.1, 1.0]))], [f(5), f(5)], [0],
                           [0.9, 0.0, 0.0]),
    "adam_update": lambda: ([f(5), tensor(np.array([0.1, 1.0]))], [f(5), f(5), f(5)], [0],
                            [0.9, 0.999, 1e-8, 0.0]),
}
# kernels whose integer/float attributes are all optional: dropping them is still a valid call
OPTIONAL_ATTRS = {"where", "cast", "copy", "take", "take_grad", "softmax", "log_softmax",
                  "softmax_grad", "log_softmax_grad", "cross_entropy", "cross_entropy_grad",
                  "mse", "mse_grad"}
BAD_OPCODE = {"unary": [-1, lib.PF_U_COUNT, 1 << 40], "unary_grad": [-1, lib.PF_G_COUNT],
              "binary": [-1, lib.PF_B_COUNT, 99], "compare": [-1, lib.PF_B_ADD, lib.PF_B_COUNT],
              "cumulate": [-1, 2], "reduce": [-1, lib.PF_R_COUNT], "linear": [-1, 6], "cross_entropy": [-1, 3],
              "cross_entropy_grad": [5], "mse": [7], "mse_grad": [3, 1 << 40], "fused": [7, -2]}


def tensor_mutations(t):
    yield "dtype 5", lambda: setattr(t, "dtype", 5)
    yield "dtype -1", lambda: setattr(t, "dtype", -1)
    yield "ndim -1", lambda: setattr(t, "ndim", -1)
    yield "ndim 9", lambda: setattr(t, "ndim", 9)
    yield "ndim 2^31-1", lambda: setattr(t, "ndim", 2 ** 31 - 1)
    if t.ndim:
        yield "negative size", lambda: t.shape.__setitem__(0, -1)
        yield "size -2^40", lambda: t.shape.__setitem__(t.ndim - 1, -(2 ** 40))
        yield "size 2^62", lambda: t.shape.__setitem__(0, 2 ** 62)
    yield "null data", lambda: setattr(t, "data", ffi.NULL)


for name, make in BASE.items():
    ins, outs, iattr, fattr = make()
    if call(name, args(ins, outs, iattr, fattr), False, "valid base") != 0:
        summary["base_failed"].append(name + ": " + ffi.string(lib.pf_last_error()).decode())
        continue
    n_in, n_out = len(ins), len(outs)
    valid_in = {2, 3} if name == "linear" else {n_in}        # linear's bias is optional
    for k_in in sorted({n_in - 1, n_in + 1, -1, 17, 1000} - valid_in):
        if k_in < 0 or k_in > n_in:
            a = args(*make()[:2], iattr, fattr)
        else:
            a = args(make()[0][:k_in], make()[1], iattr, fattr)
        a.n_in = k_in
        call(name, a, True, "n_in %d" % k_in)
    valid_out = {1, 2} if name == "sgd_update" else {n_out}   # the momentum buffer too
    for k_out in sorted({0, n_out + 1, -5, 9, 1 << 20} - valid_out):
        a = args(*make()[:2], iattr, fattr)
        a.n_out = k_out
        call(name, a, True, "n_out %d" % k_out)
    for i in range(n_in):
        a = args(*make()[:2], iattr, fattr)
        a.inputs[i] = ffi.NULL
        call(name, a, True, "input %d null" % i)
    for j in range(n_out):
        a = args(*make()[:2], iattr, fattr)
        a.outputs[j] = ffi.NULL
        call(name, a, True, "output %d null" % j)
    for role in ("in", "out"):
        for i in range(n_in if role == "in" else n_out):
            probe = make()
            count = len(list(tensor_mutations((probe[0] if role == "in" else probe[1])[i])))
            for m in range(count):
                ins2, outs2, _, _ = make()
                t = (ins2 if role == "in" else outs2)[i]
                label, mutate = list(tensor_mutations(t))[m]
                mutate()
                call(name, args(ins2, outs2, iattr, fattr), True, "%s %d: %s" % (role, i, label))
    for j in range(n_out):         # outputs whose writes overlap: stride 0 on a dim of size > 1
        ins2, outs2, _, _ = make()
        t = outs2[j]
        if any(t.shape[d] > 1 for d in range(t.ndim)):
            for d in range(t.ndim):
                t.strides[d] = 0
            call(name, args(ins2, outs2, iattr, fattr), True, "output %d stride 0" % j)
    if name not in OPTIONAL_ATTRS:
        if iattr:
            a = args(*make()[:2], [], fattr)
            call(name, a, True, "no iattr")
            a = args(*make()[:2], iattr, fattr)
            a.iattr = ffi.NULL
            call(name, a, True, "null iattr")
            a = args(*make()[:2], iattr, fattr)
            a.n_iattr = -3
            call(name, a, True, "n_iattr -3")
        if fattr:
            a = args(*make()[:2], iattr, [])
            call(name, a, True, "no fattr")
            a = args(*make()[:2], iattr, fattr)
            a.fattr = ffi.NULL
            call(name, a, True, "null fattr")
    for code in BAD_OPCODE.get(name, []):
        bad = list(iattr)
        bad[0] = code
        call(name, args(*make()[:2], bad, fattr), True, "opcode %d" % code)

# specific shapes of trouble
call("copy", args([f(3, 3)], [(lambda t: (t.strides.__setitem__(0, 1), t)[1])(f(4, 4))]), True,
     "copy: rows overlapping")
call("gemm", args([f(3, 2, 2), f(3, 2, 2)], [(lambda t: (t.strides.__setitem__(0, 0), t)[1])(
    f(3, 2, 2))], [0, 0]), True, "gemm: C batch stride 0")
call("take", args([f(1, 4, 3), f(2, dtype=np.int64, fill=9)], [f(1, 2, 3)]), True,
     "take: index out of range")
call("fused", args([f(2, 3)], [f(2, 3)], [0, 0, 5, 0, 0, 0, 5, 0, 0, 0, 0, 0]), True,
     "fused: load of input 5")
call("fused", args([f(2, 3)], [f(2, 3)], [0, 9, 0, 0, 0, 0]), True, "fused: register 9")
call("fused", args([f(2, 3)], [f(2, 3)], [0, 0, 0, 0, 0, 0, 1, 1, 0, 0, 0, 7]), True,
     "fused: constant slot 7")
call("fused", args([f(2, 3)], [f(2, 3)], [0, 0, 0, 0, 0]), True, "fused: program of 5 words")
call("cross_entropy", args([f(3, 4), f(3, dtype=np.int32, fill=4)], [f(1)], [1, -100]), True,
     "cross_entropy: label 4 of 4 classes")
call("sgd_update", args([f(5), tensor(np.array([np.nan, 1.0]))], [f(5)], [0], [0, 0, 0]), True,
     "sgd_update: NaN learning rate")
call("adam_update", args([f(5), tensor(np.array([0.1, 1.0]))], [f(5), f(5), f(5)], [0],
                         [1.5, 0.999, 1e-8, 0.0]), True, "adam_update: beta1 1.5")

# every kernel in the table (those of later layers too): calls made only of bad tensors
poison = [("null", None), ("dtype 7", lambda t: setattr(t, "dtype", 7)),
          ("ndim 12", lambda t: setattr(t, "ndim", 12)),
          ("negative", lambda t: t.shape.__setitem__(0, -3)),
          ("null data", lambda t: setattr(t, "data", ffi.NULL))]
for kid in range(lib.pf_kernel_count()):
    name = ffi.string(lib.pf_kernel_name(kid)).decode()
    for n_in in range(0, 4):
        for n_out in range(0, 3):
            for label, setup in poison:
                def bad():
                    if setup is None:
                        return ffi.NULL
                    t = f(2, 3)
                    setup(t)
                    return t
                a = args([bad() for _ in range(n_in)], [bad() for _ in range(n_out)],
                         [0, 0, 0, 0, 0, 0], [0.0, 0.0, 0.0, 0.0])
                call(name, a, True, "%d in, %d out, all %s" % (n_in, n_out, label))

# the rest of the ABI
statuses = {
    "workspace null bytes": lib.pf_workspace_size(0, args([], []), ffi.NULL),
    "workspace bad kernel": lib.pf_workspace_size(-1, args([], []), ffi.new("int64_t *")),
    "run_steps null plan": lib.pf_run_steps(ffi.NULL, 0, 3, ffi.new("int64_t *")),
    "set_num_threads 0": lib.pf_set_num_threads(0),
    "set_num_threads 65": lib.pf_set_num_threads(65),
    "load_blas null": lib.pf_load_blas(ffi.NULL, ffi.NULL),
    "load_blas missing": lib.pf_load_blas(b"/nonexistent/libblas.so", b""),
}
steps = ffi.new("pf_step[]", 2)
steps[0].kernel = lib.pf_kernel_lookup(b"unary")
steps[1].kernel = 10 ** 6
failed = ffi.new("int64_t *")
statuses["run_steps bad step"] = lib.pf_run_steps(steps, 0, 2, failed)
summary["failed_step"] = failed[0]
summary["abi_statuses"] = statuses
summary["blas_still_bound"] = lib.pf_blas_bound()
json.dump(summary, sys.stdout)
'''


def test_raw_abi_refuses_malformed_calls_without_crashing():
    env = dict(os.environ, PYTHONPATH=ROOT, PYFRONT_NUM_THREADS="2")
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(_RAW_FUZZ)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, "the fuzzer crashed (status %d): %s" % (proc.returncode,
                                                                          proc.stderr[-2000:])
    summary = json.loads(proc.stdout)
    print("\nraw ABI fuzz: %d calls, %d refused" % (summary["calls"], summary["refused"]))
    assert summary["base_failed"] == []
    assert summary["accepted"] == [], "malformed calls that returned PF_OK"
    assert summary["silent"] == [], "refusals without a message"
    assert summary["calls"] > 1000
    assert all(status != 0 for status in summary["abi_statuses"].values()), summary
    assert summary["failed_step"] == 0 and summary["blas_still_bound"]
