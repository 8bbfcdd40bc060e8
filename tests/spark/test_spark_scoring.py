"""Scoring at scale: distributed predict equals the local model.predict row for row, evaluate
equals model.evaluate, and the Spark ML stages fit, transform, save and load in a Pipeline."""
import numpy as np
import pytest

import pyfront as pf

from spark_support import to_df

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


@pytest.fixture(scope="module")
def trained(digits):
    x_train, x_test, y_train, y_test = digits
    pf.random.seed(4)
    model = pf.nn.Sequential([pf.nn.Dense(32, activation="relu"), pf.nn.Dense(10)])
    model.compile(optimizer=pf.optim.Adam(lr=3e-3), loss="cross_entropy",
                  metrics=["accuracy", "top3_accuracy"])
    model.fit(x_train, y_train, epochs=3, batch_size=64, verbose=0, seed=0)
    return model


def test_predict_equals_local_predict_row_for_row(spark, digits, trained):
    from pyfront.spark import predict

    _, x, _, y = digits
    df = spark.createDataFrame([(i, r.tolist()) for i, r in enumerate(x)], ["id", "pixels"]) \
        .repartition(3)
    scored = predict(trained, df, input_col="pixels", output_col="out", batch_size=50)
    rows = sorted(scored.collect(), key=lambda r: r["id"])
    assert scored.columns == ["id", "pixels", "out"]
    got = np.array([r["out"] for r in rows], np.float32)
    np.testing.assert_allclose(got, trained.predict(x), rtol=1e-5, atol=1e-6)
    classes = predict(trained, df, input_col="pixels", output_col="cls", output="class")
    by_id = {r["id"]: r["cls"] for r in classes.collect()}
    np.testing.assert_array_equal([by_id[i] for i in range(len(x))],
                                  trained.predict(x).argmax(1).astype(np.float64))


def test_predict_from_numeric_columns_and_errors(spark, digits, trained):
    from pyfront.spark import predict

    _, x, _, _ = digits
    names = ["p%d" % i for i in range(64)]
    df = spark.createDataFrame([tuple(float(v) for v in r) for r in x[:40]], names)
    got = np.array([r["y"] for r in predict(trained, df, input_cols=names, output_col="y")
                    .collect()], np.float32)
    np.testing.assert_allclose(got, trained.predict(x[:40]), rtol=1e-5, atol=1e-6)
    with pytest.raises(pf.PyfrontError, match="no features column 'nope'"):
        predict(trained, df, input_col="nope")
    with pytest.raises(pf.PyfrontError, match="has a column 'p3' already"):
        predict(trained, df, input_cols=names, output_col="p3")
    short = spark.createDataFrame([(r[:10].tolist(),) for r in x[:4]], ["f"])
    with pytest.raises(Exception, match="10 feature values but the model takes 64"):
        predict(trained, short, input_col="f").collect()


def test_evaluate_combines_statistics_like_the_local_evaluate(spark, digits, trained):
    from pyfront.spark import evaluate

    _, x, _, y = digits
    result = evaluate(trained, to_df(spark, x, y).repartition(3), batch_size=40)
    loss, acc, top3 = trained.evaluate(x, y)
    assert result["loss"] == pytest.approx(loss, rel=1e-5)
    assert result["accuracy"] == pytest.approx(acc, abs=1e-12)
    assert result["top3_accuracy"] == pytest.approx(top3, abs=1e-12)
    # explicit metrics; labels are checked like training data
    assert evaluate(trained, to_df(spark, x, y), metrics=["accuracy"],
                    loss="cross_entropy")["accuracy"] == pytest.approx(acc, abs=1e-12)
    with pytest.raises(pf.PyfrontError, match="labels range over"):
        evaluate(trained, to_df(spark, x[:5], y[:5] + 10))


def test_a_pipeline_with_the_estimator_fits_saves_loads_and_transforms_the_same(
        spark, digits, tmp_path):
    from pyspark.ml import Pipeline, PipelineModel
    from pyspark.ml.feature import StandardScaler, VectorAssembler

    from pyfront.spark.ml import PyfrontEstimator, PyfrontModel

    x_train, x_test, y_train, y_test = digits
    names = ["p%d" % i for i in range(64)]
    schema = ", ".join("%s double" % n for n in names) + ", digit long"
    make = lambda x, y: spark.createDataFrame(  # noqa: E731
        [tuple(float(v) for v in r) + (int(t),) for r, t in zip(x, y)], schema)
    train_df, test_df = make(x_train, y_train), make(x_test, y_test)
    net = pf.nn.Sequential([pf.nn.Dense(64, activation="relu"), pf.nn.Dense(10)])
    estimator = PyfrontEstimator(model=net, featuresCol="scaled", labelCol="digit",
                                 optimizer="adam", learningRate=3e-3, epochs=4, batchSize=32,
                                 numWorkers=2, strategy="average", averagingFrequency=4,
                                 metrics=["accuracy"], seed=1)
    pipeline = Pipeline(stages=[VectorAssembler(inputCols=names, outputCol="pixels"),
                                StandardScaler(inputCol="pixels", outputCol="scaled"),
                                estimator])
    fitted = pipeline.fit(train_df)
    stage = fitted.stages[-1]
    assert isinstance(stage, PyfrontModel) and len(stage.history["loss"]) == 4
    scored = fitted.transform(test_df).select("digit", "prediction", "rawPrediction") \
        .collect()
    accuracy = np.mean([r["prediction"] == r["digit"] for r in scored])
    assert accuracy >= 0.9
    assert all(r["prediction"] == float(np.argmax(r["rawPrediction"].toArray()))
               for r in scored)

    fitted.write().overwrite().save(str(tmp_path / "pipeline"))
    again = PipelineModel.load(str(tmp_path / "pipeline"))
    rescored = again.transform(test_df).select("digit", "prediction", "rawPrediction") \
        .collect()
    assert [r["prediction"] for r in rescored] == [r["prediction"] for r in scored]
    np.testing.assert_array_equal([r["rawPrediction"].toArray() for r in rescored],
                                  [r["rawPrediction"].toArray() for r in scored])
    assert again.stages[-1].getFeaturesCol() == "scaled"
    # the network is stored in pyfront's safe format
    blob = spark.read.parquet(str(tmp_path / "pipeline" / "stages" / ("2_" + stage.uid) /
                                  "data")).first()["model"]
    header_len = int.from_bytes(bytes(blob[:8]), "little")
    assert b'"pyfront.model"' in bytes(blob[8:8 + header_len])

    # the estimator itself persists (its network as JSON) and trains again the same way
    estimator.write().overwrite().save(str(tmp_path / "estimator"))
    loaded = PyfrontEstimator.load(str(tmp_path / "estimator"))
    assert loaded.getOrDefault("modelConfig") == estimator.getOrDefault("modelConfig")
    assert loaded.getOrDefault("learningRate") == pytest.approx(3e-3)
