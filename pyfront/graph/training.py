"""A whole training step compiled: forward, loss, backward and the optimizer update as one
native call per batch (model.fit on a hybridized model runs this)."""
import warnings

import numpy as np

from .. import errors
from ..tensor import Tensor
from .jit import CompiledModule, _flatten
from .symbol import Graph

__all__ = ["CompiledTrainStep"]


def _arrays(x):
    if isinstance(x, (list, tuple)):
        return [np.asarray(a.numpy() if isinstance(a, Tensor) else a) for a in x]
    return [np.asarray(x.numpy() if isinstance(x, Tensor) else x)]


class CompiledTrainStep:
    """step(inputs, targets) -> (loss, predictions), one compiled plan per batch signature.

    inputs/targets: an array or a list of arrays (several model inputs or loss targets).
    Falls back to an eager step, with a warning, when the model cannot be traced.
    """

    def __init__(self, model, loss_fn, optimizer):
        self.model = model.module if isinstance(model, CompiledModule) else model
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self._cache = {}

    def _build(self, xs, ys):
        g = Graph("train_step")
        model = self.model
        x_syms = [g.placeholder("input" if len(xs) == 1 else "input_%d" % i, a.shape,
                                _dtype(a)) for i, a in enumerate(xs)]
        y_syms = [g.placeholder("target" if len(ys) == 1 else "target_%d" % i, a.shape,
                                _dtype(a)) for i, a in enumerate(ys)]
        model.train()
        out = model(*x_syms)
        leaves, rebuild = _flatten(out)
        loss = self.loss_fn(out, *y_syms)
        params = [p for p in (self.optimizer.params or model.parameters()) if p.requires_grad]
        exe = g.compile(outputs=leaves, loss=loss, optimizer=self.optimizer, params=params)
        names = [s.name for s in x_syms], [s.name for s in y_syms]
        return exe, names, [s.name for s in leaves], loss.name, rebuild

    def __call__(self, inputs, targets):
        xs, ys = _arrays(inputs), _arrays(targets)
        key = tuple((a.shape, a.dtype.str) for a in xs + ys) + (self.model.training,)
        entry = self._cache.get(key)
        if entry is None:
            try:
                entry = self._build(xs, ys)
            except errors.TraceError as e:
                warnings.warn("compiled training step: %s; training eagerly" % e,
                              RuntimeWarning, stacklevel=2)
                entry = "eager"
            self._cache[key] = entry
        if entry == "eager":
            return self._eager(xs, ys)
        exe, (xn, yn), out_names, loss_name, rebuild = entry
        feeds = dict(zip(xn, xs))
        feeds.update(zip(yn, ys))
        result = exe.step(feeds)
        preds = rebuild([result[n] for n in out_names])
        return float(result[loss_name]), preds

    def _eager(self, xs, ys):
        model, opt = self.model, self.optimizer
        model.train()
        opt.zero_grad()
        out = model(*[Tensor(a) for a in xs])
        loss = self.loss_fn(out, *[Tensor(a) for a in ys])
        loss.backward()
        opt.step()
        leaves, rebuild = _flatten(out)
        return float(loss.item()), rebuild([t.numpy() for t in leaves])

    @property
    def executors(self):
        return [e[0] for e in self._cache.values() if e != "eager"]


def _dtype(a):
    from ..dtypes import as_dtype

    return as_dtype(a.dtype)
