"""MultiHeadAttention against torch.nn.MultiheadAttention (weights copied): self- and
cross-attention, causal and padding masks, gradients; finite differences in float64; errors."""
import numpy as np
import pytest

import pyfront as pf
from pyfront.testing import check_grad

torch = pytest.importorskip("torch")

TOL = dict(rtol=1e-4, atol=1e-5)


def copy_from_torch(layer, module):
    e = module.embed_dim
    if module.in_proj_weight is not None:
        w = module.in_proj_weight.detach().numpy()
        wq, wk, wv = w[:e], w[e:2 * e], w[2 * e:]
    else:
        wq, wk, wv = (getattr(module, n).detach().numpy()
                      for n in ("q_proj_weight", "k_proj_weight", "v_proj_weight"))
    b = module.in_proj_bias.detach().numpy()
    layer.load_state_dict({
        "query_kernel": wq.T, "key_kernel": wk.T, "value_kernel": wv.T,
        "query_bias": b[:e], "key_bias": b[e:2 * e], "value_bias": b[2 * e:],
        "output_kernel": module.out_proj.weight.detach().numpy().T,
        "output_bias": module.out_proj.bias.detach().numpy()})


def make_pair(e=8, heads=2, kdim=None, vdim=None, causal=False, seed=0):
    torch.manual_seed(seed)
    module = torch.nn.MultiheadAttention(e, heads, batch_first=True, kdim=kdim, vdim=vdim)
    with torch.no_grad():
        module.in_proj_bias.normal_(0, 0.1)
        module.out_proj.bias.normal_(0, 0.1)
    layer = pf.nn.MultiHeadAttention(heads, e // heads, causal=causal)
    return module, layer


@pytest.mark.parametrize("causal", [False, True], ids=["full", "causal"])
def test_self_attention_matches_torch(causal):
    n, length, e = 3, 6, 8
    module, layer = make_pair(e, 2, causal=causal)
    x = np.random.default_rng(0).standard_normal((n, length, e)).astype(np.float32)
    layer(x)
    copy_from_torch(layer, module)
    g = np.random.default_rng(1).standard_normal((n, length, e)).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    mask = torch.triu(torch.ones(length, length, dtype=torch.bool), 1) if causal else None
    yt, wt = module(xt, xt, xt, attn_mask=mask, average_attn_weights=False)
    (yt * torch.tensor(g)).sum().backward()
    X = pf.tensor(x, requires_grad=True)
    y, w = layer(X, return_attention_scores=True)
    (y * pf.tensor(g)).sum().backward()
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), **TOL)
    np.testing.assert_allclose(w.numpy(), wt.detach().numpy(), **TOL)
    np.testing.assert_allclose(X.grad.numpy(), xt.grad.numpy(), **TOL)
    e_ = module.embed_dim
    np.testing.assert_allclose(layer.query_kernel.grad.numpy(),
                               module.in_proj_weight.grad[:e_].numpy().T, **TOL)
    np.testing.assert_allclose(layer.value_bias.grad.numpy(),
                               module.in_proj_bias.grad[2 * e_:].numpy(), **TOL)
    np.testing.assert_allclose(layer.output_kernel.grad.numpy(),
                               module.out_proj.weight.grad.numpy().T, **TOL)


def test_cross_attention_with_padding_mask_matches_torch():
    n, lq, lk, e, kdim, vdim = 2, 4, 7, 6, 5, 3
    module, layer = make_pair(e, 3, kdim=kdim, vdim=vdim, seed=2)
    rng = np.random.default_rng(3)
    q = rng.standard_normal((n, lq, e)).astype(np.float32)
    k = rng.standard_normal((n, lk, kdim)).astype(np.float32)
    v = rng.standard_normal((n, lk, vdim)).astype(np.float32)
    valid = np.array([[1, 1, 1, 1, 1, 0, 0], [1, 1, 0, 0, 0, 0, 0]], np.float32)
    layer(q, v, k)
    copy_from_torch(layer, module)
    qt, kt, vt = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    yt, _ = module(qt, kt, vt, key_padding_mask=torch.tensor(valid == 0))
    yt.sum().backward()
    Q, K, V = (pf.tensor(a, requires_grad=True) for a in (q, k, v))
    y = layer(Q, V, K, mask=valid)
    y.sum().backward()
    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), **TOL)
    for ours, theirs in ((Q, qt), (K, kt), (V, vt)):
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), **TOL)


def test_full_mask_matches_torch_attn_mask_and_combines_with_causal():
    n, length, e = 2, 5, 4
    module, layer = make_pair(e, 2, causal=True, seed=4)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((n, length, e)).astype(np.float32)
    allowed = rng.random((n, length, length)) < 0.7
    allowed[:, :, 0] = True                       # every query keeps one key
    layer(x)
    copy_from_torch(layer, module)
    blocked = ~allowed | np.triu(np.ones((length, length), bool), 1)[None]
    attn = torch.tensor(np.repeat(blocked, 2, axis=0))   # (N * heads, Lq, Lk)
    xt = torch.tensor(x)
    with torch.no_grad():
        yt, _ = module(xt, xt, xt, attn_mask=attn)
    np.testing.assert_allclose(layer(x, mask=allowed).numpy(), yt.numpy(), **TOL)


def test_gradients_match_finite_differences():
    pf.random.seed(0)
    layer = pf.nn.MultiHeadAttention(2, 2, value_dim=3, output_dim=3, causal=True)
    rng = np.random.default_rng(6)
    q = rng.standard_normal((2, 3, 4))
    v = rng.standard_normal((2, 4, 5))
    layer(q.astype(np.float32), v.astype(np.float32))
    layer.to("float64")
    mask = np.array([[1, 1, 1, 0], [1, 0, 1, 1]], np.float64)
    check_grad(lambda q, v: layer(q, v, mask=mask), q, v, atol=1e-6, rtol=1e-5)


def test_wrong_shapes_name_the_layer_and_both_shapes():
    layer = pf.nn.MultiHeadAttention(2, 4, name="attn")
    layer(np.zeros((2, 3, 8), np.float32), np.zeros((2, 5, 6), np.float32))
    with pytest.raises(pf.ShapeError, match=r"MultiHeadAttention 'attn': expected query of shape "
                                            r"\(batch, length, 8\), got \(2, 3, 7\)"):
        layer(np.zeros((2, 3, 7), np.float32), np.zeros((2, 5, 6), np.float32))
    with pytest.raises(pf.ShapeError, match=r"expected value of shape \(batch, length, 6\), "
                                            r"got \(2, 3, 8\)"):
        layer(np.zeros((2, 3, 8), np.float32))      # self-attention on a cross-attention layer
    with pytest.raises(pf.ShapeError, match=r"mask must be \(batch, 5\) or \(batch, 3, 5\), "
                                            r"got \(2, 4\)"):
        layer(np.zeros((2, 3, 8), np.float32), np.zeros((2, 5, 6), np.float32),
              mask=np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match="num_heads"):
        pf.nn.MultiHeadAttention(0, 4)


def test_config_round_trip_and_compiled_forward():
    pf.random.seed(1)
    layer = pf.nn.MultiHeadAttention(2, 3, causal=True)
    x = np.random.default_rng(7).standard_normal((2, 4, 6)).astype(np.float32)
    expect = layer(x).numpy()
    clone = pf.nn.MultiHeadAttention.from_config(layer.get_config())
    clone(x)
    clone.load_state_dict(layer.state_dict())
    np.testing.assert_array_equal(clone(x).numpy(), expect)
    np.testing.assert_allclose(pf.jit(layer)(pf.tensor(x)).numpy(), expect, rtol=1e-5,
                               atol=1e-6)
