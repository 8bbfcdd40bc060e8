"""pf_cuda_run_steps and CUDA-graph capture (needs a GPU; skipped with the reason elsewhere).

A training step of a small dense network (dropout, loss, gradients, SGD update) is written as a
plan of CUDA kernel steps, the way the compiler lays plans out for pf_run_steps. Replaying its
captured graph must give, bit for bit, what running the steps one by one gives -- the
parameters, the loss and the dropout generator's state after several steps.
"""
import numpy as np
import pytest

import pyfront as pf
from pyfront.backend import cuda


class Step:
    """One training step as a plan over device arrays."""

    def __init__(self, gpu, rng):
        f32 = np.float32
        self.gpu = gpu
        self.arrays = {
            "x": rng.standard_normal((64, 32)).astype(f32),
            "labels": rng.integers(0, 10, 64).astype(np.int64),
            "W": (rng.standard_normal((32, 10)) * 0.1).astype(f32),
            "b": np.zeros(10, f32),
            "state": np.array([2024, 0], np.int64),
            "hyper": np.array([0.05, 1.0], np.float64),
            "ones": np.ones(1, f32),
            "h": np.zeros((64, 10), f32), "hd": np.zeros((64, 10), f32),
            "key": np.zeros(2, np.int64), "loss": np.zeros(1, f32),
            "dhd": np.zeros((64, 10), f32), "dh": np.zeros((64, 10), f32),
            "dW": np.zeros((32, 10), f32),
        }
        self.dev = {k: gpu.asarray(v) for k, v in self.arrays.items()}
        self.plan = plan = cuda.Plan()
        d = {k: plan.desc(v) for k, v in self.dev.items()}
        plan.add("linear", [d["x"], d["W"], d["b"]], [d["h"]], (0,))
        plan.add("dropout", [d["h"]], [d["hd"], d["key"], d["state"]], (), (0.25,))
        plan.add("cross_entropy", [d["hd"], d["labels"]], [d["loss"]], (1, -100))
        plan.add("cross_entropy_grad", [d["hd"], d["labels"], d["ones"]], [d["dhd"]], (1, -100))
        plan.add("dropout_replay", [d["dhd"], d["key"]], [d["dh"]], (), (0.25,))
        plan.add("gemm", [d["x"], d["dh"]], [d["dW"]], (1, 0))
        plan.add("sgd_update", [d["dW"], d["hyper"]], [d["W"]], (0,), (0.0, 0.0, 0.0))

    def reset(self):
        for k, v in self.arrays.items():
            self.dev[k][...] = self.gpu.asarray(v)

    def snapshot(self):
        pf.cuda.synchronize()
        return {k: self.gpu.asnumpy(self.dev[k]) for k in ("W", "loss", "state", "key", "dW")}


def test_graph_replay_equals_the_uncaptured_steps_bit_for_bit(gpu, rng):
    stream = gpu.cuda.Stream(non_blocking=True)   # capture needs a stream of its own
    with stream:
        step = Step(gpu, rng)
        eager = []
        for _ in range(3):
            step.plan.run()
            eager.append(step.snapshot())
        assert eager[0]["state"].tolist() == [2024, 1] and eager[2]["state"].tolist() == [2024, 3]
        assert not np.array_equal(eager[0]["W"], eager[1]["W"])   # the step did train
        assert np.isfinite(eager[2]["loss"]).all()

        step.reset()
        graph = step.plan.capture()
        try:
            np.testing.assert_array_equal(step.snapshot()["W"], step.arrays["W"])   # none ran
            for want in eager:
                graph.launch()
                got = step.snapshot()
                for name in want:
                    assert got[name].tobytes() == want[name].tobytes(), name
        finally:
            graph.close()


def test_capture_on_the_legacy_default_stream_is_refused(gpu, rng):
    step = Step(gpu, rng)
    with gpu.cuda.Stream.null:
        with pytest.raises(pf.errors.NativeError, match="CUDA-graph capture needs a stream of "
                           "its own"):
            step.plan.capture()


def test_a_failing_step_is_named(gpu, rng):
    step = Step(gpu, rng)
    step.plan.steps[3].args.n_in = 1     # cross_entropy_grad with one input
    with pytest.raises(pf.errors.NativeError, match="plan step 3: kernel 'cross_entropy_grad' "
                       "\\(CUDA\\): expected 3..3 inputs, got 1"):
        step.plan.run()
