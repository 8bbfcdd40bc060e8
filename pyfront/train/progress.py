"""Progress output for fit: a tqdm bar per epoch (loss, metrics, samples/s, ETA) on a terminal,
one line per epoch otherwise, nothing with verbose=0."""
import sys
import time

from .callbacks import Callback, scalar_logs

__all__ = ["ProgressLogger", "format_logs"]


def format_logs(logs, skip=("batch", "size")):
    return "  ".join("%s %.4g" % (k, v) for k, v in scalar_logs(logs).items() if k not in skip)


def _isatty(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class ProgressLogger(Callback):
    """verbose=1: a live bar when the stream is a terminal, else the one-line summary (a bar
    redrawn into a log file or a notebook's captured output is noise); verbose=2: one line per
    epoch; verbose=0: silent."""

    def __init__(self, verbose=1, stream=None):
        super().__init__()
        self.verbose = int(verbose)
        self.stream = stream if stream is not None else sys.stdout
        self.bar = None
        self._start = None
        self._seen = 0

    @property
    def live(self):
        return self.verbose == 1 and _isatty(self.stream)

    def on_epoch_begin(self, epoch, logs=None):
        self._start, self._seen = time.perf_counter(), 0
        self._epoch = epoch
        if self.live:
            from tqdm import tqdm

            self.bar = tqdm(total=self.params.get("samples"), unit=" samples",
                            desc="Epoch %d/%d" % (epoch + 1, self.params.get("epochs", 0)),
                            file=self.stream, leave=True, dynamic_ncols=True)

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
            self.bar.set_postfix_str(format_logs(logs), refresh=False)
            self.bar.close()
            self.bar = None
        elif self.verbose >= 1:
            print("Epoch %d/%d  %.1fs  %.0f samples/s  %s"
                  % (epoch + 1, self.params.get("epochs", 0), elapsed, rate, format_logs(logs)),
                  file=self.stream, flush=True)

    def on_train_end(self, logs=None):
        if self.bar is not None:
            self.bar.close()
            self.bar = None
