"""TensorBoard event files written by hand (no TensorFlow): TFRecord framing with masked CRC32C
around Event protocol buffers that carry scalar summaries, a reader for them, and the
TensorBoard callback (Keras' layout: logdir/train and logdir/validation, tags epoch_<name>)."""
import os
import socket
import struct
import time

from .callbacks import Callback, scalar_logs

__all__ = ["EventFileWriter", "read_events", "TensorBoard", "crc32c"]


def _crc32c_table():
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data):
    """CRC-32C (Castagnoli), the checksum of TFRecord files."""
    c = 0xFFFFFFFF
    for b in data:
        c = _TABLE[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def _masked_crc(data):
    c = crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


# ---- protocol buffers, the few fields we need ----

def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _field(number, wire, payload):
    return _varint((number << 3) | wire) + payload


def _bytes_field(number, data):
    return _field(number, 2, _varint(len(data)) + data)


def _event(wall_time, step, file_version=None, summary=None):
    """tensorflow.Event: wall_time = 1 (double), step = 2 (int64), file_version = 3 (string),
    summary = 5 (Summary)."""
    out = _field(1, 1, struct.pack("<d", wall_time)) + _field(2, 0, _varint(int(step)))
    if file_version is not None:
        out += _bytes_field(3, file_version.encode())
    if summary is not None:
        out += _bytes_field(5, summary)
    return out


def _scalar_summary(values):
    """tensorflow.Summary: repeated Value value = 1; Value: tag = 1, simple_value = 2 (float)."""
    out = b""
    for tag, v in values.items():
        value = _bytes_field(1, tag.encode()) + _field(2, 5, struct.pack("<f", float(v)))
        out += _bytes_field(1, value)
    return out


def _record(data):
    header = struct.pack("<Q", len(data))
    return header + struct.pack("<I", _masked_crc(header)) + data + \
        struct.pack("<I", _masked_crc(data))


class EventFileWriter:
    """Appends scalar events to logdir/events.out.tfevents.<time>.<host>."""

    def __init__(self, logdir):
        os.makedirs(logdir, exist_ok=True)
        name = "events.out.tfevents.%d.%s.%d" % (int(time.time()), socket.gethostname(),
                                                 os.getpid())
        self.path = os.path.join(logdir, name)
        self._file = open(self.path, "wb")
        self._file.write(_record(_event(time.time(), 0, file_version="brain.Event:2")))
        self._file.flush()

    def add_scalars(self, values, step):
        """values: {tag: number}, written as one event at `step`."""
        if values:
            self._file.write(_record(_event(time.time(), step,
                                            summary=_scalar_summary(values))))

    def add_scalar(self, tag, value, step):
        self.add_scalars({tag: value}, step)

    def flush(self):
        self._file.flush()

    def close(self):
        if not self._file.closed:
            self._file.close()


# ---- reading back ----

def _read_varint(buf, pos):
    shift = result = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def _fields(buf):
    pos = 0
    while pos < len(buf):
        key, pos = _read_varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _read_varint(buf, pos)
        elif wire == 1:
            value, pos = buf[pos:pos + 8], pos + 8
        elif wire == 5:
            value, pos = buf[pos:pos + 4], pos + 4
        elif wire == 2:
            n, pos = _read_varint(buf, pos)
            value, pos = buf[pos:pos + n], pos + n
        else:
            raise ValueError("unsupported protobuf wire type %d" % wire)
        if pos > len(buf):
            raise ValueError("truncated protobuf field %d" % number)
        yield number, wire, value


def read_events(path):
    """The events of one file as dicts {wall_time, step, file_version?, scalars: {tag: value}},
    every record's length and data checksums verified."""
    with open(path, "rb") as f:
        data = f.read()
    events, pos = [], 0
    while pos < len(data):
        if pos + 12 > len(data):
            raise ValueError("%s: truncated record header at byte %d" % (path, pos))
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (crc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        if crc != _masked_crc(header):
            raise ValueError("%s: bad length checksum at byte %d" % (path, pos))
        body = data[pos + 12:pos + 12 + length]
        if len(body) != length or pos + 16 + length > len(data):
            raise ValueError("%s: truncated record at byte %d" % (path, pos))
        (crc,) = struct.unpack("<I", data[pos + 12 + length:pos + 16 + length])
        if crc != _masked_crc(body):
            raise ValueError("%s: bad data checksum at byte %d" % (path, pos))
        pos += 16 + length
        event = {"scalars": {}}
        for number, _, value in _fields(body):
            if number == 1:
                event["wall_time"] = struct.unpack("<d", value)[0]
            elif number == 2:
                event["step"] = value
            elif number == 3:
                event["file_version"] = value.decode()
            elif number == 5:
                for n, _, v in _fields(value):
                    if n != 1:
                        continue
                    tag, simple = None, None
                    for fn, _, fv in _fields(v):
                        if fn == 1:
                            tag = fv.decode()
                        elif fn == 2:
                            simple = struct.unpack("<f", fv)[0]
                    if tag is not None and simple is not None:
                        event["scalars"][tag] = simple
        events.append(event)
    return events


class TensorBoard(Callback):
    """Scalars for TensorBoard: logdir/train gets epoch_<name> for each logged number (and
    batch_<name> every update_freq batches when it is an int), logdir/validation gets the
    val_ numbers under the same tags, so both curves share one chart."""

    def __init__(self, log_dir="logs", update_freq="epoch"):
        super().__init__()
        if update_freq != "epoch" and not (isinstance(update_freq, int) and update_freq >= 1):
            raise ValueError("TensorBoard: update_freq must be 'epoch' or a positive int")
        self.log_dir, self.update_freq = os.fspath(log_dir), update_freq
        self.writers = {}

    def _writer(self, which):
        w = self.writers.get(which)
        if w is None:
            w = self.writers[which] = EventFileWriter(os.path.join(self.log_dir, which))
        return w

    def on_train_begin(self, logs=None):
        self._writer("train")

    def on_train_batch_end(self, batch, logs=None):
        if self.update_freq == "epoch":
            return
        step = self.optimizer.iterations
        if step % self.update_freq == 0:
            values = {"batch_" + k: v for k, v in scalar_logs(logs).items()
                      if k not in ("batch", "size")}
            self._writer("train").add_scalars(values, step)

    def on_epoch_end(self, epoch, logs=None):
        values = scalar_logs(logs)
        train = {"epoch_" + k: v for k, v in values.items() if not k.startswith("val_")}
        val = {"epoch_" + k[4:]: v for k, v in values.items() if k.startswith("val_")}
        self._writer("train").add_scalars(train, epoch)
        self._writer("train").flush()
        if val:
            self._writer("validation").add_scalars(val, epoch)
            self._writer("validation").flush()

    def on_train_end(self, logs=None):
        for w in self.writers.values():
            w.close()
        self.writers = {}
