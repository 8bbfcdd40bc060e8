"""Callbacks for fit: history, early stopping, checkpoints (atomic, keep the best), learning-rate
schedules and plateaus, a CSV log. Hooks and names follow Keras."""
import csv
import inspect
import math
import os
import warnings

import numpy as np

__all__ = ["Callback", "CallbackList", "History", "EarlyStopping", "ModelCheckpoint",
           "LearningRateScheduler", "ReduceLROnPlateau", "CSVLogger", "LambdaCallback",
           "TerminateOnNaN", "TensorBoard", "scalar_logs"]


def __getattr__(name):
    # TensorBoard lives in its own module, which imports this one; Keras users look for it here
    # (keras.callbacks.TensorBoard, and pf.callbacks is this module)
    if name == "TensorBoard":
        from .tensorboard import TensorBoard

        return TensorBoard
    raise AttributeError("module %r has no attribute %r" % (__name__, name))


class Callback:
    """Base: every hook does nothing. self.model is the model being trained; self.params
    holds epochs, steps (batches per epoch), samples and verbose.

    The same hooks serve local fit and SparkTrainer.fit; on Spark a batch is a round (one
    optimizer step for SyncSGD, K local steps then an average for ParameterAveraging), and
    params["optimizer"] is the driver's optimizer when it is not the model's."""

    def __init__(self):
        self.model = None
        self.params = {}

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    def on_train_begin(self, logs=None): pass
    def on_train_end(self, logs=None): pass
    def on_epoch_begin(self, epoch, logs=None): pass
    def on_epoch_end(self, epoch, logs=None): pass
    def on_train_batch_begin(self, batch, logs=None): pass
    def on_train_batch_end(self, batch, logs=None): pass
    def on_test_begin(self, logs=None): pass
    def on_test_end(self, logs=None): pass

    @property
    def optimizer(self):
        opt = self.params.get("optimizer") or getattr(self.model, "optimizer", None)
        if opt is None:
            raise RuntimeError("%s needs a compiled model (model.compile(optimizer=...))"
                               % type(self).__name__)
        return opt


class CallbackList(Callback):
    """Calls each hook on every callback in order."""

    def __init__(self, callbacks=(), model=None, params=None):
        super().__init__()
        self.callbacks = list(callbacks)
        if model is not None:
            self.set_model(model)
        if params is not None:
            self.set_params(params)

    def set_model(self, model):
        self.model = model
        for c in self.callbacks:
            c.set_model(model)

    def set_params(self, params):
        self.params = params
        for c in self.callbacks:
            c.set_params(params)

    def _call(self, hook, *args):
        for c in self.callbacks:
            getattr(c, hook)(*args)

    def on_train_begin(self, logs=None): self._call("on_train_begin", logs)
    def on_train_end(self, logs=None): self._call("on_train_end", logs)
    def on_epoch_begin(self, epoch, logs=None): self._call("on_epoch_begin", epoch, logs)
    def on_epoch_end(self, epoch, logs=None): self._call("on_epoch_end", epoch, logs)
    def on_train_batch_begin(self, b, logs=None): self._call("on_train_batch_begin", b, logs)
    def on_train_batch_end(self, b, logs=None): self._call("on_train_batch_end", b, logs)
    def on_test_begin(self, logs=None): self._call("on_test_begin", logs)
    def on_test_end(self, logs=None): self._call("on_test_end", logs)


class LambdaCallback(Callback):
    """A callback from functions: LambdaCallback(on_epoch_end=lambda epoch, logs: ...)."""

    def __init__(self, **hooks):
        super().__init__()
        for name, fn in hooks.items():
            if not name.startswith("on_") or not hasattr(Callback, name):
                raise ValueError("LambdaCallback: unknown hook %r" % name)
            setattr(self, name, fn)


class TerminateOnNaN(Callback):
    """Stop training as soon as a batch loss is NaN or infinite."""

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            print("Batch %d: the loss is %r, stopping" % (batch, loss))
            self.model.stop_training = True


def scalar_logs(logs):
    """The entries of logs that are plain numbers (confusion matrices and such left out)."""
    out = {}
    for k, v in (logs or {}).items():
        if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
            out[k] = float(v)
        elif isinstance(v, np.ndarray) and v.ndim == 0:
            out[k] = float(v)
    return out


class History(Callback):
    """What fit and SparkTrainer.fit return. history["loss"] (or history.history["loss"]): one
    value per epoch, for the loss, each metric, val_<name>, lr (and on Spark samples_per_s,
    seconds); history.epoch: the epoch numbers; history.rounds: one dict of logs per Spark
    round (empty for local fit). state() / restore() carry it through checkpoints."""

    def __init__(self):
        super().__init__()
        self.history = {}
        self.epoch = []
        self.rounds = []

    def on_train_begin(self, logs=None):
        self.history, self.epoch, self.rounds = {}, [], []

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)

    def __getitem__(self, key):
        try:
            return self.history[key]
        except KeyError:
            raise KeyError("History has no %r; it holds %s"
                           % (key, ", ".join(self.history) or "nothing yet")) from None

    def __contains__(self, key):
        return key in self.history

    def keys(self):
        return self.history.keys()

    def state(self):
        """A JSON-friendly copy of what was recorded (rounds left out: they can be many)."""
        return {"history": {k: list(v) for k, v in self.history.items()},
                "epoch": list(self.epoch)}

    def restore(self, state):
        self.history = {k: list(v) for k, v in (state or {}).get("history", {}).items()}
        self.epoch = list((state or {}).get("epoch", []))

    def __repr__(self):
        def show(values):    # confusion matrices and such: only their count
            if all(isinstance(x, (int, float, np.number)) for x in values):
                return str(["%.4g" % x for x in values])
            return "%d epochs" % len(values)
        return "History(%s)" % ", ".join("%s=%s" % (k, show(v)) for k, v in self.history.items())


def _resolve_mode(mode, monitor, who):
    if mode not in ("auto", "min", "max"):
        raise ValueError("%s: mode must be 'auto', 'min' or 'max', got %r" % (who, mode))
    if mode == "auto":
        name = monitor.lower()
        maximise = any(k in name for k in ("acc", "auc", "precision", "recall", "f1"))
        return "max" if maximise else "min"
    return mode


class _Monitor:
    """Tracks the best value of a logged quantity: improved(current) with min_delta."""

    def __init__(self, monitor, mode, min_delta, who):
        self.monitor, self.who = monitor, who
        self.mode = _resolve_mode(mode, monitor, who)
        self.min_delta = abs(float(min_delta))
        self.best = math.inf if self.mode == "min" else -math.inf

    def reset(self):
        self.best = math.inf if self.mode == "min" else -math.inf

    def value(self, logs):
        v = (logs or {}).get(self.monitor)
        if v is None:
            warnings.warn("%s: '%s' is not in the logs (available: %s)"
                          % (self.who, self.monitor, ", ".join(sorted(logs or {}))),
                          RuntimeWarning, stacklevel=3)
            return None
        return float(v)

    def improved(self, current):
        if self.mode == "min":
            return current < self.best - self.min_delta
        return current > self.best + self.min_delta


class EarlyStopping(Callback):
    """Stop when `monitor` has not improved by more than min_delta for `patience` epochs in a
    row (patience=0 or 1: at the first epoch without improvement).

    restore_best_weights: at the end of training, put back the weights of the best epoch
    (when a later epoch was worse).
    """

    def __init__(self, monitor="val_loss", min_delta=0.0, patience=0, mode="auto",
                 restore_best_weights=False, baseline=None, verbose=0):
        super().__init__()
        self.tracker = _Monitor(monitor, mode, min_delta, "EarlyStopping")
        self.monitor, self.patience = monitor, int(patience)
        self.restore_best_weights, self.baseline, self.verbose = restore_best_weights, \
            baseline, verbose
        self.wait, self.stopped_epoch, self.best_epoch = 0, None, None
        self.best_weights = None

    @property
    def best(self):
        return self.tracker.best

    def on_train_begin(self, logs=None):
        self.tracker.reset()
        if self.baseline is not None:
            self.tracker.best = float(self.baseline)
        self.wait, self.stopped_epoch, self.best_epoch, self.best_weights = 0, None, None, None

    def on_epoch_end(self, epoch, logs=None):
        current = self.tracker.value(logs)
        if current is None:
            return
        if self.tracker.improved(current):
            self.tracker.best, self.best_epoch, self.wait = current, epoch, 0
            if self.restore_best_weights:
                self.best_weights = {k: np.array(v, copy=True)
                                     for k, v in self.model.state_dict().items()}
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.verbose:
                print("Epoch %d: early stopping (best %s = %.6g at epoch %s)"
                      % (epoch + 1, self.monitor, self.best, (self.best_epoch or 0) + 1))

    def on_train_end(self, logs=None):
        if self.best_weights is not None and self.wait > 0:
            self.model.load_state_dict(self.best_weights)
            if self.verbose:
                print("Restored the weights of epoch %d" % (self.best_epoch + 1))


def _default_save(model, path):
    import pyfront

    pyfront.save(model, path)


class ModelCheckpoint(Callback):
    """Save the model after epochs, atomically: written under a temporary name beside the
    target, then renamed over it (os.replace), so a crash mid-write leaves the previous file.

    filepath may hold {epoch} and any logged quantity: "ckpt-{epoch:02d}-{val_loss:.3f}.pf"
    (epoch counts from 1, as printed). save_best_only: save only when `monitor` improves, so
    a fixed filepath always holds the best model. save_freq: "epoch" or every N epochs.
    save_fn(model, path) does the writing (pyfront.save by default).
    """

    def __init__(self, filepath, monitor="val_loss", save_best_only=False, mode="auto",
                 min_delta=0.0, save_freq="epoch", save_fn=None, verbose=0):
        super().__init__()
        self.filepath = os.fspath(filepath)
        self.monitor, self.save_best_only, self.verbose = monitor, bool(save_best_only), verbose
        self.tracker = _Monitor(monitor, mode, min_delta, "ModelCheckpoint")
        if save_freq != "epoch" and not (isinstance(save_freq, int) and save_freq >= 1):
            raise ValueError("ModelCheckpoint: save_freq must be 'epoch' or a positive int")
        self.every = 1 if save_freq == "epoch" else save_freq
        self.save_fn = save_fn or _default_save
        self.saved = []          # paths written, in order
        self.best_path = None

    @property
    def best(self):
        return self.tracker.best

    def on_train_begin(self, logs=None):
        self.tracker.reset()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if (epoch + 1) % self.every:
            return
        if self.save_best_only:
            current = self.tracker.value(logs)
            if current is None or not self.tracker.improved(current):
                return
            self.tracker.best = current
        path = self.filepath.format(epoch=epoch + 1, **scalar_logs(logs))
        self._atomic_save(path)
        self.saved.append(path)
        if self.save_best_only:
            self.best_path = path
        if self.verbose:
            print("Epoch %d: saved the model to %s" % (epoch + 1, path))

    def _atomic_save(self, path):
        folder = os.path.dirname(os.path.abspath(path))
        os.makedirs(folder, exist_ok=True)
        stem, ext = os.path.splitext(os.path.basename(path))
        tmp = os.path.join(folder, ".%s.tmp-%d%s" % (stem, os.getpid(), ext))
        try:
            self.save_fn(self.model, tmp)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.remove(tmp)
            raise


def _calls_with_lr(fn):
    """Whether a schedule function takes (epoch, lr), Keras' form, rather than (epoch)."""
    try:
        params = [p for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        return False
    return len(params) >= 2


class LearningRateScheduler(Callback):
    """Set optimizer.lr from a schedule before each epoch (or each batch with per_step=True).

    schedule: a pyfront.optim.schedules.Schedule, f(t) or Keras' f(epoch, current_lr); t counts
    epochs from 0 (or optimizer steps from 0 with per_step).
    """

    def __init__(self, schedule, per_step=False, verbose=0):
        super().__init__()
        if not callable(schedule):
            raise TypeError("LearningRateScheduler needs a callable schedule, got %r"
                            % (schedule,))
        self.schedule, self.per_step, self.verbose = schedule, bool(per_step), verbose
        self._with_lr = _calls_with_lr(schedule) and not hasattr(schedule, "get_config")

    def _set(self, t):
        opt = self.optimizer
        lr = self.schedule(t, opt.lr) if self._with_lr else self.schedule(t)
        lr = float(lr)
        if not (lr >= 0 and math.isfinite(lr)):
            raise ValueError("LearningRateScheduler: the schedule gave lr = %r at %d" % (lr, t))
        opt.lr = lr
        return lr

    def on_epoch_begin(self, epoch, logs=None):
        if not self.per_step:
            lr = self._set(epoch)
            if self.verbose:
                print("Epoch %d: learning rate %.6g" % (epoch + 1, lr))

    def on_train_batch_begin(self, batch, logs=None):
        if self.per_step:
            self._set(self.optimizer.iterations)


class ReduceLROnPlateau(Callback):
    """Multiply optimizer.lr by factor when `monitor` has not improved for `patience` epochs;
    then wait `cooldown` epochs before counting again; never below min_lr."""

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, mode="auto",
                 min_delta=1e-4, cooldown=0, min_lr=0.0, verbose=0):
        super().__init__()
        if not 0 < factor < 1:
            raise ValueError("ReduceLROnPlateau: factor must lie in (0, 1), got %r" % (factor,))
        self.tracker = _Monitor(monitor, mode, min_delta, "ReduceLROnPlateau")
        self.monitor, self.factor, self.patience = monitor, float(factor), int(patience)
        self.cooldown, self.min_lr, self.verbose = int(cooldown), float(min_lr), verbose
        self.wait = self.cooldown_left = 0

    def on_train_begin(self, logs=None):
        self.tracker.reset()
        self.wait = self.cooldown_left = 0

    def on_epoch_end(self, epoch, logs=None):
        current = self.tracker.value(logs)
        if current is None:
            return
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.wait = 0
        if self.tracker.improved(current):
            self.tracker.best, self.wait = current, 0
            return
        if self.cooldown_left > 0:
            return
        self.wait += 1
        if self.wait >= self.patience:
            opt = self.optimizer
            new = max(opt.lr * self.factor, self.min_lr)
            if new < opt.lr:
                opt.lr = new
                if self.verbose:
                    print("Epoch %d: ReduceLROnPlateau lowered the learning rate to %.6g"
                          % (epoch + 1, new))
            self.cooldown_left, self.wait = self.cooldown, 0


class CSVLogger(Callback):
    """One CSV row per epoch: epoch, then the logged numbers in sorted column order. append
    continues an existing file (its header decides the columns)."""

    def __init__(self, filename, separator=",", append=False):
        super().__init__()
        self.filename, self.separator, self.append = os.fspath(filename), separator, append
        self.columns = None
        self._file = None
        self._writer = None

    def on_train_begin(self, logs=None):
        self.columns = None
        exists = self.append and os.path.exists(self.filename) and \
            os.path.getsize(self.filename) > 0
        if exists:
            with open(self.filename, newline="") as f:
                self.columns = next(csv.reader(f, delimiter=self.separator))[1:]
        self._file = open(self.filename, "a" if self.append else "w", newline="")
        self._writer = csv.writer(self._file, delimiter=self.separator)

    def on_epoch_end(self, epoch, logs=None):
        values = scalar_logs(logs)
        if self.columns is None:
            self.columns = sorted(values)
            self._writer.writerow(["epoch"] + self.columns)
        self._writer.writerow([epoch] + [repr(values[c]) if c in values else ""
                                         for c in self.columns])
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = None
