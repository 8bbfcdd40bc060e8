"""Contract-test cases for normalisation, dropout, embedding and the structural layers (see
test_layer_contract.py).

Randomness: the contract builds each layer once in training mode and then checks it in
evaluation mode, where Dropout is the identity, so eager and compiled runs compare exactly;
the rate-0 case runs the dropout kernel itself in its build call. Masks in training mode
(reproducible per seed, new on every call, the same in eager and compiled runs, replayed by
the gradient) are tested in tests/ops/test_dropout.py and tests/nn/test_basic_layers.py.

The merge layers take several inputs; TwoBranchMerge feeds them two Dense branches of the one
input the contract gives, so they run under the same checks.
"""
from pyfront import nn
from pyfront.nn import Module, register_layer


@register_layer
class TwoBranchMerge(Module):
    """Two Dense branches of one input joined by Add or Concatenate (a test helper)."""

    def __init__(self, merge="add", axis=-1, units=5, name=None):
        super().__init__(name)
        self.merge, self.axis, self.units = merge, axis, units
        self.left = nn.Dense(units)
        self.right = nn.Dense(units, activation="tanh")
        self.join = nn.Add() if merge == "add" else nn.Concatenate(axis)

    def forward(self, x):
        if self.merge == "add":
            return self.join(self.left(x), self.right(x))
        return self.join([self.left(x), self.right(x)])

    def get_config(self):
        return {"merge": self.merge, "axis": self.axis, "units": self.units, "name": self.name}


CASES = [
    {"name": "batch_norm1d_features", "make": lambda: nn.BatchNorm1D(), "input_shape": (6, 4)},
    {"name": "batch_norm1d_sequence", "make": lambda: nn.BatchNorm1D(momentum=0.3),
     "input_shape": (4, 3, 5)},
    {"name": "batch_norm2d", "make": lambda: nn.BatchNorm2D(), "input_shape": (4, 3, 5, 5)},
    {"name": "batch_norm2d_channel_path", "make": lambda: nn.BatchNorm2D(eps=1e-3),
     "input_shape": (3, 2, 6, 6)},
    {"name": "batch_norm3d", "make": lambda: nn.BatchNorm3D(), "input_shape": (2, 2, 3, 3, 3)},
    {"name": "batch_norm_no_affine_batch_stats",
     "make": lambda: nn.BatchNorm(affine=False, track_running_stats=False),
     "input_shape": (4, 3, 6)},
    {"name": "layer_norm_last_dim", "make": lambda: nn.LayerNorm(), "input_shape": (4, 6)},
    {"name": "layer_norm_two_dims", "make": lambda: nn.LayerNorm((3, 4)),
     "input_shape": (2, 5, 3, 4)},
    {"name": "layer_norm_no_affine", "make": lambda: nn.LayerNorm(elementwise_affine=False),
     "input_shape": (3, 7)},
    {"name": "dropout_rate0", "make": lambda: nn.Dropout(0.0, seed=0), "input_shape": (4, 6)},
    {"name": "dropout_half", "make": lambda: nn.Dropout(0.5), "input_shape": (3, 2, 5)},
    {"name": "embedding", "make": lambda: nn.Embedding(10, 4, input_length=5),
     "input_shape": (3, 5), "input_dtype": "int64", "input_range": (0, 10)},
    {"name": "embedding_flatten_dense", "make": lambda: nn.Sequential([
        nn.Embedding(12, 3, input_length=4), nn.Flatten(), nn.Dense(2)]),
     "input_shape": (3, 4), "input_dtype": "int64", "input_range": (0, 12)},
    {"name": "flatten", "make": lambda: nn.Flatten(), "input_shape": (2, 3, 4, 2)},
    {"name": "flatten_from_dim2", "make": lambda: nn.Flatten(start_dim=2),
     "input_shape": (2, 3, 4, 2)},
    {"name": "reshape", "make": lambda: nn.Reshape((4, -1)), "input_shape": (2, 3, 4, 2)},
    {"name": "identity_between_dense", "make": lambda: nn.Sequential([
        nn.Dense(4), nn.Identity(), nn.Dense(3)]), "input_shape": (3, 5)},
    {"name": "add_two_branches", "make": lambda: TwoBranchMerge("add"), "input_shape": (3, 6)},
    {"name": "concatenate_two_branches", "make": lambda: TwoBranchMerge("concatenate", axis=1),
     "input_shape": (2, 3, 6)},
]
