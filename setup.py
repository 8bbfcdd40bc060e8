"""Build glue: the cffi extension, the folders that install into the pyfront namespace, the CUDA
library and the JVM bridge's jar.

spark/ installs as pyfront.spark and jvm-bridge/python as pyfront.jvm; the bridge's Java sources
(jvm-bridge/src/main/java, Maven's layout) and the jar compiled from them are added to
pyfront.jvm when the wheel is built, as py4j and pyspark ship their jars. Everything else about
the distribution lives in pyproject.toml.
"""
import importlib.util
import os
import runpy
import shutil

from setuptools import find_packages, setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
JAVA_SOURCES = os.path.join(HERE, "jvm-bridge", "src", "main", "java")

# pyfront/spark and pyfront/jvm are symbolic links to spark/ and jvm-bridge/python, so the
# checkout is the package tree itself: an editable install is one path entry (no import hook),
# which type checkers and editors resolve too
packages = find_packages(include=["pyfront", "pyfront.*"])


def _bridge_build():
    # jvm-bridge/python/build.py imports nothing from pyfront, which is not built yet
    spec = importlib.util.spec_from_file_location(
        "_pyfront_jvm_build", os.path.join(HERE, "jvm-bridge", "python", "build.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildPy(build_py):
    """build_py, plus the native CUDA library where nvcc is found (native/build_cuda.py), and
    pyfront.jvm's java/ sources and pyfront-bridge.jar (javac --release 17 against the py4j
    jar). Without a JDK or py4j the wheel ships the sources only, and the jar is compiled on
    first use; an editable install reads the checkout's sources in place."""

    def run(self):
        super().run()
        runpy.run_path(os.path.join(HERE, "native", "build_cuda.py"))["build_py_hook"](self)
        target = os.path.join(self.build_lib, "pyfront", "jvm")
        if self.editable_mode or not os.path.isdir(target) or not os.path.isdir(JAVA_SOURCES):
            return
        shutil.copytree(JAVA_SOURCES, os.path.join(target, "java"), dirs_exist_ok=True)
        bridge = _bridge_build()
        try:
            jar = bridge.build_jar(out=os.path.join(target, bridge.JAR_NAME))
        except bridge.BuildError as e:
            print("pyfront: pyfront-bridge.jar not built (%s); the JVM bridge compiles it on "
                  "first use" % str(e).splitlines()[0])
        else:
            print("pyfront: built %s" % jar)


setup(
    packages=packages,
    package_dir={"": "."},
    cffi_modules=["native/build.py:ffibuilder"],
    cmdclass={"build_py": BuildPy},
)
