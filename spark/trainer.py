"""SparkTrainer: data-parallel training of a pyfront model across Spark executors.

Each round is one Spark job over the round's slice of every worker's rows: tasks read the
broadcast weights, compute (gradients, or K local steps), and return one row each, which the
driver combines into one update of the model it holds. In the collective mode an epoch is one
barrier-mode job instead, whose tasks all-reduce among themselves (worker.train_epoch_collective)
and whose rank 0 returns the epoch's final state. Public PySpark APIs only: broadcast,
mapInArrow (barrier mode too), collect / treeAggregate, job groups.
"""
import functools
import logging
import os
import re
import secrets
import sys
import time
import uuid

import numpy as np

from .. import errors
from ..nn.tracing import unwrap
from ..train.callbacks import Callback, CallbackList, History
from . import checkpoint as ckpt
from . import data as data_mod
from .collective import Rendezvous
from .common import (ExactState, TensorLayout, TrainingConfig, given_input_shapes, make_metrics,
                     model_to_bytes, unpack_metric_states)
from .executors import check_executors
from .strategies import ParameterAveraging, SyncSGD
from .worker import (EVAL_SCHEMA, RESULT_SCHEMA, RoundState, RunSpec, apply_mean_gradient,
                     broadcast_spec, evaluate_partition, kept_rows, raise_task_error,
                     train_epoch_collective, train_round)

__all__ = ["SparkTrainer"]

log = logging.getLogger("pyfront.spark")

_JOB_PROPERTIES = ("spark.jobGroup.id", "spark.job.description", "spark.job.interruptOnCancel")


def _format(logs):
    parts = []
    for k, v in logs.items():
        if isinstance(v, float) and k != "seconds":
            parts.append("%s %.4f" % (k, v) if k != "samples_per_s" else
                         "%s samples/s" % format(int(v), ","))
    return "  ".join(parts)


class SparkTrainer:
    """Train `model` (a pyfront Module) in place on a Spark DataFrame or RDD.

    strategy: SyncSGD() (default) or ParameterAveraging(frequency=K); either with
        collective=True trains each epoch in one barrier-mode job whose tasks all-reduce
        among themselves (needs num_workers free task slots at once; see spark/README.md).
    num_workers: data partitions trained in parallel (default: the context's default
        parallelism, i.e. the executor cores; in the collective mode the task slots, the
        cores divided by spark.task.cpus).
    batch_size_per_worker: rows per local step on each worker (a SyncSGD step sees
        num_workers times as many).
    optimizer, loss, metrics: default to what model.compile set.
    input_shape: per-row shape the flat features are reshaped to (e.g. (1, 8, 8)), or a list
        of them for a model with several inputs; default the model's input shape(s) when it
        has seen an input, else (number of features,).
    shuffle: reorder each worker's rows every epoch (seeded; see data.epoch_order).
    checkpoint_dir, checkpoint_every: write a checkpoint every N rounds (and at each epoch's
        end) to a local or Hadoop-compatible folder; keep_checkpoints newest are kept. The
        collective mode checkpoints at each epoch's end only (checkpoint_every is refused).
    max_round_retries: run a failed round again (after Spark's own task retries gave up) at
        most this many times.
    export_path: write the prepared data to Parquet there once and read epochs from it,
        instead of keeping a prepared copy in Spark's cache.
    verbose: 0 silent, 1 a progress bar per epoch (a line per epoch without a terminal),
        2 a log line per round.
    combine: where the workers' results are summed: "driver" (collect), "tree"
        (treeAggregate on the executors), "auto" (tree beyond 4 workers).
    resource_profile: a pyspark ResourceProfile for the training tasks (Spark 4.0+), e.g.
        one GPU per task; see spark/README.md.
    use_gpu: each task trains on the GPU Spark assigned it (TaskContext.resources()["gpu"];
        the cluster's GPU settings are in spark/README.md), eagerly; a task given no GPU, or
        whose executor cannot use CUDA, fails the fit with a DeviceError saying which.
    """

    def __init__(self, model, strategy=None, num_workers=None, batch_size_per_worker=32,
                 optimizer=None, loss=None, metrics=None, input_shape=None, seed=0,
                 shuffle=True, checkpoint_dir=None, checkpoint_every=None, keep_checkpoints=2,
                 max_round_retries=1, export_path=None, verbose=1, compiled=True,
                 combine="auto", resource_profile=None, spark=None, use_gpu=False):
        from .. import nn

        if not isinstance(unwrap(model), nn.Module):
            raise TypeError("SparkTrainer trains a pyfront.nn.Module, got %r" % (model,))
        strategy = SyncSGD() if strategy is None else strategy
        if not isinstance(strategy, (SyncSGD, ParameterAveraging)):
            raise TypeError("strategy must be SyncSGD() or ParameterAveraging(frequency=K), "
                            "got %r" % (strategy,))
        if num_workers is not None and (not isinstance(num_workers, int) or num_workers < 1):
            raise ValueError("num_workers must be a positive int, got %r" % (num_workers,))
        if not isinstance(batch_size_per_worker, int) or batch_size_per_worker < 1:
            raise ValueError("batch_size_per_worker must be a positive int, got %r"
                             % (batch_size_per_worker,))
        if checkpoint_every is not None and checkpoint_dir is None:
            raise ValueError("checkpoint_every needs checkpoint_dir")
        if checkpoint_every is not None and strategy.collective:
            # the epoch's state exists only inside its barrier tasks until the job ends
            raise ValueError(
                "checkpoint_every=%r: %r trains each epoch in one barrier job, whose state "
                "reaches the driver only at the epoch's end, so it cannot checkpoint every N "
                "rounds; checkpoint_dir alone writes a checkpoint at every epoch's end (drop "
                "checkpoint_every), or train with collective=False" % (checkpoint_every,
                                                                       strategy))
        if combine not in ("auto", "driver", "tree"):
            raise ValueError("combine is 'auto', 'driver' or 'tree', got %r" % (combine,))
        self.model = model
        self.strategy = strategy
        self.num_workers = num_workers
        self.batch_size = batch_size_per_worker
        self.config = TrainingConfig(model, optimizer, loss, metrics)
        self.optimizer = self.config.optimizer
        self.input_shape = input_shape
        self.seed = int(seed)
        self.shuffle = bool(shuffle)
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_every = checkpoint_every
        self.keep_checkpoints = keep_checkpoints
        self.max_round_retries = int(max_round_retries)
        self.export_path = export_path
        self.verbose = verbose
        self.compiled = compiled
        self.combine = combine
        self.spark = spark
        self.resource_profile = resource_profile
        self.use_gpu = bool(use_gpu)
        self.history = None
        # per round: wall "seconds", "driver_seconds" (state broadcast and update), and the
        # slowest task's "task_seconds" (its own work), "input_seconds", "state_seconds"
        self.timings = []

    # ------------------------------------------------------------------------------------
    def fit(self, data, epochs=1, features_col="features", label_col="label",
            validation_data=None, resume_from=None, callbacks=None):
        """Train for `epochs` epochs; the model is updated in place. Returns the History
        (the class local fit returns: history["loss"], one value per epoch).

        data: a DataFrame (features_col: an array or ML Vector column, or a list of numeric
        columns; label_col: a number, class index for cross-entropy) or an RDD of
        (features, label) pairs. A model with several inputs takes features_col as a list
        with one entry per input (each a column or a list of numeric columns); one with
        several outputs takes label_col as a list of columns, one per output (the losses,
        loss_weights and metrics of model.compile apply per output as in local fit).
        validation_data: a DataFrame/RDD like data, evaluated in parallel after every
        epoch. resume_from: a checkpoint file, or a checkpoint folder (its newest file), to
        continue a run from. callbacks: pyfront.train.callbacks objects (EarlyStopping,
        ModelCheckpoint, CSVLogger, TensorBoard, LearningRateScheduler, ReduceLROnPlateau,
        your own Callback); a Spark round is their batch.
        """
        from pyspark.sql import SparkSession

        if not isinstance(epochs, int) or epochs < 1:
            raise ValueError("epochs must be a positive int, got %r" % (epochs,))
        callbacks = list(callbacks or [])
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(
                    "callbacks are pyfront.train.callbacks.Callback objects (their hooks: "
                    "on_epoch_begin/end, on_train_batch_begin/end called for every round, "
                    "on_train_begin/end), got %r" % (cb,))
        spark = self.spark or getattr(data, "sparkSession", None) or \
            SparkSession.builder.getOrCreate()
        sc = spark.sparkContext
        check_executors(sc)
        if self.strategy.collective:
            slots, counted = _task_slots(sc)
            # barrier mode needs every worker's task running at once: by default as many
            # workers as there are task slots (the default parallelism is a setting that
            # may exceed them, and a barrier job asking for more slots waits ~10 minutes)
            workers = self.num_workers or (slots if slots else sc.defaultParallelism)
            _check_barrier_slots(sc, workers, self.strategy, slots, counted)
        else:
            workers = self.num_workers or sc.defaultParallelism
        model = unwrap(self.model)
        opt = self.optimizer
        if not opt.params:
            opt.bind(model.parameters())

        # ---- check the data on the driver before any long work ----
        df = data_mod.as_dataframe(data, spark)
        n_inputs = len(model.input_spec) if model.input_spec else 1
        n_labels = len(label_col) if isinstance(label_col, (list, tuple)) else 1
        loss = self.config.loss
        if isinstance(loss, (list, tuple)) and len(loss) != n_labels:
            raise errors.PyfrontError(
                "%d losses (one per output) but label_col names %d column%s (%r); give one "
                "label column per output" % (len(loss), n_labels, "" if n_labels == 1 else "s",
                                             label_col))
        spec = data_mod.InputSpec(features_col, label_col, self.config.label_kinds(n_labels),
                                  inputs=n_inputs)
        from pyspark import StorageLevel

        converted = data_mod.convert(df, spec).persist(StorageLevel.MEMORY_AND_DISK)
        layout = run = None
        val = None
        group = "pyfront-%s" % uuid.uuid4().hex[:12]
        broadcasts = []
        saved = {k: sc.getLocalProperty(k) for k in _JOB_PROPERTIES}
        try:
            sc.setJobGroup(group, "pyfront: checking the training data", True)
            stats = data_mod.profile(converted)
            if stats.count == 0:
                data_mod.check(stats, spec)
            input_shapes = self._input_shapes(model, stats, spec)
            spec.feature_sizes = [int(np.prod(s)) for s in input_shapes]
            widths = self._build(model, input_shapes)
            if len(widths) != len(spec.labels):
                raise errors.PyfrontError(
                    "the model has %d outputs but label_col names %d column%s (%r); give one "
                    "label column per output" % (len(widths), len(spec.labels),
                                                 "" if len(spec.labels) == 1 else "s",
                                                 label_col))
            spec.num_classes = [w if k == "class" else None
                                for w, k in zip(widths, spec.label_kinds)]
            make_metrics(self.config.metric_specs, len(widths))    # unknown names fail now
            data_mod.check(stats, spec)
            if validation_data is not None:
                val = self._prepare_validation(validation_data, spark, spec)

            # ---- lay the data out for the workers ----
            sc.setJobGroup(group, "pyfront: dealing the data to %d workers" % workers, True)
            layout = data_mod.WorkerLayout(converted, stats, workers, self.seed, self.shuffle,
                                           self.export_path)
            converted.unpersist()

            run = _Run(self, spark, model, opt, input_shapes, spec.label_kinds, workers, group)
            broadcasts = run.broadcasts
            return run.train(layout, epochs, val, resume_from, callbacks)
        finally:
            if run is not None and run.meeting is not None:
                run.meeting.close()
            for b in broadcasts:
                try:
                    b.destroy()
                except Exception:   # the context may be stopped already
                    pass
            converted.unpersist()
            if layout is not None:
                layout.release()
            if val is not None:
                val.unpersist()
            try:
                for key, value in saved.items():    # the caller's job group, as it was
                    sc.setLocalProperty(key, value)
            except Exception:   # the context may be stopped already
                pass

    # ---- helpers ----
    def _input_shapes(self, model, stats, spec):
        """Per model input, the per-row shape its flat features are reshaped to."""
        n = len(spec.inputs)
        given = self.input_shape
        if given is not None:
            return given_input_shapes(given, n)
        shapes = []
        for i, name in enumerate(spec.feature_names):
            shape = tuple(model.input_spec[i][0][1:]) if model.input_spec else None
            if shape is None or None in shape:
                shape = (int(stats.features[name]["min_size"]),)
            shapes.append(shape)
        return shapes

    def _build(self, model, input_shapes):
        """Run the model once on zeros (deferred initialisation, seeded); the width of every
        output."""
        import pyfront as pf

        needs_init = any(not p.initialized for p in model.parameters(trainable_only=False)
                         if hasattr(p, "initialized"))
        if needs_init:
            pf.random.seed(self.seed)
        was_training = model.training
        model.eval()
        try:
            with pf.no_grad():
                out = model(*[pf.tensor(np.zeros((1,) + tuple(s), np.float32))
                              for s in input_shapes])
        except errors.ShapeError as e:
            shown = input_shapes[0] if len(input_shapes) == 1 else input_shapes
            raise errors.ShapeError("the model does not take rows of shape %s: %s (pass "
                                    "input_shape= to reshape the features)"
                                    % (shown, e)) from None
        finally:
            model.train(was_training)
        if isinstance(out, dict):
            raise errors.PyfrontError("SparkTrainer trains models whose outputs are a tensor "
                                      "or a list of tensors; this one returns a dict (%s)"
                                      % ", ".join(out))
        for p in self.optimizer.params:
            self.optimizer.state_for(p)
        outs = list(out) if isinstance(out, (tuple, list)) else [out]
        return [int(o.shape[-1]) if len(o.shape) > 1 else 1 for o in outs]

    def _prepare_validation(self, validation_data, spark, spec):
        from pyspark import StorageLevel

        vdf = data_mod.as_dataframe(validation_data, spark)
        vconv = data_mod.convert(vdf, spec).persist(StorageLevel.MEMORY_AND_DISK)
        data_mod.check(data_mod.profile(vconv), spec, "validation data")
        return vconv


class _Run:
    """One fit: the broadcast spec, the round loop, combining, progress and checkpoints."""

    def __init__(self, trainer, spark, model, opt, input_shapes, label_kinds, workers, group):
        self.t = trainer
        self.spark, self.sc = spark, spark.sparkContext
        self.model, self.opt = model, opt
        self.workers, self.group = workers, group
        self.K = trainer.strategy.frequency
        self.sync = trainer.strategy.name == "sync"
        self.collective = trainer.strategy.collective
        self.partitions_kept = False     # the tasks of the last epoch kept their partitions
        self.keep_bytes = trainer.strategy.keep_bytes if self.collective else 0
        self.kept_misses = 0             # kept-partition jobs in a row that found none
        self.tensors = dict(model.named_tensors())
        floats, exact = ExactState.split(list(model.state_dict().items()))
        self.weight_layout = TensorLayout(floats)
        self.exact_state = ExactState(exact)
        ids = {id(p): name for name, p in model.named_parameters()}
        for p in opt.params:
            if id(p) not in ids:
                raise errors.PyfrontError("the optimizer holds a parameter (%s) that is not "
                                          "the model's" % getattr(p, "name", "?"))
        self.grad_names = [ids[id(p)] for p in opt.params]
        self.grad_params = list(opt.params)
        self.untrained = [n for n in self.weight_layout.names if n not in set(self.grad_names)]
        self.opt_layout = None
        if not self.sync or self.collective:     # optimizer state travels to the tasks
            entries = []
            for name, p in zip(self.grad_names, self.grad_params):
                for sname, arr in sorted(opt.state_for(p).items()):
                    entries.append(("%s/%s" % (name, sname), arr))
            self.opt_layout = TensorLayout(entries) if entries else None
        cls, config = trainer.config.optimizer_spec()
        secret = secrets.token_bytes(32)
        self.meeting = None
        if self.collective and trainer.strategy.rendezvous == "driver":
            conf = self.sc.getConf()
            host = conf.get("spark.driver.host", "127.0.0.1")
            self.meeting = Rendezvous(secret, host, trainer.strategy.timeout,
                                      trainer.strategy.ports,
                                      conf.get("spark.driver.bindAddress", None) or host)
        self.spec = RunSpec(
            run_id=uuid.uuid4().hex, model_bytes=model_to_bytes(model, None),
            input_shapes=input_shapes, label_kinds=label_kinds, loss=trainer.config.loss,
            loss_weights=trainer.config.loss_weights,
            metric_specs=trainer.config.metric_specs, optimizer_spec=(cls, config),
            strategy=trainer.strategy.name, batch_size=trainer.batch_size, seed=trainer.seed,
            weight_layout=self.weight_layout, grad_names=self.grad_names,
            opt_layout=self.opt_layout, compiled=trainer.compiled, use_gpu=trainer.use_gpu,
            exact_state=self.exact_state,
            collective={"secret": secret, "timeout": trainer.strategy.timeout,
                        "ports": trainer.strategy.ports,
                        "rendezvous": self.meeting and self.meeting.address}
            if self.collective else None)
        self.spec_bc = broadcast_spec(self.sc, self.spec)
        self.broadcasts = [self.spec_bc]
        self.n_outputs = len(label_kinds)
        self.history = History()
        self.t.history = self.history

    # ---- state ----
    def round_state(self):
        state = self.model.state_dict()
        weights = self.weight_layout.pack(state)
        exact = self.exact_state.pack(state)
        if self.sync and not self.collective:
            return RoundState(weights, exact=exact)
        opt_vec = None
        if self.opt_layout is not None:
            opt_vec = self.opt_layout.pack(
                [self.opt.state_for(p)[k.rsplit("/", 1)[1]] for k, p in
                 zip(self.opt_layout.names, self._opt_params())])
        return RoundState(weights, opt_vec, self.opt.lr, self.opt.iterations, exact)

    def _opt_params(self):
        by_name = dict(zip(self.grad_names, self.grad_params))
        return [by_name[k.rsplit("/", 1)[0]] for k in self.opt_layout.names]

    # ---- one round ----
    def run_round(self, view, epoch, rnd, rounds, epochs, layout):
        B, K = self.t.batch_size, self.K
        lo, hi = rnd * K * B, (rnd + 1) * K * B
        start = time.perf_counter()
        self.sc.setJobGroup(self.group, "pyfront %s: epoch %d/%d, round %d/%d"
                            % (self.t.strategy, epoch + 1, epochs, rnd + 1, rounds), True)
        state_bc = self.sc.broadcast(self.round_state())
        driver = time.perf_counter() - start
        try:
            fn = functools.partial(train_round, self.spec_bc, state_bc,
                                   {"epoch": epoch, "round": rnd, "steps": K})
            results = self.retried(
                lambda: self.collect(self.map_in_arrow(layout.round_slice(view, lo, hi), fn,
                                                       RESULT_SCHEMA)),
                "epoch %d round %d" % (epoch + 1, rnd + 1))
        finally:
            state_bc.destroy()
        spark_end = time.perf_counter()
        raise_task_error(results, "epoch %d, round %d" % (epoch + 1, rnd + 1))
        rows, loss_sum, mvec = self.apply(results)
        end = time.perf_counter()
        driver += end - spark_end
        self.t.timings.append({
            "seconds": end - start, "driver_seconds": driver, "rows": rows,
            "task_seconds": results["seconds"] if results else 0.0,
            "input_seconds": results["input_seconds"] if results else 0.0,
            "state_seconds": results["state_seconds"] if results else 0.0})
        return rows, loss_sum, mvec

    def retried(self, job, what):
        """job(), run again after a failed Spark job at most max_round_retries times (the
        state it starts from is the driver's, unchanged by the failed attempt)."""
        for attempt in range(self.t.max_round_retries + 1):
            try:
                return job()
            except Exception as e:
                if not _is_spark_failure(e):
                    raise
                # the exception a task raised, not Py4J's "An error occurred while calling
                # o123.collectToPython."
                cause = _task_cause(e)
                if attempt == self.t.max_round_retries:
                    if cause is not None and cause[0].endswith("CollectiveError"):
                        # a peer was unreachable, hung or gone on every attempt: say which,
                        # first, rather than at the end of a JVM stack trace
                        raise errors.PyfrontError(
                            "%s failed (%d attempt%s, max_round_retries=%d), the last because "
                            "%s (Spark's error is chained below)"
                            % (what, attempt + 1, "" if attempt == 0 else "s",
                               self.t.max_round_retries, cause[1])) from e
                    raise
                log.warning("pyfront: %s failed (%s); running it again (%d of %d)", what,
                            (cause[1] if cause else str(e).splitlines()[0])[:300],
                            attempt + 1, self.t.max_round_retries)

    # ---- one epoch in one barrier job (collective mode) ----
    def run_epoch_collective(self, view, epoch, epochs, steps, layout):
        """The epoch's barrier job: the tasks train it among themselves from the state the
        driver broadcasts (kept here, so a retried stage starts the epoch again from it);
        rank 0 returns the weights, optimizer state and the epoch's sums.

        Once every task of an epoch kept its partition in its Python worker (the strategy's
        keep_partitions), the next epoch's job reads one placeholder row per task instead of
        the data; if the tasks then do not hold every partition, the epoch runs again from
        Spark's cache."""
        start = time.perf_counter()
        self.sc.setJobGroup(self.group, "pyfront %s: epoch %d/%d (one barrier job)"
                            % (self.t.strategy, epoch + 1, epochs), True)
        state_bc = self.sc.broadcast(self.round_state())
        driver = time.perf_counter() - start
        source = {"token": layout.token, "count": layout.count, "workers": self.workers,
                  "seed": layout.seed, "shuffle": layout.shuffle,
                  "rows": list(layout.rows_per_worker)}
        kept, missed = self.partitions_kept, False
        try:
            while True:
                source.update(kept=kept, keep=self.keep_bytes if epoch + 1 < epochs else 0)
                fn = functools.partial(train_epoch_collective, self.spec_bc, state_bc,
                                       {"epoch": epoch, "steps": steps, "frequency": self.K,
                                        "workers": self.workers, "input": dict(source)})
                if kept:
                    job = functools.partial(self.kept_job, fn)
                else:
                    frame = layout.round_slice(view, 0, max(layout.rows_per_worker))
                    job = functools.partial(self.data_job, frame, fn)
                rows = self.retried(job, "epoch %d (barrier job)" % (epoch + 1))
                if not (kept and len(rows) == 1 and rows[0]["kept"] == -1):
                    break
                kept, missed = False, True
                self.kept_misses += 1
                if self.kept_misses >= 2:
                    log.warning("pyfront: epoch %d: the tasks again did not find the partitions "
                                "they kept (Python workers not reused?); every later epoch "
                                "reads Spark's cache", epoch + 1)
                    self.keep_bytes = 0
                else:
                    log.info("pyfront: epoch %d: the tasks do not hold every partition (a "
                             "new Python worker or executor); reading the epoch from Spark's "
                             "cache", epoch + 1)
        finally:
            state_bc.destroy()
        spark_end = time.perf_counter()
        for r in sorted(rows, key=lambda r: r["worker"]):
            raise_task_error(r, "epoch %d" % (epoch + 1))
        if len(rows) != 1:
            raise errors.PyfrontError("internal: the barrier job returned %d result rows; "
                                      "rank 0 returns one" % len(rows))
        if kept:
            self.kept_misses = 0
        self.partitions_kept = rows[0]["kept"] == self.workers
        result = _partial(rows[0], self.weight_layout.dtype, averaging=True)
        if result["rows"]:
            self._apply_average(result["total"], result["iterations"])
            self._apply_exact(result["exact"])
        end = time.perf_counter()
        self.t.timings.append({
            "seconds": end - start, "driver_seconds": driver + end - spark_end,
            "rows": result["rows"], "task_seconds": result["seconds"],
            "input_seconds": result["input_seconds"], "state_seconds": result["state_seconds"],
            "comm_seconds": float(rows[0]["comm_seconds"] or 0.0),
            "wait_seconds": float(rows[0]["wait_seconds"] or 0.0), "steps": steps,
            "from_kept": kept, "kept_missed": missed})
        return result["rows"], result["loss_sum"], result["metrics"]

    def data_job(self, frame, fn):
        """The epoch's barrier job over its data: result rows as dicts."""
        return [r.asDict() for r in
                self.map_in_arrow(frame, fn, RESULT_SCHEMA, barrier=True).collect()]

    def kept_job(self, fn):
        """The epoch's barrier job over kept partitions, whose input is nothing: an RDD job
        (about 0.08 s less a job than a DataFrame's here: no planning, no Arrow on the way
        back) that must run in the Python workers the data jobs ran in. Spark keeps one pool
        of Python workers per environment, and Arrow UDFs add SPARK_SIMPLIFIED_TRACEBACK=1
        to theirs where simplified tracebacks are on (the default), so this job's functions
        carry the same variable. Result rows as dicts."""
        key = "SPARK_SIMPLIFIED_TRACEBACK"
        simplified = str(self.spark.conf.get(
            "spark.sql.execution.pyspark.udf.simplifiedTraceback.enabled", "true")).lower()
        env = self.sc.environment
        before = env.get(key)
        if simplified == "true":
            env[key] = "1"
        else:
            env.pop(key, None)
        try:
            rdd = self.sc.parallelize(range(self.workers), self.workers)
            if self.t.resource_profile is not None:
                rdd = rdd.withResources(self.t.resource_profile)
            return rdd.barrier().mapPartitions(functools.partial(kept_rows, fn)).collect()
        finally:
            if before is None:
                env.pop(key, None)
            else:
                env[key] = before

    def map_in_arrow(self, df, fn, schema, barrier=False):
        profile = self.t.resource_profile
        extra = {"barrier": True} if barrier else {}
        if profile is None:
            return df.mapInArrow(fn, schema, **extra)
        try:
            return df.mapInArrow(fn, schema, profile=profile, **extra)
        except TypeError:
            raise errors.PyfrontError("resource_profile needs Spark 4.0 or later (mapInArrow "
                                      "with a profile); this is Spark %s"
                                      % self.spark.version) from None

    def collect(self, df):
        """The workers' results combined into one partial (see _partial)."""
        mode = self.t.combine
        if mode == "auto":
            mode = "tree" if self.workers > 4 else "driver"
        to_partial = functools.partial(_partial, dtype=self.weight_layout.dtype,
                                       averaging=not self.sync)
        if mode == "driver":
            rows = sorted((r.asDict() for r in df.collect()), key=lambda r: r["worker"])
            total = None
            for r in rows:
                total = _merge(total, to_partial(r))
            return total
        # summed on the executors in a tree; one combined partial reaches the driver
        return df.rdd.treeAggregate(None, lambda acc, row: _merge(acc, to_partial(row)),
                                    _merge)

    def apply(self, combined):
        """Update the driver's model and optimizer from the combined results."""
        if combined is None or not combined["rows"]:
            return 0, 0.0, None
        rows = combined["rows"]
        if self.sync:
            self._apply_sync(combined["total"] / rows)
        else:
            self._apply_average(combined["total"] / rows, combined["iterations"])
        self._apply_exact(combined["exact"])
        return rows, combined["loss_sum"], combined["metrics"]

    def _apply_exact(self, data):
        """The first worker's integer state (its dropout generators went on from the
        driver's), as it is: the next round continues from it."""
        if data and self.exact_state.names:
            for name, arr in self.exact_state.unpack(data).items():
                self.tensors[name].numpy()[...] = arr

    def _apply_sync(self, mean):
        apply_mean_gradient(self.opt, self.grad_params, self.tensors, self.untrained, mean)

    def _apply_average(self, mean, iterations):
        w = self.weight_layout.size
        for name, arr in self.weight_layout.unpack(mean[:w]).items():
            self.tensors[name].numpy()[...] = arr
        if self.opt_layout is not None:
            avg = self.opt_layout.unpack(mean[w:w + self.opt_layout.size])
            for (key, arr), p in zip(avg.items(), self._opt_params()):
                self.opt.state_for(p)[key.rsplit("/", 1)[1]][...] = arr
        # every worker started from the same step count; the furthest sets the new count
        self.opt.iterations = int(iterations)

    # ---- evaluation ----
    def evaluate(self, val, epoch):
        state_bc = self.sc.broadcast(RoundState(self.weight_layout.pack(
            self.model.state_dict())))
        try:
            self.sc.setJobGroup(self.group, "pyfront: validation after epoch %d" % (epoch + 1),
                                True)
            fn = functools.partial(evaluate_partition, self.spec_bc, state_bc,
                                   max(256, self.t.batch_size))
            rows = [r.asDict() for r in self.map_in_arrow(val, fn, EVAL_SCHEMA).collect()]
        finally:
            state_bc.destroy()
        for r in rows:
            raise_task_error(r, "validation after epoch %d" % (epoch + 1))
        n = sum(r["rows"] for r in rows)
        tracked = make_metrics(self.spec.metric_specs, self.n_outputs)
        for r in rows:
            unpack_metric_states(tracked, np.frombuffer(r["metrics"], np.float64))
        out = {"val_loss": sum(r["loss_sum"] for r in rows) / max(n, 1)}
        out.update(("val_" + name, float(m.result())) for _, name, m in tracked)
        return out

    # ---- the loop ----
    def train(self, layout, epochs, val, resume_from, callbacks):
        B, K = self.t.batch_size, self.K
        steps = layout.steps_per_epoch(B)
        rounds = 1 if self.collective else -(-steps // K)   # collective: a round is an epoch
        user_model = self.t.model
        cbs = CallbackList([self.history] + callbacks, model=user_model, params={
            "epochs": epochs, "steps": rounds, "samples": layout.count,
            "verbose": self.t.verbose, "batch_size": B * self.workers, "optimizer": self.opt})
        object.__setattr__(user_model, "stop_training", False)
        cbs.on_train_begin()
        first_epoch, first_round = 0, 0
        if resume_from is not None:
            position = ckpt.load(resume_from, self.model, self.opt)
            extra = position.get("extra", {})
            self._check_resume(extra, layout)
            first_epoch, first_round = int(position["epoch"]), int(position["step"])
            self.history.restore(extra.get("history", {}))
            log.info("pyfront: resuming from %s at epoch %d, round %d", position["path"],
                     first_epoch + 1, first_round + 1)
        bar = None
        try:
            for epoch in range(first_epoch, epochs):
                t0 = time.perf_counter()
                cbs.on_epoch_begin(epoch)
                view = layout.epoch_view(epoch, reads=1 if self.collective else rounds)
                tracked = make_metrics(self.spec.metric_specs, self.n_outputs)
                seen, loss_sum = 0, 0.0
                bar = self._bar(epoch, epochs, rounds)
                start_round = first_round if epoch == first_epoch else 0
                if bar is not None and start_round:
                    bar.update(start_round)
                for rnd in range(start_round, rounds):
                    cbs.on_train_batch_begin(rnd)
                    if self.collective:
                        n, lsum, mvec = self.run_epoch_collective(view, epoch, epochs, steps,
                                                                  layout)
                    else:
                        n, lsum, mvec = self.run_round(view, epoch, rnd, rounds, epochs,
                                                       layout)
                    seen += n
                    loss_sum += lsum
                    if mvec is not None:
                        unpack_metric_states(tracked, mvec)
                    logs = {"loss": loss_sum / max(seen, 1)}
                    logs.update((name, float(m.result())) for _, name, m in tracked)
                    logs["samples_per_s"] = seen / (time.perf_counter() - t0)
                    self.history.rounds.append(dict(logs, epoch=epoch, round=rnd))
                    self._show_round(bar, epoch, epochs, rnd, rounds, logs)
                    cbs.on_train_batch_end(rnd, dict(logs, batch=rnd, size=n))
                    every = self.t.checkpoint_every
                    if every and (rnd + 1) % every == 0 and rnd + 1 < rounds:
                        self.save_checkpoint(epoch, rnd + 1, layout)
                    if user_model.stop_training:
                        break
                seconds = time.perf_counter() - t0
                logs = {"loss": loss_sum / max(seen, 1)}
                logs.update((name, float(m.result())) for _, name, m in tracked)
                if val is not None:
                    logs.update(self.evaluate(val, epoch))
                logs["lr"] = self.opt.lr
                logs["samples_per_s"] = seen / seconds if seconds > 0 else 0.0
                logs["seconds"] = seconds
                self._end_epoch(bar, epoch, epochs, logs)
                bar = None
                cbs.on_epoch_end(epoch, logs)
                if self.t.checkpoint_dir is not None:
                    self.save_checkpoint(epoch + 1, 0, layout)
                if user_model.stop_training:
                    break
        except KeyboardInterrupt:
            self.sc.cancelJobGroup(self.group)
            raise
        finally:
            if bar is not None:
                bar.close()
            cbs.on_train_end()
        return self.history

    def _check_resume(self, extra, layout):
        run = extra.get("run", {})
        mine = self.run_description(layout)
        diff = [k for k in mine if k in run and run[k] != mine[k]]
        if diff:
            raise errors.PyfrontError(
                "resume_from: the checkpoint was written by a run with different %s (%s vs "
                "now %s); resuming would not continue the same run"
                % (", ".join(diff), [run[k] for k in diff], [mine[k] for k in diff]))

    def run_description(self, layout):
        return {"num_workers": self.workers, "batch_size_per_worker": self.t.batch_size,
                "strategy": repr(self.t.strategy), "seed": self.t.seed,
                "shuffle": self.t.shuffle, "rows": layout.count}

    def save_checkpoint(self, epoch, next_round, layout):
        self.sc.setJobDescription("pyfront: checkpoint")
        path = ckpt.save(self.t.checkpoint_dir, self.model, self.opt, epoch, next_round,
                         {"history": self.history.state(),
                          "run": self.run_description(layout)},
                         keep=self.t.keep_checkpoints)
        log.info("pyfront: checkpoint %s", path)
        return path

    # ---- progress ----
    def _bar(self, epoch, epochs, rounds):
        if self.t.verbose != 1 or not sys.stderr.isatty():
            return None
        from tqdm import tqdm

        return tqdm(total=rounds, desc="epoch %d/%d" % (epoch + 1, epochs), unit="round",
                    leave=True, dynamic_ncols=True)

    def _show_round(self, bar, epoch, epochs, rnd, rounds, logs):
        if bar is not None:
            bar.set_postfix_str(_format(logs), refresh=False)
            bar.update(1)
        elif self.t.verbose >= 2:
            line = "epoch %d/%d round %d/%d  %s" % (epoch + 1, epochs, rnd + 1, rounds,
                                                    _format(logs))
            print(line, flush=True)

    def _end_epoch(self, bar, epoch, epochs, logs):
        if bar is not None:
            bar.set_postfix_str(_format(logs))
            bar.close()
        elif self.t.verbose:
            print("epoch %d/%d  %s  (%.1f s)" % (epoch + 1, epochs, _format(logs),
                                                 logs["seconds"]), flush=True)


_LOCAL = re.compile(r"local(?:\[\s*(\*|\d+)\s*(?:,\s*\d+\s*)?\])?")
_LOCAL_CLUSTER = re.compile(r"local-cluster\[\s*(\d+)\s*,\s*(\d+)\s*,\s*\d+\s*\]")


def _task_slots(sc):
    """(task slots, how they were counted): how many training tasks can run at once, or
    (None, ...) where Spark's public API cannot tell. Not sc.defaultParallelism alone: that
    is spark.default.parallelism where set (any number), and at least 2 on a cluster, while
    Spark runs a barrier stage only with a slot per task (per executor, its cores divided by
    spark.task.cpus)."""
    conf = sc.getConf()
    cpus = max(int(conf.get("spark.task.cpus", "1")), 1)
    explicit = conf.get("spark.default.parallelism", None) is not None
    master = sc.master
    m = _LOCAL.fullmatch(master)
    if m:
        if m.group(1) != "*":
            cores = int(m.group(1) or 1)
        elif not explicit:
            cores = sc.defaultParallelism     # local[*]: the JVM's processor count
        else:
            cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
                else (os.cpu_count() or 1)
        return cores // cpus, "%d cores / spark.task.cpus=%d" % (cores, cpus)
    m = _LOCAL_CLUSTER.fullmatch(master)
    if m:
        executors, cores = int(m.group(1)), int(m.group(2))
        return executors * (cores // cpus), "%d executors x %d cores / spark.task.cpus=%d" % (
            executors, cores, cpus)
    instances, cores = conf.get("spark.executor.instances", None), \
        conf.get("spark.executor.cores", None)
    if instances and cores:
        return int(instances) * (int(cores) // cpus), (
            "spark.executor.instances=%s x spark.executor.cores=%s / spark.task.cpus=%d"
            % (instances, cores, cpus))
    if not explicit:    # then Spark's default parallelism is the executors' cores in all
        return sc.defaultParallelism // cpus, "%d cores / spark.task.cpus=%d" % (
            sc.defaultParallelism, cpus)
    return None, "unknown: spark.default.parallelism is set, and so not the cores"


def _dynamic_allocation(sc):
    """Whether Spark runs this application with dynamic allocation, as Spark decides it: the
    setting is ignored with a local master (local, local[N]) unless testing it."""
    conf = sc.getConf()
    on = conf.get("spark.dynamicAllocation.enabled", "false").lower() == "true"
    local = sc.master == "local" or sc.master.startswith("local[")
    return on and (not local or conf.get("spark.dynamicAllocation.testing",
                                         "false").lower() == "true")


def _check_barrier_slots(sc, workers, strategy, slots, counted):
    """Barrier mode starts all of a stage's tasks at once: refuse, before any work, a cluster
    that cannot (Spark itself would retry its own check for minutes before failing)."""
    if _dynamic_allocation(sc):
        raise errors.PyfrontError(
            "%r runs each epoch as a barrier-mode Spark job, which Spark refuses with dynamic "
            "allocation on (spark.dynamicAllocation.enabled=true): turn it off for this "
            "application, or train with collective=False" % (strategy,))
    if slots is not None and slots < workers:
        raise errors.PyfrontError(
            "%r with num_workers=%d needs %d task slots free at once (barrier mode: one "
            "long-lived task per worker); this cluster has %d (%s). Lower num_workers, add "
            "executor cores, or train with collective=False"
            % (strategy, workers, workers, slots, counted))


_PY_ERROR = re.compile(r"^[ \t]*([A-Za-z_][\w.]*(?:Error|Exception)): (.*)$", re.M)


def _task_cause(exc):
    """(class name, message) of the Python exception a Spark task raised, from the failed
    job's text (the line after the task's traceback), or None."""
    text = str(exc)
    at = text.find("Traceback (most recent call last)")
    if at < 0:
        return None
    m = _PY_ERROR.search(text, at)
    if m is None:
        return None
    return m.group(1).rsplit(".", 1)[-1], m.group(2).strip()


def _is_spark_failure(exc):
    """A failed Spark job (worth running the round again), not a mistake in the call."""
    name = type(exc).__name__
    return name in ("Py4JJavaError", "Py4JError", "PythonException", "SparkRuntimeException",
                    "PySparkRuntimeError") or "SparkException" in str(exc)[:2000]


def _partial(row, dtype, averaging):
    """A worker's result row as numbers that add up: rows, loss and metric sums, the payload
    (float64), and for averaging the optimizer step count it reached (combined by max); or
    the pyfront error the task returned."""
    row = row.asDict() if hasattr(row, "asDict") else row
    if row.get("error"):
        return {"worker": row["worker"], "rows": 0, "error": row["error"]}
    payload = row["payload"]
    iterations = 0
    if averaging and payload:
        iterations = int(np.frombuffer(payload[-8:], np.float64)[0])
        payload = payload[:-8]
    return {"worker": row["worker"], "rows": int(row["rows"]), "steps": int(row["steps"]),
            "loss_sum": float(row["loss_sum"]), "exact": row.get("exact") or b"",
            "metrics": np.frombuffer(row["metrics"], np.float64).copy(),
            "total": np.frombuffer(payload, dtype).astype(np.float64) if payload else None,
            "iterations": iterations, "seconds": float(row["seconds"]),
            "input_seconds": float(row["input_seconds"]),
            "state_seconds": float(row["state_seconds"])}


def _merge(a, b):
    for part in (a, b):
        if part is not None and part.get("error"):      # one error stands for the round
            return part
    if a is None or (b is not None and not a["rows"]):
        return b
    if b is None or not b["rows"]:
        return a
    first = a if a["worker"] <= b["worker"] else b      # its integer state goes on
    return {"worker": first["worker"], "rows": a["rows"] + b["rows"], "exact": first["exact"],
            "steps": max(a["steps"], b["steps"]), "loss_sum": a["loss_sum"] + b["loss_sum"],
            "metrics": a["metrics"] + b["metrics"], "total": a["total"] + b["total"],
            "iterations": max(a["iterations"], b["iterations"]),
            "seconds": max(a["seconds"], b["seconds"]),
            "input_seconds": max(a["input_seconds"], b["input_seconds"]),
            "state_seconds": max(a["state_seconds"], b["state_seconds"])}
