"""cffi build script for the native kernel library (API mode).

cffi runs this file by exec from setup.py, so it must not import pyfront. The cdef is read from
the one ABI header, native/include/pyfront.h, so Python and C can never disagree about it.
"""
import glob
import os
import re

from cffi import FFI

ROOT = os.path.dirname(os.path.abspath(__file__))
HEADER = os.path.join(ROOT, "include", "pyfront.h")


def header_cdef(path):
    """The header as cffi's cdef: integer #defines substituted, other preprocessor lines dropped."""
    text = open(path, encoding="utf-8").read()
    # the CUDA twin's section declares libpyfront_cuda.so, not this library (backend/cuda.py)
    text = re.sub(r"^#ifdef PF_CUDA_API$.*?^#endif /\* PF_CUDA_API \*/$", "", text,
                  flags=re.S | re.M)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    defines = dict(re.findall(r"^#define\s+(PF_\w+)\s+(\d+)\s*$", text, flags=re.M))
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    body = "\n".join(lines)
    for name, value in defines.items():
        body = re.sub(r"\b%s\b" % name, value, body)
    constants = "\n".join("#define %s %s" % kv for kv in defines.items())
    return constants + "\n" + body


def relative(path):
    # setuptools wants source paths relative to the directory of setup.py
    return os.path.relpath(path, os.path.dirname(ROOT))


ffibuilder = FFI()
ffibuilder.cdef(header_cdef(HEADER))
ffibuilder.set_source(
    "pyfront._native",
    '#include "pyfront.h"',
    sources=sorted(relative(p) for p in glob.glob(os.path.join(ROOT, "src", "*.c"))),
    include_dirs=[relative(os.path.join(ROOT, "include")), relative(os.path.join(ROOT, "src"))],
    depends=sorted(relative(p) for p in glob.glob(os.path.join(ROOT, "src", "*.h")) + [HEADER]),
    extra_compile_args=["-O3", "-std=gnu11", "-fno-math-errno", "-fno-trapping-math",
                        "-Wall", "-Wno-unused-function"],
    libraries=["m", "pthread", "dl"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
