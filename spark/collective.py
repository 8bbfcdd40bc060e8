"""A deterministic ring all-reduce over TCP between the tasks of one barrier stage.

Every rank listens on one port, connects to the next rank in the ring and accepts the previous
one; both directions are authenticated with an HMAC of the run's secret over the other side's
random challenge, so a process without the secret cannot join or feed numbers in. A sum is a
reduce-scatter followed by an all-gather (2 (n - 1) / n times the vector's bytes sent per rank,
whatever n): chunk c is summed in the fixed ring order c+1, c+2, ..., c, so the result never
depends on timing and two runs give the same bits. Sending runs on its own thread while the
caller receives (sockets release the GIL), so both directions of every link are busy at once,
and every chunk is cut into segments so that a segment is added while the next one travels.
Data moves with socket.recv_into into numpy buffers: no per-element Python.

Settings: `timeout` bounds every wait (connect, accept, each send and receive); `ports` is a
(low, high) range to bind in (default: any free port), for clusters whose firewalls allow
only some ports between executors.

The ranks find each other through a Rendezvous on the driver: each task connects, both sides
prove the secret (HMAC over the other's challenge), the task registers its ring address under
its stage (id and attempt), and once every rank of that stage has registered each gets the
list. It replaces BarrierTaskContext.allGather, which takes at least a second whatever the
stage does (Spark's JVM side polls the coordinator once a second), paid by every epoch.
"""
import hashlib
import hmac
import json
import os
import queue
import select
import socket
import struct
import threading
import time

import numpy as np

__all__ = ["CollectiveError", "Ring", "Rendezvous", "rendezvous", "loopback_floor"]

_SEGMENT = 1 << 18          # bytes per pipelined segment
_HELLO = b"pyfront-ring-1"
_MEET = b"pyfront-rendezvous-1"


class CollectiveError(ConnectionError):
    """A peer of the all-reduce could not be reached, timed out, closed its connection or
    failed authentication. Not a pyfront data error: the barrier stage fails and Spark
    retries it."""


def _bind(host, ports):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if ports is None:
        sock.bind((host, 0))
        return sock
    low, high = int(ports[0]), int(ports[1])
    for port in range(low, high + 1):
        try:
            sock.bind((host, port))
            return sock
        except OSError:
            continue
    sock.close()
    raise CollectiveError("all-reduce: no free port on %s in the range %d-%d (the ports "
                          "setting)" % (host, low, high))


def _recv_exact(sock, view, who):
    got, n = 0, len(view)
    while got < n:
        try:
            k = sock.recv_into(view[got:], n - got)
        except socket.timeout:
            raise CollectiveError("all-reduce: timed out waiting for %s" % who) from None
        except OSError as e:
            raise CollectiveError("all-reduce: connection to %s failed: %s" % (who, e)) from None
        if k == 0:
            raise CollectiveError("all-reduce: %s closed the connection (its task failed or "
                                  "was killed)" % who)
        got += k


class Ring:
    """One rank of a ring. Create it (it binds), publish `address` to the other ranks (e.g.
    through BarrierTaskContext.allGather), then connect(addresses) and call allreduce."""

    def __init__(self, rank, size, secret, host="127.0.0.1", timeout=60.0, ports=None):
        self.rank, self.size = int(rank), int(size)
        self.secret = bytes(secret)
        self.timeout = float(timeout)
        self.host = host
        self._listener = _bind(host, ports)
        self._listener.listen(2)
        self.address = "%s:%d" % (host, self._listener.getsockname()[1])
        self._out = self._in = None
        self._next_name = self._prev_name = None
        self._sends = self._done = None
        self._sender = None
        self._scratch = None
        # seconds: in allreduce; wait_seconds: of those, until the previous rank's first
        # bytes arrived (mostly waiting for a slower peer to finish its step)
        self.stats = {"calls": 0, "bytes": 0, "seconds": 0.0, "wait_seconds": 0.0}

    # ---- connecting ----
    def _peer(self, rank, addresses):
        return "rank %d at %s" % (rank, addresses[rank])

    def _proof(self, challenge, rank):
        return hmac.new(self.secret, _HELLO + challenge + struct.pack("<i", rank),
                        hashlib.sha256).digest()

    def _handshake(self, links):
        """links: (socket, its rank, its name) for both neighbours. Each side sends a
        challenge, answers the other's and checks the answer; every phase is sent on both
        links before anything is read, so no rank waits on a neighbour that waits on it."""
        mine = [os.urandom(16) for _ in links]
        for (sock, _, _), challenge in zip(links, mine):
            sock.sendall(challenge)
        for sock, _, who in links:
            theirs = bytearray(16)
            _recv_exact(sock, memoryview(theirs), who)
            sock.sendall(self._proof(bytes(theirs), self.rank))
        for (sock, rank, who), challenge in zip(links, mine):
            answer = bytearray(32)
            _recv_exact(sock, memoryview(answer), who)
            if not hmac.compare_digest(bytes(answer), self._proof(challenge, rank)):
                raise CollectiveError("all-reduce: %s failed authentication (not this run's "
                                      "secret)" % who)

    def connect(self, addresses):
        """addresses: every rank's `address`, in rank order."""
        if len(addresses) != self.size:
            raise CollectiveError("all-reduce: %d addresses for %d ranks"
                                  % (len(addresses), self.size))
        if self.size == 1:
            return self
        nxt, prev = (self.rank + 1) % self.size, (self.rank - 1) % self.size
        self._next_name = self._peer(nxt, addresses)
        self._prev_name = self._peer(prev, addresses)
        deadline = time.monotonic() + self.timeout
        host, port = addresses[nxt].rsplit(":", 1)
        out = None
        while out is None:
            try:
                out = socket.create_connection((host, int(port)),
                                               timeout=max(0.1, deadline - time.monotonic()))
            except OSError as e:
                if time.monotonic() >= deadline:
                    raise CollectiveError("all-reduce: cannot reach %s within %.0f s: %s"
                                          % (self._next_name, self.timeout, e)) from None
                time.sleep(0.05)
        self._setup(out)
        self._listener.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            inc, _ = self._listener.accept()
        except socket.timeout:
            out.close()
            raise CollectiveError("all-reduce: %s did not connect within %.0f s"
                                  % (self._prev_name, self.timeout)) from None
        self._setup(inc)
        self._out, self._in = out, inc
        try:
            self._handshake([(out, nxt, self._next_name), (inc, prev, self._prev_name)])
        except BaseException:
            self.close()
            raise
        self._sends, self._done = queue.Queue(), queue.Queue()
        self._sender = threading.Thread(target=self._send_loop, daemon=True)
        self._sender.start()
        return self

    def _setup(self, sock):
        sock.settimeout(self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _send_loop(self):
        while True:
            item = self._sends.get()
            if item is None:
                return
            view, done = item
            try:
                self._out.sendall(view)
                done.put(None)
            except OSError as e:
                done.put(CollectiveError("all-reduce: sending to %s failed: %s"
                                         % (self._next_name, e)))

    # ---- the sum ----
    def allreduce(self, vec):
        """Sum `vec` (a contiguous 1-D float32 or float64 numpy array) over all ranks, in
        place; every rank ends with the same bits."""
        if self.size == 1:
            return vec
        if not (isinstance(vec, np.ndarray) and vec.ndim == 1 and vec.flags.c_contiguous):
            raise TypeError("allreduce takes a contiguous 1-D numpy array, got %r"
                            % (type(vec),))
        start = time.perf_counter()
        n, r = self.size, self.rank
        bounds = [len(vec) * i // n for i in range(n + 1)]
        chunk = lambda c: vec[bounds[c % n]:bounds[c % n + 1]]      # noqa: E731
        seg = max(1, _SEGMENT // vec.itemsize)
        scratch = self._scratch_for(min(len(vec) // n + 1, seg), vec.dtype)
        done = self._done
        # reduce-scatter: at step s rank r sends its partial of chunk r - s and adds the one
        # of chunk r - s - 1 it receives; chunk c ends complete on rank c - 1
        for s in range(n - 1):
            self._sends.put((memoryview(chunk(r - s)).cast("B"), done))
            into = chunk(r - s - 1)
            for lo in range(0, len(into), seg):
                part = into[lo:lo + seg]
                tmp = scratch[:len(part)]
                _recv_exact(self._in, memoryview(tmp).cast("B"), self._prev_name)
                if s == 0 and lo == 0:
                    self.stats["wait_seconds"] += time.perf_counter() - start
                np.add(tmp, part, out=part)
            self._wait(done)
        # all-gather: pass the complete chunks around the ring
        for s in range(n - 1):
            self._sends.put((memoryview(chunk(r + 1 - s)).cast("B"), done))
            _recv_exact(self._in, memoryview(chunk(r - s)).cast("B"), self._prev_name)
            self._wait(done)
        self.stats["calls"] += 1
        self.stats["bytes"] += vec.nbytes
        self.stats["seconds"] += time.perf_counter() - start
        return vec

    def _scratch_for(self, count, dtype):
        """A receive buffer of at least count elements, kept across calls (no allocation per
        step)."""
        nbytes = count * np.dtype(dtype).itemsize
        if self._scratch is None or self._scratch.nbytes < nbytes:
            self._scratch = np.empty(nbytes, np.uint8)
        return self._scratch[:nbytes].view(dtype)

    def _wait(self, done):
        try:
            err = done.get(timeout=self.timeout)
        except queue.Empty:
            raise CollectiveError("all-reduce: timed out sending to %s"
                                  % self._next_name) from None
        if err is not None:
            raise err

    def close(self):
        if self._sends is not None:
            self._sends.put(None)
        for sock in (self._out, self._in, self._listener):
            if sock is not None:
                try:
                    sock.close()
                except OSError:
                    pass
        self._out = self._in = self._sends = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _mac(secret, challenge, role):
    return hmac.new(secret, _MEET + challenge + role, hashlib.sha256).digest()


def _send_json(sock, value):
    data = json.dumps(value).encode()
    sock.sendall(struct.pack("<I", len(data)) + data)


def _recv_json(sock, who, limit=1 << 20):
    head = bytearray(4)
    _recv_exact(sock, memoryview(head), who)
    n = struct.unpack("<I", head)[0]
    if n > limit:
        raise CollectiveError("rendezvous: %s sent a %d-byte message" % (who, n))
    body = bytearray(n)
    _recv_exact(sock, memoryview(body), who)
    return json.loads(bytes(body))


def _alive(sock):
    """Whether the far end of a registered task's socket is still open (it sends nothing
    after registering, so a readable end of stream means it closed)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return not readable or sock.recv(1, socket.MSG_PEEK) != b""
    except OSError:
        return False


class Rendezvous:
    """The driver's meeting point of the collective mode's tasks (one per fit): a listening
    socket and a thread. A task proves the run's secret, registers (stage key, rank, ring
    address, ranks), and waits; when every rank of a stage key has registered, each receives
    the addresses in rank order."""

    def __init__(self, secret, host="127.0.0.1", timeout=60.0, ports=None, bind_host=None):
        self.secret = bytes(secret)
        self.timeout = float(timeout)
        self._listener = _bind(bind_host or host, ports)
        self._listener.listen(64)
        self.address = "%s:%d" % (host, self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._groups = {}          # stage key -> {rank: (socket, ring address)}
        self._closed = False
        self._thread = threading.Thread(target=self._serve, daemon=True,
                                        name="pyfront-rendezvous")
        self._thread.start()

    def _serve(self):
        while True:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return              # closed
            threading.Thread(target=self._register, args=(sock,), daemon=True).start()

    def _register(self, sock):
        try:
            sock.settimeout(self.timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            theirs = bytearray(16)
            _recv_exact(sock, memoryview(theirs), "a task")
            mine = os.urandom(16)
            sock.sendall(mine + _mac(self.secret, bytes(theirs), b"driver"))
            proof = bytearray(32)
            _recv_exact(sock, memoryview(proof), "a task")
            if not hmac.compare_digest(bytes(proof), _mac(self.secret, mine, b"task")):
                sock.close()        # not this run's: say nothing
                return
            msg = _recv_json(sock, "a task")
            key, rank, size = str(msg["key"]), int(msg["rank"]), int(msg["size"])
        except (CollectiveError, OSError, ValueError, KeyError, TypeError):
            sock.close()
            return
        with self._lock:
            if self._closed:
                sock.close()
                return
            group = self._groups.setdefault(key, {})
            # a rank of a failed attempt of this stage (a retried barrier stage keeps its
            # stage id, and Python tasks cannot see the attempt number) is dropped once its
            # task is gone, and replaced by the same rank of the new attempt
            for r, (s, _) in list(group.items()):
                if r == rank or not _alive(s):
                    s.close()
                    del group[r]
            group[rank] = (sock, str(msg["address"]))
            if len(group) < size:
                return
            del self._groups[key]
        addresses = [group[r][1] for r in range(size)] if sorted(group) == list(range(size)) \
            else None
        for s, _ in group.values():
            try:
                _send_json(s, {"addresses": addresses} if addresses else
                           {"error": "ranks %s registered for %d" % (sorted(group), size)})
            except OSError:
                pass
            s.close()

    def close(self):
        with self._lock:
            self._closed = True
            groups, self._groups = self._groups, {}
        try:
            self._listener.close()
        except OSError:
            pass
        for group in groups.values():
            for s, _ in group.values():
                s.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def rendezvous(driver, secret, key, rank, size, address, timeout=60.0):
    """A task's side of Rendezvous: register `address` as rank `rank` of `size` under the stage
    `key` at the driver's `driver` ("host:port"); every rank's address, in rank order."""
    who = "the driver's rendezvous at %s" % driver
    host, port = driver.rsplit(":", 1)
    try:
        sock = socket.create_connection((host, int(port)), timeout=timeout)
    except OSError as e:
        raise CollectiveError("all-reduce: cannot reach %s: %s" % (who, e)) from None
    try:
        sock.settimeout(timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        mine = os.urandom(16)
        sock.sendall(mine)
        reply = bytearray(48)
        _recv_exact(sock, memoryview(reply), who)
        if not hmac.compare_digest(bytes(reply[16:]), _mac(secret, mine, b"driver")):
            raise CollectiveError("all-reduce: %s failed authentication (not this run's "
                                  "secret)" % who)
        sock.sendall(_mac(secret, bytes(reply[:16]), b"task"))
        _send_json(sock, {"key": key, "rank": rank, "size": size, "address": address})
        try:
            answer = _recv_json(sock, who)
        except CollectiveError as e:
            raise CollectiveError("%s (waiting for the other %d rank(s) of the stage to "
                                  "register)" % (e, size - 1)) from None
    finally:
        sock.close()
    if "error" in answer:
        raise CollectiveError("all-reduce: %s: %s" % (who, answer["error"]))
    return [str(a) for a in answer["addresses"]]


def loopback_floor(nbytes, repeats=20):
    """Seconds to move nbytes one way over a loopback TCP connection (the floor an all-reduce
    of that many bytes on 127.0.0.1 is measured against): the median of `repeats`."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    out = socket.create_connection(listener.getsockname())
    inc, _ = listener.accept()
    for s in (out, inc):
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    src = np.ones(nbytes, np.uint8)
    dst = np.empty(nbytes, np.uint8)
    times = []
    try:
        for _ in range(repeats):
            t = time.perf_counter()
            sender = threading.Thread(target=out.sendall, args=(memoryview(src),))
            sender.start()
            _recv_exact(inc, memoryview(dst), "loopback")
            sender.join()
            times.append(time.perf_counter() - t)
    finally:
        for s in (out, inc, listener):
            s.close()
    return float(np.median(times))
