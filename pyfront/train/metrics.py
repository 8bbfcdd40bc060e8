"""Metrics kept as sufficient statistics (sums and counts), so that batches, epochs and Spark
workers combine exactly: update(y_true, y_pred) adds a batch, result() reads the value,
state() / merge(state) move and combine the statistics, reset() clears them."""
import numpy as np

__all__ = ["Metric", "Mean", "Accuracy", "BinaryAccuracy", "TopKAccuracy", "MeanAbsoluteError",
           "MeanSquaredError", "RootMeanSquaredError", "ConfusionMatrix", "get", "fresh_metrics"]


def _np(x):
    return np.asarray(x.numpy() if hasattr(x, "numpy") else x)


class Metric:
    """Base: statistics live in self.stats ({name: float or ndarray}), all of them sums."""

    name = "metric"

    def __init__(self, name=None):
        if name is not None:
            self.name = name
        self.reset()

    def initial_stats(self):
        return {"total": 0.0, "count": 0.0}

    def reset(self):
        self.stats = self.initial_stats()

    def state(self):
        """A copy of the statistics (plain floats and arrays, ready to send elsewhere)."""
        return {k: (v.copy() if isinstance(v, np.ndarray) else float(v))
                for k, v in self.stats.items()}

    def merge(self, state):
        """Add another metric's statistics (from state()) into this one."""
        if set(state) != set(self.stats):
            raise ValueError("%s.merge: state has %s, expected %s"
                             % (type(self).__name__, sorted(state), sorted(self.stats)))
        for k, v in state.items():
            if isinstance(self.stats[k], np.ndarray):
                if np.shape(v) != self.stats[k].shape:
                    raise ValueError("%s.merge: %s has shape %s, expected %s"
                                     % (type(self).__name__, k, np.shape(v),
                                        self.stats[k].shape))
                self.stats[k] = self.stats[k] + np.asarray(v)
            else:
                self.stats[k] += float(v)
        return self

    def update(self, y_true, y_pred):
        raise NotImplementedError

    def result(self):
        return self.stats["total"] / self.stats["count"] if self.stats["count"] else float("nan")

    def __repr__(self):
        return "%s(%s)" % (type(self).__name__, self.name)


class Mean(Metric):
    """A weighted mean of values (the epoch loss: update(batch_mean, batch_size))."""

    name = "mean"

    def update(self, value, weight=1.0):
        self.stats["total"] += float(value) * float(weight)
        self.stats["count"] += float(weight)


def _class_predictions(y_true, y_pred):
    """(labels, predicted classes) for class scores (..., C) against integer labels (...) or
    one-hot targets (..., C)."""
    if y_true.shape == y_pred.shape:
        return y_true.argmax(-1), y_pred.argmax(-1)
    if y_true.shape != y_pred.shape[:-1]:
        raise ValueError("accuracy: scores of shape %s do not fit labels of shape %s"
                         % (y_pred.shape, y_true.shape))
    return y_true, y_pred.argmax(-1)


class Accuracy(Metric):
    """Fraction of correct predictions. Class scores (logits or probabilities, last axis = classes)
    against integer labels or one-hot targets; a single score per sample (shape (N,) or
    (N, 1)) is binary: positive when above threshold (0.5; use 0 for logits)."""

    name = "accuracy"

    def __init__(self, threshold=0.5, name=None):
        self.threshold = float(threshold)
        super().__init__(name)

    def update(self, y_true, y_pred):
        y_true, y_pred = _np(y_true), _np(y_pred)
        classes = y_pred.shape[-1] if y_pred.ndim else 1
        one_hot = y_pred.shape == y_true.shape and y_pred.ndim >= 2 and classes > 1
        if one_hot or (y_pred.ndim == y_true.ndim + 1 and classes > 1):
            labels, predicted = _class_predictions(y_true, y_pred)
            correct = labels.astype(np.int64) == predicted
        else:
            correct = _binary_correct(y_true, y_pred, self.threshold)
        self.stats["total"] += float(correct.sum())
        self.stats["count"] += float(correct.size)


def _binary_correct(y_true, y_pred, threshold):
    if y_true.size != y_pred.size:
        raise ValueError("binary accuracy: %d predictions for %d targets"
                         % (y_pred.size, y_true.size))
    return (y_pred.reshape(-1) > threshold) == (y_true.reshape(-1) > 0.5)


class BinaryAccuracy(Metric):
    """Fraction of samples whose score lies on the right side of threshold (targets 0/1)."""

    name = "binary_accuracy"

    def __init__(self, threshold=0.5, name=None):
        self.threshold = float(threshold)
        super().__init__(name)

    def update(self, y_true, y_pred):
        correct = _binary_correct(_np(y_true), _np(y_pred), self.threshold)
        self.stats["total"] += float(correct.sum())
        self.stats["count"] += float(correct.size)


class TopKAccuracy(Metric):
    """Fraction of samples whose label is among the k highest scores."""

    def __init__(self, k=5, name=None):
        if not isinstance(k, int) or k < 1:
            raise ValueError("TopKAccuracy: k must be a positive int, got %r" % (k,))
        self.k = k
        super().__init__(name or "top%d_accuracy" % k)

    def update(self, y_true, y_pred):
        y_true, y_pred = _np(y_true), _np(y_pred)
        if y_true.shape == y_pred.shape:
            y_true = y_true.argmax(-1)
        if y_pred.ndim != 2 or y_true.shape != y_pred.shape[:1]:
            raise ValueError("top-k accuracy needs scores (N, C) and labels (N,), got %s and %s"
                             % (y_pred.shape, y_true.shape))
        k = min(self.k, y_pred.shape[1])
        top = np.argpartition(-y_pred, k - 1, axis=1)[:, :k]
        hit = (top == y_true.astype(np.int64)[:, None]).any(axis=1)
        self.stats["total"] += float(hit.sum())
        self.stats["count"] += float(hit.size)


def _errors(y_true, y_pred):
    y_true, y_pred = _np(y_true).astype(np.float64), _np(y_pred).astype(np.float64)
    if y_true.shape != y_pred.shape:
        if y_true.size != y_pred.size:
            raise ValueError("predictions %s and targets %s differ in size"
                             % (y_pred.shape, y_true.shape))
        y_true = y_true.reshape(y_pred.shape)
    return y_pred - y_true


class MeanAbsoluteError(Metric):
    name = "mae"

    def update(self, y_true, y_pred):
        e = _errors(y_true, y_pred)
        self.stats["total"] += float(np.abs(e).sum())
        self.stats["count"] += float(e.size)


class MeanSquaredError(Metric):
    name = "mse"

    def update(self, y_true, y_pred):
        e = _errors(y_true, y_pred)
        self.stats["total"] += float((e * e).sum())
        self.stats["count"] += float(e.size)


class RootMeanSquaredError(MeanSquaredError):
    """sqrt of the mean squared error over all the data (not a mean of batch RMSEs)."""

    name = "rmse"

    def result(self):
        return float(np.sqrt(MeanSquaredError.result(self)))


class ConfusionMatrix(Metric):
    """Counts (num_classes, num_classes): row = true class, column = predicted class (sklearn's
    layout). Predictions: class scores (N, C) or class indices (N,)."""

    name = "confusion_matrix"

    def __init__(self, num_classes, name=None):
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError("ConfusionMatrix: num_classes must be an int >= 2, got %r"
                             % (num_classes,))
        self.num_classes = num_classes
        super().__init__(name)

    def initial_stats(self):
        return {"counts": np.zeros((self.num_classes, self.num_classes), np.int64)}

    def update(self, y_true, y_pred):
        y_true, y_pred = _np(y_true), _np(y_pred)
        if y_pred.ndim == y_true.ndim + 1:
            y_true, y_pred = _class_predictions(y_true, y_pred)
        elif y_true.shape == y_pred.shape and y_pred.ndim == 2 and y_pred.shape[1] > 1:
            y_true, y_pred = y_true.argmax(-1), y_pred.argmax(-1)
        t, p = y_true.reshape(-1).astype(np.int64), y_pred.reshape(-1).astype(np.int64)
        c = self.num_classes
        if t.size and (t.min() < 0 or t.max() >= c or p.min() < 0 or p.max() >= c):
            raise ValueError("confusion matrix: classes must lie in [0, %d)" % c)
        self.stats["counts"] += np.bincount(t * c + p, minlength=c * c).reshape(c, c)

    def merge(self, state):
        Metric.merge(self, state)
        self.stats["counts"] = self.stats["counts"].astype(np.int64)
        return self

    def result(self):
        return self.stats["counts"].copy()


_BY_NAME = {
    "accuracy": Accuracy, "acc": Accuracy,
    "binary_accuracy": BinaryAccuracy,
    "top_k_accuracy": TopKAccuracy, "top5_accuracy": TopKAccuracy,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "rmse": RootMeanSquaredError, "root_mean_squared_error": RootMeanSquaredError,
}


def get(metric):
    """A fresh Metric from a name ("accuracy", "top5_accuracy", "mae", "rmse", ...), a Metric
    (used as is), or a function f(y_true, y_pred) -> per-batch mean (averaged per sample)."""
    if isinstance(metric, Metric):
        return metric
    if isinstance(metric, str):
        key = metric.lower()
        if key.startswith("top") and key.endswith("_accuracy") and key[3:-9].isdigit():
            return TopKAccuracy(int(key[3:-9]), name=metric)
        try:
            return _BY_NAME[key](name=metric)
        except KeyError:
            raise ValueError("unknown metric %r; known: %s (and top<k>_accuracy)"
                             % (metric, ", ".join(sorted(_BY_NAME)))) from None
    if callable(metric):
        return _FunctionMetric(metric)
    raise TypeError("a metric is a name, a Metric or a function, got %r" % (metric,))


class _FunctionMetric(Metric):
    def __init__(self, fn):
        self.fn = fn
        super().__init__(getattr(fn, "__name__", "metric"))

    def update(self, y_true, y_pred):
        n = len(_np(y_true))
        self.stats["total"] += float(self.fn(_np(y_true), _np(y_pred))) * n
        self.stats["count"] += n


def fresh_metrics(specs, n_outputs=1):
    """[(output index, log name, fresh Metric)] for metrics as model.compile takes them: a flat
    list applies to every output; a list of lists or a dict {output index: [...]} chooses per
    output; with several outputs the names read out<i>_<metric>. Local fit and Spark workers
    track the same metrics this way, so their statistics add up."""
    import copy

    if not specs:
        return []
    if isinstance(specs, dict):
        unknown = [k for k in specs if k not in range(n_outputs)]
        if unknown:
            raise ValueError("metrics given for outputs %s; the model has outputs 0..%d"
                             % (unknown, n_outputs - 1))
        per_output = [list(specs.get(i, [])) for i in range(n_outputs)]
    elif all(isinstance(m, (list, tuple)) for m in specs):
        if len(specs) != n_outputs:
            raise ValueError("%d metric lists for %d outputs" % (len(specs), n_outputs))
        per_output = [list(m) for m in specs]
    else:
        per_output = [list(specs)] * n_outputs
    out = []
    for i, chosen in enumerate(per_output):
        for spec in chosen:
            m = copy.deepcopy(spec) if isinstance(spec, Metric) else get(spec)
            m.reset()
            out.append((i, m.name if n_outputs == 1 else "out%d_%s" % (i, m.name), m))
    return out
