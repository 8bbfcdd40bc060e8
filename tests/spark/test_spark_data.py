"""Input checks on the driver: a missing column, ragged feature arrays, labels out of range, an
empty DataFrame and the like fail with a clear error before any training round runs; every
accepted input form (array, ML Vector, numeric columns, nested arrays) trains the same."""
import numpy as np
import pytest

import pyfront as pf

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def trainer_for(**kwargs):
    from pyfront.spark import SparkTrainer, SyncSGD

    pf.random.seed(0)
    model = pf.nn.Sequential([pf.nn.Dense(8, activation="relu"), pf.nn.Dense(3)])
    model.compile(optimizer=pf.optim.SGD(lr=0.1), loss="cross_entropy")
    return SparkTrainer(model, SyncSGD(), num_workers=2, batch_size_per_worker=4, verbose=0,
                        **kwargs)


def rows(n=12, size=4, classes=3):
    rng = np.random.default_rng(0)
    return [(rng.random(size).tolist(), int(i % classes)) for i in range(n)]


def assert_fails_before_training(trainer, df, match, error=pf.PyfrontError, **fit_kwargs):
    with pytest.raises(error, match=match):
        trainer.fit(df, epochs=1, **fit_kwargs)
    assert trainer.timings == [], "a training round ran before the input was rejected"


def test_missing_columns_name_the_column_and_the_columns_there(spark):
    df = spark.createDataFrame(rows(), ["x", "label"])
    assert_fails_before_training(trainer_for(), df, r"no features column 'features'.*x, label")
    df = spark.createDataFrame(rows(), ["features", "y"])
    assert_fails_before_training(trainer_for(), df, r"no label column 'label'")


def test_ragged_feature_arrays(spark):
    data = rows()
    data[5] = ([0.5, 0.5, 0.5], 1)
    df = spark.createDataFrame(data, ["features", "label"])
    assert_fails_before_training(trainer_for(), df, r"ragged features.*between 3 and 4",
                                 pf.ShapeError)


def test_labels_out_of_range_name_the_range_and_the_classes(spark):
    data = rows()
    data[2] = (data[2][0], 7)
    df = spark.createDataFrame(data, ["features", "label"])
    assert_fails_before_training(trainer_for(), df, r"labels range over \[0, 7\].*3 classes")
    data[2] = (data[2][0], -1)
    df = spark.createDataFrame(data, ["features", "label"])
    assert_fails_before_training(trainer_for(), df, r"\[-1, 2\]")
    df = spark.createDataFrame([(f, float(y) + 0.5) for f, y in rows()], ["features", "label"])
    assert_fails_before_training(trainer_for(), df, r"not whole numbers")


def test_an_empty_dataframe(spark):
    df = spark.createDataFrame([], "features array<float>, label long")
    assert_fails_before_training(trainer_for(), df, r"empty")


def test_nulls_wrong_types_and_a_model_of_another_width(spark):
    df = spark.createDataFrame(rows() + [(None, 1)], "features array<double>, label long")
    assert_fails_before_training(trainer_for(), df, r"null features")
    df = spark.createDataFrame([("a", 1)], ["features", "label"])
    assert_fails_before_training(trainer_for(), df, r"type string", pf.DTypeError)
    df = spark.createDataFrame(rows(), ["features", "label"])
    assert_fails_before_training(trainer_for(input_shape=(5,)), df,
                                 r"4 feature values but the model takes 5", pf.ShapeError)
    bad_val = spark.createDataFrame(rows(size=2), ["features", "label"])
    assert_fails_before_training(trainer_for(), df, r"validation data.*4", pf.ShapeError,
                                 validation_data=bad_val)


def test_every_input_form_trains_to_the_same_weights(spark):
    """An array column, an ML Vector column (from VectorAssembler), numeric columns, and an
    image as nested arrays: the same rows, the same weights after training."""
    from pyspark.ml.feature import VectorAssembler

    data = rows(16)
    cols = spark.createDataFrame([tuple(f) + (y,) for f, y in data], ["a", "b", "c", "d", "y"])
    forms = {
        "array": (spark.createDataFrame(data, ["features", "label"]), "features", "label"),
        "vector": (VectorAssembler(inputCols=list("abcd"), outputCol="v").transform(cols),
                   "v", "y"),
        "columns": (cols, list("abcd"), "y"),
        "nested": (spark.createDataFrame([([f[:2], f[2:]], y) for f, y in data],
                                         ["img", "label"]), "img", "label"),
    }
    weights = {}
    for name, (df, features, label) in forms.items():
        trainer = trainer_for()
        trainer.fit(df, epochs=1, features_col=features, label_col=label)
        weights[name] = trainer.model.state_dict()
    for name in forms:
        for k, v in weights["array"].items():
            np.testing.assert_allclose(weights[name][k], v, rtol=1e-6, atol=1e-7,
                                       err_msg="%s %s" % (name, k))
