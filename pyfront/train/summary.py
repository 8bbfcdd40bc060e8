"""model.summary(): a Keras-like table of layers, output shapes and parameter counts, with the
output shapes recorded during one forward pass on zeros."""
import contextlib

import numpy as np

from .. import autograd
from ..tensor import Tensor

__all__ = ["summarize"]


def _shape_of(out):
    if isinstance(out, dict):
        return [_shape_of(v) for v in out.values()]
    if isinstance(out, (list, tuple)):
        return [_shape_of(v) for v in out]
    return (None,) + tuple(out.shape[1:])


def _fmt(shape):
    if isinstance(shape, list):
        return ", ".join(_fmt(s) for s in shape)
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + \
        ("," if len(shape) == 1 else "") + ")"


@contextlib.contextmanager
def _recording(modules, shapes):
    """Shadow each module's forward with an instance attribute that notes the output shape;
    the class's forward stays untouched and the attributes are removed afterwards."""
    patched = []
    try:
        for m in modules:
            original = m.forward

            def recorder(*args, _m=m, _fwd=original, **kwargs):
                out = _fwd(*args, **kwargs)
                shapes[id(_m)] = _shape_of(out)
                return out

            object.__setattr__(m, "forward", recorder)
            patched.append(m)
        yield
    finally:
        for m in patched:
            m.__dict__.pop("forward", None)


def _example_inputs(model, input_shape, input_dtype):
    if input_shape is not None:
        shapes = [input_shape] if all(isinstance(d, (int, np.integer)) for d in input_shape) \
            else list(input_shape)
        dtypes = input_dtype if isinstance(input_dtype, (list, tuple)) else \
            [input_dtype] * len(shapes)
        return [np.zeros((2,) + tuple(int(d) for d in s), np.dtype(dt or "float32"))
                for s, dt in zip(shapes, dtypes)]
    spec = model.input_spec
    if spec is None:
        raise ValueError("summary: %s has not seen an input yet, so its output shapes are "
                         "unknown; call it once or pass input_shape=(features...) without the "
                         "batch dimension" % model.name)
    arrays = []
    for shape, dtype in spec:
        np_dtype = getattr(dtype, "np", None) or np.float32
        arrays.append(np.zeros((2,) + tuple(d or 1 for d in shape[1:]), np_dtype))
    return arrays


def _counts(module):
    trainable = non_trainable = 0
    for _, t in module.named_tensors():
        data = getattr(t, "_data", None)
        size = 0 if data is None else int(data.size)
        if getattr(t, "is_parameter", False) and getattr(t, "trainable", True):
            trainable += size
        else:
            non_trainable += size
    return trainable, non_trainable


def summarize(model, input_shape=None, input_dtype=None):
    target = getattr(model, "module", None) if getattr(model, "is_hybridized", False) else None
    model = target or model
    rows = list(model._modules.items()) or [(model.name, model)]
    shapes = {}
    arrays = _example_inputs(model, input_shape, input_dtype)
    was_training = model.training
    model.eval()
    try:
        with autograd.no_grad(), _recording([m for _, m in rows] + [model], shapes):
            model(*[Tensor(a) for a in arrays])
    finally:
        model.train(was_training)
    table = []
    for key, m in rows:
        trainable, fixed = _counts(m)
        label = "%s (%s)" % (m.name, type(m).__name__)
        table.append((label, _fmt(shapes[id(m)]) if id(m) in shapes else "?",
                      trainable + fixed))
    total_trainable, total_fixed = _counts(model)
    headers = ("Layer (type)", "Output Shape", "Param #")
    widths = [max(len(headers[i]), *(len(str(r[i])) for r in table)) + 2 for i in range(3)]
    rule = "=" * sum(widths)
    line = lambda cells: "".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa
    out = ['Model: "%s"' % model.name, rule, line(headers), rule]
    for i, r in enumerate(table):
        out.append(line((r[0], r[1], "{:,}".format(r[2]))))
        out.append("-" * sum(widths) if i < len(table) - 1 else rule)
    out.append("Total params: {:,}".format(total_trainable + total_fixed))
    out.append("Trainable params: {:,}".format(total_trainable))
    out.append("Non-trainable params: {:,}".format(total_fixed))
    if id(model) in shapes:
        out.append("Output shape: %s" % _fmt(shapes[id(model)]))
    return "\n".join(out)
