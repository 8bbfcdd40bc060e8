"""More layers under torch.nn's names, each calling the op of torch.nn.functional's name:
adaptive max and power-average pooling, channel and alpha dropout, the pixel shuffles,
Unfold/Fold, RMSNorm, LocalResponseNorm and the padding layers (zero, constant, reflection,
replication, circular). Constructors take torch.nn's arguments in torch's order and keep them
as attributes of torch's names; a keyword-only `name` is pyfront's own."""
from .. import errors, ops
from ..dtypes import as_dtype
from ..ops.core import as_operand, fmt_shape
from ..ops.dropout import check_rate, new_state
from ..ops.normalization import normalized_shape_tuple
from .module import Module, Parameter, register_layer, torch_aliases

__all__ = ["AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "Dropout1d", "Dropout2d", "Dropout3d",
           "AlphaDropout", "PixelShuffle", "PixelUnshuffle", "Unfold", "Fold", "RMSNorm",
           "LPPool1d", "LPPool2d", "LocalResponseNorm",
           "ZeroPad1d", "ZeroPad2d", "ZeroPad3d", "ConstantPad1d", "ConstantPad2d",
           "ConstantPad3d", "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d",
           "ReplicationPad1d", "ReplicationPad2d", "ReplicationPad3d", "CircularPad1d",
           "CircularPad2d", "CircularPad3d"]


def _listed(value):
    """A size argument as its config holds it (JSON: lists, not tuples)."""
    return list(value) if isinstance(value, (tuple, list)) else value


def _check_rank(layer, x, ranks, what):
    if len(x.shape) not in ranks:
        raise errors.ShapeError("%s (%s): the input must be %s, got %s"
                                % (layer.name, type(layer).__name__, what, fmt_shape(x.shape)))


# ---- pooling -----------------------------------------------------------------------------------

class _AdaptiveMaxPool(Module):
    nd = None

    def __init__(self, output_size, return_indices=False, *, name=None):
        super().__init__(name)
        self.output_size = output_size
        self.return_indices = bool(return_indices)

    def forward(self, x):
        x = as_operand(x)
        _check_rank(self, x, (self.nd + 1, self.nd + 2), "(batch, channels, %d spatial) or "
                    "unbatched" % self.nd)
        pool = ops.adaptive_max_pool1d if self.nd == 1 else ops.adaptive_max_pool2d
        return pool(x, self.output_size, self.return_indices)

    def get_config(self):
        return {"output_size": _listed(self.output_size),
                "return_indices": self.return_indices, "name": self.name}


@register_layer
class AdaptiveMaxPool1d(_AdaptiveMaxPool):
    """torch.nn.AdaptiveMaxPool1d(output_size, return_indices=False): the max over PyTorch's
    adaptive bins of (batch, channels, length); with return_indices, (values, indices)."""

    nd = 1


@register_layer
class AdaptiveMaxPool2d(_AdaptiveMaxPool):
    """torch.nn.AdaptiveMaxPool2d(output_size, return_indices=False) over (batch, channels,
    height, width); output_size an int, or two (None keeps that dim)."""

    nd = 2


class _LPPool(Module):
    nd = None

    def __init__(self, norm_type, kernel_size, stride=None, ceil_mode=False, *, name=None):
        super().__init__(name)
        self.norm_type = float(norm_type)
        self.kernel_size = kernel_size
        self.stride = stride
        self.ceil_mode = bool(ceil_mode)

    def forward(self, x):
        pool = ops.lp_pool1d if self.nd == 1 else ops.lp_pool2d
        return pool(x, self.norm_type, self.kernel_size, self.stride, self.ceil_mode)

    def get_config(self):
        return {"norm_type": self.norm_type, "kernel_size": _listed(self.kernel_size),
                "stride": _listed(self.stride), "ceil_mode": self.ceil_mode, "name": self.name}


@register_layer
class LPPool1d(_LPPool):
    """torch.nn.LPPool1d(norm_type, kernel_size, stride=None, ceil_mode=False): the p-norm of
    each window of (batch, channels, length)."""

    nd = 1


@register_layer
class LPPool2d(_LPPool):
    """torch.nn.LPPool2d(norm_type, kernel_size, stride=None, ceil_mode=False) over (batch,
    channels, height, width)."""

    nd = 2


# ---- dropout -----------------------------------------------------------------------------------

class _StatefulDropout(Module):
    """Dropout's pattern: a rate, and a generator state buffer (seed, counter) that each call
    advances; the seed is `seed`, or drawn from pyfront.random.generator() when made."""

    def __init__(self, rate, inplace, seed, name):
        super().__init__(name)
        try:
            self.rate = check_rate(rate)
        except ValueError as e:
            raise ValueError("%s (%s): %s" % (self.name, type(self).__name__, e)) from None
        self.inplace = bool(inplace)
        self.seed = seed
        state = new_state(seed)
        state.name = "%s/rng_state" % self.name
        # optional: torch keeps its generator outside the model, so its state_dict has none
        self.register_buffer("rng_state", state, optional=True)

    @property
    def p(self):
        return self.rate

    def get_config(self):
        return {"rate": self.rate, "inplace": self.inplace, "seed": self.seed,
                "name": self.name}


def _channel_dropout(fn_name, doc):
    @torch_aliases(p="rate")
    class ChannelDropout(_StatefulDropout):
        def __init__(self, rate=0.5, inplace=False, seed=None, *, name=None):
            super().__init__(rate, inplace, seed, name)

        def forward(self, x):
            x = as_operand(x)
            if not self.training:
                return x
            return getattr(ops, fn_name)(x, self.rate, True, state=self.rng_state)

    name = "Dropout" + fn_name[-2:]
    ChannelDropout.__name__ = ChannelDropout.__qualname__ = name
    ChannelDropout.__doc__ = doc
    return register_layer(ChannelDropout)


Dropout1d = _channel_dropout("dropout1d", "torch.nn.Dropout1d(p=0.5, inplace=False): whole "
                             "channels of (batch, channels, length) zeroed in training, the "
                             "kept ones scaled by 1 / (1 - p). seed: as Dropout's.")
Dropout2d = _channel_dropout("dropout2d", "torch.nn.Dropout2d(p=0.5, inplace=False) over "
                             "(batch, channels, height, width); see Dropout1d.")
Dropout3d = _channel_dropout("dropout3d", "torch.nn.Dropout3d(p=0.5, inplace=False) over "
                             "(batch, channels, depth, height, width); see Dropout1d.")


@register_layer
@torch_aliases(p="rate")
class AlphaDropout(_StatefulDropout):
    """torch.nn.AlphaDropout(p=0.5, inplace=False): dropout that keeps SELU's zero mean and
    unit variance (pyfront.ops.alpha_dropout) in training; the identity in evaluation."""

    def __init__(self, rate=0.5, inplace=False, seed=None, *, name=None):
        super().__init__(rate, inplace, seed, name)

    def forward(self, x):
        return ops.alpha_dropout(x, self.rate, self.training, state=self.rng_state)


# ---- rearranging -------------------------------------------------------------------------------

@register_layer
class PixelShuffle(Module):
    """torch.nn.PixelShuffle(upscale_factor): (*, C * r^2, H, W) -> (*, C, H * r, W * r)."""

    def __init__(self, upscale_factor, *, name=None):
        super().__init__(name)
        self.upscale_factor = upscale_factor

    def forward(self, x):
        return ops.pixel_shuffle(x, self.upscale_factor)

    def get_config(self):
        return {"upscale_factor": self.upscale_factor, "name": self.name}


@register_layer
class PixelUnshuffle(Module):
    """torch.nn.PixelUnshuffle(downscale_factor): (*, C, H * r, W * r) -> (*, C * r^2, H, W)."""

    def __init__(self, downscale_factor, *, name=None):
        super().__init__(name)
        self.downscale_factor = downscale_factor

    def forward(self, x):
        return ops.pixel_unshuffle(x, self.downscale_factor)

    def get_config(self):
        return {"downscale_factor": self.downscale_factor, "name": self.name}


@register_layer
class Unfold(Module):
    """torch.nn.Unfold(kernel_size, dilation=1, padding=0, stride=1): sliding windows of
    (batch, channels, height, width) as columns (batch, channels * taps, windows)."""

    def __init__(self, kernel_size, dilation=1, padding=0, stride=1, *, name=None):
        super().__init__(name)
        self.kernel_size, self.dilation = kernel_size, dilation
        self.padding, self.stride = padding, stride

    def forward(self, x):
        return ops.unfold(x, self.kernel_size, self.dilation, self.padding, self.stride)

    def get_config(self):
        return {"kernel_size": _listed(self.kernel_size), "dilation": _listed(self.dilation),
                "padding": _listed(self.padding), "stride": _listed(self.stride),
                "name": self.name}


@register_layer
class Fold(Module):
    """torch.nn.Fold(output_size, kernel_size, dilation=1, padding=0, stride=1): Unfold's
    adjoint, columns summed back into (batch, channels, *output_size)."""

    def __init__(self, output_size, kernel_size, dilation=1, padding=0, stride=1, *,
                 name=None):
        super().__init__(name)
        self.output_size, self.kernel_size = output_size, kernel_size
        self.dilation, self.padding, self.stride = dilation, padding, stride

    def forward(self, x):
        return ops.fold(x, self.output_size, self.kernel_size, self.dilation, self.padding,
                        self.stride)

    def get_config(self):
        return {"output_size": _listed(self.output_size),
                "kernel_size": _listed(self.kernel_size), "dilation": _listed(self.dilation),
                "padding": _listed(self.padding), "stride": _listed(self.stride),
                "name": self.name}


# ---- normalization -----------------------------------------------------------------------------

@register_layer
class RMSNorm(Module):
    """torch.nn.RMSNorm(normalized_shape, eps=None, elementwise_affine=True, device=None,
    dtype=None): x / sqrt(mean(x^2) + eps) over the trailing dims normalized_shape, times a
    learned weight (ones at first) when elementwise_affine; eps None is the machine epsilon of
    the input's dtype. dtype: the weight's (saved); device: where it lives (not saved)."""

    def __init__(self, normalized_shape, eps=None, elementwise_affine=True, device=None,
                 dtype=None, *, name=None):
        super().__init__(name)
        try:
            self.normalized_shape = normalized_shape_tuple(normalized_shape)
        except (TypeError, ValueError) as e:
            raise type(e)("%s: %s" % (self.name, e)) from None
        if eps is not None and (isinstance(eps, bool) or not isinstance(eps, (int, float))
                                or not eps >= 0):
            raise ValueError("%s: eps must be a number >= 0 or None, got %r" % (self.name, eps))
        self.eps = None if eps is None else float(eps)
        self.elementwise_affine = bool(elementwise_affine)
        self._dtype = None if dtype is None else as_dtype(dtype).name
        if self.elementwise_affine:
            self.weight = Parameter(init="ones", dtype=self._dtype or "float32")
            self.weight.materialize(self.normalized_shape)
        else:
            self.weight = None
        self.built = True
        if device is not None:
            self.to(device)

    def forward(self, x):
        x = as_operand(x)
        k = len(self.normalized_shape)
        if len(x.shape) < k or tuple(x.shape[len(x.shape) - k:]) != self.normalized_shape:
            raise errors.ShapeError("%s (RMSNorm): the input's last %d dims must be %s, got %s"
                                    % (self.name, k, fmt_shape(self.normalized_shape),
                                       fmt_shape(x.shape)))
        return ops.rms_norm(x, self.normalized_shape, self.weight, self.eps)

    def get_config(self):
        return {"normalized_shape": list(self.normalized_shape), "eps": self.eps,
                "elementwise_affine": self.elementwise_affine, "dtype": self._dtype,
                "name": self.name}


@register_layer
class LocalResponseNorm(Module):
    """torch.nn.LocalResponseNorm(size, alpha=1e-4, beta=0.75, k=1.0): each value divided by
    (k + alpha * the mean of squares over `size` neighbouring channels)^beta."""

    def __init__(self, size, alpha=1e-4, beta=0.75, k=1.0, *, name=None):
        super().__init__(name)
        self.size, self.alpha, self.beta, self.k = size, float(alpha), float(beta), float(k)

    def forward(self, x):
        return ops.local_response_norm(x, self.size, self.alpha, self.beta, self.k)

    def get_config(self):
        return {"size": self.size, "alpha": self.alpha, "beta": self.beta, "k": self.k,
                "name": self.name}


# ---- padding -----------------------------------------------------------------------------------

class _Pad(Module):
    """torch.nn's padding layers: padding an int (every side) or 2 * nd ints, torch's order
    (left, right[, top, bottom[, front, back]]: the last dim first), applied to the last nd
    dims of a (batch, channels, *spatial) or unbatched (channels, *spatial) input."""

    nd = None
    mode = None

    def __init__(self, padding, value=0.0, name=None):
        super().__init__(name)
        count = 2 * self.nd
        sides = (padding,) * count if isinstance(padding, int) else tuple(padding)
        if len(sides) != count or any(isinstance(v, bool) or not isinstance(v, int)
                                      for v in sides):
            raise ValueError("%s (%s): padding must be an int or %d ints (the last dim first), "
                             "got %r" % (self.name, type(self).__name__, count, padding))
        if self.mode != "constant" and min(sides) < 0:
            raise ValueError("%s (%s): padding must not be negative in %s mode, got %r"
                             % (self.name, type(self).__name__, self.mode, padding))
        self.padding = sides
        self.value = float(value)

    def forward(self, x):
        x = as_operand(x)
        if self.mode == "constant":      # (torch's constant padding takes any rank)
            _check_rank(self, x, range(self.nd, 9), "at least %d-D" % self.nd)
        else:
            _check_rank(self, x, (self.nd + 1, self.nd + 2),
                        "(batch, channels, %d spatial) or unbatched" % self.nd)
        return ops.pad(x, self.padding, self.mode, self.value)

    def get_config(self):
        return {"padding": list(self.padding), "name": self.name}


_PAD_KINDS = {"Zero": ("constant", "zeros"), "Constant": ("constant", "`value`"),
              "Reflection": ("reflect", "the input reflected at its edges (not repeating them)"),
              "Replication": ("replicate", "the edge values repeated"),
              "Circular": ("circular", "the input wrapped around")}


def _pad_layer(kind, nd):
    """The class torch.nn names <kind>Pad<nd>d."""
    mode, fill = _PAD_KINDS[kind]
    cls_name = "%sPad%dd" % (kind, nd)
    if kind == "Constant":
        def __init__(self, padding, value, *, name=None):
            _Pad.__init__(self, padding, value, name)

        def get_config(self):
            return dict(_Pad.get_config(self), value=self.value)
    else:
        def __init__(self, padding, *, name=None):
            _Pad.__init__(self, padding, 0.0, name)

        get_config = _Pad.get_config
    __init__.__qualname__ = cls_name + ".__init__"
    doc = "torch.nn.%s(padding%s): pads the last %d dims with %s; padding an int or %d ints, " \
        "the last dim first." % (cls_name, ", value" if kind == "Constant" else "", nd, fill,
                                 2 * nd)
    return register_layer(type(cls_name, (_Pad,), {
        "nd": nd, "mode": mode, "__init__": __init__, "get_config": get_config,
        "__doc__": doc, "__module__": __name__}))


ZeroPad1d, ZeroPad2d, ZeroPad3d = (_pad_layer("Zero", nd) for nd in (1, 2, 3))
ConstantPad1d, ConstantPad2d, ConstantPad3d = (_pad_layer("Constant", nd) for nd in (1, 2, 3))
ReflectionPad1d, ReflectionPad2d, ReflectionPad3d = (_pad_layer("Reflection", nd)
                                                     for nd in (1, 2, 3))
ReplicationPad1d, ReplicationPad2d, ReplicationPad3d = (_pad_layer("Replication", nd)
                                                        for nd in (1, 2, 3))
CircularPad1d, CircularPad2d, CircularPad3d = (_pad_layer("Circular", nd) for nd in (1, 2, 3))
