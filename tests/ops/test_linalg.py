"""matmul (2-D, batched, broadcast batch, 1-D operands, transposes) and linear with each fused
activation: against numpy, finite differences and PyTorch."""
import math

import numpy as np
import pytest

import pyfront as pf
from pyfront.testing import check_grad

# (a shape, b shape): plain, batched, broadcast batch (one matrix for all, and a partial
# broadcast that is materialised), 1-D operands, empty sizes, sizes that split over threads
MATMUL_SHAPES = [((3, 4), (4, 5)), ((1, 1), (1, 1)), ((2, 3, 4), (2, 4, 5)),
                 ((2, 3, 4), (4, 5)), ((3, 4), (2, 4, 5)), ((2, 1, 3, 4), (5, 4, 2)),
                 ((2, 1, 3, 4), (1, 3, 4, 2)), ((2, 2, 4), (3, 3, 1, 4, 2)),
                 ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)),
                 ((2, 3, 4), (4,)), ((4,), (2, 4, 5)), ((0, 4), (4, 5)), ((3, 0), (0, 5)),
                 ((3, 4), (4, 0)), ((2, 0, 4), (2, 4, 3)), ((8, 16, 16), (8, 16, 16)),
                 ((200, 150), (150, 170)), ((2, 130, 128), (128, 140))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matmul_matches_numpy(dtype, rng):
    for sa, sb in MATMUL_SHAPES:
        a = rng.standard_normal(sa).astype(dtype)
        b = rng.standard_normal(sb).astype(dtype)
        y = pf.matmul(pf.tensor(a), pf.tensor(b))
        want = np.matmul(a.astype(np.float64), b.astype(np.float64))
        assert y.shape == want.shape and y.dtype.np == dtype, (sa, sb)
        tol = 1e-5 * max(1, math.sqrt(a.shape[-1])) if dtype == np.float32 else 1e-12
        np.testing.assert_allclose(y.numpy(), want, rtol=tol, atol=tol, err_msg=str((sa, sb)))
        assert np.array_equal((pf.tensor(a) @ pf.tensor(b)).numpy(), y.numpy())


@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
def test_matmul_transposes(ta, tb, rng):
    for batch_a, batch_b in (((), ()), ((3,), (3,)), ((3,), ()), ((), (2,))):
        a = rng.standard_normal(batch_a + ((4, 3) if ta else (3, 4)))
        b = rng.standard_normal(batch_b + ((5, 4) if tb else (4, 5)))
        y = pf.matmul(pf.tensor(a), pf.tensor(b), transpose_a=ta, transpose_b=tb)
        want = np.matmul(np.swapaxes(a, -1, -2) if ta else a, np.swapaxes(b, -1, -2) if tb else b)
        np.testing.assert_allclose(y.numpy(), want, rtol=1e-12, atol=1e-12)
        check_grad(lambda x, w: pf.matmul(x, w, transpose_a=ta, transpose_b=tb), a, b)


def test_matmul_gradients_match_finite_differences(rng):
    for sa, sb in [((3, 4), (4, 2)), ((2, 3, 4), (4, 2)), ((3, 4), (2, 4, 2)),
                   ((2, 1, 2, 3), (3, 3, 2)), ((4,), (4, 3)), ((3, 4), (4,)), ((4,), (4,))]:
        check_grad(pf.matmul, rng.standard_normal(sa), rng.standard_normal(sb))


def test_matmul_matches_torch_forward_and_backward(rng, torch):
    for sa, sb in [((5, 6), (6, 7)), ((3, 5, 6), (6, 7)), ((2, 1, 5, 6), (3, 6, 7)),
                   ((6,), (3, 6, 7)), ((64, 96), (96, 80))]:
        a = rng.standard_normal(sa).astype(np.float32)
        b = rng.standard_normal(sb).astype(np.float32)
        ta, tb = pf.tensor(a, requires_grad=True), pf.tensor(b, requires_grad=True)
        y = ta @ tb
        w = rng.standard_normal(y.shape).astype(np.float32)
        (y * pf.tensor(w)).sum().backward()
        ra, rb = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
        ry = ra @ rb
        (ry * torch.tensor(w)).sum().backward()
        np.testing.assert_allclose(y.numpy(), ry.detach().numpy(), rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(ta.grad.numpy(), ra.grad.numpy(), rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(tb.grad.numpy(), rb.grad.numpy(), rtol=1e-5, atol=1e-4)


def test_matmul_errors_name_the_op_and_shapes():
    with pytest.raises(pf.ShapeError, match=r"matmul.*\(2, 3\).*\(4, 5\)"):
        pf.matmul(pf.ones(2, 3), pf.ones(4, 5))
    with pytest.raises(pf.ShapeError, match="matmul"):
        pf.matmul(pf.ones(2, 3, 4), pf.ones(3, 4, 5))      # batch 2 vs 3
    with pytest.raises(pf.ShapeError, match="at least 2 dims"):
        pf.matmul(pf.tensor(2.0), pf.ones(2, 2))
    # integers multiply exactly, as PyTorch's (bool is refused, as there)
    assert pf.matmul(pf.tensor([[1, 2]]), pf.tensor([[1], [2]])).tolist() == [[5]]
    mixed = pf.matmul(pf.ones(2, 3), pf.tensor(np.ones((3, 2))))
    assert mixed.dtype is pf.float64 and mixed.tolist() == [[3.0, 3.0], [3.0, 3.0]]


# ---------------------------------------------------------------------------------------------
# linear

def _act(name, z, alpha=0.01):
    erf = np.vectorize(math.erf, otypes=[np.float64])
    return {None: z, "relu": np.maximum(z, 0), "sigmoid": 1 / (1 + np.exp(-z)), "tanh": np.tanh(z),
            "gelu": 0.5 * z * (1 + erf(z / math.sqrt(2))),
            "leaky_relu": np.where(z > 0, z, alpha * z)}[name]


ACTIVATIONS = [None, "relu", "sigmoid", "tanh", "gelu", "leaky_relu"]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", ACTIVATIONS)
def test_linear_matches_numpy(act, dtype, rng):
    for xs, (k, n) in [((4, 3), (3, 5)), ((2, 3, 6), (6, 4)), ((5,), (5, 2)), ((0, 3), (3, 2)),
                       ((300, 64), (64, 48)), ((1, 512), (512, 300))]:
        x = rng.standard_normal(xs).astype(dtype)
        w = rng.standard_normal((k, n)).astype(dtype) / math.sqrt(k)
        b = rng.standard_normal(n).astype(dtype)
        for bias in (b, None):
            y = pf.linear(pf.tensor(x), pf.tensor(w), None if bias is None else pf.tensor(bias),
                          activation=act, alpha=0.2)
            z = x.astype(np.float64) @ w + (0 if bias is None else bias)
            assert y.shape == z.shape and y.dtype.np == dtype
            tol = 2e-5 if dtype == np.float32 else 1e-12
            np.testing.assert_allclose(y.numpy(), _act(act, z, 0.2), rtol=tol, atol=tol)


@pytest.mark.parametrize("act", [None, "relu", "sigmoid", "tanh"])
def test_linear_gradients(act, rng, torch):
    x = rng.standard_normal((4, 3))
    w = rng.standard_normal((3, 2))
    b = rng.standard_normal(2)
    check_grad(lambda x, w, b: pf.linear(x, w, b, activation=act), x, w, b)
    check_grad(lambda x, w: pf.linear(x, w, activation=act), rng.standard_normal((2, 2, 3)), w)
    tx, tw, tb = (pf.tensor(v.astype(np.float32), requires_grad=True) for v in (x, w, b))
    pf.linear(tx, tw, tb, activation=act).sum().backward()
    rx, rw, rb = (torch.tensor(v.astype(np.float32), requires_grad=True) for v in (x, w, b))
    rz = rx @ rw + rb
    ry = {None: rz, "relu": torch.relu(rz), "sigmoid": torch.sigmoid(rz),
          "tanh": torch.tanh(rz)}[act]
    ry.sum().backward()
    for ours, theirs in ((tx, rx), (tw, rw), (tb, rb)):
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_linear_with_gelu_or_leaky_relu_says_it_cannot_differentiate(rng):
    x = pf.tensor(rng.standard_normal((2, 3)).astype(np.float32), requires_grad=True)
    w = pf.ones(3, 2)
    for act in ("gelu", "leaky_relu"):
        y = pf.linear(x, w, activation=act).sum()
        with pytest.raises(pf.PyfrontError, match="apply the activation separately"):
            y.backward()


def test_linear_errors():
    with pytest.raises(pf.ShapeError, match=r"linear.*3 features.*expects 4"):
        pf.linear(pf.ones(2, 3), pf.ones(4, 5))
    with pytest.raises(pf.ShapeError, match="bias"):
        pf.linear(pf.ones(2, 3), pf.ones(3, 5), pf.ones(4))
    with pytest.raises(pf.ShapeError, match="unknown activation"):
        pf.linear(pf.ones(2, 3), pf.ones(3, 5), activation="swish")
    with pytest.raises(pf.DTypeError):
        pf.linear(pf.ones(2, 3), pf.tensor(np.ones((3, 5))))
