"""Fixtures of the Spark tests: one SparkSession for the whole test session on local[2,2] (two
cores; a task may fail once and is retried), the shim that makes the checkout's pyfront.spark
importable by executors, and the digits data. Without Java or pyspark the tests skip, naming
what is missing."""
import os

import numpy as np
import pytest

from spark_support import REASON, make_shim, session_builder, spark_env


@pytest.fixture(scope="session")
def shim_path(tmp_path_factory):
    return make_shim(tmp_path_factory.mktemp("pyfront-shim"))


@pytest.fixture(scope="session")
def spark(shim_path, tmp_path_factory):
    if REASON is not None:
        pytest.skip(REASON)
    os.environ.update({k: v for k, v in spark_env(shim_path).items()
                       if k in ("SPARK_LOCAL_IP", "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON",
                                "PYTHONPATH")})
    # the JVM, and the Python workers it starts, run in the working directory; never the
    # checkout's root, where the source pyfront (without pyfront.spark) would hide the shim
    here = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("spark-work"))
    try:
        session = session_builder("local[2,2]", shim_path).getOrCreate()
    finally:
        os.chdir(here)
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits: (x_train, x_test, y_train, y_test), pixels scaled to [0, 1]."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    return train_test_split(x, y.astype(np.int64), test_size=0.2, random_state=0, stratify=y)


