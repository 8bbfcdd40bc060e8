"""Operators and methods shared by Tensor (eager) and Symbol (graph): `x @ w + 1` builds the
same ops in both modes."""
import math

import numpy as np

from ..dtypes import as_dtype
from . import core
from . import decompositions as D
from . import elementwise as E
from . import linalg as L
from . import losses as N
from . import reduction as R
from . import shape as S


def in_place_result(target, out, name):
    """out, the result of in-place op `name` on target, checked to fit it: the same shape,
    and cast to target's dtype (a float result cannot go into an integer target)."""
    from .. import errors

    if tuple(out.shape) != tuple(target.shape):
        raise errors.ShapeError("%s: the result's shape %s differs from %s (an in-place op "
                                "cannot broadcast its target)"
                                % (name, tuple(out.shape), tuple(target.shape)))
    if out.dtype is not target.dtype:
        if out.dtype.is_float and not target.dtype.is_float:
            raise errors.DTypeError("%s: a %s result cannot be written into a %s tensor"
                                    % (name, out.dtype.name, target.dtype.name))
        out = S.cast(out, target.dtype)
    return out


class OpMethods:
    __slots__ = ()
    __array_priority__ = 1000  # numpy defers `ndarray + tensor` to us

    def __add__(self, o): return E.add(self, o)
    def __radd__(self, o): return E.add(o, self)
    def __sub__(self, o): return E.sub(self, o)
    def __rsub__(self, o): return E.sub(o, self)
    def __mul__(self, o): return E.mul(self, o)
    def __rmul__(self, o): return E.mul(o, self)
    def __truediv__(self, o): return E.div(self, o)
    def __rtruediv__(self, o): return E.div(o, self)
    def __pow__(self, o): return E.pow(self, o)
    def __rpow__(self, o): return E.pow(o, self)
    def __floordiv__(self, o): return E.floor_divide(self, o)
    def __rfloordiv__(self, o): return E.floor_divide(o, self)
    def __mod__(self, o): return E.remainder(self, o)
    def __rmod__(self, o): return E.remainder(o, self)
    # & | ^ ~: bitwise on integers, logical on bool (PyTorch's)
    def __and__(self, o): return E.bitwise_and(self, o)
    def __rand__(self, o): return E.bitwise_and(o, self)
    def __or__(self, o): return E.bitwise_or(self, o)
    def __ror__(self, o): return E.bitwise_or(o, self)
    def __xor__(self, o): return E.bitwise_xor(self, o)
    def __rxor__(self, o): return E.bitwise_xor(o, self)
    def __invert__(self): return E.bitwise_not(self)
    # << and >>: integer shifts (PyTorch's arithmetic >> for negatives)
    def __lshift__(self, o): return E.bitwise_left_shift(self, o)
    def __rlshift__(self, o): return E.bitwise_left_shift(o, self)
    def __rshift__(self, o): return E.bitwise_right_shift(self, o)
    def __rrshift__(self, o): return E.bitwise_right_shift(o, self)
    def bitwise_left_shift(self, o): return E.bitwise_left_shift(self, o)
    def bitwise_right_shift(self, o): return E.bitwise_right_shift(self, o)
    # x += y and the like update x in place, as PyTorch's do (add_, ...): a PyTorch-style
    # `w -= lr * w.grad` under no_grad keeps w the same parameter, and an alias sees the change
    def __iadd__(self, o): return self.add_(o)
    def __isub__(self, o): return self.sub_(o)
    def __imul__(self, o): return self.mul_(o)
    def __itruediv__(self, o): return self.div_(o)
    def __ipow__(self, o): return self.pow_(o)
    def __ifloordiv__(self, o):
        return self._in_place(lambda t: E.floor_divide(t, o), "__ifloordiv__")
    def __imod__(self, o): return self._in_place(lambda t: E.remainder(t, o), "__imod__")
    def __ilshift__(self, o):
        return self._in_place(lambda t: E.bitwise_left_shift(t, o), "__ilshift__")
    def __irshift__(self, o):
        return self._in_place(lambda t: E.bitwise_right_shift(t, o), "__irshift__")
    def __matmul__(self, o): return L.matmul(self, o)
    def __rmatmul__(self, o): return L.matmul(o, self)
    def __neg__(self): return E.neg(self)
    def __pos__(self): return self
    def __abs__(self): return E.abs(self)
    def __lt__(self, o): return E.less(self, o)
    def __le__(self, o): return E.less_equal(self, o)
    def __gt__(self, o): return E.greater(self, o)
    def __ge__(self, o): return E.greater_equal(self, o)
    def __eq__(self, o): return E.equal(self, o)
    def __ne__(self, o): return E.not_equal(self, o)
    __hash__ = object.__hash__
    def __getitem__(self, key): return S.getitem(self, key)

    def sum(self, axis=None, keepdims=False, *, dtype=None):
        return R.sum(self, axis, keepdims, dtype=dtype)
    def mean(self, axis=None, keepdims=False, *, dtype=None):
        return R.mean(self, axis, keepdims, dtype=dtype)
    def max(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return R.max(self, dim, keepdim, axis=axis, keepdims=keepdims)
    def min(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        return R.min(self, dim, keepdim, axis=axis, keepdims=keepdims)
    def prod(self, axis=None, keepdims=False, *, dtype=None):
        return R.prod(self, axis, keepdims, dtype=dtype)
    def var(self, axis=None, correction=1, keepdims=False, *, unbiased=None):
        return R.var(self, axis, correction=correction, keepdims=keepdims, unbiased=unbiased)
    def std(self, axis=None, correction=1, keepdims=False, *, unbiased=None):
        return R.std(self, axis, correction=correction, keepdims=keepdims, unbiased=unbiased)
    def logsumexp(self, axis, keepdims=False): return R.logsumexp(self, axis, keepdims)
    def cumsum(self, axis, *, dtype=None): return R.cumsum(self, axis, dtype=dtype)
    def cumprod(self, axis, *, dtype=None): return R.cumprod(self, axis, dtype=dtype)
    def norm(self, p=2, axis=None, keepdims=False): return R.norm(self, p, axis, keepdims)
    def sort(self, axis=-1, descending=False, *, stable=False):
        return R.sort(self, axis, descending)
    def argsort(self, axis=-1, descending=False, *, stable=False):
        return R.argsort(self, axis, descending)
    def topk(self, k, axis=-1, largest=True, sorted=True):  # noqa: A002 (PyTorch's name)
        return R.topk(self, k, axis, largest, sorted)
    def median(self, axis=None, keepdims=False): return R.median(self, axis, keepdims)
    def any(self, axis=None, keepdims=False): return R.any(self, axis, keepdims)
    def all(self, axis=None, keepdims=False): return R.all(self, axis, keepdims)
    def argmax(self, axis=None, keepdims=False): return R.argmax(self, axis, keepdims)
    def argmin(self, axis=None, keepdims=False): return R.argmin(self, axis, keepdims)
    def reshape(self, *shape): return S.reshape(self, *shape)
    def flatten(self, start_dim=1, end_dim=-1): return S.flatten(self, start_dim, end_dim)
    def squeeze(self, axis=None): return S.squeeze(self, axis)
    def expand_dims(self, axis): return S.expand_dims(self, axis)
    unsqueeze = expand_dims
    def permute(self, *perm, dims=None): return S.permute(self, *perm, dims=dims)
    def transpose(self, axis0=-2, axis1=-1): return S.transpose(self, axis0, axis1)
    @property
    def T(self): return S.permute(self, tuple(reversed(range(len(self.shape)))))
    def astype(self, dtype): return S.cast(self, dtype)
    def clone(self): return S.clone(self)
    def take(self, indices, axis=None): return S.take(self, indices, axis)
    # shape and indexing (issue 10): PyTorch's method names and meanings
    def flip(self, axis=None): return S.flip(self, axis)
    def roll(self, shifts, axis=None): return S.roll(self, shifts, axis)
    def repeat(self, *sizes): return S.repeat(self, *sizes)
    def tile(self, reps): return S.tile(self, reps)
    def repeat_interleave(self, repeats, axis=None):
        return S.repeat_interleave(self, repeats, axis)
    def gather(self, axis, indices): return S.gather(self, axis, indices)
    def scatter(self, axis, indices, src=None, value=None, *, reduce=None):
        return S.scatter(self, axis, indices, src, value, reduce=reduce)
    def scatter_add(self, axis, indices, src): return S.scatter_add(self, axis, indices, src)
    def index_select(self, axis, indices): return S.index_select(self, axis, indices)
    def masked_fill(self, mask, value): return S.masked_fill(self, mask, value)
    def tril(self, k=0): return S.tril(self, k)
    def triu(self, k=0): return S.triu(self, k)
    def diagonal(self, offset=0, axis0=0, axis1=1): return S.diagonal(self, offset, axis0, axis1)
    def split(self, sizes, axis=0): return S.split(self, sizes, axis)
    def chunk(self, chunks, axis=0): return S.chunk(self, chunks, axis)
    def unbind(self, axis=0): return S.unbind(self, axis)
    def expand(self, *shape):
        """PyTorch's expand: broadcast to shape, where -1 keeps that dim's size."""
        shape = tuple(shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list))
                      else shape)
        lead = len(shape) - len(self.shape)
        shape = tuple(self.shape[d - lead] if n == -1 and d >= lead else n
                      for d, n in enumerate(shape))
        return S.broadcast_to(self, shape)
    def view(self, *shape): return S.reshape(self, *shape)
    def matmul(self, o): return L.matmul(self, o)
    def exp(self): return E.exp(self)
    def log(self): return E.log(self)
    def sqrt(self): return E.sqrt(self)
    def abs(self): return E.abs(self)
    def tanh(self): return E.tanh(self)
    def sigmoid(self): return E.sigmoid(self)
    def relu(self): return E.relu(self)
    def clip(self, lo=None, hi=None, *, min=None, max=None):  # noqa: A002 (PyTorch's names)
        return E.clip(self, lo, hi, min=min, max=max)
    def clamp(self, min=None, max=None): return E.clip(self, min, max)  # noqa: A002
    # PyTorch's new_* factories: a new tensor of self's dtype (unless given) on self's device
    def _new_filled(self, size, value, dtype, requires_grad):
        size = size[0] if len(size) == 1 and isinstance(size[0], (tuple, list)) else size
        dtype = self.dtype if dtype is None else as_dtype(dtype)
        out = core.constant_like(np.full(tuple(int(n) for n in size), value, dtype.np), self)
        if requires_grad:
            out.requires_grad = True
        return out
    def new_zeros(self, *size, dtype=None, requires_grad=False):
        return self._new_filled(size, 0, dtype, requires_grad)
    def new_ones(self, *size, dtype=None, requires_grad=False):
        return self._new_filled(size, 1, dtype, requires_grad)
    def new_empty(self, *size, dtype=None, requires_grad=False):   # (zeros: nothing stale)
        return self._new_filled(size, 0, dtype, requires_grad)
    def new_full(self, size, fill_value, *, dtype=None, requires_grad=False):
        return self._new_filled((size,), fill_value, dtype, requires_grad)
    def new_tensor(self, data, dtype=None, requires_grad=False):
        dtype = self.dtype if dtype is None else as_dtype(dtype)
        out = core.constant_like(np.array(getattr(data, "numpy", lambda: data)(), dtype.np),
                                 self)
        if requires_grad:
            out.requires_grad = True
        return out
    def clamp_min(self, min): return E.clip(self, min, None)  # noqa: A002
    def clamp_max(self, max): return E.clip(self, None, max)  # noqa: A002
    def absolute(self): return E.abs(self)
    def ravel(self): return S.reshape(self, (-1,))
    def take_along_dim(self, indices, dim=None): return S.take_along_dim(self, indices, dim)
    def remainder(self, o): return E.remainder(self, o)
    def fmod(self, o): return E.fmod(self, o)
    def floor_divide(self, o): return E.floor_divide(self, o)
    def trunc(self): return E.trunc(self)
    def isnan(self): return E.isnan(self)
    def isinf(self): return E.isinf(self)
    def isfinite(self): return E.isfinite(self)
    def logical_not(self): return E.logical_not(self)
    def bool(self): return S.cast(self, "bool")
    def softmax(self, axis=-1): return N.softmax(self, axis)
    def log_softmax(self, axis=-1): return N.log_softmax(self, axis)

    # ---- in-place updates, as PyTorch's: each class's _in_place(fn, name) makes self hold
    # fn(self) (Tensor: written into its memory, or rebound on the tape; Symbol: rebound to
    # the new node)
    def add_(self, o, alpha=1):
        return self._in_place(lambda t: E.add(t, o if alpha == 1 else o * alpha), "add_")

    def sub_(self, o, alpha=1):
        return self._in_place(lambda t: E.sub(t, o if alpha == 1 else o * alpha), "sub_")

    def mul_(self, o): return self._in_place(lambda t: E.mul(t, o), "mul_")
    def div_(self, o): return self._in_place(lambda t: E.div(t, o), "div_")
    def pow_(self, o): return self._in_place(lambda t: E.pow(t, o), "pow_")
    def neg_(self): return self._in_place(E.neg, "neg_")

    def clamp_(self, min=None, max=None):  # noqa: A002 (PyTorch's names)
        return self._in_place(lambda t: E.clip(t, min, max), "clamp_")

    clip_ = clamp_

    def masked_fill_(self, mask, value):
        return self._in_place(lambda t: S.masked_fill(t, mask, value), "masked_fill_")

    # ---- more of PyTorch's Tensor methods (the same functions as pf.*) ----
    def float(self): return S.cast(self, "float32")
    def double(self): return S.cast(self, "float64")
    def long(self): return S.cast(self, "int64")
    def int(self): return S.cast(self, "int32")

    def type(self, dtype=None):
        """The dtype's name without an argument; else the values cast to dtype."""
        return self.dtype.name if dtype is None else S.cast(self, dtype)

    def type_as(self, other): return S.cast(self, other.dtype)
    def numel(self): return math.prod(self.shape)
    def dim(self): return len(self.shape)
    def contiguous(self): return self       # pyfront's tensors are always contiguous
    def view_as(self, other): return S.reshape(self, tuple(other.shape))
    def reshape_as(self, other): return S.reshape(self, tuple(other.shape))
    def expand_as(self, other): return S.broadcast_to(self, tuple(other.shape))
    def t(self): return S.t(self)
    @property
    def mT(self): return S.transpose(self, -2, -1)
    def pow(self, o): return E.pow(self, o)
    def eq(self, o): return E.equal(self, o)
    def ne(self, o): return E.not_equal(self, o)
    def lt(self, o): return E.less(self, o)
    def le(self, o): return E.less_equal(self, o)
    def gt(self, o): return E.greater(self, o)
    def ge(self, o): return E.greater_equal(self, o)
    def where(self, cond, other): return E.where(cond, self, other)
    def add(self, o, alpha=1): return E.add(self, o if alpha == 1 else o * alpha)
    def sub(self, o, alpha=1): return E.sub(self, o if alpha == 1 else o * alpha)
    def mul(self, o): return E.mul(self, o)
    def div(self, o, *, rounding_mode=None): return E.div(self, o, rounding_mode=rounding_mode)
    def maximum(self, o): return E.maximum(self, o)
    def minimum(self, o): return E.minimum(self, o)
    def logical_and(self, o): return E.logical_and(self, o)
    def logical_or(self, o): return E.logical_or(self, o)
    def logical_xor(self, o): return E.logical_xor(self, o)
    def addcmul(self, t1, t2, value=1.0): return E.addcmul(self, t1, t2, value)
    def addcdiv(self, t1, t2, value=1.0): return E.addcdiv(self, t1, t2, value)
    def lerp(self, end, weight): return E.lerp(self, end, weight)
    def nan_to_num(self, nan=0.0, posinf=None, neginf=None):
        return E.nan_to_num(self, nan, posinf, neginf)
    def isclose(self, o, rtol=1e-5, atol=1e-8, equal_nan=False):
        return E.isclose(self, o, rtol, atol, equal_nan)
    def allclose(self, o, rtol=1e-5, atol=1e-8, equal_nan=False):
        return E.allclose(self, o, rtol, atol, equal_nan)

    def equal(self, o):
        """Whether o has this shape and these values, as a Python bool (PyTorch's equal)."""
        return tuple(self.shape) == tuple(o.shape) and bool(R.all(E.equal(self, o)).item())

    def mm(self, o): return L.mm(self, o)
    def bmm(self, o): return L.bmm(self, o)
    def mv(self, o): return L.mv(self, o)
    def dot(self, o): return L.dot(self, o)
    def outer(self, o): return L.outer(self, o)
    def amax(self, axis=None, keepdims=False): return R.amax(self, axis, keepdims)
    def amin(self, axis=None, keepdims=False): return R.amin(self, axis, keepdims)
    def nansum(self, axis=None, keepdims=False): return R.nansum(self, axis, keepdims)
    def nanmean(self, axis=None, keepdims=False): return R.nanmean(self, axis, keepdims)
    def count_nonzero(self, axis=None): return R.count_nonzero(self, axis)
    def kthvalue(self, k, axis=-1, keepdims=False): return R.kthvalue(self, k, axis, keepdims)
    def diff(self, n=1, axis=-1, prepend=None, append=None):
        return R.diff(self, n, axis, prepend, append)
    def trace(self): return R.trace(self)
    def diag(self, k=0): return S.diag(self, k)
    def movedim(self, source, destination): return S.movedim(self, source, destination)
    moveaxis = movedim
    def swapaxes(self, axis0, axis1): return S.swapaxes(self, axis0, axis1)
    swapdims = swapaxes
    def narrow(self, axis, start, length): return S.narrow(self, axis, start, length)
    def select(self, axis, index): return S.select(self, axis, index)
    def unflatten(self, axis, sizes): return S.unflatten(self, axis, sizes)
    def masked_select(self, mask): return S.masked_select(self, mask)
    def index_add(self, axis, indices, source, alpha=1):
        return S.index_add(self, axis, indices, source, alpha)
    def index_fill(self, axis, indices, value): return S.index_fill(self, axis, indices, value)
    def nonzero(self, as_tuple=False): return S.nonzero(self, as_tuple)
    def argwhere(self): return S.argwhere(self)
    def neg(self): return E.neg(self)
    negative = neg
    def square(self): return E.square(self)
    def reciprocal(self): return E.reciprocal(self)
    def rsqrt(self): return E.rsqrt(self)
    def sign(self): return E.sign(self)
    def floor(self): return E.floor(self)
    def ceil(self): return E.ceil(self)
    def round(self, decimals=0): return E.round(self, decimals)
    def frac(self): return E.frac(self)
    def sin(self): return E.sin(self)
    def cos(self): return E.cos(self)
    def tan(self): return E.tan(self)
    def asin(self): return E.asin(self)
    def acos(self): return E.acos(self)
    def atan(self): return E.atan(self)
    def sinh(self): return E.sinh(self)
    def cosh(self): return E.cosh(self)
    def asinh(self): return E.asinh(self)
    def acosh(self): return E.acosh(self)
    def atanh(self): return E.atanh(self)
    def log2(self): return E.log2(self)
    def log10(self): return E.log10(self)
    def log1p(self): return E.log1p(self)
    def expm1(self): return E.expm1(self)
    def exp2(self): return E.exp2(self)
    def erf(self): return E.erf(self)
    def logit(self, eps=None): return E.logit(self, eps)
    def atan2(self, o): return E.atan2(self, o)
    def hypot(self, o): return E.hypot(self, o)
    def logaddexp(self, o): return E.logaddexp(self, o)
    def xlogy(self, o): return E.xlogy(self, o)

    # ---- more of PyTorch's Tensor methods (2): scans, order statistics, sets, scatters ----
    def cummax(self, axis): return R.cummax(self, axis)
    def cummin(self, axis): return R.cummin(self, axis)
    def logcumsumexp(self, axis): return R.logcumsumexp(self, axis)
    def nanmedian(self, axis=None, keepdims=False): return R.nanmedian(self, axis, keepdims)
    def mode(self, axis=-1, keepdims=False): return R.mode(self, axis, keepdims)
    def msort(self): return R.msort(self)

    def quantile(self, q, axis=None, keepdims=False, *, interpolation="linear"):
        return R.quantile(self, q, axis, keepdims, interpolation=interpolation)

    def nanquantile(self, q, axis=None, keepdims=False, *, interpolation="linear"):
        return R.nanquantile(self, q, axis, keepdims, interpolation=interpolation)

    def unique(self, sorted=True, return_inverse=False, return_counts=False,  # noqa: A002
               axis=None):
        return R.unique(self, sorted, return_inverse, return_counts, axis)

    def unique_consecutive(self, return_inverse=False, return_counts=False, axis=None):
        return R.unique_consecutive(self, return_inverse, return_counts, axis)

    def bincount(self, weights=None, minlength=0): return R.bincount(self, weights, minlength)
    def histc(self, bins=100, min=0, max=0): return R.histc(self, bins, min, max)  # noqa: A002

    def isin(self, test_elements, *, assume_unique=False, invert=False):
        return R.isin(self, test_elements, assume_unique=assume_unique, invert=invert)

    def dist(self, other, p=2): return R.dist(self, other, p)
    def fmax(self, o): return E.fmax(self, o)
    def fmin(self, o): return E.fmin(self, o)
    def erfc(self): return E.erfc(self)
    def erfinv(self): return E.erfinv(self)
    def lgamma(self): return E.lgamma(self)
    def isposinf(self): return E.isposinf(self)
    def isneginf(self): return E.isneginf(self)

    def bernoulli(self, p=None, *, generator=None):
        return E.bernoulli(self, p, generator=generator)

    def multinomial(self, num_samples, replacement=False, *, generator=None):
        return E.multinomial(self, num_samples, replacement, generator=generator)

    def tensor_split(self, indices_or_sections, axis=0):
        return S.tensor_split(self, indices_or_sections, axis)

    def hsplit(self, indices_or_sections): return S.hsplit(self, indices_or_sections)
    def vsplit(self, indices_or_sections): return S.vsplit(self, indices_or_sections)
    def dsplit(self, indices_or_sections): return S.dsplit(self, indices_or_sections)

    def diag_embed(self, offset=0, axis1=-2, axis2=-1):
        return S.diag_embed(self, offset, axis1, axis2)

    def unfold(self, dimension, size, step):
        """The windows of `size` elements `step` apart along dimension (a new last dim)."""
        return S.sliding_windows(self, dimension, size, step)

    def index_copy(self, axis, indices, source): return S.index_copy(self, axis, indices, source)
    def masked_scatter(self, mask, source): return S.masked_scatter(self, mask, source)

    def scatter_reduce(self, axis, indices, src, reduce, *, include_self=True):
        return S.scatter_reduce(self, axis, indices, src, reduce, include_self=include_self)

    def slice_scatter(self, src, axis=0, start=None, end=None, step=1):
        return S.slice_scatter(self, src, axis, start, end, step)

    def addmm(self, mat1, mat2, *, beta=1, alpha=1): return L.addmm(self, mat1, mat2, beta, alpha)
    def nelement(self): return math.prod(self.shape)
    def element_size(self): return self.dtype.itemsize

    def half(self):
        raise TypeError("half: float16 is not a pyfront dtype (pyfront has float32, float64, "
                        "int32, int64 and bool); use float() for float32")

    def index_add_(self, axis, indices, source, alpha=1):
        return self._in_place(lambda t: S.index_add(t, axis, indices, source, alpha),
                              "index_add_")

    def index_copy_(self, axis, indices, source):
        return self._in_place(lambda t: S.index_copy(t, axis, indices, source), "index_copy_")

    def scatter_(self, axis, indices, src=None, value=None, *, reduce=None):
        return self._in_place(lambda t: S.scatter(t, axis, indices, src, value, reduce=reduce),
                              "scatter_")

    def scatter_reduce_(self, axis, indices, src, reduce, *, include_self=True):
        return self._in_place(lambda t: S.scatter_reduce(t, axis, indices, src, reduce,
                                                         include_self=include_self),
                              "scatter_reduce_")

    def masked_scatter_(self, mask, source):
        return self._in_place(lambda t: S.masked_scatter(t, mask, source), "masked_scatter_")

    # ---- dense linear algebra (torch's Tensor methods: pf.inverse, pf.det, ...) ----
    def inverse(self): return D.inv(self)
    def det(self): return D.det(self)
    def logdet(self): return D.logdet(self)
    def slogdet(self): return D.slogdet(self)
    def cholesky(self, upper=False): return D.cholesky(self, upper)
    def cholesky_solve(self, L, upper=False): return D.cholesky_solve(self, L, upper)  # noqa: N803
    def qr(self, some=True): return D.qr(self, some)
    def svd(self, some=True, compute_uv=True): return D.svd(self, some, compute_uv)
    def pinverse(self, rcond=1e-15): return D.pinverse(self, rcond)
    def matrix_power(self, n): return D.matrix_power(self, n)
    def matrix_exp(self): return D.matrix_exp(self)

    def triangular_solve(self, A, upper=True, transpose=False, unitriangular=False):  # noqa: N803
        return D.triangular_solve(self, A, upper, transpose, unitriangular)

    # ---- more of PyTorch's Tensor methods (3) ----
    def cov(self, *, correction=1, fweights=None, aweights=None):
        return L.cov(self, correction=correction, fweights=fweights, aweights=aweights)

    def corrcoef(self): return L.corrcoef(self)

    def histogram(self, bins, *, range=None, weight=None, density=False):  # noqa: A002
        return R.histogram(self, bins, range=range, weight=weight, density=density)

    def renorm(self, p, axis, maxnorm): return R.renorm(self, p, axis, maxnorm)
    def gcd(self, o): return E.gcd(self, o)
    def lcm(self, o): return E.lcm(self, o)
    def frexp(self): return E.frexp(self)
    def ldexp(self, o): return E.ldexp(self, o)
    def nextafter(self, o): return E.nextafter(self, o)
    def sgn(self): return E.sgn(self)
    def angle(self): return E.angle(self)
    def i0(self): return E.i0(self)
    def digamma(self): return E.digamma(self)
    def polygamma(self, n): return E.polygamma(n, self)
    def mvlgamma(self, p): return E.mvlgamma(self, p)
    def addbmm(self, batch1, batch2, *, beta=1, alpha=1):
        return L.addbmm(self, batch1, batch2, beta, alpha)
    def addmv(self, mat, vec, *, beta=1, alpha=1): return L.addmv(self, mat, vec, beta, alpha)
    def addr(self, vec1, vec2, *, beta=1, alpha=1): return L.addr(self, vec1, vec2, beta, alpha)
    def is_floating_point(self): return self.dtype.is_float

    def is_nonzero(self):
        """The truth of a one-element tensor (torch's is_nonzero; see pf.is_nonzero)."""
        if math.prod(d if d is not None else 0 for d in self.shape) != 1:
            raise ValueError("is_nonzero: needs a tensor of one element, got shape %s (its "
                             "truth is ambiguous)" % core.fmt_shape(self.shape))
        return bool(self.item())
