"""Contract-test cases for the convolution and pooling layers (see test_layer_contract.py)."""
import pyfront as pf

CASES = [
    {"name": "conv1d_same_stride", "make": lambda: pf.nn.Conv1D(4, 3, strides=2, padding="same"),
     "input_shape": (3, 2, 9)},
    {"name": "conv1d_dilated_tanh", "make": lambda: pf.nn.Conv1D(3, 2, dilation=2,
                                                                 activation="tanh"),
     "input_shape": (2, 3, 7)},
    {"name": "conv2d_relu", "make": lambda: pf.nn.Conv2D(4, 3, activation="relu"),
     "input_shape": (2, 2, 6, 5)},
    {"name": "conv2d_groups_padding", "make": lambda: pf.nn.Conv2D(
        4, (3, 2), strides=(2, 1), padding=((1, 0), (1, 1)), groups=2, use_bias=False),
     "input_shape": (2, 4, 5, 4)},
    {"name": "conv2d_gelu_unfused", "make": lambda: pf.nn.Conv2D(3, 2, padding=1,
                                                                 activation="gelu"),
     "input_shape": (2, 2, 4, 4)},
    {"name": "conv3d_same", "make": lambda: pf.nn.Conv3D(2, 2, padding="same",
                                                         activation="sigmoid"),
     "input_shape": (2, 2, 3, 4, 3)},
    {"name": "max_pool1d", "make": lambda: pf.nn.MaxPool1D(3, 2, padding=1),
     "input_shape": (2, 3, 8)},
    {"name": "max_pool2d", "make": lambda: pf.nn.MaxPool2D(2), "input_shape": (2, 3, 6, 5)},
    {"name": "max_pool3d_same", "make": lambda: pf.nn.MaxPool3D(2, padding="same"),
     "input_shape": (1, 2, 3, 4, 5)},
    {"name": "avg_pool1d", "make": lambda: pf.nn.AvgPool1D(2, 1), "input_shape": (2, 3, 6)},
    {"name": "avg_pool2d_pad", "make": lambda: pf.nn.AvgPool2D(3, 2, padding=1),
     "input_shape": (2, 2, 5, 6)},
    {"name": "avg_pool3d_exclude_pad", "make": lambda: pf.nn.AvgPool3D(
        2, padding="same", count_include_pad=False), "input_shape": (1, 2, 3, 3, 4)},
    {"name": "global_avg_pool2d", "make": lambda: pf.nn.GlobalAvgPool2D(),
     "input_shape": (2, 3, 4, 5)},
    {"name": "global_max_pool1d_keepdims", "make": lambda: pf.nn.GlobalMaxPool1D(keepdims=True),
     "input_shape": (2, 3, 7)},
    {"name": "global_max_pool3d", "make": lambda: pf.nn.GlobalMaxPool3D(),
     "input_shape": (2, 2, 2, 3, 2)},
    {"name": "small_cnn", "make": lambda: pf.nn.Sequential([
        pf.nn.Conv2D(3, 3, activation="relu"), pf.nn.MaxPool2D(2),
        pf.nn.Conv2D(4, 2, padding="same", activation="relu"), pf.nn.GlobalAvgPool2D(),
        pf.nn.Dense(2)]), "input_shape": (2, 1, 8, 8)},
]
