"""Eager opt.step() runs every update in one native call over steps built once (the fused
step): it must give torch.optim's values when the set of gradients, the parameters' memory,
the state or the hyperparameters change between steps, and fall back to the per-parameter
loop where it cannot apply."""
import numpy as np
import pytest

import pyfront as pf

torch = pytest.importorskip("torch")

SHAPES = [(4, 3), (3,), (2, 5)]


def _pair(seed=0):
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    ours = [pf.tensor(a.copy(), requires_grad=True) for a in init]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    return ours, theirs, rng


def _step(opt, topt, ours, theirs, rng, which=(0, 1, 2)):
    for i, (p, t) in enumerate(zip(ours, theirs)):
        if i in which:
            g = rng.standard_normal(SHAPES[i]).astype(np.float32)
            p.grad, t.grad = pf.tensor(g), torch.tensor(g)
        else:
            p.grad = t.grad = None
    opt.step()
    topt.step()


def _same(ours, theirs):
    for p, t in zip(ours, theirs):
        np.testing.assert_allclose(p.numpy(), t.detach().numpy(), rtol=1e-5, atol=1e-6)


def test_fused_step_follows_changes_between_steps():
    ours, theirs, rng = _pair()
    opt = pf.optim.Adam(ours, lr=0.01)
    topt = torch.optim.Adam(theirs, lr=0.01)
    _step(opt, topt, ours, theirs, rng)
    steps = opt._fused[1]
    _step(opt, topt, ours, theirs, rng)
    assert opt._fused[1] is steps            # built once, reused
    _same(ours, theirs)
    for p, t in zip(ours, theirs):            # the parameters' memory replaced
        p._data = p.numpy().copy()
    _step(opt, topt, ours, theirs, rng)
    _same(ours, theirs)
    opt.lr = 0.003                            # (lr travels in the hyperparameter array)
    for group in topt.param_groups:
        group["lr"] = 0.003
    opt.betas = (0.8, 0.99)                   # attributes: the steps are rebuilt
    for group in topt.param_groups:
        group["betas"] = (0.8, 0.99)
    _step(opt, topt, ours, theirs, rng)
    _same(ours, theirs)


def test_fused_step_equals_the_loop_when_some_gradients_are_missing():
    # (torch.optim.Adam counts steps per parameter, pyfront per optimizer: compared with
    # pyfront's per-parameter loop here)
    rng = np.random.default_rng(3)
    init = [rng.standard_normal(s).astype(np.float32) for s in SHAPES]
    fused = [pf.tensor(a.copy(), requires_grad=True) for a in init]
    loop = [pf.tensor(a.copy(), requires_grad=True) for a in init]
    opt, ref = pf.optim.Adam(fused, lr=0.01), pf.optim.Adam(loop, lr=0.01)
    ref._fused_step = lambda: False
    for which in ((0, 1, 2), (0, 2), (1,), (0, 1, 2)):
        for i in range(len(SHAPES)):
            g = rng.standard_normal(SHAPES[i]).astype(np.float32) if i in which else None
            fused[i].grad = loop[i].grad = None if g is None else pf.tensor(g)
        opt.step()
        ref.step()
        for a, b in zip(fused, loop):
            np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_fused_step_sees_replaced_state():
    ours, theirs, rng = _pair(1)
    opt = pf.optim.SGD(ours, lr=0.1, momentum=0.9)
    topt = torch.optim.SGD(theirs, lr=0.1, momentum=0.9)
    _step(opt, topt, ours, theirs, rng)
    opt.state[id(ours[1])] = {"momentum_buffer": np.zeros(3, np.float32)}
    topt.state[theirs[1]]["momentum_buffer"].zero_()
    _step(opt, topt, ours, theirs, rng)
    _same(ours, theirs)


def test_a_gradient_of_another_dtype_takes_the_loop():
    ours, theirs, rng = _pair(2)
    opt = pf.optim.SGD(ours, lr=0.1)
    topt = torch.optim.SGD(theirs, lr=0.1)
    g = rng.standard_normal(SHAPES[0])
    for p, t in zip(ours, theirs):
        p.grad, t.grad = None, None
    ours[0].grad, theirs[0].grad = pf.tensor(g), torch.tensor(g.astype(np.float32))
    opt.step()
    topt.step()
    assert opt._fused is None
    _same(ours, theirs)
