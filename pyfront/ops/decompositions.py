"""Dense linear algebra beyond products, torch.linalg's: inverses, determinants, solves, the
Cholesky, QR, symmetric eigen- and singular value decompositions, the pseudo-inverse and the
matrix exponential, each one op computed on the host by numpy.linalg (LAPACK) through the host
kernel, its gradient written with ops; and what composes from them (norms, rank, least
squares, powers, condition numbers). pyfront.linalg is the torch.linalg namespace over these;
this module's __all__ holds torch's top-level names (pf.inverse, pf.det, pf.svd, ...).

Inputs are (..., m, n) float32 or float64 matrices, batched over the leading dims (broadcast
where torch broadcasts them: solve). The ops run on the CPU only: a tensor in GPU memory is
refused with a DeviceError.
"""
import collections
import functools
import math
import numbers

import numpy as np

from .. import errors
from ..backend import cpu
from . import core
from .core import Op, ShapeMismatch, Spec, apply, as_operand, fmt_shape
from . import elementwise as _elementwise
from . import linalg as _linalg
from . import reduction as _reduction
from . import shape as _shape

__all__ = ["inverse", "det", "logdet", "slogdet", "cholesky", "qr", "svd", "pinverse",
           "matrix_power", "matrix_exp", "cholesky_solve", "triangular_solve"]

SlogdetResult = collections.namedtuple("slogdet", "sign logabsdet")
QRResult = collections.namedtuple("qr", "Q R")
EighResult = collections.namedtuple("eigh", "eigenvalues eigenvectors")
SVDResult = collections.namedtuple("svd", "U S Vh")
TorchSVDResult = collections.namedtuple("svd", "U S V")
LstsqResult = collections.namedtuple("lstsq", "solution residuals rank singular_values")
TriangularSolveResult = collections.namedtuple("triangular_solve",
                                               "solution cloned_coefficient")


# ---------------------------------------------------------------------------------------------
# the ops: forward on the host, gradient with ops

class HostOp(Op):
    """An op computed on the host: its forward is one call of the host kernel, which runs
    compute(inputs, outputs, **attrs) on numpy arrays (in eager calls, their replays and
    compiled plans alike)."""

    def __init__(self):
        self._function_ids = {}     # attributes -> the host function computing with them

    def forward(self, k, ins, outs, attrs):
        key = tuple(sorted(attrs.items()))
        fid = self._function_ids.get(key)
        if fid is None:
            fid = self._function_ids[key] = cpu.host_function(
                functools.partial(self.compute, **attrs))
        k.run(cpu.HOST_KERNEL, [b.desc() for b in ins], [b.desc() for b in outs], (fid,))

    inputs = ("A",)

    def infer(self, specs, attrs):
        """The default rule: a (batch of) square matrices in, the same shape out."""
        _matrices(specs[0], square=True)
        return [specs[0]]

    def compute(self, ins, outs, **attrs):
        raise NotImplementedError


def _matrices(spec, what="A", square=False):
    """spec's (m, n) after checking it is a float (batch of) matrices; ShapeMismatch or
    DTypeError for the shape rule otherwise."""
    if not spec.dtype.is_float:
        raise errors.DTypeError("%s must be float32 or float64, got %s" % (what,
                                                                            spec.dtype.name))
    if len(spec.shape) < 2:
        raise ShapeMismatch("%s must be a matrix or a batch of matrices (..., %s), got %s"
                            % (what, "n, n" if square else "m, n", fmt_shape(spec.shape)))
    m, n = spec.shape[-2:]
    if square and None not in (m, n) and m != n:
        raise ShapeMismatch("%s must be square matrices (..., n, n), got %s"
                            % (what, fmt_shape(spec.shape)))
    return m, n


def _where_failing(a, accepts):
    """' at batch element (i, j)' for the first matrix of the batch a that accepts(matrix)
    refuses with numpy's LinAlgError ('' for a single matrix, or if none does alone)."""
    if a.ndim == 2:
        return ""
    for index in np.ndindex(a.shape[:-2]):
        try:
            accepts(a[index])
        except np.linalg.LinAlgError:
            return " at batch element %s" % (index,)
    return ""


def _singular(a, what="has no inverse"):
    return errors.LinAlgError("the input %s is singular%s: it %s"
                              % (fmt_shape(a.shape), _where_failing(a, np.linalg.inv), what))


class Inv(HostOp):
    """The inverse of each matrix; attr check: a singular one is a LinAlgError (else its
    inverse is all inf, as torch.linalg.inv_ex leaves it to the caller: cond)."""

    name = "linalg.inv"
    retain_inputs = ()
    retain_outputs = (0,)

    def compute(self, ins, outs, check):
        a, = ins
        try:
            outs[0][...] = np.linalg.inv(a)
        except np.linalg.LinAlgError:
            if check:
                raise _singular(a) from None
            for index in np.ndindex(a.shape[:-2]):
                try:
                    outs[0][index] = np.linalg.inv(a[index])
                except np.linalg.LinAlgError:
                    outs[0][index] = np.inf

    def grad(self, ctx, g):
        y = ctx.output()          # d(A^-1) = -A^-1 dA A^-1
        return (-_mm(_mm(y, g, ta=True), y, tb=True),)


class Det(HostOp):
    name = "linalg.det"
    retain_inputs = (0,)
    retain_outputs = (0,)

    def infer(self, specs, attrs):
        _matrices(specs[0], square=True)
        return [Spec(specs[0].shape[:-2], specs[0].dtype)]

    def compute(self, ins, outs):
        outs[0][...] = np.linalg.det(ins[0])

    def grad(self, ctx, g):
        # d det(A) = det(A) tr(A^-1 dA): inv raises at a singular A (see det's docstring)
        scale = _unsqueeze2(g * ctx.output())
        return (scale * _mT(inv(ctx.inputs[0])),)


class Slogdet(HostOp):
    name = "linalg.slogdet"
    n_outputs = 2
    retain_inputs = (0,)
    retain_outputs = ()

    def infer(self, specs, attrs):
        _matrices(specs[0], square=True)
        batch = Spec(specs[0].shape[:-2], specs[0].dtype)
        return [batch, batch]

    def compute(self, ins, outs):
        outs[0][...], outs[1][...] = np.linalg.slogdet(ins[0])

    def grad(self, ctx, g):
        # the sign is piecewise constant: only log|det| carries a gradient, A^-T
        return (_unsqueeze2(g[1]) * _mT(inv(ctx.inputs[0])),)


class Solve(HostOp):
    """X with A X = B for A (..., n, n), B (..., n, k), their batch dims broadcast."""

    name = "linalg.solve"
    inputs = ("A", "B")
    retain_inputs = (0,)
    retain_outputs = staticmethod(lambda attrs, needs: (0,) if needs[0] else ())

    def infer(self, specs, attrs):
        a, b = specs
        n = _matrices(a, "A", square=True)[0]
        rows, k = _matrices(b, "B")
        if a.dtype is not b.dtype:
            raise errors.DTypeError("A and B must have one dtype, got %s and %s"
                                    % (a.dtype.name, b.dtype.name))
        if None not in (n, rows) and n != rows:
            raise ShapeMismatch("B must have as many rows as A: A %s, B %s"
                                % (fmt_shape(a.shape), fmt_shape(b.shape)))
        batch = core.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        return [Spec(tuple(batch) + (n if n is not None else rows, k), a.dtype)]

    def compute(self, ins, outs):
        a, b = ins
        try:
            outs[0][...] = np.linalg.solve(a, b)
        except np.linalg.LinAlgError:
            raise _singular(a, "has no unique solution (B %s)" % fmt_shape(b.shape)) from None

    def grad(self, ctx, g):
        a, b = ctx.inputs
        gb = apply(_solve, [_mT(a), g])            # the adjoint system A^T gB = g
        ga = None
        if ctx.needs[0]:
            ga = _shape.sum_to_like(-_mm(gb, ctx.output(), tb=True), a)
        return ga, (_shape.sum_to_like(gb, b) if ctx.needs[1] else None)


class Cholesky(HostOp):
    """The lower factor L of A = L L^T (A's lower triangle is read)."""

    name = "linalg.cholesky"
    retain_inputs = ()
    retain_outputs = (0,)

    def compute(self, ins, outs):
        a, = ins
        try:
            outs[0][...] = np.linalg.cholesky(a)
        except np.linalg.LinAlgError:
            raise errors.LinAlgError("the input %s is not positive-definite%s%s"
                                     % (fmt_shape(a.shape), _where_failing(a, np.linalg.cholesky),
                                        _failing_minor(a))) from None

    def grad(self, ctx, g):
        # Murray (2016), as torch: gA = L^-T Phi(L^T gL) L^-1, Phi taking the lower triangle
        # and halving the diagonal, made symmetric
        L = ctx.output()
        p = _shape.tril(_mm(L, g, ta=True))
        phi = (p + _mT(_shape.tril(p, -1))) * 0.5
        lt = _mT(L)
        left = apply(_solve, [lt, phi])                      # L^-T Phi
        return (_mT(apply(_solve, [lt, _mT(left)])),)        # (L^-T (L^-T Phi)^T)^T


def _failing_minor(a):
    """' (the leading minor of order k is not positive-definite)' for the first matrix of a
    that has no Cholesky factor."""
    flat = a.reshape((-1,) + a.shape[-2:])
    for m in flat:
        for k in range(1, m.shape[-1] + 1):
            try:
                np.linalg.cholesky(m[:k, :k])
            except np.linalg.LinAlgError:
                return " (the leading minor of order %d is not positive-definite)" % k
    return ""


class QR(HostOp):
    """A = Q R; attr mode "reduced" (Q (..., m, k), R (..., k, n), k = min(m, n)) or
    "complete" (Q (..., m, m), R (..., m, n))."""

    name = "linalg.qr"
    n_outputs = 2
    retain_inputs = (0,)          # (read when m < n)

    def infer(self, specs, attrs):
        a = specs[0]
        m, n = _matrices(a)
        if attrs["mode"] not in ("reduced", "complete"):
            raise ShapeMismatch("mode must be 'reduced', 'complete' or 'r', got %r"
                                % (attrs["mode"],))
        if None in (m, n):
            raise ShapeMismatch("the matrix dims must be known, got %s" % fmt_shape(a.shape))
        k = m if attrs["mode"] == "complete" else min(m, n)
        return [Spec(a.shape[:-2] + (m, k), a.dtype), Spec(a.shape[:-2] + (k, n), a.dtype)]

    def compute(self, ins, outs, mode):
        outs[0][...], outs[1][...] = np.linalg.qr(ins[0], mode=mode)

    def grad(self, ctx, g):
        a = ctx.inputs[0]
        q, r = ctx.output(0), ctx.output(1)
        gq, gr = g
        m, n = a.shape[-2:]
        if m >= n:
            if ctx.attrs["mode"] == "complete" and m > n:
                raise errors.PyfrontError(
                    "linalg.qr: not differentiable with mode='complete' for an input of more "
                    "rows than columns %s (as in PyTorch): use mode='reduced'"
                    % fmt_shape(a.shape))
            return (_qr_grad_square_r(q, r, gq, gr),)
        # m < n: A = [X | Y], R = [U | V] with X = Q U square (Liao et al. 2019, as torch)
        y = _shape.narrow(a, -1, m, n - m)
        gv = _shape.narrow(gr, -1, m, n - m)
        gx = _qr_grad_square_r(q, _shape.narrow(r, -1, 0, m), gq + _mm(y, gv, tb=True),
                               _shape.narrow(gr, -1, 0, m))
        return (_shape.concat([gx, _mm(q, gv)], -1),)


def _qr_grad_square_r(q, r, gq, gr):
    """The gradient of A = Q R where R is square (m >= n): (gQ + Q copyltu(M)) R^-T with
    M = R gR^T - gQ^T Q."""
    mm = _mm(r, gr, tb=True) - _mm(gq, q, ta=True)
    b = gq + _mm(q, _shape.tril(mm) + _mT(_shape.tril(mm, -1)))
    return _mT(apply(_solve, [r, _mT(b)]))


class Eigh(HostOp):
    """Eigenvalues (ascending) and eigenvectors of symmetric matrices; attr UPLO: the
    triangle read."""

    name = "linalg.eigh"
    n_outputs = 2
    retain_inputs = ()

    def infer(self, specs, attrs):
        a = specs[0]
        n = _matrices(a, square=True)[0]
        _check_uplo(attrs["UPLO"])
        return [Spec(a.shape[:-1], a.dtype), Spec(a.shape[:-2] + (n, n), a.dtype)]

    def compute(self, ins, outs, UPLO):      # noqa: N803 (torch's and numpy's name)
        outs[0][...], outs[1][...] = _lapack(np.linalg.eigh, ins[0], "eigh", UPLO=UPLO)

    def grad(self, ctx, g):
        # gA = V (diag(gw) + skew(V^T gV) / E) V^T, E_ij = w_j - w_i (torch's formula)
        w, v = ctx.output(0), ctx.output(1)
        gw, gv = g
        vtgv = _mm(v, gv, ta=True)
        skew = (vtgv - _mT(vtgv)) * 0.5
        e = _shape.expand_dims(w, -2) - _shape.expand_dims(w, -1)
        inner = skew * _reciprocal_or_zero(e) + _diag_embed(gw)
        return (_mm(v, _mm(inner, v, tb=True)),)


class Eigvalsh(HostOp):
    name = "linalg.eigvalsh"
    retain_inputs = (0,)
    retain_outputs = ()

    def infer(self, specs, attrs):
        _matrices(specs[0], square=True)
        _check_uplo(attrs["UPLO"])
        return [Spec(specs[0].shape[:-1], specs[0].dtype)]

    def compute(self, ins, outs, UPLO):      # noqa: N803
        outs[0][...] = _lapack(np.linalg.eigvalsh, ins[0], "eigvalsh", UPLO=UPLO)

    def grad(self, ctx, g):
        # V diag(g) V^T: the eigenvectors, from eigh, carry no 1/(w_i - w_j)
        v = apply(_eigh, [ctx.inputs[0]], {"UPLO": ctx.attrs["UPLO"]})[1]
        return (_mm(v * _shape.expand_dims(g, -2), v, tb=True),)


def _check_uplo(uplo):
    if uplo not in ("L", "U"):
        raise ShapeMismatch("UPLO must be 'L' or 'U', got %r" % (uplo,))


def _lapack(fn, a, what, **kwargs):
    try:
        return fn(a, **kwargs)
    except np.linalg.LinAlgError:
        raise errors.LinAlgError("%s of the input %s did not converge%s"
                                 % (what, fmt_shape(a.shape),
                                    _where_failing(a, functools.partial(fn, **kwargs)))) \
            from None


class SVD(HostOp):
    """A = U diag(S) Vh, S descending; attr full_matrices: U (..., m, m) and Vh (..., n, n)
    instead of k = min(m, n) columns and rows."""

    name = "linalg.svd"
    n_outputs = 3
    retain_inputs = ()

    def infer(self, specs, attrs):
        a = specs[0]
        m, n = _matrices(a)
        if None in (m, n):
            raise ShapeMismatch("the matrix dims must be known, got %s" % fmt_shape(a.shape))
        k = min(m, n)
        full = attrs["full_matrices"]
        return [Spec(a.shape[:-2] + (m, m if full else k), a.dtype),
                Spec(a.shape[:-2] + (k,), a.dtype),
                Spec(a.shape[:-2] + (n if full else k, n), a.dtype)]

    def compute(self, ins, outs, full_matrices):
        outs[0][...], outs[1][...], outs[2][...] = _lapack(np.linalg.svd, ins[0], "svd",
                                                           full_matrices=full_matrices)

    def grad(self, ctx, g):
        u, s, vh = ctx.output(0), ctx.output(1), ctx.output(2)
        gu, gs, gvh = g
        m, n = u.shape[-2], vh.shape[-1]
        k = min(m, n)
        if ctx.attrs["full_matrices"]:       # only the first k singular vectors are defined
            u, gu = _shape.narrow(u, -1, 0, k), _shape.narrow(gu, -1, 0, k)
            vh, gvh = _shape.narrow(vh, -2, 0, k), _shape.narrow(gvh, -2, 0, k)
        return (_svd_grad(u, s, vh, gu, gs, gvh),)


def _svd_grad(u, s, vh, gu, gs, gvh):
    """torch's svd_backward for real A (m, n) = U (m, k) diag(S) Vh (k, n); the terms that
    divide by a zero singular value or a zero difference of two are dropped (see svd)."""
    m, n = u.shape[-2], vh.shape[-1]
    utgu = _mm(u, gu, ta=True)
    vtgv = _mm(vh, gvh, tb=True)
    s_row, s_col = _shape.expand_dims(s, -2), _shape.expand_dims(s, -1)
    s2 = s * s
    e = _shape.expand_dims(s2, -2) - _shape.expand_dims(s2, -1)       # s_j^2 - s_i^2
    inner = ((utgu - _mT(utgu)) * s_row + s_col * (vtgv - _mT(vtgv))) * _reciprocal_or_zero(e)
    inner = inner + _diag_embed(gs)
    if m > n:
        ga = _mm(u, inner)
        gu_s = gu * _reciprocal_or_zero(s_row)
        ga = _mm(ga + gu_s - _mm(u, _mm(u, gu_s, ta=True)), vh)
    elif m < n:
        ga = _mm(inner, vh)
        s_gvh = gvh * _reciprocal_or_zero(s_col)
        ga = _mm(u, ga + s_gvh - _mm(_mm(s_gvh, vh, tb=True), vh))
    else:
        ga = _mm(u, _mm(inner, vh))
    return ga


class Svdvals(HostOp):
    name = "linalg.svdvals"
    retain_inputs = (0,)
    retain_outputs = ()

    def infer(self, specs, attrs):
        a = specs[0]
        m, n = _matrices(a)
        if None in (m, n):
            raise ShapeMismatch("the matrix dims must be known, got %s" % fmt_shape(a.shape))
        return [Spec(a.shape[:-2] + (min(m, n),), a.dtype)]

    def compute(self, ins, outs):
        outs[0][...] = _lapack(np.linalg.svd, ins[0], "svd", compute_uv=False)

    def grad(self, ctx, g):
        # U diag(g) Vh: the singular vectors, from svd, carry no 1/(s_i^2 - s_j^2)
        u, _, vh = apply(_svd, [ctx.inputs[0]], {"full_matrices": False})
        return (_mm(u * _shape.expand_dims(g, -2), vh),)


class Pinv(HostOp):
    """The Moore-Penrose inverse (..., n, m): singular values (absolute eigenvalues with
    hermitian) at most max(atol, rtol * the largest) count as zero."""

    name = "linalg.pinv"

    def infer(self, specs, attrs):
        a = specs[0]
        m, n = _matrices(a, square=attrs["hermitian"])
        return [Spec(a.shape[:-2] + (n, m), a.dtype)]

    def compute(self, ins, outs, rtol, atol, hermitian):
        a = ins[0]
        if 0 in a.shape[-2:]:
            outs[0][...] = 0
            return
        if hermitian:
            w, v = _lapack(np.linalg.eigh, a, "eigh")
            s, left, right = np.abs(w), v, np.swapaxes(v, -1, -2)
            values = w
        else:
            left, s, right = _lapack(np.linalg.svd, a, "svd", full_matrices=False)
            values = s
        cutoff = np.maximum(atol, rtol * s.max(-1, keepdims=True))
        inverse = np.where(s > cutoff, 1 / np.where(s > cutoff, values, 1), 0)
        outs[0][...] = np.swapaxes(right, -1, -2) @ (inverse[..., None] *
                                                      np.swapaxes(left, -1, -2))

    def grad(self, ctx, g):
        # torch's pinv_backward (Golub and Pereyra 1973): valid where the rank stays constant
        a, p = ctx.inputs[0], ctx.output()
        m, n = a.shape[-2:]
        pt, gt = _mT(p), _mT(g)
        if m <= n:
            k = _mm(gt, p)
            kpt = _mm(k, pt)
            return (-_mT(_mm(p, k)) + kpt - _mm(_mm(a, p), kpt) +
                    _mm(_mm(pt, p), gt - _mm(k, a)),)
        k = _mm(p, gt)
        ptk = _mm(pt, k)
        return (-_mT(_mm(k, p)) + _mm(_mm(gt - _mm(a, k), p), pt) + ptk -
                _mm(_mm(ptk, p), a),)


class MatrixExp(HostOp):
    name = "linalg.matrix_exp"
    retain_inputs = (0,)
    retain_outputs = ()

    def compute(self, ins, outs):
        outs[0][...] = _expm(ins[0])

    def grad(self, ctx, g):
        # the adjoint of exp's Frechet derivative, read off exp([[A^T, g], [0, A^T]]) (Najfeld
        # and Havel 1995; torch's way): the op again, so higher orders follow
        at = _mT(ctx.inputs[0])
        n = at.shape[-1]
        zeros = _shape.expand_like(core.constant_like(np.zeros((), at.dtype.np), at), at)
        big = _shape.concat([_shape.concat([at, g], -1), _shape.concat([zeros, at], -1)], -2)
        return (_shape.narrow(_shape.narrow(matrix_exp(big), -2, 0, n), -1, n, n),)


# [13/13] Pade coefficients and the 1-norm up to which they need no scaling (Higham 2005)
_PADE13 = (64764752532480000.0, 32382376266240000.0, 7771770303897600.0, 1187353796428800.0,
           129060195264000.0, 10559470521600.0, 670442572800.0, 33522128640.0, 1323241920.0,
           40840800.0, 960960.0, 16380.0, 182.0, 1.0)
_THETA13 = 5.371920351148152


def _expm(a):
    """exp of each matrix of a (..., n, n), computed in float64: scaling and squaring with the
    [13/13] Pade approximant, each matrix scaled by its own power of two (Higham 2005)."""
    shape = a.shape
    n = shape[-1]
    a = a.astype(np.float64).reshape((-1, n, n))
    norm = np.abs(a).sum(-2).max(-1, initial=0.0)
    finite = np.isfinite(norm)
    a = np.where(finite[:, None, None], a, 0.0)
    ratio = np.where(finite, norm, 0.0) / _THETA13
    squarings = np.where(ratio > 1, np.ceil(np.log2(np.maximum(ratio, 1))), 0).astype(np.int64)
    a = a / np.exp2(squarings)[:, None, None]
    b, eye = _PADE13, np.eye(n)
    a2 = a @ a
    a4 = a2 @ a2
    a6 = a4 @ a2
    u = a @ (a6 @ (b[13] * a6 + b[11] * a4 + b[9] * a2) + b[7] * a6 + b[5] * a4 + b[3] * a2 +
             b[1] * eye)
    v = a6 @ (b[12] * a6 + b[10] * a4 + b[8] * a2) + b[6] * a6 + b[4] * a4 + b[2] * a2 + \
        b[0] * eye
    r = np.linalg.solve(v - u, v + u)
    for i in range(int(squarings.max(initial=0))):
        more = squarings > i
        r[more] = r[more] @ r[more]
    r[~finite] = np.nan
    return r.reshape(shape)


_inv = core.register(Inv)
_det = core.register(Det)
_slogdet = core.register(Slogdet)
_solve = core.register(Solve)
_cholesky = core.register(Cholesky)
_qr = core.register(QR)
_eigh = core.register(Eigh)
_eigvalsh = core.register(Eigvalsh)
_svd = core.register(SVD)
_svdvals = core.register(Svdvals)
_pinv = core.register(Pinv)
_matrix_exp = core.register(MatrixExp)


# ---------------------------------------------------------------------------------------------
# helpers of the gradients and compositions

def _mm(a, b, ta=False, tb=False):
    return _linalg.matmul(a, b, transpose_a=ta, transpose_b=tb)


def _mT(x):      # noqa: N802 (torch's mT)
    return _shape.swapaxes(x, -1, -2)


def _unsqueeze2(x):
    return _shape.expand_dims(_shape.expand_dims(x, -1), -1)


def _eye(n, like):
    return core.constant_like(np.eye(n, dtype=like.dtype.np), like)


def _diag_embed(v):
    """Diagonal matrices of v's last dim (one product with the identity)."""
    return _shape.expand_dims(v, -1) * _eye(v.shape[-1], v)


def _reciprocal_or_zero(x):
    """1 / x, and 0 where x is 0: the division of a term that vanishes with its divisor (and
    a finite gradient through the where, where x is 0)."""
    zero = _elementwise.equal(x, 0.0)
    return _elementwise.where(zero, 0.0, 1.0 / _elementwise.where(zero, 1.0, x))


def _host(op, name, inputs, attrs=None):
    """Apply a host op: its inputs must be on the CPU."""
    inputs = [as_operand(x) for x in inputs]
    for i, x in enumerate(inputs):
        if not x.symbolic and x.device != "cpu":
            raise errors.DeviceError(
                "%s: runs on the host (numpy's LAPACK), and %s is on %s: move it with .cpu() "
                "(and the result back with .to(%r))"
                % (core.located(name), op.inputs[i], x.device, x.device))
    return apply(op, inputs, attrs or {})


def _square_dims(name, a):
    """A as an operand, after checking it is a (batch of) square matrices (for compositions,
    before any op of theirs runs)."""
    a = as_operand(a)
    if len(a.shape) < 2 or (None not in a.shape[-2:] and a.shape[-1] != a.shape[-2]):
        raise errors.ShapeError("%s: A must be square matrices (..., n, n), got %s"
                                % (core.located(name), fmt_shape(a.shape)))
    return a


# ---------------------------------------------------------------------------------------------
# torch.linalg's functions (pf.linalg)

def inv(A):      # noqa: N803 (torch's argument names)
    """The inverse of each square matrix of A (..., n, n); a singular one is a LinAlgError
    naming its batch element (torch.linalg.inv)."""
    return _host(_inv, "linalg.inv", [A], {"check": True})


def det(A):      # noqa: N803
    """The determinant of each square matrix (torch.linalg.det). Its gradient,
    det(A) A^-T, is refused (LinAlgError) at an exactly singular A, where torch takes
    another formula."""
    return _host(_det, "linalg.det", [A])


def slogdet(A):      # noqa: N803
    """(sign, logabsdet) of the determinants, a named tuple (torch.linalg.slogdet): log|det|
    without overflow; sign is 0 (and logabsdet -inf) for a singular matrix."""
    return SlogdetResult(*_host(_slogdet, "linalg.slogdet", [A]))


def logdet(A):      # noqa: N803
    """log det(A) (torch.logdet): NaN where the determinant is negative, -inf where it is 0."""
    sign, logabs = slogdet(A)
    return logabs + _elementwise.log(sign)


def solve(A, B, *, left=True):      # noqa: N803
    """X with A X = B (X A = B with left=False) for square A (..., n, n) and B (..., n, k),
    or B a vector (n,) or a batch of vectors of A's batch shape (..., n) as torch reads it;
    batch dims broadcast (torch.linalg.solve). A singular A is a LinAlgError."""
    A, B = as_operand(A), as_operand(B)      # noqa: N806
    if not left:
        return _mT(solve(_mT(A), _mT(B)))
    vector = len(B.shape) == 1 or (len(B.shape) == len(A.shape) - 1 and
                                   tuple(B.shape) == tuple(A.shape[:-1]))
    if vector:
        return _shape.squeeze(_host(_solve, "linalg.solve", [A, _shape.expand_dims(B, -1)]), -1)
    return _host(_solve, "linalg.solve", [A, B])


def solve_triangular(A, B, *, upper, left=True, unitriangular=False):      # noqa: N803
    """X with A X = B (X A = B with left=False) reading only A's upper or lower triangle
    (and taking its diagonal as ones with unitriangular), torch.linalg.solve_triangular. A
    zero on the diagonal is a LinAlgError (torch returns inf/NaN)."""
    A = _square_dims("linalg.solve_triangular", A)      # noqa: N806
    tri = _shape.triu(A) if upper else _shape.tril(A)
    if unitriangular:
        eye = _eye(A.shape[-1], A)
        tri = tri * (1.0 - eye) + eye
    return solve(tri, B, left=left)


def cholesky(A, upper=False):      # noqa: N803
    """The Cholesky factor of each symmetric positive-definite matrix, reading its lower
    triangle: L with A = L L^T, or U = L^T with upper (torch.linalg.cholesky and
    torch.cholesky). A matrix that is not positive-definite is a LinAlgError naming the
    leading minor, as torch's."""
    lower = _host(_cholesky, "linalg.cholesky", [A])
    return _mT(lower) if upper else lower


def linalg_qr(A, mode="reduced"):      # noqa: N803
    """(Q, R) with A = Q R, a named tuple (torch.linalg.qr): mode "reduced" (k = min(m, n)
    columns of Q), "complete" (Q square) or "r" (Q an empty tensor). Differentiable except
    "complete" with m > n (as torch's; "r" is, where torch refuses)."""
    if mode == "r":
        q, r = _host(_qr, "linalg.qr", [A], {"mode": "reduced"})
        return QRResult(core.constant_like(np.zeros((0,), q.dtype.np), q), r)
    return QRResult(*_host(_qr, "linalg.qr", [A], {"mode": mode}))


def eigh(A, UPLO="L"):      # noqa: N803
    """(eigenvalues, eigenvectors) of symmetric matrices, reading the UPLO triangle, a named
    tuple (torch.linalg.eigh): eigenvalues ascending, eigenvectors in the columns (each up to
    its sign, which may differ from torch's). The eigenvectors' gradient divides by the
    differences of eigenvalues: it is large near repeated ones, and where two are exactly
    equal the term is dropped (right for a loss that does not depend on the basis chosen
    within their eigenspace; torch returns inf/NaN there). eigvalsh is free of that."""
    return EighResult(*_host(_eigh, "linalg.eigh", [A], {"UPLO": UPLO}))


def eigvalsh(A, UPLO="L"):      # noqa: N803
    """The eigenvalues (ascending) of symmetric matrices (torch.linalg.eigvalsh); its
    gradient V diag(g) V^T is defined for repeated eigenvalues too."""
    return _host(_eigvalsh, "linalg.eigvalsh", [A], {"UPLO": UPLO})


def linalg_svd(A, full_matrices=True, *, driver=None):      # noqa: N803
    """(U, S, Vh) with A = U diag(S) Vh, S descending, a named tuple (torch.linalg.svd;
    driver is CUDA-only in torch and ignored). Singular vectors are defined up to sign (and
    may differ from torch's by it). The gradient through U or Vh divides by differences of
    squared singular values and by the singular values: large near repeated or zero ones,
    and those terms dropped where they are exactly repeated or zero (right when the loss
    does not depend on the basis chosen within their subspace; torch returns inf/NaN there);
    with full_matrices only the first min(m, n) vectors take part (as torch). svdvals has no
    such division."""
    return SVDResult(*_host(_svd, "linalg.svd", [A], {"full_matrices": bool(full_matrices)}))


def svdvals(A):      # noqa: N803
    """The singular values, descending (torch.linalg.svdvals); gradient U diag(g) Vh."""
    return _host(_svdvals, "linalg.svdvals", [A])


def _tolerances(name, a, atol, rtol):
    """torch's defaults: rtol = eps * max(m, n) when neither is given, 0 when only a positive
    atol is."""
    for arg, value in (("atol", atol), ("rtol", rtol)):
        if value is not None and (isinstance(value, bool) or
                                  not isinstance(value, numbers.Real)):
            raise TypeError("%s: %s must be a number or None, got %r (tensor tolerances are "
                            "not supported)" % (name, arg, value))
    if rtol is None:
        rtol = 0.0 if atol is not None and atol > 0 else \
            float(np.finfo(a.dtype.np).eps) * max(a.shape[-2:])
    return float(atol or 0.0), float(rtol)


def pinv(A, *, atol=None, rtol=None, hermitian=False):      # noqa: N803
    """The pseudo-inverse (..., n, m) of A (..., m, n) (torch.linalg.pinv): singular values
    at most max(atol, rtol * the largest) are taken as zero (rtol defaults to eps * max(m, n),
    to 0 when only a positive atol is given); hermitian reads A's lower triangle as a
    symmetric matrix (eigh). Tolerances are numbers (torch also takes tensors)."""
    A = as_operand(A)      # noqa: N806
    if len(A.shape) < 2:
        raise errors.ShapeError("%s: A must be matrices (..., m, n), got %s"
                                % (core.located("linalg.pinv"), fmt_shape(A.shape)))
    atol, rtol = _tolerances("linalg.pinv", A, atol, rtol)
    return _host(_pinv, "linalg.pinv", [A], {"rtol": rtol, "atol": atol,
                                             "hermitian": bool(hermitian)})


def matrix_rank(A, *, atol=None, rtol=None, hermitian=False):      # noqa: N803
    """The number of singular values (absolute eigenvalues with hermitian) above
    max(atol, rtol * the largest), int64 (torch.linalg.matrix_rank; tolerances as pinv's)."""
    A = as_operand(A)      # noqa: N806
    if len(A.shape) < 2:
        raise errors.ShapeError("%s: A must be matrices (..., m, n), got %s"
                                % (core.located("linalg.matrix_rank"), fmt_shape(A.shape)))
    atol, rtol = _tolerances("linalg.matrix_rank", A, atol, rtol)
    s = _elementwise.abs(eigvalsh(A)) if hermitian else svdvals(A)
    cutoff = _elementwise.maximum(_reduction.amax(s, -1, keepdims=True) * rtol, atol)
    return _reduction.sum(_shape.cast(_elementwise.greater(s, cutoff), "int64"), -1)


def lstsq(A, B, rcond=None, *, driver=None):      # noqa: N803
    """The least-squares solution X of A X = B for A (..., m, n), B (..., m, k), a named tuple
    (solution, residuals, rank, singular_values) as torch.linalg.lstsq on the CPU: solution
    pinv(A) B, the minimum-norm solution (singular values at most rcond times the largest,
    default eps * max(m, n), taken as zero); rank for drivers other than "gels";
    singular_values for "gelsd" and "gelss"; residuals (the squared column norms of
    A X - B) for those and "gels" when m > n, whatever the rank (torch leaves them empty for
    a rank-deficient A). Empty where torch leaves them empty."""
    A, B = as_operand(A), as_operand(B)      # noqa: N806
    driver = "gelsy" if driver is None else driver
    if driver not in ("gels", "gelsy", "gelsd", "gelss"):
        raise ValueError("linalg.lstsq: driver must be one of 'gels', 'gelsy', 'gelsd', "
                         "'gelss', got %r" % (driver,))
    solution = _linalg.matmul(pinv(A, rtol=rcond), B)
    empty = core.constant_like(np.zeros((0,), A.dtype.np), A)
    m, n = A.shape[-2:]
    residuals = empty
    if driver != "gelsy" and m > n:
        residuals = _reduction.sum(_elementwise.square(_linalg.matmul(A, solution) - B), -2)
    rank = core.constant_like(np.zeros((0,), np.int64), A) if driver == "gels" else \
        matrix_rank(A, rtol=rcond)
    singular_values = svdvals(A) if driver in ("gelsd", "gelss") else empty
    return LstsqResult(solution, residuals, rank, singular_values)


def matrix_power(A, n):      # noqa: N803
    """A multiplied by itself n times (the identity for 0, powers of inv(A) for n < 0), by
    repeated squaring (torch.linalg.matrix_power and torch.matrix_power)."""
    A = _square_dims("linalg.matrix_power", A)      # noqa: N806
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError("linalg.matrix_power: n must be an int, got %r" % (n,))
    n = int(n)
    if n == 0:
        return _shape.expand_like(_eye(A.shape[-1], A), A)
    if n < 0:
        A, n = inv(A), -n      # noqa: N806
    result = None
    while n:
        if n & 1:
            result = A if result is None else _mm(result, A)
        n >>= 1
        if n:
            A = _mm(A, A)      # noqa: N806
    return result


def matrix_exp(A):      # noqa: N803
    """exp of each square matrix (torch.linalg.matrix_exp and torch.matrix_exp): scaling and
    squaring with the [13/13] Pade approximant, computed in float64 (Higham 2005)."""
    return _host(_matrix_exp, "linalg.matrix_exp", [A])


def _last_two(name, x, dim):
    """x with the two dims of `dim` moved last (rows, then columns), and the dims, normalized."""
    if not isinstance(dim, (tuple, list)) or len(dim) != 2:
        raise errors.ShapeError("%s: dim must be a pair of dims, got %r" % (name, dim))
    dims = core.normalize_axes(tuple(dim), len(x.shape), name, "dim")
    return _shape.movedim(x, dims, (-2, -1)), dims


def _keep_dims(y, dims, keepdim):
    if keepdim:
        for d in sorted(dims):
            y = _shape.expand_dims(y, d)
    return y


def matrix_norm(A, ord="fro", dim=(-2, -1), keepdim=False, *, dtype=None):  # noqa: A002,N803
    """The matrix norm of the matrices in the two dims `dim` (torch.linalg.matrix_norm):
    "fro", "nuc" (sum of singular values), 2 / -2 (largest / smallest singular value), 1 / -1
    (largest / smallest column sum of |A|), inf / -inf (row sums)."""
    A = as_operand(A)      # noqa: N806
    if dtype is not None:
        A = _shape.cast(A, dtype)      # noqa: N806
    name = "linalg.matrix_norm"
    if len(A.shape) < 2:
        raise errors.ShapeError("%s: A must be matrices (..., m, n), got %s"
                                % (core.located(name), fmt_shape(A.shape)))
    if ord == "fro":
        dims = core.normalize_axes(tuple(dim), len(A.shape), name, "dim")
        return _reduction.norm(A, "fro", dims, keepdim)
    m, dims = _last_two(name, A, dim)
    if ord == "nuc":
        y = _reduction.sum(svdvals(m), -1)
    elif ord in (2, -2):
        y = (_reduction.amax if ord == 2 else _reduction.amin)(svdvals(m), -1)
    elif ord in (1, -1, math.inf, -math.inf):
        sums = _reduction.sum(_elementwise.abs(m), -2 if ord in (1, -1) else -1)
        y = (_reduction.amax if ord > 0 else _reduction.amin)(sums, -1)
    else:
        raise ValueError("%s: ord must be 'fro', 'nuc', 2, -2, 1, -1, inf or -inf, got %r"
                         % (name, ord))
    return _keep_dims(y, dims, keepdim)


def vector_norm(x, ord=2, dim=None, keepdim=False, *, dtype=None):  # noqa: A002
    """The vector ord-norm over dim (all elements by default), torch.linalg.vector_norm:
    ord any number (0 counts the nonzeros; negative ones too), inf or -inf."""
    x = as_operand(x)
    if dtype is not None:
        x = _shape.cast(x, dtype)
    if isinstance(ord, str) or isinstance(ord, bool):
        raise ValueError("linalg.vector_norm: ord must be a number, got %r" % (ord,))
    if ord >= 0 or ord == -math.inf:
        return _reduction.norm(x, ord, dim, keepdim)
    axes = core.normalize_axes(dim, len(x.shape), "linalg.vector_norm", "dim")
    if not x.dtype.is_float:
        x = _shape.cast(x, "float32")
    powered = _elementwise.pow(_elementwise.abs(x), float(ord))
    return _elementwise.pow(_reduction.sum(powered, axes, keepdim), 1.0 / ord)


def linalg_norm(A, ord=None, dim=None, keepdim=False, *, dtype=None):  # noqa: A002,N803
    """torch.linalg.norm: a vector norm over an int dim, a matrix norm over a pair of dims;
    without dim the 2-norm of all elements when ord is None, else the vector or matrix norm of
    a 1-D or 2-D A."""
    A = as_operand(A)      # noqa: N806
    if isinstance(dim, int) or (isinstance(dim, (tuple, list)) and len(dim) == 1):
        return vector_norm(A, 2 if ord is None else ord, dim, keepdim, dtype=dtype)
    if dim is not None:
        return matrix_norm(A, "fro" if ord is None else ord, dim, keepdim, dtype=dtype)
    if ord is None:
        return vector_norm(A, 2, None, keepdim, dtype=dtype)
    if len(A.shape) == 1:
        return vector_norm(A, ord, None, keepdim, dtype=dtype)
    if len(A.shape) == 2:
        return matrix_norm(A, ord, (-2, -1), keepdim, dtype=dtype)
    raise errors.ShapeError("linalg.norm: with ord and no dim, A must be 1-D or 2-D, got %s"
                            % fmt_shape(A.shape))


def cond(A, p=None):      # noqa: N803
    """The condition number of each matrix in the p-norm (torch.linalg.cond): for None, 2 and
    -2 the ratio of extreme singular values (any m, n); for "fro", "nuc", inf, -inf, 1, -1
    norm(A) * norm(inv(A)) of square A, inf for a singular one."""
    A = as_operand(A)      # noqa: N806
    if p in (None, 2, -2):
        s = svdvals(A)
        k = s.shape[-1]
        first, last = _shape.narrow(s, -1, 0, 1), _shape.narrow(s, -1, k - 1, 1)
        ratio = first / last if p != -2 else last / first
        return _shape.squeeze(ratio, -1)
    A = _square_dims("linalg.cond(p=%r)" % (p,), A)      # noqa: N806
    inverse = _host(_inv, "linalg.cond", [A], {"check": False})
    return matrix_norm(A, p) * matrix_norm(inverse, p)


def linalg_cross(a, b, dim=-1):
    """The cross product of 3-vectors along dim, a and b broadcast (torch.linalg.cross)."""
    a, b = as_operand(a), as_operand(b)
    a, b = _shape.broadcast_tensors(a, b)
    return _linalg.cross(a, b, dim)


def multi_dot(tensors):
    """The product of a chain of matrices, multiplied in the order that costs the fewest
    scalar products (torch.linalg.multi_dot): the first may be a vector (a row) and the last
    a vector (a column), the result losing those dims."""
    ts = [as_operand(t) for t in tensors]
    if len(ts) < 2:
        raise ValueError("linalg.multi_dot: needs at least 2 tensors, got %d" % len(ts))
    first_vector, last_vector = len(ts[0].shape) == 1, len(ts[-1].shape) == 1
    if first_vector:
        ts[0] = _shape.expand_dims(ts[0], 0)
    if last_vector:
        ts[-1] = _shape.expand_dims(ts[-1], -1)
    for i, t in enumerate(ts):
        if len(t.shape) != 2:
            raise errors.ShapeError("linalg.multi_dot: tensor %d must be 2-D (the first and "
                                    "last may be 1-D), got %s" % (i, fmt_shape(t.shape)))
        if i and ts[i - 1].shape[1] != t.shape[0]:
            raise errors.ShapeError("linalg.multi_dot: tensor %d %s does not follow tensor %d "
                                    "%s" % (i, fmt_shape(t.shape), i - 1,
                                            fmt_shape(ts[i - 1].shape)))
    dims = [ts[0].shape[0]] + [t.shape[1] for t in ts]
    split = _chain_order(dims)

    def product(i, j):
        if i == j:
            return ts[i]
        k = split[i][j]
        return _mm(product(i, k), product(k + 1, j))

    result = product(0, len(ts) - 1)
    if first_vector:
        result = _shape.squeeze(result, 0)
    if last_vector:
        result = _shape.squeeze(result, -1)
    return result


def _chain_order(dims):
    """split[i][j]: where the cheapest product of matrices i..j (dims[i] x dims[j + 1]) splits
    (the textbook dynamic programme)."""
    n = len(dims) - 1
    cost = [[0] * n for _ in range(n)]
    split = [[0] * n for _ in range(n)]
    for length in range(1, n):
        for i in range(n - length):
            j = i + length
            cost[i][j] = math.inf
            for k in range(i, j):
                c = cost[i][k] + cost[k + 1][j] + dims[i] * dims[k + 1] * dims[j + 1]
                if c < cost[i][j]:
                    cost[i][j], split[i][j] = c, k
    return split


# ---------------------------------------------------------------------------------------------
# torch's top-level names (pf.*) with their own conventions

inverse = inv


def qr(A, some=True):      # noqa: N803
    """(Q, R) with A = Q R (torch.qr): some=True the reduced factors, else the complete."""
    return linalg_qr(A, "reduced" if some else "complete")


def svd(A, some=True, compute_uv=True):      # noqa: N803
    """(U, S, V) with A = U diag(S) V^T (torch.svd's old convention: V, not linalg.svd's
    Vh = V^T, and some=True for the reduced factors). compute_uv=False gives zero U (m, m)
    and V (n, n), as torch's."""
    A = as_operand(A)      # noqa: N806
    if not compute_uv:
        s = svdvals(A)
        m, n = A.shape[-2:]
        zeros = [core.constant_like(np.zeros(tuple(A.shape[:-2]) + (d, d), A.dtype.np), A)
                 for d in (m, n)]
        return TorchSVDResult(zeros[0], s, zeros[1])
    u, s, vh = linalg_svd(A, full_matrices=not some)
    return TorchSVDResult(u, s, _mT(vh))


def pinverse(A, rcond=1e-15):      # noqa: N803
    """The pseudo-inverse with singular values at most rcond times the largest taken as zero
    (torch.pinverse)."""
    return pinv(A, rtol=rcond)


def cholesky_solve(B, L, upper=False):      # noqa: N803
    """X with A X = B where A = L L^T is given by its Cholesky factor L (U^T U by U with
    upper), reading only that triangle (torch.cholesky_solve)."""
    L = _square_dims("cholesky_solve", L)      # noqa: N806
    if upper:
        u = _shape.triu(L)
        return solve(u, solve(_mT(u), B))
    lower = _shape.tril(L)
    return solve(_mT(lower), solve(lower, B))


def triangular_solve(b, A, upper=True, transpose=False, unitriangular=False):  # noqa: N803
    """(solution, cloned_coefficient) of A X = b (A^T X = b with transpose) reading A's upper
    or lower triangle (torch.triangular_solve, deprecated there for
    linalg.solve_triangular)."""
    A = _square_dims("triangular_solve", A)      # noqa: N806
    coefficient = _shape.clone(A)
    if transpose:
        A, upper = _mT(A), not upper      # noqa: N806
    x = solve_triangular(A, b, upper=upper, unitriangular=unitriangular)
    return TriangularSolveResult(x, coefficient)
