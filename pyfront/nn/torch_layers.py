"""Layers under PyTorch's names, for code ported from torch.nn.

Where torch's constructor takes its arguments in the order of pyfront's Keras-named layer
(BatchNorm2d(num_features, eps, momentum), MaxPool2d(kernel_size, stride, padding, ...)), the
torch name is the same class. Where the orders differ -- torch's Linear(in_features,
out_features) against Dense(units), Conv2d(in_channels, out_channels, kernel_size) against
Conv2D(filters, kernel_size) -- a subclass takes torch's order, torch's defaults (bias on,
padding 0, weights and biases uniform in +-1/sqrt(fan_in) as torch's reset_parameters draws
them) and saves torch's names in its config. Convolution weights have torch's layout in
pyfront too, so `.weight` is the kernel itself; a Linear's kernel is (in, out), the transpose of
torch's weight, so it has none (`.kernel`; rnn/weights helpers convert torch state).
"""
import math

from .. import errors, ops
from ..ops.core import as_operand, current_scope, fmt_shape
from . import init as initializers
from .conv import (Conv1D, Conv1DTranspose, Conv2D, Conv2DTranspose, Conv3D, Conv3DTranspose)
from .dense import Dense
from .module import Module, Parameter, register_layer
from .normalization import BatchNorm1D, BatchNorm2D, BatchNorm3D, InstanceNorm
from .pooling import (AdaptiveAvgPool1D, AdaptiveAvgPool2D, AdaptiveAvgPool3D, AvgPool1D,
                      AvgPool2D, AvgPool3D, MaxPool1D, MaxPool2D, MaxPool3D)

__all__ = ["Linear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
           "ConvTranspose3d", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "InstanceNorm1d",
           "InstanceNorm2d", "InstanceNorm3d", "MaxPool1d", "MaxPool2d", "MaxPool3d",
           "AvgPool1d", "AvgPool2d", "AvgPool3d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d",
           "AdaptiveAvgPool3d", "Bilinear"]

# the same classes: torch's positional order is theirs already
BatchNorm1d, BatchNorm2d, BatchNorm3d = BatchNorm1D, BatchNorm2D, BatchNorm3D
InstanceNorm1d = InstanceNorm2d = InstanceNorm3d = InstanceNorm
MaxPool1d, MaxPool2d, MaxPool3d = MaxPool1D, MaxPool2D, MaxPool3D
AvgPool1d, AvgPool2d, AvgPool3d = AvgPool1D, AvgPool2D, AvgPool3D
AdaptiveAvgPool1d, AdaptiveAvgPool2d, AdaptiveAvgPool3d = (AdaptiveAvgPool1D, AdaptiveAvgPool2D,
                                                           AdaptiveAvgPool3D)

# torch's default draw for weights: kaiming_uniform(a=sqrt(5)), i.e. U(+-1/sqrt(fan_in))
_WEIGHT_INIT = "torch_uniform"


def place(module, device=None, dtype=None):
    """torch's factory arguments (device=, dtype=) applied to a module made with them."""
    if dtype is not None:
        module.to(dtype)
    if device is not None:
        module.to(device)
    return module


def positive_int(owner, what, value):
    """value, checked as a size argument of a torch-named layer (a bool is no size)."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError("%s: %s must be a positive int, got %r" % (owner, what, value))
    return value


def scoped_name(module):
    """module's name with the layers that call it ("transformer/encoder/layers.0/self_attn")
    while it runs: errors must say which of several same-named sub-layers failed."""
    scope = current_scope()
    return scope if scope == module.name or scope.endswith("/" + module.name) else module.name


def known_reshape(x, shape, owner):
    """reshape to `shape`, whose one unknown size (None: the batch, or the sequence of
    sequence-first inputs, when traced) becomes -1."""
    unknown = [i for i, d in enumerate(shape) if d is None]
    if len(unknown) > 1:
        raise errors.ShapeError("%s: cannot reshape to %s: more than one size is unknown"
                                % (owner, fmt_shape(shape)))
    return ops.reshape(x, tuple(-1 if d is None else int(d) for d in shape))


class _TorchInit:
    """Mixin: biases drawn from U(+-1/sqrt(fan_in)) of the weight, as torch does. The fan is
    known once the input's is, so the draw is set as the layer builds (_weight_shape: the
    weight's shape for that input)."""

    def build(self, input_shape):
        if self.bias is not None and self.bias_initializer == _WEIGHT_INIT:
            shape = self._weight_shape(input_shape)
            fan_in, _ = initializers._fans(shape, len(shape) > 2)
            bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
            self.bias._init = initializers.uniform(-bound, bound)
        super().build(input_shape)

    def _place(self, device, dtype):
        place(self, device, dtype)


class _TorchConvNames(_TorchInit):
    """torch's names for a convolution's kernel (its layout is torch's) and filter count."""

    @property
    def weight(self):
        return self.kernel

    @property
    def out_channels(self):
        return self.filters


@register_layer
class Linear(_TorchInit, Dense):
    """torch.nn.Linear(in_features, out_features, bias=True): y = x @ kernel + bias, with the
    kernel (in_features, out_features)."""

    def __init__(self, in_features, out_features, bias=True, *, activation=None, device=None,
                 dtype=None, name=None):
        if not isinstance(in_features, int) or isinstance(in_features, bool) or in_features < 1:
            raise ValueError("Linear: in_features must be a positive int, got %r"
                             % (in_features,))
        Dense.__init__(self, out_features, activation=activation, use_bias=bias,
                       kernel_initializer=_WEIGHT_INIT, bias_initializer=_WEIGHT_INIT,
                       in_features=in_features, name=name)
        self._place(device, dtype)

    @property
    def out_features(self):
        return self.units

    def _weight_shape(self, input_shape):
        return (int(input_shape[-1]), self.units)

    def get_config(self):
        return {"in_features": self.in_features, "out_features": self.units,
                "bias": self.use_bias, "activation": self.activation, "name": self.name}


def _torch_conv(base):
    """A subclass of the convolution layer `base` taking torch.nn.Conv{1,2,3}d's arguments."""

    class TorchConv(_TorchConvNames, base):
        def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                     dilation=1, groups=1, bias=True, padding_mode="zeros", *, activation=None,
                     device=None, dtype=None, name=None):
            base.__init__(self, out_channels, kernel_size, stride, padding, dilation, groups,
                          activation=activation, use_bias=bias,
                          kernel_initializer=_WEIGHT_INIT, bias_initializer=_WEIGHT_INIT,
                          in_channels=in_channels, padding_mode=padding_mode, name=name)
            self._place(device, dtype)

        def _weight_shape(self, input_shape):
            channels = int(input_shape[1]) if input_shape[1] is not None else 1
            return (self.filters, channels // self.groups) + self.kernel_size

        def get_config(self):
            config = base.get_config(self)
            if config is None:
                return None
            padding = config["padding"]
            if not isinstance(padding, str) and all(a == b for a, b in padding):
                padding = [a for a, _ in padding]
            return {"in_channels": self.in_channels, "out_channels": self.filters,
                    "kernel_size": config["kernel_size"], "stride": config["strides"],
                    "padding": padding, "dilation": config["dilation"],
                    "groups": self.groups, "bias": self.use_bias,
                    "padding_mode": self.padding_mode, "activation": self.activation,
                    "name": self.name}

    return TorchConv


def _torch_conv_transpose(base):
    """A subclass of `base` taking torch.nn.ConvTranspose{1,2,3}d's arguments (torch's order:
    groups and bias come before dilation)."""

    class TorchConvTranspose(_TorchConvNames, base):
        def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                     output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                     *, activation=None, device=None, dtype=None, name=None):
            base.__init__(self, out_channels, kernel_size, stride, padding, output_padding,
                          dilation, groups, activation=activation, use_bias=bias,
                          kernel_initializer=_WEIGHT_INIT, bias_initializer=_WEIGHT_INIT,
                          in_channels=in_channels, padding_mode=padding_mode, name=name)
            self._place(device, dtype)

        def _weight_shape(self, input_shape):
            channels = int(input_shape[1]) if input_shape[1] is not None else 1
            return (channels, self.filters // self.groups) + self.kernel_size

        def get_config(self):
            config = base.get_config(self)
            if config is None:
                return None
            return {"in_channels": self.in_channels, "out_channels": self.filters,
                    "kernel_size": config["kernel_size"], "stride": config["strides"],
                    "padding": config["padding"], "output_padding": config["output_padding"],
                    "groups": self.groups, "bias": self.use_bias,
                    "dilation": config["dilation"], "activation": self.activation,
                    "name": self.name}

    return TorchConvTranspose


def _named(cls, name, doc):
    cls.__name__ = cls.__qualname__ = name
    cls.__doc__ = doc
    return register_layer(cls)


Conv1d = _named(_torch_conv(Conv1D), "Conv1d", "torch.nn.Conv1d(in_channels, out_channels, "
                "kernel_size, stride=1, padding=0, dilation=1, groups=1, bias=True, "
                "padding_mode='zeros') over (batch, channels, length).")
Conv2d = _named(_torch_conv(Conv2D), "Conv2d", "torch.nn.Conv2d's arguments, over (batch, "
                "channels, height, width); see Conv1d.")
Conv3d = _named(_torch_conv(Conv3D), "Conv3d", "torch.nn.Conv3d's arguments, over (batch, "
                "channels, depth, height, width); see Conv1d.")
ConvTranspose1d = _named(_torch_conv_transpose(Conv1DTranspose), "ConvTranspose1d",
                         "torch.nn.ConvTranspose1d(in_channels, out_channels, kernel_size, "
                         "stride=1, padding=0, output_padding=0, groups=1, bias=True, "
                         "dilation=1).")
ConvTranspose2d = _named(_torch_conv_transpose(Conv2DTranspose), "ConvTranspose2d",
                         "torch.nn.ConvTranspose2d's arguments; see ConvTranspose1d.")
ConvTranspose3d = _named(_torch_conv_transpose(Conv3DTranspose), "ConvTranspose3d",
                         "torch.nn.ConvTranspose3d's arguments; see ConvTranspose1d.")


@register_layer
class Bilinear(Module):
    """torch.nn.Bilinear(in1_features, in2_features, out_features, bias=True):
    y = x1^T A x2 + b for inputs (*, in1_features) and (*, in2_features) with the same leading
    dims (none: one sample). weight (out, in1, in2) and bias (out,) as torch's, drawn from
    U(+-1/sqrt(in1_features))."""

    def __init__(self, in1_features, in2_features, out_features, bias=True, *, device=None,
                 dtype=None, name=None):
        for what, v in (("in1_features", in1_features), ("in2_features", in2_features),
                        ("out_features", out_features)):
            positive_int("Bilinear", what, v)
        super().__init__(name)
        self.in1_features, self.in2_features = in1_features, in2_features
        self.out_features = out_features
        draw = initializers.uniform(-1 / math.sqrt(in1_features), 1 / math.sqrt(in1_features))
        self.weight = Parameter(init=draw)
        self.weight.materialize((out_features, in1_features, in2_features))
        self.bias = Parameter(init=draw) if bias else None
        if bias:
            self.bias.materialize((out_features,))
        self.built = True
        place(self, device, dtype)

    def forward(self, input1, input2):
        x1, x2 = as_operand(input1), as_operand(input2)
        s1, s2 = tuple(x1.shape), tuple(x2.shape)
        if not s1 or s1[-1] != self.in1_features or not s2 or s2[-1] != self.in2_features or \
                len(s1) != len(s2) or any(a != b for a, b in zip(s1[:-1], s2[:-1])
                                          if a is not None and b is not None):
            raise errors.ShapeError(
                "Bilinear '%s': expected inputs (*, %d) and (*, %d) with the same leading "
                "dims, got %s and %s" % (scoped_name(self), self.in1_features,
                                         self.in2_features, fmt_shape(s1), fmt_shape(s2)))
        return ops.bilinear(x1, x2, self.weight, self.bias)

    def get_config(self):
        return {"in1_features": self.in1_features, "in2_features": self.in2_features,
                "out_features": self.out_features, "bias": self.bias is not None,
                "name": self.name}
