"""Channels-last images given to channels-first convolutions: the error (or, for a layer that
has not seen an input yet, the warning) says the layout is channels-first, at the convolution
rather than at a later pooling layer."""
import warnings

import numpy as np
import pytest

import pyfront as pf


@pytest.mark.parametrize("nd", [1, 2, 3])
def test_a_built_conv_names_the_layout_when_the_channels_are_last(nd):
    layer = getattr(pf.nn, "Conv%dD" % nd)(4, 3, name="conv")
    first = np.zeros((2, 3) + (5,) * nd, np.float32)
    layer(pf.tensor(first))
    last = np.moveaxis(first, 1, -1)
    spatial = pf.ops.conv.SPATIAL_DIMS[nd]
    with pytest.raises(pf.ShapeError) as info:
        layer(pf.tensor(last))
    assert str(info.value) == (
        "Conv%dD 'conv': the input %s has 5 channels on axis 1 but the layer takes 3, the size "
        "of its last axis: pyfront's layout is channels-first (batch, channels, %s); if these "
        "are channels-last, move the channels with np.moveaxis(x, -1, 1)"
        % (nd, last.shape, spatial))
    assert layer(pf.tensor(np.moveaxis(last, -1, 1))).shape[:2] == (2, 4)


def test_a_cnn_on_channels_last_images_fails_at_the_conv_in_predict_and_compiled():
    cnn = pf.nn.Sequential([pf.nn.Conv2D(4, 3, padding="same"), pf.nn.MaxPool2D(2),
                            pf.nn.Flatten(), pf.nn.Dense(2)])
    images = np.zeros((2, 3, 8, 8), np.float32)
    cnn.predict(images)
    for model in (cnn, cnn.hybridize()):
        with pytest.raises(pf.ShapeError,
                           match=r"Conv2D 'conv2d\w*': the input .*channels-first"):
            model.predict(np.moveaxis(images, 1, -1))


def test_a_new_conv_warns_when_its_first_input_looks_channels_last():
    cnn = pf.nn.Sequential([pf.nn.Conv2D(4, 3, padding="same", name="c1"), pf.nn.MaxPool2D(2),
                            pf.nn.Flatten(), pf.nn.Dense(2)])
    with pytest.warns(UserWarning, match=r"Conv2D 'c1' takes 28 input channels from axis 1 of "
                      r"\(2, 28, 28, 1\), whose last axis is 1: pyfront's layout is "
                      r"channels-first"):
        with pytest.raises(pf.ShapeError):          # the pooling layer cannot fit either
            cnn.predict(np.zeros((2, 28, 28, 1), np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for shape in [(2, 1, 28, 28), (2, 3, 32, 32), (2, 16, 8, 8)]:
            pf.nn.Conv2D(4, 3)(pf.tensor(np.zeros(shape, np.float32)))
