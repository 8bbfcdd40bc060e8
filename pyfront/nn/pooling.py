"""Pooling layers, channels first: MaxPool1D/2D/3D, AvgPool1D/2D/3D and the global average and
max poolings over all spatial dims."""
from .. import errors
from ..ops import pooling as pool_ops
from ..ops.conv import SPATIAL_DIMS
from .module import Module, register_layer

__all__ = ["MaxPool1D", "MaxPool2D", "MaxPool3D", "AvgPool1D", "AvgPool2D", "AvgPool3D",
           "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalAvgPool3D", "GlobalMaxPool1D",
           "GlobalMaxPool2D", "GlobalMaxPool3D"]


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


class _MaxPool(_Pool):
    def __init__(self, pool_size=2, strides=None, padding="valid", dilation=1, ceil_mode=False,
                 name=None):
        super().__init__(pool_size, strides, padding, ceil_mode, name)
        self.dilation = pool_ops.int_tuple(dilation, self.nd, type(self).__name__ + ": dilation")

    def forward(self, x):
        return pool_ops._max_pool(self.nd, x, self.pool_size, self.strides, self.padding,
                                  self.dilation, self.ceil_mode)

    def get_config(self):
        return dict(super().get_config(), dilation=list(self.dilation))


class _AvgPool(_Pool):
    def __init__(self, pool_size=2, strides=None, padding="valid", count_include_pad=True,
                 ceil_mode=False, name=None):
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
    ceil_mode=False (PyTorch's: a last, partial window is kept)); integer inputs work."""

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
    """Mean over windows of (batch, channels, length); arguments as MaxPool1D, plus
    count_include_pad (True, PyTorch's default: padding counts as zeros; False: windows
    average only their part inside the input, as Keras' "same")."""

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
