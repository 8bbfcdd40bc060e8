"""Constants an op makes itself follow its tensors' device, checked without a GPU.

The CUDA backend is replaced by a stand-in (conftest's fake_gpu): "GPU memory" is a numpy
subclass that says which device it is on, and the CUDA backend's eager path runs the CPU
kernels on it (so its numbers can be compared with the CPU's). An op meeting tensors of two
devices is refused as on a real GPU, so every constant made in host memory and meeting a GPU
tensor (an avg_pool ceil_mode ratio, an RNN's absent biases, diag's zero, index arrays...)
fails these tests.
"""
import types

import numpy as np
import pytest

import pyfront as pf
from pyfront import errors, nn


def _host(t):
    return np.asarray(t._data.view(np.ndarray))


def _check(log, device="cuda:0"):
    """Every op ran on `device`, with all its inputs there, inside that device's scope."""
    assert log, "no op ran on the fake GPU"
    for name, devices, scope in log:
        assert set(devices) == {device}, (name, devices)
        assert scope == device, (name, scope)


def test_stand_in_refuses_two_devices_as_a_gpu_does(fake_gpu):
    x = pf.tensor(np.ones((2, 3), np.float32)).to("cuda")
    with pytest.raises(errors.DeviceError, match=r"add: inputs on different devices "
                       r"\(a on cuda:0, b on cpu\)"):
        x + pf.tensor(np.ones((2, 3), np.float32))


def test_a_model_moved_before_its_first_call_makes_its_weights_there(fake_gpu):
    """model.to("cuda") right after construction, as PyTorch users write it: the layers take
    their shapes from the first input, so their weights do not exist yet; they must be made on
    the GPU then, not on the CPU (where the first GPU input would meet them)."""
    model = nn.Sequential([nn.Dense(4, activation="relu"), nn.Dense(2)])
    assert model.to("cuda") is model
    y = model(pf.tensor(np.ones((3, 5), np.float32)).to("cuda"))
    assert y.device == "cuda:0" and y.shape == (3, 2)
    assert [p.device for p in model.parameters()] == ["cuda:0"] * 4
    _check(fake_gpu)
    # and moved back before its first call, it is made on the CPU
    model = nn.Sequential([nn.Dense(4)])
    model.to("cuda:1").to("cpu")
    model(pf.tensor(np.ones((3, 5), np.float32)))
    assert [p.device for p in model.parameters()] == ["cpu"] * 2


def test_avg_pool_ceil_mode_ratio_follows_the_device(fake_gpu):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 8, 8)).astype(np.float32)
    want = pf.avg_pool2d(pf.tensor(x), 3, 2, padding=1, ceil_mode=True).numpy()
    got = pf.avg_pool2d(pf.tensor(x).to("cuda"), 3, 2, padding=1, ceil_mode=True)
    assert got.device == "cuda:0"
    np.testing.assert_allclose(_host(got), want, rtol=1e-6)
    assert "avg_pool2d" in [name for name, _, _ in fake_gpu]
    _check(fake_gpu)


@pytest.mark.parametrize("layer", [lambda: nn.LSTM(4, use_bias=False, return_sequences=True),
                                   lambda: nn.GRU(4, use_bias=False, return_sequences=True),
                                   lambda: nn.SimpleRNN(4, use_bias=False,
                                                        return_sequences=True)],
                         ids=["lstm", "gru", "simple_rnn"])
def test_rnn_without_biases_follows_the_device(fake_gpu, layer):
    pf.random.seed(3)
    model = layer()
    x = np.random.default_rng(1).standard_normal((2, 5, 3)).astype(np.float32)
    want = model(pf.tensor(x)).numpy()
    model.to("cuda")
    got = model(pf.tensor(x).to("cuda"))
    np.testing.assert_allclose(_host(got), want, rtol=1e-6)
    _check(fake_gpu)


def test_rnn_op_with_numpy_mask_and_no_initial_state_follows_the_device(fake_gpu):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 4, 3)).astype(np.float32)
    w = [rng.standard_normal(s).astype(np.float32) for s in ((3, 8), (2, 8), (8,))]
    mask = np.array([[1, 1, 1, 0], [1, 1, 0, 0]], bool)
    want = pf.lstm(pf.tensor(x), *w, mask=mask)[0].numpy()
    got = pf.lstm(pf.tensor(x).to("cuda"), *[pf.tensor(a).to("cuda") for a in w], mask=mask)[0]
    np.testing.assert_allclose(_host(got), want, rtol=1e-6)
    _check(fake_gpu)


def test_index_constants_follow_the_device(fake_gpu):
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    x = pf.tensor(a).to("cuda")
    np.testing.assert_array_equal(_host(pf.take(x, [2, -1], 1)), a[:, [2, -1]])
    np.testing.assert_array_equal(_host(x[[0, 2]]), a[[0, 2]])
    np.testing.assert_array_equal(_host(pf.gather(x, 1, [[0], [3], [1]])), [[0], [7], [9]])
    np.testing.assert_array_equal(_host(pf.diag(pf.tensor(a[0]).to("cuda"))), np.diag(a[0]))
    np.testing.assert_array_equal(_host(pf.repeat_interleave(x, 2, 0)), np.repeat(a, 2, 0))
    _check(fake_gpu)


def test_norm_defaults_one_hot_and_dropout_follow_the_device(fake_gpu):
    a = np.random.default_rng(4).standard_normal((4, 3, 5)).astype(np.float32)
    x = pf.tensor(a).to("cuda")
    np.testing.assert_allclose(_host(pf.layer_norm(x, 5)), pf.layer_norm(pf.tensor(a), 5).numpy(),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_host(pf.batch_norm(x, training=True)),
                               pf.batch_norm(pf.tensor(a), training=True).numpy(),
                               rtol=1e-5, atol=1e-6)
    labels = pf.tensor(np.array([0, 2, 1])).to("cuda")
    np.testing.assert_array_equal(_host(pf.one_hot(labels, 3)), np.eye(3)[[0, 2, 1]])
    y = pf.dropout(x, 0.5)
    assert y.device == "cuda:0" and y.shape == (4, 3, 5)
    _check(fake_gpu)


def test_causal_attention_mask_follows_the_device(fake_gpu):
    pf.random.seed(5)
    layer = nn.MultiHeadAttention(2, 3, causal=True)
    q = np.random.default_rng(6).standard_normal((2, 4, 6)).astype(np.float32)
    want = layer(pf.tensor(q), mask=np.ones((2, 4), bool)).numpy()
    layer.to("cuda")
    got = layer(pf.tensor(q).to("cuda"), mask=np.ones((2, 4), bool))
    np.testing.assert_allclose(_host(got), want, rtol=1e-5, atol=1e-6)
    _check(fake_gpu)


def test_ops_on_the_second_gpu_run_in_its_device_scope(fake_gpu):
    """Outputs, kernels and the cuBLAS handle are the inputs' device's, not device 0's."""
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    x = pf.tensor(a).to("cuda:1")
    y = pf.matmul(x * 2.0, pf.tensor(a.T.copy()).to("cuda:1"))
    assert y.device == "cuda:1"
    np.testing.assert_allclose(_host(y), (a * 2) @ a.T)
    _check(fake_gpu, "cuda:1")


def test_device_scope_switches_devices_only_among_several_gpus(monkeypatch):
    from pyfront.backend import cuda

    fake_cupy = types.SimpleNamespace(cuda=types.SimpleNamespace(Device=lambda i: ("device", i)))
    monkeypatch.setattr(cuda, "_probe", lambda: {"reason": None, "count": 1, "cupy": fake_cupy})
    assert cuda.device_scope("cuda:0") is cuda._ONE_DEVICE
    monkeypatch.setattr(cuda, "_probe", lambda: {"reason": None, "count": 2, "cupy": fake_cupy})
    assert cuda.device_scope("cuda:1") == ("device", 1)
