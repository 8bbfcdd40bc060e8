"""dropout: the Philox generator against its published known answers, reproducible masks,
new masks on every call (eager and compiled), the keep fraction within statistical bounds,
the gradient replaying the forward's mask, and the identity outside training."""
import numpy as np
import pytest

import pyfront as pf
from pyfront import errors
from pyfront.backend import cpu
from pyfront.ops.dropout import new_state
from pyfront.testing import check_grad


def _int64(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def random_words(seed, counter, n, first_block=0):
    out = np.zeros(n, np.int64)
    cpu.run("random_bits", [], [cpu.Buf(out, out.shape, pf.int64).desc()],
            (_int64(seed), _int64(counter), _int64(first_block)))
    return out


@pytest.mark.parametrize("key,counter,expected", [
    # Random123 kat_vectors, philox4x32 10 rounds: (ctr, key) -> words
    ((0, 0), (0, 0, 0, 0), (0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8)),
    ((0xffffffff, 0xffffffff), (0xffffffff,) * 4,
     (0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd)),
    ((0xa4093822, 0x299f31d0), (0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344),
     (0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1)),
])
def test_philox_known_answers(key, counter, expected):
    seed = key[0] | key[1] << 32
    block = counter[0] | counter[1] << 32          # the element block: Philox words 0, 1
    stream = counter[2] | counter[3] << 32         # the call counter: words 2, 3
    assert tuple(random_words(seed, stream, 4, block)) == expected


def test_words_do_not_depend_on_how_they_are_split():
    whole = random_words(7, 3, 1000)
    # block 10 starts at word 40 of the same stream
    np.testing.assert_array_equal(random_words(7, 3, 100, first_block=10), whole[40:140])


def test_mask_is_the_generator_words_against_the_rate():
    x = np.ones(1000, np.float32)
    y = pf.dropout(pf.tensor(x), 0.25, state=new_state(11)).numpy()
    kept = random_words(11, 0, 1000) >= int(0.25 * 2 ** 32)
    np.testing.assert_array_equal(y != 0, kept)
    np.testing.assert_array_equal(y[kept], np.float32(1 / 0.75))


def test_same_seed_same_mask_and_successive_calls_differ():
    x = pf.tensor(np.ones((64, 64), np.float32))
    state = new_state(5)
    first = pf.dropout(x, 0.5, state=state).numpy()
    assert state.numpy().tolist() == [5, 1]              # the counter advanced in place
    second = pf.dropout(x, 0.5, state=state).numpy()
    np.testing.assert_array_equal(pf.dropout(x, 0.5, state=new_state(5)).numpy(), first)
    assert (first != second).mean() > 0.4                 # independent masks differ on ~half
    assert (first != pf.dropout(x, 0.5, state=new_state(6)).numpy()).mean() > 0.4


def test_global_seed_makes_functional_dropout_reproducible():
    x = pf.tensor(np.ones(500, np.float32))
    pf.random.seed(0)
    a = [pf.dropout(x, 0.3).numpy() for _ in range(2)]
    pf.random.seed(0)
    b = [pf.dropout(x, 0.3).numpy() for _ in range(2)]
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert (a[0] != a[1]).any()


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.9])
def test_keep_fraction_within_statistical_bounds(rate):
    n = 400_000
    y = pf.dropout(pf.tensor(np.ones(n, np.float32)), rate, state=new_state(123)).numpy()
    kept = (y != 0).mean()
    assert abs(kept - (1 - rate)) < 6 * np.sqrt(rate * (1 - rate) / n)
    # neighbouring elements (one Philox block, and across blocks) are uncorrelated
    m = (y != 0).astype(np.float64)
    for lag in (1, 4):
        corr = np.corrcoef(m[:-lag], m[lag:])[0, 1]
        assert abs(corr) < 6 / np.sqrt(n)
    assert np.all(y[y != 0] == np.float32(1 / (1 - rate)))


def test_rate_zero_and_one():
    x = np.random.default_rng(0).standard_normal((7, 9)).astype(np.float32)
    np.testing.assert_array_equal(pf.dropout(pf.tensor(x), 0.0).numpy(), x)
    xt = pf.tensor(x, requires_grad=True)
    y = pf.dropout(xt, 1.0)
    assert not y.numpy().any()
    (dx,) = pf.grad(y.sum(), [xt])
    assert not dx.numpy().any()


def test_identity_when_not_training():
    xt = pf.tensor(np.ones(10, np.float32))
    assert pf.dropout(xt, 0.7, training=False) is xt


def test_gradient_uses_the_forward_mask():
    x = np.random.default_rng(1).standard_normal((33, 17)).astype(np.float32)
    g = np.random.default_rng(2).standard_normal((33, 17)).astype(np.float32)
    xt = pf.tensor(x, requires_grad=True)
    state = new_state(9)
    y = pf.dropout(xt, 0.4, state=state)
    pf.dropout(xt, 0.4, state=state)          # a later call must not change y's gradient
    (dx,) = pf.grad(y, [xt], grad_outputs=[pf.tensor(g)])
    mask = (y.numpy() != 0) / np.float32(0.6)
    np.testing.assert_allclose(dx.numpy(), g * mask, rtol=1e-6)


def test_gradient_matches_finite_differences():
    x = np.random.default_rng(3).standard_normal((5, 6))
    # a fresh state of one seed per evaluation: every evaluation draws the same mask
    check_grad(lambda x: pf.dropout(x, 0.3, state=new_state(4)), x)

    def grads(x):
        x.requires_grad_()
        y = pf.dropout(x, 0.3, state=new_state(4))
        return pf.grad((y * y).sum(), [x], create_graph=True)[0]

    check_grad(grads, x)


def test_same_mask_on_one_and_two_threads():
    x = pf.tensor(np.ones(300_001, np.float32))
    before = pf.get_num_threads()
    try:
        pf.set_num_threads(1)
        one = pf.dropout(x, 0.5, state=new_state(77)).numpy()
        pf.set_num_threads(2)
        two = pf.dropout(x, 0.5, state=new_state(77)).numpy()
    finally:
        pf.set_num_threads(before)
    np.testing.assert_array_equal(one, two)


def test_compiled_dropout_draws_a_new_mask_every_run_like_eager():
    eager_state, graph_state = new_state(21), new_state(21)
    x = np.random.default_rng(4).standard_normal((6, 10)).astype(np.float32)
    g = pf.Graph()
    with g:
        xs = g.placeholder("x", (None, 10))
        y = pf.dropout(xs, 0.5, state=graph_state)
        loss = (y * y).sum()
        (dx,) = g.gradients(loss, [xs])
        run = g.compile({"y": y, "dx": dx})
    previous = None
    for _ in range(3):
        out = run.run({"x": x})
        xt = pf.tensor(x, requires_grad=True)
        ye = pf.dropout(xt, 0.5, state=eager_state)
        (de,) = pf.grad((ye * ye).sum(), [xt])
        np.testing.assert_array_equal(out["y"], ye.numpy())
        np.testing.assert_allclose(out["dx"], de.numpy(), rtol=1e-6)
        if previous is not None:
            assert (out["y"] != previous).any()
        previous = out["y"]
    assert graph_state.numpy().tolist() == [21, 3]


def test_bad_arguments():
    x = pf.tensor(np.ones(4, np.float32))
    for rate in (-0.1, 1.5, "0.5", True):
        with pytest.raises(ValueError, match="rate"):
            pf.dropout(x, rate)
    with pytest.raises(errors.ShapeError, match=r"dropout.*generator state.*\(3,\)"):
        pf.dropout(x, 0.5, state=pf.tensor(np.zeros(3, np.int64)))
    with pytest.raises(errors.DTypeError, match="float"):
        pf.dropout(pf.tensor(np.ones(4, np.int64)), 0.5)
    with pytest.raises(TypeError, match="seed"):
        new_state(1.5)
    with pytest.raises(errors.NativeError, match="rate must be in"):
        out = np.zeros(4, np.float32)
        key = np.zeros(2, np.int64)
        cpu.run("dropout_replay", [cpu.Buf(out, (4,), pf.float32).desc(),
                                   cpu.Buf(key, (2,), pf.int64).desc()],
                [cpu.Buf(out, (4,), pf.float32).desc()], (), (2.0,))
