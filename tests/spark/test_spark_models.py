"""SparkTrainer with what local fit takes: functional models with several inputs and outputs
(a feature column per input, a label column and a loss per output, loss weights), the one
History class, and the pf.train.callbacks contract (a Spark round is a batch)."""
import csv

import numpy as np
import pytest

import pyfront as pf

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")

LOSSES, WEIGHTS = ["cross_entropy", "mse"], [1.0, 0.5]


def two_by_two(seed):
    """Two inputs (6 and 3 features), two outputs (3 classes, one value)."""
    pf.random.seed(seed)
    a, b = pf.nn.Input((6,), name="a"), pf.nn.Input((3,), name="b")
    h = pf.concat([pf.nn.Dense(8, activation="relu")(a), pf.nn.Dense(4)(b)], axis=1)
    return pf.nn.Model(inputs=[a, b], outputs=[pf.nn.Dense(3)(h), pf.nn.Dense(1)(h)])


def problem(n=72):
    rng = np.random.default_rng(0)
    xa = rng.normal(size=(n, 6)).astype(np.float32)
    xb = rng.normal(size=(n, 3)).astype(np.float32)
    cls = (xa[:, 0] + xb[:, 1] > 0).astype(np.int64) + (xa[:, 2] > 1)
    value = (xa[:, 1] - xb[:, 0]).astype(np.float32)
    return xa, xb, cls, value


def frame(spark, xa, xb, cls, value):
    rows = [(a.tolist(), b.tolist(), int(c), float(v)) for a, b, c, v in zip(xa, xb, cls, value)]
    return spark.createDataFrame(rows, "a array<float>, b array<float>, cls int, value double")


def test_a_two_input_two_output_model_trains_like_local_sync_sgd(spark):
    from pyfront.spark import SparkTrainer, SyncSGD
    from pyfront.spark.data import epoch_order
    from pyfront.train.api import build_loss

    xa, xb, cls, value = problem()
    model = two_by_two(4)
    model.compile(optimizer=pf.optim.SGD(lr=0.05, momentum=0.9), loss=LOSSES,
                  loss_weights=WEIGHTS, metrics={0: ["accuracy"]})
    trainer = SparkTrainer(model, SyncSGD(), num_workers=2, batch_size_per_worker=8, seed=5,
                           verbose=0)
    history = trainer.fit(frame(spark, xa, xb, cls, value), epochs=2,
                          features_col=["a", "b"], label_col=["cls", "value"],
                          validation_data=frame(spark, xa, xb, cls, value))

    local = two_by_two(4)
    opt = pf.optim.SGD(local.parameters(), lr=0.05, momentum=0.9)
    loss_fn = build_loss(LOSSES, WEIGHTS)
    losses = []
    for epoch in range(2):
        order = epoch_order(len(xa), 2, 5, epoch)
        total = 0.0
        for s in range(-(-max(len(o) for o in order) // 8)):
            idx = np.concatenate([o[s * 8:(s + 1) * 8] for o in order])
            opt.zero_grad()
            loss = loss_fn(local(pf.tensor(xa[idx]), pf.tensor(xb[idx])),
                           pf.tensor(cls[idx]), pf.tensor(value[idx]))
            loss.backward()
            opt.step()
            total += float(loss.item()) * len(idx)
        losses.append(total / len(xa))
    for k, v in local.state_dict().items():
        np.testing.assert_allclose(model.state_dict()[k], v, atol=2e-6, rtol=1e-5, err_msg=k)
    np.testing.assert_allclose(history["loss"], losses, rtol=1e-5)
    assert history["loss"][1] < history["loss"][0]
    # metrics per output, named as local fit names them; validation with both losses
    assert {"out0_accuracy", "val_loss", "val_out0_accuracy"} <= set(history.keys())
    assert "out1_accuracy" not in history
    local_eval = model.evaluate([xa, xb], [cls, value], return_dict=True)
    assert history["val_loss"][-1] == pytest.approx(local_eval["loss"], rel=1e-5)


def test_predict_scores_a_two_input_two_output_model_like_local_predict(spark):
    from pyfront.spark import predict

    xa, xb, cls, value = problem(40)
    model = two_by_two(3)
    df = frame(spark, xa, xb, cls, value)
    scored = predict(model, df, input_col=["a", "b"], output_col=["logits", "score"],
                     batch_size=16).toPandas()
    want = model.predict([xa, xb])
    np.testing.assert_allclose(np.stack(scored["logits"]), want[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.stack(scored["score"]), want[1], rtol=1e-5, atol=1e-6)
    classes = predict(model, df, input_col=["a", "b"], output="class").toPandas()
    assert list(classes.columns[-2:]) == ["prediction_0", "prediction_1"]
    np.testing.assert_array_equal(classes["prediction_0"], want[0].argmax(axis=1))
    with pytest.raises(ValueError, match="the model has 2 inputs; input_col is a list of 2"):
        predict(model, df, input_col="a")


def test_evaluate_a_two_input_two_output_model_like_local_evaluate(spark):
    from pyfront.spark import evaluate

    xa, xb, cls, value = problem(40)
    model = two_by_two(3)
    model.compile(optimizer="sgd", loss=LOSSES, loss_weights=WEIGHTS,
                  metrics=[["accuracy"], ["mae"]])
    got = evaluate(model, frame(spark, xa, xb, cls, value), features_col=["a", "b"],
                   label_col=["cls", "value"], batch_size=16)
    want = model.evaluate([xa, xb], [cls, value], return_dict=True)
    assert set(got) == set(want) == {"loss", "out0_accuracy", "out1_mae"}
    for k in want:
        assert got[k] == pytest.approx(want[k], rel=1e-5), k


def test_parameter_averaging_trains_a_two_input_two_output_model(spark):
    from pyfront.spark import ParameterAveraging, SparkTrainer

    xa, xb, cls, value = problem()
    model = two_by_two(6)
    model.compile(optimizer=pf.optim.Adam(lr=1e-2), loss=LOSSES, loss_weights=WEIGHTS)
    before = model.evaluate([xa, xb], [cls, value])
    history = SparkTrainer(model, ParameterAveraging(frequency=3), num_workers=2,
                           batch_size_per_worker=6, verbose=0).fit(
        frame(spark, xa, xb, cls, value), epochs=3, features_col=["a", "b"],
        label_col=["cls", "value"])
    # 36 rows a worker: 6 local steps an epoch in 2 rounds
    assert model.optimizer.iterations == 3 * 6 and len(history.rounds) == 3 * 2
    assert model.evaluate([xa, xb], [cls, value]) < 0.8 * before


def test_a_label_column_per_output_is_required(spark):
    from pyfront.spark import SparkTrainer

    xa, xb, cls, value = problem(16)
    model = two_by_two(1)
    df = frame(spark, xa, xb, cls, value)
    model.compile(optimizer="sgd", loss=LOSSES)
    with pytest.raises(pf.PyfrontError, match="2 losses \\(one per output\\) but label_col "
                       "names 1 column \\('cls'\\); give one label column per output"):
        SparkTrainer(model, num_workers=2, verbose=0).fit(df, features_col=["a", "b"],
                                                          label_col="cls")
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(pf.PyfrontError, match="the model has 2 outputs but label_col names "
                       "1 column \\('value'\\); give one label column per output"):
        SparkTrainer(model, num_workers=2, verbose=0).fit(df, features_col=["a", "b"],
                                                          label_col="value")
    with pytest.raises(ValueError, match="the model has 2 inputs: features_col is a list of 2"):
        SparkTrainer(model, num_workers=2, verbose=0).fit(
            frame(spark, xa, xb, cls, value), features_col="a", label_col=["cls", "value"])


def digits_model(x):
    pf.random.seed(2)
    model = pf.nn.Sequential([pf.nn.Dense(16, activation="relu"), pf.nn.Dense(10)])
    model(pf.tensor(x[:1]))
    model.compile(optimizer=pf.optim.SGD(lr=0.1), loss="cross_entropy", metrics=["accuracy"])
    return model


def test_local_and_spark_fit_return_the_one_history(spark, digits):
    from pyfront.spark import SparkTrainer

    from spark_support import to_df

    x, _, y, _ = digits
    local = digits_model(x).fit(x[:64], y[:64], epochs=1, verbose=0)
    remote = SparkTrainer(digits_model(x), num_workers=2, batch_size_per_worker=16,
                          verbose=0).fit(to_df(spark, x[:64], y[:64]))
    assert type(local) is type(remote) is pf.train.callbacks.History
    import pyfront.spark
    assert pyfront.spark.History is pf.train.callbacks.History
    for h in (local, remote):
        assert h["loss"] == h.history["loss"] and len(h["loss"]) == 1 and h.epoch == [0]
        assert 0 <= h["accuracy"][0] <= 1 and h["lr"] == [0.1]
    assert len(remote.rounds) == 2 and local.rounds == []
    with pytest.raises(KeyError, match="History has no 'val_loss'; it holds loss"):
        local["val_loss"]


def test_keras_callbacks_stop_checkpoint_log_and_schedule_a_spark_run(spark, digits, tmp_path):
    from pyfront.spark import SparkTrainer
    from pyfront.train import callbacks as cb

    from spark_support import to_df

    x, _, y, _ = digits
    model = digits_model(x)
    seen = []
    used = [cb.EarlyStopping(monitor="loss", min_delta=10.0, patience=1),
            cb.ModelCheckpoint(str(tmp_path / "model-{epoch}.pf")),
            cb.CSVLogger(str(tmp_path / "log.csv")),
            cb.LearningRateScheduler(lambda epoch: 0.1 / (epoch + 1)),
            cb.LambdaCallback(on_train_batch_end=lambda b, logs: seen.append((b, logs["size"]))),
            cb.ReduceLROnPlateau(monitor="loss", min_delta=10.0, patience=1, factor=0.5),
            pf.train.TensorBoard(str(tmp_path / "tb"), update_freq=1)]
    trainer = SparkTrainer(model, num_workers=2, batch_size_per_worker=16, verbose=0)
    history = trainer.fit(to_df(spark, x[:96], y[:96]), epochs=5, callbacks=used)
    # epoch 1 improves on inf, epoch 2 not by 10: stopped after 2 of 5 epochs (3 rounds each)
    assert history.epoch == [0, 1] and model.stop_training
    assert model.optimizer.iterations == 6
    assert seen == [(0, 32), (1, 32), (2, 32)] * 2
    assert history["lr"] == [0.1, 0.05]
    assert model.optimizer.lr == 0.025        # the plateau halved the rate after epoch 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.csv", "model-1.pf", "model-2.pf",
                                                          "tb"]
    events = [e for f in sorted((tmp_path / "tb" / "train").iterdir())
              for e in pf.train.read_events(str(f))]
    assert [e["step"] for e in events if "batch_loss" in e["scalars"]] == [1, 2, 3, 4, 5, 6]
    epoch_losses = [e["scalars"]["epoch_loss"] for e in events if "epoch_loss" in e["scalars"]]
    np.testing.assert_allclose(epoch_losses, history["loss"], rtol=1e-6)
    saved = pf.load(str(tmp_path / "model-2.pf"))
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(saved.state_dict()[k], v, err_msg=k)
    with open(tmp_path / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["loss"]) for r in rows] == history["loss"]


def test_callbacks_must_follow_the_callback_contract(spark, digits):
    from pyfront.spark import SparkTrainer

    from spark_support import to_df

    class OldStyle:
        def on_round_end(self, trainer, epoch, rnd, logs):
            pass
    x, _, y, _ = digits
    with pytest.raises(TypeError, match="callbacks are pyfront.train.callbacks.Callback"):
        SparkTrainer(digits_model(x), verbose=0).fit(to_df(spark, x[:32], y[:32]),
                                                     callbacks=[OldStyle()])
