"""Reductions, scans and sorting added for PyTorch parity: prod, var/std (correction), logsumexp,
norm (p-norms, Frobenius), max/min with dim (values, indices), any/all, cumsum/cumprod, sort,
argsort, topk, median, softmin, and the NaN mean of an empty axis. Forward and gradients against
PyTorch in float64 (negative axes, 0-d and zero-size inputs), finite differences, eager against
compiled."""
import math

import numpy as np
import pytest

import pyfront as pf
from pyfront.testing import check_grad

# name -> (pyfront fn(x, axis), torch fn(x, dim)); axis None = every element
REDUCTIONS = {
    "prod": (lambda x, a: pf.prod(x, a), lambda t, x, a: x.prod() if a is None else x.prod(a)),
    "var": (lambda x, a: pf.var(x, a), lambda t, x, a: x.var() if a is None else x.var(a)),
    "var0": (lambda x, a: pf.var(x, a, correction=0),
             lambda t, x, a: t.var(x, correction=0) if a is None else t.var(x, a, correction=0)),
    "std": (lambda x, a: pf.std(x, a), lambda t, x, a: x.std() if a is None else x.std(a)),
    "logsumexp": (lambda x, a: pf.logsumexp(x, tuple(range(x.ndim)) if a is None else a),
                  lambda t, x, a: t.logsumexp(x, tuple(range(x.dim())) if a is None else a)),
    "norm2": (lambda x, a: pf.norm(x, 2, a),
              lambda t, x, a: t.linalg.vector_norm(x, 2, a)),
    "norm1": (lambda x, a: pf.norm(x, 1, a), lambda t, x, a: t.linalg.vector_norm(x, 1, a)),
    "norm3": (lambda x, a: pf.norm(x, 3, a), lambda t, x, a: t.linalg.vector_norm(x, 3, a)),
    "norm_inf": (lambda x, a: pf.norm(x, math.inf, a),
                 lambda t, x, a: t.linalg.vector_norm(x, math.inf, a)),
    "cumsum": (lambda x, a: pf.cumsum(x, a), lambda t, x, a: x.cumsum(a)),
    "cumprod": (lambda x, a: pf.cumprod(x, a), lambda t, x, a: x.cumprod(a)),
    "softmin": (lambda x, a: pf.softmin(x, a), lambda t, x, a: t.softmax(-x, a)),
}
SCANS = {"cumsum", "cumprod", "softmin"}       # an axis is required
CASES = [((3, 4), 1), ((3, 4), -1), ((3, 4), 0), ((2, 3, 4), -2), ((2, 3, 4), None),
         ((5,), 0), ((2, 3), (0, 1))]


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_forward_and_gradient_match_torch(name, rng, torch):
    fn, tfn = REDUCTIONS[name]
    for shape, axis in CASES:
        if name in SCANS and not isinstance(axis, int):
            continue
        if isinstance(axis, tuple) and name in ("prod", "cumsum", "cumprod"):
            continue           # torch.prod takes one dim
        x = rng.uniform(0.5, 1.5, shape) * rng.choice([-1.0, 1.0], shape)
        t = pf.tensor(x, requires_grad=True)
        y = fn(t, axis)
        tx = torch.tensor(x, requires_grad=True)
        ty = tfn(torch, tx, axis)
        np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-13,
                                   err_msg="%s %s %s" % (name, shape, axis))
        seed = rng.standard_normal(ty.shape)
        (g,) = pf.grad(y, [t], grad_outputs=pf.tensor(seed))
        (tg,) = torch.autograd.grad(ty, [tx], torch.tensor(seed))
        np.testing.assert_allclose(g.numpy(), tg.numpy(), rtol=1e-10, atol=1e-12,
                                   err_msg="%s %s %s" % (name, shape, axis))


@pytest.mark.parametrize("name", sorted(REDUCTIONS))
def test_gradients_match_finite_differences_and_double_backward_matches_torch(name, rng, torch):
    fn, tfn = REDUCTIONS[name]
    x = rng.uniform(0.5, 1.5, (2, 3)) * rng.choice([-1.0, 1.0], (2, 3))
    check_grad(lambda t: fn(t, 1), x)
    seed = rng.standard_normal((2, 3))
    t = pf.tensor(x, requires_grad=True)
    (g,) = pf.grad((fn(t, 1) ** 2).sum(), [t], create_graph=True)
    (gg,) = pf.grad(g, [t], grad_outputs=pf.tensor(seed))
    tx = torch.tensor(x, requires_grad=True)
    (tg,) = torch.autograd.grad((tfn(torch, tx, 1) ** 2).sum(), [tx], create_graph=True)
    (tgg,) = torch.autograd.grad(tg, [tx], torch.tensor(seed))
    np.testing.assert_allclose(gg.numpy(), tgg.numpy(), rtol=1e-9, atol=1e-11, err_msg=name)


def test_prod_gradient_with_zeros_matches_torch(torch):
    for row in ([2.0, 0.0, 3.0, 4.0], [0.0, 5.0, 0.0, 1.0], [1.5, 2.0, -1.0, 0.5]):
        x = np.array([row, row[::-1]])
        t = pf.tensor(x, requires_grad=True)
        (g,) = pf.grad(pf.prod(t, 1).sum(), [t])
        tx = torch.tensor(x, requires_grad=True)
        (tg,) = torch.autograd.grad(tx.prod(1).sum(), [tx])
        np.testing.assert_array_equal(g.numpy(), tg.numpy())
    assert pf.prod(pf.tensor(np.array([3, 4], np.int32))).dtype is pf.int64
    assert pf.prod(pf.zeros(0)).item() == 1.0


def test_zero_size_and_zero_dim_inputs(torch):
    z = np.zeros((0, 3))
    assert np.isnan(pf.mean(pf.tensor(z), 0).numpy()).all()
    assert pf.prod(pf.tensor(z), 0).tolist() == [1.0, 1.0, 1.0]
    assert pf.cumsum(pf.tensor(z), 0).shape == (0, 3)
    assert pf.logsumexp(pf.tensor(z), 0).tolist() == [-math.inf] * 3
    assert pf.norm(pf.tensor(z), 2, 0).tolist() == [0.0] * 3
    assert pf.sort(pf.tensor(z), 0).values.shape == (0, 3)
    s = pf.tensor(2.5)
    assert pf.cumsum(s, 0).item() == 2.5 and pf.cumsum(s, -1).shape == ()
    assert pf.sort(s).values.item() == 2.5 and pf.argsort(s).item() == 0
    with pytest.raises(pf.AxisError):
        pf.cumsum(s, 1)
    np.testing.assert_allclose(pf.var(pf.tensor([1.0, 2.0, 4.0])).item(),
                               torch.tensor([1.0, 2.0, 4.0]).var().item(), rtol=1e-6)
    # fewer elements than the correction: inf or NaN, as in PyTorch
    assert math.isnan(pf.var(pf.tensor([1.0])).item())


def test_max_min_with_dim_return_values_and_indices(rng, torch):
    x = rng.standard_normal((3, 5))
    t = pf.tensor(x, requires_grad=True)
    for fn, tfn in ((pf.max, torch.max), (pf.min, torch.min)):
        for dim in (0, 1, -1):
            for keep in (False, True):
                got = fn(t, dim=dim, keepdim=keep)
                want = tfn(torch.tensor(x), dim=dim, keepdim=keep)
                values, indices = got
                assert got.values is values and got.indices is indices
                np.testing.assert_array_equal(values.numpy(), want.values.numpy())
                np.testing.assert_array_equal(indices.numpy(), want.indices.numpy())
        assert fn(t).shape == ()                       # the full reduction stays a value
        assert fn(t, axis=1).shape == (3,)             # axis= keeps the tensor result
    m = t.max(dim=1)
    (g,) = pf.grad(m.values.sum(), [t])
    want = np.zeros_like(x)
    want[np.arange(3), x.argmax(1)] = 1.0
    np.testing.assert_array_equal(g.numpy(), want)
    other = pf.tensor(rng.standard_normal((3, 5)))
    np.testing.assert_array_equal(pf.max(t, other).numpy(), np.maximum(x, other.numpy()))


def test_sort_argsort_topk_median_match_torch(rng, torch):
    x = rng.integers(-3, 4, (4, 7)).astype(np.float64)    # ties: stability shows
    x[1, 2] = np.nan
    t = pf.tensor(x, requires_grad=True)
    tx = torch.tensor(x, requires_grad=True)
    for dim in (0, 1, -1):
        for desc in (False, True):
            got = pf.sort(t, dim, descending=desc)
            want = torch.sort(tx, dim=dim, descending=desc, stable=True)
            np.testing.assert_array_equal(got.values.numpy(), want.values.detach().numpy())
            np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())
            np.testing.assert_array_equal(pf.argsort(t, dim, descending=desc).numpy(),
                                          want.indices.numpy())
    y = rng.standard_normal((4, 7))
    ty = torch.tensor(y, requires_grad=True)
    py = pf.tensor(y, requires_grad=True)
    for k, largest in ((3, True), (2, False), (0, True), (7, True)):
        got = pf.topk(py, k, 1, largest=largest)
        want = torch.topk(ty, k, 1, largest=largest)
        np.testing.assert_array_equal(got.values.numpy(), want.values.detach().numpy())
        np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())
    seed = rng.standard_normal((4, 3))
    (g,) = pf.grad(pf.topk(py, 3, 1).values, [py], grad_outputs=pf.tensor(seed))
    (tg,) = torch.autograd.grad(torch.topk(ty, 3, 1).values, [ty], torch.tensor(seed))
    np.testing.assert_array_equal(g.numpy(), tg.numpy())
    for dim in (0, 1):
        got = pf.median(py, dim)
        want = torch.median(ty, dim)
        np.testing.assert_array_equal(got.values.numpy(), want.values.detach().numpy())
        np.testing.assert_array_equal(got.indices.numpy(), want.indices.numpy())
    assert pf.median(py).item() == torch.median(ty).item()
    assert pf.median(pf.tensor([4.0, 1.0, 3.0, 2.0])).item() == 2.0      # the lower median
    with pytest.raises(pf.ShapeError, match="topk: k must be"):
        pf.topk(py, 8, 1)


def test_integer_scans_sorts_and_reductions_stay_integer():
    i = pf.tensor(np.array([[3, 1, 2], [1, 1, 0]], np.int32))
    assert pf.cumsum(i, 1).dtype is pf.int64 and pf.cumsum(i, 1).tolist() == [[3, 4, 6],
                                                                             [1, 2, 2]]
    assert pf.cumprod(i, 0).tolist() == [[3, 1, 2], [3, 1, 0]]
    assert pf.sort(i, 1).values.dtype is pf.int32
    assert pf.sort(i, 1).values.tolist() == [[1, 2, 3], [0, 1, 1]]
    assert pf.argsort(i, 1).tolist() == [[1, 2, 0], [2, 0, 1]]
    big = pf.tensor(np.array([2 ** 60 + 1, 2 ** 60], np.int64))
    assert pf.argsort(big).tolist() == [1, 0]       # exact beyond float precision


def test_eager_equals_compiled(rng):
    def fn(x):
        return (pf.cumsum(x, 1) + pf.cumprod(x, 0) + pf.softmin(x, -1)
                + pf.expand_dims(pf.var(x, 1) + pf.logsumexp(x, 1) + pf.norm(x, 2, 1)
                                 + pf.prod(x, 1) + pf.max(x, dim=1).values, 1)
                + pf.sort(x, 1).values)

    x = rng.uniform(0.5, 1.5, (4, 5)).astype(np.float32)
    eager = fn(pf.tensor(x)).numpy()
    np.testing.assert_allclose(pf.jit(fn)(pf.tensor(x)).numpy(), eager, rtol=1e-6, atol=1e-6)


def test_cumsum_on_a_long_row_accumulates_in_double(torch):
    x = np.full(1 << 20, 0.1, np.float32)
    got = pf.cumsum(pf.tensor(x), 0).numpy()
    want = torch.tensor(x).cumsum(0).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-6)
    assert abs(got[-1] - 0.1 * (1 << 20)) < 1e-2 * 0.1 * (1 << 20)


@pytest.mark.parametrize("length", [255, 256, 4099])
def test_cumsum_gradient_on_long_rows_is_the_reverse_running_sum(rng, length):
    """Long rows run as segments scanned together, forward and (the gradient) in reverse."""
    x = rng.standard_normal((3, length))
    g = rng.standard_normal((3, length))
    px = pf.tensor(x.astype(np.float32), requires_grad=True)
    (gx,) = pf.grad(pf.cumsum(px, -1), [px], grad_outputs=pf.tensor(g.astype(np.float32)))
    want = np.cumsum(g[:, ::-1], -1)[:, ::-1]
    np.testing.assert_allclose(gx.numpy(), want, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(pf.cumsum(px, -1).numpy(), np.cumsum(x, -1), rtol=1e-5, atol=1e-4)
    px64 = pf.tensor(x, requires_grad=True)
    (gx64,) = pf.grad(pf.cumsum(px64, 1), [px64], grad_outputs=pf.tensor(g))
    np.testing.assert_allclose(gx64.numpy(), want, rtol=1e-12, atol=1e-12)


def test_cumprod_gradient_with_zeros_matches_torch(rng, torch):
    for row in ([2.0, 0.0, 3.0, 0.5], [0.0, 5.0, 0.0, 1.0], [1.5, 2.0, -1.0, 0.0],
                [0.0, 0.0, 2.0, 3.0], [1.5, 2.0, -1.0, 0.5]):
        x = np.array([row, row[::-1]])
        seed = rng.standard_normal(x.shape)
        for axis in (1, 0):
            t = pf.tensor(x, requires_grad=True)
            (g,) = pf.grad(pf.cumprod(t, axis), [t], grad_outputs=pf.tensor(seed))
            tx = torch.tensor(x, requires_grad=True)
            (tg,) = torch.autograd.grad(tx.cumprod(axis), [tx], torch.tensor(seed))
            np.testing.assert_allclose(g.numpy(), tg.numpy(), rtol=1e-12, atol=1e-14,
                                       err_msg=str((row, axis)))
    check_grad(lambda t: pf.cumprod(t, 1), np.array([[2.0, 0.0, 3.0, 0.5]]))
