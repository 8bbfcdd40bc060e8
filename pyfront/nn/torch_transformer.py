"""torch.nn's attention and transformer layers under torch's names: MultiheadAttention,
TransformerEncoderLayer, TransformerEncoder, TransformerDecoderLayer, TransformerDecoder and
Transformer.

Their parameters are torch's, in torch's layout, under torch's state_dict names (in_proj_weight,
out_proj.weight, linear1.weight, norm1.weight, encoder.layers.0.self_attn..., weights
(out, in)) and drawn as torch draws them, so a torch model's state_dict copies over name for
name; the only other entries are the dropout generator states (`rng_state`), which torch keeps
globally: load a torch state_dict with strict=False. Attention is composed of existing ops
(projections, batched matmul, softmax), the same eagerly, compiled and in ONNX.

Masks are torch's: bool (True: may not attend) or float (added to the scores). A bool mask
adds -1e9 where torch puts -inf, so a query whose every key is masked averages the values
where torch gives NaN. is_causal is torch's hint that the mask given is the causal one
(Transformer.generate_square_subsequent_mask): the mask given is what applies, and the hint
without a mask is an error, as in torch.
"""
import copy
import math

import numpy as np

from .. import errors, ops
from ..ops.core import as_operand, constant_like, fmt_shape
from ..ops.dropout import check_rate, new_state
from ..tensor import tensor
from . import init as initializers
from .dropout import Dropout
from .model import ModuleList
from .module import Module, Parameter, layer_class, register_layer
from .torch_layers import known_reshape, place, positive_int, scoped_name

__all__ = ["MultiheadAttention", "TransformerEncoderLayer", "TransformerEncoder",
           "TransformerDecoderLayer", "TransformerDecoder", "Transformer"]

# added to the scores where a bool mask is True: exp() of it underflows to exactly zero
_MASKED = -1e9


class _Linear(Module):
    """torch.nn.Linear inside these layers, with torch's parameters as torch keeps them
    (weight (out, in), bias (out,); U(+-1/sqrt(in))) so their state_dict entries are torch's.
    (pyfront.nn.Linear keeps the (in, out) kernel of Dense.)"""

    def __init__(self, in_features, out_features, bias=True, zero_bias=False, name=None):
        super().__init__(name)
        self.in_features, self.out_features = in_features, out_features
        draw = initializers.uniform(-1 / math.sqrt(in_features), 1 / math.sqrt(in_features))
        self.weight = Parameter(init=draw)
        self.weight.materialize((out_features, in_features))
        self.bias = None
        if bias:
            self.bias = Parameter(init="zeros" if zero_bias else draw)
            self.bias.materialize((out_features,))
        self.built = True

    def forward(self, x, activation=None):
        return ops.linear(x, ops.transpose(self.weight), self.bias, activation)


class _LayerNorm(Module):
    """torch.nn.LayerNorm(features) inside these layers, under torch's parameter names
    (weight, bias). (pyfront.nn.LayerNorm names them gamma and beta.)"""

    def __init__(self, features, eps=1e-5, bias=True, name=None):
        super().__init__(name)
        self.features, self.eps = features, float(eps)
        self.weight = Parameter(init="ones")
        self.weight.materialize((features,))
        self.bias = None
        if bias:
            self.bias = Parameter(init="zeros")
            self.bias.materialize((features,))
        self.built = True

    def forward(self, x):
        return ops.layer_norm(x, (self.features,), self.weight, self.bias, self.eps)


def _fits(shape, want):
    """shape matches want, unknown sizes (None) matching anything."""
    return len(shape) == len(want) and all(a is None or b is None or a == b
                                           for a, b in zip(shape, want))


def _layout(batch_first, features):
    return "(N, L, %d)" % features if batch_first else "(L, N, %d)" % features


def _check_sequence(layer, what, x, features, batch_first):
    """x is (L, features) or, batched, (L, N, features) / (N, L, features)."""
    shape = tuple(x.shape)
    if len(shape) not in (2, 3) or shape[-1] != features:
        raise errors.ShapeError("%s '%s': %s must be %s or, unbatched, (L, %d); got %s"
                                % (type(layer).__name__, scoped_name(layer), what,
                                   _layout(batch_first, features), features, fmt_shape(shape)))


def _additive(mask, what, scores, owner):
    """A torch mask as numbers to add to the scores: bool True -> -1e9, floats as they are."""
    dtype = scores.dtype
    if not hasattr(mask, "symbolic"):
        arr = np.asarray(mask)
        if arr.dtype == np.bool_:
            arr = np.where(arr, _MASKED, 0.0)
        elif arr.dtype.kind != "f":
            raise errors.DTypeError("%s: %s must be bool or float, got %s"
                                    % (owner, what, arr.dtype))
        return constant_like(arr.astype(dtype.np), scores)
    if mask.dtype.name == "bool":
        return ops.cast(mask, dtype) * _MASKED
    if not mask.dtype.is_float:
        raise errors.DTypeError("%s: %s must be bool or float, got %s"
                                % (owner, what, mask.dtype.name))
    return mask if mask.dtype is dtype else ops.cast(mask, dtype)


@register_layer
class MultiheadAttention(Module):
    """torch.nn.MultiheadAttention(embed_dim, num_heads, dropout=0.0, bias=True,
    add_bias_kv=False, add_zero_attn=False, kdim=None, vdim=None, batch_first=False).

    forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
    average_attn_weights=True, is_causal=False) -> (output, weights or None): query (L, N, E)
    ((N, L, E) with batch_first, (L, E) unbatched), key (S, N, kdim), value (S, N, vdim);
    key_padding_mask (N, S), attn_mask (L, S) or (N * num_heads, L, S); weights (N, L, S)
    averaged over the heads, or (N, num_heads, L, S). Dropout on the attention weights while
    training. (pyfront.nn.MultiHeadAttention is the Keras-style layer.)
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False,
                 add_zero_attn=False, kdim=None, vdim=None, batch_first=False, *, device=None,
                 dtype=None, name=None):
        positive_int("MultiheadAttention", "embed_dim", embed_dim)
        positive_int("MultiheadAttention", "num_heads", num_heads)
        for what, v in (("kdim", kdim), ("vdim", vdim)):
            if v is not None:
                positive_int("MultiheadAttention", what, v)
        if embed_dim % num_heads:
            raise ValueError("MultiheadAttention: embed_dim=%d is not divisible by "
                             "num_heads=%d" % (embed_dim, num_heads))
        super().__init__(name)
        e = self.embed_dim = embed_dim
        self.num_heads, self.head_dim = num_heads, embed_dim // num_heads
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self._qkv_same_embed_dim = self.kdim == e and self.vdim == e
        self.batch_first = bool(batch_first)
        self.add_zero_attn = bool(add_zero_attn)
        self.in_proj_weight = self.q_proj_weight = self.k_proj_weight = None
        self.v_proj_weight = self.in_proj_bias = self.bias_k = self.bias_v = None
        # torch's draws: xavier_uniform projections, zero biases, xavier_normal bias_k / bias_v
        shapes = {"in_proj_weight": (3 * e, e)} if self._qkv_same_embed_dim else \
            {"q_proj_weight": (e, e), "k_proj_weight": (e, self.kdim),
             "v_proj_weight": (e, self.vdim)}
        for key, shape in shapes.items():
            setattr(self, key, Parameter(init="glorot_uniform"))
            getattr(self, key).materialize(shape)
        if bias:
            self.in_proj_bias = Parameter(init="zeros")
            self.in_proj_bias.materialize((3 * e,))
        if add_bias_kv:
            for key in ("bias_k", "bias_v"):
                setattr(self, key, Parameter(init="glorot_normal", conv_layout=True))
                getattr(self, key).materialize((1, 1, e))
        self.out_proj = _Linear(e, e, bias, zero_bias=True, name="out_proj")
        self.dropout = dropout
        self.built = True
        place(self, device, dtype)

    @property
    def dropout(self):
        """The dropout rate of the attention weights (torch's attribute)."""
        return self._dropout

    @dropout.setter
    def dropout(self, rate):
        try:
            self._dropout = check_rate(rate)
        except ValueError as e:
            raise ValueError("%s: %s" % (self.name, e)) from None
        # the generator state exists only where there is dropout, so that a layer without
        # it has exactly torch's state_dict
        if self._dropout > 0 and vars(self).get("rng_state") is None:
            state = new_state()
            state.name = "%s/rng_state" % self.name
            self.register_buffer("rng_state", state)

    def _label(self):
        return "MultiheadAttention '%s'" % scoped_name(self)

    def _check_inputs(self, query, key, value):
        """Whether the inputs are batched; errors name the layer and the shapes."""
        qs, ks, vs = (tuple(t.shape) for t in (query, key, value))
        rank = len(qs)
        ok = rank in (2, 3) and len(ks) == len(vs) == rank
        ok = ok and qs[-1] == self.embed_dim and ks[-1] == self.kdim and vs[-1] == self.vdim
        ok = ok and _fits(ks[:-1], vs[:-1])
        if ok and rank == 3:
            axis = 0 if self.batch_first else 1
            ok = _fits(qs[axis:axis + 1], ks[axis:axis + 1])
        if not ok:
            raise errors.ShapeError(
                "%s: expected query %s, key %s and value %s with the same batch (or, "
                "unbatched, (L, %d), (S, %d), (S, %d)); got query %s, key %s, value %s"
                % (self._label(), _layout(self.batch_first, self.embed_dim),
                   _layout(self.batch_first, self.kdim).replace("L", "S"),
                   _layout(self.batch_first, self.vdim).replace("L", "S"), self.embed_dim,
                   self.kdim, self.vdim, fmt_shape(qs), fmt_shape(ks), fmt_shape(vs)))
        return rank == 3

    def _project(self, query, key, value, self_attention):
        """The in-projections (N, length, E) of query, key and value."""
        e, w, b = self.embed_dim, self.in_proj_weight, self.in_proj_bias
        if self_attention and w is not None:       # one product for the three, as torch's
            return ops.split(ops.linear(query, ops.transpose(w), b), e, axis=-1)
        if w is not None:
            weights = (w[:e], w[e:2 * e], w[2 * e:])
        else:
            weights = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)
        biases = (None,) * 3 if b is None else (b[:e], b[e:2 * e], b[2 * e:])
        return [ops.linear(x, ops.transpose(wi), bi)
                for x, wi, bi in zip((query, key, value), weights, biases)]

    def _heads(self, x):
        """(N, length, E) -> (N, heads, length, head_dim)"""
        n, length = x.shape[:2]
        x = known_reshape(x, (n, length, self.num_heads, self.head_dim), self._label())
        return ops.permute(x, (0, 2, 1, 3))

    def _mask_bias(self, attn_mask, key_padding_mask, batched, scores):
        """The masks as one additive bias broadcastable to the scores (N, heads, L, S)."""
        n, h, lq, ls = scores.shape
        bias = None
        if key_padding_mask is not None:
            m = _additive(key_padding_mask, "key_padding_mask", scores, self._label())
            want = (n, ls) if batched else (ls,)
            if not _fits(tuple(m.shape), want):
                raise errors.ShapeError("%s: key_padding_mask must be %s, got %s"
                                        % (self._label(), fmt_shape(want), fmt_shape(m.shape)))
            bias = ops.expand_dims(ops.expand_dims(m, -2), -2)     # (N, 1, 1, S)
        if attn_mask is not None:
            m = _additive(attn_mask, "attn_mask", scores, self._label())
            shape = tuple(m.shape)
            per_head = (None if n is None else n * h, lq, ls) if batched else (h, lq, ls)
            if _fits(shape, (lq, ls)):
                m = ops.expand_dims(ops.expand_dims(m, 0), 0)
            elif _fits(shape, per_head):
                m = known_reshape(m, (n, h, lq, ls), self._label())
            else:
                raise errors.ShapeError("%s: attn_mask must be %s or %s, got %s"
                                        % (self._label(), fmt_shape((lq, ls)),
                                           fmt_shape(per_head), fmt_shape(shape)))
            bias = m if bias is None else bias + m
        return bias

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True,
                attn_mask=None, average_attn_weights=True, is_causal=False):
        self_attention = query is key and key is value
        query, key, value = (as_operand(t) for t in (query, key, value))
        batched = self._check_inputs(query, key, value)
        if is_causal and attn_mask is None:
            raise errors.PyfrontError(
                "%s: is_causal is a hint that attn_mask is the causal mask, and needs that "
                "mask: pass attn_mask=Transformer.generate_square_subsequent_mask(L)"
                % self._label())
        # computed batch-first: (N, length, features)
        if not batched:
            query, key, value = (ops.expand_dims(t, 0) for t in (query, key, value))
        elif not self.batch_first:
            query, key, value = (ops.permute(t, (1, 0, 2)) for t in (query, key, value))
        q, k, v = self._project(query, key, value, self_attention)
        # torch scales the queries before the product
        q = self._heads(q) * math.sqrt(1.0 / self.head_dim)
        k, v = self._heads(k), self._heads(v)
        scores = ops.matmul(q, k, transpose_b=True)                  # (N, heads, L, S)
        ls = scores.shape[-1]
        bias = self._mask_bias(attn_mask, key_padding_mask, batched, scores)
        # torch's extra keys, appended after the S real ones: bias_k (value bias_v) and a
        # zero key (value zero); the masks let every query attend to them
        extra = 0
        if self.bias_k is not None:
            bias_k = ops.reshape(self.bias_k, (1, self.num_heads, 1, self.head_dim))
            scores = ops.concat([scores, ops.matmul(q, bias_k, transpose_b=True)], axis=-1)
            extra += 1
        if self.add_zero_attn:
            scores = ops.pad(scores, (0, 1))
            extra += 1
        if bias is not None:
            scores = scores + (ops.pad(bias, (0, extra)) if extra else bias)
        weights = ops.softmax(scores, -1)
        if self.training and self.dropout > 0:
            weights = ops.dropout(weights, self.dropout, True, self.rng_state)
        out = ops.matmul(weights[..., :ls] if extra else weights, v)   # (N, heads, L, hd)
        if self.bias_v is not None:
            bias_v = ops.reshape(self.bias_v, (1, self.num_heads, 1, self.head_dim))
            out = out + weights[..., ls:ls + 1] * bias_v
        n, lq = query.shape[:2]
        out = known_reshape(ops.permute(out, (0, 2, 1, 3)), (n, lq, self.embed_dim),
                            self._label())
        out = self.out_proj(out)
        if not batched:
            out = ops.squeeze(out, 0)
        elif not self.batch_first:
            out = ops.permute(out, (1, 0, 2))
        if not need_weights:
            return out, None
        if average_attn_weights:
            weights = ops.mean(weights, axis=1)
        return out, weights if batched else ops.squeeze(weights, 0)

    def get_config(self):
        return {"embed_dim": self.embed_dim, "num_heads": self.num_heads,
                "dropout": self.dropout, "bias": self.in_proj_bias is not None,
                "add_bias_kv": self.bias_k is not None, "add_zero_attn": self.add_zero_attn,
                "kdim": self.kdim, "vdim": self.vdim, "batch_first": self.batch_first,
                "name": self.name}


def _activation(owner, activation):
    if isinstance(activation, str):
        if activation not in ("relu", "gelu"):
            raise ValueError("%s: activation should be 'relu', 'gelu' or a callable, got %r"
                             % (owner, activation))
    elif not callable(activation):
        raise TypeError("%s: activation should be 'relu', 'gelu' or a callable, got %r"
                        % (owner, activation))
    return activation


class _TransformerLayer(Module):
    """Shared by the encoder and decoder layers: the self-attention and feed-forward blocks,
    checks, config."""

    def _setup(self, d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
               batch_first, norm_first, bias):
        owner = type(self).__name__
        for what, v in (("d_model", d_model), ("nhead", nhead),
                        ("dim_feedforward", dim_feedforward)):
            positive_int(owner, what, v)
        self.d_model, self.nhead, self.dim_feedforward = d_model, nhead, dim_feedforward
        self.dropout_rate, self.layer_norm_eps = check_rate(dropout), float(layer_norm_eps)
        self.batch_first, self.norm_first = bool(batch_first), bool(norm_first)
        self.bias = bool(bias)
        self.self_attn = MultiheadAttention(d_model, nhead, dropout, bias,
                                            batch_first=batch_first, name="self_attn")

    def _feed_forward_layers(self, d_model, dim_feedforward, dropout, layer_norm_eps, bias,
                             norms):
        """torch's registration order after the attention: linear1, dropout, linear2, norms,
        then the residual dropouts (what a state_dict lists in order)."""
        self.linear1 = _Linear(d_model, dim_feedforward, bias, name="linear1")
        self.dropout = Dropout(dropout, name="dropout")
        self.linear2 = _Linear(dim_feedforward, d_model, bias, name="linear2")
        for i in range(1, norms + 1):
            setattr(self, "norm%d" % i, _LayerNorm(d_model, layer_norm_eps, bias,
                                                   name="norm%d" % i))
        for i in range(1, norms + 1):
            setattr(self, "dropout%d" % i, Dropout(dropout, name="dropout%d" % i))

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        y = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           need_weights=False, is_causal=is_causal)[0]
        return self.dropout1(y)

    def _ff_block(self, x, out_dropout):
        act = self.activation
        if not isinstance(act, str):
            h = act(self.linear1(x))
        elif act == "relu":
            h = self.linear1(x, "relu")      # fused into the product
        else:
            h = ops.gelu(self.linear1(x))
        return out_dropout(self.linear2(self.dropout(h)))

    def _check(self, what, x):
        x = as_operand(x)
        _check_sequence(self, what, x, self.d_model, self.batch_first)
        return x

    def get_config(self):
        if not isinstance(self.activation, str):
            return None
        return {"d_model": self.d_model, "nhead": self.nhead,
                "dim_feedforward": self.dim_feedforward, "dropout": self.dropout_rate,
                "activation": self.activation, "layer_norm_eps": self.layer_norm_eps,
                "batch_first": self.batch_first, "norm_first": self.norm_first,
                "bias": self.bias, "name": self.name}


@register_layer
class TransformerEncoderLayer(_TransformerLayer):
    """torch.nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward=2048, dropout=0.1,
    activation="relu", layer_norm_eps=1e-5, batch_first=False, norm_first=False, bias=True):
    self-attention then a feed-forward block, each with dropout, a residual connection and
    layer normalisation (after, or before with norm_first). activation: "relu", "gelu" or a
    callable. forward(src, src_mask=None, src_key_padding_mask=None, is_causal=False)."""

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu",
                 layer_norm_eps=1e-5, batch_first=False, norm_first=False, bias=True, *,
                 device=None, dtype=None, name=None):
        super().__init__(name)
        self._setup(d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
                    batch_first, norm_first, bias)
        self._feed_forward_layers(d_model, dim_feedforward, dropout, layer_norm_eps, bias, 2)
        self.activation = _activation("TransformerEncoderLayer", activation)
        self.built = True
        place(self, device, dtype)

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal=False):
        x = self._check("src", src)
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + self._ff_block(self.norm2(x), self.dropout2)
        x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self._ff_block(x, self.dropout2))


@register_layer
class TransformerDecoderLayer(_TransformerLayer):
    """torch.nn.TransformerDecoderLayer(d_model, nhead, dim_feedforward=2048, dropout=0.1,
    activation="relu", layer_norm_eps=1e-5, batch_first=False, norm_first=False, bias=True):
    self-attention, attention over the encoder's output (memory) and a feed-forward block.
    forward(tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
    memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False)."""

    def __init__(self, d_model, nhead, dim_feedforward=2048, dropout=0.1, activation="relu",
                 layer_norm_eps=1e-5, batch_first=False, norm_first=False, bias=True, *,
                 device=None, dtype=None, name=None):
        super().__init__(name)
        self._setup(d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
                    batch_first, norm_first, bias)
        self.multihead_attn = MultiheadAttention(d_model, nhead, dropout, bias,
                                                 batch_first=batch_first, name="multihead_attn")
        self._feed_forward_layers(d_model, dim_feedforward, dropout, layer_norm_eps, bias, 3)
        self.activation = _activation("TransformerDecoderLayer", activation)
        self.built = True
        place(self, device, dtype)

    def _mha_block(self, x, memory, attn_mask, key_padding_mask, is_causal):
        y = self.multihead_attn(x, memory, memory, attn_mask=attn_mask,
                                key_padding_mask=key_padding_mask, need_weights=False,
                                is_causal=is_causal)[0]
        return self.dropout2(y)

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=False, memory_is_causal=False):
        x, memory = self._check("tgt", tgt), self._check("memory", memory)
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask,
                                   tgt_is_causal)
            x = x + self._mha_block(self.norm2(x), memory, memory_mask,
                                    memory_key_padding_mask, memory_is_causal)
            return x + self._ff_block(self.norm3(x), self.dropout3)
        x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
        x = self.norm2(x + self._mha_block(x, memory, memory_mask, memory_key_padding_mask,
                                           memory_is_causal))
        return self.norm3(x + self._ff_block(x, self.dropout3))


def _clones(layer, n):
    """n deep copies of layer, as torch's _get_clones: the same initial values, parameters of
    their own. Their dropout generators get new seeds: a copy would draw its original's masks
    (torch's copies share the one global generator)."""
    copies = []
    for i in range(n):
        clone = copy.deepcopy(layer)
        clone.name = "layers.%d" % i
        for m in clone.modules():
            if isinstance(m, Dropout) or (isinstance(m, MultiheadAttention) and m.dropout > 0):
                state = new_state()
                state.name = "%s/rng_state" % m.name
                m.register_buffer("rng_state", state)
        copies.append(clone)
    return ModuleList(copies, name="layers")


def _item_config(module):
    """{"class", "config"} of a sub-layer for a container's config; None if it has none."""
    config = module.get_config()
    return None if config is None else {"class": type(module).__name__, "config": config}


def _from_item(item):
    return None if item is None else layer_class(item["class"]).from_config(item["config"])


class _Stack(Module):
    """Shared by TransformerEncoder and TransformerDecoder: copies of a layer, a final norm."""

    def _stack(self, layer, num_layers, norm):
        owner = type(self).__name__
        if not isinstance(layer, Module):
            raise TypeError("%s: the layer to copy must be a Module, got %r" % (owner, layer))
        if norm is not None and not isinstance(norm, Module):
            raise TypeError("%s: norm must be a Module or None, got %r" % (owner, norm))
        self.layers = _clones(layer, positive_int(owner, "num_layers", num_layers))
        self.num_layers = num_layers
        self.norm = norm
        self.built = True

    def _config(self, key):
        layer = _item_config(self.layers[0])
        norm = None if self.norm is None else _item_config(self.norm)
        if layer is None or (self.norm is not None and norm is None):
            return None
        return {key: layer, "num_layers": self.num_layers, "norm": norm, "name": self.name}


@register_layer
class TransformerEncoder(_Stack):
    """torch.nn.TransformerEncoder(encoder_layer, num_layers, norm=None): num_layers deep
    copies of encoder_layer (the same initial values, parameters of their own), then norm.
    forward(src, mask=None, src_key_padding_mask=None, is_causal=None). enable_nested_tensor
    and mask_check choose torch's inference fast path; they are kept and change nothing."""

    def __init__(self, encoder_layer, num_layers, norm=None, enable_nested_tensor=True,
                 mask_check=True, *, name=None):
        super().__init__(name)
        self._stack(encoder_layer, num_layers, norm)
        self.enable_nested_tensor, self.mask_check = bool(enable_nested_tensor), bool(mask_check)

    def forward(self, src, mask=None, src_key_padding_mask=None, is_causal=None):
        out = src
        for layer in self.layers:
            out = layer(out, src_mask=mask, src_key_padding_mask=src_key_padding_mask,
                        is_causal=is_causal is True)
        return out if self.norm is None else self.norm(out)

    def get_config(self):
        config = self._config("encoder_layer")
        if config is not None:
            config.update(enable_nested_tensor=self.enable_nested_tensor,
                          mask_check=self.mask_check)
        return config

    @classmethod
    def from_config(cls, config):
        return cls(_from_item(config["encoder_layer"]), config["num_layers"],
                   _from_item(config.get("norm")), config.get("enable_nested_tensor", True),
                   config.get("mask_check", True), name=config.get("name"))


@register_layer
class TransformerDecoder(_Stack):
    """torch.nn.TransformerDecoder(decoder_layer, num_layers, norm=None): num_layers deep
    copies of decoder_layer, then norm. forward(tgt, memory, tgt_mask=None, memory_mask=None,
    tgt_key_padding_mask=None, memory_key_padding_mask=None, tgt_is_causal=None,
    memory_is_causal=False)."""

    def __init__(self, decoder_layer, num_layers, norm=None, *, name=None):
        super().__init__(name)
        self._stack(decoder_layer, num_layers, norm)

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal=None, memory_is_causal=False):
        out = tgt
        for layer in self.layers:
            out = layer(out, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                        tgt_key_padding_mask=tgt_key_padding_mask,
                        memory_key_padding_mask=memory_key_padding_mask,
                        tgt_is_causal=tgt_is_causal is True, memory_is_causal=memory_is_causal)
        return out if self.norm is None else self.norm(out)

    def get_config(self):
        return self._config("decoder_layer")

    @classmethod
    def from_config(cls, config):
        return cls(_from_item(config["decoder_layer"]), config["num_layers"],
                   _from_item(config.get("norm")), name=config.get("name"))


@register_layer
class Transformer(Module):
    """torch.nn.Transformer(d_model=512, nhead=8, num_encoder_layers=6, num_decoder_layers=6,
    dim_feedforward=2048, dropout=0.1, activation="relu", custom_encoder=None,
    custom_decoder=None, layer_norm_eps=1e-5, batch_first=False, norm_first=False, bias=True):
    an encoder and a decoder stack, each ending in a layer norm; every parameter of more than
    one dim drawn xavier-uniform, as torch's. forward(src, tgt, src_mask=None, tgt_mask=None,
    memory_mask=None, src_key_padding_mask=None, tgt_key_padding_mask=None,
    memory_key_padding_mask=None, src_is_causal=None, tgt_is_causal=None,
    memory_is_causal=False) -> the decoder's output."""

    def __init__(self, d_model=512, nhead=8, num_encoder_layers=6, num_decoder_layers=6,
                 dim_feedforward=2048, dropout=0.1, activation="relu", custom_encoder=None,
                 custom_decoder=None, layer_norm_eps=1e-5, batch_first=False, norm_first=False,
                 bias=True, *, device=None, dtype=None, name=None):
        super().__init__(name)
        args = (d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
                batch_first, norm_first, bias)
        self._custom = custom_encoder is not None or custom_decoder is not None
        if custom_encoder is None:
            custom_encoder = TransformerEncoder(
                TransformerEncoderLayer(*args, name="layer"), num_encoder_layers,
                _LayerNorm(d_model, layer_norm_eps, bias, name="norm"), name="encoder")
        if custom_decoder is None:
            custom_decoder = TransformerDecoder(
                TransformerDecoderLayer(*args, name="layer"), num_decoder_layers,
                _LayerNorm(d_model, layer_norm_eps, bias, name="norm"), name="decoder")
        self.encoder, self.decoder = custom_encoder, custom_decoder
        self.d_model, self.nhead, self.batch_first = d_model, nhead, bool(batch_first)
        self._args = dict(num_encoder_layers=num_encoder_layers,
                          num_decoder_layers=num_decoder_layers,
                          dim_feedforward=dim_feedforward, dropout=dropout,
                          activation=activation, layer_norm_eps=layer_norm_eps,
                          norm_first=norm_first, bias=bias)
        for p in self.parameters():          # torch's _reset_parameters
            if p.initialized and len(p.shape) > 1:
                initializers.xavier_uniform_(p)
        self.built = True
        place(self, device, dtype)

    @staticmethod
    def generate_square_subsequent_mask(sz, device=None, dtype=None):
        """The causal mask (sz, sz): -inf above the diagonal (a key after the query), 0 on
        and below it."""
        mask = tensor(np.triu(np.full((sz, sz), -np.inf), 1), dtype=dtype or "float32")
        return mask if device is None else mask.to(device)

    def forward(self, src, tgt, src_mask=None, tgt_mask=None, memory_mask=None,
                src_key_padding_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, src_is_causal=None, tgt_is_causal=None,
                memory_is_causal=False):
        src, tgt = as_operand(src), as_operand(tgt)
        for what, x in (("src", src), ("tgt", tgt)):
            _check_sequence(self, what, x, self.d_model, self.batch_first)
        s, t = tuple(src.shape), tuple(tgt.shape)
        axis = 0 if self.batch_first else 1
        if len(s) != len(t) or (len(s) == 3 and not _fits(s[axis:axis + 1], t[axis:axis + 1])):
            raise errors.ShapeError("Transformer '%s': src and tgt must have the same batch, "
                                    "got src %s and tgt %s" % (scoped_name(self),
                                                               fmt_shape(s), fmt_shape(t)))
        memory = self.encoder(src, mask=src_mask, src_key_padding_mask=src_key_padding_mask,
                              is_causal=src_is_causal)
        return self.decoder(tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                            tgt_key_padding_mask=tgt_key_padding_mask,
                            memory_key_padding_mask=memory_key_padding_mask,
                            tgt_is_causal=tgt_is_causal, memory_is_causal=memory_is_causal)

    def get_config(self):
        if self._custom or not isinstance(self._args["activation"], str):
            return None
        return dict(self._args, d_model=self.d_model, nhead=self.nhead,
                    batch_first=self.batch_first, name=self.name)
