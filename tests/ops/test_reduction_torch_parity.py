"""Reductions against PyTorch where a probe found them apart: max/min with a positional dim
(the named tuple), the gradient of ties (to the returned index along a dim, shared evenly over
every element), median with NaN, var/std at zero spread and past the degrees of freedom,
argmax's keepdim without a dim, an empty tuple of dims, and PyTorch's unbiased= and dtype=
keywords. Values, dtypes, shapes and gradients, eager and under pf.jit."""
import math
import warnings

import numpy as np
import pytest

import pyfront as pf

NAN, INF = math.nan, math.inf


def _same(got, want, what="", rtol=0.0):
    """pf tensor got equals torch tensor want: shape, dtype and values (NaN where NaN; within
    rtol where the sums run in another order)."""
    want = want.detach().numpy()
    assert tuple(got.shape) == want.shape, "%s: shape %s, torch %s" % (what, got.shape,
                                                                       want.shape)
    assert got.numpy().dtype == want.dtype, "%s: dtype %s, torch %s" % (what, got.dtype,
                                                                        want.dtype)
    np.testing.assert_allclose(got.numpy(), want, rtol=rtol, atol=0.0, err_msg=what)


def _grads(fn, tfn, x, torch, seed=None, jit=False):
    """(pyfront's, torch's) gradient of <seed, fn(x)> with respect to x (float64)."""
    t = pf.tensor(x, requires_grad=True)
    y = (pf.jit(fn) if jit else fn)(t)
    tx = torch.tensor(x, requires_grad=True)
    ty = tfn(tx)
    seed = np.ones(ty.shape) if seed is None else seed
    (g,) = pf.grad(y, [t], grad_outputs=pf.tensor(seed))
    (tg,) = torch.autograd.grad(ty, [tx], torch.tensor(seed))
    return g.numpy(), tg.numpy()


# ---- 1. max/min(x, d) with a positional dim: the named tuple, as torch's ----

@pytest.mark.parametrize("name", ["max", "min"])
def test_positional_dim_gives_values_and_indices_as_torch(name, rng, torch):
    x = rng.integers(-3, 4, (4, 5)).astype(np.float64)     # ties
    fn, tfn = getattr(pf, name), getattr(torch, name)
    t, tx = pf.tensor(x), torch.tensor(x)
    for dim in (0, 1, -1):
        for keep in (False, True):
            for got in (fn(t, dim, keep), getattr(t, name)(dim, keep),
                        fn(t, dim=dim, keepdim=keep), getattr(t, name)(dim, keepdim=keep)):
                want = tfn(tx, dim, keep)
                values, indices = got
                assert got.values is values and got.indices is indices
                _same(values, want.values, "%s values dim %d" % (name, dim))
                _same(indices, want.indices, "%s indices dim %d" % (name, dim))
    # axis= (NumPy's spelling) keeps the values alone, one axis or several; so does a tuple
    _same(fn(t, axis=1), getattr(torch, "a" + name)(tx, 1))
    _same(fn(t, axis=(0, 1), keepdims=True), getattr(torch, "a" + name)(tx, (0, 1), True))
    _same(fn(t, (0, 1)), getattr(torch, "a" + name)(tx, (0, 1)))
    _same(fn(t), tfn(tx))
    # a tensor second argument: the elementwise extreme, as torch.max(a, b)
    other = rng.standard_normal((4, 5))
    _same(fn(t, pf.tensor(other)), tfn(tx, torch.tensor(other)))
    with pytest.raises(TypeError, match="both dim"):
        fn(t, 1, axis=1)


def test_the_prediction_idiom_unpacks_indices_not_rows(torch):
    logits = np.array([[0.1, 2.0, -1.0], [3.0, 0.5, 0.2]], np.float32)   # a batch of 2
    _, pred = pf.max(pf.tensor(logits), 1)
    _, tpred = torch.max(torch.tensor(logits), 1)
    _same(pred, tpred)
    _, pred = pf.tensor(logits).max(1)
    _same(pred, tpred)


def test_positional_dim_on_0_d_bool_int_and_empty_tensors(torch):
    for name in ("max", "min"):
        fn, tfn = getattr(pf, name), getattr(torch, name)
        for value in (np.array(-2.5), np.array(7), np.array(True)):
            for dim in (0, -1):
                got, want = fn(pf.tensor(value), dim), tfn(torch.tensor(value), dim)
                _same(got.values, want.values, name)
                _same(got.indices, want.indices, name)
        for dtype in (np.int32, np.int64, np.bool_):
            x = np.array([[1, 0, 1], [0, 0, 1]]).astype(dtype)
            got, want = fn(pf.tensor(x), 1), tfn(torch.tensor(x), 1)
            _same(got.values, want.values, "%s %s" % (name, dtype))
            _same(got.indices, want.indices, "%s %s" % (name, dtype))
        got = fn(pf.zeros(0, 3), 1)
        want = tfn(torch.zeros(0, 3), 1)
        _same(got.values, want.values)
        _same(got.indices, want.indices)
        with pytest.raises(pf.ShapeError, match=r"^%s: cannot take the %s over axis 1 of size 0"
                                                % (name, name)):
            fn(pf.zeros(2, 0), 1)
        with pytest.raises(pf.AxisError, match=r"^%s: axis 2 is out of range" % name):
            fn(pf.zeros(2, 3), 2)


def test_positional_dim_with_nan_picks_the_first_nan_as_torch(torch):
    x = np.array([[1.0, NAN, 3.0, NAN], [2.0, 5.0, 5.0, -1.0]])
    for name in ("max", "min"):
        got, want = getattr(pf, name)(pf.tensor(x), 1), getattr(torch, name)(torch.tensor(x), 1)
        _same(got.values, want.values, name)
        _same(got.indices, want.indices, name)


def test_positional_dim_compiles(rng):
    x = rng.standard_normal((3, 4))
    for name in ("max", "min"):
        fn = getattr(pf, name)

        def both(t, fn=fn):
            values, indices = fn(t, 1)
            return values, indices         # (a named tuple is returned as a plain tuple)

        eager = both(pf.tensor(x))
        compiled = pf.jit(both)(pf.tensor(x))
        for e, c in zip(eager, compiled):
            assert e.dtype is c.dtype and e.shape == c.shape
            np.testing.assert_array_equal(e.numpy(), c.numpy())


# ---- 2. the gradient of ties ----

TIES = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, -1.0], [0.5, 0.5, 0.5]])


@pytest.mark.parametrize("jit", [False, True])
@pytest.mark.parametrize("name", ["max", "min"])
def test_tie_gradient_along_a_dim_goes_to_the_index_as_torch(name, jit, rng, torch):
    for dim in (0, 1):
        for keep in (False, True):
            g, tg = _grads(lambda t: getattr(pf, name)(t, dim, keep).values,
                           lambda t: getattr(torch, name)(t, dim, keep).values, TIES, torch,
                           rng.standard_normal((1, 3) if keep and dim == 0 else
                                               (3, 1) if keep else (3,)), jit=jit)
            np.testing.assert_array_equal(g, tg, err_msg="%s dim %d" % (name, dim))
    g, tg = _grads(lambda t: getattr(pf, name)(t, dim=1).values,
                   lambda t: getattr(torch, name)(t, dim=1).values, TIES, torch, jit=jit)
    np.testing.assert_array_equal(g, tg)
    assert g[0].tolist() == ([0.0, 1.0, 0.0] if name == "max" else [1.0, 0.0, 0.0])


@pytest.mark.parametrize("jit", [False, True])
def test_full_reductions_and_amax_share_ties_evenly_as_torch(jit, torch):
    cases = [(lambda t: pf.max(t), lambda t: torch.max(t)),
             (lambda t: pf.min(t), lambda t: torch.min(t)),
             (lambda t: pf.amax(t, 1), lambda t: torch.amax(t, 1)),
             (lambda t: pf.amin(t, (0, 1)), lambda t: torch.amin(t, (0, 1))),
             (lambda t: pf.max(t, axis=1), lambda t: torch.amax(t, 1))]
    for fn, tfn in cases:
        g, tg = _grads(fn, tfn, TIES, torch, jit=jit)
        np.testing.assert_allclose(g, tg, rtol=1e-15)
    g, _ = _grads(lambda t: pf.max(t), lambda t: torch.max(t), TIES, torch, jit=jit)
    assert g[0].tolist() == [0.0, 0.5, 0.5]


MEDIAN_ROWS = [[1.0, 2.0, 2.0, 3.0], [2.0, 2.0, 1.0, 3.0], [5.0, 5.0], [1.0, NAN, 3.0],
               [NAN, NAN, 3.0], [-INF, -INF, 5.0], [INF, INF, 1.0], [4.0, 1.0, 3.0, 2.0],
               [7.0], [3.0, 3.0, 3.0]]


@pytest.mark.parametrize("jit", [False, True])
def test_median_without_dim_is_nan_with_a_nan_and_shares_the_gradient_of_ties(jit, torch):
    for row in MEDIAN_ROWS:
        x = np.array(row)
        got = (pf.jit(pf.median) if jit else pf.median)(pf.tensor(x))
        _same(got, torch.median(torch.tensor(x)), str(row))
        g, tg = _grads(pf.median, torch.median, x, torch, jit=jit)
        np.testing.assert_array_equal(g, tg, err_msg=str(row))
    x = np.array([[2.0, 2.0, 1.0], [3.0, 2.0, 9.0]])             # any shape: over every element
    g, tg = _grads(pf.median, torch.median, x, torch, jit=jit)
    np.testing.assert_array_equal(g, tg)
    assert g.sum() == 1.0 and sorted(g.ravel().tolist())[-3:] == [1 / 3] * 3


@pytest.mark.parametrize("jit", [False, True])
def test_median_along_a_dim_with_nan_and_ties_as_torch(jit, rng, torch):
    x = np.array([[1.0, NAN, 3.0, NAN], [NAN, 2.0, 1.0, NAN], [2.0, 2.0, 1.0, 2.0]])
    for dim in (0, 1, -1):
        for keep in (False, True):
            got = pf.median(pf.tensor(x), dim, keep)
            want = torch.median(torch.tensor(x), dim, keep)
            _same(got.values, want.values, "dim %d" % dim)
            _same(got.indices, want.indices, "dim %d" % dim)
            seed = rng.standard_normal(tuple(want.values.shape))
            g, tg = _grads(lambda t: pf.median(t, dim, keep).values,
                           lambda t: torch.median(t, dim, keep).values, x, torch, seed, jit)
            np.testing.assert_array_equal(g, tg, err_msg="dim %d" % dim)
    # integers have no NaN: the plain lower median, and its dtype
    i = np.array([[3, 1, 2, 2], [0, 5, 5, 1]], np.int64)
    _same(pf.median(pf.tensor(i)), torch.median(torch.tensor(i)))
    got, want = pf.median(pf.tensor(i), 1), torch.median(torch.tensor(i), 1)
    _same(got.values, want.values)


# ---- 4. var and std ----

@pytest.mark.parametrize("jit", [False, True])
def test_std_gradient_at_zero_spread_is_zero_as_torch(jit, rng, torch):
    x = np.array([[2.0, 2.0, 2.0], [1.0, 3.0, 4.0], [0.0, 0.0, 0.0]])
    cases = [(lambda t: pf.std(t, 1), lambda t: torch.std(t, 1)),
             (lambda t: pf.std(t, 1, correction=0, keepdims=True),
              lambda t: torch.std(t, 1, correction=0, keepdim=True)),
             (lambda t: pf.std(t[0]), lambda t: torch.std(t[0])),
             (lambda t: t.std(0), lambda t: t.std(0))]
    for fn, tfn in cases:
        want = tfn(torch.tensor(x))
        _same((pf.jit(fn) if jit else fn)(pf.tensor(x)), want, rtol=1e-15)
        g, tg = _grads(fn, tfn, x, torch, rng.standard_normal(tuple(want.shape)), jit)
        assert not np.isnan(g).any()
        np.testing.assert_allclose(g, tg, rtol=1e-12, atol=1e-15)


@pytest.mark.filterwarnings("ignore:.*degrees of freedom")
def test_var_and_std_past_the_degrees_of_freedom_and_over_empty_dims_as_torch(torch):
    for values, correction in (([1.0, 2.0], 3), ([1.0, 2.0], 2), ([1.0, 1.0], 2), ([4.0], 1),
                               ([1.0, 2.0, 4.0], 1), ([1.0, 2.0, 4.0], 2.5)):
        for name in ("var", "std"):
            got = getattr(pf, name)(pf.tensor(values), correction=correction)
            want = getattr(torch, name)(torch.tensor(values, dtype=torch.float32),
                                        correction=correction)
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6,
                                       err_msg="%s %s %s" % (name, values, correction))
            assert got.dtype is pf.float32
    for shape, dim in (((2, 0), 1), ((0,), 0), ((3, 0), 0), ((0, 3), 0)):
        for name in ("var", "std"):
            got = getattr(pf, name)(pf.zeros(*shape), dim)
            want = getattr(torch, name)(torch.zeros(*shape), dim)
            _same(got, want, "%s %s %d" % (name, shape, dim))


def test_var_and_std_take_torch_s_unbiased_spelling(torch):
    x = np.array([[1.0, 2.0, 4.0], [3.0, -1.0, 0.5]])
    t, tx = pf.tensor(x), torch.tensor(x)
    for unbiased in (False, True):
        for name in ("var", "std"):
            np.testing.assert_allclose(getattr(t, name)(unbiased=unbiased).numpy(),
                                       getattr(tx, name)(unbiased=unbiased).numpy())
            np.testing.assert_allclose(getattr(t, name)(1, unbiased=unbiased).numpy(),
                                       getattr(tx, name)(1, unbiased=unbiased).numpy())
            np.testing.assert_allclose(getattr(pf, name)(t, dim=0, unbiased=unbiased).numpy(),
                                       getattr(torch, name)(tx, dim=0,
                                                            unbiased=unbiased).numpy())
            # torch's var(x, unbiased): the flag where the dim goes
            np.testing.assert_allclose(getattr(pf, name)(t, unbiased).numpy(),
                                       getattr(torch, name)(tx, unbiased).numpy())
    np.testing.assert_allclose(pf.var(t, correction=None).numpy(),
                               torch.var(tx, correction=None).numpy())


# ---- 5. argmax/argmin keepdim without a dim; an empty tuple of dims ----

@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_argmax_keepdim_without_dim_keeps_every_dim_as_torch(name, rng, torch):
    for shape in ((), (5,), (3, 4), (2, 3, 4)):
        x = rng.standard_normal(shape)
        for keep in (False, True):
            want = getattr(torch, name)(torch.tensor(x), keepdim=keep)
            _same(getattr(pf, name)(pf.tensor(x), keepdims=keep), want, "%s" % (shape,))
            _same(getattr(pf, name)(pf.tensor(x), keepdim=keep), want)
            _same(getattr(pf.tensor(x), name)(keepdim=keep), want)
            compiled = pf.jit(lambda t: getattr(pf, name)(t, keepdim=keep))(pf.tensor(x))
            _same(compiled, want)


def test_an_empty_tuple_of_dims_reduces_nothing_as_numpy(rng):
    # the documented choice where PyTorch (every dim) and NumPy (none) differ: NumPy's, so a
    # sum over a computed list of broadcast dims leaves an unbroadcast operand as it is
    x = rng.uniform(0.5, 2.0, (2, 3))
    t = pf.tensor(x)
    for name in ("sum", "mean", "amax", "amin", "nansum", "nanmean"):
        for dims in ((), []):
            for keep in (False, True):
                got = getattr(pf, name)(t, dim=dims, keepdim=keep)
                np.testing.assert_allclose(got.numpy(), getattr(np, name)(x, axis=()),
                                           err_msg=name)
    b = x > 1.0
    for name in ("any", "all"):
        np.testing.assert_array_equal(getattr(pf, name)(pf.tensor(b), axis=()).numpy(), b)
    np.testing.assert_allclose(pf.jit(lambda v: pf.sum(v, axis=()))(t).numpy(), x)


def test_dtype_keyword_casts_first_as_torch(torch):
    i = np.array([[1, 2, 3], [4, 5, 6]], np.int32)
    f = np.array([[0.1, 0.2, 0.3], [1.5, -2.0, 0.25]], np.float32)
    cases = [
        (lambda t: pf.sum(t, dtype=pf.float64), lambda t: torch.sum(t, dtype=torch.float64)),
        (lambda t: pf.sum(t, 1, dtype="int32"), lambda t: torch.sum(t, 1, dtype=torch.int32)),
        (lambda t: pf.sum(t, dim=0, keepdim=True, dtype="float32"),
         lambda t: torch.sum(t, dim=0, keepdim=True, dtype=torch.float32)),
        (lambda t: pf.mean(t, dtype="float64"), lambda t: torch.mean(t, dtype=torch.float64)),
        (lambda t: pf.mean(t, 1, dtype="float32"),
         lambda t: torch.mean(t, 1, dtype=torch.float32)),
        (lambda t: pf.prod(t, 1, dtype="float64"),
         lambda t: torch.prod(t, 1, dtype=torch.float64)),
        (lambda t: pf.prod(t, dtype="int32"), lambda t: torch.prod(t, dtype=torch.int32)),
        (lambda t: pf.cumsum(t, 1, dtype="float64"),
         lambda t: torch.cumsum(t, 1, dtype=torch.float64)),
        (lambda t: pf.cumsum(t, 0, dtype="int32"),
         lambda t: torch.cumsum(t, 0, dtype=torch.int32)),
        (lambda t: pf.cumprod(t, 1, dtype="float64"),
         lambda t: torch.cumprod(t, 1, dtype=torch.float64)),
    ]
    for k, (fn, tfn) in enumerate(cases):
        for x in (i, f):
            want = tfn(torch.tensor(x))
            got = fn(pf.tensor(x))
            assert tuple(got.shape) == tuple(want.shape), k
            assert got.numpy().dtype == want.numpy().dtype, k
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-6, err_msg=str(k))
            compiled = pf.jit(fn)(pf.tensor(x))
            assert compiled.dtype is got.dtype
            np.testing.assert_array_equal(compiled.numpy(), got.numpy())
    # the gradient comes back through the cast, in the input's dtype (torch's too)
    t = pf.tensor(f, requires_grad=True)
    (g,) = pf.grad(pf.sum(t * t, dtype=pf.float64), [t])
    tx = torch.tensor(f, requires_grad=True)
    (tg,) = torch.autograd.grad(torch.sum(tx * tx, dtype=torch.float64), [tx])
    assert g.dtype is pf.float32 and tg.dtype == torch.float32
    np.testing.assert_allclose(g.numpy(), tg.numpy(), rtol=1e-6)
    with pytest.raises(pf.DTypeError, match="mean needs a float tensor"):
        pf.mean(pf.tensor(i), dtype="int64")        # torch refuses an integer mean too


def test_logsumexp_and_inf_norm_still_reduce_over_several_axes(rng, torch):
    # (they took max over a tuple of axes, now amax: the values alone)
    x = rng.standard_normal((2, 3, 4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(pf.logsumexp(pf.tensor(x), (0, 2)).numpy(),
                                   torch.logsumexp(torch.tensor(x), (0, 2)).numpy(), rtol=1e-12)
    np.testing.assert_allclose(pf.norm(pf.tensor(x), INF, (1, 2)).numpy(),
                               torch.linalg.vector_norm(torch.tensor(x), INF, (1, 2)).numpy())
    np.testing.assert_allclose(pf.norm(pf.tensor(x), -INF, 1).numpy(),
                               torch.linalg.vector_norm(torch.tensor(x), -INF, 1).numpy())
