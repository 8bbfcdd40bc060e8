"""Reductions (sum, mean, max, min, argmax, argmin) over one axis, several, non-adjacent ones,
all of them, with keepdims: against numpy, finite differences and PyTorch."""
import numpy as np
import pytest

import pyfront as pf
from pyfront.testing import check_grad

REDUCE = {"sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min,
          "argmax": np.argmax, "argmin": np.argmin}

# (shape, axis): one axis, negative axes, several adjacent, non-adjacent, all, and the paths
# of the kernel (rows when the reduced axes are last, columns otherwise, long rows split)
CASES = [((5,), 0), ((5,), None), ((3, 4), 0), ((3, 4), 1), ((3, 4), -1), ((3, 4), None),
         ((2, 3, 4), (0, 1)), ((2, 3, 4), (1, 2)), ((2, 3, 4), (0, 2)), ((2, 3, 4), (2, 0)),
         ((2, 3, 4, 5), (1, 3)), ((2, 3, 4, 5), (0, 2, 3)), ((2, 3, 4, 5), None),
         ((4, 1, 3), 1), ((7, 600), 0), ((3, 40000), 1), ((40000,), 0), ((2, 1000, 3), 1),
         ((), None)]


def _np_reduce(mode, x, axis, keepdims):
    if mode in ("argmax", "argmin"):
        if axis is None and x.ndim > 1:
            x = x.reshape(-1)
            axis = 0
        if axis is None:
            return np.asarray(REDUCE[mode](x))
        r = REDUCE[mode](x, axis=axis)
        return np.expand_dims(r, axis) if keepdims else r
    return np.asarray(REDUCE[mode](x, axis=axis, keepdims=keepdims))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", sorted(REDUCE))
def test_reductions_match_numpy(mode, dtype, rng):
    for shape, axis in CASES:
        x = rng.standard_normal(shape).astype(dtype)
        for keepdims in (False, True):
            if mode.startswith("arg") and not isinstance(axis, int) and (keepdims or
                                                                       axis is not None):
                continue       # argmax/argmin take one axis (or none: the flat index)
            y = getattr(pf, mode)(pf.tensor(x), axis=axis, keepdims=keepdims)
            want = _np_reduce(mode, x.astype(np.float64), axis, keepdims)
            assert y.shape == want.shape, (mode, shape, axis, keepdims)
            if mode.startswith("arg"):
                assert y.dtype is pf.int64 and np.array_equal(y.numpy(), want)
            else:
                assert y.dtype.np == dtype
                tol = 2e-6 if dtype == np.float32 else 1e-13
                np.testing.assert_allclose(y.numpy(), want, rtol=tol, atol=tol,
                                           err_msg=str((mode, shape, axis)))


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_integer_reductions_are_exact(dtype, rng):
    x = rng.integers(-1000, 1000, (3, 4, 5)).astype(dtype)
    for axis in (0, 1, 2, (0, 2), None):
        for mode in ("sum", "max", "min"):
            y = getattr(pf, mode)(pf.tensor(x), axis=axis)
            want = getattr(np, mode)(x, axis=axis)
            assert y.dtype.np == want.dtype     # numpy widens int32 sums to int64
            assert np.array_equal(y.numpy(), getattr(np, mode)(x, axis=axis)), (mode, axis)
    assert pf.argmax(pf.tensor(x), 1).tolist() == np.argmax(x, 1).tolist()
    with pytest.raises(pf.DTypeError, match="mean"):
        pf.mean(pf.tensor(x))


def test_float32_sums_accumulate_in_double():
    x = np.full(1_000_003, 0.1, np.float32)
    total = pf.sum(pf.tensor(x)).item()
    assert abs(total - x.astype(np.float64).sum()) <= 1e-7 * 1e5
    rows = pf.tensor(np.full((3, 200_000), 0.1, np.float32)).sum(1).numpy()
    np.testing.assert_allclose(rows, np.full(3, np.float32(0.1) * 200_000.0), rtol=1e-7)


def test_empty_arrays():
    z = np.zeros((0, 3), np.float32)
    assert pf.sum(pf.tensor(z)).item() == 0.0
    assert pf.sum(pf.tensor(z), 0).tolist() == [0.0, 0.0, 0.0]
    assert pf.sum(pf.tensor(z), 1).shape == (0,)
    assert pf.max(pf.tensor(z), axis=1).shape == (0,)   # nothing reduced over an empty axis
    assert pf.mean(pf.tensor(z), 1, keepdims=True).shape == (0, 1)
    for mode in ("max", "min", "argmax", "argmin"):
        with pytest.raises(pf.ShapeError, match="size 0"):
            getattr(pf, mode)(pf.tensor(z), 0)
    # the mean over an empty axis is NaN, as in PyTorch
    assert np.isnan(pf.mean(pf.tensor(z), 0).numpy()).all() and pf.mean(pf.tensor(z), 0).shape == (3,)
    x = pf.tensor(2.5)
    assert pf.sum(x).item() == 2.5 and pf.max(x).item() == 2.5 and pf.argmax(x).item() == 0


def test_nan_and_ties_follow_numpy():
    x = np.array([[1.0, np.nan, 3.0], [2.0, 5.0, 5.0], [4.0, 4.0, -1.0]], np.float32)
    t = pf.tensor(x)
    for axis in (0, 1):
        np.testing.assert_array_equal(pf.max(t, axis=axis).numpy(), np.max(x, axis))
        np.testing.assert_array_equal(pf.min(t, axis=axis).numpy(), np.min(x, axis))
        np.testing.assert_array_equal(pf.argmax(t, axis).numpy(), np.argmax(x, axis))
        np.testing.assert_array_equal(pf.argmin(t, axis).numpy(), np.argmin(x, axis))
    assert np.isnan(pf.sum(t).item()) and np.isnan(pf.max(t).item())


@pytest.mark.parametrize("mode", ["sum", "mean", "max", "min"])
def test_reduction_gradients_match_finite_differences(mode, rng):
    x = rng.permutation(24).reshape(2, 3, 4) * 0.37 - 4.0     # distinct: max has one winner
    for axis, keepdims in ((None, False), (1, False), ((0, 2), True), (-1, True), ((0, 1), False)):
        check_grad(lambda t: getattr(pf, mode)(t, axis=axis, keepdims=keepdims), x)


@pytest.mark.parametrize("mode", ["sum", "mean", "max", "min"])
def test_reductions_match_torch_forward_and_backward(mode, rng, torch):
    x = rng.standard_normal((3, 4, 5)).astype(np.float32)
    x[0, 1, :2] = x[0, 1, 2]       # ties: the gradient is shared among them, as amax/amin do
    torch_fn = {"sum": torch.sum, "mean": torch.mean, "max": torch.amax, "min": torch.amin}[mode]
    for axis in ((2,), (0, 2), (1,), (0, 1, 2)):
        t = pf.tensor(x, requires_grad=True)
        y = getattr(pf, mode)(t, axis=axis)
        w = rng.standard_normal(y.shape).astype(np.float32)
        (y * pf.tensor(w)).sum().backward()
        r = torch.tensor(x, requires_grad=True)
        ry = torch_fn(r, dim=axis)
        (ry * torch.tensor(w)).sum().backward()
        np.testing.assert_allclose(y.numpy(), ry.detach().numpy(), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(t.grad.numpy(), r.grad.numpy(), rtol=1e-6, atol=1e-6)
    assert pf.argmax(pf.tensor(x), 2).tolist() == torch.argmax(torch.tensor(x), 2).tolist()


def test_argmax_is_not_differentiable_and_methods_match_functions(rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    t = pf.tensor(x, requires_grad=True)
    assert not pf.argmax(t, 1).requires_grad
    assert t.sum(0).tolist() == pf.sum(t, 0).tolist()
    assert t.max(axis=1, keepdims=True).shape == (3, 1)
    assert t.argmin().item() == int(np.argmin(x))


def test_bad_axes_name_the_op():
    x = pf.ones(2, 3)
    with pytest.raises(pf.ShapeError, match=r"sum.*axis 2 is out of range"):
        pf.sum(x, 2)
    with pytest.raises(pf.ShapeError, match="repeated axis"):
        pf.mean(x, (1, -1))
    with pytest.raises(pf.ShapeError, match="must be an int"):
        pf.max(x, 1.5)
