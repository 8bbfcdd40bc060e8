"""compile / fit / evaluate / predict / summary on small synthetic problems, eager and compiled."""
import warnings

import numpy as np
import pytest

import pyfront as pf


def blobs(n=600, features=8, classes=3, seed=0):
    """Linearly separable-ish classes: labels from a random linear map."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, features)).astype(np.float32)
    y = (x @ rng.standard_normal((features, classes))).argmax(1)
    return x, y


def mlp(classes=3, seed=0):
    pf.random.seed(seed)
    return pf.nn.Sequential([pf.nn.Dense(32, activation="relu"), pf.nn.Dense(classes)])


def _softmax_ce(logits, labels):
    z = logits - logits.max(1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(1, keepdims=True))
    return -logp[np.arange(len(labels)), labels]


def test_fit_lowers_the_loss_and_reaches_the_target_accuracy():
    x, y = blobs()
    model = mlp()
    model.compile(optimizer=pf.optim.SGD(lr=0.05, momentum=0.9), loss="cross_entropy",
                  metrics=["accuracy"])
    history = model.fit(x[:500], y[:500], batch_size=32, epochs=6,
                        validation_data=(x[500:], y[500:]), verbose=0, seed=1)
    h = history.history
    assert set(h) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr"}
    assert all(len(v) == 6 for v in h.values()) and history.epoch == list(range(6))
    assert h["loss"][-1] < 0.5 * h["loss"][0]
    assert h["accuracy"][-1] >= 0.93 and h["val_accuracy"][-1] >= 0.9
    assert h["lr"] == [0.05] * 6
    assert model.history is history


def test_evaluate_uses_the_whole_data_not_batch_averages():
    x, y = blobs(n=203)
    model = mlp()
    model.compile(optimizer="adam", loss="cross_entropy", metrics=["accuracy", "top2_accuracy"])
    model.fit(x, y, epochs=2, verbose=0, seed=0)
    loss, acc, top2 = model.evaluate(x, y, batch_size=50)          # ragged last batch of 3
    logits = model.predict(x, batch_size=64)
    assert loss == pytest.approx(float(_softmax_ce(logits.astype(np.float64), y).mean()),
                                 rel=1e-5)
    assert acc == pytest.approx(float((logits.argmax(1) == y).mean()))
    top = np.argsort(-logits, 1)[:, :2]
    assert top2 == pytest.approx(float((top == y[:, None]).any(1).mean()))
    d = model.evaluate(x, y, return_dict=True)
    assert list(d) == ["loss", "accuracy", "top2_accuracy"] and d["accuracy"] == acc


def test_predict_is_numpy_batched_and_equals_one_call():
    x, _ = blobs(n=70)
    model = mlp()
    model.compile(optimizer="sgd", loss="cross_entropy")
    probs = model.predict(x, batch_size=16)
    assert isinstance(probs, np.ndarray) and probs.shape == (70, 3)
    with pf.no_grad():
        direct = model(pf.tensor(x)).numpy()
    np.testing.assert_allclose(probs, direct, rtol=1e-6, atol=1e-6)
    assert model.training          # modes restored after predict


def test_validation_split_holds_out_the_last_samples():
    x, y = blobs(n=200)
    model = mlp()
    model.compile(optimizer=pf.optim.Adam(lr=1e-2), loss="cross_entropy", metrics=["accuracy"])
    h = model.fit(x, y, batch_size=40, epochs=2, validation_split=0.25, verbose=0, seed=3)
    loss, acc = model.evaluate(x[150:], y[150:])
    assert h.history["val_loss"][-1] == pytest.approx(loss, rel=1e-6)
    assert h.history["val_accuracy"][-1] == pytest.approx(acc)


def test_seeded_fit_is_reproducible_and_shuffle_changes_the_order():
    x, y = blobs(n=120)

    def run(seed, shuffle=True):
        model = mlp(seed=5)
        model.compile(optimizer=pf.optim.SGD(lr=0.1), loss="cross_entropy")
        return model.fit(x, y, batch_size=16, epochs=2, verbose=0, seed=seed,
                         shuffle=shuffle).history["loss"]

    assert run(1) == run(1)
    assert run(1) != run(2)
    assert run(1, shuffle=False) == run(2, shuffle=False)


def test_compiled_training_matches_eager():
    x, y = blobs(n=160)
    results = {}
    for jit in (False, True):
        model = mlp(seed=2)
        model.compile(optimizer=pf.optim.Adam(lr=1e-2, global_clipnorm=0.5),
                      loss="cross_entropy", metrics=["accuracy"], jit=jit)
        with warnings.catch_warnings():
            warnings.simplefilter("error")       # no silent fallback to eager
            h = model.fit(x, y, batch_size=32, epochs=2, verbose=0, seed=4)
        step = next(iter(model._train_config["steps"].values()))
        results[jit] = (h.history, model.predict(x), type(step).__name__)
    assert results[False][2] == "EagerTrainStep"
    assert results[True][2] == "CompiledTrainStep"
    for key in ("loss", "accuracy"):
        np.testing.assert_allclose(results[True][0][key], results[False][0][key], rtol=1e-5)
    np.testing.assert_allclose(results[True][1], results[False][1], rtol=1e-4, atol=1e-5)


def test_hybridized_model_fits_with_compiled_steps():
    x, y = blobs(n=96)
    fast = mlp().hybridize()
    fast.compile(optimizer=pf.optim.SGD(lr=0.1), loss="cross_entropy", metrics=["accuracy"])
    h = fast.fit(x, y, batch_size=32, epochs=3, verbose=0, seed=0)
    assert type(next(iter(fast._train_config["steps"].values()))).__name__ == \
        "CompiledTrainStep"
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert fast.predict(x).shape == (96, 3)


def test_regression_with_mse_and_flat_targets():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 4)).astype(np.float32)
    y = x @ np.array([1.0, -2.0, 0.5, 3.0]) + 0.1 + 0.1 * rng.standard_normal(256)  # (N,) f64
    pf.random.seed(0)
    model = pf.nn.Sequential([pf.nn.Dense(1)])
    model.compile(optimizer=pf.optim.Adam(lr=0.05), loss="mse", metrics=["mae", "rmse"])
    h = model.fit(x, y, batch_size=32, epochs=30, verbose=0, seed=0)
    assert h.history["loss"][-1] < 0.02
    mse, mae, rmse = model.evaluate(x, y)
    pred = model.predict(x)[:, 0].astype(np.float64)
    assert mse == pytest.approx(np.mean((pred - y) ** 2), rel=1e-4)
    assert mae == pytest.approx(np.mean(np.abs(pred - y)), rel=1e-4)
    assert rmse == pytest.approx(np.sqrt(mse), rel=1e-6)


class TwoInputs(pf.nn.Model):      # a subclassed model (Keras style) trains
    def __init__(self):
        super().__init__()
        self.a = pf.nn.Dense(16, activation="relu")
        self.b = pf.nn.Dense(16, activation="relu")
        self.head = pf.nn.Dense(2)

    def forward(self, xa, xb):
        return self.head(self.a(xa) + self.b(xb))


def test_multi_input_model_from_arrays_and_from_a_dataset():
    rng = np.random.default_rng(1)
    xa = rng.standard_normal((300, 5)).astype(np.float32)
    xb = rng.standard_normal((300, 3)).astype(np.float32)
    y = ((xa[:, 0] + xb[:, 0]) > 0).astype(np.int64)
    pf.random.seed(0)
    model = TwoInputs()
    model.compile(optimizer=pf.optim.Adam(lr=1e-2), loss="cross_entropy", metrics=["accuracy"])
    model.fit([xa, xb], y, batch_size=32, epochs=8, verbose=0, seed=0)
    assert model.evaluate([xa, xb], y)[1] >= 0.95
    loader = pf.data.DataLoader(pf.data.Dataset(xa, xb, y), batch_size=64, shuffle=True, seed=0)
    h = model.fit(loader, epochs=1, verbose=0, validation_data=pf.data.Dataset(xa, xb, y))
    assert h.history["val_accuracy"][0] >= 0.95
    assert model.predict([xa, xb]).shape == (300, 2)


def test_class_weight_weighs_the_loss_per_label():
    x, y = blobs(n=64)
    model = mlp()
    model.compile(optimizer=pf.optim.SGD(lr=1e-9), loss="cross_entropy")
    with pf.no_grad():
        logits = model(pf.tensor(x)).numpy().astype(np.float64)
    weights = {0: 0.5, 1: 2.0, 2: 1.0}
    h = model.fit(x, y, batch_size=64, epochs=1, shuffle=False, verbose=0,
                  class_weight=weights)
    w = np.array([weights[int(c)] for c in y])
    assert h.history["loss"][0] == pytest.approx(float((_softmax_ce(logits, y) * w).mean()),
                                                 rel=1e-5)


def test_initial_epoch_and_uint8_labels():
    x, y = blobs(n=64)
    model = mlp()
    model.compile(optimizer="adam", loss="cross_entropy", metrics=["acc"])
    h = model.fit(x, y.astype(np.uint8), epochs=4, initial_epoch=2, verbose=0)
    assert h.epoch == [2, 3] and len(h.history["acc"]) == 2


def test_errors_name_the_problem():
    x, y = blobs(n=10)
    model = mlp()
    with pytest.raises(RuntimeError, match="compile"):
        model.fit(x, y, verbose=0)
    with pytest.raises(ValueError, match="unknown metric"):
        model.compile(optimizer="adam", loss="cross_entropy", metrics=["accuracyy"])
    with pytest.raises(ValueError, match="unknown optimizer"):
        model.compile(optimizer="adamax", loss="mse")
    model.compile(optimizer="adam", loss="cross_entropy")
    with pytest.raises(ValueError, match="10 samples in x"):
        model.fit(x, y[:9], verbose=0)
    with pytest.raises(ValueError, match="validation_split"):
        model.fit(x, y, validation_split=1.5, verbose=0)


# ---- progress output ----

def test_verbose_modes(capsys):
    x, y = blobs(n=64)
    model = mlp()
    model.compile(optimizer="adam", loss="cross_entropy", metrics=["accuracy"])
    model.fit(x, y, epochs=2, verbose=0)
    assert capsys.readouterr().out == ""
    model.fit(x, y, epochs=2, verbose=2)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[1].startswith("Epoch 2/2") and "samples/s" in lines[1]
    model.fit(x, y, epochs=2, verbose=1)            # stdout is not a terminal under pytest
    out = capsys.readouterr().out
    assert "\r" not in out and len(out.splitlines()) == 2


# ---- summary ----

@pf.nn.register_layer
class Scale(pf.nn.Module):
    """A layer with one trainable and one frozen parameter, for the parameter counts."""

    def __init__(self, name=None):
        super().__init__(name)
        self.gain = pf.nn.Parameter(init="ones")
        self.offset = pf.nn.Parameter(init="zeros", trainable=False)

    def build(self, shape):
        self.gain.materialize(shape[1:])
        self.offset.materialize(shape[1:])

    def forward(self, x):
        return x * self.gain + self.offset


def test_summary_table():
    pf.random.seed(0)
    model = pf.nn.Sequential([pf.nn.Dense(16, activation="relu"), Scale(), pf.nn.Dense(4)],
                             name="net")
    with pytest.raises(ValueError, match="input_shape"):
        model.summary(print_fn=None)
    text = model.summary(input_shape=(10,), print_fn=None)
    lines = text.splitlines()
    assert lines[0] == 'Model: "net"'
    row = [ln for ln in lines if "(Dense)" in ln][0]
    assert "(None, 16)" in row and row.rstrip().endswith("176")
    scale = [ln for ln in lines if "(Scale)" in ln][0]
    assert "(None, 16)" in scale and scale.rstrip().endswith("32")
    assert "Total params: 276" in text and "Trainable params: 260" in text
    assert "Non-trainable params: 16" in text
    assert all("forward" not in m.__dict__ for m in model.modules())   # recording removed
    again = model.summary(print_fn=None)            # built now: no input_shape needed
    assert again == text


def test_functional_model_with_two_inputs_and_two_outputs():
    rng = np.random.default_rng(0)
    xa = rng.standard_normal((200, 5)).astype(np.float32)
    xb = rng.standard_normal((200, 3)).astype(np.float32)
    label = (xa[:, 0] + xb[:, 0] > 0).astype(np.int64)
    value = (xa[:, 1] - xb[:, 1]).astype(np.float32)
    histories = {}
    for jit in (False, True):
        pf.random.seed(0)
        a, b = pf.nn.Input((5,), name="a"), pf.nn.Input((3,), name="b")
        h = pf.nn.Dense(16, activation="relu")(a) + pf.nn.Dense(16, activation="relu")(b)
        model = pf.nn.Model(inputs=[a, b], outputs=[pf.nn.Dense(2)(h), pf.nn.Dense(1)(h)])
        model.compile(optimizer=pf.optim.Adam(lr=1e-2), loss=["cross_entropy", "mse"],
                      loss_weights=[1.0, 0.5], metrics={0: ["accuracy"], 1: ["mae"]}, jit=jit)
        histories[jit] = model.fit([xa, xb], [label, value], epochs=4, verbose=0, seed=0).history
    assert set(histories[False]) == {"loss", "out0_accuracy", "out1_mae", "lr"}
    assert histories[False]["loss"][-1] < 0.6 * histories[False]["loss"][0]
    np.testing.assert_allclose(histories[True]["loss"], histories[False]["loss"], rtol=1e-5)
    d = model.evaluate([xa, xb], [label, value], return_dict=True)
    logits, pred = model.predict([xa, xb])
    ce = float(_softmax_ce(logits.astype(np.float64), label).mean())
    mse = float(((pred[:, 0] - value) ** 2).mean())
    assert d["loss"] == pytest.approx(ce + 0.5 * mse, rel=1e-5)
    assert d["out1_mae"] == pytest.approx(float(np.abs(pred[:, 0] - value).mean()), rel=1e-5)
    assert "Output shape: (None, 2), (None, 1)" in model.summary(print_fn=None)
