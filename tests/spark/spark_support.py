"""Helpers of the Spark tests (imported by conftest.py and the tests): Spark settings and the
environment for Spark processes (this interpreter, 127.0.0.1, the pyfront under test importable
by executors), and DataFrames from arrays."""
import os
import shutil
import sys
from pathlib import Path

import pyfront as pf

ROOT = Path(__file__).resolve().parents[2]


def pyfront_path():
    """The folder that holds the pyfront package under test: executors must import the same
    one (from a checkout, pyfront maps spark/ to pyfront.spark itself)."""
    return os.path.dirname(os.path.dirname(os.path.abspath(pf.__file__)))


def missing_spark():
    """Why Spark tests cannot run here, or None."""
    try:
        import pyarrow  # noqa: F401
        import pyspark  # noqa: F401
    except ImportError as e:
        return "pyspark/pyarrow not installed: %s" % e
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "no Java runtime (java not on PATH and JAVA_HOME unset)"
    return None


REASON = missing_spark()


def spark_env(path=None):
    """Environment for Spark processes started from tests: 127.0.0.1 only, this interpreter,
    the pyfront under test importable."""
    path = path or pyfront_path()
    env = dict(os.environ)
    env["SPARK_LOCAL_IP"] = "127.0.0.1"
    env["PYSPARK_PYTHON"] = sys.executable
    env["PYSPARK_DRIVER_PYTHON"] = sys.executable
    env["PYTHONPATH"] = os.pathsep.join([path] + [p for p in env.get("PYTHONPATH", "").split(
        os.pathsep) if p])
    return env


def session_builder(master, path=None, app="pyfront-tests"):
    from pyspark.sql import SparkSession

    return (SparkSession.builder.master(master).appName(app)
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.executorEnv.PYTHONPATH", path or pyfront_path())
            .config("spark.pyspark.python", sys.executable)
            .config("spark.sql.shuffle.partitions", "2")
            .config("spark.default.parallelism", "2")
            .config("spark.python.worker.reuse", "true")
            .config("spark.sql.execution.arrow.pyspark.enabled", "true"))


def to_df(spark, x, y=None):
    rows = [(row.tolist(),) if y is None else (row.tolist(), int(label))
            for row, label in zip(x, y if y is not None else [None] * len(x))]
    cols = ["features"] if y is None else ["features", "label"]
    return spark.createDataFrame(rows, cols)
