"""torch.nn.functional's second batch (pyfront.ops: shrink and threshold activations, rrelu,
adaptive max and power-average pooling, max unpooling, channel and alpha dropout, the pixel
shuffles, unfold/fold, rms_norm, local_response_norm, scaled_dot_product_attention, distances,
embedding_bag, the losses (ctc_loss included), affine_grid and grid_sample): values and
gradients against PyTorch on float64 inputs, gradients against float64 finite differences,
eager against compiled, the random ops' statistics and state, and the errors. F.<name> is each
of them."""
import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import pyfront as pf
import pyfront.nn.functional as F
from pyfront.ops.dropout import new_state, uniform_like
from pyfront.testing import check_grad

R = np.random.default_rng(0)


def _f(*shape, scale=1.0):
    return R.standard_normal(shape) * scale


def _np(x):
    return x.detach().numpy() if isinstance(x, torch.Tensor) else x.numpy()


class Case:
    """pf_fn and torch_fn of the same float64 arrays (args); wrt: the args whose gradients are
    compared (default: all); fd: also check against finite differences; jit: also compiled;
    grad: whether to compare gradients at all."""

    def __init__(self, name, pf_fn, torch_fn, *args, wrt=None, fd=True, jit=True, grad=True,
                 tol=1e-10):
        self.name, self.pf_fn, self.torch_fn, self.args = name, pf_fn, torch_fn, args
        self.wrt = tuple(range(len(args))) if wrt is None else wrt
        self.fd, self.jit, self.grad, self.tol = fd, jit, grad, tol

    def __repr__(self):
        return self.name


def _both(name, pf_call, torch_call, *args, **kw):
    """A case whose two functions are the same call on pf and torch.nn.functional."""
    return Case(name, lambda *a: pf_call(F, *a), lambda *a: torch_call(TF, *a), *args, **kw)


_TG = R.integers(0, 5, 4)
_ML = np.array([[3, 0, -1, 1, 2], [1, 2, 3, 4, 0], [-1, 2, 0, 0, 0], [4, 4, -1, 0, 0]])
_SIGNS = np.sign(_f(4, 5))
_CTC_T, _CTC_N, _CTC_C = 9, 3, 5
_CTC_TARGETS = R.integers(1, _CTC_C, (_CTC_N, 3))
_CTC_IN, _CTC_TL = np.array([9, 7, 5]), np.array([3, 1, 0])
_EB_W = _f(6, 3)
_EB_I = np.array([1, 2, 4, 4, 0, 3, 5])
_EB_O = np.array([0, 2, 2, 5])
# where max_pool2d (2 x 2, stride 2) of a (2, 3, 6, 7) input found its maxima
_POOL_IDX = TF.max_pool2d(torch.tensor(_f(2, 3, 6, 7)), 2, 2, return_indices=True)[1].numpy()


def _t(a):
    return torch.tensor(a)


def _p(a):
    return pf.tensor(a)


CASES = [
    # activations
    _both("hardshrink", lambda M, x: M.hardshrink(x, 0.4), lambda M, x: M.hardshrink(x, 0.4),
          _f(4, 5)),
    _both("softshrink", lambda M, x: M.softshrink(x), lambda M, x: M.softshrink(x), _f(4, 5)),
    _both("tanhshrink", lambda M, x: M.tanhshrink(x), lambda M, x: M.tanhshrink(x), _f(4, 5)),
    _both("threshold", lambda M, x: M.threshold(x, 0.2, -3.0),
          lambda M, x: M.threshold(x, 0.2, -3.0), _f(4, 5)),
    _both("rrelu_eval", lambda M, x: M.rrelu(x, 0.1, 0.4), lambda M, x: M.rrelu(x, 0.1, 0.4),
          _f(4, 5)),
    # pooling
    _both("adaptive_max_pool1d", lambda M, x: M.adaptive_max_pool1d(x, 3),
          lambda M, x: M.adaptive_max_pool1d(x, 3), _f(2, 3, 7)),
    _both("adaptive_max_pool1d_indices", lambda M, x: M.adaptive_max_pool1d(x, 4, True)[0],
          lambda M, x: M.adaptive_max_pool1d(x, 4, True)[0], _f(3, 9)),
    _both("adaptive_max_pool2d", lambda M, x: M.adaptive_max_pool2d(x, (3, 2)),
          lambda M, x: M.adaptive_max_pool2d(x, (3, 2)), _f(2, 3, 7, 5)),
    _both("adaptive_max_pool2d_none", lambda M, x: M.adaptive_max_pool2d(x, (None, 4)),
          lambda M, x: M.adaptive_max_pool2d(x, (None, 4)), _f(3, 5, 6)),
    _both("lp_pool1d", lambda M, x: M.lp_pool1d(x, 2, 3, 2),
          lambda M, x: M.lp_pool1d(x, 2, 3, 2), _f(2, 3, 8)),
    _both("lp_pool1d_ceil", lambda M, x: M.lp_pool1d(x, 1.0, 3, 2, True),
          lambda M, x: M.lp_pool1d(x, 1.0, 3, 2, True), np.abs(_f(2, 3, 8))),
    _both("lp_pool2d", lambda M, x: M.lp_pool2d(x, 4, (2, 3)),
          lambda M, x: M.lp_pool2d(x, 4, (2, 3)), _f(2, 2, 4, 6)),
    _both("lp_pool2d_inf", lambda M, x: M.lp_pool2d(x, float("inf"), 2),
          lambda M, x: M.lp_pool2d(x, float("inf"), 2), _f(2, 2, 4, 6)),
    Case("max_unpool2d",
         lambda x: F.max_unpool2d(x, _p(_POOL_IDX), 2, output_size=(6, 7)),
         lambda x: TF.max_unpool2d(x, _t(_POOL_IDX), 2, output_size=(6, 7)), _f(2, 3, 3, 3)),
    # rearranging
    _both("pixel_shuffle", lambda M, x: M.pixel_shuffle(x, 2),
          lambda M, x: M.pixel_shuffle(x, 2), _f(2, 8, 3, 2)),
    _both("pixel_unshuffle", lambda M, x: M.pixel_unshuffle(x, 3),
          lambda M, x: M.pixel_unshuffle(x, 3), _f(2, 3, 6, 3)),
    _both("unfold", lambda M, x: M.unfold(x, (2, 3), 1, (1, 0), 2),
          lambda M, x: M.unfold(x, (2, 3), 1, (1, 0), 2), _f(2, 3, 6, 7)),
    _both("unfold_dilated_unbatched", lambda M, x: M.unfold(x, 2, dilation=2, stride=1),
          lambda M, x: M.unfold(x, 2, dilation=2, stride=1), _f(2, 5, 5)),
    _both("fold", lambda M, x: M.fold(x, (5, 6), 3, padding=1),
          lambda M, x: M.fold(x, (5, 6), 3, padding=1), _f(2, 18, 30)),
    _both("fold_strided", lambda M, x: M.fold(x, (7, 5), (3, 2), 1, 0, (2, 3)),
          lambda M, x: M.fold(x, (7, 5), (3, 2), 1, 0, (2, 3)), _f(12, 6)),
    # normalization
    _both("rms_norm", lambda M, x, w: M.rms_norm(x, (5,), w),
          lambda M, x, w: M.rms_norm(x, (5,), w), _f(3, 4, 5), _f(5)),
    _both("rms_norm_eps_2d", lambda M, x: M.rms_norm(x, (4, 5), eps=0.1),
          lambda M, x: M.rms_norm(x, (4, 5), eps=0.1), _f(3, 4, 5)),
    _both("local_response_norm", lambda M, x: M.local_response_norm(x, 3, 0.2, 0.7, 1.5),
          lambda M, x: M.local_response_norm(x, 3, 0.2, 0.7, 1.5), _f(2, 5, 3, 2)),
    _both("local_response_norm_3d", lambda M, x: M.local_response_norm(x, 4),
          lambda M, x: M.local_response_norm(x, 4), _f(2, 6, 4)),
    # attention
    _both("sdpa", lambda M, q, k, v: M.scaled_dot_product_attention(q, k, v),
          lambda M, q, k, v: M.scaled_dot_product_attention(q, k, v),
          _f(2, 3, 4, 5), _f(2, 3, 6, 5), _f(2, 3, 6, 2)),
    _both("sdpa_causal_scale", lambda M, q, k, v: M.scaled_dot_product_attention(
        q, k, v, is_causal=True, scale=0.3), lambda M, q, k, v: M.scaled_dot_product_attention(
        q, k, v, is_causal=True, scale=0.3), _f(2, 4, 3), _f(2, 6, 3), _f(2, 6, 2)),
    Case("sdpa_bool_mask_with_empty_row",
         lambda q, k, v: F.scaled_dot_product_attention(q, k, v, _p(np.array(
             [[True, False, True], [False, False, False]]))),
         lambda q, k, v: TF.scaled_dot_product_attention(q, k, v, _t(np.array(
             [[True, False, True], [False, False, False]]))),
         _f(2, 2, 4), _f(2, 3, 4), _f(2, 3, 3)),
    _both("sdpa_float_mask", lambda M, q, k, v, m: M.scaled_dot_product_attention(q, k, v, m),
          lambda M, q, k, v, m: M.scaled_dot_product_attention(q, k, v, m),
          _f(2, 3, 4, 5), _f(2, 3, 6, 5), _f(2, 3, 6, 2), _f(3, 1, 6)),
    _both("sdpa_gqa", lambda M, q, k, v: M.scaled_dot_product_attention(q, k, v,
                                                                         enable_gqa=True),
          lambda M, q, k, v: M.scaled_dot_product_attention(q, k, v, enable_gqa=True),
          _f(2, 4, 3, 5), _f(2, 2, 6, 5), _f(2, 2, 6, 2)),
    # distances
    _both("pairwise_distance", lambda M, a, b: M.pairwise_distance(a, b),
          lambda M, a, b: M.pairwise_distance(a, b), _f(4, 5), _f(4, 5)),
    _both("pairwise_distance_p3_keepdim", lambda M, a, b: M.pairwise_distance(a, b, 3.0, 0.1,
                                                                              keepdim=True),
          lambda M, a, b: M.pairwise_distance(a, b, 3.0, 0.1, keepdim=True), _f(4, 5), _f(5)),
    _both("pdist", lambda M, x: M.pdist(x), lambda M, x: M.pdist(x), _f(5, 3)),
    _both("pdist_p1", lambda M, x: M.pdist(x, 1.0), lambda M, x: M.pdist(x, 1.0), _f(4, 3)),
    _both("pdist_p_half", lambda M, x: M.pdist(x, 0.5), lambda M, x: M.pdist(x, 0.5),
          _f(4, 3)),
    # embedding bags
    Case("embedding_bag_mean_offsets",
         lambda w: F.embedding_bag(_p(_EB_I), w, _p(_EB_O)),
         lambda w: TF.embedding_bag(_t(_EB_I), w, _t(_EB_O)), _EB_W),
    Case("embedding_bag_max_padding_last_offset",
         lambda w: F.embedding_bag(_p(_EB_I), w, _p(np.append(_EB_O, 7)), mode="max",
                                   include_last_offset=True, padding_idx=4),
         lambda w: TF.embedding_bag(_t(_EB_I), w, _t(np.append(_EB_O, 7)), mode="max",
                                    include_last_offset=True, padding_idx=4), _EB_W),
    Case("embedding_bag_sum_weighted_2d",
         lambda w, s: F.embedding_bag(_p(_EB_I[:6].reshape(2, 3)), w, mode="sum",
                                      per_sample_weights=s),
         lambda w, s: TF.embedding_bag(_t(_EB_I[:6].reshape(2, 3)), w, mode="sum",
                                       per_sample_weights=s), _EB_W, _f(2, 3)),
    # losses
    _both("gaussian_nll_loss", lambda M, x, y, v: M.gaussian_nll_loss(x, y, v),
          lambda M, x, y, v: M.gaussian_nll_loss(x, y, v), _f(4, 5), _f(4, 5),
          np.abs(_f(4, 5)) + 0.1),
    _both("gaussian_nll_loss_short_var_full_sum", lambda M, x, y, v: M.gaussian_nll_loss(
        x, y, v, True, reduction="sum"), lambda M, x, y, v: M.gaussian_nll_loss(
        x, y, v, True, reduction="sum"), _f(4, 5), _f(4, 5), np.abs(_f(4)) + 0.1),
    _both("gaussian_nll_loss_shared_var_none", lambda M, x, y, v: M.gaussian_nll_loss(
        x, y, v, reduction="none"), lambda M, x, y, v: M.gaussian_nll_loss(
        x, y, v, reduction="none"), _f(4, 5), _f(4, 5), np.abs(_f(4, 1)) + 0.1),
    _both("poisson_nll_loss", lambda M, x, y: M.poisson_nll_loss(x, y),
          lambda M, x, y: M.poisson_nll_loss(x, y), _f(4, 5),
          R.poisson(2.0, (4, 5)).astype(float), wrt=(0,)),
    _both("poisson_nll_loss_rate_full", lambda M, x, y: M.poisson_nll_loss(
        x, y, False, True, reduction="none"), lambda M, x, y: M.poisson_nll_loss(
        x, y, False, True, reduction="none"), np.abs(_f(4, 5)) + 0.1,
        R.poisson(2.0, (4, 5)).astype(float), wrt=(0,)),
    _both("soft_margin_loss", lambda M, x, y: M.soft_margin_loss(x, y, reduction="sum"),
          lambda M, x, y: M.soft_margin_loss(x, y, reduction="sum"), _f(4, 5), _SIGNS,
          wrt=(0,)),
    Case("multi_margin_loss", lambda x: F.multi_margin_loss(x, _p(_TG)),
         lambda x: TF.multi_margin_loss(x, _t(_TG)), _f(4, 5)),
    Case("multi_margin_loss_p2_weight_none",
         lambda x, w: F.multi_margin_loss(x, _p(_TG), 2, 0.7, w, reduction="none"),
         lambda x, w: TF.multi_margin_loss(x, _t(_TG), 2, 0.7, w, reduction="none"),
         _f(4, 5), np.abs(_f(5)), wrt=(0,)),
    Case("multi_margin_loss_unbatched", lambda x: F.multi_margin_loss(x, _p(np.array(2))),
         lambda x: TF.multi_margin_loss(x, _t(np.array(2))), _f(5)),
    Case("multilabel_margin_loss", lambda x: F.multilabel_margin_loss(x, _p(_ML)),
         lambda x: TF.multilabel_margin_loss(x, _t(_ML)), _f(4, 5)),
    Case("multilabel_margin_loss_unbatched_sum",
         lambda x: F.multilabel_margin_loss(x, _p(_ML[3]), reduction="sum"),
         lambda x: TF.multilabel_margin_loss(x, _t(_ML[3]), reduction="sum"), _f(5)),
    _both("multilabel_soft_margin_loss", lambda M, x, y, w: M.multilabel_soft_margin_loss(
        x, y, w), lambda M, x, y, w: M.multilabel_soft_margin_loss(x, y, w), _f(4, 5),
        (_f(4, 5) > 0).astype(float), np.abs(_f(5)), wrt=(0, 1)),
    _both("hinge_embedding_loss", lambda M, x, y: M.hinge_embedding_loss(x, y, 0.5),
          lambda M, x, y: M.hinge_embedding_loss(x, y, 0.5), _f(4, 5), _SIGNS, wrt=(0,)),
    _both("cosine_embedding_loss", lambda M, a, b, y: M.cosine_embedding_loss(a, b, y, 0.2),
          lambda M, a, b, y: M.cosine_embedding_loss(a, b, y, 0.2), _f(4, 5), _f(4, 5),
          _SIGNS[:, 0], wrt=(0, 1)),
    _both("triplet_margin_loss", lambda M, a, p, n: M.triplet_margin_loss(a, p, n),
          lambda M, a, p, n: M.triplet_margin_loss(a, p, n), _f(4, 5), _f(4, 5), _f(4, 5)),
    _both("triplet_margin_loss_swap_p1_none", lambda M, a, p, n: M.triplet_margin_loss(
        a, p, n, 0.5, 1.0, swap=True, reduction="none"), lambda M, a, p, n:
        M.triplet_margin_loss(a, p, n, 0.5, 1.0, swap=True, reduction="none"),
        _f(4, 5), _f(4, 5), _f(4, 5)),
    Case("ctc_loss_of_log_softmax",
         lambda z: F.ctc_loss(pf.log_softmax(z, 2), _p(_CTC_TARGETS), _p(_CTC_IN),
                              _p(_CTC_TL)),
         lambda z: TF.ctc_loss(TF.log_softmax(z, 2), _t(_CTC_TARGETS), _t(_CTC_IN),
                               _t(_CTC_TL)), _f(_CTC_T, _CTC_N, _CTC_C)),
    # torch's gradient with respect to log_probs themselves (not the true one: see ctc_loss)
    Case("ctc_loss_log_probs_sum_blank_2",
         lambda lp: F.ctc_loss(lp, _p(_CTC_TARGETS), _CTC_IN.tolist(), _CTC_TL.tolist(), 2,
                               "sum"),
         lambda lp: TF.ctc_loss(lp, _t(_CTC_TARGETS), _CTC_IN.tolist(), _CTC_TL.tolist(), 2,
                                "sum"),
         torch.log_softmax(_t(_f(_CTC_T, _CTC_N, _CTC_C)), 2).numpy(), fd=False),
    # spatial transformers
    _both("affine_grid", lambda M, t: M.affine_grid(t, (2, 3, 4, 5), False),
          lambda M, t: M.affine_grid(t, (2, 3, 4, 5), False), _f(2, 2, 3)),
    _both("affine_grid_3d_align_corners", lambda M, t: M.affine_grid(t, (2, 1, 2, 3, 4), True),
          lambda M, t: M.affine_grid(t, (2, 1, 2, 3, 4), True), _f(2, 3, 4)),
] + [_both("grid_sample_%s_%s_%s" % (mode, padding, align),
           lambda M, x, g, m=mode, p=padding, a=align: M.grid_sample(x, g, m, p, a),
           lambda M, x, g, m=mode, p=padding, a=align: M.grid_sample(x, g, m, p, a),
           _f(2, 2, 4, 5), R.uniform(-1.3, 1.3, (2, 3, 2, 2)),
           wrt=(0,) if mode == "nearest" else (0, 1), fd=not align)
     for mode in ("bilinear", "nearest", "bicubic") for padding in ("zeros", "border",
                                                                     "reflection")
     for align in (False, True)] + [
    _both("grid_sample_3d_%s_%s" % (mode, padding),
          lambda M, x, g, m=mode, p=padding: M.grid_sample(x, g, m, p, False),
          lambda M, x, g, m=mode, p=padding: M.grid_sample(x, g, m, p, False),
          _f(2, 1, 3, 4, 5), R.uniform(-1.2, 1.2, (2, 2, 2, 2, 3)),
          wrt=(0,) if mode == "nearest" else (0, 1))
    for mode in ("bilinear", "nearest") for padding in ("zeros", "border", "reflection")]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_values_and_gradients_match_torch(case):
    ps = [pf.tensor(a, requires_grad=i in case.wrt) for i, a in enumerate(case.args)]
    ts = [torch.tensor(a, requires_grad=i in case.wrt) for i, a in enumerate(case.args)]
    got, want = case.pf_fn(*ps), case.torch_fn(*ts)
    assert got.shape == tuple(want.shape) and got.dtype.name == "float64"
    np.testing.assert_allclose(got.numpy(), _np(want), rtol=case.tol, atol=case.tol)
    seed = np.random.default_rng(1).standard_normal(tuple(want.shape))
    mine = pf.grad(got, [ps[i] for i in case.wrt], grad_outputs=pf.tensor(seed))
    theirs = torch.autograd.grad(want, [ts[i] for i in case.wrt], torch.tensor(seed))
    for i, a, b in zip(case.wrt, mine, theirs):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-8, atol=1e-9,
                                   err_msg="gradient of argument %d" % i)


@pytest.mark.parametrize("case", [c for c in CASES if c.fd], ids=[c.name for c in CASES
                                                                     if c.fd])
def test_gradients_match_finite_differences(case):
    check_grad(case.pf_fn, *case.args, wrt=case.wrt, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_compiled_equals_eager(case):
    xs = [pf.tensor(a.astype(np.float32)) for a in case.args]
    eager = case.pf_fn(*xs)
    compiled = pf.jit(case.pf_fn)(*xs)
    np.testing.assert_allclose(compiled.numpy(), eager.numpy(), rtol=1e-5, atol=1e-6)


def test_every_new_name_is_under_torch_nn_functional():
    from pyfront.ops import catalog

    names = [k[2:] for k in catalog.TORCH_NAMES["more torch.nn.functional (2)"]]
    assert len(names) == 36
    for name in names:
        assert getattr(F, name) is getattr(pf, name), name
        assert hasattr(TF, name), name


# ---- edge cases --------------------------------------------------------------------------------

def test_activations_take_torchs_branch_at_nan_and_the_kinks():
    x = np.array([np.nan, 0.5, -0.5, 0.7, -0.7, 0.0, 1.0])
    for fn in (lambda M, t: M.hardshrink(t), lambda M, t: M.softshrink(t),
               lambda M, t: M.threshold(t, 0.5, 9.0), lambda M, t: M.rrelu(t)):
        p, t = pf.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        got, want = fn(F, p), fn(TF, t)
        np.testing.assert_allclose(got.numpy(), _np(want), equal_nan=True)
        (gp,), (gt,) = pf.grad(got.sum(), [p]), torch.autograd.grad(want.sum(), [t])
        np.testing.assert_allclose(gp.numpy(), gt.numpy())
    with pytest.raises(ValueError, match="softshrink: lambd must be >= 0"):
        F.softshrink(pf.tensor(x), -1.0)


def test_adaptive_max_pool_indices_are_torchs_and_unpool_inverts_max_pool():
    x = _f(2, 3, 7, 5)
    x[0, 0, :2, :2] = 5.0                    # a tie inside one window: the first one wins
    for size in [(3, 2), 4, (7, 5), (1, 1)]:
        got = F.adaptive_max_pool2d(pf.tensor(x), size, return_indices=True)
        want = TF.adaptive_max_pool2d(torch.tensor(x), size, return_indices=True)
        np.testing.assert_array_equal(got[0].numpy(), want[0].numpy())
        np.testing.assert_array_equal(got[1].numpy(), want[1].numpy())
        assert got[1].dtype.name == "int64"
    got = F.adaptive_max_pool1d(pf.tensor(x[0, :, 0]), 3, return_indices=True)
    want = TF.adaptive_max_pool1d(torch.tensor(x[0, :, 0]), 3, return_indices=True)
    np.testing.assert_array_equal(got[1].numpy(), want[1].numpy())
    values, indices = TF.max_pool2d(torch.tensor(x), 2, 2, return_indices=True)
    np.testing.assert_array_equal(
        F.max_unpool2d(pf.tensor(values.numpy()), pf.tensor(indices.numpy()), 2,
                       output_size=x.shape).numpy(),
        TF.max_unpool2d(values, indices, 2, output_size=x.shape).numpy())
    with pytest.raises(pf.IndexOutOfRange, match="max_unpool2d: index 99"):
        F.max_unpool2d(pf.tensor(values.numpy()), pf.tensor(np.full(values.shape, 99)), 2)
    with pytest.raises(ValueError, match="max_unpool2d: output_size"):
        F.max_unpool2d(pf.tensor(values.numpy()), pf.tensor(indices.numpy()), 2,
                       output_size=(9, 9))


def test_lp_pool_gradient_is_zero_where_a_window_is_all_zero():
    x = np.zeros((1, 1, 4))
    x[0, 0, 2:] = 1.0
    p, t = pf.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    F.lp_pool1d(p, 2, 2).sum().backward()
    TF.lp_pool1d(t, 2, 2).sum().backward()
    np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-12)
    assert p.grad.numpy()[0, 0, 0] == 0.0


def test_pdist_of_equal_rows_has_a_zero_gradient_not_nan():
    x = _f(3, 4)
    x[1] = x[0]
    for p in (2.0, 3.0, 0.5):
        t = pf.tensor(x, requires_grad=True)
        (g,) = pf.grad(F.pdist(t, p).sum(), [t])
        want = torch.tensor(x, requires_grad=True)
        TF.pdist(want, p).sum().backward()
        np.testing.assert_allclose(g.numpy(), want.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_sdpa_rows_with_nothing_to_attend_to_give_zeros_and_finite_gradients():
    q, k, v = _f(1, 2, 3), _f(1, 4, 3), _f(1, 4, 2)
    mask = np.zeros((2, 4), bool)
    mask[0, 1] = True
    ps = [pf.tensor(a, requires_grad=True) for a in (q, k, v)]
    out = F.scaled_dot_product_attention(*ps, attn_mask=pf.tensor(mask))
    np.testing.assert_array_equal(out.numpy()[0, 1], 0.0)
    for g in pf.grad(out.sum(), ps):
        assert np.isfinite(g.numpy()).all()
    with pytest.raises(ValueError, match="attn_mask or is_causal"):
        F.scaled_dot_product_attention(*ps, attn_mask=pf.tensor(mask), is_causal=True)
    with pytest.raises(pf.ShapeError, match="scaled_dot_product_attention"):
        F.scaled_dot_product_attention(ps[0], pf.tensor(_f(1, 4, 5)), ps[2])


def test_sdpa_dropout_drops_weights_and_follows_its_state():
    q, k, v = (pf.tensor(_f(2, 8, 4)) for _ in range(3))
    a = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5, state=new_state(3))
    b = F.scaled_dot_product_attention(q, k, v, dropout_p=0.5, state=new_state(3))
    c = F.scaled_dot_product_attention(q, k, v)
    np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert not np.allclose(a.numpy(), c.numpy())


def test_unfold_then_fold_counts_each_position_by_its_windows():
    x = np.ones((1, 2, 5, 6))
    cols = F.unfold(pf.tensor(x), 3, padding=1)
    np.testing.assert_array_equal(F.fold(cols, (5, 6), 3, padding=1).numpy(),
                                  TF.fold(TF.unfold(torch.tensor(x), 3, padding=1), (5, 6), 3,
                                          padding=1).numpy())
    with pytest.raises(pf.ShapeError, match=r"fold: x \(1, 18, 29\) must be"):
        F.fold(pf.tensor(np.ones((1, 18, 29))), (5, 6), 3, padding=1)
    with pytest.raises(pf.ShapeError, match="unfold: the"):
        F.unfold(pf.tensor(x), 9)


def test_pixel_shuffle_round_trip_and_errors():
    x = pf.tensor(_f(2, 3, 8, 4, 6))
    np.testing.assert_array_equal(F.pixel_unshuffle(F.pixel_shuffle(x, 2), 2).numpy(),
                                  x.numpy())
    with pytest.raises(pf.ShapeError, match=r"pixel_shuffle: the 7 channels"):
        F.pixel_shuffle(pf.tensor(_f(1, 7, 2, 2)), 2)
    with pytest.raises(pf.ShapeError, match="pixel_unshuffle: height and width"):
        F.pixel_unshuffle(pf.tensor(_f(1, 1, 3, 4)), 2)


def test_embedding_bag_forms_and_errors():
    w = pf.tensor(_EB_W)
    for mode in ("sum", "mean", "max"):
        for padding_idx in (None, 4, -2):
            got = F.embedding_bag(pf.tensor(_EB_I), w, pf.tensor(_EB_O), mode=mode,
                                  padding_idx=padding_idx)
            want = TF.embedding_bag(torch.tensor(_EB_I), torch.tensor(_EB_W),
                                    torch.tensor(_EB_O), mode=mode, padding_idx=padding_idx)
            np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-12, atol=1e-12)
            bags = _EB_I[:6].reshape(3, 2)
            np.testing.assert_allclose(
                F.embedding_bag(pf.tensor(bags), w, mode=mode, padding_idx=padding_idx).numpy(),
                TF.embedding_bag(torch.tensor(bags), torch.tensor(_EB_W), mode=mode,
                                 padding_idx=padding_idx).numpy(), rtol=1e-12, atol=1e-12)
    with pytest.raises(ValueError, match="per_sample_weights are taken with mode 'sum'"):
        F.embedding_bag(pf.tensor(_EB_I), w, pf.tensor(_EB_O),
                        per_sample_weights=pf.tensor(_f(7)))
    with pytest.raises(ValueError, match="offsets must start at 0"):
        F.embedding_bag(pf.tensor(_EB_I), w, pf.tensor(np.array([1, 3])))
    with pytest.raises(ValueError, match="end at the number of indices"):
        F.embedding_bag(pf.tensor(_EB_I), w, pf.tensor(np.array([0, 3, 5])),
                        include_last_offset=True)
    with pytest.raises(ValueError, match="max_norm"):
        F.embedding_bag(pf.tensor(_EB_I), w, pf.tensor(_EB_O), max_norm=1.0)


def test_loss_errors_name_the_loss_and_the_shapes():
    x = pf.tensor(_f(4, 5))
    with pytest.raises(ValueError, match="gaussian_nll_loss: var has negative"):
        F.gaussian_nll_loss(x, x, pf.tensor(-np.ones((4, 5))))
    with pytest.raises(pf.ShapeError, match=r"gaussian_nll_loss: var \(3,\)"):
        F.gaussian_nll_loss(x, x, pf.tensor(np.ones(3)))
    with pytest.raises(ValueError, match="multi_margin_loss: p must be 1 or 2"):
        F.multi_margin_loss(x, pf.tensor(_TG), p=3)
    with pytest.raises(pf.IndexOutOfRange, match="multi_margin_loss: target 7"):
        F.multi_margin_loss(x, pf.tensor(np.array([0, 1, 7, 2])))
    with pytest.raises(pf.ShapeError, match="multilabel_margin_loss: input and target"):
        F.multilabel_margin_loss(x, pf.tensor(_ML[:2]))
    with pytest.raises(ValueError, match="triplet_margin_loss: margin must be greater"):
        F.triplet_margin_loss(x, x, x, margin=0.0)
    with pytest.raises(pf.ShapeError, match="cosine_embedding_loss"):
        F.cosine_embedding_loss(x, x, pf.tensor(np.ones((4, 1))))
    with pytest.raises(ValueError, match="soft_margin_loss: reduction must be"):
        F.soft_margin_loss(x, x, reduction="batchmean")
    with pytest.raises(TypeError):       # past the deprecated size_average: keyword-only
        F.hinge_embedding_loss(x, x, 1.0, "sum")


def test_ctc_loss_forms_zero_infinity_and_errors():
    lp = torch.log_softmax(torch.tensor(_f(_CTC_T, _CTC_N, _CTC_C)), 2)
    concatenated = np.concatenate([_CTC_TARGETS[i, :_CTC_TL[i]] for i in range(_CTC_N)])
    for targets in (_CTC_TARGETS, concatenated):
        for reduction in ("mean", "sum", "none"):
            np.testing.assert_allclose(
                F.ctc_loss(pf.tensor(lp.numpy()), pf.tensor(targets), pf.tensor(_CTC_IN),
                           pf.tensor(_CTC_TL), reduction=reduction).numpy(),
                TF.ctc_loss(lp, torch.tensor(targets), torch.tensor(_CTC_IN),
                            torch.tensor(_CTC_TL), reduction=reduction).numpy(), rtol=1e-10)
    np.testing.assert_allclose(         # unbatched
        F.ctc_loss(pf.tensor(lp.numpy()[:, 0]), pf.tensor(_CTC_TARGETS[0]), 9, 3).numpy(),
        TF.ctc_loss(lp[:, 0], torch.tensor(_CTC_TARGETS[0]), torch.tensor(9),
                    torch.tensor(3)).numpy(), rtol=1e-10)
    # three repeated labels need 5 steps: 3 are impossible
    repeated, lengths = np.ones((_CTC_N, 3), np.int64), np.array([3, 9, 9])
    p = pf.tensor(lp.numpy(), requires_grad=True)
    t = lp.clone().requires_grad_(True)
    got = F.ctc_loss(p, pf.tensor(repeated), pf.tensor(lengths), pf.tensor(np.full(3, 3)),
                     reduction="none")
    assert np.isinf(got.numpy()[0]) and np.isfinite(got.numpy()[1:]).all()
    got = F.ctc_loss(p, pf.tensor(repeated), pf.tensor(lengths), pf.tensor(np.full(3, 3)),
                     zero_infinity=True)
    want = TF.ctc_loss(t, torch.tensor(repeated), torch.tensor(lengths),
                       torch.tensor(np.full(3, 3)), zero_infinity=True)
    np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=1e-10)
    got.backward()
    want.backward()
    np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-8, atol=1e-10)
    with pytest.raises(ValueError, match="ctc_loss: input_lengths"):
        F.ctc_loss(pf.tensor(lp.numpy()), pf.tensor(_CTC_TARGETS), [10, 1, 1], [1, 1, 1])
    with pytest.raises(ValueError, match="ctc_loss: blank 5"):
        F.ctc_loss(pf.tensor(lp.numpy()), pf.tensor(_CTC_TARGETS), _CTC_IN, _CTC_TL, blank=5)
    with pytest.raises(pf.IndexOutOfRange, match="ctc_loss: target 7"):
        F.ctc_loss(pf.tensor(lp.numpy()), pf.tensor(_CTC_TARGETS + 6), _CTC_IN, [3, 3, 3])


# ---- random ops --------------------------------------------------------------------------------

def test_channel_dropout_zeroes_whole_channels_and_scales_the_rest():
    x = pf.ones((64, 16, 3, 4))
    y = F.dropout2d(x, 0.25, state=new_state(0)).numpy()
    per_channel = y.reshape(64, 16, -1)
    assert set(np.unique(per_channel)) == {0.0, np.float32(1.0 / 0.75)}
    assert (per_channel.min(-1) == per_channel.max(-1)).all()       # one draw per channel
    assert abs((per_channel[..., 0] == 0).mean() - 0.25) < 0.05
    np.testing.assert_array_equal(F.dropout2d(x, 0.25, state=new_state(0)).numpy(), y)
    assert F.dropout2d(x, 0.25, training=False) is x
    np.testing.assert_array_equal(F.dropout1d(pf.ones((3, 50)), 1.0).numpy(), 0.0)
    unbatched = F.dropout3d(pf.ones((40, 2, 2, 2)), 0.5).numpy().reshape(40, -1)
    assert (unbatched.min(-1) == unbatched.max(-1)).all()
    with pytest.warns(UserWarning, match="dropout2d: a 3-D input is taken as"):
        F.dropout2d(pf.ones((2, 3, 4)), 0.5)
    with pytest.raises(pf.ShapeError, match=r"dropout1d: x must have 3 dims"):
        F.dropout1d(pf.ones((2, 3, 4, 5)))


def test_channel_dropout_gradient_is_its_mask():
    state = new_state(5)
    x = pf.tensor(_f(8, 4, 3), requires_grad=True)
    y = F.dropout1d(x, 0.5, state=state)
    (g,) = pf.grad(y.sum(), [x])
    np.testing.assert_array_equal(g.numpy(), np.where(y.numpy() == 0, 0.0, 2.0))


def test_alpha_dropout_keeps_mean_and_variance_and_has_torchs_two_values():
    x = np.zeros(20000)
    got = F.alpha_dropout(pf.tensor(x), 0.3, True).numpy()
    want = TF.alpha_dropout(torch.tensor(x), 0.3, True).numpy()
    np.testing.assert_allclose(np.unique(got), np.unique(want), rtol=1e-12)
    normal = R.standard_normal(200000)
    y = F.alpha_dropout(pf.tensor(normal), 0.2, True).numpy()
    assert abs(y.mean()) < 0.02 and abs(y.std() - 1) < 0.02
    assert F.alpha_dropout(pf.tensor(normal), 0.2) is not None      # training=False: identity
    np.testing.assert_array_equal(F.alpha_dropout(pf.tensor(normal), 0.2).numpy(), normal)
    np.testing.assert_array_equal(F.alpha_dropout(pf.tensor(x[:5]), 1.0, True).numpy(), 0.0)


def test_rrelu_draws_its_slopes_uniformly_from_lower_to_upper():
    x = -np.ones(100000)
    slopes = -F.rrelu(pf.tensor(x), 0.1, 0.3, training=True).numpy()
    assert 0.1 <= slopes.min() and slopes.max() < 0.3
    assert abs(slopes.mean() - 0.2) < 1e-3 and abs(slopes.std() - 0.2 / np.sqrt(12)) < 1e-3
    p = pf.tensor(_f(50), requires_grad=True)
    y = F.rrelu(p, training=True, state=new_state(1))
    (g,) = pf.grad(y.sum(), [p])
    np.testing.assert_allclose(g.numpy(), np.where(p.numpy() <= 0, y.numpy() / p.numpy(), 1.0))
    np.testing.assert_array_equal(
        F.rrelu(pf.tensor(x[:9]), training=True, state=new_state(4)).numpy(),
        F.rrelu(pf.tensor(x[:9]), training=True, state=new_state(4)).numpy())


def test_uniform_draws_advance_the_state_in_compiled_plans_too():
    state = new_state(7)
    fn = pf.jit(lambda x: uniform_like(x, 0.0, 1.0, state))
    x = pf.ones((4, 5))
    first, second = fn(x).numpy(), fn(x).numpy()
    assert not np.array_equal(first, second)
    assert first.min() >= 0 and first.max() < 1
