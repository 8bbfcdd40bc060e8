"""Real Java programs (jvm-bridge/src/test/java/BridgeCheck.java) calling real workers: bit-exact
outputs, every exception type, restart after a kill, 16 threads x 2,000 calls, connect with a
wrong token, and no Python process left behind after close() or after the JVM is killed."""
import os
import re
import signal
import subprocess
import time

import numpy as np


def _floats(path):
    return np.fromfile(path, dtype=np.float32)


def test_outputs_equal_python_bit_for_bit(run_java, models, tmp_path):
    rows_n = models["rows"]
    out = tmp_path / "java_outputs.bin"
    result = run_java("BridgeCheck", "exact", models["mlp"], models["inputs"], rows_n,
                      models["features"], out)
    result.assert_ok("map form", "async form", "batch shape", "spin off: same output")
    got = _floats(out).reshape(2 * rows_n, 10)
    rows, batch = got[:rows_n], got[rows_n:]
    # bit for bit: compare the raw float32 bits, not values within a tolerance
    assert rows.view(np.uint32).tolist() == models["jit_rows"].view(np.uint32).tolist()
    assert rows.view(np.uint32).tolist() == models["eager_rows"].view(np.uint32).tolist()
    assert batch.view(np.uint32).tolist() == models["jit_batch"].view(np.uint32).tolist()
    assert batch.view(np.uint32).tolist() == models["eager_batch"].view(np.uint32).tolist()


def test_every_exception_type(run_java, models):
    result = run_java("BridgeCheck", "errors", models["mlp"], models["lookup"], models["corrupt"])
    result.assert_ok(
        "shape: wrong width", "shape: wrong dtype", "shape: unknown name", "shape: missing name",
        "shape errors never reach the worker", "options: negative spin refused",
        "options: a spin over a second refused",
        "tensor factory checks the element count",
        "tensor factory takes rank 8", "tensor factory refuses rank 9",
        "rank error names the limit",
        "tensor factory refuses a zero-size tensor of absurd shape",
        "timeout: sync", "timeout: async", "timeout: the worker serves again",
        "remote: model raises", "remote: python type", "exactly one stacked request failed",
        "remote: worker still up", "unavailable: after close", "load: missing file",
        "load: corrupt file", "load: python type named", "load: no such python")


def test_killed_worker_fails_fast_then_restarts(run_java, models, pid_alive):
    result = run_java("BridgeCheck", "restart", models["mlp"])
    result.assert_ok("killed mid-call: WorkerUnavailableException", "killed mid-call: fails fast",
                     "next call succeeds", "restarted as a new process", "old process gone",
                     "given up: WorkerUnavailableException", "given up: says why",
                     "given up: fails fast")
    assert not pid_alive(int(result.facts["first_pid"]))
    assert not pid_alive(int(result.facts["second_pid"]))  # closed with the model


def test_16_threads_2000_calls_each(run_java, models):
    result = run_java("BridgeCheck", "concurrency", models["mlp"], models["inputs"],
                      models["rows"], models["features"], models["expected_rows"], 16, 2000,
                      timeout=300)
    result.assert_ok("no errors", "every result correct", "batched (fewer worker requests than "
                     "calls)", "both workers served")
    assert int(result.facts["calls"]) == 32000
    # stacked rows go through a different GEMM blocking than single rows, so batched results
    # may differ from single-row ones in the last bits; they stay within float32 rounding
    assert float(result.facts["worst_relative_difference"]) <= 1e-5


def test_connect_to_running_worker_and_wrong_token(run_java, start_worker, models):
    w = start_worker({"mlp": models["mlp"]}, "s3cret-token")
    result = run_java("BridgeCheck", "connect", w.info["control_port"], w.token, "mlp",
                      models["inputs"], models["features"], models["expected_rows"])
    result.assert_ok("connect: exact output", "connect: wrong token", "connect: missing token",
                     "connect: unknown model")
    assert w.proc.poll() is None  # refusals leave the worker serving


def test_no_worker_left_after_close(run_java, models, pid_alive):
    result = run_java("BridgeCheck", "close", models["mlp"])
    result.assert_ok("workers alive before close", "workers gone after close",
                     "close with pending calls is quick", "pending call 4 fails on close",
                     "hung worker gone after close")
    for pid in result.facts["pids"].strip("[]").split(","):
        assert not pid_alive(int(pid))


def test_no_worker_left_after_jvm_killed(jdk, java_classpath, child_env, workdir, models,
                                          pid_alive):
    proc = subprocess.Popen([jdk["java"], "-cp", java_classpath, "BridgeCheck", "hold",
                             str(models["mlp"])], cwd=workdir, env=child_env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        pids = None
        for line in proc.stdout:
            if line.startswith("FACT pids "):
                pids = [int(p) for p in line[len("FACT pids "):].strip().strip("[]").split(",")]
                break
        assert pids and all(pid_alive(p) for p in pids)
        for pid in pids:  # the token came through the stdin pipe: not in argv, not in environ
            with open("/proc/%d/environ" % pid, "rb") as f:
                assert b"PYFRONT_JVM_TOKEN" not in f.read()
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                argv = f.read().split(b"\0")
            assert b"--token-stdin" in argv
            assert not [a for a in argv if re.fullmatch(rb"[0-9a-f]{64}", a)], argv
        os.kill(proc.pid, signal.SIGKILL)  # no shutdown hook runs: only stdin closing is left
        proc.wait(10)
        deadline = time.time() + 15
        while time.time() < deadline and any(pid_alive(p) for p in pids):
            time.sleep(0.1)
        assert not any(pid_alive(p) for p in pids), "workers %s outlived the JVM" % pids
    finally:
        if proc.poll() is None:
            proc.kill()
