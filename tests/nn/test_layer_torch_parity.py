"""Layers against torch.nn with the same weights: values and gradients in float32 and float64.
Covers the places where pyfront differed from PyTorch: positional orders (AvgPool's ceil_mode,
BatchNorm's eps/momentum, InstanceNorm's momentum/affine), BatchNorm(momentum=None),
InstanceNorm(track_running_stats), LayerNorm(bias=False), Conv padding_mode, Embedding's
padding_idx / max_norm / scale_grad_by_freq / from_pretrained, Flatten(end_dim), Unflatten,
Upsample, AdaptiveAvgPool*D, ZeroPadding's PyTorch spec, Dropout(p=), PyTorch's torch-style
names (stride=, kernel_size=, bias=) and MultiHeadAttention's key_padding_mask / attn_mask /
need_weights; plus a sweep of the convolution and pooling geometries."""
import os
import warnings

import numpy as np
import pytest

import pyfront as pf

torch = pytest.importorskip("torch")
tnn = torch.nn

DTYPES = [np.float32, np.float64]
TORCH_DTYPE = {np.float32: torch.float32, np.float64: torch.float64}


def _tol(dtype):
    return dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)


def _load(layer, values, dtype):
    """Write {parameter attribute: array} into the layer, as dtype."""
    layer.to(dtype)
    with pf.no_grad():
        for name, v in values.items():
            p = getattr(layer, name)
            if not p.initialized:
                p.materialize(v.shape)
            p.copy_(np.ascontiguousarray(np.asarray(v, dtype)))


def _compare(ours, theirs, arrays, dtype, params=(), grads=True, seed=0):
    """ours(*pf tensors) and theirs(*torch tensors): equal values and, for float inputs and
    the (pf parameter, torch parameter, transpose) pairs in params, equal gradients."""
    cast = [a.astype(dtype) if a.dtype.kind == "f" else a for a in arrays]
    needs = [grads and a.dtype.kind == "f" for a in arrays]
    xp = [pf.tensor(a, requires_grad=n) for a, n in zip(cast, needs)]
    xt = [torch.tensor(a, requires_grad=n) for a, n in zip(cast, needs)]
    want = theirs(*xt)
    got = ours(*xp)
    assert tuple(got.shape) == tuple(want.shape)
    np.testing.assert_allclose(got.numpy(), want.detach().numpy(), **_tol(dtype))
    if not grads:
        return
    g = np.random.default_rng(seed).standard_normal(tuple(want.shape)).astype(dtype)
    want.backward(torch.tensor(g))
    got.backward(pf.tensor(g))
    for a, b, n in zip(xp, xt, needs):
        if n:
            np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), **_tol(dtype))
    for p, tp, transpose in params:
        tg = tp.grad.numpy()
        np.testing.assert_allclose(p.grad.numpy(), tg.T if transpose else tg, **_tol(dtype))


def _rand(*shape, seed=0, scale=1.0):
    return np.random.default_rng(seed).standard_normal(shape) * scale


# ---------------------------------------------------------------------------------------------
# convolutions

CONV = {1: (pf.nn.Conv1D, tnn.Conv1d), 2: (pf.nn.Conv2D, tnn.Conv2d),
        3: (pf.nn.Conv3D, tnn.Conv3d)}
CONV_T = {1: (pf.nn.Conv1DTranspose, tnn.ConvTranspose1d),
          2: (pf.nn.Conv2DTranspose, tnn.ConvTranspose2d),
          3: (pf.nn.Conv3DTranspose, tnn.ConvTranspose3d)}


def _conv_pair(classes, nd, kw, dtype, ks=3):
    ours_cls, torch_cls = classes[nd]
    theirs = torch_cls(4, 6, ks, **kw).to(TORCH_DTYPE[dtype])
    ours = ours_cls(6, ks, in_channels=4, **kw)        # PyTorch's names: stride=, bias=
    values = {"kernel": theirs.weight.detach().numpy()}
    if theirs.bias is not None:
        with torch.no_grad():
            theirs.bias.uniform_(-1, 1)
        values["bias"] = theirs.bias.detach().numpy()
    _load(ours, values, dtype)
    return ours, theirs


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("kw", [
    {}, {"stride": 2, "padding": 1}, {"padding": "same"}, {"padding": "same", "dilation": 2},
    {"groups": 2, "bias": False}, {"padding": 2, "padding_mode": "reflect"},
    {"padding": 1, "padding_mode": "replicate", "stride": 2},
    {"padding": 2, "padding_mode": "circular"}, {"padding": "same", "padding_mode": "reflect"},
    {"padding": "same", "padding_mode": "circular", "dilation": 2},
], ids=repr)
def test_conv_matches_torch(nd, kw, dtype):
    for ks in (3, 4) if kw.get("padding") == "same" else (3,):
        ours, theirs = _conv_pair(CONV, nd, kw, dtype, ks)
        x = _rand(2, 4, *(7 if nd < 3 else 5,) * nd, seed=ks)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)   # torch: even kernel with "same"
            _compare(ours, theirs, [x], dtype, [(ours.kernel, theirs.weight, False)])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("kw", [
    {}, {"stride": 2, "padding": 1, "output_padding": 1}, {"stride": 3, "output_padding": 2},
    {"dilation": 2, "stride": 2, "output_padding": 1}, {"groups": 2, "bias": False},
], ids=repr)
def test_conv_transpose_matches_torch(nd, kw, dtype):
    ours, theirs = _conv_pair(CONV_T, nd, kw, dtype)
    x = _rand(2, 4, *(5,) * nd)
    _compare(ours, theirs, [x], dtype, [(ours.kernel, theirs.weight, False)])


def test_conv_padding_mode_is_checked_saved_and_compiled(tmp_path):
    with pytest.raises(ValueError, match="padding_mode must be one of"):
        pf.nn.Conv2D(4, 3, padding_mode="mirror")
    with pytest.raises(ValueError, match="only padding_mode='zeros'"):
        pf.nn.Conv2DTranspose(4, 3, padding_mode="reflect")
    with pytest.raises(TypeError, match="both strides= and its alias stride="):
        pf.nn.Conv2D(4, 3, strides=2, stride=2)
    model = pf.nn.Sequential([pf.nn.Conv2D(3, 3, padding="same", padding_mode="reflect"),
                              pf.nn.Flatten()])
    x = pf.tensor(_rand(2, 2, 5, 5).astype(np.float32))
    y = model(x).numpy()
    np.testing.assert_allclose(model.hybridize()(x).numpy(), y, rtol=1e-6, atol=1e-6)
    pf.save(model, tmp_path / "m.pf")
    again = pf.load(tmp_path / "m.pf")
    assert again.layers[0].padding_mode == "reflect"
    np.testing.assert_array_equal(again(x).numpy(), y)


# ---------------------------------------------------------------------------------------------
# pooling

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("kw", [
    {"kernel_size": 3, "stride": 2, "padding": 1},
    {"kernel_size": 3, "stride": 2, "padding": 1, "ceil_mode": True},
    {"kernel_size": 4, "stride": 3, "padding": 2, "ceil_mode": True},
    {"kernel_size": 2, "stride": 3, "ceil_mode": True},
], ids=repr)
def test_pooling_matches_torch_with_torch_names(nd, kw, dtype):
    x = _rand(2, 3, *(9 if nd < 3 else 7,) * nd)
    mp = getattr(pf.nn, "MaxPool%dD" % nd)(dilation=1, **kw)
    _compare(mp, getattr(tnn, "MaxPool%dd" % nd)(**kw), [x], dtype)
    if nd > 1:
        mp = getattr(pf.nn, "MaxPool%dD" % nd)(dilation=2, **kw)
        _compare(mp, getattr(tnn, "MaxPool%dd" % nd)(dilation=2, **kw), [x], dtype)
    for include in (True, False):
        ap = getattr(pf.nn, "AvgPool%dD" % nd)(count_include_pad=include, **kw)
        _compare(ap, getattr(tnn, "AvgPool%dd" % nd)(count_include_pad=include, **kw), [x],
                 dtype)


def test_avg_pool_takes_torchs_positional_order():
    # torch.nn.AvgPool2d(kernel_size, stride, padding, ceil_mode, count_include_pad): the
    # 4th positional argument is ceil_mode (pyfront's was count_include_pad, silently)
    x = _rand(1, 2, 8, 8)
    for args in [(3, 2, 1, True), (3, 2, 1, True, False), (2, 3, 0, True)]:
        _compare(pf.nn.AvgPool2D(*args), tnn.AvgPool2d(*args), [x], np.float64)
    # MaxPool2d(kernel_size, stride, padding, dilation, return_indices, ceil_mode)
    _compare(pf.nn.MaxPool2D(3, 2, 1, 1, False, True), tnn.MaxPool2d(3, 2, 1, 1, False, True),
             [x], np.float64)
    with pytest.raises(ValueError, match="return_indices"):
        pf.nn.MaxPool2D(2, return_indices=True)
    with pytest.raises(ValueError, match="divisor_override"):
        pf.nn.AvgPool2D(2, divisor_override=3)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nd, size", [(1, 3), (1, 7), (2, 1), (2, (2, 5)), (2, (None, 3)),
                                      (3, (2, 3, 4)), (3, 2)])
def test_adaptive_avg_pool_layers_match_torch(nd, size, dtype):
    x = _rand(2, 3, *(7,) * nd)
    _compare(getattr(pf.nn, "AdaptiveAvgPool%dD" % nd)(size),
             getattr(tnn, "AdaptiveAvgPool%dd" % nd)(size), [x], dtype)


# ---------------------------------------------------------------------------------------------
# normalization

def _affine(theirs, dtype):
    with torch.no_grad():
        theirs.weight.uniform_(0.5, 1.5)
        theirs.bias.uniform_(-1, 1)
    return {"gamma": theirs.weight.detach().numpy(), "beta": theirs.bias.detach().numpy()}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", [{"momentum": None}, {"momentum": None, "affine": False},
                                {"eps": 1e-2, "momentum": 0.3}], ids=repr)
def test_batch_norm_momentum_none_and_torch_order(kw, dtype):
    theirs = tnn.BatchNorm2d(3, **kw).to(TORCH_DTYPE[dtype])
    # positional, as torch: BatchNorm2d(num_features, eps, momentum, ...)
    ours = pf.nn.BatchNorm2D(3, kw.get("eps", 1e-5), kw["momentum"], kw.get("affine", True))
    values = _affine(theirs, dtype) if theirs.affine else {}
    _load(ours, values, dtype)
    params = [(ours.gamma, theirs.weight, False)] if theirs.affine else []
    for i in range(4):
        for t in (theirs.weight, theirs.bias, ours.gamma, ours.beta):
            if t is not None:
                t.grad = None
        _compare(ours, theirs, [_rand(4, 3, 2, 3, seed=i, scale=i + 1) + i], dtype, params)
        np.testing.assert_allclose(ours.running_mean.numpy(), theirs.running_mean.numpy(),
                                   **_tol(dtype))
        np.testing.assert_allclose(ours.running_var.numpy(), theirs.running_var.numpy(),
                                   **_tol(dtype))
    assert ours.num_batches_tracked == int(theirs.num_batches_tracked) == 4
    ours.eval()
    theirs.eval()
    _compare(ours, theirs, [_rand(2, 3, 2, 2, seed=9)], dtype)


def test_batch_norm_momentum_none_runs_eagerly_under_jit():
    layer = pf.nn.BatchNorm1D(3, momentum=None)
    x = pf.tensor(_rand(4, 3).astype(np.float32))
    with pytest.warns(RuntimeWarning, match="momentum=None"):
        pf.jit(pf.nn.Sequential([layer]))(x)
    assert layer.num_batches_tracked == 1
    np.testing.assert_allclose(layer.running_mean.numpy(), x.numpy().mean(0), rtol=1e-6)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nd, kw", [
    (1, {"track_running_stats": True}),
    (2, {"affine": True, "track_running_stats": True, "momentum": 0.3}),
    (3, {"affine": True, "track_running_stats": True, "momentum": None}),
    (2, {"affine": True, "eps": 1e-3}),
], ids=repr)
def test_instance_norm_running_stats_match_torch(nd, kw, dtype):
    theirs = getattr(tnn, "InstanceNorm%dd" % nd)(3, **kw).to(TORCH_DTYPE[dtype])
    ours = pf.nn.InstanceNorm(3, **kw)
    values = _affine(theirs, dtype) if theirs.affine else {}
    _load(ours, values, dtype)
    shape = (4, 3) + (3, 2, 2)[:nd]
    for i in range(3):
        _compare(ours, theirs, [_rand(*shape, seed=i, scale=i + 1) + i], dtype)
        if theirs.track_running_stats:
            np.testing.assert_allclose(ours.running_mean.numpy(),
                                       theirs.running_mean.numpy(), **_tol(dtype))
            np.testing.assert_allclose(ours.running_var.numpy(), theirs.running_var.numpy(),
                                       **_tol(dtype))
    ours.eval()
    theirs.eval()
    _compare(ours, theirs, [_rand(*shape, seed=7)], dtype)


def test_instance_norm_takes_torchs_positional_order():
    # InstanceNorm2d(num_features, eps, momentum, affine, track_running_stats)
    ours = pf.nn.InstanceNorm(3, 1e-5, 0.1, True, True)
    assert (ours.momentum, ours.affine, ours.track_running_stats) == (0.1, True, True)
    assert sorted(ours.state_dict()) == ["beta", "gamma", "running_mean", "running_var"]
    with pytest.raises(ValueError, match="momentum"):
        pf.nn.InstanceNorm(3, 1e-5, True)
    again = pf.nn.InstanceNorm.from_config(ours.get_config())
    assert again.track_running_stats and again.affine


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [5, (4, 5)])
def test_layer_norm_without_bias_matches_torch(shape, dtype):
    theirs = tnn.LayerNorm(shape, bias=False).to(TORCH_DTYPE[dtype])
    ours = pf.nn.LayerNorm(shape, bias=False)
    assert ours.beta is None and sorted(ours.state_dict()) == ["gamma"]
    with torch.no_grad():
        theirs.weight.uniform_(0.5, 1.5)
    _load(ours, {"gamma": theirs.weight.detach().numpy()}, dtype)
    _compare(ours, theirs, [_rand(3, 4, 5)], dtype, [(ours.gamma, theirs.weight, False)])
    assert pf.nn.LayerNorm.from_config(ours.get_config()).beta is None


# ---------------------------------------------------------------------------------------------
# embedding

IDX = np.array([[0, 1, 2, 9], [0, 0, 3, 9], [5, 9, 9, 1]])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kw", [
    {"padding_idx": 0}, {"padding_idx": -1}, {"max_norm": 1.0}, {"max_norm": 0.5, "norm_type": 1.0},
    {"scale_grad_by_freq": True}, {"padding_idx": 9, "scale_grad_by_freq": True, "max_norm": 2.0},
], ids=repr)
def test_embedding_options_match_torch(kw, dtype):
    theirs = tnn.Embedding(10, 4, **kw).to(TORCH_DTYPE[dtype])
    with torch.no_grad():
        theirs.weight.mul_(2.0)
    ours = pf.nn.Embedding(num_embeddings=10, embedding_dim=4, **kw)
    if "padding_idx" in kw:           # made with the padding row at zero, as torch's
        assert not ours.embeddings.numpy()[kw["padding_idx"]].any()
    _load(ours, {"embeddings": theirs.weight.detach().numpy()}, dtype)
    _compare(ours, theirs, [IDX], dtype, [(ours.embeddings, theirs.weight, False)])
    # max_norm rescaled the looked-up rows in place, as torch's
    np.testing.assert_allclose(ours.embeddings.numpy(), theirs.weight.detach().numpy(),
                               **_tol(dtype))


def test_embedding_padding_row_gets_no_update_compiled_and_from_pretrained(tmp_path):
    emb = pf.nn.Embedding(10, 4, padding_idx=0)
    model = pf.nn.Sequential([emb, pf.nn.Flatten(), pf.nn.Dense(2)])
    opt = pf.optim.SGD(model.parameters(), lr=0.5)
    step = pf.train.make_train_step(model, pf.losses.mse, opt, compiled=True)
    before = emb.embeddings.numpy().copy()
    for _ in range(2):
        step(IDX[:, :3], _rand(3, 2).astype(np.float32))
    after = emb.embeddings.numpy()
    np.testing.assert_array_equal(after[0], before[0])
    assert not np.array_equal(after[1], before[1])
    pf.save(model, tmp_path / "e.pf")
    assert pf.load(tmp_path / "e.pf").layers[0].padding_idx == 0

    table = _rand(6, 3)
    frozen = pf.nn.Embedding.from_pretrained(table)
    want = tnn.Embedding.from_pretrained(torch.tensor(table))
    assert frozen.parameters() == [] and frozen.embeddings.dtype.name == "float64"
    np.testing.assert_array_equal(frozen(pf.tensor(IDX % 6)).numpy(),
                                  want(torch.tensor(IDX % 6)).numpy())
    assert len(pf.nn.Embedding.from_pretrained(table, freeze=False).parameters()) == 1
    with pytest.raises(ValueError, match="sparse"):
        pf.nn.Embedding(10, 4, sparse=True)
    with pytest.raises(ValueError, match="padding_idx"):
        pf.nn.Embedding(10, 4, padding_idx=10)


# ---------------------------------------------------------------------------------------------
# reshaping, resizing, padding, dropout

@pytest.mark.parametrize("kw", [{}, {"start_dim": 2}, {"start_dim": 0}, {"end_dim": 2},
                                {"start_dim": 1, "end_dim": -2}, {"start_dim": -3, "end_dim": 2}],
                         ids=repr)
def test_flatten_end_dim_matches_torch(kw):
    _compare(pf.nn.Flatten(**kw), tnn.Flatten(**kw), [_rand(2, 3, 4, 5)], np.float64)
    assert pf.nn.Flatten.from_config(pf.nn.Flatten(**kw).get_config()).end_dim == \
        kw.get("end_dim", -1)


@pytest.mark.parametrize("dim, sizes", [(1, (3, 4)), (1, (-1, 2)), (-1, (5, 1)), (0, (1, 2))])
def test_unflatten_matches_torch(dim, sizes):
    _compare(pf.nn.Unflatten(dim, sizes), tnn.Unflatten(dim, sizes), [_rand(2, 12, 5)],
             np.float64)


def test_flatten_and_unflatten_keep_an_unknown_batch():
    g = pf.Graph("f")
    with g:
        x = pf.placeholder("x", (None, 3, 4, 5))
        y = pf.nn.Unflatten(1, (4, 3))(pf.nn.Flatten(1, 2)(x))
        z = pf.nn.Flatten(0, 1)(x)
    assert tuple(y.shape) == (None, 4, 3, 5) and tuple(z.shape) == (None, 4, 5)
    with pytest.raises(pf.errors.ShapeError, match="cannot unflatten"):
        pf.nn.Unflatten(1, (5, 5))(pf.tensor(_rand(2, 12)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("nd, mode", [(1, "nearest"), (1, "linear"), (2, "nearest-exact"),
                                      (2, "bilinear"), (2, "bicubic"), (3, "trilinear")])
@pytest.mark.parametrize("kw", [{"size": 7}, {"scale_factor": 2}, {"scale_factor": 1.7}],
                         ids=repr)
def test_upsample_matches_torch(nd, mode, kw, dtype):
    x = _rand(2, 3, *(5,) * nd)
    for align in ([None] if mode.startswith("nearest") else [False, True]):
        _compare(pf.nn.Upsample(mode=mode, align_corners=align, **kw),
                 tnn.Upsample(mode=mode, align_corners=align, **kw), [x], dtype)


@pytest.mark.parametrize("mode", ["nearest-exact", "bicubic"])
def test_upsampling2d_takes_torchs_other_modes(mode):
    x = _rand(2, 3, 4, 5)
    _compare(pf.nn.UpSampling2D(2, interpolation=mode),
             tnn.Upsample(scale_factor=2, mode=mode), [x], np.float64)


@pytest.mark.parametrize("nd, pad", [(1, (1, 2)), (2, (1, 2, 3, 4)), (3, (1, 2, 0, 1, 2, 0))])
def test_zero_padding_takes_torchs_flat_spec(nd, pad):
    x = _rand(2, 3, *(4,) * nd)
    _compare(getattr(pf.nn, "ZeroPadding%dD" % nd)(pad),
             getattr(tnn, "ZeroPad%dd" % nd)(pad), [x], np.float64)


def test_dropout_takes_p():
    d = pf.nn.Dropout(p=0.25)
    assert d.rate == 0.25
    d.eval()
    x = _rand(3, 4)
    np.testing.assert_array_equal(d(pf.tensor(x)).numpy(), x)


# ---------------------------------------------------------------------------------------------
# recurrent layers (converted weights), a check of what was already right

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kind", ["lstm", "gru", "simple_rnn"])
def test_recurrent_layers_match_torch_with_initial_state(kind, dtype):
    ours_cls, torch_cls = {"lstm": (pf.nn.LSTM, tnn.LSTM), "gru": (pf.nn.GRU, tnn.GRU),
                           "simple_rnn": (pf.nn.SimpleRNN, tnn.RNN)}[kind]
    theirs = torch_cls(3, 5, batch_first=True).to(TORCH_DTYPE[dtype])
    ours = ours_cls(5, return_sequences=True, in_features=3)
    _load(ours, pf.ops.rnn_weights_from_torch(kind, *(
        getattr(theirs, n + "_l0").detach().numpy()
        for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"))), dtype)
    x, h0, c0 = _rand(2, 6, 3), _rand(2, 5, seed=1), _rand(2, 5, seed=2)
    if kind == "lstm":
        _compare(lambda a, h, c: ours(a, initial_state=[h, c]),
                 lambda a, h, c: theirs(a, (h[None], c[None]))[0], [x, h0, c0], dtype,
                 [(ours.kernel, theirs.weight_ih_l0, True)])
    else:
        _compare(lambda a, h: ours(a, initial_state=[h]), lambda a, h: theirs(a, h[None])[0],
                 [x, h0], dtype, [(ours.recurrent_kernel, theirs.weight_hh_l0, True)])


# ---------------------------------------------------------------------------------------------
# multi-head attention with PyTorch's masks

def _mha_pair(dtype, embed=8, heads=2):
    theirs = tnn.MultiheadAttention(embed, heads, batch_first=True).to(TORCH_DTYPE[dtype])
    with torch.no_grad():
        theirs.in_proj_bias.uniform_(-1, 1)
        theirs.out_proj.bias.uniform_(-1, 1)
    ours = pf.nn.MultiHeadAttention(heads, embed // heads)
    ours.build((None, 3, embed))
    w, b = theirs.in_proj_weight.detach().numpy(), theirs.in_proj_bias.detach().numpy()
    e = embed
    _load(ours, {"query_kernel": w[:e].T, "key_kernel": w[e:2 * e].T,
                 "value_kernel": w[2 * e:].T, "query_bias": b[:e], "key_bias": b[e:2 * e],
                 "value_bias": b[2 * e:],
                 "output_kernel": theirs.out_proj.weight.detach().numpy().T,
                 "output_bias": theirs.out_proj.bias.detach().numpy()}, dtype)
    return ours, theirs


KPM = np.array([[False, False, True, False], [False, True, True, False]])
AM = np.array([[False, True, False, False], [False, False, True, True], [False, True, True,
                                                                          False]])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("masks", [
    {}, {"key_padding_mask": KPM}, {"attn_mask": AM}, {"attn_mask": _rand(3, 4, seed=4)},
    {"attn_mask": np.broadcast_to(AM, (4, 3, 4)).copy()},
    {"key_padding_mask": KPM * -2.5, "attn_mask": _rand(3, 4, seed=5)},
], ids=lambda m: "+".join("%s:%s" % (k, v.dtype) for k, v in m.items()) or "none")
@pytest.mark.parametrize("average", [True, False])
def test_multi_head_attention_takes_torchs_masks(masks, average, dtype):
    ours, theirs = _mha_pair(dtype)
    q, k, v = _rand(2, 3, 8), _rand(2, 4, 8, seed=1), _rand(2, 4, 8, seed=2)
    tmasks = {}
    for name, m in masks.items():
        t = torch.tensor(m)
        tmasks[name] = t if t.dtype == torch.bool else t.to(TORCH_DTYPE[dtype])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)      # torch: mixed mask types
        for i in (0, 1):
            _compare(lambda a, b, c: ours(a, key=b, value=c, need_weights=True,
                                          average_attn_weights=average, **masks)[i],
                     lambda a, b, c: theirs(a, b, c, average_attn_weights=average,
                                            **tmasks)[i], [q, k, v], dtype, grads=i == 0)
    out, none = ours(pf.tensor(q.astype(dtype)), key=pf.tensor(k.astype(dtype)),
                     value=pf.tensor(v.astype(dtype)), need_weights=False)
    assert none is None and tuple(out.shape) == (2, 3, 8)


def test_multi_head_attention_mask_shapes_are_checked():
    ours, _ = _mha_pair(np.float32)
    q = pf.tensor(_rand(2, 3, 8).astype(np.float32))
    with pytest.raises(pf.errors.ShapeError, match="attn_mask must be"):
        ours(q, attn_mask=np.zeros((2, 3), bool))
    with pytest.raises(pf.errors.ShapeError, match="key_padding_mask must be"):
        ours(q, key_padding_mask=np.zeros((2, 4), bool))


def test_new_layers_round_trip_through_the_model_format(tmp_path):
    model = pf.nn.Sequential([
        pf.nn.Conv2D(4, 3, padding=1, padding_mode="circular"),
        pf.nn.InstanceNorm(4, affine=True, track_running_stats=True),
        pf.nn.BatchNorm2D(4, 1e-3, None), pf.nn.AdaptiveAvgPool2D((3, 2)),
        pf.nn.Upsample(scale_factor=2, mode="bilinear"), pf.nn.Flatten(1, 2),
        pf.nn.Unflatten(1, (4, 6)), pf.nn.Flatten(), pf.nn.LayerNorm(96, bias=False),
        pf.nn.Dense(3)])
    x = pf.tensor(_rand(2, 3, 6, 6).astype(np.float32))
    model(x)
    model.eval()
    y = model(x).numpy()
    np.testing.assert_allclose(model.hybridize()(x).numpy(), y, rtol=1e-5, atol=1e-6)
    path = os.fspath(tmp_path / "m.pf")
    pf.save(model, path)
    np.testing.assert_array_equal(pf.load(path)(x).numpy(), y)
