"""Helpers of the Spark tests (imported by conftest.py and the tests): the checkout's
pyfront.spark importable in this process and in other processes (spark/ installs as
pyfront.spark; a checkout needs a small shim package for that), Spark settings for tests, and
DataFrames from arrays."""
import importlib.util
import os
import shutil
import sys
from pathlib import Path

import pyfront as pf

ROOT = Path(__file__).resolve().parents[2]
SPARK_SOURCE = ROOT / "spark"

_SHIM_INIT = '''import os
_root = {root!r}
__path__ = [os.path.dirname(os.path.abspath(__file__)), os.path.join(_root, "pyfront")]
__file__ = os.path.join(_root, "pyfront", "__init__.py")
exec(compile(open(__file__).read(), __file__, "exec"))
'''


def _import_checkout_spark():
    """pyfront.spark from the checkout's spark/ folder, whether or not pyfront is installed."""
    if "pyfront.spark" in sys.modules:
        return sys.modules["pyfront.spark"]
    try:
        import pyfront.spark as mod   # an installed pyfront
        return mod
    except ImportError:
        pass
    spec = importlib.util.spec_from_file_location(
        "pyfront.spark", SPARK_SOURCE / "__init__.py",
        submodule_search_locations=[str(SPARK_SOURCE)])
    module = importlib.util.module_from_spec(spec)
    sys.modules["pyfront.spark"] = module
    spec.loader.exec_module(module)
    pf.spark = module
    return module


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
if REASON is None:
    _import_checkout_spark()


def make_shim(folder):
    """A folder to put on PYTHONPATH so that other processes import pyfront with pyfront.spark
    (what an install does through setup.py's package_dir)."""
    pkg = Path(folder) / "pyfront"
    pkg.mkdir(parents=True, exist_ok=True)
    link = pkg / "spark"
    if not link.exists():
        link.symlink_to(SPARK_SOURCE, target_is_directory=True)
    (pkg / "__init__.py").write_text(_SHIM_INIT.format(root=str(ROOT)))
    return str(folder)


def spark_env(shim):
    """Environment for Spark processes started from tests: 127.0.0.1 only, this interpreter,
    the checkout's pyfront (with pyfront.spark) importable."""
    env = dict(os.environ)
    env["SPARK_LOCAL_IP"] = "127.0.0.1"
    env["PYSPARK_PYTHON"] = sys.executable
    env["PYSPARK_DRIVER_PYTHON"] = sys.executable
    env["PYTHONPATH"] = os.pathsep.join([shim] + [p for p in env.get("PYTHONPATH", "").split(
        os.pathsep) if p])
    return env


def session_builder(master, shim, app="pyfront-tests"):
    from pyspark.sql import SparkSession

    return (SparkSession.builder.master(master).appName(app)
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.executorEnv.PYTHONPATH", shim)
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
