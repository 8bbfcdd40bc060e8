"""Layers that change a tensor's shape: Flatten, Unflatten, Reshape, ZeroPadding1D/2D/3D,
UpSampling1D/2D/3D and PyTorch's Upsample."""
import math

from .. import errors, ops
from ..ops import pooling as pool_ops
from ..ops import shape as shape_ops
from ..ops.conv import SPATIAL_DIMS
from ..ops.core import as_operand, fmt_shape
from .module import Module, register_layer

__all__ = ["Identity", "Flatten", "Unflatten", "Reshape", "UpSampling1D", "UpSampling2D",
           "UpSampling3D", "Upsample", "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D"]


@register_layer
class Identity(Module):
    """Its input, unchanged (a placeholder where a model takes an optional layer)."""

    def forward(self, x):
        return x

    def get_config(self):
        return {"name": self.name}


@register_layer
class Flatten(Module):
    """Collapse the dims start_dim..end_dim (inclusive) into one, as torch.nn.Flatten:
    (N, C, H, W) -> (N, C*H*W) by default. One dim may be unknown (the batch); the other
    collapsed ones must be known."""

    def __init__(self, start_dim=1, end_dim=-1, name=None):
        super().__init__(name)
        for what, v in (("start_dim", start_dim), ("end_dim", end_dim)):
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError("%s: %s must be an int, got %r" % (self.name, what, v))
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, x):
        return ops.flatten(x, self.start_dim, self.end_dim)

    def get_config(self):
        return {"start_dim": self.start_dim, "end_dim": self.end_dim, "name": self.name}


@register_layer
class Unflatten(Module):
    """Split dim `dim` into unflattened_size (a tuple; one entry may be -1), as
    torch.nn.Unflatten: Unflatten(1, (C, H, W)) turns (N, C*H*W) into (N, C, H, W)."""

    def __init__(self, dim, unflattened_size, name=None):
        super().__init__(name)
        if isinstance(dim, bool) or not isinstance(dim, int):
            raise TypeError("%s: dim must be an int, got %r" % (self.name, dim))
        try:
            sizes = tuple(int(d) for d in unflattened_size)
        except TypeError:
            raise TypeError("%s: unflattened_size must be a tuple of ints, got %r"
                            % (self.name, unflattened_size)) from None
        if not sizes or sizes.count(-1) > 1 or any(d < -1 for d in sizes):
            raise ValueError("%s: unflattened_size may hold sizes >= 0 and one -1, got %r"
                             % (self.name, unflattened_size))
        self.dim = dim
        self.unflattened_size = sizes

    def forward(self, x):
        return ops.unflatten(x, self.dim, self.unflattened_size)

    def get_config(self):
        return {"dim": self.dim, "unflattened_size": list(self.unflattened_size),
                "name": self.name}


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
        modes = ("nearest", "nearest-exact", "linear", "bilinear", "trilinear") + \
            (("bicubic",) if self.nd == 2 else ())
        if interpolation not in modes:
            raise ValueError("%s: interpolation must be one of %s, got %r"
                             % (type(self).__name__, ", ".join(modes), interpolation))
        self.interpolation = interpolation
        self.align_corners = bool(align_corners)

    def forward(self, x):
        _check_rank(self, x)
        mode = self.interpolation if self.interpolation.startswith("nearest") or \
            self.interpolation == "bicubic" else _LINEAR[self.nd]
        return pool_ops.interpolate(x, scale_factor=self.size, mode=mode,
                                    align_corners=None if mode.startswith("nearest")
                                    else self.align_corners)

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


@register_layer
class Upsample(Module):
    """torch.nn.Upsample: the spatial dims of (batch, channels, *spatial) resized to `size`
    (the output size: an int or one per dim) or by `scale_factor`, mode "nearest",
    "nearest-exact", "linear", "bilinear", "bicubic" or "trilinear" (align_corners for the
    linear and cubic ones); F.interpolate's rules. (UpSampling1D/2D/3D are Keras' layers,
    whose `size` is the factor.)"""

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None,
                 recompute_scale_factor=None, name=None):
        super().__init__(name)
        if (size is None) == (scale_factor is None):
            raise ValueError("%s: give exactly one of size and scale_factor" % self.name)
        if recompute_scale_factor:
            raise ValueError("%s: recompute_scale_factor=True is not supported" % self.name)
        if mode not in pool_ops.INTERPOLATE_MODES:
            raise ValueError("%s: mode must be one of %s, got %r"
                             % (self.name, ", ".join(pool_ops.INTERPOLATE_MODES), mode))
        self.size = size if size is None or isinstance(size, int) else tuple(size)
        self.scale_factor = scale_factor if scale_factor is None or \
            isinstance(scale_factor, (int, float)) else tuple(scale_factor)
        self.mode = mode
        self.align_corners = align_corners

    def forward(self, x):
        x = as_operand(x)
        if len(x.shape) < 3:
            raise errors.ShapeError("%s takes (batch, channels, *spatial) inputs, got %s"
                                    % (self.name, fmt_shape(x.shape)))
        return pool_ops.interpolate(x, size=self.size, scale_factor=self.scale_factor,
                                    mode=self.mode, align_corners=self.align_corners)

    def get_config(self):
        listed = [list(v) if isinstance(v, tuple) else v for v in (self.size, self.scale_factor)]
        return {"size": listed[0], "scale_factor": listed[1], "mode": self.mode,
                "align_corners": self.align_corners, "name": self.name}


class _ZeroPadding(Module):
    nd = None

    def __init__(self, padding=1, name=None):
        super().__init__(name)
        items = (padding,) * self.nd if isinstance(padding, int) else tuple(padding)
        if len(items) == 2 * self.nd and all(isinstance(v, int) for v in items):
            # PyTorch's ZeroPad1d/2d/3d spec: (left, right[, top, bottom[, front, back]]),
            # the last dim first (Keras' ZeroPadding1D((begin, end)) is the same thing)
            items = tuple((items[2 * i], items[2 * i + 1]) for i in range(self.nd))[::-1]
        pairs = tuple((p, p) if isinstance(p, int) else tuple(p) for p in items)
        if len(pairs) != self.nd or any(len(p) != 2 or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in p)
                for p in pairs):
            raise ValueError("%s: padding must be an int, %d ints, %d (begin, end) pairs or "
                             "PyTorch's flat %d ints (last dim first), got %r"
                             % (type(self).__name__, self.nd, self.nd, 2 * self.nd, padding))
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
    ((top, bottom), (left, right)) as Keras, or torch.nn.ZeroPad2d's (left, right, top,
    bottom)."""

    nd = 2


@register_layer
class ZeroPadding3D(_ZeroPadding):
    """Zeros around (batch, channels, depth, height, width); padding as ZeroPadding2D (or
    torch.nn.ZeroPad3d's (left, right, top, bottom, front, back))."""

    nd = 3
