"""SparkTrainer(use_gpu=True) on a cluster that gives its tasks no GPU: the fit fails at once,
unretried, with the DeviceError naming the Spark settings, and the model is unchanged. (The
device picking itself is tested without Spark in tests/cuda/test_spark_gpu.py; training on a
real GPU executor needs one.)"""
import numpy as np
import pytest

import pyfront as pf

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def test_use_gpu_without_gpu_resources_names_the_spark_settings(spark):
    from pyfront.spark import SparkTrainer

    pf.random.seed(0)
    model = pf.nn.Sequential([pf.nn.Dense(8, activation="relu"), pf.nn.Dense(3)])
    model(pf.tensor(np.zeros((1, 4), np.float32)))
    model.compile(optimizer=pf.optim.SGD(lr=0.1), loss="cross_entropy")
    before = model.state_dict()["0.kernel"].copy()
    df = spark.createDataFrame([([float(i % 5), 1.0, 2.0, 3.0], i % 3) for i in range(40)],
                               "features array<double>, label int")
    with pytest.raises(pf.DeviceError) as info:
        SparkTrainer(model, num_workers=2, verbose=0, use_gpu=True).fit(df)
    assert str(info.value).startswith(
        "SparkTrainer(use_gpu=True): Spark assigned this task no GPU; give executors and tasks "
        "GPUs with spark.executor.resource.gpu.amount, "
        "spark.executor.resource.gpu.discoveryScript and spark.task.resource.gpu.amount")
    assert "(raised in a Spark task" in str(info.value)
    np.testing.assert_array_equal(model.state_dict()["0.kernel"], before)
