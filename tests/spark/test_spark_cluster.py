"""Against a real standalone cluster (a master and two one-core workers on 127.0.0.1, started
from the pyspark wheel by ci/spark-cluster-start.sh): the spark-submit example trains and
scores the digits, and a job whose executor is killed mid-training still completes, with the
weights of single-machine training on the same global batches. Each job is its own process
(it needs its own SparkContext)."""
import json
import os
import socket
import subprocess
import sys

import pytest

from spark_support import REASON, ROOT, spark_env

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(REASON is not None, reason=REASON or "")]

EXAMPLE = ROOT / "examples" / "spark_train_digits.py"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def env():
    return spark_env()


@pytest.fixture(scope="module")
def cluster(env, tmp_path_factory):
    state = tmp_path_factory.mktemp("spark-ci")
    cluster_env = dict(env, SPARK_CI_DIR=str(state), SPARK_MASTER_PORT=str(free_port()),
                       PYTHON=sys.executable)
    start = subprocess.run(["bash", str(ROOT / "ci" / "spark-cluster-start.sh")],
                           env=cluster_env, capture_output=True, text=True, timeout=400,
                           cwd=state)
    try:
        assert start.returncode == 0, start.stdout + start.stderr
        url = start.stdout.strip().splitlines()[-1]
        assert url.startswith("spark://127.0.0.1:")
        yield url
    finally:
        stop = subprocess.run(["bash", str(ROOT / "ci" / "spark-cluster-stop.sh")],
                              env=cluster_env, capture_output=True, text=True, timeout=120)
        assert stop.returncode == 0, stop.stdout + stop.stderr
        assert not [p for p in os.listdir(state) if p.endswith(".pid")]


def spark_submit(master, args, env, cwd):
    import pyspark

    submit = os.path.join(os.path.dirname(pyspark.__file__), "bin", "spark-submit")
    cmd = [submit, "--master", master, "--conf", "spark.ui.enabled=false",
           "--conf", "spark.driver.host=127.0.0.1", "--conf", "spark.ui.showConsoleProgress=false",
           str(EXAMPLE)] + args
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, cwd=cwd)


def check_example_output(proc):
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-5000:]
    assert out.strip().endswith("OK")
    line = next(l for l in out.splitlines() if l.startswith("test accuracy"))
    predicted, evaluated = float(line.split()[2]), float(line.split()[4])
    assert predicted >= 0.95 and predicted == pytest.approx(evaluated, abs=1e-9)


def test_spark_submit_example_on_the_standalone_cluster(cluster, env, tmp_path):
    proc = spark_submit(cluster, ["--verbose", "0", "--out", str(tmp_path / "digits.pf")],
                        env, tmp_path)
    check_example_output(proc)
    assert "master %s, 2 cores" % cluster in proc.stdout
    assert (tmp_path / "digits.pf").exists()


def test_spark_submit_example_on_local_2(env, tmp_path):
    check_example_output(spark_submit("local[2]", ["--verbose", "0", "--strategy", "sync",
                                                   "--epochs", "6", "--lr", "3e-3"],
                                      env, tmp_path))


@pytest.mark.parametrize("mode", ["", "collective"], ids=["per-job", "collective"])
def test_a_killed_executor_does_not_stop_training(cluster, env, tmp_path, mode):
    """per-job: killed between rounds; collective: killed by its own task mid-epoch, which
    fails the barrier stage; the epoch runs again from its start on the relaunched executor."""
    report = tmp_path / "report.json"
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "spark" /
                                               "job_kill_executor.py"), cluster, str(report),
                           mode],
                          env=env, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    result = json.loads(report.read_text())
    assert result["killed"] in result["executors_before"]
    assert result["killed"] not in result["executors_after"]
    assert len(result["history"]["loss"]) == 2
    assert result["iterations"] == result["local_iterations"]
    assert result["max_weight_difference"] < 1e-5
