"""The one training step seam: eager and compiled train steps and their gradient-only twins
agree with each other and with a hand-written tape step, for one and several inputs."""
import numpy as np
import pytest

import pyfront as pf
from pyfront.train import (CompiledGradientStep, CompiledTrainStep, EagerGradientStep,
                           EagerTrainStep, make_gradient_step, make_train_step)


def _mlp(seed=0):
    pf.random.seed(seed)
    model = pf.nn.Sequential([pf.nn.Dense(16, activation="relu"), pf.nn.Dense(4)])
    model(pf.tensor(np.zeros((2, 8), np.float32)))
    return model


def _batch(seed=1, n=12):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 8)).astype(np.float32), rng.integers(0, 4, n)


def _two_input_model(seed=0):
    pf.random.seed(seed)
    a = pf.nn.Input((5,), name="a")
    b = pf.nn.Input((3,), name="b")
    h = pf.concat([pf.nn.Dense(6, activation="tanh")(a), pf.nn.Dense(2)(b)], axis=1)
    return pf.nn.Model(inputs=[a, b], outputs=[pf.nn.Dense(4)(h), pf.nn.Dense(1)(h)])


def _two_output_loss(outs, y_class, y_reg):
    return pf.losses.cross_entropy(outs[0], y_class) + pf.mse(outs[1], y_reg)


@pytest.mark.parametrize("compiled", [False, True])
def test_gradient_step_equals_a_hand_written_tape_step(compiled):
    x, y = _batch()
    model = _mlp()
    params = model.parameters()
    loss, grads, preds = make_gradient_step(model, pf.losses.cross_entropy, params,
                                            compiled=compiled)(x, y)
    assert isinstance(make_gradient_step(model, pf.losses.cross_entropy, params, compiled),
                      CompiledGradientStep if compiled else EagerGradientStep)
    ref = _mlp()
    out = ref(pf.tensor(x))
    ref_loss = pf.losses.cross_entropy(out, pf.tensor(y))
    ref_loss.backward()
    np.testing.assert_allclose(loss, ref_loss.item(), rtol=1e-5)
    np.testing.assert_allclose(preds, out.numpy(), rtol=1e-5, atol=1e-6)
    for g, p in zip(grads, ref.parameters()):
        np.testing.assert_allclose(g, p.grad.numpy(), rtol=1e-4, atol=1e-6)
    # no update happened
    for p, q in zip(model.parameters(), ref.parameters()):
        np.testing.assert_array_equal(p.numpy(), q.numpy())


def test_compiled_and_eager_train_steps_follow_the_same_trajectory():
    x, y = _batch()
    runs = {}
    for compiled in (False, True):
        model = _mlp()
        opt = pf.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        step = make_train_step(model, pf.losses.cross_entropy, opt, compiled=compiled)
        assert isinstance(step, CompiledTrainStep if compiled else EagerTrainStep)
        runs[compiled] = [step(x, y)[0] for _ in range(5)], [p.numpy().copy()
                                                             for p in model.parameters()]
    np.testing.assert_allclose(runs[True][0], runs[False][0], rtol=1e-5)
    assert runs[True][0][-1] < runs[True][0][0]
    for a, b in zip(runs[True][1], runs[False][1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_gradient_steps_take_several_inputs_and_targets():
    rng = np.random.default_rng(3)
    xa = rng.standard_normal((6, 5)).astype(np.float32)
    xb = rng.standard_normal((6, 3)).astype(np.float32)
    yc, yr = rng.integers(0, 4, 6), rng.standard_normal((6, 1)).astype(np.float32)
    results = []
    for compiled in (False, True):
        model = _two_input_model()
        loss, grads, preds = make_gradient_step(model, _two_output_loss,
                                                compiled=compiled)([xa, xb], [yc, yr])
        assert len(grads) == len([p for p in model.parameters() if p.requires_grad])
        assert isinstance(preds, (list, tuple)) and len(preds) == 2
        results.append((loss, grads))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5)
    for a, b in zip(results[0][1], results[1][1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_steps_put_the_model_in_training_mode_and_clear_old_gradients():
    x, y = _batch()
    model = _mlp()
    model.eval()
    for p in model.parameters():
        p.grad = pf.tensor(np.full(p.shape, 7.0, np.float32))
    opt = pf.optim.SGD(model.parameters(), lr=1e-9)
    make_train_step(model, pf.losses.cross_entropy, opt)(x, y)
    assert model.training
    _, grads, _ = make_gradient_step(model, pf.losses.cross_entropy)(x, y)
    for g, p in zip(grads, model.parameters()):
        np.testing.assert_allclose(g, p.grad.numpy())
        assert np.abs(g).max() < 7.0


def test_training_belongs_to_models_not_layers():
    dense = pf.nn.Dense(3)
    assert not hasattr(dense, "fit") and not hasattr(dense, "compile")
    with pytest.raises(AttributeError, match="belongs to models.*subclass pf.nn.Model"):
        dense.fit
    for model in (pf.nn.Sequential([pf.nn.Dense(2)]), _two_input_model(),
                  _mlp().hybridize()):
        assert callable(model.fit) and callable(model.compile)


class _Subclassed(pf.nn.Model):
    def __init__(self):
        super().__init__()
        self.hidden, self.out = pf.nn.Dense(16, activation="relu"), pf.nn.Dense(4)

    def forward(self, x):
        return self.out(self.hidden(x))


def test_a_subclassed_model_trains_saves_and_loads(tmp_path):
    x, y = _batch(n=64)
    pf.random.seed(0)
    model = _Subclassed().compile(optimizer=pf.optim.Adam(lr=1e-2), loss="cross_entropy")
    history = model.fit(x, y, epochs=5, batch_size=16, verbose=0)
    assert history["loss"][-1] < history["loss"][0]
    pf.save(model, tmp_path / "sub.pf")
    again = pf.load(tmp_path / "sub.pf")
    np.testing.assert_allclose(again.predict(x), model.predict(x), rtol=1e-5, atol=1e-6)


def test_a_mixin_gives_any_module_the_training_api():
    class Net(pf.nn.Trainable, pf.nn.Module):
        def __init__(self):
            super().__init__()
            self.out = pf.nn.Dense(4)

        def forward(self, x):
            return self.out(x)

    x, y = _batch(n=32)
    net = Net().compile(optimizer="sgd", loss="cross_entropy", metrics=["accuracy"])
    loss, acc = net.evaluate(x, y)
    assert np.isfinite(loss) and 0.0 <= acc <= 1.0
