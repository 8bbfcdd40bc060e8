"""Callbacks: early stopping, checkpoints (best kept, atomic writes), learning-rate schedules
and plateaus, CSV log, NaN stop; schedules against their formulas and torch's schedulers."""
import csv
import json
import math
import os

import numpy as np
import pytest

import pyfront as pf
from pyfront.optim import schedules
from pyfront.train import callbacks as cb


def blobs(n=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 6)).astype(np.float32)
    return x, (x @ rng.standard_normal((6, 3))).argmax(1)


def compiled_mlp(lr=0.05, seed=0):
    pf.random.seed(seed)
    model = pf.nn.Sequential([pf.nn.Dense(16, activation="relu"), pf.nn.Dense(3)])
    model.compile(optimizer=pf.optim.SGD(lr=lr, momentum=0.9), loss="cross_entropy",
                  metrics=["accuracy"])
    return model


def drive(callback, model, values, key="val_loss"):
    """Run the epoch hooks of one callback over a sequence of logged values; returns the
    number of epochs run before it stopped training."""
    callback.set_model(model)
    model.stop_training = False
    callback.on_train_begin()
    ran = 0
    for epoch, v in enumerate(values):
        callback.on_epoch_begin(epoch)
        callback.on_epoch_end(epoch, {key: v, "loss": v})
        ran += 1
        if model.stop_training:
            break
    callback.on_train_end()
    return ran


# ---- EarlyStopping ----

def test_early_stopping_counts_patience_epochs_without_improvement():
    model = compiled_mlp()
    stop = cb.EarlyStopping(monitor="val_loss", patience=2)
    assert drive(stop, model, [5, 4, 4.5, 4.2, 3, 1]) == 4
    assert stop.stopped_epoch == 3 and stop.best == 4 and stop.best_epoch == 1
    stop = cb.EarlyStopping(monitor="val_loss", patience=2, min_delta=0.5)
    assert drive(stop, model, [5, 4.7, 4.6, 1]) == 3        # 0.3 and 0.1 are not enough
    stop = cb.EarlyStopping(monitor="val_accuracy", patience=1)   # auto mode: maximise
    assert drive(stop, model, [0.5, 0.7, 0.6], key="val_accuracy") == 3
    assert stop.best == 0.7
    stop = cb.EarlyStopping(monitor="val_loss", patience=1, baseline=3.0)
    assert drive(stop, model, [5, 4]) == 1


def test_early_stopping_restores_the_best_weights():
    model = compiled_mlp()
    model(pf.tensor(np.zeros((1, 6), np.float32)))
    stop = cb.EarlyStopping(monitor="val_loss", patience=1, restore_best_weights=True)
    stop.set_model(model)
    stop.on_train_begin()
    kernel = model[0].kernel.numpy()
    snapshots = []
    for epoch, v in enumerate([3.0, 1.0, 2.0]):
        kernel[...] = epoch + 1
        snapshots.append(kernel.copy())
        stop.on_epoch_end(epoch, {"val_loss": v})
    assert model.stop_training
    stop.on_train_end()
    np.testing.assert_array_equal(model[0].kernel.numpy(), snapshots[1])


def test_early_stopping_stops_fit():
    x, y = blobs()
    model = compiled_mlp()
    h = model.fit(x, y, epochs=30, verbose=0, callbacks=[
        cb.EarlyStopping(monitor="loss", min_delta=100.0, patience=2)])
    assert len(h.history["loss"]) == 3


def test_missing_monitor_warns():
    model = compiled_mlp()
    with pytest.warns(RuntimeWarning, match="'val_auc' is not in the logs"):
        drive(cb.EarlyStopping(monitor="val_auc"), model, [1.0])


# ---- ModelCheckpoint ----

def _json_save(model, path):
    """A stand-in for pf.save that records which epoch wrote the file."""
    with open(path, "w") as f:
        json.dump({"epoch": model.current_epoch}, f)


class Epochs(cb.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.model.current_epoch = epoch + 1


def test_checkpoint_keeps_the_best(tmp_path):
    model = compiled_mlp()
    path = tmp_path / "best.json"
    ckpt = cb.ModelCheckpoint(path, monitor="val_loss", save_best_only=True,
                              save_fn=_json_save)
    tracker = Epochs()
    tracker.set_model(model)
    ckpt.set_model(model)
    ckpt.on_train_begin()
    for epoch, v in enumerate([3.0, 2.0, 2.5, 1.0, 1.5]):
        tracker.on_epoch_begin(epoch)
        ckpt.on_epoch_end(epoch, {"val_loss": v})
    assert json.loads(path.read_text()) == {"epoch": 4}
    assert ckpt.saved == [str(path)] * 3 and ckpt.best == 1.0
    assert sorted(os.listdir(tmp_path)) == ["best.json"]       # no temporary files left


def test_checkpoint_formats_epoch_and_metrics_in_the_name(tmp_path):
    model = compiled_mlp()
    ckpt = cb.ModelCheckpoint(str(tmp_path / "m-{epoch:02d}-{val_loss:.2f}.json"),
                              save_fn=_json_save)
    tracker = Epochs()
    tracker.set_model(model)
    ckpt.set_model(model)
    ckpt.on_train_begin()
    for epoch, v in enumerate([0.5, 0.25]):
        tracker.on_epoch_begin(epoch)
        ckpt.on_epoch_end(epoch, {"val_loss": v})
    assert sorted(os.listdir(tmp_path)) == ["m-01-0.50.json", "m-02-0.25.json"]


def test_checkpoint_crash_mid_write_leaves_the_old_file(tmp_path):
    model = compiled_mlp()
    path = tmp_path / "model.json"
    path.write_text('{"epoch": 1}')

    def crashing_save(model, tmp):
        with open(tmp, "w") as f:
            f.write('{"epo')                   # half a file, then the process "dies"
        raise KeyboardInterrupt

    ckpt = cb.ModelCheckpoint(path, save_fn=crashing_save)
    ckpt.set_model(model)
    ckpt.on_train_begin()
    with pytest.raises(KeyboardInterrupt):
        ckpt.on_epoch_end(1, {"val_loss": 0.1})
    assert path.read_text() == '{"epoch": 1}'
    assert os.listdir(tmp_path) == ["model.json"]


def test_checkpoint_with_pf_save_reloads_the_best_model(tmp_path):
    x, y = blobs()
    model = compiled_mlp()
    path = tmp_path / "best.pf"
    ckpt = cb.ModelCheckpoint(path, monitor="loss", save_best_only=True)
    h = model.fit(x, y, epochs=3, verbose=0, callbacks=[ckpt], seed=0)
    assert np.argmin(h.history["loss"]) == 2          # the last epoch is the best here
    again = pf.load(path)
    np.testing.assert_allclose(again(pf.tensor(x)).numpy(), model.predict(x), rtol=1e-6)


# ---- learning rates ----

def test_schedules_follow_their_formulas():
    step = schedules.StepDecay(0.1, every=3, factor=0.5)
    assert [step(t) for t in range(7)] == pytest.approx([0.1] * 3 + [0.05] * 3 + [0.025])
    exp = schedules.ExponentialDecay(1.0, decay_rate=0.5, decay_steps=2)
    assert exp(3) == pytest.approx(0.5 ** 1.5)
    stair = schedules.ExponentialDecay(1.0, decay_rate=0.5, decay_steps=2, staircase=True)
    assert stair(3) == pytest.approx(0.5)
    cos = schedules.CosineDecay(0.2, decay_steps=10, alpha=0.1)
    assert cos(0) == pytest.approx(0.2) and cos(10) == pytest.approx(0.02)
    assert cos(5) == pytest.approx(0.02 + 0.18 * 0.5) and cos(20) == pytest.approx(0.02)
    warm = schedules.LinearWarmup(cos, warmup_steps=4)
    assert [warm(t) for t in range(4)] == pytest.approx([0, 0.05, 0.1, 0.15])
    assert warm(4) == pytest.approx(0.2) and warm(9) == pytest.approx(cos(5))
    assert schedules.LinearWarmup(0.3, 3, start_lr=0.1)(1) == pytest.approx(0.1 + 0.2 / 3)


def test_cosine_and_step_match_torch_schedulers():
    torch = pytest.importorskip("torch")
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.2)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10, eta_min=0.02)
    ours = schedules.CosineDecay(0.2, decay_steps=10, alpha=0.1)
    for t in range(10):
        assert ours(t) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9)
        opt.step()
        sched.step()
    opt = torch.optim.SGD([p], lr=0.1)
    sched = torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5)
    ours = schedules.StepDecay(0.1, every=3, factor=0.5)
    for t in range(10):
        assert ours(t) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9)
        opt.step()
        sched.step()


def test_scheduler_sets_the_rate_each_epoch_and_history_records_it():
    x, y = blobs()
    model = compiled_mlp()
    sched = cb.LearningRateScheduler(schedules.StepDecay(0.08, every=2, factor=0.5))
    h = model.fit(x, y, epochs=5, verbose=0, callbacks=[sched])
    assert h.history["lr"] == pytest.approx([0.08, 0.08, 0.04, 0.04, 0.02])
    assert model.optimizer.lr == pytest.approx(0.02)
    keras_style = cb.LearningRateScheduler(lambda epoch, lr: lr * 0.1 if epoch else lr)
    h = model.fit(x, y, epochs=3, verbose=0, callbacks=[keras_style])
    assert h.history["lr"] == pytest.approx([0.02, 0.002, 0.0002])


def test_per_step_warmup_reaches_the_kernels():
    x, y = blobs(n=64)
    model = compiled_mlp()
    seen = []
    spy = cb.LambdaCallback(on_train_batch_end=lambda b, logs: seen.append(model.optimizer.lr))
    warm = cb.LearningRateScheduler(schedules.LinearWarmup(0.1, warmup_steps=4), per_step=True)
    model.fit(x, y, batch_size=16, epochs=2, verbose=0, callbacks=[warm, spy])
    assert seen == pytest.approx([0.0, 0.025, 0.05, 0.075, 0.1, 0.1, 0.1, 0.1])
    # a zero rate in the first step really froze the weights: the kernels read optimizer.lr
    fresh = compiled_mlp(seed=3)
    fresh(pf.tensor(x[:1]))
    before = fresh[0].kernel.numpy().copy()
    fresh.fit(x[:16], y[:16], batch_size=16, epochs=1, verbose=0,
              callbacks=[cb.LearningRateScheduler(lambda t: 1e-30 if t == 0 else 0.1,
                                                  per_step=True)])
    np.testing.assert_allclose(fresh[0].kernel.numpy(), before, atol=1e-20)


def test_reduce_lr_on_plateau():
    model = compiled_mlp(lr=1.0)
    plateau = cb.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=2, cooldown=1,
                                   min_lr=0.2, min_delta=0.0)
    plateau.set_model(model)
    plateau.on_train_begin()
    lrs = []
    for epoch, v in enumerate([1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5]):
        plateau.on_epoch_end(epoch, {"val_loss": v})
        lrs.append(model.optimizer.lr)
    # Keras' rule: a cut after 2 flat epochs; the cooldown epoch resets the count but still
    # counts as flat once it has run out; never below min_lr
    assert lrs == pytest.approx([1, 1, 0.5, 0.5, 0.25, 0.25, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2])


def test_scheduler_rejects_bad_rates():
    model = compiled_mlp()
    sched = cb.LearningRateScheduler(lambda t: -1.0)
    sched.set_model(model)
    with pytest.raises(ValueError, match="lr = -1.0"):
        sched.on_epoch_begin(0)


# ---- CSV log and NaN stop ----

def test_csv_logger_writes_one_row_per_epoch(tmp_path):
    x, y = blobs()
    model = compiled_mlp()
    path = tmp_path / "log.csv"
    h = model.fit(x, y, epochs=3, verbose=0, validation_data=(x, y),
                  callbacks=[cb.CSVLogger(path)])
    rows = list(csv.DictReader(open(path)))
    assert list(rows[0]) == ["epoch", "accuracy", "loss", "lr", "val_accuracy", "val_loss"]
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    for key in ("loss", "val_loss", "accuracy", "lr"):
        assert [float(r[key]) for r in rows] == h.history[key]        # repr: exact floats
    model.fit(x, y, epochs=5, initial_epoch=3, verbose=0, validation_data=(x, y),
              callbacks=[cb.CSVLogger(path, append=True)])
    rows = list(csv.DictReader(open(path)))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2, 3, 4]
    assert open(path).read().count("epoch") == 1


def test_terminate_on_nan():
    x, _ = blobs()
    x[5, 0] = np.nan
    y = x.sum(1)
    model = pf.nn.Sequential([pf.nn.Dense(1)])
    # the built-in losses raise NumericError on NaN; a loss of plain ops lets it through
    model.compile(optimizer="sgd", loss=lambda p, t: ((p - t) * (p - t)).mean())
    h = model.fit(x, y, batch_size=8, epochs=3, shuffle=False, verbose=0,
                  callbacks=[cb.TerminateOnNaN()])
    assert len(h.history["loss"]) == 1 and math.isnan(h.history["loss"][0])


def test_keras_spellings_pf_callbacks_and_pf_metrics():
    """keras.callbacks.X and keras.metrics.X port as pf.callbacks.X and pf.metrics.X (the
    TensorBoard callback included, which lives in its own module)."""
    import pyfront as pf
    from pyfront.train import callbacks, metrics, tensorboard

    assert pf.callbacks is callbacks and pf.metrics is metrics
    assert pf.callbacks.TensorBoard is tensorboard.TensorBoard
    assert pf.callbacks.EarlyStopping is pf.train.callbacks.EarlyStopping
    with pytest.raises(AttributeError, match="has no attribute 'Nope'"):
        pf.callbacks.Nope
