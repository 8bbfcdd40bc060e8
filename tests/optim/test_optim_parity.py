"""Optimizer trajectories against torch.optim on the same parameters and gradients, gradient
clipping against torch.nn.utils, and the kernels' argument checks."""
import numpy as np
import pytest

import pyfront as pf
from pyfront import errors

torch = pytest.importorskip("torch")

SHAPES = [(7, 5), (5,), (3, 2, 4)]
STEPS = 6


def _trajectories(make_ours, make_torch, dtype=np.float32, steps=STEPS, clip=None, seed=0,
                  which=None):
    """Run both optimizers over the same gradient sequence; return both parameter lists.
    which[k]: the parameters with a gradient at step k (cycled), the others' gradients None
    (all have one by default)."""
    rng = np.random.default_rng(seed)
    init = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = [[(rng.standard_normal(s) * 3).astype(dtype) for s in SHAPES] for _ in range(steps)]
    ours = [pf.tensor(a.copy(), requires_grad=True) for a in init]
    theirs = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    opt, topt = make_ours(ours), make_torch(theirs)
    for k, step_grads in enumerate(grads):
        for i, (p, t, g) in enumerate(zip(ours, theirs, step_grads)):
            has = which is None or i in which[k % len(which)]
            p.grad = pf.tensor(g.copy()) if has else None
            t.grad = torch.tensor(g.copy()) if has else None
        opt.step()
        if clip is not None:
            clip(theirs)
        topt.step()
    return [p.numpy() for p in ours], [t.detach().numpy() for t in theirs]


def _assert_same(ours, theirs, rtol=1e-5, atol=1e-6):
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


CASES = {
    "sgd": (lambda p: pf.optim.SGD(p, lr=0.05), lambda p: torch.optim.SGD(p, lr=0.05)),
    "sgd_momentum_wd": (
        lambda p: pf.optim.SGD(p, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-2),
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, dampening=0.1, weight_decay=1e-2)),
    "sgd_nesterov": (
        lambda p: pf.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True),
        lambda p: torch.optim.SGD(p, lr=0.05, momentum=0.9, nesterov=True)),
    "adam": (lambda p: pf.optim.Adam(p, lr=1e-2, weight_decay=1e-3),
             lambda p: torch.optim.Adam(p, lr=1e-2, weight_decay=1e-3)),
    "adamw": (lambda p: pf.optim.AdamW(p, lr=1e-2, betas=(0.8, 0.99), weight_decay=0.1),
              lambda p: torch.optim.AdamW(p, lr=1e-2, betas=(0.8, 0.99), weight_decay=0.1)),
    "rmsprop": (lambda p: pf.optim.RMSProp(p, lr=1e-2),
                lambda p: torch.optim.RMSprop(p, lr=1e-2)),
    "rmsprop_centered_momentum_wd": (
        lambda p: pf.optim.RMSProp(p, lr=1e-2, alpha=0.9, eps=1e-6, weight_decay=1e-2,
                                   momentum=0.8, centered=True),
        lambda p: torch.optim.RMSprop(p, lr=1e-2, alpha=0.9, eps=1e-6, weight_decay=1e-2,
                                      momentum=0.8, centered=True)),
    "rmsprop_momentum": (lambda p: pf.optim.RMSProp(p, lr=1e-3, momentum=0.5),
                         lambda p: torch.optim.RMSprop(p, lr=1e-3, momentum=0.5)),
    "adagrad": (lambda p: pf.optim.AdaGrad(p, lr=0.1),
                lambda p: torch.optim.Adagrad(p, lr=0.1)),
    "adagrad_decay_wd_init": (
        lambda p: pf.optim.AdaGrad(p, lr=0.1, lr_decay=0.05, weight_decay=1e-2,
                                   initial_accumulator_value=0.3, eps=1e-8),
        lambda p: torch.optim.Adagrad(p, lr=0.1, lr_decay=0.05, weight_decay=1e-2,
                                      initial_accumulator_value=0.3, eps=1e-8)),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_torch_float32(name):
    ours, theirs = _trajectories(*CASES[name])
    _assert_same(ours, theirs)


@pytest.mark.parametrize("name", ["rmsprop_centered_momentum_wd", "adagrad_decay_wd_init"])
def test_matches_torch_float64(name):
    make_ours, make_torch = CASES[name]
    ours, theirs = _trajectories(make_ours, lambda p: make_torch(p), dtype=np.float64)
    _assert_same(ours, theirs, rtol=1e-12, atol=1e-12)


def test_global_clipnorm_matches_clip_grad_norm():
    ours, theirs = _trajectories(
        lambda p: pf.optim.SGD(p, lr=0.1, momentum=0.9, global_clipnorm=1.5),
        lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
        clip=lambda ps: torch.nn.utils.clip_grad_norm_(ps, 1.5))
    _assert_same(ours, theirs)


def test_clipvalue_matches_clip_grad_value():
    ours, theirs = _trajectories(
        lambda p: pf.optim.Adam(p, lr=1e-2, clipvalue=0.5),
        lambda p: torch.optim.Adam(p, lr=1e-2),
        clip=lambda ps: torch.nn.utils.clip_grad_value_(ps, 0.5))
    _assert_same(ours, theirs)


def test_clipnorm_is_per_parameter():
    def clip_each(ps):
        for t in ps:
            torch.nn.utils.clip_grad_norm_([t], 0.7)

    ours, theirs = _trajectories(lambda p: pf.optim.RMSProp(p, lr=1e-2, clipnorm=0.7),
                                 lambda p: torch.optim.RMSprop(p, lr=1e-2), clip=clip_each)
    _assert_same(ours, theirs)


def test_clipping_leaves_small_gradients_alone():
    p = pf.tensor(np.zeros(4, np.float32), requires_grad=True)
    opt = pf.optim.SGD([p], lr=1.0, global_clipnorm=10.0)
    p.grad = pf.tensor(np.array([3, 4, 0, 0], np.float32))
    opt.step()
    np.testing.assert_array_equal(p.numpy(), [-3, -4, 0, 0])
    opt = pf.optim.SGD([p], lr=1.0, global_clipnorm=1.0)
    opt.step()
    np.testing.assert_allclose(p.numpy(), [-3.6, -4.8, 0, 0], rtol=1e-6)


def test_clip_gradients_passes_missing_gradients_through():
    opt = pf.optim.Adam(clipnorm=1.0)
    g = pf.tensor(np.array([0.0, 2.0], np.float32))
    out = opt.clip_gradients([None, g])
    assert out[0] is None
    np.testing.assert_allclose(out[1].numpy(), [0, 1])


def test_global_norm_over_more_parameters_than_one_kernel_call_takes():
    rng = np.random.default_rng(3)
    arrays = [rng.standard_normal(5).astype(np.float32) for _ in range(40)]
    ps = [pf.tensor(np.zeros(5, np.float32), requires_grad=True) for _ in arrays]
    for p, g in zip(ps, arrays):
        p.grad = pf.tensor(g.copy())
    pf.optim.SGD(ps, lr=1.0, global_clipnorm=1.0).step()
    norm = np.sqrt(sum(float((g.astype(np.float64) ** 2).sum()) for g in arrays))
    for p, g in zip(ps, arrays):
        np.testing.assert_allclose(p.numpy(), -g / norm, rtol=1e-5)


def test_large_parameter_sum_of_squares_is_exact_in_float64():
    n = 3 * 65536 + 17           # several chunks, a ragged last one
    g = np.random.default_rng(1).standard_normal(n).astype(np.float32)
    p = pf.tensor(np.zeros(n, np.float32), requires_grad=True)
    p.grad = pf.tensor(g.copy())
    pf.optim.SGD([p], lr=1.0, clipnorm=2.0).step()
    expect = -g.astype(np.float64) * 2.0 / np.sqrt((g.astype(np.float64) ** 2).sum())
    np.testing.assert_allclose(p.numpy(), expect, rtol=1e-6, atol=1e-9)


def test_learning_rate_changes_are_read_every_step():
    p = pf.tensor(np.zeros(3, np.float32), requires_grad=True)
    opt = pf.optim.SGD([p], lr=0.1)
    for lr in (0.1, 0.5, 0.01):
        opt.lr = lr
        p.grad = pf.tensor(np.ones(3, np.float32))
        opt.step()
    np.testing.assert_allclose(p.numpy(), -(0.1 + 0.5 + 0.01) * np.ones(3), rtol=1e-6)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="at most one"):
        pf.optim.SGD(lr=0.1, clipnorm=1.0, clipvalue=1.0)
    with pytest.raises(ValueError, match="clipnorm must be positive"):
        pf.optim.Adam(clipnorm=0.0)
    with pytest.raises(ValueError, match="alpha"):
        pf.optim.RMSProp(alpha=1.0)
    with pytest.raises(ValueError, match="lr_decay"):
        pf.optim.AdaGrad(lr_decay=-1.0)


def test_kernels_validate_their_arguments():
    from pyfront.backend import cpu
    from pyfront.dtypes import float32, float64

    p = cpu.Buf(np.zeros(4, np.float32), (4,), float32)
    g = cpu.Buf(np.zeros(5, np.float32), (5,), float32)
    hyper = cpu.Buf(np.array([0.1, 1.0]), (2,), float64)
    sq = cpu.Buf(np.zeros(4, np.float32), (4,), float32)
    with pytest.raises(errors.ShapeError, match="grad"):
        cpu.run("rmsprop_update", [g.desc(), hyper.desc()], [p.desc(), sq.desc()], (0,),
                (0.99, 1e-8, 0.0, 0.0))
    with pytest.raises(errors.NativeError, match="expected 3 outputs"):
        cpu.run("rmsprop_update", [sq.desc(), hyper.desc()], [p.desc(), sq.desc()], (1,),
                (0.99, 1e-8, 0.0, 0.0))
    with pytest.raises(errors.NativeError, match="step must count from 1"):
        bad = cpu.Buf(np.array([0.1, 0.0]), (2,), float64)
        cpu.run("adagrad_update", [sq.desc(), bad.desc()], [p.desc(), sq.desc()], (),
                (0.0, 1e-10, 0.0))
    acc32 = cpu.Buf(np.zeros(1, np.float32), (1,), float32)
    with pytest.raises(errors.DTypeError, match="accumulator"):
        cpu.run("grad_sumsq", [p.desc()], [acc32.desc()], (0,))
    acc = cpu.Buf(np.array([4.0]), (1,), float64)
    with pytest.raises(errors.NativeError, match="max_norm"):
        cpu.run("clip_by_norm", [acc.desc(), p.desc()], [sq.desc()], (), (0.0,))
    with pytest.raises(errors.ShapeError, match="output"):
        cpu.run("clip_by_norm", [acc.desc(), p.desc()], [g.desc()], (), (1.0,))


def test_state_dict_round_trip_continues_the_same_trajectory():
    rng = np.random.default_rng(5)
    init = rng.standard_normal((4, 3)).astype(np.float32)
    grads = [rng.standard_normal((4, 3)).astype(np.float32) for _ in range(4)]

    def run(split):
        p = pf.tensor(init.copy(), requires_grad=True)
        opt = pf.optim.RMSProp([p], lr=1e-2, momentum=0.9, centered=True)
        for i, g in enumerate(grads):
            if i == split:
                sd = opt.state_dict()
                opt = pf.optim.RMSProp([p], lr=1e-2, momentum=0.9, centered=True)
                opt.load_state_dict(sd)
            p.grad = pf.tensor(g)
            opt.step()
        return p.numpy()

    np.testing.assert_array_equal(run(split=2), run(split=-1))
