"""Dataset / DataLoader batching and seeded shuffling, IDX files, time-series windows."""
import gzip

import numpy as np
import pytest

import pyfront as pf
from pyfront.data import IDXFormatError, read_idx, timeseries, write_idx


# ---- Dataset and DataLoader ----

def test_dataset_indexing_and_length():
    x, y = np.arange(20).reshape(10, 2), np.arange(10) * 10
    ds = pf.data.Dataset(x, y)
    assert len(ds) == 10
    xi, yi = ds[3]
    np.testing.assert_array_equal(xi, [6, 7])
    assert yi == 30
    xs, ys = ds[2:4]
    np.testing.assert_array_equal(ys, [20, 30])
    assert pf.data.Dataset.from_arrays(x)[1].tolist() == [2, 3]
    with pytest.raises(ValueError, match="same first dimension"):
        pf.data.Dataset(x, np.arange(9))


def test_loader_batches_cover_the_data_in_order_without_shuffle():
    x, y = np.arange(23, dtype=np.float32)[:, None], np.arange(23)
    batches = list(pf.data.DataLoader(pf.data.Dataset(x, y), batch_size=5))
    assert [len(b[1]) for b in batches] == [5, 5, 5, 5, 3]
    np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y)
    assert len(pf.data.DataLoader(pf.data.Dataset(x, y), batch_size=5)) == 5
    dropped = pf.data.DataLoader(pf.data.Dataset(x, y), batch_size=5, drop_last=True)
    assert len(dropped) == 4 and [len(b[0]) for b in dropped] == [5, 5, 5, 5]


def test_seeded_shuffle_is_reproducible_and_differs_between_epochs():
    y = np.arange(50)

    def run(seed):
        loader = pf.data.DataLoader(pf.data.Dataset(y), batch_size=8, shuffle=True, seed=seed)
        return [np.concatenate(list(loader)) for _ in range(2)]

    a, b = run(7), run(7)
    for e in range(2):
        np.testing.assert_array_equal(a[e], b[e])
        np.testing.assert_array_equal(np.sort(a[e]), y)     # a permutation, nothing lost
    assert not np.array_equal(a[0], a[1])
    assert not np.array_equal(run(8)[0], a[0])
    loader = pf.data.DataLoader(pf.data.Dataset(y), batch_size=50, shuffle=True, seed=7)
    loader.set_epoch(1)
    np.testing.assert_array_equal(next(iter(loader)), a[1])


def test_loader_stacks_samples_of_a_custom_dataset():
    class Squares:
        def __len__(self):
            return 7

        def __getitem__(self, i):
            return np.array([i, i * i], np.float32), np.int64(i % 2)

    batches = list(pf.data.DataLoader(Squares(), batch_size=3))
    assert batches[0][0].shape == (3, 2) and batches[-1][0].shape == (1, 2)
    np.testing.assert_array_equal(batches[1][0][:, 1], [9, 16, 25])
    np.testing.assert_array_equal(batches[1][1], [1, 0, 1])


def test_loader_rejects_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        pf.data.DataLoader(pf.data.Dataset(np.zeros(3)), batch_size=0)
    with pytest.raises(TypeError, match="Dataset"):
        pf.data.DataLoader(42)


# ---- IDX files ----

@pytest.mark.parametrize("dtype", ["uint8", "int8", "int16", "int32", "float32", "float64"])
def test_idx_round_trip(tmp_path, dtype):
    rng = np.random.default_rng(0)
    arr = (rng.standard_normal((4, 3, 5)) * 50).astype(dtype)
    path = write_idx(tmp_path / "a.idx", arr)
    back = read_idx(path)
    assert back.dtype == np.dtype(dtype) and back.shape == arr.shape
    np.testing.assert_array_equal(back, arr)
    gz = write_idx(tmp_path / "a.idx.gz", arr)
    np.testing.assert_array_equal(read_idx(gz), arr)


def test_idx_bytes_follow_the_mnist_layout(tmp_path):
    labels = np.array([5, 0, 4, 1], np.uint8)
    raw = bytes([0, 0, 8, 1, 0, 0, 0, 4, 5, 0, 4, 1])   # magic 0x00000801, count 4, labels
    (tmp_path / "labels").write_bytes(raw)
    np.testing.assert_array_equal(read_idx(tmp_path / "labels"), labels)
    assert open(write_idx(tmp_path / "again", labels), "rb").read() == raw
    images = np.arange(2 * 2 * 3, dtype=np.uint8).reshape(2, 2, 3)
    data = open(write_idx(tmp_path / "images", images), "rb").read()
    assert data[:16] == bytes([0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3])


def test_load_mnist_finds_the_four_files(tmp_path):
    rng = np.random.default_rng(1)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 255, (6, 28, 28),
                                                                     dtype=np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(6, dtype=np.uint8))
    write_idx(tmp_path / "t10k-images-idx3-ubyte", np.zeros((2, 28, 28), np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([3, 4], np.uint8))
    (xtr, ytr), (xte, yte) = pf.data.load_mnist(tmp_path)
    assert xtr.shape == (6, 28, 28) and ytr.tolist() == list(range(6))
    assert xte.shape == (2, 28, 28) and yte.tolist() == [3, 4]


@pytest.mark.parametrize("content, message", [
    (b"", "too short"),
    (bytes([1, 0, 8, 1, 0, 0, 0, 1, 7]), "bad magic"),
    (bytes([0, 0, 0x0A, 1, 0, 0, 0, 1, 7]), "unknown data type code 0x0a"),
    (bytes([0, 0, 8, 0]), "0 dimensions"),
    (bytes([0, 0, 8, 3, 0, 0, 0, 1]), "declares 3 dimensions but the file ends"),
    (bytes([0, 0, 8, 1, 0, 0, 0, 4, 1, 2]), "truncated"),
    (bytes([0, 0, 0x0D, 1, 0, 0, 0, 1, 0, 0, 0, 0, 9]), "trailing bytes"),
])
def test_corrupt_idx_files_give_clear_errors(tmp_path, content, message):
    path = tmp_path / "bad.idx"
    path.write_bytes(content)
    with pytest.raises(IDXFormatError, match=message) as info:
        read_idx(path)
    assert "bad.idx" in str(info.value)


def test_truncated_gzip_idx_is_a_format_error(tmp_path):
    whole = gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 200]) + bytes(200))
    path = tmp_path / "cut.gz"
    path.write_bytes(whole[:len(whole) // 2])
    with pytest.raises(IDXFormatError, match="cut.gz"):
        read_idx(path)


def test_huge_declared_dimensions_do_not_allocate(tmp_path):
    path = tmp_path / "huge.idx"
    path.write_bytes(bytes([0, 0, 8, 3]) + b"\xff\xff\xff\xff" * 3 + bytes(10))
    with pytest.raises(IDXFormatError, match="truncated"):
        read_idx(path)


# ---- time series ----

def test_windows_shapes_and_values():
    t = np.arange(20, dtype=np.float32)
    series = np.stack([t, 100 + t, 1000 + t], axis=1)        # (20, 3)
    x, y = timeseries.windows(series, input_width=4, label_width=2, shift=3, label_columns=[1])
    # total window 7: inputs rows i..i+3, labels rows i+5, i+6
    assert x.shape == (14, 4, 3) and y.shape == (14, 2, 1)
    np.testing.assert_array_equal(x[0, :, 0], [0, 1, 2, 3])
    np.testing.assert_array_equal(y[0, :, 0], [105, 106])
    np.testing.assert_array_equal(x[13, :, 2], [1013, 1014, 1015, 1016])
    np.testing.assert_array_equal(y[13, :, 0], [118, 119])
    x1, y1 = timeseries.windows(t, input_width=3)              # next-step forecast, 1-D series
    assert x1.shape == (17, 3, 1) and y1.shape == (17, 1, 1)
    np.testing.assert_array_equal(y1[:, 0, 0], t[3:])
    xs, ys = timeseries.windows(series, 4, stride=5)
    assert xs.shape == (4, 4, 3)
    np.testing.assert_array_equal(xs[:, 0, 0], [0, 5, 10, 15])
    x[0, 0, 0] = -1                                           # copies, not views
    assert series[0, 0] == 0


def test_windows_errors():
    with pytest.raises(ValueError, match="shorter than one window"):
        timeseries.windows(np.zeros((5, 2)), input_width=5)
    with pytest.raises(ValueError, match="input_width"):
        timeseries.windows(np.zeros((5, 2)), input_width=0)
    with pytest.raises(IndexError, match="label column 3"):
        timeseries.windows(np.zeros((9, 2)), 2, label_columns=[3])


def test_windows_from_a_csv_with_names_and_missing_values(tmp_path):
    path = tmp_path / "pm.csv"
    lines = ["No,year,pm2.5,DEWP,TEMP,cbwd"]
    for i in range(12):
        pm = "NA" if i in (0, 4) else str(10 * i)
        lines.append("%d,2010,%s,%d,%d.5,NW" % (i + 1, pm, -i, i))
    path.write_text("\n".join(lines) + "\n")
    values, names = timeseries.read_csv(path, missing="ffill")
    assert names == ["No", "year", "pm2.5", "DEWP", "TEMP"]            # text column skipped
    np.testing.assert_array_equal(values[:6, 2], [10, 10, 20, 30, 30, 50])
    with pytest.raises(ValueError, match="line 2, column 'pm2.5' is missing"):
        timeseries.read_csv(path)
    dropped, _ = timeseries.read_csv(path, columns=["pm2.5", "TEMP"], missing="drop")
    assert dropped.shape == (10, 2)
    x, y = timeseries.windows(path, input_width=3, label_columns="pm2.5",
                              columns=["pm2.5", "DEWP", "TEMP"], missing="ffill")
    assert x.shape == (9, 3, 3) and y.shape == (9, 1, 1)
    np.testing.assert_array_equal(y[:, 0, 0], [30, 30, 50, 60, 70, 80, 90, 100, 110])
    np.testing.assert_array_equal(x[0, :, 0], [10, 10, 20])
    with pytest.raises(KeyError, match="no column"):
        timeseries.windows(path, 3, label_columns="pm10", missing="ffill")


def test_split_keeps_time_order():
    s = np.arange(100)
    tr, va, te = timeseries.split(s, train=0.6, val=0.25)
    assert len(tr) == 60 and len(va) == 25 and len(te) == 15
    np.testing.assert_array_equal(np.concatenate([tr, va, te]), s)
    assert tr.max() < va.min() and va.max() < te.min()
    with pytest.raises(ValueError):
        timeseries.split(s, train=0.9, val=0.2)
