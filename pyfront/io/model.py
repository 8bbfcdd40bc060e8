"""pf.save / pf.load: one file per model (tensors, architecture, traced graph, signature), and
training checkpoints (model + optimizer state + training position + RNG), written atomically.

A model is rebuilt from its architecture config when every layer class is registered
(pf.nn.register_layer), otherwise from its traced graph; either way only registered names are
looked up, nothing named in a file is imported or executed.
"""
import contextlib
import json
import os

import numpy as np

from .. import __version__, autograd, errors, random
from ..dtypes import as_dtype
from ..nn.module import Module, Parameter, layer_class
from ..tensor import Tensor
from .format import read_file, write_file

__all__ = ["save", "load", "save_checkpoint", "load_checkpoint", "signature", "GraphModule",
           "FORMAT_VERSION"]

FORMAT_VERSION = 1
MODEL_KIND = "pyfront.model"
CHECKPOINT_KIND = "pyfront.checkpoint"


def _unwrap(model):
    inner = getattr(model, "module", None)
    return inner if getattr(model, "is_hybridized", False) and inner is not None else model


def _input_specs(model, input_shapes):
    if input_shapes is not None:
        shapes = [input_shapes] if isinstance(input_shapes[0], (int, type(None))) \
            else list(input_shapes)
        return [((None,) + tuple(s[1:]), as_dtype("float32")) for s in shapes]
    if model.input_spec is None:
        raise errors.PyfrontError(
            "cannot save %s before it has seen an input: call it once (or pass input_shape=) "
            "so that its parameters have shapes" % model.name)
    return [((None,) + tuple(shape[1:]), dtype or as_dtype("float32"))
            for shape, dtype in model.input_spec]


def _trace_inference_graph(model, specs):
    """The model's forward in eval mode as a graph with an unknown batch dimension."""
    from ..graph.jit import _flatten
    from ..graph.symbol import Graph

    g = Graph(model.name)
    names = getattr(model, "input_names", None) or (
        ["input"] if len(specs) == 1 else ["input_%d" % i for i in range(len(specs))])
    syms = [g.placeholder(n, shape, dtype) for n, (shape, dtype) in zip(names, specs)]
    was_training = model.training
    model.eval()
    try:
        with autograd.no_grad():
            out = model(*syms)
    finally:
        model.train(was_training)
    leaves, _ = _flatten(out)
    return g, syms, leaves


def _signature(inputs, outputs):
    def spec(s, name):
        return {"name": name, "dtype": s.dtype.name,
                "shape": [-1 if d is None else int(d) for d in s.shape]}
    out_names = ["output"] if len(outputs) == 1 else ["output_%d" % i for i in range(len(outputs))]
    return {"inputs": [spec(s, s.name) for s in inputs],
            "outputs": [spec(s, n) for s, n in zip(outputs, out_names)]}


def signature(model, input_shape=None):
    """{"inputs": [...], "outputs": [...]} with names, dtypes and shapes (-1: any batch)."""
    model = _unwrap(model)
    g, ins, outs = _trace_inference_graph(model, _input_specs(model, input_shape))
    return _signature(ins, outs)


def _model_payload(model, input_shape):
    from ..graph.serialize import graph_to_json

    model = _unwrap(model)
    specs = _input_specs(model, input_shape)
    state = {k: np.ascontiguousarray(v) for k, v in model.state_dict().items()}
    tensor_names = {id(t): k for k, t in model._named_tensors("")}
    meta = {"format": MODEL_KIND, "format_version": str(FORMAT_VERSION),
            "pyfront_version": __version__}
    config = model.get_config()
    if config is not None:
        meta["config"] = json.dumps({"class": type(model).__name__, "config": config},
                                    sort_keys=True)
    try:
        g, ins, outs = _trace_inference_graph(model, specs)
        desc, constants = graph_to_json(g, ins, outs, tensor_names)
    except errors.PyfrontError as e:
        if config is None:
            raise errors.PyfrontError("cannot save %s: it has no config (unregistered layer "
                                      "class) and tracing it failed: %s" % (model.name, e))
        desc, constants, ins, outs = None, {}, None, None
    if desc is not None:
        meta["graph"] = json.dumps(desc, sort_keys=True)
        meta["signature"] = json.dumps(_signature(ins, outs), sort_keys=True)
        state.update(constants)
    return state, meta


def save(model, path, input_shape=None):
    """Write model to path atomically: weights, architecture, traced graph and signature."""
    state, meta = _model_payload(model, input_shape)
    write_file(path, state, meta)
    return os.fspath(path)


def _check_kind(meta, path, kind):
    got = meta.get("format")
    if got != kind:
        raise errors.ModelFormatError("%s is not a %s file (format marker %r)"
                                      % (path, kind.replace("pyfront.", "pyfront "), got))
    try:
        version = int(meta.get("format_version", ""))
    except ValueError:
        raise errors.ModelFormatError("%s has an unreadable format version %r"
                                      % (path, meta.get("format_version"))) from None
    if version > FORMAT_VERSION:
        raise errors.ModelFormatError("%s was written in format version %d; this pyfront reads "
                                      "up to version %d: upgrade pyfront"
                                      % (path, version, FORMAT_VERSION))
    if version < 1:
        raise errors.ModelFormatError("%s has invalid format version %d" % (path, version))


def _json(meta, key, path):
    try:
        return json.loads(meta[key])
    except ValueError as e:
        raise errors.ModelFormatError("%s: metadata %r is not valid JSON: %s" % (path, key, e)) \
            from None


def _from_config(cfg, path):
    if not isinstance(cfg, dict) or not isinstance(cfg.get("class"), str) or \
            not isinstance(cfg.get("config"), dict):
        raise errors.ModelFormatError("%s: malformed architecture config" % path)
    cls = layer_class(cfg["class"])
    try:
        return cls.from_config(cfg["config"])
    except (TypeError, ValueError, KeyError) as e:
        raise errors.ModelFormatError("%s: cannot rebuild %s from its config: %s"
                                      % (path, cfg["class"], e)) from None


def _restore_model(tensors, meta, path):
    sig = _json(meta, "signature", path) if "signature" in meta else None
    model = None
    if "config" in meta:
        model = _from_config(_json(meta, "config", path), path)
        state = {k: v for k, v in tensors.items() if not k.startswith("__constant__.")}
        model.load_state_dict(state, strict=True)
        if sig is not None:
            model.input_spec = [(tuple(None if d == -1 else d for d in i["shape"]),
                                 as_dtype(i["dtype"])) for i in sig["inputs"]]
            for m in model.modules():
                m.built = True
    elif "graph" in meta:
        model = GraphModule(_json(meta, "graph", path), tensors, sig)
    else:
        raise errors.ModelFormatError("%s holds neither an architecture nor a graph" % path)
    model.signature = sig
    model.eval()
    return model


def load(path, max_bytes=None):
    """Read a model written by pf.save. Returns a Module in eval mode with .signature."""
    tensors, meta = read_file(path, max_bytes)
    _check_kind(meta, path, MODEL_KIND)
    return _restore_model(tensors, meta, path)


class GraphModule(Module):
    """A model rebuilt from its saved graph: the graph replayed with pyfront's ops (eagerly,
    traced by pf.jit, or differentiated), its parameters restored from the file."""

    def __init__(self, desc, tensors, sig=None):
        from ..graph.serialize import graph_from_json

        super().__init__(name="graph_module")
        self._values = {}
        for key, arr in tensors.items():
            if key.startswith("__constant__."):
                self._values[key] = Tensor(arr)
            else:
                p = Parameter(arr, name=key, trainable=arr.dtype.kind == "f")
                self._values[key] = p
                self._params[key.replace(".", "/")] = p
        self._desc = desc
        self.graph, self._inputs, self._outputs = graph_from_json(desc, self._values)
        self.signature = sig
        self.built = True

    def _named_tensors(self, prefix, include_buffers=True):
        for key, t in self._values.items():
            if isinstance(t, Parameter):
                yield prefix + key, t

    def forward(self, *inputs):
        from ..ops import core

        if len(inputs) != len(self._inputs):
            raise errors.PyfrontError("%s takes %d inputs, got %d"
                                      % (self.name, len(self._inputs), len(inputs)))
        values = {}
        for sym, x in zip(self._inputs, inputs):
            x = core.as_operand(x)
            declared = sym.shape
            if len(x.shape) != len(declared) or any(
                    d is not None and d != a for d, a in zip(declared, x.shape)):
                raise errors.ShapeError("%s: input '%s' has shape %s, expected %s"
                                        % (self.name, sym.name, tuple(x.shape),
                                           core.fmt_shape(declared)))
            values[sym.node.id] = x
        for node in self.graph.nodes:
            if node.id in values:
                continue
            if node.kind in ("variable", "constant"):
                values[node.id] = node.value
            elif node.kind == "op":
                args = []
                for s, k in node.inputs:
                    v = values[s.id]
                    args.append(v[k] if isinstance(v, tuple) else v)
                with core.name_scope(node.scope) if node.scope else contextlib.nullcontext():
                    values[node.id] = core.apply(node.op, args, node.attrs)
        outs = []
        for s in self._outputs:
            v = values[s.node.id]
            outs.append(v[s.index] if isinstance(v, tuple) else v)
        return outs[0] if len(outs) == 1 else tuple(outs)

    def get_config(self):
        return None


# ---------------------------------------------------------------------------------------------
# checkpoints

def save_checkpoint(path, model, optimizer=None, epoch=0, step=0, extra=None):
    """Model, optimizer state, training position and the RNG state, written atomically."""
    state, meta = _model_payload(model, None)
    meta["format"] = CHECKPOINT_KIND
    position = {"epoch": int(epoch), "step": int(step), "extra": extra or {},
                "rng": random.generator().bit_generator.state}
    if optimizer is not None:
        opt = optimizer.state_dict()
        for key, arr in opt["state"].items():
            state["__optimizer__." + key] = arr
        position["optimizer"] = {"class": type(optimizer).__name__, "config": opt["config"],
                                 "iterations": opt["iterations"], "lr": opt["lr"]}
    meta["training"] = json.dumps(position, sort_keys=True)
    write_file(path, state, meta)
    return os.fspath(path)


def load_checkpoint(path, model=None, optimizer=None, restore_rng=True):
    """Restore a checkpoint into model and optimizer (in place) and return the training
    position {"epoch", "step", "extra", ...}. With model=None, the model is rebuilt and
    returned as position["model"]."""
    tensors, meta = read_file(path)
    _check_kind(meta, path, CHECKPOINT_KIND)
    position = _json(meta, "training", path)
    model_tensors = {k: v for k, v in tensors.items() if not k.startswith("__optimizer__.")}
    if model is None:
        model = _restore_model(model_tensors, meta, path)
        position["model"] = model
    else:
        state = {k: v for k, v in model_tensors.items() if not k.startswith("__constant__.")}
        _unwrap(model).load_state_dict(state, strict=True)
    if optimizer is not None:
        if "optimizer" not in position:
            raise errors.ModelFormatError("%s holds no optimizer state" % path)
        info = position["optimizer"]
        if info["class"] != type(optimizer).__name__:
            raise errors.ModelFormatError("%s holds %s state, not %s" % (
                path, info["class"], type(optimizer).__name__))
        if not optimizer.params:
            optimizer.bind(_unwrap(model).parameters())
        optimizer.load_state_dict({
            "iterations": info["iterations"], "lr": info["lr"],
            "state": {k[len("__optimizer__."):]: v for k, v in tensors.items()
                      if k.startswith("__optimizer__.")}})
    if restore_rng and "rng" in position:
        random.generator().bit_generator.state = position["rng"]
    return position
