"""pf.save / pf.load: one file per model (tensors, architecture, traced graph, signature), and
training checkpoints (model + optimizer state + training position + RNG), written atomically;
pf.save_bytes / pf.load_bytes: the same format and checks without a file.

A model is rebuilt from its architecture config when every layer class is registered
(pf.nn.register_layer), otherwise from its traced graph; either way only registered names are
looked up, nothing named in a file is imported or executed. Every shape the config gives is
checked against the stored tensors before anything is allocated, and anything malformed is a
ModelFormatError naming the file.
"""
import contextlib
import json
import os

import numpy as np

from .. import __version__, errors, random
from ..dtypes import as_dtype
from ..nn.model import Trainable
from ..nn.module import Module, Parameter, layer_class, shapes_only
from ..graph.symbol import numbered_names
from ..nn.tracing import input_specs, trace_inference_graph, unwrap
from ..tensor import Tensor
from .format import decode, encode, read_file, write_file

__all__ = ["save", "load", "load_model", "save_bytes", "load_bytes", "save_checkpoint",
           "load_checkpoint", "save_checkpoint_bytes", "load_checkpoint_bytes", "signature",
           "GraphModule", "FORMAT_VERSION"]

FORMAT_VERSION = 1
MODEL_KIND = "pyfront.model"
CHECKPOINT_KIND = "pyfront.checkpoint"
TENSORS_KIND = "pyfront.tensors"          # a dict of named tensors (a state_dict)


def _signature(inputs, outputs):
    def spec(s, name):
        return {"name": name, "dtype": s.dtype.name,
                "shape": [-1 if d is None else int(d) for d in s.shape]}
    out_names = numbered_names("output", len(outputs))
    return {"inputs": [spec(s, s.name) for s in inputs],
            "outputs": [spec(s, n) for s, n in zip(outputs, out_names)]}


def signature(model, input_shape=None):
    """{"inputs": [...], "outputs": [...]} with names, dtypes and shapes (-1: any batch)."""
    model = unwrap(model)
    g, ins, outs = trace_inference_graph(model, input_specs(model, input_shape))
    return _signature(ins, outs)


def _model_payload(model, input_shape):
    from ..graph.serialize import graph_to_json

    model = unwrap(model)
    specs = input_specs(model, input_shape)
    state = {k: np.asarray(v, order="C") for k, v in model.state_dict().items()}
    tensor_names = {id(t): k for k, t in model.named_tensors()}
    meta = {"format": MODEL_KIND, "format_version": str(FORMAT_VERSION),
            "pyfront_version": __version__}
    config = model.get_config()
    if config is not None:
        meta["config"] = json.dumps({"class": type(model).__name__, "config": config},
                                    sort_keys=True)
    try:
        g, ins, outs = trace_inference_graph(model, specs)
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
    """Write model to path atomically: weights, architecture, traced graph and signature.
    An existing file keeps its mode; a new one gets the umask's. A dict of named tensors (a
    state_dict, as torch.save(model.state_dict(), path) is used) is written as the tensors
    alone, and pf.load gives the dict back."""
    if isinstance(model, dict):
        state, meta = _tensors_payload(model)
    else:
        state, meta = _model_payload(model, input_shape)
    write_file(path, state, meta)
    return os.fspath(path)


def _tensors_payload(named):
    state = {}
    for key, value in named.items():
        if not isinstance(key, str):
            raise TypeError("save: a dict of tensors needs str names, got %r" % (key,))
        if hasattr(value, "cpu") and hasattr(value, "numpy"):
            value = value.cpu().numpy()
        if not isinstance(value, np.ndarray):
            raise TypeError("save: %r is of type %s; a dict to save holds tensors or numpy "
                            "arrays (pf.save_checkpoint keeps training state)"
                            % (key, type(value).__name__))
        state[key] = np.asarray(value, order="C")
    return state, {"format": TENSORS_KIND, "format_version": str(FORMAT_VERSION),
                   "pyfront_version": __version__}


def save_bytes(model, input_shape=None):
    """The bytes pf.save would write, for sending a model without a file."""
    state, meta = _model_payload(model, input_shape)
    return b"".join(encode(state, meta))


def _check_kind(meta, source, kind):
    got = meta.get("format")
    if got != kind:
        raise errors.ModelFormatError("%s is not a %s file (format marker %r)"
                                      % (source, kind.replace("pyfront.", "pyfront "), got))
    try:
        version = int(meta.get("format_version", ""))
    except ValueError:
        raise errors.ModelFormatError("%s has an unreadable format version %r"
                                      % (source, meta.get("format_version"))) from None
    if version > FORMAT_VERSION:
        raise errors.ModelFormatError("%s was written in format version %d; this pyfront reads "
                                      "up to version %d: upgrade pyfront"
                                      % (source, version, FORMAT_VERSION))
    if version < 1:
        raise errors.ModelFormatError("%s has invalid format version %d" % (source, version))


def _json(meta, key, source):
    if key not in meta:
        raise errors.ModelFormatError("%s: metadata %r is missing" % (source, key))
    try:
        return json.loads(meta[key])
    except (ValueError, RecursionError) as e:
        raise errors.ModelFormatError("%s: metadata %r is not valid JSON: %s" % (
            source, key, "nested too deeply" if isinstance(e, RecursionError) else e)) from None


def _read_signature(meta, source):
    sig = _json(meta, "signature", source)

    def spec_ok(s):
        if not (isinstance(s, dict) and isinstance(s.get("name"), str) and
                isinstance(s.get("dtype"), str) and isinstance(s.get("shape"), list) and
                all(type(d) is int and d >= -1 for d in s["shape"])):
            return False
        try:
            as_dtype(s["dtype"])
        except (TypeError, ValueError):
            return False
        return True

    if not (isinstance(sig, dict) and all(
            isinstance(sig.get(k), list) and sig[k] and all(spec_ok(s) for s in sig[k])
            for k in ("inputs", "outputs"))):
        raise errors.ModelFormatError(
            "%s: malformed signature %.200r (expected inputs and outputs, each a list of "
            "{name, dtype, shape of ints with -1 for any size})" % (source, sig))
    return sig


def _from_config(cfg, source):
    if not isinstance(cfg, dict) or not isinstance(cfg.get("class"), str) or \
            not isinstance(cfg.get("config"), dict):
        raise errors.ModelFormatError("%s: malformed architecture config" % source)
    cls = layer_class(cfg["class"])
    try:
        with shapes_only():          # parameters get no memory until checked against the file
            return cls.from_config(cfg["config"])
    except (TypeError, ValueError, KeyError) as e:
        if isinstance(e, errors.ModelFormatError):
            raise
        raise errors.ModelFormatError("%s: cannot rebuild %s from its config: %s"
                                      % (source, cfg["class"], e)) from None


def _check_fits(model, state, source):
    """Every parameter and buffer of model against the tensors in state (names and shapes),
    before anything is written or allocated: shapes a config gives (pending_shape under
    shapes_only) included, so the model's total size is the stored tensors' size."""
    own = dict(model.named_tensors())
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing or unexpected:
        raise errors.ModelFormatError(
            "%s does not fit the model %s: missing %s, unexpected %s"
            % (source, model.name, missing or "none", unexpected or "none"))
    for key, t in own.items():
        shape = t.pending_shape if isinstance(t, Parameter) and not t.initialized \
            else tuple(t.shape)
        if shape is not None and tuple(shape) != state[key].shape:
            raise errors.ModelFormatError(
                "%s does not fit the model %s: '%s' has shape %s in the model, %s in the file"
                % (source, model.name, key, tuple(shape), state[key].shape))


def _check_signature_fits(model, sig, source):
    """The signature against the model's own shape rules, by a symbolic trace (no memory): a
    server that checks and sizes its inputs by the signature must get what the model takes."""
    specs = [(tuple(None if d == -1 else d for d in i["shape"]), as_dtype(i["dtype"]))
             for i in sig["inputs"]]
    try:
        _, ins, outs = trace_inference_graph(model, specs)
    except errors.PyfrontError as e:
        raise errors.ModelFormatError("%s: the signature's inputs do not fit the model: %s"
                                      % (source, e)) from None
    traced = _signature(ins, outs)["outputs"]
    if [(o["dtype"], o["shape"]) for o in traced] != \
            [(o["dtype"], o["shape"]) for o in sig["outputs"]]:
        raise errors.ModelFormatError(
            "%s: the signature gives outputs %s, the model computes %s from its inputs"
            % (source, [(o["dtype"], o["shape"]) for o in sig["outputs"]],
               [(o["dtype"], o["shape"]) for o in traced]))


# what rebuilding from a malformed file can raise, from the layers, ops and numpy it reaches
_MALFORMED = (errors.PyfrontError, ValueError, TypeError, KeyError, IndexError, AttributeError,
              RecursionError, OverflowError)


def _restore_model(tensors, meta, source):
    try:
        return _rebuild(tensors, meta, source)
    except errors.ModelFormatError as e:
        if source in str(e):
            raise
        raise errors.ModelFormatError("%s: %s" % (source, e)) from None
    except _MALFORMED as e:
        raise errors.ModelFormatError("%s: cannot rebuild the model it holds: %s: %s"
                                      % (source, type(e).__name__, e)) from e


def _rebuild(tensors, meta, source):
    sig = _read_signature(meta, source) if "signature" in meta else None
    if "config" in meta:
        model = _from_config(_json(meta, "config", source), source)
        state = {k: v for k, v in tensors.items() if not k.startswith("__constant__.")}
        _check_fits(model, state, source)
        model.load_state_dict(state, strict=True)
        if sig is not None:
            model.input_spec = [(tuple(None if d == -1 else d for d in i["shape"]),
                                 as_dtype(i["dtype"])) for i in sig["inputs"]]
            for m in model.modules():
                m.built = True
    elif "graph" in meta:
        model = GraphModule(_json(meta, "graph", source), tensors, sig)
    else:
        raise errors.ModelFormatError("%s holds neither an architecture nor a graph" % source)
    if sig is not None:
        _check_signature_fits(model, sig, source)
    model.signature = sig
    model.eval()
    return model


def load(path, max_bytes=None):
    """Read a model written by pf.save. Returns a Module in eval mode with .signature (or, for
    a file of named tensors, a dict of tensors: load_state_dict takes it)."""
    path = os.fspath(path)
    tensors, meta = read_file(path, max_bytes)
    if meta.get("format") == TENSORS_KIND:
        _check_kind(meta, path, TENSORS_KIND)
        from ..tensor import tensor

        return {k: tensor(v) for k, v in tensors.items()}
    _check_kind(meta, path, MODEL_KIND)
    return _restore_model(tensors, meta, path)


def load_model(path, max_bytes=None):
    """pf.load where the file must hold a model (serving it, exporting it): a file of named
    tensors is refused, saying so."""
    model = load(path, max_bytes)
    if isinstance(model, dict):
        raise errors.ModelFormatError("%s holds named tensors (a state_dict), not a model: save "
                                      "the model itself with pf.save(model, path)"
                                      % os.fspath(path))
    return model


def load_bytes(data, max_bytes=None, name="the model bytes"):
    """pf.load for bytes from pf.save_bytes (or a model file's contents), with the same checks;
    name is what errors call the bytes."""
    tensors, meta = decode(data, max_bytes, name)
    _check_kind(meta, name, MODEL_KIND)
    return _restore_model(tensors, meta, name)


class GraphModule(Trainable, Module):
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
        for s in self._inputs:
            if s.node.kind != "placeholder":
                raise errors.ModelFormatError("the graph's input %r is a %s, not a placeholder"
                                              % (s.node.name, s.node.kind))
        self.signature = sig
        self.built = True

    def named_tensors(self, prefix="", include_buffers=True):
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

def _checkpoint_payload(model, optimizer, epoch, step, extra):
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
    return state, meta


def save_checkpoint(path, model, optimizer=None, epoch=0, step=0, extra=None):
    """Model, optimizer state, training position and the RNG state, written atomically."""
    write_file(path, *_checkpoint_payload(model, optimizer, epoch, step, extra))
    return os.fspath(path)


def save_checkpoint_bytes(model, optimizer=None, epoch=0, step=0, extra=None):
    """The bytes save_checkpoint would write."""
    return b"".join(encode(*_checkpoint_payload(model, optimizer, epoch, step, extra)))


def load_checkpoint(path, model=None, optimizer=None, restore_rng=True):
    """Restore a checkpoint into model and optimizer (in place) and return the training
    position {"epoch", "step", "extra", ...}. With model=None, the model is rebuilt and
    returned as position["model"]. Everything is checked before anything is restored: on an
    error, model, optimizer and RNG are as they were."""
    path = os.fspath(path)
    tensors, meta = read_file(path)
    return _restore_checkpoint(tensors, meta, path, model, optimizer, restore_rng)


def load_checkpoint_bytes(data, model=None, optimizer=None, restore_rng=True,
                          name="the checkpoint bytes"):
    """load_checkpoint for bytes from save_checkpoint_bytes (or a checkpoint file's contents);
    name is what errors call the bytes."""
    tensors, meta = decode(data, None, name)
    return _restore_checkpoint(tensors, meta, name, model, optimizer, restore_rng)


def _training_position(meta, source):
    position = _json(meta, "training", source)
    ok = isinstance(position, dict) and type(position.get("epoch")) is int and \
        type(position.get("step")) is int and isinstance(position.get("extra", {}), dict)
    info = position.get("optimizer") if ok else None
    if info is not None:
        ok = isinstance(info, dict) and isinstance(info.get("class"), str) and \
            type(info.get("iterations")) is int and type(info.get("lr")) in (int, float)
    if ok and "rng" in position:
        probe = type(random.generator().bit_generator)()
        try:
            probe.state = position["rng"]
        except (TypeError, ValueError, KeyError):
            ok = False
    if not ok:
        raise errors.ModelFormatError("%s: malformed training position %.200r"
                                      % (source, position))
    return position


def _check_optimizer(optimizer, params, shapes, info, opt_state, source):
    """The optimizer state in the file against optimizer over params (whose shapes after the
    restore are shapes[id(p)])."""
    if info is None:
        raise errors.ModelFormatError("%s holds no optimizer state" % source)
    if info["class"] != type(optimizer).__name__:
        raise errors.ModelFormatError("%s holds %s state, not %s" % (
            source, info["class"], type(optimizer).__name__))
    for key, arr in opt_state.items():
        idx, _, name = key.partition(".")
        if not (idx.isascii() and idx.isdigit() and int(idx) < len(params) and
                name in optimizer.state_names):
            raise errors.ModelFormatError(
                "%s: optimizer state %r is not a %s state (%s) of one of its %d parameters"
                % (source, key, info["class"], ", ".join(optimizer.state_names), len(params)))
        p = params[int(idx)]
        want = shapes[id(p)] if id(p) in shapes else tuple(p.shape)
        if arr.shape != want:
            raise errors.ModelFormatError("%s: optimizer state %r has shape %s, its parameter "
                                          "%s" % (source, key, arr.shape, want))


def _restore_checkpoint(tensors, meta, source, model, optimizer, restore_rng):
    _check_kind(meta, source, CHECKPOINT_KIND)
    position = _training_position(meta, source)
    position.setdefault("extra", {})
    prefix = "__optimizer__."
    model_tensors = {k: v for k, v in tensors.items() if not k.startswith(prefix)}
    opt_state = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
    # check everything, then apply: an error leaves model, optimizer and RNG untouched
    if model is None:
        target = _restore_model(model_tensors, meta, source)
        position["model"] = target
        state = None
    else:
        target = unwrap(model)
        state = {k: v for k, v in model_tensors.items() if not k.startswith("__constant__.")}
        _check_fits(target, state, source)
    if optimizer is not None:
        params = optimizer.params or target.parameters()
        shapes = {id(t): model_tensors[k].shape for k, t in target.named_tensors()}
        _check_optimizer(optimizer, params, shapes, position.get("optimizer"), opt_state,
                         source)
    if state is not None:
        target.load_state_dict(state, strict=True)
    if optimizer is not None:
        if not optimizer.params:
            optimizer.bind(params)
        info = position["optimizer"]
        optimizer.load_state_dict({"iterations": info["iterations"], "lr": info["lr"],
                                   "state": opt_state})
    if restore_rng and "rng" in position:
        random.generator().bit_generator.state = position["rng"]
    return position
