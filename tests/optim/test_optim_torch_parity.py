"""Optimizers and learning-rate schedulers against torch.optim, float64 to ~1e-15: per-parameter
step counts (a parameter without a gradient keeps its count, as PyTorch's), PyTorch's positional
orders (SGD's weight_decay before nesterov; Adam's amsgrad), AMSGrad, maximize, param groups
(per-group hyperparameters, named parameters, add_param_group, in eager and compiled steps),
lr=0, state_dict round trips, closures; and every scheduler's rates over 20 epochs exactly,
with param groups, chaining, resuming (last_epoch) and rates changed by hand."""
import warnings

import numpy as np
import pytest

import pyfront as pf

torch = pytest.importorskip("torch")
from test_optim_parity import _trajectories  # noqa: E402 (beside this file; needs torch)

SHAPES = [(7, 5), (5,), (3, 2, 4)]
TOL = dict(rtol=1e-13, atol=1e-14)


def _run(make_ours, make_torch, dtype=np.float64, **kw):
    """Both optimizers over one gradient sequence (test_optim_parity's), in float64 here."""
    return _trajectories(make_ours, make_torch, dtype=dtype, **kw)


def _same(pair, tol=TOL):
    for a, b in zip(*pair):
        np.testing.assert_allclose(a, b, **tol)


def _both(name, *args, **kwargs):
    ours = {"RMSprop": pf.optim.RMSprop, "Adagrad": pf.optim.Adagrad}.get(
        name, getattr(pf.optim, name, None))
    return (lambda p: ours(p, *args, **kwargs),
            lambda p: getattr(torch.optim, name)(p, *args, **kwargs))


CASES = {
    "sgd_momentum_dampening": _both("SGD", lr=0.1, momentum=0.9, dampening=0.5),
    "sgd_nesterov_wd": _both("SGD", lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
    "adam": _both("Adam", lr=1e-2, weight_decay=0.05),
    "adamw": _both("AdamW", lr=1e-2, betas=(0.8, 0.95)),
    "adam_amsgrad": _both("Adam", lr=1e-2, amsgrad=True, weight_decay=0.1),
    "adamw_amsgrad": _both("AdamW", lr=1e-2, amsgrad=True),
    "adam_amsgrad_low_beta1": _both("Adam", lr=1e-2, betas=(0.3, 0.9), amsgrad=True),
    "adam_decoupled_weight_decay": _both("Adam", lr=1e-2, weight_decay=0.1,
                                         decoupled_weight_decay=True),
    "rmsprop_centered_momentum": _both("RMSprop", lr=1e-2, momentum=0.5, centered=True),
    "adagrad_lr_decay": _both("Adagrad", lr=0.1, lr_decay=0.3, initial_accumulator_value=0.2),
    "sgd_maximize": _both("SGD", lr=0.01, momentum=0.5, weight_decay=0.1, maximize=True),
    "adam_maximize": _both("Adam", lr=0.01, weight_decay=0.1, maximize=True),
    "rmsprop_maximize": _both("RMSprop", lr=0.01, momentum=0.5, maximize=True),
    "adagrad_maximize": _both("Adagrad", lr=0.1, maximize=True),
    "sgd_lr_zero": _both("SGD", lr=0.0, momentum=0.9),
}
MISSING = [(0, 1, 2), (0, 2), (1,), (0, 1, 2), (2,), ()]


@pytest.mark.parametrize("name", sorted(CASES))
def test_matches_torch_when_gradients_come_and_go(name):
    # a parameter without a gradient is skipped and keeps its own step count (Adam's bias
    # correction, AdaGrad's decay, SGD's first momentum step): pyfront counted the optimizer's
    _same(_run(*CASES[name]))
    _same(_run(*CASES[name], which=MISSING))
    _same(_run(*CASES[name], which=[(1,), (0, 1), (0, 1, 2)]))


@pytest.mark.parametrize("name", ["adam_amsgrad", "adamw_amsgrad", "adam_maximize"])
def test_matches_torch_in_float32(name):
    _same(_run(*CASES[name], dtype=np.float32, which=MISSING), dict(rtol=1e-5, atol=1e-6))


def test_torchs_positional_orders():
    # torch.optim.SGD(params, lr, momentum, dampening, weight_decay, nesterov): pyfront took
    # the 5th as nesterov (so weight decay 1e-2 became Nesterov momentum without decay)
    _same(_run(lambda p: pf.optim.SGD(p, 0.1, 0.9, 0.0, 1e-2),
               lambda p: torch.optim.SGD(p, 0.1, 0.9, 0.0, 1e-2)))
    # Adam(params, lr, betas, eps, weight_decay, amsgrad): the 6th was clipnorm
    _same(_run(lambda p: pf.optim.Adam(p, 1e-2, (0.9, 0.99), 1e-8, 0.0, True),
               lambda p: torch.optim.Adam(p, 1e-2, (0.9, 0.99), 1e-8, 0.0, True)))
    _same(_run(lambda p: pf.optim.RMSprop(p, 1e-2, 0.9, 1e-6, 0.01, 0.5, True),
               lambda p: torch.optim.RMSprop(p, 1e-2, 0.9, 1e-6, 0.01, 0.5, True)))
    _same(_run(lambda p: pf.optim.Adagrad(p, 0.1, 0.01, 0.02, 0.3, 1e-8),
               lambda p: torch.optim.Adagrad(p, 0.1, 0.01, 0.02, 0.3, 1e-8)))
    for opt in (pf.optim.SGD([pf.tensor([1.0], requires_grad=True)], foreach=None, fused=None),
                pf.optim.Adam([pf.tensor([1.0], requires_grad=True)], foreach=True,
                              capturable=False)):
        assert opt.lr > 0                    # PyTorch's implementation switches are accepted
    with pytest.raises(ValueError, match="differentiable"):
        pf.optim.Adam(differentiable=True)


def _groups(ps, torch_side):
    return [{"params": ps[:1], "weight_decay": 0.1},
            {"params": ps[1:], "lr": 0.05, **({"momentum": 0.5} if torch_side else {})}]


GROUP_CASES = {
    "sgd": (lambda g: pf.optim.SGD(g, lr=0.1, momentum=0.9),
            lambda g: torch.optim.SGD(g, lr=0.1, momentum=0.9),
            [{"params": 0, "nesterov": True}, {"params": 1, "lr": 0.3, "dampening": 0.2}]),
    "adam": (lambda g: pf.optim.Adam(g, lr=0.01), lambda g: torch.optim.Adam(g, lr=0.01),
             [{"params": 0, "amsgrad": True, "weight_decay": 0.1},
              {"params": 1, "lr": 0.05, "betas": (0.5, 0.9)}]),
    "rmsprop": (lambda g: pf.optim.RMSprop(g, lr=0.01), lambda g: torch.optim.RMSprop(g, lr=0.01),
                [{"params": 0, "centered": True}, {"params": 1, "momentum": 0.3}]),
    "adagrad": (lambda g: pf.optim.Adagrad(g, lr=0.1, initial_accumulator_value=0.1),
                lambda g: torch.optim.Adagrad(g, lr=0.1, initial_accumulator_value=0.1),
                # (PyTorch fills every sum with the constructor's value, whatever a group says)
                [{"params": 0, "initial_accumulator_value": 0.5}, {"params": 1, "lr_decay": 0.1}]),
}


def _make_groups(spec, ps):
    split = [ps[:1], ps[1:]]
    return [dict(g, params=split[g["params"]]) for g in spec]


@pytest.mark.parametrize("name", sorted(GROUP_CASES))
def test_param_groups_match_torch(name):
    ours, theirs, spec = GROUP_CASES[name]
    _same(_run(lambda p: ours(_make_groups(spec, p)), lambda p: theirs(_make_groups(spec, p)),
               which=MISSING))


def test_param_groups_in_a_compiled_training_step():
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((16, 4)), rng.standard_normal((16, 3))
    net = pf.nn.Sequential([pf.nn.Dense(5, activation="tanh"), pf.nn.Dense(3)])
    net.to("float64")
    net(pf.tensor(x))
    tnet = torch.nn.Sequential(torch.nn.Linear(4, 5), torch.nn.Tanh(), torch.nn.Linear(5, 3))
    tnet.double()
    with pf.no_grad():
        for layer, tl in zip(net.layers, (tnet[0], tnet[2])):
            layer.kernel.copy_(tl.weight.detach().numpy().T.copy())
            layer.bias.copy_(tl.bias.detach().numpy())
    first, second = net.layers
    opt = pf.optim.Adam([{"params": [first.kernel, first.bias], "lr": 0.05},
                         {"params": [second.kernel, second.bias], "weight_decay": 0.1}], lr=0.2)
    topt = torch.optim.Adam([{"params": tnet[0].parameters(), "lr": 0.05},
                             {"params": tnet[2].parameters(), "weight_decay": 0.1}], lr=0.2)
    step = pf.train.make_train_step(net, pf.losses.mse, opt, compiled=True)
    for i in range(4):
        if i == 2:                     # a scheduler's change reaches the compiled plan
            opt.param_groups[1]["lr"] = topt.param_groups[1]["lr"] = 0.01
        step(x, y)
        topt.zero_grad()
        ((tnet(torch.tensor(x)) - torch.tensor(y)) ** 2).mean().backward()
        topt.step()
    for layer, tl in zip(net.layers, (tnet[0], tnet[2])):
        np.testing.assert_allclose(layer.kernel.numpy(), tl.weight.detach().numpy().T, **TOL)
    with pytest.raises(pf.errors.PyfrontError, match="amsgrad=True runs in eager steps only"):
        amsgrad = pf.optim.Adam(net.parameters(), amsgrad=True)
        pf.train.make_train_step(net, pf.losses.mse, amsgrad, compiled=True)(x, y)


def test_param_group_bookkeeping():
    a, b, c = (pf.tensor(np.ones(2), requires_grad=True) for _ in range(3))
    opt = pf.optim.SGD([{"params": [a]}, {"params": b, "lr": 0.5}], lr=0.1, momentum=0.9)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.5] and opt.lr == 0.1
    assert opt.param_groups[1]["momentum"] == 0.9 and opt.params == [a, b]
    opt.add_param_group({"params": [c], "nesterov": True})
    assert opt.group_of(c)["nesterov"] and opt.params == [a, b, c]
    opt.lr = 0.2                                    # pyfront's opt.lr: every group
    assert [g["lr"] for g in opt.param_groups] == [0.2, 0.2, 0.2]
    with pytest.raises(ValueError, match="more than one param group"):
        opt.add_param_group({"params": [a]})
    with pytest.raises(ValueError, match="Nesterov"):
        opt.add_param_group({"params": [pf.tensor([1.0], requires_grad=True)],
                             "nesterov": True, "momentum": 0.0})
    with pytest.raises(TypeError, match="set"):
        pf.optim.SGD({a, b})
    with pytest.raises(TypeError, match="single tensor"):
        pf.optim.SGD(a)
    with pytest.raises(ValueError, match="learning rate"):
        pf.optim.SGD([a], lr=-1.0)
    named = pf.optim.Adam(pf.nn.Dense(2, in_features=3).named_parameters())
    assert named.param_groups[0]["param_names"] == ["kernel", "bias"]
    # a rate set before the parameters come (model.compile binds them) is kept
    late = pf.optim.Adam(lr=0.1)
    late.lr = 0.03
    late.bind([a])
    assert late.lr == 0.03 and late.param_groups[0]["params"] == [a]


def test_state_dict_round_trip_with_groups_and_skipped_steps():
    rng = np.random.default_rng(4)
    init = [rng.standard_normal(s) for s in SHAPES]
    grads = [[rng.standard_normal(s) for s in SHAPES] for _ in range(6)]

    def make(ps):
        return pf.optim.Adam([{"params": ps[:2], "amsgrad": True},
                              {"params": ps[2:], "lr": 0.05}], lr=0.01)

    def run(split):
        ps = [pf.tensor(a.copy(), requires_grad=True) for a in init]
        opt = make(ps)
        for k, gs in enumerate(grads):
            if k == split:
                sd = opt.state_dict()
                opt = make(ps)
                opt.load_state_dict(sd)
            for i, (p, g) in enumerate(zip(ps, gs)):
                p.grad = pf.tensor(g) if i in MISSING[k] else None
            opt.step()
        return [p.numpy() for p in ps]

    whole = run(-1)
    for a, b in zip(run(3), whole):
        np.testing.assert_array_equal(a, b)
    ps = [pf.tensor(a.copy(), requires_grad=True) for a in init]
    opt = make(ps)
    opt.param_groups[1]["lr"] = 0.7
    sd = opt.state_dict()
    again = make(ps)
    again.load_state_dict(sd)
    assert again.param_groups[1]["lr"] == 0.7
    with pytest.raises(ValueError, match="param groups"):
        pf.optim.Adam(ps, lr=0.01).load_state_dict(sd)


def test_closure_and_zero_grad():
    w = pf.tensor(np.array([1.0, -2.0]), requires_grad=True)
    tw = torch.tensor([1.0, -2.0], dtype=torch.float64, requires_grad=True)
    opt, topt = pf.optim.SGD([w], lr=0.1), torch.optim.SGD([tw], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss

    def tclosure():
        topt.zero_grad()
        loss = (tw * tw).sum()
        loss.backward()
        return loss

    assert float(opt.step(closure).numpy()) == float(topt.step(tclosure).detach())
    np.testing.assert_allclose(w.numpy(), tw.detach().numpy(), **TOL)
    opt.zero_grad(set_to_none=False)
    assert w.grad is not None and not w.grad.numpy().any()
    opt.zero_grad()
    assert w.grad is None


# ---------------------------------------------------------------------------------------------
# learning-rate schedulers

S, T = pf.optim.lr_scheduler, torch.optim.lr_scheduler


def _opt_pair(kind="sgd", groups=False):
    ps = [pf.tensor(np.zeros(3), requires_grad=True) for _ in range(2)]
    ts = [torch.zeros(3, dtype=torch.float64, requires_grad=True) for _ in range(2)]
    if groups:
        ps = [{"params": [ps[0]]}, {"params": [ps[1]], "lr": 0.5}]
        ts = [{"params": [ts[0]]}, {"params": [ts[1]], "lr": 0.5}]
    if kind == "sgd":
        return pf.optim.SGD(ps, lr=0.1, momentum=0.9), torch.optim.SGD(ts, lr=0.1, momentum=0.9)
    return pf.optim.Adam(ps, lr=0.1), torch.optim.Adam(ts, lr=0.1)


def _rates(opt, sched, topt, tsched, epochs=20, metrics=None, between=None):
    """(ours, theirs): get_last_lr() and each group's momentum / beta1 after every step."""
    ours, theirs = [list(sched.get_last_lr())], [list(tsched.get_last_lr())]
    for i in range(epochs):
        topt.step()
        if between is not None:
            between(i, opt, topt)
        args = () if metrics is None else (metrics[i],)
        sched.step(*args)
        tsched.step(*args)
        for o, s, out in ((opt, sched, ours), (topt, tsched, theirs)):
            out.append(list(s.get_last_lr()) + [g.get("momentum", g.get("betas", (0,))[0])
                                                for g in o.param_groups])
    return ours, theirs


SCHEDULERS = {
    "StepLR": lambda M, o: M.StepLR(o, 3, 0.5),
    "StepLR_default_gamma": lambda M, o: M.StepLR(o, 3),
    "MultiStepLR": lambda M, o: M.MultiStepLR(o, [2, 5, 5, 11], 0.3),
    "ExponentialLR": lambda M, o: M.ExponentialLR(o, 0.9),
    "CosineAnnealingLR": lambda M, o: M.CosineAnnealingLR(o, 7, 0.01),
    "CosineAnnealingLR_T10": lambda M, o: M.CosineAnnealingLR(o, 10),
    "LambdaLR": lambda M, o: M.LambdaLR(o, lambda e: 0.95 ** e),
    "MultiplicativeLR": lambda M, o: M.MultiplicativeLR(o, lambda e: 0.95),
    "ConstantLR": lambda M, o: M.ConstantLR(o, 0.5, 4),
    "LinearLR": lambda M, o: M.LinearLR(o, 0.2, 1.0, 6),
    "LinearLR_down": lambda M, o: M.LinearLR(o, 1.0, 0.1, 6),
    "PolynomialLR": lambda M, o: M.PolynomialLR(o, 8, 2.0),
    "CosineAnnealingWarmRestarts": lambda M, o: M.CosineAnnealingWarmRestarts(o, 3, 2, 0.001),
    "CyclicLR": lambda M, o: M.CyclicLR(o, 0.01, 0.1, step_size_up=3),
    "CyclicLR_triangular2": lambda M, o: M.CyclicLR(o, 0.01, 0.1, step_size_up=2,
                                                    step_size_down=3, mode="triangular2"),
    "CyclicLR_exp_range": lambda M, o: M.CyclicLR(o, 0.01, 0.1, step_size_up=2,
                                                  mode="exp_range", gamma=0.9),
    "OneCycleLR": lambda M, o: M.OneCycleLR(o, 1.0, total_steps=21),
    "OneCycleLR_linear_three_phase": lambda M, o: M.OneCycleLR(
        o, 1.0, total_steps=21, anneal_strategy="linear", three_phase=True),
    "SequentialLR": lambda M, o: M.SequentialLR(
        o, [M.LinearLR(o, 0.1, total_iters=4), M.CosineAnnealingLR(o, 10)], [4]),
    "ChainedScheduler": lambda M, o: M.ChainedScheduler(
        [M.LinearLR(o, 0.1, total_iters=4), M.ExponentialLR(o, 0.9)]),
}


@pytest.mark.parametrize("kind", ["sgd", "adam"])
@pytest.mark.parametrize("groups", [False, True])
@pytest.mark.parametrize("name", sorted(SCHEDULERS))
def test_scheduler_rates_equal_torchs_exactly(name, groups, kind):
    opt, topt = _opt_pair(kind, groups)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sched, tsched = SCHEDULERS[name](S, opt), SCHEDULERS[name](T, topt)
        ours, theirs = _rates(opt, sched, topt, tsched)
    assert ours == theirs                      # bit for bit: PyTorch's recurrences


@pytest.mark.parametrize("name", ["StepLR", "CosineAnnealingLR", "ExponentialLR", "LambdaLR",
                                  "MultiStepLR", "PolynomialLR"])
def test_schedulers_resume_from_last_epoch_as_torch(name):
    make = {"StepLR": lambda M, o, e: M.StepLR(o, 3, 0.5, last_epoch=e),
            "CosineAnnealingLR": lambda M, o, e: M.CosineAnnealingLR(o, 7, 0.01, last_epoch=e),
            "ExponentialLR": lambda M, o, e: M.ExponentialLR(o, 0.9, last_epoch=e),
            "LambdaLR": lambda M, o, e: M.LambdaLR(o, lambda k: 1 / (k + 1), last_epoch=e),
            "MultiStepLR": lambda M, o, e: M.MultiStepLR(o, [6, 9], last_epoch=e),
            "PolynomialLR": lambda M, o, e: M.PolynomialLR(o, 12, last_epoch=e)}[name]
    opt, topt = _opt_pair(groups=True)
    for o in (opt, topt):
        for g in o.param_groups:
            g["initial_lr"], g["lr"] = 0.2, 0.05
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ours, theirs = _rates(opt, make(S, opt, 5), topt, make(T, topt, 5))
    assert ours == theirs
    fresh, _ = _opt_pair()
    with pytest.raises(KeyError, match="initial_lr"):
        make(S, fresh, 5)


def test_schedulers_follow_rates_changed_by_hand_and_step_with_an_epoch():
    def triple(i, opt, topt):
        if i == 5:
            for o in (opt, topt):
                for g in o.param_groups:
                    g["lr"] *= 3
    for make in (lambda M, o: M.StepLR(o, 3, 0.5), lambda M, o: M.CosineAnnealingLR(o, 8)):
        opt, topt = _opt_pair()
        ours, theirs = _rates(opt, make(S, opt), topt, make(T, topt), between=triple)
        assert ours == theirs
    opt, topt = _opt_pair()
    sched, tsched = S.StepLR(opt, 3, 0.5), T.StepLR(topt, 3, 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        sched.step(7)                          # deprecated: the closed form
        tsched.step(7)
    assert sched.get_last_lr() == tsched.get_last_lr()


def test_scheduler_state_dict_round_trip():
    opt, _ = _opt_pair(groups=True)
    sched = S.CosineAnnealingLR(opt, 7)
    for _ in range(3):
        sched.step()
    again = S.CosineAnnealingLR(_opt_pair(groups=True)[0], 7)
    again.load_state_dict(sched.state_dict())
    assert again.get_last_lr() == sched.get_last_lr() and again.last_epoch == 3
    lam = S.LambdaLR(opt, [lambda e: 1.0, lambda e: 0.5])
    assert lam.state_dict()["lr_lambdas"] == [None, None]


@pytest.mark.parametrize("kw", [{"patience": 2}, {"patience": 1, "cooldown": 2, "factor": 0.5},
                                {"mode": "max", "patience": 1},
                                {"patience": 0, "threshold": 0.2, "threshold_mode": "abs",
                                 "min_lr": [0.02, 0.3]}], ids=repr)
def test_reduce_lr_on_plateau_with_groups(kw):
    metrics = [1, .9, .9, .9, .9, .8, .8, .8, .8, .8, .8, .7, .7, .7, .7, .7, .7, .7, .7, .7]
    opt, topt = _opt_pair(groups=True)
    ours, theirs = _rates(opt, S.ReduceLROnPlateau(opt, **kw), topt,
                          T.ReduceLROnPlateau(topt, **kw), metrics=metrics)
    assert ours == theirs


@pytest.mark.parametrize("case", ["one_cycle_sgd_groups", "cyclic_adam", "sequential_adamw"])
def test_scheduled_updates_equal_torchs(case):
    rng = np.random.default_rng(2)
    init = [rng.standard_normal((3, 4)), rng.standard_normal(5)]
    ps = [pf.tensor(a.copy(), requires_grad=True) for a in init]
    ts = [torch.tensor(a.copy(), requires_grad=True) for a in init]

    def build(M, params):
        ours = M is S
        if case == "one_cycle_sgd_groups":
            opt = (pf.optim.SGD if ours else torch.optim.SGD)(
                [{"params": params[:1]}, {"params": params[1:], "lr": 0.3}], lr=0.1,
                momentum=0.9)
            return opt, M.OneCycleLR(opt, [1.0, 0.5], total_steps=12)
        if case == "cyclic_adam":
            opt = (pf.optim.Adam if ours else torch.optim.Adam)(params, lr=0.1)
            return opt, M.CyclicLR(opt, 0.01, 0.1, step_size_up=3)
        opt = (pf.optim.AdamW if ours else torch.optim.AdamW)(params, lr=0.1)
        return opt, M.SequentialLR(opt, [M.LinearLR(opt, 0.1, total_iters=3),
                                         M.CosineAnnealingLR(opt, 8)], [3])

    (opt, sched), (topt, tsched) = build(S, ps), build(T, ts)
    for _ in range(11):
        for p, t in zip(ps, ts):
            g = rng.standard_normal(tuple(p.shape))
            p.grad, t.grad = pf.tensor(g), torch.tensor(g)
        opt.step()
        topt.step()
        sched.step()
        tsched.step()
    for p, t in zip(ps, ts):
        np.testing.assert_allclose(p.numpy(), t.detach().numpy(), **TOL)
