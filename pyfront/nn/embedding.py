"""Embedding: rows of a learned table picked by integer ids."""
import numpy as np

from .. import errors, ops
from ..ops.core import as_operand, fmt_shape
from .module import Module, Parameter, register_layer

__all__ = ["Embedding"]


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
        # checked here on the host; a GPU's take kernel checks them on the device (reported
        # by pf.cuda.synchronize, naming the kernel) without a copy back
        if not indices.symbolic and indices.size and indices.device == "cpu":
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
