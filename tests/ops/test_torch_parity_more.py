"""More edges where a probe against PyTorch found pyfront erring, refusing or missing a
keyword: each test holds pyfront to PyTorch's values, dtypes, shapes and gradients there, in
eager code and under pf.jit where the op runs in graphs."""
import math
import warnings

import numpy as np
import pytest

import pyfront as pf
from pyfront.testing import check_grad

NAN, INF = math.nan, math.inf


def _t(torch, a, grad=False):
    t = torch.tensor(np.asarray(a))
    return t.requires_grad_() if grad else t


def _same(ours, ref, rtol=0.0, atol=0.0):
    """ours (a pf tensor) has ref's (a torch tensor's) shape, dtype and values."""
    ref = ref.detach()
    assert tuple(ours.shape) == tuple(ref.shape)
    assert ours.dtype.name == str(ref.dtype).replace("torch.", "")
    if rtol or atol:
        np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=rtol, atol=atol)
    else:
        np.testing.assert_array_equal(ours.numpy(), ref.numpy())


def _grads(torch, fn, tfn, arrays, rng, rtol=0.0, atol=0.0):
    """fn's gradients (pf.grad, eager, and backward through pf.jit) equal tfn's (PyTorch's)
    for a random upstream gradient; returns fn's eager output."""
    xs = [pf.tensor(a, requires_grad=True) for a in arrays]
    ts = [_t(torch, a, True) for a in arrays]
    y, ty = fn(*xs), tfn(*ts)
    seed = rng.standard_normal(tuple(ty.shape)).astype(np.asarray(arrays[0]).dtype)
    gs = pf.grad(y, xs, grad_outputs=pf.tensor(seed))
    tgs = torch.autograd.grad(ty, ts, torch.tensor(seed))
    for g, tg in zip(gs, tgs):
        _same(g, tg, rtol, atol)
    jx = [pf.tensor(a, requires_grad=True) for a in arrays]
    (pf.jit(fn)(*jx) * pf.tensor(seed)).sum().backward()
    for x, tg in zip(jx, tgs):
        _same(x.grad, tg, rtol, atol)
    return y


# ---------------------------------------------------------------------------------------------
# 1. errors where PyTorch gives a result

def test_zero_d_topk_kthvalue_and_flip_take_their_one_element(torch, rng):
    for dim in (0, -1):
        v, i = pf.topk(pf.tensor(3.0), 1, dim=dim)
        tv, ti = torch.topk(torch.tensor(3.0), 1, dim=dim)
        _same(v, tv)
        _same(i, ti)
    v, i = pf.kthvalue(pf.tensor(2.5), 1)
    tv, ti = torch.kthvalue(torch.tensor(2.5), 1)
    _same(v, tv)
    _same(i, ti)
    for dims in ([0], [-1], (), None):
        _same(pf.flip(pf.tensor(3.0), dims), torch.flip(torch.tensor(3.0),
                                                        [0] if dims is None else dims))
    x = np.float64(1.5)
    _grads(torch, lambda a: pf.topk(a, 1).values * 2.0 + pf.flip(a, [0]),
           lambda a: torch.topk(a, 1).values * 2.0 + torch.flip(a, [0]), [x], rng)
    with pytest.raises(pf.ShapeError, match=r"^topk: k must be 1 for a 0-d tensor"):
        pf.topk(pf.tensor(3.0), 2)
    with pytest.raises(pf.AxisError, match=r"^flip: axis 1 is out of range for a tensor of "
                                           r"rank 1"):
        pf.flip(pf.tensor(3.0), [1])
    with pytest.raises(pf.AxisError, match=r"^topk: axis 1 is out of range"):
        pf.topk(pf.tensor(3.0), 1, dim=1)


def test_squeeze_of_a_dim_that_is_not_one_leaves_it(torch, rng):
    x = rng.standard_normal((2, 1, 3, 1))
    for dims in (0, 2, (0, 1), (0, 2), (-1, 0), (1, 3)):
        _same(pf.squeeze(pf.tensor(x), dims), torch.squeeze(_t(torch, x), dims))
        _same(pf.tensor(x).squeeze(dims), _t(torch, x).squeeze(dims))
    _same(pf.jit(lambda a: pf.squeeze(a, (0, 1)))(pf.tensor(x)),
          torch.squeeze(_t(torch, x), (0, 1)))
    _grads(torch, lambda a: pf.squeeze(a, 0) * 2.0, lambda a: torch.squeeze(a, 0) * 2.0, [x],
           rng)
    # an unknown (batch) dim: whether it is 1 is known only when the graph runs
    g = pf.Graph("squeeze_unknown")
    with g:
        s = g.placeholder("s", (None, 3), "float32")
        with pytest.raises(pf.ShapeError, match=r"^squeeze: dim 0 of \(None, 3\) is unknown"):
            pf.squeeze(s, 0)


@pytest.mark.parametrize("nd", [1, 2, 3])
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pooling_takes_an_unbatched_input(nd, kind, torch, rng):
    x = rng.standard_normal((3,) + (5,) * nd)            # (C, *spatial), no batch
    name = "%s_pool%dd" % (kind, nd)
    kw = {"stride": 2, "padding": 1}
    fn = lambda a: getattr(pf, name)(a, 3, **kw)          # noqa: E731
    tfn = lambda a: getattr(torch.nn.functional, name)(a, 3, **kw)   # noqa: E731
    y = _grads(torch, fn, tfn, [x], rng, rtol=1e-12)
    assert y.shape == (3,) + (3,) * nd
    _same(y, tfn(_t(torch, x)), rtol=1e-12)
    _same(pf.jit(fn)(pf.tensor(x)), tfn(_t(torch, x)), rtol=1e-12)
    # the batched form is unchanged: the unbatched result is its batch of one
    np.testing.assert_array_equal(fn(pf.tensor(x[None])).numpy()[0], y.numpy())
    if kind == "max":     # integers too (the composed window max)
        xi = rng.integers(-9, 9, (2,) + (4,) * nd)
        _same(getattr(pf, name)(pf.tensor(xi), 2),
              getattr(torch.nn.functional, name)(_t(torch, xi).double(), 2).long())


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_integer_matmul_is_exact_and_keeps_the_dtype(dtype, torch, rng):
    big = 2**20 if dtype == "int32" else 2**40
    cases = [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((4,), (4,)), ((4,), (4, 3)),
             ((3, 4), (4,)), ((2, 1, 3, 4), (5, 4, 2)), ((3, 0), (0, 2))]
    for sa, sb in cases:
        a = rng.integers(-big, big, sa).astype(dtype)      # products wrap, as PyTorch's do
        b = rng.integers(-big, big, sb).astype(dtype)
        ref = torch.matmul(_t(torch, a), _t(torch, b))
        _same(pf.matmul(pf.tensor(a), pf.tensor(b)), ref)
        _same(pf.tensor(a) @ pf.tensor(b), ref)
        _same(pf.jit(lambda p, q: p @ q)(pf.tensor(a), pf.tensor(b)), ref)
    a, b = rng.integers(-50, 50, (3, 4)).astype(dtype), rng.integers(-50, 50, (4, 2)).astype(dtype)
    _same(pf.mm(pf.tensor(a), pf.tensor(b)), torch.mm(_t(torch, a), _t(torch, b)))
    _same(pf.mv(pf.tensor(a), pf.tensor(b[:, 0])), torch.mv(_t(torch, a), _t(torch, b[:, 0])))
    _same(pf.dot(pf.tensor(a[0]), pf.tensor(b[:, 0])),
          torch.dot(_t(torch, a[0]), _t(torch, b[:, 0])))
    _same(pf.bmm(pf.tensor(a[None]), pf.tensor(b[None])),
          torch.bmm(_t(torch, a[None]), _t(torch, b[None])))
    _same(pf.matmul(pf.tensor(a), pf.tensor(b.T.copy()), transpose_b=True),
          torch.mm(_t(torch, a), _t(torch, b)))
    with pytest.raises(pf.ShapeError, match=r"^matmul: inner dimensions differ: a \(3, 4\) "):
        pf.matmul(pf.tensor(a), pf.tensor(a))
    with pytest.raises(pf.DTypeError, match="matmul needs float operands, got bool"):
        pf.matmul(pf.tensor(a > 0), pf.tensor(b > 0))     # (PyTorch refuses bool too)


def test_second_order_gradients_through_max_and_relu_are_zeros(torch):
    # pyfront's gradient rules return no gradient where it is zero (max's depends on x only
    # through where the maximum is): pf.grad gives zeros for an input they reach, as
    # PyTorch's Hessian does, and still refuses an input that was never used
    x0 = [1.0, 3.0, -2.0]
    for fn, tfn in ((pf.max, torch.max), (pf.relu, torch.relu), (pf.amax, torch.amax)):
        x = pf.tensor(x0, requires_grad=True)
        (g,) = pf.grad(fn(x).sum(), [x], create_graph=True)
        (gg,) = pf.grad(g.sum(), [x])
        hess = torch.autograd.functional.hessian(lambda t: tfn(t).sum(), torch.tensor(x0))
        _same(gg, hess.sum(0))
        assert pf.grad(g.sum(), [x], allow_unused=True)[0].tolist() == [0.0, 0.0, 0.0]
    x, unused = pf.tensor(x0, requires_grad=True), pf.tensor(x0, requires_grad=True)
    with pytest.raises(pf.PyfrontError, match="an input was not used"):
        pf.grad(pf.max(x * 2.0), [unused])
    assert pf.grad(pf.max(x * 2.0), [x, unused], allow_unused=True)[1] is None


# ---------------------------------------------------------------------------------------------
# 2. gradients at boundaries

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_hardswish_gradient_at_minus_three_and_three(dtype, torch, rng):
    x = np.array([-4.0, -3.0, -2.9, -1.0, 0.0, 0.5, 2.9, 3.0, 3.1], dtype)
    _grads(torch, pf.hardswish, torch.nn.functional.hardswish, [x], rng)
    t = pf.tensor(x, requires_grad=True)
    pf.hardswish(t).sum().backward()
    assert t.grad.numpy()[[1, 7]].tolist() == [0.0, 1.0]
    # second order: 1/3 strictly inside (-3, 3), as PyTorch's
    (g,) = pf.grad(pf.hardswish(t).sum(), [t], create_graph=True)
    (gg,) = pf.grad(g.sum(), [t])
    tt = _t(torch, x, True)
    (tg,) = torch.autograd.grad(torch.nn.functional.hardswish(tt).sum(), [tt],
                                create_graph=True)
    (tgg,) = torch.autograd.grad(tg.sum(), [tt])
    _same(gg, tgg, rtol=1e-7)


def test_atan2_gradient_at_the_origin_is_zero_and_exact_elsewhere(torch, rng):
    a = np.array([0.0, 0.0, 1.0, -2.0, 0.0], np.float64)
    b = np.array([0.0, -0.0, 0.0, 3.0, 1.0], np.float64)
    _grads(torch, pf.atan2, torch.atan2, [a, b], rng)
    # PyTorch's order of operations: the same float32 bits on random data
    a32, b32 = (rng.standard_normal(1000).astype(np.float32) for _ in range(2))
    _grads(torch, pf.atan2, torch.atan2, [a32, b32], rng)


def test_logit_at_zero_and_one(torch, rng):
    x = np.array([0.0, 1.0, 0.5, 0.25, 0.9], np.float64)
    _same(pf.logit(pf.tensor(x)), torch.logit(_t(torch, x)))
    _grads(torch, pf.logit, torch.logit, [x], rng, rtol=1e-15)
    for eps in (0.1, 0.0):
        xe = np.array([0.0, 1.0, 0.1, 0.9, 0.05, 0.5], np.float64)
        _same(pf.logit(pf.tensor(xe), eps), torch.logit(_t(torch, xe), eps), rtol=1e-15)
        _grads(torch, lambda a: pf.logit(a, eps), lambda a: torch.logit(a, eps), [xe], rng,
               rtol=1e-15)
    x32 = x.astype(np.float32)
    _same(pf.logit(pf.tensor(x32)), torch.logit(_t(torch, x32)))
    check_grad(pf.logit, np.array([0.2, 0.5, 0.7]))


def test_hardsigmoid_and_celu_float64_gradients_are_exact_where_pytorch_rounds(torch):
    # PyTorch's float64 backward uses float32 constants here (1.0f / 6 for hardsigmoid,
    # 1 / alpha rounded to float32 for celu, an error that grows with |x|): pyfront's are the
    # exact derivatives, within 1e-6 of PyTorch's
    x0 = np.array([-3.5, -1.3, -0.2, 0.0, 0.7, 2.9, 4.0])
    for fn, tfn, exact in (
            (pf.hardsigmoid, torch.nn.functional.hardsigmoid,
             np.where(np.abs(x0) < 3, 1 / 6, 0.0)),
            (lambda a: pf.celu(a, alpha=0.3), lambda a: torch.nn.functional.celu(a, alpha=0.3),
             np.where(x0 > 0, 1.0, np.exp(x0 / 0.3)))):
        x = pf.tensor(x0, requires_grad=True)
        fn(x).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), exact, rtol=1e-15)
        tx = _t(torch, x0, True)
        tfn(tx).sum().backward()
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# 3. small forward differences

@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_sign_of_nan_is_zero_and_so_is_abs_gradient_there(dtype, torch, rng):
    x = np.array([NAN, -0.0, 0.0, -2.0, 3.0, INF, -INF], dtype)
    _same(pf.sign(pf.tensor(x)), torch.sign(_t(torch, x)))
    _same(pf.jit(pf.sign)(pf.tensor(x)), torch.sign(_t(torch, x)))
    _same(pf.tensor(x).sign(), torch.sign(_t(torch, x)))
    xa = np.array([NAN, -2.0, 3.0], dtype)
    _grads(torch, pf.abs, torch.abs, [xa], rng)
    _same(pf.sign(pf.tensor([3, -2, 0])), torch.sign(torch.tensor([3, -2, 0])))


def test_clamp_with_a_nan_bound_gives_nan_as_pytorch(torch, rng):
    x = np.array([1.0, -2.0, 5.0, INF, NAN])
    for kw in ({"min": NAN}, {"max": NAN}, {"min": 0.0, "max": NAN}, {"min": NAN, "max": 1.0}):
        ref = torch.clamp(_t(torch, x), **kw)
        _same(pf.clamp(pf.tensor(x), **kw), ref)
        _same(pf.clip(pf.tensor(x), **kw), ref)
        _same(pf.tensor(x).clamp(**kw), ref)
        _same(pf.jit(lambda a: pf.clamp(a, **kw))(pf.tensor(x)), ref)
        _grads(torch, lambda a: pf.clamp(a, **kw), lambda a: torch.clamp(a, **kw), [x], rng)
    xi = np.array([1, -2, 5])
    _same(pf.clamp(pf.tensor(xi), min=NAN), torch.clamp(_t(torch, xi), min=NAN))


def test_chunk_of_an_empty_dim_gives_that_many_empty_pieces(torch):
    for shape, dim in (((0, 3), 0), ((3, 0), 1), ((0,), 0)):
        for chunks in (1, 2, 3):
            ours = pf.chunk(pf.zeros(*shape), chunks, dim)
            ref = torch.chunk(torch.zeros(*shape), chunks, dim)
            assert [tuple(p.shape) for p in ours] == [tuple(p.shape) for p in ref]
    assert [tuple(p.shape) for p in pf.zeros(5, 2).chunk(3)] == [(2, 2), (2, 2), (1, 2)]


# ---------------------------------------------------------------------------------------------
# 4. keywords and features

def test_topk_takes_sorted(torch, rng):
    x = rng.standard_normal((3, 6))
    for largest in (True, False):
        v, i = pf.topk(pf.tensor(x), 3, dim=1, largest=largest, sorted=True)
        tv, ti = torch.topk(_t(torch, x), 3, dim=1, largest=largest, sorted=True)
        _same(v, tv)
        _same(i, ti)
        # unsorted: PyTorch leaves the order open; the same elements, and values at indices
        v, i = pf.tensor(x).topk(3, dim=1, largest=largest, sorted=False)
        tv, _ = torch.topk(_t(torch, x), 3, dim=1, largest=largest, sorted=False)
        np.testing.assert_array_equal(np.sort(v.numpy(), 1), np.sort(tv.numpy(), 1))
        np.testing.assert_array_equal(np.take_along_axis(x, i.numpy(), 1), v.numpy())


def test_diff_with_prepend_and_append(torch, rng):
    x = rng.standard_normal((2, 4))
    pre, app = rng.standard_normal((2, 1)), rng.standard_normal((2, 3))
    for n in (1, 2, 3):
        fn = lambda a, p, q: pf.diff(a, n, dim=1, prepend=p, append=q)       # noqa: E731
        tfn = lambda a, p, q: torch.diff(a, n, dim=1, prepend=p, append=q)   # noqa: E731
        _same(fn(*(pf.tensor(v) for v in (x, pre, app))), tfn(*(_t(torch, v) for v in
                                                                 (x, pre, app))))
        _grads(torch, fn, tfn, [x, pre, app], rng)
    _same(pf.tensor(x).diff(dim=0, prepend=pf.tensor(x[:1])),
          _t(torch, x).diff(dim=0, prepend=_t(torch, x[:1])))
    _same(pf.diff(pf.tensor(x), append=pf.tensor(app)), torch.diff(_t(torch, x),
                                                                    append=_t(torch, app)))
    # NumPy's (not PyTorch's) scalar: one slice along the axis
    np.testing.assert_array_equal(pf.diff(pf.tensor([1.0, 3.0, 6.0]), prepend=0.0).numpy(),
                                  np.diff([1.0, 3.0, 6.0], prepend=0.0))
    with pytest.raises(pf.ShapeError, match=r"^diff: prepend \(3, 1\) must have the shape of "
                                            r"x \(2, 4\) except along axis 1"):
        pf.diff(pf.tensor(x), prepend=pf.zeros(3, 1))


@pytest.mark.parametrize("dim", [0, 1])
def test_scatter_value_and_reduce(dim, torch, rng):
    x = rng.standard_normal((3, 4))
    idx = rng.integers(0, 3 if dim == 0 else 4, (3, 3))          # repeats included
    src = rng.standard_normal((3, 3))
    ti = _t(torch, idx)
    _same(pf.scatter(pf.tensor(x), dim, pf.tensor(idx), value=2.5),
          torch.scatter(_t(torch, x), dim, ti, value=2.5))
    _same(pf.tensor(x).scatter(dim, pf.tensor(idx), value=2.5),
          torch.scatter(_t(torch, x), dim, ti, value=2.5))
    for reduce in ("add", "multiply"):
        for s in (src, 1.5):
            ours = pf.scatter(pf.tensor(x), dim, pf.tensor(idx),
                              pf.tensor(s) if isinstance(s, np.ndarray) else s, reduce=reduce)
            with warnings.catch_warnings():   # (PyTorch deprecates reduce= with a src tensor)
                warnings.simplefilter("ignore")
                ref = torch.scatter(_t(torch, x), dim, ti,
                                    _t(torch, s) if isinstance(s, np.ndarray) else s,
                                    reduce=reduce)
            _same(ours, ref)
        f = pf.jit(lambda a, i, b: pf.scatter(a, dim, i, b, reduce=reduce))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = torch.scatter(_t(torch, x), dim, ti, _t(torch, src), reduce=reduce)
        _same(f(pf.tensor(x), pf.tensor(idx), pf.tensor(src)), ref)
    # a number is cast to x's dtype (PyTorch's value=)
    xi = rng.integers(0, 5, (3, 4))
    _same(pf.scatter(pf.tensor(xi), dim, pf.tensor(idx), value=2.7),
          torch.scatter(_t(torch, xi), dim, ti, value=2.7))
    # gradients: value= as PyTorch's; the reduce forms (PyTorch has none) by finite
    # differences, add as scatter_add's
    _grads(torch, lambda a: pf.scatter(a, dim, pf.tensor(idx), value=2.0),
           lambda a: torch.scatter(a, dim, ti, value=2.0), [x], rng)
    _grads(torch, lambda a, b: pf.scatter(a, dim, pf.tensor(idx), b, reduce="add"),
           lambda a, b: torch.scatter_add(a, dim, ti, b), [x, src], rng, rtol=1e-12)
    check_grad(lambda a, b: pf.scatter(a, dim, pf.tensor(idx), b, reduce="multiply"), x, src)
    with pytest.raises(ValueError, match="reduce must be None, 'add' or 'multiply'"):
        pf.scatter(pf.tensor(x), dim, pf.tensor(idx), src=1.0, reduce="max")
    with pytest.raises(TypeError, match="give src or value"):
        pf.scatter(pf.tensor(x), dim, pf.tensor(idx))


def test_where_takes_pytorch_keywords_and_one_argument(torch, rng):
    c = rng.standard_normal((3, 4)) > 0
    a, b = rng.standard_normal((3, 4)), rng.standard_normal((4,))
    ref = torch.where(condition=_t(torch, c), input=_t(torch, a), other=_t(torch, b))
    _same(pf.where(condition=pf.tensor(c), input=pf.tensor(a), other=pf.tensor(b)), ref)
    _same(pf.jit(lambda p, q, r: pf.where(p, input=q, other=r))(
        pf.tensor(c), pf.tensor(a), pf.tensor(b)), ref)
    _grads(torch, lambda p, q: pf.where(pf.tensor(c), input=p, other=q),
           lambda p, q: torch.where(_t(torch, c), p, q), [a, b], rng)
    for cond in (c, c.astype(np.float64), np.array(True)):
        ours, ref = pf.where(pf.tensor(cond)), torch.where(_t(torch, cond))
        assert len(ours) == len(ref)
        for o, r in zip(ours, ref):
            _same(o, r)
    with pytest.raises(TypeError, match="give both input and other"):
        pf.where(pf.tensor(c), pf.tensor(a))
    g = pf.Graph("where_one")
    with g:
        s = g.placeholder("s", (None, 3), "bool")
        with pytest.raises(pf.TraceError, match="nonzero"):
            pf.where(s)


def test_clip_takes_min_and_max(torch):
    x = np.array([1.0, 5.0, -3.0])
    for kw in ({"min": 2}, {"max": 3}, {"min": 0.5, "max": 3.0}):
        ref = torch.clip(_t(torch, x), **kw)
        _same(pf.clip(pf.tensor(x), **kw), ref)
        _same(pf.tensor(x).clip(**kw), ref)
    with pytest.raises(TypeError, match="clip: got both lo and min="):
        pf.clip(pf.tensor(x), 1.0, min=2.0)


def test_tensor_to_takes_pytorch_forms(torch):
    x = pf.tensor([1.5, -2.0])
    tx = torch.tensor([1.5, -2.0])
    for args, kw, targs, tkw in (((pf.float64,), {}, (torch.float64,), {}),
                                 ((), {"dtype": pf.int64}, (), {"dtype": torch.int64}),
                                 (("cpu", pf.int32), {}, ("cpu", torch.int32), {}),
                                 ((), {"device": "cpu", "dtype": "float64"}, (),
                                  {"device": "cpu", "dtype": torch.float64}),
                                 ((pf.tensor([1]),), {}, (torch.tensor([1]),), {})):
        _same(x.to(*args, **kw), tx.to(*targs, **tkw))
    assert x.to("cpu") is x and x.to(pf.float32) is x and x.to(x) is x
    y = x.to(pf.float32, copy=True)
    assert y is not x and y.tolist() == x.tolist()
    with pytest.raises(TypeError, match="dtype given twice"):
        x.to(pf.float64, dtype=pf.float64)
    # in graphs (pf.jit): the dtype forms
    f = pf.jit(lambda a, b: a.to(pf.float64) + a.to(dtype="float64") + b.to(a).to(b))
    _same(f(x, pf.tensor([1, 2])), tx.double() * 2 + torch.tensor([1, 2]).to(tx).long())
    a = pf.tensor([1.0, 2.0], requires_grad=True)
    a.to(pf.float64).sum().backward()     # a cast on the tape
    assert a.grad.tolist() == [1.0, 1.0]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_takes_decimals(dtype, torch, rng):
    x = np.concatenate([[1.25, 1.35, 2.5, -0.125, 125.0, 135.0, 150.0, 250.0, -0.05],
                        rng.standard_normal(200) * 1000]).astype(dtype)
    for d in (0, 1, 2, 3, -1, -2):
        ref = torch.round(_t(torch, x), decimals=d)
        _same(pf.round(pf.tensor(x), decimals=d), ref)
        _same(pf.tensor(x).round(decimals=d), ref)
        _same(pf.jit(lambda a: pf.round(a, decimals=d))(pf.tensor(x)), ref)
    _grads(torch, lambda a: pf.round(a, decimals=1), lambda a: torch.round(a, decimals=1),
           [x[:5]], rng)
    _same(pf.round(pf.tensor([15, 25])), torch.round(torch.tensor([15, 25])))
    with pytest.raises(pf.DTypeError, match="round: decimals=1 needs a float tensor"):
        pf.round(pf.tensor([15, 25]), decimals=1)


def test_flatten_takes_start_and_end_dim(torch, rng):
    x = rng.standard_normal((2, 3, 4, 5))
    tx = _t(torch, x)
    for start, end in ((0, -1), (1, 2), (0, 1), (2, 3), (-2, -1), (1, 1), (3, 3)):
        _same(pf.flatten(pf.tensor(x), start_dim=start, end_dim=end),
              torch.flatten(tx, start_dim=start, end_dim=end))
        _same(pf.tensor(x).flatten(start, end), tx.flatten(start, end))
        _same(pf.jit(lambda a: pf.flatten(a, start, end))(pf.tensor(x)),
              torch.flatten(tx, start, end))
    _same(pf.flatten(pf.tensor(x), start_dim=0), torch.flatten(tx))
    assert pf.flatten(pf.tensor(x)).shape == (2, 60)            # pyfront's default keeps the batch
    _same(pf.flatten(pf.tensor(2.0), 0, -1), torch.flatten(torch.tensor(2.0)))
    _grads(torch, lambda a: pf.flatten(a, 1, 2), lambda a: torch.flatten(a, 1, 2), [x], rng)
    with pytest.raises(pf.ShapeError, match="flatten: start_dim 2 comes after end_dim 1"):
        pf.flatten(pf.tensor(x), 2, 1)


def test_one_hot_infers_the_class_count_in_eager_code(torch):
    labels = np.array([[0, 3], [1, 1]])
    for kw in ({}, {"num_classes": -1}):
        ours = pf.one_hot(pf.tensor(labels), dtype="int64", **kw)
        _same(ours, torch.nn.functional.one_hot(_t(torch, labels), **kw))
    assert pf.one_hot(pf.tensor([2, 0])).dtype is pf.float32     # (pyfront's default dtype)
    _same(pf.one_hot(pf.tensor(2), dtype="int64"), torch.nn.functional.one_hot(torch.tensor(2)))
    # pf.jit runs it eagerly, saying so (the count depends on the values)
    with pytest.warns(RuntimeWarning, match="one_hot: give classes .* run eagerly"):
        _same(pf.jit(lambda t: pf.one_hot(t, dtype="int64"))(pf.tensor(labels)),
              torch.nn.functional.one_hot(_t(torch, labels)))
    with pytest.raises(pf.ShapeError, match="cannot infer the number of classes from empty"):
        pf.one_hot(pf.tensor(np.zeros(0, np.int64)))
    with pytest.raises(pf.IndexOutOfRange, match="label -1"):
        pf.one_hot(pf.tensor([0, -1]))
    g = pf.Graph("one_hot_infer")
    with g:
        s = g.placeholder("s", (None,), "int64")
        with pytest.raises(pf.TraceError, match=r"^one_hot: give classes \(num_classes\) in a "
                                                r"graph"):
            pf.one_hot(s)
        assert pf.one_hot(s, 4).shape == (None, 4)


def test_retain_grad_fills_a_non_leaf_grad(torch):
    x0 = [1.0, -2.0, 3.0]

    def run(m, tensor):
        x = tensor(x0, requires_grad=True)
        h = x * 2.0
        h.retain_grad()
        y = (h * h).sum()
        y.retain_grad()
        y.backward(retain_graph=True)
        (h * 3.0).sum().backward()           # a second backward accumulates, as PyTorch's
        return x, h, y

    (x, h, y), (tx, th, ty) = run(pf, pf.tensor), run(torch, torch.tensor)
    for ours, ref in ((x, tx), (h, th), (y, ty)):
        _same(ours.grad, ref.grad)
    assert h.retains_grad and y.retains_grad and not x.retains_grad
    x.retain_grad()                          # a leaf: nothing to do, as in PyTorch
    assert not x.retains_grad
    with pytest.raises(pf.PyfrontError, match="retain_grad: the tensor does not require grad"):
        pf.tensor([1.0]).retain_grad()
    # nothing else is touched: an un-retained non-leaf keeps no grad
    z = x * 1.0
    (z * z).sum().backward()
    assert z.grad is None


@pytest.mark.parametrize("dtype", ["int32", "int64"])
def test_shifts_are_pytorch_shifts(dtype, torch, rng):
    bits = 32 if dtype == "int32" else 64
    info = np.iinfo(dtype)
    x = np.concatenate([[5, -5, 1, -1, -8, 0, info.min, info.max],
                        rng.integers(info.min, info.max, 24, dtype=dtype)]).astype(dtype)
    px, tx = pf.tensor(x), _t(torch, x)
    for k in (0, 1, 3, bits - 2, bits - 1, bits, bits + 1, 100, -1):
        _same(px << k, tx << k)
        _same(px >> k, tx >> k)
    k = rng.integers(-2, bits + 3, x.shape).astype(dtype)
    _same(px << pf.tensor(k), tx << _t(torch, k))
    _same(px >> pf.tensor(k), tx >> _t(torch, k))
    _same(pf.bitwise_left_shift(px, pf.tensor(k)), torch.bitwise_left_shift(tx, _t(torch, k)))
    _same(pf.bitwise_right_shift(px, 3), torch.bitwise_right_shift(tx, 3))
    _same(px.bitwise_right_shift(2), tx.bitwise_right_shift(2))
    _same(pf.jit(lambda a, b: (a << b) + (a >> 3))(px, pf.tensor(k)),
          (tx << _t(torch, k)) + (tx >> 3))
    small = pf.tensor(np.array([1, 2], dtype))
    _same(2 << small, 2 << torch.tensor(np.array([1, 2], dtype)))
    _same(64 >> small, 64 >> torch.tensor(np.array([1, 2], dtype)))
    y = pf.tensor(x)
    y <<= 2
    y >>= 1
    tt = tx.clone()
    tt <<= 2
    tt >>= 1
    _same(y, tt)
    _same(pf.tensor([True, False]) << 1, torch.tensor([True, False]) << 1)
    with pytest.raises(pf.DTypeError, match="bitwise_left_shift takes integer tensors"):
        pf.bitwise_left_shift(pf.tensor([1.0]), pf.tensor([1.0]))


# ---------------------------------------------------------------------------------------------
# interpolate: "nearest-exact", "bicubic", and "nearest" with PyTorch's float32 scale

@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
def test_nearest_modes_pick_pytorchs_pixels(mode, torch):
    F = torch.nn.functional
    for n in range(1, 30):
        x = np.arange(n, dtype=np.float32).reshape(1, 1, n)
        for kw in [{"size": o} for o in range(1, 70)] + [
                {"scale_factor": f} for f in (0.3, 0.5, 0.7, 1.3, 1.5, 2.0, 2.5, 3.3, 1 / 3, 7.0)
                if int(np.floor(n * f)) >= 1]:
            _same(pf.interpolate(pf.tensor(x), mode=mode, **kw),
                  F.interpolate(_t(torch, x), mode=mode, **kw))


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_nearest_exact_values_and_gradients(nd, torch, rng):
    x = rng.standard_normal((2, 3) + (4, 5, 3)[:nd])
    for kw in ({"size": (7, 3, 5)[:nd]}, {"scale_factor": 1.7}):
        fn = lambda a: pf.interpolate(a, mode="nearest-exact", **kw)           # noqa: E731
        tfn = lambda a: torch.nn.functional.interpolate(a, mode="nearest-exact",   # noqa: E731
                                                        **kw)
        _same(fn(pf.tensor(x)), tfn(_t(torch, x)))
        _grads(torch, fn, tfn, [x], rng, rtol=1e-12, atol=1e-15)   # (sums in another order)
    with pytest.raises(ValueError, match="align_corners only applies"):
        pf.interpolate(pf.tensor(x), scale_factor=2, mode="nearest-exact", align_corners=True)


@pytest.mark.parametrize("align_corners", [False, True])
def test_bicubic_matches_pytorch(align_corners, torch, rng):
    F = torch.nn.functional
    for dtype, tol in (("float64", 1e-12), ("float32", 1e-5)):
        for hw in ((1, 2), (5, 4), (7, 9)):
            x = rng.standard_normal((2, 3) + hw).astype(dtype)
            for kw in ({"size": (4, 5)}, {"size": (11, 17)}, {"scale_factor": 1.7},
                       {"scale_factor": (1.5, 2.5)}, {"scale_factor": 3}):
                fn = lambda a: pf.interpolate(a, mode="bicubic",                # noqa: E731
                                              align_corners=align_corners, **kw)
                tfn = lambda a: F.interpolate(a, mode="bicubic",                # noqa: E731
                                              align_corners=align_corners, **kw)
                _same(fn(pf.tensor(x)), tfn(_t(torch, x)), rtol=tol, atol=tol)
        _same(pf.jit(fn)(pf.tensor(x)), tfn(_t(torch, x)), rtol=tol, atol=tol)
    x = rng.standard_normal((1, 2, 5, 4))
    _grads(torch, fn, tfn, [x], rng, rtol=1e-12, atol=1e-12)
