"""Eager dispatch replays an op's recorded kernel calls for inputs of the same shapes, dtypes
and attributes (ops.core.run_eager's cache): results must equal the first, recorded call's."""
import threading

import numpy as np

import pyfront as pf
from pyfront.ops import core


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_replayed_calls_compute_on_their_own_inputs():
    a, b = _rand(3, 4, seed=1), _rand(4, seed=2)
    for seed in range(3):               # the first call records, the others replay
        x = _rand(3, 4, seed=10 + seed)
        got = pf.tanh(pf.tensor(x) * pf.tensor(a) + pf.tensor(b)) - 0.5
        np.testing.assert_allclose(got.numpy(), np.tanh(x * a + b) - 0.5, rtol=1e-6, atol=1e-6)
    assert any(k[0] is core.REGISTRY["mul"] for k in core._replays())


def test_replay_leaves_the_inputs_own_descriptors_alone():
    # A replay patches data pointers into its own copies of the recorded descriptors: patching
    # the input's cached descriptor made a later op on x read the replayed call's memory.
    shape = (5, 7)
    x = pf.tensor(_rand(*shape, seed=3))
    (x * 2.0).numpy()                     # records mul with x's descriptor
    (pf.tensor(_rand(*shape, seed=4)) * 2.0).numpy()   # replays it on other memory
    np.testing.assert_allclose(pf.exp(x).numpy(), np.exp(x.numpy()), rtol=1e-6)   # not replayed
    np.testing.assert_allclose(pf.sqrt(x * x).numpy(), np.abs(x.numpy()), rtol=1e-6)


def test_aliased_operands_are_not_replayed_for_distinct_ones():
    x, y = pf.tensor(_rand(6, seed=5)), pf.tensor(_rand(6, seed=6))
    np.testing.assert_allclose((x - x).numpy(), np.zeros(6))
    np.testing.assert_allclose((x - y).numpy(), x.numpy() - y.numpy(), rtol=1e-6)
    np.testing.assert_allclose((y - x).numpy(), y.numpy() - x.numpy(), rtol=1e-6)


def test_gradients_through_replayed_ops_match_the_first_call():
    w = _rand(8, seed=7)
    grads = []
    for _ in range(3):
        x = pf.tensor(w.copy(), requires_grad=True)
        pf.sum(pf.tanh(x * 1.5 + 0.5) * x).backward()
        grads.append(x.grad.numpy().copy())
    t = np.tanh(w * 1.5 + 0.5)
    want = (1 - t ** 2) * 1.5 * w + t
    for g in grads:
        np.testing.assert_allclose(g, want, rtol=1e-5, atol=1e-6)


def test_threads_replay_their_own_calls():
    inputs = [_rand(64, seed=20 + i) for i in range(4)]
    failures = []

    def work(x):
        t = pf.tensor(x)
        for _ in range(300):
            got = (t * 3.0 + 1.0).numpy()
            if not np.allclose(got, x * 3.0 + 1.0, rtol=1e-6):
                failures.append(got)
                return

    threads = [threading.Thread(target=work, args=(x,)) for x in inputs]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not failures


def test_number_constants_are_shared_but_keep_their_sign_and_type():
    x = pf.tensor(np.array([1.0, -2.0], np.float32))
    np.testing.assert_array_equal(np.signbit((x * -0.0).numpy()), [True, False])
    np.testing.assert_array_equal(np.signbit((x * 0.0).numpy()), [False, True])
    y = x * 2.0
    y.numpy()[0] = 7.0                     # results are the caller's: writable
    np.testing.assert_array_equal((x * 2.0).numpy(), [2.0, -4.0])
    labels = pf.tensor(np.array([1, 2]))
    assert (labels + 1).dtype.name == "int64" and (labels + True).dtype.name == "int64"
    np.testing.assert_array_equal((labels * 1.5).numpy(), [1.5, 3.0])
