"""Checks for op and layer authors: analytic gradients against central finite differences."""
import numpy as np

from . import autograd
from .tensor import Tensor

__all__ = ["numeric_grad", "check_grad"]


def _scalar(fn, tensors, weights):
    out = fn(*tensors)
    outs = out if isinstance(out, (tuple, list)) else [out]
    total = None
    for o, w in zip(outs, weights):
        term = (o * Tensor(w)).sum()
        total = term if total is None else total + term
    return total


def numeric_grad(fn, arrays, weights, eps=1e-6):
    """d/d(arrays) of sum(fn(*arrays) * weights), by central differences (float64 advised)."""
    grads = []
    for i, a in enumerate(arrays):
        g = np.zeros_like(a)
        flat, gflat = a.reshape(-1), g.reshape(-1)
        for j in range(flat.size):
            keep = flat[j]
            flat[j] = keep + eps
            up = float(_scalar(fn, [Tensor(x) for x in arrays], weights).item())
            flat[j] = keep - eps
            down = float(_scalar(fn, [Tensor(x) for x in arrays], weights).item())
            flat[j] = keep
            gflat[j] = (up - down) / (2 * eps)
        grads.append(g)
    return grads


def check_grad(fn, *arrays, eps=1e-6, atol=1e-6, rtol=1e-5, seed=0, wrt=None):
    """Assert that pf.grad of fn matches finite differences at the given float64 arrays.

    fn takes tensors and returns a tensor (or a tuple); its outputs are weighted by fixed
    random weights so that every output element matters. wrt: indices of the arrays to check
    (default: every float array). Returns the largest absolute error seen.
    """
    arrays = [np.array(a, dtype=np.float64) if np.asarray(a).dtype.kind == "f" else np.asarray(a)
              for a in arrays]
    wrt = [i for i, a in enumerate(arrays) if a.dtype.kind == "f"] if wrt is None else list(wrt)
    rng = np.random.default_rng(seed)
    probe = fn(*[Tensor(a) for a in arrays])
    probes = probe if isinstance(probe, (tuple, list)) else [probe]
    weights = [rng.standard_normal(p.shape) for p in probes]
    tensors = [Tensor(a, requires_grad=(i in wrt)) for i, a in enumerate(arrays)]
    analytic = autograd.grad(_scalar(fn, tensors, weights), [tensors[i] for i in wrt],
                             allow_unused=True)

    def wrapped(*xs):
        full = list(arrays)
        for i, x in zip(wrt, xs):
            full[i] = x.numpy() if isinstance(x, Tensor) else x
        return fn(*[Tensor(a) for a in full])

    numeric = numeric_grad(wrapped, [arrays[i] for i in wrt], weights, eps)
    worst = 0.0
    for i, a, n in zip(wrt, analytic, numeric):
        a = np.zeros_like(n) if a is None else a.numpy()
        err = np.abs(a - n)
        worst = max(worst, float(err.max()) if err.size else 0.0)
        if not np.allclose(a, n, atol=atol, rtol=rtol):
            j = np.unravel_index(np.argmax(err - rtol * np.abs(n)), err.shape)
            raise AssertionError("gradient of input %d differs from finite differences at %s: "
                                 "analytic %r, numeric %r (max abs error %.3g)"
                                 % (i, j, a[j], n[j], err.max()))
    return worst


def subprocess_env(extra=None):
    """os.environ for a child Python that must import this same pyfront (installed or not)."""
    import os

    import pyfront

    env = dict(os.environ)
    root = os.path.dirname(os.path.dirname(os.path.abspath(pyfront.__file__)))
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env.update(extra or {})
    return env
