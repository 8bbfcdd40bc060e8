"""Serving an imported ONNX model: pyfront (pf.onnx.load, compiled) against ONNX Runtime's CPU
execution provider on the same file, in one run.

Models: the reference CNN (benchmarks/bench_cnn.py) and the reference MLP
(examples/train_digits.py: 64 -> 128 -> 64 -> 10), built by PyTorch with random weights and
exported by torch.onnx (opset 17, batch dynamic). Batch 1 and 128, 1 and 2 threads (ONNX
Runtime's intra-op threads = pyfront's threads). Timings alternate between the two runtimes
repeat by repeat; the ratio is the median of per-repeat ratios (ONNX Runtime's time over
pyfront's: above 1, pyfront is faster). Each timed block starts common.SETTLE seconds after the
other runtime's: ONNX Runtime's idle intra-op threads spin for about 50 ms after a call
(measured here from their CPU time), and on two cores a spinning thread of one runtime halved
the other's two-thread speed (pyfront's batch-128 CNN: 3.3 ms alone, 5-6.6 ms right after ONNX
Runtime). A service runs one of the two, so neither is timed beside the other's spinning
threads.

    python benchmarks/bench_onnx.py [--quick]
"""
import argparse
import io
import os
import sys
import time
import warnings

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402
from bench_cnn import paired, torch_model  # noqa: E402

import pyfront as pf  # noqa: E402
import pyfront.onnx  # noqa: E402,F401

GOAL = 1.0          # pyfront's throughput over ONNX Runtime's


def torch_mlp():
    import torch.nn as tnn

    return tnn.Sequential(tnn.Linear(64, 128), tnn.ReLU(), tnn.Linear(128, 64), tnn.ReLU(),
                          tnn.Linear(64, 10))


MODELS = {"CNN": (torch_model, (1, 28, 28)), "MLP": (torch_mlp, (64,))}


def onnx_bytes(make, shape):
    import torch

    torch.manual_seed(0)
    net = make().eval()
    f = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.randn((2,) + shape),), f, dynamo=False,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                          opset_version=17)
    return f.getvalue()


def ort_session(data, threads):
    import onnxruntime

    opts = onnxruntime.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
    return onnxruntime.InferenceSession(data, opts, providers=["CPUExecutionProvider"])


def _calls_per_repeat(ours, theirs, seconds):
    """Calls that take about `seconds` for the slower runtime: a repeat long enough that the
    timer and one scheduler hiccup do not decide the ratio (a batch-128 MLP call is ~50 us)."""
    slowest = 0.0
    for fn in (ours, theirs):
        fn()
        t = time.perf_counter()
        fn()
        slowest = max(slowest, time.perf_counter() - t)
    return max(3, int(seconds / max(slowest, 1e-6)))


def run(threads, quick):
    common.set_threads(threads)
    rows = []
    for name, (make, shape) in MODELS.items():
        data = onnx_bytes(make, shape)
        session = ort_session(data, threads)
        compiled = pf.jit(pf.onnx.load(data))
        for batch in (1, 128):
            x = np.random.default_rng(batch).standard_normal((batch,) + shape).astype(np.float32)
            ours = compiled.run_numpy(x)
            ours = ours[0] if isinstance(ours, (list, tuple)) else ours
            theirs = session.run(None, {"input": x})[0]
            diff = float(np.max(np.abs(np.asarray(ours) - theirs)))
            calls = _calls_per_repeat(lambda: compiled.run_numpy(x),
                                      lambda: session.run(None, {"input": x}),
                                      0.01 if quick else 0.05)
            repeats = 5 if quick else 11
            t_ours, t_ref, ratio, _ = paired(lambda: compiled.run_numpy(x),
                                             lambda: session.run(None, {"input": x}),
                                             calls, repeats)
            rows.append(common.row(
                "%s inference, batch %d, %d thread(s)" % (name, batch, threads),
                batch / t_ours, "items/s", batch / t_ref, ratio, GOAL,
                note="%.1f us vs ONNX Runtime %.1f us per call; largest difference %.2g"
                     % (t_ours * 1e6, t_ref * 1e6, diff)))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (noisier)")
    args = parser.parse_args(argv)
    rows = []
    for threads in (1, 2):
        rows.extend(run(threads, args.quick))
    meta = common.machine()
    import onnxruntime

    meta["onnxruntime"] = onnxruntime.__version__
    common.write("onnx", rows, meta)
    return 0


if __name__ == "__main__":
    sys.exit(main())
