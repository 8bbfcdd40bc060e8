"""Layers that merge several inputs into one: Concatenate, Add."""
from .. import errors, ops
from ..ops.core import as_operand, fmt_shape
from .module import Module, register_layer

__all__ = ["Concatenate", "Add"]


def _merge_inputs(layer, inputs):
    """forward(a, b, ...) or forward([a, b, ...]) -> a list of at least two operands."""
    if len(inputs) == 1 and isinstance(inputs[0], (list, tuple)):
        inputs = inputs[0]
    tensors = [as_operand(t) for t in inputs]
    if len(tensors) < 2:
        raise ValueError("%s: a merge layer takes at least two inputs, got %d"
                         % (layer.name, len(tensors)))
    return tensors


@register_layer
class Concatenate(Module):
    """Join inputs along `axis` (counted with the batch dim, default the last); the other dims
    must agree."""

    def __init__(self, axis=-1, name=None):
        super().__init__(name)
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise TypeError("%s: axis must be an int, got %r" % (self.name, axis))
        self.axis = axis

    def forward(self, *inputs):
        tensors = _merge_inputs(self, inputs)
        nd = len(tensors[0].shape)
        if not -nd <= self.axis < nd:
            raise errors.ShapeError("%s: axis %d is out of range for inputs of shapes %s"
                                    % (self.name, self.axis,
                                       ", ".join(fmt_shape(t.shape) for t in tensors)))
        return ops.concat(tensors, self.axis)

    def get_config(self):
        return {"axis": self.axis, "name": self.name}


@register_layer
class Add(Module):
    """The elementwise sum of inputs of one shape."""

    def forward(self, *inputs):
        tensors = _merge_inputs(self, inputs)
        first = tuple(tensors[0].shape)
        for t in tensors[1:]:
            shape = tuple(t.shape)
            if len(shape) != len(first) or any(a is not None and b is not None and a != b
                                                for a, b in zip(shape, first)):
                raise errors.ShapeError("%s: inputs must have one shape, got %s"
                                        % (self.name, ", ".join(fmt_shape(u.shape)
                                                                for u in tensors)))
        out = tensors[0]
        for t in tensors[1:]:
            out = out + t
        return out

    def get_config(self):
        return {"name": self.name}
