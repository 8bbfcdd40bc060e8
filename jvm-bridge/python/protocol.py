"""The binary frame that carries tensors between the JVM and a worker (over a Unix domain
socket); Py4J carries only control. The Java twin of this module is org.pyfront.DataConnection.

Every frame is a 24-byte header then a body; all integers little-endian:

    header   magic "PFB1" | u16 kind | u16 flags (0) | u64 request id | u64 body length
    HELLO    u32 protocol | u16 token length | token (utf-8)
    HELLO_OK u32 protocol | u32 worker pid | u64 max frame bytes
    INFER    u16 model name length | name | u16 tensor count | pad to 8 | tensor records
    RESULT   u16 tensor count | pad to 8 | tensor records
    ERROR    u16 error code | u16 type length | type | u32 message length | message
    PING / PONG: empty

    tensor record: u16 name length | name | u8 dtype | u8 ndim | pad to 8 | i64 dims[ndim]
                   | u64 data bytes | data | pad to 8

Body offsets are counted from the start of the body, so tensor data is 8-byte aligned in a
receive buffer that starts aligned; numpy views it without copying.
"""
import struct
import sys

import numpy as np

from pyfront.backend.cpu import MAX_DIMS

PROTOCOL_VERSION = 1
MAGIC = b"PFB1"
HEADER = struct.Struct("<4sHHQQ")
HEADER_SIZE = HEADER.size  # 24

HELLO, INFER, PING = 1, 2, 3
HELLO_OK, RESULT, PONG, ERROR = 0x81, 0x82, 0x83, 0xFF

# error codes (org.pyfront.Frames mirrors them)
BAD_FRAME = 1          # the frame cannot be parsed; framing is intact, the connection stays
FRAME_TOO_LARGE = 2    # declared body over the limit; the connection is closed after the reply
AUTH_FAILED = 3        # wrong or missing token; the connection is closed after the reply
UNKNOWN_MODEL = 4
BAD_INPUT = 5          # names, dtypes or shapes do not match the model's signature
MODEL_ERROR = 6        # the model raised; the error carries the Python type and message
UNSUPPORTED = 7        # unknown frame kind or protocol version
BAD_MAGIC = 8          # not a pyfront frame at all; the connection is closed after the reply
WORKER_ERROR = 9       # the worker failed handling a request (a bug); the connection stays
BUSY = 10              # the worker's connection limit is reached; the connection is closed

# dtype codes are pyfront's native codes (enum pf_dtype in native/include/pyfront.h)
DTYPES = {0: np.dtype("<f4"), 1: np.dtype("<f8"), 2: np.dtype("<i4"), 3: np.dtype("<i8")}
DTYPE_CODES = {dt: code for code, dt in DTYPES.items()}
DTYPE_NAMES = {"float32": 0, "float64": 1, "int32": 2, "int64": 3}

_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_DTYPE_NDIM = struct.Struct("<BB")

MAX_NDIM = MAX_DIMS  # PF_MAX_DIMS of native/include/pyfront.h; Java's Tensor.MAX_RANK too
MAX_NAME_BYTES = 1024
# what numpy (and a Java long) can address: a zero-size tensor's other dimensions still count
MAX_EXTENT_BYTES = sys.maxsize


class FrameError(Exception):
    """A frame that breaks the protocol; code is one of the error codes above."""

    def __init__(self, code, message):
        super().__init__(message)
        self.code = code


def _pad8(n):
    return (-n) % 8


def header(kind, request_id, body_length):
    return HEADER.pack(MAGIC, kind, 0, request_id, body_length)


def parse_header(data, max_body):
    """(kind, request id, body length) of the 24-byte header at the start of data;
    FrameError on a foreign or oversized frame."""
    magic, kind, _flags, request_id, length = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise FrameError(BAD_MAGIC, "not a pyfront frame: magic bytes %r, expected %r"
                         % (bytes(magic), MAGIC))
    if length > max_body:
        raise FrameError(FRAME_TOO_LARGE, "frame body of %d bytes exceeds this worker's limit "
                         "of %d bytes (--max-frame-mb)" % (length, max_body))
    return kind, request_id, length


class _Reader:
    """Bounds-checked reads from a body buffer: a malformed frame is a FrameError, never an
    out-of-range slice or a giant allocation."""

    __slots__ = ("buf", "pos", "end")

    def __init__(self, buf, end):
        self.buf, self.pos, self.end = buf, 0, end

    def take(self, n, what):
        if n > self.end - self.pos:
            raise FrameError(BAD_FRAME, "frame truncated: %s needs %d bytes at offset %d, the "
                             "body has %d" % (what, n, self.pos, self.end))
        start = self.pos
        self.pos += n
        return start

    def u16(self, what):
        return _U16.unpack_from(self.buf, self.take(2, what))[0]

    def u32(self, what):
        return _U32.unpack_from(self.buf, self.take(4, what))[0]

    def u64(self, what):
        return _U64.unpack_from(self.buf, self.take(8, what))[0]

    def text(self, n, what):
        start = self.take(n, what)
        try:
            return bytes(self.buf[start:start + n]).decode("utf-8")
        except UnicodeDecodeError:
            raise FrameError(BAD_FRAME, "%s is not valid UTF-8" % what) from None

    def align(self):
        self.take(_pad8(self.pos), "padding")


def parse_hello(buf, length):
    r = _Reader(buf, length)
    protocol = r.u32("protocol version")
    token = r.text(r.u16("token length"), "token")
    return protocol, token


def hello_ok(pid, max_frame_bytes):
    return struct.pack("<IIQ", PROTOCOL_VERSION, pid, max_frame_bytes)


class Layout:
    """Where the tensors of a parsed body are: (name, dtype, shape, offset, count) each, plus
    the bytes around them. A connection sends the same shapes over and over, so the next body
    is checked against those bytes (a few compares) instead of parsed again."""

    __slots__ = ("model", "tensors", "spans", "length")

    def __init__(self, model, tensors, spans, length):
        self.model, self.tensors, self.spans, self.length = model, tensors, spans, length

    def matches(self, buf, length):
        if length != self.length:
            return False
        for start, end, raw in self.spans:
            if buf[start:end] != raw:
                return False
        return True

    def arrays(self, buf):
        return [(name, np.frombuffer(buf, dtype=dtype, count=count, offset=offset).reshape(shape))
                for name, dtype, shape, offset, count in self.tensors]

    def ordered(self, buf, order):
        """The arrays (views of buf) of the tensors at the indices in order."""
        tensors = self.tensors
        out = []
        for i in order:
            _, dtype, shape, offset, count = tensors[i]
            out.append(np.frombuffer(buf, dtype, count, offset).reshape(shape))
        return out


def infer_layout(buf, length):
    """The Layout of an INFER body; FrameError naming what is malformed."""
    r = _Reader(buf, length)
    model = r.text(r.u16("model name length"), "model name")
    count = r.u16("tensor count")
    r.align()
    return _layout(r, count, model)


def parse_infer(buf, length):
    """(model name, [(tensor name, array view)]) of an INFER body; arrays view buf."""
    layout = infer_layout(buf, length)
    return layout.model, layout.arrays(buf)


def parse_result(buf, length):
    """[(name, array view)] of a RESULT body (the client side)."""
    r = _Reader(buf, length)
    count = r.u16("tensor count")
    r.align()
    return _layout(r, count, None).arrays(buf)


def _layout(r, count, model):
    buf, tensors, spans, meta_start = r.buf, [], [], 0
    for i in range(count):
        name_len = r.u16("name length of tensor %d" % i)
        if name_len > MAX_NAME_BYTES:
            raise FrameError(BAD_FRAME, "tensor %d: name of %d bytes (limit %d)"
                             % (i, name_len, MAX_NAME_BYTES))
        name = r.text(name_len, "name of tensor %d" % i)
        code, ndim = _DTYPE_NDIM.unpack_from(buf, r.take(2, "dtype of %r" % name))
        if code not in DTYPES:
            raise FrameError(BAD_FRAME, "tensor %r: unknown dtype code %d" % (name, code))
        if ndim > MAX_NDIM:
            raise FrameError(BAD_FRAME, "tensor %r: %d dimensions (limit %d)"
                             % (name, ndim, MAX_NDIM))
        r.align()
        dims = struct.unpack_from("<%dq" % ndim, buf, r.take(8 * ndim, "shape of %r" % name))
        if any(d < 0 for d in dims):
            raise FrameError(BAD_FRAME, "tensor %r: negative dimension in shape %s"
                             % (name, dims))
        nbytes = r.u64("byte count of %r" % name)
        dtype = DTYPES[code]
        elements, extent = 1, dtype.itemsize
        for d in dims:
            elements *= d
            extent *= max(d, 1)
        if extent > MAX_EXTENT_BYTES:
            raise FrameError(BAD_FRAME, "tensor %r: shape %s of %s is too large: %d bytes not "
                             "counting zero dimensions (limit %d)"
                             % (name, dims, dtype.name, extent, MAX_EXTENT_BYTES))
        if nbytes != elements * dtype.itemsize:
            raise FrameError(BAD_FRAME, "tensor %r: %d data bytes for shape %s of %s (expected "
                             "%d)" % (name, nbytes, dims, dtype.name, elements * dtype.itemsize))
        start = r.take(nbytes, "data of %r" % name)
        spans.append((meta_start, start, bytes(buf[meta_start:start])))
        r.align()
        meta_start = r.pos
        tensors.append((name, dtype, dims, start, elements))
    if r.pos != r.end:
        raise FrameError(BAD_FRAME, "frame has %d bytes after its last tensor" % (r.end - r.pos))
    spans.append((meta_start, r.end, bytes(buf[meta_start:r.end])))
    return Layout(model, tensors, spans, r.end)


def _tensor_head(name, arr):
    encoded = name.encode("utf-8")
    code = DTYPE_CODES[arr.dtype.newbyteorder("<")]
    head = _U16.pack(len(encoded)) + encoded + _DTYPE_NDIM.pack(code, arr.ndim)
    head += b"\0" * _pad8(len(head))
    head += struct.pack("<%dq" % arr.ndim, *arr.shape) + _U64.pack(arr.nbytes)
    return head


def _records(named_arrays, offset):
    """The buffers of tensor records (heads and raw data, no copies), starting at an 8-aligned
    body offset."""
    parts, pos = [], offset
    for name, arr in named_arrays:
        head = _tensor_head(name, arr)
        parts.append(head)
        pos += len(head)
        if arr.nbytes:
            parts.append(memoryview(arr).cast("B"))
            pos += arr.nbytes
        pad = _pad8(pos)
        if pad:
            parts.append(b"\0" * pad)
            pos += pad
    return parts, pos - offset


def encode_result(request_id, named_arrays):
    """The buffers of a RESULT frame (to send with sendmsg, no data copies)."""
    first = _U16.pack(len(named_arrays)) + b"\0" * 6
    parts, size = _records(named_arrays, len(first))
    return [header(RESULT, request_id, len(first) + size), first] + parts


class ResultTemplate:
    """The fixed bytes of a RESULT frame for outputs of given names, dtypes and shapes: a
    model answers with the same shapes call after call, so the heads are packed once and a
    reply is the header, those bytes and the arrays' own buffers (no copies, no packing)."""

    __slots__ = ("specs", "statics", "size")

    def __init__(self, named_arrays):
        self.specs = [(arr.dtype, arr.shape) for _, arr in named_arrays]
        first = _U16.pack(len(named_arrays)) + b"\0" * 6
        parts, size = _records(named_arrays, len(first))
        # parts alternate heads/pads with data views: merge the bytes between data buffers
        statics, pending = [], first
        for part in parts:
            if isinstance(part, bytes):
                pending += part
            else:
                statics.append(pending)
                pending = b""
        statics.append(pending)
        self.statics, self.size = statics, len(first) + size

    def fits(self, arrays):
        """Whether arrays (the outputs, names as when built) have this template's dtypes and
        shapes."""
        if len(arrays) != len(self.specs):
            return False
        for arr, (dtype, shape) in zip(arrays, self.specs):
            if arr.shape != shape or arr.dtype != dtype:
                return False
        return True

    def encode(self, request_id, arrays):
        """[header + heads, data, pads + heads, data, ..., pads]: for sendmsg. Zero-size
        arrays have no data buffer in the template; they are skipped."""
        statics = self.statics
        parts = [HEADER.pack(MAGIC, RESULT, 0, request_id, self.size) + statics[0]]
        k = 1
        for arr in arrays:
            if arr.nbytes:
                parts.append(arr)
                parts.append(statics[k])
                k += 1
        return parts



def encode_infer(request_id, model, named_arrays):
    """The buffers of an INFER frame (the client side; used by tests and tools)."""
    encoded = model.encode("utf-8")
    first = _U16.pack(len(encoded)) + encoded + _U16.pack(len(named_arrays))
    first += b"\0" * _pad8(len(first))
    parts, size = _records(named_arrays, len(first))
    return [header(INFER, request_id, len(first) + size), first] + parts


def encode_hello(token, request_id=0):
    encoded = token.encode("utf-8")
    body = _U32.pack(PROTOCOL_VERSION) + _U16.pack(len(encoded)) + encoded
    return header(HELLO, request_id, len(body)) + body


def _truncate_utf8(text, limit):
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore").encode("utf-8")


def encode_error(request_id, code, error_type, message):
    t = _truncate_utf8(error_type, MAX_NAME_BYTES)
    m = _truncate_utf8(message, 64 * 1024)
    body = _U16.pack(code) + _U16.pack(len(t)) + t + _U32.pack(len(m)) + m
    return header(ERROR, request_id, len(body)) + body


def parse_error(buf, length):
    r = _Reader(buf, length)
    code = r.u16("error code")
    error_type = r.text(r.u16("type length"), "error type")
    message = r.text(r.u32("message length"), "error message")
    return code, error_type, message
