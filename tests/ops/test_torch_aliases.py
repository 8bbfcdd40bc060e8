"""PyTorch's and NumPy's other names for ops pyfront has (torch.eq, torch.take_along_dim,
np.concatenate, torch.inference_mode, ...) are those ops, values and gradients alike."""
import numpy as np
import pytest

import pyfront as pf

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("name", ["eq", "ne", "lt", "le", "gt", "ge"])
def test_comparison_names_are_torchs(name):
    a, b = np.array([1.0, 2.0, 3.0, np.nan]), np.array([3.0, 2.0, 1.0, np.nan])
    got = getattr(pf, name)(pf.tensor(a), pf.tensor(b))
    want = getattr(torch, name)(torch.tensor(a), torch.tensor(b))
    assert got.dtype is pf.bool_
    np.testing.assert_array_equal(got.numpy(), want.numpy())
    np.testing.assert_array_equal(getattr(pf, name)(pf.tensor(a), 2.0).numpy(),
                                  getattr(torch, name)(torch.tensor(a), 2.0).numpy())


def test_value_aliases_match_torch_with_gradients():
    x = np.array([[-1.5, 0.25, 2.0], [3.0, -0.5, 1.0]])
    cases = [(lambda m, t: m.absolute(t), None), (lambda m, t: m.clamp_min(t, 0.5), None),
             (lambda m, t: m.clamp_max(t, 0.5), None),
             (lambda m, t: m.ravel(t) * m.arange(6.0, dtype=t.dtype), None)]
    for fn, _ in cases:
        px, tx = pf.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        got, want = fn(pf, px), fn(torch, tx)
        np.testing.assert_allclose(got.numpy(), want.detach().numpy())
        got.sum().backward()
        want.sum().backward()
        np.testing.assert_allclose(px.grad.numpy(), tx.grad.numpy())


def test_take_along_dim_and_concatenate():
    x = np.arange(12.0).reshape(3, 4)
    i = np.array([[0, 3], [1, 1], [2, 0]])
    np.testing.assert_array_equal(
        pf.take_along_dim(pf.tensor(x), pf.tensor(i), dim=1).numpy(),
        torch.take_along_dim(torch.tensor(x), torch.tensor(i), dim=1).numpy())
    flat = np.array([11, 0, 5])
    np.testing.assert_array_equal(pf.take_along_dim(pf.tensor(x), pf.tensor(flat)).numpy(),
                                  torch.take_along_dim(torch.tensor(x), torch.tensor(flat)).numpy())
    np.testing.assert_array_equal(pf.concatenate([pf.tensor(x), pf.tensor(x)], axis=1).numpy(),
                                  np.concatenate([x, x], axis=1))


def test_inference_mode_records_nothing_and_restores():
    w = pf.tensor([1.0, 2.0], requires_grad=True)
    with pf.inference_mode():
        assert not pf.is_grad_enabled()
        y = w * 2
    assert y.grad_fn is None if hasattr(y, "grad_fn") else not y.requires_grad
    assert pf.is_grad_enabled()
    with pf.no_grad(), pf.inference_mode(False):
        assert pf.is_grad_enabled()

    @pf.inference_mode()
    def predict(v):
        return v * 3

    assert not predict(w).requires_grad


def test_tensor_methods_of_the_aliases():
    x = pf.tensor([[-1.5, 0.25], [3.0, -0.5]])
    np.testing.assert_array_equal(x.absolute().numpy(), np.abs(x.numpy()))
    np.testing.assert_array_equal(x.clamp_min(0.0).numpy(), np.maximum(x.numpy(), 0.0))
    np.testing.assert_array_equal(x.clamp_max(0.0).numpy(), np.minimum(x.numpy(), 0.0))
    assert x.ravel().shape == (4,)
    np.testing.assert_array_equal(x.take_along_dim(pf.tensor([[1], [0]]), dim=1).numpy(),
                                  [[0.25], [3.0]])


def test_grad_switches_decorate_without_parentheses_as_torchs():
    @pf.no_grad
    def doubled(v):
        return v * 2

    @pf.inference_mode
    def tripled(v):
        return v * 3

    w = pf.tensor([1.0, 2.0], requires_grad=True)
    assert not doubled(w).requires_grad and not tripled(w).requires_grad
    assert doubled.__name__ == "doubled" and pf.is_grad_enabled()
    assert (w * 2).requires_grad


def test_new_factories_take_dtype_and_device_from_the_tensor():
    x = pf.tensor(np.ones((2, 3), np.float64))
    t = torch.ones((2, 3), dtype=torch.float64)
    for call in (lambda a: a.new_zeros(4), lambda a: a.new_ones((2, 2)),
                 lambda a: a.new_full((3,), 7.5), lambda a: a.new_tensor([1, 2]),
                 lambda a: a.new_empty(2, 3).shape, lambda a: a.new_zeros(2, dtype=None)):
        got, want = call(x), call(t)
        if isinstance(want, torch.Size):
            assert tuple(got) == tuple(want)
            continue
        assert got.dtype.name == str(want.dtype).replace("torch.", "")
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    i = pf.tensor([1, 2])
    assert i.new_tensor([1.7]).dtype is pf.int64 and i.new_zeros(2, dtype="float32").dtype is \
        pf.float32
    assert x.new_ones(2, requires_grad=True).requires_grad
