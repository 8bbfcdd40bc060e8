"""LSTM regressor training throughput, pyfront against PyTorch in the same run.

Model: LSTM(50) over sequences of 24 steps with 8 features, Dense(1), MSE, Adam, batch 72.
Measures training sequences per second (medians of several repeats) at 1 and 2 threads and
writes benchmarks/results/lstm.json. Run: python benchmarks/bench_lstm.py [--quick] [--repeats R]
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

import pyfront as pf  # noqa: E402

BATCH, STEPS, FEATURES, UNITS = 72, 24, 8, 50
LR = 1e-3


def data(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((BATCH, STEPS, FEATURES)).astype(np.float32)
    y = (x[:, -4:, :2].sum(axis=(1, 2)) * 0.25).astype(np.float32).reshape(BATCH, 1)
    return x, y


# ---- pyfront: the step is a swappable function built by a factory ----

def pyfront_eager_step(model, optimizer):
    """forward, mse, backward, optimizer.step on the eager tape."""
    def step(x, y):
        optimizer.zero_grad()
        loss = pf.mse(model(x), y)
        loss.backward()
        optimizer.step()
        return loss
    return step


def pyfront_compiled_step(model, optimizer):
    """The whole step as one compiled plan (pyfront.train.step.CompiledTrainStep)."""
    from pyfront.train.step import CompiledTrainStep

    train = CompiledTrainStep(model, lambda out, target: pf.mse(out, target), optimizer)

    def step(x, y):
        return train(x, y)[0]
    return step


STEP_FACTORIES = {"eager": pyfront_eager_step, "compiled": pyfront_compiled_step}


def make_pyfront(kind):
    model = pf.nn.Sequential([pf.nn.LSTM(UNITS), pf.nn.Dense(1)])
    x, y = data()
    xt, yt = (pf.tensor(x), pf.tensor(y)) if kind == "eager" else (x, y)
    model(pf.tensor(x[:1]))
    optimizer = pf.optim.Adam(model.parameters(), lr=LR)
    step = STEP_FACTORIES[kind](model, optimizer)
    return lambda: step(xt, yt)


# ---- PyTorch ----

def make_torch():
    import torch

    class Regressor(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = torch.nn.LSTM(FEATURES, UNITS, batch_first=True)
            self.dense = torch.nn.Linear(UNITS, 1)

        def forward(self, x):
            out, _ = self.lstm(x)
            return self.dense(out[:, -1])

    model = Regressor()
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    x, y = (torch.from_numpy(a) for a in data())

    def step():
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        return loss
    return step


def set_threads(n):
    import torch

    torch.set_num_threads(n)
    pf.set_num_threads(n)


def time_steps(step, steps):
    """(wall seconds, CPU seconds of this thread) per step."""
    t0, c0 = time.perf_counter(), time.thread_time()
    for _ in range(steps):
        step()
    return (time.perf_counter() - t0) / steps, (time.thread_time() - c0) / steps


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--steps", type=int, default=40, help="training steps per timed repeat")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--modes", default="eager,compiled", help="pyfront step kinds to time")
    ap.add_argument("--quick", action="store_true", help="fewer repeats (noisier)")
    args = ap.parse_args()
    if args.quick:
        args.repeats, args.steps = 3, 15
    import torch

    modes = [m for m in args.modes.split(",") if m]
    results = []
    for threads in (int(t) for t in args.threads.split(",")):
        set_threads(threads)
        runners = {"torch": make_torch()}
        for mode in modes:
            runners["pyfront_" + mode] = make_pyfront(mode)
        for run in runners.values():       # warm-up: allocations, plans, thread pools
            time_steps(run, 10)
        times = {name: [] for name in runners}
        cpu = {name: [] for name in runners}
        for _ in range(args.repeats):      # interleaved, so load changes hit every runner
            for name, run in runners.items():
                common.settle(lambda: time_steps(run, 1))
                wall, used = time_steps(run, args.steps)
                times[name].append(wall)
                cpu[name].append(used)
        row = {"threads": threads, "torch_seq_per_s": BATCH / statistics.median(times["torch"])}
        for mode in modes:
            sps = BATCH / statistics.median(times["pyfront_" + mode])
            row["pyfront_%s_seq_per_s" % mode] = sps
            row["ratio_%s" % mode] = sps / row["torch_seq_per_s"]
            if threads == 1:
                # one thread runs on the caller's thread in both frameworks: its CPU time is
                # what the step costs, whatever else the machine is doing
                row["cpu_ratio_%s" % mode] = (statistics.median(cpu["torch"]) /
                                              statistics.median(cpu["pyfront_" + mode]))
        row["step_ms"] = {name: 1e3 * statistics.median(t) for name, t in times.items()}
        if threads == 1:
            row["step_cpu_ms"] = {name: 1e3 * statistics.median(t) for name, t in cpu.items()}
        results.append(row)

    print("LSTM regressor training: batch %d, %d steps x %d features, LSTM(%d) + Dense(1), "
          "MSE, Adam" % (BATCH, STEPS, FEATURES, UNITS))
    header = "%-8s %14s" % ("threads", "torch seq/s") + "".join(
        " %18s %8s" % ("pyfront %s seq/s" % m, "ratio") for m in modes)
    print(header)
    for row in results:
        print("%-8d %14.0f" % (row["threads"], row["torch_seq_per_s"]) + "".join(
            " %18.0f %7.2fx" % (row["pyfront_%s_seq_per_s" % m], row["ratio_%s" % m])
            for m in modes))
    for row in results:
        if "step_cpu_ms" in row:
            print("1 thread, CPU time per step: " + ", ".join(
                "%s %.2f ms" % kv for kv in row["step_cpu_ms"].items()) + "; ratios " + ", ".join(
                "%s %.2fx" % (m, row["cpu_ratio_%s" % m]) for m in modes))
    meta = {"model": "LSTM(%d) + Dense(1), batch %d, %d steps x %d features, MSE, Adam"
                     % (UNITS, BATCH, STEPS, FEATURES),
            "repeats": args.repeats, "steps_per_repeat": args.steps,
            "torch_version": torch.__version__, "pyfront_version": pf.__version__,
            "raw": results}
    meta.update(common.machine())
    rows = []
    for row in results:
        for m in modes:
            rows.append(common.row(
                "LSTM training, %s, %d thread(s)" % (m, row["threads"]),
                row["pyfront_%s_seq_per_s" % m], "seq/s", row["torch_seq_per_s"],
                row["ratio_%s" % m], 1.5,
                note="CPU-time ratio %.2fx" % row["cpu_ratio_%s" % m]
                if "cpu_ratio_%s" % m in row else ""))
    common.write("lstm", rows, meta)


if __name__ == "__main__":
    main()
