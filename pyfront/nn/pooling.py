"""Pooling layers, channels first: MaxPool1D/2D/3D, AvgPool1D/2D/3D, the global average and
max poolings over all spatial dims, and AdaptiveAvgPool1D/2D/3D."""
from .. import errors
from ..ops import pooling as pool_ops
from ..ops.conv import SPATIAL_DIMS
from .module import Module, register_layer, torch_aliases

__all__ = ["MaxPool1D", "MaxPool2D", "MaxPool3D", "AvgPool1D", "AvgPool2D", "AvgPool3D",
           "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalAvgPool3D", "GlobalMaxPool1D",
           "GlobalMaxPool2D", "GlobalMaxPool3D", "AdaptiveAvgPool1D", "AdaptiveAvgPool2D",
           "AdaptiveAvgPool3D"]


class _Pool(Module):
    nd = None
    kind = None

    def __init__(self, pool_size=2, strides=None, padding="valid", ceil_mode=False, name=None):
        super().__init__(name)
        attrs = pool_ops.pool_attrs(self.nd, pool_size, strides, padding, type(self).__name__)
        self.pool_size = attrs["pool_size"]
        self.strides = attrs["strides"]
        self.padding = attrs["padding"]
        self.ceil_mode = bool(ceil_mode)

    def get_config(self):
        padding = self.padding if isinstance(self.padding, str) else \
            [list(p) for p in self.padding]
        return {"pool_size": list(self.pool_size), "strides": list(self.strides),
                "padding": padding, "ceil_mode": self.ceil_mode, "name": self.name}


@torch_aliases(kernel_size="pool_size", stride="strides")
class _MaxPool(_Pool):
    # PyTorch's positional order: kernel_size, stride, padding, dilation, return_indices,
    # ceil_mode
    def __init__(self, pool_size=2, strides=None, padding="valid", dilation=1,
                 return_indices=False, ceil_mode=False, name=None):
        if return_indices:
            raise ValueError("%s: return_indices=True is not supported (no max-pool op gives "
                             "the argmax indices)" % type(self).__name__)
        super().__init__(pool_size, strides, padding, ceil_mode, name)
        self.dilation = pool_ops.int_tuple(dilation, self.nd, type(self).__name__ + ": dilation")

    def forward(self, x):
        return pool_ops._max_pool(self.nd, x, self.pool_size, self.strides, self.padding,
                                  self.dilation, self.ceil_mode)

    def get_config(self):
        return dict(super().get_config(), dilation=list(self.dilation))


@torch_aliases(kernel_size="pool_size", stride="strides")
class _AvgPool(_Pool):
    # PyTorch's positional order: kernel_size, stride, padding, ceil_mode, count_include_pad,
    # divisor_override
    def __init__(self, pool_size=2, strides=None, padding="valid", ceil_mode=False,
                 count_include_pad=True, divisor_override=None, name=None):
        if divisor_override is not None:
            raise ValueError("%s: divisor_override is not supported" % type(self).__name__)
        super().__init__(pool_size, strides, padding, ceil_mode, name)
        self.count_include_pad = bool(count_include_pad)

    def forward(self, x):
        return pool_ops._avg_pool(self.nd, x, self.pool_size, self.strides, self.padding,
                                  self.count_include_pad, self.ceil_mode)

    def get_config(self):
        return dict(super().get_config(), count_include_pad=self.count_include_pad)


@register_layer
class MaxPool1D(_MaxPool):
    """Max over windows of (batch, channels, length): MaxPool1D(pool_size=2, strides=None
    (= pool_size), padding="valid" | "same" | int | (begin, end) pairs, dilation=1,
    return_indices=False, ceil_mode=False (PyTorch's: a last, partial window is kept)), in
    torch.nn.MaxPool1d's positional order, kernel_size= and stride= accepted; integer inputs
    work."""

    nd = 1


@register_layer
class MaxPool2D(_MaxPool):
    """Max over windows of (batch, channels, height, width); arguments as MaxPool1D."""

    nd = 2


@register_layer
class MaxPool3D(_MaxPool):
    """Max over windows of (batch, channels, depth, height, width); arguments as MaxPool1D."""

    nd = 3


@register_layer
class AvgPool1D(_AvgPool):
    """Mean over windows of (batch, channels, length): AvgPool1D(pool_size=2, strides=None,
    padding="valid", ceil_mode=False, count_include_pad=True), torch.nn.AvgPool1d's
    positional order; count_include_pad True (PyTorch's default: padding counts as zeros) or
    False (windows average only their part inside the input, as Keras' "same")."""

    nd = 1


@register_layer
class AvgPool2D(_AvgPool):
    """Mean over windows of (batch, channels, height, width); arguments as AvgPool1D."""

    nd = 2


@register_layer
class AvgPool3D(_AvgPool):
    """Mean over windows of (batch, channels, depth, height, width); arguments as AvgPool1D."""

    nd = 3


class _GlobalPool(Module):
    nd = None
    reduce = None

    def __init__(self, keepdims=False, name=None):
        super().__init__(name)
        self.keepdims = bool(keepdims)

    def forward(self, x):
        if len(x.shape) != self.nd + 2:
            raise errors.ShapeError("%s '%s' takes (batch, channels, %s) inputs with %d dims, "
                                    "got shape %s" % (type(self).__name__, self.name,
                                                      SPATIAL_DIMS[self.nd], self.nd + 2,
                                                      tuple(x.shape)))
        return type(self).reduce(x, self.keepdims)

    def get_config(self):
        return {"keepdims": self.keepdims, "name": self.name}


def _global(cls_name, nd, reduce, what):
    doc = ("%s over every spatial dim: (batch, channels, %s) -> (batch, channels), or with "
           "keepdims=True (batch, channels%s)." % (what, SPATIAL_DIMS[nd], ", 1" * nd))
    cls = type(cls_name, (_GlobalPool,), {"nd": nd, "reduce": staticmethod(reduce),
                                          "__doc__": doc})
    return register_layer(cls)


GlobalAvgPool1D = _global("GlobalAvgPool1D", 1, pool_ops.global_avg_pool, "Mean")
GlobalAvgPool2D = _global("GlobalAvgPool2D", 2, pool_ops.global_avg_pool, "Mean")
GlobalAvgPool3D = _global("GlobalAvgPool3D", 3, pool_ops.global_avg_pool, "Mean")
GlobalMaxPool1D = _global("GlobalMaxPool1D", 1, pool_ops.global_max_pool, "Max")
GlobalMaxPool2D = _global("GlobalMaxPool2D", 2, pool_ops.global_max_pool, "Max")
GlobalMaxPool3D = _global("GlobalMaxPool3D", 3, pool_ops.global_max_pool, "Max")


class _AdaptiveAvgPool(Module):
    nd = None

    def __init__(self, output_size, name=None):
        super().__init__(name)
        sizes = (output_size,) * self.nd if isinstance(output_size, int) or output_size is None \
            else tuple(output_size)
        if len(sizes) != self.nd or any(
                s is not None and (isinstance(s, bool) or not isinstance(s, int) or s < 1)
                for s in sizes):
            raise ValueError("%s: output_size must be a positive int (or None: the input's "
                             "size) or %d of them, got %r" % (type(self).__name__, self.nd,
                                                              output_size))
        self.output_size = sizes

    def forward(self, x):
        fn = (pool_ops.adaptive_avg_pool1d, pool_ops.adaptive_avg_pool2d,
              pool_ops.adaptive_avg_pool3d)[self.nd - 1]
        return fn(x, self.output_size)

    def get_config(self):
        return {"output_size": list(self.output_size), "name": self.name}


@register_layer
class AdaptiveAvgPool1D(_AdaptiveAvgPool):
    """Mean over (batch, channels, length) windows chosen to give output_size positions
    (torch.nn.AdaptiveAvgPool1d)."""

    nd = 1


@register_layer
class AdaptiveAvgPool2D(_AdaptiveAvgPool):
    """Mean over (batch, channels, height, width) windows chosen to give output_size (an int,
    or a pair whose None entries keep the input's size), as torch.nn.AdaptiveAvgPool2d."""

    nd = 2


@register_layer
class AdaptiveAvgPool3D(_AdaptiveAvgPool):
    """Mean over (batch, channels, depth, height, width) windows chosen to give output_size,
    as torch.nn.AdaptiveAvgPool3d."""

    nd = 3
