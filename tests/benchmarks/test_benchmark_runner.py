"""benchmarks/run.py's command line: names given to --only are checked before anything runs."""
import subprocess
import sys
from pathlib import Path

RUN = Path(__file__).resolve().parents[2] / "benchmarks" / "run.py"


def _run(*args):
    return subprocess.run([sys.executable, str(RUN)] + list(args), capture_output=True,
                          text=True, timeout=60)


def test_only_refuses_unknown_names_and_lists_the_benchmarks():
    proc = _run("--only", "core,nope")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "unknown nope;" in proc.stderr
    names = sorted(p.stem[len("bench_"):] for p in RUN.parent.glob("bench_*.py"))
    assert "the benchmarks are: %s" % ", ".join(names) in proc.stderr
    assert "###" not in proc.stdout          # nothing ran, not even the known name


def test_only_with_no_name_is_refused():
    proc = _run("--only", ",")
    assert proc.returncode == 2
    assert "names no benchmark" in proc.stderr and "Traceback" not in proc.stderr
