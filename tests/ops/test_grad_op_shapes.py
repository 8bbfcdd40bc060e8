"""Gradient ops check the gradients handed to them against the shape their forward op gives
(they once trusted them: a wrong one reached the kernel, or indexed a shape of another rank),
and the error names the op, the argument and both shapes."""
import numpy as np
import pytest

import pyfront as pf
from pyfront import errors
from pyfront.ops import core


def _apply(name, shapes, attrs, dtypes=None):
    dtypes = dtypes or ["float32"] * len(shapes)
    args = [pf.tensor(np.ones(s, d)) for s, d in zip(shapes, dtypes)]
    with pf.no_grad():
        return core.apply(core.REGISTRY[name], args, attrs)


POOL = {"pool_size": (2, 2), "strides": (2, 2), "padding": "valid"}
CONV = {"strides": (1, 1), "dilation": (1, 1), "padding": "valid", "groups": 1}


@pytest.mark.parametrize("name,shapes,attrs,message", [
    ("max_pool2d_grad", [(2, 3, 4, 4), (2, 3, 2, 3)], POOL,
     r"^max_pool2d_grad: grad must be \(2, 3, 2, 2\), got \(2, 3, 2, 3\)"),
    ("avg_pool2d_grad", [(2, 3, 2), (2, 3, 4, 4)], dict(POOL, count_include_pad=True),
     r"^avg_pool2d_grad: grad must be \(2, 3, 2, 2\), got \(2, 3, 2\)"),
    ("conv2d_grad_input", [(2, 4, 3, 2), (4, 3, 2, 2), (2, 3, 4, 4)], CONV,
     r"^conv2d_grad_input: grad must be \(2, 4, 3, 3\), got \(2, 4, 3, 2\)"),
    ("conv2d_grad_weight", [(2, 3, 4, 4), (2, 4, 2, 2), (4, 3, 2, 2)], CONV,
     r"^conv2d_grad_weight: grad must be \(2, 4, 3, 3\), got \(2, 4, 2, 2\)"),
    ("conv_grad_bias", [()], {}, r"^conv_grad_bias: grad must be \(batch, channels"),
    ("softmax_grad", [(2, 4), (2, 5)], {"axis": -1},
     r"^softmax_grad: grad must be \(2, 4\), got \(2, 5\)"),
    ("reduce_grad", [(2,), (2, 3, 2)], {"axes": (1,), "mode": "mean"},
     r"^reduce_grad: grad \(like \(2, 3, 2\) reduced over axes \(1,\)\) must be \(2, 2\), "
     r"got \(2,\)"),
    ("slice_grad", [(2, 3), (2, 4)], {"slices": ((None, None, 1), (1, 3, 1)), "drop": ()},
     r"^slice_grad: grad must be \(2, 2\), got \(2, 3\)"),
    ("batch_norm_grad", [(2, 3, 2), (3,), (3,), (3,), (2, 3, 3)], {"eps": 1e-5},
     r"^batch_norm_grad: grad must be \(2, 3, 2\), got \(2, 3, 3\)"),
    ("layer_norm_grad", [(2, 3), (3,), (2,), (3,), (2, 3)], {"normalized_dims": 1, "eps": 1e-5},
     r"^layer_norm_grad: rstd must be \(2,\), got \(3,\)"),
])
def test_gradient_ops_refuse_wrong_gradient_shapes(name, shapes, attrs, message):
    with pytest.raises(errors.ShapeError, match=message):
        _apply(name, shapes, attrs)


def test_take_grad_like_of_another_rank_names_take_grad():
    # take's own rule would call the axis error take's
    with pytest.raises(errors.AxisError, match=r"^take_grad: axis 1 is out of range"):
        _apply("take_grad", [(5,), (2, 5), (4,)], {"axis": 1}, ["int64", "float32", "float32"])


def test_rnn_grad_refuses_a_two_dim_x():
    with pytest.raises(errors.ShapeError, match=r"^lstm_grad: x must be \(batch, time, "):
        _apply("lstm_grad", [(3, 2), (2, 16), (4, 16), (3, 10), (3, 4, 4), (3, 4), (3, 4), (0,)],
               {"reverse": False})
