"""Traced training graphs crop a convolution whose only reader is a pooling that leaves its last
rows or columns unread (graph.rewrite.crop_unpooled_outputs): the convolution reads a slice of
its input, and losses, gradients and the trained weights equal the eager tape's, which runs
the convolution whole."""
import numpy as np
import pytest

import pyfront as pf
from pyfront.graph.rewrite import crop_unpooled_outputs
from pyfront.train import make_gradient_step, make_train_step
from pyfront.train.step import _trace_loss


def _conv_pool(conv, pool, dims=2):
    conv_layer = {1: pf.nn.Conv1D, 2: pf.nn.Conv2D, 3: pf.nn.Conv3D}[dims]
    pool_layer = {"max": {1: pf.nn.MaxPool1D, 2: pf.nn.MaxPool2D, 3: pf.nn.MaxPool3D},
                  "avg": {1: pf.nn.AvgPool1D, 2: pf.nn.AvgPool2D, 3: pf.nn.AvgPool3D}}
    return [conv_layer(**conv), pool_layer[pool[0]][dims](*pool[1:])]


CASES = [   # (input shape, conv, pool, dims): the conv output and the rows the pool reads
    ((6, 3, 13, 13), dict(filters=8, kernel_size=3, activation="relu"), ("max", 2), 2),  # 11 -> 10
    ((6, 3, 13, 12), dict(filters=8, kernel_size=3), ("avg", 2), 2),                     # 11x10
    ((6, 3, 15, 15), dict(filters=8, kernel_size=3, strides=2, padding="same"), ("max", 3), 2),
    ((6, 2, 15, 15), dict(filters=8, kernel_size=4, dilation=2, activation="relu"),
     ("max", 2, 2), 2),                                                                  # 9 -> 8
    ((6, 4, 12, 12), dict(filters=8, kernel_size=3, padding="same", groups=2), ("max", 3, 2), 2),
    ((6, 3, 29), dict(filters=8, kernel_size=4), ("max", 4), 1),                          # 26 -> 24
    ((4, 2, 9, 9, 9), dict(filters=4, kernel_size=3), ("max", 2), 3),                     # 7 -> 6
]


def _model(case, seed=0):
    shape, conv, pool, dims = case
    pf.random.seed(seed)
    model = pf.nn.Sequential(_conv_pool(conv, pool, dims) + [pf.nn.Flatten(), pf.nn.Dense(5)])
    model(pf.tensor(np.zeros((1,) + shape[1:], np.float32)))
    return model


def _data(case, seed=1):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(case[0]).astype(np.float32), rng.integers(0, 5, case[0][0])


@pytest.mark.parametrize("case", CASES)
def test_cropped_training_follows_the_eager_trajectory(case):
    x, y = _data(case)
    runs = {}
    for compiled in (False, True):
        model = _model(case)
        opt = pf.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
        step = make_train_step(model, pf.losses.cross_entropy, opt, compiled=compiled)
        losses = [step(x, y)[0] for _ in range(4)]
        runs[compiled] = losses, [p.numpy().copy() for p in model.parameters()]
    np.testing.assert_allclose(runs[True][0], runs[False][0], rtol=1e-5)
    for a, b in zip(runs[True][1], runs[False][1]):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("case", CASES)
def test_cropped_gradients_equal_the_tape_and_the_graph_is_cropped(case):
    x, y = _data(case)
    model = _model(case)
    params = model.parameters()
    loss, grads, preds = make_gradient_step(model, pf.losses.cross_entropy, params,
                                            compiled=True)(x, y)
    ref = _model(case)     # the eager step: the tape, the convolution whole
    ref_loss, ref_grads, ref_preds = make_gradient_step(ref, pf.losses.cross_entropy,
                                                        ref.parameters(), compiled=False)(x, y)
    np.testing.assert_allclose(loss, ref_loss, rtol=1e-5)
    np.testing.assert_allclose(preds, ref_preds, rtol=1e-5, atol=1e-6)
    for g, r in zip(grads, ref_grads):
        np.testing.assert_allclose(g, r, rtol=1e-4, atol=1e-5)
    # the traced graph: the convolution reads a slice and writes only what the pool reads
    g, _, _, leaves, _, _ = _trace_loss(_model(case), pf.losses.cross_entropy, [x], [y], "t")
    (conv,) = [n for n in g.nodes if n.kind == "op" and n.op.name.startswith("conv")]
    pool = [n for n in g.nodes if n.kind == "op" and "pool" in n.op.name][0]
    src = conv.inputs[0][0]
    assert src.op is not None and src.op.name == "slice"
    assert g.nodes.index(src) < g.nodes.index(conv)
    a = pool.attrs
    read = [(o - 1) * s + k for o, s, k in zip(pool.specs[0].shape[2:], a["strides"],
                                                 a["pool_size"])]
    assert list(conv.specs[0].shape[2:]) == read
    assert [n.id for n in g.nodes] == list(range(len(g.nodes)))


def test_convolutions_read_elsewhere_or_kept_stay_whole():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 13, 13)).astype(np.float32)
    y = rng.integers(0, 5, 4)
    # the convolution's output is the model's output too: kept
    conv = pf.nn.Conv2D(4, 3)
    inp = pf.nn.Input((3, 13, 13))
    c = conv(inp)
    logits = pf.nn.Dense(5)(pf.nn.Flatten()(pf.nn.MaxPool2D(2)(c)))
    model = pf.nn.Model(inputs=inp, outputs=[logits, c])
    g, _, _, leaves, _, _ = _trace_loss(model, lambda outs, t: pf.losses.cross_entropy(
        outs[0], t), [x], [y], "t")
    convs = [n for n in g.nodes if n.kind == "op" and n.op.name == "conv2d"]
    assert [tuple(n.specs[0].shape[2:]) for n in convs] == [(11, 11)]
    assert not any(n.kind == "op" and n.op.name == "slice" for n in g.nodes)
    # read by the pool and by a sum: two readers, whole
    model2 = pf.nn.Sequential([pf.nn.Conv2D(4, 3), pf.nn.MaxPool2D(2), pf.nn.Flatten(),
                               pf.nn.Dense(5)])
    model2(pf.tensor(x[:1]))
    graph = pf.Graph("two readers")
    with graph:
        xs = graph.placeholder("x", x.shape)
        h = model2.layers[0](xs)
        total = pf.sum(model2.layers[1](h)) + pf.sum(h)
    assert crop_unpooled_outputs(graph, [total]) == 0
    # 1% of the outputs unread (101 -> 100): the slice would cost more than it saves
    conv1d = pf.nn.Conv1D(4, 3)
    conv1d(pf.tensor(np.zeros((1, 3, 103), np.float32)))
    graph = pf.Graph("barely cropped")
    with graph:
        xs = graph.placeholder("x", (4, 3, 103))
        out = pf.max_pool1d(conv1d(xs), 2)
    assert crop_unpooled_outputs(graph, [out]) == 0
    # a pool with padding depends on the input's extent: whole
    graph = pf.Graph("padded pool")
    with graph:
        xs = graph.placeholder("x", x.shape)
        out = pf.max_pool2d(model2.layers[0](xs), 2, padding=((0, 1), (0, 1)))
    assert crop_unpooled_outputs(graph, [out]) == 0
