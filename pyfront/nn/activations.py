"""Activation layers beyond the core ones in layers.py: the PyTorch/Keras activations by name
(SiLU, ELU, Mish, Hardswish, ...) and PReLU, whose negative slope is learned."""
from .. import ops
from . import init as initializers
from .layers import _activation_layer
from .module import Module, Parameter, register_layer

__all__ = ["SiLU", "ELU", "SELU", "CELU", "Mish", "Softsign", "LogSigmoid", "Hardsigmoid",
           "Hardswish", "Hardtanh", "ReLU6", "PReLU"]

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
