"""Progress output for fit: a tqdm bar per epoch (loss, metrics, samples/s, ETA) on a terminal,
then the epoch's summary wrapped to the terminal's width; one line per epoch otherwise, nothing
with verbose=0."""
import os
import sys
import time

from .callbacks import Callback, scalar_logs

__all__ = ["ProgressLogger", "format_logs", "terminal_columns", "summary_text"]


def _log_pieces(logs, skip=("batch", "size")):
    return ["%s %.4g" % (k, v) for k, v in scalar_logs(logs).items() if k not in skip]


def format_logs(logs, skip=("batch", "size")):
    return "  ".join(_log_pieces(logs, skip))


def _isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def terminal_columns(stream):
    """The width of the terminal behind stream; 0 when stream is not a terminal or its width
    is unknown (some consoles and freshly attached pseudo-terminals report 0): draw no live
    bar then."""
    if not _isatty(stream):
        return 0
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, ValueError, OSError):
        return 0


def _wrap(pieces, width):
    """pieces joined by two spaces into lines of at most width columns (a piece is never
    split, so a metric's name stays with its value); continuation lines are indented."""
    lines, line = [], ""
    for piece in pieces:
        if line and len(line) + 2 + len(piece) > width:
            lines.append(line)
            line = "  " + piece
        else:
            line = line + "  " + piece if line else piece
    return "\n".join(lines + [line])


def summary_text(pieces, stream):
    """An epoch's summary for stream: pieces ("Epoch 3/10", "loss 0.1234", ...) on one line,
    wrapped to the terminal's width when stream is a terminal (no metric is cut off)."""
    width = terminal_columns(stream)
    return _wrap(pieces, width) if width else "  ".join(pieces)


class ProgressLogger(Callback):
    """verbose=1: a live bar when the stream is a terminal of known width, else the one-line
    summary (a bar redrawn into a log file or a notebook's captured output is noise);
    verbose=2: one line per epoch; verbose=0: silent. On a terminal the bar gives way to the
    epoch's summary, wrapped to the width, so no metric is cut off."""

    def __init__(self, verbose=1, stream=None):
        super().__init__()
        self.verbose = int(verbose)
        self.stream = stream if stream is not None else sys.stdout
        self.bar = None
        self._start = None
        self._seen = 0

    @property
    def live(self):
        return self.verbose == 1 and terminal_columns(self.stream) > 0

    def on_epoch_begin(self, epoch, logs=None):
        self._start, self._seen = time.perf_counter(), 0
        self._epoch = epoch
        if self.live:
            from tqdm import tqdm

            self.bar = tqdm(total=self.params.get("samples"), unit=" samples",
                            desc="Epoch %d/%d" % (epoch + 1, self.params.get("epochs", 0)),
                            file=self.stream, leave=False, dynamic_ncols=True)

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        size = int(logs.get("size", 0))
        self._seen += size
        if self.bar is not None:
            self.bar.set_postfix_str(format_logs(logs), refresh=False)
            self.bar.update(size)

    def on_epoch_end(self, epoch, logs=None):
        elapsed = time.perf_counter() - self._start
        rate = self._seen / elapsed if elapsed > 0 else float("inf")
        if self.bar is not None:
            self.bar.close()          # erased: the summary below takes its line
            self.bar = None
        if self.verbose >= 1:
            pieces = ["Epoch %d/%d" % (epoch + 1, self.params.get("epochs", 0)),
                      "%.1fs" % elapsed, "%.0f samples/s" % rate] + _log_pieces(logs)
            print(summary_text(pieces, self.stream), file=self.stream, flush=True)

    def on_train_end(self, logs=None):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
