"""Recurrent ops: whole-sequence LSTM, GRU and SimpleRNN, each one native call forward and one
backward (gate layout and math in native/src/rnn.c: PyTorch's), and weight converters."""
import numpy as np

from .. import errors
from . import core
from .core import Op, ShapeMismatch, Spec, apply, as_operand, check_shape, fmt_shape

__all__ = ["lstm", "gru", "simple_rnn", "rnn_weights_from_torch", "rnn_weights_to_torch",
           "rnn_weights_from_keras"]

# kind -> (gates, reserve rows per unit, states, has a recurrent bias)
_KINDS = {"lstm": (4, 6, 2, False), "gru": (3, 5, 1, True), "simple_rnn": (1, 2, 1, False)}
_ACTIVATIONS = {"tanh": 0, "relu": 1}

def _reserve_width(width, t, f, h):
    """Saved activations per sequence: t steps of (width * h + f + 1) values, plus one."""
    if None in (t, f, h):
        return None
    return t * (width * h + f + 1) + 1


def _absent(spec):
    """Optional inputs (initial states, mask) are passed as an empty 1-D placeholder."""
    return tuple(spec.shape) == (0,)


_ABSENT = {}


def _placeholder(x):
    """The empty placeholder of x's dtype, on x's device (made once per dtype and device)."""
    key = (x.dtype.name, getattr(x, "device", "cpu"))
    t = _ABSENT.get(key)
    if t is None:
        t = _ABSENT[key] = core.constant_like(np.zeros(0, x.dtype.np), x)
    return t


class Recurrent(Op):
    """One recurrent layer over a whole sequence: outputs, final state(s), saved activations."""

    def __init__(self, kind):
        self.kind = kind
        self.name = kind
        self.gates, self.width, self.states, self.recurrent_bias = _KINDS[kind]
        self.inputs = (("x", "kernel", "recurrent_kernel", "bias") +
                       (("recurrent_bias",) if self.recurrent_bias else ()) +
                       ("initial_h", "initial_c")[:self.states] + ("mask",))
        self.n_outputs = 2 + self.states   # y, final states, reserve

    def infer(self, specs, attrs):
        x, w, u = specs[0], specs[1], specs[2]
        if not x.dtype.is_float:
            raise errors.DTypeError("%s needs float input, got %s" % (self.name, x.dtype.name))
        for s, what in ((w, "kernel"), (u, "recurrent_kernel")) + \
                tuple((sp, "bias") for sp in specs[3:4 + self.recurrent_bias]):
            if s.dtype is not x.dtype:
                raise errors.DTypeError("%s is %s but x is %s" % (what, s.dtype.name,
                                                                  x.dtype.name))
        if len(x.shape) != 3:
            raise ShapeMismatch("x must be (batch, time, features), got %s" % fmt_shape(x.shape))
        n, t, f = x.shape
        if len(u.shape) != 2:
            raise ShapeMismatch("recurrent_kernel must be (units, %d * units), got %s"
                                % (self.gates, fmt_shape(u.shape)))
        h = u.shape[0]
        gh = self.gates * h
        check_shape("recurrent_kernel", u.shape, (h, gh))
        if len(w.shape) == 2 and w.shape[0] != f and None not in (f, w.shape[0]):
            raise ShapeMismatch("x has %d features but the kernel expects %d" % (f, w.shape[0]))
        check_shape("kernel", w.shape, (f, gh))
        i = 3
        for what in ("bias", "recurrent_bias")[:1 + self.recurrent_bias]:
            check_shape(what, specs[i].shape, (gh,))
            i += 1
        for what in ("initial h", "initial c")[:self.states]:
            if not _absent(specs[i]):
                if specs[i].dtype is not x.dtype:
                    raise errors.DTypeError("%s is %s but x is %s" % (what, specs[i].dtype.name,
                                                                      x.dtype.name))
                check_shape(what, specs[i].shape, (n, h))
            i += 1
        if not _absent(specs[i]):
            check_shape("mask (batch, time)", specs[i].shape, (n, t))
        if attrs.get("activation", "tanh") not in _ACTIVATIONS:
            raise ShapeMismatch("activation must be 'tanh' or 'relu', got %r"
                                % attrs.get("activation"))
        out = [Spec((n, t, h), x.dtype)] + [Spec((n, h), x.dtype)] * self.states
        return out + [Spec((n, _reserve_width(self.width, t, f, h)), x.dtype)]

    def iattr(self, ins_present_state, ins_present_mask, attrs):
        codes = [int(ins_present_state), int(ins_present_mask), int(bool(attrs["reverse"]))]
        if self.kind == "simple_rnn":
            codes.append(_ACTIVATIONS[attrs.get("activation", "tanh")])
        return tuple(codes)

    def forward(self, k, ins, outs, attrs):
        nw = 4 + self.recurrent_bias
        states = ins[nw:nw + self.states]
        mask = ins[nw + self.states]
        has_state = not _absent(states[0])
        has_mask = not _absent(mask)
        descs = [b.desc() for b in ins[:nw]]
        if has_state:
            descs += [b.desc() for b in states]
        if has_mask:
            descs.append(mask.desc())
        k.run(self.kind, descs, [o.desc() for o in outs], self.iattr(has_state, has_mask, attrs))

    def grad(self, ctx, gouts):
        nw = 4 + self.recurrent_bias
        x, w, u = ctx.inputs[:3]
        mask = ctx.inputs[nw + self.states]
        reserve = ctx.output(1 + self.states)
        grads_out = list(gouts[:1 + self.states])
        ins = [x, w, u, reserve] + grads_out + [mask]
        res = apply(_GRADS[self.kind], ins, ctx.attrs)
        # res: dx, dW, dU, db[, drb], dh0[, dc0]
        weights = list(res[:nw])
        states = list(res[nw:])
        if _absent(ctx.inputs[nw]):
            states = [None] * self.states
        out = weights + states + [None]
        return tuple(g if need else None for g, need in zip(out, ctx.needs))


class RecurrentGrad(Op):
    """The whole backward pass through time of a Recurrent op, from its saved activations."""

    def __init__(self, kind):
        self.kind = kind
        self.name = kind + "_grad"
        self.gates, self.width, self.states, self.recurrent_bias = _KINDS[kind]
        self.inputs = (("x", "kernel", "recurrent_kernel", "reserve", "grad_y", "grad_h") +
                       (("grad_c",) if self.states == 2 else ()) + ("mask",))
        self.n_outputs = 4 + self.recurrent_bias + self.states

    def infer(self, specs, attrs):
        # the forward's rule checks x and the kernels (biases unknown, no initial states) and
        # gives the shapes the saved activations and the gradients handed in must have
        x, w, u = specs[0], specs[1], specs[2]
        unknown, absent = Spec((None,), x.dtype), Spec((0,), x.dtype)
        outs = _FORWARD[self.kind].infer(
            [x, w, u] + [unknown] * (1 + self.recurrent_bias) + [absent] * self.states +
            [specs[-1]], attrs)
        y, states, reserve = outs[0], outs[1:-1], outs[-1]
        check_shape("reserve", specs[3].shape, reserve.shape)
        check_shape("grad_y", specs[4].shape, y.shape)
        for what, spec, state in zip(("grad_h", "grad_c"), specs[5:-1], states):
            check_shape(what, spec.shape, state.shape)
        bias = [Spec((self.gates * u.shape[0],), x.dtype)] * (1 + self.recurrent_bias)
        return [x, w, u] + bias + list(states)

    def forward(self, k, ins, outs, attrs):
        mask = ins[-1]
        has_mask = not _absent(mask)
        descs = [b.desc() for b in ins[:-1]] + ([mask.desc()] if has_mask else [])
        k.run(self.name, descs, [o.desc() for o in outs],
              _FORWARD[self.kind].iattr(True, has_mask, attrs))

    def grad(self, ctx, gouts):
        raise errors.PyfrontError("second-order gradients of %s are not supported" % self.kind)


_FORWARD = {kind: Recurrent(kind) for kind in _KINDS}
_GRADS = {kind: RecurrentGrad(kind) for kind in _KINDS}
for _op in list(_FORWARD.values()) + list(_GRADS.values()):
    core.register(_op)


# ---------------------------------------------------------------------------------------------
# public functions

def _mask_operand(mask, x):
    if mask is None:
        return None
    if not hasattr(mask, "symbolic"):
        arr = np.asarray(mask)
        if arr.dtype == np.bool_:
            arr = arr.astype(np.int32)
        return core.constant_like(np.ascontiguousarray(arr), x)
    return mask


def _run(kind, x, weights, initial_state, mask, reverse, activation=None):
    x = as_operand(x)
    weights = [as_operand(wt) for wt in weights]
    states = _KINDS[kind][2]
    if initial_state is None:
        init = [_placeholder(x)] * states
    else:
        if not isinstance(initial_state, (tuple, list)):
            initial_state = (initial_state,)
        if len(initial_state) != states:
            raise ValueError("%s: initial_state needs %d tensor(s), got %d"
                             % (kind, states, len(initial_state)))
        init = [as_operand(s, like=x) for s in initial_state]
    mask = _mask_operand(mask, x)
    attrs = {"reverse": bool(reverse)}
    if activation is not None:
        attrs["activation"] = activation
    outs = apply(_FORWARD[kind], [x] + weights + init +
                 [mask if mask is not None else _placeholder(x)], attrs)
    return tuple(outs[:-1])


def lstm(x, kernel, recurrent_kernel, bias, initial_state=None, mask=None, reverse=False):
    """An LSTM over x (N, T, F): returns (outputs (N, T, H), h_T, c_T).

    kernel (F, 4H), recurrent_kernel (H, 4H), bias (4H) with gates ordered i, f, g, o (PyTorch's
    and Keras' order). initial_state: (h0, c0), zeros by default. mask (N, T): nonzero marks
    valid steps; at masked steps the state is carried and the output is zero. reverse: run from
    the last step to the first (outputs stay aligned with the input steps).
    """
    return _run("lstm", x, [kernel, recurrent_kernel, bias], initial_state, mask, reverse)


def gru(x, kernel, recurrent_kernel, bias, recurrent_bias, initial_state=None, mask=None,
        reverse=False):
    """A GRU ("reset after", PyTorch's formulation) over x: returns (outputs, h_T).

    kernel (F, 3H), recurrent_kernel (H, 3H), bias and recurrent_bias (3H) with gates ordered
    r, z, n as in PyTorch. Mask and reverse as in lstm().
    """
    return _run("gru", x, [kernel, recurrent_kernel, bias, recurrent_bias], initial_state, mask,
                reverse)


def simple_rnn(x, kernel, recurrent_kernel, bias, initial_state=None, mask=None, reverse=False,
               activation="tanh"):
    """h_t = act(x_t kernel + h_{t-1} recurrent_kernel + bias), act tanh or relu: returns
    (outputs, h_T)."""
    if activation not in _ACTIVATIONS:
        raise ValueError("simple_rnn: activation must be 'tanh' or 'relu', got %r"
                         % (activation,))
    return _run("simple_rnn", x, [kernel, recurrent_kernel, bias], initial_state, mask, reverse,
                activation)


# ---------------------------------------------------------------------------------------------
# weights of other frameworks (numpy in, numpy out)

def rnn_weights_from_torch(kind, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """PyTorch's weight_ih_l*, weight_hh_l*, bias_ih_l*, bias_hh_l* -> our weights as a dict
    {kernel, recurrent_kernel, bias[, recurrent_bias]} (same gate order; transposed)."""
    w_ih, w_hh = np.asarray(weight_ih), np.asarray(weight_hh)
    gh = w_ih.shape[0]
    b_ih = np.zeros(gh, w_ih.dtype) if bias_ih is None else np.asarray(bias_ih)
    b_hh = np.zeros(gh, w_ih.dtype) if bias_hh is None else np.asarray(bias_hh)
    out = {"kernel": np.ascontiguousarray(w_ih.T), "recurrent_kernel": np.ascontiguousarray(w_hh.T)}
    if kind == "gru":
        out["bias"] = b_ih.copy()
        out["recurrent_bias"] = b_hh.copy()
    elif kind in ("lstm", "simple_rnn"):
        out["bias"] = b_ih + b_hh
    else:
        raise ValueError("kind must be 'lstm', 'gru' or 'simple_rnn', got %r" % (kind,))
    return out


def rnn_weights_to_torch(kind, kernel, recurrent_kernel, bias, recurrent_bias=None):
    """Ours -> PyTorch's (weight_ih, weight_hh, bias_ih, bias_hh); the LSTM/SimpleRNN bias goes
    to bias_ih with a zero bias_hh (PyTorch adds the two)."""
    kernel, recurrent_kernel, bias = (np.asarray(a) for a in (kernel, recurrent_kernel, bias))
    if kind == "gru":
        b_hh = np.asarray(recurrent_bias)
    else:
        b_hh = np.zeros_like(bias)
    return (np.ascontiguousarray(kernel.T), np.ascontiguousarray(recurrent_kernel.T),
            bias.copy(), b_hh.copy())


def rnn_weights_from_keras(kind, kernel, recurrent_kernel, bias):
    """Keras' LSTM/GRU/SimpleRNN weights -> ours. LSTM and SimpleRNN share our layout; a Keras
    GRU (reset_after=True: bias of shape (2, 3H)) orders its gates z, r, h and is reordered."""
    kernel, recurrent_kernel, bias = (np.asarray(a) for a in (kernel, recurrent_kernel, bias))
    if kind != "gru":
        return {"kernel": kernel.copy(), "recurrent_kernel": recurrent_kernel.copy(),
                "bias": bias.copy()}
    if bias.ndim != 2:
        raise ValueError("only Keras GRUs with reset_after=True (bias (2, 3H)) match PyTorch's "
                         "formulation")

    def order(a):
        z, r, n = np.split(a, 3, axis=-1)
        return np.ascontiguousarray(np.concatenate([r, z, n], axis=-1))

    return {"kernel": order(kernel), "recurrent_kernel": order(recurrent_kernel),
            "bias": order(bias[0]), "recurrent_bias": order(bias[1])}
