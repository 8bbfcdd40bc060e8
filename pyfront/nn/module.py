"""Module and Parameter: layers own parameters that exist from construction and take their
shapes from the first input (deferred initialisation), so an optimizer can be built first."""
import contextlib
import functools
import re
import threading

import numpy as np

from .. import autograd, errors, random
from ..backend import cuda
from ..dtypes import as_dtype, float32
from ..graph.symbol import set_parameter_factory
from ..ops.core import name_scope
from ..ops.names import rename
from ..tensor import Tensor, move_to_device, storage_changed
from . import init as initializers

__all__ = ["Parameter", "Module", "register_layer", "layer_class", "shapes_only",
           "torch_aliases"]


class _ShapesOnly(threading.local):
    active = False


_shapes_only = _ShapesOnly()


@contextlib.contextmanager
def shapes_only():
    """Inside, Parameter.materialize records the shape (pending_shape) and allocates nothing:
    pf.load builds a model from a file's config so, and checks those shapes against the file's
    tensors before any memory is allocated (a small edited file must not cost gigabytes)."""
    before = _shapes_only.active
    _shapes_only.active = True
    try:
        yield
    finally:
        _shapes_only.active = before


class Parameter(Tensor):
    """A trainable tensor owned by a layer. Until its layer sees an input it has no memory."""

    __slots__ = ("_init", "_conv_layout", "trainable", "pending_shape", "home_device")
    is_parameter = True
    kind = "parameter"

    def __init__(self, data=None, name=None, init="zeros", dtype=float32, trainable=True,
                 conv_layout=False):
        if data is not None:
            super().__init__(data, dtype=dtype, name=name)
        else:
            Tensor.__init__(self, np.zeros(0, as_dtype(dtype).np), name=name)
            self._data = None
            self.dtype = as_dtype(dtype)
        self.requires_grad = bool(trainable) and self.dtype.is_float
        self.trainable = bool(trainable)
        self._init = init
        self._conv_layout = conv_layout
        self.pending_shape = None
        # where a parameter without memory yet is made: model.to("cuda") before the first
        # call (the layers take their shapes from it) must not leave the weights on the CPU
        self.home_device = None

    @property
    def initialized(self):
        return self._data is not None

    def _array(self):
        if self._data is None:
            raise errors.PyfrontError(
                "parameter '%s' is not initialized yet: it takes its shape from its layer's "
                "first input (call the model once, or build it with model.build(input_shape))"
                % (self.name or "?"))
        return self._data

    def materialize(self, shape, rng=None):
        """Give the parameter memory of `shape`, filled by its initializer."""
        shape = tuple(int(d) for d in shape)
        if self._data is not None:
            if self._data.shape != shape:
                raise errors.ShapeError("parameter '%s' already has shape %s, not %s"
                                        % (self.name, self._data.shape, shape))
            return
        if _shapes_only.active:
            self.pending_shape = shape
            return
        init = initializers.get(self._init)
        values = init(shape, self.dtype.np, rng or random.generator(), self._conv_layout)
        values = np.ascontiguousarray(values, dtype=self.dtype.np)
        self._data = values if self.home_device is None else cuda.array_to(values,
                                                                            self.home_device)
        storage_changed()

    def __repr__(self):
        if self._data is None:
            return "Parameter(%s, uninitialized)" % (self.name,)
        return "Parameter(%s, shape=%s, dtype=%s)" % (self.name, self.shape, self.dtype.name)


def _graph_parameter(name, shape, init, dtype):
    p = Parameter(name=name, init=init, dtype=dtype)
    p.materialize(shape)
    return p


set_parameter_factory(_graph_parameter)     # Graph.parameter / pf.parameter make Parameters


# ---------------------------------------------------------------------------------------------
# layers that pf.load may rebuild from a file: a fixed table, never an import by name

_LAYERS = {}


def register_layer(cls):
    """Let pf.load rebuild this class from a file's config (decorator). Only registered
    classes are ever constructed when loading; nothing named in a file is imported."""
    name = cls.__name__
    if name in _LAYERS and _LAYERS[name] is not cls:
        raise ValueError("a layer class named %r is registered already" % name)
    _LAYERS[name] = cls
    return cls


def layer_class(name):
    try:
        return _LAYERS[name]
    except KeyError:
        raise errors.ModelFormatError(
            "the file names layer class %r, which is not a registered pyfront layer; register "
            "it with @pyfront.nn.register_layer before loading" % (name,)) from None


def torch_aliases(**aliases):
    """Class decorator: the constructor also takes PyTorch's keyword names, aliases=
    {torch_name: pyfront_name} (stride= for strides=, p= for rate=, ...); giving both is an
    error. The signature and configs keep pyfront's names."""

    def wrap(cls):
        init = cls.__init__

        @functools.wraps(init)
        def __init__(self, *args, **kwargs):
            rename(kwargs, aliases, cls.__name__)
            init(self, *args, **kwargs)

        __init__.torch_aliases = dict(getattr(init, "torch_aliases", {}), **aliases)
        cls.__init__ = __init__
        return cls
    return wrap


_counters = {}
_TORCH_BATCH_COUNT = "num_batches_tracked"


class _Depth(threading.local):
    value = 0


_depth = _Depth()       # how many Module calls are running: functional models record only
                        # the calls made at depth 0 (pf.nn.functional)


def module_depth():
    return _depth.value


def _auto_name(cls_name):
    # CamelCase to snake_case, acronyms kept whole: LSTM -> lstm, MultiHeadAttention ->
    # multi_head_attention, Conv2D -> conv2d
    base = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", cls_name).lower()
    base = re.sub(r"_?(\d)_d$", r"\1d", base)   # Conv2D: conv2_d -> conv2d
    n = _counters.get(base, 0)
    _counters[base] = n + 1
    return base if n == 0 else "%s_%d" % (base, n)


_MODEL_ONLY = frozenset(["compile", "fit", "evaluate", "predict", "summary"])


class Module:
    """Base of layers and models.

    Subclasses create parameters in __init__ (shapes may wait for build), implement
    build(input_shape) when shapes depend on the input, and forward(*inputs).
    """

    def __init__(self, name=None):
        object.__setattr__(self, "_params", {})
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_buffers", {})
        self.training = True
        self.name = name or _auto_name(type(self).__name__)
        self.built = False
        self.input_spec = None     # [(shape with None batch, dtype)] seen on the first call

    # ---- attribute bookkeeping ----
    def __getattr__(self, name):
        # only reached for missing attributes: say where the training API lives
        if name in _MODEL_ONLY:
            raise AttributeError(
                "%s (%s) is a layer, and %s belongs to models: put it in pf.nn.Sequential, "
                "build a functional pf.nn.Model, or subclass pf.nn.Model instead of "
                "pf.nn.Module" % (self.name, type(self).__name__, name))
        raise AttributeError("%r object has no attribute %r" % (type(self).__name__, name))

    def __setattr__(self, key, value):
        if isinstance(value, Parameter):
            self._params[key] = value
            if value.name is None:
                value.name = "%s/%s" % (self.name, key)
        elif isinstance(value, Module):
            self._modules[key] = value
        elif key in self.__dict__.get("_params", {}) and value is None:
            del self._params[key]
        object.__setattr__(self, key, value)

    def register_buffer(self, key, value, optional=False):
        """Non-trainable state saved with the model (running statistics, for instance).
        optional: a state being loaded may lack it, and it keeps its value then (a dropout
        layer's generator position: torch keeps its generator outside the model, so a torch
        state_dict has none)."""
        self._buffers[key] = value
        if optional:
            self.__dict__.setdefault("_optional_buffer_keys", set()).add(key)
        object.__setattr__(self, key, value)

    # torch's name of a tensor -> (this layer's name, whether torch stores its transpose): what
    # load_state_dict renames in a torch state_dict (Linear's weight is (out, in), a Dense
    # kernel (in, out); the norms' weight and bias are gamma and beta here)
    torch_state = {}

    def _from_torch_names(self, state):
        """state with the torch names of this model's tensors renamed (a copy, if any is)."""
        renamed = None
        for prefix, m in self.named_modules():
            for theirs, (ours, transposed) in type(m).torch_state.items():
                key = prefix + theirs
                if key in state and prefix + ours not in state and \
                        getattr(m, ours, None) is not None:
                    renamed = dict(state) if renamed is None else renamed
                    value = np.asarray(renamed.pop(key))
                    renamed[prefix + ours] = value.T if transposed else value
        return state if renamed is None else renamed

    def _optional_buffers(self):
        """ids of the buffers a loaded state may lack (register_buffer's optional)."""
        return {id(m._buffers[key]) for m in self.modules()
                for key in m.__dict__.get("_optional_buffer_keys", ())}

    # ---- calling ----
    def __call__(self, *inputs, **kwargs):
        outer = _depth.value == 0
        _depth.value += 1
        try:
            with name_scope(self.name):
                if not self.built:
                    self.build(*[getattr(x, "shape", None) for x in inputs])
                    self.built = True
                if self.input_spec is None:
                    self.input_spec = [(tuple(getattr(x, "shape", ())),
                                        getattr(x, "dtype", None)) for x in inputs]
                out = self.forward(*inputs, **kwargs)
        finally:
            _depth.value -= 1
        if outer:
            graph = next((x.graph for x in inputs if getattr(x, "symbolic", False)), None)
            record = getattr(getattr(graph, "recorder", None), "record_layer", None)
            if record is not None:          # a functional model build (pf.nn.Input)
                record(self, inputs, kwargs, out)
        return out

    def build(self, *input_shapes):
        """Create parameter memory from the input shapes (deferred initialisation)."""

    def forward(self, *inputs):
        raise NotImplementedError("%s must implement forward()" % type(self).__name__)

    # ---- parameters and state ----
    def children(self):
        return list(self._modules.values())

    def named_modules(self, prefix=""):
        yield prefix, self
        for key, m in self._modules.items():
            yield from m.named_modules(prefix + key + ".")

    def modules(self):
        seen = set()
        for _, m in self.named_modules():
            if id(m) not in seen:
                seen.add(id(m))
                yield m

    def named_parameters(self, prefix="", trainable_only=False):
        seen = set()
        for key, p in self.named_tensors(prefix, include_buffers=False):
            if id(p) in seen or (trainable_only and not p.trainable):
                continue
            seen.add(id(p))
            yield key, p

    def parameters(self, trainable_only=True):
        """The parameters (trainable ones by default), in a stable order."""
        return [p for _, p in self.named_parameters(trainable_only=trainable_only)]

    def named_tensors(self, prefix="", include_buffers=True):
        """(structural name, tensor) for every parameter and (include_buffers) buffer, shared
        ones repeated under each name: the names state_dict and the model format use. A module
        that keeps its tensors elsewhere overrides this walk (nn.CompiledModule, io's
        GraphModule)."""
        for key, p in self._params.items():
            yield prefix + key, p
        if include_buffers:
            for key, b in self._buffers.items():
                yield prefix + key, b
        for key, m in self._modules.items():
            yield from m.named_tensors(prefix + key + ".", include_buffers)

    def state_dict(self):
        """{structural name: numpy array} of every parameter and buffer (no copies; host
        copies of those in GPU memory)."""
        out = {}
        for key, t in self.named_tensors():
            out[key] = t.cpu().numpy()
        return out

    def load_state_dict(self, state, strict=True):
        """Copy values into the parameters in place (so optimizers and plans stay bound)."""
        state = self._from_torch_names(state)
        own = dict(self.named_tensors())
        optional = self._optional_buffers()
        missing = [k for k, t in own.items() if k not in state and id(t) not in optional]
        # torch's BatchNorm counts its batches; pyfront's running averages do not need it
        unexpected = [k for k in state if k not in own and
                      not k.endswith(_TORCH_BATCH_COUNT)]
        if strict and (missing or unexpected):
            raise errors.ModelFormatError(
                "state does not match the model: missing %s, unexpected %s"
                % (missing or "none", unexpected or "none"))
        for key, t in own.items():
            if key not in state:
                continue
            value = np.asarray(state[key])
            if isinstance(t, Parameter) and not t.initialized:
                t.materialize(value.shape)
            if tuple(t.shape) != value.shape:
                raise errors.ShapeError("'%s' has shape %s in the model but %s in the state"
                                        % (key, tuple(t.shape), value.shape))
            with autograd.no_grad():   # loading writes the parameter's memory, off the tape
                t.copy_(value)         # host or GPU memory alike
        for m in self.modules():
            if all(not isinstance(p, Parameter) or p.initialized for p in m._params.values()):
                m.built = m.built or bool(m._params)

    def to(self, dtype):
        """Convert every float parameter and buffer to dtype, in place (float64 for gradient
        checks), or move them to a device ("cuda", "cuda:N", "cpu"). Do it before creating
        optimizers: their state follows the old arrays."""
        if cuda.is_device(dtype):
            move_to_device((t for _, t in self.named_tensors()), dtype)
            return self
        dtype = as_dtype(dtype)
        if not dtype.is_float:
            raise errors.DTypeError("parameters can only become a float dtype, got %s"
                                    % dtype.name)
        changed = False
        for _, t in self.named_tensors():
            if t.dtype.is_float and t.dtype is not dtype and t._data is not None:
                t._data = np.ascontiguousarray(t._data, dtype=dtype.np)
                t.dtype = dtype
                changed = True
            elif isinstance(t, Parameter) and t._data is None:
                t.dtype = dtype
        if changed:
            storage_changed()
        return self

    def zero_grad(self, set_to_none=True):
        """Drop the parameters' gradients, or zero them in place (set_to_none=False)."""
        from ..optim.optimizer import _clear_grads

        _clear_grads(self.parameters(trainable_only=False), set_to_none)

    # ---- modes ----
    def train(self, mode=True):
        for m in self.modules():
            m.training = mode
        return self

    def eval(self):
        return self.train(False)

    # ---- configuration (what pf.save writes so pf.load can rebuild the model) ----
    def get_config(self):
        """Constructor arguments as JSON values; None when the module cannot be described so
        (then the model is saved as its traced graph instead)."""
        return None

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    # ---- compiled execution ----
    def hybridize(self):
        """A compiled view of this module: same parameters, the forward run as a graph."""
        from .compiled import CompiledModule

        return CompiledModule(self)

    def __repr__(self):
        lines = [type(self).__name__ + "(" + self.name]
        for key, m in self._modules.items():
            lines.append("  (%s): %s" % (key, repr(m).replace("\n", "\n  ")))
        return "\n".join(lines) + ")"
