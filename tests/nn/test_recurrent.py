"""Recurrent layers: parity with torch.nn.LSTM/GRU/RNN (stacked and bidirectional, weights
copied), Keras semantics (outputs, states, go_backwards, masks, initializers), the issue's
regressor, shape errors, configs and files."""
import numpy as np
import pytest

import pyfront as pf
from pyfront.ops import rnn_weights_from_torch

torch = pytest.importorskip("torch")

TOL = dict(rtol=1e-4, atol=1e-5)


def copy_from_torch(layer, kind, module, suffix):
    w = rnn_weights_from_torch(kind, *(getattr(module, n + suffix).detach().numpy()
                                       for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")))
    layer.load_state_dict(w)


def grads_of(module, suffix):
    return {n: getattr(module, n + suffix).grad.numpy()
            for n in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")}


@pytest.mark.parametrize("kind,cls,tcls", [("lstm", pf.nn.LSTM, torch.nn.LSTM),
                                           ("gru", pf.nn.GRU, torch.nn.GRU),
                                           ("simple_rnn", pf.nn.SimpleRNN, torch.nn.RNN)])
def test_two_layer_stack_matches_torch(kind, cls, tcls):
    torch.manual_seed(0)
    n, t, f, h = 4, 6, 3, 5
    module = tcls(f, h, num_layers=2, batch_first=True)
    model = pf.nn.Sequential([cls(h, return_sequences=True), cls(h, return_sequences=True)])
    x = np.random.default_rng(0).standard_normal((n, t, f)).astype(np.float32)
    model(pf.tensor(x))
    for i in range(2):
        copy_from_torch(model[i], kind, module, "_l%d" % i)
    g = np.random.default_rng(1).standard_normal((n, t, h)).astype(np.float32)

    xt = torch.tensor(x, requires_grad=True)
    yt, _ = module(xt)
    (yt * torch.tensor(g)).sum().backward()
    X = pf.tensor(x, requires_grad=True)
    y = model(X)
    (y * pf.tensor(g)).sum().backward()

    np.testing.assert_allclose(y.numpy(), yt.detach().numpy(), **TOL)
    np.testing.assert_allclose(X.grad.numpy(), xt.grad.numpy(), **TOL)
    for i in range(2):
        tg = grads_of(module, "_l%d" % i)
        np.testing.assert_allclose(model[i].kernel.grad.numpy(), tg["weight_ih"].T, **TOL)
        np.testing.assert_allclose(model[i].recurrent_kernel.grad.numpy(), tg["weight_hh"].T,
                                   **TOL)
        np.testing.assert_allclose(model[i].bias.grad.numpy(), tg["bias_ih"], **TOL)


@pytest.mark.parametrize("kind,cls,tcls", [("lstm", pf.nn.LSTM, torch.nn.LSTM),
                                           ("gru", pf.nn.GRU, torch.nn.GRU)])
def test_bidirectional_matches_torch(kind, cls, tcls):
    torch.manual_seed(1)
    n, t, f, h = 3, 5, 4, 3
    module = tcls(f, h, batch_first=True, bidirectional=True)
    layer = pf.nn.Bidirectional(cls(h, return_sequences=True, return_state=True))
    x = np.random.default_rng(2).standard_normal((n, t, f)).astype(np.float32)
    layer(pf.tensor(x))
    copy_from_torch(layer.forward_layer, kind, module, "_l0")
    copy_from_torch(layer.backward_layer, kind, module, "_l0_reverse")
    g = np.random.default_rng(3).standard_normal((n, t, 2 * h)).astype(np.float32)

    xt = torch.tensor(x, requires_grad=True)
    yt, states = module(xt)
    (yt * torch.tensor(g)).sum().backward()
    X = pf.tensor(x, requires_grad=True)
    out = layer(X)
    (out[0] * pf.tensor(g)).sum().backward()

    np.testing.assert_allclose(out[0].numpy(), yt.detach().numpy(), **TOL)
    hn = (states[0] if kind == "lstm" else states).detach().numpy()
    np.testing.assert_allclose(out[1].numpy(), hn[0], **TOL)            # forward final h
    np.testing.assert_allclose(out[3 if kind == "lstm" else 2].numpy(), hn[1], **TOL)
    np.testing.assert_allclose(X.grad.numpy(), xt.grad.numpy(), **TOL)
    for sub, suffix in ((layer.forward_layer, "_l0"), (layer.backward_layer, "_l0_reverse")):
        tg = grads_of(module, suffix)
        np.testing.assert_allclose(sub.kernel.grad.numpy(), tg["weight_ih"].T, **TOL)
        np.testing.assert_allclose(sub.recurrent_kernel.grad.numpy(), tg["weight_hh"].T, **TOL)


def test_bidirectional_merge_modes():
    x = np.random.default_rng(4).standard_normal((2, 4, 3)).astype(np.float32)
    pf.random.seed(0)
    base = pf.nn.Bidirectional(pf.nn.GRU(3), merge_mode=None)
    f, b = base(x)
    for mode, expect in (("concat", np.concatenate([f.numpy(), b.numpy()], -1)),
                         ("sum", f.numpy() + b.numpy()), ("mul", f.numpy() * b.numpy()),
                         ("ave", (f.numpy() + b.numpy()) / 2)):
        layer = pf.nn.Bidirectional(pf.nn.GRU(3), merge_mode=mode)
        layer(x)
        layer.load_state_dict(base.state_dict())
        np.testing.assert_allclose(layer(x).numpy(), expect, rtol=1e-6, atol=1e-7)


def test_outputs_states_and_go_backwards_follow_keras():
    x = np.random.default_rng(5).standard_normal((2, 5, 3)).astype(np.float32)
    pf.random.seed(1)
    full = pf.nn.LSTM(4, return_sequences=True, return_state=True)
    y, h, c = full(x)
    assert y.shape == (2, 5, 4) and h.shape == (2, 4) and c.shape == (2, 4)
    np.testing.assert_array_equal(y.numpy()[:, -1], h.numpy())
    last = pf.nn.LSTM(4)
    last(x)
    last.load_state_dict(full.state_dict())
    np.testing.assert_array_equal(last(x).numpy(), h.numpy())
    # go_backwards: the reversed sequence, outputs in processing order (last input step first)
    back = pf.nn.LSTM(4, return_sequences=True, go_backwards=True)
    back(x)
    back.load_state_dict(full.state_dict())
    reference = full(np.ascontiguousarray(x[:, ::-1]))[0].numpy()
    np.testing.assert_allclose(back(x).numpy(), reference, rtol=1e-6, atol=1e-7)


def test_initial_state_is_used():
    x = np.random.default_rng(6).standard_normal((2, 3, 2)).astype(np.float32)
    layer = pf.nn.GRU(3, return_state=True)
    _, h = layer(x)
    _, h2 = layer(x, initial_state=h)
    _, h_long = layer(np.concatenate([x, x], axis=1))
    np.testing.assert_allclose(h2.numpy(), h_long.numpy(), rtol=1e-5, atol=1e-6)


def test_masks_in_forward_and_mask_value():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 6, 2)).astype(np.float32)
    lengths = np.array([6, 3, 1])
    mask = (np.arange(6)[None] < lengths[:, None])
    padded = np.where(mask[..., None], x, 0).astype(np.float32)
    pf.random.seed(2)
    layer = pf.nn.LSTM(4)
    explicit = layer(x, mask=mask).numpy()
    by_value = pf.nn.LSTM(4, mask_value=0.0)
    by_value(padded)
    by_value.load_state_dict(layer.state_dict())
    np.testing.assert_allclose(by_value(padded).numpy(), explicit, rtol=1e-6, atol=1e-7)
    for i, length in enumerate(lengths):
        alone = layer(x[i:i + 1, :length]).numpy()
        np.testing.assert_allclose(explicit[i], alone[0], rtol=1e-5, atol=1e-6)
    # a stack keeps the mask through return_sequences: masked steps output zeros, which the
    # next layer's mask_value=0 recognises
    stack = pf.nn.Sequential([pf.nn.LSTM(5, return_sequences=True, mask_value=0.0),
                              pf.nn.GRU(3, mask_value=0.0)])
    out = stack(padded).numpy()
    for i, length in enumerate(lengths):
        np.testing.assert_allclose(out[i], stack(padded[i:i + 1, :length]).numpy()[0],
                                   rtol=1e-5, atol=1e-6)


def test_keras_default_initializers():
    pf.random.seed(3)
    layer = pf.nn.LSTM(6, in_features=4)
    u = layer.recurrent_kernel.numpy()
    np.testing.assert_allclose(u @ u.T, np.eye(6), atol=1e-5)      # orthogonal rows
    b = layer.bias.numpy()
    np.testing.assert_array_equal(b[6:12], 1.0)                    # unit forget bias
    np.testing.assert_array_equal(np.delete(b, np.s_[6:12]), 0.0)
    limit = np.sqrt(6 / (4 + 24))                                   # glorot uniform
    assert np.abs(layer.kernel.numpy()).max() <= limit
    assert not pf.nn.LSTM(6, in_features=4, unit_forget_bias=False).bias.numpy().any()
    gru = pf.nn.GRU(3, in_features=2)
    assert gru.bias.shape == (9,) and gru.recurrent_bias.shape == (9,)


def test_issue_regressor_trains():
    """The issue's model: Sequential([LSTM(50), Dense(1)]) on (N, 24, 8) sequences."""
    rng = np.random.default_rng(8)
    x = rng.standard_normal((72, 24, 8)).astype(np.float32)
    y = x[:, -3:, :2].sum(axis=(1, 2), keepdims=False).reshape(72, 1).astype(np.float32) / 4
    pf.random.seed(4)
    model = pf.nn.Sequential([pf.nn.LSTM(50), pf.nn.Dense(1)])
    opt = pf.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = pf.mse(model(pf.tensor(x)), pf.tensor(y))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert model(pf.tensor(x)).shape == (72, 1)
    assert losses[-1] < 0.3 * losses[0]


def test_wrong_input_shapes_name_the_layer_and_both_shapes():
    layer = pf.nn.LSTM(4, name="encoder")
    layer(np.zeros((2, 5, 3), np.float32))
    with pytest.raises(pf.ShapeError, match=r"LSTM 'encoder': expected input of shape "
                                            r"\(batch, time, 3\), got \(2, 5, 7\)"):
        layer(np.zeros((2, 5, 7), np.float32))
    with pytest.raises(pf.ShapeError, match=r"'encoder'.*got \(2, 5\)"):
        layer(np.zeros((2, 5), np.float32))
    with pytest.raises(pf.ShapeError, match=r"SimpleRNN 'simple_rnn.*': expects input of shape "
                                            r"\(batch, time, features\), got \(4,\)"):
        pf.nn.SimpleRNN(2)(np.zeros(4, np.float32))
    bi = pf.nn.Bidirectional(pf.nn.GRU(2, name="g"))
    bi(np.zeros((1, 3, 2), np.float32))
    with pytest.raises(pf.ShapeError, match=r"GRU 'g': expected input of shape "
                                            r"\(batch, time, 2\), got \(1, 3, 4\)"):
        bi(np.zeros((1, 3, 4), np.float32))


def test_constructor_arguments_are_checked():
    with pytest.raises(ValueError, match="units"):
        pf.nn.LSTM(0)
    with pytest.raises(ValueError, match="activation"):
        pf.nn.SimpleRNN(3, activation="sigmoid")
    with pytest.raises(ValueError, match="merge_mode"):
        pf.nn.Bidirectional(pf.nn.LSTM(3), merge_mode="max")
    with pytest.raises(TypeError, match="Bidirectional wraps"):
        pf.nn.Bidirectional(pf.nn.Dense(3))


def test_config_round_trip_and_model_file(tmp_path):
    pf.random.seed(5)
    model = pf.nn.Sequential([
        pf.nn.Bidirectional(pf.nn.LSTM(4, return_sequences=True, mask_value=0.0)),
        pf.nn.GRU(3, return_sequences=True, go_backwards=True),
        pf.nn.SimpleRNN(2, activation="relu"), pf.nn.Dense(1)])
    x = np.random.default_rng(9).standard_normal((2, 5, 3)).astype(np.float32)
    expect = model(x).numpy()
    clone = pf.nn.Sequential.from_config(model.get_config())
    clone(x)
    clone.load_state_dict(model.state_dict())
    np.testing.assert_array_equal(clone(x).numpy(), expect)
    path = tmp_path / "rnn.pf"
    pf.save(model, path)
    np.testing.assert_array_equal(pf.load(path)(x).numpy(), expect)


def test_training_with_compiled_step_matches_eager():
    from pyfront.train.step import CompiledTrainStep

    rng = np.random.default_rng(10)
    x = rng.standard_normal((6, 5, 3)).astype(np.float32)
    y = rng.standard_normal((6, 1)).astype(np.float32)
    models, losses = [], []
    for _ in range(2):
        pf.random.seed(6)
        models.append(pf.nn.Sequential([pf.nn.GRU(4, return_sequences=True), pf.nn.LSTM(3),
                                        pf.nn.Dense(1)]))
        models[-1](x)
    opts = [pf.optim.Adam(m.parameters(), lr=0.01) for m in models]
    step = CompiledTrainStep(models[1], lambda out, t: pf.mse(out, t), opts[1])
    for _ in range(3):
        opts[0].zero_grad()
        loss = pf.mse(models[0](pf.tensor(x)), pf.tensor(y))
        loss.backward()
        opts[0].step()
        losses.append((loss.item(), step(x, y)[0]))
    for eager, compiled in losses:
        assert abs(eager - compiled) < 1e-5 * max(1.0, abs(eager))
