"""Dropout on a counter-based generator (Philox-4x32-10 in native/src/random.c).

A generator state is an int64 tensor (seed, counter). The dropout op reads it, draws with it and
advances the counter in place (it is `stateful` and `mutates` the state), so a compiled plan run
step after step draws a new mask each time. The backward does not keep the mask: the forward
outputs the (seed, counter) it used, and the gradient replays the same mask from it, which
costs one generator pass instead of a mask as large as x held from forward to backward.
"""
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
