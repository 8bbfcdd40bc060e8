"""The Keras-style training API of models: compile, fit, evaluate, predict, summary.

The model classes in pyfront.nn (Sequential, Model, compiled models, pf.nn.Trainable) carry
these as methods; the loop lives here, above nn, and installs itself into nn when this module
is imported (pyfront.nn.model.install_training), so no layer imports the trainer."""

import numpy as np

from .. import errors, random
from ..graph.jit import flatten_outputs
from .metrics import fresh_metrics
from .step import as_arrays, make_predict_step, make_train_step

__all__ = ["compile", "fit", "evaluate", "predict", "summary", "training_config",
           "compiled_with_jit"]

_OPTIMIZERS = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSProp",
               "adagrad": "AdaGrad"}


def _match_target(pred, target):
    """Bring a target to its prediction's form where that is unambiguous: float targets take
    the prediction's float dtype; targets with the prediction's size per sample take its shape
    ((N,) targets for (N, 1) outputs, (N, 1, 1) windows for (N, 1) forecasts)."""
    if target.dtype.is_float and pred.dtype.is_float and target.dtype is not pred.dtype:
        target = target.astype(pred.dtype)
    if target.dtype.is_float:
        p_rest, t_rest = tuple(pred.shape[1:]), tuple(target.shape[1:])
        if p_rest != t_rest and None not in p_rest + t_rest and \
                int(np.prod(p_rest)) == int(np.prod(t_rest)):
            target = target.reshape((-1,) + p_rest)
    return target


def _loss_function(loss):
    from .. import losses

    if isinstance(loss, str):
        return losses.get(loss)
    if callable(loss):
        return loss
    raise TypeError("a loss is a name ('cross_entropy', 'mse') or a function, got %r" % (loss,))


def build_loss(loss, loss_weights=None, class_weight=None):
    """loss_fn(outputs, *targets) -> scalar tensor: the (weighted) sum of one loss per output,
    written with ops so it traces into compiled steps. class_weight ({class: weight}) weighs
    cross-entropy samples by their label's weight (Keras: mean of weight * loss)."""
    from ..ops import cross_entropy, take
    from ..ops.core import constant_like

    fns = [_loss_function(l) for l in (loss if isinstance(loss, (list, tuple)) else [loss])]
    weights = None if loss_weights is None else [float(w) for w in loss_weights]
    table = None
    if class_weight is not None:
        if len(fns) != 1 or fns[0] is not cross_entropy:
            raise ValueError("class_weight needs the single cross_entropy loss")
        size = max(int(k) for k in class_weight) + 1
        table = np.ones(size, np.float32)
        for k, w in class_weight.items():
            table[int(k)] = float(w)

    def loss_fn(out, *targets):
        preds = flatten_outputs(out)[0]     # tensors, or symbols when traced
        if len(preds) != len(targets):
            raise ValueError("the model has %d outputs but %d targets were given"
                             % (len(preds), len(targets)))
        if len(fns) not in (1, len(preds)):
            raise ValueError("%d losses for %d outputs" % (len(fns), len(preds)))
        if weights is not None and len(weights) != len(preds):
            raise ValueError("%d loss_weights for %d outputs" % (len(weights), len(preds)))
        total = None
        for i, (p, t) in enumerate(zip(preds, targets)):
            fn = fns[i if len(fns) > 1 else 0]
            if fn is not cross_entropy:     # labels stay as given: a float label's error
                t = _match_target(p, t)     # names its own dtype
            if table is not None:
                w = take(constant_like(table.astype(p.dtype.np), t), t)
                term = (cross_entropy(p, t, reduction="none") * w).mean()
            else:
                term = fn(p, t)
            if weights is not None:
                term = term * weights[i]
            total = term if total is None else total + term
        return total

    return loss_fn


def _make_optimizer(optimizer):
    from .. import optim

    if isinstance(optimizer, str):
        try:
            return getattr(optim, _OPTIMIZERS[optimizer.lower()])()
        except KeyError:
            raise ValueError("unknown optimizer %r; known: %s"
                             % (optimizer, ", ".join(sorted(_OPTIMIZERS)))) from None
    if isinstance(optimizer, optim.Optimizer):
        return optimizer
    raise TypeError("optimizer must be a pyfront.optim.Optimizer or a name, got %r"
                    % (optimizer,))


# ---- data: arrays, lists of arrays, Datasets and DataLoaders to batches ----

def _split_fields(batch):
    """(inputs list, targets list) from a loader batch: (x, y), ((x1, x2), y), (x1, x2, y),
    or inputs alone (for predict)."""
    if not isinstance(batch, (tuple, list)):
        return [np.asarray(batch)], []
    if len(batch) == 1:
        return [batch[0]], []
    x, y = (batch[0], batch[1]) if len(batch) == 2 else (batch[:-1], batch[-1])
    xs = list(x) if isinstance(x, (tuple, list)) else [x]
    ys = list(y) if isinstance(y, (tuple, list)) else [y]
    return xs, ys


def _check_batch_dims(xs, input_spec, what):
    """Refuse inputs one dimension short of those the model was built with: one sample
    (64,) for a model of (None, 64) would otherwise be cut into batches of numbers."""
    from ..ops.core import fmt_shape

    if not input_spec or len(input_spec) != len(xs):
        return
    for i, (a, (shape, _)) in enumerate(zip(xs, input_spec)):
        if a.ndim == len(shape) - 1:
            name = "x" if len(xs) == 1 else "x[%d]" % i
            raise errors.ShapeError(
                "%s: %s has shape %s, without the batch dimension: the model takes %s (batch "
                "first); pass one sample as %s[None], of shape %s"
                % (what, name, fmt_shape(a.shape), fmt_shape((None,) + tuple(shape[1:])),
                   name, fmt_shape((1,) + a.shape)))


class _Batches:
    """Batches of (inputs, targets) for one pass: from arrays or a Dataset / DataLoader.
    Array inputs are checked against input_spec (the model's, once it has seen an input) on
    behalf of `what` (fit, evaluate, predict)."""

    def __init__(self, x, y, batch_size, shuffle=False, seed=None, need_targets=True,
                 input_spec=None, what="fit"):
        from ..data import DataLoader, Dataset

        self.n_inputs = None
        if isinstance(x, DataLoader):
            self.loader = x
        elif isinstance(x, Dataset) or (hasattr(x, "__getitem__") and hasattr(x, "__len__")
                                        and not isinstance(x, (np.ndarray, list, tuple))):
            self.loader = DataLoader(x, batch_size, shuffle=shuffle, seed=seed)
        else:
            xs = _array_list(x, "x")
            _check_batch_dims(xs, input_spec, what)
            ys = [] if y is None else _array_list(y, "y")
            if need_targets and not ys:
                raise ValueError("fit/evaluate need targets: pass y, or a Dataset yielding "
                                 "(inputs, targets)")
            n = len(xs[0])
            for name, a in [("x", a) for a in xs] + [("y", a) for a in ys]:
                if len(a) != n:
                    raise ValueError("%d samples in x[0] but %d in %s" % (n, len(a), name))
            self.n_inputs = len(xs)
            self.loader = DataLoader(Dataset(*(xs + ys)), batch_size, shuffle=shuffle,
                                     seed=seed)
        if y is not None and self.n_inputs is None:
            raise ValueError("y must be None when x is a Dataset or DataLoader (it yields the "
                             "targets)")

    @property
    def steps(self):
        return len(self.loader)

    @property
    def samples(self):
        try:
            return len(self.loader.dataset)
        except TypeError:
            return None

    def __call__(self, epoch=None):
        if epoch is not None:
            self.loader.set_epoch(epoch)
        for batch in self.loader:
            if self.n_inputs is None:
                yield _split_fields(batch)
            else:
                fields = batch if isinstance(batch, tuple) else (batch,)
                yield list(fields[:self.n_inputs]), list(fields[self.n_inputs:])


def _array_list(x, name):
    """as_arrays(x), refusing scalars: samples come with a batch dimension."""
    out = as_arrays(x)
    for a in out:
        if a.ndim == 0:
            raise ValueError("%s must have a batch dimension, got a scalar" % name)
    return out


def _validation_split(x, y, fraction):
    """Keras' rule: the last `fraction` of the samples, taken before any shuffling."""
    if not 0 < fraction < 1:
        raise ValueError("validation_split must lie in (0, 1), got %r" % (fraction,))
    xs, ys = _array_list(x, "x"), _array_list(y, "y")
    n = len(xs[0])
    cut = int(n * (1 - fraction))
    if cut == 0 or cut == n:
        raise ValueError("validation_split=%r leaves an empty part of %d samples"
                         % (fraction, n))
    pick = lambda arrays, s: [a[s] for a in arrays]  # noqa: E731
    one = lambda arrays: arrays[0] if len(arrays) == 1 else arrays  # noqa: E731
    return (one(pick(xs, slice(0, cut))), one(pick(ys, slice(0, cut))),
            (one(pick(xs, slice(cut, n))), one(pick(ys, slice(cut, n)))))


# ---- configuration ----
def compile(model, optimizer="adam", loss=None, metrics=None, loss_weights=None, jit=False):
    """Choose the optimizer (bound to this model's parameters), the loss (a name, a
    function f(prediction, target), or one per output; loss_weights weigh them) and
    metrics (names or Metric objects; with several outputs a flat list is tracked on every
    output, a list of lists or a dict {output index: [...]} per output; logged as
    out<i>_<name>).
    jit=True trains with compiled steps (as a hybridized model does)."""
    from . import metrics as metrics_mod

    opt = _make_optimizer(optimizer)
    params = model.parameters()
    if not opt.params or [id(p) for p in opt.params] != [id(p) for p in params]:
        opt.bind(params)
    if loss is None:
        raise ValueError("compile needs a loss ('cross_entropy', 'mse' or a function)")
    specs = dict(metrics) if isinstance(metrics, dict) else list(metrics or [])
    flat = [m for group in (specs.values() if isinstance(specs, dict) else [specs])
            for m in group]
    for m in flat:
        for one in (m if isinstance(m, (list, tuple)) else [m]):
            metrics_mod.get(one)      # fail now on unknown names, not after an epoch
    object.__setattr__(model, "optimizer", opt)
    object.__setattr__(model, "stop_training", False)
    object.__setattr__(model, "_train_config", {
        "loss": loss, "loss_weights": loss_weights, "metrics": specs, "jit": bool(jit),
        "steps": {}})
    return model


def training_config(model):
    """What model.compile chose ({"loss", "loss_weights", "metrics", "jit", ...}), or None
    for a model that was never compiled."""
    return model.__dict__.get("_train_config")


def _config(model, what):
    cfg = model.__dict__.get("_train_config")
    if cfg is None:
        raise RuntimeError("%s: call model.compile(optimizer, loss, metrics) before %s"
                           % (model.name, what))
    return cfg


def compiled_with_jit(model):
    cfg = model.__dict__.get("_train_config") or {}
    return bool(cfg.get("jit")) or bool(getattr(model, "is_hybridized", False))


def _train_step(model, class_weight):
    cfg = model._train_config
    key = ("train", None if class_weight is None else tuple(sorted(class_weight.items())),
           compiled_with_jit(model))
    step = cfg["steps"].get(key)
    if step is None:
        loss_fn = build_loss(cfg["loss"], cfg["loss_weights"], class_weight)
        step = cfg["steps"][key] = make_train_step(model, loss_fn, model.optimizer,
                                                   compiled_with_jit(model))
    return step


def _predict_step(model):
    steps = (model.__dict__.get("_train_config") or {}).get("steps")
    key = ("predict", compiled_with_jit(model))
    if steps is not None and key in steps:
        return steps[key]
    step = make_predict_step(model, compiled_with_jit(model))
    if steps is not None:
        steps[key] = step
    return step


def _float_dtype(model):
    for p in model.parameters(trainable_only=False):
        if p.dtype.is_float:
            return p.dtype.np
    return np.float32


def _prepare(model, arrays, fdt=None):
    """Inputs and targets as the engine takes them: integers (labels, token ids) as int64,
    floats in the model's float dtype fdt. Targets (fdt None) keep their float dtype: the
    loss casts them, and a float label reaches cross_entropy's error as the user gave it."""
    out = []
    for a in arrays:
        a = np.asarray(a)
        if fdt is not None and a.dtype.kind == "f" and a.dtype != fdt:
            a = a.astype(fdt)
        elif a.dtype.kind in "iub" and a.dtype not in (np.int32, np.int64):
            a = a.astype(np.int64)
        out.append(np.ascontiguousarray(a))
    return out


# ---- training ----
def fit(model, x=None, y=None, batch_size=32, epochs=1, verbose=1, callbacks=None,
        validation_split=0.0, validation_data=None, shuffle=True, class_weight=None,
        initial_epoch=0, seed=None):
    """Train for `epochs` epochs; returns a History (history.history: per-epoch loss,
    metrics, val_loss, val_<metrics>, lr).

    x: an array, a list of arrays (several inputs), or a pyfront.data Dataset / DataLoader
    yielding (inputs, targets) (then y is None). validation_data: (x_val, y_val) or a
    Dataset / DataLoader; validation_split: the last fraction of x/y, held out before
    shuffling. shuffle: reshuffle every epoch (seeded by `seed`, else by pf.random).
    verbose: 0 silent, 1 a progress bar, then the epoch's summary wrapped to the terminal's
    width (one line per epoch when stdout is not a terminal of known width), 2 one line per
    epoch. x and y may also be (nested) Python lists, taken as numpy takes them.
    """
    from .callbacks import CallbackList, History
    from .metrics import Mean
    from .progress import ProgressLogger

    _config(model, "fit")           # refuses an uncompiled model before any work
    if validation_split and validation_data is None:
        if y is None:
            raise ValueError("validation_split needs array inputs x and y; pass "
                             "validation_data with a Dataset")
        x, y, validation_data = _validation_split(x, y, validation_split)
    if seed is None and shuffle:
        seed = int(random.generator().integers(2 ** 63))
    spec = getattr(model, "input_spec", None)
    batches = _Batches(x, y, batch_size, shuffle=shuffle, seed=seed, input_spec=spec)
    val_batches = None
    if validation_data is not None:
        if isinstance(validation_data, (tuple, list)):
            if len(validation_data) != 2:
                raise ValueError("validation_data is (x_val, y_val), got %d items"
                                 % len(validation_data))
            val_batches = _Batches(validation_data[0], validation_data[1], batch_size,
                                   input_spec=spec, what="fit: validation_data")
        else:
            val_batches = _Batches(validation_data, None, batch_size)
    if class_weight is not None and not isinstance(class_weight, dict):
        raise TypeError("class_weight is a dict {class index: weight}")

    history = History()
    progress = ProgressLogger(verbose)
    cbs = CallbackList([history] + list(callbacks or []) + [progress], model=model,
                       params={"epochs": epochs, "steps": batches.steps,
                               "samples": batches.samples, "verbose": verbose,
                               "batch_size": batch_size})
    step = _train_step(model, class_weight)
    fdt = _float_dtype(model)
    object.__setattr__(model, "stop_training", False)
    object.__setattr__(model, "history", history)
    was_training = model.training
    cbs.on_train_begin()
    try:
        for epoch in range(initial_epoch, epochs):
            loss_mean, tracked = Mean(), None
            cbs.on_epoch_begin(epoch)
            for b, (xs, ys) in enumerate(batches(epoch)):
                cbs.on_train_batch_begin(b)
                xs, ys = _prepare(model, xs, fdt), _prepare(model, ys)
                loss, preds = step(xs, ys)
                preds = as_arrays(preds)
                if tracked is None:
                    tracked = fresh_metrics(model._train_config["metrics"], len(preds))
                n = len(xs[0])
                loss_mean.update(loss, n)
                for i, _, m in tracked:
                    m.update(ys[i], preds[i])
                logs = {"batch": b, "size": n, "loss": loss_mean.result()}
                logs.update((name, m.result()) for _, name, m in tracked)
                cbs.on_train_batch_end(b, logs)
                if model.stop_training:
                    break
            logs = {"loss": loss_mean.result()}
            logs.update((name, m.result()) for _, name, m in tracked or ())
            if val_batches is not None:
                cbs.on_test_begin()
                val = _evaluate_batches(model, val_batches)
                cbs.on_test_end(val)
                logs.update(("val_" + k, v) for k, v in val.items())
            logs["lr"] = model.optimizer.lr
            cbs.on_epoch_end(epoch, logs)
            if model.stop_training:
                break
    finally:
        cbs.on_train_end()
        model.train(was_training)
    return history


# ---- evaluation and prediction ----
def _evaluate_batches(model, batches):
    from .. import autograd
    from ..tensor import Tensor
    from .metrics import Mean

    cfg = _config(model, "evaluate")
    loss_fn = cfg.setdefault("eval_loss", build_loss(cfg["loss"], cfg["loss_weights"]))
    predict = _predict_step(model)
    loss_mean, tracked = Mean(), None
    fdt = _float_dtype(model)
    for xs, ys in batches():
        xs, ys = _prepare(model, xs, fdt), _prepare(model, ys)
        preds = as_arrays(predict(xs))
        if tracked is None:
            tracked = fresh_metrics(model._train_config["metrics"], len(preds))
        with autograd.no_grad():
            loss = loss_fn([Tensor(p) for p in preds], *[Tensor(a) for a in ys])
        loss_mean.update(float(loss.item()), len(xs[0]))
        for i, _, m in tracked:
            m.update(ys[i], preds[i])
    out = {"loss": loss_mean.result()}
    out.update((name, m.result()) for _, name, m in tracked or ())
    return out


def evaluate(model, x=None, y=None, batch_size=32, verbose=0, return_dict=False):
    """Loss and metrics over all of the data (statistics summed across batches, not an
    average of batch averages). Returns the loss alone without metrics, else
    [loss, metric...] in compile order (a dict with return_dict)."""
    _config(model, "evaluate")
    was_training = model.training
    batches = _Batches(x, y, batch_size, input_spec=getattr(model, "input_spec", None),
                       what="evaluate")
    try:
        result = _evaluate_batches(model, batches)
    finally:
        model.train(was_training)
    if verbose:
        from .progress import format_logs

        print("evaluate: " + format_logs(result), flush=True)
    if return_dict:
        return result
    values = list(result.values())
    return values[0] if len(values) == 1 else values


def predict(model, x, batch_size=32, verbose=0):
    """Model outputs for x (an array, a list of arrays, or a Dataset / DataLoader of
    inputs) as numpy, computed in batches in eval mode: an array, or a list of arrays for
    a model with several outputs."""
    batches = _Batches(x, None, batch_size, need_targets=False,
                       input_spec=getattr(model, "input_spec", None), what="predict")
    predict = _predict_step(model)
    was_training = model.training
    parts = None
    fdt = _float_dtype(model)
    try:
        for xs, _ in batches():
            preds = as_arrays(predict(_prepare(model, xs, fdt)))
            for p in preds:       # an unbuilt model takes an unbatched sample as a batch
                if np.ndim(p) == 0 or len(p) != len(xs[0]):
                    raise errors.ShapeError(
                        "predict: the input batch of shape %s (%d samples) gave an output "
                        "of shape %s, not one row per sample: does x lack its batch "
                        "dimension?" % (np.shape(xs[0]), len(xs[0]), np.shape(p)))
            if parts is None:
                parts = [[] for _ in preds]
            for store, p in zip(parts, preds):
                store.append(np.asarray(p))
    finally:
        model.train(was_training)
    if parts is None:
        raise ValueError("predict: no input samples")
    out = [np.concatenate(p) for p in parts]
    if verbose:
        print("predict: %d samples" % len(out[0]), flush=True)
    return out[0] if len(out) == 1 else out


# ---- description ----
def summary(model, input_shape=None, input_dtype=None, print_fn=print):
    """A table of the layers with their output shapes and parameter counts (trainable and
    not), printed and returned. Output shapes come from one forward pass on a batch of
    zeros; the model must have seen an input, or input_shape (without the batch dimension,
    or a list of them for several inputs) must be given."""
    from .summary import summarize

    text = summarize(model, input_shape, input_dtype)
    if print_fn is not None:
        print_fn(text)
    return text


def _install():
    import sys

    from ..nn import model as nn_model

    nn_model.install_training(sys.modules[__name__])


_install()
