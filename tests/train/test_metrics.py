"""Metrics against scikit-learn / numpy, accumulated over batches and merged across workers."""
import numpy as np
import pytest
from sklearn import metrics as skm

from pyfront.train import metrics as M

rng = np.random.default_rng(0)
N, C = 203, 7
LOGITS = rng.standard_normal((N, C)).astype(np.float32)
LABELS = rng.integers(0, C, N)
REG_TRUE = rng.standard_normal((N, 3))
REG_PRED = REG_TRUE + rng.standard_normal((N, 3)) * 0.3


def _in_batches(metric, y_true, y_pred, size=32):
    for i in range(0, len(y_true), size):
        metric.update(y_true[i:i + size], y_pred[i:i + size])
    return metric


def _merged(make, y_true, y_pred, workers=3):
    """Split the data over `workers` metrics, combine their states into a fresh one."""
    parts = np.array_split(np.arange(len(y_true)), workers)
    total = make()
    for idx in parts:
        total.merge(_in_batches(make(), y_true[idx], y_pred[idx], 17).state())
    return total


def test_accuracy_from_logits_and_one_hot_and_probabilities():
    expect = skm.accuracy_score(LABELS, LOGITS.argmax(1))
    assert _in_batches(M.Accuracy(), LABELS, LOGITS).result() == pytest.approx(expect)
    probs = np.exp(LOGITS) / np.exp(LOGITS).sum(1, keepdims=True)
    assert _in_batches(M.Accuracy(), LABELS, probs).result() == pytest.approx(expect)
    one_hot = np.eye(C)[LABELS]
    assert _in_batches(M.Accuracy(), one_hot, LOGITS).result() == pytest.approx(expect)
    assert _merged(M.Accuracy, LABELS, LOGITS).result() == pytest.approx(expect)


def test_binary_accuracy_on_probabilities_and_logits():
    y = rng.integers(0, 2, N)
    p = rng.random(N)
    expect = skm.accuracy_score(y, p > 0.5)
    assert _in_batches(M.Accuracy(), y, p[:, None]).result() == pytest.approx(expect)
    assert _in_batches(M.BinaryAccuracy(), y.astype(np.float32), p).result() == \
        pytest.approx(expect)
    logits = np.log(p / (1 - p))
    assert _in_batches(M.BinaryAccuracy(threshold=0.0), y, logits).result() == \
        pytest.approx(expect)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_top_k_accuracy_matches_sklearn(k):
    expect = skm.top_k_accuracy_score(LABELS, LOGITS, k=k, labels=np.arange(C))
    assert _in_batches(M.TopKAccuracy(k), LABELS, LOGITS).result() == pytest.approx(expect)
    assert _merged(lambda: M.TopKAccuracy(k), LABELS, LOGITS).result() == pytest.approx(expect)
    assert M.get("top%d_accuracy" % k).k == k


def test_regression_metrics_over_the_whole_data():
    mae = skm.mean_absolute_error(REG_TRUE, REG_PRED)
    mse = skm.mean_squared_error(REG_TRUE, REG_PRED)
    assert _in_batches(M.MeanAbsoluteError(), REG_TRUE, REG_PRED).result() == pytest.approx(mae)
    assert _in_batches(M.MeanSquaredError(), REG_TRUE, REG_PRED).result() == pytest.approx(mse)
    rmse = _in_batches(M.RootMeanSquaredError(), REG_TRUE, REG_PRED, size=50)
    assert rmse.result() == pytest.approx(np.sqrt(mse))
    # not the mean of batch RMSEs, which differs with a ragged last batch
    batch_rmses = [np.sqrt(((REG_TRUE[i:i + 50] - REG_PRED[i:i + 50]) ** 2).mean())
                   for i in range(0, N, 50)]
    assert abs(np.mean(batch_rmses) - np.sqrt(mse)) > 1e-4
    assert _merged(M.RootMeanSquaredError, REG_TRUE, REG_PRED).result() == \
        pytest.approx(np.sqrt(mse))
    # (N,) targets against (N, 1) predictions
    assert _in_batches(M.MeanAbsoluteError(), REG_TRUE[:, 0], REG_PRED[:, :1]).result() == \
        pytest.approx(skm.mean_absolute_error(REG_TRUE[:, 0], REG_PRED[:, 0]))


def test_confusion_matrix_matches_sklearn_and_merges():
    expect = skm.confusion_matrix(LABELS, LOGITS.argmax(1), labels=np.arange(C))
    got = _in_batches(M.ConfusionMatrix(C), LABELS, LOGITS).result()
    np.testing.assert_array_equal(got, expect)
    np.testing.assert_array_equal(_merged(lambda: M.ConfusionMatrix(C), LABELS,
                                          LOGITS).result(), expect)
    np.testing.assert_array_equal(
        _in_batches(M.ConfusionMatrix(C), LABELS, LOGITS.argmax(1)).result(), expect)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        M.ConfusionMatrix(3).update(np.array([0, 5]), np.array([0, 1]))


def test_reset_state_merge_contract():
    m = _in_batches(M.Accuracy(), LABELS, LOGITS)
    state = m.state()
    assert state == {"total": m.stats["total"], "count": float(N)}
    m.reset()
    assert np.isnan(m.result())
    m.merge(state)
    assert m.result() == pytest.approx(skm.accuracy_score(LABELS, LOGITS.argmax(1)))
    with pytest.raises(ValueError, match="state has"):
        m.merge({"counts": np.zeros((2, 2))})


def test_get_by_name_and_errors():
    assert isinstance(M.get("acc"), M.Accuracy)
    assert isinstance(M.get("rmse"), M.RootMeanSquaredError)
    with pytest.raises(ValueError, match="unknown metric"):
        M.get("precision_at_recall")
    fn = M.get(lambda t, p: float(np.mean(np.abs(t - p))))
    fn.update(np.zeros(4), np.ones(4))
    fn.update(np.zeros(2), np.full(2, 4.0))
    assert fn.result() == pytest.approx((4 * 1 + 2 * 4) / 6)
