"""Contract-test cases for the transposed convolutions, upsampling, zero padding, GroupNorm and
InstanceNorm layers (see test_layer_contract.py)."""
import pyfront as pf

CASES = [
    {"name": "conv1d_transpose", "make": lambda: pf.nn.Conv1DTranspose(3, 3, strides=2,
                                                                       padding=1,
                                                                       output_padding=1),
     "input_shape": (2, 2, 5), "bad_input_shape": (2, 5)},
    {"name": "conv2d_transpose_groups_tanh", "make": lambda: pf.nn.Conv2DTranspose(
        4, (2, 3), strides=(2, 1), dilation=(1, 2), groups=2, activation="tanh"),
     "input_shape": (2, 4, 3, 3), "bad_input_shape": (2, 4, 3)},
    {"name": "conv3d_transpose", "make": lambda: pf.nn.Conv3DTranspose(2, 2, strides=2,
                                                                       use_bias=False),
     "input_shape": (1, 2, 2, 3, 2)},
    {"name": "upsampling1d_linear", "make": lambda: pf.nn.UpSampling1D(3, "linear"),
     "input_shape": (2, 3, 4), "bad_input_shape": (2, 3, 4, 4)},
    {"name": "upsampling2d_nearest", "make": lambda: pf.nn.UpSampling2D((2, 3)),
     "input_shape": (2, 3, 4, 3)},
    {"name": "upsampling2d_bilinear", "make": lambda: pf.nn.UpSampling2D(2, "bilinear"),
     "input_shape": (2, 2, 3, 4)},
    {"name": "upsampling3d", "make": lambda: pf.nn.UpSampling3D(2), "input_shape": (1, 2, 2, 3, 2)},
    {"name": "zero_padding1d", "make": lambda: pf.nn.ZeroPadding1D((1, 2)),
     "input_shape": (2, 3, 4), "bad_input_shape": (2, 3)},
    {"name": "zero_padding2d", "make": lambda: pf.nn.ZeroPadding2D(((1, 0), (2, 1))),
     "input_shape": (2, 2, 3, 3)},
    {"name": "zero_padding3d", "make": lambda: pf.nn.ZeroPadding3D(1),
     "input_shape": (1, 2, 2, 2, 2)},
    {"name": "group_norm", "make": lambda: pf.nn.GroupNorm(2), "input_shape": (2, 4, 3, 2),
     "bad_input_shape": (2, 6, 3, 2)},
    {"name": "instance_norm_affine", "make": lambda: pf.nn.InstanceNorm(affine=True),
     "input_shape": (2, 3, 5), "bad_input_shape": (2, 3)},
    {"name": "max_pool2d_dilated_ceil", "make": lambda: pf.nn.MaxPool2D(
        3, 2, padding=1, dilation=2, ceil_mode=True), "input_shape": (2, 2, 7, 6)},
    {"name": "avg_pool1d_ceil", "make": lambda: pf.nn.AvgPool1D(2, 2, ceil_mode=True),
     "input_shape": (2, 3, 7)},
    {"name": "decoder", "make": lambda: pf.nn.Sequential([
        pf.nn.Conv2D(4, 3, padding=1, activation="relu"), pf.nn.GroupNorm(2),
        pf.nn.Conv2DTranspose(2, 2, strides=2), pf.nn.UpSampling2D(2, "bilinear"),
        pf.nn.ZeroPadding2D(1)]), "input_shape": (2, 1, 4, 4)},
]
