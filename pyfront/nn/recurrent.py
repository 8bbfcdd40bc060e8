"""Recurrent layers on the whole-sequence native kernels: LSTM, GRU, SimpleRNN, Bidirectional.

Input is batch-first (N, T, F). Weights use PyTorch's gate order (LSTM i, f, g, o; GRU r, z, n,
"reset after"), kernels stored (in, gates * units); pyfront.ops.rnn_weights_from_torch and
rnn_weights_from_keras convert. Padded variable-length batches: pass mask=(N, T) (nonzero =
valid step) to forward, or build the layer with mask_value=v to mask the steps whose features
all equal v (Keras' Masking layer folded into the recurrent layer).
"""
import numpy as np

from .. import errors, ops
from ..ops.core import as_operand, constant_like, fmt_shape, name_scope
from . import init as initializers
from .module import Module, Parameter, register_layer
from .torch_recurrent import TorchGRU, TorchLSTM, torch_signature

__all__ = ["LSTM", "GRU", "SimpleRNN", "Bidirectional"]


class _UnitForgetBias(initializers.Initializer):
    """The bias initializer with the forget gate's slice set to one (Jozefowicz et al. 2015)."""

    def __init__(self, base, units):
        self.base, self.units = base, units

    def __call__(self, shape, dtype, rng, conv_layout=False):
        b = np.array(initializers.get(self.base)(shape, dtype, rng), dtype=dtype)
        b[self.units:2 * self.units] = 1
        return b


class _Recurrent(Module):
    """Shared by LSTM, GRU and SimpleRNN: parameters, input checks, masks, outputs."""

    kind = None
    gates = None
    n_states = 1

    def __init__(self, units, return_sequences=False, return_state=False, go_backwards=False,
                 use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros", mask_value=None,
                 in_features=None, name=None):
        super().__init__(name)
        if not isinstance(units, int) or isinstance(units, bool) or units < 1:
            raise ValueError("%s: units must be a positive int, got %r"
                             % (type(self).__name__, units))
        self.units = units
        self.return_sequences = bool(return_sequences)
        self.return_state = bool(return_state)
        self.go_backwards = bool(go_backwards)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = kernel_initializer
        self.recurrent_initializer = recurrent_initializer
        self.bias_initializer = bias_initializer
        self.mask_value = None if mask_value is None else float(mask_value)
        self.in_features = in_features
        self.kernel = Parameter(init=kernel_initializer)
        self.recurrent_kernel = Parameter(init=recurrent_initializer)
        self.bias = Parameter(init=self._bias_init()) if use_bias else None
        self._create_extra_parameters()
        if in_features is not None:
            self.build((None, None, in_features))
            self.built = True

    def _bias_init(self):
        return self.bias_initializer

    def _create_extra_parameters(self):
        pass

    # ---- shapes ----
    def build(self, input_shape, *other_shapes):
        if input_shape is None or len(input_shape) != 3 or input_shape[-1] is None:
            raise errors.ShapeError("%s '%s': expects input of shape (batch, time, features), "
                                    "got %s" % (type(self).__name__, self.name,
                                                fmt_shape(input_shape or ())))
        self.in_features = int(input_shape[-1])
        gh = self.gates * self.units
        self.kernel.materialize((self.in_features, gh))
        self.recurrent_kernel.materialize((self.units, gh))
        for p in self._biases():
            p.materialize((gh,))

    def _biases(self):
        return [self.bias] if self.bias is not None else []

    def _check_input(self, x):
        shape = tuple(x.shape)
        if len(shape) != 3 or shape[-1] != self.in_features:
            raise errors.ShapeError(
                "%s '%s': expected input of shape (batch, time, %d), got %s"
                % (type(self).__name__, self.name, self.in_features, fmt_shape(shape)))

    def _bias_tensors(self, x):
        gh = self.gates * self.units
        return [self.bias if self.bias is not None else constant_like(np.zeros(gh, x.dtype.np), x)]

    def _effective_mask(self, x, mask):
        if self.mask_value is None:
            return mask
        keep = ops.cast(ops.any(ops.not_equal(x, self.mask_value), axis=-1), x.dtype)
        if mask is None:
            return keep
        if not hasattr(mask, "symbolic"):
            mask = constant_like(np.asarray(mask, dtype=x.dtype.np), x)
        return keep * ops.cast(mask, x.dtype)

    # ---- running ----
    def _sequence(self, x, mask=None, initial_state=None, reverse=None):
        """(outputs aligned with the input steps, final states) of the whole sequence."""
        x = as_operand(x)
        self._check_input(x)
        mask = self._effective_mask(x, mask)
        reverse = self.go_backwards if reverse is None else reverse
        weights = [self.kernel, self.recurrent_kernel] + self._bias_tensors(x)
        result = self._op(x, weights, initial_state, mask, reverse)
        return result[0], tuple(result[1:])

    def forward(self, x, mask=None, initial_state=None):
        outputs, states = self._sequence(x, mask, initial_state)
        if self.return_sequences:
            # Keras' go_backwards returns the outputs in processing order (last step first)
            y = outputs[:, ::-1] if self.go_backwards else outputs
        else:
            y = states[0]
        return (y,) + states if self.return_state else y

    def get_config(self):
        names = (self.kernel_initializer, self.recurrent_initializer, self.bias_initializer)
        if not all(isinstance(v, str) for v in names):
            return None
        return {"units": self.units, "return_sequences": self.return_sequences,
                "return_state": self.return_state, "go_backwards": self.go_backwards,
                "use_bias": self.use_bias, "kernel_initializer": self.kernel_initializer,
                "recurrent_initializer": self.recurrent_initializer,
                "bias_initializer": self.bias_initializer, "mask_value": self.mask_value,
                "in_features": self.in_features, "name": self.name}


@register_layer
class LSTM(_Recurrent):
    """Long short-term memory over a whole sequence (one native call forward, one backward).

    Returns the last output (N, units), or every output (N, T, units) with
    return_sequences=True; with return_state=True, [output, h, c]. Gates i, f, g, o.
    """

    kind = "lstm"
    gates = 4
    n_states = 2

    def __new__(cls, *args, **kwargs):
        # torch's LSTM(input_size, hidden_size, ...) is TorchLSTM (see torch_recurrent.py)
        if cls is LSTM and torch_signature(args, kwargs):
            return TorchLSTM(*args, **kwargs)
        return super().__new__(cls)

    def __init__(self, units, return_sequences=False, return_state=False, go_backwards=False,
                 use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros",
                 unit_forget_bias=True, mask_value=None, in_features=None, name=None):
        self.unit_forget_bias = bool(unit_forget_bias)
        super().__init__(units, return_sequences, return_state, go_backwards, use_bias,
                         kernel_initializer, recurrent_initializer, bias_initializer, mask_value,
                         in_features, name)

    def _bias_init(self):
        if self.unit_forget_bias:
            return _UnitForgetBias(self.bias_initializer, self.units)
        return self.bias_initializer

    def _op(self, x, weights, initial_state, mask, reverse):
        return ops.lstm(x, *weights, initial_state=initial_state, mask=mask, reverse=reverse)

    def get_config(self):
        cfg = super().get_config()
        if cfg is not None:
            cfg["unit_forget_bias"] = self.unit_forget_bias
        return cfg


@register_layer
class GRU(_Recurrent):
    """Gated recurrent unit, PyTorch's "reset after" formulation (Keras' reset_after=True):
    n = tanh(x W_n + b_n + r * (h U_n + rb_n)). Gates r, z, n; two biases."""

    kind = "gru"
    gates = 3

    def __new__(cls, *args, **kwargs):
        # torch's GRU(input_size, hidden_size, ...) is TorchGRU (see torch_recurrent.py)
        if cls is GRU and torch_signature(args, kwargs):
            return TorchGRU(*args, **kwargs)
        return super().__new__(cls)

    def _create_extra_parameters(self):
        self.recurrent_bias = Parameter(init=self.bias_initializer) if self.use_bias else None

    def _biases(self):
        return [p for p in (self.bias, self.recurrent_bias) if p is not None]

    def _bias_tensors(self, x):
        zero = constant_like(np.zeros(self.gates * self.units, x.dtype.np), x)
        return [self.bias if self.bias is not None else zero,
                self.recurrent_bias if self.recurrent_bias is not None else zero]

    def _op(self, x, weights, initial_state, mask, reverse):
        return ops.gru(x, *weights, initial_state=initial_state, mask=mask, reverse=reverse)


@register_layer
class SimpleRNN(_Recurrent):
    """h_t = activation(x_t W + h_{t-1} U + b), activation "tanh" (default) or "relu"."""

    kind = "simple_rnn"
    gates = 1

    def __init__(self, units, activation="tanh", return_sequences=False, return_state=False,
                 go_backwards=False, use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros", mask_value=None,
                 in_features=None, name=None):
        if activation not in ("tanh", "relu"):
            raise ValueError("SimpleRNN: activation must be 'tanh' or 'relu', got %r"
                             % (activation,))
        self.activation = activation
        super().__init__(units, return_sequences, return_state, go_backwards, use_bias,
                         kernel_initializer, recurrent_initializer, bias_initializer, mask_value,
                         in_features, name)

    def _op(self, x, weights, initial_state, mask, reverse):
        return ops.simple_rnn(x, *weights, initial_state=initial_state, mask=mask,
                              reverse=reverse, activation=self.activation)

    def get_config(self):
        cfg = super().get_config()
        if cfg is not None:
            cfg["activation"] = self.activation
        return cfg


_MERGE_MODES = ("concat", "sum", "mul", "ave", None)


@register_layer
class Bidirectional(Module):
    """A recurrent layer run forwards and backwards over the sequence, outputs merged.

    The backward copy (same config, opposite direction, its own weights) reads the sequence
    from the end; with return_sequences its outputs are aligned with the input steps before
    merging, as Keras and PyTorch do. merge_mode: "concat" (default), "sum", "mul", "ave", or
    None for [forward, backward]. return_state adds the forward then the backward states.
    """

    def __init__(self, layer, merge_mode="concat", backward_layer=None, name=None):
        if not isinstance(layer, _Recurrent):
            raise TypeError("Bidirectional wraps an LSTM, GRU or SimpleRNN layer, got %r"
                            % (layer,))
        if merge_mode not in _MERGE_MODES:
            raise ValueError("merge_mode must be one of %s, got %r" % (_MERGE_MODES, merge_mode))
        super().__init__(name or "bidirectional_" + layer.name)
        if backward_layer is None:
            cfg = layer.get_config()
            if cfg is None:
                raise ValueError("Bidirectional: %s has callable initializers; pass "
                                 "backward_layer explicitly" % layer.name)
            cfg.update(go_backwards=not layer.go_backwards, name="backward_" + layer.name)
            backward_layer = type(layer).from_config(cfg)
        if not isinstance(backward_layer, _Recurrent) or \
                backward_layer.go_backwards == layer.go_backwards:
            raise ValueError("Bidirectional: backward_layer must be a recurrent layer running "
                             "in the opposite direction (go_backwards=%s)"
                             % (not layer.go_backwards))
        if (backward_layer.return_sequences, backward_layer.return_state) != \
                (layer.return_sequences, layer.return_state):
            raise ValueError("Bidirectional: both layers need the same return_sequences and "
                             "return_state")
        self.forward_layer = layer
        self.backward_layer = backward_layer
        self.merge_mode = merge_mode

    def _run(self, layer, x, mask, initial_state):
        with name_scope(layer.name):
            if not layer.built:
                layer.build(tuple(x.shape))
                layer.built = True
            if layer.input_spec is None:
                layer.input_spec = [(tuple(x.shape), x.dtype)]
            return layer._sequence(x, mask, initial_state)

    def forward(self, x, mask=None, initial_state=None):
        fw, bw = self.forward_layer, self.backward_layer
        init_f = init_b = None
        if initial_state is not None:
            initial_state = list(initial_state)
            half = len(initial_state) // 2
            init_f, init_b = initial_state[:half], initial_state[half:]
        out_f, states_f = self._run(fw, x, mask, init_f)
        out_b, states_b = self._run(bw, x, mask, init_b)
        if fw.return_sequences:
            y_f, y_b = out_f, out_b
        else:
            y_f, y_b = states_f[0], states_b[0]
        if self.merge_mode == "concat":
            y = ops.concat([y_f, y_b], axis=-1)
        elif self.merge_mode == "sum":
            y = y_f + y_b
        elif self.merge_mode == "mul":
            y = y_f * y_b
        elif self.merge_mode == "ave":
            y = (y_f + y_b) * 0.5
        else:
            y = [y_f, y_b]
        if fw.return_state:
            head = list(y) if isinstance(y, list) else [y]
            return tuple(head) + states_f + states_b
        return y

    def get_config(self):
        cfg_f, cfg_b = self.forward_layer.get_config(), self.backward_layer.get_config()
        if cfg_f is None or cfg_b is None:
            return None
        return {"layer": {"class": type(self.forward_layer).__name__, "config": cfg_f},
                "backward_layer": {"class": type(self.backward_layer).__name__,
                                   "config": cfg_b},
                "merge_mode": self.merge_mode, "name": self.name}

    @classmethod
    def from_config(cls, config):
        from .module import layer_class

        def make(item):
            return layer_class(item["class"]).from_config(item["config"])

        backward = config.get("backward_layer")
        return cls(make(config["layer"]), config.get("merge_mode", "concat"),
                   make(backward) if backward else None, name=config.get("name"))
