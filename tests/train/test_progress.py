"""fit's progress output on a real pseudo-terminal of a given width: the live bar, then each
epoch's summary wrapped to the width with no metric cut off; a terminal that reports a width of
0 gets one whole line per epoch."""
import fcntl
import io
import os
import struct
import termios
import threading

import numpy as np

import pyfront as pf
from pyfront.train.progress import ProgressLogger, terminal_columns

METRICS = ["accuracy", "top2_accuracy", "top3_accuracy"]


class Terminal:
    """A pseudo-terminal `columns` wide: write to .stream, read everything written with
    .output() once closed."""

    def __init__(self, columns):
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
        attrs = termios.tcgetattr(slave)
        attrs[1] &= ~termios.OPOST          # keep "\n" as written (no "\r\n")
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        self.master, self.stream, self.chunks = master, open(slave, "w"), []
        self.reader = threading.Thread(target=self._drain, daemon=True)
        self.reader.start()

    def _drain(self):
        while True:
            try:
                data = os.read(self.master, 65536)
            except OSError:                  # EIO: the terminal's other end was closed
                return
            if not data:
                return
            self.chunks.append(data)

    def output(self):
        self.stream.close()
        self.reader.join(10)
        os.close(self.master)
        return b"".join(self.chunks).decode()


def _fit(columns, epochs=2):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(96, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + 2 * (x[:, 1] > 0)
    pf.random.seed(0)
    model = pf.nn.Sequential([pf.nn.Dense(16, activation="relu"), pf.nn.Dense(4)])
    model.compile(optimizer="adam", loss="cross_entropy", metrics=METRICS)
    term = Terminal(columns)
    logger = ProgressLogger(verbose=1, stream=term.stream)
    assert terminal_columns(term.stream) == columns
    history = model.fit(x, y, batch_size=16, epochs=epochs, validation_data=(x[:32], y[:32]),
                        verbose=0, callbacks=[logger])
    return term.output(), history


def _pieces(history, epoch):
    """The 'name value' pairs an epoch's summary must show in full."""
    names = ["loss"] + METRICS + ["val_loss"] + ["val_" + m for m in METRICS] + ["lr"]
    return ["%s %.4g" % (k, history.history[k][epoch]) for k in names]


def test_summary_wraps_at_80_columns_with_every_metric_whole():
    text, history = _fit(80)
    assert "/96 [" in text                                  # a live bar was drawn
    assert all(len(part) <= 80 for line in text.split("\n") for part in line.split("\r"))
    # what stays on screen: each line's text after its last carriage return
    screen = [line.rsplit("\r", 1)[-1] for line in text.split("\n") if line]
    starts = [i for i, line in enumerate(screen) if line.startswith("Epoch ")]
    assert [screen[i][:10] for i in starts] == ["Epoch 1/2 ", "Epoch 2/2 "]
    for epoch, (a, b) in enumerate(zip(starts, starts[1:] + [len(screen)])):
        summary = screen[a:b]
        assert len(summary) >= 2 and all(line.startswith("  ") for line in summary[1:])
        joined = "  ".join(line.strip() for line in summary)
        for piece in _pieces(history, epoch):
            assert piece in joined, (piece, summary)


def test_zero_width_terminal_gets_a_whole_line_per_epoch():
    text, history = _fit(0)
    assert "\r" not in text and "%|" not in text                       # no bar
    lines = text.splitlines()
    assert len(lines) == 2
    for epoch, line in enumerate(lines):
        assert line.startswith("Epoch %d/2  " % (epoch + 1)) and "samples/s" in line
        for piece in _pieces(history, epoch):
            assert piece in line


def test_wrap_never_splits_a_metric():
    from pyfront.train.progress import _wrap, summary_text

    pieces = ["Epoch 1/2", "0.1s", "val_top3_accuracy 0.9531", "loss 1.234"]
    # not a terminal (a log file, a notebook's captured output): one line, whole
    assert summary_text(pieces, io.StringIO()) == "  ".join(pieces)
    assert _wrap(pieces, 30) == "Epoch 1/2  0.1s\n  val_top3_accuracy 0.9531\n  loss 1.234"
    # a piece wider than the terminal gets a line of its own, whole
    assert _wrap(pieces, 10).split("\n") == ["Epoch 1/2", "  0.1s", "  val_top3_accuracy 0.9531",
                                              "  loss 1.234"]
