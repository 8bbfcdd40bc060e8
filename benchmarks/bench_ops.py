"""Single ops against PyTorch CPU in one run, forward and forward + backward, at 1 and 2
threads. CASES is a list: each case names the op and shape and builds, for pyfront and for
PyTorch, a forward call and a forward-and-backward call on the same data. Add a case by
appending to the list.

    python benchmarks/bench_ops.py [--quick]
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

GOAL = 1.0      # at least PyTorch's speed


class Case:
    """name; build(rng) -> {"forward": (ours, ref), "backward": (ours, ref)}: zero-argument
    callables, backward ones running the forward too (as a training step does)."""

    def __init__(self, name, build):
        self.name, self.build = name, build


def _unary_case(name, shape, ours_fn, torch_fn):
    def build(rng):
        import torch

        x = rng.standard_normal(shape).astype(np.float32)
        g = rng.standard_normal(shape).astype(np.float32)
        px, pg = pf.tensor(x, requires_grad=True), pf.tensor(g)
        tx, tg = torch.tensor(x, requires_grad=True), torch.tensor(g)

        def ours_forward():
            with pf.no_grad():
                ours_fn(px)

        def ref_forward():
            with torch.no_grad():
                torch_fn(tx)

        return {"forward": (ours_forward, ref_forward),
                "backward": (lambda: pf.grad(ours_fn(px), [px], grad_outputs=pg),
                             lambda: torch.autograd.grad(torch_fn(tx), [tx], tg))}
    return Case(name, build)


CASES = [
    _unary_case("cumsum (64, 4096) along the last axis", (64, 4096),
                lambda x: pf.cumsum(x, -1), lambda x: x.cumsum(-1)),
    _unary_case("cumsum (4096, 64) along axis 0", (4096, 64),
                lambda x: pf.cumsum(x, 0), lambda x: x.cumsum(0)),
    _unary_case("cumsum (32, 256, 64) along axis 1", (32, 256, 64),
                lambda x: pf.cumsum(x, 1), lambda x: x.cumsum(1)),
]


def _ops_case(name, inputs, ours_fn, torch_fn, extra=None):
    """A case over several float inputs (all differentiated) and fixed extra arrays (indices):
    ours_fn(*tensors, *extra) and torch_fn(*tensors, *extra) build the op."""
    def build(rng):
        import torch

        xs = [rng.standard_normal(shape).astype(np.float32) for shape in inputs]
        fixed = [] if extra is None else extra(rng)
        ps = [pf.tensor(x, requires_grad=True) for x in xs]
        ts = [torch.tensor(x, requires_grad=True) for x in xs]
        pe, te = [pf.tensor(e) for e in fixed], [torch.tensor(e) for e in fixed]
        with pf.no_grad():
            g = rng.standard_normal(ours_fn(*ps, *pe).shape).astype(np.float32)
        pg, tg = pf.tensor(g), torch.tensor(g)

        def ours_forward():
            with pf.no_grad():
                ours_fn(*ps, *pe)

        def ref_forward():
            with torch.no_grad():
                torch_fn(*ts, *te)

        return {"forward": (ours_forward, ref_forward),
                "backward": (lambda: pf.grad(ours_fn(*ps, *pe), ps, grad_outputs=pg),
                             lambda: torch.autograd.grad(torch_fn(*ts, *te), ts, tg))}
    return Case(name, build)


def _torch_f():
    import torch.nn.functional as F

    return F


CASES += [
    _ops_case("pad constant (32, 64, 56, 56) by 1", [(32, 64, 56, 56)],
              lambda x: pf.pad(x, (1, 1, 1, 1)), lambda x: _torch_f().pad(x, (1, 1, 1, 1))),
    _ops_case("pad reflect (32, 64, 56, 56) by 3", [(32, 64, 56, 56)],
              lambda x: pf.pad(x, (3, 3, 3, 3), "reflect"),
              lambda x: _torch_f().pad(x, (3, 3, 3, 3), "reflect")),
    _ops_case("gather (256, 4096) -> (256, 512) along axis 1", [(256, 4096)],
              lambda x, i: pf.gather(x, 1, i), lambda x, i: x.gather(1, i),
              lambda rng: [rng.integers(0, 4096, (256, 512))]),
    _ops_case("scatter_add (512, 256) rows into (4096, 256)", [(4096, 256), (512, 256)],
              lambda x, s, i: pf.scatter_add(x, 0, i, s),
              lambda x, s, i: x.scatter_add(0, i, s),
              lambda rng: [np.repeat(rng.integers(0, 4096, (512, 1)), 256, axis=1)]),
    _ops_case("conv_transpose2d (16, 64, 16, 16) k4 s2 p1 -> 32 channels",
              [(16, 64, 16, 16), (64, 32, 4, 4)],
              lambda x, w: pf.conv_transpose2d(x, w, strides=2, padding=1),
              lambda x, w: _torch_f().conv_transpose2d(x, w, stride=2, padding=1)),
]


def _interleaved_rates(ours, ref, calls, repeats=7, warmup=3):
    """Median calls/s of each, timed in alternating blocks so that a load that comes and goes
    (a shared machine) weighs on both alike, each block common.SETTLE after the other's."""
    for _ in range(warmup):
        ours()
        ref()
    mine, theirs = [], []
    for _ in range(repeats):
        for fn, rates in ((ours, mine), (ref, theirs)):
            common.settle(fn)
            t = time.perf_counter()
            for _ in range(calls):
                fn()
            rates.append(calls / (time.perf_counter() - t))
    return statistics.median(mine), statistics.median(theirs)


def run(case, threads, quick, rng):
    common.set_threads(threads)
    calls = 5 if quick else 20
    rows = []
    for phase, (ours, ref) in case.build(rng).items():
        mine, theirs = _interleaved_rates(ours, ref, calls)
        rows.append(common.row("%s, %s, %d thread(s)" % (case.name, phase, threads), mine,
                               "calls/s", theirs, mine / theirs, GOAL,
                               note="reference: PyTorch CPU"))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (noisier)")
    args = parser.parse_args(argv)
    import torch  # noqa: F401  (loaded before set_threads so that its pool is set too)

    rng = np.random.default_rng(0)
    rows = []
    for threads in (1, 2):
        for case in CASES:
            rows.extend(run(case, threads, args.quick, rng))
    common.write("ops", rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
