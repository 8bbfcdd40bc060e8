"""The Java and Scala examples: built and run against a model trained by
examples/train_digits.py, their predictions checked against pyfront's in Python."""
import glob
import json
import os
import re
import subprocess
import sys
import urllib.request

import numpy as np
import pytest

import pyfront as pf

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = os.path.join(ROOT, "examples")


@pytest.fixture(scope="session")
def digits(tmp_path_factory, child_env):
    d = tmp_path_factory.mktemp("digits")
    model, csv = d / "digits.pf", d / "digits_test.csv"
    for cmd in ([os.path.join(EXAMPLES, "train_digits.py"), "--out", str(model)],
                [os.path.join(EXAMPLES, "java", "export_digits.py"), "--out", str(csv)]):
        done = subprocess.run([sys.executable] + cmd, cwd=d, env=child_env, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
    rows = np.loadtxt(csv, delimiter=",", dtype=np.int64)
    x = (rows[:, :64] / 16.0).astype(np.float32)
    with pf.no_grad():
        predicted = pf.load(model)(pf.tensor(x)).numpy().argmax(1)
    return {"model": model, "csv": csv, "labels": rows[:, 64], "predicted": predicted}


def _predictions(stdout):
    return np.array([int(line.split()[1]) for line in stdout.splitlines()
                     if line.startswith("predicted ")])


def _check_run(done, digits):
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    got = _predictions(done.stdout)
    np.testing.assert_array_equal(got, digits["predicted"])
    accuracy = float(done.stdout.split("accuracy ")[1].split()[0])
    assert accuracy >= 0.95
    assert accuracy == pytest.approx(float((digits["predicted"] == digits["labels"]).mean()),
                                     abs=1e-4)  # printed with 4 decimals


def test_java_example_classifies_like_python(jdk, bridge_jar, child_env, workdir, digits):
    cp = os.pathsep.join([bridge_jar, pf.jvm.py4j_jar()])
    # Java's single-file source launcher: no separate javac step for the example
    done = subprocess.run([jdk["java"], "-cp", cp, os.path.join(EXAMPLES, "java",
                                                                 "DigitsService.java"),
                           str(digits["model"]), str(digits["csv"])], cwd=workdir,
                          env=child_env, capture_output=True, text=True, timeout=300)
    _check_run(done, digits)
    # the worker's log line, relayed by the JVM, carries one prefix, not the JVM's and its own
    serving = [line for line in done.stderr.splitlines() if "serving ['digits']" in line]
    assert len(serving) == 1, done.stderr
    assert re.match(r"\[pyfront worker \d+\] serving \['digits'\] on 127\.0\.0\.1:\d+ ",
                    serving[0]), serving[0]


def test_java_example_http_service(jdk, bridge_jar, child_env, workdir, digits, pid_alive):
    cp = os.pathsep.join([bridge_jar, pf.jvm.py4j_jar()])
    proc = subprocess.Popen([jdk["java"], "-cp", cp, os.path.join(EXAMPLES, "java",
                                                                   "DigitsService.java"),
                             str(digits["model"]), "--serve", "0"], cwd=workdir, env=child_env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        url = None
        for line in proc.stdout:
            if line.startswith("listening on "):
                url = line.split()[2]
                break
        assert url, "the service did not start"
        rows = np.loadtxt(digits["csv"], delimiter=",", dtype=np.int64)[:5]
        for i, row in enumerate(rows):
            body = ",".join(str(v) for v in row[:64]).encode()
            with urllib.request.urlopen(urllib.request.Request(url, data=body), timeout=60) as r:
                reply = json.loads(r.read())
            assert reply["digit"] == digits["predicted"][i]
            assert len(reply["scores"]) == 10
        bad = urllib.request.Request(url, data=b"1,2,3")
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(bad, timeout=60)
        assert e.value.code == 400
    finally:
        proc.kill()
        proc.wait(10)


@pytest.mark.parametrize("failure", ["random bytes", "no such python"])
def test_java_example_load_failure_names_the_real_cause(jdk, bridge_jar, child_env, workdir,
                                                        tmp_path, failure):
    """Run the README's way (the source launcher), a failed start shows the ModelLoadException,
    not the launcher's own IllegalArgumentException from trimming a start-up thread's trace."""
    model, env = tmp_path / "digits.pf", dict(child_env)
    if failure == "random bytes":
        model.write_bytes(np.random.default_rng(0).bytes(3000))
        expected = "pyfront.errors.ModelFormatError"
    else:
        model.write_bytes(b"unused")
        env["PYFRONT_PYTHON"] = str(tmp_path / "no-such-python")
        expected = "cannot start the Python worker '%s'" % env["PYFRONT_PYTHON"]
    cp = os.pathsep.join([bridge_jar, pf.jvm.py4j_jar()])
    done = subprocess.run([jdk["java"], "-cp", cp, os.path.join(EXAMPLES, "java",
                                                                 "DigitsService.java"),
                           str(model), "unused.csv"], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "IllegalArgumentException" not in done.stderr, done.stderr
    first = done.stderr.splitlines()[0]
    assert first.startswith("Exception in thread \"main\" org.pyfront.ModelLoadException: ")
    assert expected in first, done.stderr
    assert "Caused by: org.pyfront.ModelLoadException" in done.stderr  # the original, kept


def _scala_jars():
    try:
        import pyspark
    except ImportError:
        return None
    jars = os.path.join(os.path.dirname(pyspark.__file__), "jars")
    found = {}
    for name in ("scala-compiler", "scala-library", "scala-reflect"):
        matches = glob.glob(os.path.join(jars, name + "-2.13.*.jar"))
        if not matches:
            return None
        found[name] = matches[0]
    return found


def _readme_scala_commands():
    """The Scala lines of jvm-bridge/README.md's example block, verbatim."""
    readme = open(os.path.join(ROOT, "jvm-bridge", "README.md")).read()
    blocks = re.findall(r"```bash\n(.*?)```", readme, re.S)
    block = next(b for b in blocks if "scala.tools.nsc.Main" in b)
    return block[block.index("# Scala"):]


def test_scala_readme_commands_classify_like_python(jdk, bridge_jar, child_env, digits,
                                                    tmp_path):
    """The README's Scala commands, run verbatim in a fresh folder (no out/ made beforehand)
    with the pyspark wheel's Scala 2.13 compiler."""
    if _scala_jars() is None:
        pytest.skip("no Scala 2.13 compiler: the pyspark wheel's scala-compiler, scala-library "
                    "and scala-reflect jars were not found")
    commands = _readme_scala_commands()
    assert "scala.tools.nsc.Main" in commands and "DigitsService digits.pf" in commands
    work, bin_dir = tmp_path / "work", tmp_path / "bin"
    work.mkdir()
    bin_dir.mkdir()
    (work / "examples").symlink_to(EXAMPLES, target_is_directory=True)
    for name in ("model", "csv"):
        os.symlink(digits[name], work / digits[name].name)
    os.symlink(sys.executable, bin_dir / "python")  # the README says `python`
    env = dict(child_env, CP=os.pathsep.join([bridge_jar, pf.jvm.py4j_jar()]),
               PATH=os.pathsep.join([str(bin_dir), os.path.dirname(jdk["java"]),
                                     child_env.get("PATH", "")]))
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", commands], cwd=work, env=env,
                          capture_output=True, text=True, timeout=600)
    _check_run(done, digits)
    assert (work / "out" / "DigitsService.class").is_file()
