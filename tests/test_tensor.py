"""Tensor: dtype defaults, numpy interop (pf.tensor copies, as_tensor and from_numpy share),
operators with Python scalars, dtype promotion, conversions to Python values and their errors,
repr, factories."""
import numpy as np
import pytest

import pyfront as pf


def test_dtype_defaults():
    assert pf.tensor([1.0, 2.0]).dtype is pf.float32
    assert pf.tensor(np.zeros(2, np.float64)).dtype is pf.float64
    assert pf.tensor(np.zeros(2, np.float32)).dtype is pf.float32
    assert pf.tensor(np.zeros(2, np.float16)).dtype is pf.float32
    assert pf.tensor(1.5).dtype is pf.float32 and pf.tensor(1.5).shape == ()
    assert pf.tensor([1, 2]).dtype is pf.int64 and pf.tensor(3).dtype is pf.int64
    assert pf.tensor(np.zeros(2, np.int32)).dtype is pf.int32
    assert pf.tensor(np.zeros(2, np.int64)).dtype is pf.int64
    assert pf.tensor(np.zeros(2, np.uint8)).dtype is pf.int64
    assert pf.tensor(np.zeros(2, np.int16)).dtype is pf.int64
    assert pf.tensor(np.array([True, False])).dtype is pf.bool
    assert pf.tensor([True, False]).dtype is pf.bool
    assert pf.tensor([[1, 2], [3, 4]], dtype="float64").dtype is pf.float64
    assert pf.tensor(np.ones(2), dtype=pf.int32).tolist() == [1, 1]
    assert pf.tensor([]).shape == (0,) and pf.tensor([]).dtype is pf.float32
    with pytest.raises(pf.DTypeError):
        pf.tensor(np.zeros(2, np.complex64))
    with pytest.raises(pf.DTypeError):
        pf.tensor(["a", "b"])
    with pytest.raises(TypeError, match="unsupported dtype"):
        pf.tensor([1.0], dtype="float16")


def test_as_tensor_and_from_numpy_share_contiguous_arrays():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = pf.as_tensor(a)
    assert t.numpy() is a                      # the memory itself
    a[0, 0] = 42.0
    assert t.numpy()[0, 0] == 42.0
    t.numpy()[1, 2] = -1.0
    assert a[1, 2] == -1.0
    assert pf.as_tensor(t) is t
    assert np.shares_memory(np.asarray(t), a)
    for src in (np.arange(4, dtype=np.int32), np.zeros((2, 2)), np.zeros(0, np.float32),
                np.array(3.0)):
        for share in (pf.as_tensor, pf.from_numpy):
            assert np.shares_memory(share(src).numpy(), src) or src.size == 0
        assert not np.shares_memory(pf.tensor(src).numpy(), src)   # pf.tensor copies


def test_non_contiguous_read_only_and_converted_inputs_are_copied():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    for src in (a[:, ::2], a.T, np.asfortranarray(a), a[::-1]):
        t = pf.tensor(src)
        assert t.numpy().flags.c_contiguous and np.array_equal(t.numpy(), src)
        assert not np.shares_memory(t.numpy(), a)
    ro = a.copy()
    ro.flags.writeable = False
    t = pf.tensor(ro)
    assert not np.shares_memory(t.numpy(), ro) and t.numpy().flags.writeable
    converted = pf.tensor(a, dtype="float64")
    assert not np.shares_memory(converted.numpy(), a)
    # an op result owns fresh memory; a reshape is a view of its input
    assert not np.shares_memory((pf.tensor(a) + 0.0).numpy(), a)
    assert np.shares_memory(pf.as_tensor(a).reshape(4, 3).numpy(), a)


def test_operators_with_python_scalars_keep_the_dtype():
    f = pf.tensor([1.0, 2.0])
    d = pf.tensor(np.array([1.0, 2.0]))
    i = pf.tensor([1, 2])
    for expr, dtype, value in [(f + 1, pf.float32, [2, 3]), (1 - f, pf.float32, [0, -1]),
                               (f * 2.5, pf.float32, [2.5, 5]), (f / 2, pf.float32, [0.5, 1]),
                               (2 / f, pf.float32, [2, 1]), (f ** 2, pf.float32, [1, 4]),
                               (d * 3, pf.float64, [3, 6]), (-d, pf.float64, [-1, -2]),
                               (i + 1, pf.int64, [2, 3]), (i * 3, pf.int64, [3, 6]),
                               (i - True, pf.int64, [0, 1]), (i + 0.5, pf.float32, [1.5, 2.5]),
                               (i / 2, pf.float32, [0.5, 1]), (i > 1, pf.bool, [False, True]),
                               (f >= 2, pf.bool, [False, True]), (-i, pf.int64, [-1, -2])]:
        assert expr.dtype is dtype and expr.tolist() == value


def test_dtype_promotion_between_tensors():
    f32, f64 = pf.tensor([1.0]), pf.tensor(np.array([1.0]))
    i32, i64 = pf.tensor(np.array([1], np.int32)), pf.tensor([1])
    assert (f32 + f64).dtype is pf.float64 and (f64 + f32).dtype is pf.float64
    assert (i32 + i64).dtype is pf.int64 and (i64 * i32).dtype is pf.int64
    assert (i64 + f32).dtype is pf.float32 and (f32 - i32).dtype is pf.float32
    assert (i32 + f64).dtype is pf.float64
    assert (f32 + np.array([1.0])).dtype is pf.float64        # a float64 array is float64
    assert (f32 + np.array([1.0], np.float32)).dtype is pf.float32


def test_conversions_to_python_values():
    assert pf.tensor(2.5).item() == 2.5 and isinstance(pf.tensor(2.5).item(), float)
    assert pf.tensor([[7]]).item() == 7 and isinstance(pf.tensor([7]).item(), int)
    assert float(pf.tensor([1.5])) == 1.5 and int(pf.tensor(3.9)) == 3
    assert bool(pf.tensor([1.0])) and not bool(pf.tensor(0))
    assert [10, 20, 30][pf.tensor(1)] == 20                     # __index__ for integer tensors
    assert len(pf.ones(4, 2)) == 4
    with pytest.raises(ValueError, match=r"one element.*\(2,\)"):
        pf.tensor([1.0, 2.0]).item()
    with pytest.raises(ValueError, match="one element"):
        float(pf.ones(2, 2))
    with pytest.raises(ValueError, match="ambiguous"):
        bool(pf.ones(3))
    with pytest.raises(ValueError):
        int(pf.zeros(0))
    with pytest.raises(TypeError, match="integer tensors"):
        [1, 2][pf.tensor(1.0)]
    with pytest.raises(TypeError, match="0-d"):
        len(pf.tensor(1.0))


def test_repr():
    assert repr(pf.tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(pf.tensor([1, 2])) == "tensor([1, 2], dtype=int64)"
    assert repr(pf.tensor(np.array([0.5]))) == "tensor([0.5], dtype=float64)"
    assert repr(pf.tensor([1.0], requires_grad=True)) == "tensor([1.], requires_grad=True)"
    assert repr(pf.tensor(2.0)) == "tensor(2.)"
    assert "\n" in repr(pf.ones(2, 2))


def test_properties_detach_clone_and_in_place_helpers():
    t = pf.tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert t.shape == (2, 3) and t.ndim == 2 and t.size == 6 and t.device == "cpu"
    assert t.is_leaf and not (t * 2).is_leaf
    d = t.detach()
    assert not d.requires_grad and np.shares_memory(d.numpy(), t.numpy())
    c = t.clone()
    assert not np.shares_memory(c.numpy(), t.numpy()) and c.tolist() == t.tolist()
    c.zero_()
    assert c.tolist() == [[0.0] * 3] * 2 and t.numpy().sum() == 15.0
    c.copy_(np.ones((2, 3)))
    assert c.numpy().sum() == 6.0
    with pytest.raises(pf.ShapeError, match="copy_"):
        c.copy_(np.ones(3))
    with pytest.raises(pf.DTypeError, match="float"):
        pf.tensor([1, 2], requires_grad=True)
    with pytest.raises(pf.DTypeError):
        pf.tensor([1, 2]).requires_grad_()
    assert pf.tensor([1.0]).requires_grad_().requires_grad
    assert t.to("float32").dtype is pf.float32 and t.astype(pf.int64).dtype is pf.int64


def test_clone_is_a_differentiable_copy_and_detach_cuts_the_graph():
    x = pf.tensor([1.0, -2.0, 3.0], requires_grad=True)
    c = x.clone()
    assert c.requires_grad and not c.is_leaf and c.tolist() == [1.0, -2.0, 3.0]
    assert not np.shares_memory(c.numpy(), x.numpy())
    c.numpy()[0] = 7.0
    assert x.tolist() == [1.0, -2.0, 3.0]
    (g,) = pf.grad((x.clone() * 2.0).sum(), [x])
    assert g.tolist() == [2.0, 2.0, 2.0]
    (g,) = pf.grad((pf.clone(x) * x).sum(), [x])         # both paths reach x
    assert g.tolist() == [2.0, -4.0, 6.0]
    assert not (x.detach() * 2.0).requires_grad
    n = pf.tensor(np.arange(4, dtype=np.int32)).clone()   # no gradient, any dtype, 0-d
    assert n.dtype is pf.int32 and n.tolist() == [0, 1, 2, 3] and not n.requires_grad
    assert pf.tensor(5.0).clone().item() == 5.0 and pf.zeros(0, 3).clone().shape == (0, 3)


def test_clone_of_a_symbol_is_a_copy_in_compiled_graphs_and_their_gradients():
    from pyfront.graph.autodiff import gradients

    g = pf.Graph()
    with g:
        x = pf.placeholder("x", (None, 3))
        c = x.clone()
        (dx,) = gradients(g, (c * x.clone()).sum(), [x])
    assert c.shape == (None, 3)
    xb = np.arange(6, dtype=np.float32).reshape(2, 3)
    out = g.compile(outputs=[c, dx]).run({"x": xb})
    assert out[c.name].tolist() == xb.tolist() and out[dx.name].tolist() == (2 * xb).tolist()


def test_factories():
    assert pf.zeros(2, 3).tolist() == [[0.0] * 3] * 2 and pf.zeros((2, 3)).shape == (2, 3)
    assert pf.ones(3, dtype="int32").dtype is pf.int32
    assert pf.full((2,), 7.0).tolist() == [7.0, 7.0]
    assert pf.arange(5).tolist() == list(range(5)) and pf.arange(5).dtype is pf.int64
    assert pf.arange(1, 2, 0.5).tolist() == [1.0, 1.5] and pf.arange(1, 2, 0.5).dtype is pf.float32
    assert pf.randn(3, 4, seed=1).tolist() == pf.randn(3, 4, seed=1).tolist()
    r = pf.rand(1000, seed=2).numpy()
    assert r.dtype == np.float32 and 0 <= r.min() and r.max() < 1
    assert pf.zeros_like(pf.tensor([1, 2])).dtype is pf.int64
    assert pf.ones_like(pf.ones(2, 2)).numpy().sum() == 4
    assert pf.randn(2, requires_grad=True).requires_grad


def test_tensor_copies_its_data_as_torch_tensor_does_and_as_tensor_shares():
    arr = np.zeros(3, np.float32)
    t = pf.tensor(arr)
    arr[0] = 1.0
    t[1] = 7.0
    assert t.tolist() == [0.0, 7.0, 0.0] and arr.tolist() == [1.0, 0.0, 0.0]
    assert pf.tensor(t).numpy() is not t.numpy()          # a tensor is copied too
    shared = pf.as_tensor(arr)
    arr[2] = 5.0
    assert shared.tolist() == [1.0, 0.0, 5.0]
    assert pf.from_numpy(arr).numpy() is arr
    # a NumPy scalar keeps its dtype, as in torch.tensor
    assert pf.tensor(np.float64(0.3)).dtype is pf.float64
    assert pf.tensor(np.int32(3)).dtype is pf.int32


def test_fill_zero_and_copy_while_recording_send_gradients_as_pytorch(torch):
    def both(fn):
        x, tx = pf.tensor([1.0, 2.0], requires_grad=True), torch.tensor([1.0, 2.0],
                                                                       requires_grad=True)
        w, tw = pf.tensor([3.0, 4.0], requires_grad=True), torch.tensor([3.0, 4.0],
                                                                       requires_grad=True)
        fn(x, w, pf).backward()
        fn(tx, tw, torch).backward()
        for ours, ref in ((x, tx), (w, tw)):
            expected = None if ref.grad is None else ref.grad.numpy()
            got = None if ours.grad is None else ours.grad.numpy()
            if expected is None:
                assert got is None or not got.any()
            else:
                np.testing.assert_allclose(got, expected)

    def zero(x, w, m):
        y = x * 1
        y.zero_()
        return (y + 1).sum()

    def fill(x, w, m):
        y = x * 1
        y.fill_(3.0)
        return (y * y).sum()

    def copy_values(x, w, m):
        y = x * 1
        y.copy_(x * 5)
        return (y * w).sum()

    def copy_leaf(x, w, m):
        y = x * 1
        y.copy_(w)
        return (y * y).sum()

    for fn in (zero, fill, copy_values, copy_leaf):
        both(fn)
    # a 0-d tensor filled in receives the sum of the gradients
    x, v = pf.tensor([1.0, 2.0], requires_grad=True), pf.tensor(2.0, requires_grad=True)
    y = x * 1
    y.fill_(v)
    (y * y).sum().backward()
    assert v.grad.item() == 8.0
    # without gradients the memory is written; an integer target casts a float source
    i = pf.tensor([1, 2])
    i.copy_(pf.tensor([1.7, -2.2]))
    assert i.tolist() == [1, -2] and i.dtype is pf.int64
    with pytest.raises(pf.PyfrontError, match="leaf tensor that requires grad"):
        pf.tensor([1.0], requires_grad=True).fill_(0.0)


def test_augmented_assignment_updates_in_place_as_in_pytorch():
    a = pf.tensor([1.0, 2.0])
    b = a
    b += 1
    b *= 2
    assert a is b and a.tolist() == [4.0, 6.0]
    w = pf.tensor([1.0, 2.0], requires_grad=True)
    (w * w).sum().backward()
    with pf.no_grad():
        w -= 0.1 * w.grad                 # a hand-written SGD step keeps the same leaf
    assert w.is_leaf and w.requires_grad and np.allclose(w.numpy(), [0.8, 1.6])
    with pytest.raises(pf.PyfrontError, match="leaf tensor that requires grad"):
        w += 1
    i = pf.tensor([1, 2])
    i += 3
    i //= 2
    i %= 2
    assert i.tolist() == [0, 0] and i.dtype is pf.int64
    with pytest.raises(pf.DTypeError, match="cannot be written into a int64"):
        i += 1.5
    # recorded: the gradient flows through the in-place add
    x = pf.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y += x
    y.sum().backward()
    assert x.grad.tolist() == [3.0, 3.0]
