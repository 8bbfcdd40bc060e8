"""Fixtures of the Spark tests: one SparkSession for the whole test session on local[2,2] (two
cores; a task may fail once and is retried) whose executors import the pyfront under test, and
the digits data. Without Java or pyspark the tests skip, naming what is missing."""
import os

import numpy as np
import pytest

from spark_support import REASON, session_builder, spark_env


@pytest.fixture(scope="session")
def spark():
    if REASON is not None:
        pytest.skip(REASON)
    os.environ.update({k: v for k, v in spark_env().items()
                       if k in ("SPARK_LOCAL_IP", "PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON",
                                "PYTHONPATH")})
    session = session_builder("local[2,2]").getOrCreate()
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


