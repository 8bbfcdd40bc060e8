"""Activation layers and the activation names layers accept (activation="relu", ...): Activation,
ReLU, Sigmoid, Tanh, GELU, Softmax, LogSoftmax, Softplus, LeakyReLU, the PyTorch/Keras
activations by name (SiLU, ELU, Mish, Hardswish, ...) and PReLU, whose negative slope is learned."""
from .. import ops
from . import init as initializers
from .module import Module, Parameter, register_layer

__all__ = ["activation_fn", "check_activation", "Activation", "ReLU", "Sigmoid", "Tanh", "GELU",
           "Softmax", "LogSoftmax", "Softplus", "LeakyReLU", "SiLU", "ELU", "SELU", "CELU", "Mish",
           "Softsign", "LogSigmoid", "Hardsigmoid", "Hardswish", "Hardtanh", "ReLU6", "PReLU"]


def activation_fn(name, **kwargs):
    """The function for an activation name ("relu", "softmax", ...; None or "linear": identity)."""
    if name is None or name == "linear":
        return None
    table = {
        **ops.elementwise.ACTIVATIONS,     # silu, elu, mish, hardswish, ... (by PyTorch's names)
        "relu": ops.relu, "sigmoid": ops.sigmoid, "tanh": ops.tanh, "gelu": ops.gelu,
        "softplus": ops.softplus,
        "leaky_relu": lambda x: ops.leaky_relu(x, kwargs.get("alpha", 0.01)),
        "softmax": lambda x: ops.softmax(x, -1),
        "log_softmax": lambda x: ops.log_softmax(x, -1),
    }
    if callable(name):
        return name
    try:
        return table[name]
    except KeyError:
        raise ValueError("unknown activation %r; known: %s"
                         % (name, ", ".join(sorted(table)))) from None


def check_activation(name):
    if name is not None and not callable(name):
        activation_fn(name)
    return None if name == "linear" else name


@register_layer
class Activation(Module):
    """An activation as a layer: Activation("relu")."""

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


def _activation_layer(cls_name, act):
    def __init__(self, name=None, **kwargs):
        Activation.__init__(self, act, name=name, **kwargs)

    def get_config(self):
        return dict({"name": self.name}, **self.kwargs)

    cls = type(cls_name, (Activation,), {"__init__": __init__, "get_config": get_config,
                                          "__doc__": "The %s activation as a layer." % act})
    return register_layer(cls)


ReLU = _activation_layer("ReLU", "relu")
Sigmoid = _activation_layer("Sigmoid", "sigmoid")
Tanh = _activation_layer("Tanh", "tanh")
GELU = _activation_layer("GELU", "gelu")
Softmax = _activation_layer("Softmax", "softmax")
LogSoftmax = _activation_layer("LogSoftmax", "log_softmax")
Softplus = _activation_layer("Softplus", "softplus")


@register_layer
class LeakyReLU(Activation):
    """max(x, alpha * x)."""

    def __init__(self, alpha=0.01, name=None):
        Activation.__init__(self, "leaky_relu", name=name, alpha=alpha)

    def get_config(self):
        return {"alpha": self.kwargs["alpha"], "name": self.name}


SiLU = _activation_layer("SiLU", "silu")
ELU = _activation_layer("ELU", "elu")
SELU = _activation_layer("SELU", "selu")
CELU = _activation_layer("CELU", "celu")
Mish = _activation_layer("Mish", "mish")
Softsign = _activation_layer("Softsign", "softsign")
LogSigmoid = _activation_layer("LogSigmoid", "logsigmoid")
Hardsigmoid = _activation_layer("Hardsigmoid", "hardsigmoid")
Hardswish = _activation_layer("Hardswish", "hardswish")
Hardtanh = _activation_layer("Hardtanh", "hardtanh")
ReLU6 = _activation_layer("ReLU6", "relu6")


@register_layer
class PReLU(Module):
    """max(0, x) + weight * min(0, x) with a learned weight: one slope (num_parameters=1) or one
    per channel (axis 1), initialised to `init`, as torch.nn.PReLU."""

    def __init__(self, num_parameters=1, init=0.25, name=None):
        super().__init__(name)
        if not isinstance(num_parameters, int) or num_parameters < 1:
            raise ValueError("%s: num_parameters must be a positive int, got %r"
                             % (self.name, num_parameters))
        self.num_parameters = num_parameters
        self.init = float(init)
        self.weight = Parameter(init=initializers.constant(self.init))
        self.weight.materialize((num_parameters,))

    def forward(self, x):
        return ops.prelu(x, self.weight)

    def get_config(self):
        return {"num_parameters": self.num_parameters, "init": self.init, "name": self.name}
