"""Neural-network ops: softmax and log-softmax over an axis (and gumbel_softmax's samples),
cross-entropy from logits with integer labels, mean squared error. The losses run as fused
kernels; when a gradient must itself be differentiated (create_graph) their gradients are
composed from plain ops instead."""
import math

import numpy as np

from .. import autograd, errors
from . import core
from .core import Op, ShapeMismatch, Spec, apply, as_operand, check_shape, fmt_shape, \
    normalize_axis
from . import elementwise as _elementwise  # noqa: E402 (siblings: read at call time)
from . import linalg as _linalg  # noqa: E402 (siblings: read at call time)
from . import reduction as _reduction  # noqa: E402 (siblings: read at call time)
from . import shape as _shape  # noqa: E402 (siblings: read at call time)

__all__ = ["softmax", "log_softmax", "softmin", "cross_entropy", "mse", "one_hot", "nll_loss",
           "binary_cross_entropy", "binary_cross_entropy_with_logits", "huber_loss",
           "smooth_l1_loss", "l1_loss", "kl_div", "cosine_similarity", "margin_ranking_loss"]

_REDUCTIONS = {"none": 0, "mean": 1, "sum": 2}


def _axis_view(shape, axis):
    return (math.prod(shape[:axis]), shape[axis], math.prod(shape[axis + 1:]))


class Softmax(Op):
    inputs = ("x",)
    retain_inputs, retain_outputs = (), (0,)

    def __init__(self, log):
        self.log = log
        self.name = "log_softmax" if log else "softmax"

    def infer(self, specs, attrs):
        x = specs[0]
        if not x.dtype.is_float:
            raise errors.DTypeError("%s needs a float tensor, got %s" % (self.name,
                                                                        x.dtype.name))
        normalize_axis(attrs["axis"], len(x.shape), self.name)
        return [x]

    def forward(self, k, ins, outs, attrs):
        view = _axis_view(ins[0].shape, attrs["axis"])
        k.run(self.name, [ins[0].desc(view)], [outs[0].desc(view)])

    def grad(self, ctx, g):
        return (apply(_GRADS[self.log], [ctx.output(), g], ctx.attrs),)


class SoftmaxGrad(Op):
    """dx of (log-)softmax from its output y and the upstream gradient g."""

    inputs = ("y", "grad")

    def __init__(self, log):
        self.log = log
        self.name = "log_softmax_grad" if log else "softmax_grad"

    def infer(self, specs, attrs):
        y, g = specs
        normalize_axis(attrs["axis"], len(y.shape), self.name)
        check_shape("grad", g.shape, y.shape)
        return [y]

    def forward(self, k, ins, outs, attrs):
        view = _axis_view(ins[0].shape, attrs["axis"])
        k.run(self.name, [ins[0].desc(view), ins[1].desc(view)], [outs[0].desc(view)])

    def grad(self, ctx, gg):
        exp = _elementwise.exp
        rsum = _reduction.sum

        y, g = ctx.inputs
        axis = ctx.attrs["axis"]
        if self.log:
            e = exp(y)
            dy = -gg * e * rsum(g, axis, True) if ctx.needs[0] else None
            dg = gg - rsum(gg * e, axis, True) if ctx.needs[1] else None
        else:
            s = rsum(g * y, axis, True)
            dy = gg * (g - s) - g * rsum(gg * y, axis, True) if ctx.needs[0] else None
            dg = apply(self, [y, gg], ctx.attrs) if ctx.needs[1] else None
        return dy, dg


_softmax = Softmax(False)
_log_softmax = Softmax(True)
_GRADS = {False: SoftmaxGrad(False), True: SoftmaxGrad(True)}
for _op in (_softmax, _log_softmax, _GRADS[False], _GRADS[True]):
    core.REGISTRY[_op.name] = _op


def _over_axis(op, x, axis):
    x = as_operand(x)
    if not x.shape:
        # PyTorch: over dim 0 or -1 of a 0-d tensor, the tensor as a 1-element vector
        normalize_axis(axis, 1, op.name)
        return _shape.reshape(apply(op, [_shape.reshape(x, (1,))], {"axis": 0}), ())
    return apply(op, [x], {"axis": normalize_axis(axis, len(x.shape), op.name)})


def softmax(x, axis=-1):
    return _over_axis(_softmax, x, axis)


def softmin(x, axis=-1):
    """softmax(-x): weights that favour the smallest values."""
    return softmax(-as_operand(x), axis)


def log_softmax(x, axis=-1):
    return _over_axis(_log_softmax, x, axis)


def one_hot(labels, classes=None, dtype="float32"):
    """(N,) integer labels -> (N, classes) rows of zeros with a one at the label (any shape of
    labels gains a trailing dim). A label outside [0, classes) raises IndexOutOfRange: tensor
    labels are checked here; symbolic labels pass through a gather from the class ids (the
    identity for labels in range), whose native kernel refuses an out-of-range index when the
    compiled plan runs. Without classes (or -1, PyTorch's default) it is the largest label
    plus one, as PyTorch's; eager only (a graph's result shape cannot depend on its values).
    Unlike PyTorch (int64), the result is float32 unless dtype says otherwise."""
    equal = _elementwise.equal
    expand_dims = _shape.expand_dims
    take = _shape.take

    labels = as_operand(labels)
    if labels.dtype.is_float:
        raise errors.DTypeError("one_hot: labels must be int32 or int64, got %s"
                                % labels.dtype.name)
    if classes is None or (type(classes) is int and classes == -1):
        if labels.symbolic:
            raise errors.TraceError("one_hot: give classes (num_classes) in a graph: the "
                                    "number of classes cannot come from the labels' values "
                                    "there")
        flat = labels.cpu().numpy().reshape(-1)
        if not flat.size:
            raise errors.ShapeError("one_hot: cannot infer the number of classes from empty "
                                    "labels %s: give classes" % core.fmt_shape(labels.shape))
        classes = max(int(flat.max()) + 1, 1)   # (a negative label fails below)
    if isinstance(classes, bool) or not hasattr(classes, "__index__") or classes < 1:
        raise errors.ShapeError("one_hot: classes must be a positive int, got %r" % (classes,))
    ids = core.constant_like(np.arange(classes, dtype=labels.dtype.np), labels)
    if labels.symbolic:
        labels = take(ids, labels)
    else:
        flat = labels.cpu().numpy().reshape(-1)   # checked on the host, wherever they live
        bad = np.flatnonzero((flat < 0) | (flat >= classes))
        if bad.size:
            raise errors.IndexOutOfRange("one_hot: label %d at position %d is out of range for "
                                         "%d classes" % (flat[bad[0]], bad[0], classes))
    return equal(expand_dims(labels, -1), ids).astype(dtype)


# ---------------------------------------------------------------------------------------------
# losses

class CrossEntropy(Op):
    name = "cross_entropy"
    inputs = ("logits", "labels")
    retain_outputs = ()

    def infer(self, specs, attrs):
        z, y = specs
        if not z.dtype.is_float:
            raise errors.DTypeError("logits must be float, got %s" % z.dtype.name)
        if y.dtype.is_float:
            raise errors.DTypeError("labels must be integer class indices (int32/int64), got %s"
                                    % y.dtype.name)
        if len(z.shape) != 2:
            raise ShapeMismatch("logits must be (batch, classes), got %s" % fmt_shape(z.shape))
        if len(y.shape) != 1:
            raise ShapeMismatch("labels must be (batch,), got %s" % fmt_shape(y.shape))
        if z.shape[0] is not None and y.shape[0] is not None and z.shape[0] != y.shape[0]:
            raise ShapeMismatch("%d rows of logits but %d labels" % (z.shape[0], y.shape[0]))
        shape = (z.shape[0],) if attrs["reduction"] == "none" else ()
        return [Spec(shape, z.dtype)]

    def forward(self, k, ins, outs, attrs):
        k.run("cross_entropy", [ins[0].desc(), ins[1].desc()], [outs[0].desc()],
              (_REDUCTIONS[attrs["reduction"]], attrs["ignore_index"]))

    def grad(self, ctx, g):
        z, labels = ctx.inputs
        if autograd.is_grad_enabled():
            return _cross_entropy_grad_composed(z, labels, g, ctx.attrs), None
        return apply(_ce_grad, [z, labels, g], ctx.attrs), None


class CrossEntropyGrad(Op):
    name = "cross_entropy_grad"
    inputs = ("logits", "labels", "grad")

    def infer(self, specs, attrs):
        return [specs[0]]

    def forward(self, k, ins, outs, attrs):
        k.run("cross_entropy_grad", [ins[0].desc(), ins[1].desc(), ins[2].desc()],
              [outs[0].desc()], (_REDUCTIONS[attrs["reduction"]], attrs["ignore_index"]))

    def grad(self, ctx, gg):
        # Only graph gradients reach this op (the tape differentiates the composed form): a
        # second derivative of the loss. The kernel computes delta * scale (see
        # _cross_entropy_grad_composed), linear in g and a softmax's in z.
        rsum = _reduction.sum
        expand_dims = _shape.expand_dims

        z, labels, g = ctx.inputs
        s, keep, delta = _cross_entropy_delta(z, labels, ctx.attrs)
        scale, dg = g, rsum(gg * delta)
        if ctx.attrs["reduction"] == "none":
            scale, dg = expand_dims(g, -1), rsum(gg * delta, 1)
        elif ctx.attrs["reduction"] == "mean":
            scale, dg = g / rsum(keep), dg / rsum(keep)
        dz = apply(_GRADS[False], [s, gg * expand_dims(keep, -1) * scale], {"axis": 1}) \
            if ctx.needs[0] else None
        return dz, None, (dg if ctx.needs[2] else None)


def _cross_entropy_delta(z, labels, attrs):
    """(softmax(z), keep, (softmax(z) - onehot(labels)) * keep): keep is 0 on ignored rows."""
    not_equal = _elementwise.not_equal
    expand_dims = _shape.expand_dims

    keep = not_equal(labels, attrs["ignore_index"]).astype(z.dtype)
    safe = labels * keep.astype(labels.dtype)
    s = softmax(z)
    return s, keep, (s - one_hot(safe, z.shape[1], z.dtype)) * expand_dims(keep, -1)


def _cross_entropy_grad_composed(z, labels, g, attrs):
    """(softmax(z) - onehot(labels)) * g (/ count), from differentiable ops."""
    rsum = _reduction.sum
    expand_dims = _shape.expand_dims

    _, keep, delta = _cross_entropy_delta(z, labels, attrs)
    if attrs["reduction"] == "none":
        return delta * expand_dims(g, -1)
    if attrs["reduction"] == "mean":
        return delta * (g / rsum(keep))
    return delta * g


_cross_entropy = core.register(CrossEntropy)
_ce_grad = core.register(CrossEntropyGrad)


def cross_entropy(logits, labels, reduction="mean", ignore_index=-100, weight=None,
                  label_smoothing=0.0):
    """Softmax cross-entropy of logits (batch, classes) or (batch, classes, *positions), as
    PyTorch's F.cross_entropy: labels are class indices (integers; ignore_index rows count
    nothing) or class probabilities (float, the logits' shape); weight (classes,) scales each
    class (the mean then divides by the summed weights of the labels, as PyTorch);
    label_smoothing mixes the target with the uniform distribution. The plain case (2-D
    logits, integer labels, no weight or smoothing) runs one fused native kernel."""
    if reduction not in _REDUCTIONS:
        raise ValueError("reduction must be 'mean', 'sum' or 'none', got %r" % (reduction,))
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError("cross_entropy: label_smoothing must be in [0, 1], got %r"
                         % (label_smoothing,))
    logits = as_operand(logits)
    labels = as_operand(labels)
    if _is_unbatched(logits, labels):
        return _unbatched(cross_entropy, logits, labels, reduction, ignore_index=ignore_index,
                          weight=weight, label_smoothing=label_smoothing)
    if len(logits.shape) == 2 and not labels.dtype.is_float and weight is None and \
            not label_smoothing:
        return apply(_cross_entropy, [logits, labels],
                     {"reduction": reduction, "ignore_index": int(ignore_index)})
    return _cross_entropy_composed(logits, labels, reduction, int(ignore_index), weight,
                                   float(label_smoothing))


def _is_unbatched(scores, labels):
    """Whether scores (classes,) come with one sample's target: a 0-d class index, or
    probabilities shaped like scores (other 1-D targets get the batched shape error)."""
    if len(scores.shape) != 1:
        return False
    if labels.dtype.is_float:
        return tuple(labels.shape) == tuple(scores.shape)
    return not labels.shape


def _unbatched(loss_fn, scores, labels, reduction, **options):
    """loss_fn on one unbatched sample, scores (classes,) with a 0-d class index or (classes,)
    probabilities, as PyTorch takes it: a batch of one, and a 0-d result for 'none' too."""
    labels = _shape.expand_dims(labels, 0)
    out = loss_fn(_shape.expand_dims(scores, 0), labels, reduction=reduction, **options)
    return _shape.reshape(out, ()) if reduction == "none" else out


def _class_shape_check(op, logits, labels, probabilities):
    if len(logits.shape) < 2:
        raise errors.ShapeError("%s: logits must be (batch, classes) or (batch, classes, "
                                "*positions), got %s" % (op, fmt_shape(logits.shape)))
    want = tuple(logits.shape) if probabilities else \
        tuple(logits.shape[:1]) + tuple(logits.shape[2:])
    if len(labels.shape) != len(want) or any(a is not None and b is not None and a != b
                                             for a, b in zip(labels.shape, want)):
        # float class indices (labels read from a CSV, say) are the usual cause
        hint = "; class indices must be integers (int32/int64), got %s" % labels.dtype.name \
            if probabilities and len(labels.shape) == len(want) - 1 else ""
        raise errors.ShapeError("%s: %s %s do not fit logits %s (expected %s)%s"
                                % (op, "target probabilities" if probabilities else "labels",
                                   fmt_shape(labels.shape), fmt_shape(logits.shape),
                                   fmt_shape(want), hint))


def _class_weights(weight, logits, op):
    if weight is None:
        return None
    weight = as_operand(weight, like=logits)
    if tuple(weight.shape) != (logits.shape[1],):
        raise errors.ShapeError("%s: weight %s must have one entry per class (%s,)"
                                % (op, fmt_shape(weight.shape), logits.shape[1]))
    return weight


def _per_class(v, ndim):
    """A (classes,) vector shaped to broadcast along dim 1 of an ndim-D tensor."""
    return _shape.reshape(v, (1, -1) + (1,) * (ndim - 2))


def _cross_entropy_composed(logits, labels, reduction, ignore_index, weight, smoothing):
    rsum = _reduction.sum
    _class_shape_check("cross_entropy", logits, labels, labels.dtype.is_float)
    logp = log_softmax(logits, axis=1)
    classes = logits.shape[1]
    weight = _class_weights(weight, logits, "cross_entropy")
    if labels.dtype.is_float:
        _class_shape_check("cross_entropy", logits, labels, True)
        target = labels.astype(logits.dtype)
        if smoothing:
            target = target * (1.0 - smoothing) + smoothing / classes
        terms = target * logp
        if weight is not None:
            terms = terms * _per_class(weight, len(logits.shape))
        loss = -rsum(terms, axis=1)
        return _reduce_loss(loss, reduction)
    loss, weights = _nll_terms(logp, labels, weight, ignore_index, "cross_entropy")
    if smoothing:
        keep = _elementwise.not_equal(labels, ignore_index).astype(logp.dtype)
        spread = logp if weight is None else logp * _per_class(weight, len(logits.shape))
        smooth = -rsum(spread, axis=1) * keep
        loss = loss * (1.0 - smoothing) + smooth * (smoothing / classes)
    if reduction == "mean":
        return rsum(loss) / rsum(weights)
    return _reduce_loss(loss, reduction)


def _nll_terms(logp, labels, weight, ignore_index, op):
    """Per-position -w[y] logp[y] (0 where y == ignore_index) and the weights w[y] (0 there)."""
    if labels.dtype.is_float:
        raise errors.DTypeError("%s: labels must be integer class indices, got %s"
                                % (op, labels.dtype.name))
    _class_shape_check(op, logp, labels, False)
    keep = _elementwise.not_equal(labels, ignore_index)
    safe = _checked_labels(op, labels, _elementwise.where(keep, labels, 0), logp.shape[1],
                           ignore_index)
    picked = _shape.squeeze(_shape.take_along_axis(logp, _shape.expand_dims(safe, 1), 1), 1)
    weights = keep.astype(logp.dtype)
    if weight is not None:
        weights = weights * _shape.take(weight, safe, 0)
    return -picked * weights, weights


def _checked_labels(op, labels, safe, classes, ignore_index):
    """safe (the labels with ignore_index replaced by 0), refused where a label is outside
    [0, classes) and not ignore_index, as cross_entropy's fused kernel refuses it: the gather
    that picks each label's log-probability would take a negative label as a class counted from
    the end (-1: the last class, silently), and fail on one past the end naming only itself.
    Tensor labels are checked on the host, wherever they live; symbolic ones pass through a
    gather from the class ids (the identity for labels in range) under the op's name, whose
    kernel refuses them when the compiled plan runs, so the error names op, the label and the
    class count there too."""
    if classes is None:
        return safe
    if not labels.symbolic:
        flat = labels.cpu().numpy().reshape(-1)
        bad = np.flatnonzero((flat != ignore_index) & ((flat < 0) | (flat >= classes)))
        if bad.size:
            pos = tuple(int(i) for i in np.unravel_index(bad[0], labels.shape))
            raise errors.IndexOutOfRange(
                "%s: label %d at position %s is out of range for %d classes (ignore_index=%d)"
                % (op, flat[bad[0]], pos[0] if len(pos) == 1 else pos, classes, ignore_index))
        return safe
    ids = core.constant_like(np.arange(classes, dtype=labels.dtype.np), labels)
    with core.name_scope(op):
        return _shape.take(ids, safe)


def _reduce_loss(loss, reduction):
    if reduction == "none":
        return loss
    return _reduction.sum(loss) if reduction == "sum" else _reduction.mean(loss)


def nll_loss(log_probs, labels, weight=None, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood of integer labels under log-probabilities (batch, classes,
    *positions), as PyTorch's F.nll_loss (weight, ignore_index, the weighted mean)."""
    if reduction not in _REDUCTIONS:
        raise ValueError("reduction must be 'mean', 'sum' or 'none', got %r" % (reduction,))
    log_probs, labels = as_operand(log_probs), as_operand(labels)
    if _is_unbatched(log_probs, labels):
        return _unbatched(nll_loss, log_probs, labels, reduction, weight=weight,
                          ignore_index=ignore_index)
    weight = _class_weights(weight, log_probs, "nll_loss") if len(log_probs.shape) >= 2 \
        else weight
    loss, weights = _nll_terms(log_probs, labels, weight, int(ignore_index), "nll_loss")
    if reduction == "mean":
        return _reduction.sum(loss) / _reduction.sum(weights)
    return _reduce_loss(loss, reduction)


def _pair(prediction, target, op):
    prediction = as_operand(prediction)
    target = as_operand(target, like=prediction)
    if target.dtype is not prediction.dtype:
        target = target.astype(prediction.dtype)
    if tuple(target.shape) != tuple(prediction.shape):
        raise errors.ShapeError("%s: target %s and input %s differ"
                                % (op, fmt_shape(target.shape), fmt_shape(prediction.shape)))
    return prediction, target


def _weighted(loss, weight, reduction):
    if weight is not None:
        loss = loss * as_operand(weight, like=loss)
    return _reduce_loss(loss, reduction)


def binary_cross_entropy(probabilities, target, weight=None, reduction="mean"):
    """-(t log p + (1 - t) log(1 - p)) with each log clamped at -100 (PyTorch's, so p = 0 or 1
    gives a finite loss)."""
    p, t = _pair(probabilities, target, "binary_cross_entropy")
    log, clip = _elementwise.log, _elementwise.clip
    loss = -(t * clip(log(p), -100.0) + (1.0 - t) * clip(log(1.0 - p), -100.0))
    return _weighted(loss, weight, reduction)


def binary_cross_entropy_with_logits(logits, target, weight=None, pos_weight=None,
                                     reduction="mean"):
    """Binary cross-entropy of sigmoid(logits), computed stably from the logits (PyTorch's
    formula); pos_weight scales the positive term per class."""
    z, t = _pair(logits, target, "binary_cross_entropy_with_logits")
    softplus_neg = _elementwise.softplus(-z)           # -log sigmoid(z), stable
    if pos_weight is None:
        loss = (1.0 - t) * z + softplus_neg
    else:
        scale = (as_operand(pos_weight, like=z) - 1.0) * t + 1.0
        loss = (1.0 - t) * z + scale * softplus_neg
    return _weighted(loss, weight, reduction)


def huber_loss(prediction, target, reduction="mean", delta=1.0):
    """0.5 d^2 where |d| < delta, else delta (|d| - 0.5 delta), d = prediction - target."""
    p, t = _pair(prediction, target, "huber_loss")
    d = _elementwise.abs(p - t)
    loss = _elementwise.where(d < delta, (d * d) * 0.5, (d - 0.5 * delta) * delta)
    return _reduce_loss(loss, reduction)


def smooth_l1_loss(prediction, target, reduction="mean", beta=1.0):
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (= huber_loss / beta)."""
    p, t = _pair(prediction, target, "smooth_l1_loss")
    d = _elementwise.abs(p - t)
    if beta == 0:
        return _reduce_loss(d, reduction)
    loss = _elementwise.where(d < beta, (d * d) * (0.5 / beta), d - 0.5 * beta)
    return _reduce_loss(loss, reduction)


def l1_loss(prediction, target, reduction="mean"):
    p, t = _pair(prediction, target, "l1_loss")
    return _reduce_loss(_elementwise.abs(p - t), reduction)


def kl_div(log_q, target, reduction="mean", log_target=False):
    """PyTorch's F.kl_div: target * (log target - log_q) with log_q the input's
    log-probabilities (0 where target is 0); reduction "batchmean" divides the sum by the
    batch size (the true KL divergence), "mean" by the element count (PyTorch's default)."""
    log_q, t = _pair(log_q, target, "kl_div")
    if log_target:
        loss = _elementwise.exp(t) * (t - log_q)
    else:
        positive = t > 0
        safe = _elementwise.where(positive, t, 1.0)
        loss = _elementwise.where(positive, t * (_elementwise.log(safe) - log_q), 0.0)
    if reduction == "batchmean":
        return _reduction.sum(loss) / (log_q.shape[0] if log_q.shape else 1)
    if reduction not in _REDUCTIONS:
        raise ValueError("reduction must be 'mean', 'batchmean', 'sum' or 'none', got %r"
                         % (reduction,))
    return _reduce_loss(loss, reduction)


def cosine_similarity(x1, x2, axis=1, eps=1e-8):
    """sum(x1 / max(|x1|, eps) * x2 / max(|x2|, eps)) along axis, x1 and x2 broadcast to their
    common shape first, as PyTorch 2.x. Each norm is clamped on its own: clamping their product
    (PyTorch 1.x's formula) turned two short vectors, each above eps, into a similarity near 0.

    The gradient is that of this formula, which is PyTorch's wherever each norm is 0 or at
    least eps. For a norm strictly between 0 and eps PyTorch clamps in place under no_grad, so
    its backward reads the clamped norm as if it were the norm's own result (x / eps for
    d|x|/dx), an artefact of its in-place clamp that this does not copy."""
    rsum = _reduction.sum
    clip = _elementwise.clip
    x1, x2 = as_operand(x1), as_operand(x2)
    if tuple(x1.shape) != tuple(x2.shape):
        # broadcast before the norms: an axis of size 1 against n counts n times in the norm
        both = x1 * x2
        x1, x2 = _shape.expand_like(x1, both), _shape.expand_like(x2, both)
    n1 = clip(_reduction.norm(x1, 2, axis, keepdims=True), eps)
    n2 = clip(_reduction.norm(x2, 2, axis, keepdims=True), eps)
    return rsum((x1 / n1) * (x2 / n2), axis=axis)


def margin_ranking_loss(x1, x2, target, margin=0.0, reduction="mean"):
    """max(0, -target (x1 - x2) + margin), target +1 or -1. Its gradient at the hinge itself
    (the argument exactly 0) is the argument's, as PyTorch's clamp_min gives (relu's would be
    0 there: a pair exactly at the margin would never be pushed past it)."""
    x1, x2 = as_operand(x1), as_operand(x2)
    target = as_operand(target, like=x1)
    return _reduce_loss(_elementwise.clip(-target * (x1 - x2) + margin, 0.0), reduction)


class MSE(Op):
    name = "mse"
    retain_outputs = ()
    inputs = ("prediction", "target")

    def infer(self, specs, attrs):
        p, t = specs
        if not p.dtype.is_float or t.dtype is not p.dtype:
            raise errors.DTypeError("prediction and target must be float of one dtype, got %s "
                                    "and %s" % (p.dtype.name, t.dtype.name))
        if len(p.shape) != len(t.shape) or any(
                a is not None and b is not None and a != b for a, b in zip(p.shape, t.shape)):
            raise ShapeMismatch("prediction %s and target %s differ" % (fmt_shape(p.shape),
                                                                         fmt_shape(t.shape)))
        return [Spec(p.shape if attrs["reduction"] == "none" else (), p.dtype)]

    def forward(self, k, ins, outs, attrs):
        k.run("mse", [ins[0].desc(), ins[1].desc()], [outs[0].desc()],
              (_REDUCTIONS[attrs["reduction"]],))

    def grad(self, ctx, g):
        p, t = ctx.inputs
        if autograd.is_grad_enabled():
            d = (p - t) * 2.0
            if ctx.attrs["reduction"] == "mean":
                d = d * (g * (1.0 / math.prod(p.shape)))
            else:
                d = d * g
            return d, (-d if ctx.needs[1] else None)
        dp = apply(_mse_grad, [p, t, g], ctx.attrs)
        return dp, (-dp if ctx.needs[1] else None)


class MSEGrad(Op):
    name = "mse_grad"
    inputs = ("prediction", "target", "grad")

    def infer(self, specs, attrs):
        return [specs[0]]

    def forward(self, k, ins, outs, attrs):
        k.run("mse_grad", [ins[0].desc(), ins[1].desc(), ins[2].desc()], [outs[0].desc()],
              (_REDUCTIONS[attrs["reduction"]],))

    def grad(self, ctx, gg):
        # Only graph gradients reach this op (the tape differentiates the composed form): a
        # second derivative of the loss. The kernel computes 2 (p - t) * g, g spread over p
        # and divided by its size for the mean (known only when the graph runs).
        p, t, g = ctx.inputs
        d = (p - t) * 2.0
        if ctx.attrs["reduction"] == "mean":
            all_axes = tuple(range(len(p.shape)))
            scale = apply(_reduction._reduce_grad, [g, p], {"axes": all_axes, "mode": "mean"})
            dg = _reduction.mean(gg * d)
        elif ctx.attrs["reduction"] == "sum":
            scale, dg = g, _reduction.sum(gg * d)
        else:
            scale, dg = g, gg * d
        dp = gg * scale * 2.0
        return dp, (-dp if ctx.needs[1] else None), (dg if ctx.needs[2] else None)


_mse = core.register(MSE)
_mse_grad = core.register(MSEGrad)


def mse(prediction, target, reduction="mean"):
    """Mean squared error (or its sum, or the elementwise squares with reduction='none')."""
    if reduction not in _REDUCTIONS:
        raise ValueError("reduction must be 'mean', 'sum' or 'none', got %r" % (reduction,))
    prediction = as_operand(prediction)
    target = as_operand(target, like=prediction)
    if target.dtype is not prediction.dtype:
        target = target.astype(prediction.dtype)
    return apply(_mse, [prediction, target], {"reduction": reduction})


def mse_loss(prediction, target, reduction="mean"):
    """PyTorch's name of mse."""
    return mse(prediction, target, reduction)


__all__ += ["mse_loss"]


# ---------------------------------------------------------------------------------------------
# more of torch.nn.functional's losses and distances, composed of the ops above. Where
# PyTorch's positional order still carries the deprecated size_average and reduce, the options
# after them are keyword-only here: a positional reduction would land on the wrong one

def _reduction_checked(reduction, op):
    if reduction not in _REDUCTIONS:
        raise ValueError("%s: reduction must be 'mean', 'sum' or 'none', got %r"
                         % (op, reduction))
    return reduction


def _p_norm(x, p, axis, keepdims=False):
    """The p-norm along axis whose gradient is 0 where the norm is 0 and, for p < 1, where an
    element is 0 (PyTorch's norm and pdist backward), not an infinite slope times 0."""
    E = _elementwise
    if p in (0, 1, 2, math.inf):
        return _reduction.norm(x, p, axis, keepdims)
    if not p > 0:
        raise ValueError("the norm degree p must be positive, 0 or inf, got %r" % (p,))
    # |x|^p taken at 1 where x is 0 (p < 1 has an infinite slope there) and replaced by 0
    size = E.abs(x)
    some = E.greater(size, 0.0)
    powered = E.where(some, E.pow(E.where(some, size, 1.0), float(p)), 0.0)
    total = _reduction.sum(powered, axis, keepdims)
    zero = E.equal(total, 0.0)
    return E.where(zero, 0.0, E.pow(E.where(zero, 1.0, total), 1.0 / p))


def pairwise_distance(x1, x2, p=2.0, eps=1e-6, keepdims=False):
    """PyTorch's F.pairwise_distance: the p-norm of x1 - x2 + eps over the last dim (x1 and x2
    broadcast). keepdim= is accepted."""
    x1 = as_operand(x1)
    x2 = as_operand(x2, like=x1)
    diff = x1 - x2 + float(eps)
    if not diff.shape:
        raise errors.ShapeError("pairwise_distance: x1 %s and x2 %s need at least one dim"
                                % (fmt_shape(x1.shape), fmt_shape(x2.shape)))
    return _p_norm(diff, p, len(diff.shape) - 1, keepdims)


def pdist(x, p=2.0):
    """PyTorch's F.pdist: the p-norm distances between the rows of x (N, M), for each pair
    i < j in row-major order: N (N - 1) / 2 values."""
    x = as_operand(x)
    if len(x.shape) != 2 or x.shape[0] is None:
        raise errors.ShapeError("pdist: x must be (rows, features) with known rows, got %s"
                                % fmt_shape(x.shape))
    first, second = np.triu_indices(x.shape[0], 1)
    diff = _shape.take(x, first, 0) - _shape.take(x, second, 0)
    return _p_norm(diff, p, 1)


def gaussian_nll_loss(input, target, var, full=False, eps=1e-6, reduction="mean"):
    """PyTorch's F.gaussian_nll_loss: 0.5 (log(var) + (input - target)^2 / var) (+ 0.5 log 2pi
    with full), var of input's shape, one dim short of it, or with one dim of size 1 (one
    variance shared there). var is clamped at eps for the value only: its gradient passes the
    clamp as PyTorch's (clamped in place under no_grad) does."""
    E = _elementwise
    _reduction_checked(reduction, "gaussian_nll_loss")
    input, target = _pair(input, target, "gaussian_nll_loss")
    if isinstance(var, (int, float)):
        if var < 0:
            raise ValueError("gaussian_nll_loss: var has negative entries (%r)" % (var,))
        var = _shape.expand_like(core.constant_like(np.asarray(var, input.dtype.np), input),
                                 input)
    var = as_operand(var, like=input)
    if not var.symbolic and bool((var.cpu().numpy() < 0).any()):
        raise ValueError("gaussian_nll_loss: var has negative entries")
    vs, xs = tuple(var.shape), tuple(input.shape)
    if vs != xs:
        if vs == xs[:-1]:
            var = _shape.expand_dims(var, -1)
        elif not (len(vs) == len(xs) and
                  sum(v for x, v in zip(xs, vs) if x != v) == 1):
            raise errors.ShapeError("gaussian_nll_loss: var %s must be input's shape %s, one dim "
                                    "short of it, or 1 in one of its dims"
                                    % (fmt_shape(vs), fmt_shape(xs)))
    var = E.where(E.less(var, eps), var - _shape.stop_gradient(var) + eps, var)
    diff = input - target
    loss = (E.log(var) + diff * diff / var) * 0.5
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce_loss(loss, reduction)


def poisson_nll_loss(input, target, log_input=True, full=False, *, eps=1e-8, reduction="mean"):
    """PyTorch's F.poisson_nll_loss: exp(input) - target * input (log_input), else input -
    target * log(input + eps); full adds Stirling's approximation of log(target!) where
    target > 1."""
    E = _elementwise
    _reduction_checked(reduction, "poisson_nll_loss")
    input, target = _pair(input, target, "poisson_nll_loss")
    if log_input:
        loss = E.exp(input) - target * input
    else:
        loss = input - target * E.log(input + float(eps))
    if full:
        stirling = target * E.log(target) - target + E.log(target * (2 * math.pi)) * 0.5
        loss = loss + E.where(E.less_equal(target, 1.0), 0.0, stirling)
    return _reduce_loss(loss, reduction)


def soft_margin_loss(input, target, *, reduction="mean"):
    """PyTorch's F.soft_margin_loss: log(1 + exp(-target * input)), targets +1 or -1; computed
    as softplus (finite where PyTorch's exp overflows to inf)."""
    _reduction_checked(reduction, "soft_margin_loss")
    input, target = _pair(input, target, "soft_margin_loss")
    return _reduce_loss(_elementwise.softplus(-(target * input)), reduction)


def _class_rows(input, target, op):
    """input (N, C) or (C,) with class-index targets (N,) or () as a batch: (input, target,
    unbatched)."""
    input, target = as_operand(input), as_operand(target)
    if target.dtype.is_float:
        raise errors.DTypeError("%s: target must be integer class indices, got %s"
                                % (op, target.dtype.name))
    if len(input.shape) == 1 and len(target.shape) == 0:
        return _shape.expand_dims(input, 0), _shape.reshape(target, (1,)), True
    if len(input.shape) != 2 or len(target.shape) != 1 or input.shape[1] is None or (
            None not in (input.shape[0], target.shape[0]) and
            input.shape[0] != target.shape[0]):
        raise errors.ShapeError("%s: input must be (batch, classes) with target (batch,), or "
                                "(classes,) with a 0-d target, got input %s and target %s"
                                % (op, fmt_shape(input.shape), fmt_shape(target.shape)))
    return input, target, False


def _classes_checked(op, labels, classes, valid=None):
    """labels refused where outside [0, classes) (where valid, if given): eager only."""
    if labels.symbolic:
        return
    flat = labels.cpu().numpy()
    bad = (flat < 0) | (flat >= classes)
    if valid is not None:
        bad &= valid
    if bad.any():
        raise errors.IndexOutOfRange("%s: target %d is out of range for %d classes"
                                     % (op, flat[bad].flat[0], classes))


def multi_margin_loss(input, target, p=1, margin=1.0, weight=None, *, reduction="mean"):
    """PyTorch's F.multi_margin_loss: per sample, the sum over classes c != y of
    max(0, margin - x[y] + x[c])^p (p 1 or 2), times weight[y], over the class count."""
    E = _elementwise
    op = "multi_margin_loss"
    _reduction_checked(reduction, op)
    if p not in (1, 2):
        raise ValueError("%s: p must be 1 or 2, got %r" % (op, p))
    input, target, unbatched = _class_rows(input, target, op)
    classes = input.shape[1]
    _classes_checked(op, target, classes)
    picked = _shape.take_along_axis(input, _shape.expand_dims(target, 1), 1)
    hinge = E.relu(input - picked + float(margin))
    if p == 2:
        hinge = hinge * hinge
    others = 1.0 - one_hot(target, classes, input.dtype)
    if weight is not None:
        weight = as_operand(weight, like=input)
        if tuple(weight.shape) != (classes,):
            raise errors.ShapeError("%s: weight %s must have one entry per class (%d,)"
                                    % (op, fmt_shape(weight.shape), classes))
        others = others * _shape.expand_dims(_shape.take(weight, target, 0), 1)
    loss = _reduction.sum(hinge * others, 1) / float(classes)
    return _reduce_loss(_shape.reshape(loss, ()) if unbatched else loss, reduction)


def multilabel_margin_loss(input, target, *, reduction="mean"):
    """PyTorch's F.multilabel_margin_loss: target (N, C) or (C,) lists each sample's classes,
    ended by the first -1; per sample the sum over listed classes j and unlisted classes i of
    max(0, 1 - (x[j] - x[i])), over the class count."""
    E = _elementwise
    op = "multilabel_margin_loss"
    _reduction_checked(reduction, op)
    input, target = as_operand(input), as_operand(target)
    if target.dtype.is_float:
        raise errors.DTypeError("%s: target must be integer class indices, got %s"
                                % (op, target.dtype.name))
    if tuple(input.shape) != tuple(target.shape) or len(input.shape) not in (1, 2) or \
            input.shape[-1] is None:
        raise errors.ShapeError("%s: input and target must both be (batch, classes) or "
                                "(classes,), got input %s and target %s"
                                % (op, fmt_shape(input.shape), fmt_shape(target.shape)))
    unbatched = len(input.shape) == 1
    if unbatched:
        input, target = _shape.expand_dims(input, 0), _shape.expand_dims(target, 0)
    classes = input.shape[1]
    # a listed class is one before the first negative entry
    listed = E.equal(_reduction.cumsum(E.less(target, 0).astype(input.dtype), 1), 0.0)
    if not target.symbolic:
        _classes_checked(op, target, classes, listed.numpy().astype(bool))
    safe = E.where(listed, target, 0)
    ids = core.constant_like(np.arange(classes, dtype=target.dtype.np), target)
    hits = E.logical_and(E.equal(_shape.expand_dims(safe, 2), ids), _shape.expand_dims(listed, 2))
    is_target = _reduction.amax(hits.astype(input.dtype), 1)               # (N, C)
    picked = _shape.take_along_axis(input, safe, 1)                          # (N, K)
    hinge = E.relu(1.0 - _shape.expand_dims(picked, 2) + _shape.expand_dims(input, 1))
    counted = _shape.expand_dims(listed.astype(input.dtype), 2) * \
        _shape.expand_dims(1.0 - is_target, 1)
    loss = _reduction.sum(hinge * counted, (1, 2)) / float(classes)
    return _reduce_loss(_shape.reshape(loss, ()) if unbatched else loss, reduction)


def multilabel_soft_margin_loss(input, target, weight=None, *, reduction="mean"):
    """PyTorch's F.multilabel_soft_margin_loss: per sample the mean over classes (the last
    dim) of -(y log sigmoid(x) + (1 - y) log sigmoid(-x)), weight scaling each class."""
    E = _elementwise
    _reduction_checked(reduction, "multilabel_soft_margin_loss")
    input, target = _pair(input, target, "multilabel_soft_margin_loss")
    loss = -(target * E.logsigmoid(input) + (1.0 - target) * E.logsigmoid(-input))
    if weight is not None:
        loss = loss * as_operand(weight, like=input)
    if not input.shape:
        raise errors.ShapeError("multilabel_soft_margin_loss: input needs a class dim, got a "
                                "0-d tensor")
    loss = _reduction.sum(loss, len(input.shape) - 1) / float(input.shape[-1])
    return _reduce_loss(loss, reduction)


def hinge_embedding_loss(input, target, margin=1.0, *, reduction="mean"):
    """PyTorch's F.hinge_embedding_loss: input where target is 1, max(0, margin - input) where
    it is -1 (each term as PyTorch's: the first where target != -1, the second where != 1)."""
    E = _elementwise
    _reduction_checked(reduction, "hinge_embedding_loss")
    input = as_operand(input)
    target = as_operand(target, like=input)
    pushed = E.where(E.not_equal(target, 1), E.clip(float(margin) - input, 0.0), 0.0)
    kept = E.where(E.not_equal(target, -1), input, 0.0)
    return _reduce_loss(pushed + kept, reduction)


def cosine_embedding_loss(input1, input2, target, margin=0.0, *, reduction="mean"):
    """PyTorch's F.cosine_embedding_loss: 1 - cos(x1, x2) where target is 1, max(0, cos -
    margin) where it is -1; cos over dim 1 of (N, D) inputs with target (N,), or of (D,)
    inputs with a 0-d target, with PyTorch's 1e-12 added to each squared norm."""
    E = _elementwise
    op = "cosine_embedding_loss"
    _reduction_checked(reduction, op)
    x1 = as_operand(input1)
    x2 = as_operand(input2, like=x1)
    target = as_operand(target, like=x1)
    rank = len(target.shape)
    if rank not in (0, 1) or len(x1.shape) != rank + 1 or len(x2.shape) != rank + 1:
        raise errors.ShapeError("%s: inputs must be (batch, dim) with target (batch,), or (dim,) "
                                "with a 0-d target, got %s, %s and target %s"
                                % (op, fmt_shape(x1.shape), fmt_shape(x2.shape),
                                   fmt_shape(target.shape)))
    rsum = _reduction.sum
    dot = rsum(x1 * x2, rank)
    squares = (rsum(x1 * x1, rank) + 1e-12) * (rsum(x2 * x2, rank) + 1e-12)
    cos = dot / E.sqrt(squares)
    positive = E.where(E.equal(target, 1), 1.0 - cos, 0.0)
    negative = E.where(E.equal(target, -1), E.clip(cos - float(margin), 0.0), 0.0)
    return _reduce_loss(positive + negative, reduction)


def triplet_margin_loss(anchor, positive, negative, margin=1.0, p=2.0, eps=1e-6, swap=False, *,
                        reduction="mean"):
    """PyTorch's F.triplet_margin_loss: max(0, margin + d(a, p) - d(a, n)), d the
    pairwise_distance (p-norm, eps); swap uses min(d(a, n), d(p, n)) for the negative."""
    op = "triplet_margin_loss"
    _reduction_checked(reduction, op)
    if not margin > 0:
        raise ValueError("%s: margin must be greater than 0, got %r" % (op, margin))
    anchor = as_operand(anchor)
    positive, negative = as_operand(positive, like=anchor), as_operand(negative, like=anchor)
    ranks = {len(t.shape) for t in (anchor, positive, negative)}
    if len(ranks) != 1 or ranks.pop() not in (1, 2):
        raise errors.ShapeError("%s: anchor, positive and negative must all be (batch, dim) or "
                                "all (dim,), got %s, %s and %s"
                                % (op, fmt_shape(anchor.shape), fmt_shape(positive.shape),
                                   fmt_shape(negative.shape)))
    near = pairwise_distance(anchor, positive, p, eps)
    far = pairwise_distance(anchor, negative, p, eps)
    if swap:
        far = _elementwise.minimum(far, pairwise_distance(positive, negative, p, eps))
    return _reduce_loss(_elementwise.clip(float(margin) + near - far, 0.0), reduction)


__all__ += ["pairwise_distance", "pdist", "gaussian_nll_loss", "poisson_nll_loss",
            "soft_margin_loss", "multi_margin_loss", "multilabel_margin_loss",
            "multilabel_soft_margin_loss", "hinge_embedding_loss", "cosine_embedding_loss",
            "triplet_margin_loss"]


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None, enable_gqa=False, *, state=None):
    """PyTorch's F.scaled_dot_product_attention: softmax(q k^T * scale + bias) v over query
    (..., L, E), key (..., S, E) and value (..., S, Ev), the batch dims broadcast. scale
    defaults to 1 / sqrt(E); attn_mask is a bool mask (True: may attend) or a float bias
    broadcast to (..., L, S); is_causal masks the upper triangle of (L, S) (aligned at the top
    left, as PyTorch's); a row with nothing to attend to gives zeros (PyTorch's safe softmax).
    dropout_p drops attention weights (always, as PyTorch's function: pass 0.0 when not
    training), with `state` as dropout's; enable_gqa repeats key and value heads (dim -3) to
    the query's."""
    E = _elementwise
    op = "scaled_dot_product_attention"
    q = as_operand(query)
    k, v = as_operand(key, like=q), as_operand(value, like=q)
    if not q.dtype.is_float or k.dtype is not q.dtype or v.dtype is not q.dtype:
        raise errors.DTypeError("%s: query, key and value must be float of one dtype, got %s, "
                                "%s and %s" % (op, q.dtype.name, k.dtype.name, v.dtype.name))
    if min(len(q.shape), len(k.shape), len(v.shape)) < 2 or q.shape[-1] is None or \
            k.shape[-1] != q.shape[-1] or k.shape[-2] != v.shape[-2]:
        raise errors.ShapeError("%s: query (..., L, E), key (..., S, E) and value (..., S, Ev) "
                                "do not fit: got %s, %s and %s"
                                % (op, fmt_shape(q.shape), fmt_shape(k.shape),
                                   fmt_shape(v.shape)))
    if enable_gqa and len(q.shape) >= 3 and q.shape[-3] != k.shape[-3]:
        heads, groups = q.shape[-3], k.shape[-3]
        if heads is None or groups is None or heads % groups or v.shape[-3] != groups:
            raise errors.ShapeError("%s: with enable_gqa the query's %s heads must be a multiple "
                                    "of key's and value's, got %s, %s and %s"
                                    % (op, heads, fmt_shape(q.shape), fmt_shape(k.shape),
                                       fmt_shape(v.shape)))
        k = _shape.repeat_interleave(k, heads // groups, -3)
        v = _shape.repeat_interleave(v, heads // groups, -3)
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    scores = _linalg.matmul(q, k, transpose_b=True) * float(scale)
    allowed = None          # where a query may attend (bool), when anything is masked
    if is_causal:
        if attn_mask is not None:
            raise ValueError("%s: give attn_mask or is_causal, not both (PyTorch's rule)" % op)
        rows, cols = q.shape[-2], k.shape[-2]
        if rows is None or cols is None:
            raise errors.ShapeError("%s: is_causal needs known sequence lengths, got query %s "
                                    "and key %s" % (op, fmt_shape(q.shape), fmt_shape(k.shape)))
        allowed = core.constant_like(np.tril(np.ones((rows, cols), bool)), q)
    elif attn_mask is not None:
        mask = as_operand(attn_mask)
        if mask.dtype.name == "bool":
            allowed = mask
        else:
            scores = scores + mask.astype(q.dtype)
    if allowed is not None:
        scores = E.where(allowed, scores, float("-inf"))
    # safe softmax: a row that is -inf throughout (all masked) attends to nothing
    live = E.greater(_reduction.amax(scores, -1, True), float("-inf"))
    weights = E.where(live, softmax(E.where(live, scores, 0.0), -1), 0.0)
    if dropout_p:
        from .dropout import dropout

        weights = dropout(weights, dropout_p, True, state)
    return _linalg.matmul(weights, v)


__all__ += ["scaled_dot_product_attention"]


def _log_add(*terms):
    """log(sum(exp(terms))) elementwise, -inf where every term is -inf, with gradients that
    stay finite there (the largest term, held constant, is taken out before the exp)."""
    E = _elementwise
    top = terms[0]
    for t in terms[1:]:
        top = E.maximum(top, t)
    none = E.equal(_shape.stop_gradient(top), float("-inf"))
    top = E.where(none, 0.0, _shape.stop_gradient(top))
    total = E.exp(terms[0] - top)
    for t in terms[1:]:
        total = total + E.exp(t - top)
    return E.where(none, float("-inf"), top + E.log(E.where(none, 1.0, total)))


def _lengths(values, n, op, what):
    values = as_operand(values if hasattr(values, "symbolic") else
                        np.asarray(values, np.int64).reshape(-1))
    if values.dtype.is_float:
        raise errors.DTypeError("%s: %s must be integers, got %s" % (op, what, values.dtype.name))
    if len(values.shape) == 0:
        values = _shape.reshape(values, (1,))
    if len(values.shape) != 1 or None not in (n, values.shape[0]) and values.shape[0] != n:
        raise errors.ShapeError("%s: %s must hold one length per sample (%s,), got %s"
                                % (op, what, n, fmt_shape(values.shape)))
    return values.astype("int64")


def ctc_loss(log_probs, targets, input_lengths, target_lengths, blank=0, reduction="mean",
             zero_infinity=False):
    """PyTorch's F.ctc_loss: -log of the total probability of every alignment of each target
    with the input, log_probs (T, N, C) (or unbatched (T, C)) holding log-probabilities per
    step; targets (N, S) padded, or the targets concatenated (1-D); one input and target
    length per sample. blank is the blank class. reduction "mean" divides each loss by its
    target length (at least 1) before the batch mean, as PyTorch's; zero_infinity turns the
    infinite loss of an impossible alignment (and its gradient) into 0.

    The forward (alpha) recursion runs in log space as composed ops, and its gradient is
    autodiff's, plus exp(log_probs) where the steps count: that is PyTorch's gradient with
    respect to log_probs (exact for log_softmax outputs, whose gradient it then equals)."""
    E = _elementwise
    op = "ctc_loss"
    _reduction_checked(reduction, op)
    lp = as_operand(log_probs)
    if not lp.dtype.is_float:
        raise errors.DTypeError("%s: log_probs must be float, got %s" % (op, lp.dtype.name))
    unbatched = len(lp.shape) == 2
    if unbatched:
        lp = _shape.expand_dims(lp, 1)
    if len(lp.shape) != 3 or lp.shape[0] is None or lp.shape[2] is None:
        raise errors.ShapeError("%s: log_probs must be (time, batch, classes) or (time, "
                                "classes) with known time and classes, got %s"
                                % (op, fmt_shape(log_probs.shape)))
    steps, n, classes = lp.shape
    if not 0 <= blank < classes:
        raise ValueError("%s: blank %r is not one of the %d classes" % (op, blank, classes))
    targets = as_operand(targets)
    if targets.dtype.is_float:
        raise errors.DTypeError("%s: targets must be integers, got %s"
                                % (op, targets.dtype.name))
    input_lengths = _lengths(input_lengths, n, op, "input_lengths")
    target_lengths = _lengths(target_lengths, n, op, "target_lengths")
    if unbatched and len(targets.shape) == 1:
        targets = _shape.expand_dims(targets, 0)
    elif len(targets.shape) == 1:
        # concatenated: each sample's run gathered into a padded row as long as all of them
        total = targets.shape[0]
        if total is None:
            raise errors.ShapeError("%s: concatenated targets need a known length" % op)
        starts = _reduction.cumsum(target_lengths, 0) - target_lengths
        where_from = _shape.expand_dims(starts, 1) + core.constant_like(
            np.arange(max(total, 1), dtype=np.int64).reshape(1, -1), lp)
        targets = _shape.take(_shape.pad(targets, (0, 1)), E.minimum(where_from, total), 0)
    if len(targets.shape) != 2 or targets.shape[1] is None:
        raise errors.ShapeError("%s: targets must be (batch, max target length) or 1-D, got %s"
                                % (op, fmt_shape(targets.shape)))
    width = targets.shape[1]
    if not input_lengths.symbolic:
        given = input_lengths.cpu().numpy()
        if given.size and (given.min() < 0 or given.max() > steps):
            raise ValueError("%s: input_lengths %s must lie in [0, %d]"
                             % (op, given.tolist(), steps))
    if not target_lengths.symbolic:
        given = target_lengths.cpu().numpy()
        if given.size and (given.min() < 0 or given.max() > width):
            raise ValueError("%s: target_lengths %s must lie in [0, %d]"
                             % (op, given.tolist(), width))
    if not targets.symbolic and targets.cpu().numpy().size:
        labels = targets.cpu().numpy()
        used = np.arange(width)[None, :] < (target_lengths.cpu().numpy()[:, None]
                                            if not target_lengths.symbolic else width)
        bad = used & ((labels < 0) | (labels >= classes))
        if bad.any():
            raise errors.IndexOutOfRange("%s: target %d is not one of the %d classes"
                                         % (op, labels[bad][0], classes))
    # the extended label sequence: blanks around and between the target's labels
    states = 2 * width + 1
    position = np.arange(states)
    inside = E.less(core.constant_like(position.reshape(1, -1), lp),
                    _shape.expand_dims(target_lengths * 2 + 1, 1))
    label = _shape.take(targets, np.maximum(position - 1, 0) // 2, 1)
    odd = core.constant_like((position % 2 == 1).reshape(1, -1), lp)
    ext = E.where(E.logical_and(odd, inside), label, blank)                   # (N, states)
    two_back = _shape.pad(ext, ((0, 0), (2, 0)), value=blank)
    skip = E.logical_and(E.not_equal(ext, blank),
                         E.not_equal(ext, _shape.getitem(two_back, (slice(None),
                                                                    slice(0, states)))))
    emit = _shape.take_along_axis(lp, _shape.expand_dims(ext, 0), 2)          # (T, N, states)
    lowest = float("-inf")
    alpha = E.where(core.constant_like((position < 2).reshape(1, -1), lp),
                    _shape.getitem(emit, 0), lowest)
    for t in range(1, steps):
        back1 = _shape.pad(_shape.getitem(alpha, (slice(None), slice(0, states - 1))),
                           ((0, 0), (1, 0)), value=lowest)
        back2 = _shape.pad(_shape.getitem(alpha, (slice(None), slice(0, states - 2))),
                           ((0, 0), (2, 0)), value=lowest) if states > 2 else back1
        moved = _shape.getitem(emit, t) + _log_add(alpha, back1, E.where(skip, back2, lowest))
        alpha = E.where(_shape.expand_dims(E.less(t, input_lengths), 1), moved, alpha)
    last = _shape.expand_dims(target_lengths * 2, 1)
    end = _shape.squeeze(_shape.take_along_axis(alpha, last, 1), 1)
    before = _shape.squeeze(_shape.take_along_axis(alpha, E.maximum(last - 1, 0), 1), 1)
    nll = -_log_add(end, E.where(E.greater(target_lengths, 0), before, lowest))
    # PyTorch's gradient with respect to log_probs adds exp(log_probs) at the counted steps
    counted = E.less(core.constant_like(np.arange(steps).reshape(-1, 1), lp),
                     _shape.expand_dims(input_lengths, 0)).astype(lp.dtype)
    probs = E.exp(lp)
    loss = nll + _reduction.sum((probs - _shape.stop_gradient(probs)) *
                                _shape.expand_dims(counted, 2), (0, 2))
    if zero_infinity:
        loss = E.where(E.isinf(nll), 0.0, loss)
    if reduction == "mean":
        per_label = loss / E.maximum(target_lengths, 1).astype(lp.dtype)
        return _reduction.mean(per_label)
    if unbatched and reduction == "none":
        return _shape.reshape(loss, ())
    return _reduce_loss(loss, reduction)


__all__ += ["ctc_loss"]


def gumbel_softmax(logits, tau=1.0, hard=False, eps=1e-10, axis=-1, *, state=None):
    """torch's F.gumbel_softmax: softmax((logits + g) / tau) along axis, g Gumbel(0, 1) noise
    (-log(-log(u)), u drawn by uniform_like on the dropout generator: compiled plans draw
    anew on every run, and pf.manual_seed makes eager draws reproducible). hard=True gives
    the one-hot of each sample's largest entry, with the soft sample's gradient
    (straight-through). eps is accepted for torch's signature (torch ignores it too); state
    as dropout's."""
    from .dropout import uniform_like
    from .reduction import argmax, positions

    E = _elementwise
    logits = as_operand(logits)
    if not logits.dtype.is_float:
        raise errors.DTypeError("gumbel_softmax: logits must be float32 or float64, got %s %s"
                                % (logits.dtype.name, fmt_shape(logits.shape)))
    if not tau > 0:
        raise ValueError("gumbel_softmax: tau must be positive, got %r" % (tau,))
    core.normalize_axis(axis, len(logits.shape), "gumbel_softmax")
    noise = E.neg(E.log(E.neg(E.log(uniform_like(logits, 0.0, 1.0, state)))))
    soft = softmax((logits + noise) / float(tau), axis)
    if not hard:
        return soft
    hot = E.equal(positions(soft, axis), argmax(soft, axis, keepdims=True)).astype(soft.dtype)
    return hot - _shape.stop_gradient(soft) + soft


__all__ += ["gumbel_softmax"]
