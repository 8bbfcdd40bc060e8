"""Layers under torch.nn's names take torch's arguments in torch's order and, given torch's
weights, give torch's outputs and gradients; they draw torch's default initial weights, and save
and load under their own names."""
import numpy as np
import pytest

import pyfront as pf

torch = pytest.importorskip("torch")


def _copy_weights(ours, theirs, transpose=False):
    with pf.no_grad():
        w = theirs.weight.detach().numpy()
        ours.kernel.copy_(w.T.copy() if transpose else w)
        if theirs.bias is not None:
            ours.bias.copy_(theirs.bias.detach().numpy())


def _check(ours, theirs, shape, transpose=False, seed=0):
    _copy_weights(ours, theirs, transpose)
    x = np.random.default_rng(seed).standard_normal(shape)
    px, tx = pf.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    got, want = ours(px), theirs(tx)
    np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=1e-9, atol=1e-10)
    (got * got).sum().backward()
    (want * want).sum().backward()
    np.testing.assert_allclose(px.grad.numpy(), tx.grad.numpy(), rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(ours.kernel.grad.numpy(),
                               theirs.weight.grad.numpy().T if transpose
                               else theirs.weight.grad.numpy(), rtol=1e-8, atol=1e-9)


@pytest.mark.parametrize("args,kwargs", [((5, 3), {}), ((5, 3, False), {}),
                                         ((4, 7), {"bias": True})])
def test_linear_is_torch_linear(args, kwargs):
    ours = pf.nn.Linear(*args, dtype="float64", **kwargs)
    theirs = torch.nn.Linear(*args, dtype=torch.float64, **kwargs)
    assert ours.in_features == theirs.in_features and ours.out_features == theirs.out_features
    _check(ours, theirs, (6, args[0]), transpose=True)


CONV_CASES = [
    ("Conv1d", (3, 4, 3), {}, (2, 3, 9)),
    # stride, padding, dilation, groups, bias
    ("Conv1d", (4, 6, 3, 2, 1, 2, 2, False), {}, (2, 4, 11)),
    ("Conv2d", (3, 5, 3), {"padding": "same", "padding_mode": "reflect"}, (2, 3, 7, 6)),
    ("Conv2d", (2, 4, (3, 2), (2, 1), (1, 0)), {}, (2, 2, 8, 7)),
    ("Conv3d", (2, 3, 2, 1, 1), {}, (1, 2, 4, 5, 3)),
    ("ConvTranspose1d", (3, 4, 4, 2, 1), {}, (2, 3, 6)),
    # torch's order: output_padding, groups, bias, dilation
    ("ConvTranspose2d", (4, 6, 3, 2, 1, 1, 2, False, 2), {}, (2, 4, 5, 4)),
    ("ConvTranspose3d", (2, 2, 2, 2), {}, (1, 2, 3, 3, 2)),
]


@pytest.mark.parametrize("name,args,kwargs,shape", CONV_CASES)
def test_convolutions_are_torchs(name, args, kwargs, shape):
    ours = getattr(pf.nn, name)(*args, dtype="float64", **kwargs)
    theirs = getattr(torch.nn, name)(*args, dtype=torch.float64, **kwargs)
    assert ours.weight is ours.kernel and tuple(ours.weight.shape) == tuple(theirs.weight.shape)
    assert (ours.bias is None) == (theirs.bias is None)
    _check(ours, theirs, shape)


@pytest.mark.parametrize("make,fan_in", [(lambda: pf.nn.Linear(400, 300), 400),
                                         (lambda: pf.nn.Conv2d(16, 32, 3), 16 * 9),
                                         (lambda: pf.nn.Conv2d(16, 32, 3, groups=4), 4 * 9),
                                         (lambda: pf.nn.ConvTranspose2d(16, 32, 4), 32 * 16)])
def test_default_weights_are_torchs_draw(make, fan_in):
    """U(+-1/sqrt(fan_in)) for weights and biases (torch's reset_parameters): a bound, and a
    spread that fills it (a uniform's largest of thousands of draws is near the bound)."""
    pf.random.seed(0)
    layer = make()
    bound = 1 / np.sqrt(fan_in)
    for t in (layer.kernel.numpy(), layer.bias.numpy()):
        assert np.abs(t).max() <= bound * (1 + 1e-6)
        assert np.abs(t).max() > 0.95 * bound
        assert abs(np.std(t) - bound / np.sqrt(3)) < 0.1 * bound


def test_torch_names_of_layers_whose_order_is_torchs_are_those_layers():
    nn = pf.nn
    assert nn.BatchNorm2d is nn.BatchNorm2D and nn.MaxPool1d is nn.MaxPool1D
    assert nn.AvgPool3d is nn.AvgPool3D and nn.AdaptiveAvgPool2d is nn.AdaptiveAvgPool2D
    assert nn.InstanceNorm2d is nn.InstanceNorm
    x = np.random.default_rng(0).standard_normal((2, 3, 6, 6))
    for ours, theirs in ((nn.MaxPool2d(3, 2, 1), torch.nn.MaxPool2d(3, 2, 1)),
                         (nn.AvgPool2d(2, 1, 1, True), torch.nn.AvgPool2d(2, 1, 1, True))):
        np.testing.assert_allclose(ours(pf.tensor(x)).numpy(),
                                   theirs(torch.tensor(x)).numpy(), rtol=1e-12)


def test_a_model_of_torch_named_layers_saves_and_loads(tmp_path):
    pf.random.seed(1)
    model = pf.nn.Sequential([pf.nn.Conv2d(1, 4, 3, padding=1), pf.nn.ReLU(),
                              pf.nn.MaxPool2d(2), pf.nn.Flatten(), pf.nn.Linear(64, 10)])
    x = np.random.default_rng(2).standard_normal((3, 1, 8, 8)).astype(np.float32)
    want = model(pf.tensor(x)).numpy()
    path = pf.save(model, str(tmp_path / "torchish.pf"))
    loaded = pf.load(path)
    assert [type(m).__name__ for m in loaded.layers] == ["Conv2d", "ReLU", "MaxPool2D",
                                                         "Flatten", "Linear"]
    np.testing.assert_array_equal(loaded(pf.tensor(x)).numpy(), want)


def test_bad_arguments_name_the_layer():
    with pytest.raises(ValueError, match="Linear: in_features must be a positive int"):
        pf.nn.Linear(0, 3)
    with pytest.raises(ValueError, match="Conv2d: groups=3 does not divide filters=4"):
        pf.nn.Conv2d(6, 4, 3, groups=3)
