"""Embedding: rows of a learned table picked by integer ids; EmbeddingBag: their sums, means or
maxima over bags of ids."""
import numpy as np

from .. import autograd, errors, ops
from ..ops.core import as_operand, constant_like, fmt_shape
from . import init as initializers
from .module import Module, Parameter, register_layer, torch_aliases

__all__ = ["Embedding", "EmbeddingBag"]


@register_layer
@torch_aliases(num_embeddings="input_dim", embedding_dim="output_dim")
class Embedding(Module):
    """A lookup table: integer indices of any shape (...) -> vectors (..., output_dim), rows of
    an (input_dim, output_dim) matrix. Indices must lie in [0, input_dim). input_length, when
    given, is the required size of the last input dim (sequences of a fixed length, as Keras's
    Embedding), so that a wrongly shaped input fails here rather than layers later.

    torch.nn.Embedding's options (and its names num_embeddings=, embedding_dim=):
    padding_idx — that row starts at zero and gets no gradient (negative counts from the end);
    max_norm — each looked-up row whose norm_type-norm exceeds max_norm is rescaled to it in
    place before the lookup (eager only); scale_grad_by_freq — a row's gradient is divided by
    how often its index occurs in the batch (eager only). Embedding.from_pretrained(weights)
    makes one from a table.
    """

    torch_state = {"weight": ("embeddings", False)}

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform",
                 input_length=None, name=None, *, padding_idx=None, max_norm=None,
                 norm_type=2.0, scale_grad_by_freq=False, sparse=False):
        super().__init__(name)
        for label, v in (("input_dim", input_dim), ("output_dim", output_dim),
                         ("input_length", 1 if input_length is None else input_length)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError("%s: %s must be a positive int, got %r" % (self.name, label, v))
        if padding_idx is not None:
            if isinstance(padding_idx, bool) or not isinstance(padding_idx, (int, np.integer)) \
                    or not -input_dim <= padding_idx < input_dim:
                raise ValueError("%s: padding_idx must be an int in [-%d, %d), got %r"
                                 % (self.name, input_dim, input_dim, padding_idx))
            padding_idx = int(padding_idx) % int(input_dim)
        if max_norm is not None and not max_norm > 0:
            raise ValueError("%s: max_norm must be positive, got %r" % (self.name, max_norm))
        if sparse:
            raise ValueError("%s: sparse gradients are not supported (sparse=True)" % self.name)
        self.input_dim = int(input_dim)
        self.output_dim = int(output_dim)
        self.input_length = None if input_length is None else int(input_length)
        self.padding_idx = padding_idx
        self.max_norm = None if max_norm is None else float(max_norm)
        self.norm_type = float(norm_type)
        self.scale_grad_by_freq = bool(scale_grad_by_freq)
        self.embeddings_initializer = embeddings_initializer
        self.embeddings = Parameter(init=embeddings_initializer)
        self.embeddings.materialize((self.input_dim, self.output_dim))
        if padding_idx is not None and self.embeddings.initialized:
            self.embeddings.numpy()[padding_idx] = 0     # PyTorch zeroes the padding row
        self.built = True

    @classmethod
    def from_pretrained(cls, embeddings, freeze=True, padding_idx=None, max_norm=None,
                        norm_type=2.0, scale_grad_by_freq=False, sparse=False, name=None):
        """An Embedding whose table is `embeddings` (num_embeddings, embedding_dim), frozen
        (not trainable) unless freeze=False; as torch.nn.Embedding.from_pretrained (the
        padding row keeps its values)."""
        table = embeddings.numpy() if hasattr(embeddings, "numpy") and \
            not isinstance(embeddings, np.ndarray) else np.asarray(embeddings)
        if table.ndim != 2:
            raise ValueError("Embedding.from_pretrained: embeddings must be 2-D, got shape %s"
                             % (table.shape,))
        layer = cls(table.shape[0], table.shape[1], name=name, padding_idx=padding_idx,
                    max_norm=max_norm, norm_type=norm_type,
                    scale_grad_by_freq=scale_grad_by_freq, sparse=sparse)
        emb = layer.embeddings
        if table.dtype.kind == "f" and table.dtype != emb.dtype.np:
            layer.to(table.dtype)
        with autograd.no_grad():
            emb.copy_(np.ascontiguousarray(table, dtype=emb.dtype.np))
        if freeze:
            emb.trainable = False
            emb.requires_grad = False
        return layer

    def forward(self, indices):
        indices = as_operand(indices)
        if indices.dtype.is_float:
            raise errors.DTypeError("%s: takes integer indices (int32/int64), got %s of shape %s"
                                    % (self.name, indices.dtype.name, fmt_shape(indices.shape)))
        if self.input_length is not None and (
                not indices.shape or indices.shape[-1] != self.input_length):
            raise errors.ShapeError("%s: expected indices of shape (..., %d) (input_length), got %s"
                                    % (self.name, self.input_length, fmt_shape(indices.shape)))
        _check_indices(self.name, indices, self.input_dim, "input_dim")
        if (self.max_norm is not None or self.scale_grad_by_freq) and indices.symbolic:
            raise errors.TraceError("%s: max_norm and scale_grad_by_freq run in eager steps "
                                    "only" % self.name)
        if self.max_norm is not None:
            _renorm_rows(self.embeddings, indices, self.max_norm, self.norm_type)
        out = ops.take(self.embeddings, indices, axis=0)
        if self.padding_idx is not None:
            # the gradient stops at the lookups of the padding row
            pad = ops.expand_dims(ops.equal(indices, self.padding_idx), -1)
            out = ops.where(pad, ops.stop_gradient(out), out)
        if self.scale_grad_by_freq and autograd.is_grad_enabled():
            values = indices.cpu().numpy()
            _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
            scale = (1.0 / counts[inverse]).reshape(values.shape + (1,))
            scale = constant_like(scale.astype(out.dtype.np), out)
            frozen = ops.stop_gradient(out)
            out = frozen + (out - frozen) * scale     # the same values; gradients scaled
        return out

    def get_config(self):
        if not isinstance(self.embeddings_initializer, str):
            return None
        cfg = {"input_dim": self.input_dim, "output_dim": self.output_dim,
               "embeddings_initializer": self.embeddings_initializer,
               "input_length": self.input_length, "name": self.name}
        for key, default in (("padding_idx", None), ("max_norm", None), ("norm_type", 2.0),
                             ("scale_grad_by_freq", False)):
            if getattr(self, key) != default:
                cfg[key] = getattr(self, key)
        return cfg


@register_layer
class EmbeddingBag(Module):
    """torch.nn.EmbeddingBag(num_embeddings, embedding_dim, max_norm=None, norm_type=2.0,
    scale_grad_by_freq=False, mode="mean", sparse=False, _weight=None,
    include_last_offset=False, padding_idx=None): per bag of indices the sum, mean or maximum
    (mode) of their rows of weight (num_embeddings, embedding_dim), drawn from N(0, 1) as
    torch's (the padding_idx row zero, and counting for nothing). forward(input,
    offsets=None, per_sample_weights=None): 2-D input (bags, size), or 1-D input cut into
    bags at offsets; per_sample_weights scale each index's row (mode "sum"). max_norm
    rescales the rows looked up in place first (eager only, as Embedding's);
    scale_grad_by_freq and sparse gradients are refused (pf.embedding_bag has neither)."""

    def __init__(self, num_embeddings, embedding_dim, max_norm=None, norm_type=2.0,
                 scale_grad_by_freq=False, mode="mean", sparse=False, _weight=None,
                 include_last_offset=False, padding_idx=None, *, device=None, dtype=None,
                 name=None):
        from .torch_layers import place, positive_int

        positive_int("EmbeddingBag", "num_embeddings", num_embeddings)
        positive_int("EmbeddingBag", "embedding_dim", embedding_dim)
        super().__init__(name)
        if mode not in ("sum", "mean", "max"):
            raise ValueError("%s: mode must be 'sum', 'mean' or 'max', got %r" % (self.name, mode))
        if padding_idx is not None:
            if isinstance(padding_idx, bool) or not isinstance(padding_idx, (int, np.integer)) \
                    or not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError("%s: padding_idx must be an int in [-%d, %d), got %r"
                                 % (self.name, num_embeddings, num_embeddings, padding_idx))
            padding_idx = int(padding_idx) % num_embeddings
        if max_norm is not None and not max_norm > 0:
            raise ValueError("%s: max_norm must be positive, got %r" % (self.name, max_norm))
        if scale_grad_by_freq or sparse:
            raise ValueError("%s: scale_grad_by_freq and sparse gradients are not supported"
                             % self.name)
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.max_norm = None if max_norm is None else float(max_norm)
        self.norm_type = float(norm_type)
        self.scale_grad_by_freq, self.sparse = False, False
        self.mode, self.include_last_offset = mode, bool(include_last_offset)
        self.padding_idx = padding_idx
        self.weight = Parameter(init=initializers.normal(0.0, 1.0))
        self.weight.materialize((num_embeddings, embedding_dim))
        if _weight is not None:
            given = _weight.numpy() if hasattr(_weight, "numpy") and \
                not isinstance(_weight, np.ndarray) else np.asarray(_weight)
            if given.shape != (num_embeddings, embedding_dim):
                raise errors.ShapeError("%s: _weight must be (num_embeddings, embedding_dim) = "
                                        "(%d, %d), got %s" % (self.name, num_embeddings,
                                                              embedding_dim, given.shape))
            with autograd.no_grad():
                self.weight.copy_(np.ascontiguousarray(given, dtype=self.weight.dtype.np))
        elif padding_idx is not None and self.weight.initialized:
            self.weight.numpy()[padding_idx] = 0     # torch zeroes the padding row
        self.built = True
        place(self, device, dtype)

    def forward(self, input, offsets=None, per_sample_weights=None):  # noqa: A002
        indices = as_operand(input)
        if indices.dtype.is_float:
            raise errors.DTypeError("%s: takes integer indices (int32/int64), got %s of shape %s"
                                    % (self.name, indices.dtype.name, fmt_shape(indices.shape)))
        _check_indices(self.name, indices, self.num_embeddings, "num_embeddings")
        if self.max_norm is not None:
            if indices.symbolic:
                raise errors.TraceError("%s: max_norm runs in eager steps only" % self.name)
            _renorm_rows(self.weight, indices, self.max_norm, self.norm_type)
        return ops.embedding_bag(indices, self.weight, offsets, mode=self.mode,
                                 per_sample_weights=per_sample_weights,
                                 include_last_offset=self.include_last_offset,
                                 padding_idx=self.padding_idx)

    def get_config(self):
        return {"num_embeddings": self.num_embeddings, "embedding_dim": self.embedding_dim,
                "max_norm": self.max_norm, "norm_type": self.norm_type, "mode": self.mode,
                "include_last_offset": self.include_last_offset,
                "padding_idx": self.padding_idx, "name": self.name}


def _check_indices(owner, indices, rows, what):
    """IndexOutOfRange naming owner unless every index lies in [0, rows). Checked here on the
    host; a GPU's take kernel checks them on the device (reported by pf.cuda.synchronize,
    naming the kernel) without a copy back."""
    if not indices.symbolic and indices.size and indices.device == "cpu":
        values = indices.numpy()
        bad = (values < 0) | (values >= rows)
        if bad.any():
            raise errors.IndexOutOfRange(
                "%s: index %d (at %s of the input of shape %s) is out of range for %s %d"
                % (owner, values[bad].flat[0], tuple(int(i) for i in np.argwhere(bad)[0]),
                   fmt_shape(indices.shape), what, rows))


def _renorm_rows(weight, indices, max_norm, norm_type):
    """torch.embedding_renorm_: rows looked up whose norm exceeds max_norm, rescaled in
    place to max_norm (off the tape)."""
    table = weight._array()
    rows = np.unique(indices.cpu().numpy())
    if not rows.size:
        return
    picked = table[rows]
    if type(picked) is not np.ndarray:
        picked = picked.get()
    norms = np.linalg.norm(picked.astype(np.float64), ord=norm_type, axis=1) \
        if norm_type != 2.0 else np.sqrt(np.sum(picked.astype(np.float64) ** 2, 1))
    norms = norms.astype(picked.dtype)
    over = norms > max_norm
    if not over.any():
        return
    scale = (max_norm / (norms[over] + picked.dtype.type(1e-7))).astype(picked.dtype)
    new, where = picked[over] * scale[:, None], rows[over]
    if type(table) is not np.ndarray:       # a GPU's table: the rows go there
        from ..backend import cuda

        new, where = (cuda.array_to(a, weight.device) for a in (new, where))
    table[where] = new
