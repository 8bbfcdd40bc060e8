"""The one training step: every trainer (fit, both Spark strategies, anything later) runs its
batches through the steps made here, eager or compiled, behind the same calls.

    step = make_train_step(model, loss_fn, optimizer, compiled)
    loss, predictions = step(inputs, targets)          # forward, loss, backward, update
    grads = make_gradient_step(model, loss_fn, params, compiled)
    loss, gradients, predictions = grads(inputs, targets)   # no update (synchronous SGD)
    predict = make_predict_step(model, compiled)
    predictions = predict(inputs)

inputs / targets: a numpy array, or a list of arrays (several model inputs, several outputs'
targets). predictions: a numpy array for a single-output model, else a list (or the tuple /
dict structure the model returns) of arrays, computed before the update. loss_fn(outputs,
*targets) -> scalar tensor, written with ops so that it traces into a graph too.

Each step puts the model in training mode and clears the gradients of what it trains before
the forward pass, so steps of any kind can be interleaved on one model. A compiled step keeps
one plan per batch signature and falls back to the eager step, with a warning, when the model
cannot be traced.
"""
import warnings

import numpy as np

from .. import autograd, errors
from ..dtypes import as_dtype
from ..graph.jit import flatten_outputs
from ..ops import core
from ..graph.rewrite import crop_unpooled_outputs
from ..graph.symbol import Graph, numbered_names
from ..tensor import Tensor

__all__ = ["make_train_step", "make_gradient_step", "make_predict_step", "EagerTrainStep",
           "CompiledTrainStep", "EagerGradientStep", "CompiledGradientStep", "as_arrays"]


def as_arrays(x):
    """The numpy arrays in x, one per model input (or output): a list or tuple holding arrays or
    tensors gives one each, a dict its values; anything else is one array, converted as numpy
    converts it (nested lists of numbers included)."""
    if isinstance(x, dict):
        x = list(x.values())
    several = isinstance(x, (list, tuple)) and any(getattr(a, "ndim", 0) > 0 for a in x)
    return [np.asarray(a.numpy() if hasattr(a, "numpy") else a) for a in (x if several else [x])]


def _outputs_numpy(out):
    leaves, rebuild = flatten_outputs(out)
    return rebuild([t.cpu().numpy() for t in leaves])


def _bare(model):
    """The module behind a hybridized model: steps trace the module themselves."""
    return model.module if getattr(model, "is_hybridized", False) else model


def _device_of(params):
    """Where the parameters live ("cpu", "cuda:N"): a model moved to a GPU takes its batches
    there."""
    for p in params:
        return p.device
    return "cpu"


def _host_only(params):
    """Compiled plans run on the CPU only so far: a model on a GPU falls back to the eager step
    (with _Signatures' warning), which runs there."""
    device = _device_of(params)
    if device != "cpu":
        raise errors.TraceError("the model's parameters are on %s, and compiled plans run on "
                                "the CPU only so far" % device)


def _eager_forward_backward(model, loss_fn, params, xs, ys):
    """Training mode, gradients of params cleared, forward, loss, backward: (loss, outputs)."""
    model.train()
    for p in params:
        p.grad = None
    device = _device_of(params)
    out = model(*[Tensor(a).to(device) for a in xs])
    loss = loss_fn(out, *[Tensor(a).to(device) for a in ys])
    loss.backward()
    return loss, out


class _Signatures:
    """One compiled plan per batch signature, "eager" for signatures that cannot be traced."""

    def __init__(self, what):
        self.what = what
        self.cache = {}

    def get(self, xs, ys, build, training):
        key = tuple((a.shape, a.dtype.str) for a in xs + ys) + (training,)
        entry = self.cache.get(key)
        if entry is None:
            try:
                entry = build(xs, ys)
            except errors.TraceError as e:
                warnings.warn("%s: %s; running eagerly" % (self.what, e), RuntimeWarning,
                              stacklevel=3)
                entry = "eager"
            self.cache[key] = entry
        return entry


def _trace_loss(model, loss_fn, xs, ys, name):
    """Placeholders for a batch, the model and loss traced on them (training mode), the
    graph rewritten where that saves work (graph.rewrite)."""
    g = Graph(name)
    x_syms = [g.placeholder(n, a.shape, as_dtype(a.dtype))
              for n, a in zip(numbered_names("input", len(xs)), xs)]
    y_syms = [g.placeholder(n, a.shape, as_dtype(a.dtype))
              for n, a in zip(numbered_names("target", len(ys)), ys)]
    model.train()
    with core.tracing(g):
        out = model(*x_syms)
        leaves, rebuild = flatten_outputs(out)
        loss = loss_fn(out, *y_syms)
    crop_unpooled_outputs(g, list(leaves) + [loss])   # before the gradients are built
    return g, [s.name for s in x_syms], [s.name for s in y_syms], leaves, rebuild, loss


def _feeds(names, xs, ys):
    feeds = dict(zip(names[0], xs))
    feeds.update(zip(names[1], ys))
    return feeds


class EagerTrainStep:
    """Forward, loss and backward on the tape, then optimizer.step() (which clips first)."""

    def __init__(self, model, loss_fn, optimizer):
        self.model, self.loss_fn, self.optimizer = _bare(model), loss_fn, optimizer

    def __call__(self, inputs, targets):
        params = self.optimizer.params or self.model.parameters()
        loss, out = _eager_forward_backward(self.model, self.loss_fn, params,
                                            as_arrays(inputs), as_arrays(targets))
        self.optimizer.step()
        return float(loss.item()), _outputs_numpy(out)


class CompiledTrainStep:
    """Forward, loss, backward and the optimizer update as one compiled native call."""

    def __init__(self, model, loss_fn, optimizer):
        self.model, self.loss_fn, self.optimizer = _bare(model), loss_fn, optimizer
        self._plans = _Signatures("compiled training step")
        self._eager = EagerTrainStep(self.model, loss_fn, optimizer)

    def _build(self, xs, ys):
        _host_only(self.optimizer.params or self.model.parameters())
        g, xn, yn, leaves, rebuild, loss = _trace_loss(self.model, self.loss_fn, xs, ys,
                                                        "train_step")
        params = [p for p in (self.optimizer.params or self.model.parameters())
                  if p.requires_grad]
        exe = g.compile(outputs=leaves, loss=loss, optimizer=self.optimizer, params=params)
        return exe, (xn, yn), [s.name for s in leaves], loss.name, rebuild

    def __call__(self, inputs, targets):
        xs, ys = as_arrays(inputs), as_arrays(targets)
        self.model.train()
        entry = self._plans.get(xs, ys, self._build, True)
        if entry == "eager":
            return self._eager(xs, ys)
        exe, names, out_names, loss_name, rebuild = entry
        result = exe.step(_feeds(names, xs, ys))
        return float(result[loss_name]), rebuild([result[n] for n in out_names])

    @property
    def executors(self):
        return [e[0] for e in self._plans.cache.values() if e != "eager"]


class EagerGradientStep:
    """The gradient-only twin of EagerTrainStep: (loss, [gradient per param], predictions);
    a parameter the loss does not reach gets zeros."""

    def __init__(self, model, loss_fn, params):
        self.model, self.loss_fn, self.params = _bare(model), loss_fn, list(params)

    def __call__(self, inputs, targets):
        loss, out = _eager_forward_backward(self.model, self.loss_fn, self.params,
                                            as_arrays(inputs), as_arrays(targets))
        grads = [p.grad.cpu().numpy() if p.grad is not None else np.zeros(p.shape, p.dtype.np)
                 for p in self.params]
        return float(loss.item()), grads, _outputs_numpy(out)


class CompiledGradientStep:
    """The gradient-only twin of CompiledTrainStep: forward, loss and backward as one compiled
    call per batch signature, gradients returned instead of applied."""

    def __init__(self, model, loss_fn, params):
        self.model, self.loss_fn, self.params = _bare(model), loss_fn, list(params)
        self._plans = _Signatures("compiled gradient step")
        self._eager = EagerGradientStep(self.model, loss_fn, self.params)

    def _build(self, xs, ys):
        _host_only(self.params)
        g, xn, yn, leaves, rebuild, loss = _trace_loss(self.model, self.loss_fn, xs, ys,
                                                        "gradient_step")
        grads = g.gradients(loss, [g.variable(p) for p in self.params])
        outputs = {"loss": loss}
        outputs.update(("output_%d" % i, s) for i, s in enumerate(leaves))
        grad_keys = []
        for i, gr in enumerate(grads):
            grad_keys.append(None if gr is None else "grad_%d" % i)
            if gr is not None:
                outputs["grad_%d" % i] = gr
        exe = g.compile(outputs=outputs)
        return exe, (xn, yn), len(leaves), grad_keys, rebuild

    def __call__(self, inputs, targets):
        xs, ys = as_arrays(inputs), as_arrays(targets)
        self.model.train()
        entry = self._plans.get(xs, ys, self._build, True)
        if entry == "eager":
            return self._eager(xs, ys)
        exe, names, n_out, grad_keys, rebuild = entry
        out = exe.run(_feeds(names, xs, ys))
        grads = [out[k] if k is not None else np.zeros(p.shape, p.dtype.np)
                 for k, p in zip(grad_keys, self.params)]
        preds = rebuild([out["output_%d" % i] for i in range(n_out)])
        return float(out["loss"]), grads, preds


def make_train_step(model, loss_fn, optimizer, compiled=False):
    """A callable step(inputs, targets) -> (loss: float, predictions) that also updates.

    compiled: run forward, loss, backward and the update as one compiled plan per batch shape;
    a model that cannot be traced trains eagerly, with a warning.
    """
    cls = CompiledTrainStep if compiled else EagerTrainStep
    return cls(model, loss_fn, optimizer)


def make_gradient_step(model, loss_fn, params=None, compiled=False):
    """A callable step(inputs, targets) -> (loss, [gradient per parameter], predictions): the
    train step without the update, for trainers that combine gradients before applying them
    (synchronous SGD across workers). params: the parameters to differentiate (default: the
    model's trainable parameters)."""
    if params is None:
        params = [p for p in _bare(model).parameters() if p.requires_grad]
    cls = CompiledGradientStep if compiled else EagerGradientStep
    return cls(model, loss_fn, params)


def make_predict_step(model, compiled=False):
    """A callable predict(inputs) -> numpy predictions, in eval mode without gradients."""
    runner = None
    if compiled:
        from ..graph.jit import jit

        runner = jit(model)

    def predict(inputs):
        arrays = as_arrays(inputs)
        model.eval()
        device = _device_of(model.parameters())
        if runner is not None and device == "cpu":   # compiled plans: the CPU's only so far
            return runner.run_numpy(*arrays)
        with autograd.no_grad():
            return _outputs_numpy(model(*[Tensor(a).to(device) for a in arrays]))

    return predict
