"""The collective mode on local[2,2] (barrier mode: both slots held by one epoch's tasks):
SyncSGD(collective=True) equals single-machine training on the same global batches (momentum
and Adam) and is bit-identical run to run; ParameterAveraging(K, collective=True) equals the
per-job averaging; a task failing mid-epoch is retried from the epoch's starting state and
ends with the undisturbed weights; too few task slots are refused before any work."""
import os
import sys

import numpy as np
import pytest

import pyfront as pf
from pyfront.train.callbacks import Callback
from pyfront.train.metrics import Metric

from spark_support import to_df
from test_spark_trainer import assert_same_weights, global_batches, mlp

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


class FailMidEpoch(Metric):
    """Raises in partition 0 at its 3rd minibatch while `folder` holds an "armed" file, once
    (a "failed" file records it)."""

    name = "probe"

    def __init__(self, folder):
        self.folder = str(folder)
        super().__init__()

    def update(self, y_true, y_pred):
        from pyspark import TaskContext

        self.stats["total"] += 0.0
        self.stats["count"] += 1.0
        ctx = TaskContext.get()
        if ctx is None or ctx.partitionId() != 0 or self.stats["count"] != 3.0:
            return
        if not os.path.exists(os.path.join(self.folder, "armed")):
            return
        try:
            fd = os.open(os.path.join(self.folder, "failed"), os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            return
        os.close(fd)
        raise RuntimeError("injected failure mid-epoch")


class ArmAfterFirstEpoch(Callback):
    def __init__(self, folder):
        super().__init__()
        self.folder = folder

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            open(os.path.join(self.folder, "armed"), "w").close()


def _fit(spark, x, y, opt_fn, strategy, epochs=2, seed=11, **kwargs):
    from pyfront.spark import SparkTrainer

    model = mlp(3, x)
    opt = opt_fn(model.parameters())
    trainer = SparkTrainer(model, strategy, num_workers=2, batch_size_per_worker=16,
                           optimizer=opt, loss="cross_entropy", seed=seed, verbose=0,
                           metrics=kwargs.pop("metrics", None))
    history = trainer.fit(to_df(spark, x, y), epochs=epochs, **kwargs)
    return model, opt, history, trainer


def _local(x, y, opt_fn, epochs=2, seed=11):
    local = mlp(3, x)
    lopt = opt_fn(local.parameters())
    losses = []
    for epoch in range(epochs):
        total = 0.0
        for idx in global_batches(len(x), 2, 16, seed, epoch):
            lopt.zero_grad()
            loss = pf.losses.cross_entropy(local(pf.tensor(x[idx])), pf.tensor(y[idx]))
            loss.backward()
            lopt.step()
            total += float(loss.item()) * len(idx)
        losses.append(total / len(x))
    return local, lopt, losses


@pytest.mark.parametrize("opt_fn", [lambda p: pf.optim.SGD(p, lr=0.1, momentum=0.9),
                                    lambda p: pf.optim.Adam(p, lr=3e-3)],
                         ids=["momentum", "adam"])
def test_collective_sync_sgd_equals_local_training_and_repeats_bit_for_bit(spark, digits,
                                                                          opt_fn):
    from pyfront.spark import SyncSGD

    x, _, y, _ = digits
    x, y = x[:301], y[:301]          # odd: 151 and 150 rows, the last step 7 + 6 rows
    model, opt, history, trainer = _fit(spark, x, y, opt_fn, SyncSGD(collective=True))
    local, lopt, losses = _local(x, y, opt_fn)
    assert_same_weights(model, local)
    assert opt.iterations == lopt.iterations == 2 * 10
    np.testing.assert_allclose(history["loss"], losses, rtol=1e-5)
    for k, v in lopt.state_dict()["state"].items():      # the optimizer state came back too
        np.testing.assert_allclose(opt.state_dict()["state"][k], v, atol=1e-6, rtol=1e-4)
    assert len(trainer.timings) == 2 and trainer.timings[0]["steps"] == 10
    # the second epoch read no data from Spark: each task trained on the partition its
    # Python worker kept from the first
    assert [t["from_kept"] for t in trainer.timings] == [False, True]
    assert trainer.timings[0]["comm_seconds"] >= trainer.timings[0]["wait_seconds"] > 0
    again, _, history2, _ = _fit(spark, x, y, opt_fn, SyncSGD(collective=True))
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(again.state_dict()[k], v, err_msg=k)
    assert history2["loss"] == history["loss"]


def _drop_kept(batches):
    import pyarrow as pa

    from pyfront.spark import worker

    for _ in batches:
        pass
    held = worker._kept is not None
    worker._kept = None
    yield pa.RecordBatch.from_pydict({"held": pa.array([int(held)], pa.int32())})


class DropKeptPartitions(Callback):
    """After the given epochs, make the Python workers forget the partitions they kept (as a
    restarted worker or a new executor would): barrier jobs on both slots, until both
    partitions are gone (any idle Python worker of the pool may serve a task)."""

    def __init__(self, spark, epochs=(0,)):
        super().__init__()
        self.spark, self.epochs = spark, epochs
        self.dropped = 0

    def on_epoch_end(self, epoch, logs=None):
        if epoch not in self.epochs:
            return
        target = self.dropped + 2
        for _ in range(10):
            # the same kind of job as training's (an Arrow UDF): the same Python workers
            job = self.spark.range(0, 2, 1, 2).mapInArrow(_drop_kept, "held int", barrier=True)
            self.dropped += sum(r["held"] for r in job.collect())
            if self.dropped == target:
                return


def test_kept_partitions_missing_from_a_worker_are_read_from_spark_again(spark, digits):
    """Later epochs train on the partitions the tasks' Python workers kept; where a worker
    lost its partition, the epoch runs from Spark's cache instead, with the same result."""
    from pyspark import cloudpickle

    from pyfront.spark import SparkTrainer, SyncSGD

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    x, _, y, _ = digits
    x, y = x[:224], y[:224]
    sgd = lambda p: pf.optim.SGD(p, lr=0.1, momentum=0.9)     # noqa: E731
    ref, _, rhist, rtrainer = _fit(spark, x, y, sgd, SyncSGD(collective=True,
                                                             keep_partitions=False), epochs=4)
    assert [t["from_kept"] for t in rtrainer.timings] == [False] * 4
    model = mlp(3, x)
    trainer = SparkTrainer(model, SyncSGD(collective=True), num_workers=2,
                           batch_size_per_worker=16, optimizer=sgd(model.parameters()),
                           loss="cross_entropy", seed=11, verbose=0)
    dropper = DropKeptPartitions(spark)
    hist = trainer.fit(to_df(spark, x, y), epochs=4, callbacks=[dropper])
    assert dropper.dropped == 2
    # epoch 2 found no kept partitions and read Spark's cache; epochs 3 and 4 used those it
    # kept
    assert [t["from_kept"] for t in trainer.timings] == [False, False, True, True]
    assert [t["kept_missed"] for t in trainer.timings] == [False, True, False, False]
    for k, v in ref.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[k], v, err_msg=k)
    assert hist["loss"] == rhist["loss"]
    # missing twice in a row (workers that are never reused): the run stops keeping
    model = mlp(3, x)
    trainer = SparkTrainer(model, SyncSGD(collective=True), num_workers=2,
                           batch_size_per_worker=16, optimizer=sgd(model.parameters()),
                           loss="cross_entropy", seed=11, verbose=0)
    dropper = DropKeptPartitions(spark, epochs=(0, 1))
    hist = trainer.fit(to_df(spark, x, y), epochs=4, callbacks=[dropper])
    assert dropper.dropped == 4
    assert [t["kept_missed"] for t in trainer.timings] == [False, True, True, False]
    assert [t["from_kept"] for t in trainer.timings] == [False] * 4
    for k, v in ref.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[k], v, err_msg=k)
    # a limit below the partition's size keeps nothing
    _, _, small_hist, small = _fit(spark, x, y, sgd, SyncSGD(collective=True,
                                                             keep_partitions=1000), epochs=2)
    assert [t["from_kept"] for t in small.timings] == [False, False]
    assert small_hist["loss"] == rhist["loss"][:2]


def test_collective_parameter_averaging_equals_the_per_job_rounds(spark, digits):
    from pyfront.spark import ParameterAveraging

    x, _, y, _ = digits
    x, y = x[:203], y[:203]
    adam = lambda p: pf.optim.Adam(p, lr=3e-3)     # noqa: E731
    a, aopt, ahist, _ = _fit(spark, x, y, adam, ParameterAveraging(2, collective=True),
                             metrics=["accuracy"])
    b, bopt, bhist, _ = _fit(spark, x, y, adam, ParameterAveraging(2), metrics=["accuracy"])
    assert_same_weights(a, b, atol=1e-5, rtol=1e-4)
    assert aopt.iterations == bopt.iterations == 2 * (3 * 2 + 1)
    np.testing.assert_allclose(ahist["loss"], bhist["loss"], rtol=1e-5)
    np.testing.assert_allclose(ahist["accuracy"], bhist["accuracy"], rtol=1e-6)


def test_a_task_lost_mid_epoch_reruns_the_epoch_from_its_start(spark, digits, tmp_path):
    from pyspark import cloudpickle

    from pyfront.spark import SyncSGD

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    x, _, y, _ = digits
    x, y = x[:192], y[:192]
    sgd = lambda p: pf.optim.SGD(p, lr=0.1, momentum=0.9)     # noqa: E731
    ref, ropt, rhist, _ = _fit(spark, x, y, sgd, SyncSGD(collective=True),
                               metrics=[FailMidEpoch(tmp_path / "never")])
    model, opt, hist, _ = _fit(spark, x, y, sgd, SyncSGD(collective=True),
                               metrics=[FailMidEpoch(tmp_path)],
                               callbacks=[ArmAfterFirstEpoch(str(tmp_path))])
    assert sorted(os.listdir(tmp_path)) == ["armed", "failed"]
    for k, v in ref.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[k], v, err_msg=k)
    assert opt.iterations == ropt.iterations
    assert hist["loss"] == rhist["loss"]


class HangOnce(Metric):
    """Partition 1 hangs (sleeps `seconds`) at its 3rd minibatch of the 2nd epoch, once (a
    "hung" file in `folder` records it): a peer that stays connected but never sends."""

    name = "probe"

    def __init__(self, folder, seconds=120.0):
        self.folder, self.seconds = str(folder), float(seconds)
        super().__init__()

    def update(self, y_true, y_pred):
        import time

        from pyspark import TaskContext

        self.stats["total"] += 0.0
        self.stats["count"] += 1.0
        ctx = TaskContext.get()
        if ctx is None or ctx.partitionId() != 1 or self.stats["count"] != 3.0:
            return
        if not os.path.exists(os.path.join(self.folder, "armed")):
            return
        try:
            fd = os.open(os.path.join(self.folder, "hung"), os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            return
        os.close(fd)
        time.sleep(self.seconds)


def test_a_hung_peer_times_out_and_the_stage_is_retried(spark, digits, tmp_path):
    import time

    from pyspark import cloudpickle

    from pyfront.spark import SyncSGD

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    x, _, y, _ = digits
    x, y = x[:192], y[:192]
    sgd = lambda p: pf.optim.SGD(p, lr=0.1, momentum=0.9)     # noqa: E731
    strategy = SyncSGD(collective=True, timeout=2.0)
    ref, ropt, rhist, _ = _fit(spark, x, y, sgd, strategy,
                               metrics=[HangOnce(tmp_path / "never")])
    start = time.perf_counter()
    model, opt, hist, _ = _fit(spark, x, y, sgd, strategy, metrics=[HangOnce(tmp_path)],
                               callbacks=[ArmAfterFirstEpoch(str(tmp_path))])
    seconds = time.perf_counter() - start
    assert sorted(os.listdir(tmp_path)) == ["armed", "hung"]      # it did hang, once
    # rank 0 gave up after the 2 s timeout, the barrier stage failed and was retried (its
    # tasks killed, the hung one too), instead of waiting out the 120 s hang
    assert seconds < 60, seconds
    for k, v in ref.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[k], v, err_msg=k)
    assert opt.iterations == ropt.iterations
    assert hist["loss"] == rhist["loss"]


class BadRowOnWorker1(Metric):
    """A pyfront error in partition 1's 2nd minibatch (as a data error would raise)."""

    name = "probe"

    def update(self, y_true, y_pred):
        from pyspark import TaskContext

        self.stats["total"] += 0.0
        self.stats["count"] += 1.0
        if TaskContext.get().partitionId() == 1 and self.stats["count"] == 2.0:
            raise pf.PyfrontError("probe: a bad row in worker 1's second minibatch")


def test_a_pyfront_error_in_one_task_stops_every_task_and_is_raised_unretried(spark, digits):
    from pyspark import cloudpickle

    from pyfront.spark import SyncSGD

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    x, _, y, _ = digits
    sgd = lambda p: pf.optim.SGD(p, lr=0.1)     # noqa: E731
    # the peers learn of the error through the next all-reduce's flag, not by timing out
    with pytest.raises(pf.PyfrontError, match=r"a bad row in worker 1's second minibatch\n"
                       r"\(raised in a Spark task: epoch 1\)"):
        _fit(spark, x[:128], y[:128], sgd, SyncSGD(collective=True, timeout=30),
             metrics=[BadRowOnWorker1()])


def test_too_few_task_slots_are_refused_before_training(spark, digits):
    from pyfront.spark import ParameterAveraging, SparkTrainer

    x, _, y, _ = digits
    model = mlp(3, x)
    trainer = SparkTrainer(model, ParameterAveraging(4, collective=True), num_workers=3,
                           optimizer=pf.optim.SGD(model.parameters(), lr=0.1),
                           loss="cross_entropy", verbose=0)
    with pytest.raises(pf.PyfrontError, match=r"num_workers=3 needs 3 task slots free at once "
                       r"\(barrier mode.*this cluster has 2 \(2 cores / spark.task.cpus=1\)"):
        trainer.fit(to_df(spark, x[:20], y[:20]))


def test_checkpoint_every_is_refused_in_the_collective_mode(tmp_path):
    from pyfront.spark import SparkTrainer, SyncSGD

    model = pf.nn.Sequential([pf.nn.Dense(4)])
    model.compile(optimizer=pf.optim.SGD(lr=0.1), loss="cross_entropy")
    with pytest.raises(ValueError, match=r"checkpoint_every=5: SyncSGD\(collective=True\) "
                       r"trains each epoch in one barrier job.*checkpoint_dir alone writes a "
                       r"checkpoint at every epoch's end"):
        SparkTrainer(model, SyncSGD(collective=True), checkpoint_dir=str(tmp_path),
                     checkpoint_every=5)
    SparkTrainer(model, SyncSGD(collective=True), checkpoint_dir=str(tmp_path))
    SparkTrainer(model, SyncSGD(), checkpoint_dir=str(tmp_path), checkpoint_every=5)


def test_strategy_arguments_are_checked():
    from pyfront.spark import ParameterAveraging, SyncSGD

    assert repr(SyncSGD(collective=True)) == "SyncSGD(collective=True)"
    assert repr(ParameterAveraging(4, collective=True)) == \
        "ParameterAveraging(frequency=4, collective=True)"
    with pytest.raises(ValueError, match="ports is a \\(low, high\\) range"):
        SyncSGD(collective=True, ports=(5000, 4000))
    with pytest.raises(ValueError, match="timeout must be positive"):
        SyncSGD(collective=True, timeout=0)
    with pytest.raises(ValueError, match="rendezvous is 'driver' or 'spark', got 'mpi'"):
        ParameterAveraging(4, collective=True, rendezvous="mpi")
