"""Scoring and evaluation of DataFrames with a pyfront model: predictions through an Arrow UDF
(the model broadcast once, rebuilt once per Python worker process, run on whole Arrow batches),
and loss plus metrics combined from per-partition sufficient statistics."""
import collections
import functools
import uuid

import numpy as np

from .. import errors
from ..nn.tracing import unwrap
from ..graph.jit import flatten_outputs
from ..train.step import as_arrays
from . import data as data_mod
from .common import TensorLayout, given_input_shapes, make_metrics, model_from_bytes, \
    model_to_bytes, unpack_metric_states
from .executors import check_executors

__all__ = ["predict", "evaluate"]

_MAX_MODELS = 4
_models = collections.OrderedDict()     # model id -> (model, compiled forward), per process


def _input_shapes(model, input_shape):
    """Per model input, the per-row shape (input_shape: one shape, or a list per input)."""
    n = len(model.input_spec) if model.input_spec else 1
    if input_shape is not None:
        return given_input_shapes(input_shape, n)
    if not model.input_spec:
        raise errors.PyfrontError(
            "the model has not seen an input yet, so its input shape is unknown: call it once "
            "or pass input_shape= (per row, without the batch dimension)")
    shapes = [tuple(spec[0][1:]) for spec in model.input_spec]
    for shape in shapes:
        if None in shape:
            raise errors.PyfrontError("the model's input shape %s has unknown dimensions; "
                                      "pass input_shape=" % (shape,))
    return shapes


def _output_widths(model, input_shapes):
    import pyfront as pf

    was_training = model.training
    model.eval()
    try:
        with pf.no_grad():
            out = model(*[pf.tensor(np.zeros((1,) + tuple(s), np.float32))
                          for s in input_shapes])
    finally:
        model.train(was_training)
    return [int(o.shape[-1]) if len(o.shape) > 1 else 1 for o in flatten_outputs(out)[0]]


def _cached_model(key, model_bc):
    entry = _models.get(key)
    if entry is None:
        from ..graph.jit import jit

        model = model_from_bytes(model_bc.value)
        model.eval()
        entry = (model, jit(model))
        _models[key] = entry
        while len(_models) > _MAX_MODELS:
            _models.popitem(last=False)
    else:
        _models.move_to_end(key)
    return entry


def _score(key, model_bc, input_shapes, batch_size, output, *columns):
    """Model outputs for Arrow arrays of feature rows (array<float>), one per model input:
    one array for a single-output model, else a struct with a field o<i> per output."""
    import pyarrow as pa

    from .worker import features_from_column, set_task_threads

    set_task_threads()
    _, forward = _cached_model(key, model_bc)
    n = len(columns[0])
    xs = []
    for i, (column, shape) in enumerate(zip(columns, input_shapes)):
        flat = int(np.prod(shape))
        which = "" if len(columns) == 1 else " of input %d" % i
        if column.null_count:
            raise errors.PyfrontError("predict: %d rows have null features%s"
                                      % (column.null_count, which))
        lengths = np.diff(column.offsets.to_numpy())
        if n and (lengths != flat).any():
            bad = int(lengths[lengths != flat][0])
            raise errors.ShapeError("predict: a row has %d feature values%s but the model takes "
                                    "%d (input shape %s)" % (bad, which, flat, tuple(shape)))
        xs.append(features_from_column(column, n, flat).reshape((n,) + tuple(shape)))
    parts = []
    for i in range(0, n, batch_size):
        parts.append(as_arrays(forward.run_numpy(*[x[i:i + batch_size] for x in xs])))
    outs = [np.concatenate(p).reshape(n, -1) for p in zip(*parts)] if parts else None
    arrays = []
    for y in outs or [np.zeros((0, 1), np.float32)]:
        if output == "class":
            arrays.append(pa.array(y.argmax(axis=1).astype(np.float64)))
            continue
        values = pa.array(y.astype(np.float32).reshape(-1))
        offsets = pa.array(np.arange(0, (n + 1) * y.shape[1], y.shape[1], dtype=np.int32))
        arrays.append(pa.ListArray.from_arrays(offsets, values))
    if len(arrays) == 1:
        return arrays[0]
    return pa.StructArray.from_arrays(arrays, names=["o%d" % i for i in range(len(arrays))])


def _arrow_scorer(score, return_type, n_inputs):
    """An iterator Arrow UDF (Spark 4.1+) around score(*pa.Array) -> pa.Array."""
    from typing import Iterator, Tuple

    import pyarrow as pa
    from pyspark.sql.functions import arrow_udf

    if n_inputs == 1:
        def run(batches: Iterator[pa.Array]) -> Iterator[pa.Array]:
            for column in batches:
                yield score(column)
    else:
        def run(batches: Iterator[Tuple[pa.Array, ...]]) -> Iterator[pa.Array]:
            for columns in batches:
                yield score(*columns)
    return arrow_udf(run, return_type)


def _pandas_scorer(score, return_type, n_inputs):
    """The same as a pandas iterator UDF, for Spark 3.5 and 4.0."""
    from typing import Iterator, Tuple

    import pandas as pd
    import pyarrow as pa
    from pyspark.sql.functions import pandas_udf

    def arrow(series):
        return pa.array(series, type=pa.list_(pa.float32()))

    if n_inputs == 1:
        def run(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
            for series in batches:
                yield score(arrow(series)).to_pandas()
    else:
        def run(batches: Iterator[Tuple[pd.Series, ...]]) -> Iterator[pd.DataFrame]:
            for columns in batches:
                out = score(*[arrow(c) for c in columns])
                if isinstance(out, pa.StructArray):     # several outputs: a struct column
                    yield pd.DataFrame({f.name: out.field(i).to_pandas()
                                        for i, f in enumerate(out.type)})
                else:
                    yield out.to_pandas()
    return pandas_udf(run, return_type)


def predict(model, df, input_col=None, output_col="prediction", input_cols=None,
            input_shape=None, batch_size=1024, output="raw"):
    """df with output_col added: the model's outputs for each row (array<float>), or with
    output="class" the index of the largest output (double, Spark ML's convention).

    input_col: an array or ML Vector column; input_cols: several numeric columns instead. A
    model with several inputs takes input_col as a list with one entry per input (each a
    column or a list of numeric columns); one with several outputs adds a column per output:
    output_col is then a list of names, or a prefix (prediction_0, prediction_1, ...).
    input_shape: per-row shape the flat features are reshaped to (default: the model's), or
    a list of them per input.
    """
    import pyspark.sql.functions as F

    if (input_col is None) == (input_cols is None):
        raise ValueError("predict: give input_col (an array or vector column) or input_cols "
                         "(numeric columns), not both")
    if output not in ("raw", "class"):
        raise ValueError("predict: output is 'raw' or 'class', got %r" % (output,))
    net = unwrap(model)
    shapes = _input_shapes(net, input_shape)
    columns = [input_cols] if input_cols is not None else \
        list(input_col) if len(shapes) > 1 else [input_col]
    if len(columns) != len(shapes):
        raise ValueError("predict: the model has %d inputs; input_col is a list of %d entries "
                         "(a column, or a list of numeric columns, per input), got %r"
                         % (len(shapes), len(shapes), input_col))
    n_outputs = len(_output_widths(net, shapes))
    names = [output_col] if n_outputs == 1 else list(output_col) \
        if isinstance(output_col, (list, tuple)) else \
        ["%s_%d" % (output_col, i) for i in range(n_outputs)]
    if len(names) != n_outputs:
        raise ValueError("predict: the model has %d outputs; output_col names %d"
                         % (n_outputs, len(names)))
    taken = [n for n in names if n in df.columns]
    if taken:
        raise errors.PyfrontError("predict: the DataFrame has a column %r already; choose "
                                  "another output_col" % taken[0])
    check_executors(df.sparkSession.sparkContext)
    features = [data_mod.features_expr(df, c) for c in columns]
    model_bc = df.sparkSession.sparkContext.broadcast(model_to_bytes(net))
    score = functools.partial(_score, uuid.uuid4().hex, model_bc, shapes, int(batch_size),
                              output)
    one = "double" if output == "class" else "array<float>"
    return_type = one if n_outputs == 1 else \
        "struct<%s>" % ", ".join("o%d: %s" % (i, one) for i in range(n_outputs))
    make = _arrow_scorer if hasattr(F, "arrow_udf") else _pandas_scorer
    scored = make(score, return_type, len(features))(*features)
    if n_outputs == 1:
        return df.withColumn(output_col, scored)
    every = "__pyfront_outputs"
    out = df.withColumn(every, scored)
    for i, name in enumerate(names):
        out = out.withColumn(name, F.col(every)["o%d" % i])
    return out.drop(every)


def evaluate(model, df, features_col="features", label_col="label", loss=None, metrics=None,
             input_shape=None, batch_size=1024):
    """{"loss": ..., <metric>: ...} over the whole DataFrame: each partition returns sums
    (loss times rows, metric statistics), combined on the driver. loss and metrics default to
    those of model.compile. A model with several inputs and outputs takes features_col and
    label_col as lists (one entry per input, one column per output), as SparkTrainer.fit
    does."""
    from pyspark import StorageLevel

    from .common import TrainingConfig, compiled_settings
    from .worker import (EVAL_SCHEMA, RoundState, RunSpec, broadcast_spec, evaluate_partition,
                         raise_task_error)

    net = unwrap(model)
    compiled, _ = compiled_settings(model)
    cfg = TrainingConfig.__new__(TrainingConfig)
    cfg.loss = loss if loss is not None else compiled.get("loss")
    cfg.loss_weights = None if loss is not None else compiled.get("loss_weights")
    specs = metrics if metrics is not None else compiled.get("metrics") or []
    cfg.metric_specs = dict(specs) if isinstance(specs, dict) else list(specs)
    if cfg.loss is None and not cfg.metric_specs:
        raise errors.PyfrontError("evaluate: nothing to compute; pass loss= and/or metrics= "
                                  "(or compile the model)")
    shapes = _input_shapes(net, input_shape)
    widths = _output_widths(net, shapes)
    make_metrics(cfg.metric_specs, len(widths))
    if cfg.loss is not None:
        kinds = cfg.label_kinds(len(widths))
    else:       # metrics alone: regression metrics take values, the others class labels
        regression = any(str(m) in ("mae", "mse", "rmse") for m in cfg.metric_specs)
        kinds = ["value" if regression else "class"] * len(widths)
    spec = data_mod.InputSpec(features_col, label_col, kinds,
                              feature_size=[int(np.prod(s)) for s in shapes], inputs=len(shapes))
    if len(spec.labels) != len(widths):
        raise errors.PyfrontError("evaluate: the model has %d outputs but label_col names %d "
                                  "(%r); give one label column per output"
                                  % (len(widths), len(spec.labels), label_col))
    spec.num_classes = [w if k == "class" else None for w, k in zip(widths, kinds)]
    df = data_mod.as_dataframe(df)
    check_executors(df.sparkSession.sparkContext)
    converted = data_mod.convert(df, spec)
    converted = converted.persist(StorageLevel.MEMORY_AND_DISK)
    sc = converted.sparkSession.sparkContext
    broadcasts = []
    try:
        stats = data_mod.profile(converted)
        data_mod.check(stats, spec, "evaluation data")
        state = net.state_dict()
        layout = TensorLayout(list(state.items()))
        run_spec = RunSpec(
            run_id=uuid.uuid4().hex, model_bytes=model_to_bytes(net), input_shapes=shapes,
            label_kinds=kinds, loss=cfg.loss, loss_weights=cfg.loss_weights,
            metric_specs=cfg.metric_specs, optimizer_spec=None, strategy="evaluate",
            batch_size=batch_size, seed=0, weight_layout=layout, grad_names=[],
            opt_layout=None)
        spec_bc = broadcast_spec(sc, run_spec)
        state_bc = sc.broadcast(RoundState(layout.pack(state)))
        broadcasts = [spec_bc, state_bc]
        fn = functools.partial(evaluate_partition, spec_bc, state_bc, int(batch_size))
        rows = [r.asDict() for r in converted.mapInArrow(fn, EVAL_SCHEMA).collect()]
    finally:
        for b in broadcasts:
            b.destroy()
        converted.unpersist()
    for r in rows:
        raise_task_error(r, "evaluate")
    n = sum(r["rows"] for r in rows)
    out = {}
    if cfg.loss is not None:
        out["loss"] = sum(r["loss_sum"] for r in rows) / n
    ms = make_metrics(cfg.metric_specs, len(widths))
    for r in rows:
        unpack_metric_states(ms, np.frombuffer(r["metrics"], np.float64))
    out.update((name, m.result()) for _, name, m in ms)
    return out
