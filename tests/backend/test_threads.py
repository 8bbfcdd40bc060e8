"""Threads: 1 and 2 threads give bit-identical results for every kernel family (the splits are
deterministic), bad settings are refused, the pool restarts in a forked child, and numpy's
OpenBLAS working in between does not disturb results (the time ratio is printed)."""
import os
import signal
import statistics
import time

import numpy as np
import pytest

import pyfront as pf
from pyfront.backend import cpu
from pyfront.backend.cpu import lib


@pytest.fixture
def restore_threads():
    before = pf.get_num_threads()
    yield
    pf.set_num_threads(before)


def _workload(seed=0):
    """One result per kernel family, each large enough to take the parallel path."""
    rng = np.random.default_rng(seed)
    big = pf.tensor(rng.standard_normal((300, 400)).astype(np.float32))     # 120k elements
    other = pf.tensor(rng.standard_normal((400,)).astype(np.float32))
    out = {}
    out["unary"] = pf.gelu(big)
    out["binary"] = big * other - 1.5
    out["where"] = pf.where(big > 0, big, other)
    out["cast"] = (big * 100.0).astype("int64")
    out["reduce rows"] = pf.sum(big, 1)
    out["reduce long row"] = pf.sum(pf.reshape(big, (-1,)))
    out["reduce columns"] = pf.mean(big, 0)
    out["reduce max/arg"] = pf.argmax(big, 0)
    out["reduce non-adjacent"] = pf.sum(pf.reshape(big, (30, 10, 40, 10)), (0, 2))
    out["copy"] = pf.permute(pf.reshape(big, (30, 10, 400)), (2, 0, 1))
    out["take"] = pf.take(big, rng.integers(0, 300, 500), 0)
    out["softmax"] = pf.log_softmax(big, 0)
    a = pf.tensor(rng.standard_normal((256, 300)).astype(np.float32))
    b = pf.tensor(rng.standard_normal((300, 270)).astype(np.float32))
    out["gemm"] = pf.matmul(a, b)
    out["gemm transposed"] = pf.matmul(b, a, transpose_a=True, transpose_b=True)
    out["gemm batched"] = pf.matmul(pf.reshape(big, (12, 25, 400)), pf.reshape(big, (12, 400, 25)))
    out["linear"] = pf.linear(a, b, pf.ones(270), activation="tanh")
    labels = pf.tensor(rng.integers(0, 400, 300))
    z = pf.tensor(big.numpy(), requires_grad=True)
    loss = pf.cross_entropy(z, labels) + pf.mse(z, pf.zeros(300, 400))
    loss.backward()
    out["losses"] = loss
    out["loss gradients"] = z.grad
    w = pf.tensor(rng.standard_normal((200, 200)).astype(np.float32), requires_grad=True)
    opt = pf.optim.Adam([w], lr=0.01)
    for _ in range(2):
        w.grad = pf.tensor(np.full((200, 200), 0.3, np.float32))
        opt.step()
    out["adam"] = w.detach().clone()
    s = pf.tensor(rng.standard_normal((200, 200)).astype(np.float32), requires_grad=True)
    sgd = pf.optim.SGD([s], lr=0.01, momentum=0.9, nesterov=True)
    for _ in range(2):
        s.grad = pf.tensor(np.full((200, 200), 0.3, np.float32))
        sgd.step()
    out["sgd"] = s.detach().clone()
    fused_out = np.empty((300, 400), np.float32)
    program = [lib.PF_F_LOAD, 0, 0, 0, 0, 0, lib.PF_F_UNARY, 1, 0, 0, lib.PF_U_TANH, 0,
               lib.PF_F_BINARY, 2, 1, 0, lib.PF_B_MUL, 0, lib.PF_F_STORE, 0, 2, 0, 0, 0]
    cpu.run("fused", [big._buf().desc()], [cpu.Buf(fused_out, (300, 400), pf.float32).desc()],
            program)
    out["fused"] = fused_out
    return {k: np.array(v.numpy() if hasattr(v, "numpy") else v) for k, v in out.items()}


def test_one_and_two_threads_give_identical_results(restore_threads):
    pf.set_num_threads(1)
    one = _workload()
    pf.set_num_threads(2)
    two = _workload()
    again = _workload()
    for name in one:
        assert np.array_equal(one[name], two[name]), "%s differs between 1 and 2 threads" % name
        assert np.array_equal(two[name], again[name]), "%s is not deterministic" % name


def test_bad_thread_counts_are_refused(restore_threads):
    pf.set_num_threads(2)
    for bad in (0, -1, 1.5, True, "2", None):
        with pytest.raises(ValueError, match="positive int"):
            pf.set_num_threads(bad)
    with pytest.raises(pf.PyfrontError, match="1..64"):
        pf.set_num_threads(65)
    assert lib.pf_set_num_threads(0) == lib.PF_ERR_ARGUMENT
    assert pf.get_num_threads() == 2
    pf.set_num_threads(1)
    assert pf.get_num_threads() == 1


def _wait(pid, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.02)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise AssertionError("the forked child hung (the pool did not restart)")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this platform")
def test_results_stay_correct_in_a_forked_child(restore_threads):
    pf.set_num_threads(2)
    expected = _workload(seed=3)          # the pool is running when we fork
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:                          # child: never return into pytest
        code = 1
        try:
            os.close(read)
            got = _workload(seed=3)
            pf.set_num_threads(1)
            got1 = _workload(seed=3)
            pf.set_num_threads(2)
            got2 = _workload(seed=3)
            bad = [k for k in expected if not (np.array_equal(got[k], expected[k]) and
                                               np.array_equal(got1[k], expected[k]) and
                                               np.array_equal(got2[k], expected[k]))]
            os.write(write, (",".join(bad) or "ok").encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write)
    status = _wait(pid, 120)
    message = os.read(read, 4096).decode()
    os.close(read)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    assert message == "ok", "differs in the child: " + message
    assert np.array_equal(_workload(seed=3)["gemm"], expected["gemm"])   # the parent still works


def test_numpy_openblas_in_between(restore_threads, capsys):
    """numpy's own OpenBLAS pool and ours in one process: results exact, time ratio printed."""
    pf.set_num_threads(2)
    rng = np.random.default_rng(5)
    a = rng.standard_normal((512, 512)).astype(np.float32)
    b = rng.standard_normal((512, 512)).astype(np.float32)
    ta, tb = pf.tensor(a), pf.tensor(b)
    reference = pf.matmul(ta, tb).numpy().copy()
    np_reference = np.matmul(a, b)

    def timed(fn):
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    alone, after_numpy, np_alone, np_after_ours = [], [], [], []
    for _ in range(7):
        alone.append(timed(lambda: pf.matmul(ta, tb)))
        np_alone.append(timed(lambda: np.matmul(a, b)))
        np.matmul(a, b)
        after_numpy.append(timed(lambda: pf.matmul(ta, tb)))
        pf.matmul(ta, tb)
        np_after_ours.append(timed(lambda: np.matmul(a, b)))
    assert np.array_equal(pf.matmul(ta, tb).numpy(), reference)
    assert np.array_equal(np.matmul(a, b), np_reference)
    np.testing.assert_allclose(reference, np_reference, rtol=1e-4, atol=1e-3)
    ours = statistics.median(after_numpy) / statistics.median(alone)
    theirs = statistics.median(np_after_ours) / statistics.median(np_alone)
    with capsys.disabled():
        print("\nOpenBLAS pools side by side (512^3 sgemm, medians of 7): pyfront right after "
              "numpy / alone = %.2f; numpy right after pyfront / alone = %.2f; "
              "pyfront alone %.2f ms, numpy alone %.2f ms"
              % (ours, theirs, 1e3 * statistics.median(alone), 1e3 * statistics.median(np_alone)))
