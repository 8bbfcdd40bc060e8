"""Dropout: zeroes a fraction of its input while training (the same Philox stream as the op)."""
from .. import ops
from ..ops.core import as_operand
from ..ops.dropout import check_rate, new_state
from .module import Module, register_layer, torch_aliases

__all__ = ["Dropout"]


@register_layer
@torch_aliases(p="rate")
class Dropout(Module):
    """Inverted dropout: in training each element is zeroed with probability `rate` and the
    kept ones are scaled by 1 / (1 - rate); in evaluation the identity.

    The generator state (seed, counter) is a buffer, saved with the model, that every call
    advances in place, compiled plans included. The seed is `seed`, or else drawn from
    pyfront.random.generator() when the layer is made, so pf.random.seed(...) before building
    a model makes its masks reproducible. PyTorch's p= is accepted for rate=.
    """

    def __init__(self, rate=0.5, seed=None, name=None):
        super().__init__(name)
        try:
            self.rate = check_rate(rate)
        except ValueError as e:
            raise ValueError("%s: %s" % (self.name, e)) from None
        self.seed = seed
        state = new_state(seed)
        state.name = "%s/rng_state" % self.name
        self.register_buffer("rng_state", state, optional=True)

    def forward(self, x):
        x = as_operand(x)
        if not self.training:
            return x
        return ops.dropout(x, self.rate, True, self.rng_state)

    def get_config(self):
        return {"rate": self.rate, "seed": self.seed, "name": self.name}
