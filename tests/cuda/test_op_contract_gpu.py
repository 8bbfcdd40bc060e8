"""The registry-wide op contract on a GPU: every case of tests/ops/test_op_contract.py runs
eagerly on CPU tensors and on GPU copies of them; outputs and tape gradients must agree.

On the stand-in GPU (conftest's fake_gpu, runs everywhere) this checks the device routing of
every op: no host constant meets a GPU tensor, nothing reads a GPU tensor with numpy(), and
outputs and gradients land on the inputs' device. On a real GPU (ci/gpu-check.sh) it checks
the CUDA kernels of the whole registry against the CPU's.
"""
import importlib.util
import os

import numpy as np
import pytest

import pyfront as pf

_spec = importlib.util.spec_from_file_location(
    "_op_contract", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                 "ops", "test_op_contract.py"))
contract = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(contract)

NAMES = sorted(contract.CASES)
# cases that cannot run on a GPU as written, with the reason
_HOST_STATE = ("the case hands the op %s in host memory, which it updates in place: GPU inputs "
               "need them on their GPU (a layer's buffers move with it)")
HOST_ONLY = {
    "dropout": _HOST_STATE % "a generator state",
    "dropout_replay": _HOST_STATE % "a generator state",
    "batch_norm_train": _HOST_STATE % "running statistics",
}
# dense linear algebra runs on the host (numpy.linalg's LAPACK) and refuses GPU tensors
HOST_ONLY.update({name: "LAPACK on the host: GPU tensors are refused (DeviceError)"
                  for name in NAMES if name.startswith("linalg.")})


def _run(case, arrays, device, weights):
    """(outputs, input gradients) of the case on device, in host memory."""
    grads_wanted = not case.no_grad
    # float inputs are leaves that need gradients (grad_of's cases differentiate them inside)
    xs = [pf.tensor(a, device=device, requires_grad=a.dtype.kind == "f")
          for a in arrays]
    outs = contract._outputs(case.fn(*xs))
    for o in outs:
        assert o.device == device, (o.device, device)
    values = [o.detach().cpu().numpy() for o in outs]
    if not grads_wanted:
        return values, []
    total = None
    for o, w in zip(outs, weights):
        if o.dtype.is_float:
            term = pf.sum(o * pf.tensor(w.astype(o.dtype.np), device=device))
            total = term if total is None else total + term
    grads = pf.grad(total, [xs[i] for i in case.wrt], allow_unused=True)
    for g in grads:
        assert g is None or g.device == device, (g.device, device)
    return values, [None if g is None else g.cpu().numpy() for g in grads]


def _check(name, device):
    if name in HOST_ONLY:
        pytest.skip(HOST_ONLY[name])
    case = contract.CASES[name]
    arrays = contract._arrays(case, 3, seed=5)
    weights = contract._weights([o.shape for o in contract._eager(case, arrays)])
    want, want_grads = _run(case, arrays, "cpu", weights)
    got, got_grads = _run(case, arrays, device, weights)
    tol = max(case.tol, 2e-5)
    contract._assert_close(got, want, tol, "%s on %s" % (name, device))
    for k, (a, b) in enumerate(zip(got_grads, want_grads)):
        assert (a is None) == (b is None), (name, k)
        if a is not None:
            np.testing.assert_allclose(a, b, rtol=tol, atol=tol,
                                       err_msg="%s: gradient of input %d on %s"
                                       % (name, case.wrt[k], device))


@pytest.mark.parametrize("name", NAMES)
def test_op_routes_to_the_inputs_device(name, fake_gpu):
    _check(name, "cuda:1")


@pytest.mark.parametrize("name", NAMES)
def test_op_on_the_gpu_equals_the_cpu(name, poisoned):
    _check(name, "cuda")


@pytest.mark.parametrize("name", sorted(n for n in NAMES if n.startswith("linalg.")))
def test_dense_linear_algebra_refuses_gpu_tensors_by_name(name, fake_gpu):
    case = contract.CASES[name]
    arrays = contract._arrays(case, 3, seed=5)
    xs = [pf.tensor(a + 3 * np.eye(a.shape[-2], a.shape[-1], dtype=a.dtype), device="cuda:1")
          for a in arrays]
    op = getattr(pf.linalg, name.split(".", 1)[1])
    with pytest.raises(pf.errors.DeviceError, match=r"%s.*cuda:1" % name.replace(".", r"\.")):
        op(*xs)
