"""The functional API: several inputs and outputs, ops between layers, shared layers; eager,
compiled and reloaded models agree."""
import gc
import tracemalloc

import numpy as np
import pytest

import pyfront as pf


def _two_tower():
    pf.random.seed(0)
    a = pf.nn.Input((6,), name="left")
    b = pf.nn.Input((4,), name="right")
    shared = pf.nn.Dense(8, activation="tanh", name="shared")
    h1 = shared(pf.nn.Dense(4, name="proj")(a))
    h2 = shared(b)
    merged = pf.concat([h1, h2 * 2.0], axis=1)
    out1 = pf.nn.Dense(3, name="classes")(merged)
    out2 = pf.nn.Dense(1, activation="sigmoid", name="score")(h2)
    return pf.nn.Model(inputs=[a, b], outputs=[out1, out2])


def _inputs(n=5):
    rng = np.random.default_rng(0)
    return (rng.standard_normal((n, 6)).astype(np.float32),
            rng.standard_normal((n, 4)).astype(np.float32))


def test_two_inputs_two_outputs_and_a_shared_layer():
    model = _two_tower()
    xa, xb = _inputs()
    o1, o2 = model(pf.tensor(xa), pf.tensor(xb))
    assert o1.shape == (5, 3) and o2.shape == (5, 1)
    # the shared layer holds one set of weights
    assert len(model.parameters()) == 8
    k = model.layers[1].kernel.numpy()          # "shared" is the second layer called
    b = model.layers[1].bias.numpy()
    h2 = np.tanh(xb @ k + b)
    score = model.layers[3]
    want = 1 / (1 + np.exp(-(h2 @ score.kernel.numpy() + score.bias.numpy())))
    np.testing.assert_allclose(o2.numpy(), want, rtol=1e-5, atol=1e-6)


def test_compiled_and_reloaded_models_agree(tmp_path):
    model = _two_tower()
    xa, xb = _inputs()
    with pf.no_grad():
        o1, o2 = model(pf.tensor(xa), pf.tensor(xb))
        c1, c2 = pf.jit(model)(xa, xb)
    np.testing.assert_allclose(c1.numpy(), o1.numpy(), rtol=1e-5, atol=1e-6)
    pf.save(model, tmp_path / "m.pf")
    again = pf.load(tmp_path / "m.pf")
    assert type(again) is pf.nn.Model
    r1, r2 = again(pf.tensor(xa), pf.tensor(xb))
    assert np.array_equal(r1.numpy(), o1.numpy()) and np.array_equal(r2.numpy(), o2.numpy())
    assert [i["name"] for i in again.signature["inputs"]] == ["left", "right"]


def test_functional_model_trains():
    model = _two_tower()
    xa, xb = _inputs(16)
    y = np.random.default_rng(1).integers(0, 3, 16)
    opt = pf.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(20):
        opt.zero_grad()
        o1, o2 = model(pf.tensor(xa), pf.tensor(xb))
        loss = pf.losses.cross_entropy(o1, pf.tensor(y)) + o2.mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.7


def test_wrong_inputs_are_named():
    model = _two_tower()
    xa, xb = _inputs()
    with pytest.raises(pf.PyfrontError, match="takes 2 inputs"):
        model(pf.tensor(xa))
    with pytest.raises(pf.ShapeError, match="right"):
        model(pf.tensor(xa), pf.tensor(xa))


def test_outputs_must_come_from_the_inputs():
    a = pf.nn.Input((3,))
    stray = pf.nn.Input((3,))
    out = pf.nn.Dense(2)(a) + pf.nn.Dense(2)(stray)
    with pytest.raises(pf.PyfrontError, match="not computed from the model's inputs"):
        pf.nn.Model(inputs=a, outputs=out)


def _small_model():
    x = pf.nn.Input((8,))
    h = pf.nn.Dense(16, activation="relu")(x)
    return pf.nn.Model(inputs=x, outputs=pf.nn.Dense(2)(h) * 2.0)


def test_building_a_thousand_models_keeps_memory_flat():
    # each build has its own graph, released with its symbols: a graph that lived for the
    # whole process kept every node, layer and parameter of every model ever built
    for _ in range(50):
        _small_model()
    gc.collect()
    tracemalloc.start()
    try:
        for i in range(1000):
            _small_model()
            if i == 99:
                gc.collect()
                base = tracemalloc.get_traced_memory()[0]
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, "900 model builds kept %d bytes" % grown


def test_a_model_build_ends_with_its_model_and_its_symbols_stay_usable():
    x = pf.nn.Input((4,), name="x")
    z = pf.nn.Dense(2, name="encode")(x)
    encoder = pf.nn.Model(inputs=x, outputs=z)
    # the symbols of the finished build still make models (Keras' encoder / autoencoder)
    autoencoder = pf.nn.Model(inputs=x, outputs=pf.nn.Dense(4, name="decode")(z))
    # a new Input starts a new build: its names do not collide with the last build's
    y = pf.nn.Input((2,), name="x")
    assert y.name == "x" and y.graph is not x.graph
    decoder = pf.nn.Model(inputs=y, outputs=autoencoder.layers[1](y))
    data = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    with pf.no_grad():
        np.testing.assert_allclose(decoder(encoder(pf.tensor(data))).numpy(),
                                   autoencoder(pf.tensor(data)).numpy(), rtol=1e-6)
