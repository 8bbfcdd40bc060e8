"""The README's main job: examples/train_digits.py reaches 95% in eager and compiled mode,
saves the model and reloads it with identical predictions."""
import os
import subprocess
import sys

from pyfront.testing import subprocess_env

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_train_digits_example(tmp_path):
    out = tmp_path / "digits.pf"
    proc = subprocess.run([sys.executable, os.path.join(ROOT, "examples", "train_digits.py"),
                           "--out", str(out)], capture_output=True, text=True, timeout=900,
                          cwd=tmp_path, env=subprocess_env())
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "reloaded model predicts identically" in proc.stdout
    accuracies = [float(line.split()[-1]) for line in proc.stdout.splitlines()
                  if "mode: test accuracy" in line]
    assert len(accuracies) == 2 and min(accuracies) >= 0.95
    assert out.exists()
