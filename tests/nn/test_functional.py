"""The functional API: several inputs and outputs, ops between layers, shared layers; eager,
compiled and reloaded models agree."""
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
