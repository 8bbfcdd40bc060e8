"""pyfront: eager and compiled deep learning on a native C kernel library.

    import pyfront as pf
    x = pf.tensor(np.random.rand(8, 4).astype("float32"), requires_grad=True)
    loss = pf.relu(x @ w).sum(); loss.backward()

Heavier parts (nn, optim, graphs, the model format) load on first use.
"""
from . import errors
from .autograd import (enable_grad, grad, inference_mode, is_grad_enabled, no_grad,
                       set_grad_enabled)
from .backend.cpu import blas_info, get_num_threads, release_cached_memory, set_num_threads
from .dtypes import (DType, bool_, can_cast, float32, float64, get_default_dtype, int32, int64,
                     promote_types, result_type, set_default_dtype)
from .errors import (AxisError, DeviceError, DTypeError, IndexOutOfRange, LinAlgError,
                     ModelFormatError, NumericError, PyfrontError, ShapeError, TraceError)
from .ops import *  # noqa: F401,F403  (every op function: pf.relu, pf.matmul, ...)
from .ops import name_scope
from .tensor import (Tensor, arange, as_tensor, empty, empty_like, eye, from_numpy, full,
                     full_like, is_floating_point, is_nonzero, is_tensor, linspace, logspace,
                     numel, ones, ones_like, rand, rand_like, randint, randn, randn_like,
                     randperm, tensor, zeros, zeros_like)

bool = bool_  # noqa: A001 (pf.bool, as torch.bool)

__version__ = "0.1.0"


_LAZY = {
    "nn": ("pyfront.nn", None),
    "linalg": ("pyfront.linalg", None),
    "cuda": ("pyfront.cuda", None),
    "from_dlpack": ("pyfront.tensor", "from_dlpack"),
    "random": ("pyfront.random", None),
    "manual_seed": ("pyfront.random", "seed"),
    "testing": ("pyfront.testing", None),
    "optim": ("pyfront.optim", None),
    "losses": ("pyfront.losses", None),
    "data": ("pyfront.data", None),
    "train": ("pyfront.train", None),
    "callbacks": ("pyfront.train.callbacks", None),   # Keras' keras.callbacks
    "metrics": ("pyfront.train.metrics", None),       # Keras' keras.metrics
    "io": ("pyfront.io", None),
    "onnx": ("pyfront.onnx", None),
    "graph": ("pyfront.graph", None),
    "Graph": ("pyfront.graph", "Graph"),
    "Symbol": ("pyfront.graph", "Symbol"),
    "placeholder": ("pyfront.graph", "placeholder"),
    "parameter": ("pyfront.graph", "parameter"),
    "jit": ("pyfront.graph.jit", "jit"),
    "compile": ("pyfront.graph.jit", "compile"),   # torch.compile's name for pf.jit
    "special": ("pyfront.special", None),
    "plot_model": ("pyfront.nn.tracing", "plot_model"),
    "save": ("pyfront.io.model", "save"),
    "load": ("pyfront.io.model", "load"),
    "save_bytes": ("pyfront.io.model", "save_bytes"),
    "load_bytes": ("pyfront.io.model", "load_bytes"),
    "save_checkpoint": ("pyfront.io.model", "save_checkpoint"),
    "load_checkpoint": ("pyfront.io.model", "load_checkpoint"),
    "custom_op": ("pyfront.graph.custom", "custom_op"),
    "register_kernel": ("pyfront.backend.cpu", "register_kernel"),
}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        mod = importlib.import_module(module)
        if module.startswith("pyfront.graph"):
            importlib.import_module("pyfront.nn")   # Graph.parameter makes nn's Parameters
        value = mod if attr is None else getattr(mod, attr)
        globals()[name] = value
        return value
    raise AttributeError("module 'pyfront' has no attribute %r" % name)


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
