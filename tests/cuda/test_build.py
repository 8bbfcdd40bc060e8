"""The CUDA library's build, checked without a GPU: every .cu file compiles with this machine's
nvcc for sm_80 and sm_90, the build hook says in one line why it skips, the cffi declarations
come from the one ABI header, and the CUDA kernel table is a subset of the C one (a twin, not a
fork)."""
import importlib.util
import os
import re
import shutil
import subprocess

import pytest

import pyfront as pf
from pyfront.backend import cuda

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CUDA_DIR = os.path.join(ROOT, "native", "cuda")
HEADER = os.path.join(ROOT, "native", "include", "pyfront.h")


def _build_module():
    spec = importlib.util.spec_from_file_location(
        "_pyfront_build_cuda", os.path.join(ROOT, "native", "build_cuda.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


build_cuda = _build_module()
NVCC = build_cuda.find_nvcc()
needs_nvcc = pytest.mark.skipif(NVCC is None, reason="nvcc is not installed here: the .cu files "
                                "cannot be compiled (install the CUDA toolkit)")
SOURCES = sorted(os.path.basename(p) for p in build_cuda.sources())


def test_every_kernel_area_has_a_source():
    assert {"runtime.cu", "elementwise.cu", "reduce.cu", "layout.cu", "linalg.cu", "optim.cu",
            "random.cu", "pool.cu", "norm.cu", "conv.cu", "scan.cu", "rnn.cu"} <= set(SOURCES)


@needs_nvcc
@pytest.mark.parametrize("source", SOURCES)
def test_cu_file_compiles_for_sm80_and_sm90(source, tmp_path):
    command = build_cuda.compile_command(NVCC, os.path.join(CUDA_DIR, source),
                                         str(tmp_path / (source + ".o")), ["80", "90"])
    proc = subprocess.run(command, capture_output=True, text=True)
    assert proc.returncode == 0, "nvcc failed on %s:\n%s" % (source, proc.stderr[-4000:])
    # both architectures' machine code is in the object (where the toolkit has cuobjdump)
    cuobjdump = shutil.which("cuobjdump")
    if cuobjdump:
        listing = subprocess.run([cuobjdump, "--list-elf", str(tmp_path / (source + ".o"))],
                                 capture_output=True, text=True)
        assert "sm_80" in listing.stdout and "sm_90" in listing.stdout, listing.stdout


@needs_nvcc
def test_architectures_nvcc_cannot_build_are_refused_by_name(tmp_path):
    with pytest.raises(build_cuda.BuildError, match="builds none of the architectures 20, 30"):
        build_cuda.build(str(tmp_path), str(tmp_path / "tmp"), archs=["20", "30"], nvcc=NVCC)
    assert {"80", "90"} <= set(build_cuda.supported_archs(NVCC))


def test_build_hook_says_in_one_line_that_nvcc_is_missing(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(build_cuda, "find_nvcc", lambda: None)

    class Cmd:
        editable_mode = False
        build_lib = str(tmp_path)

    assert build_cuda.build_py_hook(Cmd()) is None
    out = capsys.readouterr().out.strip().splitlines()
    assert out == ["pyfront: the CUDA library is not built: nvcc was not found (CPU only; install "
                   "the CUDA toolkit and reinstall for GPU support)"]
    assert not os.listdir(str(tmp_path))


def test_build_hook_can_be_switched_off(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("PYFRONT_BUILD_CUDA", "0")

    class Cmd:
        editable_mode = False
        build_lib = str(tmp_path)

    assert build_cuda.build_py_hook(Cmd()) is None
    assert capsys.readouterr().out.strip() == \
        "pyfront: the CUDA library is not built (PYFRONT_BUILD_CUDA=0)"


def _header_functions():
    """pf_cuda_* declarations of the ABI header's CUDA section, by name."""
    text = re.sub(r"/\*.*?\*/", "", open(HEADER).read(), flags=re.S)
    section = text[text.index("#ifdef PF_CUDA_API"):text.index("#endif", text.index(
        "#ifdef PF_CUDA_API"))]
    return dict(re.findall(r"PF_CUDA_API[^;(]*?\b(pf_cuda_\w+)\s*\(([^)]*)\)", section))


def test_one_abi_header_declares_both_libraries():
    """native/include/pyfront.h is the only public header: no second one beside the .cu files,
    the backend's cdef is the header's CUDA section, and the C library's cdef leaves it out."""
    assert sorted(os.listdir(CUDA_DIR)) == sorted(SOURCES + ["internal.cuh"])
    assert cuda.header_path() == HEADER
    header = _header_functions()
    assert len(header) == 23
    declared = dict(re.findall(r"\b(pf_cuda_\w+)\s*\(([^)]*)\)", cuda.header_cdef(HEADER)))
    assert set(header) == set(declared)
    for name, params in header.items():
        # pointers to the C library's structs cross as void pointers; the rest is the header's
        assert re.sub(r"\s+", " ", re.sub(r"\bpf_(args|step) \*", "void *", params)) == \
            re.sub(r"\s+", " ", declared[name]), name
    from pyfront.backend import cpu

    assert not [n for n in dir(cpu.lib) if n.startswith(("pf_cuda", "PF_CUDA"))]
    build = importlib.util.spec_from_file_location("_pf_build", os.path.join(ROOT, "native",
                                                                             "build.py"))
    module = importlib.util.module_from_spec(build)
    build.loader.exec_module(module)
    assert "pf_cuda" not in module.header_cdef(HEADER)


def test_backend_cdef_is_read_from_the_header(tmp_path):
    """A function added to the header's CUDA section is declared to cffi without a copy."""
    text = open(HEADER).read().replace(
        "PF_CUDA_API int pf_cuda_graph_destroy(void *graph);",
        "PF_CUDA_API int pf_cuda_graph_destroy(void *graph);\n"
        "PF_CUDA_API int pf_cuda_new_thing(const pf_args *args, int n);")
    (tmp_path / "pyfront.h").write_text(text)
    assert "int pf_cuda_new_thing(const void *args, int n);" in \
        cuda.header_cdef(str(tmp_path / "pyfront.h"))
    (tmp_path / "other.h").write_text("int pf_cuda_abi_version(void);\n")
    with pytest.raises(pf.errors.PyfrontError, match="other.h has no CUDA section"):
        cuda.header_cdef(str(tmp_path / "other.h"))


def test_wheel_build_installs_the_header_beside_the_library(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(build_cuda, "find_nvcc", lambda: "/bin/nvcc")
    monkeypatch.setattr(build_cuda, "build", lambda out_dir, temp_dir: os.path.join(
        out_dir, build_cuda.LIBRARY_NAME))

    class Cmd:
        editable_mode = False
        build_lib = str(tmp_path)

    build_cuda.build_py_hook(Cmd())
    with open(tmp_path / "pyfront" / "include" / "pyfront.h") as f:
        assert f.read() == open(HEADER).read()


def test_exported_symbols_are_the_headers_functions():
    """-fvisibility=hidden plus PF_CUDA_API: the library exports exactly the section's names
    (its pf_fail and pf_check_* must not interpose on the C library's)."""
    path = cuda.library_path()
    if not os.path.exists(path) or shutil.which("nm") is None:
        pytest.skip("libpyfront_cuda.so is not built here, or no nm: %s" % path)
    out = subprocess.run(["nm", "-D", "--defined-only", path], capture_output=True,
                         text=True).stdout
    exported = {line.split()[-1] for line in out.splitlines() if " T " in line}
    assert {n for n in exported if n.startswith("pf_")} == set(_header_functions())


def test_library_abi_version_matches_the_header():
    version = re.search(r"#define PF_CUDA_ABI_VERSION (\d+)", open(HEADER).read()).group(1)
    assert int(version) == cuda.ABI_VERSION


def _load_library():
    path = cuda.library_path()
    if not os.path.exists(path):
        pytest.skip("libpyfront_cuda.so is not built here (no nvcc at install time): %s" % path)
    import cffi

    ffi = cffi.FFI()
    ffi.cdef(cuda.header_cdef(HEADER))
    return ffi, ffi.dlopen(path)


def test_cuda_kernel_table_is_the_c_tables_names():
    from pyfront.backend import cpu

    ffi, lib = _load_library()
    names = [ffi.string(lib.pf_cuda_kernel_name(i)).decode()
             for i in range(lib.pf_cuda_kernel_count())]
    assert len(names) == len(set(names))
    missing = [n for n in names if cpu.lib.pf_kernel_lookup(n.encode()) < 0]
    assert not missing, "CUDA kernels without a C twin: %s" % missing
    assert {"unary", "binary", "fused", "reduce", "softmax", "cross_entropy", "copy", "take",
            "gemm", "linear", "sgd_update", "adam_update", "dropout", "conv", "conv_grad_input",
            "conv_grad_weight", "max_pool", "avg_pool_grad", "layer_norm", "batch_norm_train",
            "batch_norm_grad", "pad", "cumulate", "sort", "rmsprop_update", "lstm", "lstm_grad",
            "gru", "gru_grad", "simple_rnn", "simple_rnn_grad"} <= set(names)
    assert lib.pf_cuda_kernel_lookup(b"no_such_kernel") == -1


def test_every_c_kernel_has_a_cuda_twin():
    """Every op the CPU library runs exists on the GPU: a kernel added to the C table needs its
    twin in native/cuda (same name, same arguments) before GPU tensors can take that op."""
    from pyfront.backend import cpu

    ffi, lib = _load_library()
    names = {ffi.string(lib.pf_cuda_kernel_name(i)).decode()
             for i in range(lib.pf_cuda_kernel_count())}
    c_names = {cpu.ffi.string(cpu.lib.pf_kernel_name(i)).decode()
               for i in range(cpu.lib.pf_kernel_count())} - set(cpu._registered)   # users' own
    assert not sorted(c_names - names), "C kernels without a CUDA twin: %s" % sorted(
        c_names - names)


def test_library_reports_a_missing_driver_or_device_as_a_status():
    ffi, lib = _load_library()
    count = ffi.new("int *")
    status = lib.pf_cuda_device_count(count)
    if status == 0 and count[0] > 0:
        pytest.skip("a GPU is present: the no-driver path cannot be seen here")
    if status != 0:
        message = ffi.string(lib.pf_cuda_last_error()).decode()
        assert message.startswith("counting CUDA devices: CUDA error cudaError"), message
        assert count[0] == 0


def test_run_without_a_gpu_is_an_argument_error_not_a_crash():
    """Argument checks come before any CUDA call, so a bad call fails cleanly even here."""
    from pyfront.backend import cpu

    ffi, lib = _load_library()
    kid = lib.pf_cuda_kernel_lookup(b"unary")
    args, keep = cpu.new_args([], [], iattr=(0,))
    assert lib.pf_cuda_run(kid, args) == cpu.lib.PF_ERR_ARGUMENT
    assert ffi.string(lib.pf_cuda_last_error()).decode() == \
        "kernel 'unary' (CUDA): expected 1..1 inputs, got 0"
    assert lib.pf_cuda_run(10 ** 6, args) == cpu.lib.PF_ERR_UNKNOWN_KERNEL
    assert ffi.string(lib.pf_cuda_last_error()).decode() == "no CUDA kernel with id 1000000"
    del keep
