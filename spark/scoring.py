"""Scoring and evaluation of DataFrames with a pyfront model: predictions through an Arrow UDF
(the model broadcast once, rebuilt once per Python worker process, run on whole Arrow batches),
and loss plus metrics combined from per-partition sufficient statistics."""
import collections
import functools
import uuid

import numpy as np

from .. import errors
from . import data as data_mod
from .common import TensorLayout, make_metrics, model_from_bytes, model_to_bytes, \
    unpack_metric_states
from .executors import check_executors

__all__ = ["predict", "evaluate"]

_MAX_MODELS = 4
_models = collections.OrderedDict()     # model id -> (model, compiled forward), per process


def _unwrap(model):
    inner = model.__dict__.get("module")
    return inner if getattr(model, "is_hybridized", False) and inner is not None else model


def _input_shape(model, input_shape):
    if input_shape is not None:
        return tuple(int(d) for d in input_shape)
    if not model.input_spec:
        raise errors.PyfrontError(
            "the model has not seen an input yet, so its input shape is unknown: call it once "
            "or pass input_shape= (per row, without the batch dimension)")
    shape = tuple(model.input_spec[0][0][1:])
    if None in shape:
        raise errors.PyfrontError("the model's input shape %s has unknown dimensions; pass "
                                  "input_shape=" % (shape,))
    return shape


def _output_width(model, input_shape):
    import pyfront as pf

    was_training = model.training
    model.eval()
    try:
        with pf.no_grad():
            out = model(pf.tensor(np.zeros((1,) + tuple(input_shape), np.float32)))
    finally:
        model.train(was_training)
    return int(out.shape[-1]) if len(out.shape) > 1 else 1


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


def _score(key, model_bc, input_shape, batch_size, output, column):
    """Model outputs for one Arrow array of feature rows (array<float>)."""
    import pyarrow as pa

    from .worker import _features, _set_threads

    _set_threads()
    _, forward = _cached_model(key, model_bc)
    n = len(column)
    flat = int(np.prod(input_shape))
    if column.null_count:
        raise errors.PyfrontError("predict: %d rows have null features" % column.null_count)
    lengths = np.diff(column.offsets.to_numpy())
    if n and (lengths != flat).any():
        bad = int(lengths[lengths != flat][0])
        raise errors.ShapeError("predict: a row has %d feature values but the model takes %d "
                                "(input shape %s)" % (bad, flat, tuple(input_shape)))
    x = _features(column, n, flat).reshape((n,) + tuple(input_shape))
    parts = []
    for i in range(0, n, batch_size):
        parts.append(np.asarray(forward.run_numpy(x[i:i + batch_size])))
    y = np.concatenate(parts) if parts else np.zeros((0, 1), np.float32)
    y = y.reshape(n, -1)
    if output == "class":
        return pa.array(y.argmax(axis=1).astype(np.float64))
    values = pa.array(y.astype(np.float32).reshape(-1))
    offsets = pa.array(np.arange(0, (n + 1) * y.shape[1], y.shape[1], dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, values)


def _arrow_scorer(score, return_type):
    """An iterator Arrow UDF (Spark 4.1+) around score(pa.Array) -> pa.Array."""
    from typing import Iterator

    import pyarrow as pa
    from pyspark.sql.functions import arrow_udf

    def run(batches: Iterator[pa.Array]) -> Iterator[pa.Array]:
        for column in batches:
            yield score(column)
    return arrow_udf(run, return_type)


def _pandas_scorer(score, return_type):
    """The same as a pandas iterator UDF, for Spark 3.5 and 4.0."""
    from typing import Iterator

    import pandas as pd
    import pyarrow as pa
    from pyspark.sql.functions import pandas_udf

    def run(batches: Iterator[pd.Series]) -> Iterator[pd.Series]:
        for series in batches:
            column = pa.array(series, type=pa.list_(pa.float32()))
            yield score(column).to_pandas()
    return pandas_udf(run, return_type)


def predict(model, df, input_col=None, output_col="prediction", input_cols=None,
            input_shape=None, batch_size=1024, output="raw"):
    """df with output_col added: the model's outputs for each row (array<float>), or with
    output="class" the index of the largest output (double, Spark ML's convention).

    input_col: an array or ML Vector column; input_cols: several numeric columns instead.
    input_shape: per-row shape the flat features are reshaped to (default: the model's).
    """
    import pyspark.sql.functions as F

    if (input_col is None) == (input_cols is None):
        raise ValueError("predict: give input_col (an array or vector column) or input_cols "
                         "(numeric columns), not both")
    if output not in ("raw", "class"):
        raise ValueError("predict: output is 'raw' or 'class', got %r" % (output,))
    if output_col in df.columns:
        raise errors.PyfrontError("predict: the DataFrame has a column %r already; choose "
                                  "another output_col" % output_col)
    net = _unwrap(model)
    shape = _input_shape(net, input_shape)
    check_executors(df.sparkSession.sparkContext)
    features = data_mod.features_expr(df, input_cols if input_cols is not None else input_col)
    model_bc = df.sparkSession.sparkContext.broadcast(model_to_bytes(net))
    score = functools.partial(_score, uuid.uuid4().hex, model_bc, shape, int(batch_size),
                              output)
    return_type = "double" if output == "class" else "array<float>"
    if hasattr(F, "arrow_udf"):
        udf = _arrow_scorer(score, return_type)
    else:
        udf = _pandas_scorer(score, return_type)
    return df.withColumn(output_col, udf(features))


def evaluate(model, df, features_col="features", label_col="label", loss=None, metrics=None,
             input_shape=None, batch_size=1024):
    """{"loss": ..., <metric>: ...} over the whole DataFrame: each partition returns sums
    (loss times rows, metric statistics), combined on the driver. loss and metrics default to
    those of model.compile."""
    from pyspark import StorageLevel

    from .common import TrainingConfig, compiled_settings
    from .worker import (EVAL_SCHEMA, RoundState, RunSpec, broadcast_spec, evaluate_partition,
                         raise_task_error)

    net = _unwrap(model)
    compiled, _ = compiled_settings(model)
    cfg = TrainingConfig.__new__(TrainingConfig)
    cfg.loss = loss if loss is not None else compiled.get("loss")
    cfg.loss_weights = None if loss is not None else compiled.get("loss_weights")
    cfg.metric_specs = list(metrics if metrics is not None else compiled.get("metrics") or [])
    if cfg.loss is None and not cfg.metric_specs:
        raise errors.PyfrontError("evaluate: nothing to compute; pass loss= and/or metrics= "
                                  "(or compile the model)")
    make_metrics(cfg.metric_specs)
    shape = _input_shape(net, input_shape)
    label_kind = "class" if cfg.loss is None else cfg.label_kinds(1)[0]
    if cfg.loss is None and any(str(m) in ("mae", "mse", "rmse") for m in cfg.metric_specs):
        label_kind = "value"
    spec = data_mod.InputSpec(features_col, label_col, label_kind,
                              feature_size=int(np.prod(shape)))
    if label_kind == "class":
        spec.num_classes = [_output_width(net, shape)]
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
            run_id=uuid.uuid4().hex, model_bytes=model_to_bytes(net), input_shapes=[shape],
            label_kinds=[label_kind], loss=cfg.loss, loss_weights=cfg.loss_weights,
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
    ms = make_metrics(cfg.metric_specs)
    for r in rows:
        unpack_metric_states(ms, np.frombuffer(r["metrics"], np.float64))
    out.update((name, m.result()) for _, name, m in ms)
    return out
