"""Eager autograd: accumulation, no_grad, pf.grad with and without create_graph, higher-order
gradients against analytic ones, a Hessian-vector product against finite differences, and
the errors of misuse."""
import math
import threading

import numpy as np
import pytest

import pyfront as pf

_erf = np.vectorize(math.erf, otypes=[np.float64])


def _leaf(values):
    return pf.tensor(np.asarray(values, np.float64), requires_grad=True)


def test_gradients_accumulate_over_backward_calls():
    x = _leaf([1.0, 2.0, 3.0])
    y = (x * x).sum()
    y.backward()
    assert x.grad.tolist() == [2.0, 4.0, 6.0] and not x.grad.requires_grad
    y.backward()                               # the same graph again
    assert x.grad.tolist() == [4.0, 8.0, 12.0]
    (x * 10.0).sum().backward()
    assert x.grad.tolist() == [14.0, 18.0, 22.0]
    x.grad = None
    pf.exp(x).sum().backward()                 # the exp output was dropped: recovered from the tape
    np.testing.assert_allclose(x.grad.numpy(), np.exp([1.0, 2.0, 3.0]))


def test_shared_subexpressions_detach_and_grad_outputs():
    x = _leaf([0.5, -1.0])
    a = x * 3.0
    y = (a * a + a + pf.sin(a)).sum()           # a used three times
    y.backward()
    av = np.array([1.5, -3.0])
    np.testing.assert_allclose(x.grad.numpy(), 3 * (2 * av + 1 + np.cos(av)))
    x.grad = None
    (x.detach() * x).sum().backward()          # no gradient through the detached factor
    assert x.grad.tolist() == [0.5, -1.0]
    x.grad = None
    (x * 2.0).backward(pf.tensor(np.array([1.0, 10.0])))
    assert x.grad.tolist() == [2.0, 20.0]


def test_no_grad_and_grad_modes():
    x = _leaf([1.0])
    with pf.no_grad():
        y = x * 2.0
        with pf.enable_grad():
            z = x * 2.0
    assert not y.requires_grad and y.is_leaf and z.requires_grad
    assert pf.is_grad_enabled()

    @pf.no_grad()
    def double(t):
        return t * 2.0
    assert not double(x).requires_grad
    pf.set_grad_enabled(False)
    try:
        assert not (x + 1.0).requires_grad
    finally:
        pf.set_grad_enabled(True)
    assert (x + 1.0).requires_grad
    assert not (pf.tensor([1.0]) * 2.0).requires_grad      # nothing needs a gradient


def test_decorated_no_grad_restores_the_mode_after_recursion():
    @pf.no_grad()
    def depth(n):
        assert not pf.is_grad_enabled()
        return 0 if n == 0 else 1 + depth(n - 1)
    assert depth(3) == 3
    assert pf.is_grad_enabled()

    @pf.enable_grad()
    def fails(n):
        assert pf.is_grad_enabled()
        if n == 0:
            raise KeyError("bottom")
        fails(n - 1)
    with pf.no_grad():
        with pytest.raises(KeyError):
            fails(2)
        assert not pf.is_grad_enabled()
    assert pf.is_grad_enabled()


def test_one_grad_mode_instance_nests_within_itself():
    off, on = pf.no_grad(), pf.enable_grad()
    with off:
        with off:
            pass
        assert not pf.is_grad_enabled()
    assert pf.is_grad_enabled()
    with off:
        with on:
            with off:
                with on:
                    assert pf.is_grad_enabled()
                assert not pf.is_grad_enabled()
            assert pf.is_grad_enabled()
        assert not pf.is_grad_enabled()
    assert pf.is_grad_enabled()


def test_grad_mode_is_per_thread_and_restored_in_each():
    both_inside = threading.Barrier(2, timeout=30)

    @pf.no_grad()
    def inside():
        both_inside.wait()        # the two threads are inside the same decorator at once
        off = not pf.is_grad_enabled()
        both_inside.wait()
        return off

    results = {}

    def worker(mode):
        pf.set_grad_enabled(mode)
        off = inside()
        results[mode] = (off, pf.is_grad_enabled())

    threads = [threading.Thread(target=worker, args=(mode,)) for mode in (True, False)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {True: (True, True), False: (True, False)}
    assert pf.is_grad_enabled()                     # this thread's mode was never touched


def test_clone_passes_gradients_also_under_create_graph():
    x = _leaf([1.0, 2.0, 3.0])
    (g,) = pf.grad((x.clone() ** 3.0).sum(), [x], create_graph=True)
    assert g.tolist() == [3.0, 12.0, 27.0] and g.requires_grad
    (h,) = pf.grad((g.clone() * x).sum(), [x])      # d/dx sum(3x^3) = 9x^2
    assert h.tolist() == [9.0, 36.0, 81.0]
    x.clone().sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 1.0]


def test_grad_without_and_with_create_graph():
    x = _leaf([1.0, 2.0])
    y = (x ** 3.0).sum()
    (g,) = pf.grad(y, [x])
    assert g.tolist() == [3.0, 12.0] and not g.requires_grad and x.grad is None
    g = pf.grad(y, x, create_graph=True)       # a single input gives a single gradient
    assert g.requires_grad
    (h,) = pf.grad(g.sum(), [x])
    assert h.tolist() == [6.0, 12.0]
    # backward(create_graph=True) leaves a differentiable .grad
    y.backward(create_graph=True)
    assert x.grad.requires_grad
    (h2,) = pf.grad(x.grad.sum(), [x])
    assert h2.tolist() == [6.0, 12.0]
    # several outputs and inputs at once
    w = _leaf([3.0])
    gx, gw = pf.grad([(x * w).sum(), (w * w).sum()], [x, w])
    assert gx.tolist() == [3.0, 3.0] and gw.tolist() == [3.0 + 6.0]


# f, f', f'' (float64 numpy), the sample range
SECOND_ORDER = {
    "cube": (lambda t: t ** 3.0, lambda x: 3 * x ** 2, lambda x: 6 * x, (-2, 2)),
    "pow_scalar": (lambda t: pf.ops.core.apply(pf.ops.core.REGISTRY["pow_scalar"], [t],
                                               {"exponent": 3.0}),
                   lambda x: 3 * x ** 2, lambda x: 6 * x, (-2, 2)),
    "tanh": (pf.tanh, lambda x: 1 - np.tanh(x) ** 2,
             lambda x: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2), (-2, 2)),
    "sigmoid": (pf.sigmoid, lambda x: (s := 1 / (1 + np.exp(-x))) * (1 - s),
                lambda x: (s := 1 / (1 + np.exp(-x))) * (1 - s) * (1 - 2 * s), (-3, 3)),
    "exp": (pf.exp, np.exp, np.exp, (-2, 2)),
    "log": (pf.log, lambda x: 1 / x, lambda x: -1 / x ** 2, (0.5, 3)),
    "sqrt": (pf.sqrt, lambda x: 0.5 / np.sqrt(x), lambda x: -0.25 * x ** -1.5, (0.5, 3)),
    "rsqrt": (pf.rsqrt, lambda x: -0.5 * x ** -1.5, lambda x: 0.75 * x ** -2.5, (0.5, 3)),
    "reciprocal": (pf.reciprocal, lambda x: -1 / x ** 2, lambda x: 2 / x ** 3, (0.5, 3)),
    "sin": (pf.sin, np.cos, lambda x: -np.sin(x), (-3, 3)),
    "softplus": (pf.softplus, lambda x: 1 / (1 + np.exp(-x)),
                 lambda x: (s := 1 / (1 + np.exp(-x))) * (1 - s), (-3, 3)),
    "gelu": (pf.gelu, lambda x: 0.5 * (1 + _erf(x / math.sqrt(2))) + x * np.exp(-x * x / 2) /
             math.sqrt(2 * math.pi),
             lambda x: np.exp(-x * x / 2) / math.sqrt(2 * math.pi) * (2 - x * x), (-3, 3)),
    "erf": (pf.erf, lambda x: 2 / math.sqrt(math.pi) * np.exp(-x * x),
            lambda x: -4 * x / math.sqrt(math.pi) * np.exp(-x * x), (-2, 2)),
    "log1p": (pf.log1p, lambda x: 1 / (1 + x), lambda x: -1 / (1 + x) ** 2, (-0.5, 2)),
    "x*exp(x)/x^2": (lambda t: t * pf.exp(t) / (t * t), lambda x: np.exp(x) * (x - 1) / x ** 2,
                     lambda x: np.exp(x) * (x * x - 2 * x + 2) / x ** 3, (0.5, 2)),
}


@pytest.mark.parametrize("name", sorted(SECOND_ORDER))
def test_second_derivatives_equal_the_analytic_ones(name, rng):
    f, d1, d2, (low, high) = SECOND_ORDER[name]
    xv = rng.uniform(low, high, 7)
    x = _leaf(xv)
    (g,) = pf.grad(f(x).sum(), [x], create_graph=True)
    np.testing.assert_allclose(g.numpy(), d1(xv), rtol=1e-12, atol=1e-12)
    (h,) = pf.grad(g.sum(), [x])
    np.testing.assert_allclose(h.numpy(), d2(xv), rtol=1e-10, atol=1e-12)


def test_third_derivative_of_a_cube():
    x = _leaf([0.5, -2.0])
    (g,) = pf.grad((x * x * x).sum(), [x], create_graph=True)
    (h,) = pf.grad(g.sum(), [x], create_graph=True)
    (t,) = pf.grad(h.sum(), [x])
    assert g.tolist() == [0.75, 12.0] and h.tolist() == [3.0, -12.0] and t.tolist() == [6.0, 6.0]


def test_softmax_based_hessians_are_analytic(rng):
    """Hessian of logsumexp is diag(p) - p p^T; of cross-entropy, the same per row (mean)."""
    z = rng.standard_normal(5)
    v = rng.standard_normal(5)
    p = np.exp(z - z.max())
    p /= p.sum()
    hess = np.diag(p) - np.outer(p, p)
    x = _leaf(z)
    lse = -pf.log_softmax(x, 0)[2] + x[2]                # logsumexp(x), through log_softmax
    (g,) = pf.grad(lse, [x], create_graph=True)
    np.testing.assert_allclose(g.numpy(), p, rtol=1e-12)
    (hv,) = pf.grad((g * pf.tensor(v)).sum(), [x])
    np.testing.assert_allclose(hv.numpy(), hess @ v, rtol=1e-10, atol=1e-12)
    # the same through softmax itself: d/dx sum(softmax(x) * v) = (diag(p) - pp^T) v
    (g2,) = pf.grad((pf.softmax(x, 0) * pf.tensor(v)).sum(), [x], create_graph=True)
    np.testing.assert_allclose(g2.numpy(), hess @ v, rtol=1e-10, atol=1e-12)
    u = rng.standard_normal(5)
    (h2,) = pf.grad((g2 * pf.tensor(u)).sum(), [x])      # a third derivative of softmax
    fd = _finite_difference(lambda zz: _softmax_jvp(zz, v) @ u, z)
    np.testing.assert_allclose(h2.numpy(), fd, rtol=1e-6, atol=1e-8)
    # cross-entropy over rows: Hessian block of row n is (diag(p_n) - p_n p_n^T) / N
    logits = rng.standard_normal((3, 4))
    labels = np.array([1, 0, 3])
    zt = _leaf(logits)
    (g,) = pf.grad(pf.cross_entropy(zt, labels), [zt], create_graph=True)
    vv = rng.standard_normal((3, 4))
    (hv,) = pf.grad((g * pf.tensor(vv)).sum(), [zt])
    pr = np.exp(logits - logits.max(1, keepdims=True))
    pr /= pr.sum(1, keepdims=True)
    want = np.stack([(np.diag(pr[n]) - np.outer(pr[n], pr[n])) @ vv[n] for n in range(3)]) / 3
    np.testing.assert_allclose(hv.numpy(), want, rtol=1e-10, atol=1e-12)


def _softmax_jvp(z, v):
    p = np.exp(z - z.max())
    p /= p.sum()
    return (np.diag(p) - np.outer(p, p)) @ v


def _finite_difference(fn, x, eps=1e-6):
    out = np.zeros_like(x)
    for i in range(x.size):
        up, down = x.copy(), x.copy()
        up.flat[i] += eps
        down.flat[i] -= eps
        out.flat[i] = (fn(up) - fn(down)) / (2 * eps)
    return out


def test_hessian_vector_product_of_an_mlp_matches_finite_differences(rng):
    x = rng.standard_normal((6, 4))
    labels = np.array([0, 2, 1, 2, 0, 1])
    params = [rng.standard_normal((4, 5)) * 0.5, rng.standard_normal(5) * 0.1,
              rng.standard_normal((5, 3)) * 0.5, rng.standard_normal(3) * 0.1]
    direction = [rng.standard_normal(p.shape) for p in params]

    def loss_of(values):
        w1, b1, w2, b2 = values
        h = pf.tanh(pf.linear(pf.tensor(x), w1, b1))
        out = pf.linear(h, w2, b2, activation="sigmoid")
        return pf.cross_entropy(out * 3.0, labels) + pf.mse(out, pf.zeros(6, 3, dtype="float64"))

    def gradient(values):
        leaves = [_leaf(v) for v in values]
        return [g.numpy() for g in pf.grad(loss_of(leaves), leaves)]

    leaves = [_leaf(p) for p in params]
    grads = pf.grad(loss_of(leaves), leaves, create_graph=True)
    dot = sum((g * pf.tensor(d)).sum() for g, d in zip(grads, direction))
    hvp = [h.numpy() for h in pf.grad(dot, leaves)]
    eps = 1e-5
    up = gradient([p + eps * d for p, d in zip(params, direction)])
    down = gradient([p - eps * d for p, d in zip(params, direction)])
    for h, u, dn in zip(hvp, up, down):
        np.testing.assert_allclose(h, (u - dn) / (2 * eps), rtol=1e-6, atol=1e-8)


def test_misuse_raises_clear_errors():
    x = _leaf([1.0, 2.0])
    with pytest.raises(pf.ShapeError, match=r"shape \(2,\).*single value"):
        (x * 2.0).backward()
    with pytest.raises(pf.ShapeError, match="gradient has shape"):
        (x * 2.0).backward(pf.tensor(np.ones(3)))
    with pytest.raises(pf.PyfrontError, match="does not require grad"):
        pf.tensor([1.0]).sum().backward()
    unused = _leaf([5.0])
    with pytest.raises(pf.PyfrontError, match="not used"):
        pf.grad(x.sum(), [x, unused])
    gx, gu = pf.grad(x.sum(), [x, unused], allow_unused=True)
    assert gx.tolist() == [1.0, 1.0] and gu is None
    with pytest.raises(pf.PyfrontError, match="does not require grad"):
        pf.grad(x.sum(), [pf.tensor([1.0])])
    with pytest.raises(pf.ShapeError, match="single value"):
        pf.grad(x * 2.0, [x])
    # a leaf is its own output: its gradient is the seed
    assert pf.grad(x, [x], grad_outputs=[pf.tensor(np.array([3.0, 4.0]))])[0].tolist() == [3, 4]
