"""pyfront on an NVIDIA GPU against PyTorch CUDA eager, same GPU, same run (TF32 off on both:
float32 GEMMs are exact float32). Without a GPU it says why and writes an empty result.

    python benchmarks/bench_cuda.py [--quick] [--json PATH]

Results: GEMM 4096^3 float32 (pf.matmul vs torch.matmul, goal >= 0.95x); the MLP 784-512-512-10
training step at batch 128 -- pyfront eager (goal >= 1.0x torch eager), and the same step as a
plan of CUDA kernels run by one native call and replayed from a captured CUDA graph (goal >=
1.5x); single-sample MLP inference latency from a captured graph (goal <= 0.5x torch eager);
the CPU benchmarks' CNN and LSTM regressor (bench_cnn.py's and bench_lstm.py's definitions)
trained eagerly at batch 128.
"""
import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import common  # noqa: E402

import bench_cnn  # noqa: E402  (the CNN's definitions, shared with the CPU benchmark)
import bench_lstm  # noqa: E402  (the LSTM regressor's sizes, shared with the CPU benchmark)
import pyfront as pf  # noqa: E402
from pyfront.backend import cuda  # noqa: E402

SIZES = (784, 512, 512, 10)
BATCH = 128


def gpu_rate(fn, items, sync, calls, repeats=5, warmup=3):
    """Median items/s over repeats of `calls` calls, the GPU drained before and after."""
    for _ in range(warmup):
        fn()
    sync()
    rates = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        sync()
        rates.append(items * calls / (time.perf_counter() - t))
    return float(np.median(rates))


def gpu_latency_us(fn, sync, n=500, warmup=50):
    for _ in range(warmup):
        fn()
        sync()
    out = []
    for _ in range(n):
        t = time.perf_counter_ns()
        fn()
        sync()
        out.append(time.perf_counter_ns() - t)
    return float(np.median(out)) / 1e3


def _init(rng):
    params = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        params += [rng.uniform(-limit, limit, (fan_in, fan_out)).astype(np.float32),
                   np.zeros(fan_out, np.float32)]
    return params


def mlp_plan(cupy, params, batch, train):
    """The MLP's step as CUDA kernel steps: forward (linear with fused bias and ReLU), and for
    training cross-entropy, its gradient, the backward GEMMs, bias sums, ReLU gradients and SGD
    updates. Returns (plan, device arrays by name)."""
    dev = {"x": cupy.asarray(np.random.default_rng(0).random((batch, SIZES[0]), np.float32)),
           "y": cupy.asarray(np.arange(batch, dtype=np.int64) % 10),
           "ones": cupy.ones(1, cupy.float32), "loss": cupy.zeros(1, cupy.float32),
           "hyper": cupy.asarray(np.array([0.01, 1.0]))}
    for i, p in enumerate(params):
        dev["p%d" % i] = cupy.asarray(p)
    plan = cuda.Plan()
    d = plan.desc
    acts = [dev["x"]]
    n_layers = len(SIZES) - 1
    for i in range(n_layers):
        out = cupy.empty((batch, SIZES[i + 1]), cupy.float32)
        relu = i < n_layers - 1
        plan.add("linear", [d(acts[-1]), d(dev["p%d" % (2 * i)]), d(dev["p%d" % (2 * i + 1)])],
                 [d(out)], (1 if relu else 0,))
        acts.append(out)
    dev["out"] = acts[-1]
    if not train:
        return plan, dev
    plan.add("cross_entropy", [d(acts[-1]), d(dev["y"])], [d(dev["loss"])], (1, -100))
    grad = cupy.empty_like(acts[-1])
    plan.add("cross_entropy_grad", [d(acts[-1]), d(dev["y"]), d(dev["ones"])], [d(grad)],
             (1, -100))
    updates = []
    for i in reversed(range(n_layers)):
        w, b = dev["p%d" % (2 * i)], dev["p%d" % (2 * i + 1)]
        dw, db = cupy.empty_like(w), cupy.empty_like(b)
        plan.add("gemm", [d(acts[i]), d(grad)], [d(dw)], (1, 0))
        plan.add("reduce", [d(grad, (1,) + grad.shape, (grad.size,) + (grad.shape[1], 1))],
                 [d(db)], (0,))
        updates += [(dw, w), (db, b)]
        if i > 0:
            dh = cupy.empty_like(acts[i])
            plan.add("gemm", [d(grad), d(w)], [d(dh)], (0, 1))
            da = cupy.empty_like(acts[i])
            plan.add("unary_grad", [d(acts[i]), d(dh)], [d(da)], (0,))   # ReLU, from its output
            grad = da
    for g, p in updates:
        plan.add("sgd_update", [d(g), d(dev["hyper"])], [d(p)], (0,), (0.0, 0.0, 0.0))
    return plan, dev


def bench_pyfront(cupy, quick):
    rows = {}
    sync = pf.cuda.synchronize
    calls = 5 if quick else 20
    a = pf.tensor(np.random.default_rng(1).random((4096, 4096), np.float32), device="cuda")
    b = pf.tensor(np.random.default_rng(2).random((4096, 4096), np.float32), device="cuda")
    rows["gemm_f32"] = gpu_rate(lambda: pf.matmul(a, b), 2 * 4096 ** 3 / 1e12, sync, calls)

    rng = np.random.default_rng(3)
    init = _init(rng)
    params = [pf.tensor(p, device="cuda", requires_grad=True) for p in init]
    x = pf.tensor(rng.random((BATCH, SIZES[0]), np.float32), device="cuda")
    y = pf.tensor(np.arange(BATCH) % 10, device="cuda")

    def eager_step():
        h = x
        for i in range(0, len(params) - 2, 2):
            h = pf.linear(h, params[i], params[i + 1], activation="relu")
        loss = pf.cross_entropy(pf.linear(h, params[-2], params[-1]), y)
        with pf.no_grad():
            for p, g in zip(params, pf.grad(loss, params)):
                p._data -= 0.01 * g._data

    steps = 20 if quick else 100
    rows["mlp_eager"] = gpu_rate(eager_step, BATCH, sync, steps)
    rows["cnn_eager"] = gpu_rate(_cnn_step(), BATCH, sync, 5 if quick else 20)
    rows["lstm_eager"] = gpu_rate(_lstm_step(), BATCH, sync, 5 if quick else 20)
    stream = cupy.cuda.Stream(non_blocking=True)
    with stream:
        plan, _ = mlp_plan(cupy, init, BATCH, train=True)
        rows["mlp_plan"] = gpu_rate(plan.run, BATCH, sync, steps)
        graph = plan.capture()
        rows["mlp_graph"] = gpu_rate(graph.launch, BATCH, sync, steps)
        graph.close()
        infer, _ = mlp_plan(cupy, init, 1, train=False)
        graph = infer.capture()
        rows["infer_graph_us"] = gpu_latency_us(graph.launch, stream.synchronize,
                                                n=100 if quick else 500)
        graph.close()
    return rows


def _cnn_step():
    """One eager training step of bench_cnn's model on the GPU (plain SGD on the arrays)."""
    rng = np.random.default_rng(4)
    x = rng.random((BATCH, 1, 28, 28), np.float32)
    model = bench_cnn.pyfront_model()
    model(pf.tensor(x[:1]))           # parameters take their shapes from a first input
    model.to("cuda")
    params = list(model.parameters())
    xd = pf.tensor(x, device="cuda")
    yd = pf.tensor(np.arange(BATCH) % 10, device="cuda")

    def step():
        loss = pf.cross_entropy(model(xd), yd)
        with pf.no_grad():
            for p, g in zip(params, pf.grad(loss, params)):
                p._data -= 0.01 * g._data

    return step


def _lstm_data():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((BATCH, bench_lstm.STEPS, bench_lstm.FEATURES)).astype(np.float32)
    return x, (x[:, -4:, :2].sum(axis=(1, 2)) * 0.25).astype(np.float32).reshape(BATCH, 1)


def _lstm_step():
    """One eager training step of bench_lstm's regressor (LSTM, Dense(1), MSE) on the GPU."""
    x, y = _lstm_data()
    model = pf.nn.Sequential([pf.nn.LSTM(bench_lstm.UNITS), pf.nn.Dense(1)])
    model(pf.tensor(x[:1]))
    model.to("cuda")
    params = list(model.parameters())
    xd, yd = pf.tensor(x, device="cuda"), pf.tensor(y, device="cuda")

    def step():
        loss = pf.mse(model(xd), yd)
        with pf.no_grad():
            for p, g in zip(params, pf.grad(loss, params)):
                p._data -= 0.01 * g._data

    return step


def bench_torch(quick):
    import torch

    if not torch.cuda.is_available():
        return None, "PyTorch has no CUDA here (%s): no reference" % torch.__version__
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    dev = torch.device("cuda")
    sync = torch.cuda.synchronize
    calls = 5 if quick else 20
    rows = {}
    a = torch.rand(4096, 4096, device=dev)
    b = torch.rand(4096, 4096, device=dev)
    rows["gemm_f32"] = gpu_rate(lambda: torch.matmul(a, b), 2 * 4096 ** 3 / 1e12, sync, calls)
    a16, b16 = a.bfloat16(), b.bfloat16()
    rows["gemm_bf16"] = gpu_rate(lambda: torch.matmul(a16, b16), 2 * 4096 ** 3 / 1e12, sync,
                                 calls)
    layers = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        layers += [torch.nn.Linear(fan_in, fan_out), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1]).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    x = torch.rand(BATCH, SIZES[0], device=dev)
    y = torch.arange(BATCH, device=dev) % 10

    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    rows["mlp_eager"] = gpu_rate(step, BATCH, sync, 20 if quick else 100)
    cnn = bench_cnn.torch_model().to(dev)
    cnn_opt = torch.optim.SGD(cnn.parameters(), lr=0.01)
    images = torch.rand(BATCH, 1, 28, 28, device=dev)

    def cnn_step():
        cnn_opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(cnn(images), y).backward()
        cnn_opt.step()

    rows["cnn_eager"] = gpu_rate(cnn_step, BATCH, sync, 5 if quick else 20)
    lstm = torch.nn.LSTM(bench_lstm.FEATURES, bench_lstm.UNITS, batch_first=True).to(dev)
    dense = torch.nn.Linear(bench_lstm.UNITS, 1).to(dev)
    lstm_opt = torch.optim.SGD(list(lstm.parameters()) + list(dense.parameters()), lr=0.01)
    seqs, targets = (torch.from_numpy(a).to(dev) for a in _lstm_data())

    def lstm_step():
        lstm_opt.zero_grad(set_to_none=True)
        out, _ = lstm(seqs)
        torch.nn.functional.mse_loss(dense(out[:, -1]), targets).backward()
        lstm_opt.step()

    rows["lstm_eager"] = gpu_rate(lstm_step, BATCH, sync, 5 if quick else 20)
    one = torch.rand(1, SIZES[0], device=dev)
    with torch.no_grad():
        rows["infer_us"] = gpu_latency_us(lambda: model(one), sync, n=100 if quick else 500)
    return rows, "torch %s, CUDA %s" % (torch.__version__, torch.version.cuda)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", help="also write the results here (ci/gpu-check.sh: $OUT)")
    args = parser.parse_args(argv)
    meta = common.machine()
    if not pf.cuda.is_available():
        meta["skipped"] = "no GPU is usable: %s" % pf.cuda.why_not()
        print("bench_cuda: skipped (%s)" % meta["skipped"])
        rows = []
    else:
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(0)
        meta["gpu"] = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        meta["driver"] = cupy.cuda.runtime.driverGetVersion()
        meta["tf32"] = "off (pyfront and torch)"
        ours = bench_pyfront(cupy, args.quick)
        try:
            theirs, meta["reference"] = bench_torch(args.quick)
        except ImportError:
            theirs, meta["reference"] = None, "PyTorch is not installed: no reference"
        rows = _rows(ours, theirs or {})
    path = common.write("cuda", rows, meta)
    if args.json:
        with open(path) as f, open(args.json, "w") as out:
            out.write(f.read())
    return 0


def _rows(ours, theirs):
    def ratio(a, b, inverse=False):
        if a is None or b is None:
            return None
        return b / a if inverse else a / b

    row = common.row
    return [
        row("GEMM 4096^3 float32", ours["gemm_f32"], "TFLOP/s", theirs.get("gemm_f32"),
            ratio(ours["gemm_f32"], theirs.get("gemm_f32")), 0.95),
        row("GEMM 4096^3 bfloat16", None, "TFLOP/s", theirs.get("gemm_bf16"), None, 0.95,
            note="pyfront has no bfloat16 tensors yet"),
        row("MLP train step, eager", ours["mlp_eager"], "samples/s", theirs.get("mlp_eager"),
            ratio(ours["mlp_eager"], theirs.get("mlp_eager")), 1.0),
        row("MLP train step, plan (one call)", ours["mlp_plan"], "samples/s",
            theirs.get("mlp_eager"), ratio(ours["mlp_plan"], theirs.get("mlp_eager")), None,
            note="hand-built kernel plan; the graph compiler does not emit CUDA plans yet"),
        row("MLP train step, CUDA graph", ours["mlp_graph"], "samples/s",
            theirs.get("mlp_eager"), ratio(ours["mlp_graph"], theirs.get("mlp_eager")), 1.5,
            note="hand-built kernel plan replayed from one captured graph"),
        row("MLP inference, 1 sample, CUDA graph", ours["infer_graph_us"], "us",
            theirs.get("infer_us"), ratio(ours["infer_graph_us"], theirs.get("infer_us")), 0.5,
            higher_is_better=False),
        row("CNN train step, eager", ours["cnn_eager"], "images/s", theirs.get("cnn_eager"),
            ratio(ours["cnn_eager"], theirs.get("cnn_eager")), 1.0,
            note="direct convolution kernels (cuDNN not bound yet) against torch's cuDNN"),
        row("LSTM train step, eager", ours["lstm_eager"], "sequences/s",
            theirs.get("lstm_eager"), ratio(ours["lstm_eager"], theirs.get("lstm_eager")), 1.0,
            note="pyfront's own sequence kernels (cuDNN's RNN not bound) against torch's cuDNN"),
    ]


if __name__ == "__main__":
    sys.exit(main())
