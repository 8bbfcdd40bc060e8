"""Layers that change a tensor's shape: Flatten, Reshape, ZeroPadding1D/2D/3D and
UpSampling1D/2D/3D."""
import math

from .. import errors, ops
from ..ops import pooling as pool_ops
from ..ops import shape as shape_ops
from ..ops.conv import SPATIAL_DIMS
from ..ops.core import as_operand, fmt_shape
from .module import Module, register_layer

__all__ = ["Identity", "Flatten", "Reshape", "UpSampling1D", "UpSampling2D", "UpSampling3D", "ZeroPadding1D",
           "ZeroPadding2D", "ZeroPadding3D"]


@register_layer
class Identity(Module):
    """Its input, unchanged (a placeholder where a model takes an optional layer)."""

    def forward(self, x):
        return x

    def get_config(self):
        return {"name": self.name}


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


_LINEAR = {1: "linear", 2: "bilinear", 3: "trilinear"}


def _check_rank(layer, x):
    if len(x.shape) != layer.nd + 2:
        raise errors.ShapeError("%s '%s' takes (batch, channels, %s) inputs with %d dims, got "
                                "shape %s" % (type(layer).__name__, layer.name,
                                              SPATIAL_DIMS[layer.nd], layer.nd + 2,
                                              tuple(x.shape)))


class _UpSampling(Module):
    nd = None

    def __init__(self, size=2, interpolation="nearest", align_corners=False, name=None):
        super().__init__(name)
        if isinstance(size, (int, float)) and not isinstance(size, bool):
            size = (size,) * self.nd
        self.size = tuple(size)
        if len(self.size) != self.nd or any(s <= 0 for s in self.size):
            raise ValueError("%s: size must be a positive factor or %d of them, got %r"
                             % (type(self).__name__, self.nd, size))
        if interpolation not in ("nearest", "linear", "bilinear", "trilinear"):
            raise ValueError("%s: interpolation must be 'nearest' or 'linear' ('bilinear', "
                             "'trilinear'), got %r" % (type(self).__name__, interpolation))
        self.interpolation = interpolation
        self.align_corners = bool(align_corners)

    def forward(self, x):
        _check_rank(self, x)
        mode = "nearest" if self.interpolation == "nearest" else _LINEAR[self.nd]
        return pool_ops.interpolate(x, scale_factor=self.size, mode=mode,
                                    align_corners=self.align_corners if mode != "nearest"
                                    else None)

    def get_config(self):
        return {"size": list(self.size), "interpolation": self.interpolation,
                "align_corners": self.align_corners, "name": self.name}


@register_layer
class UpSampling1D(_UpSampling):
    """(batch, channels, length) enlarged by `size` (Keras' UpSampling1D; interpolation
    "nearest" or "linear", PyTorch's Upsample rules)."""

    nd = 1


@register_layer
class UpSampling2D(_UpSampling):
    """(batch, channels, height, width) enlarged by `size` (an int or a pair); interpolation
    "nearest" or "bilinear"."""

    nd = 2


@register_layer
class UpSampling3D(_UpSampling):
    """(batch, channels, depth, height, width) enlarged by `size`; "nearest" or "trilinear"."""

    nd = 3


class _ZeroPadding(Module):
    nd = None

    def __init__(self, padding=1, name=None):
        super().__init__(name)
        items = (padding,) * self.nd if isinstance(padding, int) else tuple(padding)
        if self.nd == 1 and len(items) == 2 and all(isinstance(v, int) for v in items):
            items = (items,)                  # Keras' ZeroPadding1D((begin, end))
        pairs = tuple((p, p) if isinstance(p, int) else tuple(p) for p in items)
        if len(pairs) != self.nd or any(len(p) != 2 or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in p)
                for p in pairs):
            raise ValueError("%s: padding must be an int, %d ints or %d (begin, end) pairs, got "
                             "%r" % (type(self).__name__, self.nd, self.nd, padding))
        self.padding = pairs

    def forward(self, x):
        _check_rank(self, x)
        return shape_ops.pad(x, ((0, 0), (0, 0)) + self.padding)

    def get_config(self):
        return {"padding": [list(p) for p in self.padding], "name": self.name}


@register_layer
class ZeroPadding1D(_ZeroPadding):
    """Zeros added at both ends of (batch, channels, length): padding an int or a pair."""

    nd = 1


@register_layer
class ZeroPadding2D(_ZeroPadding):
    """Zeros around (batch, channels, height, width): an int, (rows, cols) or
    ((top, bottom), (left, right)) as Keras."""

    nd = 2


@register_layer
class ZeroPadding3D(_ZeroPadding):
    """Zeros around (batch, channels, depth, height, width); padding as ZeroPadding2D."""

    nd = 3
