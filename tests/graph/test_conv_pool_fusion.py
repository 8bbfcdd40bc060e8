"""A convolution whose only reader is a 2x2 max pool of stride 2 runs as one kernel writing
the pooled maxima (passes.fuse_conv_pool): the same bits as the convolution then the pool,
on every path the kernel takes (Winograd, spatial lanes, and the convolution-then-pool
fallback of the other loops and float64); graphs that need the convolution's output again
(training) keep the two apart; a value fusion folded away can still be fetched."""
import numpy as np
import pytest

import pyfront as pf


def _model(out_channels, kernel, activation="relu"):
    return pf.nn.Sequential([pf.nn.Conv2D(out_channels, kernel, activation=activation),
                             pf.nn.MaxPool2D(2)])


def _compiled_ops(fast):
    (entry,) = list(fast._jit._cache.values())      # one signature was compiled
    return [n.op.name + (":pool" if n.attrs.get("pool") else "")
            for n in entry.forward.program.nodes if n.kind == "op"]


CASES = [   # (input shape, out channels, kernel, activation, dtype): the path it takes
    ((5, 1, 28, 28), 32, 3, "relu", np.float32),      # spatial lanes (a first layer)
    ((3, 2, 12, 13), 8, 3, None, np.float32),          # spatial lanes, odd width, no ReLU
    ((4, 32, 13, 13), 40, 3, "relu", np.float32),      # Winograd, odd output (11 -> 5)
    ((2, 16, 30, 33), 24, 3, None, np.float32),        # Winograd, 2 segments per tile-row
    ((4, 16, 12, 12), 20, 5, "relu", np.float32),      # channel lanes: conv, then the pool
    ((3, 1, 9, 9), 4, 3, "relu", np.float32),          # im2col (rows too narrow for lanes)
    ((4, 3, 15, 17), 8, 3, "relu", np.float64),        # float64
]


@pytest.mark.parametrize("shape,out_channels,kernel,activation,dtype", CASES)
def test_fused_conv_pool_gives_the_unfused_bits(rng, shape, out_channels, kernel, activation,
                                                 dtype):
    model = _model(out_channels, kernel, activation)
    model(pf.tensor(np.zeros((1,) + shape[1:], np.float32)))
    if dtype == np.float64:
        model.to("float64")
    model.eval()
    x = rng.standard_normal(shape).astype(dtype)
    x[0, 0, 2, 3] = np.nan                   # a NaN wins its window (or the ReLU zeroes it)
    with pf.no_grad():
        want = model(pf.tensor(x)).numpy()
    fast = pf.jit(model)
    got = fast.run_numpy(x)
    assert _compiled_ops(fast) == ["conv2d:pool"]
    np.testing.assert_array_equal(got, want)
    assert np.isnan(want).any() == (activation is None)



@pytest.mark.parametrize("shape,out_channels", [((1, 1, 28, 28), 32), ((1, 32, 13, 13), 64)])
def test_one_image_on_several_threads_gives_the_unfused_bits(rng, shape, out_channels):
    """Batch-1 inference: the threads split the output channels of the fused kernel."""
    model = _model(out_channels, 3)
    model(pf.tensor(np.zeros(shape, np.float32)))
    model.eval()
    x = rng.standard_normal(shape).astype(np.float32)
    with pf.no_grad():
        want = model(pf.tensor(x)).numpy()
    before = pf.get_num_threads()
    try:
        for threads in (1, 2, 3):
            pf.set_num_threads(threads)
            fast = pf.jit(model)
            np.testing.assert_array_equal(fast.run_numpy(x), want)
            assert _compiled_ops(fast) == ["conv2d:pool"]
    finally:
        pf.set_num_threads(before)

def test_training_graphs_keep_the_convolution_and_the_pool_apart(rng):
    model = pf.nn.Sequential([pf.nn.Conv2D(16, 3, activation="relu"), pf.nn.MaxPool2D(2),
                              pf.nn.Flatten(), pf.nn.Dense(3)])
    x = rng.standard_normal((8, 1, 12, 12)).astype(np.float32)
    y = rng.integers(0, 3, 8)
    model(pf.tensor(x[:1]))
    opt = pf.optim.SGD(model.parameters(), lr=0.1)
    step = pf.train.CompiledTrainStep(model, pf.losses.cross_entropy, opt)
    first = step(x, y)[0]
    ops = [n.op.name for n in step.executors[0].program.nodes if n.kind == "op"]
    assert "max_pool2d" in ops and not any(n.attrs.get("pool") for n in
                                           step.executors[0].program.nodes if n.kind == "op")
    assert step(x, y)[0] < first                # and it trains


def test_the_convolution_fused_away_can_still_be_fetched(rng):
    g = pf.Graph()
    with g:
        x = pf.placeholder("x", (None, 1, 10, 10))
        conv = pf.nn.Conv2D(8, 3, activation="relu")
        z = conv(x)
        out = pf.nn.MaxPool2D(2)(z)
    exe = g.compile(outputs=[out])
    assert [n.attrs.get("pool") for n in exe.program.nodes if n.kind == "op"] == [2]
    xb = rng.standard_normal((2, 1, 10, 10)).astype(np.float32)
    got = exe.run({"x": xb}, fetch=[z.name])
    with pf.no_grad():
        want = conv(pf.tensor(xb)).numpy()
    np.testing.assert_array_equal(got[z.name], want)
    np.testing.assert_array_equal(got[out.name], pf.max_pool2d(pf.tensor(want), 2).numpy())
