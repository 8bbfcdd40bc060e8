"""Pieces the driver and the executors share: the model in pyfront's safe format as bytes, the
loss and metrics a model was compiled with, and flat vectors of named tensors (what rounds
send back and forth)."""
import numpy as np

from .. import errors
from ..train.metrics import fresh_metrics

__all__ = ["model_to_bytes", "model_from_bytes", "TrainingConfig", "TensorLayout", "ExactState",
           "label_kinds", "make_metrics", "pack_metric_states", "unpack_metric_states",
           "given_input_shapes"]

_CLASS_LOSSES = ("cross_entropy", "sparse_categorical_crossentropy")


def model_to_bytes(model, input_shape=None):
    """The model in pyfront's safe format (architecture, weights, graph), as bytes."""
    from ..io.model import save_bytes

    return save_bytes(model, input_shape)


def model_from_bytes(data):
    """A model from model_to_bytes' output (validated like any file pf.load reads)."""
    from ..io.model import load_bytes

    return load_bytes(data)


def compiled_settings(model):
    """(model.compile's settings or {}, its optimizer or None), also through a hybridized
    wrapper (compile may have been called on either)."""
    from ..train.api import training_config

    for m in (model, model.__dict__.get("module")):
        if m is not None and training_config(m) is not None:
            return training_config(m), m.__dict__.get("optimizer")
    return {}, None


def given_input_shapes(given, n_inputs):
    """input_shape= as one per-row shape per model input: one shape for a single-input model,
    else a list of n_inputs shapes."""
    shapes = list(given) if n_inputs > 1 else [given]
    if len(shapes) != n_inputs:
        raise ValueError("input_shape: the model has %d inputs; give a list of %d shapes, got %r"
                         % (n_inputs, n_inputs, given))
    return [tuple(int(d) for d in s) for s in shapes]


# the metrics local fit tracks, by the same rules (pyfront.train.metrics.fresh_metrics)
make_metrics = fresh_metrics


class TrainingConfig:
    """The loss and metrics to train with: given explicitly, or those of model.compile.

    Holds only picklable specs (names, or functions and Metric objects that pickle), so that it
    travels to executors, where loss_fn() and metrics() rebuild the callables."""

    def __init__(self, model, optimizer=None, loss=None, metrics=None):
        compiled, compiled_opt = compiled_settings(model)
        self.optimizer = optimizer if optimizer is not None else compiled_opt
        if self.optimizer is None:
            raise errors.PyfrontError(
                "SparkTrainer needs an optimizer: call model.compile(optimizer=..., loss=...) "
                "first, or pass optimizer= and loss=")
        self.loss = loss if loss is not None else compiled.get("loss")
        if self.loss is None:
            raise errors.PyfrontError(
                "SparkTrainer needs a loss: call model.compile(optimizer=..., loss=...) first, "
                "or pass loss= ('cross_entropy', 'mse' or a function)")
        self.loss_weights = None if loss is not None else compiled.get("loss_weights")
        specs = metrics if metrics is not None else compiled.get("metrics") or []
        self.metric_specs = dict(specs) if isinstance(specs, dict) else list(specs)
        self.loss_fn()               # fail now on an unknown loss name (metrics: in fit)

    def label_kinds(self, n_outputs):
        return label_kinds(self.loss, n_outputs)

    def loss_fn(self):
        from ..train.api import build_loss

        return build_loss(self.loss, self.loss_weights)

    def optimizer_spec(self):
        opt = self.optimizer
        return type(opt), opt.get_config()


def label_kinds(loss, n_outputs):
    """Per output, "class" (integer labels, for a cross-entropy loss) or "value"."""
    import pyfront as pf

    losses = list(loss) if isinstance(loss, (list, tuple)) else [loss] * n_outputs
    if len(losses) != n_outputs:
        raise errors.PyfrontError("%d losses for a model with %d outputs"
                                  % (len(losses), n_outputs))
    return ["class" if fn in _CLASS_LOSSES or fn is pf.losses.cross_entropy else "value"
            for fn in losses]


def pack_metric_states(tracked):
    """Every metric's statistics (make_metrics' triples) as one float64 vector (sorted keys,
    flattened arrays)."""
    parts = []
    for _, _, m in tracked:
        for key in sorted(m.stats):
            parts.append(np.asarray(m.stats[key], dtype=np.float64).reshape(-1))
    return np.concatenate(parts) if parts else np.zeros(0, np.float64)


def unpack_metric_states(tracked, vector):
    """Merge a vector from pack_metric_states into tracked metrics (same kinds, same order)."""
    pos = 0
    for _, _, m in tracked:
        state = {}
        for key in sorted(m.stats):
            ref = np.asarray(m.stats[key])
            size = ref.size
            chunk = vector[pos:pos + size]
            pos += size
            state[key] = chunk.reshape(ref.shape).astype(ref.dtype) if ref.ndim else \
                float(chunk[0])
        m.merge(state)
    if pos != len(vector):
        raise errors.PyfrontError("metric statistics: %d values for %d expected"
                                  % (len(vector), pos))
    return tracked


class TensorLayout:
    """Named arrays <-> one flat vector, in a fixed order (the unit rounds send around)."""

    def __init__(self, named_arrays):
        self.names = [name for name, _ in named_arrays]
        self.shapes = [tuple(np.shape(a)) for _, a in named_arrays]
        self.sizes = [int(np.prod(s)) for s in self.shapes]
        dtypes = {np.asarray(a).dtype for _, a in named_arrays}
        self.dtype = np.dtype(np.float64) if np.dtype(np.float64) in dtypes else \
            np.dtype(np.float32)
        self.size = sum(self.sizes)

    def pack(self, arrays, scale=None, out=None):
        """Concatenate arrays (a dict or a list in layout order), times scale if given."""
        vec = np.empty(self.size, self.dtype) if out is None else out
        pos = 0
        for i, name in enumerate(self.names):
            a = arrays[name] if isinstance(arrays, dict) else arrays[i]
            n = self.sizes[i]
            if scale is None:
                vec[pos:pos + n] = np.asarray(a).reshape(-1)
            else:
                np.multiply(np.asarray(a).reshape(-1), scale, out=vec[pos:pos + n],
                            casting="unsafe")
            pos += n
        return vec

    def unpack(self, vec):
        out, pos = {}, 0
        for name, shape, n in zip(self.names, self.shapes, self.sizes):
            out[name] = vec[pos:pos + n].reshape(shape)
            pos += n
        return out


class ExactState:
    """The state that is no quantity to average (integer buffers: a dropout layer's generator
    seed and counter) <-> bytes, bit for bit. Rounds carry it from the driver to the tasks and
    back from the first worker; it never enters the float vectors, whose float32 would round
    a 63-bit seed and whose mean would make another number of it."""

    def __init__(self, named_arrays):
        self.names = [name for name, _ in named_arrays]
        self.shapes = [tuple(np.shape(a)) for _, a in named_arrays]
        self.dtypes = [np.asarray(a).dtype for _, a in named_arrays]

    @staticmethod
    def split(named_arrays):
        """(float entries, the others) of a state's (name, array) pairs."""
        floats = [(n, a) for n, a in named_arrays if np.asarray(a).dtype.kind == "f"]
        return floats, [(n, a) for n, a in named_arrays if np.asarray(a).dtype.kind != "f"]

    def pack(self, arrays):
        return b"".join(np.ascontiguousarray(arrays[n], dtype=d).tobytes()
                        for n, d in zip(self.names, self.dtypes))

    def unpack(self, data):
        out, pos = {}, 0
        for name, shape, dtype in zip(self.names, self.shapes, self.dtypes):
            n = int(np.prod(shape)) * dtype.itemsize
            out[name] = np.frombuffer(data, dtype, count=n // dtype.itemsize,
                                      offset=pos).reshape(shape)
            pos += n
        if pos != len(data):
            raise errors.PyfrontError("internal: %d bytes of exact state for %d expected"
                                      % (len(data), pos))
        return out
