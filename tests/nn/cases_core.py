"""Contract-test cases for the core layers (see test_layer_contract.py)."""
import pyfront as pf

CASES = [
    {"name": "dense", "make": lambda: pf.nn.Dense(5), "input_shape": (3, 4)},
    {"name": "dense_relu", "make": lambda: pf.nn.Dense(6, activation="relu"),
     "input_shape": (3, 4)},
    {"name": "dense_gelu_nobias", "make": lambda: pf.nn.Dense(3, activation="gelu",
                                                              use_bias=False),
     "input_shape": (2, 5)},
    {"name": "dense_3d_input", "make": lambda: pf.nn.Dense(3, activation="tanh"),
     "input_shape": (2, 3, 4)},
    {"name": "sequential_mlp", "make": lambda: pf.nn.Sequential([
        pf.nn.Dense(8, activation="sigmoid"), pf.nn.Dense(4, activation="leaky_relu"),
        pf.nn.Dense(2)]), "input_shape": (4, 6)},
    {"name": "activation_softmax", "make": lambda: pf.nn.Softmax(), "input_shape": (3, 5)},
    {"name": "activation_softplus", "make": lambda: pf.nn.Softplus(), "input_shape": (3, 5)},
    {"name": "leaky_relu_layer", "make": lambda: pf.nn.LeakyReLU(0.2), "input_shape": (3, 5)},
]
