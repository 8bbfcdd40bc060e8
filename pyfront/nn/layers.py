"""Core layers: Dense, Sequential and the activations."""
from .. import ops
from .model import Trainable
from .module import Module, Parameter, register_layer

__all__ = ["Dense", "Sequential", "Activation", "ReLU", "Sigmoid", "Tanh", "GELU", "Softmax",
           "LogSoftmax", "LeakyReLU", "Softplus", "activation_fn"]

# the activations Dense fuses into its kernel (their gradients need only the output)
_FUSED = {None, "relu", "sigmoid", "tanh"}


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


def _check_activation(name):
    if name is not None and not callable(name):
        activation_fn(name)
    return None if name == "linear" else name


@register_layer
class Dense(Module):
    """y = activation(x @ kernel + bias); kernel is (in_features, units).

    in_features is taken from the first input unless given.
    """

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", in_features=None, name=None):
        super().__init__(name)
        if not isinstance(units, int) or units < 1:
            raise ValueError("Dense: units must be a positive int, got %r" % (units,))
        self.units = units
        self.activation = _check_activation(activation)
        self.use_bias = use_bias
        self.kernel_initializer = kernel_initializer
        self.bias_initializer = bias_initializer
        self.in_features = in_features
        self.kernel = Parameter(init=kernel_initializer)
        self.bias = Parameter(init=bias_initializer) if use_bias else None
        if in_features is not None:
            self.build((None, in_features))
            self.built = True

    def build(self, input_shape):
        if input_shape is None or len(input_shape) < 1 or input_shape[-1] is None:
            raise ValueError("%s: cannot infer in_features from input shape %s"
                             % (self.name, input_shape))
        self.in_features = int(input_shape[-1])
        self.kernel.materialize((self.in_features, self.units))
        if self.bias is not None:
            self.bias.materialize((self.units,))

    def forward(self, x):
        act = self.activation
        if act in _FUSED:
            return ops.linear(x, self.kernel, self.bias, act)
        y = ops.linear(x, self.kernel, self.bias)
        return activation_fn(act)(y)

    def get_config(self):
        if not all(isinstance(v, str) or v is None for v in
                   (self.activation, self.kernel_initializer, self.bias_initializer)):
            return None
        return {"units": self.units, "activation": self.activation, "use_bias": self.use_bias,
                "kernel_initializer": self.kernel_initializer,
                "bias_initializer": self.bias_initializer, "in_features": self.in_features,
                "name": self.name}


@register_layer
class Sequential(Trainable, Module):
    """Layers applied one after another. Sequential([a, b]) or Sequential(a, b)."""

    def __init__(self, layers=None, *more, name=None):
        super().__init__(name)
        if isinstance(layers, Module):
            layers = [layers] + list(more)
        for layer in layers or []:
            self.add(layer)

    def add(self, layer):
        if not isinstance(layer, Module):
            raise TypeError("Sequential takes Modules, got %r" % (layer,))
        setattr(self, str(len(self._modules)), layer)

    @property
    def layers(self):
        return list(self._modules.values())

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self._modules)

    def forward(self, x):
        for layer in self._modules.values():
            x = layer(x)
        return x

    def get_config(self):
        layers = []
        for layer in self.layers:
            cfg = layer.get_config()
            if cfg is None:
                return None
            layers.append({"class": type(layer).__name__, "config": cfg})
        return {"layers": layers, "name": self.name}

    @classmethod
    def from_config(cls, config):
        from .module import layer_class

        layers = [layer_class(item["class"]).from_config(item["config"])
                  for item in config["layers"]]
        return cls(layers, name=config.get("name"))


@register_layer
class Activation(Module):
    """An activation as a layer: Activation("relu")."""

    def __init__(self, activation, name=None, **kwargs):
        super().__init__(name)
        self.activation = _check_activation(activation)
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

