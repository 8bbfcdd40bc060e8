"""Activation layers and the activation names layers accept (activation="relu", ...): Activation,
the PyTorch activation layers (ReLU, Sigmoid, Tanh, GELU, Softmax, LogSoftmax, Softmin, Softplus,
LeakyReLU, SiLU, ELU, SELU, CELU, Mish, Softsign, LogSigmoid, Hardsigmoid, Hardswish, Hardtanh,
ReLU6, Hardshrink, Softshrink, Tanhshrink, Threshold, RReLU) and PReLU, whose negative slope is
learned.

The PyTorch-named layers take torch.nn's constructor arguments: the same names, order and
defaults (inspect.signature matches), plus a keyword-only `name`. Their arguments reach the op
and are saved in the layer's config, so a reloaded model computes the same function; an
argument torch.nn does not know is a TypeError naming the layer."""
import functools
import inspect
import warnings

from .. import errors, ops
from ..dtypes import as_dtype
from ..ops.dropout import new_state
from . import init as initializers
from .module import Module, Parameter, register_layer

__all__ = ["activation_fn", "check_activation", "Activation", "ReLU", "Sigmoid", "Tanh", "GELU",
           "Softmax", "LogSoftmax", "Softmin", "Softplus", "LeakyReLU", "SiLU", "ELU", "SELU",
           "CELU", "Mish", "Softsign", "LogSigmoid", "Hardsigmoid", "Hardswish", "Hardtanh",
           "ReLU6", "PReLU"]


def _softmax(x, axis=-1):
    return ops.softmax(x, axis)


def _log_softmax(x, axis=-1):
    return ops.log_softmax(x, axis)


def _table():
    return {
        **ops.elementwise.ACTIVATIONS,     # silu, elu, mish, hardswish, ... (by PyTorch's names)
        "relu": ops.relu, "sigmoid": ops.sigmoid, "tanh": ops.tanh, "gelu": ops.gelu,
        "softplus": ops.softplus, "leaky_relu": ops.leaky_relu,
        "softmax": _softmax, "log_softmax": _log_softmax,   # the last axis (Keras' choice)
    }


def channel_activation_fn(name):
    """activation_fn for a layer whose features lie on axis 1 (the convolutions: channels
    first). An activation over an axis (softmax, log_softmax, glu) takes the channels, as
    Keras' takes them on its channels-last images (over the last axis, pyfront's width, a
    segmentation head's softmax would mix pixels); elementwise ones are activation_fn's."""
    if name is None or callable(name):
        return activation_fn(name)
    return _channel_activation(name)


@functools.lru_cache(maxsize=None)
def _channel_activation(name):
    # per name once: a layer asks on every eager call, and the signature is slow to read
    fn = activation_fn(name)
    if fn is None:
        return fn
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return fn
    return functools.partial(fn, axis=1) if "axis" in params else fn


def activation_fn(name, **kwargs):
    """The function for an activation name ("relu", "softmax", ...; None or "linear": identity).
    kwargs are the function's own arguments (Activation("elu", alpha=0.5)), checked here so that
    a misspelt one fails now rather than being dropped."""
    if name is None or name == "linear":
        return None
    if callable(name):
        return name
    table = _table()
    try:
        fn = table[name]
    except KeyError:
        raise ValueError("unknown activation %r; known: %s"
                         % (name, ", ".join(sorted(table)))) from None
    if not kwargs:
        return fn
    try:
        inspect.signature(fn).bind(None, **kwargs)
    except TypeError as e:
        raise TypeError("activation %r: %s (it takes %s)"
                        % (name, e, inspect.signature(fn))) from None
    return lambda x: fn(x, **kwargs)


def check_activation(name):
    if name is not None and not callable(name):
        activation_fn(name)
    return None if name == "linear" else name


@register_layer
class Activation(Module):
    """An activation as a layer: Activation("relu"), Activation("elu", alpha=0.5)."""

    def __init__(self, activation, name=None, **kwargs):
        super().__init__(name)
        self.activation = check_activation(activation)
        self.kwargs = kwargs
        self._fn = activation_fn(activation, **kwargs)

    def forward(self, x):
        return x if self._fn is None else self._fn(x)

    def get_config(self):
        if not isinstance(self.activation, str):
            return None
        return dict({"activation": self.activation, "name": self.name}, **self.kwargs)


class _TorchActivation(Activation):
    """Base of the PyTorch-named activation layers. Each subclass's constructor has torch.nn's
    signature and stores its arguments as attributes of those names (layer.alpha, layer.dim,
    as torch.nn's); `_args` lists them, and they are the layer's config.

    inplace (where torch.nn has it) is accepted and saved so that PyTorch code runs, but the
    result is always a new tensor: the input is left as it was. Code that uses the returned
    value, as PyTorch's own modules do, gets the same numbers."""

    _args = ()

    def __init__(self, activation, name):
        Module.__init__(self, name)   # not Activation's: the arguments are attributes here
        self.activation = activation

    @property
    def kwargs(self):
        return {a: getattr(self, a) for a in self._args}

    def forward(self, x):
        return getattr(ops, self.activation)(x)

    def get_config(self):
        return dict(self.kwargs, name=self.name)


def _number(layer, arg, value):
    # a float the config can hold as JSON (numpy scalars and 0-d arrays too); anything else is
    # refused now, naming the layer, instead of failing inside the op at the first call
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError("%s: %s must be a number, got %r" % (layer.name, arg, value)) from None


# ---- no arguments (torch.nn: Sigmoid, Tanh, Softsign, LogSigmoid take none) -----------------

@register_layer
class Sigmoid(_TorchActivation):
    """1 / (1 + exp(-x)), as torch.nn.Sigmoid."""

    def __init__(self, *, name=None):
        super().__init__("sigmoid", name)


@register_layer
class Tanh(_TorchActivation):
    """tanh(x), as torch.nn.Tanh."""

    def __init__(self, *, name=None):
        super().__init__("tanh", name)


@register_layer
class Softsign(_TorchActivation):
    """x / (1 + |x|), as torch.nn.Softsign."""

    def __init__(self, *, name=None):
        super().__init__("softsign", name)


@register_layer
class LogSigmoid(_TorchActivation):
    """log(sigmoid(x)), computed stably, as torch.nn.LogSigmoid."""

    def __init__(self, *, name=None):
        super().__init__("logsigmoid", name)


# ---- inplace only (torch.nn: ReLU, SiLU, SELU, Mish, Hardsigmoid, Hardswish, ReLU6) ---------

class _InplaceOnly(_TorchActivation):
    _args = ("inplace",)

    def __init__(self, activation, inplace, name):
        super().__init__(activation, name)
        self.inplace = bool(inplace)


@register_layer
class ReLU(_InplaceOnly):
    """max(0, x), as torch.nn.ReLU."""

    def __init__(self, inplace=False, *, name=None):
        super().__init__("relu", inplace, name)


@register_layer
class SiLU(_InplaceOnly):
    """x * sigmoid(x), as torch.nn.SiLU."""

    def __init__(self, inplace=False, *, name=None):
        super().__init__("silu", inplace, name)


@register_layer
class SELU(_InplaceOnly):
    """scale * elu(x, alpha) with PyTorch's fixed constants, as torch.nn.SELU."""

    def __init__(self, inplace=False, *, name=None):
        super().__init__("selu", inplace, name)


@register_layer
class Mish(_InplaceOnly):
    """x * tanh(softplus(x)), as torch.nn.Mish."""

    def __init__(self, inplace=False, *, name=None):
        super().__init__("mish", inplace, name)


@register_layer
class Hardsigmoid(_InplaceOnly):
    """relu6(x + 3) / 6, as torch.nn.Hardsigmoid."""

    def __init__(self, inplace=False, *, name=None):
        super().__init__("hardsigmoid", inplace, name)


@register_layer
class Hardswish(_InplaceOnly):
    """x * relu6(x + 3) / 6, as torch.nn.Hardswish."""

    def __init__(self, inplace=False, *, name=None):
        super().__init__("hardswish", inplace, name)


@register_layer
class ReLU6(_InplaceOnly):
    """min(max(0, x), 6), as torch.nn.ReLU6."""

    def __init__(self, inplace=False, *, name=None):
        super().__init__("relu6", inplace, name)


# ---- with parameters -------------------------------------------------------------------------

@register_layer
class GELU(_TorchActivation):
    """x * Phi(x); approximate="tanh": PyTorch's tanh approximation (torch.nn.GELU)."""

    _args = ("approximate",)

    def __init__(self, approximate="none", *, name=None):
        super().__init__("gelu", name)
        if approximate not in ("none", "tanh"):
            raise ValueError("%s: approximate must be 'none' or 'tanh', got %r"
                             % (self.name, approximate))
        self.approximate = approximate

    def forward(self, x):
        return ops.gelu(x, approximate=self.approximate)


@register_layer
class Softplus(_TorchActivation):
    """log(1 + exp(beta x)) / beta, and x where beta x > threshold (torch.nn.Softplus)."""

    _args = ("beta", "threshold")

    def __init__(self, beta=1.0, threshold=20.0, *, name=None):
        super().__init__("softplus", name)
        self.beta = _number(self, "beta", beta)
        self.threshold = _number(self, "threshold", threshold)

    def forward(self, x):
        return ops.softplus(x, self.beta, self.threshold)


@register_layer
class LeakyReLU(_TorchActivation):
    """max(0, x) + negative_slope * min(0, x) (torch.nn.LeakyReLU)."""

    _args = ("negative_slope", "inplace")

    def __init__(self, negative_slope=0.01, inplace=False, *, name=None):
        super().__init__("leaky_relu", name)
        self.negative_slope = _number(self, "negative_slope", negative_slope)
        self.inplace = bool(inplace)

    def forward(self, x):
        return ops.leaky_relu(x, self.negative_slope)

    @classmethod
    def from_config(cls, config):
        # files saved before the PyTorch name hold the slope as "alpha"
        if "alpha" in config and "negative_slope" not in config:
            config = dict(config)
            config["negative_slope"] = config.pop("alpha")
        return cls(**config)


@register_layer
class ELU(_TorchActivation):
    """x where x > 0, else alpha * (exp(x) - 1) (torch.nn.ELU)."""

    _args = ("alpha", "inplace")

    def __init__(self, alpha=1.0, inplace=False, *, name=None):
        super().__init__("elu", name)
        self.alpha = _number(self, "alpha", alpha)
        self.inplace = bool(inplace)

    def forward(self, x):
        return ops.elu(x, self.alpha)


@register_layer
class CELU(_TorchActivation):
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1)) (torch.nn.CELU)."""

    _args = ("alpha", "inplace")

    def __init__(self, alpha=1.0, inplace=False, *, name=None):
        super().__init__("celu", name)
        self.alpha = _number(self, "alpha", alpha)
        if self.alpha == 0:
            raise ValueError("%s: alpha must not be 0 (CELU divides by it)" % self.name)
        self.inplace = bool(inplace)

    def forward(self, x):
        return ops.celu(x, self.alpha)


@register_layer
class Hardtanh(_TorchActivation):
    """x limited to [min_val, max_val] (torch.nn.Hardtanh; min_value and max_value are its
    deprecated spellings, accepted with torch's FutureWarning)."""

    _args = ("min_val", "max_val", "inplace")

    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False, min_value=None, max_value=None,
                 *, name=None):
        super().__init__("hardtanh", name)
        if min_value is not None:
            warnings.warn("%s: keyword argument min_value is deprecated; use min_val"
                          % self.name, FutureWarning, stacklevel=2)
            min_val = min_value
        if max_value is not None:
            warnings.warn("%s: keyword argument max_value is deprecated; use max_val"
                          % self.name, FutureWarning, stacklevel=2)
            max_val = max_value
        self.min_val = _number(self, "min_val", min_val)
        self.max_val = _number(self, "max_val", max_val)
        if self.min_val > self.max_val:
            raise ValueError("%s: min_val (%r) must not exceed max_val (%r)"
                             % (self.name, self.min_val, self.max_val))
        self.inplace = bool(inplace)

    def forward(self, x):
        return ops.hardtanh(x, self.min_val, self.max_val)


# ---- over a dim: Softmax, LogSoftmax, Softmin ------------------------------------------------

class _OverDim(_TorchActivation):
    """dim=None is torch.nn's implicit choice by the input's rank (dim 0 for 0-, 1- and 3-D
    inputs, else dim 1; torch deprecates it with a warning, and so does this layer). Configs
    saved before the layers took a dim hold none: they meant the last axis, and get it."""

    _args = ("dim",)

    def __init__(self, activation, dim, name):
        super().__init__(activation, name)
        if dim is not None and (isinstance(dim, bool) or not hasattr(dim, "__index__")):
            raise TypeError("%s: dim must be an int or None, got %r" % (self.name, dim))
        self.dim = None if dim is None else int(dim)

    def forward(self, x):
        return getattr(ops, self.activation)(x, self._dim(x))

    def _dim(self, x):
        if self.dim is not None:
            return self.dim
        ndim = len(x.shape)
        dim = 0 if ndim in (0, 1, 3) else 1
        warnings.warn("%s: implicit dimension choice for %s: dim=%d for a %d-D input, as "
                      "torch.nn.%s(dim=None) does (deprecated there too); pass dim"
                      % (self.name, type(self).__name__, dim, ndim, type(self).__name__),
                      UserWarning, stacklevel=4)
        return dim

    @classmethod
    def from_config(cls, config):
        if "dim" not in config:
            config = dict(config, dim=-1)
        return cls(**config)


@register_layer
class Softmax(_OverDim):
    """exp(x) / sum(exp(x)) over dim (torch.nn.Softmax)."""

    def __init__(self, dim=None, *, name=None):
        super().__init__("softmax", dim, name)


@register_layer
class LogSoftmax(_OverDim):
    """log(softmax(x)) over dim, computed as one op (torch.nn.LogSoftmax)."""

    def __init__(self, dim=None, *, name=None):
        super().__init__("log_softmax", dim, name)


@register_layer
class Softmin(_OverDim):
    """softmax(-x) over dim (torch.nn.Softmin)."""

    def __init__(self, dim=None, *, name=None):
        super().__init__("softmin", dim, name)


@register_layer
class PReLU(Module):
    """max(0, x) + weight * min(0, x) with a learned weight: one slope (num_parameters=1) or one
    per channel (axis 1), initialised to `init`, as torch.nn.PReLU. dtype: the weight's (float32
    by default; saved in the config); device: where it lives ("cpu", "cuda"; not saved: a
    file is device-independent)."""

    def __init__(self, num_parameters=1, init=0.25, device=None, dtype=None, *, name=None):
        super().__init__(name)
        if not isinstance(num_parameters, int) or num_parameters < 1:
            raise ValueError("%s: num_parameters must be a positive int, got %r"
                             % (self.name, num_parameters))
        self.num_parameters = num_parameters
        self.init = float(init)
        self._dtype = None if dtype is None else as_dtype(dtype).name
        if dtype is not None and not as_dtype(dtype).is_float:
            raise errors.DTypeError("%s: the weight must be a float dtype, got %s"
                                    % (self.name, self._dtype))
        # filled in its own dtype: init=0.1 is 0.1 in float64, not float32's 0.1 widened
        self.weight = Parameter(init=initializers.constant(self.init),
                                dtype=self._dtype or "float32")
        self.weight.materialize((num_parameters,))
        if device is not None:
            self.to(device)

    def forward(self, x):
        return ops.prelu(x, self.weight)

    def get_config(self):
        return {"num_parameters": self.num_parameters, "init": self.init, "dtype": self._dtype,
                "name": self.name}


# ---- torch.nn's shrink and threshold activations and RReLU -----------------------------------

@register_layer
class Hardshrink(_TorchActivation):
    """x where |x| > lambd, else 0 (torch.nn.Hardshrink)."""

    _args = ("lambd",)

    def __init__(self, lambd=0.5, *, name=None):
        super().__init__("hardshrink", name)
        self.lambd = _number(self, "lambd", lambd)

    def forward(self, x):
        return ops.hardshrink(x, self.lambd)


@register_layer
class Softshrink(_TorchActivation):
    """x - lambd above lambd, x + lambd below -lambd, else 0 (torch.nn.Softshrink)."""

    _args = ("lambd",)

    def __init__(self, lambd=0.5, *, name=None):
        super().__init__("softshrink", name)
        self.lambd = _number(self, "lambd", lambd)
        if not self.lambd >= 0:
            raise ValueError("%s: lambd must be >= 0, got %r" % (self.name, lambd))

    def forward(self, x):
        return ops.softshrink(x, self.lambd)


@register_layer
class Tanhshrink(_TorchActivation):
    """x - tanh(x) (torch.nn.Tanhshrink)."""

    def __init__(self, *, name=None):
        super().__init__("tanhshrink", name)


@register_layer
class Threshold(_TorchActivation):
    """x where x > threshold, else value (torch.nn.Threshold)."""

    _args = ("threshold", "value", "inplace")

    def __init__(self, threshold, value, inplace=False, *, name=None):
        super().__init__("threshold", name)
        self.threshold = _number(self, "threshold", threshold)
        self.value = _number(self, "value", value)
        self.inplace = bool(inplace)

    def forward(self, x):
        return ops.threshold(x, self.threshold, self.value)


@register_layer
class RReLU(_TorchActivation):
    """Randomized leaky ReLU (torch.nn.RReLU): in training each element at or below 0 is scaled
    by a slope drawn uniformly from [lower, upper]; in evaluation by their mean. The draws come
    from a generator state buffer, seeded from pyfront.random.generator() as Dropout's."""

    _args = ("lower", "upper", "inplace")

    def __init__(self, lower=1.0 / 8, upper=1.0 / 3, inplace=False, *, name=None):
        super().__init__("rrelu", name)
        self.lower = _number(self, "lower", lower)
        self.upper = _number(self, "upper", upper)
        if not self.lower <= self.upper:
            raise ValueError("%s: lower (%r) must not exceed upper (%r)"
                             % (self.name, lower, upper))
        self.inplace = bool(inplace)
        state = new_state()
        state.name = "%s/rng_state" % self.name
        self.register_buffer("rng_state", state, optional=True)

    def forward(self, x):
        return ops.rrelu(x, self.lower, self.upper, self.training, state=self.rng_state)


__all__ += ["Hardshrink", "Softshrink", "Tanhshrink", "Threshold", "RReLU"]
