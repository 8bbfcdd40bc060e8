#!/usr/bin/env bash
# ci/gpu-check.sh -- verify pyfront's CUDA backend on a machine with one NVIDIA GPU, in a few
# minutes and without network: the GPU tests (tests/cuda: every CUDA kernel against the CPU
# backend with NaN-poisoned outputs, the registry-wide op contract on the GPU, digits training,
# CUDA-graph replay bit for bit, errors naming the kernel) and the GPU benchmark
# (benchmarks/bench_cuda.py, against PyTorch CUDA).
#
# Results go to $OUT when it is set (else ./gpu-check-out): junit-cuda.xml, pytest.txt,
# bench_cuda.json, bench.txt, environment.txt. Exit status: pytest's (0 when all passed).
#
# What it needs, all local (the machine has no network):
#   - python3 with numpy, cffi, setuptools and pytest (scikit-learn for the digits tests;
#     torch with CUDA for the benchmark's reference -- both optional, their results skip);
#   - an NVIDIA driver for CUDA 13 (580 or later): the library is built with CUDA 13;
#   - CuPy for CUDA 13 (cupy-cuda13x) and cuBLAS (the nvidia-cublas wheel): installed already,
#     or as wheel files in $WHEELS (pip install --no-index --find-links "$WHEELS");
#   - pyfront's libraries: pyfront/_native.abi3.so and pyfront/libpyfront_cuda.so carried
#     from a build machine (run(carry=["pyfront/_native.abi3.so",
#     "pyfront/libpyfront_cuda.so"])), or nvcc (CUDA 13) and a C compiler to build them here
#     (for this GPU's architecture only, to stay within the time: a minute or two on 16 cores).
# Time: tests at most 300 s, benchmark at most 130 s: under 8 minutes with the libraries
# carried.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
OUT="${OUT:-$PWD/gpu-check-out}"
mkdir -p "$OUT"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
start=$(date +%s)

say() { echo "gpu-check: $*" | tee -a "$OUT/environment.txt"; }
: > "$OUT/environment.txt"

{ nvidia-smi || echo "nvidia-smi: not found"; } >> "$OUT/environment.txt" 2>&1
say "python: $("$PYTHON" --version 2>&1); nvcc: $(command -v nvcc || echo none)"

if [ -n "${WHEELS:-}" ]; then
    for pkg in cupy-cuda13x nvidia-cublas; do
        "$PYTHON" -m pip install --quiet --no-index --find-links "$WHEELS" "$pkg" \
            >> "$OUT/environment.txt" 2>&1 || say "$pkg: not in $WHEELS"
    done
fi

if [ ! -e pyfront/_native.abi3.so ] || [ ! -e pyfront/libpyfront_cuda.so ]; then
    # only this GPU's architecture (nvidia-smi's compute capability, "9.0" -> "90")
    arch=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 |
           tr -d ' .')
    export PYFRONT_CUDA_ARCHS="${PYFRONT_CUDA_ARCHS:-$arch}"
    say "building pyfront's native libraries here (not carried; sm_${PYFRONT_CUDA_ARCHS:-all})"
    if ! "$PYTHON" -m pip install --quiet --no-index --no-deps --no-build-isolation -e . \
            >> "$OUT/environment.txt" 2>&1; then
        say "the build failed (see environment.txt): carry the libraries or install nvcc"
        exit 3
    fi
fi

if ! "$PYTHON" - <<'PY' 2>&1 | tee -a "$OUT/environment.txt"
import sys
import pyfront as pf
if not pf.cuda.is_available():
    print("gpu-check: pyfront cannot use the GPU:", pf.cuda.why_not())
    sys.exit(1)
import cupy
props = cupy.cuda.runtime.getDeviceProperties(0)
print("gpu-check: %d device(s); %s; driver %d; CuPy %s; kernels: %s" % (
    pf.cuda.device_count(), props["name"], cupy.cuda.runtime.driverGetVersion(),
    cupy.__version__, " ".join(pf.backend.cuda.kernel_names())))
PY
then
    say "stopping: every GPU test would only skip"
    exit 2
fi

# The .cu compile checks run in CI (tests/cuda/test_build.py, no GPU needed): not repeated here.
timeout 300 "$PYTHON" -m pytest tests/cuda -q -rs -k "not compiles" \
    --junitxml="$OUT/junit-cuda.xml" 2>&1 | tee "$OUT/pytest.txt"
status=${PIPESTATUS[0]}
say "tests: exit status $status after $(( $(date +%s) - start )) s"

timeout 130 "$PYTHON" benchmarks/bench_cuda.py --json "$OUT/bench_cuda.json" 2>&1 |
    tee "$OUT/bench.txt"
say "benchmark: exit status ${PIPESTATUS[0]}; total $(( $(date +%s) - start )) s"
exit "$status"
