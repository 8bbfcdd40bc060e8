"""Fixtures of the JVM bridge tests: the checkout's pyfront.jvm (through `pip install -e .`,
which maps jvm-bridge/python to it, for this process and worker subprocesses alike), the Java
sources compiled once per session, saved models with Python's predictions, and helpers to run
Java programs and workers.

Tests that need a JDK skip with a reason naming what is missing.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pyfront as pf
import pyfront.jvm as bridge

ROOT = Path(__file__).resolve().parents[2]
BRIDGE_PYTHON = ROOT / "jvm-bridge" / "python"
TEST_JAVA = ROOT / "jvm-bridge" / "src" / "test" / "java"  # Maven's layout

if Path(bridge.__file__).resolve().parent != BRIDGE_PYTHON:
    raise ImportError("pyfront.jvm is imported from %s, not from this checkout's %s: install the "
                      "checkout with pip install -e ." % (bridge.__file__, BRIDGE_PYTHON))


def missing_jdk():
    """Why Java tests cannot run here, or None."""
    for tool in ("javac", "java"):
        try:
            bridge.build.jdk_tool(tool)
        except bridge.BuildError:
            return "no JDK: %s not found (install a JDK 17+, or set JAVA_HOME)" % tool
    try:
        bridge.py4j_jar()
    except bridge.BuildError as e:
        return str(e)
    return None


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    # the files Java programs and workers write go to a temporary folder, not the checkout
    return tmp_path_factory.mktemp("jvm-work")


@pytest.fixture(scope="session")
def child_env():
    env = dict(os.environ)
    env["PYFRONT_PYTHON"] = sys.executable
    env.pop("PYFRONT_JVM_TOKEN", None)
    return env


@pytest.fixture(scope="session")
def jdk():
    reason = missing_jdk()
    if reason:
        pytest.skip(reason)
    return {"java": bridge.build.jdk_tool("java"), "javac": bridge.build.jdk_tool("javac")}


@pytest.fixture(scope="session")
def bridge_jar(jdk, tmp_path_factory):
    """pyfront-bridge.jar built from this checkout's sources, once per session."""
    return bridge.build_jar(out=str(tmp_path_factory.mktemp("jar") / "pyfront-bridge.jar"))


@pytest.fixture(scope="session")
def java_classpath(jdk, bridge_jar, tmp_path_factory):
    """Classpath with the bridge, py4j and the compiled test programs."""
    classes = tmp_path_factory.mktemp("test-classes")
    cp = os.pathsep.join([bridge_jar, bridge.py4j_jar()])
    sources = sorted(str(p) for p in TEST_JAVA.glob("*.java"))
    done = subprocess.run([jdk["javac"], "--release", "17", "-Xlint:all", "-cp", cp, "-d",
                           str(classes)] + sources, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    return os.pathsep.join([cp, str(classes)])


class JavaResult:
    """Output of a Java test program: CHECK lines, FACT lines, exit status."""

    def __init__(self, done):
        self.returncode = done.returncode
        self.stdout = done.stdout
        self.stderr = done.stderr
        self.checks = {}
        self.facts = {}
        for line in done.stdout.splitlines():
            if line.startswith("CHECK "):
                body = line[6:]
                status = " ok" if body.endswith(" ok") else " FAIL"
                name = body.rsplit(" ok", 1)[0] if status == " ok" else body.split(" FAIL")[0]
                self.checks[name] = body[len(name) + 1:]
            elif line.startswith("FACT "):
                key, _, value = line[5:].partition(" ")
                self.facts[key] = value

    def failed(self):
        return {k: v for k, v in self.checks.items() if v != "ok"}

    def assert_ok(self, *required):
        assert not self.failed(), "failed checks: %s\n--- stdout\n%s\n--- stderr\n%s" % (
            self.failed(), self.stdout, self.stderr[-4000:])
        missing = [r for r in required if r not in self.checks]
        assert not missing, "checks not run: %s\n%s\n--- stderr\n%s" % (
            missing, self.stdout, self.stderr[-4000:])
        assert self.returncode == 0, self.stdout + self.stderr[-4000:]


@pytest.fixture(scope="session")
def run_java(jdk, java_classpath, child_env, workdir):
    def run(main, *args, timeout=180):
        done = subprocess.run([jdk["java"], "-cp", java_classpath, main] + [str(a) for a in args],
                              cwd=workdir, env=child_env, capture_output=True, text=True,
                              timeout=timeout)
        return JavaResult(done)

    return run


# ---- models ----

FEATURES = 32
ROWS = 48


def _mlp():
    pf.random.seed(7)
    model = pf.nn.Sequential([pf.nn.Dense(64, activation="relu"),
                              pf.nn.Dense(64, activation="tanh"),
                              pf.nn.Dense(10)])
    model(pf.tensor(np.zeros((1, FEATURES), np.float32)))
    return model


class _Lookup(pf.nn.Module):
    """Rows of a table picked by int64 indices: an int64 input, a rank-3 output, and a Python
    exception (IndexOutOfRange) for an index past the table."""

    def __init__(self):
        super().__init__(name="lookup")
        self.table = pf.nn.Parameter(np.arange(40, dtype=np.float32).reshape(10, 4))

    def forward(self, idx):
        return pf.take(self.table, idx, axis=0)


@pytest.fixture(scope="session")
def models(tmp_path_factory):
    """Saved models, test inputs, and pyfront's own predictions for them (float32)."""
    d = tmp_path_factory.mktemp("models")
    mlp = _mlp()
    mlp_path = d / "mlp.pf"
    pf.save(mlp, mlp_path)
    lookup = _Lookup()
    lookup(pf.tensor(np.array([[0, 1, 2]], np.int64)))
    lookup_path = d / "lookup.pf"
    pf.save(lookup, lookup_path)
    corrupt = d / "corrupt.pf"
    data = bytearray(mlp_path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte: the checksum must catch it
    corrupt.write_bytes(bytes(data))

    x = np.random.default_rng(3).standard_normal((ROWS, FEATURES)).astype(np.float32)
    inputs = d / "inputs.bin"
    x.tofile(inputs)
    loaded = pf.load(mlp_path)
    with pf.no_grad():
        eager_rows = np.concatenate([loaded(pf.tensor(x[i:i + 1])).numpy() for i in range(ROWS)])
        eager_batch = loaded(pf.tensor(x)).numpy().copy()
    compiled = pf.jit(pf.load(mlp_path))
    jit_rows = np.concatenate([compiled.run_numpy(x[i:i + 1]) for i in range(ROWS)])
    expected = d / "expected_rows.bin"
    jit_rows.astype(np.float32).tofile(expected)
    return {"mlp": mlp_path, "lookup": lookup_path, "corrupt": corrupt, "inputs": inputs,
            "x": x, "eager_rows": eager_rows, "eager_batch": eager_batch, "jit_rows": jit_rows,
            "jit_batch": compiled.run_numpy(x), "expected_rows": expected, "dir": d,
            "rows": ROWS, "features": FEATURES}


# ---- a worker started by the test itself ----

class WorkerProcess:
    def __init__(self, proc, info, token):
        self.proc, self.info, self.token = proc, info, token

    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _start_worker(child_env, workdir, models, token, *extra):
    env = dict(child_env, PYFRONT_JVM_TOKEN=token)
    args = [sys.executable, "-m", "pyfront.jvm", "serve"]
    for name, path in models.items():
        args += ["--model", "%s=%s" % (name, path)]
    proc = subprocess.Popen(args + list(extra), cwd=workdir, env=env, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("PYFRONT_WORKER_READY "):
        proc.kill()
        raise AssertionError("worker did not start: %r\n%s" % (line, proc.stderr.read()))
    return WorkerProcess(proc, json.loads(line.split(" ", 1)[1]), token)


@pytest.fixture(scope="session")
def start_worker(child_env, workdir):
    """start_worker({name: path}, token, *serve_args) -> a running WorkerProcess."""
    started = []

    def start(models, token, *extra):
        w = _start_worker(child_env, workdir, models, token, *extra)
        started.append(w)
        return w

    yield start
    for w in started:
        w.stop()


@pytest.fixture
def worker(start_worker, models):
    w = start_worker({"mlp": models["mlp"], "lookup": models["lookup"]}, "test-token-123",
                     "--max-frame-mb", "1")
    yield w
    w.stop()


@pytest.fixture(scope="session")
def pid_alive():
    return _pid_alive


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
