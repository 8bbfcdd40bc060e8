"""The file layout: safetensors (8-byte little-endian header length, a JSON header naming each
tensor's dtype, shape and byte range, then the raw little-endian data), with pyfront's
metadata in the header's "__metadata__" and a SHA-256 checksum over header and data.

Reading validates every length, offset, size and type before touching data, refuses pickles,
anything that is not a regular file and anything it does not understand, and never executes
or imports anything. The same bytes travel without a file (encode / decode).
"""
import hashlib
import json
import math
import os
import re
import socket
import stat
import time

import numpy as np

from ..dtypes import BY_SAFETENSORS, as_dtype
from ..errors import ModelFormatError

__all__ = ["encode", "decode", "write_file", "read_file", "atomic_write", "MAX_HEADER_BYTES",
           "STALE_TEMPORARY_SECONDS"]

MAX_HEADER_BYTES = 64 * 1024 * 1024
# a temporary whose writer cannot be seen as alive is left alone until it is this old (its
# writer may run on another machine that shares the folder)
STALE_TEMPORARY_SECONDS = 3600
_ALIGN = 8
# far beyond any real tensor, small enough that numpy accepts every shape that passes
_MAX_RANK = 32
_MAX_ELEMENTS = 2 ** 48


def _canonical(header):
    return json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _checksum(header_without_sum, chunks):
    h = hashlib.sha256()
    h.update(_canonical(header_without_sum).encode("ascii"))
    for c in chunks:
        h.update(c)
    return h.hexdigest()


def encode(tensors, metadata):
    """The file's bytes for tensors ({name: ndarray}) and metadata ({str: str}), as a list of
    chunks (the length, the header, each tensor's data)."""
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        arr = np.asarray(tensors[name], order="C")     # ascontiguousarray makes 0-d 1-d
        dt = as_dtype(arr.dtype)
        data = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": dt.safetensors, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    meta = {str(k): str(v) for k, v in metadata.items()}
    header["__metadata__"] = meta
    meta["checksum"] = _checksum(header, chunks)
    text = _canonical(header).encode("ascii")
    text += b" " * ((-len(text)) % _ALIGN)
    return [len(text).to_bytes(8, "little"), text] + chunks


def write_file(path, tensors, metadata):
    """Write tensors ({name: ndarray}) and metadata ({str: str}) atomically to path."""
    atomic_write(path, encode(tensors, metadata))


# ---------------------------------------------------------------------------------------------
# atomic writes

def _host_tag():
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:63] or "host"


def _temporary_pattern(target):
    # .<target>.<host>.<pid>.<16 hex>.tmp, and .<target>.<8 chars>.tmp from pyfront versions
    # that named temporaries with tempfile.mkstemp (their writer is unknown)
    return re.compile(r"^\.%s\.(?:(?P<host>[A-Za-z0-9-]+)\.(?P<pid>\d+)\.[0-9a-f]{16}"
                      r"|[a-z0-9_]{8})\.tmp$" % re.escape(target))


def _alive(pid):
    if os.name == "nt":      # os.kill there terminates the process: leave it to the age rule
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:          # EPERM: it exists, under another user
        return True
    return True


def _remove_stale_temporaries(folder, target, own):
    """Delete temporaries of `target` left by writers that died (a kill during save): those
    whose writer on this machine is gone, and any older than STALE_TEMPORARY_SECONDS."""
    pattern = _temporary_pattern(target)
    host, now = _host_tag(), time.time()
    try:
        names = os.listdir(folder)
    except OSError:
        return
    for name in names:
        m = pattern.match(name)
        if m is None or name == own:
            continue
        path = os.path.join(folder, name)
        try:
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode):
                continue
            dead = m.group("pid") is not None and m.group("host") == host and \
                not _alive(int(m.group("pid")))
            if dead or now - st.st_mtime > STALE_TEMPORARY_SECONDS:
                os.unlink(path)
        except OSError:      # removed by another writer meanwhile, or not ours to remove
            pass


def _create_temporary(folder, target):
    """(fd, name) of a new temporary beside target. Created with mode 0666 so that the umask
    applies, as for any new file (mkstemp's 0600 would hide the model from other users)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        name = ".%s.%s.%d.%s.tmp" % (target, _host_tag(), os.getpid(), os.urandom(8).hex())
        try:
            return os.open(os.path.join(folder, name), flags, 0o666), name
        except FileExistsError:
            continue


def atomic_write(path, chunks):
    """Write to a temporary file beside path, fsync, then rename over path: a crash leaves
    either the old file or the new one, never a torn one. The file keeps an existing file's
    mode, else follows the umask; temporaries that killed writers left behind are removed."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    target = os.path.basename(path)
    try:
        existing = os.stat(path)
        keep_mode = stat.S_IMODE(existing.st_mode) if stat.S_ISREG(existing.st_mode) else None
    except FileNotFoundError:
        keep_mode = None
    fd, name = _create_temporary(folder, target)
    tmp = os.path.join(folder, name)
    try:
        with os.fdopen(fd, "wb") as f:
            if keep_mode is not None:
                os.fchmod(f.fileno(), keep_mode)
            for c in chunks:
                f.write(c)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    _remove_stale_temporaries(folder, target, name)


# ---------------------------------------------------------------------------------------------
# reading

def _refuse_foreign(head, source):
    # a header length of 640..767, 896..1023, ... also starts 80 0x; a pickle's opcodes never
    # leave the six bytes after its protocol header zero, as such a length does
    if head[:1] == b"\x80" and len(head) > 1 and head[1:2] in (b"\x02", b"\x03", b"\x04",
                                                               b"\x05") and head[2:8] != bytes(6):
        raise ModelFormatError("%s looks like a Python pickle; pyfront never loads pickled "
                               "data (it could run code)" % source)
    if head[:2] == b"PK":
        raise ModelFormatError("%s looks like a zip archive (a PyTorch .pt file?); pyfront "
                               "reads only its own safetensors-based files" % source)


def _no_constants(name):
    raise ValueError("%s is not a JSON number" % name)


def _parse_header(raw, source):
    try:
        # NaN and Infinity are not JSON; a safetensors header never holds them
        header = json.loads(raw.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ModelFormatError("%s has a corrupt header: %s" % (
            source, "nested too deeply" if isinstance(e, RecursionError) else e)) from None
    if not isinstance(header, dict):
        raise ModelFormatError("%s has a corrupt header (not a JSON object)" % source)
    return header


def _is_int(v):
    return type(v) is int


def _tensor_entry(name, e, data_size, source):
    """(begin, end, name, dtype, shape) of one header entry, every field checked."""
    ok = isinstance(e, dict) and set(e) == {"dtype", "shape", "data_offsets"} and \
        isinstance(e["dtype"], str) and e["dtype"] in BY_SAFETENSORS and \
        isinstance(e["shape"], list) and len(e["shape"]) <= _MAX_RANK and \
        all(_is_int(d) and d >= 0 for d in e["shape"]) and \
        isinstance(e["data_offsets"], list) and len(e["data_offsets"]) == 2 and \
        all(_is_int(x) for x in e["data_offsets"])
    if not ok:
        raise ModelFormatError("%s: tensor %r has a malformed entry %.200r (expected dtype, a "
                               "shape of at most %d non-negative ints, two int data_offsets)"
                               % (source, name, e, _MAX_RANK))
    dt, shape = BY_SAFETENSORS[e["dtype"]], e["shape"]
    begin, end = e["data_offsets"]
    if math.prod(max(d, 1) for d in shape) > _MAX_ELEMENTS:
        raise ModelFormatError("%s: tensor %r has an impossible shape %s" % (source, name,
                                                                             tuple(shape)))
    nbytes = math.prod(shape) * dt.itemsize
    if not (0 <= begin <= end <= data_size) or end - begin != nbytes:
        raise ModelFormatError(
            "%s: tensor %r claims bytes %d..%d for %s %s (%d bytes); the data section has %d "
            "bytes" % (source, name, begin, end, dt.name, tuple(shape), nbytes, data_size))
    return begin, end, name, dt, shape


def _parse(f, size, source, max_bytes):
    """(tensors, metadata) read from the binary stream f of `size` bytes."""
    if max_bytes is not None and size > max_bytes:
        raise ModelFormatError("%s is %d bytes, over the limit of %d" % (source, size,
                                                                        max_bytes))
    head = bytes(f.read(8))
    if len(head) < 8:
        raise ModelFormatError("%s is truncated: %d bytes, too short for a header"
                               % (source, size))
    _refuse_foreign(head, source)
    n = int.from_bytes(head, "little")
    if n > MAX_HEADER_BYTES:
        raise ModelFormatError("%s declares a header of %d bytes, over the limit of %d (not a "
                               "pyfront file, or corrupt)" % (source, n, MAX_HEADER_BYTES))
    if n > size - 8:
        raise ModelFormatError("%s is truncated: the header needs %d bytes, the file has %d "
                               "after the length" % (source, n, size - 8))
    header = _parse_header(bytes(f.read(n)), source)
    meta = header.get("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise ModelFormatError("%s: __metadata__ must map strings to strings" % source)
    data_size = size - 8 - n
    entries = sorted(_tensor_entry(name, e, data_size, source)
                     for name, e in header.items() if name != "__metadata__")
    pos = 0
    for begin, end, name, _, _ in entries:
        if begin != pos:
            raise ModelFormatError("%s: tensor %r starts at byte %d, expected %d (overlap or "
                                   "gap in the data)" % (source, name, begin, pos))
        pos = end
    if pos != data_size:
        raise ModelFormatError("%s: %d bytes of data follow the tensors (expected %d): "
                               "truncated or appended to" % (source, data_size, pos))
    data = memoryview(f.read(data_size))        # slices below without copies
    if len(data) != data_size:
        raise ModelFormatError("%s changed while it was read" % source)
    stored = meta.get("checksum")
    if stored is None:
        raise ModelFormatError("%s has no checksum: not written by pyfront" % source)
    without = dict(header)
    without["__metadata__"] = {k: v for k, v in meta.items() if k != "checksum"}
    if _checksum(without, [data[b:e] for b, e, *_ in entries]) != stored:
        raise ModelFormatError("%s fails its checksum: the file was altered or corrupted"
                               % source)
    tensors = {}
    for begin, end, name, dt, shape in entries:
        arr = np.frombuffer(data, dtype=dt.np.newbyteorder("<"), count=math.prod(shape),
                            offset=begin)
        tensors[name] = arr.astype(dt.np).reshape(shape)     # astype copies: owned, writable
    return tensors, dict(without["__metadata__"])


def _open_regular(path):
    """A binary stream of the regular file at path. Anything else (a FIFO, a device such as
    /dev/zero, a directory) is refused before it is opened (opening some devices acts) and
    again after (the path may have been replaced meanwhile); O_NONBLOCK keeps a FIFO swapped
    in between from blocking the open."""
    def refuse(mode):
        kind = "a FIFO" if stat.S_ISFIFO(mode) else "a directory" if stat.S_ISDIR(mode) else \
            "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else \
            "a socket" if stat.S_ISSOCK(mode) else "not a regular file"
        raise ModelFormatError("%s is %s, not a regular file: pyfront reads models from files"
                               % (path, kind))

    before = os.stat(path)
    if not stat.S_ISREG(before.st_mode):
        refuse(before.st_mode)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
                 | getattr(os, "O_NOCTTY", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            refuse(st.st_mode)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def read_file(path, max_bytes=None):
    """(tensors {name: ndarray}, metadata {str: str}) from a file written by write_file."""
    path = os.fspath(path)
    with _open_regular(path) as f:
        return _parse(f, os.fstat(f.fileno()).st_size, path, max_bytes)


class _Reader:
    """read(n) over a memoryview, without copying (all _parse asks of a file)."""

    def __init__(self, view):
        self.view, self.pos = view, 0

    def read(self, n):
        out = self.view[self.pos:self.pos + n]
        self.pos += len(out)
        return out


def decode(data, max_bytes=None, name="the model bytes"):
    """(tensors, metadata) from bytes written by encode, with read_file's checks; name is what
    errors call the bytes."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError("expected bytes, bytearray or memoryview, got %s" % type(data).__name__)
    view = memoryview(data).cast("B")
    return _parse(_Reader(view), view.nbytes, name, max_bytes)
