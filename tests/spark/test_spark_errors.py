"""Bad data and pyfront errors on Spark: infinite features (and doubles beyond float32's
range, which become infinite in float32) and non-finite labels are refused on the driver
like NaN; a pyfront error raised in a task is not retried (it would only fail again) and
reaches the user as its own class with its own message on the first line."""
import os
import sys
import uuid

import numpy as np
import pytest

import pyfront as pf
from pyfront.train.metrics import Metric

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def compiled_mlp(loss="cross_entropy", metrics=(), outputs=3):
    pf.random.seed(0)
    model = pf.nn.Sequential([pf.nn.Dense(8, activation="relu"), pf.nn.Dense(outputs)])
    model(pf.tensor(np.zeros((1, 4), np.float32)))
    model.compile(optimizer=pf.optim.SGD(lr=0.1), loss=loss, metrics=list(metrics))
    return model


def frame(spark, bad_row=None, label_type="int", labels=None):
    rows = [([float(i % 5), 1.0, 2.0, 3.0], i % 3) for i in range(40)]
    if bad_row is not None:
        rows[17] = bad_row
    if labels is not None:
        rows = [(f, v) for (f, _), v in zip(rows, labels)]
    return spark.createDataFrame(rows, "features array<double>, label %s" % label_type)


@pytest.mark.parametrize("value", [float("inf"), -float("inf"), 1e39],
                         ids=["inf", "-inf", "beyond-float32"])
def test_infinite_features_are_refused_on_the_driver(spark, value):
    from pyfront.spark import SparkTrainer, evaluate

    model = compiled_mlp()
    df = frame(spark, ([0.0, value, 0.0, 0.0], 1))
    before = model.state_dict()["0.kernel"].copy()
    with pytest.raises(pf.PyfrontError) as info:
        SparkTrainer(model, num_workers=2, verbose=0).fit(df)
    assert str(info.value).startswith(
        "training data (features ['features'], label 'label'): 1 rows have infinite feature "
        "values (+-inf, or beyond float32's range")
    with pytest.raises(pf.PyfrontError, match="1 rows have infinite feature values"):
        evaluate(model, df)
    np.testing.assert_array_equal(model.state_dict()["0.kernel"], before)


def test_non_finite_regression_labels_are_refused_on_the_driver(spark):
    from pyfront.spark import SparkTrainer

    model = compiled_mlp(loss="mse", outputs=1)
    labels = [0.5] * 40
    labels[3], labels[9] = float("nan"), float("inf")
    with pytest.raises(pf.PyfrontError, match="2 rows have a NaN or infinite label"):
        SparkTrainer(model, num_workers=2, verbose=0).fit(
            frame(spark, label_type="double", labels=labels))


class RaisesNumericError(Metric):
    """Raises pf.NumericError in every task of partition 0, leaving one file per attempt."""

    name = "probe"

    def __init__(self, folder):
        self.folder = str(folder)
        super().__init__()

    def update(self, y_true, y_pred):
        from pyspark import TaskContext

        self.stats["total"] += 0.0
        self.stats["count"] += float(len(y_true))
        ctx = TaskContext.get()
        if ctx is not None and ctx.partitionId() == 0:
            open(os.path.join(self.folder, "attempt-%s" % uuid.uuid4().hex), "w").close()
            raise pf.NumericError("probe: the loss of batch 0 is nan (layer dense_1)")


def test_a_pyfront_error_in_a_task_is_raised_once_as_itself(spark, tmp_path):
    from pyspark import cloudpickle

    from pyfront.spark import SparkTrainer, evaluate

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # executors lack this module
    df = frame(spark)
    model = compiled_mlp()
    trainer = SparkTrainer(model, num_workers=2, verbose=0,
                           metrics=[RaisesNumericError(tmp_path / "fit")])
    (tmp_path / "fit").mkdir()
    with pytest.raises(pf.NumericError) as info:
        trainer.fit(df)
    lines = str(info.value).splitlines()
    assert lines[0] == "probe: the loss of batch 0 is nan (layer dense_1)"
    assert lines[1] == "(raised in a Spark task: epoch 1, round 1)"
    # local[2,2] would retry a failed task, and the trainer a failed round: neither happened
    assert len(os.listdir(tmp_path / "fit")) == 1

    (tmp_path / "evaluate").mkdir()
    with pytest.raises(pf.NumericError, match="^probe: the loss of batch 0 is nan"):
        evaluate(model, df, metrics=[RaisesNumericError(tmp_path / "evaluate")])
    assert len(os.listdir(tmp_path / "evaluate")) == 1
