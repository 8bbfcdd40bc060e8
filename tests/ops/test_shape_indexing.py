"""Shape and indexing ops of issue 10: pad, flip, roll, tril/triu, tile/repeat/repeat_interleave,
gather/scatter/scatter_add/index_select/take_along_axis, masked_fill, diag/diagonal, meshgrid,
unbind, chunk, split (PyTorch's meaning) and array_split (numpy's), advanced indexing (several
integer arrays, boolean masks) and __setitem__ with gradients: against numpy and PyTorch,
float64 finite differences, eager equals compiled."""
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import pyfront as pf
from pyfront.testing import check_grad


def _torch_grad(fn, *arrays, seed):
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    fn(*ts).backward(torch.tensor(seed))
    return [t.grad.numpy() for t in ts]


def _pf_grad(fn, *arrays, seed):
    ts = [pf.tensor(a, requires_grad=True) for a in arrays]
    fn(*ts).backward(pf.tensor(seed))
    return [t.grad.numpy() for t in ts]


def _same_as_torch(pf_fn, torch_fn, *arrays, rng):
    got = pf_fn(*[pf.tensor(a) for a in arrays]).numpy()
    want = torch_fn(*[torch.tensor(a) for a in arrays]).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
    seed = rng.standard_normal(want.shape)
    for g, w in zip(_pf_grad(pf_fn, *arrays, seed=seed), _torch_grad(torch_fn, *arrays,
                                                                       seed=seed)):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12)


def _eager_equals_compiled(fn, *arrays):
    eager = fn(*[pf.tensor(a) for a in arrays]).numpy()
    compiled = pf.jit(fn)(*[pf.tensor(a) for a in arrays]).numpy()
    np.testing.assert_array_equal(compiled, eager)


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("spec", [(1, 2), (2, 0, 0, 3), (1, 1, 2, 1, 0, 2)])
def test_pad_matches_torch_forward_and_backward(mode, spec, rng):
    # torch's non-constant modes take 2 counts on 3-D input, 4 or 6 on 4-D
    x = rng.standard_normal((2, 3, 4, 5)[4 - max(len(spec) // 2 + 1, 3):])
    kw = {"value": 0.25} if mode == "constant" else {}
    _same_as_torch(lambda t: pf.pad(t, spec, mode, **kw),
                   lambda t: F.pad(t, spec, mode, **kw), x, rng=rng)
    check_grad(lambda t: pf.pad(t, spec, mode), x[:1])
    _eager_equals_compiled(lambda t: pf.pad(t, spec, mode), x.astype(np.float32))


def test_pad_numpy_pad_width_any_axes_and_errors(rng):
    x = rng.standard_normal((3, 4, 2))
    got = pf.pad(pf.tensor(x), ((1, 0), (0, 0), (1, 1)), "reflect").numpy()
    np.testing.assert_array_equal(got, np.pad(x, ((1, 0), (0, 0), (1, 1)), "reflect"))
    got = pf.pad(pf.tensor(x), ((0, 2), (1, 1), (0, 0)), "circular").numpy()
    np.testing.assert_array_equal(got, np.pad(x, ((0, 2), (1, 1), (0, 0)), "wrap"))
    got = pf.pad(pf.tensor(x), ((2, 2), (0, 3), (1, 0)), "replicate").numpy()
    np.testing.assert_array_equal(got, np.pad(x, ((2, 2), (0, 3), (1, 0)), "edge"))
    # the second derivative of a pad is a pad of the seed
    check_grad(lambda t: pf.pad(t, (1, 1), "reflect") ** 2, x)
    with pytest.raises(pf.ShapeError, match=r"pad.*reflect padding of \(2, 0\) in dim 2 of "
                                            r"size 2: at most 1"):
        pf.pad(pf.tensor(x), (2, 0), "reflect")
    with pytest.raises(pf.ShapeError, match="even number"):
        pf.pad(pf.tensor(x), (1, 2, 3))
    with pytest.raises(ValueError, match="mode must be one of"):
        pf.pad(pf.tensor(x), (1, 1), "mirror")
    assert pf.pad(pf.zeros(0, 3), (1, 1), value=2.0).numpy().tolist() == []
    np.testing.assert_array_equal(pf.pad(pf.zeros(2, 0), (1, 1), value=2.0).numpy(),
                                  np.full((2, 2), 2.0))


def test_flip_roll_tril_triu(rng):
    x = rng.standard_normal((3, 4, 5))
    _same_as_torch(lambda t: pf.flip(t, (0, -1)), lambda t: torch.flip(t, (0, -1)), x, rng=rng)
    _same_as_torch(lambda t: pf.roll(t, (2, -7), (1, 2)),
                   lambda t: torch.roll(t, (2, -7), (1, 2)), x, rng=rng)
    _same_as_torch(lambda t: pf.roll(t, 4), lambda t: torch.roll(t, 4), x, rng=rng)
    for k in (-2, 0, 1, 9):
        _same_as_torch(lambda t: pf.tril(t, k), lambda t: torch.tril(t, k), x, rng=rng)
        _same_as_torch(lambda t: pf.triu(t, k), lambda t: torch.triu(t, k), x, rng=rng)
    # an infinity above the diagonal is zeroed, not turned into NaN by a multiply
    inf = np.full((2, 2), np.inf)
    assert pf.tril(pf.tensor(inf)).numpy().tolist() == [[np.inf, 0], [np.inf, np.inf]]
    assert pf.flip(pf.tensor(2.0)).item() == 2.0
    with pytest.raises(pf.AxisError, match="flip: axis 3 is out of range"):
        pf.flip(pf.tensor(x), 3)
    with pytest.raises(pf.ShapeError, match="tril: needs a tensor of rank >= 2"):
        pf.tril(pf.tensor(x[0, 0]))
    _eager_equals_compiled(lambda t: pf.roll(pf.flip(pf.triu(t, 1), 1), 2, -1),
                           x.astype(np.float32))


def test_tile_repeat_and_repeat_interleave(rng):
    x = rng.standard_normal((2, 3))
    _same_as_torch(lambda t: pf.repeat(t, 2, 1, 3), lambda t: t.repeat(2, 1, 3), x, rng=rng)
    _same_as_torch(lambda t: t_tile(t), lambda t: torch.tile(t, (2,)), x, rng=rng)
    np.testing.assert_array_equal(pf.tile(pf.tensor(x), (3, 1, 2)).numpy(),
                                  np.tile(x, (3, 1, 2)))
    _same_as_torch(lambda t: pf.repeat_interleave(t, [2, 0, 1], 1),
                   lambda t: torch.repeat_interleave(t, torch.tensor([2, 0, 1]), 1), x, rng=rng)
    _same_as_torch(lambda t: pf.repeat_interleave(t, 2), lambda t: torch.repeat_interleave(t, 2),
                   x, rng=rng)
    with pytest.raises(pf.ShapeError, match="repeat: 1 sizes for a tensor of rank 2"):
        pf.repeat(pf.tensor(x), 2)
    with pytest.raises(pf.ShapeError, match="repeat_interleave: repeats must be"):
        pf.repeat_interleave(pf.tensor(x), [1, 2], 1)


def t_tile(t):
    return pf.tile(t, 2)


def test_gather_scatter_family_matches_torch(rng):
    x = rng.standard_normal((3, 4, 5))
    idx = rng.integers(0, 4, (3, 6, 5))
    _same_as_torch(lambda t: pf.gather(t, 1, idx),
                   lambda t: torch.gather(t, 1, torch.tensor(idx)), x, rng=rng)
    small = rng.integers(0, 5, (2, 3, 2))            # smaller than x outside the axis: allowed
    _same_as_torch(lambda t: pf.gather(t, -1, small),
                   lambda t: torch.gather(t, -1, torch.tensor(small)), x, rng=rng)
    neg = rng.integers(-4, 4, (3, 2, 5))             # numpy's negative indices
    np.testing.assert_array_equal(pf.take_along_axis(pf.tensor(x), neg, 1).numpy(),
                                  np.take_along_axis(x, neg, 1))
    np.testing.assert_array_equal(pf.take_along_axis(pf.tensor(x), idx[:1, :, :1], 1).numpy(),
                                  np.take_along_axis(x, idx[:1, :, :1], 1))
    src = rng.standard_normal((3, 6, 5))
    _same_as_torch(lambda t, s: pf.scatter_add(t, 1, idx, s),
                   lambda t, s: t.scatter_add(1, torch.tensor(idx), s), x, src, rng=rng)
    # scatter with unique positions (one permutation per column): both gradients are defined
    perm = np.argsort(rng.random((3, 4, 5)), axis=1)[:, :3]
    src3 = rng.standard_normal((3, 3, 5))
    _same_as_torch(lambda t, s: pf.scatter(t, 1, perm, s),
                   lambda t, s: t.scatter(1, torch.tensor(perm), s), x, src3, rng=rng)
    rows = np.argsort(rng.random((3, 4, 5)), axis=0)[:1]   # (1, 4, 5): a number as src
    np.testing.assert_array_equal(pf.scatter(pf.tensor(x), 0, rows, 7.0).numpy(),
                                  torch.tensor(x).scatter(0, torch.tensor(rows), 7.0).numpy())
    # indices shorter than x outside the axis write only the block they cover (torch's rule)
    np.testing.assert_array_equal(
        pf.scatter(pf.tensor(x), 0, rows[:, :, :4], 7.0).numpy(),
        torch.tensor(x).scatter(0, torch.tensor(rows[:, :, :4]), 7.0).numpy())
    _same_as_torch(lambda t: pf.index_select(t, 2, [4, 0, 0]),
                   lambda t: torch.index_select(t, 2, torch.tensor([4, 0, 0])), x, rng=rng)
    check_grad(lambda t, s: pf.scatter_add(t, 1, idx, s) ** 2, x, src)
    check_grad(lambda t: pf.gather(t, 1, idx) ** 2, x)
    with pytest.raises(pf.IndexOutOfRange, match="index 4 .* out of range for an axis of size 4"):
        pf.gather(pf.tensor(x), 1, np.full((3, 1, 5), 4))
    with pytest.raises(pf.ShapeError, match=r"take_along_axis: indices \(3, 6, 7\) do not "
                                            r"broadcast against x \(3, 4, 5\) outside the axis 1"):
        pf.take_along_axis(pf.tensor(x), pf.tensor(idx[:, :, :1].repeat(7, 2)), 1)
    with pytest.raises(pf.DTypeError, match="indices must be int32 or int64"):
        pf.gather(pf.tensor(x), 1, pf.tensor(idx.astype(np.float32)))
    f32 = x.astype(np.float32)
    _eager_equals_compiled(lambda t: pf.scatter_add(t, 1, idx, pf.gather(t * 2, 1, idx)), f32)


def test_masked_fill_and_where_broadcast(rng):
    x = rng.standard_normal((3, 4))
    mask = rng.random((1, 4)) > 0.5
    _same_as_torch(lambda t: pf.masked_fill(t, mask, -1.5),
                   lambda t: t.masked_fill(torch.tensor(mask), -1.5), x, rng=rng)
    # a comparison result is a mask
    got = pf.masked_fill(pf.tensor(x), pf.tensor(x) > 0, 0.0).numpy()
    np.testing.assert_array_equal(got, np.where(x > 0, 0.0, x))
    cond = rng.random((3, 1)) > 0.5
    np.testing.assert_array_equal(pf.where(cond, pf.tensor(x), pf.tensor(x[:1] * 0)).numpy(),
                                  np.where(cond, x, x[:1] * 0))


def test_diag_diagonal_meshgrid_unbind_chunk_split(rng):
    x = rng.standard_normal((3, 4, 5))
    for off, a, b in [(0, 0, 1), (1, 0, 2), (-2, -1, 1), (9, 1, 2)]:
        _same_as_torch(lambda t: pf.diagonal(t, off, a, b),
                       lambda t: torch.diagonal(t, off, a, b), x, rng=rng)
    v = rng.standard_normal(4)
    for k in (0, 2, -1):
        _same_as_torch(lambda t: pf.diag(t, k), lambda t: torch.diag(t, k), v, rng=rng)
        _same_as_torch(lambda t: pf.diag(t, k), lambda t: torch.diag(t, k), x[0], rng=rng)
    a, b = rng.standard_normal(3), rng.standard_normal(2)
    for indexing in ("ij", "xy"):
        got = pf.meshgrid(pf.tensor(a), pf.tensor(b), indexing=indexing)
        for g, w in zip(got, np.meshgrid(a, b, indexing=indexing)):
            np.testing.assert_array_equal(g.numpy(), w)
    assert [t.numpy().tolist() for t in pf.unbind(pf.tensor(x[0, :2]), 0)] == \
        [r.tolist() for r in x[0, :2]]
    for n in (1, 2, 3, 5, 7):
        assert [t.shape for t in pf.chunk(pf.tensor(x), n, -1)] == \
            [tuple(c.shape) for c in torch.chunk(torch.tensor(x), n, -1)]
        assert [t.shape for t in pf.split(pf.tensor(x), n, 2)] == \
            [tuple(c.shape) for c in torch.split(torch.tensor(x), n, 2)]
        assert [t.shape for t in pf.array_split(pf.tensor(x), n, 2)] == \
            [c.shape for c in np.array_split(x, n, 2)]
    assert [t.shape for t in pf.split(pf.tensor(x), [1, 3], 1)] == [(3, 1, 5), (3, 3, 5)]
    assert [t.shape for t in pf.array_split(pf.tensor(x), [1, 3], 1)] == \
        [c.shape for c in np.array_split(x, [1, 3], 1)]
    assert pf.cat is pf.concat
    check_grad(lambda t: pf.concat(pf.chunk(t, 2, 1)[::-1], 1), x)


@pytest.mark.parametrize("key", [
    (np.array([0, 2]), slice(None), np.array([1, 3])),     # arrays around a slice: to the front
    (slice(None), np.array([[0], [3]]), np.array([1, 2, 4])),   # adjacent arrays broadcast
    (Ellipsis, [0, 0, -1]),
    (1, [0, 3], slice(1, 4)),
    (None, np.array([2, 0]), 1),
])
def test_advanced_indexing_several_arrays(key, rng):
    x = rng.standard_normal((3, 4, 5))
    got = pf.tensor(x)[key]
    np.testing.assert_array_equal(got.numpy(), x[key])
    seed = rng.standard_normal(x[key].shape)
    xt = torch.tensor(x, requires_grad=True)
    tkey = tuple(torch.tensor(k) if isinstance(k, (np.ndarray, list)) else k for k in key)
    xt[tkey].backward(torch.tensor(seed))
    np.testing.assert_allclose(_pf_grad(lambda t: t[key], x, seed=seed)[0], xt.grad.numpy())


def test_boolean_masks_index_without_nonzero(rng):
    x = rng.standard_normal((3, 4, 5))
    for key in [(x > 0,), (slice(None), x[0] > 0), (x[:, 0, 0] > 0, Ellipsis, 2)]:
        np.testing.assert_array_equal(pf.tensor(x)[key].numpy(), x[key])
        check_grad(lambda t: t[key] ** 2, x)
    # a mask that is a pyfront comparison result
    t = pf.tensor(x)
    np.testing.assert_array_equal(t[t > 0.5].numpy(), x[x > 0.5])
    with pytest.raises(pf.IndexOutOfRange, match=r"getitem: the index arrays or boolean mask "
                                               r"do not fit a tensor of shape \(3, 4, 5\)"):
        t[np.ones(2, bool)]
    with pytest.raises(pf.IndexOutOfRange, match=r"getitem: .* shape \(3, 4, 5\): index 7 is "
                                               r"out of bounds"):
        t[[0, 1], [7, 1]]


@pytest.mark.parametrize("key, value_of", [
    ((np.array([0, 2]),), lambda b: b * 3),                    # rows from an integer array
    ((slice(1, 3), [0, 3]), lambda b: b[:, :1] * 3),           # slice and array, broadcast
    ((Ellipsis, 1), lambda b: b[1, :3] * 3),
    ((0,), lambda b: b[0, 0] * 3),                             # a 0-d value broadcast
])
def test_setitem_gradients_reach_value_and_untouched_elements(key, value_of, rng):
    x, v = rng.standard_normal((3, 4)), rng.standard_normal((2, 4))

    def fn(torch_key):
        def write(a, b):
            y = a * 2
            y[torch_key] = value_of(b)
            return y * y
        return write
    tkey = tuple(torch.tensor(k) if isinstance(k, (np.ndarray, list)) else k for k in key)
    _same_as_torch(fn(key), fn(tkey), x, v, rng=rng)


def test_setitem_with_a_mask_matches_torch(rng):
    x = rng.standard_normal((3, 4))
    mask = x > 0

    def fn(m):
        def write(a, b):
            y = a * 2
            y[m] = b * b
            return y.sum() * y
        return write
    _same_as_torch(fn(mask), fn(torch.tensor(mask)), x, rng.standard_normal(()), rng=rng)


def test_setitem_without_grad_writes_in_place_and_leaf_is_refused(rng):
    x = rng.standard_normal((3, 4))
    t = pf.tensor(x.copy())
    memory = t.numpy()
    t[t > 0] = 0.0
    t[0, [1, 2]] = pf.tensor([5.0, 6.0], dtype="float64")
    want = np.where(x > 0, 0.0, x)
    want[0, [1, 2]] = [5.0, 6.0]
    np.testing.assert_array_equal(memory, want)
    leaf = pf.tensor(x, requires_grad=True)
    with pytest.raises(pf.PyfrontError, match="__setitem__: a leaf tensor that requires grad"):
        leaf[0] = 1.0
    with pf.no_grad():
        leaf[0] = 1.0
    assert leaf.numpy()[0].tolist() == [1.0] * 4


def test_setitem_in_a_compiled_function_equals_eager_and_torch(rng):
    # slices, an integer, a pyfront boolean mask (a graph value: no index values needed) and
    # a mask over the leading dim with a row value; no fallback to eager (it would warn)
    x, v, row = rng.standard_normal((3, 4)), rng.standard_normal(()), rng.standard_normal(4)

    def write(a, b, r):
        y = a * 2
        y[:, 1] = b
        y[0] = b * 3
        y[y > 0.5] = b * b
        y[y[:, 2] < 0] = r
        return y * y
    _same_as_torch(write, write, x, v, row, rng=rng)
    compiled = pf.jit(write)
    ts = [pf.tensor(a, requires_grad=True) for a in (x, v, row)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = compiled(*ts)
    want = write(*[torch.tensor(a, requires_grad=True) for a in (x, v, row)])
    np.testing.assert_allclose(out.numpy(), want.detach().numpy(), rtol=1e-12)
    seed = rng.standard_normal((3, 4))
    for got, want in zip(_pf_grad(compiled, x, v, row, seed=seed),
                         _torch_grad(write, x, v, row, seed=seed)):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_setitem_in_a_graph_with_an_unknown_batch_dim(rng):
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    with pf.Graph() as g:
        a = pf.placeholder("a", (None, 3, 4))
        y = a * 2
        y[:, 1] = 7.0
        y[..., 0] = -1.0
        y[y > 5] = 0.0
        run = g.compile([y])
    want = x * 2
    want[:, 1] = 7.0
    want[..., 0] = -1.0
    want[want > 5] = 0.0
    np.testing.assert_array_equal(run.run({"a": x})[y.name], want)
    with pf.Graph():
        y = pf.placeholder("a", (None, 3, 4)) * 2
        with pytest.raises(pf.ShapeError, match=r"setitem: on a graph value of shape "
                                                r"\(None, 3, 4\) \(unknown batch dim\).*whole "
                                                r"batch.*got value of shape \(4,\)"):
            y[:, 0] = np.ones(4, np.float32)
        with pytest.raises(pf.ShapeError, match="takes the whole batch"):
            y[0] = 1.0


def test_setitem_into_a_graph_input_runs_the_function_eagerly(rng):
    # a compiled graph cannot write its caller's tensor: pf.jit says so and runs eagerly,
    # which writes the caller's tensor exactly as the uncompiled function does
    x = rng.standard_normal((3, 4)).astype(np.float32)

    def zero_first_row(a):
        a[0] = 0.0
        return a * 1.0
    t = pf.tensor(x.copy())
    with pytest.warns(RuntimeWarning, match=r"writing into placeholder input.*cannot change "
                                            r"its caller's tensors.*run eagerly"):
        out = pf.jit(zero_first_row)(t)
    assert not t.numpy()[0].any() and not out.numpy()[0].any()
    np.testing.assert_array_equal(out.numpy()[1:], x[1:])
