"""Dropout on a counter-based generator (Philox-4x32-10 in native/src/random.c).

A generator state is an int64 tensor (seed, counter). The dropout op reads it, draws with it and
advances the counter in place (it is `stateful` and `mutates` the state), so a compiled plan run
step after step draws a new mask each time. The backward does not keep the mask: the forward
outputs the (seed, counter) it used, and the gradient replays the same mask from it, which
costs one generator pass instead of a mask as large as x held from forward to backward.
"""
import math
import warnings

import numpy as np

from .. import errors, random
from ..dtypes import int64
from . import core
from .core import Op, Spec, apply, as_operand, fmt_shape

__all__ = ["dropout"]

_KEY = Spec((2,), int64)


def new_state(seed=None):
    """A fresh (seed, counter) state; the seed comes from pyfront.random.generator() unless
    given, so pf.random.seed(...) makes the masks reproducible."""
    if seed is None:
        seed = int(random.generator().integers(0, 2 ** 63 - 1))
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool):
        raise TypeError("a dropout seed must be an int, got %r" % (seed,))
    seed = (int(seed) + 2 ** 63) % 2 ** 64 - 2 ** 63   # any int, folded into int64
    return core.Tensor._wrap(np.array([seed, 0], dtype=np.int64), int64)


def check_rate(rate):
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.floating)) or \
            not 0 <= rate <= 1:
        raise ValueError("dropout: rate must be a number in [0, 1], got %r" % (rate,))
    return float(rate)


class Dropout(Op):
    """y = x / (1 - rate) where kept, 0 where dropped; outputs (y, key), key being the
    (seed, counter) this call drew with."""

    name = "dropout"
    inputs = ("x", "state")
    retain_inputs, retain_outputs = (), (1,)        # replayed from the key, not a mask
    n_outputs = 2
    stateful = True
    mutates = (1,)

    def infer(self, specs, attrs):
        x, state = specs
        if not x.dtype.is_float:
            raise errors.DTypeError("x must be float32 or float64, got %s" % x.dtype.name)
        if state.dtype is not int64 or tuple(state.shape) != (2,):
            raise core.ShapeMismatch("the generator state must be int64 (seed, counter) of "
                                     "shape (2,), got %s %s" % (fmt_shape(state.shape),
                                                                state.dtype.name))
        return [x, _KEY]

    def forward(self, k, ins, outs, attrs):
        k.run("dropout", [ins[0].desc()], [outs[0].desc(), outs[1].desc(), ins[1].desc()], (),
              (attrs["rate"],))

    def grad(self, ctx, gouts):
        # the key output is integer: no gradient flows through it
        return apply(_dropout_replay, [gouts[0], ctx.output(1)], ctx.attrs), None


class DropoutReplay(Op):
    """g masked and scaled as the forward that drew with `key` masked x. Linear in g, so its
    gradient is itself."""

    name = "dropout_replay"
    inputs = ("grad", "key")

    def infer(self, specs, attrs):
        return [specs[0]]

    def forward(self, k, ins, outs, attrs):
        k.run("dropout_replay", [ins[0].desc(), ins[1].desc()], [outs[0].desc()], (),
              (attrs["rate"],))

    def grad(self, ctx, gg):
        return apply(self, [gg, ctx.inputs[1]], ctx.attrs), None


_dropout = core.register(Dropout)
_dropout_replay = core.register(DropoutReplay)


def dropout(x, rate=0.5, training=True, state=None):
    """Inverted dropout: each element is zeroed with probability `rate`, the kept ones scaled by
    1 / (1 - rate); the identity when not training.

    state: an int64 (seed, counter) tensor (see new_state) that the call advances in place;
    None draws a fresh one from pyfront.random.generator().
    """
    rate = check_rate(rate)
    x = as_operand(x)
    if not training:
        return x
    if state is None:
        state = core.constant_like(new_state(), x)
    return apply(_dropout, [x, state], {"rate": rate})[0]


# ---------------------------------------------------------------------------------------------
# torch.nn.functional's other dropouts and a uniform draw, composed of the dropout op on ones:
# it draws on the same Philox stream, advances the same state, and compiled plans draw anew on
# every run

def _ones_like(x):
    """Ones of x's shape and dtype (an unknown batch dim included)."""
    from .shape import expand_like

    one = core.constant_like(np.ones((1,) * len(x.shape), x.dtype.np), x)
    return expand_like(one, x)


def _kept(ones, rate, state):
    """A mask of ones' shape, true with probability 1 - rate (ones: a tensor of ones)."""
    if state is None:
        state = core.constant_like(new_state(), ones)
    return apply(_dropout, [ones, state], {"rate": rate})[0] > 0.0


_UNIFORM_BITS = 24     # a float32 mantissa's worth: the draws lie on a grid of 2^-24


def uniform_like(x, low, high, state=None):
    """A tensor of x's shape and dtype, uniform on [low, high): each element is 24 fair bits
    of the dropout generator (one dropout pass at rate 1/2 over 24 stacked copies of ones)
    read as a binary fraction, offset to the centre of its cell of 2^-24. state: as dropout's
    (None draws a fresh one)."""
    from .reduction import sum as reduce_sum
    from .shape import reshape, reshape_like

    x = as_operand(x)
    if not x.dtype.is_float:
        raise errors.DTypeError("uniform_like: x must be float32 or float64, got %s"
                                % x.dtype.name)
    flat = reshape(x, (1, -1))
    copies = core.constant_like(np.ones((_UNIFORM_BITS, 1), x.dtype.np), x)
    bits = _kept(copies * _ones_like(flat), 0.5, state)
    weights = 0.5 ** np.arange(1, _UNIFORM_BITS + 1).reshape(-1, 1)
    fraction = reduce_sum(bits.astype(x.dtype) * core.constant_like(
        weights.astype(x.dtype.np), x), 0) + 0.5 ** (_UNIFORM_BITS + 1)
    return reshape_like(fraction * (high - low) + low, x)


def _feature_dropout(name, nd, x, rate, training, state):
    """Whole channels zeroed: one draw per (sample, channel) of x (N, C, *spatial) with nd
    spatial dims, or unbatched (C, *spatial), broadcast over the positions."""
    from .shape import expand_dims, getitem, squeeze

    rate = check_rate(rate)
    x = as_operand(x)
    if len(x.shape) not in (nd + 1, nd + 2):
        raise errors.ShapeError("%s: x must have %d dims (batch, channels, %d spatial) or %d "
                                "(unbatched), got %s" % (core.located(name), nd + 2, nd, nd + 1,
                                                         fmt_shape(x.shape)))
    if not training:
        return x
    unbatched = len(x.shape) == nd + 1
    if unbatched:
        x = expand_dims(x, 0)
    channels = getitem(x, (slice(None), slice(None)) + (slice(0, 1),) * nd)
    if state is None:
        state = core.constant_like(new_state(), x)
    mask = apply(_dropout, [_ones_like(channels), state], {"rate": rate})[0]
    y = x * mask
    return squeeze(y, 0) if unbatched else y


def dropout1d(x, rate=0.5, training=True, inplace=False, *, state=None):
    """torch's F.dropout1d: each channel of x (N, C, L) or (C, L) zeroed with probability
    `rate` as a whole, the kept ones scaled by 1 / (1 - rate); the identity when not training.
    PyTorch's p= is rate=; inplace is accepted for PyTorch's signature (the result is always a
    new tensor); state as dropout's."""
    return _feature_dropout("dropout1d", 1, x, rate, training, state)


def dropout2d(x, rate=0.5, training=True, inplace=False, *, state=None):
    """torch's F.dropout2d over x (N, C, H, W) or (C, H, W); see dropout1d. A 3-D input is read
    as (N, C, L), with PyTorch's warning (its present behaviour, which it means to change)."""
    x = as_operand(x)
    if len(x.shape) == 3:
        warnings.warn("dropout2d: a 3-D input is taken as (N, C, L) and its channels dropped "
                      "as dropout1d does, as PyTorch does now; use dropout1d for that",
                      UserWarning, stacklevel=2)
        return _feature_dropout("dropout2d", 1, x, rate, training, state)
    return _feature_dropout("dropout2d", 2, x, rate, training, state)


def dropout3d(x, rate=0.5, training=True, inplace=False, *, state=None):
    """torch's F.dropout3d over x (N, C, D, H, W) or (C, D, H, W); see dropout1d."""
    return _feature_dropout("dropout3d", 3, x, rate, training, state)


# SELU's negative saturation value, -scale * alpha: where alpha dropout sends dropped elements
_SELU_SATURATION = 1.7580993408473766


def alpha_dropout(x, rate=0.5, training=False, inplace=False, *, state=None):
    """torch's F.alpha_dropout (for SELU networks): each element is replaced with probability
    `rate` by SELU's saturation value, then an affine map a * y + b restores zero mean and unit
    variance (PyTorch's constants); at rate 1, zeros. Note training defaults to False, as
    PyTorch's. inplace is accepted for PyTorch's signature; state as dropout's."""
    rate = check_rate(rate)
    x = as_operand(x)
    if not x.dtype.is_float:
        raise errors.DTypeError("alpha_dropout: x must be float32 or float64, got %s"
                                % x.dtype.name)
    if not training:
        return x
    if rate == 1:
        return x * 0.0
    keep = _kept(_ones_like(x), rate, state).astype(x.dtype)
    alpha = _SELU_SATURATION
    a = 1.0 / math.sqrt((alpha * alpha * rate + 1) * (1 - rate))
    # PyTorch's order of operations: b = (keep - 1) * alpha * a + alpha * a * p
    b = (keep - 1.0) * (alpha * a) + alpha * a * rate
    return x * (keep * a) + b


def rrelu(x, lower=1.0 / 8, upper=1.0 / 3, training=False, inplace=False, *, state=None):
    """Randomized leaky ReLU (torch's F.rrelu): training, each element at or below 0 is scaled
    by its own slope drawn uniformly from [lower, upper] (uniform_like, with `state` as
    dropout's); otherwise leaky_relu with the mean slope (lower + upper) / 2, as PyTorch's.
    Note training defaults to False, as PyTorch's. inplace is accepted for PyTorch's
    signature; the result is always a new tensor."""
    from .elementwise import leaky_relu, less_equal, where

    if not lower <= upper:
        raise ValueError("rrelu: lower (%r) must not exceed upper (%r)" % (lower, upper))
    x = as_operand(x)
    if not x.dtype.is_float:
        x = x.astype("float32")
    if not training:
        return leaky_relu(x, (lower + upper) / 2.0)
    slope = uniform_like(x, float(lower), float(upper), state)
    # at or below 0, as PyTorch's kernel tests it: NaN keeps slope 1
    return where(less_equal(x, 0.0), x * slope, x)


__all__ += ["dropout1d", "dropout2d", "dropout3d", "alpha_dropout", "rrelu"]
