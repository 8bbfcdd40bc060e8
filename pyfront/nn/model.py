"""Models are the Modules that train. A layer is a Module without a training API (as in Keras,
where fit belongs to Model, not to Layer); Sequential, the functional Model, compiled models and
user-written models carry compile / fit / evaluate / predict / summary through Trainable.

The training loop itself lives in pyfront.train, above nn in the layering: importing it
installs it here (install_training). A model used before anything imported pyfront.train asks
the package for it (`pyfront.train` is one of the package's lazily loaded names), so nn never
imports the trainer."""
import numpy as np

from ..dtypes import as_dtype
from ..tensor import Tensor
from .module import Module, Parameter, register_layer

__all__ = ["Trainable", "Sequential", "ModuleList", "ModuleDict", "ParameterList",
           "ParameterDict", "install_training"]


_training = None


def install_training(api):
    """Called by pyfront.train.api on import: api provides compile, fit, evaluate, predict,
    summary and compiled_with_jit as functions of the model."""
    global _training
    _training = api


def _api():
    if _training is None:
        import pyfront

        pyfront.train          # loading the package's train namespace installs it
    return _training


class Trainable:
    """The training API of a model class; mix it into a Module subclass (before Module):

        class Net(pf.nn.Trainable, pf.nn.Module):
            def __init__(self):
                super().__init__()
                self.hidden, self.out = pf.nn.Dense(64, activation="relu"), pf.nn.Dense(10)
            def forward(self, x):
                return self.out(self.hidden(x))

        net = Net().compile(optimizer="adam", loss="cross_entropy", metrics=["accuracy"])
        history = net.fit(x, y, epochs=3)

    Subclassing pf.nn.Model without inputs/outputs (Keras style) gives the same."""

    # the arguments are those of the functions in pyfront.train.api, documented there
    def compile(self, *args, **kwargs):
        """compile(optimizer="adam", loss=None, metrics=None, loss_weights=None, jit=False):
        choose the optimizer, the loss (one per output, weighed by loss_weights) and the
        metrics; jit=True trains with compiled steps. Returns the model."""
        return _api().compile(self, *args, **kwargs)

    def fit(self, *args, **kwargs):
        """fit(x, y, batch_size=32, epochs=1, verbose=1, callbacks=None, validation_split=0.0,
        validation_data=None, shuffle=True, class_weight=None, initial_epoch=0, seed=None):
        train; returns a History."""
        return _api().fit(self, *args, **kwargs)

    def evaluate(self, *args, **kwargs):
        """evaluate(x, y, batch_size=32, verbose=0, return_dict=False): loss and metrics over
        all of the data."""
        return _api().evaluate(self, *args, **kwargs)

    def predict(self, *args, **kwargs):
        """predict(x, batch_size=32, verbose=0): outputs for x as numpy, in batches, in eval
        mode."""
        return _api().predict(self, *args, **kwargs)

    def summary(self, *args, **kwargs):
        """summary(input_shape=None, input_dtype=None, print_fn=print): a table of the layers,
        output shapes and parameter counts, printed and returned."""
        return _api().summary(self, *args, **kwargs)

    @property
    def compiled_with_jit(self):
        return _api().compiled_with_jit(self)


@register_layer
class Sequential(Trainable, Module):
    """Layers applied one after another. Sequential([a, b]) or Sequential(a, b)."""

    def __init__(self, layers=None, *more, name=None):
        super().__init__(name)
        if isinstance(layers, Module):
            layers = [layers] + list(more)
        for layer in layers or []:
            self.add(layer)

    def add(self, layer):
        if not isinstance(layer, Module):
            raise TypeError("Sequential takes Modules, got %r" % (layer,))
        setattr(self, str(len(self._modules)), layer)

    @property
    def layers(self):
        return list(self._modules.values())

    def __getitem__(self, i):
        return self.layers[i]

    def __len__(self):
        return len(self._modules)

    def forward(self, x):
        for layer in self._modules.values():
            x = layer(x)
        return x

    def get_config(self):
        layers = []
        for layer in self.layers:
            cfg = layer.get_config()
            if cfg is None:
                return None
            layers.append({"class": type(layer).__name__, "config": cfg})
        return {"layers": layers, "name": self.name}

    @classmethod
    def from_config(cls, config):
        from .module import layer_class

        layers = [layer_class(item["class"]).from_config(item["config"])
                  for item in config["layers"]]
        return cls(layers, name=config.get("name"))


class ModuleList(Module):
    """A list of modules whose parameters belong to the module that holds it (PyTorch's
    ModuleList): a model's forward decides how they are called."""

    def __init__(self, modules=None, name=None):
        super().__init__(name)
        self.extend(modules or [])

    def append(self, module):
        if not isinstance(module, Module):
            raise TypeError("%s: ModuleList takes Modules, got %r" % (self.name, module))
        setattr(self, str(len(self._modules)), module)
        return self

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self

    def __getitem__(self, i):
        items = list(self._modules.values())
        return ModuleList(items[i]) if isinstance(i, slice) else items[i]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(list(self._modules.values()))

    def forward(self, *inputs):
        raise TypeError("%s: a ModuleList is not called; call its modules" % self.name)


class ModuleDict(Module):
    """Modules by name, their parameters belonging to the module that holds it (PyTorch's
    ModuleDict)."""

    def __init__(self, modules=None, name=None):
        super().__init__(name)
        for key, m in dict(modules or {}).items():
            self[key] = m

    def __setitem__(self, key, module):
        if not isinstance(module, Module):
            raise TypeError("%s: ModuleDict takes Modules, got %r" % (self.name, module))
        setattr(self, str(key), module)

    def __getitem__(self, key):
        return self._modules[key]

    def __contains__(self, key):
        return key in self._modules

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(list(self._modules))

    def keys(self):
        return list(self._modules)

    def values(self):
        return list(self._modules.values())

    def items(self):
        return list(self._modules.items())

    def forward(self, *inputs):
        raise TypeError("%s: a ModuleDict is not called; call its modules" % self.name)


def _parameter(owner, value):
    """value as a Parameter: a Parameter itself, or a float tensor or array made one (a copy,
    trainable, of its dtype), as torch's containers wrap plain tensors."""
    if isinstance(value, Parameter):
        return value
    if isinstance(value, Tensor):
        value = value.cpu().numpy()
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        return Parameter(np.array(value), dtype=as_dtype(value.dtype))
    raise TypeError("%s holds parameters (float tensors), got %r" % (owner, value))


class _ParameterContainer(Module):
    """Parameters registered under keys of the container, so model.parameters(), state_dict
    ("plist.0", "pdict.key") and optimizers see them; not called itself."""

    def _put(self, key, value):
        key = str(key)
        if "." in key or not key:
            raise KeyError("%s: a parameter name must be non-empty and without '.', got %r"
                           % (self.name, key))
        if (key not in self._params and key in vars(self)) or hasattr(type(self), key):
            raise KeyError("%s: %r is an attribute of the container; use another key"
                           % (self.name, key))
        setattr(self, key, _parameter(type(self).__name__, value))

    def _drop(self, key):
        del self._params[key]
        object.__delattr__(self, key)

    def __len__(self):
        return len(self._params)

    def forward(self, *inputs):
        raise TypeError("%s: a %s is not called; use its parameters"
                        % (self.name, type(self).__name__))


class ParameterList(_ParameterContainer):
    """A list of parameters that belong to the module holding it (PyTorch's ParameterList):
    plain float tensors and arrays become Parameters."""

    def __init__(self, values=None, name=None):
        super().__init__(name)
        self.extend(values or [])

    def append(self, value):
        self._put(len(self._params), value)
        return self

    def extend(self, values):
        for v in values:
            self.append(v)
        return self

    def __iadd__(self, values):
        return self.extend(values)

    def _index(self, i):
        n = len(self._params)
        if not -n <= i < n:
            raise IndexError("%s: index %d is out of range for %d parameters"
                             % (self.name, i, n))
        return str(i % n)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return ParameterList(list(self._params.values())[i])
        return self._params[self._index(i)]

    def __setitem__(self, i, value):
        self._put(self._index(i), value)

    def __iter__(self):
        return iter(list(self._params.values()))


class ParameterDict(_ParameterContainer):
    """Parameters by name, belonging to the module holding it (PyTorch's ParameterDict):
    plain float tensors and arrays become Parameters."""

    def __init__(self, parameters=None, name=None):
        super().__init__(name)
        self.update(parameters or {})

    def __setitem__(self, key, value):
        self._put(key, value)

    def __getitem__(self, key):
        return self._params[key]

    def __delitem__(self, key):
        self._drop(key)

    def __contains__(self, key):
        return key in self._params

    def __iter__(self):
        return iter(list(self._params))

    def keys(self):
        return list(self._params)

    def values(self):
        return list(self._params.values())

    def items(self):
        return list(self._params.items())

    def get(self, key, default=None):
        return self._params.get(key, default)

    def pop(self, key):
        value = self._params[key]
        self._drop(key)
        return value

    def update(self, parameters):
        items = parameters.items() if hasattr(parameters, "items") else parameters
        for key, value in items:
            self[key] = value

    def clear(self):
        for key in list(self._params):
            self._drop(key)
