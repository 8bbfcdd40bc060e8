"""Gradient clipping as ops (by value, by each gradient's norm, by the global norm), so eager
steps and compiled training plans clip with the same kernels before the update."""
from .. import errors
from ..backend import cpu
from ..dtypes import float64
from . import core
from .core import Op, ShapeMismatch, Spec, apply
from .elementwise import clip

__all__ = ["sum_of_squares", "clip_by_norm", "clip_gradients"]


class SumOfSquares(Op):
    """Sum of the squares of every element of every input, accumulated in float64."""

    name = "grad_sum_of_squares"
    inputs = ("grad",)
    differentiable = False

    def infer(self, specs, attrs):
        if not specs:
            raise ShapeMismatch("needs at least one gradient")
        for s in specs:
            if not s.dtype.is_float:
                raise errors.DTypeError("gradients must be float, got %s" % s.dtype.name)
        return [Spec((1,), float64)]

    def forward(self, k, ins, outs, attrs):
        per_call = cpu.lib.PF_MAX_IN
        for i in range(0, len(ins), per_call):
            k.run("grad_sumsq", [b.desc() for b in ins[i:i + per_call]], [outs[0].desc()],
                  (int(i > 0),))


class ClipByNorm(Op):
    """grad * max_norm / sqrt(sum_sq) where that norm exceeds max_norm, else grad."""

    name = "clip_by_norm"
    inputs = ("sum_of_squares", "grad")
    differentiable = False

    def infer(self, specs, attrs):
        acc, g = specs
        if acc.dtype is not float64 or tuple(acc.shape) != (1,):
            raise ShapeMismatch("the sum of squares must be float64 of shape (1,)")
        if not g.dtype.is_float:
            raise errors.DTypeError("the gradient must be float, got %s" % g.dtype.name)
        return [g]

    def forward(self, k, ins, outs, attrs):
        k.run("clip_by_norm", [ins[0].desc(), ins[1].desc()], [outs[0].desc()], (),
              (attrs["max_norm"],))


_sum_of_squares = core.register(SumOfSquares)
_clip_by_norm = core.register(ClipByNorm)


def sum_of_squares(grads):
    """float64 (1,) tensor: the squared global L2 norm of the gradients."""
    return apply(_sum_of_squares, list(grads))


def clip_by_norm(grad, sum_sq, max_norm):
    return apply(_clip_by_norm, [sum_sq, grad], {"max_norm": float(max_norm)})


def clip_gradients(grads, clipvalue=None, clipnorm=None, global_clipnorm=None):
    """The gradients (tensors or graph symbols; None entries pass through) clipped Keras'
    way: clipvalue elementwise, clipnorm per gradient, global_clipnorm all together."""
    grads = list(grads)
    present = [i for i, g in enumerate(grads) if g is not None]
    if clipvalue is not None:
        for i in present:
            grads[i] = clip(grads[i], -clipvalue, clipvalue)
    elif clipnorm is not None:
        for i in present:
            grads[i] = clip_by_norm(grads[i], sum_of_squares([grads[i]]), clipnorm)
    elif global_clipnorm is not None and present:
        total = sum_of_squares([grads[i] for i in present])
        for i in present:
            grads[i] = clip_by_norm(grads[i], total, global_clipnorm)
    return grads
