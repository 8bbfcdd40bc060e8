"""The torch.nn modules of torch.nn.functional's second batch (the shrink/threshold
activations and RReLU, adaptive max and power-average pooling, channel and alpha dropout, the
pixel shuffles, Unfold/Fold, RMSNorm, LocalResponseNorm, the padding layers and the new loss
modules): each against its torch twin with the same arguments (and copied weights), the
random layers' training behaviour, state_dict round trips (torch's included) and save/load in
the model format."""
import numpy as np
import pytest

import pyfront as pf

torch = pytest.importorskip("torch")

R = np.random.default_rng(0)

# (class name, constructor arguments, input shape): the same arguments make pf.nn's and
# torch.nn's module
LAYERS = [
    ("Hardshrink", (0.3,), (3, 5)),
    ("Softshrink", (), (3, 5)),
    ("Tanhshrink", (), (3, 5)),
    ("Threshold", (0.1, -2.0), (3, 5)),
    ("RReLU", (0.1, 0.3), (3, 5)),
    ("AdaptiveMaxPool1d", (3,), (2, 3, 8)),
    ("AdaptiveMaxPool2d", ((2, None),), (2, 3, 5, 4)),
    ("LPPool1d", (2, 3, 2), (2, 3, 7)),
    ("LPPool2d", (1.5, (2, 3), 1, True), (2, 3, 5, 7)),
    ("Dropout1d", (0.4,), (2, 3, 5)),
    ("Dropout2d", (0.4,), (2, 3, 4, 5)),
    ("Dropout3d", (0.4,), (2, 3, 2, 2, 2)),
    ("AlphaDropout", (0.4,), (3, 5)),
    ("PixelShuffle", (3,), (2, 18, 2, 3)),
    ("PixelUnshuffle", (2,), (2, 3, 4, 6)),
    ("Unfold", ((2, 3), 2, 1, 2), (2, 3, 6, 7)),
    ("Fold", ((5, 6), 3, 1, 1), (2, 18, 30)),
    ("LocalResponseNorm", (3, 0.1, 0.5, 2.0), (2, 5, 3, 3)),
] + [("%sPad%dd" % (kind, nd), ((2, 1, 1, 2, 0, 1)[:2 * nd],) +
      ((0.25,) if kind == "Constant" else ()), (2, 3, 3, 4, 5)[:nd + 2])
     for kind in ("Zero", "Constant", "Reflection", "Replication", "Circular")
     for nd in (1, 2, 3)]


@pytest.mark.parametrize("name,args,shape", LAYERS, ids=[n for n, _, _ in LAYERS])
def test_layer_matches_its_torch_twin(name, args, shape):
    ours = getattr(pf.nn, name)(*args).eval()
    theirs = getattr(torch.nn, name)(*args).eval()
    x = R.standard_normal(shape)
    if name == "LPPool2d":
        x = np.abs(x)                          # a power of 1.5 of a negative sum is NaN
    px, tx = pf.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    got, want = ours(px), theirs(tx)
    np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=1e-10, atol=1e-12)
    seed = R.standard_normal(tuple(want.shape))
    (got * pf.tensor(seed)).sum().backward()
    (want * torch.tensor(seed)).sum().backward()
    np.testing.assert_allclose(px.grad.numpy(), tx.grad.numpy(), rtol=1e-9, atol=1e-12)
    # torch's state_dict loads (a generator state is pyfront's own and optional), and ours
    # round-trips into a fresh layer
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    again = getattr(pf.nn, name)(*args).eval()
    again.load_state_dict(ours.state_dict())
    np.testing.assert_array_equal(again(pf.tensor(x)).numpy(), got.numpy())


def test_adaptive_max_pool_layers_return_torchs_indices():
    x = R.standard_normal((2, 3, 7, 5))
    values, indices = pf.nn.AdaptiveMaxPool2d((3, 2), return_indices=True)(pf.tensor(x))
    want = torch.nn.AdaptiveMaxPool2d((3, 2), return_indices=True)(torch.tensor(x))
    np.testing.assert_array_equal(values.numpy(), want[0].numpy())
    np.testing.assert_array_equal(indices.numpy(), want[1].numpy())


@pytest.mark.parametrize("args", [((4, 5),), (5, 1e-3), (5, None, False)])
def test_rms_norm_with_torchs_weight_is_torchs(args):
    theirs = torch.nn.RMSNorm(*args, dtype=torch.float64)
    ours = pf.nn.RMSNorm(*args, dtype="float64")
    with torch.no_grad():
        if theirs.weight is not None:
            theirs.weight.copy_(torch.tensor(R.standard_normal(tuple(theirs.weight.shape))))
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    x = R.standard_normal((3, 4, 5))
    px, tx = pf.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    got, want = ours(px), theirs(tx)
    np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=1e-12, atol=1e-12)
    (got * got).sum().backward()
    (want * want).sum().backward()
    np.testing.assert_allclose(px.grad.numpy(), tx.grad.numpy(), rtol=1e-10, atol=1e-12)
    if theirs.weight is not None:
        np.testing.assert_allclose(ours.weight.grad.numpy(), theirs.weight.grad.numpy(),
                                   rtol=1e-10, atol=1e-12)
    else:
        assert ours.parameters() == []
    with pytest.raises(pf.ShapeError, match=r"%s \(RMSNorm\).*\(3, 4, 6\)" % ours.name):
        ours(pf.tensor(np.ones((3, 4, 6))))


def test_dropout_layers_drop_in_training_only_and_draw_from_their_state():
    x = pf.ones((64, 32, 2, 2))
    layer = pf.nn.Dropout2d(p=0.25, seed=3)
    assert layer.p == layer.rate == 0.25
    first, second = layer(x).numpy(), layer(x).numpy()
    assert not np.array_equal(first, second)                 # the state advanced
    channels = first.reshape(64, 32, -1)
    assert (channels.min(-1) == channels.max(-1)).all()
    assert abs((channels[..., 0] == 0).mean() - 0.25) < 0.05
    np.testing.assert_array_equal(pf.nn.Dropout2d(0.25, seed=3)(x).numpy(), first)
    assert layer.eval()(x) is x
    alpha = pf.nn.AlphaDropout(0.5, seed=1)
    y = alpha(pf.tensor(R.standard_normal(100000))).numpy()
    assert abs(y.mean()) < 0.02 and abs(y.std() - 1) < 0.02
    rrelu = pf.nn.RReLU(0.1, 0.3)
    slopes = -rrelu(pf.tensor(-np.ones(10000))).numpy()
    assert 0.1 <= slopes.min() and slopes.max() < 0.3 and slopes.std() > 0.05
    np.testing.assert_allclose(rrelu.eval()(pf.tensor(-np.ones(3))).numpy(), -0.2)


def test_layers_save_and_load_in_the_model_format(tmp_path):
    pf.random.seed(4)
    model = pf.nn.Sequential([
        pf.nn.ReflectionPad2d(1), pf.nn.Conv2d(3, 8, 3), pf.nn.RReLU(), pf.nn.Dropout2d(0.2),
        pf.nn.PixelUnshuffle(2), pf.nn.LocalResponseNorm(2), pf.nn.Hardshrink(0.1),
        pf.nn.AdaptiveMaxPool2d(2), pf.nn.Flatten(), pf.nn.RMSNorm(128),
        pf.nn.Threshold(0.0, -1.0)])
    x = R.standard_normal((2, 3, 8, 8)).astype(np.float32)
    model.eval()
    want = model(pf.tensor(x)).numpy()
    loaded = pf.load(pf.save(model, str(tmp_path / "more.pf")))
    assert [type(m).__name__ for m in loaded.layers] == [type(m).__name__ for m in model.layers]
    np.testing.assert_array_equal(loaded(pf.tensor(x)).numpy(), want)


def test_bad_arguments_and_inputs_name_the_layer():
    with pytest.raises(ValueError, match=r"\(Dropout1d\): dropout: rate must be"):
        pf.nn.Dropout1d(1.5)
    with pytest.raises(ValueError, match=r"\(ZeroPad2d\): padding must be an int or 4 ints"):
        pf.nn.ZeroPad2d((1, 2))
    with pytest.raises(ValueError, match=r"\(ReflectionPad1d\): padding must not be neg"):
        pf.nn.ReflectionPad1d((-1, 1))
    with pytest.raises(ValueError, match="softshrink_[0-9]+: lambd must be >= 0"):
        pf.nn.Softshrink(-0.5)
    pad = pf.nn.ReplicationPad2d(1)
    with pytest.raises(pf.ShapeError, match=r"%s \(ReplicationPad2d\).*\(5,\)" % pad.name):
        pad(pf.ones((5,)))
    fold = pf.nn.Fold((4, 4), 2)
    with pytest.raises(pf.ShapeError, match="fold in layer '%s'" % fold.name):
        fold(pf.ones((1, 8, 10)))


# ---- loss modules --------------------------------------------------------------------------------

def _loss_cases():
    x, y = R.standard_normal((4, 5)), R.standard_normal((4, 5))
    signs = np.sign(R.standard_normal((4, 5)))
    labels = np.array([0, 3, 2, 4])
    listed = np.array([[3, 0, -1, 1, 2], [1, 2, 3, 4, 0], [-1, 2, 0, 0, 0], [4, 4, -1, 0, 0]])
    lp = torch.log_softmax(torch.tensor(R.standard_normal((7, 2, 4))), 2).numpy()
    return [
        ("GaussianNLLLoss", {"full": True}, [x, y, np.abs(x) + 0.1]),
        ("PoissonNLLLoss", {"log_input": False, "full": True, "reduction": "sum"},
         [np.abs(x) + 0.1, np.floor(np.abs(y) * 3)]),
        ("SoftMarginLoss", {"reduction": "none"}, [x, signs]),
        ("MultiMarginLoss", {"p": 2, "margin": 0.5, "weight": np.abs(y[0])}, [x, labels]),
        ("MultiLabelMarginLoss", {}, [x, listed]),
        ("MultiLabelSoftMarginLoss", {"weight": np.abs(y[1])}, [x, (y > 0) * 1.0]),
        ("HingeEmbeddingLoss", {"margin": 0.3}, [x, signs]),
        ("CosineEmbeddingLoss", {"margin": 0.1, "reduction": "sum"}, [x, y, signs[:, 0]]),
        ("TripletMarginLoss", {"margin": 0.5, "p": 3.0, "swap": True}, [x, y, signs]),
        ("CTCLoss", {"blank": 1, "zero_infinity": True},
         [lp, np.array([[2, 3, 2], [0, 0, 3]]), np.array([7, 5]), np.array([3, 2])]),
    ]


@pytest.mark.parametrize("index", range(10))
def test_loss_modules_match_torch(index):
    name, options, arrays = _loss_cases()[index]
    ours = getattr(pf.nn, name)(**{k: (pf.tensor(v) if isinstance(v, np.ndarray) else v)
                                   for k, v in options.items()})
    theirs = getattr(torch.nn, name)(**{k: (torch.tensor(v) if isinstance(v, np.ndarray) else v)
                                        for k, v in options.items()})
    px = [pf.tensor(a, requires_grad=i == 0) for i, a in enumerate(arrays)]
    tx = [torch.tensor(a, requires_grad=i == 0) for i, a in enumerate(arrays)]
    got, want = ours(*px), theirs(*tx)
    np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=1e-10, atol=1e-12)
    got.sum().backward()
    want.sum().backward()
    np.testing.assert_allclose(px[0].grad.numpy(), tx[0].grad.numpy(), rtol=1e-8, atol=1e-10)


def test_loss_modules_refuse_bad_options_by_name():
    with pytest.raises(ValueError, match="SoftMarginLoss: reduction must be"):
        pf.nn.SoftMarginLoss(reduction="avg")
    with pytest.raises(ValueError, match="MultiMarginLoss: p must be 1 or 2"):
        pf.nn.MultiMarginLoss(p=3)
    with pytest.raises(ValueError, match="TripletMarginLoss: margin must be greater"):
        pf.nn.TripletMarginLoss(margin=-1.0)
    with pytest.raises(TypeError):      # options past the first are keyword-only
        pf.nn.HingeEmbeddingLoss(1.0, "sum")
