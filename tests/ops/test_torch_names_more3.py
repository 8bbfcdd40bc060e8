"""The third batch of torch names: torch.* functions (searchsorted, unravel_index, cov,
corrcoef, histogram, gcd, lcm, frexp, ldexp, nextafter, rsub, sgn, angle, i0, digamma,
polygamma, mvlgamma, renorm, addbmm, addmv, addr, chain_matmul, cumulative_trapezoid, the
dtype functions, the default dtype, compile), pf.special, F.bilinear, F.gumbel_softmax and
nn.EmbeddingBag: values against PyTorch (edge cases: 0-d, empty, negative dims, integers),
gradients against PyTorch and float64 finite differences, eager against pf.jit, and the
errors."""
import math
import warnings

import numpy as np
import pytest
import torch

import pyfront as pf
import pyfront.nn.functional as F
from pyfront.testing import check_grad
from torch_reference import as_numpy as _np, compare as _compare
from torch_reference import eager_equals_jit as _eager_equals_jit, listed as _listed

TF = torch.nn.functional


@pytest.fixture
def rng():
    return np.random.default_rng(13)


# ---- the names exist ----

TORCH_FUNCTIONS = [
    "searchsorted", "unravel_index", "cov", "corrcoef", "histogram", "gcd", "lcm", "frexp",
    "ldexp", "nextafter", "rsub", "sgn", "angle", "i0", "digamma", "polygamma", "mvlgamma",
    "renorm", "addbmm", "addmv", "addr", "chain_matmul", "cumulative_trapezoid", "result_type",
    "can_cast", "promote_types", "is_floating_point", "is_nonzero", "get_default_dtype",
    "set_default_dtype", "compile"]
SPECIAL = [
    "erf", "erfc", "erfinv", "expit", "logit", "xlogy", "xlog1py", "gammaln", "digamma", "psi",
    "polygamma", "multigammaln", "i0", "i0e", "i1", "i1e", "ndtr", "ndtri", "log_ndtr", "sinc",
    "round", "softmax", "log_softmax", "log1p", "expm1", "exp2", "entr", "logsumexp"]
METHODS = [
    "cov", "corrcoef", "histogram", "renorm", "gcd", "lcm", "frexp", "ldexp", "nextafter", "sgn",
    "angle", "i0", "digamma", "polygamma", "mvlgamma", "addbmm", "addmv", "addr",
    "is_floating_point", "is_nonzero"]


def test_the_name_probe_finds_every_name():
    missing = [n for n in TORCH_FUNCTIONS if not callable(getattr(pf, n, None))]
    missing += ["special." + n for n in SPECIAL if not callable(getattr(pf.special, n, None))]
    missing += ["Tensor." + n for n in METHODS if not hasattr(pf.Tensor, n)]
    missing += ["F." + n for n in ("bilinear", "gumbel_softmax") if not hasattr(F, n)]
    missing += ["nn.EmbeddingBag"] if not hasattr(pf.nn, "EmbeddingBag") else []
    assert missing == []
    # and they are torch's names
    assert all(hasattr(torch, n) for n in TORCH_FUNCTIONS)
    assert all(hasattr(torch.special, n) for n in SPECIAL)
    assert all(hasattr(torch.Tensor, n) for n in METHODS)
    assert F.bilinear is pf.bilinear and F.gumbel_softmax is pf.gumbel_softmax


# ---- special functions ----

def _special_points(rng):
    return np.concatenate([rng.uniform(-12, 12, 200), np.exp(rng.uniform(-20, 6, 100)),
                           [0.5, 1.0, 2.0, 7.9, 8.0, 8.1, 30.0, 700.0]])


@pytest.mark.parametrize("pf_fn, torch_fn", [
    (pf.i0, torch.i0), (pf.special.i0e, torch.special.i0e), (pf.special.i1, torch.special.i1),
    (pf.special.i1e, torch.special.i1e)], ids=["i0", "i0e", "i1", "i1e"])
def test_bessel_functions_match_torch_to_1e_6_in_float64(pf_fn, torch_fn, rng):
    x = _special_points(rng)
    x = np.concatenate([x, -x[::3], [0.0, -0.0, np.inf, -np.inf, np.nan]])
    _compare(pf_fn, torch_fn, x, grad=False, rtol=1e-6, atol=0)
    # in fact to about 1e-15: the approximations are float64's own
    _compare(pf_fn, torch_fn, x, grad=False, rtol=2e-14, atol=0)
    # gradients (i0' = i1, i1' = i0 - i1 / x, ...) away from the kink of exp(-|x|) at 0
    y = x[np.isfinite(x) & (np.abs(x) > 1e-3) & (np.abs(x) < 600)]
    _compare(pf_fn, torch_fn, y, rtol=2e-14, atol=0, grad_rtol=1e-11)


def test_bessel_functions_in_float32_are_float64s_rounded(rng):
    x = _special_points(rng)[:200].astype(np.float32)
    for pf_fn, torch_fn in ((pf.i0, torch.i0), (pf.special.i1e, torch.special.i1e)):
        got = pf_fn(pf.tensor(x))
        assert got.dtype == pf.float32
        want = torch_fn(torch.tensor(x, dtype=torch.float64)).numpy().astype(np.float32)
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-7)
    # i0(89) = 1.9e37 fits float32: no overflow on the way (torch's float32 kernel gives inf)
    assert np.isfinite(pf.i0(pf.tensor(np.float32([89.0]))).numpy()).all()


def test_digamma_and_polygamma_match_torch(rng):
    x = rng.uniform(-12, 12, 300)
    x = x[np.abs(x - np.round(x)) > 1e-6]
    x = np.concatenate([x, np.exp(rng.uniform(-20, 8, 100)), [1.4616321449683622]])
    # absolute near digamma's roots, relative elsewhere; the gradient to torch's trigamma's
    # accuracy (about 5e-10: ours is float64's, see the finite differences below)
    _compare(pf.digamma, torch.digamma, x, rtol=1e-12, atol=1e-13, grad_rtol=2e-9)
    for n in (1, 2, 3, 4):
        _compare(lambda t, n=n: pf.polygamma(n, t), lambda t, n=n: torch.polygamma(n, t), x,
                 rtol=2e-9 if n == 1 else 1e-11, atol=0, grad_rtol=1e-10)
    _compare(lambda t: pf.polygamma(0, t), lambda t: torch.polygamma(0, t), x, rtol=1e-12,
             atol=1e-13)


def test_digamma_is_lgammas_gradient_and_has_torchs_poles(rng):
    x = rng.uniform(-9, 9, 200)
    t = pf.tensor(x, requires_grad=True)
    slope = pf.grad(pf.lgamma(t).sum(), t)
    np.testing.assert_allclose(pf.digamma(pf.tensor(x)).numpy(), slope.numpy(), rtol=1e-12,
                               atol=1e-12)
    edges = np.array([0.0, -0.0, -1.0, -3.0, np.inf, -np.inf, np.nan])
    np.testing.assert_array_equal(pf.digamma(pf.tensor(edges)).numpy(),
                                  torch.digamma(torch.tensor(edges)).numpy())
    poles = np.array([0.0, -0.0, -2.0])
    for n in (1, 2, 3):
        want = (-1.0) ** (n + 1) * np.inf
        np.testing.assert_array_equal(pf.polygamma(n, pf.tensor(poles)).numpy(), want)
    assert pf.polygamma(1, pf.tensor([np.inf])).item() == 0.0
    assert pf.digamma(pf.tensor(2)).dtype == pf.float32          # integers: the default float


def test_special_functions_of_the_normal_distribution_match_torch(rng):
    x = np.concatenate([rng.uniform(-40, 10, 300), [-1.0, 0.0, np.inf, -np.inf, np.nan]])
    _compare(pf.special.log_ndtr, torch.special.log_ndtr, x, rtol=1e-13, atol=0,
             grad_rtol=1e-9)
    # ndtr keeps the far left tail, where torch's reaches 0 (its 1 + erf loses it)
    y = x[x > -8]
    _compare(pf.special.ndtr, torch.special.ndtr, y, rtol=1e-13, atol=1e-16, grad_rtol=1e-9)
    assert pf.special.ndtr(pf.tensor([-30.0], dtype="float64")).item() == \
        pytest.approx(4.906713927148187e-198, rel=1e-13)
    p = np.concatenate([rng.uniform(0, 1, 300), np.exp(rng.uniform(-700, -1, 100)),
                        1 - np.exp(rng.uniform(-30, -2, 50)), [0.0, 1.0, -0.5, 1.5, np.nan]])
    _compare(pf.special.ndtri, torch.special.ndtri, p, grad=False, rtol=1e-13, atol=0)
    q = p[(p > 1e-300) & (p < 1 - 1e-12)]
    _compare(pf.special.ndtri, torch.special.ndtri, q, rtol=1e-13, atol=0, grad_rtol=1e-9)


def test_entr_xlog1py_mvlgamma_match_torch(rng):
    x = np.concatenate([rng.uniform(0.01, 5, 50), [0.0, -1.0, np.nan, np.inf]])
    _compare(pf.special.entr, torch.special.entr, x, grad=False)
    _compare(pf.special.entr, torch.special.entr, x[:50])
    a = np.array([0.0, 0.0, 2.0, -1.5, 0.0, 3.0])
    b = np.array([-1.0, np.nan, 0.5, 2.0, 3.0, -0.5])
    _compare(pf.special.xlog1py, torch.special.xlog1py, a, b, grad=False)
    _compare(pf.special.xlog1py, torch.special.xlog1py, a[2:], b[2:])
    y = rng.uniform(1.6, 9.0, (3, 4))
    for p in (1, 3, 4):
        _compare(lambda t, p=p: pf.mvlgamma(t, p), lambda t, p=p: torch.mvlgamma(t, p), y,
                 rtol=1e-12)
        _compare(lambda t, p=p: pf.special.multigammaln(t, p),
                 lambda t, p=p: torch.special.multigammaln(t, p), y, rtol=1e-12)
    with pytest.raises(ValueError, match=r"mvlgamma: every element of x \(2,\) must exceed"):
        pf.mvlgamma(pf.tensor([1.0, 3.0]), 4)


@pytest.mark.parametrize("name", [
    "erf", "erfc", "erfinv", "expit", "logit", "gammaln", "psi", "sinc", "log1p", "expm1",
    "exp2", "round"])
def test_special_aliases_match_torch(name, rng):
    x = rng.uniform(-0.9, 0.9, (3, 4)) if name == "erfinv" else \
        rng.uniform(0.05, 0.95, (3, 4)) if name == "logit" else \
        rng.uniform(0.1, 3.0, (3, 4)) if name in ("gammaln", "psi") else \
        rng.standard_normal((3, 4))
    f, g = getattr(pf.special, name), getattr(torch.special, name)
    _compare(f, g, x, grad=name != "round", rtol=1e-10)


def test_special_softmax_log_softmax_logsumexp_xlogy_match_torch(rng):
    x = rng.standard_normal((3, 4))
    _compare(lambda t: pf.special.softmax(t, 1), lambda t: torch.special.softmax(t, 1), x)
    _compare(lambda t: pf.special.log_softmax(t, dim=-2),
             lambda t: torch.special.log_softmax(t, dim=-2), x)
    _compare(lambda t: pf.special.logsumexp(t, 0, keepdim=True),
             lambda t: torch.special.logsumexp(t, 0, keepdim=True), x)
    ints = np.arange(6).reshape(2, 3)
    _compare(lambda t: pf.special.softmax(t, 1, dtype=pf.float64),
             lambda t: torch.special.softmax(t, 1, dtype=torch.float64), ints)
    _compare(pf.special.xlogy, torch.special.xlogy, np.abs(x) + 0.1, np.abs(x.T.T) + 1.0)
    _compare(lambda t: pf.special.round(t, decimals=2),
             lambda t: torch.special.round(t, decimals=2), x, grad=False)


def test_special_functions_of_0d_empty_and_integer_tensors():
    for x in (np.float64(0.7), np.zeros((0, 3))):
        for name in ("i0e", "i1", "digamma", "ndtri", "log_ndtr", "entr"):
            got, want = getattr(pf.special, name)(pf.tensor(x)), \
                getattr(torch.special, name)(torch.tensor(x))
            assert got.shape == tuple(want.shape)
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12)
    ints = np.array([1, 2, 5])
    for name in ("i0", "digamma", "ndtr", "i1e"):
        got, want = getattr(pf.special, name)(pf.tensor(ints)), \
            getattr(torch.special, name)(torch.tensor(ints))
        assert got.dtype == pf.float32 and want.dtype == torch.float32
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=2e-6)


def test_special_function_gradients_match_finite_differences():
    x = np.array([0.3, 1.7, -2.4, 6.5, 9.0, 12.0])
    for fn in (pf.digamma, lambda t: pf.polygamma(2, t), pf.i0, pf.special.i1e,
               pf.special.log_ndtr, lambda t: pf.mvlgamma(pf.abs(t) + 2.0, 3)):
        check_grad(fn, x, atol=1e-6, rtol=1e-6)
    check_grad(pf.special.ndtri, np.array([1e-4, 0.1, 0.5, 0.93]), eps=1e-8, rtol=1e-5)


# ---- integers and floats' parts ----

def test_gcd_lcm_match_torch(rng):
    a = rng.integers(-10 ** 12, 10 ** 12, 300)
    b = rng.integers(-10 ** 6, 10 ** 6, 300)
    a[:5], b[3:8] = 0, 0
    for fn in ("gcd", "lcm"):
        f, g = getattr(pf, fn), getattr(torch, fn)
        small = a % 10 ** 6
        _compare(f, g, small if fn == "lcm" else a, b)
        _compare(f, g, a[:6].reshape(2, 3).astype(np.int32) % 1000,
                 b[:3].astype(np.int32))              # broadcast, int32
        _compare(lambda x: f(x, 12), lambda x: g(x, torch.tensor(12)), np.int64(18))   # 0-d
        _compare(f, g, np.zeros((0, 2), np.int64), np.array([4, 6]))
        assert getattr(pf.tensor(a[:3]), fn)(pf.tensor(b[:3])).shape == (3,)
    # the worst case for Euclid: consecutive Fibonacci numbers near int64's limit
    fib = [0, 1]
    while fib[-1] < 2 ** 62:
        fib.append(fib[-1] + fib[-2])
    x, y = np.array(fib[-1:]), np.array(fib[-2:-1])
    _compare(pf.gcd, torch.gcd, x, y)
    _eager_equals_jit(pf.gcd, x, y)
    _eager_equals_jit(pf.lcm, a[:20] % 1000, b[:20])
    with pytest.raises(pf.DTypeError, match=r"gcd: a and b must be integers .* got a "
                                             r"float32 \(1,\) and b int64 \(1,\)"):
        pf.gcd(pf.tensor([1.5]), pf.tensor([2]))


def test_frexp_ldexp_nextafter_match_torch(rng):
    v = np.concatenate([rng.standard_normal(200) * 10.0 ** rng.integers(-300, 300, 200),
                        [0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, 2.2250738585072014e-308,
                         1.7976931348623157e308, 0.5, 1.0, 0.9999999999999999, -4.0]])
    with np.errstate(over="ignore"):
        v32 = v.astype(np.float32)                    # (the largest become inf)
    for x in (v, v32, np.float64(-3.5), np.zeros((2, 0))):
        m, e = pf.frexp(pf.tensor(x))
        tm, te = torch.frexp(torch.tensor(x))
        np.testing.assert_array_equal(m.numpy(), tm.numpy())
        np.testing.assert_array_equal(e.numpy(), te.numpy())
        assert m.dtype.name == str(tm.dtype)[6:] and e.dtype == pf.int32
    assert pf.frexp(pf.tensor([3.0])).mantissa.item() == 0.75
    finite = v[np.isfinite(v) & (np.abs(v) < 1e300)][:50]
    # (torch's gradient, grad / exp2(exponent), overflows in float32 beyond 2^+-127)
    moderate = finite[(np.abs(finite) > 1e-30) & (np.abs(finite) < 1e30)]
    _compare(lambda t: pf.frexp(t).mantissa, lambda t: torch.frexp(t).mantissa, moderate)
    e = rng.integers(-20, 20, 50)
    # (torch's gradient toward x is wrong for integer exponents: values only)
    _compare(pf.ldexp, torch.ldexp, finite, e, grad=False)
    _compare(pf.ldexp, torch.ldexp, moderate, e[:len(moderate)].astype(np.float64))
    check_grad(lambda a, b: pf.ldexp(a, b), np.array([0.3, -1.2, 2.5]), np.array([3.0, -2, 0]))
    check_grad(lambda a: pf.frexp(a).mantissa, np.array([0.3, -1.2, 2.5e-5]), eps=1e-9)
    _compare(pf.ldexp, torch.ldexp, np.array([1, 3]), np.array([2, -1]))   # integers: float
    for dt in (np.float32, np.float64):
        info = np.finfo(dt)
        with np.errstate(over="ignore"):
            x = np.concatenate([v, [0, 0, 1, 1, np.inf, -np.inf, info.max, -info.tiny,
                                    info.tiny, info.smallest_subnormal]]).astype(dt)
            y = np.concatenate([rng.standard_normal(len(v)) * 10.0 ** rng.integers(
                -300, 300, len(v)), [1, -1, 2, 0, 0, 1, np.inf, 1, 0, 0]]).astype(dt)
        got, want = pf.nextafter(pf.tensor(x), pf.tensor(y)), torch.nextafter(
            torch.tensor(x), torch.tensor(y))
        np.testing.assert_array_equal(got.numpy(), want.numpy())
        assert got.dtype.name == np.dtype(dt).name
    _eager_equals_jit(pf.nextafter, v[:20], v[20:40])
    _eager_equals_jit(lambda t: tuple(pf.frexp(t)), v)
    with pytest.raises(pf.DTypeError, match="frexp: x must be float32 or float64, got int64"):
        pf.frexp(pf.tensor([1, 2]))
    with pytest.raises(pf.DTypeError, match="nextafter: x and other must be float"):
        pf.nextafter(pf.tensor([1]), pf.tensor([2]))


def test_rsub_sgn_angle_match_torch(rng):
    x, y = rng.standard_normal((3, 4)), rng.standard_normal(4)
    _compare(pf.rsub, torch.rsub, x, y)
    _compare(lambda a, b: pf.rsub(a, b, alpha=2.5), lambda a, b: torch.rsub(a, b, alpha=2.5),
             x, y)
    _compare(lambda a: pf.rsub(a, 3), lambda a: torch.rsub(a, 3), np.array([1, 2]))
    edges = np.array([-2.0, -0.0, 0.0, 3.0, np.nan, -np.inf])
    for fn in ("sgn", "angle"):
        _compare(getattr(pf, fn), getattr(torch, fn), x)
        _compare(getattr(pf, fn), getattr(torch, fn), edges, grad=False)
        _compare(getattr(pf, fn), getattr(torch, fn), np.array([-3, 0, 5]))
        _compare(getattr(pf, fn), getattr(torch, fn), np.float64(-1.5))
        _compare(lambda t, fn=fn: getattr(t, fn)(), lambda t, fn=fn: getattr(t, fn)(), x)


# ---- searching, counting, statistics, integrals ----

def test_searchsorted_matches_torch(rng):
    seq = np.sort(rng.standard_normal(9))
    seq[3] = seq[4]                                   # a tie
    v = np.concatenate([rng.standard_normal(7), seq[:3], [np.nan, -np.inf, np.inf]])
    for kwargs in ({}, {"right": True}, {"side": "right"}, {"side": "left"},
                   {"out_int32": True}):
        _compare(lambda s, x: pf.searchsorted(s, x, **kwargs),
                 lambda s, x: torch.searchsorted(s, x, **kwargs), seq, v)
    rows = np.sort(rng.standard_normal((2, 3, 6)), -1)
    _compare(pf.searchsorted, torch.searchsorted, rows, rng.standard_normal((2, 3, 4)))
    order = rng.permutation(9)
    unsorted, sorter = seq[order], np.argsort(seq[order])
    _compare(lambda s, x, o: pf.searchsorted(s, x, sorter=o),
             lambda s, x, o: torch.searchsorted(s, x, sorter=o), unsorted, v, sorter)
    _compare(lambda s: pf.searchsorted(s, 0.1), lambda s: torch.searchsorted(s, 0.1), seq)
    _compare(pf.searchsorted, torch.searchsorted, seq, np.zeros((0,)))
    _compare(pf.searchsorted, torch.searchsorted, np.arange(5), np.array([[2, 7], [-1, 3]]))
    _eager_equals_jit(lambda s, x: pf.searchsorted(s, x, side="right"), seq, v)
    with pytest.raises(ValueError, match="side='left' and right=True contradict"):
        pf.searchsorted(pf.tensor(seq), pf.tensor(v), right=True, side="left")
    with pytest.raises(pf.ShapeError, match=r"searchsorted: an N-D sorted_sequence "
                                            r"\(2, 3, 6\) needs input with the same leading "
                                            r"dims, got \(3, 4\)"):
        pf.searchsorted(pf.tensor(rows), pf.tensor(np.zeros((3, 4))))


def test_unravel_index_matches_torch():
    idx = np.array([[0, 5, 17], [23, -1, 24]])
    for shape in ((2, 3, 4), (24,), 6, (4, 6)):
        got, want = pf.unravel_index(pf.tensor(idx), shape), \
            torch.unravel_index(torch.tensor(idx), shape)
        assert len(got) == len(want)
        for g, w in zip(got, want):
            assert g.dtype == pf.int64 and g.shape == tuple(w.shape)
            np.testing.assert_array_equal(g.numpy(), w.numpy())
    got = pf.unravel_index(pf.tensor(np.int32(7)), (3, 4))
    assert [g.item() for g in got] == [1, 3] and got[0].shape == ()
    _eager_equals_jit(lambda i: pf.unravel_index(i, (3, 4, 2)), idx)
    with pytest.raises(ValueError, match="unravel_index: shape must be positive ints"):
        pf.unravel_index(pf.tensor([1]), (2, -3))
    with pytest.raises(pf.DTypeError, match="unravel_index: indices must be integers"):
        pf.unravel_index(pf.tensor([1.0]), (2, 3))


def test_histogram_matches_torch(rng):
    x = rng.standard_normal(200)
    x[:3] = [np.nan, 5.0, -5.0]
    for dt in (np.float64, np.float32):
        a = x.astype(dt)
        cases = [((7,), {}), ((5,), {"range": (-1.0, 2.0)}), ((4,), {"density": True}),
                 ((3,), {"range": (0.5, 0.5)})]
        for args, kwargs in cases:
            # (a range taken from x needs x without NaN: torch refuses it too)
            _compare(lambda t: pf.histogram(t, *args, **kwargs),
                     lambda t: torch.histogram(t, *args, **kwargs),
                     a if "range" in kwargs else a[1:], grad=False, rtol=1e-6)
        edges = np.array([-2.0, -0.5, 0.0, 0.1, 3.0]).astype(dt)
        w = rng.uniform(0, 2, a.shape).astype(dt)
        _compare(lambda t, e, w: pf.histogram(t, e, weight=w, density=True),
                 lambda t, e, w: torch.histogram(t, e, weight=w, density=True), a, edges, w,
                 grad=False, rtol=1e-6)
    _compare(lambda t: pf.histogram(t, 3), lambda t: torch.histogram(t, 3), np.zeros(0),
             grad=False)
    _compare(lambda t: pf.histogram(t, 4), lambda t: torch.histogram(t, 4),
             np.array([[1.0, 1.0], [1.0, 1.0]]), grad=False)
    _eager_equals_jit(lambda t: tuple(pf.histogram(t, 6)), x[1:].reshape(-1, 1))
    t = pf.tensor(x[3:], requires_grad=True)
    assert not pf.histogram(t, 5).hist.requires_grad       # no gradient, as torch's
    with pytest.raises(ValueError, match=r"histogram: the range of input, \[nan, nan\], is not"):
        pf.histogram(pf.tensor([np.nan]), 3)
    with pytest.raises(ValueError, match="histogram: the bin edges must increase"):
        pf.histogram(pf.tensor([1.0]), pf.tensor([0.0, 2.0, 1.0]))
    with pytest.raises(pf.DTypeError, match="histogram: input must be float32 or float64"):
        pf.histogram(pf.tensor([1, 2]), 3)


def test_cov_and_corrcoef_match_torch(rng):
    x = rng.standard_normal((3, 7))
    fw, aw = rng.integers(0, 4, 7), rng.uniform(0.1, 2.0, 7)
    for kwargs in ({}, {"correction": 0}, {"correction": 2}):
        _compare(lambda t: pf.cov(t, **kwargs), lambda t: torch.cov(t, **kwargs), x)
    _compare(lambda t, f, a: pf.cov(t, fweights=f, aweights=a),
             lambda t, f, a: torch.cov(t, fweights=f, aweights=a), x, fw, aw)
    _compare(lambda t, a: pf.cov(t, aweights=a, correction=0),
             lambda t, a: torch.cov(t, aweights=a, correction=0), x, aw)
    _compare(lambda t, f: t.cov(fweights=f), lambda t, f: t.cov(fweights=f), x, fw)
    _compare(pf.cov, torch.cov, x[0])                       # one variable: 0-d
    _compare(pf.cov, torch.cov, np.array([[1, 2, 4], [3, 0, 1]]), rtol=1e-6)     # float32
    _compare(pf.corrcoef, torch.corrcoef, x)
    _compare(lambda t: t.corrcoef(), lambda t: t.corrcoef(), x[:, :4].T.copy())
    _compare(pf.corrcoef, torch.corrcoef, x[1])
    check_grad(lambda t: pf.cov(t, aweights=pf.tensor(aw)), x)
    check_grad(pf.corrcoef, x)
    _eager_equals_jit(lambda t: pf.corrcoef(t), x)
    with pytest.warns(UserWarning, match="cov: degrees of freedom is <= 0"):
        assert pf.cov(pf.tensor([[1.0, 2.0]]), correction=2).item() == math.inf
    with pytest.raises(pf.ShapeError, match=r"cov: input must be 1-D or 2-D .* got \(2, 3, 4\)"):
        pf.cov(pf.tensor(np.zeros((2, 3, 4))))
    with pytest.raises(ValueError, match="cov: fweights must be non-negative"):
        pf.cov(pf.tensor(x), fweights=pf.tensor(-fw - 1))
    with pytest.raises(pf.DTypeError, match="cov: aweights must be float32 or float64"):
        pf.cov(pf.tensor(x), aweights=pf.tensor(fw))


def test_cumulative_trapezoid_matches_torch(rng):
    y = rng.standard_normal((3, 5))
    _compare(pf.cumulative_trapezoid, torch.cumulative_trapezoid, y)
    _compare(lambda t: pf.cumulative_trapezoid(t, dx=0.5, dim=0),
             lambda t: torch.cumulative_trapezoid(t, dx=0.5, dim=0), y)
    points = np.cumsum(rng.uniform(0.1, 1.0, 5))
    _compare(pf.cumulative_trapezoid, torch.cumulative_trapezoid, y, points)
    grid = np.cumsum(rng.uniform(0.1, 1.0, (3, 5)), 1)
    _compare(lambda a, b: pf.cumulative_trapezoid(a, b, dim=-1),
             lambda a, b: torch.cumulative_trapezoid(a, b, dim=-1), y, grid)
    _compare(pf.cumulative_trapezoid, torch.cumulative_trapezoid, np.array([2.0]))
    _compare(pf.cumulative_trapezoid, torch.cumulative_trapezoid, np.array([1, 4, 9]))
    check_grad(lambda a, b: pf.cumulative_trapezoid(a, b), y, points)
    _eager_equals_jit(lambda t: pf.cumulative_trapezoid(t, dim=0), y)
    with pytest.raises(pf.AxisError, match="cumulative_trapezoid: axis 2 is out of range"):
        pf.cumulative_trapezoid(pf.tensor(y), dim=2)


def test_renorm_matches_torch(rng):
    x = rng.standard_normal((4, 3, 2)) * 2
    for p, dim, maxnorm in ((2, 0, 1.5), (1, 1, 2.0), (3.5, -1, 1.0), (math.inf, 0, 1.0)):
        _compare(lambda t: pf.renorm(t, p, dim, maxnorm),
                 lambda t: torch.renorm(t, p, dim, maxnorm), x)
    _compare(lambda t: t.renorm(2, dim=1, maxnorm=0.5), lambda t: t.renorm(2, 1, 0.5), x)
    check_grad(lambda t: pf.renorm(t, 2, 0, 1.5), x)
    _eager_equals_jit(lambda t: pf.renorm(t, 2, 1, 1.0), x)
    with pytest.raises(pf.ShapeError, match=r"renorm: x needs at least 2 dims, got \(3,\)"):
        pf.renorm(pf.tensor([1.0, 2.0, 3.0]), 2, 0, 1.0)


# ---- linear algebra ----

def test_addbmm_addmv_addr_chain_matmul_match_torch(rng):
    m, b1, b2 = rng.standard_normal((2, 5)), rng.standard_normal((3, 2, 4)), \
        rng.standard_normal((3, 4, 5))
    _compare(pf.addbmm, torch.addbmm, m, b1, b2)
    _compare(lambda a, b, c: pf.addbmm(a, b, c, beta=0.5, alpha=-2),
             lambda a, b, c: torch.addbmm(a, b, c, beta=0.5, alpha=-2), m[0], b1, b2)
    _compare(lambda a, b, c: a.addbmm(b, c, beta=0), lambda a, b, c: a.addbmm(b, c, beta=0),
             m, b1, b2)
    v, mat, vec = rng.standard_normal(2), rng.standard_normal((2, 4)), rng.standard_normal(4)
    _compare(pf.addmv, torch.addmv, v, mat, vec)
    _compare(lambda a, b, c: a.addmv(b, c, alpha=3), lambda a, b, c: a.addmv(b, c, alpha=3),
             v, mat, vec)
    _compare(pf.addr, torch.addr, mat, v, vec)
    _compare(lambda a, b, c: a.addr(b, c, beta=2), lambda a, b, c: a.addr(b, c, beta=2),
             mat, v, vec)
    ms = [rng.standard_normal(s) for s in ((2, 30), (30, 3), (3, 40), (40, 1))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")          # torch's deprecation of chain_matmul
        _compare(pf.chain_matmul, torch.chain_matmul, *ms)
        _compare(pf.chain_matmul, torch.chain_matmul, ms[0])
    _eager_equals_jit(pf.chain_matmul, *ms)
    _eager_equals_jit(pf.addbmm, m, b1, b2)
    check_grad(lambda a, b, c: pf.addbmm(a, b, c, alpha=0.5), m, b1, b2)
    with pytest.raises(pf.ShapeError, match=r"chain_matmul: matrix 1 \(30, 3\) cannot multiply "
                                            r"matrix 2 \(4, 1\)"):
        pf.chain_matmul(pf.tensor(ms[0]), pf.tensor(ms[1]), pf.tensor(np.zeros((4, 1))))
    with pytest.raises(pf.ShapeError, match=r"addbmm: batch1 \(3, 2, 4\) and batch2 "
                                            r"\(2, 4, 5\) must be"):
        pf.addbmm(pf.tensor(m), pf.tensor(b1), pf.tensor(b2[:2]))


def test_bilinear_matches_torch_and_is_the_layers_math(rng):
    x1, x2 = rng.standard_normal((2, 3, 4)), rng.standard_normal((2, 3, 5))
    w, b = rng.standard_normal((6, 4, 5)), rng.standard_normal(6)
    _compare(F.bilinear, TF.bilinear, x1, x2, w, b)
    _compare(F.bilinear, TF.bilinear, x1[0, 0], x2[0, 0], w)          # unbatched, no bias
    _eager_equals_jit(pf.bilinear, x1, x2, w, b)
    layer = pf.nn.Bilinear(4, 5, 6).to("float64")
    with pf.no_grad():
        np.testing.assert_allclose(
            layer(pf.tensor(x1), pf.tensor(x2)).numpy(),
            pf.bilinear(pf.tensor(x1), pf.tensor(x2), layer.weight, layer.bias).numpy(),
            rtol=1e-15)
    with pytest.raises(pf.ShapeError, match=r"bilinear: expected input1 \(\*, in1\) .* got "
                                            r"input1 \(2, 3, 4\), input2 \(2, 3, 4\), weight "
                                            r"\(6, 4, 5\)"):
        pf.bilinear(pf.tensor(x1), pf.tensor(x1), pf.tensor(w))


# ---- gumbel_softmax ----

def test_gumbel_softmax_samples_softmax_and_its_hard_form_passes_the_soft_gradient(rng):
    logits = np.log(np.array([[0.1, 0.2, 0.7]]))
    pf.manual_seed(7)
    draws = pf.gumbel_softmax(pf.tensor(np.repeat(logits, 4000, 0)), tau=0.5, hard=True)
    hot = draws.numpy()
    assert set(np.unique(hot)) == {0.0, 1.0} and (hot.sum(1) == 1).all()
    np.testing.assert_allclose(hot.mean(0), [0.1, 0.2, 0.7], atol=0.03)    # argmax ~ softmax
    pf.manual_seed(7)
    soft = pf.gumbel_softmax(pf.tensor(np.repeat(logits, 4000, 0)), tau=0.5, dim=1)
    np.testing.assert_allclose(soft.numpy().sum(1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(soft.numpy().argmax(1), hot.argmax(1))  # seeded: same draw
    # straight-through: the hard sample's gradient is the soft sample's
    x = rng.standard_normal((5, 4))
    grads = []
    for hard in (False, True):
        pf.manual_seed(1)
        t = pf.tensor(x, requires_grad=True)
        y = pf.gumbel_softmax(t, tau=0.7, hard=hard, dim=0)
        grads.append(pf.grad((y * pf.tensor(x[::-1].copy())).sum(), t).numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-12)
    # compiled: a new draw on every run (the dropout generator's stream)
    f = pf.jit(lambda t: pf.gumbel_softmax(t, hard=True))
    runs = [f(pf.tensor(np.zeros((50, 6)))).numpy().argmax(1) for _ in range(2)]
    assert (runs[0] != runs[1]).any()
    with pytest.raises(ValueError, match="gumbel_softmax: tau must be positive"):
        pf.gumbel_softmax(pf.tensor(x), tau=0)
    with pytest.raises(pf.AxisError, match="gumbel_softmax: axis 2 is out of range"):
        pf.gumbel_softmax(pf.tensor(x), dim=2)


# ---- nn.EmbeddingBag ----

@pytest.mark.parametrize("mode", ["sum", "mean", "max"])
def test_embedding_bag_matches_torch(mode, rng):
    torch.manual_seed(0)
    theirs = torch.nn.EmbeddingBag(10, 3, mode=mode, padding_idx=2).double()
    ours = pf.nn.EmbeddingBag(10, 3, mode=mode, padding_idx=2, dtype="float64")
    assert list(ours.state_dict()) == list(theirs.state_dict()) == ["weight"]
    np.testing.assert_array_equal(ours.weight.numpy()[2], 0.0)
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    bags = rng.integers(0, 10, (4, 3))
    flat, offsets = rng.integers(0, 10, 7), np.array([0, 2, 2, 5])
    calls = [((bags,), {}), ((flat, offsets), {})]
    if mode == "sum":
        calls.append(((flat, offsets), {"per_sample_weights": rng.uniform(0, 1, 7)}))
    for args, kwargs in calls:
        got = ours(*(pf.tensor(a) for a in args),
                   **{k: pf.tensor(v) for k, v in kwargs.items()})
        want = theirs(*(torch.tensor(a) for a in args),
                      **{k: torch.tensor(v) for k, v in kwargs.items()})
        np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=1e-12)
        seed = rng.standard_normal(tuple(want.shape))
        (got * pf.tensor(seed)).sum().backward()
        (want * torch.tensor(seed)).sum().backward()
        np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(),
                                   rtol=1e-12, atol=1e-12)
        ours.weight.grad, theirs.weight.grad = None, None
    with pf.no_grad():
        np.testing.assert_allclose(pf.jit(ours)(pf.tensor(bags)).numpy(),
                                   ours(pf.tensor(bags)).numpy(), rtol=1e-12)


def test_embedding_bag_options_and_errors():
    w = np.arange(12.0).reshape(4, 3)
    layer = pf.nn.EmbeddingBag(4, 3, mode="sum", _weight=pf.tensor(w), include_last_offset=True,
                               max_norm=5.0)
    theirs = torch.nn.EmbeddingBag(4, 3, mode="sum", _weight=torch.tensor(w),
                                   include_last_offset=True, max_norm=5.0)
    idx, offsets = np.array([0, 3, 1, 1]), np.array([0, 1, 4])
    with pf.no_grad(), torch.no_grad():
        got = layer(pf.tensor(idx), pf.tensor(offsets))
        want = theirs(torch.tensor(idx), torch.tensor(offsets))
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6)
    np.testing.assert_allclose(layer.weight.numpy(), theirs.weight.detach().numpy(), rtol=1e-6)
    with pytest.raises(pf.IndexOutOfRange, match="index 4 .* out of range for num_embeddings 4"):
        layer(pf.tensor([[0, 4]]))
    with pytest.raises(ValueError, match="scale_grad_by_freq and sparse gradients are not "
                                         "supported"):
        pf.nn.EmbeddingBag(4, 3, sparse=True)
    with pytest.raises(ValueError, match="mode must be 'sum', 'mean' or 'max'"):
        pf.nn.EmbeddingBag(4, 3, mode="median")
    with pytest.raises(pf.DTypeError, match="takes integer indices"):
        layer(pf.tensor([[0.0, 1.0]]))


# ---- dtypes: promotion, casting, the default dtype ----

@pytest.mark.parametrize("a", ["bool", "int32", "int64", "float32", "float64"])
@pytest.mark.parametrize("b", ["bool", "int32", "int64", "float32", "float64"])
def test_promote_types_can_cast_result_type_match_torch(a, b):
    ta, tb = getattr(torch, a), getattr(torch, b)
    assert pf.promote_types(a, b).name == str(torch.promote_types(ta, tb))[6:]
    assert pf.can_cast(a, b) == torch.can_cast(ta, tb)
    x, y = pf.zeros(2, dtype=a), pf.zeros(2, dtype=b)
    assert pf.result_type(x, y).name == \
        str(torch.result_type(torch.zeros(2, dtype=ta), torch.zeros(2, dtype=tb)))[6:]
    for number in (True, 2, 2.5):
        assert pf.result_type(x, number).name == \
            str(torch.result_type(torch.zeros(2, dtype=ta), number))[6:]


def test_is_floating_point_and_is_nonzero_match_torch():
    for v in ([1.5], [0], [True], 0.0):
        for f in ("is_floating_point", "is_nonzero"):
            assert getattr(pf, f)(pf.tensor(v)) == getattr(torch, f)(torch.tensor(v))
            assert getattr(pf.tensor(v), f)() == getattr(torch.tensor(v), f)()
    with pytest.raises(ValueError, match=r"is_nonzero: needs a tensor of one element, got "
                                         r"shape \(2,\)"):
        pf.is_nonzero(pf.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"got shape \(0,\)"):
        pf.tensor([]).is_nonzero()
    # a graph value has no truth yet: pf.jit runs such a function eagerly, with a warning
    f = pf.jit(lambda t: t * 2 if pf.is_nonzero(t) else t)
    with pytest.warns(RuntimeWarning, match="pf.jit"):
        assert f(pf.tensor([3.0])).item() == 6.0


@pytest.fixture
def default_dtype():
    saved = pf.get_default_dtype()
    yield
    pf.set_default_dtype(saved)


def test_set_default_dtype_is_the_one_setting_python_floats_follow(default_dtype):
    assert pf.get_default_dtype() is pf.float32
    assert pf.tensor([0.5]).dtype is pf.float32
    pf.set_default_dtype(pf.float64)
    torch_saved = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        cases = {
            "tensor": (lambda m: m.tensor([0.5, 1.0])), "zeros": (lambda m: m.zeros(2)),
            "ones": (lambda m: m.ones(2)), "full": (lambda m: m.full((2,), 1.5)),
            "arange": (lambda m: m.arange(0.5, 2)), "rand": (lambda m: m.rand(2)),
            "linspace": (lambda m: m.linspace(0, 1, 3)), "eye": (lambda m: m.eye(2)),
            "int * float": (lambda m: m.tensor([1, 2]) * 0.5),
            "exp of int": (lambda m: m.exp(m.tensor([1]))),
        }
        for name, make in cases.items():
            assert make(pf).dtype.name == str(make(torch).dtype)[6:] == "float64", name
        assert pf.get_default_dtype() is pf.float64
        assert repr(pf.tensor([0.5])) == "tensor([0.5])"
        assert pf.tensor(np.float32([0.5])).dtype is pf.float32      # arrays keep theirs
        with pytest.raises(TypeError, match="set_default_dtype: only float32 or float64"):
            pf.set_default_dtype("int64")
    finally:
        torch.set_default_dtype(torch_saved)
    pf.set_default_dtype("float32")
    assert pf.tensor([0.5]).dtype is pf.float32 and pf.zeros(1).dtype is pf.float32


# ---- compile ----

def test_compile_is_jit_with_torch_options_accepted_and_ignored(rng):
    x = pf.tensor(rng.standard_normal((3, 4)).astype(np.float32))
    fn = pf.compile(lambda t: pf.relu(t) * 2, mode="max-autotune", fullgraph=True,
                    dynamic=False, backend="inductor")
    assert isinstance(fn, type(pf.jit(lambda t: t)))
    np.testing.assert_array_equal(fn(x).numpy(), pf.relu(x).numpy() * 2)

    @pf.compile(mode="reduce-overhead")
    def g(t):
        return t + 1

    np.testing.assert_array_equal(g(x).numpy(), x.numpy() + 1)
    model = pf.nn.Sequential([pf.nn.Linear(4, 2)])
    compiled = pf.compile(model)
    np.testing.assert_allclose(compiled(x).numpy(), model(x).numpy(), rtol=1e-6)


# ---- eager equals compiled, and in a graph with an unknown batch ----

_JIT_CASES = {
    "digamma": pf.digamma, "polygamma": lambda a: pf.polygamma(3, a), "i0": pf.i0,
    "i1e": pf.special.i1e, "ndtri": lambda a: pf.special.ndtri(pf.sigmoid(a)),
    "log_ndtr": lambda a: pf.special.log_ndtr(a * 20), "entr": pf.special.entr,
    "xlog1py": lambda a: pf.special.xlog1py(a, pf.abs(a)), "angle": pf.angle, "sgn": pf.sgn,
    "rsub": lambda a: pf.rsub(a, 2.0, alpha=3), "ldexp": lambda a: pf.ldexp(a, 3),
    "mvlgamma": lambda a: pf.mvlgamma(pf.abs(a) + 2, 2), "cov": pf.cov,
    "addmv": lambda a: pf.addmv(a[:, 0], a, a[0]), "addr": lambda a: pf.addr(a, a[:, 0], a[0]),
    "histogram": lambda a: tuple(pf.histogram(a, 4, range=(-1.0, 1.0))),
}


@pytest.mark.parametrize("name", sorted(_JIT_CASES))
def test_eager_equals_compiled(name, rng):
    _eager_equals_jit(_JIT_CASES[name], rng.standard_normal((3, 5)))


@pytest.mark.parametrize("name", ["digamma", "polygamma", "i0", "ndtri", "log_ndtr", "cov"])
def test_compiled_gradients_equal_eager(name, rng):
    fn = _JIT_CASES[name]
    x = rng.standard_normal((3, 5))
    grads = []
    for f in (fn, pf.jit(fn)):
        t = pf.tensor(x, requires_grad=True)
        out = _listed(f(t))[0]
        grads.append(pf.grad(out, t, grad_outputs=pf.ones(out.shape, dtype="float64"))
                     .numpy())
    np.testing.assert_allclose(grads[1], grads[0], rtol=1e-12, atol=1e-12)


def test_ops_in_a_graph_with_an_unknown_batch(rng):
    a = rng.standard_normal((4, 6))
    seq = pf.tensor(np.linspace(-1, 1, 5))

    def outs_of(x):
        return [pf.digamma(x), pf.special.i0e(x), pf.searchsorted(seq, x),
                pf.cumulative_trapezoid(x, dim=1), pf.gumbel_softmax(x, hard=True).sum(1),
                pf.unravel_index(pf.searchsorted(seq, x), (2, 3))[1]]

    with pf.Graph() as g:
        x = g.placeholder("x", (None, 6), "float64")
        outs = outs_of(x)
        run = g.compile(outs)
    got = run.run({"x": a})
    for o, w in zip(outs, outs_of(pf.tensor(a))):
        np.testing.assert_allclose(got[o.name], w.numpy(), rtol=1e-12)
