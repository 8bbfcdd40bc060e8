"""The check that executors import the driver's pyfront, run once per SparkContext and Python
before the first job that needs it, so that a wrong executor Python fails at once with its
name and the fix, rather than as ModuleNotFoundError deep inside a retried task."""
import re
import types

from .. import errors

__all__ = ["check_executors"]

_checked = set()       # (application id, executor Python) that passed
_EXCEPTION = re.compile(r"[\w.$]+(?:Exception|Error): ")


def _probe(_rows):
    """Runs on an executor. Shipped by value (see check_executors): it must not need pyfront
    to be unpickled, since whether pyfront imports is the question."""
    import sys
    try:
        import pyfront
        import pyfront.spark  # noqa: F401
        found, problem = getattr(pyfront, "__version__", "unknown"), None
    except Exception as e:      # noqa: BLE001 - whatever stops the import is the answer
        found, problem = None, "%s: %s" % (type(e).__name__, e)
    yield sys.executable, sys.version.split()[0], found, problem


def _fix(python):
    return ("Point the executors at a Python with the same pyfront: set PYSPARK_PYTHON to it "
            "before the SparkContext starts (--conf spark.pyspark.python=... with "
            "spark-submit), e.g. PYSPARK_PYTHON=%s for local mode, or ship an environment "
            "with the job (--archives env.tar.gz#environment with spark.pyspark.python="
            "./environment/bin/python; see spark/README.md, 'Running on a real cluster')."
            % python)


def check_executors(sc):
    """Raise PyfrontError unless executors import pyfront.spark at the driver's version."""
    import sys

    import pyfront

    key = (sc.applicationId, sc.pythonExec)
    if key in _checked:
        return
    configured = sc.pythonExec
    # a copy of _probe with no module: cloudpickle then ships its code instead of a reference
    # to pyfront.spark.executors, which an executor without pyfront could not resolve
    probe = types.FunctionType(_probe.__code__, {"__builtins__": __builtins__}, "_probe")
    previous = sc.getLocalProperty("spark.job.description")
    sc.setJobDescription("pyfront: checking that executors import pyfront")
    try:
        found = sc.parallelize(range(sc.defaultParallelism), sc.defaultParallelism) \
            .mapPartitions(probe).collect()
    except Exception as e:      # noqa: BLE001 - the executor Python did not even start
        # the innermost cause ("java.io.IOException: Cannot run program ..."), not Py4J's
        # header or Spark's "Job aborted due to stage failure: ..."
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        line = next((ln for ln in lines if _EXCEPTION.search(ln)
                     and not ln.startswith("An error occurred")),
                    lines[0] if lines else type(e).__name__)
        cause = line[list(_EXCEPTION.finditer(line))[-1].start():] \
            if _EXCEPTION.search(line) else line
        raise errors.PyfrontError(
            "Spark executors could not run Python %r (spark.pyspark.python / PYSPARK_PYTHON): "
            "%s. %s" % (configured, cause[:500], _fix(sys.executable))) from None
    finally:
        sc.setLocalProperty("spark.job.description", previous)
    mine = pyfront.__version__
    for executable, version, theirs, problem in dict.fromkeys(found):
        if problem is not None:
            raise errors.PyfrontError(
                "Spark executors run Python %s (%s, configured as %r), which cannot import "
                "pyfront (%s); the driver runs pyfront %s on %s. %s"
                % (executable, version, configured, problem, mine, sys.executable,
                   _fix(sys.executable)))
        if theirs != mine:
            raise errors.PyfrontError(
                "Spark executors run Python %s (configured as %r) with pyfront %s, but the "
                "driver runs pyfront %s (%s): both sides must run the same pyfront. %s"
                % (executable, configured, theirs, mine, sys.executable, _fix(sys.executable)))
    _checked.add(key)
