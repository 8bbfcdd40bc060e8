"""The bool dtype and the one promotion rule (dtypes.result_type, PyTorch's): comparisons and
float classification give bool, logical ops and any/all, bool masks in where, and the promotion
table against PyTorch's for every pair of dtypes and Python scalars, eagerly and compiled."""
import itertools

import numpy as np
import pytest

import pyfront as pf
from pyfront.dtypes import as_dtype, promote_types, result_type

DTYPES = ["bool", "int32", "int64", "float32", "float64"]


def _sample(dtype):
    return pf.tensor(np.array([1, 0, 2], dtype=dtype))


@pytest.mark.parametrize("a,b", list(itertools.product(DTYPES, DTYPES)))
def test_tensor_promotion_matches_torch(a, b, torch):
    want = torch.promote_types(getattr(torch, a), getattr(torch, b))
    assert promote_types(a, b).name == str(want).replace("torch.", "")
    if "bool" not in (a, b):      # (bool + bool is or, bool - bool is refused)
        got = _sample(a) + _sample(b)
        assert got.dtype.name == str(want).replace("torch.", "")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scalar", [True, 2, 2.5])
def test_python_scalars_only_lift_the_category_as_in_torch(dtype, scalar, torch):
    t = torch.tensor([1, 0, 2], dtype=getattr(torch, dtype))
    want = str((t * scalar).dtype).replace("torch.", "")
    assert result_type(as_dtype(dtype), scalar).name == want
    assert (_sample(dtype) * scalar).dtype.name == want
    assert (scalar * _sample(dtype)).dtype.name == want


def test_comparisons_and_classification_give_bool(torch):
    x = pf.tensor([1.0, np.nan, np.inf, -np.inf, -2.0])
    assert (x > 0).dtype is pf.bool and (x > 0).tolist() == [True, False, True, False, False]
    assert pf.isnan(x).tolist() == [False, True, False, False, False]
    assert pf.isinf(x).tolist() == [False, False, True, True, False]
    assert pf.isfinite(x).tolist() == [True, False, False, False, True]
    i = pf.tensor([1, 2])
    assert pf.isnan(i).tolist() == [False, False] and pf.isfinite(i).tolist() == [True, True]
    assert pf.isnan(i).dtype is pf.bool and pf.isinf(i).dtype is pf.bool
    assert not (x > 0).requires_grad


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_bitwise_operators_on_integers_are_bitwise_as_in_pytorch(dtype, torch):
    a = np.array([5, 6, 0, -3, 2**30, -(2**30)], dtype)
    b = np.array([3, 3, -1, 7, 2**30 + 1, 12345], dtype)
    ta, tb = pf.tensor(a), pf.tensor(b)
    xa, xb = torch.from_numpy(a), torch.from_numpy(b)
    for ours, ref in ((ta & tb, xa & xb), (ta | tb, xa | xb), (ta ^ tb, xa ^ xb), (~ta, ~xa),
                      (ta & 6, xa & 6), (3 | ta, 3 | xa), (pf.bitwise_xor(ta, tb), xa ^ xb),
                      (pf.bitwise_not(ta), torch.bitwise_not(xa))):
        assert ours.dtype.name == dtype
        np.testing.assert_array_equal(ours.numpy(), ref.numpy())
    # the same ops compiled (integer ops are never fused into float programs)
    f = pf.jit(lambda x, y: (x & y) | (~x ^ y))
    np.testing.assert_array_equal(f(ta, tb).numpy(), ((xa & xb) | (~xa ^ xb)).numpy())
    # int32 with int64 promotes, bool stays logical, floats are refused by name
    assert (pf.tensor(a.astype("int32")) & pf.tensor(b.astype("int64"))).dtype is pf.int64
    assert (~pf.tensor([True, False])).tolist() == [False, True]
    with pytest.raises(pf.DTypeError, match="bitwise_and takes integer or bool"):
        pf.tensor([1.0]) & pf.tensor([1.0])
    with pytest.raises(pf.DTypeError, match="bitwise_not"):
        ~pf.tensor([1.0])


def test_logical_ops_any_all_and_operators(rng, torch):
    a = rng.uniform(size=(3, 4)) > 0.5
    b = rng.uniform(size=(4,)) > 0.5
    ta, tb = pf.tensor(a), pf.tensor(b)
    for fn, ref in ((pf.logical_and, np.logical_and), (pf.logical_or, np.logical_or),
                    (pf.logical_xor, np.logical_xor)):
        got = fn(ta, tb)
        assert got.dtype is pf.bool and np.array_equal(got.numpy(), ref(a, b))
    assert np.array_equal((ta & tb).numpy(), a & b) and np.array_equal((ta | tb).numpy(), a | b)
    assert np.array_equal((ta ^ tb).numpy(), a ^ b) and np.array_equal((~ta).numpy(), ~a)
    assert np.array_equal(pf.logical_not(ta).numpy(), ~a)
    # numbers are true where nonzero
    assert pf.logical_and(pf.tensor([0.0, 2.0, np.nan]), 1).tolist() == [False, True, True]
    # bool arithmetic as PyTorch: + is or, * is and, - refused; with numbers, integers
    assert (ta + tb).dtype is pf.bool and np.array_equal((ta + tb).numpy(), a | b)
    assert (ta * tb).dtype is pf.bool and np.array_equal((ta * tb).numpy(), a & b)
    with pytest.raises(pf.DTypeError, match="subtracting bool"):
        ta - tb
    assert (ta + 1).dtype is pf.int64 and (ta * 0.5).dtype is pf.float32
    for axis in (None, 0, 1, -1):
        for fn, ref in ((pf.any, np.any), (pf.all, np.all)):
            got = fn(ta, axis)
            assert got.dtype is pf.bool and np.array_equal(got.numpy(), ref(a, axis=axis))
    empty = pf.zeros(0, 3)
    assert pf.any(empty).item() is False and pf.all(empty).item() is True
    assert pf.any(empty, 0).tolist() == [False] * 3
    assert pf.max(ta, axis=1).dtype is pf.bool
    assert np.array_equal(pf.max(ta, axis=1).numpy(), a.max(1))
    assert (ta.sum()).dtype is pf.int64 and ta.sum().item() == a.sum()


def test_bool_masks_select_in_where_eager_and_compiled(rng):
    x = rng.standard_normal((4, 5)).astype(np.float32)

    def fn(t):
        mask = pf.logical_and(t > -0.5, pf.isfinite(t))
        return pf.where(mask, t * 2.0, 0.0) + pf.cast(t > 0, "float32")

    want = np.where((x > -0.5) & np.isfinite(x), x * 2, 0) + (x > 0)
    np.testing.assert_allclose(fn(pf.tensor(x)).numpy(), want, rtol=1e-6)
    np.testing.assert_allclose(pf.jit(fn)(pf.tensor(x)).numpy(), want, rtol=1e-6)
    t = pf.tensor(x, requires_grad=True)
    (g,) = pf.grad(fn(t).sum(), [t])
    np.testing.assert_array_equal(g.numpy(), np.where(x > -0.5, 2.0, 0.0))


def test_bool_tensors_cast_copy_and_concat():
    m = pf.tensor([True, False, True])
    assert pf.cast(pf.tensor([0.0, -0.5, np.nan]), "bool").tolist() == [False, True, True]
    assert pf.cast(m, "float64").tolist() == [1.0, 0.0, 1.0]
    assert pf.concat([m, m[::-1]]).tolist() == [True, False, True, True, False, True]
    assert m.T.tolist() == [True, False, True] and m.bool().dtype is pf.bool
    assert pf.full((2,), True, dtype=bool).tolist() == [True, True]


def test_integer_arithmetic_keeps_integer_dtypes():
    i = pf.tensor(np.array([7, -3], np.int32))
    assert (i * 2).dtype is pf.int32 and (i + i).dtype is pf.int32
    assert (i // 2).dtype is pf.int32 and (i % 2).dtype is pf.int32
    assert (i ** 2).dtype is pf.int32 and (i ** 2).tolist() == [49, 9]
    assert (i / 2).dtype is pf.float32
    assert pf.tensor([1, 2]).sum().dtype is pf.int64


def test_reductions_refuse_bool_where_pytorch_does():
    with pytest.raises(pf.DTypeError, match="mean needs a float"):
        pf.mean(pf.tensor([True]))


def test_ops_keep_integer_and_bool_dtypes_where_pytorch_does(torch):
    i = np.array([-3, 0, 5, -7], np.int64)
    ti, xi = pf.tensor(i), torch.from_numpy(i)
    for name in ("sign", "floor", "ceil", "round", "trunc"):
        ours, ref = getattr(pf, name)(ti), getattr(torch, name)(xi)
        assert ours.dtype is pf.int64, name
        np.testing.assert_array_equal(ours.numpy(), ref.numpy())
    assert pf.floor(ti).numpy() is not ti.numpy()          # a new tensor, not an alias
    flags = np.array([True, False])
    assert pf.sign(pf.tensor(flags)).dtype is pf.bool
    np.testing.assert_array_equal(pf.sign(pf.tensor(flags)).numpy(),
                                  torch.sign(torch.from_numpy(flags)).numpy())
    b = np.ones((3, 3), bool)
    for name in ("tril", "triu"):
        ours, ref = getattr(pf, name)(pf.tensor(b), 1), getattr(torch, name)(torch.from_numpy(b), 1)
        assert ours.dtype is pf.bool
        np.testing.assert_array_equal(ours.numpy(), ref.numpy())
    mask = np.array([True, False, True, False])
    for x, value in ((i, 1.7), (i, 2), (mask, 0), (i.astype(np.float32), 2)):
        ours = pf.masked_fill(pf.tensor(x), pf.tensor(mask), value)
        ref = torch.from_numpy(x).masked_fill(torch.from_numpy(mask), value)
        assert ours.dtype.name == str(ref.dtype).replace("torch.", "")
        np.testing.assert_array_equal(ours.numpy(), ref.numpy())
    for value in (3, True, 1.5):
        ours, ref = pf.full((2, 2), value), torch.full((2, 2), value)
        assert ours.dtype.name == str(ref.dtype).replace("torch.", "")
        np.testing.assert_array_equal(ours.numpy(), ref.numpy())
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    ours = pf.index_select(pf.tensor(x), 0, pf.tensor(1))
    ref = torch.index_select(torch.from_numpy(x), 0, torch.tensor(1))
    assert ours.shape == tuple(ref.shape)
    np.testing.assert_array_equal(ours.numpy(), ref.numpy())
