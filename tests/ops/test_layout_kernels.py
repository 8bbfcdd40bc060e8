"""The pad, gather and scatter kernels' own paths (issue 10's speed work): the one-pass pad
gradient (pad_grad) at its edges (reflect by size - 1, replicate wider than the input, circular
by the whole size, 1-D and 5-D, zero-size dims), gathers and scatters of whole rows (indices
repeated along the inner dims), the prefetching gather along the last axis, the fused zero and
scatter of gather's gradient, and 1 and 2 threads giving bit-identical results."""
import numpy as np
import pytest

import pyfront as pf
from pyfront import errors
from pyfront.backend import cpu


@pytest.fixture
def threads():
    before = pf.get_num_threads()
    yield pf.set_num_threads
    pf.set_num_threads(before)


def _torch_pad_grad(torch, x, g, pads, mode):
    """(PyTorch's pad output, the gradient of sum(pad(x) * g)) in float64."""
    flat = [v for b, e in reversed(pads) for v in (b, e)]
    while flat and flat[-2:] == [0, 0]:
        flat = flat[:-2]
    tx = torch.tensor(x, requires_grad=True)
    y = torch.nn.functional.pad(tx, flat, mode)
    (y * torch.tensor(g)).sum().backward()
    return y.detach().numpy(), tx.grad.numpy()


def _pf_pad_grad(x, g, pads, mode):
    px = pf.tensor(x, requires_grad=True)
    y = pf.pad(px, pads, mode)
    (dx,) = pf.grad(y, [px], grad_outputs=pf.tensor(g))
    return y.numpy(), dx.numpy()


# PyTorch pads at most the last 3 dims (of a 4-D or 5-D input) in these modes
PAD_CASES = [
    ("reflect", (2, 3, 5, 4), ((0, 0), (0, 0), (4, 4), (3, 3))),       # by size - 1
    ("reflect", (1, 2, 6, 7), ((0, 0), (0, 0), (1, 5), (6, 2))),       # uneven, one side n - 1
    ("replicate", (2, 1, 3, 2), ((0, 0), (0, 0), (7, 5), (6, 9))),     # far wider than x
    ("replicate", (1, 2, 1, 1, 3), ((0, 0), (0, 0), (2, 3), (4, 1), (0, 5))),
    ("circular", (2, 2, 3, 4), ((0, 0), (0, 0), (3, 3), (4, 4))),      # by the whole size
    ("circular", (1, 1, 2, 3, 5), ((0, 0), (0, 0), (2, 1), (0, 3), (5, 2))),
    ("reflect", (3, 2, 9), ((0, 0), (0, 0), (8, 1))),
]


@pytest.mark.parametrize("mode, shape, pads", PAD_CASES)
def test_pad_gradient_matches_pytorch_at_the_edges(torch, rng, mode, shape, pads):
    x = rng.standard_normal(shape)
    out_shape = tuple(n + b + e for n, (b, e) in zip(shape, pads))
    g = rng.standard_normal(out_shape)
    want_y, want_dx = _torch_pad_grad(torch, x, g, pads, mode)
    got_y, got_dx = _pf_pad_grad(x, g, pads, mode)
    np.testing.assert_array_equal(got_y, want_y)
    np.testing.assert_allclose(got_dx, want_dx, rtol=1e-12, atol=1e-12)


def _numpy_pad_grad(shape, g, pads, mode):
    """The reference by definition: each padded position adds its gradient onto the element
    np.pad copied it from (found by padding the element indices themselves)."""
    numpy_mode = {"replicate": "edge", "circular": "wrap"}.get(mode, mode)
    source = np.pad(np.arange(int(np.prod(shape))).reshape(shape), pads, numpy_mode)
    dx = np.zeros(int(np.prod(shape)))
    np.add.at(dx, source.ravel(), g.ravel())
    return dx.reshape(shape)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("shape, pads", [
    ((7,), ((6, 3),)),                                   # 1-D: a single row
    ((5, 3), ((4, 2), (0, 0))),                          # only the outer dim padded
    ((3, 1, 4, 2), ((2, 1), (0, 0), (3, 0), (1, 1))),    # every dim but one, the first too
])
def test_pad_gradient_sums_every_reader(rng, mode, shape, pads):
    limit = {"reflect": lambda n: n - 1, "circular": lambda n: n, "replicate": lambda n: 99}[mode]
    pads = tuple((min(b, limit(n)), min(e, limit(n))) for n, (b, e) in zip(shape, pads))
    x = rng.standard_normal(shape)
    g = rng.standard_normal(tuple(n + b + e for n, (b, e) in zip(shape, pads)))
    _, got = _pf_pad_grad(x, g, pads, mode)
    np.testing.assert_allclose(got, _numpy_pad_grad(shape, g, pads, mode), rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_pad_gradient_of_zero_size_inputs(mode):
    x = np.zeros((0, 3, 4), np.float32)
    px = pf.tensor(x, requires_grad=True)
    y = pf.pad(px, ((0, 0), (1, 2), (2, 1)), mode)
    assert y.shape == (0, 6, 7)
    (dx,) = pf.grad(y, [px], grad_outputs=pf.ones((0, 6, 7)))
    assert dx.shape == (0, 3, 4)


def _pad_grad_call(g, maps, dx, begins):
    cpu.run("pad_grad", [cpu.Buf(g, g.shape, pf.float32).desc(),
                         cpu.Buf(maps, maps.shape, pf.int64).desc()],
            [cpu.Buf(dx, dx.shape, pf.float32).desc()], begins)


def test_pad_grad_kernel_refuses_maps_it_cannot_trust():
    g, dx = np.ones((2, 5), np.float32), np.zeros((2, 3), np.float32)
    good = np.array([0, 1, 1, 0, 1, 2, 1], np.int64)     # dim 0 as is; dim 1 reflect by 1
    _pad_grad_call(g, good, dx, (0, 1))
    np.testing.assert_array_equal(dx, [[1, 3, 1], [1, 3, 1]])
    with pytest.raises(pf.IndexOutOfRange, match="source index 3 for output 4 of dim 1 is out "
                                                 "of range for size 3"):
        _pad_grad_call(g, np.array([0, 1, 1, 0, 1, 2, 3], np.int64), dx, (0, 1))
    with pytest.raises(pf.IndexOutOfRange, match="source index 2 for output 2 of dim 1 .* not "
                                                 "the interior's own"):
        _pad_grad_call(g, np.array([0, 1, 1, 0, 2, 2, 1], np.int64), dx, (0, 1))
    with pytest.raises(errors.NativeError, match=r"dim 1: the interior \[3, 3 \+ 3\) does not fit "
                                             "grad's size 5"):
        _pad_grad_call(g, good, dx, (0, 3))
    with pytest.raises(pf.ShapeError, match="maps has 6 entries, expected 7"):
        _pad_grad_call(g, good[:6], dx, (0, 1))
    with pytest.raises(errors.NativeError, match="expected 2 integer attributes, got 1"):
        _pad_grad_call(g, good, dx, (0,))


def test_gather_and_scatter_of_whole_rows(rng):
    """Indices repeated along the inner dims move whole rows (one copy, one vector add)."""
    x = rng.standard_normal((40, 3, 70))
    rows = rng.integers(-40, 40, (25, 1, 1))
    idx = np.repeat(np.repeat(rows, 3, 1), 70, 2)
    idx[7, 2, 69] = 5                     # one row not uniform in its last block only
    got = pf.take_along_axis(pf.tensor(x), pf.tensor(idx), 0).numpy()
    np.testing.assert_array_equal(got, np.take_along_axis(x, idx, 0))
    src = rng.standard_normal(idx.shape)
    want = x.copy()
    np.add.at(want, (idx % 40, np.arange(3)[None, :, None], np.arange(70)), src)
    got = pf.scatter_add(pf.tensor(x), 0, pf.tensor(idx), pf.tensor(src)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-14, atol=1e-14)
    # assignment: rows in order, the last write of a repeated row wins
    one = np.repeat(np.array([[[3]], [[-37]], [[9]]]), 70, 2)     # 3 and -37 are one row
    src = rng.standard_normal((3, 1, 70))
    got = pf.scatter(pf.tensor(x[:, :1]), 0, pf.tensor(one), pf.tensor(src)).numpy()
    want = x[:, :1].copy()
    want[3], want[9] = src[1], src[2]
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("op", ["gather", "scatter", "scatter_add"])
def test_an_index_out_of_range_in_a_whole_row_is_named(op):
    x = pf.tensor(np.zeros((6, 130), np.float32))
    idx = np.repeat(np.array([[1], [2], [6], [0]]), 130, 1)    # the third row is out
    with pytest.raises(pf.IndexOutOfRange, match="index 6 at position 260 is out of range for "
                                                 "an axis of size 6"):
        if op == "gather":
            pf.gather(x, 0, idx)
        else:
            getattr(pf, op)(x, 0, idx, pf.tensor(np.ones((4, 130), np.float32)))


@pytest.mark.parametrize("rows", [64, 2200])
def test_gather_along_the_last_axis_over_many_slabs(rng, threads, rows):
    """K at least half the slab's cache lines, several slabs a task; from a source of 17.2 MiB
    (2200 rows) the next slab is prefetched (over GATHER_PREFETCH_BYTES), from 0.5 MiB not."""
    x = rng.standard_normal((rows, 2048)).astype(np.float32)
    # slabs with negative indices (wrapped), with none (the plain loop), int64 and int32
    idx = rng.integers(-2048, 2048, (rows, 1500))
    idx[::2] = np.abs(idx[::2]) % 2048
    for index in (idx, idx.astype(np.int32)):
        want = np.take_along_axis(x, index, 1)
        for n in (1, 2):
            threads(n)
            np.testing.assert_array_equal(pf.gather(pf.tensor(x), 1, index).numpy(), want)
    for row, value in ((rows - 1, 2048), (rows - 2, -2049), (0, 2048)):
        bad = idx.copy()
        bad[row, 1499] = value
        with pytest.raises(pf.IndexOutOfRange, match="index %d at position %d is out of range"
                                                     % (value, row * 1500 + 1499)):
            pf.gather(pf.tensor(x), 1, bad)


@pytest.mark.parametrize("shape, axis, k", [((50, 300), 1, 120), ((300, 5, 70), 0, 400),
                                            ((4, 9, 3), 1, 0), ((6, 1), 0, 11)])
def test_gather_gradient_is_zeros_with_repeats_added(rng, threads, shape, axis, k):
    x = rng.standard_normal(shape)
    ishape = list(shape)
    ishape[axis] = k
    idx = rng.integers(-shape[axis], shape[axis], tuple(ishape))
    g = rng.standard_normal(tuple(ishape))
    want = np.zeros(shape)
    pos = list(np.indices(ishape, sparse=True))
    pos[axis] = idx % shape[axis]
    np.add.at(want, tuple(pos), g)
    for n in (1, 2):
        threads(n)
        px = pf.tensor(x, requires_grad=True)
        (dx,) = pf.grad(pf.gather(px, axis, idx), [px], grad_outputs=pf.tensor(g))
        np.testing.assert_allclose(dx.numpy(), want, rtol=1e-14, atol=1e-14)


def _layout_workload(rng):
    """One result per new path, each large enough to split across the pool."""
    x = pf.tensor(rng.standard_normal((6, 8, 40, 40)).astype(np.float32), requires_grad=True)
    out = {}
    for mode in ("constant", "reflect", "replicate", "circular"):
        y = pf.pad(x, (3, 2, 1, 3), mode)
        out["pad " + mode] = y
        out["pad grad " + mode] = pf.grad(y, [x], grad_outputs=pf.ones(y.shape) * 0.5)[0]
    big = pf.tensor(rng.standard_normal((128, 4096)).astype(np.float32), requires_grad=True)
    idx = rng.integers(0, 4096, (128, 512))
    out["gather"] = pf.gather(big, 1, idx)
    out["gather grad"] = pf.grad(pf.gather(big, 1, idx), [big],
                                 grad_outputs=pf.ones((128, 512)))[0]
    rows = np.repeat(rng.integers(0, 4096, (512, 1)), 128, 1)
    src = pf.tensor(rng.standard_normal((512, 128)).astype(np.float32))
    table = pf.tensor(rng.standard_normal((4096, 128)).astype(np.float32))
    out["scatter_add rows"] = pf.scatter_add(table, 0, rows, src)
    out["gather rows"] = pf.gather(table, 0, rows)
    return {k: v.numpy() for k, v in out.items()}


def test_one_and_two_threads_give_identical_results(threads):
    threads(1)
    one = _layout_workload(np.random.default_rng(5))
    threads(2)
    two = _layout_workload(np.random.default_rng(5))
    for name in one:
        np.testing.assert_array_equal(two[name], one[name], err_msg=name)
