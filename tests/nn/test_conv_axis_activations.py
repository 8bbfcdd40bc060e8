"""Convolutions' activations over an axis (softmax, log_softmax, glu) take the channels, axis 1
of pyfront's channels-first layout, as Keras' take its channels-last images' last axis; they
took the width (a segmentation head's per-pixel softmax summed to 1 along each image row)."""
import numpy as np
import pytest

import pyfront as pf

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("make,shape", [
    (lambda a: pf.nn.Conv1D(4, 3, activation=a), (2, 3, 9)),
    (lambda a: pf.nn.Conv2D(4, 3, padding="same", activation=a), (2, 3, 5, 6)),
    (lambda a: pf.nn.Conv3D(4, 2, activation=a), (1, 2, 3, 4, 3)),
    (lambda a: pf.nn.Conv2DTranspose(4, 3, strides=2, activation=a), (2, 3, 4, 3)),
])
def test_axis_activations_take_the_channels(make, shape):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    pf.random.seed(0)
    plain = make(None)
    z = torch.tensor(plain(pf.tensor(x)).numpy())
    for act, want in (("softmax", torch.softmax(z, 1)), ("log_softmax", torch.log_softmax(z, 1)),
                      ("glu", torch.nn.functional.glu(z, 1))):
        pf.random.seed(0)
        layer = make(act)
        got = layer(pf.tensor(x))
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(pf.jit(layer)(pf.tensor(x)).numpy(), got.numpy(),
                                   rtol=1e-5, atol=1e-6)
