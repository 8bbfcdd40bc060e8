"""The three examples of the layers issue, in a shortened form, each asserting its target
(the scripts exit non-zero when they miss it)."""
import os
import subprocess
import sys

import pytest

from pyfront.testing import subprocess_env

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

CASES = {
    "cnn_digits.py": (["--epochs", "12", "--verbose", "0"], "test accuracy"),
    "lstm_timeseries.py": (["--epochs", "4", "--hours", "6000", "--verbose", "0"],
                           "better"),
    "vqa_cnn_lstm.py": (["--samples", "4000", "--epochs", "10", "--verbose", "0"],
                        "held-out accuracy"),
}


@pytest.mark.parametrize("script", sorted(CASES))
def test_example_reaches_its_target(script, tmp_path):
    args, marker = CASES[script]
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "examples", script)] + args,
                          capture_output=True, text=True, timeout=900, cwd=tmp_path,
                          env=subprocess_env())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert marker in proc.stdout
