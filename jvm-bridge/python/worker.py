"""The worker process a JVM talks to: Py4J control on 127.0.0.1 (load, signature, health,
errors) and a Unix domain socket for tensor frames, both behind the token from the environment.

Started by org.pyfront.Model.load (or by hand for Model.connect); it exits when its standard
input closes, so a JVM that dies never leaves it behind.
"""
import collections
import hmac
import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time

from ..backend.cpu import wait_readable
from . import protocol
from .runner import InputError, ModelRunner

TOKEN_ENV = "PYFRONT_JVM_TOKEN"
READY_MARK = "PYFRONT_WORKER_READY"
FAILED_MARK = "PYFRONT_WORKER_FAILED"
CONTROL_INTERFACE = "org.pyfront.internal.WorkerControl"
LOG_PREFIX = "[pyfront worker %d] "  # org.pyfront.Worker prefixes relayed lines the same way

# an unauthenticated peer may make the worker read at most this much (the HELLO frame)
_HELLO_LIMIT = 4096
# peers that have not authenticated may hold at most this many connections on each channel
_MAX_PENDING = 16

log = logging.getLogger("pyfront.jvm")
_gate_log = logging.getLogger("pyfront.jvm.gate")  # thinned: a flood must not flood the log


def qualified_name(exc_type):
    module = exc_type.__module__
    return exc_type.__qualname__ if module == "builtins" else module + "." + exc_type.__qualname__


def _send_all(sock, parts, total=None):
    """Send parts (bytes or contiguous arrays) whole: one sendmsg as they are, views of them
    made only when the socket took less than all (total: their size, when the caller knows)."""
    sent = sock.sendmsg(parts)
    if total is None:
        total = sum(memoryview(p).nbytes for p in parts)
    if sent == total:
        return
    views = [memoryview(p).cast("B") for p in parts]
    while sent < total:
        total -= sent
        while sent and sent >= views[0].nbytes:
            sent -= views[0].nbytes
            views.pop(0)
        if sent:
            views[0] = views[0][sent:]
        sent = sock.sendmsg(views)


class _FrameReader:
    """Frames from a socket into one reused buffer; header and body usually arrive together and
    are read with a single recv (a syscall saved on every call). Before blocking for the next
    frame it spins up to spin_ns for it, without the GIL (see Worker)."""

    def __init__(self, sock, spin_ns=0):
        self.sock = sock
        self.fd = sock.fileno()
        self.spin_ns = int(spin_ns)
        self.buf = bytearray(1 << 16)
        self.view = memoryview(self.buf)
        self.filled = 0    # bytes in buf
        self.consumed = 0  # bytes of buf belonging to the frame returned last

    def _fill(self, size):
        while self.filled < size:
            n = self.sock.recv_into(self.view[self.filled:], len(self.buf) - self.filled)
            if n == 0:
                if self.filled == 0:
                    return False
                raise ConnectionError("peer closed the connection mid-frame")
            self.filled += n
        return True

    def next(self, max_body):
        """(kind, request id, body view, body length), or None at a clean end of stream."""
        if self.consumed:
            extra = self.filled - self.consumed
            if extra:
                self.buf[:extra] = self.buf[self.consumed:self.filled]
            self.filled, self.consumed = extra, 0
        if not self.filled and self.spin_ns:
            wait_readable(self.fd, self.spin_ns)
        if not self._fill(protocol.HEADER_SIZE):
            return None
        kind, request_id, length = protocol.parse_header(self.buf, max_body)
        total = protocol.HEADER_SIZE + length
        if total > len(self.buf):
            grown = bytearray(total)
            grown[:self.filled] = self.view[:self.filled]
            self.buf, self.view = grown, memoryview(grown)
        if not self._fill(total):
            raise ConnectionError("peer closed the connection mid-frame")
        self.consumed = total
        return kind, request_id, self.view[protocol.HEADER_SIZE:total], length


# layouts a connection remembers (batches of 1..32 rows are 32 layouts of one model)
_LAYOUTS_PER_CONNECTION = 64


class _Resolved:
    """What an INFER layout resolved to: the layout, the model, where the model's inputs are
    among the tensors (checked against the signature), and the RESULT frame's fixed bytes. A
    later request with the same layout skips all of that."""

    __slots__ = ("layout", "runner", "order", "template")

    def __init__(self, layout, runner, order):
        self.layout, self.runner, self.order, self.template = layout, runner, order, None


class ConnectionGate:
    """Bounds what peers without the token can hold on one channel: at most max_pending
    connections waiting to authenticate (a newcomer evicts the oldest, so a flood cannot lock a
    real client out), each dropped unless it authenticates within auth_timeout seconds; and at
    most max_connections authenticated ones. Each connection's thread ends when its socket is
    shut down, so threads stay bounded too."""

    def __init__(self, channel, auth_timeout, max_connections, max_pending=_MAX_PENDING):
        self.channel = channel
        self.auth_timeout = auth_timeout
        self.max_connections = max_connections
        self.max_pending = max_pending
        self._pending = collections.OrderedDict()  # key -> (deadline, drop); oldest first
        self._authenticated = set()
        self._cond = threading.Condition()
        threading.Thread(target=self._expire, name="pyfront-gate-" + channel,
                         daemon=True).start()

    def admit(self, key, drop):
        """A new connection; drop() shuts its socket down. (py4j starts a connection's thread
        before it tells us, so a control connection may have authenticated already.)"""
        with self._cond:
            if key in self._authenticated:
                return
            if len(self._pending) >= self.max_pending:
                self._drop(self._pending.popitem(last=False)[1][1], "evicted by a newer one")
            self._pending[key] = (time.monotonic() + self.auth_timeout, drop)
            self._cond.notify()

    def authenticate(self, key):
        """Whether the connection, which has just shown the token, may stay: not when
        max_connections are authenticated already."""
        with self._cond:
            if key in self._authenticated:
                return True
            self._pending.pop(key, None)
            if len(self._authenticated) >= self.max_connections:
                log.warning("refused a %s connection: %d are open (--max-connections)",
                            self.channel, self.max_connections)
                return False
            self._authenticated.add(key)
            return True

    def release(self, key):
        with self._cond:
            self._pending.pop(key, None)
            self._authenticated.discard(key)

    def _drop(self, drop, why):
        drop()
        _gate_log.warning("dropped an unauthenticated %s connection: %s", self.channel, why)

    def _expire(self):
        with self._cond:
            while True:
                now = time.monotonic()
                while self._pending:
                    key, (deadline, drop) = next(iter(self._pending.items()))
                    if deadline > now:
                        break
                    del self._pending[key]
                    self._drop(drop, "no token within %g s" % self.auth_timeout)
                first = next(iter(self._pending.values()), None)
                self._cond.wait(None if first is None else first[0] - now)


def _shutdown(sock):
    """Ends the connection and wakes its thread; the thread closes the socket itself (closing
    from here could close a descriptor number already reused)."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


class Worker:
    """The models, the data socket server and the Py4J control object of one process."""

    def __init__(self, token, max_frame_bytes, socket_dir=None, auth_timeout=5.0,
                 max_connections=64, spin_us=1000):
        if not token:
            raise ValueError("no auth token: pass it on stdin (--token-stdin) or set %s in the "
                             "environment" % TOKEN_ENV)
        self.token = token
        self.max_frame_bytes = max_frame_bytes
        # a connection's thread spins this long for the next request before blocking: the
        # Java caller sends it microseconds after our reply, and a blocked thread's wake-up
        # costs more than a small model's whole call on a VM (ModelOptions.spin)
        self.spin_ns = max(0, int(spin_us)) * 1000
        self.data_gate = ConnectionGate("data", auth_timeout, max_connections)
        self.control_gate = ConnectionGate("control", auth_timeout, max_connections)
        self.models = {}
        self.started = time.time()
        self._lock = threading.Lock()
        self._dir = tempfile.mkdtemp(prefix="pyfront-jvm-", dir=socket_dir or _short_tmp())
        self.data_socket = os.path.join(self._dir, "data.sock")
        self._listener = None
        self._client_server = None
        self.control_port = None

    # ---- models ----
    def load(self, name, path):
        runner = ModelRunner(name, path)
        runner.warm_up()
        with self._lock:
            self.models[name] = runner
        return runner

    # ---- data socket ----
    def start_data_server(self):
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.data_socket)
        os.chmod(self.data_socket, 0o600)
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept_loop, name="pyfront-accept", daemon=True).start()

    def _accept_loop(self):
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self.data_gate.admit(conn, lambda c=conn: _shutdown(c))
            threading.Thread(target=self._serve_connection, args=(conn,),
                             name="pyfront-conn", daemon=True).start()

    def _serve_connection(self, conn):
        frames = _FrameReader(conn, self.spin_ns)
        resolved = {}  # body length -> _Resolved: this connection's recent layouts
        authenticated = False
        try:
            while True:
                limit = self.max_frame_bytes if authenticated else _HELLO_LIMIT
                try:
                    frame = frames.next(limit)
                except protocol.FrameError as e:
                    if not authenticated and e.code == protocol.FRAME_TOO_LARGE:
                        e = protocol.FrameError(protocol.AUTH_FAILED, "the first frame must be "
                                                "a HELLO carrying the auth token")
                    # the stream cannot be resynchronised: answer, then drop the connection
                    _send_all(conn, [protocol.encode_error(0, e.code, "FrameError", str(e))])
                    return
                if frame is None:
                    return
                kind, request_id, body, length = frame
                if not authenticated:
                    reply, authenticated = self._hello(kind, request_id, body, length)
                    if authenticated and not self.data_gate.authenticate(conn):
                        reply, authenticated = protocol.encode_error(
                            request_id, protocol.BUSY, "WorkerBusy", "the worker serves %d data "
                            "connections, its limit (--max-connections)"
                            % self.data_gate.max_connections), False
                    _send_all(conn, [reply])
                    if not authenticated:
                        return
                    continue
                total = None
                try:
                    reply, total = self._request(kind, request_id, body, length, resolved)
                except Exception as e:  # every request gets an answer, and the worker stays
                    log.error("request %d (frame kind %d) failed: %s: %s", request_id, kind,
                              qualified_name(type(e)), e)
                    resolved.clear()
                    reply = [protocol.encode_error(request_id, protocol.WORKER_ERROR,
                                                   qualified_name(type(e)), str(e))]
                _send_all(conn, reply, total)
        except (OSError, ConnectionError):
            return
        finally:
            self.data_gate.release(conn)
            conn.close()

    def _request(self, kind, request_id, body, length, resolved):
        """The reply to one frame of an authenticated connection: (a list of buffers, their
        size in bytes or None when not counted)."""
        if kind == protocol.INFER:
            return self._infer(request_id, body, length, resolved)
        if kind == protocol.PING:
            return [protocol.header(protocol.PONG, request_id, 0)], None
        if kind == protocol.HELLO:
            return [self._hello(kind, request_id, body, length)[0]], None
        return [protocol.encode_error(request_id, protocol.UNSUPPORTED, "FrameError",
                                      "unknown frame kind %d" % kind)], None

    def _hello(self, kind, request_id, body, length):
        if kind != protocol.HELLO:
            return protocol.encode_error(request_id, protocol.AUTH_FAILED, "AuthError",
                                         "the first frame must be a HELLO carrying the auth "
                                         "token"), False
        try:
            version, token = protocol.parse_hello(body, length)
        except protocol.FrameError:
            version, token = None, ""
        if not hmac.compare_digest(token.encode("utf-8"), self.token.encode("utf-8")):
            log.warning("refused a data connection: wrong or missing auth token")
            return protocol.encode_error(request_id, protocol.AUTH_FAILED, "AuthError",
                                         "wrong or missing auth token"), False
        if version != protocol.PROTOCOL_VERSION:
            return protocol.encode_error(request_id, protocol.UNSUPPORTED, "ProtocolError",
                                         "client speaks protocol %s, this worker %d"
                                         % (version, protocol.PROTOCOL_VERSION)), False
        body = protocol.hello_ok(os.getpid(), self.max_frame_bytes)
        return protocol.header(protocol.HELLO_OK, request_id, len(body)) + body, True

    def _infer(self, request_id, body, length, resolved):
        known = resolved.get(length)
        if known is None or not known.layout.matches(body, length) \
                or self.models.get(known.layout.model) is not known.runner:
            # a new layout (or a model reloaded under its name): parse and check it once
            resolved.pop(length, None)
            try:
                layout = protocol.infer_layout(body, length)
            except protocol.FrameError as e:
                return [protocol.encode_error(request_id, e.code, "FrameError", str(e))], None
            runner = self.models.get(layout.model)
            if runner is None:
                return [protocol.encode_error(
                    request_id, protocol.UNKNOWN_MODEL, "KeyError", "this worker has no model "
                    "%r; it serves %s" % (layout.model, sorted(self.models)))], None
            try:
                order = runner.order(layout.arrays(body))
            except InputError as e:
                runner.requests += 1
                runner.errors += 1
                return [protocol.encode_error(request_id, protocol.BAD_INPUT, "InputError",
                                              str(e))], None
            if len(resolved) >= _LAYOUTS_PER_CONNECTION:
                resolved.clear()
            known = resolved[length] = _Resolved(layout, runner, order)
        runner, layout = known.runner, known.layout
        runner.requests += 1
        try:
            outputs = runner.run_checked(layout.ordered(body, known.order))
        except Exception as e:  # the model's own failure goes back to Java, the worker stays
            runner.errors += 1
            log.warning("model %r raised %s: %s", runner.name, qualified_name(type(e)), e)
            return [protocol.encode_error(request_id, protocol.MODEL_ERROR,
                                          qualified_name(type(e)), str(e))], None
        template = known.template
        if template is None or not template.fits(outputs):
            template = known.template = protocol.ResultTemplate(
                list(zip(runner.output_names, outputs)))
        return template.encode(request_id, outputs), protocol.HEADER_SIZE + template.size

    # ---- Py4J control ----
    def start_control(self):
        from py4j.clientserver import ClientServer, JavaParameters, PythonParameters
        from py4j.java_gateway import (server_connection_started, server_connection_stopped,
                                       server_started)

        def admitted(sender, connection=None, **kwargs):
            # runs on py4j's accept thread, after the connection's own thread started: that
            # one may have refused a token and closed the socket already, and an exception here
            # would end the accept loop for good
            sock = getattr(connection, "socket", None)
            if sock is None:
                return
            self.control_gate.admit(connection, lambda: _shutdown(sock))
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass

        def stopped(sender, connection=None, **kwargs):
            self.control_gate.release(connection)

        # py4j binds in start() but listens in its server thread: announcing the port before
        # that thread listens would let the JVM's first connection be refused
        listening = threading.Event()

        def started(sender, **kwargs):
            # py4j listens with a backlog of 5: a burst of connections (a flood, or many Java
            # threads at once) would have SYNs dropped and real clients wait a second or more
            sender.server_socket.listen(128)
            listening.set()

        self._signal_handlers = (admitted, stopped, started)  # py4j's signals hold weak refs
        server_started.connect(started)
        self._client_server = ClientServer(
            java_parameters=JavaParameters(auth_token=self.token, auto_convert=False),
            python_parameters=PythonParameters(address="127.0.0.1", port=0,
                                               auth_token=self.token, daemonize=True,
                                               daemonize_connections=True),
            python_server_entry_point=Control(self))
        server = self._client_server.get_callback_server()
        server_connection_started.connect(admitted, sender=server)
        server_connection_stopped.connect(stopped, sender=server)
        if not listening.wait(30):
            raise RuntimeError("py4j's control server did not start listening")
        server_started.disconnect(started)
        self.control_port = server.get_listening_port()

    def control_call(self):
        """Called first by every control method: py4j checks the token before a connection's
        first call, so a call marks its connection authenticated (see ConnectionGate)."""
        java_client = self._client_server.get_callback_server().gateway_client
        connection = java_client.get_thread_connection()
        if connection is not None and not self.control_gate.authenticate(connection):
            _shutdown(connection.socket)
            raise RuntimeError("the worker serves %d control connections, its limit "
                               "(--max-connections)" % self.control_gate.max_connections)

    def health(self):
        return {"ok": True, "pid": os.getpid(), "uptime_s": round(time.time() - self.started, 3),
                "models": {n: {"requests": r.requests, "errors": r.errors}
                           for n, r in sorted(self.models.items())}}

    def close(self):
        if self._listener is not None:
            try:
                self._listener.close()
            except OSError:
                pass
        shutil.rmtree(self._dir, ignore_errors=True)


def _short_tmp():
    # a Unix socket path must fit in 108 bytes; a long $TMPDIR (macOS, CI runners) would not
    tmp = tempfile.gettempdir()
    return tmp if len(tmp) < 60 else "/tmp"


def _error_json(exc):
    return json.dumps({"error": {"type": qualified_name(type(exc)), "message": str(exc)}})


class Control:
    """The Py4J entry point (org.pyfront.internal.WorkerControl). Every method answers JSON;
    a failure is {"error": {"type", "message"}} so Java can raise the right exception."""

    class Java:
        implements = [CONTROL_INTERFACE]

    def __init__(self, worker):
        self._worker = worker

    def hello(self, protocol_version):
        w = self._worker
        w.control_call()
        if protocol_version != protocol.PROTOCOL_VERSION:
            return json.dumps({"error": {"type": "ProtocolError", "message":
                                         "client speaks protocol %s, this worker %d"
                                         % (protocol_version, protocol.PROTOCOL_VERSION)}})
        return json.dumps({"protocol": protocol.PROTOCOL_VERSION, "pid": os.getpid(),
                           "data_socket": w.data_socket, "max_frame_bytes": w.max_frame_bytes,
                           "models": sorted(w.models)})

    def signature(self, model):
        self._worker.control_call()
        runner = self._worker.models.get(model)
        if runner is None:
            return json.dumps({"error": {"type": "KeyError", "message":
                                         "this worker has no model %r; it serves %s"
                                         % (model, sorted(self._worker.models))}})
        return json.dumps(runner.signature)

    def health(self):
        self._worker.control_call()
        return json.dumps(self._worker.health())

    def load(self, name, path):
        self._worker.control_call()
        try:
            runner = self._worker.load(name, path)
        except Exception as e:
            return _error_json(e)
        return json.dumps(runner.signature)


class _Thinned(logging.Filter):
    """Passes the 1st, 2nd, 4th, 8th... record of each message, with the count: the gates and
    py4j log every dropped or refused connection, and a flood must not flood the log."""

    def __init__(self):
        super().__init__()
        self.seen = collections.Counter()

    def filter(self, record):
        message = record.getMessage()
        self.seen[message] += 1
        n = self.seen[message]
        if n & (n - 1):
            return False
        if n > 1:
            record.msg, record.args = "%s (%d times so far)" % (message, n), ()
        return True


class _MessageOnly(logging.Formatter):
    """py4j logs refused connections with tracebacks; one line says enough."""

    def formatException(self, ei):
        return ""

    def format(self, record):
        record.exc_info = record.exc_text = None
        return super().format(record)


def _configure_logging():
    for name, level in (("pyfront.jvm", logging.INFO), ("py4j", logging.ERROR)):
        handler = logging.StreamHandler(sys.stderr)
        # the prefix the supervising JVM puts on the lines it relays: it leaves them as they are
        handler.setFormatter(_MessageOnly(LOG_PREFIX % os.getpid() + "%(message)s"))
        if name == "py4j":
            handler.addFilter(_Thinned())  # on the handler: py4j logs from child loggers
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False
    _gate_log.addFilter(_Thinned())


def _announce(mark, payload):
    sys.stdout.write("%s %s\n" % (mark, json.dumps(payload)))
    sys.stdout.flush()


def _wait_for_parent(watch_stdin):
    if not watch_stdin:
        threading.Event().wait()
    while True:
        try:
            if not os.read(0, 65536):
                return
        except OSError:
            return


def _read_token_line():
    """The first line of stdin, read a byte at a time so nothing after it is consumed."""
    line = bytearray()
    while len(line) <= _HELLO_LIMIT:
        byte = os.read(0, 1)
        if byte in (b"", b"\n"):
            break
        line += byte
    return line.decode("utf-8", "replace").strip()


def serve(models, threads=None, max_frame_bytes=512 << 20, watch_stdin=True, socket_dir=None,
          token_stdin=False, auth_timeout=5.0, max_connections=64, spin_us=1000):
    """Load models ({name: path}), start both servers, announce on stdout, serve until stdin
    closes (or SIGTERM). The token is stdin's first line with token_stdin (no other process can
    read it there), else $PYFRONT_JVM_TOKEN. Returns the process exit status."""
    _configure_logging()
    # model code and child processes never see it (/proc/PID/environ still shows the
    # environment this process started with: token_stdin keeps it out of there too)
    token = os.environ.pop(TOKEN_ENV, "")
    if token_stdin:
        token = _read_token_line()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    worker = None
    try:
        try:
            if threads:
                import pyfront as pf

                pf.set_num_threads(threads)
            worker = Worker(token, max_frame_bytes, socket_dir, auth_timeout, max_connections,
                            spin_us)
            for name, path in models.items():
                worker.load(name, path)
            worker.start_data_server()
            worker.start_control()
        except Exception as e:
            _announce(FAILED_MARK, {"type": qualified_name(type(e)), "message": str(e)})
            return 3
        _announce(READY_MARK, {"control_port": worker.control_port, "pid": os.getpid(),
                               "protocol": protocol.PROTOCOL_VERSION,
                               "data_socket": worker.data_socket,
                               "models": sorted(worker.models)})
        log.info("serving %s on 127.0.0.1:%d (control) and %s (data)",
                 sorted(worker.models), worker.control_port, worker.data_socket)
        _wait_for_parent(watch_stdin)
    except (SystemExit, KeyboardInterrupt):
        pass  # SIGTERM or Ctrl-C, at any stage: clean up below
    finally:
        if worker is not None:
            worker.close()
        sys.stdout.flush()
        sys.stderr.flush()
    # py4j's threads may sit in blocking calls; nothing is left to flush or clean up
    os._exit(0)
