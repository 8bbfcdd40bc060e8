"""torch.nn.RNN / LSTM / GRU under torch's constructor (pyfront/nn/torch_recurrent.py), against
torch itself with torch's weights copied over name for name."""
import numpy as np
import pytest

import pyfront as pf

torch = pytest.importorskip("torch")

KINDS = ["LSTM", "GRU", "RNN"]


def _pair(kind, *args, **kwargs):
    torch.manual_seed(0)
    theirs = getattr(torch.nn, kind)(*args, **kwargs)
    ours = getattr(pf.nn, kind)(*args, **kwargs)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    return ours, theirs


def _flat(out):
    if isinstance(out, (tuple, list)):
        return [leaf for part in out for leaf in _flat(part)]
    return [out]


def _states(kind, shape, rng):
    h = rng.standard_normal(shape).astype(np.float32)
    if kind != "LSTM":
        return h, torch.tensor(h)
    c = rng.standard_normal(shape).astype(np.float32)
    return (h, c), (torch.tensor(h), torch.tensor(c))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_forward_and_gradients_equal_torch(kind, batch_first, bidirectional):
    ours, theirs = _pair(kind, 4, 6, num_layers=2, batch_first=batch_first,
                         bidirectional=bidirectional)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 5, 4)).astype(np.float32)   # (N, L) or (L, N)
    batch = 3 if batch_first else 5
    ours_h, theirs_h = _states(kind, ((2 if bidirectional else 1) * 2, batch, 6), rng)
    if kind == "LSTM":
        ours_h = tuple(pf.tensor(a) for a in ours_h)
    else:
        ours_h = pf.tensor(ours_h)
    tx = torch.tensor(x, requires_grad=True)
    px = pf.tensor(x, requires_grad=True)
    t_out, p_out = _flat(theirs(tx, theirs_h)), _flat(ours(px, ours_h))
    assert len(t_out) == len(p_out) == (3 if kind == "LSTM" else 2)
    for a, b in zip(t_out, p_out):
        assert tuple(a.shape) == b.shape
        np.testing.assert_allclose(b.numpy(), a.detach().numpy(), rtol=1e-5, atol=2e-6)
    sum((o * (i + 1)).sum() for i, o in enumerate(t_out)).backward()
    sum((o * (i + 1)).sum() for i, o in enumerate(p_out)).backward()
    np.testing.assert_allclose(px.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-5)
    params = dict(ours.named_parameters())
    assert sorted(params) == sorted(n for n, _ in theirs.named_parameters())
    for name, p in theirs.named_parameters():
        np.testing.assert_allclose(params[name].grad.numpy(), p.grad.numpy(),
                                   rtol=1e-4, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("kind", KINDS)
def test_unbatched_input_and_no_bias_and_default_state(kind):
    ours, theirs = _pair(kind, 3, 4, bias=False)
    assert not [n for n, _ in ours.named_parameters() if n.startswith("bias")]
    x = np.random.default_rng(2).standard_normal((6, 3)).astype(np.float32)
    for a, b in zip(_flat(theirs(torch.tensor(x))), _flat(ours(pf.tensor(x)))):
        assert tuple(a.shape) == b.shape
        np.testing.assert_allclose(b.numpy(), a.detach().numpy(), rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize("kind", KINDS)
def test_compiled_equals_eager_and_trains(kind):
    pf.random.seed(0)
    layer = getattr(pf.nn, kind)(3, 5, num_layers=2, batch_first=True, bidirectional=True)
    x = pf.tensor(np.random.default_rng(3).standard_normal((4, 6, 3)).astype(np.float32))
    eager = _flat(layer(x))
    for compiled in (_flat(pf.jit(layer)(x)), _flat(layer.hybridize()(x))):
        for a, b in zip(eager, compiled):
            np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-6, atol=1e-6)
    opt = pf.optim.Adam(layer.parameters(), lr=0.01)
    fast = layer.hybridize()

    def loss():
        return (_flat(fast(x))[0] ** 2).mean()
    first = loss().item()
    for _ in range(20):
        opt.zero_grad()
        value = loss()
        value.backward()
        opt.step()
    assert loss().item() < first


def test_dropout_between_layers_only_while_training():
    ours, theirs = _pair("LSTM", 3, 4, num_layers=3, dropout=0.5)
    x = np.random.default_rng(4).standard_normal((5, 2, 3)).astype(np.float32)
    ours.eval(), theirs.eval()
    np.testing.assert_allclose(ours(pf.tensor(x))[0].numpy(),
                               theirs(torch.tensor(x))[0].detach().numpy(),
                               rtol=1e-5, atol=2e-6)
    ours.train()
    a, b = ours(pf.tensor(x))[0].numpy(), ours(pf.tensor(x))[0].numpy()
    assert not np.allclose(a, b)      # fresh masks each call
    # one layer: torch warns that dropout does nothing; here it is simply not made
    assert pf.nn.GRU(3, 4, dropout=0.5).between is None


def test_save_load_round_trip_keeps_torch_config(tmp_path):
    pf.random.seed(0)
    layer = pf.nn.GRU(3, 4, num_layers=2, batch_first=True, bidirectional=True)
    model = pf.nn.Sequential([layer])
    x = pf.tensor(np.random.default_rng(5).standard_normal((2, 5, 3)).astype(np.float32))
    expected = _flat(model(x))
    pf.save(model, tmp_path / "gru.pf")
    again = pf.load(tmp_path / "gru.pf")
    inner = again.layers[0] if hasattr(again, "layers") else list(again.children())[0]
    assert type(inner).__name__ == "TorchGRU" and inner.bidirectional and inner.num_layers == 2
    for a, b in zip(expected, _flat(again(x))):
        np.testing.assert_array_equal(b.numpy(), a.numpy())


def test_keras_constructor_is_unchanged():
    assert type(pf.nn.LSTM(8)) is pf.nn.LSTM
    assert type(pf.nn.LSTM(8, True)) is pf.nn.LSTM           # return_sequences
    assert type(pf.nn.GRU(units=8)) is pf.nn.GRU
    assert type(pf.nn.LSTM(8, 16)) is pf.nn.TorchLSTM
    assert type(pf.nn.GRU(input_size=8, hidden_size=16)) is pf.nn.TorchGRU
    assert pf.nn.RNN is pf.nn.TorchRNN


def test_bad_input_is_refused_by_name_and_shape():
    layer = pf.nn.LSTM(3, 4, num_layers=2)
    with pytest.raises(pf.errors.ShapeError, match=r"TorchLSTM.*\(L, N, 3\).*\(5, 2, 7\)"):
        layer(pf.tensor(np.zeros((5, 2, 7), np.float32)))
    h = pf.tensor(np.zeros((1, 2, 4), np.float32))
    with pytest.raises(pf.errors.ShapeError, match=r"h0 must have shape \(2, 2, 4\)"):
        layer(pf.tensor(np.zeros((5, 2, 3), np.float32)), (h, h))
    with pytest.raises(TypeError, match="pair"):
        layer(pf.tensor(np.zeros((5, 2, 3), np.float32)), h)
    with pytest.raises(NotImplementedError, match="proj_size"):
        pf.nn.LSTM(3, 4, proj_size=2)
    with pytest.raises(ValueError, match="hidden_size"):
        pf.nn.GRU(3, 0)
    with pytest.raises(ValueError, match="nonlinearity"):
        pf.nn.RNN(3, 4, nonlinearity="sigmoid")
