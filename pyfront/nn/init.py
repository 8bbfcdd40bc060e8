"""Weight initializers, by name or as callables (shape, dtype, rng) -> ndarray.

Fan-in/fan-out follow the (in_features, out_features) kernel layout of pf.nn.Dense and the
(out_channels, in_channels/groups, *kernel) layout of convolutions.
"""
import math

import numpy as np

__all__ = ["get", "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "orthogonal",
           "zeros", "ones", "constant", "uniform", "normal"]


def _fans(shape, conv_layout):
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if conv_layout and len(shape) > 2:
        receptive = int(np.prod(shape[2:]))
        return shape[1] * receptive, shape[0] * receptive
    return shape[0], shape[1]


class Initializer:
    """Base: call with (shape, dtype, rng); `conv_layout` says the shape is (out, in, *k)."""

    def __call__(self, shape, dtype, rng, conv_layout=False):
        raise NotImplementedError

    def get_config(self):
        return {}


class _Scaled(Initializer):
    def __init__(self, distribution, mode, scale):
        self.distribution, self.mode, self.scale = distribution, mode, scale

    def __call__(self, shape, dtype, rng, conv_layout=False):
        fan_in, fan_out = _fans(shape, conv_layout)
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2}[self.mode]
        var = self.scale / max(fan, 1)
        if self.distribution == "uniform":
            lim = math.sqrt(3 * var)
            return rng.uniform(-lim, lim, shape).astype(dtype)
        return (rng.standard_normal(shape) * math.sqrt(var)).astype(dtype)


def glorot_uniform():
    return _Scaled("uniform", "fan_avg", 1.0)


def glorot_normal():
    return _Scaled("normal", "fan_avg", 1.0)


def he_uniform():
    return _Scaled("uniform", "fan_in", 2.0)


def he_normal():
    return _Scaled("normal", "fan_in", 2.0)


def lecun_uniform():
    return _Scaled("uniform", "fan_in", 1.0)


def torch_uniform():
    """U(+-1/sqrt(fan_in)): torch.nn's default draw for Linear and convolution weights
    (kaiming_uniform with a=sqrt(5))."""
    return _Scaled("uniform", "fan_in", 1.0 / 3.0)


class orthogonal(Initializer):
    """A (semi-)orthogonal matrix, as in Saxe et al.; extra dims are flattened into rows."""

    def __init__(self, gain=1.0):
        self.gain = gain

    def __call__(self, shape, dtype, rng, conv_layout=False):
        rows = shape[0] if conv_layout or len(shape) < 2 else int(np.prod(shape[:-1]))
        cols = int(np.prod(shape)) // max(rows, 1)
        a = rng.standard_normal((max(rows, cols), min(rows, cols)))
        q, r = np.linalg.qr(a)
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        return (self.gain * q[:rows, :cols]).reshape(shape).astype(dtype)

    def get_config(self):
        return {"gain": self.gain}


class constant(Initializer):
    def __init__(self, value=0.0):
        self.value = value

    def __call__(self, shape, dtype, rng, conv_layout=False):
        return np.full(shape, self.value, dtype=dtype)

    def get_config(self):
        return {"value": self.value}


def zeros():
    return constant(0.0)


def ones():
    return constant(1.0)


class uniform(Initializer):
    def __init__(self, low=-0.05, high=0.05):
        self.low, self.high = low, high

    def __call__(self, shape, dtype, rng, conv_layout=False):
        return rng.uniform(self.low, self.high, shape).astype(dtype)

    def get_config(self):
        return {"low": self.low, "high": self.high}


class normal(Initializer):
    def __init__(self, mean=0.0, std=0.05):
        self.mean, self.std = mean, std

    def __call__(self, shape, dtype, rng, conv_layout=False):
        return (self.mean + self.std * rng.standard_normal(shape)).astype(dtype)

    def get_config(self):
        return {"mean": self.mean, "std": self.std}


_NAMED = {"glorot_uniform": glorot_uniform, "xavier_uniform": glorot_uniform,
          "glorot_normal": glorot_normal, "xavier_normal": glorot_normal,
          "he_uniform": he_uniform, "kaiming_uniform": he_uniform, "he_normal": he_normal,
          "kaiming_normal": he_normal, "lecun_uniform": lecun_uniform,
          "torch_uniform": torch_uniform,
          "orthogonal": orthogonal, "zeros": zeros, "ones": ones, "constant": constant,
          "uniform": uniform, "normal": normal}


def get(spec):
    """An initializer from a name ("he_uniform"), an Initializer, or a plain callable."""
    if isinstance(spec, str):
        try:
            return _NAMED[spec]()
        except KeyError:
            raise ValueError("unknown initializer %r; known: %s"
                             % (spec, ", ".join(sorted(_NAMED)))) from None
    if callable(spec):
        return spec
    raise TypeError("an initializer must be a name or a callable, got %r" % (spec,))


# ---- PyTorch's in-place spellings: fill an existing tensor (a parameter, p.data) ----
# Fans follow pyfront's layouts: a 2-D tensor is a Dense kernel (in, out), more dims a
# convolution's (out, in/groups, *kernel). Values come from pyfront's generator
# (pf.manual_seed).

def _fill(tensor, initializer):
    from .. import autograd, random

    if not hasattr(tensor, "copy_"):
        raise TypeError("init: expected a tensor to fill, got %r" % (tensor,))
    shape = tuple(tensor.shape)
    values = initializer(shape, tensor.dtype.np, random.generator(),
                         conv_layout=len(shape) > 2)
    with autograd.no_grad():      # an initializer writes a parameter's memory, as PyTorch's
        return tensor.copy_(values)


_GAINS = {"linear": 1.0, "conv1d": 1.0, "conv2d": 1.0, "conv3d": 1.0, "sigmoid": 1.0,
          "tanh": 5.0 / 3, "relu": math.sqrt(2.0), "selu": 3.0 / 4}


def calculate_gain(nonlinearity, param=None):
    """PyTorch's recommended gain for a nonlinearity (leaky_relu takes its slope, 0.01)."""
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope ** 2))
    try:
        return _GAINS[nonlinearity]
    except KeyError:
        raise ValueError("calculate_gain: unknown nonlinearity %r; known: %s"
                         % (nonlinearity, ", ".join(sorted(_GAINS) + ["leaky_relu"]))) from None


def xavier_uniform_(tensor, gain=1.0):
    return _fill(tensor, _Scaled("uniform", "fan_avg", gain * gain))


def xavier_normal_(tensor, gain=1.0):
    return _fill(tensor, _Scaled("normal", "fan_avg", gain * gain))


def kaiming_uniform_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    gain = calculate_gain(nonlinearity, a)
    return _fill(tensor, _Scaled("uniform", mode, gain * gain))


def kaiming_normal_(tensor, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    gain = calculate_gain(nonlinearity, a)
    return _fill(tensor, _Scaled("normal", mode, gain * gain))


def orthogonal_(tensor, gain=1.0):
    return _fill(tensor, orthogonal(gain))


def uniform_(tensor, a=0.0, b=1.0):
    return _fill(tensor, uniform(a, b))


def normal_(tensor, mean=0.0, std=1.0):
    return _fill(tensor, normal(mean, std))


def constant_(tensor, val):
    return _fill(tensor, constant(val))


def zeros_(tensor):
    return _fill(tensor, constant(0.0))


def ones_(tensor):
    return _fill(tensor, constant(1.0))


__all__ += ["calculate_gain", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_",
            "kaiming_normal_", "orthogonal_", "uniform_", "normal_", "constant_", "zeros_",
            "ones_"]
