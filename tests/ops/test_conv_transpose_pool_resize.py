"""conv_transpose1d/2d/3d, pooling with dilation and ceil_mode (and integer max-pool),
interpolate/upsample, group_norm and instance_norm: against PyTorch (values and gradients in
float64), finite differences, eager equals compiled."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import pyfront as pf
from pyfront.testing import check_grad


def _against_torch(pf_fn, torch_fn, arrays, rng, tol=1e-10):
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    want = torch_fn(*ts)
    ps = [pf.tensor(a, requires_grad=True) for a in arrays]
    got = pf_fn(*ps)
    assert got.shape == tuple(want.shape)
    np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=tol, atol=tol)
    seed = rng.standard_normal(tuple(want.shape))
    want.backward(torch.tensor(seed))
    got.backward(pf.tensor(seed))
    for p, t in zip(ps, ts):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("nd, stride, padding, output_padding, dilation, groups", [
    (1, 2, 1, 1, 1, 1), (1, 3, 0, 2, 2, 2), (2, 2, 1, 1, 2, 2), (2, 1, 0, 0, 1, 1),
    (2, (2, 3), (1, 0), (1, 2), (1, 2), 1), (3, 2, 1, 0, 1, 2),
])
def test_conv_transpose_matches_torch(nd, stride, padding, output_padding, dilation, groups,
                                      rng):
    x = rng.standard_normal((2, 4) + (4,) * nd)
    w = rng.standard_normal((4, 3) + (3,) * nd)
    b = rng.standard_normal(3 * groups)
    ours = getattr(pf, "conv_transpose%dd" % nd)
    theirs = getattr(F, "conv_transpose%dd" % nd)
    _against_torch(lambda x, w, b: ours(x, w, b, stride, padding, output_padding, dilation,
                                        groups),
                   lambda x, w, b: theirs(x, w, b, stride, padding, output_padding, groups,
                                          dilation), [x, w, b], rng)


@pytest.mark.parametrize("in_hw, k, stride, padding, output_padding, dilation", [
    ((16, 16), 4, 2, 1, 0, 1), ((7, 37), 3, 2, 0, 1, 1), ((9, 21), 5, 3, 2, 2, 1),
    ((6, 19), 3, 2, 2, 1, 2), ((5, 40), 4, (2, 4), (1, 3), (0, 2), 1), ((3, 33), 1, 2, 0, 0, 1),
])
def test_conv_transpose_float32_wide_rows_match_torch(in_hw, k, stride, padding, output_padding,
                                                      dilation, rng):
    """float32 on rows wider than a vector: the strided transposed convolution's vector
    col2im, and its gradient's strided convolution (the vector strided im2col)."""
    x = rng.standard_normal((3, 5) + in_hw).astype(np.float32)
    w = (rng.standard_normal((5, 6, k, k)) * 0.3).astype(np.float32)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    want = F.conv_transpose2d(tx, tw, None, stride, padding, output_padding, 1, dilation)
    px, pw = pf.tensor(x, requires_grad=True), pf.tensor(w, requires_grad=True)
    got = pf.conv_transpose2d(px, pw, None, stride, padding, output_padding, dilation)
    assert got.shape == tuple(want.shape)
    np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=1e-4, atol=1e-4)
    seed = rng.standard_normal(tuple(want.shape)).astype(np.float32)
    want.backward(torch.tensor(seed))
    got.backward(pf.tensor(seed))
    for p, t in ((px, tx), (pw, tw)):
        ref = t.grad.numpy()
        np.testing.assert_allclose(p.grad.numpy(), ref, rtol=1e-4,
                                   atol=1e-5 * float(np.abs(ref).max()))


def test_conv_transpose_second_derivatives_errors_and_compiled(rng):
    x, w = rng.standard_normal((1, 2, 3, 3)), rng.standard_normal((2, 2, 2, 2))
    check_grad(lambda x, w: pf.conv_transpose2d(x, w, strides=2, padding=1) ** 2, x, w)
    f32 = [a.astype(np.float32) for a in (x, w)]
    fn = lambda x, w: pf.conv_transpose2d(x, w, None, 2, 1, 1)          # noqa: E731
    np.testing.assert_allclose(pf.jit(fn)(*map(pf.tensor, f32)).numpy(),
                               fn(*map(pf.tensor, f32)).numpy(), rtol=1e-6)
    with pytest.raises(pf.ShapeError, match=r"conv_transpose2d: the input \(1, 2, 3, 3\) has 2 "
                                            r"channels but the kernel \(3, 2, 2, 2\) expects 3"):
        pf.conv_transpose2d(pf.tensor(x), pf.tensor(rng.standard_normal((3, 2, 2, 2))))
    with pytest.raises(ValueError, match="output_padding 2 in dim 0 must be smaller than the "
                                         "stride or the dilation"):
        pf.conv_transpose2d(pf.tensor(x), pf.tensor(w), strides=2, output_padding=2)


@pytest.mark.parametrize("kernel, stride, padding, dilation, ceil_mode", [
    (3, 2, 1, 1, True), (3, 2, 1, 2, False), (2, 3, 0, 1, True), (3, 2, 1, 2, True),
    (2, 2, 0, 1, True),            # 2x2 windows with an end overhang (the native fast path)
])
def test_max_pool_dilation_ceil_mode(kernel, stride, padding, dilation, ceil_mode, rng):
    x = rng.standard_normal((2, 3, 9, 7))
    _against_torch(lambda t: pf.max_pool2d(t, kernel, stride, padding, dilation, ceil_mode),
                   lambda t: F.max_pool2d(t, kernel, stride, padding, dilation, ceil_mode),
                   [x], rng)
    _against_torch(lambda t: pf.max_pool1d(t, kernel, stride, padding, dilation, ceil_mode),
                   lambda t: F.max_pool1d(t, kernel, stride, padding, dilation, ceil_mode),
                   [x[:, :, 0]], rng)


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("kernel, stride, padding", [(3, 2, 1), (2, 3, 0), (2, 2, 1),
                                                     (2, 2, "valid")])
def test_avg_pool_ceil_mode(kernel, stride, padding, count_include_pad, rng):
    x = rng.standard_normal((2, 3, 9, 8))
    _against_torch(lambda t: pf.avg_pool2d(t, kernel, stride, padding, count_include_pad, True),
                   lambda t: F.avg_pool2d(t, kernel, stride, 0 if padding == "valid" else padding,
                                          True, count_include_pad),
                   [x], rng)


def test_integer_max_pool_keeps_its_dtype(rng):
    x = rng.integers(-50, 50, (2, 3, 7, 5))
    y = pf.max_pool2d(pf.tensor(x), 2, ceil_mode=True, padding=((1, 0), (0, 0)))
    assert y.dtype is pf.int64
    want = F.max_pool2d(torch.tensor(x).double(), 2, padding=0, ceil_mode=True)
    # PyTorch pads both ends; ours pads the top only: compare with an explicit numpy reference
    padded = np.pad(x, ((0, 0), (0, 0), (1, 0), (0, 1)), constant_values=-10**9)
    ref = padded[:, :, :8, :6].reshape(2, 3, 4, 2, 3, 2).max(axis=(3, 5))
    np.testing.assert_array_equal(y.numpy(), ref)
    assert want.shape[2:] == (4, 3)


@pytest.mark.parametrize("mode, align_corners", [("nearest", None), ("bilinear", False),
                                                 ("bilinear", True)])
@pytest.mark.parametrize("kw", [{"scale_factor": 2}, {"size": (5, 13)},
                                {"scale_factor": (1.5, 0.5)}])
def test_interpolate_matches_torch(mode, align_corners, kw, rng):
    x = rng.standard_normal((2, 3, 6, 5))
    _against_torch(lambda t: pf.interpolate(t, mode=mode, align_corners=align_corners, **kw),
                   lambda t: F.interpolate(t, mode=mode, align_corners=align_corners, **kw),
                   [x], rng)


def test_interpolate_1d_3d_and_errors(rng):
    x = rng.standard_normal((1, 2, 4, 3, 5))
    _against_torch(lambda t: pf.interpolate(t, scale_factor=2, mode="trilinear"),
                   lambda t: F.interpolate(t, scale_factor=2, mode="trilinear"), [x], rng)
    _against_torch(lambda t: pf.upsample(t, 3, mode="linear"),
                   lambda t: F.interpolate(t, scale_factor=3, mode="linear"), [x[:, :, 0, 0]],
                   rng)
    with pytest.raises(ValueError, match="exactly one of size and scale_factor"):
        pf.interpolate(pf.tensor(x), size=4, scale_factor=2)
    with pytest.raises(ValueError, match="mode must be one of"):
        pf.interpolate(pf.tensor(x), size=4, mode="area")
    with pytest.raises(pf.ShapeError, match="'bicubic' needs x \\(batch, channels, height, "):
        pf.interpolate(pf.tensor(x), size=4, mode="bicubic")     # 2 spatial dims, as PyTorch


def test_group_and_instance_norm(rng):
    x = rng.standard_normal((2, 6, 3, 4))
    w, b = rng.standard_normal(6), rng.standard_normal(6)
    _against_torch(lambda x, w, b: pf.group_norm(x, 3, w, b),
                   lambda x, w, b: F.group_norm(x, 3, w, b), [x, w, b], rng)
    _against_torch(lambda x, w, b: pf.instance_norm(x, w, b, eps=1e-3),
                   lambda x, w, b: F.instance_norm(x, weight=w, bias=b, eps=1e-3), [x, w, b], rng)
    with pytest.raises(pf.ShapeError, match=r"group_norm: num_groups=4 must be a positive int "
                                            r"dividing the 6 channels"):
        pf.group_norm(pf.tensor(x), 4)
