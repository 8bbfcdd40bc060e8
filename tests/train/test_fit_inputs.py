"""What fit / evaluate / predict take and how they refuse it: Python lists as numpy takes them,
inputs without their batch dimension, float labels for a classification loss."""
import numpy as np
import pytest

import pyfront as pf


def data(n=48, features=5, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, features)).astype(np.float32)
    return x, (x @ rng.normal(size=(features, classes))).argmax(1).astype(np.int64)


def mlp(jit=False, loss="cross_entropy", outputs=3):
    pf.random.seed(3)
    model = pf.nn.Sequential([pf.nn.Dense(8, activation="relu"), pf.nn.Dense(outputs)])
    model.compile(optimizer=pf.optim.SGD(lr=0.1), loss=loss,
                  metrics=["accuracy"] if loss == "cross_entropy" else None, jit=jit)
    return model


# ---- Python lists ----

@pytest.mark.parametrize("jit", [False, True])
def test_fit_evaluate_predict_take_python_lists_as_numpy_does(jit):
    x, y = data()
    reference = mlp(jit)
    h_ref = reference.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
    model = mlp(jit)
    h = model.fit(x.tolist(), y.tolist(), batch_size=16, epochs=2, shuffle=False, verbose=0)
    assert h.history["loss"] == pytest.approx(h_ref.history["loss"], rel=1e-6)
    for a, b in zip(model.parameters(), reference.parameters()):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)
    # tuples and nested lists too, and the same numbers back
    rows = tuple(tuple(r) for r in x.tolist())
    np.testing.assert_allclose(model.predict(rows), reference.predict(x), rtol=1e-6)
    assert model.evaluate(x.tolist(), tuple(y.tolist())) == \
        pytest.approx(reference.evaluate(x, y), rel=1e-6)
    model.fit(x.tolist(), y.tolist(), epochs=1, verbose=0,
              validation_data=(x[:8].tolist(), y[:8].tolist()))


def test_a_list_of_arrays_is_still_one_array_per_input():
    x, y = data()
    a = pf.nn.Input((5,), name="a")
    b = pf.nn.Input((2,), name="b")
    h = pf.concat([pf.nn.Dense(4)(a), pf.nn.Dense(4)(b)], axis=1)
    model = pf.nn.Model(inputs=[a, b], outputs=pf.nn.Dense(3)(h))
    model.compile(optimizer="sgd", loss="cross_entropy")
    model.fit([x, x[:, :2]], y, epochs=1, verbose=0)
    assert model.predict([x, x[:, :2]]).shape == (48, 3)


# ---- inputs without the batch dimension ----

def test_one_unbatched_sample_is_refused_naming_both_shapes():
    x, y = data(features=64)
    model = mlp()
    model.fit(x, y, epochs=1, verbose=0)
    msg = (r"predict: x has shape \(64,\), without the batch dimension: the model takes "
           r"\(None, 64\) \(batch first\); pass one sample as x\[None\], of shape \(1, 64\)")
    with pytest.raises(pf.ShapeError, match=msg):
        model.predict(x[0])
    with pytest.raises(pf.ShapeError, match=r"evaluate: x has shape \(64,\), without"):
        model.evaluate(x[0], y[:1])
    with pytest.raises(pf.ShapeError, match=r"fit: validation_data: x has shape \(64,\)"):
        model.fit(x, y, epochs=1, verbose=0, validation_data=(x[0], y[:1]))
    assert model.predict(x[0][None]).shape == (1, 3)


def test_an_unbatched_sample_for_an_unbuilt_model_is_caught_by_the_output():
    model = mlp()
    with pytest.raises(pf.ShapeError, match=r"predict: the input batch of shape \(5,\) "
                       r"\(5 samples\) gave an output of shape \(3,\), not one row per sample"):
        model.predict(np.zeros(5, np.float32))


# ---- label dtypes ----

@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("jit", [False, True])
def test_float_labels_are_reported_with_their_own_dtype(dtype, jit):
    x, y = data()
    model = mlp(jit)
    message = (r"cross_entropy: target probabilities \(16,\) do not fit logits \(16, 3\) "
               r"\(expected \(16, 3\)\); class indices must be integers \(int32/int64\), got "
               + dtype)
    with pytest.raises(pf.ShapeError, match=message):
        model.fit(x, y.astype(dtype), batch_size=16, epochs=1, verbose=0)
    with pytest.raises(pf.ShapeError, match=message):
        model.evaluate(x, y.astype(dtype), batch_size=16)


@pytest.mark.parametrize("jit", [False, True])
def test_float64_regression_targets_train_as_float32(jit):
    x, y = data()
    target = x[:, :2].astype(np.float64) * 2.0
    model = mlp(jit, loss="mse", outputs=2)
    history = model.fit(x, target, batch_size=16, epochs=6, shuffle=False, verbose=0)
    reference = mlp(jit, loss="mse", outputs=2)
    expected = reference.fit(x, target.astype(np.float32), batch_size=16, epochs=6,
                             shuffle=False, verbose=0)
    assert history.history["loss"] == pytest.approx(expected.history["loss"], rel=1e-5)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert model.evaluate(x, target) == pytest.approx(reference.evaluate(x, target), rel=1e-5)
