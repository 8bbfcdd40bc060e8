"""The checkout is the package tree: pyfront/spark and pyfront/jvm are links to spark/ and
jvm-bridge/python, so an editable install is a plain path entry that Python, type checkers and
editors all resolve, with no import hook of pyfront's own."""
import glob
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import pyfront

ROOT = Path(__file__).resolve().parent.parent


def test_spark_and_jvm_are_subpackages_of_this_checkout():
    import pyfront.jvm
    import pyfront.spark

    assert Path(pyfront.spark.__file__).resolve() == ROOT / "spark" / "__init__.py"
    assert Path(pyfront.jvm.__file__).resolve() == ROOT / "jvm-bridge" / "python" / "__init__.py"
    assert os.path.islink(ROOT / "pyfront" / "spark") and os.path.islink(ROOT / "pyfront" / "jvm")


def test_pyfront_installs_no_import_hook():
    finders = [type(f).__module__ + "." + getattr(f, "__name__", type(f).__name__)
               for f in sys.meta_path]
    assert not [f for f in finders if "pyfront" in f], finders
    assert not hasattr(pyfront, "_map_checkout_folders")


@pytest.mark.skipif(shutil.which("mypy") is None and
                    subprocess.run([sys.executable, "-m", "mypy", "--version"],
                                   capture_output=True).returncode != 0,
                    reason="mypy is not installed (it comes with the test extra)")
def test_a_type_checker_resolves_pyfront_spark_and_jvm(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("from pyfront.spark import SparkTrainer\n"
                     "from pyfront.jvm import protocol\n"
                     "import pyfront as pf\n"
                     "reveal_type(SparkTrainer)\n"
                     "reveal_type(pf.Tensor)\n")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--follow-imports=silent", "--no-error-summary",
         "--cache-dir", str(tmp_path / "cache"), str(probe)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600)
    out = result.stdout + result.stderr
    assert "import-not-found" not in out and "Cannot find implementation" not in out, out
    assert "pyfront.spark.trainer.SparkTrainer" in out, out
    assert "pyfront.tensor.Tensor" in out, out


def test_test_modules_have_unique_basenames():
    # The tests folders are not packages: pytest imports each test module by its basename, so
    # two files of one name in different folders stop the whole suite at collection.
    seen = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "tests", "**", "test_*.py"), recursive=True)):
        seen.setdefault(os.path.basename(path), []).append(os.path.relpath(path, ROOT))
    assert {k: v for k, v in seen.items() if len(v) > 1} == {}


def test_the_abi_is_one_header_and_the_others_are_private():
    # cffi reads native/include/pyfront.h and nothing else; the other headers sit beside the
    # sources they serve, say they are not part of the ABI, and are never installed
    headers = sorted(p.relative_to(ROOT / "native").as_posix()
                     for p in (ROOT / "native").rglob("*") if p.suffix in (".h", ".cuh"))
    assert [h for h in headers if h.startswith("include/")] == ["include/pyfront.h"]
    for h in headers:
        if h != "include/pyfront.h":
            assert not h.startswith("include/")
            head = (ROOT / "native" / h).read_text().split("*/")[0]
            words = " ".join(w for w in head.split() if w not in ("/*", "*"))
            assert "Not part of the ABI" in words, h
    build = (ROOT / "native" / "build.py").read_text()
    assert 'HEADER = os.path.join(ROOT, "include", "pyfront.h")' in build
    assert "cdef(header_cdef(HEADER))" in build
    installed = Path(pyfront.__file__).parent / "include"
    if installed.is_dir():            # a build that ships the header for user kernels
        assert sorted(p.name for p in installed.iterdir()) == ["pyfront.h"]
