"""The step seam between the fit loop and the engine: one training step and one prediction step,
eager or compiled, behind the same calls.

    step = make_train_step(model, loss_fn, optimizer, compiled)
    loss, predictions = step(inputs, targets)
    predict = make_predict_step(model, compiled)
    predictions = predict(inputs)

inputs / targets: a numpy array, or a list of arrays (several model inputs, several outputs'
targets). predictions: a numpy array for a single-output model, else a list (or the tuple /
dict structure the model returns) of arrays, computed before the update. loss_fn(outputs,
*targets) -> scalar tensor, written with ops so that it traces into a graph too.

Compiled steps come from pyfront.graph: CompiledTrainStep(model, loss_fn, optimizer) with the
same call signature, and pf.jit(model) for prediction.
"""
import warnings

import numpy as np

from .. import autograd
from ..tensor import Tensor

__all__ = ["make_train_step", "make_predict_step", "EagerTrainStep", "as_list"]


def as_list(x):
    """A list of numpy arrays from an array, a tensor, or a list/tuple of them."""
    if isinstance(x, (list, tuple)):
        return [a.numpy() if isinstance(a, Tensor) else np.asarray(a) for a in x]
    return [x.numpy() if isinstance(x, Tensor) else np.asarray(x)]


def _outputs_numpy(out):
    if isinstance(out, dict):
        return {k: v.numpy() for k, v in out.items()}
    if isinstance(out, (list, tuple)):
        return [v.numpy() for v in out]
    return out.numpy()


class EagerTrainStep:
    """Forward, loss and backward on the tape, then optimizer.step() (which clips first)."""

    def __init__(self, model, loss_fn, optimizer):
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer

    def __call__(self, inputs, targets):
        model, opt = self.model, self.optimizer
        model.train()
        opt.zero_grad()
        out = model(*[Tensor(a) for a in as_list(inputs)])
        loss = self.loss_fn(out, *[Tensor(a) for a in as_list(targets)])
        loss.backward()
        opt.step()
        return float(loss.item()), _outputs_numpy(out)


def _compiled_train_step_class():
    try:
        from ..graph.training import CompiledTrainStep
    except ImportError:
        return None
    return CompiledTrainStep


def make_train_step(model, loss_fn, optimizer, compiled=False):
    """A callable step(inputs, targets) -> (loss: float, predictions).

    compiled: run forward, loss, backward and the update as one compiled plan per batch shape
    (pyfront.graph.training.CompiledTrainStep); falls back to the eager step, with a warning,
    where the graph package has none.
    """
    if compiled:
        cls = _compiled_train_step_class()
        if cls is not None:
            return cls(model, loss_fn, optimizer)
        warnings.warn("compiled training steps are not available in this build; training "
                      "eagerly", RuntimeWarning, stacklevel=2)
    return EagerTrainStep(model, loss_fn, optimizer)


def make_predict_step(model, compiled=False):
    """A callable predict(inputs) -> numpy predictions, in eval mode without gradients."""
    runner = None
    if compiled:
        from ..graph.jit import jit

        runner = jit(model)

    def predict(inputs):
        arrays = as_list(inputs)
        model.eval()
        if runner is not None:
            return runner.run_numpy(*arrays)
        with autograd.no_grad():
            return _outputs_numpy(model(*[Tensor(a) for a in arrays]))

    return predict
