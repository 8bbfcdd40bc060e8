"""Contract-test cases for the layers of torch.nn.functional's second batch (see
test_layer_contract.py): the shrink/threshold activations and RReLU, adaptive max and
power-average pooling, channel and alpha dropout, the pixel shuffles, Unfold/Fold, RMSNorm,
LocalResponseNorm and the padding layers."""
import pyfront as pf

_PADS = [(kind, nd) for kind in ("Zero", "Constant", "Reflection", "Replication", "Circular")
         for nd in (1, 2, 3)]
_PAD_INPUTS = {1: (2, 3, 5), 2: (2, 3, 4, 5), 3: (2, 2, 3, 4, 5)}


def _pad(kind, nd):
    cls = getattr(pf.nn, "%sPad%dd" % (kind, nd))
    padding = (2, 1, 0, 2, 1, 1)[:2 * nd]
    return cls(padding, 0.5) if kind == "Constant" else cls(padding)


CASES = [
    {"name": "hardshrink", "make": pf.nn.Hardshrink, "input_shape": (3, 5)},
    {"name": "softshrink", "make": lambda: pf.nn.Softshrink(0.3), "input_shape": (3, 5)},
    {"name": "tanhshrink", "make": pf.nn.Tanhshrink, "input_shape": (3, 5)},
    {"name": "threshold", "make": lambda: pf.nn.Threshold(0.1, -2.0), "input_shape": (3, 5)},
    {"name": "rrelu", "make": pf.nn.RReLU, "input_shape": (3, 5)},
    {"name": "adaptive_max_pool1d", "make": lambda: pf.nn.AdaptiveMaxPool1d(3),
     "input_shape": (2, 3, 7)},
    {"name": "adaptive_max_pool2d", "make": lambda: pf.nn.AdaptiveMaxPool2d((2, 3)),
     "input_shape": (2, 3, 5, 7)},
    {"name": "lp_pool1d", "make": lambda: pf.nn.LPPool1d(4, 3, 2), "input_shape": (2, 3, 7)},
    {"name": "lp_pool2d", "make": lambda: pf.nn.LPPool2d(2, 2), "input_shape": (2, 3, 4, 6)},
    {"name": "dropout1d", "make": lambda: pf.nn.Dropout1d(0.3), "input_shape": (2, 3, 5)},
    {"name": "dropout2d", "make": lambda: pf.nn.Dropout2d(0.3), "input_shape": (2, 3, 4, 5)},
    {"name": "dropout3d", "make": lambda: pf.nn.Dropout3d(0.3),
     "input_shape": (2, 3, 2, 3, 4)},
    {"name": "alpha_dropout", "make": lambda: pf.nn.AlphaDropout(0.2), "input_shape": (3, 5)},
    {"name": "pixel_shuffle", "make": lambda: pf.nn.PixelShuffle(2),
     "input_shape": (2, 8, 3, 4)},
    {"name": "pixel_unshuffle", "make": lambda: pf.nn.PixelUnshuffle(2),
     "input_shape": (2, 2, 4, 6)},
    {"name": "unfold", "make": lambda: pf.nn.Unfold((2, 3), padding=1, stride=(2, 1)),
     "input_shape": (2, 3, 5, 4)},
    # (5, 4) windows of 2 x 2 with stride 1: 4 x 3 = 12 columns of 3 channels x 4 taps
    {"name": "fold", "make": lambda: pf.nn.Fold((5, 4), 2), "input_shape": (2, 12, 12)},
    {"name": "rms_norm", "make": lambda: pf.nn.RMSNorm(5), "input_shape": (3, 4, 5)},
    {"name": "rms_norm_2d_no_affine", "make": lambda: pf.nn.RMSNorm((4, 5), 1e-3, False),
     "input_shape": (3, 4, 5)},
    {"name": "local_response_norm", "make": lambda: pf.nn.LocalResponseNorm(3, 0.1, 0.6, 1.5),
     "input_shape": (2, 5, 3, 4)},
] + [{"name": "%s_pad%dd" % (kind.lower(), nd), "make": (lambda k=kind, n=nd: _pad(k, n)),
      "input_shape": _PAD_INPUTS[nd]} for kind, nd in _PADS]
