"""Build step for libpyfront_cuda.so, the CUDA twin of the native kernel library.

setup.py calls build_py_hook(cmd) from its build_py: with nvcc on PATH (or $CUDA_HOME/bin) the
.cu files under native/cuda are compiled and linked into pyfront/libpyfront_cuda.so, next to
the cffi module (into the checkout for an editable install); without nvcc the build says so in
one line and goes on. Like native/build.py, this file must not import pyfront (it is not built
yet). The library needs only the CUDA runtime (linked statically) and the driver at run time;
cuBLAS is dlopened from the nvidia-cublas wheel by pyfront/backend/cuda.py. Its declarations are
the CUDA section of native/include/pyfront.h, which a wheel build installs beside it
(pyfront/include/pyfront.h).

Environment:
  PYFRONT_BUILD_CUDA=0         skip the CUDA library even where nvcc exists
  PYFRONT_CUDA_ARCHS="80;90"   compute capabilities to build (default: DEFAULT_ARCHS)
"""
import concurrent.futures
import fcntl
import glob
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.abspath(__file__))
CUDA_DIR = os.path.join(ROOT, "cuda")
INCLUDE = os.path.join(ROOT, "include")
LIBRARY_NAME = "libpyfront_cuda.so"

# Volta (sm_70) through Hopper (sm_90), plus PTX for later GPUs. CUDA 13 dropped sm_70 and
# sm_72 (nvcc --list-gpu-arch starts at compute_75), so what the found nvcc cannot build is
# left out and the build says so: Volta needs a CUDA 12 toolkit.
DEFAULT_ARCHS = ("70", "75", "80", "86", "89", "90")


class BuildError(Exception):
    """The CUDA library could not be built (nvcc missing or failing)."""


def find_nvcc():
    """nvcc's path, or None: PATH first, then $CUDA_HOME/bin, then /usr/local/cuda/bin."""
    found = shutil.which("nvcc")
    if found:
        return found
    for home in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if home and os.access(os.path.join(home, "bin", "nvcc"), os.X_OK):
            return os.path.join(home, "bin", "nvcc")
    return None


def supported_archs(nvcc):
    """The compute capabilities this nvcc can build, as strings ("75", "80", ...)."""
    out = subprocess.run([nvcc, "--list-gpu-arch"], capture_output=True, text=True, check=True)
    return [line.strip()[len("compute_"):] for line in out.stdout.split()
            if line.strip().startswith("compute_")]


def sources():
    return sorted(glob.glob(os.path.join(CUDA_DIR, "*.cu")))


def compile_command(nvcc, source, output, archs):
    """One .cu file to an object; relocatable device code, as the device-side error record is
    shared by every file."""
    gencode = []
    for arch in archs:
        gencode += ["-gencode", "arch=compute_%s,code=sm_%s" % (arch, arch)]
    # PTX of the newest architecture too, so GPUs after it JIT-compile the kernels
    gencode += ["-gencode", "arch=compute_%s,code=compute_%s" % (archs[-1], archs[-1])]
    return [nvcc, "-std=c++17", "-O3", "-rdc=true", "-Xcompiler", "-fPIC,-Wall,-fvisibility=hidden",
            "-I" + INCLUDE, "-I" + CUDA_DIR] + gencode + ["-c", source, "-o", output]


def build(out_dir, temp_dir, archs=None, nvcc=None, log=print):
    """Compile and link libpyfront_cuda.so into out_dir; returns its path. Raises BuildError."""
    nvcc = nvcc or find_nvcc()
    if nvcc is None:
        raise BuildError("nvcc was not found (PATH, $CUDA_HOME/bin, /usr/local/cuda/bin)")
    wanted = archs or os.environ.get("PYFRONT_CUDA_ARCHS", "").replace(",", ";").split(";")
    wanted = [a.strip() for a in wanted if a.strip()] or list(DEFAULT_ARCHS)
    available = set(supported_archs(nvcc))
    use = [a for a in wanted if a in available]
    dropped = [a for a in wanted if a not in available]
    if not use:
        raise BuildError("%s builds none of the architectures %s" % (nvcc, ", ".join(wanted)))
    if dropped:
        log("pyfront: %s cannot build sm_%s (left out)" % (nvcc, ", sm_".join(dropped)))
    os.makedirs(temp_dir, exist_ok=True)
    os.makedirs(out_dir, exist_ok=True)
    # one build at a time in a build folder (engineers' `pip install -e .` may overlap)
    with open(os.path.join(temp_dir, "lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_locked(nvcc, use, out_dir, temp_dir)


def _build_locked(nvcc, use, out_dir, temp_dir):
    target = os.path.join(out_dir, LIBRARY_NAME)
    srcs = sources()
    headers = glob.glob(os.path.join(CUDA_DIR, "*.h")) + \
        glob.glob(os.path.join(CUDA_DIR, "*.cuh")) + [os.path.join(INCLUDE, "pyfront.h")]
    newest_header = max(os.path.getmtime(p) for p in headers)
    stamp = os.path.join(temp_dir, "archs")
    same_archs = os.path.exists(stamp) and open(stamp).read() == ";".join(use)

    def compile_one(src):
        # objects newer than their source and every header are kept (same architectures)
        obj = os.path.join(temp_dir, os.path.basename(src) + ".o")
        if not (same_archs and os.path.exists(obj) and
                os.path.getmtime(obj) >= max(newest_header, os.path.getmtime(src))):
            run(compile_command(nvcc, src, obj, use))
        return obj

    workers = max(1, min(len(srcs), os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        objects = list(pool.map(compile_one, srcs))
    if same_archs and os.path.exists(target) and \
            os.path.getmtime(target) >= max(os.path.getmtime(o) for o in objects):
        return target   # up to date: `pip install -e .` for a C change does not recompile CUDA
    gencode = []
    for arch in use:
        gencode += ["-gencode", "arch=compute_%s,code=sm_%s" % (arch, arch)]
    # the runtime is linked statically (nvcc's default): the library needs only the driver
    run([nvcc, "-shared", "-rdc=true"] + gencode + objects +
        ["-o", target, "-ldl", "-lpthread", "-Xlinker", "-rpath,$ORIGIN"])
    with open(stamp, "w") as f:
        f.write(";".join(use))
    return target


def run(cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError("%s failed:\n%s" % (" ".join(cmd[:1] + cmd[-3:]),
                                             (proc.stderr or proc.stdout)[-4000:]))


def build_py_hook(cmd):
    """Called by setup.py's build_py: builds the library beside pyfront/_native, or says in one
    line why it is not built. A CUDA compile error fails the install (a broken .cu must not
    pass unnoticed where nvcc exists); PYFRONT_BUILD_CUDA=0 opts out."""
    if os.environ.get("PYFRONT_BUILD_CUDA", "1") == "0":
        print("pyfront: the CUDA library is not built (PYFRONT_BUILD_CUDA=0)")
        return None
    if find_nvcc() is None:
        print("pyfront: the CUDA library is not built: nvcc was not found (CPU only; install the "
              "CUDA toolkit and reinstall for GPU support)")
        return None
    checkout = os.path.dirname(ROOT)
    if getattr(cmd, "editable_mode", False):
        out_dir = os.path.join(checkout, "pyfront")
        temp_dir = os.path.join(checkout, "build", "cuda")
    else:
        out_dir = os.path.join(cmd.build_lib, "pyfront")
        temp_dir = os.path.join(os.path.dirname(cmd.build_lib), "cuda-temp")
    try:
        path = build(out_dir, temp_dir)
    except BuildError as e:
        sys.stderr.write("pyfront: building the CUDA library failed: %s\n" % e)
        raise
    if not getattr(cmd, "editable_mode", False):
        # the library's declarations travel with it (pyfront/backend/cuda.py reads its cdef
        # there); an editable install reads the checkout's native/include
        os.makedirs(os.path.join(out_dir, "include"), exist_ok=True)
        shutil.copyfile(os.path.join(INCLUDE, "pyfront.h"),
                        os.path.join(out_dir, "include", "pyfront.h"))
    print("pyfront: CUDA library ready: %s" % path)
    return path


if __name__ == "__main__":
    print(build(os.path.join(os.path.dirname(ROOT), "pyfront"),
                os.path.join(os.path.dirname(ROOT), "build", "cuda")))
