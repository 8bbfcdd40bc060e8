"""Elementwise math and activations added for PyTorch parity (trunc, tan, asin ... exp2; fmod,
remainder, floor_divide, atan2, hypot, lerp, clamp with one bound; elu ... glu): forward and
gradients against PyTorch in float64 (also at 0-d and zero-size shapes and with broadcasting),
second derivatives against PyTorch, eager against compiled, and finite differences."""
import math

import numpy as np
import pytest

import pyfront as pf
from pyfront.testing import check_grad

# name -> (pyfront fn, torch fn of the torch module, (lo, hi) of the inputs)
UNARY = {
    "trunc": (pf.trunc, lambda t: t.trunc, (-3, 3)),
    "tan": (pf.tan, lambda t: t.tan, (-1.2, 1.2)),
    "asin": (pf.asin, lambda t: t.asin, (-0.95, 0.95)),
    "acos": (pf.acos, lambda t: t.acos, (-0.95, 0.95)),
    "atan": (pf.atan, lambda t: t.atan, (-3, 3)),
    "sinh": (pf.sinh, lambda t: t.sinh, (-3, 3)),
    "cosh": (pf.cosh, lambda t: t.cosh, (-3, 3)),
    "asinh": (pf.asinh, lambda t: t.asinh, (-3, 3)),
    "acosh": (pf.acosh, lambda t: t.acosh, (1.1, 4)),
    "atanh": (pf.atanh, lambda t: t.atanh, (-0.9, 0.9)),
    "log2": (pf.log2, lambda t: t.log2, (0.1, 4)),
    "log10": (pf.log10, lambda t: t.log10, (0.1, 4)),
    "exp2": (pf.exp2, lambda t: t.exp2, (-3, 3)),
    "elu": (lambda x: pf.elu(x, 0.7), lambda t: lambda x: t.nn.functional.elu(x, 0.7), (-3, 3)),
    "selu": (pf.selu, lambda t: t.nn.functional.selu, (-3, 3)),
    "celu": (lambda x: pf.celu(x, 1.3), lambda t: lambda x: t.nn.functional.celu(x, 1.3),
             (-3, 3)),
    "silu": (pf.silu, lambda t: t.nn.functional.silu, (-6, 6)),
    "mish": (pf.mish, lambda t: t.nn.functional.mish, (-6, 6)),
    "softsign": (pf.softsign, lambda t: t.nn.functional.softsign, (-4, 4)),
    "logsigmoid": (pf.logsigmoid, lambda t: t.nn.functional.logsigmoid, (-30, 30)),
    "hardsigmoid": (pf.hardsigmoid, lambda t: t.nn.functional.hardsigmoid, (-5, 5)),
    "hardswish": (pf.hardswish, lambda t: t.nn.functional.hardswish, (-5, 5)),
    "hardtanh": (lambda x: pf.hardtanh(x, -0.5, 2.0),
                 lambda t: lambda x: t.nn.functional.hardtanh(x, -0.5, 2.0), (-3, 3)),
    "relu6": (pf.relu6, lambda t: t.nn.functional.relu6, (-3, 8)),
    "gelu_tanh": (lambda x: pf.gelu(x, approximate="tanh"),
                  lambda t: lambda x: t.nn.functional.gelu(x, approximate="tanh"), (-5, 5)),
    "softplus_beta": (lambda x: pf.softplus(x, beta=2.0, threshold=3.0),
                      lambda t: lambda x: t.nn.functional.softplus(x, 2.0, 3.0), (-4, 4)),
    "softplus": (pf.softplus, lambda t: t.nn.functional.softplus, (-30, 30)),
}

BINARY = {
    "fmod": (pf.fmod, lambda t: t.fmod, (-5, 5), (0.5, 2)),
    "remainder": (pf.remainder, lambda t: t.remainder, (-5, 5), (-2, 2)),
    "floor_divide": (pf.floor_divide, lambda t: t.floor_divide, (-5, 5), (-2, 2)),
    "atan2": (pf.atan2, lambda t: t.atan2, (-3, 3), (-3, 3)),
    "hypot": (pf.hypot, lambda t: t.hypot, (-3, 3), (-3, 3)),
    "pow": (pf.pow, lambda t: t.pow, (0.2, 3), (-2, 2)),
}

SHAPES = [(3, 4), (), (0, 3), (2, 1, 5)]
# PyTorch's celu, hardsigmoid and hardswish (second) derivatives round 1/alpha, 1/6 and 1/3 to
# float32 (celu: derivatives.yaml's 1.0/alpha.toFloat(); hardsigmoid: 1.0f / 6.0f); ours are the
# exact
# derivatives, checked against finite differences below
GRAD_RTOL = {"celu": 1e-7, "hardsigmoid": 1e-7, "hardswish": 1e-7}


def _draw(rng, lo, hi, shape):
    x = rng.uniform(lo, hi, shape)
    if isinstance(x, np.ndarray):
        x[np.abs(x) < 0.05] = 0.25      # kinks at 0 (sign-dependent ops): stay off them
    return np.asarray(x, np.float64)


def _torch_grad(torch, fn, arrays, seed, create_graph=False):
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    y = fn(*ts)
    gs = torch.autograd.grad(y, ts, torch.tensor(seed), allow_unused=True,
                             create_graph=create_graph)
    return ts, y, gs


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_forward_and_gradient_match_torch(name, rng, torch):
    fn, tfn, (lo, hi) = UNARY[name]
    for shape in SHAPES:
        x = _draw(rng, lo, hi, shape)
        seed = rng.standard_normal(shape)
        t = pf.tensor(x, requires_grad=True)
        y = fn(t)
        _, ty, (tg,) = _torch_grad(torch, tfn(torch), [x], seed)
        np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12,
                                   err_msg=name)
        (g,) = pf.grad(y, [t], grad_outputs=pf.tensor(seed))
        np.testing.assert_allclose(g.numpy(), tg.numpy(), rtol=GRAD_RTOL.get(name, 1e-10),
                                   atol=1e-12, err_msg=name)
        # float32: the native float kernels within a few ulp of the float64 answer
        y32 = fn(pf.tensor(x.astype(np.float32))).numpy()
        assert y32.dtype == np.float32
        np.testing.assert_allclose(y32, ty.detach().numpy(), rtol=3e-6, atol=3e-6, err_msg=name)


@pytest.mark.parametrize("name", sorted(set(UNARY) - {"trunc", "hardsigmoid", "hardtanh",
                                                      "relu6"}))
def test_unary_second_derivative_matches_torch(name, rng, torch):
    fn, tfn, (lo, hi) = UNARY[name]
    x = _draw(rng, lo, hi, (7,))
    seed, seed2 = rng.standard_normal(7), rng.standard_normal(7)
    ts, _, (tg,) = _torch_grad(torch, tfn(torch), [x], seed, create_graph=True)
    (tgg,) = torch.autograd.grad(tg, ts, torch.tensor(seed2))
    t = pf.tensor(x, requires_grad=True)
    (g,) = pf.grad(fn(t), [t], grad_outputs=pf.tensor(seed), create_graph=True)
    (gg,) = pf.grad(g, [t], grad_outputs=pf.tensor(seed2))
    np.testing.assert_allclose(gg.numpy(), tgg.numpy(), rtol=GRAD_RTOL.get(name, 1e-9),
                               atol=1e-11, err_msg=name)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_gradient_matches_finite_differences(name, rng):
    fn, _, (lo, hi) = UNARY[name]
    check_grad(fn, _draw(rng, lo, hi, (2, 3)))


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_forward_and_gradients_match_torch_with_broadcasting(name, rng, torch):
    fn, tfn, (alo, ahi), (blo, bhi) = BINARY[name]
    for sa, sb in [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 3), (4, 1)), ((), (2, 3)),
                   ((0, 3), (3,))]:
        a, b = _draw(rng, alo, ahi, sa), _draw(rng, blo, bhi, sb)
        shape = np.broadcast_shapes(sa, sb)
        seed = rng.standard_normal(shape)
        ta, tb = pf.tensor(a, requires_grad=True), pf.tensor(b, requires_grad=True)
        y = fn(ta, tb)
        if name == "floor_divide":       # piecewise constant: no gradient, as in PyTorch
            want = tfn(torch)(torch.tensor(a), torch.tensor(b)).numpy()
            np.testing.assert_array_equal(y.numpy(), want)
            assert not y.requires_grad
            continue
        _, ty, tgs = _torch_grad(torch, tfn(torch), [a, b], seed)
        np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-12, atol=1e-12,
                                   err_msg=name)
        gs = pf.grad(y, [ta, tb], grad_outputs=pf.tensor(seed))
        for g, tg in zip(gs, tgs):
            np.testing.assert_allclose(g.numpy(), tg.numpy(), rtol=1e-10, atol=1e-12,
                                       err_msg=name)


def test_binary_gradients_match_finite_differences(rng):
    for name in ("fmod", "remainder", "atan2", "hypot", "pow"):
        fn, _, (alo, ahi), (blo, bhi) = BINARY[name]
        check_grad(fn, _draw(rng, alo, ahi, (2, 3)), _draw(rng, blo, bhi, (3,)))
    check_grad(lambda a, b, w: pf.lerp(a, b, w), rng.standard_normal((2, 3)),
               rng.standard_normal(3), rng.uniform(0, 1, (2, 1)))
    check_grad(lambda x, w: pf.prelu(x, w), _draw(rng, -2, 2, (2, 3, 4)), np.array([0.1, 0.3, 0.5]))
    check_grad(lambda x: pf.glu(x, 1), rng.standard_normal((2, 4, 3)))


def test_integer_floor_divide_remainder_and_fmod_are_python_and_c_exact():
    a = np.array([7, -7, 7, -7, 0, 5], np.int64)
    b = np.array([2, 2, -2, -2, 3, -1], np.int64)
    ta, tb = pf.tensor(a), pf.tensor(b)
    assert (ta // tb).dtype is pf.int64 and (ta // tb).tolist() == (a // b).tolist()
    assert (ta % tb).dtype is pf.int64 and (ta % tb).tolist() == (a % b).tolist()
    assert pf.fmod(ta, tb).tolist() == np.fmod(a, b).tolist()
    i32 = pf.tensor(np.array([-2 ** 31, 9], np.int32))
    assert (i32 // -1).tolist() == [-2 ** 31, -9]          # wraps, as in PyTorch; no trap
    assert (i32 % -1).tolist() == [0, 0]
    for fn in (pf.floor_divide, pf.remainder, pf.fmod):
        with pytest.raises(pf.NumericError, match="integer division by zero"):
            fn(ta, pf.tensor([1, 2, 0, 1, 1, 1]))
    # floats follow Python: 5.0 // 0.1 is 49 (floor of the exact quotient), -5 % 3 is 1
    assert (pf.tensor([5.0, -5.0]) // 0.1).tolist() == [49.0, -50.0]
    assert (pf.tensor([5.0, -5.0]) % 3).tolist() == [2.0, 1.0]
    assert (7 // pf.tensor([2])).tolist() == [3] and (7 % pf.tensor([-2])).tolist() == [-1]


def test_integer_pow_stays_integer_and_refuses_negative_exponents(torch):
    x = pf.tensor([2, -3, 0, 1])
    assert (x ** 3).dtype is pf.int64 and (x ** 3).tolist() == [8, -27, 0, 1]
    assert (x ** pf.tensor([0, 1, 2, 5])).tolist() == [1, -3, 0, 1]
    big = pf.tensor(np.array([3], np.int32)) ** 40        # wraps around like PyTorch
    assert big.tolist() == torch.tensor([3], dtype=torch.int32).pow(40).tolist()
    with pytest.raises(pf.DTypeError, match="negative integer powers"):
        x ** -1
    # tensor exponents below 0: PyTorch's values (1 and -1 stay, others are 0)
    assert (pf.tensor([1, -1, 2, -1]) ** pf.tensor([-2, -3, -1, -2])).tolist() == [1, -1, 0, 1]
    assert (x ** 0.5).dtype is pf.float32 and (pf.tensor([True]) ** 2).dtype is pf.int64


def test_pow_gradients_at_zero_equal_torch(torch):
    a = np.array([0.0, 0.0, 0.0, 2.0, 0.0])
    b = np.array([0.0, 2.0, 1.5, 0.0, -1.0])
    ta, tb = pf.tensor(a, requires_grad=True), pf.tensor(b, requires_grad=True)
    ga, gb = pf.grad(pf.pow(ta, tb).sum(), [ta, tb])
    x, y = torch.tensor(a, requires_grad=True), torch.tensor(b, requires_grad=True)
    tga, tgb = torch.autograd.grad(torch.pow(x, y).sum(), [x, y])
    np.testing.assert_array_equal(ga.numpy(), tga.numpy())
    np.testing.assert_array_equal(gb.numpy(), tgb.numpy())
    assert gb.numpy()[:3].tolist() == [0.0, 0.0, 0.0]       # was NaN / -inf before
    t = pf.tensor([0.0, 1.0], requires_grad=True)
    (g,) = pf.grad((t ** 0).sum(), [t])
    assert g.tolist() == [0.0, 0.0]


def test_clamp_with_one_bound_and_integers():
    x = pf.tensor([-2.0, 0.5, 3.0], requires_grad=True)
    assert pf.clamp(x, min=0.0).tolist() == [0.0, 0.5, 3.0]
    assert pf.clamp(x, max=1.0).tolist() == [-2.0, 0.5, 1.0]
    (g,) = pf.grad(pf.clamp(x, max=1.0).sum(), [x])
    assert g.tolist() == [1.0, 1.0, 0.0]
    i = pf.tensor([-5, 2, 9])
    assert i.clamp(0, 4).dtype is pf.int64 and i.clamp(0, 4).tolist() == [0, 2, 4]
    with pytest.raises(ValueError, match="give lo, hi or both"):
        pf.clamp(x)


def test_glu_prelu_and_lerp_forward_match_torch(rng, torch):
    x = rng.standard_normal((2, 6, 3))
    np.testing.assert_allclose(pf.glu(pf.tensor(x), 1).numpy(),
                               torch.nn.functional.glu(torch.tensor(x), 1).numpy(), rtol=1e-12)
    w = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    np.testing.assert_allclose(pf.prelu(pf.tensor(x), pf.tensor(w)).numpy(),
                               torch.nn.functional.prelu(torch.tensor(x), torch.tensor(w)).numpy())
    a, b = rng.standard_normal(4), rng.standard_normal(4)
    np.testing.assert_allclose(pf.lerp(pf.tensor(a), pf.tensor(b), 0.3).numpy(),
                               torch.lerp(torch.tensor(a), torch.tensor(b), 0.3).numpy(),
                               rtol=1e-12)
    with pytest.raises(pf.ShapeError, match="odd size 5"):
        pf.glu(pf.ones(2, 5))


def test_eager_equals_compiled_and_activations_fuse(rng):
    names = ["tan", "silu", "mish", "elu", "hardswish", "gelu_tanh", "logsigmoid"]

    def fn(x, y):
        out = pf.atan2(x, y) + pf.hypot(x, y) + pf.remainder(x, 1.5)
        for n in names:
            out = out + UNARY[n][0](x * 0.5)
        return out

    x = rng.standard_normal((5, 4)).astype(np.float32)
    y = rng.standard_normal((4,)).astype(np.float32)
    eager = fn(pf.tensor(x), pf.tensor(y)).numpy()
    compiled = pf.jit(fn)(pf.tensor(x), pf.tensor(y)).numpy()
    np.testing.assert_allclose(compiled, eager, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("act", ["silu", "elu", "selu", "mish", "hardswish", "gelu_tanh",
                                 "relu6", "softsign"])
def test_dense_takes_the_new_activations(act, rng):
    layer = pf.nn.Dense(3, activation=act, in_features=4)
    x = pf.tensor(rng.standard_normal((2, 4)).astype(np.float32))
    want = pf.ops.elementwise.ACTIVATIONS[act](pf.linear(x, layer.kernel, layer.bias))
    np.testing.assert_allclose(layer(x).numpy(), want.numpy(), rtol=1e-6)


def test_prelu_layer_learns_its_slope(rng):
    layer = pf.nn.PReLU(num_parameters=3, init=0.25)
    x = pf.tensor(rng.standard_normal((4, 3, 2)))
    y = layer(x)
    want = np.where(x.numpy() > 0, x.numpy(), 0.25 * x.numpy())
    np.testing.assert_allclose(y.numpy(), want.astype(np.float32), rtol=1e-6)
    (g,) = pf.grad(y.sum(), [layer.weight])
    np.testing.assert_allclose(g.numpy(), np.minimum(x.numpy(), 0).sum(axis=(0, 2)), rtol=1e-5)


def test_gelu_and_softplus_arguments_are_checked():
    with pytest.raises(ValueError, match="approximate"):
        pf.gelu(pf.ones(2), approximate="fast")
    with pytest.raises(ValueError, match="beta"):
        pf.softplus(pf.ones(2), beta=0)
    assert math.isclose(pf.softplus(pf.tensor([100.0]), beta=1, threshold=20).item(), 100.0)


@pytest.mark.parametrize("act,fn", [("silu", pf.silu), ("elu", lambda y: pf.elu(y, 0.4)),
                                    ("hardtanh", lambda y: pf.hardtanh(y, -0.3, 0.5)),
                                    ("mish", pf.mish),
                                    ("gelu_tanh", lambda y: pf.gelu(y, approximate="tanh"))])
def test_linear_takes_the_new_activations_into_its_kernel(act, fn, rng):
    """Compiled inference fuses linear + activation into one linear kernel (PF_ACT_UNARY runs
    the elementwise kernel's loop on each block), with the activation's parameters."""
    from pyfront.graph import passes

    w = rng.standard_normal((5, 3)).astype(np.float32)
    g = pf.Graph()
    with g:
        x = pf.placeholder("x", (None, 5))
        out = fn(pf.linear(x, g.constant(pf.tensor(w))))
    program = passes.Program(g, [out])
    passes.fuse_linear_activation(program)
    ops = [n for n in program.nodes if n.kind == "op"]
    assert [n.op.name for n in ops] == ["linear"] and ops[0].attrs["activation"] == act
    xv = rng.standard_normal((4, 5)).astype(np.float32)
    eager = fn(pf.linear(pf.tensor(xv), pf.tensor(w))).numpy()
    compiled = pf.jit(lambda t: fn(pf.linear(t, pf.tensor(w))))(pf.tensor(xv)).numpy()
    np.testing.assert_allclose(compiled, eager, rtol=1e-6, atol=1e-7)
    with pytest.raises(ValueError, match="takes parameters"):
        pf.linear(pf.tensor(xv), pf.tensor(w), activation="elu")
