"""pf.special: torch.special's functions for real tensors, under torch.special's names. Most
are pyfront's ops under another name (expit is sigmoid, gammaln is lgamma, psi is digamma);
the Bessel, normal-distribution and entropy functions torch.* lacks are composed with the
other special functions in ops/elementwise.py."""
from .ops import elementwise as _elementwise
from .ops import losses as _losses
from .ops import reduction as _reduction
from .ops import shape as _shape
from .ops.core import as_operand

__all__ = ["erf", "erfc", "erfinv", "expit", "logit", "xlogy", "xlog1py", "gammaln", "digamma",
           "psi", "polygamma", "multigammaln", "i0", "i0e", "i1", "i1e", "ndtr", "ndtri",
           "log_ndtr", "sinc", "round", "softmax", "log_softmax", "log1p", "expm1", "exp2",
           "entr", "logsumexp"]

erf = _elementwise.erf
erfc = _elementwise.erfc
erfinv = _elementwise.erfinv
expit = _elementwise.sigmoid
logit = _elementwise.logit
xlogy = _elementwise.xlogy
xlog1py = _elementwise.xlog1py
gammaln = _elementwise.lgamma
digamma = psi = _elementwise.digamma
polygamma = _elementwise.polygamma
multigammaln = _elementwise.mvlgamma
i0 = _elementwise.i0
i0e = _elementwise.i0e
i1 = _elementwise.i1
i1e = _elementwise.i1e
ndtr = _elementwise.ndtr
ndtri = _elementwise.ndtri
log_ndtr = _elementwise.log_ndtr
sinc = _elementwise.sinc
log1p = _elementwise.log1p
expm1 = _elementwise.expm1
exp2 = _elementwise.exp2
entr = _elementwise.entr


def round(input, *, decimals=0):  # noqa: A001,A002 (torch.special's names)
    """input rounded half to even, to `decimals` decimal places (torch.special.round)."""
    return _elementwise.round(input, decimals)


def _cast(input, dtype):
    x = as_operand(input)
    return x if dtype is None else _shape.cast(x, dtype)


def softmax(input, dim, *, dtype=None):  # noqa: A002
    """softmax along dim, input cast to dtype first if given (torch.special.softmax)."""
    return _losses.softmax(_cast(input, dtype), dim)


def log_softmax(input, dim, *, dtype=None):  # noqa: A002
    """log_softmax along dim, input cast to dtype first if given."""
    return _losses.log_softmax(_cast(input, dtype), dim)


def logsumexp(input, dim, keepdim=False):  # noqa: A002
    """log(sum(exp(input))) over dim without overflow (torch.special.logsumexp)."""
    return _reduction.logsumexp(input, dim, keepdim)
