"""Integer state (a Dropout layer's generator seed and counter) travels bit for bit between the
driver and the tasks and is never averaged: it was packed into the float32 weight vector (a
63-bit seed rounded) and averaged with the float buffers (in the collective mode the mean of
two seeds made another number), so the two modes trained on different dropout masks and the
seed changed under training."""
import numpy as np
import pytest

import pyfront as pf

from spark_support import to_df

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


def _dropout_mlp(x):
    pf.random.seed(5)
    model = pf.nn.Sequential([pf.nn.Dense(16, activation="relu"), pf.nn.Dropout(0.3),
                              pf.nn.Dense(10)])
    model(pf.tensor(x[:1]))
    return model


def _fit(spark, x, y, strategy):
    from pyfront.spark import SparkTrainer

    model = _dropout_mlp(x)
    trainer = SparkTrainer(model, strategy, num_workers=2, batch_size_per_worker=16, seed=1,
                           verbose=0, loss="cross_entropy",
                           optimizer=pf.optim.SGD(model.parameters(), lr=0.1, momentum=0.9))
    trainer.fit(to_df(spark, x, y), epochs=2)
    return model


def test_dropout_state_is_exact_and_both_modes_draw_the_same_masks(spark, digits):
    from pyfront.spark import SyncSGD

    x, _, y, _ = digits
    x, y = x[:96], y[:96]
    before = _dropout_mlp(x).state_dict()["1.rng_state"].copy()
    per_job = _fit(spark, x, y, SyncSGD()).state_dict()
    collective = _fit(spark, x, y, SyncSGD(collective=True)).state_dict()
    for state in (per_job, collective):
        after = state["1.rng_state"]
        assert after.dtype == before.dtype
        assert after[0] == before[0], "the seed changed under training"
        assert after[1] > before[1], "the generator did not go on"
    # each step's workers start from the same generator position in both modes: the same
    # masks, so the same training (to float32 rounding of the two exchanges' sums)
    np.testing.assert_array_equal(per_job["1.rng_state"], collective["1.rng_state"])
    for k, v in per_job.items():
        np.testing.assert_allclose(collective[k], v, rtol=1e-5, atol=1e-6, err_msg=k)


def test_dropout_training_repeats_bit_for_bit(spark, digits):
    from pyfront.spark import SyncSGD

    x, _, y, _ = digits
    first = _fit(spark, x[:64], y[:64], SyncSGD(collective=True)).state_dict()
    again = _fit(spark, x[:64], y[:64], SyncSGD(collective=True)).state_dict()
    for k, v in first.items():
        np.testing.assert_array_equal(again[k], v, err_msg=k)
