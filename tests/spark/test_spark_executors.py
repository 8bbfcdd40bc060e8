"""Executors whose Python lacks pyfront, or has another version of it, are refused at once by
fit, predict and evaluate with the executor's Python named and the fix, before any task fails.

The wrong executor Python is this interpreter behind a wrapper script that hides pyfront: no
site processing (-S: the editable install's .pth finder is not run), PYTHONPATH = the
site-packages folder alone (pyspark, numpy, pyarrow stay importable; the checkout does not),
started from a folder that holds no pyfront. PySpark reads SparkContext.pythonExec for every
job it creates, so the test points one session's jobs at the wrapper and back."""
import os
import stat
import sys
import time

import numpy as np
import pytest

import pyfront as pf

from spark_support import to_df

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def wrapper(folder, extra_path=None):
    import pyspark

    site = os.path.dirname(os.path.dirname(pyspark.__file__))
    path = site if extra_path is None else extra_path + os.pathsep + site
    script = folder / "python-without-pyfront"
    script.write_text("#!/bin/sh\ncd %s\nPYTHONPATH=%s exec %s -S \"$@\"\n"
                      % (folder, path, sys.executable))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return str(script)


@pytest.fixture
def executors_run(spark):
    """executors_run(python): later jobs of the session start their workers with `python`."""
    sc = spark.sparkContext
    original = sc.pythonExec

    def use(python):
        sc.pythonExec = python
    yield use
    sc.pythonExec = original


def model_and_data(spark, digits):
    x, _, y, _ = digits
    pf.random.seed(0)
    model = pf.nn.Sequential([pf.nn.Dense(8, activation="relu"), pf.nn.Dense(10)])
    model(pf.tensor(x[:1]))
    model.compile(optimizer=pf.optim.SGD(lr=0.1), loss="cross_entropy", metrics=["accuracy"])
    return model, to_df(spark, x[:64], y[:64])


def test_executors_without_pyfront_are_named_with_the_fix(spark, digits, executors_run,
                                                          tmp_path):
    from pyfront.spark import SparkTrainer, evaluate, predict

    model, df = model_and_data(spark, digits)
    before = model.state_dict()["0.kernel"].copy()
    python = wrapper(tmp_path)
    executors_run(python)
    calls = {"fit": lambda: SparkTrainer(model, num_workers=2, verbose=0).fit(df),
             "predict": lambda: predict(model, df, input_col="features"),
             "evaluate": lambda: evaluate(model, df)}
    for name, call in calls.items():
        start = time.perf_counter()
        with pytest.raises(pf.PyfrontError) as info:
            call()
        message = str(info.value)
        assert message.startswith("Spark executors run Python %s" % sys.executable), name
        assert "configured as %r" % python in message
        assert "cannot import pyfront (ModuleNotFoundError: No module named 'pyfront')" \
            in message
        assert "PYSPARK_PYTHON" in message and "spark.pyspark.python" in message
        assert "--archives" in message
        assert time.perf_counter() - start < 30, name    # no task retries, no training
    np.testing.assert_array_equal(model.state_dict()["0.kernel"], before)


def test_executors_with_another_pyfront_version_are_refused(spark, digits, executors_run,
                                                            tmp_path):
    from pyfront.spark import SparkTrainer

    old = tmp_path / "old" / "pyfront"
    (old / "spark").mkdir(parents=True)
    (old / "__init__.py").write_text("__version__ = '0.0.1'\n")
    (old / "spark" / "__init__.py").write_text("")
    executors_run(wrapper(tmp_path, str(tmp_path / "old")))
    model, df = model_and_data(spark, digits)
    with pytest.raises(pf.PyfrontError,
                       match=r"with pyfront 0\.0\.1, but the driver runs pyfront %s"
                       % pf.__version__.replace(".", r"\.")):
        SparkTrainer(model, num_workers=2, verbose=0).fit(df)


def test_a_python_that_does_not_start_is_named(spark, digits, executors_run, tmp_path):
    from pyfront.spark import evaluate

    model, df = model_and_data(spark, digits)
    missing = str(tmp_path / "no-such-python")
    executors_run(missing)
    with pytest.raises(pf.PyfrontError) as info:
        evaluate(model, df)
    assert str(info.value).startswith(
        "Spark executors could not run Python %r (spark.pyspark.python / PYSPARK_PYTHON): "
        "java.io.IOException: Cannot run program \"%s\"" % (missing, missing))


def test_the_check_runs_once_per_context_and_python(spark, digits, monkeypatch):
    from pyfront.spark import evaluate, executors

    model, df = model_and_data(spark, digits)
    sc = spark.sparkContext
    monkeypatch.setattr(executors, "_checked", set())
    probes = []
    parallelize = sc.parallelize
    monkeypatch.setattr(sc, "parallelize", lambda *a: probes.append(a) or parallelize(*a))
    evaluate(model, df)
    evaluate(model, df)
    # the check's job: one task per default-parallelism slot over range(slots)
    assert [a for a in probes if isinstance(a[0], range)] == [(range(2), 2)]
    assert executors._checked == {(sc.applicationId, sc.pythonExec)}
