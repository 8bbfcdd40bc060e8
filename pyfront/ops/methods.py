"""Operators and methods shared by Tensor (eager) and Symbol (graph): `x @ w + 1` builds the
same ops in both modes."""
from . import elementwise as E
from . import linalg as L
from . import nn as N
from . import reduction as R
from . import shape as S


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

    def sum(self, axis=None, keepdims=False): return R.sum(self, axis, keepdims)
    def mean(self, axis=None, keepdims=False): return R.mean(self, axis, keepdims)
    def max(self, axis=None, keepdims=False): return R.max(self, axis, keepdims)
    def min(self, axis=None, keepdims=False): return R.min(self, axis, keepdims)
    def argmax(self, axis=None, keepdims=False): return R.argmax(self, axis, keepdims)
    def argmin(self, axis=None, keepdims=False): return R.argmin(self, axis, keepdims)
    def reshape(self, *shape): return S.reshape(self, *shape)
    def flatten(self, start_dim=1): return S.flatten(self, start_dim)
    def squeeze(self, axis=None): return S.squeeze(self, axis)
    def expand_dims(self, axis): return S.expand_dims(self, axis)
    unsqueeze = expand_dims
    def permute(self, *perm): return S.permute(self, *perm)
    def transpose(self, a=-2, b=-1): return S.transpose(self, a, b)
    @property
    def T(self): return S.permute(self, tuple(reversed(range(len(self.shape)))))
    def astype(self, dtype): return S.cast(self, dtype)
    def clone(self): return S.clone(self)
    def take(self, indices, axis=0): return S.take(self, indices, axis)
    def matmul(self, o): return L.matmul(self, o)
    def exp(self): return E.exp(self)
    def log(self): return E.log(self)
    def sqrt(self): return E.sqrt(self)
    def abs(self): return E.abs(self)
    def tanh(self): return E.tanh(self)
    def sigmoid(self): return E.sigmoid(self)
    def relu(self): return E.relu(self)
    def clip(self, lo, hi): return E.clip(self, lo, hi)
    def softmax(self, axis=-1): return N.softmax(self, axis)
    def log_softmax(self, axis=-1): return N.log_softmax(self, axis)
