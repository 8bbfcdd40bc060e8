"""Convolution layers: Conv1D, Conv2D, Conv3D (channels first), their kernels shaped
(filters, in_channels/groups, *kernel_size) and created from the first input's channel count,
so spatial sizes stay free (Conv1D takes sequences of any length in one model); and the
transposed convolutions Conv1DTranspose/Conv2DTranspose/Conv3DTranspose."""
import warnings

from .. import errors
from ..ops import conv as conv_ops
from ..ops import shape as shape_ops
from .activations import channel_activation_fn, check_activation
from .module import Module, Parameter, register_layer, torch_aliases

# torch.nn.Conv*d's padding_mode -> pyfront.ops.pad's mode
_PADDING_MODES = {"zeros": None, "reflect": "reflect", "replicate": "replicate",
                  "circular": "circular"}

__all__ = ["Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"]


@torch_aliases(stride="strides", bias="use_bias")
class _Conv(Module):
    nd = None
    # kernels have torch's layout: a torch weight loads as it is
    torch_state = {"weight": ("kernel", False)}

    def __init__(self, filters, kernel_size, strides=1, padding="valid", dilation=1, groups=1,
                 activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", in_channels=None, padding_mode="zeros", name=None):
        super().__init__(name)
        cls = type(self).__name__
        if padding_mode not in _PADDING_MODES:
            raise ValueError("%s: padding_mode must be one of %s, got %r"
                             % (cls, ", ".join(_PADDING_MODES), padding_mode))
        self.padding_mode = padding_mode
        if not isinstance(filters, int) or isinstance(filters, bool) or filters < 1:
            raise ValueError("%s: filters must be a positive int, got %r" % (cls, filters))
        if not isinstance(groups, int) or isinstance(groups, bool) or groups < 1:
            raise ValueError("%s: groups must be a positive int, got %r" % (cls, groups))
        if filters % groups:
            raise ValueError("%s: groups=%d does not divide filters=%d" % (cls, groups, filters))
        self.filters = filters
        self.kernel_size = conv_ops.int_tuple(kernel_size, self.nd, cls + ": kernel_size")
        self.strides = conv_ops.int_tuple(strides, self.nd, cls + ": strides")
        self.dilation = conv_ops.int_tuple(dilation, self.nd, cls + ": dilation")
        self.padding = conv_ops.normalize_padding(padding, self.nd)
        self.groups = groups
        self.activation = check_activation(activation)
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.in_channels = in_channels
        self.kernel = Parameter(init=kernel_initializer, conv_layout=True)
        self.bias = Parameter(init=bias_initializer) if use_bias else None
        if in_channels is not None:
            self.build((None, in_channels) + (None,) * self.nd)
            self.built = True

    def build(self, input_shape):
        nd = self.nd
        if input_shape is None or len(input_shape) != nd + 2:
            raise errors.ShapeError(
                "%s '%s' takes (batch, channels, %s) inputs with %d dims, got shape %s"
                % (type(self).__name__, self.name, conv_ops.SPATIAL_DIMS[nd], nd + 2,
                   None if input_shape is None else tuple(input_shape)))
        channels = input_shape[1]
        if channels is None:
            raise errors.ShapeError("%s '%s': the channel count of input %s is unknown"
                                    % (type(self).__name__, self.name, tuple(input_shape)))
        if channels % self.groups:
            raise errors.ShapeError("%s '%s': groups=%d does not divide the %d input channels "
                                    "of input %s" % (type(self).__name__, self.name,
                                                     self.groups, channels, tuple(input_shape)))
        if nd >= 2 and input_shape[-1] in (1, 3) and channels > input_shape[-1]:
            warnings.warn("%s '%s' takes %d input channels from axis 1 of %s, whose last axis "
                          "is %d: %s" % (type(self).__name__, self.name, channels,
                                         tuple(input_shape), input_shape[-1],
                                         self._layout_hint()), stacklevel=3)
        self.in_channels = int(channels)
        self.kernel.materialize((self.filters, self.in_channels // self.groups)
                                + self.kernel_size)
        if self.bias is not None:
            self.bias.materialize((self.filters,))

    def _layout_hint(self):
        return ("pyfront's layout is channels-first (batch, channels, %s); if these are "
                "channels-last, move the channels with np.moveaxis(x, -1, 1)"
                % conv_ops.SPATIAL_DIMS[self.nd])

    def forward(self, x):
        shape = tuple(x.shape)
        if len(shape) == self.nd + 2 and shape[1] is not None and \
                shape[1] != self.in_channels and shape[-1] == self.in_channels:
            raise errors.ShapeError("%s '%s': the input %s has %d channels on axis 1 but the "
                                    "layer takes %d, the size of its last axis: %s"
                                    % (type(self).__name__, self.name, shape, shape[1],
                                       self.in_channels, self._layout_hint()))
        act = self.activation
        fused = act in conv_ops.CONV_ACTIVATIONS
        x, padding = self._pad_input(x)
        y = conv_ops.conv_nd(self.nd, x, self.kernel, self.bias, self.strides, padding,
                             self.dilation, self.groups, act if fused else None)
        return y if fused else channel_activation_fn(act)(y)

    def _pad_input(self, x):
        """(x, padding for the convolution): with a padding_mode other than zeros, x padded
        by that mode (PyTorch's split of "same": the odd pixel at the end) and no padding
        left for the convolution."""
        mode = _PADDING_MODES[self.padding_mode]
        if mode is None or self.padding == "valid":
            return x, self.padding
        spans = [d * (k - 1) + 1 for k, d in zip(self.kernel_size, self.dilation)]
        pads = conv_ops.conv_padding(self.padding, list(x.shape[2:]), spans, self.strides)
        if None in pads:
            raise errors.ShapeError("%s '%s': padding_mode=%r with padding='same' needs known "
                                    "spatial sizes, got input %s"
                                    % (type(self).__name__, self.name, self.padding_mode,
                                       tuple(x.shape)))
        return shape_ops.pad(x, ((0, 0), (0, 0)) + tuple(pads), mode=mode), "valid"

    def get_config(self):
        if not all(isinstance(v, str) or v is None for v in
                   (self.activation, self.kernel_initializer, self.bias_initializer)):
            return None
        padding = self.padding if isinstance(self.padding, str) else \
            [list(p) for p in self.padding]
        return {"filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": padding,
                "dilation": list(self.dilation), "groups": self.groups,
                "activation": self.activation, "use_bias": self.use_bias,
                "kernel_initializer": self.kernel_initializer,
                "bias_initializer": self.bias_initializer, "in_channels": self.in_channels,
                "padding_mode": self.padding_mode, "name": self.name}


@register_layer
class Conv1D(_Conv):
    """1-D convolution over (batch, channels, length); any length once built.

    Conv1D(filters, kernel_size, strides=1, padding="valid" | "same" | int | (begin, end)
    pairs, dilation=1, groups=1, activation=None, use_bias=True,
    kernel_initializer="glorot_uniform" (Keras' default), bias_initializer="zeros",
    in_channels=None, padding_mode="zeros" | "reflect" | "replicate" | "circular" (PyTorch's));
    PyTorch's stride= and bias= are accepted for strides= and use_bias=.
    relu, sigmoid and tanh are fused into the convolution kernel.
    """

    nd = 1


@register_layer
class Conv2D(_Conv):
    """2-D convolution over (batch, channels, height, width); arguments as Conv1D, with ints
    or pairs for kernel_size, strides, dilation and padding."""

    nd = 2


@register_layer
class Conv3D(_Conv):
    """3-D convolution over (batch, channels, depth, height, width); arguments as Conv1D."""

    nd = 3


@torch_aliases(stride="strides", bias="use_bias")
class _ConvTranspose(Module):
    nd = None
    # kernels have torch's layout: a torch weight loads as it is
    torch_state = {"weight": ("kernel", False)}

    def __init__(self, filters, kernel_size, strides=1, padding=0, output_padding=0,
                 dilation=1, groups=1, activation=None, use_bias=True,
                 kernel_initializer="glorot_uniform", bias_initializer="zeros",
                 in_channels=None, padding_mode="zeros", name=None):
        super().__init__(name)
        cls = type(self).__name__
        if padding_mode != "zeros":
            raise ValueError("%s: only padding_mode='zeros' is supported for transposed "
                             "convolutions (as in PyTorch), got %r" % (cls, padding_mode))
        for what, v in (("filters", filters), ("groups", groups)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError("%s: %s must be a positive int, got %r" % (cls, what, v))
        if filters % groups:
            raise ValueError("%s: groups=%d does not divide filters=%d" % (cls, groups, filters))
        nd = self.nd
        self.filters, self.groups = filters, groups
        self.kernel_size = conv_ops.int_tuple(kernel_size, nd, cls + ": kernel_size")
        self.strides = conv_ops.int_tuple(strides, nd, cls + ": strides")
        self.dilation = conv_ops.int_tuple(dilation, nd, cls + ": dilation")
        self.padding = conv_ops._non_negative_tuple(padding, nd, cls + ": padding")
        self.output_padding = conv_ops._non_negative_tuple(output_padding, nd,
                                                           cls + ": output_padding")
        self.activation = check_activation(activation)
        self.use_bias = use_bias
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        self.in_channels = in_channels
        self.kernel = Parameter(init=kernel_initializer, conv_layout=True)
        self.bias = Parameter(init=bias_initializer) if use_bias else None
        if in_channels is not None:
            self.build((None, in_channels) + (None,) * nd)
            self.built = True

    def build(self, input_shape):
        nd = self.nd
        if input_shape is None or len(input_shape) != nd + 2 or input_shape[1] is None:
            raise errors.ShapeError(
                "%s '%s' takes (batch, channels, %s) inputs with %d dims and known channels, "
                "got shape %s" % (type(self).__name__, self.name, conv_ops.SPATIAL_DIMS[nd],
                                  nd + 2, None if input_shape is None else tuple(input_shape)))
        channels = int(input_shape[1])
        if channels % self.groups:
            raise errors.ShapeError("%s '%s': groups=%d does not divide the %d input channels "
                                    "of input %s" % (type(self).__name__, self.name,
                                                     self.groups, channels, tuple(input_shape)))
        self.in_channels = channels
        self.kernel.materialize((channels, self.filters // self.groups) + self.kernel_size)
        if self.bias is not None:
            self.bias.materialize((self.filters,))

    def forward(self, x):
        y = conv_ops.conv_transpose_nd(self.nd, x, self.kernel, self.bias, self.strides,
                                       self.padding, self.output_padding, self.dilation,
                                       self.groups)
        return y if self.activation is None else channel_activation_fn(self.activation)(y)

    def get_config(self):
        if not all(isinstance(v, str) or v is None for v in
                   (self.activation, self.kernel_initializer, self.bias_initializer)):
            return None
        return {"filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": list(self.padding),
                "output_padding": list(self.output_padding), "dilation": list(self.dilation),
                "groups": self.groups, "activation": self.activation, "use_bias": self.use_bias,
                "kernel_initializer": self.kernel_initializer,
                "bias_initializer": self.bias_initializer, "in_channels": self.in_channels,
                "name": self.name}


@register_layer
class Conv1DTranspose(_ConvTranspose):
    """Transposed 1-D convolution over (batch, channels, length), as torch.nn.ConvTranspose1d:
    Conv1DTranspose(filters, kernel_size, strides=1, padding=0, output_padding=0, dilation=1,
    groups=1, activation=None, use_bias=True); output length (L-1)*strides - 2*padding +
    dilation*(kernel_size-1) + output_padding + 1."""

    nd = 1


@register_layer
class Conv2DTranspose(_ConvTranspose):
    """Transposed 2-D convolution over (batch, channels, height, width); see Conv1DTranspose."""

    nd = 2


@register_layer
class Conv3DTranspose(_ConvTranspose):
    """Transposed 3-D convolution over (batch, channels, depth, height, width)."""

    nd = 3
