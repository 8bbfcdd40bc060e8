"""Comparisons of pyfront ops with PyTorch's, shared by the torch-name tests: every output
(shape, dtype, numbers) and the gradients of a weighting of the first one, and eager calls
against pf.jit-compiled ones."""
import warnings

import numpy as np
import torch

import pyfront as pf


def as_numpy(x):
    return x.detach().numpy() if isinstance(x, torch.Tensor) else x.numpy()


def listed(v):
    return list(v) if isinstance(v, (tuple, list)) else [v]


def compare(pf_fn, torch_fn, *arrays, grad=True, rtol=1e-10, atol=1e-12, grad_rtol=1e-8):
    """Every output (shape, dtype, numbers) equals PyTorch's on the same inputs and, with grad,
    so do the gradients of a random weighting of the first output."""
    ps = [pf.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    ts = [torch.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    got, want = listed(pf_fn(*ps)), listed(torch_fn(*ts))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert as_numpy(g).shape == as_numpy(w).shape and as_numpy(g).dtype == as_numpy(w).dtype, \
            (as_numpy(g).shape, as_numpy(w).shape, as_numpy(g).dtype, as_numpy(w).dtype)
        np.testing.assert_allclose(as_numpy(g), as_numpy(w), rtol=rtol, atol=atol)
    floats = [(p, t) for p, t in zip(ps, ts) if p.requires_grad]
    if not floats or not want[0].requires_grad:
        return
    seed = np.random.default_rng(5).standard_normal(tuple(want[0].shape))
    pg = pf.grad(got[0], [p for p, _ in floats], grad_outputs=pf.tensor(seed),
                 allow_unused=True)
    tg = torch.autograd.grad(want[0], [t for _, t in floats], torch.tensor(seed),
                             allow_unused=True)
    for a, b in zip(pg, tg):
        a = np.zeros(b.shape) if a is None else a.numpy()
        # (torch answers some zero gradients with a ZeroTensor, which has no numpy())
        b = np.zeros(a.shape) if b is None or b._is_zerotensor() else b.numpy()
        np.testing.assert_allclose(a, b, rtol=grad_rtol, atol=1e-10)


def eager_equals_jit(fn, *arrays, rtol=1e-12):
    tensors = [pf.tensor(a) for a in arrays]
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # a fallback to eager would warn
        compiled = listed(pf.jit(fn)(*tensors))
    for e, c in zip(listed(fn(*tensors)), compiled):
        assert e.shape == c.shape and e.dtype == c.dtype
        np.testing.assert_allclose(c.numpy(), e.numpy(), rtol=rtol, atol=1e-12)
