"""A training job that kills one of its own executors mid-training (run by
test_spark_cluster.py against a real standalone cluster, in its own process since it needs its
own SparkContext). Writes a JSON report: the killed process id, the history, and how far the
trained weights are from single-machine training on the same global batches.

    python job_kill_executor.py MASTER_URL REPORT.json [collective]

With "collective", training runs SyncSGD(collective=True) (one barrier job per epoch) and the
executor is killed mid-epoch from inside its own training task (at worker 0's 4th minibatch of
the second epoch, once): the barrier stage fails and the epoch runs again from its start.
"""
import json
import os
import signal
import sys
import time

import numpy as np

import pyfront as pf
from pyfront.train.callbacks import Callback
from pyfront.train.metrics import Metric


def executor_pids(app_id):
    """Process ids of this application's executor JVMs on this machine."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if b"org.apache.spark.executor.CoarseGrainedExecutorBackend" in args and \
                app_id.encode() in args:
            pids.append(int(entry))
    return sorted(pids)


class KillOneExecutor(Callback):
    def __init__(self, app_id, at):
        super().__init__()
        self.app_id, self.at = app_id, at
        self.killed = None
        self.executors_before = []
        self.epoch = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, rnd, logs=None):      # after every round
        if (self.epoch, rnd) != self.at:
            return
        self.executors_before = executor_pids(self.app_id)
        self.killed = self.executors_before[0]
        os.kill(self.killed, signal.SIGKILL)
        for _ in range(50):       # let it die before the next round is scheduled
            if not os.path.exists("/proc/%d" % self.killed):
                break
            time.sleep(0.1)


class KillOwnExecutorMidEpoch(Metric):
    """In worker 0's training task of epoch 2, at its 4th minibatch, kill this task's
    executor JVM (the ancestor process running CoarseGrainedExecutorBackend), once: the file
    `marker` records the kill and its process id."""

    name = "probe"

    def __init__(self, marker):
        self.marker = marker
        super().__init__()

    def update(self, y_true, y_pred):
        from pyspark import TaskContext

        self.stats["total"] += 0.0
        self.stats["count"] += 1.0
        ctx = TaskContext.get()
        if ctx is None or ctx.partitionId() != 0 or self.stats["count"] != 4.0 or \
                not os.path.exists(self.marker + ".armed"):
            return
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            return
        pid = os.getpid()
        while pid > 1:
            with open("/proc/%d/stat" % pid) as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open("/proc/%d/cmdline" % pid, "rb") as f:
                if b"org.apache.spark.executor.CoarseGrainedExecutorBackend" in f.read():
                    break
        os.write(fd, str(pid).encode())
        os.close(fd)
        os.kill(pid, signal.SIGKILL)


class Arm(Callback):
    """After the first epoch: notes the executors and arms KillOwnExecutorMidEpoch."""

    def __init__(self, marker, app_id):
        super().__init__()
        self.marker, self.app_id = marker, app_id
        self.executors = []

    def on_epoch_end(self, epoch, logs=None):
        if epoch == 0:
            self.executors = executor_pids(self.app_id)
            open(self.marker + ".armed", "w").close()


def main(master, report, mode=""):
    from pyspark.sql import SparkSession
    from sklearn.datasets import load_digits

    from pyfront.spark import SparkTrainer, SyncSGD
    from pyfront.spark.data import epoch_order

    spark = (SparkSession.builder.master(master).appName("pyfront kill-an-executor test")
             .config("spark.ui.enabled", "false")
             .config("spark.ui.showConsoleProgress", "false")
             .config("spark.driver.host", "127.0.0.1")
             .config("spark.driver.bindAddress", "127.0.0.1")
             .config("spark.sql.shuffle.partitions", "2")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    x, y = load_digits(return_X_y=True)
    x, y = (x[:320] / 16.0).astype(np.float32), y[:320].astype(np.int64)
    df = spark.createDataFrame([(r.tolist(), int(t)) for r, t in zip(x, y)],
                               ["features", "label"])

    def model():
        pf.random.seed(1)
        m = pf.nn.Sequential([pf.nn.Dense(32, activation="relu"), pf.nn.Dense(10)])
        m(pf.tensor(x[:1]))
        return m

    net = model()
    opt = pf.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    collective = mode == "collective"
    marker = os.path.abspath("killed-executor")
    killer = KillOneExecutor(spark.sparkContext.applicationId, (0, 3))
    callbacks, metrics = [killer], None
    if collective:
        from pyspark import cloudpickle

        cloudpickle.register_pickle_by_value(sys.modules[__name__])
        arm = Arm(marker, spark.sparkContext.applicationId)
        callbacks, metrics = [arm], [KillOwnExecutorMidEpoch(marker)]
    # the rounds run under a task resource profile (stage-level scheduling), as GPU training
    # would with .resource("gpu", 1) added
    from pyspark.resource import ResourceProfileBuilder, TaskResourceRequests

    profile = ResourceProfileBuilder().require(TaskResourceRequests().cpus(1)).build
    trainer = SparkTrainer(net, SyncSGD(collective=collective, timeout=60),
                           num_workers=2, batch_size_per_worker=16, optimizer=opt,
                           loss="cross_entropy", metrics=metrics, seed=5, verbose=0,
                           resource_profile=profile)
    history = trainer.fit(df, epochs=2, callbacks=callbacks)
    if collective:
        with open(marker) as f:
            killer.killed = int(f.read())
        killer.executors_before = arm.executors
    after = executor_pids(spark.sparkContext.applicationId)

    ref = model()
    ropt = pf.optim.SGD(ref.parameters(), lr=0.1, momentum=0.9)
    for epoch in range(2):
        order = epoch_order(len(x), 2, 5, epoch)
        for s in range(-(-max(len(o) for o in order) // 16)):
            idx = np.concatenate([o[s * 16:(s + 1) * 16] for o in order])
            ropt.zero_grad()
            pf.losses.cross_entropy(ref(pf.tensor(x[idx])), pf.tensor(y[idx])).backward()
            ropt.step()
    diff = max(float(np.abs(net.state_dict()[k] - v).max()) for k, v in ref.state_dict().items())
    with open(report, "w") as f:
        json.dump({"killed": killer.killed, "executors_before": killer.executors_before,
                   "executors_after": after, "history": history.history,
                   "max_weight_difference": diff, "iterations": opt.iterations,
                   "local_iterations": ropt.iterations}, f)
    spark.stop()


if __name__ == "__main__":
    main(*sys.argv[1:])
