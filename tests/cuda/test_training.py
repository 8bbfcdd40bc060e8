"""Training on the GPU reaches the CPU's accuracy on the digits data (needs a GPU; skipped with
the reason elsewhere). The loops are eager: forward, the tape's backward (pf.grad) and a plain
SGD step on the parameters' own arrays, the same code for both devices."""
import numpy as np
import pytest

import pyfront as pf
from pyfront.backend import cuda


def _digits():
    datasets = pytest.importorskip("sklearn.datasets", reason="scikit-learn (the [test] extra) "
                                   "ships the digits data")
    x, y = datasets.load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order].astype(np.int64)
    return x[:1400], y[:1400], x[1400:], y[1400:]


def _glorot(rng, *shape):
    fan = shape[0] * (int(np.prod(shape[2:])) if len(shape) > 2 else 1) + shape[-1]
    return (rng.uniform(-1, 1, shape) * np.sqrt(6.0 / fan)).astype(np.float32)


def _sgd(params, grads, lr):
    with pf.no_grad():
        for p, g in zip(params, grads):
            p._data -= lr * g._data        # numpy or CuPy: the update stays on its device


def _train(forward, init, device, epochs, lr=0.1, batch=64):
    xtr, ytr, xte, yte = _digits()
    params = [pf.tensor(a, device=device, requires_grad=True) for a in init]
    order = np.random.default_rng(1)
    for _ in range(epochs):
        perm = order.permutation(len(xtr))
        for i in range(0, len(xtr), batch):
            idx = perm[i:i + batch]
            xb = pf.tensor(xtr[idx], device=device)
            yb = pf.tensor(ytr[idx], device=device)
            loss = pf.cross_entropy(forward(xb, params), yb)
            _sgd(params, pf.grad(loss, params), lr)
    with pf.no_grad():
        pred = pf.argmax(forward(pf.tensor(xte, device=device), params), 1)
    return float((pred.cpu().numpy() == yte).mean()), [p.cpu().numpy() for p in params]


def _mlp(x, p):
    h = pf.linear(x, p[0], p[1], activation="relu")
    return pf.linear(h, p[2], p[3])


def test_digits_mlp_trains_on_the_gpu_as_on_the_cpu(gpu):
    rng = np.random.default_rng(2)
    init = [_glorot(rng, 64, 128), np.zeros(128, np.float32), _glorot(rng, 128, 10),
            np.zeros(10, np.float32)]
    acc_cpu, w_cpu = _train(_mlp, init, "cpu", epochs=8)
    acc_gpu, w_gpu = _train(_mlp, init, "cuda", epochs=8)
    assert acc_cpu > 0.93
    assert abs(acc_gpu - acc_cpu) <= 0.01, (acc_gpu, acc_cpu)
    for a, b in zip(w_gpu, w_cpu):    # the same trajectory, to float32 rounding
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4)


def _cnn(x, p):
    h = pf.reshape(x, -1, 1, 8, 8)
    h = pf.relu(pf.conv2d(h, p[0], p[1], padding="same"))
    h = pf.max_pool2d(h, 2)
    return pf.linear(pf.reshape(h, -1, 8 * 4 * 4), p[2], p[3])


def test_digits_cnn_trains_on_the_gpu_as_on_the_cpu(gpu):
    missing = {"conv", "conv_grad_input", "conv_grad_weight", "max_pool",
               "max_pool_grad"} - set(cuda.kernel_names())
    if missing:
        pytest.skip("the CUDA kernel table has no %s yet (native/cuda: convolution and pooling "
                    "are not ported)" % ", ".join(sorted(missing)))
    rng = np.random.default_rng(3)
    init = [_glorot(rng, 8, 1, 3, 3), np.zeros(8, np.float32), _glorot(rng, 128, 10),
            np.zeros(10, np.float32)]
    acc_cpu, _ = _train(_cnn, init, "cpu", epochs=10, lr=0.2)
    acc_gpu, _ = _train(_cnn, init, "cuda", epochs=10, lr=0.2)
    assert acc_cpu > 0.95
    assert abs(acc_gpu - acc_cpu) <= 0.01, (acc_gpu, acc_cpu)


def test_model_to_cuda_gives_the_cpu_outputs(gpu, rng):
    model = pf.nn.Sequential(pf.nn.Dense(32, activation="relu", in_features=64),
                             pf.nn.Dense(10))
    x = rng.standard_normal((5, 64)).astype(np.float32)
    want = model(pf.tensor(x)).numpy()
    assert model.to("cuda") is model
    assert {p.device for p in model.parameters()} == {"cuda:0"}
    got = model(pf.tensor(x, device="cuda"))
    assert got.device == "cuda:0" and "device='cuda:0'" in repr(got)
    np.testing.assert_allclose(got.cpu().numpy(), want, rtol=1e-5, atol=1e-6)
    model.to("cpu")
    assert {p.device for p in model.parameters()} == {"cpu"}


def test_dlpack_shares_gpu_memory_with_cupy(gpu):
    a = gpu.arange(12, dtype=gpu.float32).reshape(3, 4)
    t = pf.from_dlpack(a)
    assert t.device == "cuda:0" and t.shape == (3, 4)
    a[1, 2] = 99.0
    assert t.cpu().numpy()[1, 2] == 99.0
    back = gpu.from_dlpack(t)
    assert back.data.ptr == a.data.ptr
