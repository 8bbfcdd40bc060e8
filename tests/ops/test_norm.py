"""batch_norm and layer_norm: forward against float64 numpy references and PyTorch, gradients
(first and second order) against finite differences, running statistics, compiled graphs,
numerically hard inputs, and clean errors."""
import numpy as np
import pytest

import pyfront as pf
from pyfront import errors
from pyfront.backend import cpu
from pyfront.testing import check_grad

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(1234)

# (N, C, S) views that take each kernel path: the column path (spatial size < 32, (N, C)
# included), the channel path, and channels longer than one statistics tile (4096)
BN_SHAPES = [(16, 5), (6, 4, 7), (3, 2, 5, 9), (4, 3, 70, 70)]


def bn_reference(x, gamma, beta, eps):
    """Training-mode batch norm in float64: (y, mean, biased var, unbiased var)."""
    axes = (0,) + tuple(range(2, x.ndim))
    x = x.astype(np.float64)
    mean = x.mean(axis=axes)
    var = x.var(axis=axes)
    m = x.size // x.shape[1]
    b = (1, -1) + (1,) * (x.ndim - 2)
    y = (x - mean.reshape(b)) / np.sqrt(var.reshape(b) + eps) * gamma.reshape(b) + beta.reshape(b)
    return y, mean, var, var * m / (m - 1)


def ln_reference(x, k, gamma, beta, eps):
    axes = tuple(range(x.ndim - k, x.ndim))
    x = x.astype(np.float64)
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


# ---------------------------------------------------------------------------------------------
# batch norm: forward and running statistics

@pytest.mark.parametrize("shape", BN_SHAPES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_batch_norm_train_matches_reference(shape, dtype):
    x = (RNG.standard_normal(shape) * 3 + 1.5).astype(dtype)
    c = shape[1]
    gamma, beta = RNG.standard_normal(c).astype(dtype), RNG.standard_normal(c).astype(dtype)
    rmean, rvar = RNG.standard_normal(c).astype(dtype), (RNG.random(c) + 0.5).astype(dtype)
    rmean0, rvar0 = rmean.copy(), rvar.copy()
    y = pf.batch_norm(pf.tensor(x), pf.from_numpy(rmean), pf.from_numpy(rvar), pf.tensor(gamma),
                      pf.tensor(beta), training=True, momentum=0.3, eps=1e-3)
    ref, mean, _, unbiased = bn_reference(x, gamma, beta, 1e-3)
    tol = 2e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(y.numpy(), ref, rtol=tol, atol=tol)
    assert y.dtype.name == dtype
    # the running statistics were updated in place, from the unbiased variance
    np.testing.assert_allclose(rmean, 0.7 * rmean0 + 0.3 * mean, rtol=tol, atol=tol)
    np.testing.assert_allclose(rvar, 0.7 * rvar0 + 0.3 * unbiased, rtol=tol, atol=tol)


@pytest.mark.parametrize("shape", BN_SHAPES)
def test_batch_norm_eval_uses_running_statistics(shape):
    x = RNG.standard_normal(shape).astype("float32")
    c = shape[1]
    gamma, beta = RNG.standard_normal(c), RNG.standard_normal(c)
    rmean, rvar = RNG.standard_normal(c), RNG.random(c) + 0.5
    y = pf.batch_norm(pf.tensor(x), pf.tensor(rmean.astype("float32")),
                      pf.tensor(rvar.astype("float32")), pf.tensor(gamma.astype("float32")),
                      pf.tensor(beta.astype("float32")), training=False, eps=1e-4)
    b = (1, -1) + (1,) * (x.ndim - 2)
    ref = (x - rmean.reshape(b)) / np.sqrt(rvar.reshape(b) + 1e-4) * gamma.reshape(b) + \
        beta.reshape(b)
    np.testing.assert_allclose(y.numpy(), ref, rtol=2e-5, atol=2e-5)


def test_batch_norm_batch_statistics_without_running_statistics():
    x = RNG.standard_normal((8, 3, 4)).astype("float64")
    y = pf.batch_norm(pf.tensor(x), training=True)
    ref, *_ = bn_reference(x, np.ones(3), np.zeros(3), 1e-5)
    np.testing.assert_allclose(y.numpy(), ref, rtol=1e-12, atol=1e-12)


def test_batch_norm_float64_running_statistics_with_float32_input():
    # running statistics keep their own dtype (a model may keep them in float64)
    x = RNG.standard_normal((10, 4)).astype("float32")
    rmean, rvar = np.zeros(4), np.ones(4)
    pf.batch_norm(pf.tensor(x), pf.from_numpy(rmean), pf.from_numpy(rvar), training=True)
    np.testing.assert_allclose(rmean, 0.1 * x.astype(np.float64).mean(0), rtol=1e-6)
    np.testing.assert_allclose(rvar, 0.9 + 0.1 * x.astype(np.float64).var(0, ddof=1),
                               rtol=1e-6)
    assert rmean.dtype == np.float64


def test_batch_norm_variance_is_accurate_far_from_zero():
    # a large common offset defeats E[x^2] - E[x]^2 in float32; the tiled two-pass does not
    x = (1e4 + RNG.standard_normal((64, 3, 40, 40))).astype("float32")
    rvar = np.zeros(3, np.float32)
    pf.batch_norm(pf.tensor(x), pf.tensor(np.zeros(3, np.float32)), pf.from_numpy(rvar),
                  training=True, momentum=1.0)
    exact = x.astype(np.float64).var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(rvar, exact, rtol=1e-4)


def test_batch_norm_same_result_on_one_and_two_threads():
    x = RNG.standard_normal((32, 8, 12, 12)).astype("float32")
    g = RNG.standard_normal(x.shape).astype("float32")
    before = pf.get_num_threads()
    results = []
    try:
        for n in (1, 2):
            pf.set_num_threads(n)
            xt = pf.tensor(x, requires_grad=True)
            y = pf.batch_norm(xt, training=True)
            (dx,) = pf.grad(y, [xt], grad_outputs=[pf.tensor(g)])
            results.append((y.numpy().copy(), dx.numpy().copy()))
    finally:
        pf.set_num_threads(before)
    for a, b in zip(*results):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------------
# batch norm: gradients

@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (3, 2, 6, 6)])
def test_batch_norm_train_gradient(shape):
    x, g, b = RNG.standard_normal(shape), RNG.standard_normal(shape[1]), \
        RNG.standard_normal(shape[1])
    check_grad(lambda x, g, b: pf.batch_norm(x, None, None, g, b, training=True), x, g, b)


def test_batch_norm_eval_gradient_includes_running_statistics():
    shape = (4, 3, 5)
    args = (RNG.standard_normal(shape), RNG.standard_normal(3), RNG.standard_normal(3),
            RNG.standard_normal(3), RNG.random(3) + 0.5)
    check_grad(lambda x, g, b, m, v: pf.batch_norm(x, m, v, g, b, training=False), *args)


def _second_order(fn):
    """fn's input gradients under a fixed output weighting, as a differentiable function."""
    def grads(*args):
        args = [a.requires_grad_() for a in args]
        y = fn(*args)
        w = pf.tensor(np.random.default_rng(5).standard_normal(y.shape))
        return tuple(pf.grad((y * w).sum(), args, create_graph=True))
    return grads


@pytest.mark.parametrize("shape", [(5, 3), (4, 2, 6)])
def test_batch_norm_second_order_gradient(shape):
    x, g, b = RNG.standard_normal(shape), RNG.standard_normal(shape[1]), \
        RNG.standard_normal(shape[1])
    check_grad(_second_order(lambda x, g, b: pf.batch_norm(x, None, None, g, b, training=True)),
               x, g, b, atol=1e-5)


def _third_order(fn):
    """The input gradients of a fixed weighting of fn's second-order gradients, as a
    differentiable function: check_grad on it checks third derivatives."""
    second = _second_order(fn)

    def grads(*args):
        args = [a.requires_grad_() for a in args]
        rng = np.random.default_rng(6)
        s = sum((d * pf.tensor(rng.standard_normal(d.shape))).sum() for d in second(*args))
        return tuple(pf.grad(s, args, create_graph=True))
    return grads


@pytest.mark.parametrize("shape", [(5, 3), (4, 2, 3)])
def test_batch_norm_third_order_gradient(shape):
    # float64 finite differences of the second-order gradients: the second-order rule once read
    # the saved mean and rstd, whose dependence on x its own gradient did not follow
    # (beta is left out: no second-order gradient depends on it)
    x, g, b = RNG.standard_normal(shape), RNG.standard_normal(shape[1]), \
        pf.tensor(RNG.standard_normal(shape[1]))
    check_grad(_third_order(lambda x, g: pf.batch_norm(x, None, None, g, b, training=True)),
               x, g, atol=1e-5)


def test_batch_norm_eval_second_order_gradient():
    args = (RNG.standard_normal((4, 3)), RNG.standard_normal(3), RNG.standard_normal(3),
            RNG.standard_normal(3), RNG.random(3) + 0.5)
    check_grad(_second_order(lambda x, g, b, m, v: pf.batch_norm(x, m, v, g, b)), *args,
               atol=1e-5)


# ---------------------------------------------------------------------------------------------
# batch norm: PyTorch parity

@pytest.mark.parametrize("shape", [(16, 6), (8, 4, 10), (4, 3, 7, 9), (2, 3, 70, 70)])
def test_batch_norm_matches_torch_over_several_steps(shape):
    c = shape[1]
    tbn = {2: torch.nn.BatchNorm1d, 3: torch.nn.BatchNorm1d, 4: torch.nn.BatchNorm2d}[len(shape)](
        c, momentum=0.2)
    with torch.no_grad():
        tbn.weight.copy_(torch.tensor(RNG.standard_normal(c)))
        tbn.bias.copy_(torch.tensor(RNG.standard_normal(c)))
    gamma = tbn.weight.detach().numpy().copy()
    beta = tbn.bias.detach().numpy().copy()
    rmean, rvar = np.zeros(c, np.float32), np.ones(c, np.float32)
    for step in range(3):
        x = (RNG.standard_normal(shape) * (step + 1) + step).astype("float32")
        g = RNG.standard_normal(shape).astype("float32")
        xt = pf.tensor(x, requires_grad=True)
        gt, bt = pf.tensor(gamma, requires_grad=True), pf.tensor(beta, requires_grad=True)
        y = pf.batch_norm(xt, pf.from_numpy(rmean), pf.from_numpy(rvar), gt, bt, training=True,
                          momentum=0.2)
        dx, dg, db = pf.grad(y, [xt, gt, bt], grad_outputs=[pf.tensor(g)])
        tx = torch.tensor(x, requires_grad=True)
        ty = tbn(tx)
        ty.backward(torch.tensor(g))
        np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(dx.numpy(), tx.grad.numpy(), rtol=1e-4, atol=2e-4)
        np.testing.assert_allclose(dg.numpy(), tbn.weight.grad.numpy(), rtol=1e-4, atol=2e-3)
        np.testing.assert_allclose(db.numpy(), tbn.bias.grad.numpy(), rtol=1e-4, atol=2e-3)
        tbn.weight.grad = tbn.bias.grad = None
        np.testing.assert_allclose(rmean, tbn.running_mean.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(rvar, tbn.running_var.numpy(), rtol=1e-5, atol=1e-6)
    tbn.eval()
    x = RNG.standard_normal(shape).astype("float32")
    y = pf.batch_norm(pf.tensor(x), pf.from_numpy(rmean), pf.from_numpy(rvar), pf.tensor(gamma),
                      pf.tensor(beta), training=False)
    np.testing.assert_allclose(y.numpy(), tbn(torch.tensor(x)).detach().numpy(), rtol=1e-5,
                               atol=1e-5)


# ---------------------------------------------------------------------------------------------
# layer norm

@pytest.mark.parametrize("shape,k", [((4, 7), 1), ((3, 4, 5), 2), ((2, 3, 5000), 1),
                                     ((6,), 1)])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_layer_norm_matches_reference(shape, k, dtype):
    x = (RNG.standard_normal(shape) * 2 + 3).astype(dtype)
    norm_shape = shape[len(shape) - k:]
    gamma = RNG.standard_normal(norm_shape).astype(dtype)
    beta = RNG.standard_normal(norm_shape).astype(dtype)
    y = pf.layer_norm(pf.tensor(x), norm_shape, pf.tensor(gamma), pf.tensor(beta), eps=1e-4)
    tol = 3e-5 if dtype == "float32" else 1e-12
    np.testing.assert_allclose(y.numpy(), ln_reference(x, k, gamma, beta, 1e-4), rtol=tol,
                               atol=tol)


def test_layer_norm_without_affine():
    x = RNG.standard_normal((5, 6))
    y = pf.layer_norm(pf.tensor(x), 6)
    np.testing.assert_allclose(y.numpy(), ln_reference(x, 1, 1.0, 0.0, 1e-5), rtol=1e-12,
                               atol=1e-12)


@pytest.mark.parametrize("shape,k", [((3, 5), 1), ((2, 3, 4), 2)])
def test_layer_norm_gradient(shape, k):
    ns = shape[len(shape) - k:]
    x, g, b = RNG.standard_normal(shape), RNG.standard_normal(ns), RNG.standard_normal(ns)
    check_grad(lambda x, g, b: pf.layer_norm(x, ns, g, b), x, g, b)


def test_layer_norm_second_order_gradient():
    x, g, b = RNG.standard_normal((3, 2, 4)), RNG.standard_normal((2, 4)), \
        RNG.standard_normal((2, 4))
    check_grad(_second_order(lambda x, g, b: pf.layer_norm(x, (2, 4), g, b)), x, g, b,
               atol=1e-5)


def test_layer_norm_third_order_gradient():
    x, g, b = RNG.standard_normal((3, 2, 3)), RNG.standard_normal((2, 3)), \
        pf.tensor(RNG.standard_normal((2, 3)))
    check_grad(_third_order(lambda x, g: pf.layer_norm(x, (2, 3), g, b)), x, g, atol=1e-5)


@pytest.mark.parametrize("shape,ns", [((8, 16), (16,)), ((4, 6, 32), (6, 32)),
                                      ((64, 48), (48,))])
def test_layer_norm_matches_torch(shape, ns):
    tln = torch.nn.LayerNorm(ns, eps=1e-5)
    with torch.no_grad():
        tln.weight.copy_(torch.tensor(RNG.standard_normal(ns)))
        tln.bias.copy_(torch.tensor(RNG.standard_normal(ns)))
    x = (RNG.standard_normal(shape) * 2 + 1).astype("float32")
    g = RNG.standard_normal(shape).astype("float32")
    xt = pf.tensor(x, requires_grad=True)
    gt = pf.tensor(tln.weight.detach().numpy().copy(), requires_grad=True)
    bt = pf.tensor(tln.bias.detach().numpy().copy(), requires_grad=True)
    y = pf.layer_norm(xt, ns, gt, bt)
    dx, dg, db = pf.grad(y, [xt, gt, bt], grad_outputs=[pf.tensor(g)])
    tx = torch.tensor(x, requires_grad=True)
    ty = tln(tx)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dg.numpy(), tln.weight.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(db.numpy(), tln.bias.grad.numpy(), rtol=1e-4, atol=1e-4)


def test_layer_norm_rows_accurate_far_from_zero():
    x = (5e3 + RNG.standard_normal((4, 3000))).astype("float32")
    y = pf.layer_norm(pf.tensor(x), 3000)
    np.testing.assert_allclose(y.numpy(), ln_reference(x, 1, 1.0, 0.0, 1e-5), atol=2e-3)


# ---------------------------------------------------------------------------------------------
# compiled graphs: the same numbers, running statistics updated on every run

def test_compiled_batch_norm_updates_running_statistics_like_eager():
    shape = (None, 3, 6, 6)
    rm_eager, rv_eager = np.zeros(3, np.float32), np.ones(3, np.float32)
    rm_graph, rv_graph = pf.tensor(np.zeros(3, np.float32)), pf.tensor(np.ones(3, np.float32))
    gamma = pf.tensor(RNG.standard_normal(3).astype("float32"), requires_grad=True)
    beta = pf.tensor(RNG.standard_normal(3).astype("float32"), requires_grad=True)
    g = pf.Graph()
    with g:
        x = g.placeholder("x", shape)
        y = pf.batch_norm(x, rm_graph, rv_graph, gamma, beta, training=True)
        loss = (y * y * pf.tensor(np.arange(3, dtype="float32").reshape(1, 3, 1, 1))).sum()
        dgamma, dx = g.gradients(loss, [g.variable(gamma), x])
        run = g.compile({"y": y, "dgamma": dgamma, "dx": dx})
    for n in (4, 7):
        xv = RNG.standard_normal((n, 3, 6, 6)).astype("float32")
        out = run.run({"x": xv})
        xt = pf.tensor(xv, requires_grad=True)
        ye = pf.batch_norm(xt, pf.from_numpy(rm_eager), pf.from_numpy(rv_eager), gamma, beta,
                           training=True)
        le = (ye * ye * pf.tensor(np.arange(3, dtype="float32").reshape(1, 3, 1, 1))).sum()
        de_gamma, de_x = pf.grad(le, [gamma, xt])
        np.testing.assert_array_equal(out["y"], ye.numpy())
        np.testing.assert_allclose(out["dgamma"], de_gamma.numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(out["dx"], de_x.numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_array_equal(rm_graph.numpy(), rm_eager)
        np.testing.assert_array_equal(rv_graph.numpy(), rv_eager)


def test_compiled_layer_norm_with_unknown_batch():
    gamma = pf.tensor(RNG.standard_normal((4, 5)).astype("float32"))
    beta = pf.tensor(RNG.standard_normal((4, 5)).astype("float32"))
    g = pf.Graph()
    with g:
        x = g.placeholder("x", (None, 4, 5))
        y = pf.layer_norm(x, (4, 5), gamma, beta)
        assert y.shape == (None, 4, 5)
        run = g.compile(y)
    for n in (1, 3):
        xv = RNG.standard_normal((n, 4, 5)).astype("float32")
        np.testing.assert_array_equal(run.run({"x": xv})[y.name],
                                      pf.layer_norm(pf.tensor(xv), (4, 5), gamma, beta).numpy())


# ---------------------------------------------------------------------------------------------
# errors name the op and the shapes, native checks refuse bad calls

def test_batch_norm_errors():
    x = pf.tensor(RNG.standard_normal((4, 3, 5)).astype("float32"))
    with pytest.raises(errors.ShapeError, match=r"batch_norm_batch_stats.*3 channels.*\(4,\)"):
        pf.batch_norm(x, weight=pf.ones(4), training=True)
    with pytest.raises(errors.ShapeError, match=r"more than one value per channel.*\(1, 3\)"):
        pf.batch_norm(pf.ones(1, 3), training=True)
    with pytest.raises(errors.ShapeError, match=r"\(batch, channels"):
        pf.batch_norm(pf.ones(5), training=True)
    with pytest.raises(errors.DTypeError, match="gamma is float64 but x is float32"):
        pf.batch_norm(x, weight=pf.ones(3, dtype="float64"), training=True)
    with pytest.raises(ValueError, match="needs running_mean"):
        pf.batch_norm(x, training=False)
    with pytest.raises(ValueError, match="momentum"):
        pf.batch_norm(x, pf.zeros(3), pf.ones(3), training=True, momentum=1.5)


def test_layer_norm_errors():
    x = pf.tensor(RNG.standard_normal((4, 6)).astype("float32"))
    with pytest.raises(errors.ShapeError, match=r"layer_norm.*\(4, 6\).*normalized_shape \(5,\)"):
        pf.layer_norm(x, 5)
    with pytest.raises(errors.ShapeError, match="normalized_shape"):
        pf.layer_norm(x, (3, 4, 6))
    with pytest.raises(ValueError, match="normalized_shape"):
        pf.layer_norm(x, 0)


def test_native_kernels_refuse_mismatched_arguments():
    f32 = pf.float32
    x = np.zeros((2, 3, 4), np.float32)
    y = np.zeros((2, 3, 4), np.float32)
    vec = np.zeros(3, np.float32)
    short = np.zeros(2, np.float32)

    def b(a):
        return cpu.Buf(a, a.shape, f32).desc()

    with pytest.raises(errors.ShapeError, match="gamma has 2 elements for 3 channels"):
        cpu.run("batch_norm_train", [b(x), b(short), b(vec)], [b(y), b(vec), b(vec)], (),
                (1e-5, 0.1))
    with pytest.raises(errors.NativeError, match="expected 3 outputs"):
        cpu.run("batch_norm_train", [b(x), b(vec), b(vec)], [b(y), b(vec)], (), (1e-5, 0.1))
    with pytest.raises(errors.NativeError, match="momentum"):
        cpu.run("batch_norm_train", [b(x), b(vec), b(vec)], [b(y), b(vec), b(vec)], (),
                (1e-5, 2.0))
    rows = np.zeros((3, 4), np.float32)
    with pytest.raises(errors.ShapeError, match="mean has 2 elements for 3 channels"):
        cpu.run("layer_norm", [b(rows), b(np.zeros(4, np.float32)), b(np.zeros(4, np.float32))],
                [b(rows), b(short), b(vec)], (), (1e-5,))
