"""The Python worker on its own (no JVM): the binary frame protocol, authentication, rejection of
oversized and malformed frames with the worker staying up, binding, token hygiene, exit on
stdin close, and the jar command."""
import json
import os
import re
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import pyfront as pf
from pyfront.jvm import protocol as P
from pyfront.jvm.worker import _send_all

BRIDGE_JAVA = Path(__file__).resolve().parents[2] / "jvm-bridge/src/main/java/org/pyfront"


def _recv_exact(sock, view):
    pos = 0
    while pos < len(view):
        n = sock.recv_into(view[pos:], len(view) - pos)
        if n == 0:
            return False
        pos += n
    return True


def _closed_by_peer(sock):
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True


class Client:
    """A minimal data-socket client speaking the frame protocol."""

    def __init__(self, path, token=None):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(path)
        self.buf = bytearray(1 << 16)
        if token is not None:
            self.sock.sendall(P.encode_hello(token))
            kind, _, _ = self.receive()
            assert kind == P.HELLO_OK

    def receive(self):
        head = bytearray(P.HEADER_SIZE)
        if not _recv_exact(self.sock, memoryview(head)):
            return None, None, None
        kind, rid, length = P.parse_header(head, 1 << 30)
        if length > len(self.buf):
            self.buf = bytearray(length)
        _recv_exact(self.sock, memoryview(self.buf)[:length])
        return kind, rid, length

    def infer(self, model, named, rid=7):
        _send_all(self.sock, P.encode_infer(rid, model, named))
        kind, got, length = self.receive()
        assert got == rid
        if kind == P.ERROR:
            return P.parse_error(self.buf, length)
        assert kind == P.RESULT
        return [(n, a.copy()) for n, a in P.parse_result(self.buf, length)]

    def send_raw(self, data):
        self.sock.sendall(data)

    def closed_by_peer(self):
        return _closed_by_peer(self.sock)

    def close(self):
        self.sock.close()


def test_frame_round_trip():
    x = np.arange(12, dtype=np.float32).reshape(3, 4)
    idx = np.array([[1, -2]], np.int64)
    parts = P.encode_infer(5, "mödel", [("x", x), ("idx", idx)])
    frame = b"".join(bytes(memoryview(p).cast("B")) for p in parts)
    kind, rid, length = P.parse_header(frame[:24], 1 << 20)
    assert (kind, rid, length) == (P.INFER, 5, len(frame) - 24)
    body = bytearray(frame[24:])
    model, named = P.parse_infer(body, length)
    assert model == "mödel"
    assert [n for n, _ in named] == ["x", "idx"]
    np.testing.assert_array_equal(named[0][1], x)
    np.testing.assert_array_equal(named[1][1], idx)
    # tensor data sits 8-byte aligned within the body (numpy views it without copying)
    assert named[0][1].ctypes.data % 8 == np.frombuffer(body, np.uint8).ctypes.data % 8


def _frame(named, model="m"):
    return b"".join(bytes(memoryview(p).cast("B")) for p in P.encode_infer(1, model, named))


def test_layout_reused_only_for_identical_metadata():
    a = np.arange(6, dtype=np.float32)
    body = bytearray(_frame([("x", a.reshape(2, 3))])[24:])
    layout = P.infer_layout(body, len(body))
    same_shape = bytearray(_frame([("x", a.reshape(2, 3) + 1)])[24:])
    assert layout.matches(same_shape, len(same_shape))
    np.testing.assert_array_equal(layout.arrays(same_shape)[0][1], a.reshape(2, 3) + 1)
    # same byte count, other shape / dtype / name / model: parsed again, never reinterpreted
    for other in ([("x", a.reshape(3, 2))], [("x", a.view(np.int32).reshape(2, 3))],
                  [("y", a.reshape(2, 3))]):
        body2 = bytearray(_frame(other)[24:])
        assert not layout.matches(body2, len(body2))
    body2 = bytearray(_frame([("x", a.reshape(2, 3))], model="n")[24:])
    assert not layout.matches(body2, len(body2))


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:-8], "truncated"),
    (lambda b: b + b"\0" * 8, "after its last tensor"),
])
def test_malformed_bodies_are_named(damage, message):
    x = np.ones((2, 3), np.float32)
    frame = b"".join(bytes(memoryview(p).cast("B")) for p in P.encode_infer(1, "m", [("x", x)]))
    body = bytearray(damage(frame[24:]))
    with pytest.raises(P.FrameError, match=message):
        P.parse_infer(body, len(body))


def test_inference_matches_pyfront(worker, models):
    c = Client(worker.info["data_socket"], worker.token)
    x = models["x"]
    out = c.infer("mlp", [("input", x[:1])])
    assert out[0][0] == "output"
    np.testing.assert_array_equal(out[0][1], models["jit_rows"][:1])
    np.testing.assert_array_equal(out[0][1], models["eager_rows"][:1])
    out = c.infer("mlp", [("input", x)])
    np.testing.assert_array_equal(out[0][1], models["jit_batch"])
    c.close()


def test_spinning_off_or_long_serves_the_same_answers(start_worker, models):
    x = models["x"]
    for spin in ("0", "50000"):
        w = start_worker({"mlp": models["mlp"]}, "spin-token", "--spin-us", spin)
        c = Client(w.info["data_socket"], w.token)
        for i in range(3):   # back to back: each request arrives while the worker spins
            out = c.infer("mlp", [("input", x[i:i + 1])], rid=i)
            np.testing.assert_array_equal(out[0][1], models["jit_rows"][i:i + 1])
        c.close()
        w.stop()


def test_wrong_or_missing_token_refused(worker):
    c = Client(worker.info["data_socket"])
    c.send_raw(P.encode_hello("not-the-token"))
    kind, _, length = c.receive()
    assert kind == P.ERROR
    code, _, message = P.parse_error(c.buf, length)
    assert code == P.AUTH_FAILED and "token" in message
    assert c.closed_by_peer()

    c = Client(worker.info["data_socket"])  # no HELLO at all: straight to INFER
    _send_all(c.sock, P.encode_infer(1, "mlp", [("input", np.zeros((1, 32), np.float32))]))
    kind, _, length = c.receive()
    assert kind == P.ERROR and P.parse_error(c.buf, length)[0] == P.AUTH_FAILED
    assert c.closed_by_peer()


def test_oversized_and_malformed_frames_rejected_worker_stays_up(worker, models):
    x = models["x"][:1]
    # declared body over the worker's 1 MiB limit: clear error, connection dropped
    c = Client(worker.info["data_socket"], worker.token)
    c.send_raw(P.header(P.INFER, 9, 64 << 20))
    kind, rid, length = c.receive()
    code, _, message = P.parse_error(c.buf, length)
    assert kind == P.ERROR and code == P.FRAME_TOO_LARGE
    assert "exceeds" in message and str(1 << 20) in message
    assert c.closed_by_peer()

    # not a pyfront frame at all
    c = Client(worker.info["data_socket"], worker.token)
    c.send_raw(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    kind, _, length = c.receive()
    code, _, message = P.parse_error(c.buf, length)
    assert kind == P.ERROR and code == P.BAD_MAGIC and "not a pyfront frame" in message

    # a well-framed body with lying contents: error, and the same connection keeps working
    c = Client(worker.info["data_socket"], worker.token)
    parts = P.encode_infer(3, "mlp", [("input", x)])
    frame = bytearray(b"".join(bytes(memoryview(p).cast("B")) for p in parts))
    # header 24, model name block 8, tensor name/dtype/ndim block 16, two dims 16: byte count
    nbytes_at = 24 + 8 + 16 + 16
    frame[nbytes_at:nbytes_at + 8] = (10 ** 9).to_bytes(8, "little")
    c.send_raw(bytes(frame))
    kind, _, length = c.receive()
    code, _, message = P.parse_error(c.buf, length)
    assert kind == P.ERROR and code == P.BAD_FRAME, message
    out = c.infer("mlp", [("input", x)])
    np.testing.assert_array_equal(out[0][1], models["jit_rows"][:1])

    # names, dtypes and shapes are checked against the signature; unknown kinds refused
    code, _, message = c.infer("mlp", [("input", np.zeros((1, 31), np.float32))])
    assert code == P.BAD_INPUT and "(1, 31)" in message
    code, _, message = c.infer("mlp", [("input", np.zeros((1, 32), np.float64))])
    assert code == P.BAD_INPUT and "float64" in message
    code, _, message = c.infer("nope", [("input", x)])
    assert code == P.UNKNOWN_MODEL and "mlp" in message
    c.send_raw(P.header(42, 11, 0))
    kind, _, length = c.receive()
    assert P.parse_error(c.buf, length)[0] == P.UNSUPPORTED
    code, etype, message = c.infer("lookup", [("input", np.array([[1, 50, 2]], np.int64))])
    assert code == P.MODEL_ERROR and etype == "pyfront.errors.IndexOutOfRange" and "50" in message
    c.close()

    # and a fresh connection is served as before
    c = Client(worker.info["data_socket"], worker.token)
    out = c.infer("mlp", [("input", x)])
    np.testing.assert_array_equal(out[0][1], models["jit_rows"][:1])
    c.close()
    assert worker.proc.poll() is None


def _control_call(port, token, method, *args):
    """One py4j call on the worker's control entry point, speaking py4j's wire protocol
    (string arguments only)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        stream = sock.makefile("rb")
        sock.sendall(("A\n%s\ne\n" % token).encode())
        answer = stream.readline()
        if not answer.startswith(b"!yv"):
            return None
        params = "".join("s%s\n" % a.replace("\\", "\\\\").replace("\n", "\\n")
                         for a in args)
        sock.sendall(("c\nt\n%s\n%se\n" % (method, params)).encode())
        reply = stream.readline().decode()
        assert reply.startswith("!ys"), reply
        return json.loads(reply[3:].strip().replace("\\n", "\n"))


def test_control_refuses_wrong_tokens_and_keeps_serving(worker):
    port = worker.info["control_port"]
    for i in range(30):  # refusals racing the accept loop must not stop it
        with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
            sock.sendall(b"A\nwrong-%d\ne\n" % i)
    assert _control_call(port, "also-wrong", "health") is None
    health = _control_call(port, worker.token, "health")
    assert health["ok"] and health["pid"] == worker.pid


def test_control_load_signature_health(worker, models):
    port, token = worker.info["control_port"], worker.token
    sig = _control_call(port, token, "signature", "mlp")
    assert sig["inputs"] == [{"name": "input", "dtype": "float32", "shape": [-1, 32]}]
    assert "no model 'nope'" in _control_call(port, token, "signature", "nope")["error"]["message"]
    failed = _control_call(port, token, "load", "bad", str(models["corrupt"]))
    assert failed["error"]["type"] == "pyfront.errors.ModelFormatError"
    loaded = _control_call(port, token, "load", "second", str(models["mlp"]))
    assert loaded == sig
    c = Client(worker.info["data_socket"], token)
    out = c.infer("second", [("input", models["x"][:1])])
    np.testing.assert_array_equal(out[0][1], models["jit_rows"][:1])
    health = _control_call(port, token, "health")
    assert health["models"]["second"]["requests"] == 1 and "bad" not in health["models"]


def _listening_addresses(port):
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            local, state = row.split()[1], row.split()[3]
            addr, p = local.split(":")
            if int(p, 16) == port and state == "0A":  # LISTEN
                found.append(addr)
    return found


def test_binds_loopback_token_never_in_argv(worker):
    port = worker.info["control_port"]
    assert _listening_addresses(port) == ["0100007F"]  # 127.0.0.1 only, IPv4 only
    with open("/proc/%d/cmdline" % worker.pid, "rb") as f:
        assert worker.token.encode() not in f.read()
    mode = os.stat(worker.info["data_socket"]).st_mode & 0o777
    assert mode == 0o600
    assert os.stat(os.path.dirname(worker.info["data_socket"])).st_mode & 0o777 == 0o700


def test_exits_when_stdin_closes(start_worker, pid_alive, models):
    w = start_worker({"mlp": models["mlp"]}, "tok")
    folder = os.path.dirname(w.info["data_socket"])
    assert pid_alive(w.pid)
    w.proc.stdin.close()
    w.proc.wait(10)
    assert w.proc.returncode == 0
    assert not os.path.exists(folder)


def test_sigterm_exits_cleanly(start_worker, models):
    w = start_worker({"mlp": models["mlp"]}, "tok")
    folder = os.path.dirname(w.info["data_socket"])
    w.proc.terminate()
    w.proc.wait(10)
    assert w.proc.returncode == 0
    assert not os.path.exists(folder)


def test_refuses_to_start_without_token(child_env, workdir, models):
    env = dict(child_env)
    env.pop("PYFRONT_JVM_TOKEN", None)
    done = subprocess.run([sys.executable, "-m", "pyfront.jvm", "serve", "--model",
                           "m=%s" % models["mlp"]], cwd=workdir, env=env, stdin=subprocess.PIPE,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 3
    failure = json.loads(done.stdout.split("PYFRONT_WORKER_FAILED ", 1)[1])
    assert "PYFRONT_JVM_TOKEN" in failure["message"]


def test_load_failure_is_announced(child_env, workdir, models):
    env = dict(child_env, PYFRONT_JVM_TOKEN="tok")
    done = subprocess.run([sys.executable, "-m", "pyfront.jvm", "serve", "--model",
                           "m=%s" % models["corrupt"]], cwd=workdir, env=env,
                          stdin=subprocess.PIPE, capture_output=True, text=True, timeout=60)
    assert done.returncode == 3
    failure = json.loads(done.stdout.split("PYFRONT_WORKER_FAILED ", 1)[1])
    assert failure["type"] == "pyfront.errors.ModelFormatError"


def test_jar_command(jdk, child_env, workdir, tmp_path):
    env = dict(child_env, PYFRONT_CACHE_DIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-m", "pyfront.jvm", "jar"], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    jar = done.stdout.strip()
    assert os.path.isfile(jar) and jar.startswith(str(tmp_path))
    import zipfile

    names = zipfile.ZipFile(jar).namelist()
    assert "org/pyfront/Model.class" in names
    assert "org/pyfront/internal/WorkerControl.class" in names
    # cached: a second call returns the same file without rebuilding
    mtime = os.path.getmtime(jar)
    again = subprocess.run([sys.executable, "-m", "pyfront.jvm", "jar"], cwd=workdir, env=env,
                           capture_output=True, text=True, timeout=60)
    assert again.stdout.strip() == jar and os.path.getmtime(jar) == mtime


# ---- absurd shapes, and an answer for every request ----

def _hand_written_infer(dims, nbytes=0, dtype_code=0, rid=5, model="mlp", name="input"):
    """An INFER frame with one tensor record whose dims and byte count are whatever is given
    (no data): what a hostile or buggy client can send."""
    m, n = model.encode(), name.encode()
    body = struct.pack("<H", len(m)) + m + struct.pack("<H", 1)
    body += b"\0" * (-len(body) % 8)
    record = struct.pack("<H", len(n)) + n + struct.pack("<BB", dtype_code, len(dims))
    record += b"\0" * (-len(record) % 8)
    body += record + struct.pack("<%dq" % len(dims), *dims) + struct.pack("<Q", nbytes)
    return P.header(P.INFER, rid, len(body)) + body


def test_protocol_rank_limit_is_the_kernels_and_javas():
    from pyfront.backend.cpu import lib

    assert P.MAX_NDIM == lib.PF_MAX_DIMS == 8
    tensor_java = (BRIDGE_JAVA / "Tensor.java").read_text()
    assert "static final int MAX_RANK = %d;" % lib.PF_MAX_DIMS in tensor_java


@pytest.mark.parametrize("dims, message", [
    ((2 ** 62, 0), "too large"),
    ((0, 2 ** 40, 2 ** 40), "too large"),
    ((1,) * 9, "9 dimensions (limit 8)"),
])
def test_protocol_refuses_absurd_shapes(dims, message):
    frame = _hand_written_infer(dims)
    body = bytearray(frame[P.HEADER_SIZE:])
    with pytest.raises(P.FrameError, match=re.escape(message)) as e:
        P.parse_infer(body, len(body))
    assert e.value.code == P.BAD_FRAME
    # a zero-size tensor of a sane shape, and rank 8, still parse
    for ok in ((0, 784), (1,) * 7 + (0,)):
        body = bytearray(_hand_written_infer(ok)[P.HEADER_SIZE:])
        assert P.parse_infer(body, len(body))[1][0][1].shape == ok


def test_absurd_shape_answered_and_connection_kept(worker, models):
    c = Client(worker.info["data_socket"], worker.token)
    c.send_raw(_hand_written_infer((2 ** 62, 0), rid=8))
    kind, rid, length = c.receive()
    assert (kind, rid) == (P.ERROR, 8)
    code, etype, message = P.parse_error(c.buf, length)
    assert code == P.BAD_FRAME and "(4611686018427387904, 0)" in message, message
    out = c.infer("mlp", [("input", models["x"][:1])])
    np.testing.assert_array_equal(out[0][1], models["jit_rows"][:1])
    c.close()
    assert worker.proc.poll() is None


def test_unexpected_failure_answered_with_error_frame(monkeypatch):
    from pyfront.jvm.worker import Worker

    w = Worker("tok", 1 << 20)
    try:
        w.start_data_server()

        def broken(*args):
            raise ZeroDivisionError("a bug in request handling")

        monkeypatch.setattr(w, "_infer", broken)
        c = Client(w.data_socket, "tok")
        code, etype, message = c.infer("m", [("x", np.zeros((1, 2), np.float32))], rid=4)
        assert (code, etype, message) == (P.WORKER_ERROR, "ZeroDivisionError",
                                          "a bug in request handling")
        c.send_raw(P.header(P.PING, 5, 0))  # the connection still works
        assert c.receive()[:2] == (P.PONG, 5)
        c.close()
    finally:
        w.close()


def test_resolved_layouts_reused_per_connection_but_checked(models):
    """A connection's layouts are parsed and checked against the signature once each (batches
    of several sizes alternate), and never reused for another name, or after the model was
    reloaded under its name."""
    from pyfront.jvm.worker import Worker

    w = Worker("tok", 1 << 20)
    try:
        w.load("mlp", str(models["mlp"]))
        w.start_data_server()
        c = Client(w.data_socket, "tok")
        x = models["x"]
        compiled = pf.jit(pf.load(str(models["mlp"])))
        for rows in (1, 3, 1, 3, 2):
            (name, out), = c.infer("mlp", [("input", x[:rows])])
            assert name == "output"
            np.testing.assert_array_equal(out, compiled.run_numpy(x[:rows]))
        # the same byte count as a good request, another input name: checked, refused
        code, etype, message = c.infer("mlp", [("inpux", x[:1])])
        assert (code, etype) == (P.BAD_INPUT, "InputError")
        assert "has no input 'input' among the given ['inpux']" in message
        (_, out), = c.infer("mlp", [("input", x[:1])])
        np.testing.assert_array_equal(out, models["jit_rows"][:1])
        # another model under the same name: the layout is checked against its signature
        w.load("mlp", str(models["lookup"]))
        code, etype, message = c.infer("mlp", [("input", x[:1])])
        assert (code, etype) == (P.BAD_INPUT, "InputError")
        assert message == "model 'mlp': input 'input' has dtype float32, expected int64"
        counts = w.health()["models"]["mlp"]
        assert counts == {"requests": 1, "errors": 1}
        c.close()
    finally:
        w.close()


# ---- connections without the token: bounded, and dropped after a deadline ----

def _threads(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(next(line.split()[1] for line in f if line.startswith("Threads:")))


def test_idle_flood_is_bounded_and_real_calls_still_work(start_worker, models):
    w = start_worker({"mlp": models["mlp"]}, "flood-token", "--auth-timeout", "30")
    port, path = w.info["control_port"], w.info["data_socket"]
    assert _control_call(port, w.token, "health")["ok"]
    before = _threads(w.pid)
    idle = []
    try:
        for _ in range(200):  # loopback only; each holds a socket and sends nothing
            data = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            data.connect(path)  # blocking: a full backlog makes a timed connect fail at once
            data.settimeout(30)
            idle.append(data)
            idle.append(socket.create_connection(("127.0.0.1", port), timeout=30))
        time.sleep(1.0)
        # each channel keeps at most 16 unauthenticated connections (newer ones evict older)
        assert _threads(w.pid) <= before + 2 * 16 + 4, (before, _threads(w.pid))
        # the oldest idle connections were closed by the worker, not by us
        assert _closed_by_peer(idle[0]) and _closed_by_peer(idle[1])
        c = Client(path, w.token)
        out = c.infer("mlp", [("input", models["x"][:1])])
        np.testing.assert_array_equal(out[0][1], models["jit_rows"][:1])
        c.close()
        assert _control_call(port, w.token, "health")["ok"]
    finally:
        for s in idle:
            s.close()
    w.stop()
    # 2 x 184 evictions, logged thinned: the 1st, 2nd, 4th... of each message, with the count
    log = w.proc.stderr.read()
    evictions = [line for line in log.splitlines() if "evicted by a newer one" in line]
    assert 2 <= len(evictions) <= 2 * 9, log
    assert "dropped an unauthenticated data connection: evicted by a newer one (128 times so " \
        "far)" in log


def test_unauthenticated_connection_closed_after_deadline(start_worker, models):
    w = start_worker({"mlp": models["mlp"]}, "deadline-token", "--auth-timeout", "1")
    data = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    data.settimeout(20)
    data.connect(w.info["data_socket"])
    control = socket.create_connection(("127.0.0.1", w.info["control_port"]), timeout=20)
    start = time.monotonic()
    try:
        for sock in (data, control):
            sock.sendall(b"P")  # a first byte, then nothing: a slow client is no exception
        for sock in (data, control):
            assert sock.recv(64) == b""  # closed by the worker
            assert 0.8 < time.monotonic() - start < 5
        # authenticated connections stay past the deadline
        c = Client(w.info["data_socket"], w.token)
        time.sleep(1.5)
        out = c.infer("mlp", [("input", models["x"][:1])])
        np.testing.assert_array_equal(out[0][1], models["jit_rows"][:1])
        c.close()
    finally:
        data.close()
        control.close()


def _control_connection(port, token):
    """An authenticated control connection that has made one call, kept open; (socket, reply)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    stream = sock.makefile("rb")
    sock.sendall(("A\n%s\ne\n" % token).encode())
    assert stream.readline().startswith(b"!yv")
    sock.sendall(b"c\nt\nhealth\ne\n")
    return sock, stream.readline().decode()


def test_authenticated_connections_capped(start_worker, models):
    w = start_worker({"mlp": models["mlp"]}, "cap-token", "--max-connections", "2")
    x = models["x"][:1]
    first, second = Client(w.info["data_socket"], w.token), Client(w.info["data_socket"], w.token)
    third = Client(w.info["data_socket"])
    third.send_raw(P.encode_hello(w.token))
    kind, _, length = third.receive()
    code, _, message = P.parse_error(third.buf, length)
    assert (kind, code) == (P.ERROR, P.BUSY) and "serves 2 data connections" in message
    assert third.closed_by_peer()
    second.close()
    time.sleep(0.2)  # the worker notices the close
    again = Client(w.info["data_socket"], w.token)
    for c in (first, again):
        np.testing.assert_array_equal(c.infer("mlp", [("input", x)])[0][1],
                                      models["jit_rows"][:1])
    port = w.info["control_port"]
    held = [_control_connection(port, w.token) for _ in range(2)]
    assert all(reply.startswith("!ys") for _, reply in held)
    sock, reply = _control_connection(port, w.token)
    assert reply == "", reply  # dropped before the call runs
    sock.close()
    held[0][0].close()
    time.sleep(0.2)
    assert _control_call(port, w.token, "health")["ok"]
    for c in (first, again):
        c.close()
    held[1][0].close()
    w.stop()
    log = w.proc.stderr.read()
    for channel in ("data", "control"):
        assert "refused a %s connection: 2 are open (--max-connections)" % channel in log, log


def test_token_from_stdin_stays_out_of_the_environment(child_env, workdir, models):
    token = "pipe-token-" + os.urandom(8).hex()
    proc = subprocess.Popen([sys.executable, "-m", "pyfront.jvm", "serve", "--model",
                             "mlp=%s" % models["mlp"], "--token-stdin"], cwd=workdir,
                            env=child_env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        proc.stdin.write(token.encode() + b"\n")
        proc.stdin.flush()
        line = proc.stdout.readline().decode()
        assert line.startswith("PYFRONT_WORKER_READY "), line + proc.stderr.read().decode()
        info = json.loads(line.split(" ", 1)[1])
        for name in ("environ", "cmdline"):
            with open("/proc/%d/%s" % (proc.pid, name), "rb") as f:
                assert token.encode() not in f.read()
        c = Client(info["data_socket"], token)  # HELLO_OK asserted inside
        c.close()
        assert _control_call(info["control_port"], token, "health")["ok"]
    finally:
        proc.stdin.close()  # still watched after the token line: closing it stops the worker
        assert proc.wait(10) == 0


# ---- the jar built with the wheel ----

def _build_py(out, env):
    root = Path(__file__).resolve().parents[2]
    env = dict(env, PYFRONT_BUILD_CUDA="0")  # the CUDA library's build is tests/cuda's
    return subprocess.run([sys.executable, "setup.py", "-q", "build_py", "-d", str(out)],
                          cwd=root, env=env, capture_output=True, text=True, timeout=600)


def test_wheel_build_ships_the_jar_and_the_sources(jdk, tmp_path):
    done = _build_py(tmp_path / "lib", dict(os.environ))
    package = tmp_path / "lib" / "pyfront" / "jvm"
    jar = package / "pyfront-bridge.jar"
    assert "pyfront: built %s" % jar in done.stdout, done.stdout + done.stderr
    import zipfile

    with zipfile.ZipFile(jar) as z:
        assert "org/pyfront/internal/WorkerControl.class" in z.namelist()
        assert z.read("org/pyfront/Model.class")[6:8] == b"\x00\x3d"  # class file of Java 17
    shipped = sorted(p.relative_to(package / "java") for p in package.glob("java/**/*.java"))
    assert shipped == sorted(p.relative_to(BRIDGE_JAVA.parents[1])
                             for p in BRIDGE_JAVA.parents[1].glob("**/*.java"))
    # the installed package answers with the shipped jar: nothing compiled, nothing cached
    cache = tmp_path / "cache"
    found = subprocess.run(
        [sys.executable, "-c", "import importlib.util as u; s = u.spec_from_file_location('b', "
         "%r); b = u.module_from_spec(s); s.loader.exec_module(b); print(b.build_jar())"
         % str(package / "build.py")], env=dict(os.environ, PYFRONT_CACHE_DIR=str(cache)),
        capture_output=True, text=True, timeout=60)
    assert found.stdout.strip() == str(jar), found.stderr
    assert not cache.exists()


def test_wheel_build_without_a_jdk_ships_the_sources(tmp_path):
    env = dict(os.environ, PATH=os.path.dirname(sys.executable))
    env.pop("JAVA_HOME", None)
    done = _build_py(tmp_path / "lib", env)
    assert done.returncode == 0, done.stderr
    package = tmp_path / "lib" / "pyfront" / "jvm"
    assert ("pyfront: pyfront-bridge.jar not built (javac not found: install a JDK (17 or newer)"
            in done.stdout), done.stdout + done.stderr
    assert not (package / "pyfront-bridge.jar").exists()
    assert (package / "java" / "org" / "pyfront" / "Model.java").is_file()
