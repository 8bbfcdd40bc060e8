"""Multi-head attention (Vaswani et al. 2017), scaled dot-product attention composed of
existing ops: batched matmul, softmax, masks as additive large negatives."""
import math

import numpy as np

from .. import errors, ops
from ..ops.core import as_operand, constant_like, fmt_shape
from .module import Module, Parameter, register_layer

__all__ = ["MultiHeadAttention"]

# added to the scores of masked positions: exp() of it underflows to exactly zero in float32
_MASKED = -1e9


@register_layer
class MultiHeadAttention(Module):
    """forward(query, value=None, key=None, mask=None): attention of query (N, Lq, Eq) over
    key (N, Lk, Ek) / value (N, Lk, Ev); value defaults to query (self-attention), key to value.

    Each head projects to key_dim (queries, keys) and value_dim (values); the heads'
    outputs are concatenated and projected to output_dim (default Eq). mask: (N, Lk) or
    (N, Lq, Lk), nonzero where a query may attend (Keras' convention; PyTorch's boolean masks
    are the opposite). causal=True lets query i attend keys j <= i only. Kernels are
    (in, heads * dim); weights of torch.nn.MultiheadAttention copy over transposed.

    PyTorch's keyword arguments work too: key_padding_mask (N, Lk) and attn_mask (Lq, Lk) or
    (N * heads, Lq, Lk), True (bool) where NOT to attend or floats added to the scores;
    need_weights=True/False returns (output, weights averaged over the heads — or per head
    with average_attn_weights=False — or None). Note the positional order is Keras'
    (query, value, key); pass key=/value= by name when porting torch's (query, key, value).
    """

    def __init__(self, num_heads, key_dim, value_dim=None, use_bias=True, output_dim=None,
                 causal=False, kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 name=None):
        super().__init__(name)
        for what, v in (("num_heads", num_heads), ("key_dim", key_dim)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError("MultiHeadAttention: %s must be a positive int, got %r"
                                 % (what, v))
        self.num_heads = num_heads
        self.key_dim = key_dim
        self.value_dim = key_dim if value_dim is None else int(value_dim)
        self.use_bias = bool(use_bias)
        self.output_dim = output_dim
        self.causal = bool(causal)
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.dims = None    # (Eq, Ev, Ek) once built
        for part in ("query", "key", "value", "output"):
            setattr(self, part + "_kernel", Parameter(init=kernel_initializer))
            if use_bias:
                setattr(self, part + "_bias", Parameter(init=bias_initializer))
            else:
                setattr(self, part + "_bias", None)

    def __call__(self, query, value=None, key=None, mask=None, return_attention_scores=False,
                 *, key_padding_mask=None, attn_mask=None, need_weights=None,
                 average_attn_weights=True):
        if value is None and key is not None:
            raise ValueError("%s: key given without value" % self.name)
        inputs = [query] + [t for t in (value, key) if t is not None]
        return Module.__call__(self, *inputs, mask=mask,
                               return_attention_scores=return_attention_scores,
                               key_padding_mask=key_padding_mask, attn_mask=attn_mask,
                               need_weights=need_weights,
                               average_attn_weights=average_attn_weights)

    def build(self, query_shape, value_shape=None, key_shape=None):
        value_shape = query_shape if value_shape is None else value_shape
        key_shape = value_shape if key_shape is None else key_shape
        for what, s in (("query", query_shape), ("value", value_shape), ("key", key_shape)):
            if s is None or len(s) != 3 or s[-1] is None:
                raise errors.ShapeError("MultiHeadAttention '%s': %s must be (batch, length, "
                                        "features), got %s" % (self.name, what,
                                                               fmt_shape(s or ())))
        eq, ev, ek = int(query_shape[-1]), int(value_shape[-1]), int(key_shape[-1])
        self.dims = (eq, ev, ek)
        h = self.num_heads
        out = eq if self.output_dim is None else int(self.output_dim)
        self.output_dim = out
        shapes = {"query": (eq, h * self.key_dim), "key": (ek, h * self.key_dim),
                  "value": (ev, h * self.value_dim), "output": (h * self.value_dim, out)}
        for part, shape in shapes.items():
            getattr(self, part + "_kernel").materialize(shape)
            if self.use_bias:
                getattr(self, part + "_bias").materialize((shape[1],))

    def _check(self, what, x, features):
        shape = tuple(x.shape)
        if len(shape) != 3 or shape[-1] != features:
            raise errors.ShapeError("MultiHeadAttention '%s': expected %s of shape (batch, "
                                    "length, %d), got %s" % (self.name, what, features,
                                                             fmt_shape(shape)))

    def _heads(self, x, dim):
        """(N, L, heads * dim) -> (N, heads, L, dim)"""
        return ops.permute(ops.reshape(x, (-1, x.shape[1], self.num_heads, dim)), (0, 2, 1, 3))

    def forward(self, query, value=None, key=None, mask=None, return_attention_scores=False,
                key_padding_mask=None, attn_mask=None, need_weights=None,
                average_attn_weights=True):
        query = as_operand(query)
        value = query if value is None else as_operand(value)
        key = value if key is None else as_operand(key)
        if self.dims is None:   # parameters loaded from a file rather than built
            self.dims = tuple(getattr(self, part + "_kernel").shape[0]
                              for part in ("query", "value", "key"))
        eq, ev, ek = self.dims
        self._check("query", query, eq)
        self._check("value", value, ev)
        self._check("key", key, ek)
        if key.shape[1] != value.shape[1]:
            raise errors.ShapeError("MultiHeadAttention '%s': key has %s steps but value has %s"
                                    % (self.name, key.shape[1], value.shape[1]))
        lq, lk = query.shape[1], key.shape[1]
        q = ops.linear(query, self.query_kernel, self.query_bias) * (1.0 / math.sqrt(self.key_dim))
        k = ops.linear(key, self.key_kernel, self.key_bias)
        v = ops.linear(value, self.value_kernel, self.value_bias)
        scores = ops.matmul(self._heads(q, self.key_dim), self._heads(k, self.key_dim),
                            transpose_b=True)                       # (N, heads, Lq, Lk)
        bias = self._mask_bias(mask, lq, lk, scores)
        for extra in (self._torch_mask(key_padding_mask, "key_padding_mask", lq, lk, scores),
                      self._torch_mask(attn_mask, "attn_mask", lq, lk, scores)):
            if extra is not None:
                bias = extra if bias is None else bias + extra
        if bias is not None:
            scores = scores + bias
        weights = ops.softmax(scores, -1)
        out = ops.matmul(weights, self._heads(v, self.value_dim))   # (N, heads, Lq, dv)
        out = ops.reshape(ops.permute(out, (0, 2, 1, 3)),
                          (-1, lq, self.num_heads * self.value_dim))
        out = ops.linear(out, self.output_kernel, self.output_bias)
        if need_weights is not None:         # PyTorch's return: (output, weights or None)
            if not need_weights:
                return out, None
            return out, (ops.mean(weights, axis=1) if average_attn_weights else weights)
        return (out, weights) if return_attention_scores else out

    def _torch_mask(self, mask, what, lq, lk, scores):
        """PyTorch's key_padding_mask (N, Lk) or attn_mask (Lq, Lk) / (N * heads, Lq, Lk) as
        an additive bias broadcastable to (N, heads, Lq, Lk): booleans mask where True
        (-1e9 where PyTorch puts -inf: a row with every key masked averages all of them
        instead of giving NaN), floats are added."""
        if mask is None:
            return None
        dtype = scores.dtype
        if not hasattr(mask, "symbolic"):
            mask = np.asarray(mask)
            values = np.where(mask, _MASKED, 0.0) if mask.dtype == np.bool_ else mask
            m = constant_like(values.astype(dtype.np), scores)
        elif mask.dtype.name == "bool":
            m = ops.cast(mask, dtype) * _MASKED
        else:
            m = ops.cast(mask, dtype)
        shape = tuple(m.shape)
        if what == "key_padding_mask" and len(shape) == 2 and shape[1] == lk:
            return ops.reshape(m, (-1, 1, 1, lk))
        if what == "attn_mask" and shape == (lq, lk):
            return ops.reshape(m, (1, 1, lq, lk))
        if what == "attn_mask" and len(shape) == 3 and shape[1:] == (lq, lk):
            return ops.reshape(m, (-1, self.num_heads, lq, lk))
        raise errors.ShapeError("MultiHeadAttention '%s': %s must be %s, got %s"
                                % (self.name, what, "(batch, %d)" % lk
                                   if what == "key_padding_mask" else
                                   "(%d, %d) or (batch * num_heads, %d, %d)" % (lq, lk, lq, lk),
                                   fmt_shape(shape)))

    def _mask_bias(self, mask, lq, lk, scores):
        """An additive bias broadcastable to (N, heads, Lq, Lk): 0 where attending, -1e9 not;
        constants made here live on the scores' device."""
        dtype = scores.dtype
        bias = None
        if self.causal:
            allowed = np.tril(np.ones((lq, lk), dtype=bool))
            bias = constant_like(np.where(allowed, 0.0, _MASKED).astype(dtype.np), scores)
        if mask is None:
            return bias
        if not hasattr(mask, "symbolic"):
            mask = np.asarray(mask)
            if mask.dtype == np.bool_:
                mask = mask.astype(dtype.np)
        m = ops.cast(constant_like(mask, scores), dtype)
        shape = tuple(m.shape)
        if len(shape) == 2 and shape[1] == lk:
            m = ops.reshape(m, (-1, 1, 1, lk))
        elif len(shape) == 3 and shape[1:] == (lq, lk):
            m = ops.reshape(m, (-1, 1, lq, lk))
        else:
            raise errors.ShapeError("MultiHeadAttention '%s': mask must be (batch, %d) or "
                                    "(batch, %d, %d), got %s" % (self.name, lk, lq, lk,
                                                                 fmt_shape(shape)))
        user = (m - 1.0) * (-_MASKED)
        return user if bias is None else user + bias

    def get_config(self):
        if not all(isinstance(v, str) for v in (self.kernel_initializer, self.bias_initializer)):
            return None
        return {"num_heads": self.num_heads, "key_dim": self.key_dim,
                "value_dim": self.value_dim, "use_bias": self.use_bias,
                "output_dim": self.output_dim, "causal": self.causal,
                "kernel_initializer": self.kernel_initializer,
                "bias_initializer": self.bias_initializer, "name": self.name}
