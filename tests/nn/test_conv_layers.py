"""Convolution and pooling layers: the issue's API, Conv1D over sequences of any length, parity
with PyTorch's modules (weights copied), configuration and save/load round trips, compiled
training equal to eager training, and errors that name the layer."""
import numpy as np
import pytest

import pyfront as pf


def small_cnn():
    return pf.nn.Sequential([
        pf.nn.Conv2D(8, 3, activation="relu"), pf.nn.MaxPool2D(2),
        pf.nn.Conv2D(16, 3, padding="same", activation="relu"), pf.nn.AvgPool2D(2),
        pf.nn.GlobalMaxPool2D(), pf.nn.Dense(4)])


def test_the_issue_api_works_as_written(rng):
    model = pf.nn.Sequential([pf.nn.Conv2D(32, 3, activation="relu"), pf.nn.MaxPool2D(2),
                              pf.nn.Conv2D(64, 3, activation="relu"), pf.nn.MaxPool2D(2)])
    y = model(pf.tensor(rng.standard_normal((4, 1, 28, 28)).astype(np.float32)))
    assert y.shape == (4, 64, 5, 5)
    conv = model[0]
    assert conv.kernel.shape == (32, 1, 3, 3) and conv.bias.shape == (32,)
    assert conv.name.startswith("conv2d")
    assert float(y.numpy().min()) >= 0.0


def test_conv1d_takes_sequences_of_any_length(rng):
    model = pf.nn.Sequential([pf.nn.Conv1D(6, 3, padding="same", activation="relu"),
                              pf.nn.Conv1D(4, 2, strides=2), pf.nn.GlobalMaxPool1D(),
                              pf.nn.Dense(2)])
    params = None
    for length in (5, 9, 17, 4):
        x = rng.standard_normal((3, 2, length)).astype(np.float32)
        assert model(pf.tensor(x)).shape == (3, 2)
        current = [id(p) for p in model.parameters()]
        assert params is None or current == params
        params = current
    fast = pf.jit(model)
    for length in (7, 12):
        x = rng.standard_normal((2, 2, length)).astype(np.float32)
        with pf.no_grad():
            np.testing.assert_allclose(fast(pf.tensor(x)).numpy(), model(pf.tensor(x)).numpy(),
                                       rtol=1e-5, atol=1e-6)


def test_conv2d_layer_matches_pytorch_module(torch, rng):
    layer = pf.nn.Conv2D(6, (3, 2), padding="same", dilation=(1, 2), groups=2)
    module = torch.nn.Conv2d(4, 6, (3, 2), padding="same", dilation=(1, 2), groups=2)
    x = rng.standard_normal((3, 4, 9, 8)).astype(np.float32)
    layer(pf.tensor(x))
    layer.kernel.numpy()[...] = module.weight.detach().numpy()
    layer.bias.numpy()[...] = module.bias.detach().numpy()
    tx = torch.tensor(x, requires_grad=True)
    ty = module(tx)
    ty.square().sum().backward()
    px = pf.tensor(x, requires_grad=True)
    py = layer(px)
    (py * py).sum().backward()
    np.testing.assert_allclose(py.numpy(), ty.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(px.grad.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(layer.kernel.grad.numpy(), module.weight.grad.numpy(), rtol=1e-4,
                               atol=1e-3)
    np.testing.assert_allclose(layer.bias.grad.numpy(), module.bias.grad.numpy(), rtol=1e-4,
                               atol=1e-3)


def test_pooling_layers_match_pytorch_modules(torch, rng):
    x = rng.standard_normal((2, 3, 5, 8, 7)).astype(np.float32)
    pairs = [(pf.nn.MaxPool1D(3, 2, padding=1), torch.nn.MaxPool1d(3, 2, 1), x[:, :, 0, 0]),
             (pf.nn.AvgPool1D(2), torch.nn.AvgPool1d(2), x[:, :, 0, 0]),
             (pf.nn.MaxPool2D(2), torch.nn.MaxPool2d(2), x[:, :, 0]),
             (pf.nn.AvgPool2D(3, 1, padding=1, count_include_pad=False),
              torch.nn.AvgPool2d(3, 1, 1, count_include_pad=False), x[:, :, 0]),
             (pf.nn.MaxPool3D((1, 2, 2)), torch.nn.MaxPool3d((1, 2, 2)), x),
             (pf.nn.AvgPool3D(2, padding=1), torch.nn.AvgPool3d(2, padding=1), x),
             (pf.nn.GlobalAvgPool3D(), torch.nn.AdaptiveAvgPool3d(1), x)]
    for ours, theirs, data in pairs:
        got = ours(pf.tensor(np.ascontiguousarray(data))).numpy()
        want = theirs(torch.tensor(np.ascontiguousarray(data))).detach().numpy()
        np.testing.assert_allclose(got, want.reshape(got.shape), rtol=1e-6, atol=1e-6,
                                   err_msg=type(ours).__name__)


def test_initializer_uses_conv_fans(rng):
    pf.random.seed(0)
    layer = pf.nn.Conv2D(16, 3)
    layer(pf.zeros(1, 8, 5, 5))
    limit = np.sqrt(6 / (8 * 9 + 16 * 9))
    k = layer.kernel.numpy()
    assert np.abs(k).max() <= limit and np.abs(k).max() > 0.9 * limit
    assert not layer.bias.numpy().any()
    he = pf.nn.Conv1D(4, 5, kernel_initializer="he_uniform", use_bias=False)
    he(pf.zeros(1, 3, 9))
    assert he.bias is None and np.abs(he.kernel.numpy()).max() <= np.sqrt(6 / 15)


def test_config_round_trip_and_save_load(rng, tmp_path):
    model = small_cnn()
    x = rng.standard_normal((2, 1, 12, 12)).astype(np.float32)
    model(pf.tensor(x))
    for layer in model.layers:
        config = layer.get_config()
        rebuilt = type(layer).from_config(config)
        assert rebuilt.get_config() == config
    path = tmp_path / "cnn.pf"
    pf.save(model, path)
    again = pf.load(path)
    with pf.no_grad():
        assert np.array_equal(again(pf.tensor(x)).numpy(), model(pf.tensor(x)).numpy())


def test_compiled_training_equals_eager_training(rng):
    x = rng.standard_normal((8, 1, 12, 12)).astype(np.float32)
    y = rng.integers(0, 4, 8)
    losses = {}
    for mode in ("eager", "compiled"):
        pf.random.seed(3)
        model = small_cnn()
        model(pf.tensor(x[:1]))
        opt = pf.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        if mode == "compiled":
            step = pf.train.CompiledTrainStep(model, pf.losses.cross_entropy, opt)
            losses[mode] = [float(np.asarray(step(x, y)[0])) for _ in range(4)]
        else:
            losses[mode] = []
            for _ in range(4):
                opt.zero_grad()
                loss = pf.losses.cross_entropy(model(pf.tensor(x)), pf.tensor(y))
                loss.backward()
                opt.step()
                losses[mode].append(loss.item())
    np.testing.assert_allclose(losses["compiled"], losses["eager"], rtol=1e-4)
    assert losses["eager"][-1] < losses["eager"][0]


def test_a_cnn_learns_a_separable_task(rng):
    """Bright top half vs bright bottom half: a few steps must drive the loss down."""
    n = 32
    x = rng.standard_normal((n, 1, 10, 10)).astype(np.float32) * 0.3
    labels = rng.integers(0, 2, n)
    x[labels == 0, :, :5] += 1.0
    x[labels == 1, :, 5:] += 1.0
    pf.random.seed(1)
    model = pf.nn.Sequential([pf.nn.Conv2D(4, 3, activation="relu"), pf.nn.MaxPool2D(2),
                              pf.nn.GlobalAvgPool2D(), pf.nn.Dense(2)])
    model(pf.tensor(x[:1]))
    opt = pf.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    first = None
    for _ in range(25):
        opt.zero_grad()
        loss = pf.losses.cross_entropy(model(pf.tensor(x)), pf.tensor(labels))
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    assert loss.item() < 0.5 * first


def test_layer_arguments_are_checked():
    with pytest.raises(ValueError, match="filters"):
        pf.nn.Conv2D(0, 3)
    with pytest.raises(ValueError, match="groups=4 does not divide filters=6"):
        pf.nn.Conv2D(6, 3, groups=4)
    with pytest.raises(ValueError, match="kernel_size"):
        pf.nn.Conv3D(2, (3, 3))
    with pytest.raises(ValueError, match="padding"):
        pf.nn.Conv1D(2, 3, padding="causal")
    with pytest.raises(ValueError, match="unknown activation"):
        pf.nn.Conv2D(2, 3, activation="swishy")


def test_wrong_rank_at_build_names_the_layer():
    with pytest.raises(pf.ShapeError, match=r"Conv2D 'stem' takes \(batch, channels, height, "
                                            r"width\) inputs with 4 dims, got shape \(3, 28, 28\)"):
        pf.nn.Conv2D(4, 3, name="stem")(pf.zeros(3, 28, 28))


def test_unfused_activation_is_applied(rng):
    layer = pf.nn.Conv1D(3, 2, activation="gelu")
    x = pf.tensor(rng.standard_normal((2, 2, 6)).astype(np.float32))
    y = layer(x)
    expected = pf.gelu(pf.conv1d(x, layer.kernel, layer.bias))
    np.testing.assert_allclose(y.numpy(), expected.numpy(), rtol=1e-6)
