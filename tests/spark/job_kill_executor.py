"""A training job that kills one of its own executors mid-training (run by
test_spark_cluster.py against a real standalone cluster, in its own process since it needs its
own SparkContext). Writes a JSON report: the killed process id, the history, and how far the
trained weights are from single-machine training on the same global batches.

    python job_kill_executor.py MASTER_URL REPORT.json
"""
import json
import os
import signal
import sys
import time

import numpy as np

import pyfront as pf
from pyfront.train.callbacks import Callback


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


def main(master, report):
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
    killer = KillOneExecutor(spark.sparkContext.applicationId, (0, 3))
    # the rounds run under a task resource profile (stage-level scheduling), as GPU training
    # would with .resource("gpu", 1) added
    from pyspark.resource import ResourceProfileBuilder, TaskResourceRequests

    profile = ResourceProfileBuilder().require(TaskResourceRequests().cpus(1)).build
    trainer = SparkTrainer(net, SyncSGD(), num_workers=2, batch_size_per_worker=16,
                           optimizer=opt, loss="cross_entropy", seed=5, verbose=0,
                           resource_profile=profile)
    history = trainer.fit(df, epochs=2, callbacks=[killer])
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
    main(sys.argv[1], sys.argv[2])
