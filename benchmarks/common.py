"""Shared benchmark plumbing: timing (medians of repeats), thread settings for every framework
in the process, results as JSON plus a printed table with each goal met or not."""
import json
import os
import statistics
import sys
import time

RESULTS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")

# Seconds between one framework's timed block and the next framework's, where benchmarks
# alternate them in one process. Idle pool threads spin after a call before they sleep:
# PyTorch's libgomp workers about 10 ms (measured here from their CPU time), ONNX Runtime's
# about 50 ms, pyfront's 1 ms. Timed right after the other's block, a two-thread run shares
# its second core with that spin: pyfront's two-thread CNN inference ran at 3.2x PyTorch right
# after PyTorch's blocks and 4.5x 5 ms later, PyTorch's own rate unchanged. A user runs one
# framework, so neither is timed beside the other's idle threads.
SETTLE = 0.08


def settle(fn, warm_s=0.005):
    """Sleep SETTLE, then call fn untimed for warm_s (at least once): the pause leaves caches
    and threads cold (other tenants' work runs on an idle vCPU), and the timed block that
    follows should start warm, as a busy service or training loop does."""
    time.sleep(SETTLE)
    end = time.perf_counter() + warm_s
    fn()
    while time.perf_counter() < end:
        fn()


def set_threads(n):
    """One thread count for pyfront, PyTorch (if loaded) and numpy's own BLAS (the
    reference for GEMM). pyfront's own OpenBLAS stays single-threaded inside its pool."""
    import pyfront as pf

    pf.set_num_threads(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    set_numpy_threads(n)


def set_numpy_threads(n):
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        return
    import pyfront as pf

    ours = pf.blas_info()
    for lib in ThreadpoolController().lib_controllers:
        if lib.filepath not in ours:
            lib.set_num_threads(n)


def median_rate(fn, items_per_call, calls=20, repeats=5, warmup=3):
    """Median over repeats of items/s, each repeat timing `calls` calls of fn."""
    for _ in range(warmup):
        fn()
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        rates.append(items_per_call * calls / (time.perf_counter() - t))
    return statistics.median(rates)


def latencies(fn, n=2000, warmup=200):
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t = time.perf_counter_ns()
        fn()
        out.append(time.perf_counter_ns() - t)
    out.sort()
    return {"p50_us": out[len(out) // 2] / 1e3, "p99_us": out[int(len(out) * 0.99)] / 1e3}


def row(name, value, unit, reference=None, ratio=None, goal=None, higher_is_better=True,
        note=""):
    """One result. ratio is ours relative to the reference (>1 is better when
    higher_is_better); goal is the ratio to reach."""
    met = None
    if goal is not None and ratio is not None:
        met = ratio >= goal if higher_is_better else ratio <= goal
    return {"name": name, "value": value, "unit": unit, "reference": reference,
            "ratio": ratio, "goal": goal, "higher_is_better": higher_is_better, "met": met,
            "note": note}


def write(name, rows, meta=None):
    os.makedirs(RESULTS, exist_ok=True)
    path = os.path.join(RESULTS, name + ".json")
    with open(path, "w") as f:
        json.dump({"benchmark": name, "meta": meta or machine(), "results": rows}, f, indent=2)
    print_table(name, rows)
    print("(written to %s)" % path)
    return path


def machine():
    import platform

    info = {"python": platform.python_version(), "cpus": os.cpu_count(),
            "time": time.strftime("%Y-%m-%d %H:%M:%S")}
    try:
        info["load_average"] = os.getloadavg()
    except OSError:
        pass
    try:
        import pyfront as pf

        info["blas"] = pf.blas_info()
    except Exception:  # noqa: BLE001 (informational only)
        pass
    return info


def _fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return "%.4g" % v
    return str(v)


def print_table(name, rows):
    print("\n== %s ==" % name)
    header = ("result", "value", "unit", "reference", "ratio", "goal", "met")
    lines = [header]
    for r in rows:
        goal = None if r["goal"] is None else ("%s%s" % (">=" if r["higher_is_better"] else "<=",
                                                          _fmt(r["goal"])))
        met = {True: "yes", False: "NO", None: "-"}[r["met"]]
        lines.append((r["name"], _fmt(r["value"]), r["unit"], _fmt(r["reference"]),
                      _fmt(r["ratio"]), goal or "-", met))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(str(c).ljust(w) for c, w in zip(line, widths)))
    for r in rows:
        if r["note"]:
            print("  note (%s): %s" % (r["name"], r["note"]))


def peak_rss_mib(code):
    """Peak resident memory (MiB) of a fresh interpreter running `code`. VmHWM, not
    ru_maxrss: Linux carries ru_maxrss over fork+exec from the (big) parent process. Code that
    sets RSS_BASE_MIB gets the peak above it (see bench_memory.py)."""
    import subprocess

    probe = code + ("\nhwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]"
                    "\nprint('VMHWM', int(hwm.split()[1]) / 1024"
                    " - globals().get('RSS_BASE_MIB', 0))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True)
    return float(out.stdout.rsplit("VMHWM", 1)[1].split()[0])
