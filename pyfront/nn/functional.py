"""The functional API: models with several inputs and outputs, built by calling layers on
pf.nn.Input placeholders (Keras functional / Deeplearning4j ComputationGraph).

    image = pf.nn.Input((1, 16, 16)); question = pf.nn.Input((10,), dtype="int64")
    merged = pf.nn.Concatenate()([cnn(image), lstm(embed(question))])
    model = pf.nn.Model(inputs=[image, question], outputs=pf.nn.Dense(5)(merged))

A Model remembers the calls (layers, and ops applied between them) that lead from its inputs
to its outputs, and replays them on tensors: eagerly, traced by pf.jit, or rebuilt by pf.load.
Making a Model ends the build its Inputs belong to: make every Input a model needs before the
first Model built from them (the symbols of a finished build still make further Models).
"""
import threading

import numpy as np

from .. import errors, ops
from ..dtypes import as_dtype
from ..graph.symbol import Graph
from ..ops import catalog, core
from .model import Trainable
from .module import Module, layer_class, module_depth, register_layer

__all__ = ["Input", "Model"]


def __getattr__(name):
    """torch.nn.functional's functions, so that `import pyfront.nn.functional as F` ports torch
    code: those that mean here what they mean in torch (pyfront.ops.catalog). (linear, below,
    takes torch's (out_features, in_features) weight.)"""
    if name not in catalog.torch_functional_names() or not hasattr(ops, name):
        raise AttributeError("module 'pyfront.nn.functional' has no attribute %r (it holds the "
                             "functional model API, Input and Model, and the "
                             "torch.nn.functional functions pyfront has under torch's names)"
                             % (name,))
    fn = globals()[name] = getattr(ops, name)    # found once: F.relu in a forward costs nothing
    return fn


def linear(input, weight, bias=None):
    """torch.nn.functional.linear: input @ weight.T + bias, weight (out_features, in_features)
    as torch's (pyfront's own linear takes the (in, out) kernel)."""
    return ops.linear(input, ops.transpose(weight), bias)

_local = threading.local()


class _Build:
    """A functional model build: the graph its Inputs live in and, in order, the calls made
    on them: layer calls (reported by Module.__call__) and ops applied outside any layer
    (reported by the graph, which calls record_op for every op it adds)."""

    def __init__(self):
        self.graph = Graph("functional")
        self.graph.recorder = self
        self.calls = []

    def record_op(self, op, inputs, attrs, outputs):
        if module_depth() == 0:             # an op inside a layer is part of the layer's call
            self.calls.append(("op", op, list(inputs), dict(attrs), list(outputs)))

    def record_layer(self, layer, inputs, kwargs, out):
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        self.calls.append(("layer", layer, list(inputs), dict(kwargs), outs))


def _current_build():
    """The build this thread's Inputs join: it starts at the first Input and ends when a Model
    is made from it, so its graph and calls live only as long as its symbols (a graph per
    thread for the whole process kept every model ever built)."""
    build = getattr(_local, "build", None)
    if build is None:
        build = _local.build = _Build()
    return build


def Input(shape, dtype="float32", name=None):
    """A model input: shape without the batch dimension; returns a Symbol to call layers on."""
    g = _current_build().graph
    shape = tuple(shape) if isinstance(shape, (tuple, list)) else (shape,)
    # the Inputs of a build live in one graph: names are made unique there, and the model
    # keeps the name the user gave
    given = name or "input"
    unique = given if given not in g.placeholders else g._unique(given)
    while unique in g.placeholders:
        unique = g._unique(given)
    sym = g.placeholder(unique, (None,) + shape, as_dtype(dtype))
    sym.node.attrs["display_name"] = name or unique
    return sym


def _ref(sym, producers, inputs):
    key = (sym.node.id, sym.index)
    if key in producers:
        return list(producers[key])
    for k, s in enumerate(inputs):
        if s.node is sym.node:
            return ["input", k]
    if sym.node.kind == "constant":
        arr = sym.node.value.numpy()
        return ["const", {"dtype": arr.dtype.name, "shape": list(arr.shape),
                          "data": arr.reshape(-1).tolist()}]
    raise errors.PyfrontError(
        "Model: %s is not computed from the model's inputs (is an Input missing from "
        "inputs=[...]?)" % sym.name)


@register_layer
class Model(Trainable, Module):
    """A model that trains (compile/fit/evaluate/predict/summary), made in one of two ways:

    functional: Model(inputs=..., outputs=...), a graph of layer calls from pf.nn.Input to
    outputs (several inputs and outputs allowed); subclassed (Keras style): a subclass
    creates its layers in __init__ after super().__init__() and writes forward(), and is
    called with no inputs/outputs."""

    def __init__(self, inputs=None, outputs=None, name=None, _spec=None):
        super().__init__(name)
        self._subclassed = False
        if _spec is not None:
            self._set_spec(*_spec)
            return
        if inputs is None and outputs is None and type(self).forward is not Model.forward:
            self._subclassed = True
            return
        if inputs is None or outputs is None:
            raise ValueError("Model needs inputs= and outputs= (or subclass it and write "
                             "forward)")
        self._single_input = not isinstance(inputs, (list, tuple))
        self._single_output = not isinstance(outputs, (list, tuple))
        ins = [inputs] if self._single_input else list(inputs)
        outs = [outputs] if self._single_output else list(outputs)
        for s in ins + outs:
            if not getattr(s, "symbolic", False) or \
                    not isinstance(getattr(s.graph, "recorder", None), _Build):
                raise TypeError("Model inputs and outputs must come from pf.nn.Input and layers "
                                "called on it, got %r" % (s,))
        recorded = ins[0].graph.recorder.calls
        # which recorded calls lead to the outputs
        producer_of = {}
        for idx, (kind, target, args, kwargs, results) in enumerate(recorded):
            for j, r in enumerate(results):
                producer_of[(r.node.id, r.index)] = (idx, j)
        needed, stack = set(), [(s.node.id, s.index) for s in outs]
        input_ids = {s.node.id for s in ins}
        while stack:
            key = stack.pop()
            if key[0] in input_ids or key not in producer_of:
                continue
            idx = producer_of[key][0]
            if idx in needed:
                continue
            needed.add(idx)
            stack.extend((a.node.id, a.index) for a in recorded[idx][2]
                         if getattr(a, "symbolic", False))
        layers, calls, producers = [], [], {}
        for idx in sorted(needed):
            kind, target, args, kwargs, results = recorded[idx]
            refs = [_ref(a, producers, ins) for a in args]
            if kind == "layer":
                if not any(target is l for l in layers):
                    layers.append(target)
                lidx = next(i for i, l in enumerate(layers) if l is target)
                calls.append({"layer": lidx, "inputs": refs, "kwargs": kwargs,
                              "n_outputs": len(results)})
            else:
                calls.append({"op": target.name, "inputs": refs, "attrs": kwargs,
                              "n_outputs": len(results)})
            for j, r in enumerate(results):
                producers[(r.node.id, r.index)] = (len(calls) - 1, j)
        input_specs = [{"name": s.node.attrs.get("display_name", s.name),
                        "shape": list(s.shape[1:]), "dtype": s.dtype.name} for s in ins]
        outputs_refs = [_ref(s, producers, ins) for s in outs]
        self._set_spec(layers, calls, input_specs, outputs_refs)
        self.input_spec = [(tuple(s.shape), s.dtype) for s in ins]
        if getattr(_local, "build", None) is ins[0].graph.recorder:
            _local.build = None         # the next Input starts a new build

    def _set_spec(self, layers, calls, input_specs, output_refs, single=(None, None)):
        for i, layer in enumerate(layers):
            setattr(self, str(i), layer)
        from ..graph.serialize import attrs_from_json

        # op attributes as ops build them (tuples, not the lists a config holds)
        self._calls = [dict(c, attrs=attrs_from_json(c["attrs"])) if "op" in c else c
                       for c in calls]
        self._input_specs = input_specs
        self._output_refs = output_refs
        if single[0] is not None:
            self._single_input, self._single_output = single
        self.built = True

    @property
    def layers(self):
        return list(self._modules.values())

    @property
    def input_names(self):
        return [s["name"] for s in self._input_specs]

    def forward(self, *inputs):
        if len(inputs) == 1 and isinstance(inputs[0], (list, tuple)) and \
                len(self._input_specs) > 1:
            inputs = tuple(inputs[0])
        if len(inputs) != len(self._input_specs):
            raise errors.PyfrontError("%s takes %d inputs (%s), got %d"
                                      % (self.name, len(self._input_specs),
                                         ", ".join(s["name"] for s in self._input_specs),
                                         len(inputs)))
        inputs = [core.as_operand(x) for x in inputs]
        for spec, x in zip(self._input_specs, inputs):
            if tuple(x.shape[1:]) != tuple(spec["shape"]) and None not in spec["shape"]:
                raise errors.ShapeError("%s: input '%s' has shape %s, expected (batch, %s)"
                                        % (self.name, spec["name"], tuple(x.shape),
                                           ", ".join(map(str, spec["shape"]))))
        results = []

        def value(ref):
            if ref[0] == "input":
                return inputs[ref[1]]
            if ref[0] == "const":
                c = ref[1]
                return core.as_operand(np.asarray(c["data"], c["dtype"]).reshape(c["shape"]))
            return results[ref[0]][ref[1]]

        layers = self.layers
        for call in self._calls:
            args = [value(r) for r in call["inputs"]]
            if "layer" in call:
                out = layers[call["layer"]](*args, **call.get("kwargs", {}))
            else:
                out = core.apply(core.get_op(call["op"]), args, call["attrs"])
            results.append(list(out) if isinstance(out, (tuple, list)) else [out])
        outs = [value(r) for r in self._output_refs]
        return outs[0] if self._single_output else outs

    def get_config(self):
        if self._subclassed:
            return Module.get_config(self)
        layer_cfgs = []
        for layer in self.layers:
            cfg = layer.get_config()
            if cfg is None:
                return None
            layer_cfgs.append({"class": type(layer).__name__, "config": cfg})
        for call in self._calls:
            if "op" in call and core.REGISTRY.get(call["op"]) is None:
                return None
        from ..graph.serialize import attrs_to_json

        return {"name": self.name, "layers": layer_cfgs, "calls": attrs_to_json(self._calls),
                "inputs": self._input_specs, "outputs": self._output_refs,
                "single_input": self._single_input, "single_output": self._single_output}

    @classmethod
    def from_config(cls, config):
        layers = [layer_class(c["class"]).from_config(c["config"]) for c in config["layers"]]
        for call in config["calls"]:
            if "op" in call:
                core.get_op(call["op"])
            elif not 0 <= call["layer"] < len(layers):
                raise errors.ModelFormatError("a call names layer %r of %d" % (call["layer"],
                                                                              len(layers)))
        m = cls(name=config.get("name"), _spec=(
            layers, config["calls"], config["inputs"], config["outputs"],
            (config.get("single_input", True), config.get("single_output", True))))
        m.input_spec = [((None,) + tuple(s["shape"]), as_dtype(s["dtype"]))
                        for s in config["inputs"]]
        return m
