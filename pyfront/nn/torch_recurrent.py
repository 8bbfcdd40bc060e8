"""torch.nn's recurrent layers: the cells RNNCell, LSTMCell and GRUCell (one time step each),
and RNN, LSTM and GRU over whole sequences (TorchRNN, TorchLSTM, TorchGRU).

The parameters are torch's, in torch's layout and under torch's names (weight_ih
(gates * hidden, input), weight_hh (gates * hidden, hidden), bias_ih, bias_hh, with a layer's
suffix _l{k}[_reverse] in the sequence layers; gates LSTM i, f, g, o and GRU r, z, n), drawn as
torch draws them (U(+-1/sqrt(hidden_size))), so a torch module's state_dict loads as it is. A
cell step is a few composed ops (two products and the gate math), the same eagerly, compiled and
in ONNX.

The sequence layers run on the same whole-sequence native kernels as the Keras-named layers
(pyfront/nn/recurrent.py). `pf.nn.LSTM(input_size, hidden_size, ...)` and `pf.nn.GRU(...)`
give TorchLSTM and TorchGRU: the Keras constructor `LSTM(units)` takes one int, torch's takes
two (input and hidden size), so the two never read the same call differently. `pf.nn.RNN` is
TorchRNN. What torch users rely on and these keep: time-major input unless batch_first; stacked
layers with dropout between them while training; bidirectional outputs concatenated (forward
first); h0/c0 and h_n/c_n of shape (num_layers * directions, N, H); unbatched (L, H_in) input.
"""
import math

import numpy as np

from .. import errors, ops
from ..ops.core import as_operand, constant_like, fmt_shape
from . import init as initializers
from .dropout import Dropout
from .module import Module, Parameter, register_layer
from .torch_layers import place, positive_int, scoped_name

__all__ = ["RNNCell", "LSTMCell", "GRUCell", "TorchRNN", "TorchLSTM", "TorchGRU", "RNN"]


def _add(a, b):
    """a + b where either may be absent (no bias, no previous state)."""
    if a is None:
        return b
    return a if b is None else a + b


class _Cell(Module):
    """Shared by the cells: parameters, input and state checks, unbatched inputs."""

    gates = 1
    n_states = 1

    def __init__(self, input_size, hidden_size, bias=True, device=None, dtype=None, name=None):
        owner = type(self).__name__
        positive_int(owner, "input_size", input_size)
        positive_int(owner, "hidden_size", hidden_size)
        super().__init__(name)
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bool(bias)
        bound = 1 / math.sqrt(hidden_size)
        rows = self.gates * hidden_size
        shapes = {"weight_ih": (rows, input_size), "weight_hh": (rows, hidden_size)}
        if self.bias:
            shapes.update(bias_ih=(rows,), bias_hh=(rows,))
        else:
            self.bias_ih = self.bias_hh = None
        for key, shape in shapes.items():
            p = Parameter(init=initializers.uniform(-bound, bound))
            setattr(self, key, p)
            p.materialize(shape)
        self.built = True
        place(self, device, dtype)

    def _fail(self, what, expected, got):
        raise errors.ShapeError("%s '%s': expected %s of shape %s, got %s"
                                % (type(self).__name__, scoped_name(self), what, expected,
                                   fmt_shape(got)))

    def _inputs(self, input, hx):
        """(x as (batch, input_size), the states as (batch, hidden_size) or None, whether
        the input had a batch dim)."""
        x = as_operand(input)
        shape = tuple(x.shape)
        if len(shape) not in (1, 2) or shape[-1] != self.input_size:
            self._fail("input", "(batch, %d) or (%d,)" % (self.input_size, self.input_size),
                       shape)
        batched = len(shape) == 2
        if not batched:
            x = ops.reshape(x, (1, self.input_size))
        if hx is None:
            return x, [None] * self.n_states, batched
        states = list(hx) if self.n_states > 1 else [hx]
        if len(states) != self.n_states:
            raise errors.ShapeError("%s '%s': hx must be a pair (h, c), got %d tensors"
                                    % (type(self).__name__, scoped_name(self), len(states)))
        want = (shape[0], self.hidden_size) if batched else (self.hidden_size,)
        out = []
        for h in states:
            h = as_operand(h, like=x)
            got = tuple(h.shape)
            if len(got) != len(want) or any(a != b for a, b in zip(got, want)
                                            if a is not None and b is not None):
                self._fail("hx for input %s" % fmt_shape(shape), fmt_shape(want), got)
            out.append(h if batched else ops.reshape(h, (1, self.hidden_size)))
        return x, out, batched

    def _products(self, x, h):
        """x W_ih^T + b_ih and h W_hh^T + b_hh; without a previous state the second is b_hh
        alone (or None): the product with zeros is skipped, not computed."""
        gi = ops.linear(x, ops.transpose(self.weight_ih), self.bias_ih)
        gh = self.bias_hh if h is None else \
            ops.linear(h, ops.transpose(self.weight_hh), self.bias_hh)
        return gi, gh

    def _unbatch(self, batched, y):
        return y if batched else ops.reshape(y, (self.hidden_size,))

    def get_config(self):
        return {"input_size": self.input_size, "hidden_size": self.hidden_size,
                "bias": self.bias, "name": self.name}


@register_layer
class RNNCell(_Cell):
    """torch.nn.RNNCell(input_size, hidden_size, bias=True, nonlinearity="tanh"):
    h' = nonlinearity(x W_ih^T + b_ih + h W_hh^T + b_hh). forward(input, hx=None) -> h';
    input (batch, input_size) or (input_size,), hx likewise with hidden_size (zeros if None).
    """

    def __init__(self, input_size, hidden_size, bias=True, nonlinearity="tanh", *, device=None,
                 dtype=None, name=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError("RNNCell: nonlinearity must be 'tanh' or 'relu', got %r"
                             % (nonlinearity,))
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, bias, device, dtype, name)

    def forward(self, input, hx=None):
        x, (h,), batched = self._inputs(input, hx)
        gi, gh = self._products(x, h)
        act = ops.tanh if self.nonlinearity == "tanh" else ops.relu
        return self._unbatch(batched, act(_add(gi, gh)))

    def get_config(self):
        return dict(super().get_config(), nonlinearity=self.nonlinearity)


@register_layer
class LSTMCell(_Cell):
    """torch.nn.LSTMCell(input_size, hidden_size, bias=True): forward(input, hx=None) ->
    (h', c'), hx a pair (h, c) (zeros if None); gates i, f, g, o."""

    gates = 4
    n_states = 2

    def __init__(self, input_size, hidden_size, bias=True, *, device=None, dtype=None,
                 name=None):
        super().__init__(input_size, hidden_size, bias, device, dtype, name)

    def forward(self, input, hx=None):
        x, (h, c), batched = self._inputs(input, hx)
        gi, gh = self._products(x, h)
        i, f, g, o = ops.split(_add(gi, gh), self.hidden_size, axis=1)
        i, f, o = ops.sigmoid(i), ops.sigmoid(f), ops.sigmoid(o)
        c_new = _add(None if c is None else f * c, i * ops.tanh(g))
        h_new = o * ops.tanh(c_new)
        return self._unbatch(batched, h_new), self._unbatch(batched, c_new)


@register_layer
class GRUCell(_Cell):
    """torch.nn.GRUCell(input_size, hidden_size, bias=True): forward(input, hx=None) -> h';
    r and z from both products, n = tanh(x W_in^T + b_in + r * (h W_hn^T + b_hn)),
    h' = n + z * (h - n) (torch's arrangement of (1 - z) n + z h)."""

    gates = 3

    def __init__(self, input_size, hidden_size, bias=True, *, device=None, dtype=None,
                 name=None):
        super().__init__(input_size, hidden_size, bias, device, dtype, name)

    def forward(self, input, hx=None):
        x, (h,), batched = self._inputs(input, hx)
        gi, gh = self._products(x, h)
        hs = self.hidden_size
        i_r, i_z, i_n = ops.split(gi, hs, axis=-1)
        h_r, h_z, h_n = ops.split(gh, hs, axis=-1) if gh is not None else (None,) * 3
        r = ops.sigmoid(_add(i_r, h_r))
        z = ops.sigmoid(_add(i_z, h_z))
        n = ops.tanh(_add(i_n, None if h_n is None else r * h_n))
        h_new = n - z * n if h is None else n + z * (h - n)
        return self._unbatch(batched, h_new)


# ---- whole sequences, on the native kernels ----

class _TorchRecurrent(Module):
    """Shared by TorchRNN, TorchLSTM and TorchGRU: parameters, layout, stacking, directions."""

    gates = None
    n_states = 1

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, *, name=None):
        super().__init__(name)
        owner = type(self).__name__
        self.input_size = positive_int(owner, "input_size", input_size)
        self.hidden_size = positive_int(owner, "hidden_size", hidden_size)
        self.num_layers = positive_int(owner, "num_layers", num_layers)
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError("%s: dropout must be in [0, 1), got %r" % (owner, dropout))
        self.bias = bool(bias)
        self.batch_first = bool(batch_first)
        self.dropout = float(dropout)
        self.bidirectional = bool(bidirectional)
        # torch draws every weight and bias from U(+-1/sqrt(hidden_size))
        bound = 1.0 / math.sqrt(self.hidden_size)
        draw = initializers.uniform(-bound, bound)
        gh = self.gates * self.hidden_size
        for layer in range(self.num_layers):
            width = self.input_size if layer == 0 else self.hidden_size * self.directions
            for suffix in self._suffixes(layer):
                for key, shape in (("weight_ih", (gh, width)), ("weight_hh", (gh, hidden_size)))\
                        + ((("bias_ih", (gh,)), ("bias_hh", (gh,))) if self.bias else ()):
                    p = Parameter(init=draw)
                    p.materialize(shape)
                    setattr(self, key + suffix, p)
        # torch applies its dropout to each layer's output but the last, only while training
        self.between = Dropout(self.dropout) if self.dropout and self.num_layers > 1 else None
        self.built = True

    @property
    def directions(self):
        return 2 if self.bidirectional else 1

    def _suffixes(self, layer):
        return ["_l%d" % layer] + (["_l%d_reverse" % layer] if self.bidirectional else [])

    # ---- running ----
    def _state_shape(self, batch):
        return (self.num_layers * self.directions, batch, self.hidden_size)

    def _check_state(self, state, batch, unbatched, what):
        state = as_operand(state)
        expected = self._state_shape(batch)
        if unbatched:
            expected = expected[:1] + expected[2:]
        if tuple(state.shape) != expected:
            raise errors.ShapeError("%s '%s': %s must have shape %s, got %s"
                                    % (type(self).__name__, self.name, what,
                                       fmt_shape(expected), fmt_shape(tuple(state.shape))))
        return ops.expand_dims(state, 1) if unbatched else state

    def _direction(self, x, suffix, reverse, init):
        kernel = ops.transpose(getattr(self, "weight_ih" + suffix))
        recurrent = ops.transpose(getattr(self, "weight_hh" + suffix))
        if self.bias:
            b_ih, b_hh = getattr(self, "bias_ih" + suffix), getattr(self, "bias_hh" + suffix)
        else:
            b_ih = b_hh = constant_like(np.zeros(self.gates * self.hidden_size, x.dtype.np), x)
        return self._op(x, kernel, recurrent, b_ih, b_hh, init, reverse)

    def forward(self, input, hx=None):  # noqa: A002 (torch's argument name)
        x = as_operand(input)
        owner = "%s '%s'" % (type(self).__name__, self.name)
        if x.ndim not in (2, 3) or x.shape[-1] != self.input_size:
            raise errors.ShapeError(
                "%s: expected input of shape (L, N, %d)%s or unbatched (L, %d), got %s"
                % (owner, self.input_size,
                   " (batch_first: (N, L, %d))" % self.input_size if self.batch_first else "",
                   self.input_size, fmt_shape(tuple(x.shape))))
        unbatched = x.ndim == 2
        if unbatched:
            x = ops.expand_dims(x, 0)
        elif not self.batch_first:
            x = ops.transpose(x, 0, 1)
        batch = x.shape[0]
        states = self._initial_states(hx, batch, unbatched)
        finals = [[] for _ in range(self.n_states)]
        for layer in range(self.num_layers):
            outputs = []
            for d, suffix in enumerate(self._suffixes(layer)):
                index = layer * self.directions + d
                init = None if states is None else tuple(s[index] for s in states)
                result = self._direction(x, suffix, d == 1, init)
                outputs.append(result[0])
                for k in range(self.n_states):
                    finals[k].append(result[1 + k])
            x = outputs[0] if len(outputs) == 1 else ops.concat(outputs, axis=-1)
            if self.between is not None and layer < self.num_layers - 1 and self.training:
                x = self.between(x)
        finals = [ops.stack(f, axis=0) for f in finals]
        if unbatched:
            x = ops.squeeze(x, 0)
            finals = [ops.squeeze(f, 1) for f in finals]
        elif not self.batch_first:
            x = ops.transpose(x, 0, 1)
        return x, self._pack_states(finals)

    def _initial_states(self, hx, batch, unbatched):
        if hx is None:
            return None
        return [self._check_state(hx, batch, unbatched, "hx")]

    def _pack_states(self, finals):
        return finals[0]

    def get_config(self):
        return {"input_size": self.input_size, "hidden_size": self.hidden_size,
                "num_layers": self.num_layers, "bias": self.bias,
                "batch_first": self.batch_first, "dropout": self.dropout,
                "bidirectional": self.bidirectional, "name": self.name}


@register_layer
class TorchRNN(_TorchRecurrent):
    """torch.nn.RNN(input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
    batch_first=False, dropout=0.0, bidirectional=False): h_t = act(x_t W_ih^T + b_ih +
    h_{t-1} W_hh^T + b_hh). forward(input, hx=None) -> (output, h_n)."""

    gates = 1

    def __init__(self, input_size, hidden_size, num_layers=1, nonlinearity="tanh", bias=True,
                 batch_first=False, dropout=0.0, bidirectional=False, *, name=None):
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError("RNN: nonlinearity must be 'tanh' or 'relu', got %r"
                             % (nonlinearity,))
        self.nonlinearity = nonlinearity
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, name=name)

    def _op(self, x, kernel, recurrent, b_ih, b_hh, init, reverse):
        return ops.simple_rnn(x, kernel, recurrent, b_ih + b_hh, initial_state=init,
                              reverse=reverse, activation=self.nonlinearity)

    def get_config(self):
        return dict(super().get_config(), nonlinearity=self.nonlinearity)


@register_layer
class TorchLSTM(_TorchRecurrent):
    """torch.nn.LSTM(input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
    dropout=0.0, bidirectional=False); gates i, f, g, o. forward(input, (h0, c0)=None) ->
    (output, (h_n, c_n)). torch's proj_size is not supported (refused by name)."""

    gates = 4
    n_states = 2

    def __init__(self, input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
                 dropout=0.0, bidirectional=False, proj_size=0, *, name=None):
        if proj_size:
            raise NotImplementedError("LSTM: proj_size is not supported (got %r); project the "
                                      "outputs with a Linear layer" % (proj_size,))
        super().__init__(input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, name=name)

    def _op(self, x, kernel, recurrent, b_ih, b_hh, init, reverse):
        return ops.lstm(x, kernel, recurrent, b_ih + b_hh, initial_state=init, reverse=reverse)

    def _initial_states(self, hx, batch, unbatched):
        if hx is None:
            return None
        if not isinstance(hx, (tuple, list)) or len(hx) != 2:
            raise TypeError("%s '%s': hx must be the pair (h0, c0), got %r"
                            % (type(self).__name__, self.name, type(hx).__name__))
        return [self._check_state(hx[0], batch, unbatched, "h0"),
                self._check_state(hx[1], batch, unbatched, "c0")]

    def _pack_states(self, finals):
        return tuple(finals)


@register_layer
class TorchGRU(_TorchRecurrent):
    """torch.nn.GRU(input_size, hidden_size, num_layers=1, bias=True, batch_first=False,
    dropout=0.0, bidirectional=False); gates r, z, n with n = tanh(x W_in^T + b_in + r * (h
    W_hn^T + b_hn)). forward(input, hx=None) -> (output, h_n)."""

    gates = 3

    def _op(self, x, kernel, recurrent, b_ih, b_hh, init, reverse):
        return ops.gru(x, kernel, recurrent, b_ih, b_hh, initial_state=init, reverse=reverse)


RNN = TorchRNN


def torch_signature(args, kwargs):
    """Whether a recurrent layer's constructor call is torch's (input_size, hidden_size, ...)
    rather than Keras' (units, ...): torch's names, or a second positional int (Keras' second
    argument is return_sequences, a bool)."""
    if "input_size" in kwargs or "hidden_size" in kwargs:
        return True
    return len(args) >= 2 and isinstance(args[1], int) and not isinstance(args[1], bool)
