"""The file layout: safetensors (8-byte little-endian header length, a JSON header naming each
tensor's dtype, shape and byte range, then the raw little-endian data), with pyfront's
metadata in the header's "__metadata__" and a SHA-256 checksum over header and data.

Reading validates every length, offset and size before touching data, refuses pickles and
anything it does not understand, and never executes or imports anything.
"""
import hashlib
import json
import os
import tempfile

import numpy as np

from ..dtypes import BY_SAFETENSORS, as_dtype
from ..errors import ModelFormatError

__all__ = ["write_file", "read_file", "MAX_HEADER_BYTES"]

MAX_HEADER_BYTES = 64 * 1024 * 1024
_ALIGN = 8


def _canonical(header):
    return json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _checksum(header_without_sum, chunks):
    h = hashlib.sha256()
    h.update(_canonical(header_without_sum).encode("ascii"))
    for c in chunks:
        h.update(c)
    return h.hexdigest()


def write_file(path, tensors, metadata):
    """Write tensors ({name: ndarray}) and metadata ({str: str}) atomically to path."""
    header, chunks, offset = {}, [], 0
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name])
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
    atomic_write(path, [len(text).to_bytes(8, "little"), text] + chunks)


def atomic_write(path, chunks):
    """Write to a temporary file beside path, fsync, then rename over path: a crash leaves
    either the old file or the new one, never a torn one."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".tmp",
                               dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
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


def _refuse_foreign(head, path):
    # a header length of 640..767, 896..1023, ... also starts 80 0x; a pickle's opcodes never
    # leave the six bytes after its protocol header zero, as such a length does
    if head[:1] == b"\x80" and len(head) > 1 and head[1:2] in (b"\x02", b"\x03", b"\x04",
                                                               b"\x05") and head[2:8] != bytes(6):
        raise ModelFormatError("%s looks like a Python pickle; pyfront never loads pickled "
                               "data (it could run code)" % path)
    if head[:2] == b"PK":
        raise ModelFormatError("%s looks like a zip archive (a PyTorch .pt file?); pyfront "
                               "reads only its own safetensors-based files" % path)


def read_file(path, max_bytes=None):
    """(tensors {name: ndarray}, metadata {str: str}) from a file written by write_file."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if max_bytes is not None and size > max_bytes:
            raise ModelFormatError("%s is %d bytes, over the limit of %d" % (path, size,
                                                                            max_bytes))
        head = f.read(8)
        if len(head) < 8:
            raise ModelFormatError("%s is truncated: %d bytes, too short for a header"
                                   % (path, size))
        _refuse_foreign(head, path)
        n = int.from_bytes(head, "little")
        if n > MAX_HEADER_BYTES:
            raise ModelFormatError("%s declares a header of %d bytes, over the limit of %d "
                                   "(not a pyfront file, or corrupt)" % (path, n,
                                                                         MAX_HEADER_BYTES))
        if n > size - 8:
            raise ModelFormatError("%s is truncated: the header needs %d bytes, the file has "
                                   "%d after the length" % (path, n, size - 8))
        raw = f.read(n)
        try:
            header = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as e:
            raise ModelFormatError("%s has a corrupt header: %s" % (path, e)) from None
        if not isinstance(header, dict):
            raise ModelFormatError("%s has a corrupt header (not a JSON object)" % path)
        meta = header.get("__metadata__", {})
        if not isinstance(meta, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                 for k, v in meta.items()):
            raise ModelFormatError("%s: __metadata__ must map strings to strings" % path)
        data_size = size - 8 - n
        entries = []
        for name, e in header.items():
            if name == "__metadata__":
                continue
            try:
                dt = BY_SAFETENSORS[e["dtype"]]
                shape = [int(d) for d in e["shape"]]
                begin, end = (int(x) for x in e["data_offsets"])
            except (KeyError, TypeError, ValueError):
                raise ModelFormatError("%s: tensor %r has a malformed entry %r"
                                       % (path, name, e)) from None
            if any(d < 0 for d in shape):
                raise ModelFormatError("%s: tensor %r has a negative dimension" % (path, name))
            count = int(np.prod(shape)) if shape else 1
            if not (0 <= begin <= end <= data_size) or end - begin != count * dt.itemsize:
                raise ModelFormatError(
                    "%s: tensor %r claims bytes %d..%d for %s %s (%d bytes); the data section "
                    "has %d bytes" % (path, name, begin, end, dt.name, tuple(shape),
                                      count * dt.itemsize, data_size))
            entries.append((begin, end, name, dt, shape))
        entries.sort()
        pos = 0
        for begin, end, name, _, _ in entries:
            if begin != pos:
                raise ModelFormatError("%s: tensor %r starts at byte %d, expected %d (overlap "
                                       "or gap in the data)" % (path, name, begin, pos))
            pos = end
        if pos != data_size:
            raise ModelFormatError("%s: %d bytes of data follow the tensors (expected %d): "
                                   "truncated or appended to" % (path, data_size, pos))
        data = f.read(data_size)
    if len(data) != data_size:
        raise ModelFormatError("%s changed while it was read" % path)
    stored = meta.get("checksum")
    if stored is None:
        raise ModelFormatError("%s has no checksum: not written by pyfront" % path)
    without = dict(header)
    without["__metadata__"] = {k: v for k, v in meta.items() if k != "checksum"}
    actual = _checksum(without, [data[b:e] for b, e, *_ in entries])
    if actual != stored:
        raise ModelFormatError("%s fails its checksum: the file was altered or corrupted"
                               % path)
    tensors = {}
    for begin, end, name, dt, shape in entries:
        arr = np.frombuffer(data, dtype=dt.np.newbyteorder("<"), count=int(np.prod(shape))
                            if shape else 1, offset=begin)
        tensors[name] = arr.astype(dt.np).reshape(shape).copy()
    return tensors, dict(without["__metadata__"])
