"""Training data on Spark: input columns checked and converted on the driver before any long
work starts, rows dealt to workers in balanced partitions, and the order each worker reads its
rows in every epoch (reproducible outside Spark with epoch_order)."""
import uuid

import numpy as np

from .. import errors
from .worker import pack_features

__all__ = ["InputSpec", "DataStats", "as_dataframe", "convert", "profile", "WorkerLayout",
           "epoch_order", "worker_order", "spark_hash_int", "spark_hash_long_int"]

FEATURES, LABEL = "features", "label"
# columns the layout adds: global row index, worker, partitioning key, position in the epoch
G, W, KEY, P = "__g", "__w", "__key", "__p"


class InputSpec:
    """What the columns must become: per model input, features (a flat float32 array of
    feature_sizes[i] values, reshaped to that input's per-sample shape); per model output, a
    label (int64 class or float32 value(s)).

    features_col: a column (array, ML Vector, nested array) or a list of numeric columns; for a
    model with several inputs (inputs > 1), a list holding one of those per input. label_col:
    a column, or a list of columns, one per output. label_kind: "class" or "value", or a list
    of them per output."""

    def __init__(self, features_col, label_col=None, label_kind="class", num_classes=None,
                 feature_size=None, inputs=1):
        if isinstance(features_col, (list, tuple)) and not features_col:
            raise ValueError("features_col: an empty list of columns")
        if inputs > 1:
            if not isinstance(features_col, (list, tuple)) or len(features_col) != inputs:
                raise ValueError(
                    "the model has %d inputs: features_col is a list of %d entries, one per "
                    "input (each a column, or a list of numeric columns), got %r"
                    % (inputs, inputs, features_col))
            self.inputs = [list(c) if isinstance(c, (list, tuple)) else c for c in features_col]
        else:
            self.inputs = [list(features_col) if isinstance(features_col, (list, tuple))
                           else features_col]
        self.labels = [] if label_col is None else \
            list(label_col) if isinstance(label_col, (list, tuple)) else [label_col]
        kinds = label_kind if isinstance(label_kind, (list, tuple)) else \
            [label_kind] * max(1, len(self.labels))
        self.label_kinds = list(kinds)               # "class" | "value", per output
        self.num_classes = num_classes if isinstance(num_classes, list) else \
            [num_classes] * len(self.label_kinds)
        self.feature_sizes = feature_size if isinstance(feature_size, list) else \
            [feature_size] * len(self.inputs)

    @property
    def feature_names(self):
        """The converted data's feature columns: "features", or "features_<i>" per input."""
        return feature_names(len(self.inputs))

    @property
    def label_names(self):
        return [LABEL] if len(self.labels) == 1 else \
            ["%s_%d" % (LABEL, i) for i in range(len(self.labels))]

    def describe(self):
        cols = [c if isinstance(c, list) else [c] for c in self.inputs]
        shown = cols[0] if len(cols) == 1 else cols
        labels = self.labels[0] if len(self.labels) == 1 else self.labels
        return "features %s, label %r" % (shown, labels)


def feature_names(n):
    return [FEATURES] if n == 1 else ["%s_%d" % (FEATURES, i) for i in range(n)]


def _spark_types():
    from pyspark.sql import types as T

    return T


def _is_vector(dt):
    try:
        from pyspark.ml.linalg import VectorUDT
    except ImportError:
        return False
    return isinstance(dt, VectorUDT)


def _column(df, name, role):
    if not isinstance(name, str):
        raise TypeError("%s column must be a column name (str), got %r" % (role, name))
    fields = {f.name: f for f in df.schema.fields}
    if name not in fields:
        raise errors.PyfrontError("the DataFrame has no %s column %r; its columns: %s"
                                  % (role, name, ", ".join(fields) or "none"))
    return fields[name]


def features_expr(df, features_col):
    """A Spark column of array<float> for one input's features (a column, or a list of
    numeric columns), or a clear error on the driver."""
    import pyspark.sql.functions as F
    from pyspark.ml.functions import vector_to_array

    T = _spark_types()
    numeric = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType,
               T.DecimalType)
    if isinstance(features_col, list):
        for name in features_col:
            f = _column(df, name, "feature")
            if not isinstance(f.dataType, numeric):
                raise errors.DTypeError(
                    "feature column %r has type %s; several feature columns must each be "
                    "numeric (use one array or vector column otherwise)"
                    % (name, f.dataType.simpleString()))
        return F.array(*[F.col(n).cast("float") for n in features_col])
    f = _column(df, features_col, "features")
    dt, col = f.dataType, F.col(features_col)
    if _is_vector(dt):
        return vector_to_array(col, "float32")
    if isinstance(dt, T.ArrayType):
        inner = dt.elementType
        if isinstance(inner, T.ArrayType) and isinstance(inner.elementType, numeric):
            return F.flatten(col).cast("array<float>")
        if isinstance(inner, numeric):
            return col.cast("array<float>")
    if isinstance(dt, numeric):
        return F.array(col.cast("float"))
    raise errors.DTypeError(
        "features column %r has type %s; expected an array of numbers, an ML Vector, a "
        "nested array of numbers (an image), or a list of numeric columns"
        % (features_col, dt.simpleString()))


def _label_expr(df, label_col, label_kind):
    import pyspark.sql.functions as F

    T = _spark_types()
    f = _column(df, label_col, "label")
    dt, col = f.dataType, F.col(label_col)
    numeric = (T.ByteType, T.ShortType, T.IntegerType, T.LongType, T.FloatType, T.DoubleType,
               T.DecimalType, T.BooleanType)
    if isinstance(dt, numeric):
        return col.cast("double")
    if label_kind == "value" and (_is_vector(dt) or (
            isinstance(dt, T.ArrayType) and isinstance(dt.elementType, numeric))):
        from pyspark.ml.functions import vector_to_array

        return vector_to_array(col, "float32") if _is_vector(dt) else col.cast("array<float>")
    raise errors.DTypeError(
        "label column %r has type %s; expected a number%s"
        % (label_col, dt.simpleString(),
           "" if label_kind == "class" else " or an array/vector of numbers"))


def as_dataframe(data, spark=None):
    """A DataFrame for a DataFrame, or for an RDD of (features, label) pairs (features: a
    list, a numpy array or an ML Vector)."""
    from pyspark.rdd import RDD
    from pyspark.sql import DataFrame, SparkSession

    if isinstance(data, DataFrame):
        return data
    if not isinstance(data, RDD):
        raise TypeError("data must be a Spark DataFrame or an RDD of (features, label) pairs, "
                        "got %s" % type(data).__name__)
    spark = spark or SparkSession.builder.getOrCreate()
    T = _spark_types()
    schema = T.StructType([T.StructField(FEATURES, T.ArrayType(T.FloatType()), True),
                           T.StructField(LABEL, T.DoubleType(), True)])
    return spark.createDataFrame(data.map(_pair_row), schema)


def _pair_row(pair):
    try:
        features, label = pair
    except (TypeError, ValueError):
        raise ValueError("an RDD for training holds (features, label) pairs, got %r"
                         % (pair,)) from None
    if hasattr(features, "toArray"):
        features = features.toArray()
    values = np.asarray(features, dtype=np.float32).reshape(-1)
    return values.tolist(), None if label is None else float(label)


def convert(df, spec):
    """df with the columns the model takes: features (array<float>), or features_<i> per
    input, and label (double, or array<float>), or label_<i> per output."""
    cols = [features_expr(df, c).alias(n) for c, n in zip(spec.inputs, spec.feature_names)]
    cols += [_label_expr(df, c, k).alias(n)
             for c, k, n in zip(spec.labels, spec.label_kinds, spec.label_names)]
    return df.select(*cols)


class DataStats:
    """What one aggregation job learns about converted data: rows per partition, and per
    feature column (feature sizes, nulls, non-finite values) and label column (nulls, range)
    what check() looks at."""

    def __init__(self, rows, feature_cols, label_cols):
        self.partition_counts = {int(r["pid"]): int(r["n"]) for r in rows}
        self.count = sum(self.partition_counts.values())

        def pick(name, fn):
            vals = [r[name] for r in rows if r.get(name) is not None]
            return fn(vals) if vals else None

        def per_column(col, keys):
            return {k: pick("%s/%s" % (col, k), fn) for k, fn in keys}
        self.features = {c: per_column(c, [("min_size", min), ("max_size", max),
                                           ("null_features", sum), ("null_values", sum),
                                           ("infinite_values", sum)])
                         for c in feature_cols}
        self.labels = {c: per_column(c, [("null_labels", sum), ("min_label", min),
                                         ("max_label", max), ("fractional_labels", sum),
                                         ("nonfinite_labels", sum), ("min_label_size", min),
                                         ("max_label_size", max)])
                       for c in label_cols}
        first = self.features.get(FEATURES) or next(iter(self.features.values()), {})
        self.min_size = first.get("min_size")


def profile(converted, with_label=True):
    """One Spark job: per-partition counts and everything check() looks at, for every
    features* and label* column of converted data."""
    import pyspark.sql.functions as F

    feature_cols = [c for c in converted.columns if c.startswith(FEATURES)]
    label_cols = [c for c in converted.columns if c.startswith(LABEL)] if with_label else []
    # float32's largest value: a double beyond it became +-inf when cast to float
    inf = F.lit(float("inf"))
    aggs = [F.count(F.lit(1)).alias("n")]
    for c in feature_cols:
        feats = F.col(c)
        aggs += [F.min(F.size(feats)).alias(c + "/min_size"),
                 F.max(F.size(feats)).alias(c + "/max_size"),
                 F.sum(F.when(feats.isNull(), 1).otherwise(0)).alias(c + "/null_features"),
                 F.sum(F.when(F.exists(feats, lambda v: v.isNull() | F.isnan(v)), 1)
                       .otherwise(0)).alias(c + "/null_values"),
                 F.sum(F.when(F.exists(feats, lambda v: F.abs(v) == inf), 1)
                       .otherwise(0)).alias(c + "/infinite_values")]
    for c in label_cols:
        lab = F.col(c)
        aggs.append(F.sum(F.when(lab.isNull(), 1).otherwise(0)).alias(c + "/null_labels"))
        if converted.schema[c].dataType.typeName() == "array":
            aggs += [F.min(F.size(lab)).alias(c + "/min_label_size"),
                     F.max(F.size(lab)).alias(c + "/max_label_size"),
                     F.sum(F.when(F.exists(lab, lambda v: F.isnan(v) | (F.abs(v) == inf)), 1)
                           .otherwise(0)).alias(c + "/nonfinite_labels")]
        else:
            finite = ~F.isnan(lab) & (F.abs(lab) != inf)
            aggs += [F.min(F.when(finite, lab)).alias(c + "/min_label"),
                     F.max(F.when(finite, lab)).alias(c + "/max_label"),
                     F.sum(F.when(~finite, 1).otherwise(0)).alias(c + "/nonfinite_labels"),
                     F.sum(F.when(finite & (lab != F.floor(lab)), 1).otherwise(0))
                     .alias(c + "/fractional_labels")]
    rows = converted.groupBy(F.spark_partition_id().alias("pid")).agg(*aggs).collect()
    return DataStats([r.asDict() for r in rows], feature_cols, label_cols)


def check(stats, spec, what="training data"):
    """Raise a clear error for data that training would choke on later."""
    where = "%s (%s)" % (what, spec.describe())
    if stats.count == 0:
        raise errors.PyfrontError("%s is empty: the DataFrame has no rows" % where)
    for i, name in enumerate(spec.feature_names):
        st = stats.features[name]
        on = "" if len(spec.feature_names) == 1 else " of input %d (%r)" % (i, spec.inputs[i])
        if st["null_features"]:
            raise errors.PyfrontError("%s: %d rows have a null features value%s"
                                      % (where, st["null_features"], on))
        if st["null_values"]:
            raise errors.PyfrontError("%s: %d rows have null or NaN feature values%s"
                                      % (where, st["null_values"], on))
        if st["infinite_values"]:
            raise errors.PyfrontError(
                "%s: %d rows have infinite feature values%s (+-inf, or beyond float32's range "
                "of +-3.4e38, which becomes inf in float32)" % (where, st["infinite_values"], on))
        if st["min_size"] != st["max_size"]:
            raise errors.ShapeError(
                "%s: ragged features%s: rows have between %d and %d values; every row must "
                "have the same number" % (where, on, st["min_size"], st["max_size"]))
        size = spec.feature_sizes[i]
        if size is not None and st["min_size"] != size:
            raise errors.ShapeError("%s: rows have %d feature values%s but the model takes %d"
                                    % (where, st["min_size"], on, size))
    for i, name in enumerate(spec.label_names):
        st = stats.labels[name]
        on = "" if len(spec.label_names) == 1 else " %r (output %d)" % (spec.labels[i], i)
        if st["null_labels"]:
            raise errors.PyfrontError("%s: %d rows have a null label%s"
                                      % (where, st["null_labels"], on))
        if st["nonfinite_labels"]:
            raise errors.PyfrontError("%s: %d rows have a NaN or infinite label%s"
                                      % (where, st["nonfinite_labels"], on))
        if st["min_label_size"] is not None and st["min_label_size"] != st["max_label_size"]:
            raise errors.ShapeError("%s: ragged labels%s: between %d and %d values per row"
                                    % (where, on, st["min_label_size"], st["max_label_size"]))
        if spec.label_kinds[i] == "class":
            if st["fractional_labels"]:
                raise errors.PyfrontError(
                    "%s: %d labels%s are not whole numbers; class labels are integers 0..C-1"
                    % (where, st["fractional_labels"], on))
            lo, hi = st["min_label"], st["max_label"]
            c = spec.num_classes[i]
            if lo < 0 or (c is not None and hi >= c):
                raise errors.PyfrontError(
                    "%s: labels%s range over [%d, %d] but the model has %s classes, so labels "
                    "must lie in [0, %s]" % (where, on, lo, hi, c if c is not None else "C",
                                             c - 1 if c is not None else "C-1"))


# ---------------------------------------------------------------------------------------------
# Spark's Murmur3 (Murmur3Hash with seed 42, the hash of HashPartitioning and F.hash) in numpy,
# so the driver can choose partitioning keys and tests can reproduce the epoch order

_M32 = np.uint64(0xFFFFFFFF)


def _rotl(x, r):
    return ((x << np.uint64(r)) | (x >> np.uint64(32 - r))) & _M32


def _mix_k1(k):
    k = (k * np.uint64(0xcc9e2d51)) & _M32
    k = _rotl(k, 15)
    return (k * np.uint64(0x1b873593)) & _M32


def _mix_h1(h, k):
    h = h ^ k
    h = _rotl(h, 13)
    return (h * np.uint64(5) + np.uint64(0xe6546b64)) & _M32


def _fmix(h, length):
    h = h ^ np.uint64(length)
    h = h ^ (h >> np.uint64(16))
    h = (h * np.uint64(0x85ebca6b)) & _M32
    h = h ^ (h >> np.uint64(13))
    h = (h * np.uint64(0xc2b2ae35)) & _M32
    return h ^ (h >> np.uint64(16))


def _u32(values):
    return np.asarray(values, dtype=np.int64).astype(np.uint64) & _M32


def _signed(h):
    return h.astype(np.uint32).view(np.int32).astype(np.int64)


def spark_hash_int(values, seed=42):
    """Spark's hash() of int values (Murmur3_x86_32.hashInt), as signed ints."""
    h = _mix_h1(_u32(np.broadcast_to(seed, np.shape(values))), _mix_k1(_u32(values)))
    return _signed(_fmix(h, 4))


def spark_hash_long_int(longs, ints, seed=42):
    """Spark's hash(long_col, int_col): the long hashed with seed 42, the int with that."""
    v = np.asarray(longs, dtype=np.int64)
    low, high = _u32(v), _u32(v >> np.int64(32))
    h = _mix_h1(_u32(np.broadcast_to(seed, v.shape)), _mix_k1(low))
    h = _fmix(_mix_h1(h, _mix_k1(high)), 8)
    h2 = _mix_h1(h, _mix_k1(_u32(np.broadcast_to(ints, v.shape))))
    return _signed(_fmix(h2, 4))


def partition_keys(num_workers):
    """For each worker w, an int key whose Spark hash partition among num_workers is w, so
    repartition(num_workers, key) puts exactly worker w's rows in partition w."""
    keys, found = [None] * num_workers, 0
    candidates = np.arange(0, 64 * num_workers + 1024, dtype=np.int64)
    parts = np.mod(spark_hash_int(candidates), num_workers)
    for k, p in zip(candidates, parts):
        if keys[p] is None:
            keys[p] = int(k)
            found += 1
            if found == num_workers:
                return keys
    raise RuntimeError("no partitioning key found for some of %d workers" % num_workers)


def epoch_seed(seed, epoch):
    return int((int(seed) * 1000003 + int(epoch) * 7919 + 17) % 2147483647)


def worker_order(n, num_workers, worker, seed, epoch, shuffle=True):
    """position -> global row index: the order in which SparkTrainer's worker `worker` reads
    its rows (global index = row number in the input's partition order; the worker holds
    those equal to it mod num_workers) in an epoch. The same order the executors' sort gives
    (WorkerLayout.epoch_view), so a task can reproduce it from rows it kept."""
    rows = np.arange(worker, n, num_workers, dtype=np.int64)
    if shuffle:
        h = spark_hash_long_int(rows, epoch_seed(seed, epoch))
        rows = rows[np.lexsort((rows, h))]
    return rows


def epoch_order(n, num_workers, seed, epoch, shuffle=True):
    """[worker][position] -> global row index for every worker (see worker_order)."""
    return [worker_order(n, num_workers, w, seed, epoch, shuffle) for w in range(num_workers)]


# ---------------------------------------------------------------------------------------------

class WorkerLayout:
    """Converted data dealt to num_workers balanced partitions: partition w holds the rows with
    global index g = w (mod num_workers), sorted; kept in Spark's cache (or in Parquet with
    export_path). epoch_view(e) orders each partition for epoch e and caches that order, so a
    round reads only its slice (cached column batches are skipped by their statistics)."""

    def __init__(self, converted, stats, num_workers, seed=0, shuffle=True, export_path=None):
        import pyspark.sql.functions as F
        from pyspark import StorageLevel

        self.spark = converted.sparkSession
        self.num_workers = int(num_workers)
        self.seed, self.shuffle = int(seed), bool(shuffle)
        self.count = stats.count
        # names this dealing of the data: the collective mode's tasks keep their partition
        # under it between epochs (worker.InputCache)
        self.token = uuid.uuid4().hex
        w = self.num_workers
        self.rows_per_worker = [len(range(i, self.count, w)) for i in range(w)]
        offsets, total = [], 0
        for pid in sorted(stats.partition_counts):
            offsets.append((pid, total))
            total += stats.partition_counts[pid]
        offsets_df = self.spark.createDataFrame(offsets, "__pid int, __offset long")
        mid = F.monotonically_increasing_id()
        keys = partition_keys(w)
        indexed = (converted
                   .withColumn("__mid", mid)
                   .withColumn("__pid", F.spark_partition_id())
                   .join(F.broadcast(offsets_df), "__pid")
                   .withColumn(G, F.col("__offset") +
                               F.col("__mid").bitwiseAND(F.lit((1 << 33) - 1)))
                   .withColumn(W, (F.col(G) % w).cast("int"))
                   .withColumn(KEY, F.element_at(F.array(*[F.lit(k) for k in keys]),
                                                 F.col(W) + 1))
                   .select(G, W, KEY, *[c for c in converted.columns]))
        packed = indexed.mapInArrow(pack_features, self._packed_schema(indexed))
        prepared = packed.repartition(w, KEY).sortWithinPartitions(G)
        self._level = StorageLevel.MEMORY_AND_DISK
        self.export_path = export_path
        if export_path is not None:
            prepared.write.mode("overwrite").parquet(export_path)
            base = self.spark.read.parquet(export_path).repartition(w, KEY)
            self.prepared = base.sortWithinPartitions(G)
            self._cached = []
        else:
            self.prepared = prepared.persist(self._level)
            self.prepared.count()
            self._cached = [self.prepared]
        self._view = None
        self._view_epoch = None

    @staticmethod
    def _packed_schema(indexed):
        from pyspark.sql import types as T

        fields = [T.StructField(f.name, T.BinaryType(), False)
                  if f.name.startswith(FEATURES) else f for f in indexed.schema.fields]
        return T.StructType(fields)

    def steps_per_epoch(self, batch_size):
        return -(-max(self.rows_per_worker) // batch_size)

    def epoch_view(self, epoch, reads=3):
        """The data in this epoch's order, with each row's position __p in its worker's order.

        reads: how many round jobs will read it. A view read by more than two rounds is cached
        (one job, one copy of the data); one read by fewer is sorted inside those rounds."""
        import pyspark.sql.functions as F

        key = epoch if self.shuffle else 0
        if self._view_epoch == key:
            return self._view
        if self.shuffle:
            # positions are row numbers after the sort: monotonically_increasing_id's low 33
            # bits count rows within the partition
            view = (self.prepared
                    .sortWithinPartitions(
                        F.hash(F.col(G), F.lit(epoch_seed(self.seed, epoch)).cast("int")),
                        F.col(G))
                    .withColumn(P, F.monotonically_increasing_id()
                                .bitwiseAND(F.lit((1 << 33) - 1))))
        else:
            view = self.prepared.withColumn(P, F.floor(F.col(G) / self.num_workers))
        if (self.shuffle or self.export_path is not None) and reads > 2:
            view = view.persist(self._level)
            view.count()
        old = self._view
        self._view, self._view_epoch = view, key
        if old is not None and old is not self.prepared and old.is_cached:
            old.unpersist()
        return view

    def round_slice(self, view, lo, hi):
        """Rows at positions [lo, hi) of every worker's order: worker, features, label and the
        position (which also keeps the epoch's sort in the plan)."""
        import pyspark.sql.functions as F

        cols = [W] + [c for c in view.columns if c.startswith((FEATURES, LABEL))] + \
            ([P] if P in view.columns else [])
        if lo == 0 and hi >= max(self.rows_per_worker):
            return view.select(*cols)
        if self.shuffle or self.export_path is not None:
            cond = (F.col(P) >= lo) & (F.col(P) < hi)
        else:
            # the same rows, but on a stored column so that cached batches can be skipped
            cond = (F.col(G) >= lo * self.num_workers) & (F.col(G) < hi * self.num_workers)
        return view.where(cond).select(*cols)

    def release(self):
        for df in self._cached + ([self._view] if self._view is not None else []):
            try:
                df.unpersist()
            except Exception:   # the session may be gone already
                pass
        self._cached, self._view = [], None
