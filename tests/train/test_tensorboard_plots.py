"""TensorBoard event files (read back by our reader and, where installed, by TensorBoard
itself) and history plots."""
import os
import struct
import sys

import numpy as np
import pytest

import pyfront as pf
from pyfront.train import plot_history, tensorboard as tb


def fitted_history(tmp_path, epochs=3):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    pf.random.seed(0)
    model = pf.nn.Sequential([pf.nn.Dense(8, activation="relu"), pf.nn.Dense(2)])
    model.compile(optimizer=pf.optim.Adam(lr=1e-2), loss="cross_entropy", metrics=["accuracy"])
    board = pf.train.TensorBoard(tmp_path / "logs", update_freq=2)
    h = model.fit(x, y, batch_size=16, epochs=epochs, validation_split=0.25, verbose=0,
                  callbacks=[board])
    return h


def test_crc32c_known_values():
    assert tb.crc32c(b"123456789") == 0xE3069283        # the standard check value
    assert tb.crc32c(b"") == 0
    assert tb.crc32c(bytes(32)) == 0x8A9136AA            # RFC 3720 test vector


def test_event_file_reads_back(tmp_path):
    h = fitted_history(tmp_path)
    train_dir, val_dir = tmp_path / "logs" / "train", tmp_path / "logs" / "validation"
    (train_file,) = os.listdir(train_dir)
    assert train_file.startswith("events.out.tfevents.")
    events = tb.read_events(train_dir / train_file)
    assert events[0]["file_version"] == "brain.Event:2"
    epoch_events = [e for e in events if "epoch_loss" in e["scalars"]]
    assert [e["step"] for e in epoch_events] == [0, 1, 2]
    np.testing.assert_allclose([e["scalars"]["epoch_loss"] for e in epoch_events],
                               h.history["loss"], rtol=1e-6)
    np.testing.assert_allclose([e["scalars"]["epoch_lr"] for e in epoch_events],
                               h.history["lr"], rtol=1e-6)
    batch_steps = [e["step"] for e in events if "batch_loss" in e["scalars"]]
    assert batch_steps == [2, 4, 6, 8]                    # 3 batches x 3 epochs, every 2nd
    (val_file,) = os.listdir(val_dir)
    val = [e for e in tb.read_events(val_dir / val_file) if e["scalars"]]
    np.testing.assert_allclose([e["scalars"]["epoch_accuracy"] for e in val],
                               h.history["val_accuracy"], rtol=1e-6)


def test_corrupt_event_files_are_detected(tmp_path):
    writer = tb.EventFileWriter(tmp_path)
    writer.add_scalars({"a": 1.5, "b": -2.0}, step=7)
    writer.close()
    data = open(writer.path, "rb").read()
    events = tb.read_events(writer.path)
    assert events[1]["step"] == 7 and events[1]["scalars"] == {"a": 1.5, "b": -2.0}
    flipped = bytearray(data)
    flipped[-6] ^= 0x01                                  # inside the last record's data
    bad = tmp_path / "flipped"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match="bad data checksum"):
        tb.read_events(bad)
    bad.write_bytes(data[:-3])
    with pytest.raises(ValueError, match="truncated"):
        tb.read_events(bad)
    length = struct.unpack("<Q", data[:8])[0]
    assert length == len(data[12:12 + length])


def _tensorboard_accumulator():
    try:
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    except Exception as e:                                 # noqa: BLE001 - any import failure
        pytest.skip("the tensorboard package is not importable here (%s: %s), so TensorBoard's "
                    "own reader cannot check the files; our reader's test still runs"
                    % (type(e).__name__, e))
    return EventAccumulator


def test_tensorboard_reads_our_files(tmp_path):
    EventAccumulator = _tensorboard_accumulator()
    h = fitted_history(tmp_path)
    acc = EventAccumulator(str(tmp_path / "logs" / "train"))
    acc.Reload()
    assert {"epoch_loss", "epoch_accuracy", "epoch_lr", "batch_loss"} <= \
        set(acc.Tags()["scalars"])
    loss = acc.Scalars("epoch_loss")
    assert [s.step for s in loss] == [0, 1, 2]
    np.testing.assert_allclose([s.value for s in loss], h.history["loss"], rtol=1e-6)
    val = EventAccumulator(str(tmp_path / "logs" / "validation"))
    val.Reload()
    np.testing.assert_allclose([s.value for s in val.Scalars("epoch_loss")],
                               h.history["val_loss"], rtol=1e-6)


# ---- plots ----

def test_plot_history_writes_a_png(tmp_path):
    import matplotlib.image

    h = fitted_history(tmp_path)
    path = plot_history(h, tmp_path / "curves" / "history.png", title="blobs")
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    image = matplotlib.image.imread(path)
    assert image.shape[0] > 200 and image.shape[1] > 600       # three panels side by side
    assert image[..., :3].std() > 0.05                         # not a blank canvas
    only_loss = plot_history(h.history, tmp_path / "loss.png", metrics=["loss"])
    assert matplotlib.image.imread(only_loss).shape[1] < image.shape[1]


def test_plot_history_errors(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="History"):
        plot_history({}, tmp_path / "x.png")
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        plot_history({"loss": [1.0, 0.5]}, tmp_path / "x.png")
