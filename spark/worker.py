"""What runs inside Spark tasks: a training round on one worker's slice of the data (gradients
for SyncSGD, K local steps for ParameterAveraging), and evaluation of a partition.

Tasks read only broadcast state and their slice of rows, and seed everything they draw from
(epoch, round, worker), so a retried task returns exactly what the first attempt would have. A
Python worker process keeps the model of a run (rebuilt once from the broadcast safe-format
bytes) and its compiled steps across tasks; a process that has not seen the run rebuilds it.
"""
import collections
import json
import os
import time

import numpy as np

from .. import autograd, errors, random
from ..backend import cuda
from ..train.step import as_arrays, make_gradient_step, make_predict_step, make_train_step
from .common import make_metrics, model_from_bytes, pack_metric_states

__all__ = ["RunSpec", "RoundState", "broadcast_spec", "train_round", "train_epoch_collective",
           "kept_rows", "apply_mean_gradient", "evaluate_partition", "raise_task_error",
           "minibatches", "RESULT_SCHEMA", "EVAL_SCHEMA"]

# what a task returns, one row: as a Spark DDL schema for mapInArrow, and in Arrow types
# "error": a pyfront error raised in the task, as "<class name>: <message>" (else null); it
# is returned rather than raised because Spark retries every failed task, and a pyfront error
# (bad data, a shape or numeric error) would only fail again
_RESULT_FIELDS = [("worker", "int"), ("rows", "long"), ("steps", "int"),
                  ("loss_sum", "double"), ("metrics", "binary"), ("payload", "binary"),
                  ("seconds", "double"), ("input_seconds", "double"),
                  ("state_seconds", "double"), ("comm_seconds", "double"),
                  ("wait_seconds", "double"), ("kept", "int"), ("exact", "binary"),
                  ("error", "string")]
_EVAL_FIELDS = [("rows", "long"), ("loss_sum", "double"), ("metrics", "binary"),
                ("seconds", "double"), ("error", "string")]
RESULT_SCHEMA = ", ".join("%s %s" % f for f in _RESULT_FIELDS)
EVAL_SCHEMA = ", ".join("%s %s" % f for f in _EVAL_FIELDS)

_MAX_RUNS = 2
_runs = collections.OrderedDict()     # run id -> _Run, in this Python worker process


class RunSpec:
    """Everything about a run that does not change between rounds (broadcast once).

    input_shapes: per model input, the per-row shape; label_kinds: per output, "class" or
    "value"."""

    def __init__(self, run_id, model_bytes, input_shapes, label_kinds, loss, loss_weights,
                 metric_specs, optimizer_spec, strategy, batch_size, seed, weight_layout,
                 grad_names, opt_layout, compiled=True, collective=None, use_gpu=False,
                 exact_state=None):
        self.run_id = run_id
        self.model_bytes = model_bytes
        self.input_shapes = [tuple(s) for s in input_shapes]
        self.label_kinds = list(label_kinds)
        self.loss, self.loss_weights = loss, loss_weights
        self.metric_specs = metric_specs
        self.optimizer_spec = optimizer_spec        # (class, config)
        self.strategy = strategy                    # "sync" | "average"
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.weight_layout = weight_layout          # TensorLayout of the float state
        self.exact_state = exact_state              # ExactState of the rest (or None)
        self.grad_names = list(grad_names)          # trainable parameters, in order
        self.opt_layout = opt_layout                # TensorLayout of "<param>/<state>" arrays
        self.compiled = bool(compiled)
        # the collective mode: {"secret": bytes, "timeout": seconds, "ports": (lo, hi) | None,
        # "rendezvous": the driver's Rendezvous address, or None for allGather}
        self.collective = collective
        self.use_gpu = bool(use_gpu)                # each task trains on the GPU Spark gave it

    def loss_fn(self):
        from ..train.api import build_loss

        return build_loss(self.loss, self.loss_weights)


class RoundState:
    """What changes every round: the weights (one flat vector in weight_layout order), the
    integer state (bytes), and for parameter averaging the optimizer's state, learning rate
    and step count."""

    def __init__(self, weights, opt_state=None, lr=None, iterations=0, exact=b""):
        self.weights = weights
        self.exact = exact              # the integer state, bit for bit (ExactState bytes)
        self.opt_state = opt_state
        self.lr = lr
        self.iterations = int(iterations)


# ---------------------------------------------------------------------------------------------
# Arrow batches -> minibatches of numpy arrays

def features_from_column(column, n, size):
    """(n, size) float32 from an Arrow column of float lists, or of raw float32 bytes per row
    (the packed form SparkTrainer caches: read without a copy)."""
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type):
        width = 8 if pa.types.is_large_binary(column.type) else 4
        offsets = np.frombuffer(column.buffers()[1], np.int32 if width == 4 else np.int64,
                                count=n + 1, offset=column.offset * width)
        data = np.frombuffer(column.buffers()[2], np.uint8)[offsets[0]:offsets[-1]]
        return data.view(np.float32).reshape((n, size))
    values = column.flatten().to_numpy(zero_copy_only=False)
    if values.dtype != np.float32:
        values = values.astype(np.float32)
    return values.reshape((n, size)) if n else values.reshape((0, size))


def pack_features(batches):
    """mapInArrow body: the features columns (float lists, all one length) as raw float32
    bytes per row, which Spark caches and streams back far faster than arrays of floats."""
    import pyarrow as pa

    for rb in batches:
        n = rb.num_rows
        columns = list(rb.columns)
        for i, name in enumerate(rb.schema.names):
            if not name.startswith("features"):
                continue
            values = rb.column(i).flatten().to_numpy(zero_copy_only=False) \
                .astype(np.float32, copy=False)
            row_bytes = values.nbytes // n if n else 0
            large = values.nbytes >= 2 ** 31
            offsets = np.arange(n + 1, dtype=np.int64 if large else np.int32) * row_bytes
            columns[i] = pa.Array.from_buffers(pa.large_binary() if large else pa.binary(), n,
                                               [None, pa.py_buffer(offsets),
                                                pa.py_buffer(values)])
        yield pa.RecordBatch.from_arrays(columns, names=list(rb.schema.names))


def _labels(column, n, kind):
    import pyarrow as pa

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        values = column.flatten().to_numpy(zero_copy_only=False).astype(np.float32)
        return values.reshape((n, -1))
    values = column.to_numpy(zero_copy_only=False)
    return values.astype(np.int64) if kind == "class" else values.astype(np.float32)


def minibatches(batches, size, input_shapes, label_kinds, with_worker=False):
    """Rebatch a stream of Arrow record batches into numpy minibatches of `size` rows:
    (xs: one array per input, shaped (n,) + its input shape; ys: one array per output, or
    None without labels; worker ids or None). Only the pending rows of the stream are held,
    never a whole partition."""
    import pyarrow as pa

    from .data import feature_names

    flats = [int(np.prod(s)) if s else 1 for s in input_shapes]
    x_names = feature_names(len(input_shapes))
    y_names = ["label"] if len(label_kinds) == 1 else \
        ["label_%d" % i for i in range(len(label_kinds))]
    pending, held = [], 0

    def emit(table):
        n = table.num_rows
        xs = [features_from_column(table.column(name), n, flat).reshape((n,) + tuple(shape))
              for name, flat, shape in zip(x_names, flats, input_shapes)]
        ys = [_labels(table.column(name), n, kind) for name, kind in zip(y_names, label_kinds)] \
            if y_names[0] in table.column_names else None
        w = table.column("__w").to_numpy() if with_worker else None
        return xs, ys, w

    for rb in batches:
        if rb.num_rows == 0:
            continue
        pending.append(rb)
        held += rb.num_rows
        if held < size:
            continue
        table = pa.Table.from_batches(pending)
        start = 0
        while held - start >= size:
            yield emit(table.slice(start, size))
            start += size
        pending = [b for b in table.slice(start).to_batches() if b.num_rows]
        held -= start
    if held:
        yield emit(pa.Table.from_batches(pending))


# ---------------------------------------------------------------------------------------------
# the collective mode keeps each task's partition in its Python worker between epochs

class KeptPartition:
    """One worker's rows of a dealt dataset (WorkerLayout.token), in global-index order (row j
    is global row worker + j * num_workers), kept in a Python worker process so that the
    collective mode's later epochs read nothing from the JVM: the executor's sort and Arrow
    conversion of the whole partition cost 0.2-0.6 s an epoch, before the first step, on the
    cores the tasks train on. The order of any epoch is data.worker_order, computed here.

    Filled from the stream of one epoch (`epoch`) as it is trained on, up to `limit` bytes."""

    def __init__(self, source, worker, epoch, limit):
        # source: the driver's info["input"] ({"token", "count", "workers", "seed", "shuffle",
        # "rows": rows per worker})
        self.source, self.worker = source, int(worker)
        self.rows = int(source["rows"][self.worker])
        self.limit = int(limit)
        self.xs = self.ys = None
        self.filled, self.nbytes, self.refused = 0, 0, False
        self._positions = self._dense(epoch)

    def _dense(self, epoch):
        """position in `epoch`'s order -> row of this partition."""
        from .data import worker_order

        s = self.source
        g = worker_order(s["count"], s["workers"], self.worker, s["seed"], epoch, s["shuffle"])
        return (g - self.worker) // s["workers"]

    def add(self, xs, ys):
        """Keep the stream's next minibatch (it comes in the epoch's order)."""
        if self.refused:
            return
        if self.xs is None:
            per_row = sum(x[:1].nbytes for x in xs) + sum(y[:1].nbytes for y in ys or [])
            self.nbytes = per_row * self.rows
            if self.nbytes > self.limit:
                self.refused = True
                return
            self.xs = [np.empty((self.rows,) + x.shape[1:], x.dtype) for x in xs]
            self.ys = None if ys is None else \
                [np.empty((self.rows,) + y.shape[1:], y.dtype) for y in ys]
        n = len(xs[0])
        idx = self._positions[self.filled:self.filled + n]
        for kept, x in zip(self.xs, xs):
            kept[idx] = x
        for kept, y in zip(self.ys or [], ys or []):
            kept[idx] = y
        self.filled += n

    @property
    def complete(self):
        return not self.refused and self.xs is not None and self.filled == self.rows

    def batches(self, epoch, size):
        """The partition's minibatches in `epoch`'s order: what minibatches() yields for that
        epoch's stream (worker ids: None)."""
        order = self._dense(epoch)
        for lo in range(0, self.rows, size):
            idx = order[lo:lo + size]
            yield ([x[idx] for x in self.xs],
                   None if self.ys is None else [y[idx] for y in self.ys], None)


_kept = None        # the KeptPartition this Python worker process holds (at most one)


# ---------------------------------------------------------------------------------------------

def set_task_threads():
    """pyfront's threads = the task's cores (spark.task.cpus), so tasks never oversubscribe
    an executor."""
    import pyfront as pf
    from pyspark import TaskContext

    ctx = TaskContext.get()
    cpus = ctx.cpus() if ctx is not None else 1
    if pf.get_num_threads() != cpus:
        pf.set_num_threads(max(1, int(cpus)))


def task_device(use_gpu, ctx=None):
    """The device a task trains on: "cpu", or with use_gpu the GPU Spark assigned the task
    (TaskContext.resources()["gpu"], its first address) as "cuda:N".

    The address is the one the executor's discovery script reported (nvidia-smi's index); where
    the cluster manager already limits the executor with CUDA_VISIBLE_DEVICES, its position in
    that list is the CUDA ordinal. CUDA_VISIBLE_DEVICES is never set here: a Python worker
    serves many tasks, and CUDA reads it once per process."""
    if not use_gpu:
        return "cpu"
    from pyspark import TaskContext

    ctx = TaskContext.get() if ctx is None else ctx
    gpus = ctx.resources().get("gpu") if ctx is not None else None
    addresses = list(gpus.addresses) if gpus is not None else []
    if not addresses:
        raise errors.DeviceError(
            "SparkTrainer(use_gpu=True): Spark assigned this task no GPU; give executors and "
            "tasks GPUs with spark.executor.resource.gpu.amount, "
            "spark.executor.resource.gpu.discoveryScript and spark.task.resource.gpu.amount "
            "(see pyfront.spark's README)")
    address = addresses[0].strip()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        listed = [v.strip() for v in visible.split(",") if v.strip()]
        if address not in listed:
            raise errors.DeviceError(
                "SparkTrainer(use_gpu=True): Spark assigned GPU %s, but this executor sees only "
                "CUDA_VISIBLE_DEVICES=%s" % (address, visible))
        ordinal = listed.index(address)
    elif address.isdigit():
        ordinal = int(address)
    else:
        raise errors.DeviceError(
            "SparkTrainer(use_gpu=True): Spark assigned GPU address %r, which is not a CUDA "
            "device index: the discovery script must print nvidia-smi's indices" % address)
    if not cuda.is_available():
        raise errors.DeviceError("SparkTrainer(use_gpu=True): Spark assigned GPU %s, but CUDA "
                                 "is not usable in this executor's Python: %s"
                                 % (address, cuda.why_not()))
    if ordinal >= cuda.device_count():
        raise errors.DeviceError("SparkTrainer(use_gpu=True): Spark assigned GPU %s (CUDA device "
                                 "%d), but this executor's Python sees %d CUDA device(s)"
                                 % (address, ordinal, cuda.device_count()))
    return "cuda:%d" % ordinal


def _task_seed(seed, *parts):
    h = int(seed) & 0xFFFFFFFF
    for p in parts:
        h = (h * 1000003 + int(p) + 1) & 0xFFFFFFFF
    return h


class _Run:
    """A run's model, loss, optimizer and steps in this Python worker process; the steps are
    pyfront.train's (make_gradient_step for SyncSGD, make_train_step for local steps)."""

    def __init__(self, spec):
        self.spec = spec
        self.model = model_from_bytes(spec.model_bytes)
        self.model.train()
        self.tensors = dict(self.model.named_tensors())
        missing = [n for n in spec.weight_layout.names if n not in self.tensors]
        if missing:
            raise errors.ModelFormatError("the model rebuilt on the executor lacks %s" % missing)
        self.grad_params = [self.tensors[n] for n in spec.grad_names]
        self.loss_fn = spec.loss_fn() if spec.loss is not None else None
        self.device = "cpu"
        self._gradient_step = None
        self._optimizer = None
        self._train_step = None
        self._predict = None

    def use_device(self, device):
        """Train on device from now on (a task's GPU can differ from the previous task's in
        this process): the model moves, the steps and optimizer follow it."""
        if device != self.device:
            self.model.to(device)
            self.device = device
            self._gradient_step = self._optimizer = self._train_step = self._predict = None

    @property
    def compiled(self):
        # compiled plans run on the CPU only so far: a GPU model trains with the eager steps
        return self.spec.compiled and self.device == "cpu"

    def host(self, name):
        """A model tensor's values in host memory (a copy when the model is on a GPU)."""
        return self.tensors[name].cpu().numpy()

    # ---- state in and out ----
    def load_weights(self, vec):
        with autograd.no_grad():        # the parameters' memory written, off the tape
            for name, arr in self.spec.weight_layout.unpack(vec).items():
                self.tensors[name].copy_(arr)

    def load_exact(self, data):
        """The driver's integer state (a dropout generator's seed and counter), as it is."""
        layout = self.spec.exact_state
        if layout is None or not layout.names:
            return
        with autograd.no_grad():
            for name, arr in layout.unpack(data).items():
                self.tensors[name].copy_(arr)

    def exact_bytes(self):
        layout = self.spec.exact_state
        if layout is None or not layout.names:
            return b""
        return layout.pack({n: self.host(n) for n in layout.names})

    @property
    def optimizer(self):
        if self._optimizer is None:
            cls, config = self.spec.optimizer_spec
            self._optimizer = cls(self.grad_params, **config)
        return self._optimizer

    def load_optimizer(self, state):
        opt = self.optimizer
        opt.lr, opt.iterations = float(state.lr), int(state.iterations)
        if self.spec.opt_layout is None or state.opt_state is None:
            return
        by_name = dict(zip(self.spec.grad_names, self.grad_params))
        for key, arr in self.spec.opt_layout.unpack(state.opt_state).items():
            pname, sname = key.rsplit("/", 1)
            cuda.copy_from_host(opt.state_for(by_name[pname])[sname], arr)

    def optimizer_vector(self, scale):
        opt, layout = self.optimizer, self.spec.opt_layout
        if layout is None:
            return np.zeros(0, np.float32)
        by_name = dict(zip(self.spec.grad_names, self.grad_params))
        arrays = []
        for key in layout.names:
            pname, sname = key.rsplit("/", 1)
            arrays.append(cuda.array_to(opt.state_for(by_name[pname])[sname], "cpu"))
        return layout.pack(arrays, scale)

    # ---- steps: lists of arrays in (one per input / output), predictions as a list ----
    def gradients(self, xs, ys):
        """(mean loss, [gradient per trainable parameter], [prediction per output])."""
        if self._gradient_step is None:
            self._gradient_step = make_gradient_step(self.model, self.loss_fn,
                                                     self.grad_params, self.compiled)
        loss, grads, out = self._gradient_step(xs, ys)
        return loss, grads, as_arrays(out)

    def train_step(self, xs, ys):
        """One local optimizer step; (mean loss, [prediction per output] before the update)."""
        if self._train_step is None:
            self._train_step = make_train_step(self.model, self.loss_fn, self.optimizer,
                                               self.compiled)
        loss, out = self._train_step(xs, ys)
        return loss, as_arrays(out)

    def predict(self, xs):
        if self._predict is None:
            self._predict = make_predict_step(self.model, self.compiled)
        try:
            return as_arrays(self._predict(xs))
        finally:
            self.model.train()


def broadcast_spec(sc, spec):
    """Broadcast a RunSpec as (run id, cloudpickle bytes): Spark pickles broadcast values with
    plain pickle, which cannot carry a loss or metric defined in a script or a notebook."""
    from pyspark import cloudpickle

    return sc.broadcast((spec.run_id, cloudpickle.dumps(spec)))


def _run_for(spec_bc):
    run_id, payload = spec_bc.value
    run = _runs.get(run_id)
    if run is None:
        from pyspark import cloudpickle

        run = _Run(cloudpickle.loads(payload))
        _runs[run_id] = run
        while len(_runs) > _MAX_RUNS:
            _runs.popitem(last=False)
    else:
        _runs.move_to_end(run_id)
    run.use_device(task_device(run.spec.use_gpu))
    return run


# ---------------------------------------------------------------------------------------------
# task bodies (for mapInArrow: an iterator of Arrow record batches in, result batches out)

def _result(fields, values):
    import pyarrow as pa

    types = {"int": pa.int32(), "long": pa.int64(), "double": pa.float64(),
             "binary": pa.binary(), "string": pa.string()}
    schema = pa.schema([(name, types[kind]) for name, kind in fields])
    return pa.RecordBatch.from_pydict({k: [values.get(k)] for k, _ in fields}, schema=schema)


def _failed_values(fields, error):
    zeros = {"int": 0, "long": 0, "double": 0.0, "binary": b""}
    values = {name: zeros.get(kind) for name, kind in fields}
    values["error"] = "%s: %s" % (type(error).__name__, error)
    return values


def _failed(fields, error):
    """The one result row of a task that raised a pyfront error: zeros and the error."""
    return _result(fields, _failed_values(fields, error))


def raise_task_error(result, where):
    """Raise, as its own class with its own message first, a pyfront error that a task
    returned (see _failed)."""
    if not result or not result.get("error"):
        return
    name, _, message = result["error"].partition(": ")
    cls = getattr(errors, name, None)
    if not (isinstance(cls, type) and issubclass(cls, errors.PyfrontError)):
        cls, message = errors.PyfrontError, result["error"]
    raise cls("%s\n(raised in a Spark task: %s)" % (message, where))


def train_round(spec_bc, state_bc, info, batches):
    """One worker's share of a round. info: {"epoch", "round", "steps"}.

    SyncSGD: payload = sum over the rows of the gradient (mean gradient times rows) of every
    trainable parameter, then rows times the state that is not trained (buffers). Parameter
    averaging: `steps` local steps, then payload = rows times (all weights, optimizer state).
    """
    try:
        yield _train_round(spec_bc, state_bc, info, batches)
    except errors.PyfrontError as e:
        yield _failed(_RESULT_FIELDS, e)


def _train_round(spec_bc, state_bc, info, batches):
    from pyspark import TaskContext

    t_wait = 0.0
    start = time.perf_counter()
    state = state_bc.value
    set_task_threads()
    run = _run_for(spec_bc)
    spec = run.spec
    run.load_weights(state.weights)
    run.load_exact(state.exact)
    t_state = time.perf_counter() - start
    ctx = TaskContext.get()
    worker = ctx.partitionId() if ctx is not None else 0
    tracked = make_metrics(spec.metric_specs, len(spec.label_kinds))
    rows, steps, loss_sum = 0, 0, 0.0
    sync = spec.strategy == "sync"
    if sync:
        grad_sum = [np.zeros(p.shape, np.float64) for p in run.grad_params]
    else:
        run.load_optimizer(state)
        max_steps = int(info["steps"])
    seen_worker = None
    random.seed(_task_seed(spec.seed, info["epoch"], info["round"], worker))
    stream = minibatches(batches, spec.batch_size, spec.input_shapes, spec.label_kinds,
                         with_worker=True)
    while True:
        t = time.perf_counter()
        item = next(stream, None)
        t_wait += time.perf_counter() - t
        if item is None:
            break
        xs, ys, w = item
        if seen_worker is None:
            seen_worker = int(w[0])
        if (w != seen_worker).any():
            raise errors.PyfrontError(
                "internal: rows of workers %s reached one task; the data layout is broken"
                % sorted(set(w.tolist())))
        n = len(xs[0])
        if sync:
            loss, grads, outs = run.gradients(xs, ys)
            for acc, gr in zip(grad_sum, grads):
                acc += np.asarray(gr, np.float64) * n
        else:
            if steps >= max_steps:
                raise errors.PyfrontError("internal: a round slice holds more than %d "
                                          "minibatches" % max_steps)
            loss, outs = run.train_step(xs, ys)
        steps += 1
        rows += n
        loss_sum += float(loss) * n
        for i, _, m in tracked:
            m.update(ys[i], outs[i])
    if seen_worker is not None:
        worker = seen_worker
    layout = spec.weight_layout
    if rows == 0:
        payload = b""
    elif sync:
        trained = set(spec.grad_names)
        vec = np.concatenate(
            [np.concatenate([g.reshape(-1) for g in grad_sum]).astype(layout.dtype)] +
            [np.asarray(run.host(n), layout.dtype).reshape(-1) * rows
             for n in layout.names if n not in trained])
        payload = vec.tobytes()
    else:
        weights = layout.pack({n: run.host(n) for n in layout.names}, rows)
        payload = weights.tobytes() + run.optimizer_vector(rows).tobytes() + \
            np.array([run.optimizer.iterations], np.float64).tobytes()
    seconds = time.perf_counter() - start - t_wait
    return _result(_RESULT_FIELDS, {
        "worker": worker, "rows": rows, "steps": steps, "loss_sum": loss_sum,
        "metrics": pack_metric_states(tracked).tobytes(), "payload": payload,
        "exact": run.exact_bytes(), "seconds": seconds, "input_seconds": t_wait,
        "state_seconds": t_state})


def evaluate_partition(spec_bc, state_bc, batch_size, batches):
    """Loss and metric statistics of a partition with the broadcast weights (eval mode)."""
    try:
        yield _evaluate_partition(spec_bc, state_bc, batch_size, batches)
    except errors.PyfrontError as e:
        yield _failed(_EVAL_FIELDS, e)


def _evaluate_partition(spec_bc, state_bc, batch_size, batches):
    from .. import autograd
    from ..tensor import Tensor

    start = time.perf_counter()
    state = state_bc.value
    set_task_threads()
    run = _run_for(spec_bc)
    spec = run.spec
    run.load_weights(state.weights)
    tracked = make_metrics(spec.metric_specs, len(spec.label_kinds))
    rows, loss_sum = 0, 0.0
    for xs, ys, _ in minibatches(batches, batch_size, spec.input_shapes, spec.label_kinds):
        outs = run.predict(xs)
        n = len(xs[0])
        if run.loss_fn is not None:
            with autograd.no_grad():
                loss = run.loss_fn([Tensor(o) for o in outs], *[Tensor(y) for y in ys])
            loss_sum += float(loss.item()) * n
        rows += n
        for i, _, m in tracked:
            m.update(ys[i], outs[i])
    return _result(_EVAL_FIELDS, {"rows": rows, "loss_sum": loss_sum,
                                  "metrics": pack_metric_states(tracked).tobytes(),
                                  "seconds": time.perf_counter() - start})


# ---------------------------------------------------------------------------------------------
# the collective mode: one barrier task per worker for a whole epoch

def apply_mean_gradient(opt, grad_params, tensors, untrained, mean):
    """One SyncSGD update from `mean` (the global batch's mean gradient of every trainable
    parameter, then the row-weighted mean of the untrained state, e.g. BatchNorm's running
    statistics): the driver's arithmetic in the per-job mode, and every task's in the
    collective mode, once a step. The gradients are views of `mean` (no copy where the dtypes
    agree), read by the optimizer's update before the caller reuses the buffer."""
    from ..tensor import Tensor

    pos = 0
    for p in grad_params:
        n = p.size
        view = mean[pos:pos + n].reshape(p.shape)
        if view.dtype != p.dtype.np:
            view = view.astype(p.dtype.np)
        grad = Tensor._wrap(view, p.dtype)
        p.grad = grad if p.device == "cpu" else grad.to(p.device)
        pos += n
    opt.step()
    opt.zero_grad()
    with autograd.no_grad():
        for name in untrained:
            t = tensors[name]
            t.copy_(mean[pos:pos + t.size].reshape(t.shape))
            pos += t.size


def train_epoch_collective(spec_bc, state_bc, info, batches):
    """One worker's whole epoch in a barrier stage. info: {"epoch", "steps" (minibatches of
    the worker with the most rows), "frequency" (K; 1 for SyncSGD), "workers", "input"}.

    info["input"]: the dealt data ({"token", "count", "workers", "seed", "shuffle", "rows"}),
    "keep" (bytes this task may keep of its partition after the epoch, 0 for none) and
    "kept" (True: the job's input is one placeholder row per task, and each task trains on
    the partition its Python worker kept from an earlier epoch).

    Rendezvous once (every task's listening address and the partition it holds, through the
    driver's Rendezvous or BarrierTaskContext.allGather). With kept partitions a task's rank
    is the partition it holds, wherever Spark placed it; if the tasks do not hold every
    partition once (a new Python worker, a lost executor), rank 0 returns kept=-1 at once and
    the driver runs the epoch again from Spark's cache. Then
    per step (SyncSGD) a ring all-reduce of [gradient sums | rows x untrained state | rows |
    error flag], after which every task applies the same update; or per K local steps
    (parameter averaging) an all-reduce of [rows x weights | rows x optimizer state | rows |
    error flag]. A final all-reduce sums rows, loss, kept partitions and metric statistics;
    rank 0 returns them with the weights and optimizer state. A pyfront error in one task
    raises the flag, so every task stops at the same step and the error comes back as a
    result row (not retried); a lost or hung peer fails the stage (CollectiveError), which
    Spark retries."""
    global _kept
    from pyspark import BarrierTaskContext

    from .collective import Ring, rendezvous

    start = time.perf_counter()
    ctx = BarrierTaskContext.get()
    slot = ctx.partitionId()
    state = state_bc.value
    set_task_threads()
    run = _run_for(spec_bc)
    conf = run.spec.collective
    source = info["input"]
    host = ctx.getTaskInfos()[slot].address.rsplit(":", 1)[0]
    size = int(info["workers"])
    ring = Ring(slot, size, conf["secret"], host, conf["timeout"], conf["ports"])
    kept = None
    if source["kept"]:
        kept = _kept if _kept is not None and _kept.source["token"] == source["token"] \
            and _kept.complete else None
    try:
        # the partition this task will train on: its slot's (the job's input is the data),
        # the one its Python worker kept, or none (-1)
        holds = slot if not source["kept"] else kept.worker if kept is not None else -1
        mine = json.dumps([ring.address, holds])
        if conf.get("rendezvous"):      # the driver's service (see collective.Rendezvous)
            key = str(ctx.stageId())
            gathered = rendezvous(conf["rendezvous"], conf["secret"], key, slot, size, mine,
                                  conf["timeout"])
        else:
            gathered = ctx.allGather(mine)
        gathered = [json.loads(g) for g in gathered]
        holds = [h for _, h in gathered]
        if source["kept"] and sorted(holds) != list(range(size)):
            # some partition is not kept (every task sees the same list, so all stop here)
            _drain(batches)
            if slot == 0:
                yield _result(_RESULT_FIELDS, {"worker": 0, "kept": -1})
            return
        ring.rank = holds[slot]
        addresses = [None] * size
        for address, rank in gathered:
            addresses[rank] = address
        ring.connect(addresses)
        t_state = time.perf_counter() - start
        if kept is not None:
            keeps = kept if source["keep"] else None
            result = _collective_epoch(run, ring, state, info, kept.batches(info["epoch"],
                                       run.spec.batch_size), keeps, ring.rank)
            if keeps is None:
                _kept = None        # the run's last epoch: give the memory back
        else:
            _kept = None            # one kept partition a process: the old goes first
            keeper = KeptPartition(source, ring.rank, info["epoch"], source["keep"]) \
                if source["keep"] else None
            stream = minibatches(batches, run.spec.batch_size, run.spec.input_shapes,
                                 run.spec.label_kinds, with_worker=True)
            result = _collective_epoch(run, ring, state, info, stream, keeper, ring.rank)
            if keeper is not None and keeper.complete:
                _kept = keeper
    finally:
        ring.close()
    _drain(batches)
    if result is not None:
        result["state_seconds"] = t_state
        result["seconds"] = time.perf_counter() - start - result["input_seconds"]
        yield _result(_RESULT_FIELDS, result)


def kept_rows(task, placeholder):
    """The body of an RDD barrier job around `task` (train_epoch_collective's partial) over
    kept partitions: its input is one placeholder element, its result rows are dicts."""
    for batch in task(placeholder):
        yield from batch.to_pylist()


def _drain(batches):
    """Read the input to its end (its end-of-stream marker): a Python worker whose input was
    left unread is not reused, and the next epoch's task would pay a new process, imports and
    model rebuild (1-3 s here), and lose its kept partition."""
    for _ in batches:
        pass


def _collective_epoch(run, ring, state, info, stream, keeper, rank):
    """stream: the task's minibatches in the epoch's order (with worker ids to check, or
    None); keeper: the KeptPartition the task keeps after the epoch (filled from the stream
    unless it is the one the stream comes from), or None."""
    spec = run.spec
    layout = spec.weight_layout
    run.load_weights(state.weights)
    run.load_exact(state.exact)
    run.load_optimizer(state)
    opt = run.optimizer
    sync = spec.strategy == "sync"
    steps, K = int(info["steps"]), int(info["frequency"])
    trained = set(spec.grad_names)
    untrained = [n for n in layout.names if n not in trained]
    tracked = make_metrics(spec.metric_specs, len(spec.label_kinds))
    opt_size = spec.opt_layout.size if spec.opt_layout is not None else 0
    vec = np.zeros(layout.size + (0 if sync else opt_size) + 2, layout.dtype)
    rows, loss_sum, t_wait, error = 0, 0.0, 0.0, None

    def next_batch():
        nonlocal t_wait
        t = time.perf_counter()
        item = next(stream, None)
        t_wait += time.perf_counter() - t
        if item is None:
            return None
        if item[2] is not None and (item[2] != rank).any():
            raise errors.PyfrontError("internal: rows of workers %s reached barrier task %d; "
                                      "the data layout is broken"
                                      % (sorted(set(item[2].tolist())), rank))
        if keeper is not None and not keeper.complete:
            keeper.add(item[0], item[1])
        return item

    def track(n, loss, ys, outs):
        nonlocal rows, loss_sum
        rows += n
        loss_sum += float(loss) * n
        for i, _, m in tracked:
            m.update(ys[i], outs[i])

    # a round: one step (SyncSGD) or K local steps between averages, seeded as in the
    # per-job mode's round (epoch, round, worker)
    for rnd in range(-(-steps // K)):
        random.seed(_task_seed(spec.seed, info["epoch"], rnd, rank))
        vec[:] = 0
        n_round, iterations = 0, opt.iterations + min(K, steps - rnd * K)
        try:
            if sync:
                item = next_batch()
                if item is not None:
                    xs, ys, _ = item
                    n_round = len(xs[0])
                    loss, grads, outs = run.gradients(xs, ys)
                    pos = 0
                    for g in grads:
                        g = np.asarray(g).reshape(-1)
                        np.multiply(g, n_round, out=vec[pos:pos + g.size], casting="unsafe")
                        pos += g.size
                    for name in untrained:
                        a = run.host(name).reshape(-1)
                        np.multiply(a, n_round, out=vec[pos:pos + a.size], casting="unsafe")
                        pos += a.size
                    track(n_round, loss, ys, outs)
            else:
                for _ in range(min(K, steps - rnd * K)):
                    item = next_batch()
                    if item is None:
                        break
                    xs, ys, _ = item
                    loss, outs = run.train_step(xs, ys)
                    n_round += len(xs[0])
                    track(len(xs[0]), loss, ys, outs)
                if n_round:
                    layout.pack({n: run.host(n) for n in layout.names}, n_round,
                                out=vec[:layout.size])
                    vec[layout.size:layout.size + opt_size] = run.optimizer_vector(n_round)
        except errors.PyfrontError as e:
            error, vec[:] = e, 0
            vec[-1] = 1
        vec[-2] = n_round
        ring.allreduce(vec)
        if vec[-1] > 0:            # some task failed: all stop here
            break
        total = float(vec[-2])
        if not total:
            continue
        mean = np.divide(vec[:-2], total, out=vec[:-2])      # in place: no copy per step
        if sync:
            apply_mean_gradient(opt, run.grad_params, run.tensors, untrained, mean)
        else:
            # every task started the round at one step count; the furthest sets the new one
            run.load_weights(mean[:layout.size])
            run.load_optimizer(RoundState(None, mean[layout.size:] if opt_size else None,
                                          opt.lr, iterations))
    if error is not None:
        return dict(_failed_values(_RESULT_FIELDS, error), worker=rank)
    if vec[-1] > 0:
        return None                # the failing task reports
    kept = keeper is not None and keeper.complete
    sums = np.concatenate([[rows, loss_sum, kept], pack_metric_states(tracked)]) \
        .astype(np.float64)
    ring.allreduce(sums)
    if rank != 0:
        return None
    payload = layout.pack({n: run.host(n) for n in layout.names}).tobytes() + \
        run.optimizer_vector(None).tobytes() + np.array([opt.iterations], np.float64).tobytes()
    return {"worker": 0, "rows": int(sums[0]), "steps": steps, "loss_sum": float(sums[1]),
            "metrics": sums[3:].tobytes(), "kept": int(sums[2]), "payload": payload,
            "exact": run.exact_bytes(), "input_seconds": t_wait,
            "comm_seconds": ring.stats["seconds"], "wait_seconds": ring.stats["wait_seconds"]}
