"""Dense: the fully connected layer, its activation fused into the kernel where it can be."""
from .. import ops
from .activations import activation_fn, check_activation
from .module import Module, Parameter, register_layer

__all__ = ["Dense"]


# the activations Dense fuses into its kernel (their gradients need only the output)
_FUSED = {None, "relu", "sigmoid", "tanh"}


@register_layer
class Dense(Module):
    """y = activation(x @ kernel + bias); kernel is (in_features, units).

    in_features is taken from the first input unless given.
    """

    torch_state = {"weight": ("kernel", True)}

    def __init__(self, units, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", in_features=None, name=None):
        super().__init__(name)
        if not isinstance(units, int) or units < 1:
            raise ValueError("Dense: units must be a positive int, got %r" % (units,))
        self.units = units
        self.activation = check_activation(activation)
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
