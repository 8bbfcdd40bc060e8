"""SparkTrainer on local[2,2]: SyncSGD equals single-machine training on the same global batches,
ParameterAveraging equals its definition (K local steps per worker, then weighted averages of
weights and optimizer state), the issue's API as written, and convergence on the digits."""
import os

import numpy as np
import pytest

import pyfront as pf

from spark_support import to_df

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def mlp(seed, x):
    pf.random.seed(seed)
    model = pf.nn.Sequential([pf.nn.Dense(32, activation="relu"), pf.nn.Dense(10)])
    model(pf.tensor(x[:1]))
    return model


def global_batches(n, workers, batch, seed, epoch, shuffle=True):
    """Row indices of each global batch, as SparkTrainer's workers read them."""
    from pyfront.spark.data import epoch_order

    order = epoch_order(n, workers, seed, epoch, shuffle)
    steps = -(-max(len(o) for o in order) // batch)
    return [np.concatenate([o[s * batch:(s + 1) * batch] for o in order])
            for s in range(steps)]


def assert_same_weights(a, b, atol=2e-6, rtol=1e-5):
    sa, sb = a.state_dict(), b.state_dict()
    assert list(sa) == list(sb)
    for k in sa:
        np.testing.assert_allclose(sa[k], sb[k], atol=atol, rtol=rtol, err_msg=k)


def test_epoch_order_reproduces_spark_hash(spark):
    import pyspark.sql.functions as F

    from pyfront.spark.data import partition_keys, spark_hash_int, spark_hash_long_int

    values = [0, 1, 7, -5, 2 ** 31 + 5, 2 ** 40 - 3, 123456789012]
    small = [0, 1, 7, -5, 2 ** 31 - 1, -2 ** 31, 123456]
    df = spark.createDataFrame(list(zip(values, small)), "g long, i int")
    got = df.select(F.hash("g", F.lit(977).cast("int")).alias("h"),
                    F.hash("i").alias("hi")).collect()
    np.testing.assert_array_equal([r["h"] for r in got], spark_hash_long_int(values, 977))
    np.testing.assert_array_equal([r["hi"] for r in got], spark_hash_int(small))
    keys = partition_keys(3)
    parts = spark.createDataFrame([(k,) for k in keys], "k int").repartition(3, "k") \
        .select(F.spark_partition_id().alias("p"), "k").collect()
    assert {r["k"]: r["p"] for r in parts} == {k: w for w, k in enumerate(keys)}


def test_sync_sgd_equals_local_training_on_the_same_global_batches(spark, digits):
    from pyfront.spark import SparkTrainer, SyncSGD

    x, _, y, _ = digits
    x, y = x[:300], y[:300]
    model = mlp(3, x)
    opt = pf.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    trainer = SparkTrainer(model, SyncSGD(), num_workers=2, batch_size_per_worker=16,
                           optimizer=opt, loss="cross_entropy", seed=11, verbose=0)
    history = trainer.fit(to_df(spark, x, y), epochs=2)

    local = mlp(3, x)
    lopt = pf.optim.SGD(local.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for epoch in range(2):
        total = 0.0
        for idx in global_batches(len(x), 2, 16, 11, epoch):
            lopt.zero_grad()
            loss = pf.losses.cross_entropy(local(pf.tensor(x[idx])), pf.tensor(y[idx]))
            loss.backward()
            lopt.step()
            total += float(loss.item()) * len(idx)
        losses.append(total / len(x))
    assert_same_weights(model, local)
    assert lopt.iterations == opt.iterations == 2 * 10
    np.testing.assert_allclose(history["loss"], losses, rtol=1e-5)
    # shuffling changes the order between epochs, and every row is read once per epoch
    b0, b1 = global_batches(len(x), 2, 16, 11, 0), global_batches(len(x), 2, 16, 11, 1)
    assert not np.array_equal(b0[0], b1[0])
    assert sorted(np.concatenate(b0).tolist()) == list(range(len(x)))


def test_parameter_averaging_equals_its_definition(spark, digits):
    """Each worker: K local Adam steps from the broadcast weights and state; then weights and
    Adam's moments averaged weighted by rows; the step count advances by the steps taken."""
    from pyfront.spark import ParameterAveraging, SparkTrainer
    from pyfront.spark.data import epoch_order

    x, _, y, _ = digits
    x, y = x[:203], y[:203]       # odd: the workers hold 102 and 101 rows
    K, B, W = 2, 16, 2
    model = mlp(5, x)
    opt = pf.optim.Adam(model.parameters(), lr=3e-3)
    SparkTrainer(model, ParameterAveraging(K), num_workers=W, batch_size_per_worker=B,
                 optimizer=opt, loss="cross_entropy", seed=2, verbose=0) \
        .fit(to_df(spark, x, y), epochs=1)

    ref = mlp(5, x)
    ropt = pf.optim.Adam(ref.parameters(), lr=3e-3)
    for p in ropt.params:
        ropt.state_for(p)
    order = epoch_order(len(x), W, 2, 0)
    rounds = -(-max(len(o) for o in order) // (K * B))
    for r in range(rounds):
        sums, opt_sums, rows, steps_max = None, None, 0, 0
        for w in range(W):
            rows_w = order[w][r * K * B:(r + 1) * K * B]
            if not len(rows_w):
                continue
            local = mlp(5, x)
            local.load_state_dict(ref.state_dict())
            lopt = pf.optim.Adam(local.parameters(), lr=3e-3)
            lopt.load_state_dict(ropt.state_dict())
            for s in range(0, len(rows_w), B):
                idx = rows_w[s:s + B]
                lopt.zero_grad()
                pf.losses.cross_entropy(local(pf.tensor(x[idx])), pf.tensor(y[idx])).backward()
                lopt.step()
            n = len(rows_w)
            st = {k: v * n for k, v in local.state_dict().items()}
            ost = {k: v * n for k, v in lopt.state_dict()["state"].items()}
            sums = st if sums is None else {k: sums[k] + st[k] for k in st}
            opt_sums = ost if opt_sums is None else {k: opt_sums[k] + ost[k] for k in ost}
            rows += n
            steps_max = max(steps_max, lopt.iterations)
        ref.load_state_dict({k: v / rows for k, v in sums.items()})
        ropt.load_state_dict({"iterations": steps_max, "lr": ropt.lr,
                              "state": {k: v / rows for k, v in opt_sums.items()}})
    assert_same_weights(model, ref, atol=1e-5, rtol=1e-4)
    # the last round holds 6 and 5 rows: one local step each
    assert opt.iterations == ropt.iterations == (rounds - 1) * K + 1
    for k, v in ropt.state_dict()["state"].items():
        np.testing.assert_allclose(opt.state_dict()["state"][k], v, atol=1e-6, rtol=1e-4)


def test_the_issue_api_with_compile_metrics_and_an_rdd(spark, digits):
    from pyfront.spark import SparkTrainer, SyncSGD, predict

    x, _, y, _ = digits
    x, y = x[:256], y[:256]
    df = spark.createDataFrame([(a.tolist(), int(b)) for a, b in zip(x, y)],
                               ["features", "label"])
    pf.random.seed(0)
    model = pf.nn.Sequential([pf.nn.Dense(64, activation="relu"), pf.nn.Dense(10)])
    model.compile(optimizer=pf.optim.SGD(lr=0.1), loss="cross_entropy", metrics=["accuracy"])
    trainer = SparkTrainer(model, strategy=SyncSGD(), num_workers=2, batch_size_per_worker=32)
    history = trainer.fit(df, features_col="features", label_col="label", epochs=2)

    # every round's Spark jobs say what they are (the Spark UI shows the description)
    class Descriptions(pf.train.callbacks.Callback):
        seen = []

        def on_train_batch_end(self, rnd, logs=None):
            self.seen.append(spark.sparkContext.getLocalProperty("spark.job.description"))
    described = Descriptions()
    trainer.fit(df.limit(128), epochs=1, callbacks=[described])
    assert described.seen == ["pyfront SyncSGD(): epoch 1/1, round %d/2" % r for r in (1, 2)]
    assert spark.sparkContext.getLocalProperty("spark.jobGroup.id") is None   # restored
    scored = predict(model, df, input_col="features", output_col="prediction")
    assert set(history.history) >= {"loss", "accuracy", "samples_per_s"}
    assert history["loss"][1] < history["loss"][0]
    assert 0 < history["accuracy"][1] <= 1
    assert model.optimizer.iterations == 2 * 4 + 2
    assert scored.count() == 256 and "prediction" in scored.columns

    # an RDD of (features, label) pairs trains the same way
    rdd = spark.sparkContext.parallelize([(a, int(b)) for a, b in zip(x, y)], 2)
    before = model.state_dict()["0.kernel"].copy()
    trainer.fit(rdd, epochs=1)
    assert not np.array_equal(before, model.state_dict()["0.kernel"])


@pytest.mark.slow
def test_parameter_averaging_trains_the_digits_mlp_to_95_percent(spark, digits):
    from pyfront.spark import ParameterAveraging, SparkTrainer

    x_train, x_test, y_train, y_test = digits
    pf.random.seed(0)
    model = pf.nn.Sequential([pf.nn.Dense(128, activation="relu"),
                              pf.nn.Dense(64, activation="relu"), pf.nn.Dense(10)])
    model.compile(optimizer=pf.optim.Adam(lr=2e-3), loss="cross_entropy",
                  metrics=["accuracy"])
    trainer = SparkTrainer(model, ParameterAveraging(frequency=8), num_workers=2,
                           batch_size_per_worker=32, verbose=0)
    history = trainer.fit(to_df(spark, x_train, y_train), epochs=8,
                          validation_data=to_df(spark, x_test, y_test))
    _, accuracy = model.evaluate(x_test, y_test)
    assert accuracy >= 0.95
    assert history["val_accuracy"][-1] == pytest.approx(accuracy, abs=1e-9)


@pytest.mark.slow
def test_parameter_averaging_trains_the_digits_cnn_to_95_percent(spark, digits):
    from pyfront.spark import ParameterAveraging, SparkTrainer

    x_train, x_test, y_train, y_test = digits
    pf.random.seed(0)
    cnn = pf.nn.Sequential([
        pf.nn.Conv2D(32, 3, padding="same", activation="relu"), pf.nn.MaxPool2D(2),
        pf.nn.Conv2D(64, 3, padding="same", activation="relu"), pf.nn.MaxPool2D(2),
        pf.nn.Flatten(), pf.nn.Dense(128, activation="relu"), pf.nn.Dense(10)])
    cnn.compile(optimizer=pf.optim.SGD(lr=0.05, momentum=0.9), loss="cross_entropy",
                metrics=["accuracy"])
    trainer = SparkTrainer(cnn, ParameterAveraging(frequency=8), num_workers=2,
                           batch_size_per_worker=32, input_shape=(1, 8, 8), verbose=0)
    trainer.fit(to_df(spark, x_train, y_train), epochs=5)
    _, accuracy = cnn.evaluate(x_test.reshape(-1, 1, 8, 8), y_test)
    assert accuracy >= 0.95


def test_parquet_export_and_tree_combining_train_the_same(spark, digits, tmp_path):
    """The prepared data exported to Parquet once (instead of Spark's cache), and results
    summed on the executors with treeAggregate (instead of on the driver): same weights."""
    from pyfront.spark import SparkTrainer, SyncSGD

    x, _, y, _ = digits
    x, y = x[:160], y[:160]
    weights = []
    for options in ({}, {"export_path": str(tmp_path / "prepared"), "combine": "tree"}):
        model = mlp(8, x)
        opt = pf.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        SparkTrainer(model, SyncSGD(), num_workers=2, batch_size_per_worker=16, optimizer=opt,
                     loss="cross_entropy", verbose=0, **options) \
            .fit(to_df(spark, x, y), epochs=2)
        weights.append(model)
    assert_same_weights(weights[0], weights[1], atol=1e-7, rtol=1e-6)
    parts = [p for p in os.listdir(tmp_path / "prepared") if p.endswith(".parquet")]
    assert parts
