"""Gaps an acceptance probe of issue 10 found (PyTorch's names, semantics and gradients, eager
against pf.jit): each test holds pyfront to PyTorch there."""
import warnings

import numpy as np
import pytest

import pyfront as pf

torch = pytest.importorskip("torch")
F = pytest.importorskip("torch.nn.functional")


def _jit(fn, *args):
    """fn compiled with pf.jit on args; a fallback to eager (a warning) fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return pf.jit(fn)(*args)


def _check(pf_fn, torch_fn, *arrays, grad=True):
    """pf_fn equals torch_fn in values, dtype and (float64) gradients, eagerly and compiled."""
    wants_grad = [grad and a.dtype.kind == "f" for a in arrays]
    ours = [pf.tensor(a, requires_grad=g) for a, g in zip(arrays, wants_grad)]
    ref = [torch.tensor(a, requires_grad=g) for a, g in zip(arrays, wants_grad)]
    y, ty = pf_fn(*ours), torch_fn(*ref)
    assert tuple(y.shape) == tuple(ty.shape)
    assert y.dtype.name == str(ty.dtype).replace("torch.", "")
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_jit(pf_fn, *[pf.tensor(a) for a in arrays]).numpy(),
                               y.numpy(), rtol=1e-12, atol=1e-12)
    if any(wants_grad):
        w = np.random.default_rng(0).standard_normal(tuple(y.shape))
        (y * pf.tensor(w)).sum().backward()
        (ty * torch.tensor(w)).sum().backward()
        for t, tt, g in zip(ours, ref, wants_grad):
            if g:
                np.testing.assert_allclose(t.grad.numpy(), tt.grad.numpy(), rtol=1e-12,
                                           atol=1e-12)


# ---- indexing: several integer arrays that are graph values (pf.jit), negative indices ----

_X = np.arange(240.0).reshape(2, 3, 4, 5, 2)
_I = np.array([0, 1, 1])
_J = np.array([1, -1, 0])


@pytest.mark.parametrize("key", [
    lambda a, i, j: a[i, j],
    lambda a, i, j: a[i[:, None] % 2, j],          # broadcast against each other
    lambda a, i, j: a[:, i, :, j],                 # separated: their dims go first
    lambda a, i, j: a[1:, i, ::2, j],
    lambda a, i, j: a[..., i, j % 2],
    lambda a, i, j: a[None, i, :, j],
    lambda a, i, j: a[i, None, j],
    lambda a, i, j: a[0, :, i, j],                 # an integer selects first (PyTorch's rule)
    lambda a, i, j: a[i, 1, :, j],
    lambda a, i, j: a[i, [1, 2, 0]],
    lambda a, i, j: a[:, :, j],                    # one array, negative values
], ids=["ij", "broadcast", "separated", "slices", "ellipsis", "newaxis", "newaxis_between",
        "int_first", "int_between", "array_and_list", "one_array_negative"])
def test_several_index_arrays_as_graph_values_equal_pytorch(key):
    _check(key, key, _X, _I, _J)


def test_index_arrays_as_graph_values_refuse_an_out_of_range_index():
    f = pf.jit(lambda a, i, j: a[i, j])
    x = pf.tensor(np.zeros((3, 4)))
    with pytest.raises(pf.IndexOutOfRange):
        f(x, pf.tensor(np.array([0, 3])), pf.tensor(np.array([0, 1])))
    with pytest.raises(pf.IndexOutOfRange):        # below -n: not wrapped onto an element
        f(x, pf.tensor(np.array([0, -4])), pf.tensor(np.array([0, 1])))
    with pf.Graph():                               # a declarative graph builds it too
        a = pf.placeholder("a", (4, 5), "float32")
        i = pf.placeholder("i", (3,), "int64")
        assert tuple(a[i, i].shape) == (3,)


def test_setitem_with_index_arrays_as_graph_values_keeps_gradients(rng):
    def assign(a, v, i, j):
        b = a * 1.0
        b[i, :, j] = v
        return b * a
    _check(assign, assign, rng.standard_normal((4, 3, 5)), rng.standard_normal(3),
           np.array([0, 3, -1]), np.array([4, 0, 1]))


# ---- div's rounding_mode ----

@pytest.mark.parametrize("mode", ["floor", "trunc"])
def test_div_rounding_mode_equals_pytorch(mode, rng):
    ints = (np.array([7, -7, 7, -7, 0, 5]), np.array([2, 2, -2, -2, 3, 5]))
    floats = (rng.standard_normal((3, 4)) * 3, rng.standard_normal((3, 4)))
    for a, b in (ints, floats, (ints[0], np.full(6, 1.5)), (ints[0].astype(np.int32), 2)):
        want = torch.div(torch.tensor(a), b if np.isscalar(b) else torch.tensor(b),
                         rounding_mode=mode)
        for got in (pf.div(pf.tensor(a), b, rounding_mode=mode),
                    pf.divide(pf.tensor(a), b, rounding_mode=mode),
                    pf.tensor(a).div(b, rounding_mode=mode)):
            assert got.dtype.name == str(want.dtype).replace("torch.", "")
            np.testing.assert_array_equal(got.numpy(), want.numpy())
    compiled = _jit(lambda a, b: pf.div(a, b, rounding_mode=mode), *map(pf.tensor, ints))
    np.testing.assert_array_equal(compiled.numpy(), torch.div(
        *map(torch.tensor, ints), rounding_mode=mode).numpy())
    with pytest.raises(ValueError, match="rounding_mode"):
        pf.div(pf.tensor(floats[0]), 2.0, rounding_mode="round")
    with pytest.raises(pf.PyfrontError):
        pf.div(pf.tensor(ints[0]), 0, rounding_mode=mode)


# ---- glu as a layer activation ----

def test_dense_takes_glu_as_its_activation(rng, tmp_path):
    x = rng.standard_normal((2, 3)).astype(np.float32)
    model = pf.nn.Sequential([pf.nn.Dense(6, activation="glu")])
    y = model(pf.tensor(x))
    layer = model.layers[0] if hasattr(model, "layers") else list(model.children())[0]
    want = F.glu(torch.tensor(x) @ torch.tensor(layer.kernel.numpy())
                 + torch.tensor(layer.bias.numpy()))
    np.testing.assert_allclose(y.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(model.hybridize()(pf.tensor(x)).numpy(), y.numpy(), rtol=1e-6)
    pf.save(model, tmp_path / "glu.pf", input_shape=(None, 3))
    np.testing.assert_allclose(pf.load(tmp_path / "glu.pf")(pf.tensor(x)).numpy(), y.numpy(),
                               rtol=1e-6)


# ---- PyTorch's keyword names and 0-d inputs ----

def test_permute_dims_and_sort_stable_keywords(rng):
    x = rng.standard_normal((2, 3, 4))
    _check(lambda a: pf.permute(a, dims=(2, 0, 1)), lambda a: torch.permute(a, dims=(2, 0, 1)), x)
    _check(lambda a: a.permute(dims=[2, 0, 1]), lambda a: a.permute(dims=[2, 0, 1]), x)
    with pytest.raises(TypeError, match="permute"):
        pf.permute(pf.tensor(x), 0, 1, 2, dims=(2, 0, 1))
    ties = np.array([2.0, 1.0, 2.0, 1.0, 1.0])
    _check(lambda a: pf.sort(a, stable=True, dim=0).values,
           lambda a: torch.sort(a, stable=True, dim=0).values, ties)
    _check(lambda a: a.argsort(stable=True, descending=True),
           lambda a: a.argsort(stable=True, descending=True), ties, grad=False)
    _check(lambda a: a.sort(stable=True)[1], lambda a: a.sort(stable=True)[1], ties, grad=False)


def test_take_along_axis_without_an_axis_takes_from_the_flat_tensor(rng):
    x = rng.standard_normal((3, 4))
    for idx in (np.array([0, 11, 5]), np.array([[0, 11], [5, 3]])):
        _check(lambda a, i: pf.take_along_axis(a, i, None), lambda a, i: torch.take_along_dim(a, i),
               x, idx)


def test_gather_and_meshgrid_take_0d_tensors():
    _check(lambda a, i: pf.gather(a, 0, i), lambda a, i: torch.gather(a, 0, i),
           np.array(2.0), np.array(0))
    _check(lambda a, i: pf.gather(a, dim=-1, index=i), lambda a, i: torch.gather(a, -1, i),
           np.array(2.0), np.array(0))
    with pytest.raises(pf.AxisError):
        pf.gather(pf.tensor(2.0), 1, pf.tensor(np.array(0)))
    for indexing in ("ij", "xy"):
        got = pf.meshgrid(pf.tensor(1.0), pf.tensor([1.0, 2.0, 3.0]), indexing=indexing)
        want = torch.meshgrid(torch.tensor(1.0), torch.tensor([1.0, 2.0, 3.0]), indexing=indexing)
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g.numpy(), w.numpy())


# ---- losses on one unbatched sample ----

@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_and_nll_loss_take_an_unbatched_sample(reduction, rng):
    logits = rng.standard_normal(4)
    _check(lambda a, t: pf.cross_entropy(a, t, reduction=reduction),
           lambda a, t: F.cross_entropy(a, t, reduction=reduction), logits, np.array(2))
    probs = rng.random(4)
    _check(lambda a, t: pf.cross_entropy(a, t, reduction=reduction, label_smoothing=0.1),
           lambda a, t: F.cross_entropy(a, t, reduction=reduction, label_smoothing=0.1),
           logits, probs)
    w = rng.random(4) + 0.5
    _check(lambda a, t: pf.cross_entropy(a, t, weight=pf.tensor(w), reduction=reduction),
           lambda a, t: F.cross_entropy(a, t, weight=torch.tensor(w), reduction=reduction),
           logits, np.array(1))
    _check(lambda a, t: pf.nll_loss(a, t, reduction=reduction),
           lambda a, t: F.nll_loss(a, t, reduction=reduction), logits, np.array(3))
    # 1-D logits with a batch of labels is still the batched shape error
    with pytest.raises(pf.ShapeError, match=r"\(batch, classes\)"):
        pf.cross_entropy(pf.ones(3), [0, 1, 2])


# ---- pad: negative counts crop (constant mode), as PyTorch's ----

@pytest.mark.parametrize("spec", [(-1, 1), (-1, -2), (2, -3, -1, 1), (0, -2, 1, 0)])
def test_pad_with_negative_counts_crops_as_pytorch(spec, rng):
    x = rng.standard_normal((2, 3, 5))
    _check(lambda a: pf.pad(a, spec, value=2.0), lambda a: F.pad(a, spec, value=2.0), x)


def test_pad_negative_counts_are_refused_where_pytorch_refuses_them():
    with pytest.raises(pf.ShapeError, match="crop more"):
        pf.pad(pf.ones(2, 3), (-2, -2))
    with pytest.raises(pf.ShapeError, match="constant mode"):
        pf.pad(pf.ones(1, 2, 3), (-1, 1), mode="reflect")
