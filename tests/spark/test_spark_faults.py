"""Fault tolerance on local[2,2]: a task that fails once is retried by Spark with the same result;
a round whose tasks keep failing is run again whole; a run resumed from a checkpoint ends with
the same weights as an uninterrupted one."""
import os
import sys

import numpy as np
import pytest

import pyfront as pf
from pyfront.train.callbacks import Callback
from pyfront.train.metrics import Metric

from spark_support import to_df

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def _ship_this_module_by_value():
    # executors cannot import the test modules; the fault-injecting metric travels by value
    from pyspark import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])


class FailWhenArmed(Metric):
    """Raises in partition 0 while `folder` holds an "armed" file and fewer than `failures`
    failures were recorded there (one file per failure, created atomically)."""

    name = "probe"

    def __init__(self, folder, failures):
        self.folder, self.failures = str(folder), int(failures)
        super().__init__()

    def update(self, y_true, y_pred):
        from pyspark import TaskContext

        self.stats["total"] += 0.0
        self.stats["count"] += float(len(y_true))
        ctx = TaskContext.get()
        if ctx is None or ctx.partitionId() != 0:
            return
        if not os.path.exists(os.path.join(self.folder, "armed")):
            return
        for i in range(self.failures):
            try:
                fd = os.open(os.path.join(self.folder, "failure-%d" % i),
                             os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                continue
            os.close(fd)
            raise RuntimeError("injected failure %d (attempt %d)" % (i, ctx.attemptNumber()))


class AtRound(Callback):
    """Calls self.act(epoch, round) after a given round (a Spark round is a callback batch)."""

    def __init__(self, epoch, rnd):
        super().__init__()
        self.at, self.epoch = (epoch, rnd), None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, rnd, logs=None):
        if (self.epoch, rnd) == self.at:
            self.act()


class ArmAt(AtRound):
    def __init__(self, folder, epoch, rnd):
        super().__init__(epoch, rnd)
        self.folder = folder

    def act(self):
        open(os.path.join(self.folder, "armed"), "w").close()


class StopAt(Exception):
    pass


class InterruptAt(AtRound):
    def act(self):
        raise StopAt("stopped at epoch %d round %d" % (self.at[0] + 1, self.at[1] + 1))


@pytest.fixture(scope="module")
def small(digits):
    x, _, y, _ = digits
    return x[:192], y[:192]


def train(spark, data, probe_folder=None, failures=0, arm_at=None, epochs=1, **kwargs):
    from pyfront.spark import SparkTrainer, SyncSGD

    x, y = data
    pf.random.seed(7)
    model = pf.nn.Sequential([pf.nn.Dense(24, activation="relu"), pf.nn.Dense(10)])
    model(pf.tensor(x[:1]))
    opt = pf.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    metrics = [FailWhenArmed(probe_folder, failures)] if probe_folder else []
    callbacks = kwargs.pop("callbacks", [])
    resume_from = kwargs.pop("resume_from", None)
    if arm_at is not None:
        callbacks.append(ArmAt(probe_folder, *arm_at))
    trainer = SparkTrainer(model, SyncSGD(), num_workers=2, batch_size_per_worker=16,
                           optimizer=opt, loss="cross_entropy", metrics=metrics, seed=3,
                           verbose=0, **kwargs)
    history = trainer.fit(to_df(spark, x, y), epochs=epochs, callbacks=callbacks,
                          resume_from=resume_from)
    return model, opt, history


@pytest.fixture(scope="module")
def clean_run(spark, small):
    return train(spark, small, epochs=2)


@pytest.mark.parametrize("failures", [1, 2], ids=["task-retried", "round-retried"])
def test_failed_tasks_give_the_same_result(spark, small, clean_run, tmp_path, failures):
    """local[2,2] lets a task fail once: one failure is Spark's task retry; two fail the
    job, and the trainer runs the round again (max_round_retries=1)."""
    _ship_this_module_by_value()
    model, opt, history = train(spark, small, tmp_path, failures, arm_at=(0, 2), epochs=2)
    assert sorted(os.listdir(tmp_path)) == ["armed"] + ["failure-%d" % i
                                                        for i in range(failures)]
    ref_model, ref_opt, ref_history = clean_run
    for k, v in ref_model.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[k], v, err_msg=k)
    assert opt.iterations == ref_opt.iterations
    assert history["loss"] == ref_history["loss"]


def test_a_round_failing_beyond_its_retries_stops_fit_with_the_cause(spark, small, tmp_path):
    _ship_this_module_by_value()
    with pytest.raises(Exception, match="injected failure"):
        train(spark, small, tmp_path, failures=4, arm_at=(0, 1))


def test_resume_from_a_checkpoint_gives_the_weights_of_an_uninterrupted_run(
        spark, small, clean_run, tmp_path):
    # a file:// URI goes through pyarrow's filesystem layer, as hdfs:// or s3:// would
    folder = "file://" + str(tmp_path / "checkpoints")
    with pytest.raises(StopAt):
        train(spark, small, epochs=2, checkpoint_dir=folder, checkpoint_every=2,
              callbacks=[InterruptAt(1, 4)])
    names = sorted(os.listdir(tmp_path / "checkpoints"))
    # 6 rounds an epoch; kept: the newest two, after rounds 2 and 4 of the second epoch
    assert names == ["checkpoint-e00001-r0000002.pfc", "checkpoint-e00001-r0000004.pfc"]
    model, opt, history = train(spark, small, epochs=2, resume_from=folder)
    ref_model, ref_opt, ref_history = clean_run
    for k, v in ref_model.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[k], v, err_msg=k)
    assert opt.iterations == ref_opt.iterations
    assert len(history["loss"]) == 2
    assert history["loss"][0] == ref_history["loss"][0]


def test_resuming_a_different_run_is_refused(spark, small, tmp_path):
    from pyfront.spark import checkpoint

    x, y = small
    train(spark, (x[:96], y[:96]), checkpoint_dir=str(tmp_path))
    assert checkpoint.latest(str(tmp_path)).endswith("checkpoint-e00001-r0000000.pfc")
    with pytest.raises(pf.PyfrontError, match="different rows"):
        train(spark, small, resume_from=str(tmp_path))
