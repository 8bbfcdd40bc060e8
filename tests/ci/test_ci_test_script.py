"""ci/test.sh, run with stand-ins for python, id and apt-get: it says before it installs
Graphviz system-wide, and goes on when that fails."""
import os
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "ci" / "test.sh"


def _fake_bin(tmp_path, apt_rc):
    """A PATH holding only what test.sh may call, with no `dot`: `id` says root, `apt-get`
    logs its arguments, the Python stand-in does nothing."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "apt.log"
    scripts = {"id": "echo 0",
               "apt-get": 'echo "$*" >> %s; exit %d' % (log, apt_rc),
               "python": "exit 0"}
    for name, body in scripts.items():
        path = bin_dir / name
        path.write_text("#!/bin/bash\n%s\n" % body)
        path.chmod(0o755)
    os.symlink("/usr/bin/dirname" if os.path.exists("/usr/bin/dirname") else "/bin/dirname",
               bin_dir / "dirname")
    return bin_dir, log


@pytest.mark.parametrize("apt_rc", [0, 1])
def test_test_sh_says_it_installs_graphviz(tmp_path, apt_rc):
    bin_dir, log = _fake_bin(tmp_path, apt_rc)
    proc = subprocess.run(["/bin/bash", str(SCRIPT)], capture_output=True, text=True,
                          env={"PATH": str(bin_dir), "PYTHON": str(bin_dir / "python")},
                          timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "installing the graphviz system package with apt-get" in proc.stdout
    assert "install -y -qq graphviz" in log.read_text()
    assert ("graphviz not installed" in proc.stdout) == bool(apt_rc)
