"""PyTorch's torch.nn.utils gradient clipping for a hand-written loop: scale or clip the
parameters' .grad in place between backward() and the optimizer's step. (Optimizers also take
clipnorm, clipvalue and global_clipnorm, which compiled steps apply inside the update.)"""
import math

from .. import autograd, errors
from ..ops import clipping, elementwise, reduction
from ..ops import shape as shape_ops

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _grads(parameters):
    if hasattr(parameters, "grad"):          # one tensor
        parameters = [parameters]
    return [p.grad for p in parameters if getattr(p, "grad", None) is not None]


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False):
    """Scale the gradients together so that their joint norm (norm_type: a number or inf) is
    at most max_norm; returns that joint norm before clipping, as a 0-d tensor."""
    grads = _grads(parameters)
    norm_type = float(norm_type)
    if not grads:
        from ..tensor import tensor

        return tensor(0.0)
    with autograd.no_grad():
        if norm_type == 2.0:   # the optimizers' global-norm kernel: one pass, float64 sums
            total = elementwise.sqrt(clipping.sum_of_squares(grads)).reshape(())
        else:
            norms = shape_ops.stack([reduction.norm(g, norm_type) for g in grads])
            total = reduction.max(norms) if math.isinf(norm_type) else \
                reduction.norm(norms, norm_type)
        value = float(total.item())
        if error_if_nonfinite and not math.isfinite(value):
            raise errors.NumericError("clip_grad_norm_: the gradients' total %s-norm is %r "
                                      "(pass error_if_nonfinite=False to scale anyway)"
                                      % (norm_type, value))
        coef = float(max_norm) / (value + 1e-6)
        if coef < 1:
            for g in grads:
                g.mul_(coef)
    return total


def clip_grad_value_(parameters, clip_value):
    """Clip every gradient element to [-clip_value, clip_value] in place."""
    limit = float(clip_value)
    with autograd.no_grad():
        for g in _grads(parameters):
            g.copy_(elementwise.clip(g, -limit, limit))
