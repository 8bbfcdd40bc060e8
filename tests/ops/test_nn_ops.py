"""softmax / log_softmax over each axis, cross_entropy (mean/sum/none, ignore_index, int32 and
int64 labels) and mse (mean/sum/none): against numpy, finite differences and PyTorch; NaN
losses and bad labels raise errors that say where."""
import numpy as np
import pytest

import pyfront as pf
from pyfront.testing import check_grad


def _np_log_softmax(x, axis):
    m = np.max(x, axis=axis, keepdims=True)
    return x - m - np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("log", [False, True])
def test_softmax_over_each_axis_matches_numpy(log, dtype, rng):
    fn = pf.log_softmax if log else pf.softmax
    for shape in [(5,), (3, 4), (2, 3, 4), (2, 1, 3, 5), (0, 4), (4, 0)]:
        x = (rng.standard_normal(shape) * 5).astype(dtype)
        for axis in range(-len(shape), len(shape)):
            y = fn(pf.tensor(x), axis)
            want = _np_log_softmax(x.astype(np.float64), axis) if x.size else x
            if not log:
                want = np.exp(want)
            assert y.shape == x.shape and y.dtype.np == dtype
            tol = 2e-6 if dtype == np.float32 else 1e-13
            np.testing.assert_allclose(y.numpy(), want, rtol=tol, atol=tol)


def test_softmax_is_stable_for_large_and_infinite_logits():
    x = np.array([[1000.0, 1001.0, -np.inf], [-1000.0, -1000.0, -1000.0]], np.float32)
    y = pf.softmax(pf.tensor(x), 1).numpy()
    np.testing.assert_allclose(y, [[1 / (1 + np.e), np.e / (1 + np.e), 0], [1 / 3] * 3], rtol=1e-6)
    ly = pf.log_softmax(pf.tensor(x), 1).numpy()
    assert np.isfinite(ly[:, :2]).all() and ly[0, 2] == -np.inf


@pytest.mark.parametrize("log", [False, True])
def test_softmax_gradients(log, rng, torch):
    fn = pf.log_softmax if log else pf.softmax
    x = rng.standard_normal((2, 3, 4))
    for axis in (0, 1, 2):
        check_grad(lambda a: fn(a, axis), x)
        t = pf.tensor(x.astype(np.float32), requires_grad=True)
        w = rng.standard_normal(x.shape).astype(np.float32)
        y = fn(t, axis)
        (y * pf.tensor(w)).sum().backward()
        r = torch.tensor(x.astype(np.float32), requires_grad=True)
        ry = (torch.log_softmax if log else torch.softmax)(r, axis)
        (ry * torch.tensor(w)).sum().backward()
        np.testing.assert_allclose(y.numpy(), ry.detach().numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(t.grad.numpy(), r.grad.numpy(), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# cross-entropy

def _np_cross_entropy(z, labels, reduction, ignore_index=-100):
    lsm = _np_log_softmax(z.astype(np.float64), 1)
    keep = labels != ignore_index
    losses = np.where(keep, -lsm[np.arange(len(labels)), np.where(keep, labels, 0)], 0.0)
    if reduction == "none":
        return losses
    return losses.sum() / (keep.sum() if reduction == "mean" else 1)


@pytest.mark.parametrize("label_dtype", [np.int32, np.int64])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_matches_numpy_and_torch(reduction, label_dtype, rng, torch):
    for dtype in (np.float32, np.float64):
        z = (rng.standard_normal((6, 5)) * 3).astype(dtype)
        labels = rng.integers(0, 5, 6).astype(label_dtype)
        for ignore in (-100, 2):
            loss = pf.cross_entropy(pf.tensor(z), pf.tensor(labels), reduction, ignore_index=ignore)
            want = _np_cross_entropy(z, labels, reduction, ignore)
            assert loss.dtype.np == dtype and loss.shape == np.shape(want)
            tol = 1e-5 if dtype == np.float32 else 1e-12
            np.testing.assert_allclose(loss.numpy(), want, rtol=tol, atol=tol)
    # forward and gradient against torch, with ignored rows
    z = (rng.standard_normal((7, 4)) * 2).astype(np.float32)
    labels = np.array([0, 3, 1, -1, 2, 3, -1], label_dtype)
    t = pf.tensor(z, requires_grad=True)
    loss = pf.cross_entropy(t, pf.tensor(labels), reduction, ignore_index=-1)
    w = rng.standard_normal(loss.shape).astype(np.float32)
    (loss * pf.tensor(w)).sum().backward()
    r = torch.tensor(z, requires_grad=True)
    rl = torch.nn.functional.cross_entropy(r, torch.tensor(labels.astype(np.int64)),
                                           reduction=reduction, ignore_index=-1)
    (rl * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(loss.numpy(), rl.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(t.grad.numpy(), r.grad.numpy(), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_gradients_first_and_second_order(reduction, rng):
    z = rng.standard_normal((4, 3))
    labels = np.array([2, 0, -100, 1])
    check_grad(lambda a: pf.cross_entropy(a, labels, reduction), z)

    def first_grad(a):     # differentiating the gradient takes the composed path
        if not a.requires_grad:           # check_grad's finite-difference evaluations
            a = pf.tensor(a.numpy(), requires_grad=True)
        w = pf.tensor(np.linspace(0.5, 1.5, 4)) if reduction == "none" else 1.0
        (g,) = pf.grad((pf.cross_entropy(a, labels, reduction) * w).sum(), [a],
                       create_graph=True)
        return g
    check_grad(first_grad, z)


def test_cross_entropy_errors():
    z = pf.tensor(np.zeros((3, 4), np.float32))
    with pytest.raises(pf.IndexOutOfRange, match="label 4 in row 1 is out of range for 4 classes"):
        pf.cross_entropy(z, [0, 4, 1])
    with pytest.raises(pf.IndexOutOfRange, match="label -1 in row 2"):
        pf.cross_entropy(z, pf.tensor(np.array([0, 1, -1], np.int32)))
    bad = np.zeros((3, 4), np.float32)
    bad[2, 1] = np.nan
    with pytest.raises(pf.NumericError, match="row 2"):
        pf.cross_entropy(pf.tensor(bad), [0, 1, 2])
    bad[2, 1] = np.inf
    with pytest.raises(pf.NumericError, match="row 2"):
        pf.cross_entropy(pf.tensor(bad), [0, 1, 2], reduction="none")
    # float labels are class probabilities (PyTorch): shaped like indices, the error says why
    with pytest.raises(pf.ShapeError, match=r"target probabilities \(3,\) do not fit logits "
                                            r"\(3, 4\).*class indices must be integers"):
        pf.cross_entropy(z, pf.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(pf.ShapeError, match=r"cross_entropy.*3 rows of logits but 2 labels"):
        pf.cross_entropy(z, [0, 1])
    with pytest.raises(pf.ShapeError, match=r"\(batch, classes\)"):
        pf.cross_entropy(pf.ones(3), [0, 1, 2])
    # a mean over no labels is NaN with a zero gradient, as torch's
    zg = pf.tensor(np.ones((3, 4), np.float32), requires_grad=True)
    loss = pf.cross_entropy(zg, [-100, -100, -100])
    assert np.isnan(loss.item())
    loss.backward()
    np.testing.assert_array_equal(zg.grad.numpy(), np.zeros((3, 4), np.float32))
    assert np.isnan(pf.cross_entropy(pf.zeros(0, 4), pf.tensor(np.zeros(0, np.int64))).item())
    assert np.isnan(pf.jit(lambda a: pf.cross_entropy(a, [-100, -100, -100]))(zg).item())
    assert pf.cross_entropy(pf.zeros(0, 4), pf.tensor(np.zeros(0, np.int64)), "sum").item() == 0
    with pytest.raises(ValueError, match="reduction"):
        pf.cross_entropy(z, [0, 1, 2], reduction="avg")


# ---------------------------------------------------------------------------------------------
# mean squared error

@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_matches_numpy_torch_and_finite_differences(reduction, rng, torch):
    for dtype in (np.float32, np.float64):
        for shape in [(5,), (3, 4), (2, 3, 2), ()]:
            p = rng.standard_normal(shape).astype(dtype)
            t = rng.standard_normal(shape).astype(dtype)
            loss = pf.mse(pf.tensor(p), pf.tensor(t), reduction)
            sq = (p.astype(np.float64) - t) ** 2
            want = {"mean": sq.mean(), "sum": sq.sum(), "none": sq}[reduction]
            assert loss.dtype.np == dtype and loss.shape == np.shape(want)
            np.testing.assert_allclose(loss.numpy(), want, rtol=1e-6, atol=1e-7)
    p, t = rng.standard_normal((3, 4)), rng.standard_normal((3, 4))
    check_grad(lambda a, b: pf.mse(a, b, reduction), p, t)
    tp = pf.tensor(p.astype(np.float32), requires_grad=True)
    tt = pf.tensor(t.astype(np.float32), requires_grad=True)
    loss = pf.mse(tp, tt, reduction)
    w = rng.standard_normal(loss.shape).astype(np.float32)
    (loss * pf.tensor(w)).sum().backward()
    rp = torch.tensor(p.astype(np.float32), requires_grad=True)
    rt = torch.tensor(t.astype(np.float32), requires_grad=True)
    rl = torch.nn.functional.mse_loss(rp, rt, reduction=reduction)
    (rl * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(loss.numpy(), rl.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tp.grad.numpy(), rp.grad.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(tt.grad.numpy(), rt.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_mse_errors_and_scalar_targets():
    with pytest.raises(pf.NumericError, match="element 4"):
        pf.mse(pf.tensor(np.array([0, 1, 2, 3, np.nan], np.float32)), pf.zeros(5))
    with pytest.raises(pf.NumericError, match="element 0"):
        pf.mse(pf.ones(2), pf.tensor([np.inf, 0.0]), "sum")
    with pytest.raises(pf.NumericError, match="overflow"):
        pf.mse(pf.tensor([1e30]), pf.zeros(1))           # finite inputs, loss beyond float32
    with pytest.raises(pf.NumericError, match="element 1 overflows"):
        pf.mse(pf.tensor([0.0, 3e20]), pf.zeros(2), "none")
    with pytest.raises(pf.ShapeError, match=r"mse.*\(3,\).*\(4,\)"):
        pf.mse(pf.ones(3), pf.ones(4))
    assert np.isnan(pf.mse(pf.zeros(0), pf.zeros(0)).item())       # torch's mean of nothing
    assert pf.mse(pf.zeros(0), pf.zeros(0), "sum").item() == 0.0
    assert pf.mse(pf.ones(2, 2), pf.tensor(np.full((2, 2), 3.0))).dtype is pf.float32
    with pytest.raises(pf.DTypeError):
        pf.mse(pf.tensor([1, 2]), pf.tensor([1, 2]))
