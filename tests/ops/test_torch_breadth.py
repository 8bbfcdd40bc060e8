"""The everyday rest of torch.* and Tensor.* (issue 10: porting code needs no op pyfront lacks):
products (mm, bmm, einsum, tensordot, ...), reductions (amax, nansum, kthvalue, ...), shape
helpers (movedim, narrow, hstack, rot90, index_add, ...), elementwise names (logaddexp, xlogy,
nan_to_num, isclose, ...), creation functions, Tensor methods and in-place updates: values
against PyTorch, gradients against PyTorch and float64 finite differences, eager against
compiled, and the errors."""
import numpy as np
import pytest
import torch

import pyfront as pf
from pyfront.testing import check_grad


def _np(x):
    if isinstance(x, (tuple, list)):
        return [_np(v) for v in x]
    return x.detach().numpy() if isinstance(x, torch.Tensor) else x.numpy()


def _compare(pf_fn, torch_fn, *arrays, grad=True, rng=None, rtol=1e-10, atol=1e-10):
    """Values (and, with grad, gradients of a random weighting of the output) equal
    PyTorch's, on float64 inputs."""
    ps = [pf.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    ts = [torch.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    got, want = pf_fn(*ps), torch_fn(*ts)
    for g, w in zip(*(([v] if not isinstance(v, (tuple, list)) else list(v))
                      for v in (got, want))):
        np.testing.assert_allclose(_np(g), _np(w), rtol=rtol, atol=atol)
        assert _np(g).shape == _np(w).shape
    if not grad:
        return
    g0 = got[0] if isinstance(got, (tuple, list)) else got
    w0 = want[0] if isinstance(want, (tuple, list)) else want
    seed = (rng or np.random.default_rng(0)).standard_normal(tuple(w0.shape))
    floats = [(p, t) for p, t in zip(ps, ts) if p.requires_grad]
    pg = pf.grad(g0, [p for p, _ in floats], grad_outputs=pf.tensor(seed))
    tg = torch.autograd.grad(w0, [t for _, t in floats], torch.tensor(seed))
    for a, b in zip(pg, tg):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9, atol=1e-9)


@pytest.fixture
def rng():
    return np.random.default_rng(7)


# ---- products ----

@pytest.mark.parametrize("eq, shapes", [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]),
    ("ij,jk", [(3, 4), (4, 5)]),                     # implicit output
    ("i,i->", [(5,), (5,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ii->i", [(4, 4)]),
    ("ii", [(4, 4)]),
    ("ij->ji", [(3, 4)]),
    ("ijk->k", [(2, 3, 4)]),
    ("...ij,...jk->...ik", [(2, 3, 4), (2, 4, 5)]),
    ("b...d,d->b...", [(2, 3, 4, 5), (5,)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
    ("bn,anm,bm->ba", [(2, 3), (4, 3, 5), (2, 5)]),   # a bilinear form
    ("ij,ij->i", [(3, 4), (3, 4)]),
    ("ij,kj->", [(3, 4), (1, 4)]),                     # a size-1 dim broadcasts
])
def test_einsum_matches_torch(eq, shapes, rng):
    arrays = [rng.standard_normal(s) for s in shapes]
    _compare(lambda *t: pf.einsum(eq, *t), lambda *t: torch.einsum(eq, *t), *arrays, rng=rng)


def test_einsum_errors():
    a = pf.ones((2, 3))
    with pytest.raises(pf.ShapeError, match="names 2 operands, got 1"):
        pf.einsum("ij,jk->ik", a)
    with pytest.raises(pf.ShapeError, match="label 'j' has sizes 3 and 4"):
        pf.einsum("ij,jk->ik", a, pf.ones((4, 2)))
    with pytest.raises(pf.ShapeError, match="output label 'z'"):
        pf.einsum("ij->z", a)
    with pytest.raises(pf.ShapeError, match="does not fit an operand"):
        pf.einsum("ijk->i", a)


def test_einsum_in_a_graph_with_an_unknown_batch(rng):
    # what pf.save and ONNX export trace: the batch dim unknown until run time
    a = rng.standard_normal((4, 3, 5)).astype(np.float32)
    b = rng.standard_normal((4, 6, 5)).astype(np.float32)
    with pf.Graph() as g:
        x, y = g.placeholder("x", (None, 3, 5)), g.placeholder("y", (None, 6, 5))
        out = pf.einsum("bqd,bkd->bqk", x, y)
        assert out.shape == (None, 3, 6)
        out2 = pf.einsum("bqk,bkd->bqd", out, y)
        out3 = pf.tensordot(x, pf.tensor(np.ones((5, 2), np.float32)), 1)
        assert out3.shape == (None, 3, 2)
        run = g.compile([out, out2, out3])
    got = run.run({"x": a, "y": b})
    first = np.einsum("bqd,bkd->bqk", a, b)
    np.testing.assert_allclose(got[out.name], first, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(got[out2.name], np.einsum("bqk,bkd->bqd", first, b), rtol=1e-4,
                               atol=1e-4)
    np.testing.assert_allclose(got[out3.name], np.repeat(a.sum(-1, keepdims=True), 2, -1),
                               rtol=1e-5, atol=1e-5)


def test_einsum_compiled_equals_eager(rng):
    a, b = rng.standard_normal((2, 3, 4)).astype(np.float32), \
        rng.standard_normal((2, 4, 5)).astype(np.float32)
    fn = lambda x, y: pf.einsum("bij,bjk->bik", x, y)  # noqa: E731
    np.testing.assert_allclose(pf.jit(fn)(pf.tensor(a), pf.tensor(b)).numpy(),
                               fn(pf.tensor(a), pf.tensor(b)).numpy(), rtol=1e-6)


@pytest.mark.parametrize("name, shapes, ref", [
    ("mm", [(3, 4), (4, 5)], torch.mm),
    ("bmm", [(2, 3, 4), (2, 4, 5)], torch.bmm),
    ("mv", [(3, 4), (4,)], torch.mv),
    ("dot", [(5,), (5,)], torch.dot),
    ("inner", [(3, 4), (2, 4)], torch.inner),
    ("outer", [(3,), (4,)], torch.outer),
    ("kron", [(2, 3), (3, 2)], torch.kron),
    ("cross", [(4, 3), (4, 3)], lambda a, b: torch.linalg.cross(a, b)),
    ("cdist", [(4, 3), (5, 3)], torch.cdist),
])
def test_products_match_torch(name, shapes, ref, rng):
    arrays = [rng.standard_normal(s) for s in shapes]
    _compare(getattr(pf, name), ref, *arrays, rng=rng)


def test_tensordot_addmm_baddbmm(rng):
    a, b = rng.standard_normal((3, 4, 5)), rng.standard_normal((4, 5, 2))
    _compare(lambda x, y: pf.tensordot(x, y, 2), lambda x, y: torch.tensordot(x, y, 2), a, b)
    _compare(lambda x, y: pf.tensordot(x, y, ([1], [0])),
             lambda x, y: torch.tensordot(x, y, ([1], [0])), a, b)
    x, m1, m2 = rng.standard_normal((3, 5)), rng.standard_normal((3, 4)), \
        rng.standard_normal((4, 5))
    _compare(lambda *t: pf.addmm(*t, beta=0.5, alpha=2.0),
             lambda *t: torch.addmm(*t, beta=0.5, alpha=2.0), x, m1, m2)
    x, b1, b2 = rng.standard_normal((2, 3, 5)), rng.standard_normal((2, 3, 4)), \
        rng.standard_normal((2, 4, 5))
    _compare(pf.baddbmm, torch.baddbmm, x, b1, b2)
    with pytest.raises(pf.ShapeError, match="mm needs 2-D operands, got \\(2, 3, 4\\)"):
        pf.mm(pf.tensor(b1), pf.tensor(m2))
    with pytest.raises(pf.ShapeError, match="bmm: batch sizes differ"):
        pf.bmm(pf.ones((2, 3, 4)), pf.ones((3, 4, 5)))
    with pytest.raises(pf.ShapeError, match="tensordot: axes"):
        pf.tensordot(pf.ones((2, 3)), pf.ones((4, 3)), 1)


# ---- reductions ----

def test_reductions_match_torch(rng):
    x = rng.standard_normal((3, 4, 5))
    _compare(lambda t: pf.amax(t, dim=(0, 2)), lambda t: torch.amax(t, dim=(0, 2)), x)
    _compare(lambda t: pf.amin(t, 1, keepdim=True), lambda t: torch.amin(t, 1, keepdim=True), x)
    _compare(lambda t: pf.aminmax(t, dim=1), lambda t: torch.aminmax(t, dim=1), x, grad=False)
    _compare(lambda t: pf.var_mean(t, 1), lambda t: torch.var_mean(t, 1), x)
    _compare(lambda t: pf.std_mean(t, (0, 2), correction=0),
             lambda t: torch.std_mean(t, (0, 2), correction=0), x)
    _compare(lambda t: pf.kthvalue(t, 2, dim=1), lambda t: torch.kthvalue(t, 2, dim=1), x)
    _compare(lambda t: pf.diff(t, dim=1), lambda t: torch.diff(t, dim=1), x)
    _compare(lambda t: pf.diff(t, n=2), lambda t: torch.diff(t, n=2), x)
    _compare(pf.trace, torch.trace, x[0])
    _compare(lambda t: pf.count_nonzero(t > 0, dim=2),
             lambda t: torch.count_nonzero(t > 0, dim=2), x, grad=False)
    y = x.copy()
    y[0, 1, 2] = y[2, 3, 0] = np.nan
    _compare(lambda t: pf.nansum(t, 1), lambda t: torch.nansum(t, 1), y)
    _compare(lambda t: pf.nanmean(t, dim=2), lambda t: torch.nanmean(t, dim=2), y)
    with pytest.raises(pf.ShapeError, match="kthvalue: k must be an int in \\[1, 4\\]"):
        pf.kthvalue(pf.tensor(x), 5, dim=1)
    with pytest.raises(pf.ShapeError, match="trace needs a matrix"):
        pf.trace(pf.tensor(x))


# ---- shape helpers ----

@pytest.mark.parametrize("pf_fn, torch_fn", [
    (lambda t: pf.movedim(t, 0, -1), lambda t: torch.movedim(t, 0, -1)),
    (lambda t: pf.movedim(t, (0, 1), (2, 0)), lambda t: torch.movedim(t, (0, 1), (2, 0))),
    (lambda t: pf.moveaxis(t, -1, 0), lambda t: torch.moveaxis(t, -1, 0)),
    (lambda t: pf.swapaxes(t, 0, 2), lambda t: torch.swapaxes(t, 0, 2)),
    (lambda t: pf.narrow(t, 1, 1, 2), lambda t: torch.narrow(t, 1, 1, 2)),
    (lambda t: pf.narrow(t, -1, -3, 2), lambda t: torch.narrow(t, -1, -3, 2)),
    (lambda t: pf.select(t, 1, -1), lambda t: torch.select(t, 1, -1)),
    (lambda t: pf.unflatten(t, 2, (1, 5)), lambda t: torch.unflatten(t, 2, (1, 5))),
    (lambda t: pf.unsqueeze(t, 1), lambda t: torch.unsqueeze(t, 1)),
    (lambda t: pf.rot90(t, 1, dims=(1, 2)), lambda t: torch.rot90(t, 1, dims=(1, 2))),
    (lambda t: pf.rot90(t, -1), lambda t: torch.rot90(t, -1)),
    (lambda t: pf.rot90(t, 2), lambda t: torch.rot90(t, 2)),
    (lambda t: pf.fliplr(t), lambda t: torch.fliplr(t)),
    (lambda t: pf.flipud(t), lambda t: torch.flipud(t)),
    (lambda t: pf.hstack([t, t]), lambda t: torch.hstack([t, t])),
    (lambda t: pf.vstack([t, t]), lambda t: torch.vstack([t, t])),
    (lambda t: pf.dstack([t[0], t[1]]), lambda t: torch.dstack([t[0], t[1]])),
    (lambda t: pf.column_stack([t[0, 0], t[1, 1]]),
     lambda t: torch.column_stack([t[0, 0], t[1, 1]])),
    (lambda t: pf.hstack([t[0, 0], t[1, 1]]), lambda t: torch.hstack([t[0, 0], t[1, 1]])),
    (lambda t: pf.vstack([t[0, 0], t[1, 1]]), lambda t: torch.vstack([t[0, 0], t[1, 1]])),
    (lambda t: pf.atleast_3d(t[0, 0]), lambda t: torch.atleast_3d(t[0, 0])),
    (lambda t: pf.atleast_2d(t[0, 0, 0]), lambda t: torch.atleast_2d(t[0, 0, 0])),
    (lambda t: pf.block_diag(t[0], t[1, :2], t[2, 0]),
     lambda t: torch.block_diag(t[0], t[1, :2], t[2, 0])),
    (lambda t: pf.masked_select(t, t > 0), lambda t: torch.masked_select(t, t > 0)),
    (lambda t: pf.masked_select(t, t[0] > 0), lambda t: torch.masked_select(t, t[0] > 0)),
    (lambda t: pf.broadcast_tensors(t, t[0, 0])[1],
     lambda t: torch.broadcast_tensors(t, t[0, 0])[1]),
])
def test_shape_helpers_match_torch(pf_fn, torch_fn, rng):
    _compare(pf_fn, torch_fn, rng.standard_normal((3, 4, 5)), rng=rng)


def test_index_add_index_fill_nonzero(rng):
    x, src = rng.standard_normal((5, 3)), rng.standard_normal((4, 3))
    idx = np.array([0, 2, 2, 4])
    _compare(lambda a, s: pf.index_add(a, 0, pf.tensor(idx), s, alpha=2.0),
             lambda a, s: torch.index_add(a, 0, torch.tensor(idx), s, alpha=2.0), x, src)
    _compare(lambda a: pf.index_fill(a, 1, pf.tensor([0, -1]), -7.0),
             lambda a: torch.index_fill(a, 1, torch.tensor([0, 2]), -7.0), x)
    m = rng.standard_normal((3, 4)) > 0
    np.testing.assert_array_equal(pf.nonzero(pf.tensor(m)).numpy(),
                                  torch.nonzero(torch.tensor(m)).numpy())
    for a, b in zip(pf.tensor(m).nonzero(as_tuple=True),
                    torch.tensor(m).nonzero(as_tuple=True)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    np.testing.assert_array_equal(pf.argwhere(pf.tensor(m)).numpy(), np.argwhere(m))
    for v in (3.0, 0.0):                         # 0-d: PyTorch's shapes
        assert pf.nonzero(pf.tensor(v)).shape == tuple(torch.nonzero(torch.tensor(v)).shape)
        got = pf.nonzero(pf.tensor(v), as_tuple=True)
        want = torch.nonzero(torch.tensor(v), as_tuple=True)
        assert [g.numpy().tolist() for g in got] == [w.numpy().tolist() for w in want]
    with pf.Graph() as g:
        with pytest.raises(pf.TraceError, match="nonzero: the number of results"):
            pf.nonzero(g.placeholder("m", (3, 4), "bool"))
    r, c = pf.tril_indices(4, 3, -1).numpy(), torch.tril_indices(4, 3, -1).numpy()
    np.testing.assert_array_equal(r, c)
    np.testing.assert_array_equal(pf.triu_indices(3, 5, 1).numpy(),
                                  torch.triu_indices(3, 5, 1).numpy())
    assert pf.broadcast_shapes((3, 1), (1, 4), (4,)) == (3, 4)
    with pytest.raises(pf.ShapeError, match="narrow: \\[2, 6\\) is outside axis 1"):
        pf.narrow(pf.ones((2, 5)), 1, 2, 4)
    with pytest.raises(pf.ShapeError, match="movedim: source"):
        pf.movedim(pf.ones((2, 5)), (0, 1), 0)


def test_shape_helpers_float64_finite_differences(rng):
    x = rng.standard_normal((3, 4))
    check_grad(lambda t: pf.rot90(t, 1) * pf.arange(12.0).astype("float64").reshape(4, 3), x)
    check_grad(lambda t: pf.einsum("ij,ij->j", t, t), x)
    check_grad(lambda t: pf.logaddexp(t, t * 0.5), x)
    check_grad(lambda t: pf.xlogy(t, t * t + 1.0), x)
    check_grad(lambda t: pf.index_add(t, 1, pf.tensor([0, 0]), t[:, :2] * t[:, 2:]), x)


# ---- elementwise names ----

@pytest.mark.parametrize("pf_fn, torch_fn", [
    (pf.frac, torch.frac),
    (pf.deg2rad, torch.deg2rad),
    (pf.rad2deg, torch.rad2deg),
    (pf.sinc, torch.sinc),
    (pf.negative, torch.negative),
    (pf.positive, torch.positive),
    (lambda a: pf.logit(pf.sigmoid(a)), lambda a: torch.logit(torch.sigmoid(a))),
    (lambda a: pf.logit(pf.sigmoid(a), eps=0.3), lambda a: torch.logit(torch.sigmoid(a), 0.3)),
    (lambda a: pf.float_power(a, 2), lambda a: torch.float_power(a, 2)),
    (lambda a: pf.copysign(a, a[::-1]), lambda a: torch.copysign(a, torch.flip(a, (0,)))),
    (lambda a: pf.logaddexp(a, 2 * a), lambda a: torch.logaddexp(a, 2 * a)),
    (lambda a: pf.logaddexp2(a, -a), lambda a: torch.logaddexp2(a, -a)),
    (lambda a: pf.xlogy(a, a * a + 0.5), lambda a: torch.xlogy(a, a * a + 0.5)),
    (lambda a: pf.addcmul(a, a, a, value=0.5), lambda a: torch.addcmul(a, a, a, value=0.5)),
    (lambda a: pf.addcdiv(a, a, a * a + 1, value=2),
     lambda a: torch.addcdiv(a, a, a * a + 1, value=2)),
    (lambda a: pf.true_divide(a, 3), lambda a: torch.true_divide(a, 3)),
    (lambda a: pf.multiply(a, a), lambda a: torch.multiply(a, a)),
])
def test_elementwise_names_match_torch(pf_fn, torch_fn, rng):
    x = rng.standard_normal(12)
    x[3] = 0.0
    _compare(pf_fn, torch_fn, x, rng=rng)


def test_special_values(rng):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.5, -2.0])
    for fn in (lambda t, m: m.nan_to_num(t), lambda t, m: m.nan_to_num(t, 1.0, 9.0, -9.0),
               lambda t, m: m.signbit(t), lambda t, m: m.heaviside(t, t * 0 + 0.5),
               lambda t, m: m.logaddexp(t, t), lambda t, m: m.xlogy(t * 0, t),
               lambda t, m: m.copysign(t * 0 + 1, t),
               lambda t, m: m.isclose(t, t, equal_nan=True),
               lambda t, m: m.isclose(t, t + 1e-9), lambda t, m: m.sinc(t)):
        got, want = fn(pf.tensor(x), pf).numpy(), fn(torch.tensor(x), torch).numpy()
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    assert pf.allclose(pf.tensor([1.0, 2.0]), pf.tensor([1.0, 2.0 + 1e-7])) is True
    assert pf.tensor([1.0]).allclose(pf.tensor([1.1])) is False


# ---- creation ----

def test_creation_functions():
    np.testing.assert_array_equal(pf.eye(3, 4).numpy(), torch.eye(3, 4).numpy())
    np.testing.assert_allclose(pf.linspace(0, 1, 5).numpy(), torch.linspace(0, 1, 5).numpy())
    np.testing.assert_allclose(pf.logspace(0, 2, 3).numpy(), torch.logspace(0, 2, 3).numpy())
    t = pf.tensor([[1, 2], [3, 4]])
    assert pf.full_like(t, 7).numpy().tolist() == [[7, 7], [7, 7]]
    assert pf.empty(2, 3).shape == (2, 3) and pf.empty_like(t).dtype is pf.int64
    assert pf.zeros_like(t, dtype="float64").dtype is pf.float64
    assert pf.rand_like(pf.ones((2, 2))).shape == (2, 2)
    r = pf.randint(3, 9, (1000,)).numpy()
    assert r.min() >= 3 and r.max() < 9 and r.dtype == np.int64
    assert sorted(pf.randperm(10).numpy().tolist()) == list(range(10))
    a = np.zeros(3, np.float32)
    shared = pf.from_numpy(a)
    a[1] = 5
    assert shared.numpy()[1] == 5
    assert pf.as_tensor(shared) is shared
    with pytest.raises(pf.DTypeError, match="from_numpy: cannot share a float16 array"):
        pf.from_numpy(np.zeros(3, np.float16))
    assert pf.is_tensor(shared) and not pf.is_tensor(a) and pf.numel(pf.ones((2, 3))) == 6
    pf.manual_seed(3)
    first = (pf.randn(4).numpy(), pf.rand(2).numpy(), pf.randint(10, (3,)).numpy())
    pf.manual_seed(3)
    second = (pf.randn(4).numpy(), pf.rand(2).numpy(), pf.randint(10, (3,)).numpy())
    for u, v in zip(first, second):
        np.testing.assert_array_equal(u, v)


# ---- Tensor methods ----

def test_tensor_methods(rng):
    x = rng.standard_normal((3, 4)).astype(np.float32)
    p, t = pf.tensor(x), torch.tensor(x)
    assert p.float().dtype is pf.float32 and p.double().dtype is pf.float64
    assert p.long().dtype is pf.int64 and p.int().dtype is pf.int32
    assert p.type("float64").dtype is pf.float64 and p.type() == "float32"
    assert p.type_as(pf.tensor([1])).dtype is pf.int64
    assert p.numel() == 12 and p.dim() == 2 and p.size() == (3, 4) and p.size(-1) == 4
    assert p.size == 12                      # numpy's meaning too
    assert p.contiguous() is p and p.t().shape == (4, 3) and p.mT.shape == (4, 3)
    assert p.view_as(pf.ones((4, 3))).shape == (4, 3)
    assert p.expand_as(pf.ones((2, 3, 4))).shape == (2, 3, 4)
    for name in ("square", "neg", "reciprocal", "sign", "floor", "ceil", "round", "frac",
                 "sin", "cos", "tan", "sinh", "cosh", "atan", "asinh", "erf", "exp2",
                 "log1p", "expm1"):
        got = getattr(p, name)().numpy()
        want = getattr(t, name)().numpy()
        np.testing.assert_allclose(got, want, rtol=2e-6, atol=2e-6, err_msg=name)
    for name in ("eq", "ne", "lt", "le", "gt", "ge"):
        np.testing.assert_array_equal(getattr(p, name)(0.1).numpy(),
                                      getattr(t, name)(0.1).numpy())
    np.testing.assert_allclose(p.where(p > 0, -1.0).numpy(), t.where(t > 0, -1.0).numpy())
    np.testing.assert_allclose(p.add(p, alpha=2).numpy(), t.add(t, alpha=2).numpy())
    np.testing.assert_allclose(p.sub(p, alpha=0.5).numpy(), t.sub(t, alpha=0.5).numpy())
    np.testing.assert_allclose(p.mm(p.t()).numpy(), t.mm(t.t()).numpy(), rtol=1e-5)
    np.testing.assert_allclose(p.amax(dim=1).numpy(), t.amax(dim=1).numpy())
    np.testing.assert_allclose(p.pow(2).numpy(), t.pow(2).numpy(), rtol=1e-6)
    np.testing.assert_allclose(p.lerp(p * 2, 0.25).numpy(), t.lerp(t * 2, 0.25).numpy())
    assert p.equal(pf.tensor(x)) and not p.equal(pf.tensor(x[:2]))
    assert not p.equal(pf.tensor(x + 1))


def test_in_place_updates():
    w = pf.tensor([1.0, 2.0, 3.0], requires_grad=True)
    storage = w.numpy()
    with pf.no_grad():
        w.add_(pf.tensor([1.0, 1.0, 1.0]), alpha=2).mul_(2).sub_(1.0).div_(2.0).clamp_(max=4.0)
    np.testing.assert_allclose(w.numpy(), [2.5, 3.5, 4.0])
    assert w.numpy() is storage                 # written into the same memory
    w.data.fill_(1.0)
    np.testing.assert_array_equal(storage, [1.0, 1.0, 1.0])
    pf.manual_seed(1)
    w.data.normal_(0.0, 0.02)
    assert 0 < np.abs(storage).max() < 0.2
    with pytest.raises(pf.PyfrontError, match="mul_: a leaf tensor that requires grad cannot be written in place"):
        w.mul_(2)
    # recording: the tensor becomes the op's result on the tape, as PyTorch's
    x = pf.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = x * 1.0
    y.mul_(x).masked_fill_(y < 0, 0.0).add_(1.0)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), [2.0, -4.0, 6.0])   # d(x^2)/dx
    z = pf.tensor([1, 2, 3])
    z.add_(1)
    assert z.numpy().tolist() == [2, 3, 4]
    with pytest.raises(pf.ShapeError, match="add_: the result's shape"):
        z.add_(pf.ones((2, 3), dtype="int64"))
    with pytest.raises(pf.DTypeError, match="mul_: a float32 result cannot be written into a int64"):
        z.mul_(0.5)


# ---- containers ----

def test_module_list_and_dict_own_their_parameters(rng):
    class Net(pf.nn.Model):
        def __init__(self):
            super().__init__()
            self.blocks = pf.nn.ModuleList([pf.nn.Dense(6, activation="relu") for _ in range(2)])
            self.blocks.append(pf.nn.Dense(6))
            self.heads = pf.nn.ModuleDict({"a": pf.nn.Dense(2), "skip": pf.nn.Identity()})

        def forward(self, x):
            for block in self.blocks:
                x = block(x)
            return self.heads["a"](self.heads["skip"](x))

    net = Net()
    x = pf.tensor(rng.standard_normal((4, 5)).astype(np.float32))
    assert net(x).shape == (4, 2)
    names = [k for k, _ in net.named_parameters()]
    assert names[:2] == ["blocks.0.kernel", "blocks.0.bias"] and "heads.a.kernel" in names
    assert len(net.parameters()) == 8 and len(net.blocks) == 3 and "skip" in net.heads
    assert len(net.blocks[1:]) == 2 and net.heads.keys() == ["a", "skip"]
    opt = pf.optim.SGD(net.parameters(), lr=0.1)
    before = net.blocks[0].kernel.numpy().copy()
    loss = (net(x) ** 2).mean()
    loss.backward()
    opt.step()
    assert not np.array_equal(before, net.blocks[0].kernel.numpy())
    with pytest.raises(TypeError, match="ModuleList takes Modules"):
        net.blocks.append(3)
    with pytest.raises(TypeError, match="a ModuleList is not called"):
        net.blocks(x)


def test_changing_what_backward_needs_is_refused_not_silently_wrong():
    # a tensor a node kept for its gradient, changed in place afterwards: PyTorch's error, not
    # a gradient from the new values (or sent to the wrong node)
    def kept_input_rebound():
        w = pf.tensor([1.0, 2.0], requires_grad=True)
        x = w * 1.0
        y = x * x                       # mul keeps x
        x.add_(10.0)
        y.sum().backward()

    def kept_input_setitem():
        w = pf.tensor([1.0, 2.0], requires_grad=True)
        x = w * 1.0
        y = x * x
        x[0] = 5.0
        y.sum().backward()

    def kept_input_written():
        x, w = pf.tensor([1.0, 2.0]), pf.tensor([3.0, 4.0], requires_grad=True)
        y = (x * w).sum()               # keeps x for w's gradient
        x.fill_(0.0)
        y.backward()

    def kept_output_written():
        w = pf.tensor([0.5, 1.0], requires_grad=True)
        y = pf.tanh(w)                  # keeps its output
        with pf.no_grad():
            y.add_(1.0)
        y.sum().backward()

    for fn, pattern in ((kept_input_rebound, "input 0 .* of mul was changed in place by add_"),
                        (kept_input_setitem, "of mul was changed in place by __setitem__"),
                        (kept_input_written, "input 0 .* of mul was changed in place by fill_"),
                        (kept_output_written, "output 0 .* of tanh was changed in place by add_")):
        with pytest.raises(pf.PyfrontError, match=pattern):
            fn()
    # what stays allowed: in place before use, an update after backward, then a new forward
    w = pf.tensor([1.0, 2.0], requires_grad=True)
    x = w * 1.0
    x.mul_(3.0)
    (x * x).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), [18.0, 36.0])
    (w * w).sum().backward()
    with pf.no_grad():
        w.sub_(w.grad * 0.1)
    w.grad = None
    (w * w).sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), 2 * w.numpy())


def test_in_place_initializers_follow_pytorch():
    pf.manual_seed(0)
    layer = pf.nn.Dense(300)
    layer(pf.ones((2, 200)))
    k = layer.kernel
    storage = k.numpy()
    pf.nn.init.kaiming_uniform_(k, nonlinearity="relu")       # bound sqrt(6 / fan_in)
    assert k.numpy() is storage
    bound = np.sqrt(6.0 / 200)
    assert np.abs(storage).max() <= bound and np.abs(storage).max() > 0.9 * bound
    pf.nn.init.xavier_normal_(k, gain=2.0)
    np.testing.assert_allclose(storage.std(), 2.0 * np.sqrt(2.0 / 500), rtol=0.05)
    w = pf.zeros(16, 8, 3, 3)                                    # conv (out, in, kh, kw)
    pf.nn.init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    np.testing.assert_allclose(w.numpy().std(), np.sqrt(2.0 / (16 * 9)), rtol=0.1)
    pf.nn.init.constant_(layer.bias, 0.5)
    assert (layer.bias.numpy() == 0.5).all()
    pf.nn.init.zeros_(layer.bias)
    assert not layer.bias.numpy().any()
    q = pf.zeros(6, 4)
    pf.nn.init.orthogonal_(q)
    np.testing.assert_allclose(q.numpy().T @ q.numpy(), np.eye(4), atol=1e-5)
    assert abs(pf.nn.init.calculate_gain("leaky_relu", 0.2) - np.sqrt(2 / 1.04)) < 1e-12
    with pytest.raises(ValueError, match="unknown nonlinearity 'swishy'"):
        pf.nn.init.calculate_gain("swishy")


def test_in_place_methods_in_compiled_graphs():
    def f(x):
        y = x * 2.0
        y.add_(1.0).clamp_(max=5.0)
        y[0] = 0.0
        y.masked_fill_(y < 0, -1.0)
        return y

    x = pf.tensor(np.array([1.0, -2.0, 3.0, 0.5], np.float32))
    np.testing.assert_array_equal(pf.jit(f)(x).numpy(), f(x).numpy())
    np.testing.assert_array_equal(f(x).numpy(), [0.0, -1.0, 5.0, 2.0])

    def writes_its_input(x):
        x.mul_(2.0)
        return x

    with pytest.warns(RuntimeWarning, match="writing into placeholder input .*mul_"):
        out = pf.jit(writes_its_input)(pf.tensor(np.array([1.0], np.float32)))
    assert out.numpy().tolist() == [2.0]


# ---- learning-rate schedulers ----

@pytest.mark.parametrize("name, kwargs", [
    ("StepLR", {"step_size": 3, "gamma": 0.5}),
    ("MultiStepLR", {"milestones": [2, 5], "gamma": 0.1}),
    ("ExponentialLR", {"gamma": 0.9}),
    ("CosineAnnealingLR", {"T_max": 6, "eta_min": 0.01}),
    ("LambdaLR", {"lr_lambda": lambda e: 1.0 / (1 + e)}),
])
def test_lr_schedulers_set_pytorchs_rates(name, kwargs):
    w = pf.tensor([1.0, 2.0], requires_grad=True)
    tw = torch.tensor([1.0, 2.0], requires_grad=True)
    opt, topt = pf.optim.SGD([w], lr=0.2), torch.optim.SGD([tw], lr=0.2)
    sched = getattr(pf.optim.lr_scheduler, name)(opt, **kwargs)
    tsched = getattr(torch.optim.lr_scheduler, name)(topt, **kwargs)
    for _ in range(9):
        # the rates agree, and the updates made with them
        np.testing.assert_allclose(sched.get_last_lr(), tsched.get_last_lr(), rtol=1e-12)
        (w * w).sum().backward()
        (tw * tw).sum().backward()
        opt.step()
        topt.step()
        opt.zero_grad()
        topt.zero_grad()
        sched.step()
        tsched.step()
    np.testing.assert_allclose(w.numpy(), tw.detach().numpy(), rtol=1e-6)
    again = getattr(pf.optim.lr_scheduler, name)(pf.optim.SGD([w], lr=0.2), **kwargs)
    again.load_state_dict(sched.state_dict())
    assert again.get_last_lr() == sched.get_last_lr()


def test_reduce_lr_on_plateau_follows_pytorch():
    w = pf.tensor([1.0], requires_grad=True)
    tw = torch.tensor([1.0], requires_grad=True)
    opt, topt = pf.optim.SGD([w], lr=1.0), torch.optim.SGD([tw], lr=1.0)
    kw = {"mode": "min", "factor": 0.5, "patience": 2, "cooldown": 1, "min_lr": 0.05}
    sched = pf.optim.lr_scheduler.ReduceLROnPlateau(opt, **kw)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **kw)
    for metric in [5, 4, 4, 4, 4, 3.9999, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4]:
        sched.step(metric)
        tsched.step(metric)
        assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr())
    with pytest.raises(ValueError, match="factor must be in"):
        pf.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=2.0)


@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")])
def test_clip_grad_norm_and_value_follow_pytorch(norm_type, rng):
    arrays = [rng.standard_normal((3, 4)), rng.standard_normal(5)]
    ps = [pf.tensor(a, requires_grad=True) for a in arrays]
    ts = [torch.tensor(a, requires_grad=True) for a in arrays]
    sum((p * p * p).sum() for p in ps).backward()
    sum((t * t * t).sum() for t in ts).backward()
    got = pf.nn.utils.clip_grad_norm_(ps, 1.5, norm_type)
    want = torch.nn.utils.clip_grad_norm_(ts, 1.5, norm_type)
    np.testing.assert_allclose(float(got.item()), float(want), rtol=1e-12)
    for p, t in zip(ps, ts):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-12)
    pf.nn.utils.clip_grad_value_(ps, 0.1)
    torch.nn.utils.clip_grad_value_(ts, 0.1)
    for p, t in zip(ps, ts):
        np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-12)
        assert np.abs(p.grad.numpy()).max() <= 0.1
    ps[0].grad.numpy()[0, 0] = np.nan
    with pytest.raises(pf.NumericError, match="total 2.0-norm is nan"):
        pf.nn.utils.clip_grad_norm_(ps, 1.0, error_if_nonfinite=True)


def test_retain_graph_is_accepted_and_the_tape_stays():
    w = pf.tensor([1.0, 2.0], requires_grad=True)
    y = (w * w).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(w.grad.numpy(), [4.0, 8.0])
    (g,) = pf.grad(y, [w], retain_graph=True)
    np.testing.assert_array_equal(g.numpy(), [2.0, 4.0])


def test_zero_grad_set_to_none_or_zeros():
    layer = pf.nn.Dense(2)
    opt = pf.optim.SGD(layer.parameters(), lr=0.1)
    layer(pf.ones((3, 4))).sum().backward()
    grad = layer.kernel.grad
    opt.zero_grad(set_to_none=False)
    assert layer.kernel.grad is grad and not grad.numpy().any()
    layer.zero_grad(set_to_none=False)
    assert layer.kernel.grad is grad
    opt.zero_grad()
    assert layer.kernel.grad is None and layer.bias.grad is None


@pytest.mark.parametrize("shape, size", [((2, 3, 7, 9), (3, 4)), ((2, 3, 8, 8), 1),
                                         ((2, 3, 5, 6), (5, None)), ((2, 3, 10), 4),
                                         ((1, 2, 5, 6, 7), (2, 3, 4))])
def test_adaptive_avg_pool_matches_torch(shape, size, rng):
    nd = len(shape) - 2
    name = "adaptive_avg_pool%dd" % nd
    x = rng.standard_normal(shape)
    _compare(lambda t: getattr(pf, name)(t, size),
             lambda t: getattr(torch.nn.functional, name)(t, size), x, rng=rng)
    xf = x.astype(np.float32)
    fn = lambda t: getattr(pf, name)(t, size)  # noqa: E731
    np.testing.assert_allclose(pf.jit(fn)(pf.tensor(xf)).numpy(), fn(pf.tensor(xf)).numpy(),
                               rtol=1e-6, atol=1e-6)


def test_normalize_embedding_mse_loss(rng):
    x = rng.standard_normal((4, 5))
    _compare(lambda t: pf.normalize(t, dim=1), lambda t: torch.nn.functional.normalize(t, dim=1),
             x, rng=rng)
    _compare(lambda t: pf.normalize(t, p=1, dim=0),
             lambda t: torch.nn.functional.normalize(t, p=1, dim=0), x, rng=rng)
    ids = np.array([[0, 3], [1, 1]])
    _compare(lambda w: pf.embedding(pf.tensor(ids), w),
             lambda w: torch.nn.functional.embedding(torch.tensor(ids), w), x, rng=rng)
    y = rng.standard_normal((4, 5))
    _compare(lambda a, b: pf.mse_loss(a, b), lambda a, b: torch.nn.functional.mse_loss(a, b),
             x, y, rng=rng)
