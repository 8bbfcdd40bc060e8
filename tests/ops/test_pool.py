"""Pooling ops: forward against a float64 numpy reference, gradients (first and second order)
against finite differences, PyTorch parity forward and backward (ties and NaNs included),
global pooling, and clean errors for bad inputs."""
import numpy as np
import pytest

import pyfront as pf
from pyfront.testing import check_grad

MAX = {1: pf.max_pool1d, 2: pf.max_pool2d, 3: pf.max_pool3d}
AVG = {1: pf.avg_pool1d, 2: pf.avg_pool2d, 3: pf.avg_pool3d}


def reference_pool(x, window, strides, pads, mode, count_include_pad=True):
    """Direct float64 pooling; pads: one (begin, end) pair per spatial dim."""
    nd = x.ndim - 2
    fill = -np.inf if mode == "max" else 0.0
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0)] + list(pads), constant_values=fill)
    inside = np.pad(np.ones(x.shape[2:]), list(pads))
    out = [(xp.shape[2 + d] - window[d]) // strides[d] + 1 for d in range(nd)]
    acc = np.full(x.shape[:2] + tuple(out), fill)
    count = np.zeros(tuple(out))
    for offset in np.ndindex(*window):
        sl = tuple(slice(offset[d], offset[d] + strides[d] * (out[d] - 1) + 1, strides[d])
                   for d in range(nd))
        patch = xp[(slice(None), slice(None)) + sl]
        acc = np.maximum(acc, patch) if mode == "max" else acc + patch
        count += inside[sl]
    if mode == "max":
        return acc
    return acc / (np.prod(window) if count_include_pad else count)


def same_pads(in_sizes, window, strides):
    pads = []
    for n, k, s in zip(in_sizes, window, strides):
        total = max((-(-n // s) - 1) * s + k - n, 0)
        pads.append((total // 2, total - total // 2))
    return pads


# (x shape, window, strides, padding as given, padding as pairs or None for "same")
CASES = [
    ((2, 3, 9), (2,), (2,), "valid", [(0, 0)]),
    ((2, 2, 10), (3,), (2,), 1, [(1, 1)]),
    ((2, 3, 8, 8), (2, 2), (2, 2), "valid", [(0, 0), (0, 0)]),        # the 2x2 fast path
    ((2, 3, 7, 9), (2, 2), (2, 2), "valid", [(0, 0), (0, 0)]),        # unread row and column
    ((1, 2, 9, 8), (3, 3), (2, 2), 1, [(1, 1), (1, 1)]),
    ((2, 2, 7, 6), (3, 2), (1, 2), ((2, 0), (1, 1)), [(2, 0), (1, 1)]),
    ((1, 3, 7, 5), (3, 3), (2, 2), "same", None),
    ((1, 2, 4, 5, 6), (2, 2, 2), (2, 2, 2), "valid", [(0, 0)] * 3),
    ((1, 2, 5, 4, 6), (1, 2, 2), (1, 2, 2), "valid", [(0, 0)] * 3),   # 2x2 path with depth
    ((1, 2, 5, 5, 4), (3, 2, 2), (2, 1, 2), "same", None),
]


def _pairs(x_shape, window, strides, pairs):
    return pairs if pairs is not None else same_pads(x_shape[2:], window, strides)


@pytest.mark.parametrize("x_shape,window,strides,padding,pairs", CASES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_forward_matches_reference(rng, x_shape, window, strides, padding, pairs, dtype):
    nd = len(x_shape) - 2
    x = rng.standard_normal(x_shape).astype(dtype)
    pads = _pairs(x_shape, window, strides, pairs)
    y = MAX[nd](pf.tensor(x), window, strides, padding)
    np.testing.assert_array_equal(y.numpy(), reference_pool(x, window, strides, pads, "max"))
    for include in (True, False):
        y = AVG[nd](pf.tensor(x), window, strides, padding, count_include_pad=include)
        ref = reference_pool(x, window, strides, pads, "avg", include)
        np.testing.assert_allclose(y.numpy(), ref, rtol=1e-6 if dtype == "float32" else 1e-13,
                                   atol=1e-6 if dtype == "float32" else 1e-13)


@pytest.mark.parametrize("x_shape,window,strides,padding,pairs", CASES)
def test_gradients_match_finite_differences(rng, x_shape, window, strides, padding, pairs):
    nd = len(x_shape) - 2
    x = rng.standard_normal(x_shape)
    check_grad(lambda x: MAX[nd](x, window, strides, padding), x)
    check_grad(lambda x: AVG[nd](x, window, strides, padding), x)
    check_grad(lambda x: AVG[nd](x, window, strides, padding, count_include_pad=False), x)


def _first_grad(fn):
    def wrapped(x):
        probe = pf.tensor(np.zeros(x.shape), requires_grad=True)
        return pf.grad(fn(x + probe), [probe], create_graph=True)[0]
    return wrapped


@pytest.mark.parametrize("window,strides,padding", [(2, 2, 0), (3, 2, 1)])
def test_second_order_gradients(rng, window, strides, padding):
    x = rng.standard_normal((2, 2, 7, 6))
    check_grad(_first_grad(lambda x: (pf.max_pool2d(x, window, strides, padding) ** 2).sum()),
               x, atol=1e-5)
    check_grad(_first_grad(lambda x: (pf.avg_pool2d(x, window, strides, padding) ** 3).sum()),
               x, atol=1e-5)


def test_strides_default_to_the_window(rng):
    x = pf.tensor(rng.standard_normal((1, 1, 6, 6)))
    assert pf.max_pool2d(x, 3).shape == (1, 1, 2, 2)
    assert pf.avg_pool2d(x, (2, 3)).shape == (1, 1, 3, 2)


# ---- PyTorch parity ----

TORCH_CASES = [
    ((3, 4, 17), 3, 2, 1),
    ((4, 5, 26, 26), 2, 2, 0),
    ((4, 5, 11, 11), 2, 2, 0),
    ((2, 3, 9, 10), 3, 2, 1),
    ((2, 2, 5, 6, 7), 2, 1, 1),
]


@pytest.mark.parametrize("x_shape,window,strides,padding", TORCH_CASES)
def test_matches_pytorch_forward_and_backward(torch, rng, x_shape, window, strides, padding):
    nd = len(x_shape) - 2
    F = torch.nn.functional
    x = rng.standard_normal(x_shape).astype(np.float32)
    for kind, include in (("max", None), ("avg", True), ("avg", False)):
        tx = torch.tensor(x, requires_grad=True)
        if kind == "max":
            ty = getattr(F, "max_pool%dd" % nd)(tx, window, strides, padding)
        else:
            ty = getattr(F, "avg_pool%dd" % nd)(tx, window, strides, padding,
                                                count_include_pad=include)
        gy = rng.standard_normal(tuple(ty.shape)).astype(np.float32)
        ty.backward(torch.tensor(gy))
        px = pf.tensor(x, requires_grad=True)
        py = MAX[nd](px, window, strides, padding) if kind == "max" else \
            AVG[nd](px, window, strides, padding, count_include_pad=include)
        py.backward(pf.tensor(gy))
        np.testing.assert_allclose(py.numpy(), ty.detach().numpy(), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(px.grad.numpy(), tx.grad.numpy(), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("window,strides,padding", [(2, 2, 0), (3, 1, 1), (2, 1, 0)])
def test_ties_and_nans_follow_pytorch(torch, window, strides, padding):
    """The gradient goes to the first maximum of a window; a NaN wins, the last one if
    several; so relu's zeros and NaN inputs route gradients exactly as PyTorch does."""
    x = np.array([[1, 5, 0, 0, 7, 7], [5, 1, 0, 0, 1, 7], [np.nan, 2, np.nan, 1, 2, 2],
                  [3, np.nan, -np.inf, -np.inf, 3, 3], [1, 2, 3, 4, 5, 5],
                  [0, 0, 0, 0, 0, 0]], np.float32)[None, None]
    relu_like = np.maximum(np.arange(36).reshape(1, 1, 6, 6) % 3 - 1, 0)   # zeros tie
    x = np.concatenate([x, relu_like.astype(np.float32)], axis=1)
    tx = torch.tensor(x, requires_grad=True)
    ty = torch.nn.functional.max_pool2d(tx, window, strides, padding)
    gy = np.arange(1, ty.numel() + 1, dtype=np.float32).reshape(tuple(ty.shape))
    ty.backward(torch.tensor(gy))
    px = pf.tensor(x, requires_grad=True)
    py = pf.max_pool2d(px, window, strides, padding)
    py.backward(pf.tensor(gy))
    np.testing.assert_array_equal(py.numpy(), ty.detach().numpy())
    np.testing.assert_array_equal(px.grad.numpy(), tx.grad.numpy())


# ---- global pooling ----

def test_global_pooling(rng):
    x = rng.standard_normal((2, 3, 4, 5, 2))
    np.testing.assert_allclose(pf.global_avg_pool(pf.tensor(x)).numpy(), x.mean((2, 3, 4)))
    np.testing.assert_array_equal(pf.global_max_pool(pf.tensor(x), keepdims=True).numpy(),
                                  x.max((2, 3, 4), keepdims=True))
    check_grad(lambda x: pf.global_avg_pool(x), x[:, :, :2, :3])
    check_grad(lambda x: pf.global_max_pool(x), x[:, :, :2, :3])
    with pytest.raises(pf.ShapeError, match=r"at least 3 dims, got \(2, 3\)"):
        pf.global_avg_pool(pf.zeros(2, 3))


# ---- errors ----

def test_window_larger_than_the_input():
    with pytest.raises(pf.ShapeError) as e:
        pf.max_pool2d(pf.zeros(1, 1, 3, 4), 4)
    msg = str(e.value)
    assert "max_pool2d" in msg and "pool window (4, 4) spans 4" in msg and "(1, 1, 3, 4)" in msg


def test_padding_must_be_below_the_window():
    with pytest.raises(pf.ShapeError, match=r"padding \(2, 2\) in spatial dim 0 must be smaller "
                                            r"than the pool window \(2,\)"):
        pf.avg_pool1d(pf.zeros(1, 1, 8), 2, padding=2)


def test_wrong_rank_and_dtype():
    with pytest.raises(pf.ShapeError, match=r"\(batch, channels, height, width\) with 4 dims, "
                                            r"got \(8, 8\)"):
        pf.max_pool2d(pf.zeros(8, 8), 2)
    with pytest.raises(pf.DTypeError, match="float"):     # (integer max-pool works: issue 10)
        pf.avg_pool1d(pf.zeros(1, 1, 4, dtype="int64"), 2)
    with pytest.raises(ValueError, match="pool_size"):
        pf.max_pool2d(pf.zeros(1, 1, 4, 4), 0)


def test_layer_errors_name_the_layer():
    pool = pf.nn.MaxPool2D(3, name="squeeze")
    with pytest.raises(pf.ShapeError) as e:
        pool(pf.zeros(1, 2, 2, 2))
    assert "max_pool2d in layer 'squeeze'" in str(e.value) and "(1, 2, 2, 2)" in str(e.value)
    with pytest.raises(pf.ShapeError, match=r"GlobalAvgPool2D 'g' takes \(batch, channels, "
                                            r"height, width\) inputs with 4 dims, got shape "
                                            r"\(1, 2, 3\)"):
        pf.nn.GlobalAvgPool2D(name="g")(pf.zeros(1, 2, 3))
