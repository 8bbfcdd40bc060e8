"""Convolution ops: forward against a float64 numpy reference, gradients (first and second
order) against finite differences, PyTorch parity forward and backward with copied weights,
the native workspace contract, and clean errors for bad inputs."""
import numpy as np
import pytest

import pyfront as pf
from pyfront.backend import cpu
from pyfront.ops import conv as conv_ops
from pyfront.testing import check_grad

CONV = {1: pf.conv1d, 2: pf.conv2d, 3: pf.conv3d}


def reference_conv(x, w, b=None, strides=1, pads=0, dilation=1, groups=1, activation=None):
    """Direct float64 convolution; pads: one (begin, end) pair per spatial dim."""
    nd = x.ndim - 2
    strides = (strides,) * nd if isinstance(strides, int) else tuple(strides)
    dilation = (dilation,) * nd if isinstance(dilation, int) else tuple(dilation)
    pads = [(pads, pads)] * nd if isinstance(pads, int) else list(pads)
    xp = np.pad(x.astype(np.float64), [(0, 0), (0, 0)] + pads)
    n, c = x.shape[:2]
    o, k = w.shape[0], w.shape[2:]
    cg, og = c // groups, o // groups
    out = [(xp.shape[2 + d] - dilation[d] * (k[d] - 1) - 1) // strides[d] + 1 for d in range(nd)]
    y = np.zeros((n, o) + tuple(out))
    for offset in np.ndindex(*k):
        window = tuple(slice(offset[d] * dilation[d],
                             offset[d] * dilation[d] + strides[d] * (out[d] - 1) + 1, strides[d])
                       for d in range(nd))
        patch = xp[(slice(None), slice(None)) + window]
        for g in range(groups):
            taps = w[(slice(g * og, (g + 1) * og), slice(None)) + offset].astype(np.float64)
            y[:, g * og:(g + 1) * og] += np.einsum("nc...,oc->no...",
                                                   patch[:, g * cg:(g + 1) * cg], taps)
    if b is not None:
        y += b.reshape((1, -1) + (1,) * nd)
    if activation == "relu":
        y = np.maximum(y, 0)
    elif activation == "tanh":
        y = np.tanh(y)
    elif activation == "sigmoid":
        y = 1 / (1 + np.exp(-y))
    return y


def same_pads(in_sizes, k, strides, dilation):
    pads = []
    for n, kk, s, d in zip(in_sizes, k, strides, dilation):
        total = max((-(-n // s) - 1) * s + d * (kk - 1) + 1 - n, 0)
        pads.append((total // 2, total - total // 2))
    return pads


# (x shape, w shape, kwargs, reference pads)
CASES = [
    ((2, 3, 11), (4, 3, 3), {}, [(0, 0)]),
    ((2, 4, 12), (6, 2, 3), {"strides": 2, "padding": 1, "groups": 2}, [(1, 1)]),
    ((3, 2, 10), (3, 2, 4), {"padding": "same", "dilation": 2}, None),
    ((2, 3, 9, 8), (5, 3, 3, 3), {"activation": "relu"}, [(0, 0), (0, 0)]),
    ((2, 4, 9, 7), (4, 2, 3, 2), {"strides": (2, 1), "padding": ((1, 0), (2, 1)),
                                   "dilation": (1, 2), "groups": 2}, [(1, 0), (2, 1)]),
    ((2, 3, 7, 8), (6, 3, 3, 3), {"strides": 2, "padding": "same", "activation": "tanh"}, None),
    ((1, 6, 5, 5), (6, 1, 3, 3), {"padding": 1, "groups": 6, "activation": "sigmoid"},
     [(1, 1), (1, 1)]),
    ((3, 4, 5, 6), (2, 4, 1, 1), {}, [(0, 0), (0, 0)]),
    ((5, 2, 9, 5), (3, 2, 3, 3), {"activation": "relu"}, [(0, 0), (0, 0)]),   # 3-wide rows
    ((2, 2, 5, 4, 6), (3, 2, 2, 3, 2), {"strides": (1, 2, 1), "padding": 1}, [(1, 1)] * 3),
    ((1, 4, 4, 5, 3), (4, 2, 3, 2, 2), {"padding": "same", "groups": 2}, None),
]


def _pads(x_shape, w_shape, kw, pads):
    if pads is not None:
        return pads
    nd = len(x_shape) - 2
    strides = conv_ops.int_tuple(kw.get("strides", 1), nd, "strides")
    dilation = conv_ops.int_tuple(kw.get("dilation", 1), nd, "dilation")
    return same_pads(x_shape[2:], w_shape[2:], strides, dilation)


@pytest.mark.parametrize("x_shape,w_shape,kw,pads", CASES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_forward_matches_reference(rng, x_shape, w_shape, kw, pads, dtype):
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    b = rng.standard_normal(w_shape[0]).astype(dtype)
    y = CONV[len(x_shape) - 2](pf.tensor(x), pf.tensor(w), pf.tensor(b), **kw)
    ref = reference_conv(x, w, b, kw.get("strides", 1), _pads(x_shape, w_shape, kw, pads),
                         kw.get("dilation", 1), kw.get("groups", 1), kw.get("activation"))
    assert y.dtype.name == dtype and y.shape == ref.shape
    tol = 1e-4 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(y.numpy(), ref, rtol=tol, atol=tol)


@pytest.mark.parametrize("x_shape,w_shape,kw,pads", CASES)
def test_gradients_match_finite_differences(rng, x_shape, w_shape, kw, pads):
    x = rng.standard_normal(x_shape)
    w = rng.standard_normal(w_shape)
    b = rng.standard_normal(w_shape[0])
    conv = CONV[len(x_shape) - 2]
    check_grad(lambda x, w, b: conv(x, w, b, **kw), x, w, b)


def _first_grad(fn, which):
    """x -> d fn / d args[which], as a differentiable function (for second-order checks)."""
    def wrapped(*args):
        probe = pf.tensor(np.zeros(args[which].shape), requires_grad=True)
        shifted = list(args)
        shifted[which] = shifted[which] + probe
        return pf.grad(fn(*shifted), [probe], create_graph=True)[0]
    return wrapped


@pytest.mark.parametrize("activation", [None, "relu", "tanh"])
@pytest.mark.parametrize("which", [0, 1, 2])
def test_second_order_gradients(rng, activation, which):
    x = rng.standard_normal((2, 4, 5, 4))
    w = rng.standard_normal((4, 2, 3, 2))
    b = rng.standard_normal(4)

    def loss(x, w, b):
        y = pf.conv2d(x, w, b, strides=(2, 1), padding=1, groups=2, activation=activation)
        return (y * y).sum()

    check_grad(_first_grad(loss, which), x, w, b, atol=1e-5, rtol=1e-4)


def test_batch_of_one_and_empty_batch(rng):
    w = rng.standard_normal((3, 2, 3))
    x = rng.standard_normal((1, 2, 40))
    np.testing.assert_allclose(pf.conv1d(pf.tensor(x), pf.tensor(w)).numpy(),
                               reference_conv(x, w), atol=1e-12)
    empty = pf.conv1d(pf.tensor(np.zeros((0, 2, 8))), pf.tensor(w))
    assert empty.shape == (0, 3, 6)


def test_threads_give_the_same_result(rng):
    x = rng.standard_normal((9, 3, 10, 9)).astype(np.float32)
    w = rng.standard_normal((8, 3, 3, 3)).astype(np.float32)
    before = pf.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3):
            pf.set_num_threads(threads)
            xt = pf.tensor(x, requires_grad=True)
            wt = pf.tensor(w, requires_grad=True)
            y = pf.conv2d(xt, wt, padding=1, activation="relu")
            (y * y).sum().backward()
            results.append((y.numpy().copy(), xt.grad.numpy().copy(), wt.grad.numpy().copy()))
    finally:
        pf.set_num_threads(before)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-4)


# ---- the float32 spatial-lane forward: kernels of few rows (in channels x window < 64) ----

SPATIAL_CASES = [
    ((3, 1, 28, 28), (32, 1, 3, 3), {"activation": "relu"}),            # a first layer
    ((2, 3, 20, 33), (9, 3, 3, 3), {}),                                  # 9 outputs: a block tail
    ((2, 1, 17, 40), (5, 1, 5, 5), {"padding": 2}),                      # 3 row chunks, padded
    ((2, 2, 12, 24), (20, 2, 1, 7), {"strides": (2, 1), "padding": "same"}),
    ((2, 1, 25, 25), (16, 1, 3, 3), {"dilation": 2, "activation": "relu"}),
    ((2, 4, 16, 20), (8, 2, 3, 3), {"groups": 2, "padding": 1}),
    ((1, 2, 9, 9), (1, 2, 2, 2), {}),                                    # 8-wide rows, 1 channel
]


@pytest.mark.parametrize("x_shape,w_shape,kw", SPATIAL_CASES)
def test_spatial_lane_forward_matches_reference(rng, x_shape, w_shape, kw):
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = rng.standard_normal(w_shape).astype(np.float32)
    b = rng.standard_normal(w_shape[0]).astype(np.float32)
    pads = _pads(x_shape, w_shape, kw, None if kw.get("padding") == "same" else
                 [(kw.get("padding", 0),) * 2] * 2)
    want = reference_conv(x, w, b, kw.get("strides", 1), pads, kw.get("dilation", 1),
                          kw.get("groups", 1), kw.get("activation"))
    before = pf.get_num_threads()
    try:
        got = []
        for threads in (1, 2):
            pf.set_num_threads(threads)
            got.append(pf.conv2d(pf.tensor(x), pf.tensor(w), pf.tensor(b), **kw).numpy())
    finally:
        pf.set_num_threads(before)
    np.testing.assert_allclose(got[0], want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    np.testing.assert_array_equal(got[1], got[0])   # images are independent: same bits


# ---- float32 Winograd F(2x2, 3x3): 3x3, unit stride and dilation, >= 16 channels each way ----

WINOGRAD_CASES = [
    ((3, 32, 13, 13), (64, 32, 3, 3), {"activation": "relu"}),    # odd plane, chunks span images
    ((2, 16, 8, 8), (16, 16, 3, 3), {"padding": 1}),
    ((2, 17, 30, 35), (33, 17, 3, 3), {"padding": "same"}),          # 3 segments per tile-row
    ((2, 32, 7, 9), (20, 32, 3, 3), {"padding": ((1, 0), (2, 1)), "activation": "relu"}),
    ((2, 64, 11, 11), (32, 32, 3, 3), {"groups": 2}),
    ((1, 16, 3, 3), (16, 16, 3, 3), {"padding": 1}),                 # one tile
    ((2, 20, 12, 14), (100, 20, 3, 3), {"padding": ((1, 0), (2, 1))}),   # two groups of 64 o
]


@pytest.mark.parametrize("x_shape,w_shape,kw", WINOGRAD_CASES)
def test_winograd_forward_and_gradients_match_reference(rng, x_shape, w_shape, kw):
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = (rng.standard_normal(w_shape) * 0.2).astype(np.float32)
    b = rng.standard_normal(w_shape[0]).astype(np.float32)
    padding = kw.get("padding", 0)
    pads = _pads(x_shape, w_shape, kw, None if padding == "same" else
                 [(padding,) * 2] * 2 if isinstance(padding, int) else list(padding))
    groups, act = kw.get("groups", 1), kw.get("activation")
    want = reference_conv(x, w, b, 1, pads, 1, groups, act)
    gy = rng.standard_normal(want.shape)
    # the input gradient's reference: pyfront's float64 path (im2col + BLAS), its forward
    # checked against the direct reference first
    xd = pf.tensor(x.astype(np.float64), requires_grad=True)
    wd = pf.tensor(w.astype(np.float64), requires_grad=True)
    bd = pf.tensor(b.astype(np.float64), requires_grad=True)
    yd = pf.conv2d(xd, wd, bd, **kw)
    np.testing.assert_allclose(yd.numpy(), want, rtol=1e-12, atol=1e-12)
    yd.backward(pf.tensor(gy))
    before = pf.get_num_threads()
    try:
        got, params = [], []
        for threads in (1, 2):
            pf.set_num_threads(threads)
            xt = pf.tensor(x, requires_grad=True)
            wt, bt = pf.tensor(w, requires_grad=True), pf.tensor(b, requires_grad=True)
            y = pf.conv2d(xt, wt, bt, **kw)
            y.backward(pf.tensor(gy.astype(np.float32)))
            got.append((y.numpy(), xt.grad.numpy()))
            params.append((wt.grad.numpy(), bt.grad.numpy()))
    finally:
        pf.set_num_threads(before)
    np.testing.assert_allclose(got[0][0], want, rtol=1e-5, atol=2e-6 * np.abs(want).max())
    ref = xd.grad.numpy()
    np.testing.assert_allclose(got[0][1], ref, rtol=1e-5, atol=2e-6 * np.abs(ref).max())
    for a, c in zip(got[0], got[1]):         # tiles are independent: the same bits
        np.testing.assert_array_equal(c, a)
    # the weight gradient sums over tiles and images (threads sum their parts)
    for gw, gb in params:
        for g, r in ((gw, wd.grad.numpy()), (gb, bd.grad.numpy())):
            np.testing.assert_allclose(g, r, rtol=1e-5, atol=2e-6 * np.abs(r).max())
    alone = pf.conv2d(pf.tensor(x[-1:]), pf.tensor(w), pf.tensor(b), **kw).numpy()
    np.testing.assert_array_equal(alone[0], got[0][0][-1])   # an image alone or in a batch


# ---- PyTorch parity, float32, weights copied ----

TORCH_CASES = [
    ((4, 3, 17), (5, 3, 4), {"strides": 2, "padding": 2, "dilation": 2}),
    ((4, 4, 12, 11), (6, 2, 3, 3), {"strides": (1, 2), "padding": 1, "groups": 2}),
    ((3, 3, 13, 12), (8, 3, 3, 3), {"padding": "same"}),
    ((128, 32, 13, 13), (64, 32, 3, 3), {}),
    ((2, 2, 6, 7, 5), (4, 2, 3, 3, 2), {"strides": 2, "padding": (1, 1, 0), "dilation": 1}),
    # row stride 2 in the channel-lane direct forward (float32, >= 16 output channels, >= 64
    # rows): a transposed convolution's input gradient, odd sizes with a partial second
    # vector of channels, a dilated row, and 1-D
    ((3, 32, 32, 32), (64, 32, 4, 4), {"strides": 2, "padding": 1}),
    ((2, 8, 15, 21), (24, 8, 3, 3), {"strides": 2, "padding": 1}),
    ((2, 16, 11, 19), (16, 16, 3, 3), {"strides": (1, 2), "padding": (1, 2), "dilation": (1, 2)}),
    ((2, 32, 40), (20, 32, 5), {"strides": 2, "padding": 2}),
    # the direct weight gradient's 16-lane loops (>= 16 channels each way): 2x2 at row stride
    # 2 and 1, 3x3 at row stride 2 with a partial second block of channels, 4x4 at row
    # stride 1 under a column stride of 2, and 3x3 at row stride 1 under a column stride or
    # dilation (unit ones take Winograd)
    ((2, 16, 9, 23), (32, 16, 2, 2), {"strides": 2}),
    ((2, 16, 8, 10), (16, 16, 2, 2), {"padding": 1}),
    ((2, 16, 13, 17), (20, 16, 3, 3), {"strides": 2, "padding": 1}),
    ((2, 16, 10, 12), (16, 16, 4, 4), {"strides": (2, 1), "padding": 2}),
    ((2, 16, 13, 11), (24, 16, 3, 3), {"strides": (2, 1), "padding": 1}),
    ((2, 16, 12, 10), (16, 16, 3, 3), {"dilation": (2, 1)}),
]


def _torch_padding(kw, nd):
    padding = kw.get("padding", 0)
    if isinstance(padding, str) or isinstance(padding, int):
        return padding
    return tuple(padding)


@pytest.mark.parametrize("x_shape,w_shape,kw", TORCH_CASES)
def test_matches_pytorch_forward_and_backward(torch, rng, x_shape, w_shape, kw):
    nd = len(x_shape) - 2
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = (rng.standard_normal(w_shape) * 0.2).astype(np.float32)
    b = rng.standard_normal(w_shape[0]).astype(np.float32)
    tconv = getattr(torch.nn.functional, "conv%dd" % nd)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = tconv(tx, tw, tb, stride=kw.get("strides", 1), padding=_torch_padding(kw, nd),
               dilation=kw.get("dilation", 1), groups=kw.get("groups", 1))
    gy = rng.standard_normal(tuple(ty.shape)).astype(np.float32)
    ty.backward(torch.tensor(gy))
    px, pw, pb = (pf.tensor(a, requires_grad=True) for a in (x, w, b))
    py = CONV[nd](px, pw, pb, **kw)
    py.backward(pf.tensor(gy))
    scale = float(np.abs(ty.detach().numpy()).max())
    np.testing.assert_allclose(py.numpy(), ty.detach().numpy(), rtol=1e-4, atol=1e-5 * scale)
    for ours, theirs in ((px, tx), (pw, tw), (pb, tb)):
        ref = theirs.grad.numpy()
        np.testing.assert_allclose(ours.grad.numpy(), ref, rtol=1e-4,
                                   atol=1e-5 * float(np.abs(ref).max()))


def test_fused_relu_matches_pytorch(torch, rng):
    x = rng.standard_normal((6, 3, 10, 10)).astype(np.float32)
    w = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = torch.relu(torch.nn.functional.conv2d(tx, tw, tb, padding=1))
    ty.sum().backward()
    px, pw, pb = (pf.tensor(a, requires_grad=True) for a in (x, w, b))
    py = pf.conv2d(px, pw, pb, padding=1, activation="relu")
    py.sum().backward()
    np.testing.assert_allclose(py.numpy(), ty.detach().numpy(), rtol=1e-4, atol=1e-4)
    for ours, theirs in ((px, tx), (pw, tw), (pb, tb)):
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-4, atol=1e-3)


# One image on several threads: the Winograd and spatial-lane loops split its output channels
# among the threads (each share's Winograd weights packed by the thread that reads them) when
# the image has at least 2^20 multiply-adds; smaller ones run on one thread.
ONE_IMAGE_CASES = [WINOGRAD_CASES[0], WINOGRAD_CASES[2], WINOGRAD_CASES[4], WINOGRAD_CASES[5],
                   SPATIAL_CASES[0], SPATIAL_CASES[1], SPATIAL_CASES[5],
                   # big enough to split: 7.4M, 4.4M and 4.0M multiply-adds
                   ((1, 32, 20, 20), (64, 32, 3, 3), {"padding": 1, "activation": "relu"}),
                   ((1, 64, 24, 24), (32, 32, 3, 3), {"groups": 2}),
                   ((1, 1, 120, 120), (32, 1, 3, 3), {"activation": "relu"})]


@pytest.mark.parametrize("x_shape,w_shape,kw", ONE_IMAGE_CASES)
def test_one_image_split_over_threads_gives_the_batch_bits(rng, x_shape, w_shape, kw):
    x = rng.standard_normal(x_shape).astype(np.float32)
    w = (rng.standard_normal(w_shape) * 0.2).astype(np.float32)
    b = rng.standard_normal(w_shape[0]).astype(np.float32)
    winograd = w_shape[1] * w_shape[2] * w_shape[3] >= 64
    before = pf.get_num_threads()
    try:
        pf.set_num_threads(1)
        batch = pf.conv2d(pf.tensor(x), pf.tensor(w), pf.tensor(b), **kw)
        gy = rng.standard_normal(batch.shape).astype(np.float32)
        got = []
        for threads in (1, 2, 3, 4):
            pf.set_num_threads(threads)
            xt = pf.tensor(x[-1:], requires_grad=True)
            y = pf.conv2d(xt, pf.tensor(w), pf.tensor(b), **kw)
            y.backward(pf.tensor(gy[-1:]))
            got.append((y.numpy(), xt.grad.numpy()))
    finally:
        pf.set_num_threads(before)
    for y, gx in got:
        np.testing.assert_array_equal(y[0], batch.numpy()[-1])
        if winograd:        # the input gradient is Winograd too: the transposed packing
            np.testing.assert_array_equal(gx, got[0][1])
    padding = kw.get("padding", 0)
    pads = _pads(x_shape, w_shape, kw, None if padding == "same" else
                 [(padding,) * 2] * 2 if isinstance(padding, int) else list(padding))
    want = reference_conv(x[-1:], w, b, kw.get("strides", 1), pads, kw.get("dilation", 1),
                          kw.get("groups", 1), kw.get("activation"))
    np.testing.assert_allclose(got[0][0], want, rtol=1e-5, atol=2e-6 * np.abs(want).max())


# ---- the native kernel with a caller's workspace ----

def _conv_args(x, w, y, iattr, workspace=None):
    bufs = [cpu.Buf(a, a.shape, pf.float32) for a in (x, w, y)]
    args, keep = cpu.new_args([bufs[0].desc(), bufs[1].desc()], [bufs[2].desc()], iattr, (),
                              workspace)
    return args, (keep, bufs)


def test_kernel_uses_the_workspace_it_asks_for(rng):
    x = rng.standard_normal((6, 4, 9, 9)).astype(np.float32)
    w = rng.standard_normal((8, 4, 3, 3)).astype(np.float32)
    expected = reference_conv(x, w, pads=[(1, 1), (1, 1)])
    iattr = (2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0)
    y = np.zeros(expected.shape, np.float32)
    args, keep = _conv_args(x, w, y, iattr)
    nbytes = cpu.workspace_bytes("conv", args)
    assert nbytes > 0
    for size in (nbytes, nbytes // pf.get_num_threads(), 64):   # fits all, one part, too small
        ws = np.zeros(max(size // 4, 1), np.float32)
        y[...] = 0
        args, keep = _conv_args(x, w, y, iattr, cpu.Buf(ws, ws.shape, pf.float32))
        status = cpu.lib.pf_run(cpu.kernel_id("conv"), args)
        assert status == 0
        np.testing.assert_allclose(y, expected, rtol=1e-4, atol=1e-4)


def test_kernel_rejects_inconsistent_shapes(rng):
    x = np.zeros((2, 3, 8, 8), np.float32)
    w = np.zeros((4, 3, 3, 3), np.float32)
    y = np.zeros((2, 4, 7, 6), np.float32)      # should be (2, 4, 6, 6)
    args, keep = _conv_args(x, w, y, (2, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0))
    status = cpu.lib.pf_run(cpu.kernel_id("conv"), args)
    assert status == cpu.lib.PF_ERR_SHAPE
    assert "should have size 6" in cpu.ffi.string(cpu.lib.pf_last_error()).decode()


# ---- errors name the op, the layer and the shapes ----

def test_wrong_channel_count_names_layer_and_shapes():
    layer = pf.nn.Conv2D(8, 3, name="features")
    layer(pf.zeros(2, 1, 8, 8))
    with pytest.raises(pf.ShapeError) as e:
        layer(pf.zeros(2, 3, 8, 8))
    msg = str(e.value)
    assert "conv2d in layer 'features'" in msg
    assert "(2, 3, 8, 8) has 3 channels" in msg and "(8, 1, 3, 3) expects 1" in msg


def test_wrong_rank_is_refused():
    with pytest.raises(pf.ShapeError, match=r"the input must be \(batch, channels, height, "
                                            r"width\) with 4 dims, got \(3, 8, 8\)"):
        pf.conv2d(pf.zeros(3, 8, 8), pf.zeros(2, 3, 3, 3))
    with pytest.raises(pf.ShapeError, match="the kernel must be"):
        pf.conv1d(pf.zeros(2, 3, 8), pf.zeros(2, 3, 3, 3))


def test_kernel_larger_than_padded_input():
    with pytest.raises(pf.ShapeError, match=r"kernel \(5, 5\) spans 5 in spatial dim 0 but the "
                                            r"input \(1, 1, 3, 3\) padded by \(1, 0\) has only 4"
                                            ) as e:
        pf.conv2d(pf.zeros(1, 1, 3, 3), pf.zeros(1, 1, 5, 5), padding=((1, 0), (1, 1)))
    assert "conv2d" in str(e.value)
    with pytest.raises(pf.ShapeError, match="dilated by"):
        pf.conv1d(pf.zeros(1, 1, 6), pf.zeros(1, 1, 3), dilation=3)


def test_groups_must_divide_channels():
    with pytest.raises(pf.ShapeError, match="groups=3 expects 6"):
        pf.conv2d(pf.zeros(1, 4, 5, 5), pf.zeros(3, 2, 3, 3), groups=3)
    with pytest.raises(pf.ShapeError, match="not divisible by groups=2"):
        pf.conv2d(pf.zeros(1, 4, 5, 5), pf.zeros(3, 2, 3, 3), groups=2)
    with pytest.raises(pf.ShapeError, match="groups=3 does not divide the 4 input channels"):
        pf.nn.Conv2D(3, 3, groups=3)(pf.zeros(1, 4, 5, 5))


def test_bad_arguments():
    x, w = pf.zeros(1, 2, 5), pf.zeros(2, 2, 3)
    with pytest.raises(ValueError, match="strides"):
        pf.conv1d(x, w, strides=0)
    with pytest.raises(ValueError, match="padding"):
        pf.conv1d(x, w, padding="full")
    with pytest.raises(ValueError, match="activation"):
        pf.conv1d(x, w, activation="gelu")
    with pytest.raises(pf.DTypeError):
        pf.conv1d(x, pf.zeros(2, 2, 3, dtype="float64"))
    with pytest.raises(pf.ShapeError, match="bias"):
        pf.conv1d(x, w, pf.zeros(3))
