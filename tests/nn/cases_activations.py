"""Contract-test cases for the activation layers of nn/activations.py and Dense with the
activations added for PyTorch parity (see test_layer_contract.py)."""
import pyfront as pf

CASES = [
    {"name": "prelu_per_channel", "make": lambda: pf.nn.PReLU(3), "input_shape": (2, 3, 4)},
    {"name": "dense_silu", "make": lambda: pf.nn.Dense(4, activation="silu"),
     "input_shape": (3, 5)},
    {"name": "dense_mish", "make": lambda: pf.nn.Dense(4, activation="mish"),
     "input_shape": (3, 5)},
    {"name": "sequential_elu_hardswish", "make": lambda: pf.nn.Sequential([
        pf.nn.Dense(6, activation="elu"), pf.nn.Hardswish(), pf.nn.Dense(2),
        pf.nn.SELU()]), "input_shape": (4, 3)},
] + [{"name": "activation_" + cls.__name__.lower(), "make": cls, "input_shape": (3, 5)}
     for cls in (pf.nn.SiLU, pf.nn.ELU, pf.nn.CELU, pf.nn.Mish, pf.nn.Softsign,
                 pf.nn.LogSigmoid, pf.nn.Hardsigmoid, pf.nn.Hardtanh, pf.nn.ReLU6)]
