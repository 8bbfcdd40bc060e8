"""Build glue: the cffi extension, and the folders that install into the pyfront namespace.

spark/ installs as pyfront.spark and jvm-bridge/python as pyfront.jvm; everything else about
the distribution lives in pyproject.toml.
"""
import os

from setuptools import find_packages, setup

MAPPED = {"pyfront.spark": "spark", "pyfront.jvm": "jvm-bridge/python"}

packages = find_packages(include=["pyfront", "pyfront.*"])
package_dir = {"pyfront": "pyfront"}
for name, folder in MAPPED.items():
    if not os.path.exists(os.path.join(folder, "__init__.py")):
        continue
    packages.append(name)
    packages += ["%s.%s" % (name, sub) for sub in find_packages(where=folder)]
    package_dir[name] = folder

setup(
    packages=packages,
    package_dir=package_dir,
    cffi_modules=["native/build.py:ffibuilder"],
)
