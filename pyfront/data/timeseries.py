"""Turn a multivariate time series (an array or a CSV file) into supervised windows, and split
it into train/validation/test spans without mixing times."""
import csv
import math
import os

import numpy as np

__all__ = ["read_csv", "windows", "split", "WindowSpec"]


def read_csv(path, columns=None, missing="error", dtype=np.float32):
    """(values (T, F), column names) from a CSV file with a header row.

    columns: the names (or indices) of the columns to keep, in that order; default every
    column whose values all parse as numbers. missing: what to do with empty or NA cells in
    kept columns: "error", "drop" (drop those rows) or "ffill" (repeat the last value; a gap at
    the very start takes the first value that follows).
    """
    if missing not in ("error", "drop", "ffill"):
        raise ValueError("read_csv: missing must be 'error', 'drop' or 'ffill', got %r"
                         % (missing,))
    path = os.fspath(path)
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise ValueError("%s: empty file" % path)
    header, body = [h.strip() for h in rows[0]], [r for r in rows[1:] if r]
    for i, r in enumerate(body):
        if len(r) != len(header):
            raise ValueError("%s: line %d has %d fields, the header %d"
                             % (path, i + 2, len(r), len(header)))

    def parse(text):
        text = text.strip()
        if text == "" or text.upper() in ("NA", "NAN", "N/A", "NULL"):
            return math.nan
        return float(text)

    def numeric(j):
        try:
            for r in body:
                parse(r[j])
            return True
        except ValueError:
            return False

    if columns is None:
        keep = [j for j in range(len(header)) if numeric(j)]
    else:
        keep = []
        for c in columns:
            if isinstance(c, str):
                if c not in header:
                    raise KeyError("%s: no column %r (columns: %s)" % (path, c, header))
                keep.append(header.index(c))
            else:
                keep.append(int(c))
    values = np.empty((len(body), len(keep)), np.float64)
    for i, r in enumerate(body):
        for k, j in enumerate(keep):
            try:
                values[i, k] = parse(r[j])
            except ValueError:
                raise ValueError("%s: line %d, column %r: %r is not a number"
                                 % (path, i + 2, header[j], r[j])) from None
    gaps = np.isnan(values)
    if gaps.any():
        if missing == "error":
            i, k = np.argwhere(gaps)[0]
            raise ValueError("%s: line %d, column %r is missing (%d missing cells; pass "
                             "missing='drop' or 'ffill')"
                             % (path, i + 2, header[keep[k]], int(gaps.sum())))
        if missing == "drop":
            values = values[~gaps.any(axis=1)]
        else:
            for k in range(values.shape[1]):
                col = values[:, k]
                ok = np.flatnonzero(~np.isnan(col))
                if ok.size == 0:
                    raise ValueError("%s: column %r has no values" % (path, header[keep[k]]))
                last = np.maximum.accumulate(np.where(np.isnan(col), 0, np.arange(len(col))))
                filled = col[last]
                filled[:ok[0]] = col[ok[0]]
                values[:, k] = filled
    return values.astype(dtype), [header[j] for j in keep]


class WindowSpec:
    """Where the inputs and labels of one window lie (TensorFlow's WindowGenerator layout):
    inputs are rows [0, input_width), labels the last label_width rows of
    [0, input_width + shift)."""

    def __init__(self, input_width, label_width=1, shift=1):
        for name, v in (("input_width", input_width), ("label_width", label_width),
                        ("shift", shift)):
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError("windows: %s must be a positive int, got %r" % (name, v))
        if label_width > input_width + shift:
            raise ValueError("windows: label_width %d exceeds input_width + shift = %d"
                             % (label_width, input_width + shift))
        self.input_width, self.label_width, self.shift = int(input_width), int(label_width), \
            int(shift)
        self.total = self.input_width + self.shift
        self.label_start = self.total - self.label_width


def windows(series, input_width, label_width=1, shift=1, label_columns=None, stride=1,
            columns=None, missing="error"):
    """Supervised sequences from a series: X (N, input_width, F), y (N, label_width, L).

    series: an array (T, F) or (T,), or the path of a CSV file (read with read_csv, which takes
    `columns` and `missing`). label_columns: the columns to predict (indices, or names for a
    CSV); default all. Window i starts at row i * stride. The windows are copies, so X and y
    may be modified freely.
    """
    names = None
    if isinstance(series, (str, os.PathLike)):
        series, names = read_csv(series, columns=columns, missing=missing)
    arr = np.asarray(series)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError("windows: the series must be (time, features) or (time,), got shape %s"
                         % (arr.shape,))
    spec = WindowSpec(input_width, label_width, shift)
    if label_columns is None:
        cols = list(range(arr.shape[1]))
    else:
        cols = []
        for c in ([label_columns] if isinstance(label_columns, (str, int)) else label_columns):
            if isinstance(c, str):
                if names is None or c not in names:
                    raise KeyError("windows: no column named %r (columns: %s)" % (c, names))
                cols.append(names.index(c))
            else:
                if not -arr.shape[1] <= int(c) < arr.shape[1]:
                    raise IndexError("windows: label column %d is out of range for %d features"
                                     % (c, arr.shape[1]))
                cols.append(int(c) % arr.shape[1])
    if not isinstance(stride, (int, np.integer)) or stride < 1:
        raise ValueError("windows: stride must be a positive int, got %r" % (stride,))
    count = (len(arr) - spec.total) // stride + 1
    if count < 1:
        raise ValueError("windows: a series of %d steps is shorter than one window "
                         "(input_width + shift = %d)" % (len(arr), spec.total))
    starts = np.arange(count) * stride
    x_idx = starts[:, None] + np.arange(spec.input_width)
    y_idx = starts[:, None] + spec.label_start + np.arange(spec.label_width)
    return arr[x_idx], arr[y_idx][:, :, cols]


def split(series, train=0.7, val=0.2):
    """(train, val, test) consecutive spans of a series along time, never shuffled: the first
    `train` fraction, the next `val` fraction, the rest. Window each span separately so no
    window straddles two spans."""
    arr = np.asarray(series)
    if not (0 < train < 1 and 0 <= val < 1 and train + val <= 1):
        raise ValueError("split: need 0 < train < 1, 0 <= val and train + val <= 1, got %r, %r"
                         % (train, val))
    n = len(arr)
    a = int(round(n * train))
    b = int(round(n * (train + val)))
    return arr[:a], arr[a:b], arr[b:]
