"""The training steps (pyfront.train.step) of a model on a GPU, checked without one (conftest's
stand-in): batches go to the parameters' device, results come back in host memory, and the
compiled steps fall back to the eager ones there."""
import contextlib

import numpy as np
import pytest

import pyfront as pf
from pyfront import nn


def test_compiled_steps_of_a_gpu_model_fall_back_to_eager_with_a_warning(fake_gpu):
    """Compiled plans run on the CPU only so far: the compiled steps of a model on a GPU warn
    once and train eagerly there, to the CPU's numbers."""
    from pyfront.train.step import make_gradient_step, make_predict_step

    pf.random.seed(0)
    model = nn.Sequential([nn.Dense(3, in_features=4)])
    rng = np.random.default_rng(2)
    xs, ys = [rng.standard_normal((6, 4)).astype(np.float32)], [rng.integers(0, 3, 6)]
    loss_fn = lambda out, y: pf.cross_entropy(out, y)   # noqa: E731
    want = make_gradient_step(model, loss_fn, list(model.parameters()), False)(xs, ys)
    model.to("cuda:1")
    step = make_gradient_step(model, loss_fn, list(model.parameters()), True)
    with pytest.warns(RuntimeWarning, match=r"compiled gradient step: the model's parameters "
                      r"are on cuda:1, and compiled plans run on the CPU only so far; "
                      r"running eagerly"):
        got = step(xs, ys)
    np.testing.assert_allclose(got[0], want[0], rtol=1e-6)
    for g, w in zip(got[1], want[1]):
        np.testing.assert_allclose(g, w, rtol=1e-6)
    predict = make_predict_step(model, compiled=True)
    np.testing.assert_allclose(predict(xs), want[2], rtol=1e-6)


@pytest.mark.parametrize("optimizer,jit", [("sgd", False), ("adam", False), ("adam", True)])
def test_fit_trains_a_gpu_model_to_the_cpus_weights(fake_gpu, optimizer, jit):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((32, 4)).astype(np.float32)
    y = rng.integers(0, 3, 32)
    weights = []
    for device in ("cpu", "cuda:1"):
        pf.random.seed(1)
        model = nn.Sequential([nn.Dense(8, activation="relu", in_features=4),
                               nn.Dense(3, in_features=8)])
        model.to(device)
        model.compile(optimizer=optimizer, loss="cross_entropy", metrics=["accuracy"], jit=jit)
        fallback = pytest.warns(RuntimeWarning, match="compiled plans run on the CPU only") \
            if jit and device != "cpu" else contextlib.nullcontext()
        with fallback:
            history = model.fit(x, y, epochs=2, batch_size=8, verbose=0, shuffle=False)
        assert len(history.history["loss"]) == 2
        weights.append([t.cpu().numpy() for t in model.parameters()])
        assert {t.device for t in model.parameters()} == {device}
    for w_cpu, w_gpu in zip(*weights):
        np.testing.assert_allclose(w_gpu, w_cpu, rtol=1e-5, atol=1e-6)


def test_model_saved_from_a_gpu_loads_on_the_cpu_and_back(fake_gpu):
    """state_dict gives host copies of GPU tensors, load_state_dict writes into GPU memory:
    the model format moves between devices."""
    pf.random.seed(4)
    model = nn.Sequential([nn.Dense(5, activation="tanh", in_features=3),
                           nn.BatchNorm1D(5), nn.Dense(2, in_features=5)])
    x = np.random.default_rng(5).standard_normal((4, 3)).astype(np.float32)
    model.eval()
    want = model(pf.tensor(x)).numpy()
    model.to("cuda:1")
    data = pf.save_bytes(model, (None, 3))
    on_cpu = pf.load_bytes(data)
    on_cpu.eval()
    np.testing.assert_allclose(on_cpu(pf.tensor(x)).numpy(), want, rtol=1e-6)
    pf.random.seed(6)
    other = nn.Sequential([nn.Dense(5, activation="tanh", in_features=3),
                           nn.BatchNorm1D(5), nn.Dense(2, in_features=5)])
    other.to("cuda:1")
    other.load_state_dict(on_cpu.state_dict())
    other.eval()
    assert {t.device for t in other.parameters()} == {"cuda:1"}
    np.testing.assert_allclose(other(pf.tensor(x).to("cuda:1")).cpu().numpy(), want, rtol=1e-6)
