"""Shape and layout ops: reshape, flatten, squeeze, expand_dims, permute/transpose, indexing
(ints, slices with negative steps, None, Ellipsis, integer arrays, masks), take, concat, stack,
split, broadcast_to and cast: against numpy, finite differences and PyTorch."""
import numpy as np
import pytest

import pyfront as pf
from pyfront.testing import check_grad


def test_reshape_is_a_view_and_follows_numpy(rng):
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    t = pf.from_numpy(x)
    for shape in [(6, 4), (-1,), (4, -1, 2), (24, 1), (1, 2, 1, 12), (2, 3, 4)]:
        y = pf.reshape(t, shape)
        assert np.array_equal(y.numpy(), x.reshape(shape))
        assert np.shares_memory(y.numpy(), x)
    assert t.reshape(3, 8).shape == (3, 8)
    assert pf.reshape(pf.zeros(0, 3), (3, 0, 5)).shape == (3, 0, 5)
    assert pf.reshape(pf.tensor(5.0), (1, 1)).shape == (1, 1)
    with pytest.raises(pf.ShapeError, match=r"reshape.*\(2, 3, 4\).*\(5, 5\)"):
        pf.reshape(t, (5, 5))
    with pytest.raises(pf.ShapeError, match="only one"):
        pf.reshape(t, (-1, -1))
    with pytest.raises(pf.ShapeError, match="cannot reshape"):
        pf.reshape(t, (-1, 5))


def test_flatten_squeeze_expand_dims(rng):
    x = rng.standard_normal((2, 1, 3, 1)).astype(np.float32)
    t = pf.tensor(x)
    assert pf.flatten(t).shape == (2, 3) and pf.flatten(t, 0).shape == (6,)
    assert pf.flatten(t, 2).shape == (2, 1, 3)
    assert pf.squeeze(t).shape == (2, 3) and pf.squeeze(t, 1).shape == (2, 3, 1)
    assert pf.squeeze(t, (1, -1)).shape == (2, 3)
    assert pf.expand_dims(t, 0).shape == (1, 2, 1, 3, 1)
    assert pf.expand_dims(t, -1).shape == (2, 1, 3, 1, 1)
    assert t.unsqueeze(2).shape == (2, 1, 1, 3, 1)
    assert np.array_equal(pf.squeeze(t).numpy(), np.squeeze(x))
    # PyTorch's rule: a named dim that is not 1 stays
    assert pf.squeeze(t, 0).shape == (2, 1, 3, 1) and pf.squeeze(t, (0, 1)).shape == (2, 3, 1)
    check_grad(lambda a: pf.expand_dims(pf.squeeze(pf.flatten(a, 1)), 0) * 2.0,
               rng.standard_normal((2, 1, 3)))


def test_permute_and_transpose(rng, torch):
    x = rng.standard_normal((2, 3, 4, 5))
    t = pf.tensor(x)
    for perm in [(0, 1, 2, 3), (3, 2, 1, 0), (1, 0, 3, 2), (2, 0, 3, 1), (-1, 0, 1, 2)]:
        assert np.array_equal(pf.permute(t, perm).numpy(), np.transpose(x, [p % 4 for p in perm]))
    assert np.array_equal(pf.transpose(t).numpy(), np.swapaxes(x, -1, -2))
    assert np.array_equal(pf.transpose(t, 0, 2).numpy(), np.swapaxes(x, 0, 2))
    assert np.array_equal(pf.tensor(x[0, 0]).T.numpy(), x[0, 0].T)
    assert pf.transpose(pf.ones(3)).shape == (3,)
    with pytest.raises(pf.ShapeError, match="permut"):
        pf.permute(t, (0, 1, 2))
    check_grad(lambda a: pf.permute(a, (2, 0, 1)), rng.standard_normal((2, 3, 2)))
    a = pf.tensor(x.astype(np.float32), requires_grad=True)
    w = rng.standard_normal((5, 2, 4, 3)).astype(np.float32)
    (pf.permute(a, (3, 0, 2, 1)) * pf.tensor(w)).sum().backward()
    r = torch.tensor(x.astype(np.float32), requires_grad=True)
    (r.permute(3, 0, 2, 1) * torch.tensor(w)).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), r.grad.numpy())


KEYS = [1, -1, slice(None, None, -1), slice(3, 0, -2), (Ellipsis, 2), (None, 1),
        (1, None, slice(None), None), (slice(None), [0, 2]), [2, 0, 2], np.array([-1, 0]),
        ([0, 1], 1), (1, [0, 3]), (None, [0, 1]), (Ellipsis, [4, 0]),
        (slice(None), None, [1, 2]), (0, 0, 0), slice(10, 20), slice(-100, 100, 3),
        (np.int64(1), slice(None, None, -1)), (slice(None), slice(None), slice(None, None, -3)),
        [[0, 1], [1, 2]], np.array([], np.int64), np.array([True, False, True]),
        (slice(1, None), np.array([3, 1], np.int32)), (Ellipsis,), (slice(None, 2), Ellipsis, -2),
        (-2, slice(None, None, -1), slice(4, None, -2))]


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_getitem_matches_numpy(dtype, rng):
    x = (rng.standard_normal((3, 4, 5)) * 10).astype(dtype)
    t = pf.tensor(x)
    for key in KEYS:
        got = t[key]
        want = np.asarray(x[key])
        assert got.shape == want.shape and got.dtype.np == dtype, key
        assert np.array_equal(got.numpy(), want), key


def test_getitem_gradients(rng, torch):
    x = rng.standard_normal((3, 4, 5))
    for key in KEYS:
        if isinstance(key, np.ndarray) and key.dtype == bool:
            continue
        check_grad(lambda a: a[key] * 1.5, x)
    # repeated integer indices add up, as in PyTorch
    for key in [([2, 0, 2, 2],), (slice(None), [1, 1, 3]),
                (slice(None, None, -2), None, [0, 3, 0])]:
        a = pf.tensor(x.astype(np.float32), requires_grad=True)
        y = a[key]
        w = rng.standard_normal(y.shape).astype(np.float32)
        (y * pf.tensor(w)).sum().backward()
        r = torch.tensor(x.astype(np.float32), requires_grad=True)
        tkey = tuple(torch.tensor(k) if isinstance(k, list) else k for k in key)
        if key[0] == slice(None, None, -2):    # torch has no negative steps: flip first
            ry = r.flip(0)[::2][:, None][:, :, [0, 3, 0]]
        else:
            ry = r[tkey]
        (ry * torch.tensor(w)).sum().backward()
        np.testing.assert_allclose(a.grad.numpy(), r.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_getitem_errors():
    t = pf.ones(3, 4)
    with pytest.raises(pf.IndexOutOfRange, match="index 3 is out of range for dim 0 of size 3"):
        t[3]
    with pytest.raises(pf.IndexOutOfRange):
        t[:, -5]
    with pytest.raises(IndexError, match="too many indices"):
        t[0, 0, 0]
    with pytest.raises(IndexError, match="single ellipsis"):
        t[..., ...]
    with pytest.raises(ValueError, match="step"):
        t[::0]
    with pytest.raises(pf.IndexOutOfRange, match="out of range"):
        t[[0, 3]]
    with pytest.raises(IndexError, match="integers"):
        t[[0.5]]
    assert t[[0, 1], [0, 1]].shape == (2,)      # several arrays: tests/ops/test_shape_indexing.py
    with pytest.raises(pf.IndexOutOfRange, match="mask"):
        t[np.array([True, False])]


def test_take(rng, torch):
    x = rng.standard_normal((3, 4, 5))
    t = pf.tensor(x)
    for axis in (0, 1, 2, -1):
        idx = rng.integers(-x.shape[axis], x.shape[axis], (2, 3))
        assert np.array_equal(pf.take(t, idx, axis).numpy(), np.take(x, idx, axis))
        assert np.array_equal(t.take(pf.tensor(idx.astype(np.int32)), axis).numpy(),
                              np.take(x, idx, axis))
        check_grad(lambda a: pf.take(a, idx, axis), x)
    assert pf.take(t, [], 1).shape == (3, 0, 5)
    # no axis: the flattened tensor, as np.take and torch.take
    flat = rng.integers(-60, 60, (2, 4))
    assert np.array_equal(pf.take(t, flat).numpy(), np.take(x, flat))
    assert np.array_equal(t.take(pf.tensor(flat % 60)).numpy(),
                          torch.take(torch.tensor(x), torch.tensor(flat % 60)).numpy())
    with pytest.raises(pf.IndexOutOfRange, match="index 7 is out of range for axis 1 of size 4"):
        pf.take(t, [0, 7], 1)
    with pytest.raises(pf.DTypeError, match="int32 or int64"):
        pf.take(t, pf.tensor([0.0, 1.0]), 0)
    # an embedding lookup: the gradient scatters and adds repeated rows, as torch's does
    table = rng.standard_normal((6, 3)).astype(np.float32)
    ids = np.array([[1, 5, 1], [0, 1, 2]])
    a = pf.tensor(table, requires_grad=True)
    (pf.take(a, ids, 0) ** 2.0).sum().backward()
    r = torch.tensor(table, requires_grad=True)
    (torch.nn.functional.embedding(torch.tensor(ids), r) ** 2).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), r.grad.numpy(), rtol=1e-6)


def test_concat_stack_split(rng, torch):
    parts = [rng.standard_normal((2, n, 3)) for n in (1, 4, 0, 2)]
    for axis in (1, -2):
        y = pf.concat([pf.tensor(p) for p in parts], axis)
        assert np.array_equal(y.numpy(), np.concatenate(parts, axis))
    many = [rng.standard_normal((1, 2)) for _ in range(37)]          # more than 16 inputs
    assert np.array_equal(pf.concat([pf.tensor(m) for m in many]).numpy(), np.concatenate(many))
    same = [rng.standard_normal((2, 3)) for _ in range(3)]
    for axis in (0, 1, 2, -1):
        assert np.array_equal(pf.stack([pf.tensor(s) for s in same], axis).numpy(),
                              np.stack(same, axis))
    check_grad(lambda a, b, c: pf.concat([a, b, c], 1), *parts[:2], parts[3])
    check_grad(lambda a, b: pf.stack([a, b, a], 1), same[0], same[1])
    x = rng.standard_normal((4, 6))
    pieces = pf.split(pf.tensor(x), [1, 3, 2], axis=1)
    for got, want in zip(pieces, np.split(x, [1, 4], axis=1)):
        assert np.array_equal(got.numpy(), want)
    assert [p.shape for p in pf.split(pf.tensor(x), 2, 0)] == [(2, 6), (2, 6)]
    check_grad(lambda a: pf.concat(pf.split(a, [4, 2], 1)[::-1], 1), x)
    with pytest.raises(pf.ShapeError, match="split"):
        pf.split(pf.tensor(x), [1, 2], 1)
    # PyTorch's split: an int is the size of each piece, the last one smaller
    assert [p.shape for p in pf.split(pf.tensor(x), 4, 1)] == [(4, 4), (4, 2)]
    with pytest.raises(pf.ShapeError, match=r"concat.*dim 0"):
        pf.concat([pf.ones(2, 3), pf.ones(3, 3)], 1)
    # gradient against torch
    ts = [pf.tensor(p.astype(np.float32), requires_grad=True) for p in parts]
    w = rng.standard_normal((2, 7, 3)).astype(np.float32)
    (pf.concat(ts, 1) * pf.tensor(w)).sum().backward()
    rs = [torch.tensor(p.astype(np.float32), requires_grad=True) for p in parts]
    (torch.cat(rs, 1) * torch.tensor(w)).sum().backward()
    for a, r in zip(ts, rs):
        np.testing.assert_array_equal(a.grad.numpy(), r.grad.numpy())


def test_broadcast_to(rng, torch):
    x = rng.standard_normal((3, 1))
    for shape in [(3, 4), (2, 3, 4), (3, 1), (0, 3, 5)]:
        assert np.array_equal(pf.broadcast_to(pf.tensor(x), shape).numpy(),
                              np.broadcast_to(x, shape))
    check_grad(lambda a: pf.broadcast_to(a, (2, 3, 4)), x)
    with pytest.raises(pf.ShapeError, match=r"broadcast_to.*\(3, 1\).*\(2, 4\)"):
        pf.broadcast_to(pf.tensor(x), (2, 4))


def test_cast(rng):
    x = np.array([[-2.7, -0.5, 0.0], [0.5, 1.9, 1e6]])
    for src in (np.float32, np.float64):
        for dst in (np.float32, np.float64, np.int32, np.int64):
            y = pf.cast(pf.tensor(x.astype(src)), dst)
            assert y.dtype.np == dst and np.array_equal(y.numpy(), x.astype(src).astype(dst))
    ints = np.array([-3, 0, 2**31 - 1])
    assert pf.tensor(ints).astype("float64").tolist() == ints.astype(np.float64).tolist()
    assert pf.tensor(ints).astype(pf.int32).tolist() == ints.tolist()
    assert pf.cast(pf.zeros(0, 2), "int64").shape == (0, 2)
    a = pf.tensor(np.array([0.25, -1.5]), requires_grad=True)
    pf.cast(a, "float32").backward(pf.tensor([2.0, -3.0]))
    assert a.grad.dtype is pf.float64 and a.grad.tolist() == [2.0, -3.0]
    assert not pf.cast(pf.tensor([1.5], requires_grad=True), "int64").requires_grad
    for bad in (np.nan, np.inf, 3e9):
        with pytest.raises(pf.NumericError, match="cannot convert"):
            pf.cast(pf.tensor([1.0, bad]), "int32")
    with pytest.raises(TypeError, match="unsupported dtype"):
        pf.cast(pf.ones(2), "complex64")
