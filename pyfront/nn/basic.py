"""Small structural layers: Dropout, Embedding, Flatten, Reshape, and the merges Concatenate
and Add (called with several inputs, or with one list of them)."""
import math

import numpy as np

from .. import errors, ops
from ..ops.core import as_operand, fmt_shape
from ..ops.dropout import check_rate, new_state
from .module import Module, Parameter, register_layer

__all__ = ["Dropout", "Embedding", "Flatten", "Reshape", "Concatenate", "Add"]


@register_layer
class Dropout(Module):
    """Inverted dropout: in training each element is zeroed with probability `rate` and the
    kept ones are scaled by 1 / (1 - rate); in evaluation the identity.

    The generator state (seed, counter) is a buffer, saved with the model, that every call
    advances in place, compiled plans included. The seed is `seed`, or else drawn from
    pyfront.random.generator() when the layer is made, so pf.random.seed(...) before building
    a model makes its masks reproducible.
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
        self.register_buffer("rng_state", state)

    def forward(self, x):
        x = as_operand(x)
        if not self.training:
            return x
        return ops.dropout(x, self.rate, True, self.rng_state)

    def get_config(self):
        return {"rate": self.rate, "seed": self.seed, "name": self.name}


@register_layer
class Embedding(Module):
    """A lookup table: integer indices of any shape (...) -> vectors (..., output_dim), rows of
    an (input_dim, output_dim) matrix. Indices must lie in [0, input_dim). input_length, when
    given, is the required size of the last input dim (sequences of a fixed length, as Keras's
    Embedding), so that a wrongly shaped input fails here rather than layers later."""

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform",
                 input_length=None, name=None):
        super().__init__(name)
        for label, v in (("input_dim", input_dim), ("output_dim", output_dim),
                         ("input_length", 1 if input_length is None else input_length)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError("%s: %s must be a positive int, got %r" % (self.name, label, v))
        self.input_dim = int(input_dim)
        self.output_dim = int(output_dim)
        self.input_length = None if input_length is None else int(input_length)
        self.embeddings_initializer = embeddings_initializer
        self.embeddings = Parameter(init=embeddings_initializer)
        self.embeddings.materialize((self.input_dim, self.output_dim))
        self.built = True

    def forward(self, indices):
        indices = as_operand(indices)
        if indices.dtype.is_float:
            raise errors.DTypeError("%s: takes integer indices (int32/int64), got %s of shape %s"
                                    % (self.name, indices.dtype.name, fmt_shape(indices.shape)))
        if self.input_length is not None and (
                not indices.shape or indices.shape[-1] != self.input_length):
            raise errors.ShapeError("%s: expected indices of shape (..., %d) (input_length), got %s"
                                    % (self.name, self.input_length, fmt_shape(indices.shape)))
        if not indices.symbolic and indices.size:
            values = indices.numpy()
            bad = (values < 0) | (values >= self.input_dim)
            if bad.any():
                raise errors.IndexOutOfRange(
                    "%s: index %d (at %s of the input of shape %s) is out of range for "
                    "input_dim %d" % (self.name, values[bad].flat[0],
                                      tuple(int(i) for i in np.argwhere(bad)[0]),
                                      fmt_shape(indices.shape), self.input_dim))
        return ops.take(self.embeddings, indices, axis=0)

    def get_config(self):
        if not isinstance(self.embeddings_initializer, str):
            return None
        return {"input_dim": self.input_dim, "output_dim": self.output_dim,
                "embeddings_initializer": self.embeddings_initializer,
                "input_length": self.input_length, "name": self.name}


@register_layer
class Flatten(Module):
    """Collapse the dims from start_dim on into one: (N, C, H, W) -> (N, C*H*W) by default.
    The batch dim may be unknown; the collapsed ones must be known."""

    def __init__(self, start_dim=1, name=None):
        super().__init__(name)
        if isinstance(start_dim, bool) or not isinstance(start_dim, int):
            raise TypeError("%s: start_dim must be an int, got %r" % (self.name, start_dim))
        self.start_dim = start_dim

    def forward(self, x):
        x = as_operand(x)
        shape = tuple(x.shape)
        nd = len(shape)
        start = self.start_dim + nd if self.start_dim < 0 else self.start_dim
        if not 0 <= start < nd:
            raise errors.ShapeError("%s: start_dim %d is out of range for an input of shape %s"
                                    % (self.name, self.start_dim, fmt_shape(shape)))
        if start == 0:
            return ops.reshape(x, (-1,))
        kept, collapsed = shape[1:start], shape[start:]
        if None in kept or None in collapsed:
            raise errors.ShapeError("%s: only the batch dim may be unknown, got input shape %s"
                                    % (self.name, fmt_shape(shape)))
        return ops.reshape(x, (-1,) + tuple(kept) + (math.prod(collapsed),))

    def get_config(self):
        return {"start_dim": self.start_dim, "name": self.name}


@register_layer
class Reshape(Module):
    """Reshape every sample: (N, *in) -> (N, *target_shape); target_shape excludes the batch
    dim and may hold one -1, inferred from the others."""

    def __init__(self, target_shape, name=None):
        super().__init__(name)
        try:
            target = tuple(int(d) for d in target_shape)
        except TypeError:
            raise TypeError("%s: target_shape must be a tuple of ints, got %r"
                            % (self.name, target_shape)) from None
        if target.count(-1) > 1 or any(d < -1 for d in target):
            raise ValueError("%s: target_shape may hold sizes >= 0 and one -1, got %r"
                             % (self.name, target_shape))
        self.target_shape = target

    def forward(self, x):
        x = as_operand(x)
        sample = tuple(x.shape[1:])
        target = list(self.target_shape)
        if len(x.shape) < 1 or None in sample:
            raise errors.ShapeError("%s: needs an input whose dims past the batch are known, got "
                                    "%s" % (self.name, fmt_shape(x.shape)))
        n = math.prod(sample)
        if -1 in target:
            known = math.prod(d for d in target if d != -1)
            if known == 0 or n % known:
                raise self._mismatch(x)
            target[target.index(-1)] = n // known
        elif math.prod(target) != n:
            raise self._mismatch(x)
        return ops.reshape(x, (-1,) + tuple(target))

    def _mismatch(self, x):
        return errors.ShapeError("%s: cannot reshape an input of shape %s to target_shape %s "
                                 "(the batch dim excluded): %d elements per sample"
                                 % (self.name, fmt_shape(x.shape), fmt_shape(self.target_shape),
                                    math.prod(x.shape[1:])))

    def get_config(self):
        return {"target_shape": list(self.target_shape), "name": self.name}


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
