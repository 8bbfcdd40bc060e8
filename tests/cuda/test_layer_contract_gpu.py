"""Every layer on a GPU: each case of tests/nn/test_layer_contract.py, built on the CPU, moved
with model.to() and run on a GPU input in training mode, gives the CPU's outputs, input and
parameter gradients and SGD step, everything staying on the GPU.

On the stand-in GPU (conftest's fake_gpu, runs everywhere) this checks that no layer mixes a
host constant into GPU computations or reads a GPU tensor with numpy(); on a real GPU
(ci/gpu-check.sh) it checks the layers' CUDA kernels.
"""
import importlib.util
import os

import numpy as np
import pytest

import pyfront as pf

_spec = importlib.util.spec_from_file_location(
    "_layer_contract", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                    "nn", "test_layer_contract.py"))
contract = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(contract)


def _step(case, device):
    """(outputs, gradients of the input and every parameter, parameters after one SGD step) of
    the case's layer on device, in host memory."""
    layer, x = contract._built(case)
    layer.to(device)
    layer.train()
    pf.random.seed(9)       # dropout-like layers: the same masks on both devices
    float_input = x.dtype.kind == "f"
    xt = pf.tensor(x, device=device, requires_grad=float_input)
    params = layer.parameters()
    outs = contract._outputs(layer(xt))
    rng = np.random.default_rng(4)
    total = None
    for o in outs:
        assert o.device == device, (case["name"], o.device)
        w = pf.tensor(rng.standard_normal(o.shape).astype(o.dtype.np), device=device)
        total = (o * w).sum() if total is None else total + (o * w).sum()
    targets = ([xt] if float_input else []) + params
    grads = pf.grad(total, targets, allow_unused=True) if targets else []
    if params:
        for p, g in zip(params, grads[len(targets) - len(params):]):
            p.grad = g
        pf.optim.SGD(params, lr=0.1, momentum=0.5).step()
    host = lambda ts: [None if t is None else t.detach().cpu().numpy() for t in ts]   # noqa
    return host(outs), host(grads), host(params)


def _check(case, device):
    want = _step(case, "cpu")
    got = _step(case, device)
    for what, a_list, b_list in zip(("output", "gradient", "parameter after a step"), got,
                                    want):
        for i, (a, b) in enumerate(zip(a_list, b_list)):
            assert (a is None) == (b is None), (case["name"], what, i)
            if a is not None:
                np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-5, err_msg="%s: %s %d on %s"
                                           % (case["name"], what, i, device))


@pytest.mark.parametrize("case", contract.CASES, ids=contract.IDS)
def test_layer_routes_to_the_gpu(case, fake_gpu):
    _check(case, "cuda:1")


@pytest.mark.parametrize("case", contract.CASES, ids=contract.IDS)
def test_layer_on_the_gpu_equals_the_cpu(case, poisoned):
    _check(case, "cuda")
