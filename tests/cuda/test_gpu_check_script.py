"""ci/gpu-check.sh where no GPU is usable: it stops at once, with the reason, instead of
reporting a run in which every GPU test skipped."""
import os
import subprocess

import pytest

import pyfront as pf

SCRIPT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__)))), "ci", "gpu-check.sh")


def test_without_a_gpu_the_script_stops_and_says_why(tmp_path):
    if pf.cuda.is_available():
        pytest.skip("a GPU is usable here: the script would run the whole check")
    proc = subprocess.run(["bash", SCRIPT], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, OUT=str(tmp_path)))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    report = (tmp_path / "environment.txt").read_text()
    assert "gpu-check: pyfront cannot use the GPU: %s" % pf.cuda.why_not() in report
    assert "gpu-check: stopping: every GPU test would only skip" in report
    assert not (tmp_path / "junit-cuda.xml").exists()
