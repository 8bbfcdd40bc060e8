"""An imported ONNX model trains with SparkTrainer (local[2,2]): SyncSGD on two workers gives
the weights that local SGD gives on the same global batches."""
import importlib
import os
import sys

import numpy as np
import pytest

import pyfront as pf
import pyfront.onnx  # noqa: F401

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "spark"))
import onnx_torch_models as torch_models  # noqa: E402
import spark_support  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore::FutureWarning"), pytest.mark.slow]


@pytest.fixture(scope="module")
def spark():
    if spark_support.REASON is not None:
        pytest.skip(spark_support.REASON)
    from pyspark.sql import SparkSession

    before = SparkSession.getActiveSession()
    os.environ.update({k: v for k, v in spark_support.spark_env().items()
                       if k in ("SPARK_LOCAL_IP", "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON",
                                "PYTHONPATH")})
    session = spark_support.session_builder("local[2,2]").getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    if before is None:              # a session the Spark tests made stays theirs
        session.stop()


def test_imported_model_trains_with_spark_trainer_as_locally(spark, torch):
    from pyfront.spark import SparkTrainer, SyncSGD

    # the Spark tests' own account of which rows each global batch holds
    global_batches = importlib.import_module("test_spark_trainer").global_batches
    data, shape = torch_models.export("mlp")
    rng = np.random.default_rng(9)
    x = rng.standard_normal((96,) + shape).astype(np.float32)
    y = x[:, :10].argmax(axis=1).astype(np.int64)
    model, local = pf.onnx.load(data), pf.onnx.load(data)
    opt = pf.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    trainer = SparkTrainer(model, SyncSGD(), num_workers=2, batch_size_per_worker=16,
                           optimizer=opt, loss="cross_entropy", seed=4, verbose=0)
    history = trainer.fit(spark_support.to_df(spark, x, y), epochs=2)

    local.train()
    lopt = pf.optim.SGD(local.parameters(), lr=0.05, momentum=0.9)
    for epoch in range(2):
        for idx in global_batches(len(x), 2, 16, 4, epoch):
            lopt.zero_grad()
            pf.losses.cross_entropy(local(pf.tensor(x[idx])), pf.tensor(y[idx])).backward()
            lopt.step()
    trained, expected = model.state_dict(), local.state_dict()
    assert list(trained) == list(expected) and len(trained) == 6
    for k in trained:
        np.testing.assert_allclose(trained[k], expected[k], rtol=1e-5, atol=2e-6, err_msg=k)
    assert history["loss"][-1] < history["loss"][0], history["loss"]
