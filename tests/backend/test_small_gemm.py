"""Untransposed float32 products skip the BLAS where native/src/runtime.c's own kernels serve
them: products of 1-8 rows (single-sample and small-batch inference) take the blocked GEMV,
more rows by 8 columns or more the register tiles (6 rows by 64 columns, A as stored or
transposed, depth chunks of 512 continued through C, the bias and ReLU of the dense layer fused
into their stores); narrower products stay with the BLAS (its GEMV for one column). Both are right against float64 numpy across the
tile edges (partial column vectors and row tiles, partial groups of 8 rows of B, several panels,
B at every 4-byte alignment, the depth chunks), and a row's bits do not depend on the rows
computed with it, in a batch of any size."""
import numpy as np
import pytest

import pyfront as pf
from pyfront.backend import cpu


@pytest.fixture(params=[1, 2])
def threads(request):
    before = pf.get_num_threads()
    pf.set_num_threads(request.param)
    yield request.param
    pf.set_num_threads(before)


def _misaligned(rng, shape, offset):
    """A contiguous float32 array whose data starts `offset` floats past a 64-byte boundary."""
    size = int(np.prod(shape))
    raw = np.empty(size + 32, np.float32)
    start = (-raw.ctypes.data // 4) % 16 + offset
    out = raw[start:start + size].reshape(shape)
    out[...] = rng.standard_normal(shape).astype(np.float32)
    assert out.ctypes.data % 64 == 4 * offset
    return out


def _check_against_float64(rng, m, k, n, offsets, activations):
    """x @ w (matmul) and x @ w + b through each activation (linear), w starting at each of
    `offsets` floats past a 64-byte boundary, against float64 to 1e-5 of the terms' size."""
    x = rng.standard_normal((m, k)).astype(np.float32)
    for offset in offsets:
        w = _misaligned(rng, (k, n), offset)
        b = rng.standard_normal(n).astype(np.float32)
        want = x.astype(np.float64) @ w.astype(np.float64)
        scale = np.abs(x).astype(np.float64) @ np.abs(w).astype(np.float64) + 1e-30
        got = pf.matmul(pf.tensor(x), pf.tensor(w)).numpy()
        assert np.max(np.abs(got - want) / scale) < 1e-5, (m, k, n, offset)
        for act, f in activations:
            got = pf.linear(pf.tensor(x), pf.tensor(w), pf.tensor(b), activation=act).numpy()
            assert np.max(np.abs(got - f(want + b)) / (scale + np.abs(b))) < 1e-5, act


_RELU = ("relu", lambda v: np.maximum(v, 0))


@pytest.mark.parametrize("m", range(1, 10))
@pytest.mark.parametrize("k,n", [(1, 1), (7, 10), (8, 17), (9, 16), (5, 133), (3, 257), (300, 530),
                                 (64, 1100)])
def test_few_rows_match_float64(threads, m, k, n):
    _check_against_float64(np.random.default_rng(m * 1000 + k + n), m, k, n, (0, 3, 15),
                           [_RELU])


def test_a_row_gives_the_same_bits_alone_or_in_a_batch_of_up_to_8(threads):
    """The JVM bridge stacks concurrent calls into one batch: each caller must get the bits it
    would have got alone. (BLAS sgemv for one row and sgemm for several sum in other orders.)"""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 784)).astype(np.float32)
    w = rng.standard_normal((784, 512)).astype(np.float32) / 28
    b = rng.standard_normal(512).astype(np.float32)
    tw, tb = pf.tensor(w), pf.tensor(b)
    alone = np.concatenate([pf.linear(pf.tensor(x[i:i + 1]), tw, tb).numpy() for i in range(8)])
    for m in range(2, 9):
        together = pf.linear(pf.tensor(x[:m]), tw, tb).numpy()
        np.testing.assert_array_equal(together, alone[:m], err_msg="batch of %d" % m)
        np.testing.assert_array_equal(pf.matmul(pf.tensor(x[:m]), tw).numpy(),
                                      np.concatenate([pf.matmul(pf.tensor(x[i:i + 1]),
                                                                tw).numpy() for i in range(m)]))


@pytest.mark.parametrize("m", [9, 13, 17, 64, 131])
@pytest.mark.parametrize("k,n", [(1, 1), (20, 7), (9, 8), (5, 15), (64, 16), (64, 17),
                                 (128, 63), (33, 64),
                                 (200, 65), (100, 130), (1024, 10), (1025, 40), (1600, 70)])
def test_register_tiles_match_float64(threads, m, k, n):
    _check_against_float64(np.random.default_rng(m * 7919 + k * 31 + n), m, k, n, (0, 5),
                           [_RELU, (None, lambda v: v), ("tanh", np.tanh)])


@pytest.mark.parametrize("m,k,n", [(9, 1, 16), (13, 40, 17), (64, 128, 70), (131, 300, 130),
                                   (20, 1025, 33), (50, 64, 10)])
@pytest.mark.parametrize("accumulate", [0, 1])
def test_register_tiles_with_a_transposed(threads, m, k, n, accumulate):
    """A^T @ B (the weight gradient's product): A stored (k, m), read down its columns."""
    rng = np.random.default_rng(m + k + n)
    a = rng.standard_normal((k, m)).astype(np.float32)
    bm = rng.standard_normal((k, n)).astype(np.float32)
    c = rng.standard_normal((m, n)).astype(np.float32)
    want = 0.5 * (a.T.astype(np.float64) @ bm) + (c if accumulate else 0)
    scale = 0.5 * np.abs(a.T).astype(np.float64) @ np.abs(bm) + np.abs(c) + 1e-30
    bufs = [cpu.Buf(v, v.shape, pf.float32) for v in (a, bm, c)]
    cpu.run("gemm", [bufs[0].desc(), bufs[1].desc()], [bufs[2].desc()], [1, 0, accumulate], [0.5])
    assert np.max(np.abs(c - want) / scale) < 1e-5


def test_fused_relu_keeps_nan_and_gives_positive_zero():
    """The tiles' ReLU is the linear kernel's: NaN stays NaN, -0 and negatives become +0."""
    x = np.zeros((12, 3), np.float32)
    x[0, 0] = np.nan
    x[1, 0] = -1.0
    w = np.ones((3, 20), np.float32)
    got = pf.linear(pf.tensor(x), pf.tensor(w), pf.tensor(-0.0 * np.ones(20, np.float32)),
                    activation="relu").numpy()
    assert np.isnan(got[0]).all()
    assert (got[1:] == 0).all() and not np.signbit(got[1:]).any()


@pytest.mark.parametrize("k", [100, 784, 1024, 2000])
def test_a_row_gives_the_same_bits_in_a_batch_of_any_size(threads, k):
    """With the register tiles summing in the blocked GEMV's order, a sample's output is the same
    bits alone (the GEMV) and in batches of 9 to 200 rows, whichever thread computes it."""
    rng = np.random.default_rng(k)
    x = rng.standard_normal((200, k)).astype(np.float32)
    w = (rng.standard_normal((k, 130)) / np.sqrt(k)).astype(np.float32)
    b = rng.standard_normal(130).astype(np.float32)
    tw, tb = pf.tensor(w), pf.tensor(b)
    alone = np.concatenate([pf.linear(pf.tensor(x[i:i + 1]), tw, tb, activation="relu").numpy()
                            for i in range(200)])
    for m in (9, 16, 37, 200):
        together = pf.linear(pf.tensor(x[:m]), tw, tb, activation="relu").numpy()
        np.testing.assert_array_equal(together, alone[:m], err_msg="batch of %d" % m)
    np.testing.assert_array_equal(pf.matmul(pf.tensor(x), tw).numpy(),
                                  np.concatenate([pf.matmul(pf.tensor(x[i:i + 1]), tw).numpy()
                                                  for i in range(200)]))


@pytest.mark.parametrize("m,n", [(9, 18), (17, 18), (40, 66), (20, 100)])
def test_threads_split_without_narrow_remainders(m, n):
    """Split over threads, no part is narrower than 16 columns (a narrow remainder went to the
    BLAS): the bits equal one thread's and each row's alone."""
    rng = np.random.default_rng(m * n)
    x = rng.standard_normal((m, 1000)).astype(np.float32)
    w = (rng.standard_normal((1000, n)) / 30).astype(np.float32)
    b = rng.standard_normal(n).astype(np.float32)
    tw, tb = pf.tensor(w), pf.tensor(b)
    before = pf.get_num_threads()
    got = {}
    try:
        for threads in (1, 2):
            pf.set_num_threads(threads)
            got[threads] = (pf.linear(pf.tensor(x), tw, tb).numpy(),
                            pf.matmul(pf.tensor(x), tw).numpy())
    finally:
        pf.set_num_threads(before)
    for one, two in zip(got[1], got[2]):
        np.testing.assert_array_equal(two, one)
    alone = np.concatenate([pf.linear(pf.tensor(x[i:i + 1]), tw, tb).numpy() for i in range(m)])
    np.testing.assert_array_equal(got[2][0], alone)


def test_accumulate_and_alpha_read_c_only_when_asked():
    """beta = 0 never reads C (stale NaNs there must not leak); accumulate adds to it."""
    rng = np.random.default_rng(1)
    # the blocked GEMV; the register tiles; a deep product: the tiles in depth chunks, or the
    # BLAS when it adds to C (C cannot hold the chunks' sums then)
    for rows, depth in ((3, 40), (30, 40), (30, 600)):
        _alpha_and_accumulate(rng, rows, depth)


def _alpha_and_accumulate(rng, rows, depth):
    a = rng.standard_normal((rows, depth)).astype(np.float32)
    bm = rng.standard_normal((depth, 21)).astype(np.float32)
    want = 0.5 * (a.astype(np.float64) @ bm)
    for accumulate, start in ((0, np.nan), (1, 2.0)):
        c = np.full((rows, 21), start, np.float32)
        bufs = [cpu.Buf(v, v.shape, pf.float32) for v in (a, bm, c)]
        cpu.run("gemm", [bufs[0].desc(), bufs[1].desc()], [bufs[2].desc()], [0, 0, accumulate],
                [0.5])
        np.testing.assert_allclose(c, want + (2.0 if accumulate else 0), rtol=1e-5, atol=1e-5)
