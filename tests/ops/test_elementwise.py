"""Elementwise ops: unary maps, broadcasting binary ops, comparisons and where, against numpy
(float32 and float64, broadcasting, empty and 0-d), finite differences and PyTorch; and the
accuracy of the float32 approximations of exp, tanh, sigmoid, softplus, erf and gelu."""
import math

import numpy as np
import pytest

import pyfront as pf
from pyfront.ops import core
from pyfront.testing import check_grad

_erf64 = np.vectorize(math.erf, otypes=[np.float64])
_erfc64 = np.vectorize(math.erfc, otypes=[np.float64])


def _gelu64(x):
    return 0.5 * x * _erfc64(-x / math.sqrt(2.0))


def _gelu_grad64(x):
    return 0.5 * _erfc64(-x / math.sqrt(2.0)) + x * np.exp(-0.5 * x * x) / math.sqrt(2 * math.pi)


def _pow_scalar(x, p=3.0):
    return core.apply(core.REGISTRY["pow_scalar"], [x], {"exponent": p})


# name: (pyfront function, numpy float64 reference, torch function, input range (low, high),
#        gradient check range or None when the derivative is zero or undefined)
UNARY = {
    "neg": (pf.neg, np.negative, lambda t, x: -x, (-3, 3), (-3, 3)),
    "exp": (pf.exp, np.exp, lambda t, x: t.exp(x), (-5, 5), (-2, 2)),
    "log": (pf.log, np.log, lambda t, x: t.log(x), (0.05, 5), (0.5, 3)),
    "sqrt": (pf.sqrt, np.sqrt, lambda t, x: t.sqrt(x), (0, 5), (0.5, 3)),
    "rsqrt": (pf.rsqrt, lambda x: 1 / np.sqrt(x), lambda t, x: t.rsqrt(x), (0.05, 5), (0.5, 3)),
    "abs": (pf.abs, np.abs, lambda t, x: t.abs(x), (-3, 3), (0.2, 2)),
    "sign": (pf.sign, np.sign, lambda t, x: t.sign(x), (-3, 3), None),
    "square": (pf.square, np.square, lambda t, x: t.square(x), (-3, 3), (-2, 2)),
    "reciprocal": (pf.reciprocal, np.reciprocal, lambda t, x: t.reciprocal(x), (0.2, 4),
                   (0.5, 3)),
    "sin": (pf.sin, np.sin, lambda t, x: t.sin(x), (-6, 6), (-3, 3)),
    "cos": (pf.cos, np.cos, lambda t, x: t.cos(x), (-6, 6), (-3, 3)),
    "tanh": (pf.tanh, np.tanh, lambda t, x: t.tanh(x), (-6, 6), (-2, 2)),
    "sigmoid": (pf.sigmoid, lambda x: 1 / (1 + np.exp(-x)), lambda t, x: t.sigmoid(x), (-8, 8),
                (-3, 3)),
    "relu": (pf.relu, lambda x: np.maximum(x, 0), lambda t, x: t.relu(x), (-3, 3), (-3, 3)),
    "leaky_relu": (lambda x: pf.leaky_relu(x, 0.2), lambda x: np.where(x > 0, x, 0.2 * x),
                   lambda t, x: t.nn.functional.leaky_relu(x, 0.2), (-3, 3), (-3, 3)),
    "gelu": (pf.gelu, _gelu64, lambda t, x: t.nn.functional.gelu(x), (-5, 5), (-3, 3)),
    "softplus": (pf.softplus, lambda x: np.logaddexp(0, x),
                 lambda t, x: t.nn.functional.softplus(x), (-8, 8), (-3, 3)),
    "erf": (pf.erf, _erf64, lambda t, x: t.erf(x), (-3, 3), (-2, 2)),
    "floor": (pf.floor, np.floor, lambda t, x: t.floor(x), (-5, 5), None),
    "ceil": (pf.ceil, np.ceil, lambda t, x: t.ceil(x), (-5, 5), None),
    "round": (pf.round, np.rint, lambda t, x: t.round(x), (-5, 5), None),
    "log1p": (pf.log1p, np.log1p, lambda t, x: t.log1p(x), (-0.9, 5), (-0.5, 3)),
    "expm1": (pf.expm1, np.expm1, lambda t, x: t.expm1(x), (-5, 5), (-2, 2)),
    "affine": (lambda x: pf.affine(x, -1.5, 0.25), lambda x: -1.5 * x + 0.25,
               lambda t, x: x * -1.5 + 0.25, (-3, 3), (-3, 3)),
    "clip": (lambda x: pf.clip(x, -0.5, 1.0), lambda x: np.clip(x, -0.5, 1.0),
             lambda t, x: t.clamp(x, -0.5, 1.0), (-3, 3), (-3, 3)),
    "pow_scalar": (_pow_scalar, lambda x: x ** 3.0, lambda t, x: x ** 3.0, (-3, 3), (-2, 2)),
}

# kinks and steps where finite differences straddle the non-differentiable point
_KINKS = {"relu": [0.0], "leaky_relu": [0.0], "abs": [0.0], "clip": [-0.5, 1.0]}

SHAPES = [(), (0,), (7,), (2, 3, 4), (3, 0, 2)]


def _sample(rng, shape, low, high, dtype, avoid=()):
    x = rng.uniform(low, high, size=shape)
    for k in avoid:
        x = np.where(np.abs(x - k) < 0.05, x + 0.1, x)
    if dtype == np.float32 and np.isscalar(x):
        return np.float32(x)
    return np.asarray(x).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_forward_matches_numpy(name, dtype, rng):
    fn, ref, _, (low, high), _ = UNARY[name]
    for shape in SHAPES:
        x = _sample(rng, shape, low, high, dtype)
        y = fn(pf.tensor(x))
        assert y.dtype.np == dtype and y.shape == np.shape(x)
        expected = ref(np.asarray(x, np.float64))
        if dtype == np.float32:
            np.testing.assert_allclose(y.numpy(), expected, rtol=3e-6, atol=2e-7, err_msg=name)
        else:
            np.testing.assert_allclose(y.numpy(), expected, rtol=1e-13, atol=1e-15, err_msg=name)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_gradient_matches_finite_differences(name, rng):
    fn, _, _, _, grad_range = UNARY[name]
    x = _sample(rng, (2, 3), *(grad_range or (-3, 3)), np.float64, _KINKS.get(name, ()))
    if grad_range is None:   # piecewise constant: the gradient is zero, not missing
        x = np.round(x) + 0.3
        t = pf.tensor(x, requires_grad=True)
        (g,) = pf.grad(fn(t).sum(), [t])
        assert np.array_equal(g.numpy(), np.zeros_like(x))
    check_grad(fn, x)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_matches_torch_forward_and_backward(name, rng, torch):
    fn, _, torch_fn, (low, high), grad_range = UNARY[name]
    x = _sample(rng, (3, 5), *(grad_range or (low, high)), np.float32, _KINKS.get(name, ()))
    w = rng.standard_normal((3, 5)).astype(np.float32)
    t = pf.tensor(x, requires_grad=True)
    y = fn(t)
    (y * pf.tensor(w)).sum().backward()
    tx = torch.tensor(x, requires_grad=True)
    ty = torch_fn(torch, tx)
    (ty * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=2e-6, atol=1e-6)
    np.testing.assert_allclose(t.grad.numpy(), tx.grad.numpy(), rtol=2e-5, atol=1e-6)


def test_unary_ops_on_integer_tensors_compute_in_float32():
    x = pf.tensor([1, 4, 9])
    assert pf.sqrt(x).dtype is pf.float32
    np.testing.assert_allclose(pf.sqrt(x).numpy(), [1, 2, 3])
    assert pf.abs(pf.tensor([-3, 2])).dtype is pf.int64          # abs keeps integers
    assert pf.abs(pf.tensor([-3, 2])).tolist() == [3, 2]
    assert pf.neg(pf.tensor(np.array([1, -2], np.int32))).tolist() == [-1, 2]


def test_nan_propagates_through_every_unary_op():
    x = pf.tensor(np.array([np.nan, 1.0], np.float32))
    for name, (fn, _, _, _, _) in UNARY.items():
        y = fn(x).numpy()
        if name == "sign":
            assert y[0] == 0.0          # PyTorch's sign(nan) (NumPy's is NaN)
        else:
            assert np.isnan(y[0]), name


def test_unary_special_values():
    inf, nan = np.inf, np.nan
    x = pf.tensor(np.array([inf, -inf, 0.0, -0.0, 89.0, -104.0], np.float32))
    assert pf.exp(x).tolist() == [inf, 0.0, 1.0, 1.0, inf, 0.0]
    assert pf.tanh(x).tolist()[:4] == [1.0, -1.0, 0.0, 0.0]
    assert pf.sigmoid(x).tolist()[:3] == [1.0, 0.0, 0.5]
    assert pf.erf(x).tolist()[:3] == [1.0, -1.0, 0.0]
    assert pf.softplus(x).tolist()[:2] == [inf, 0.0]
    g = pf.gelu(x).tolist()
    assert g[0] == inf and g[1] == 0.0 and g[2] == 0.0   # the limits (PyTorch gives NaN at +-inf)
    assert np.isnan(pf.log(pf.tensor([-1.0])).item()) and pf.log(pf.tensor([0.0])).item() == -inf
    assert pf.sqrt(pf.tensor([0.0])).item() == 0.0
    assert pf.reciprocal(pf.tensor([0.0])).item() == inf
    # the same limits in float64
    x64 = pf.tensor(np.array([inf, -inf, nan]))
    assert pf.exp(x64).tolist()[:2] == [inf, 0.0] and np.isnan(pf.exp(x64).tolist()[2])
    assert pf.gelu(pf.tensor(np.array([-40.0]))).item() == 0.0


def _ulp_errors(got, ref):
    got = got.astype(np.float64)
    ulp = np.spacing(np.abs(ref).astype(np.float32)).astype(np.float64)
    normal = np.abs(ref) >= np.finfo(np.float32).tiny   # denormal results are not counted
    err = np.where(normal, np.abs(got - ref) / ulp, 0.0)
    return err, np.where(normal, np.abs(got - ref) / np.maximum(np.abs(ref), 1e-300), 0.0)


# name: (function, float64 reference, sampled range, largest ulp error allowed)
ACCURACY = {
    "exp": (pf.exp, np.exp, (-103.0, 88.7), 1.5),
    "tanh": (pf.tanh, np.tanh, (-10.0, 10.0), 2.0),
    "sigmoid": (pf.sigmoid, lambda x: 1 / (1 + np.exp(-x)), (-87.0, 20.0), 3.0),
    "softplus": (pf.softplus, lambda x: np.logaddexp(0, x), (-87.0, 80.0), 2.0),
    "erf": (pf.erf, _erf64, (-6.0, 6.0), 3.0),
    "gelu": (pf.gelu, _gelu64, (-12.0, 10.0), 4.0),
}


def test_float32_approximations_are_within_a_few_ulp(rng):
    """Max error of the vectorised float32 math against float64, over dense grids, random
    points and tiny arguments (where erf and tanh must keep relative accuracy)."""
    report = []
    for name, (fn, ref, (low, high), bound) in ACCURACY.items():
        x = np.concatenate([np.linspace(low, high, 100001), rng.uniform(low, high, 100000),
                            rng.uniform(-2, 2, 50000), rng.uniform(-1e-3, 1e-3, 5000),
                            [1e-30, -1e-30, 1e-8]]).astype(np.float32)
        got = fn(pf.tensor(x)).numpy()
        ulps, rel = _ulp_errors(got, ref(x.astype(np.float64)))
        worst = int(np.argmax(ulps))
        report.append("%-8s max %.2f ulp (relative %.2e) at x=%.7g" % (name, ulps.max(),
                                                                     rel.max(), x[worst]))
        assert ulps.max() <= bound, report[-1]
    # gelu's gradient crosses zero at x = -0.75: judge it by absolute error
    x = np.linspace(-14, 14, 200001).astype(np.float32)
    t = pf.tensor(x, requires_grad=True)
    pf.gelu(t).sum().backward()
    abs_err = np.abs(t.grad.numpy() - _gelu_grad64(x.astype(np.float64))).max()
    report.append("gelu'    max absolute error %.2e" % abs_err)
    print("\nfloat32 approximations vs float64:\n  " + "\n  ".join(report))
    assert abs_err < 3e-7


# ---------------------------------------------------------------------------------------------
# binary ops

BINARY = {
    "add": (pf.add, np.add, lambda t, a, b: a + b),
    "sub": (pf.sub, np.subtract, lambda t, a, b: a - b),
    "mul": (pf.mul, np.multiply, lambda t, a, b: a * b),
    "div": (pf.div, np.divide, lambda t, a, b: a / b),
    "pow": (pf.pow, np.power, lambda t, a, b: a ** b),
    "maximum": (pf.maximum, np.maximum, lambda t, a, b: t.maximum(a, b)),
    "minimum": (pf.minimum, np.minimum, lambda t, a, b: t.minimum(a, b)),
}
COMPARE = {"equal": np.equal, "not_equal": np.not_equal, "less": np.less,
           "less_equal": np.less_equal, "greater": np.greater, "greater_equal": np.greater_equal}

BROADCASTS = [((3, 4), (3, 4)), ((3, 4), (4,)), ((4,), (3, 4)), ((2, 1, 4), (3, 1)),
              ((), (2, 3)), ((2, 3), ()), ((5, 1, 1), (1, 4, 1)), ((0, 3), (1, 3)),
              ((2, 0), (2, 1)), ((1,), ()), ((2, 1, 3, 1, 2), (4, 1, 1, 1))]


def _operands(rng, sa, sb, dtype, positive=False):
    a = rng.uniform(0.5 if positive else -3, 3, sa)
    b = rng.uniform(0.5 if positive else -3, 3, sb)
    # shared values so that maximum/minimum and comparisons meet ties
    if a.size and b.size:
        a.flat[0] = b.flat[0]
    return np.asarray(a).astype(dtype), np.asarray(b).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_forward_broadcasting_matches_numpy(name, dtype, rng):
    fn, ref, _ = BINARY[name]
    for sa, sb in BROADCASTS:
        a, b = _operands(rng, sa, sb, dtype, positive=name == "pow")
        y = fn(pf.tensor(a), pf.tensor(b))
        expected = ref(a.astype(np.float64), b.astype(np.float64))
        assert y.shape == expected.shape and y.dtype.np == dtype, (name, sa, sb)
        rtol = 2e-6 if dtype == np.float32 else 1e-14
        np.testing.assert_allclose(y.numpy(), expected, rtol=rtol, atol=1e-30)


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_integer_binary_ops_are_exact(dtype, rng):
    for sa, sb in BROADCASTS:
        a = rng.integers(-50, 50, sa).astype(dtype)
        b = rng.integers(-50, 50, sb).astype(dtype)
        ta, tb = pf.tensor(a), pf.tensor(b)
        for name in ("add", "sub", "mul", "maximum", "minimum"):
            y = BINARY[name][0](ta, tb)
            assert y.dtype.np == dtype
            assert np.array_equal(y.numpy(), BINARY[name][1](a, b)), (name, sa, sb)
        for name, ref in COMPARE.items():
            y = getattr(pf, name)(ta, tb)
            assert y.dtype is pf.bool and np.array_equal(y.numpy(), ref(a, b))
    # true division of integers is float, as in numpy
    q = pf.div(pf.tensor(np.array([1, 3], dtype)), pf.tensor(np.array([2, 4], dtype)))
    assert q.dtype is pf.float32 and q.tolist() == [0.5, 0.75]


@pytest.mark.parametrize("name", sorted(COMPARE))
def test_comparisons_give_bool_masks(name, rng):
    for sa, sb in BROADCASTS:
        a, b = _operands(rng, sa, sb, np.float32)
        y = getattr(pf, name)(pf.tensor(a), pf.tensor(b))
        assert y.dtype is pf.bool
        assert np.array_equal(y.numpy(), COMPARE[name](a, b)), (sa, sb)
    nan = pf.tensor(np.array([np.nan, 1.0], np.float32))
    assert getattr(pf, name)(nan, nan).tolist()[0] is (name == "not_equal")
    assert not pf.equal(nan, 1.0).requires_grad


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_gradients_with_broadcasting_match_finite_differences(name, rng):
    fn = BINARY[name][0]
    for sa, sb in [((2, 3), (2, 3)), ((2, 3), (3,)), ((2, 1, 3), (2, 1)), ((), (2, 2))]:
        a, b = _operands(rng, sa, sb, np.float64, positive=name in ("pow", "div"))
        if name in ("maximum", "minimum"):   # keep finite differences away from the ties
            b = b + 0.5 * (np.abs(a.mean() - b) < 0.05)
            a = a + 0.01
        check_grad(fn, a, b)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_matches_torch_forward_and_backward(name, rng, torch):
    fn, _, torch_fn = BINARY[name]
    for sa, sb in [((3, 4), (4,)), ((2, 1, 4), (3, 1)), ((3, 4), (3, 4))]:
        a, b = _operands(rng, sa, sb, np.float32, positive=name in ("pow", "div"))
        ta, tb = pf.tensor(a, requires_grad=True), pf.tensor(b, requires_grad=True)
        y = fn(ta, tb)
        w = rng.standard_normal(y.shape).astype(np.float32)
        (y * pf.tensor(w)).sum().backward()
        ra, rb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
        ry = torch_fn(torch, ra, rb)
        (ry * torch.tensor(w)).sum().backward()
        np.testing.assert_allclose(y.numpy(), ry.detach().numpy(), rtol=2e-6, atol=1e-6)
        np.testing.assert_allclose(ta.grad.numpy(), ra.grad.numpy(), rtol=2e-5, atol=1e-5)
        np.testing.assert_allclose(tb.grad.numpy(), rb.grad.numpy(), rtol=2e-5, atol=1e-5)


def test_maximum_minimum_propagate_nan_like_numpy():
    a = np.array([np.nan, 1.0, 2.0, np.nan], np.float32)
    b = np.array([1.0, np.nan, 1.0, np.nan], np.float32)
    for fn, ref in ((pf.maximum, np.maximum), (pf.minimum, np.minimum)):
        np.testing.assert_array_equal(fn(pf.tensor(a), pf.tensor(b)).numpy(), ref(a, b))


def test_operator_overloads_match_the_functions(rng):
    a = rng.uniform(0.5, 2, (2, 3)).astype(np.float32)
    b = rng.uniform(0.5, 2, (3,)).astype(np.float32)
    x, y = pf.tensor(a), pf.tensor(b)
    cases = [(x + y, a + b), (x - y, a - b), (x * y, a * b), (x / y, a / b), (x ** y, a ** b),
             (-x, -a), (2.0 - x, 2 - a), (2.0 / x, 2 / a), (2.0 ** x, 2 ** a), (abs(-x), a),
             (x > y, a > b), (x <= 1.0, a <= 1), (x == x, np.ones_like(a, bool)),
             (x != y, a != b), (b + x, b + a), (a * y, a * b)]
    for got, want in cases:
        assert got.dtype is (pf.bool if want.dtype == bool else pf.float32)
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# where

def test_where_forward_broadcasting_and_condition_dtypes(rng):
    for cond_dtype in (np.float32, np.int64, np.int32, np.float64):
        c = (rng.uniform(size=(3, 1, 4)) > 0.5).astype(cond_dtype)
        a = rng.standard_normal((2, 4)).astype(np.float32)
        b = rng.standard_normal((3, 2, 1)).astype(np.float32)
        y = pf.where(pf.tensor(c), pf.tensor(a), pf.tensor(b))
        np.testing.assert_array_equal(y.numpy(), np.where(c != 0, a, b))
    # scalars and 0-d; an empty result
    assert pf.where(pf.tensor(1.0), 2.0, 3.0).item() == 2.0
    assert pf.where(pf.tensor([0, 1]), pf.tensor([1, 2]), 7).tolist() == [7, 2]
    assert pf.where(pf.zeros(0, 2), pf.ones(1, 2), 0.0).shape == (0, 2)


def test_where_gradients(rng, torch):
    c = (rng.uniform(size=(3, 4)) > 0.5).astype(np.float64)
    a = rng.standard_normal((3, 4))
    b = rng.standard_normal((4,))
    check_grad(lambda x, y: pf.where(pf.tensor(c), x, y), a, b)
    ta, tb = pf.tensor(a, requires_grad=True), pf.tensor(b, requires_grad=True)
    pf.where(pf.tensor(c), ta, tb).sum().backward()
    ra, rb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    torch.where(torch.tensor(c) != 0, ra, rb).sum().backward()
    np.testing.assert_allclose(ta.grad.numpy(), ra.grad.numpy())
    np.testing.assert_allclose(tb.grad.numpy(), rb.grad.numpy())


# ---------------------------------------------------------------------------------------------
# dtypes and errors

def test_python_scalars_keep_the_tensor_dtype_and_promotion_is_numpy_like():
    f32, f64 = pf.tensor([1.0, 2.0]), pf.tensor(np.array([1.0, 2.0]))
    i32, i64 = pf.tensor(np.array([1, 2], np.int32)), pf.tensor([1, 2])
    assert (f32 * 2).dtype is pf.float32 and (2.5 + f32).dtype is pf.float32
    assert (f64 * 2).dtype is pf.float64 and (f64 - 0.5).dtype is pf.float64
    assert (i64 + 1).dtype is pf.int64 and (i32 * 3).dtype is pf.int32
    assert (i64 + 1.5).dtype is pf.float32 and (i64 + 1.5).tolist() == [2.5, 3.5]
    assert (i32 + i64).dtype is pf.int64
    assert (f32 + f64).dtype is pf.float64
    assert (i64 + f32).dtype is pf.float32
    assert (f32 + [1.0, 1.0]).dtype is pf.float32
    assert (pf.tensor(3.0) + 1).shape == ()          # a number does not add a dim


def test_shape_mismatch_names_the_op_and_both_shapes():
    with pytest.raises(pf.ShapeError) as e:
        pf.add(pf.ones(2, 3), pf.ones(4))
    msg = str(e.value)
    assert "add" in msg and "(2, 3)" in msg and "(4,)" in msg
    with pytest.raises(pf.ShapeError, match=r"mul.*\(5, 2\).*\(3,\)"):
        pf.ones(5, 2) * pf.ones(3)
    with pytest.raises(pf.ShapeError, match="where"):
        pf.where(pf.ones(2), pf.ones(3), pf.ones(3))


def test_wrong_dtypes_are_refused_cleanly():
    with pytest.raises(pf.DTypeError):
        core.apply(core.REGISTRY["add"], [pf.ones(2), pf.tensor([1, 2])])
    with pytest.raises(pf.DTypeError):
        core.apply(core.REGISTRY["exp"], [pf.tensor([1, 2])])
    with pytest.raises(pf.DTypeError):
        core.apply(core.REGISTRY["div"], [pf.tensor([1, 2]), pf.tensor([1, 2])])
    assert pf.tensor([1, 0], dtype=bool).dtype is pf.bool
    # boolean arrays meeting a float tensor act as 0/1 masks of its dtype, as in numpy
    masked = pf.tensor([2.0, 3.0]) * np.array([True, False])
    assert masked.dtype is pf.float32 and masked.tolist() == [2.0, 0.0]
    # lo > hi: every element is hi, as PyTorch's clamp
    assert pf.clip(pf.ones(2), 1.0, 0.0).tolist() == [0.0, 0.0]
