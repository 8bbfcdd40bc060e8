"""MNIST-format IDX files (the format of the MNIST and Fashion-MNIST downloads): read with every
header field and the file size checked, and write (for tests and for converting data)."""
import gzip
import math
import os

import numpy as np

from ..errors import PyfrontError

__all__ = ["read_idx", "write_idx", "load_mnist", "IDXFormatError"]


class IDXFormatError(PyfrontError, ValueError):
    """The file is not a valid IDX file (bad magic, dtype code, dimensions or size)."""


# type code -> big-endian numpy dtype
_DTYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"),
           0x0C: np.dtype(">i4"), 0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_CODES = {dt.newbyteorder("="): code for code, dt in _DTYPES.items()}


def _open(path):
    with open(path, "rb") as f:
        head = f.read(2)
    return gzip.open(path, "rb") if head == b"\x1f\x8b" else open(path, "rb")


def read_idx(path):
    """The array stored in an IDX file (gzip-compressed files are read too), in native byte
    order. Raises IDXFormatError naming the file and what is wrong."""
    path = os.fspath(path)
    try:
        with _open(path) as f:
            data = f.read()
    except (OSError, EOFError) as e:
        if isinstance(e, FileNotFoundError):
            raise
        raise IDXFormatError("%s: cannot read: %s" % (path, e)) from None
    if len(data) < 4:
        raise IDXFormatError("%s: %d bytes, too short for an IDX header (4 bytes at least)"
                             % (path, len(data)))
    if data[0] != 0 or data[1] != 0:
        raise IDXFormatError("%s: bad magic number 0x%02x%02x%02x%02x: an IDX file starts with "
                             "two zero bytes" % (path, data[0], data[1], data[2], data[3]))
    code, ndim = data[2], data[3]
    if code not in _DTYPES:
        raise IDXFormatError("%s: unknown data type code 0x%02x (known: %s)"
                             % (path, code, ", ".join("0x%02x" % c for c in sorted(_DTYPES))))
    if ndim == 0:
        raise IDXFormatError("%s: the header declares 0 dimensions" % path)
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXFormatError("%s: the header declares %d dimensions but the file ends after %d "
                             "bytes" % (path, ndim, len(data)))
    dims = tuple(int(d) for d in np.frombuffer(data, ">u4", ndim, 4))
    dtype = _DTYPES[code]
    expected = header + math.prod(dims) * dtype.itemsize
    if len(data) != expected:
        raise IDXFormatError("%s: dimensions %s of %s need %d bytes with the header, the file has "
                             "%d (%s)" % (path, dims, dtype.newbyteorder("=").name, expected,
                                          len(data), "truncated" if len(data) < expected
                                          else "trailing bytes"))
    arr = np.frombuffer(data, dtype, offset=header).reshape(dims)
    return arr.astype(dtype.newbyteorder("="))


def write_idx(path, array, compress=None):
    """Write an array as an IDX file (gzip-compressed when compress, or when path ends .gz)."""
    path = os.fspath(path)
    arr = np.asarray(array)
    native = arr.dtype.newbyteorder("=")
    if native not in _CODES:
        raise ValueError("write_idx: IDX stores uint8, int8, int16, int32, float32 or float64, "
                         "not %s" % arr.dtype)
    if arr.ndim == 0 or arr.ndim > 255:
        raise ValueError("write_idx: needs 1 to 255 dimensions, got %d" % arr.ndim)
    code = _CODES[native]
    payload = bytes([0, 0, code, arr.ndim]) + np.asarray(arr.shape, ">u4").tobytes() + \
        np.ascontiguousarray(arr, _DTYPES[code]).tobytes()
    if compress is None:
        compress = path.endswith(".gz")
    opener = gzip.open if compress else open
    with opener(path, "wb") as f:
        f.write(payload)
    return path


_MNIST_FILES = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
                "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}


def _find(directory, stem):
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"),
                 stem.replace("-idx", ".idx") + ".gz"):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    raise FileNotFoundError("%s: no %s (or %s.gz) in this folder" % (directory, stem, stem))


def load_mnist(directory):
    """((x_train, y_train), (x_test, y_test)) from the four MNIST IDX files in a folder;
    images as uint8 (N, 28, 28), labels as uint8 (N,)."""
    arrays = {key: read_idx(_find(directory, stem)) for key, stem in _MNIST_FILES.items()}
    for split in ("train", "test"):
        x, y = arrays["x_" + split], arrays["y_" + split]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise IDXFormatError("%s: the %s images %s and labels %s do not match"
                                 % (directory, split, x.shape, y.shape))
    return (arrays["x_train"], arrays["y_train"]), (arrays["x_test"], arrays["y_test"])
