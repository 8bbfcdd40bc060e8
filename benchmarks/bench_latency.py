"""Single-sample latency of the compiled MLP 784-512-512-10 (issue 12, item 3), in one run at
1 and 2 threads: pyfront's compiled call (run_numpy) against PyTorch (inference_mode) and ONNX
Runtime (CPU provider, the same weights through pf.onnx.export), timed in alternating rounds so
the machine's load falls on all three alike; and the weight bandwidth each call achieves beside
the bandwidth limit measured here.

    python benchmarks/bench_latency.py [--quick]

Goals: at most 0.4x PyTorch's p50 at 1 thread, 0.25x at 2 threads; at most 0.5x ONNX Runtime's
at 2 threads.

The limit: a call reads the 2.7 MB of weights once, so its floor is that read. It is measured
as numpy's (OpenBLAS) single-threaded matrix-vector product over the same bytes, repeated so
they stay cached: all of it on one core (1 thread), half of it per core times two (2 threads:
each core keeps its half in its own L2).
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

import pyfront as pf  # noqa: E402

SIZES = (784, 512, 512, 10)
GOALS = {(1, "PyTorch"): 0.4, (2, "PyTorch"): 0.25, (2, "ONNX Runtime"): 0.5}


def weight_bytes():
    return 4 * sum(a * b + b for a, b in zip(SIZES, SIZES[1:]))


def alternating(fns, rounds, calls):
    """p50 (us) of each fn: rounds of `calls` calls each, the fns taking turns per round, each
    round common.SETTLE after the one before."""
    times = [[] for _ in fns]
    for fn in fns:
        for _ in range(50):
            fn()
    for _ in range(rounds):
        for fn, out in zip(fns, times):
            common.settle(fn)
            for _ in range(calls):
                t = time.perf_counter_ns()
                fn()
                out.append(time.perf_counter_ns() - t)
    return [sorted(t)[len(t) // 2] / 1e3 for t in times]


def bandwidth_limit(threads):
    """GB/s of numpy's single-threaded sgemv over 1/threads of the weights, times threads."""
    common.set_numpy_threads(1)
    rows = weight_bytes() // 4 // threads // 784
    w = np.random.default_rng(0).standard_normal((rows, 784)).astype(np.float32)
    x = np.ones(784, np.float32)
    (p50,) = alternating([lambda: np.dot(w, x)], 5, 200)
    return threads * w.nbytes / (p50 * 1e3)


def run(threads, quick, onnx_path, model):
    import onnxruntime
    import torch

    common.set_threads(threads)
    x = np.random.default_rng(1).standard_normal((1, SIZES[0])).astype(np.float32)
    fast = pf.jit(model)
    tm = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(),
                             torch.nn.Linear(512, 512), torch.nn.ReLU(),
                             torch.nn.Linear(512, 10)).eval()
    layers = [layer for layer in model.layers if hasattr(layer, "kernel")]
    with torch.no_grad():
        for tl, pl in zip([tm[0], tm[2], tm[4]], layers):
            tl.weight.copy_(torch.from_numpy(pl.kernel.numpy().T.copy()))
            tl.bias.copy_(torch.from_numpy(pl.bias.numpy()))
    tx = torch.from_numpy(x)
    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    session = onnxruntime.InferenceSession(onnx_path, opts, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: x}
    ours = fast.run_numpy(x)
    with torch.inference_mode():
        theirs = tm(tx).numpy()
    ort = session.run(None, feed)[0]
    diff = max(float(np.max(np.abs(ours - theirs))), float(np.max(np.abs(ours - ort))))
    if diff > 1e-3:
        raise AssertionError("the three runtimes disagree by %g on the same weights" % diff)

    def torch_call():
        with torch.inference_mode():
            tm(tx)

    rounds, calls = (10, 100) if quick else (30, 200)
    t_ours, t_torch, t_ort = alternating(
        [lambda: fast.run_numpy(x), torch_call, lambda: session.run(None, feed)], rounds, calls)
    achieved = weight_bytes() / (t_ours * 1e3)
    limit = bandwidth_limit(threads)
    rows = []
    for ref_name, t_ref in (("PyTorch", t_torch), ("ONNX Runtime", t_ort)):
        goal = GOALS.get((threads, ref_name))
        rows.append(common.row(
            "MLP single-sample latency p50, compiled, %d thread(s), vs %s" % (threads, ref_name),
            t_ours, "us", t_ref, t_ours / t_ref, goal, higher_is_better=False,
            note="reference: %s %s%s" % (
                ref_name, "inference_mode" if ref_name == "PyTorch" else "CPU provider",
                "; no goal at this thread count" if goal is None else "")))
    rows.append(common.row(
        "MLP single-sample weight bandwidth, compiled, %d thread(s)" % threads, achieved, "GB/s",
        limit, achieved / limit,
        note="%.2f MB of weights per call; reference: the limit measured here (numpy sgemv "
             "over the same bytes, cached, %s)" % (weight_bytes() / 1e6,
                                                   "one core" if threads == 1 else
                                                   "half per core, times 2")))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls (noisier)")
    args = parser.parse_args(argv)
    pf.random.seed(0)
    model = pf.nn.Sequential([pf.nn.Dense(512, activation="relu"),
                              pf.nn.Dense(512, activation="relu"), pf.nn.Dense(10)])
    model(pf.tensor(np.zeros((1, SIZES[0]), np.float32)))
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-latency-") as tmp:
        onnx_path = pf.onnx.export(model, os.path.join(tmp, "mlp.onnx"),
                                   input_shapes=[(1, SIZES[0])])
        for threads in (1, 2):
            rows.extend(run(threads, args.quick, onnx_path, model))
    import onnxruntime

    meta = dict(common.machine(), onnxruntime=onnxruntime.__version__)
    common.write("latency", rows, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
