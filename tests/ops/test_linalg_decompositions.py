"""pf.linalg and torch's top-level linear algebra (inverse, det, solve, Cholesky, QR, eigh, SVD,
pinv, lstsq, matrix functions and norms): forwards against torch.linalg on well-conditioned
batched and single matrices in float32 and float64, gradients against torch and float64
finite differences (second order too), eager against pf.jit, the errors (singular, not
positive-definite, non-square, wrong rank, wrong dtype), and a model with a learned SPD
matrix trained through logdet."""
import math

import numpy as np
import pytest

import pyfront as pf
from pyfront.testing import check_grad

# the references' old names (torch.qr, torch.triangular_solve) are deprecated there
pytestmark = pytest.mark.filterwarnings("ignore:torch.(qr|triangular_solve) is deprecated")

TOL = {np.float32: dict(rtol=2e-4, atol=2e-4), np.float64: dict(rtol=1e-9, atol=1e-9)}
BATCHES = [(), (2, 3)]


def general(rng, shape, dtype=np.float64):
    """Well-conditioned matrices: a random one with max(m, n) added to its diagonal."""
    m, n = shape[-2:]
    return (rng.standard_normal(shape) + max(m, n) * np.eye(m, n)).astype(dtype)


def spd(rng, shape, dtype=np.float64):
    x = rng.standard_normal(shape)
    return (x @ np.swapaxes(x, -1, -2) + shape[-1] * np.eye(shape[-1])).astype(dtype)


def symmetric(rng, shape, dtype=np.float64):
    x = rng.standard_normal(shape)
    return ((x + np.swapaxes(x, -1, -2)) / 2).astype(dtype)


def _sym(x):
    """A symmetric function of x (for finite differences of ops that read one triangle)."""
    return (x + x.mT) * 0.5


def _np(t):
    return t.numpy() if isinstance(t, pf.Tensor) else t.detach().numpy()


def _close(got, want, dtype, scale=1.0):
    tol = {k: v * scale for k, v in TOL[dtype].items()}
    np.testing.assert_allclose(_np(got), _np(want), **tol)


# ---------------------------------------------------------------------------------------------
# forwards against torch.linalg

# (name, pyfront function, torch function, input maker, input shape without batch)
FORWARDS = [
    ("inv", lambda a: pf.linalg.inv(a), lambda t, a: t.linalg.inv(a), general, (4, 4)),
    ("det", lambda a: pf.linalg.det(a), lambda t, a: t.linalg.det(a), general, (4, 4)),
    ("slogdet", lambda a: tuple(pf.linalg.slogdet(a)), lambda t, a: tuple(t.linalg.slogdet(a)),
     general, (4, 4)),
    ("logdet", lambda a: pf.logdet(a), lambda t, a: t.logdet(a), spd, (4, 4)),
    ("cholesky", lambda a: pf.linalg.cholesky(a), lambda t, a: t.linalg.cholesky(a), spd,
     (4, 4)),
    ("cholesky upper", lambda a: pf.linalg.cholesky(a, upper=True),
     lambda t, a: t.linalg.cholesky(a, upper=True), spd, (4, 4)),
    ("qr tall", lambda a: tuple(pf.linalg.qr(a)), lambda t, a: tuple(t.linalg.qr(a)),
     general, (5, 3)),
    ("qr wide", lambda a: tuple(pf.linalg.qr(a)), lambda t, a: tuple(t.linalg.qr(a)),
     general, (3, 5)),
    ("qr complete", lambda a: tuple(pf.linalg.qr(a, mode="complete")),
     lambda t, a: tuple(t.linalg.qr(a, mode="complete")), general, (5, 3)),
    ("qr r", lambda a: pf.linalg.qr(a, mode="r").R, lambda t, a: t.linalg.qr(a, mode="r").R,
     general, (5, 3)),
    ("eigvalsh", lambda a: pf.linalg.eigvalsh(a), lambda t, a: t.linalg.eigvalsh(a),
     symmetric, (5, 5)),
    ("eigvalsh U", lambda a: pf.linalg.eigvalsh(a, "U"),
     lambda t, a: t.linalg.eigvalsh(a, "U"), general, (5, 5)),
    ("svdvals", lambda a: pf.linalg.svdvals(a), lambda t, a: t.linalg.svdvals(a), general,
     (5, 3)),
    ("pinv", lambda a: pf.linalg.pinv(a), lambda t, a: t.linalg.pinv(a), general, (5, 3)),
    ("pinv hermitian", lambda a: pf.linalg.pinv(a, hermitian=True),
     lambda t, a: t.linalg.pinv(a, hermitian=True), symmetric, (4, 4)),
    ("pinverse", lambda a: pf.pinverse(a), lambda t, a: t.pinverse(a), general, (3, 5)),
    ("matrix_rank", lambda a: pf.linalg.matrix_rank(a), lambda t, a: t.linalg.matrix_rank(a),
     general, (5, 3)),
    ("matrix_power 3", lambda a: pf.linalg.matrix_power(a, 3),
     lambda t, a: t.linalg.matrix_power(a, 3), general, (4, 4)),
    ("matrix_power 0", lambda a: pf.matrix_power(a, 0), lambda t, a: t.matrix_power(a, 0),
     general, (4, 4)),
    ("matrix_power -2", lambda a: pf.linalg.matrix_power(a, -2),
     lambda t, a: t.linalg.matrix_power(a, -2), general, (4, 4)),
    ("matrix_exp", lambda a: pf.linalg.matrix_exp(a), lambda t, a: t.linalg.matrix_exp(a),
     lambda rng, s, dt: (rng.standard_normal(s) * 0.7).astype(dt), (4, 4)),
    ("matrix_exp large norm", lambda a: pf.matrix_exp(a), lambda t, a: t.matrix_exp(a),
     lambda rng, s, dt: (symmetric(rng, s) * 3).astype(dt), (4, 4)),
    ("cond", lambda a: pf.linalg.cond(a), lambda t, a: t.linalg.cond(a), general, (5, 3)),
    ("cond -2", lambda a: pf.linalg.cond(a, -2), lambda t, a: t.linalg.cond(a, -2), general,
     (4, 4)),
    ("cond fro", lambda a: pf.linalg.cond(a, "fro"), lambda t, a: t.linalg.cond(a, "fro"),
     general, (4, 4)),
    ("cond inf", lambda a: pf.linalg.cond(a, math.inf),
     lambda t, a: t.linalg.cond(a, math.inf), general, (4, 4)),
]
FORWARDS += [("matrix_norm %s" % (o,), lambda a, o=o: pf.linalg.matrix_norm(a, o),
              lambda t, a, o=o: t.linalg.matrix_norm(a, o), general, (5, 3))
             for o in ("fro", "nuc", 2, -2, 1, -1, math.inf, -math.inf)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("case", FORWARDS, ids=[c[0] for c in FORWARDS])
def test_forward_matches_torch(case, batch, dtype, rng, torch):
    name, ours, theirs, make, shape = case
    a = make(rng, batch + shape, dtype)
    got, want = ours(pf.tensor(a)), theirs(torch, torch.tensor(a))
    got = got if isinstance(got, tuple) else (got,)
    want = want if isinstance(want, tuple) else (want,)
    for g, w in zip(got, want):
        assert g.shape == tuple(w.shape), name
        assert g.dtype.np == w.detach().numpy().dtype, name
        _close(g, w, dtype, scale=20 if "exp" in name or "cond" in name else 1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch", BATCHES)
def test_decompositions_reconstruct_and_match_torch_up_to_sign(batch, dtype, rng, torch):
    tol = TOL[dtype]
    a = symmetric(rng, batch + (5, 5), dtype)
    w, v = pf.linalg.eigh(a)
    tw, tv = torch.linalg.eigh(torch.tensor(a))
    _close(w, tw, dtype)
    _close(pf.abs(v), tv.abs(), dtype)       # each eigenvector up to its sign
    np.testing.assert_allclose((v.numpy() * w.numpy()[..., None, :]) @ np.swapaxes(
        v.numpy(), -1, -2), a, **tol)
    for shape in ((5, 3), (3, 5), (4, 4)):
        a = general(rng, batch + shape, dtype)
        for full in (False, True):
            u, s, vh = pf.linalg.svd(a, full_matrices=full)
            tu, ts, tvh = torch.linalg.svd(torch.tensor(a), full_matrices=full)
            assert (u.shape, s.shape, vh.shape) == (tuple(tu.shape), tuple(ts.shape),
                                                    tuple(tvh.shape))
            _close(s, ts, dtype)
            k = min(shape)
            _close(pf.abs(u)[..., :k], tu.abs()[..., :k], dtype)
            _close(pf.abs(vh)[..., :k, :], tvh.abs()[..., :k, :], dtype)
            np.testing.assert_allclose((u.numpy()[..., :k] * s.numpy()[..., None, :]) @
                                       vh.numpy()[..., :k, :], a, **tol)
        # torch.svd's old convention: V, not Vh; some=False the full factors
        u, s, v = pf.svd(a)
        np.testing.assert_allclose((u.numpy() * s.numpy()[..., None, :]) @
                                   np.swapaxes(v.numpy(), -1, -2), a, **tol)
        tu, ts, tv = torch.svd(torch.tensor(a), some=False)
        assert [x.shape for x in pf.svd(a, some=False)] == [tuple(x.shape) for x in (tu, ts, tv)]
        zu, zs, zv = pf.svd(a, compute_uv=False)
        tu, ts, tv = torch.svd(torch.tensor(a), compute_uv=False)
        assert zu.shape == tuple(tu.shape) and zv.shape == tuple(tv.shape)
        assert not zu.numpy().any() and not zv.numpy().any()
        _close(zs, ts, dtype)
        # torch.qr: some=False the complete factors
        q, r = pf.qr(a, some=False)
        tq, tr = torch.qr(torch.tensor(a), some=False)
        _close(q, tq, dtype)
        _close(r, tr, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_solves_broadcast_as_torch(dtype, rng, torch):
    a = general(rng, (2, 1, 4, 4), dtype)
    for b_shape in ((2, 3, 4, 2), (4, 2), (3, 4, 5), (4,), (2, 1, 4)):
        b = rng.standard_normal(b_shape).astype(dtype)
        got = pf.linalg.solve(pf.tensor(a), pf.tensor(b))
        want = torch.linalg.solve(torch.tensor(a), torch.tensor(b))
        assert got.shape == tuple(want.shape), b_shape
        _close(got, want, dtype)
    b = rng.standard_normal((2, 3, 5, 4)).astype(dtype)
    _close(pf.linalg.solve(a, b, left=False),
           torch.linalg.solve(torch.tensor(a), torch.tensor(b), left=False), dtype)
    # triangular solves and Cholesky solves read one triangle of their matrix
    b = rng.standard_normal((2, 1, 4, 3)).astype(dtype)
    for upper in (False, True):
        for unit in (False, True):
            _close(pf.linalg.solve_triangular(a, b, upper=upper, unitriangular=unit),
                   torch.linalg.solve_triangular(torch.tensor(a), torch.tensor(b), upper=upper,
                                                 unitriangular=unit), dtype)
        x, coefficient = pf.triangular_solve(b, a, upper=upper, transpose=True)
        tx, tc = torch.triangular_solve(torch.tensor(b), torch.tensor(a), upper=upper,
                                        transpose=True)
        _close(x, tx, dtype)
        _close(coefficient, tc, dtype)
        factor = np.linalg.cholesky(spd(rng, (4, 4))).astype(dtype)
        factor = np.swapaxes(factor, -1, -2) if upper else factor
        _close(pf.cholesky_solve(b, factor, upper), torch.cholesky_solve(
            torch.tensor(b), torch.tensor(factor), upper), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_lstsq_matches_torch(dtype, rng, torch):
    a = rng.standard_normal((2, 6, 3)).astype(dtype)
    b = rng.standard_normal((2, 6, 2)).astype(dtype)
    for driver in (None, "gels", "gelsd", "gelss", "gelsy"):
        got = pf.linalg.lstsq(a, b, driver=driver)
        want = torch.linalg.lstsq(torch.tensor(a), torch.tensor(b), driver=driver)
        for g, w in zip(got, want):
            assert g.shape == tuple(w.shape), driver
            _close(g, w, dtype, scale=10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_norms_match_torch(dtype, rng, torch):
    x = rng.standard_normal((3, 4, 5)).astype(dtype)
    tx = torch.tensor(x)
    for o in (2, 1, 3.5, 0, 0.5, -1, -2.5, math.inf, -math.inf):
        for dim in (None, -1, (0, 2)):
            for keepdim in (False, True):
                _close(pf.linalg.vector_norm(x, o, dim, keepdim),
                       torch.linalg.vector_norm(tx, o, dim, keepdim), dtype)
    for o in ("fro", "nuc", 2, -2, 1, -1, math.inf, -math.inf):
        for dim in ((-2, -1), (2, 0), (0, 1)):
            for keepdim in (False, True):
                got = pf.linalg.matrix_norm(x, o, dim, keepdim)
                want = torch.linalg.matrix_norm(tx, o, dim, keepdim)
                assert got.shape == tuple(want.shape), (o, dim, keepdim)
                _close(got, want, dtype)
    # linalg.norm's dispatch
    for args in ({}, {"keepdim": True}, {"dim": 1}, {"ord": 3, "dim": 2}, {"dim": (0, 2)},
                 {"ord": "nuc", "dim": (1, 2)}, {"ord": -math.inf, "dim": (2, 1)}):
        _close(pf.linalg.norm(x, **args), torch.linalg.norm(tx, **args), dtype)
    for o in (None, 1, -2, math.inf, "fro", "nuc"):
        _close(pf.linalg.norm(x[0], o), torch.linalg.norm(tx[0], o), dtype)
        if not isinstance(o, str):
            _close(pf.linalg.norm(x[0, 0], o), torch.linalg.norm(tx[0, 0], o), dtype)
    with pytest.raises(pf.ShapeError, match="1-D or 2-D"):
        pf.linalg.norm(x, 2)


def test_cross_and_multi_dot_match_torch(rng, torch):
    a, b = rng.standard_normal((4, 1, 3)), rng.standard_normal((1, 5, 3))
    _close(pf.linalg.cross(a, b), torch.linalg.cross(torch.tensor(a), torch.tensor(b)),
           np.float64)
    a, b = a.swapaxes(1, 2), b.swapaxes(1, 2)
    _close(pf.linalg.cross(a, b, dim=1),
           torch.linalg.cross(torch.tensor(a), torch.tensor(b), dim=1), np.float64)
    for shapes in (((3,), (3, 8), (8, 2), (2, 5), (5,)), ((10, 3), (3, 40), (40, 2)),
                   ((2, 6), (6, 2))):
        ms = [rng.standard_normal(s) for s in shapes]
        got = pf.linalg.multi_dot([pf.tensor(m) for m in ms])
        want = torch.linalg.multi_dot([torch.tensor(m) for m in ms])
        assert got.shape == tuple(want.shape)
        _close(got, want, np.float64)
        check_grad(lambda *xs: pf.linalg.multi_dot(list(xs)), *ms)


def test_tensor_methods_are_the_functions(rng):
    a = general(rng, (2, 3, 3))
    t = pf.tensor(a)
    for method, fn in (("inverse", pf.inverse), ("det", pf.det), ("logdet", pf.logdet),
                       ("matrix_exp", pf.matrix_exp), ("pinverse", pf.pinverse)):
        np.testing.assert_array_equal(getattr(t, method)().numpy(), fn(t).numpy())
    np.testing.assert_array_equal(t.matrix_power(3).numpy(), pf.matrix_power(t, 3).numpy())
    for got, want in zip(t.slogdet(), pf.slogdet(t)):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    for got, want in zip(t.svd(), pf.svd(t)):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    for got, want in zip(t.qr(), pf.qr(t)):
        np.testing.assert_array_equal(got.numpy(), want.numpy())
    s = pf.tensor(spd(rng, (3, 3)))
    np.testing.assert_array_equal(s.cholesky(upper=True).numpy(), pf.cholesky(s, True).numpy())
    b = pf.tensor(rng.standard_normal((3, 2)))
    np.testing.assert_array_equal(b.cholesky_solve(s.cholesky()).numpy(),
                                  pf.cholesky_solve(b, s.cholesky()).numpy())
    np.testing.assert_array_equal(b.triangular_solve(s)[0].numpy(),
                                  pf.triangular_solve(b, s)[0].numpy())
    assert pf.inverse is pf.linalg.inv and pf.det is pf.linalg.det
    import pyfront.linalg

    assert pyfront.linalg is pf.linalg


# ---------------------------------------------------------------------------------------------
# gradients: against torch, finite differences, and second order

# (name, function of one tensor that torch and pyfront both run, input maker, shape): the
# functions are invariant to the signs of singular and eigen vectors
def _weights(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape)


def _eigh_loss(lib, a):
    w, v = lib.linalg.eigh(a)
    return (w * lib.tensor(_weights(w.shape, 1))).sum() + \
        (v * v * lib.tensor(_weights(v.shape, 2))).sum()


def _svd_loss(lib, a, full=False):
    u, s, vh = lib.linalg.svd(a, full_matrices=full)
    k = s.shape[-1]
    u, vh = u[..., :k], vh[..., :k, :]
    return (s * lib.tensor(_weights(s.shape, 1))).sum() + \
        (u * u * lib.tensor(_weights(u.shape, 2))).sum() + \
        (vh * vh * lib.tensor(_weights(vh.shape, 3))).sum()


def _weighted(lib, outs):
    """A fixed random weighting of outputs (a tensor or a tuple), summed."""
    outs = outs if isinstance(outs, tuple) else (outs,)
    total = 0
    for i, o in enumerate(outs):
        total = total + (o * lib.tensor(_weights(tuple(o.shape), 10 + i))).sum()
    return total


GRADS = [
    ("inv", lambda lib, a: _weighted(lib, lib.linalg.inv(a)), general, (4, 4)),
    ("det", lambda lib, a: _weighted(lib, lib.linalg.det(a)), general, (4, 4)),
    ("slogdet", lambda lib, a: _weighted(lib, lib.linalg.slogdet(a).logabsdet), general,
     (4, 4)),
    ("logdet", lambda lib, a: _weighted(lib, lib.logdet(a)), spd, (4, 4)),
    ("cholesky", lambda lib, a: _weighted(lib, lib.linalg.cholesky(_sym(a))), spd, (4, 4)),
    ("cholesky upper", lambda lib, a: _weighted(lib, lib.linalg.cholesky(_sym(a), upper=True)),
     spd, (4, 4)),
    ("qr tall", lambda lib, a: _weighted(lib, tuple(lib.linalg.qr(a))), general, (5, 3)),
    ("qr square complete", lambda lib, a: _weighted(lib, tuple(lib.linalg.qr(a, "complete"))),
     general, (4, 4)),
    ("qr wide", lambda lib, a: _weighted(lib, tuple(lib.linalg.qr(a))), general, (3, 5)),
    ("eigh", lambda lib, a: _eigh_loss(lib, _sym(a)), symmetric, (4, 4)),
    ("eigvalsh", lambda lib, a: _weighted(lib, lib.linalg.eigvalsh(_sym(a))), symmetric, (4, 4)),
    ("svd tall", _svd_loss, general, (5, 3)),
    ("svd wide", _svd_loss, general, (3, 5)),
    ("svd square", _svd_loss, general, (4, 4)),
    ("svd full", lambda lib, a: _svd_loss(lib, a, True), general, (5, 3)),
    ("svdvals", lambda lib, a: _weighted(lib, lib.linalg.svdvals(a)), general, (3, 5)),
    ("pinv tall", lambda lib, a: _weighted(lib, lib.linalg.pinv(a)), general, (5, 3)),
    ("pinv wide", lambda lib, a: _weighted(lib, lib.linalg.pinv(a)), general, (3, 5)),
    ("matrix_exp", lambda lib, a: _weighted(lib, lib.linalg.matrix_exp(a)),
     lambda rng, s: rng.standard_normal(s) * 0.5, (3, 3)),
    ("matrix_power -3", lambda lib, a: _weighted(lib, lib.linalg.matrix_power(a, -3)), general,
     (3, 3)),
    ("solve", lambda lib, a: _weighted(lib, lib.linalg.solve(a, a[..., :2] * 2 + 1)), general,
     (4, 4)),
    ("matrix_norm nuc", lambda lib, a: _weighted(lib, lib.linalg.matrix_norm(a, "nuc")),
     general, (4, 3)),
    ("cond", lambda lib, a: _weighted(lib, lib.linalg.cond(a)), general, (4, 3)),
]


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("case", GRADS, ids=[c[0] for c in GRADS])
def test_gradient_matches_torch(case, batch, rng, torch):
    name, loss, make, shape = case
    a = make(rng, batch + shape)
    ours = pf.tensor(a, requires_grad=True)
    loss(pf, ours).backward()
    theirs = torch.tensor(a, requires_grad=True)
    loss(torch, theirs).backward()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-8, atol=1e-8,
                               err_msg=name)


@pytest.mark.parametrize("case", GRADS, ids=[c[0] for c in GRADS])
def test_gradient_matches_finite_differences(case, rng):
    name, loss, make, shape = case
    check_grad(lambda t: loss(pf, t), make(rng, (2,) + shape), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("case", [c for c in GRADS if c[0] in (
    "inv", "det", "slogdet", "cholesky", "qr tall", "eigvalsh", "svdvals", "matrix_exp",
    "solve", "pinv tall", "eigh", "svd square")], ids=lambda c: c[0])
def test_second_derivatives_match_torch(case, rng, torch):
    name, loss, make, shape = case
    a = make(rng, shape)
    v = rng.standard_normal(shape)
    ours = pf.tensor(a, requires_grad=True)
    g, = pf.grad(loss(pf, ours), [ours], create_graph=True)
    hv, = pf.grad((g * pf.tensor(v)).sum(), [ours])
    theirs = torch.tensor(a, requires_grad=True)
    tg, = torch.autograd.grad(loss(torch, theirs), [theirs], create_graph=True)
    thv, = torch.autograd.grad((tg * torch.tensor(v)).sum(), [theirs])
    np.testing.assert_allclose(hv.numpy(), thv.numpy(), rtol=1e-7, atol=1e-7, err_msg=name)


def test_float32_gradients_match_torch(rng, torch):
    for name, loss, make, shape in GRADS:
        a = make(rng, (2,) + shape).astype(np.float32)
        ours = pf.tensor(a, requires_grad=True)
        loss(pf, ours).backward()
        theirs = torch.tensor(a, requires_grad=True)
        loss(torch, theirs).backward()
        scale = np.abs(theirs.grad.numpy()).max()
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=2e-3,
                                   atol=2e-3 * scale, err_msg=name)


def test_repeated_eigen_and_singular_values_give_finite_gradients(rng, torch):
    # a loss of the eigenvalues alone, taken through eigh: the eigenvectors' zero gradient
    # must not meet 1 / (w_i - w_j) = 1 / 0 (torch returns NaN here)
    a = pf.tensor(np.diag([1.0, 1.0, 2.0]), requires_grad=True)
    pf.linalg.eigh(a).eigenvalues.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), np.eye(3), atol=1e-12)
    b = pf.tensor(np.eye(4)[:, :3] * 2, requires_grad=True)
    pf.linalg.svd(b, full_matrices=False).S.sum().backward()
    np.testing.assert_allclose(b.grad.numpy(), np.eye(4)[:, :3], atol=1e-12)


# ---------------------------------------------------------------------------------------------
# compiled graphs run the same ops

COMPILED = [
    ("inv", pf.linalg.inv, general, (4, 4)),
    ("slogdet", lambda a: tuple(pf.linalg.slogdet(a)), general, (4, 4)),
    ("solve", lambda a: pf.linalg.solve(a, a[..., 0] + 1.0), general, (4, 4)),
    ("cholesky", lambda a: pf.linalg.cholesky(a, upper=True), spd, (4, 4)),
    ("qr", lambda a: tuple(pf.linalg.qr(a)), general, (5, 3)),
    ("eigh", lambda a: tuple(pf.linalg.eigh(a)), symmetric, (4, 4)),
    ("svd", lambda a: tuple(pf.linalg.svd(a)), general, (3, 5)),
    ("pinv", lambda a: pf.linalg.pinv(a) * 2.0, general, (5, 3)),
    ("matrix_exp", pf.linalg.matrix_exp, general, (3, 3)),
    ("rank and norms", lambda a: (pf.linalg.matrix_rank(a), pf.linalg.matrix_norm(a, 2),
                                  pf.linalg.cond(a, 1), pf.linalg.vector_norm(a, -1, -1)),
     general, (3, 3)),
    ("lstsq", lambda a: tuple(pf.linalg.lstsq(a, a[..., :2], driver="gelsd")), general, (4, 4)),
]


@pytest.mark.parametrize("case", COMPILED, ids=[c[0] for c in COMPILED])
def test_eager_equals_compiled(case, rng):
    name, fn, make, shape = case
    compiled = pf.jit(fn)
    for batch in BATCHES:
        a = pf.tensor(make(rng, batch + shape))
        eager = fn(a)
        eager = eager if isinstance(eager, tuple) else (eager,)
        for _ in range(2):       # the plan's first run and a later one
            got = compiled(a)
            got = got if isinstance(got, tuple) else (got,)
            for e, g in zip(eager, got):
                np.testing.assert_allclose(g.numpy(), e.numpy(), rtol=1e-12, atol=1e-12,
                                           err_msg=name)


def test_compiled_gradients_equal_eager(rng):
    def loss(a):
        return pf.linalg.slogdet(a).logabsdet.sum() + (pf.linalg.inv(a) ** 2).sum() + \
            pf.linalg.svdvals(a).sum()

    a = general(rng, (2, 4, 4))
    eager = pf.tensor(a, requires_grad=True)
    loss(eager).backward()
    compiled = pf.tensor(a, requires_grad=True)
    pf.jit(loss)(compiled).backward()
    np.testing.assert_allclose(compiled.grad.numpy(), eager.grad.numpy(), rtol=1e-10,
                               atol=1e-10)


# ---------------------------------------------------------------------------------------------
# errors name the op and the shapes

def test_singular_matrices_are_linalg_errors_naming_the_op():
    singular = np.ones((2, 3, 3))
    singular[0] = np.eye(3)
    with pytest.raises(pf.LinAlgError, match=r"linalg\.inv: the input \(2, 3, 3\) is singular "
                                             r"at batch element \(1,\)"):
        pf.linalg.inv(singular)
    with pytest.raises(pf.LinAlgError, match=r"linalg\.solve: .*\(2, 3, 3\) is singular"):
        pf.linalg.solve(singular, np.ones((3, 1)))
    with pytest.raises(pf.LinAlgError, match=r"linalg\.cholesky: the input \(3, 3\) is not "
                                             r"positive-definite \(the leading minor of order "
                                             r"2 is not positive-definite\)"):
        pf.linalg.cholesky(np.diag([1.0, -1.0, 1.0]))
    assert issubclass(pf.LinAlgError, RuntimeError) and pf.linalg.LinAlgError is pf.LinAlgError
    # a compiled plan raises the same error, naming its node
    with pytest.raises(pf.LinAlgError, match="is singular"):
        pf.jit(lambda a: pf.linalg.inv(a) + 1.0)(pf.tensor(singular))
    # and the next failure of a native kernel is its own again
    with pytest.raises(pf.ShapeError, match="matmul"):
        pf.matmul(np.ones((2, 3)), np.ones((2, 3)))
    # det and slogdet take singular matrices; cond says inf
    assert pf.linalg.det(singular).numpy()[1] == 0
    assert pf.linalg.slogdet(singular).logabsdet.numpy()[1] == -np.inf
    assert pf.linalg.cond(singular, 1).numpy()[1] == np.inf


def test_shapes_and_dtypes_are_checked_before_running():
    with pytest.raises(pf.ShapeError, match=r"linalg\.inv: A must be square matrices "
                                            r"\(\.\.\., n, n\), got \(3, 4\)"):
        pf.linalg.inv(np.ones((3, 4)))
    for fn in (pf.linalg.det, pf.linalg.cholesky, pf.linalg.eigh, pf.matrix_exp):
        with pytest.raises(pf.ShapeError, match=r"must be square.*\(2, 3\)"):
            fn(np.ones((2, 3)))
    for fn in (pf.linalg.inv, pf.linalg.svd, pf.linalg.qr, pf.linalg.pinv):
        with pytest.raises(pf.ShapeError, match=r"matri.*got \(3,\)"):
            fn(np.ones(3))
    with pytest.raises(pf.ShapeError, match=r"linalg\.solve: B must have as many rows as A"):
        pf.linalg.solve(np.eye(3), np.ones((4, 2)))
    with pytest.raises(pf.ShapeError, match="cannot be broadcast"):
        pf.linalg.solve(np.ones((2, 3, 3)), np.ones((3, 3, 1)))
    with pytest.raises(pf.DTypeError, match="float32 or float64, got int64"):
        pf.linalg.inv(pf.tensor([[1, 2], [3, 4]]))
    with pytest.raises(pf.ShapeError, match="mode must be"):
        pf.linalg.qr(np.eye(2), mode="full")
    with pytest.raises(pf.ShapeError, match="UPLO"):
        pf.linalg.eigh(np.eye(2), UPLO="X")
    with pytest.raises(TypeError, match="n must be an int"):
        pf.linalg.matrix_power(np.eye(2), 1.5)
    with pytest.raises(pf.PyfrontError, match="mode='complete'"):
        a = pf.tensor(np.ones((3, 2)) + np.eye(3, 2), requires_grad=True)
        pf.linalg.qr(a, mode="complete").Q.sum().backward()
    # a layer's name goes into the message
    with pytest.raises(pf.ShapeError, match="in layer 'cov'"):
        with pf.name_scope("cov"):
            pf.linalg.cholesky(np.ones((2, 3)))


def test_tensors_in_gpu_memory_are_refused():
    if not pf.cuda.is_available():
        pytest.skip("no usable GPU here (%s): the CUDA refusal is not reachable"
                    % pf.cuda.why_not())
    a = pf.tensor(np.eye(3)).to("cuda")
    with pytest.raises(pf.DeviceError, match=r"linalg\.inv: runs on the host .* cuda"):
        pf.linalg.inv(a)


# ---------------------------------------------------------------------------------------------
# a model: a Gaussian's covariance learned through its Cholesky factor and logdet

class GaussianNLL(pf.nn.Module):
    """Mean negative log-likelihood (up to a constant) of rows of x under N(0, S), S = L L^T
    + eps I with L a learned lower triangle."""

    def __init__(self, n):
        super().__init__()
        self.factor = pf.nn.Parameter(np.eye(n), dtype="float64")

    def forward(self, x):
        lower = pf.tril(self.factor)
        cov = lower @ lower.mT + pf.tensor(1e-3 * np.eye(lower.shape[0]))
        precision_x = pf.linalg.solve(cov, x.mT)           # S^-1 x, one column per sample
        mahalanobis = (x.mT * precision_x).sum(0).mean()
        return 0.5 * (pf.logdet(cov) + mahalanobis)


def test_a_model_learns_a_covariance_through_logdet(rng):
    true_factor = np.array([[1.5, 0.0, 0.0], [0.8, 0.5, 0.0], [-0.3, 0.4, 0.9]])
    x = pf.tensor(rng.standard_normal((512, 3)) @ true_factor.T)
    for model in (GaussianNLL(3), GaussianNLL(3).hybridize()):
        module = model if isinstance(model, GaussianNLL) else model.module
        opt = pf.optim.Adam(module.parameters(), lr=0.05)
        losses = []
        for _ in range(150):
            loss = model(x)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.item()))
        assert losses[-1] < losses[0] - 0.5
        lower = np.tril(module.factor.numpy())
        empirical = np.cov(x.numpy().T, bias=True)
        np.testing.assert_allclose(lower @ lower.T + 1e-3 * np.eye(3), empirical, atol=0.05)
