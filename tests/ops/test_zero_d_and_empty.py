"""0-d and zero-size tensors (issue 10 item 7): squeeze, concat, stack, softmax, log_softmax on
0-d tensors as PyTorch (a value or a clear error), zero-size dims through the shape, indexing,
conv-transpose, pooling, normalisation and loss ops forward and backward, and the rank limit
refused at the op that would exceed it, forward, never later in a backward."""
import numpy as np
import pytest
import torch

import pyfront as pf


def test_zero_d_squeeze_stack_softmax_as_pytorch():
    x, tx = pf.tensor(2.5, requires_grad=True), torch.tensor(2.5, requires_grad=True)
    assert pf.squeeze(x, 0).item() == torch.squeeze(tx, 0).item() == 2.5
    assert pf.squeeze(x, -1).shape == ()
    assert pf.stack([x, x * 2]).numpy().tolist() == [2.5, 5.0]
    for ours, theirs in ((pf.softmax, torch.softmax), (pf.log_softmax, torch.log_softmax)):
        for axis in (0, -1):
            y, ty = ours(x, axis), theirs(tx, axis)
            assert y.shape == () and y.item() == ty.item()
    y = pf.softmax(x, 0) * 3.0
    y.backward()
    assert x.grad.item() == 0.0
    with pytest.raises(pf.AxisError, match="squeeze: axis 1 is out of range for a tensor of "
                                           "rank 1"):
        pf.squeeze(x, 1)
    with pytest.raises(pf.AxisError, match="softmax: axis 2"):
        pf.softmax(x, 2)
    with pytest.raises(pf.ShapeError, match="concat: tensor 0 is 0-d and has no axis"):
        pf.concat([x, x])
    with pytest.raises(RuntimeError, match="zero-dimensional"):   # PyTorch refuses too
        torch.cat([tx, tx])


REDUCTIONS = ["sum", "mean", "prod", "max", "min", "argmax", "argmin", "any", "all",
              "logsumexp", "var", "std"]


@pytest.mark.filterwarnings("ignore:.*degrees of freedom")    # torch's var of one value: NaN
@pytest.mark.parametrize("name", REDUCTIONS)
@pytest.mark.parametrize("axis", [0, -1, (0,)])
@pytest.mark.parametrize("keepdims", [False, True])
def test_zero_d_reductions_over_dim_0_or_minus_1_as_pytorch(name, axis, keepdims):
    # PyTorch: torch.sum(torch.tensor(3.), 0) is 3 (the one dim of a 0-d tensor is 0 or -1)
    if name in ("prod", "max", "min", "argmax", "argmin") and isinstance(axis, tuple):
        axis = axis[0]                             # (torch's take one dim)
    want = getattr(torch, name)(torch.tensor(-2.5, dtype=torch.float64), axis, keepdim=keepdims)
    want = (want.values if name in ("max", "min") else want).numpy()   # torch's: (values, indices)
    got = getattr(pf, name)(pf.tensor(np.array(-2.5)), axis, keepdims=keepdims)
    got = got.values if name in ("max", "min") and isinstance(axis, int) else got
    assert got.shape == want.shape == () and got.numpy().dtype == want.dtype
    np.testing.assert_array_equal(got.numpy(), want)


@pytest.mark.parametrize("name", ["sum", "max", "logsumexp", "var"])
def test_zero_d_reductions_refuse_dims_beyond_0_and_minus_1(name):
    with pytest.raises(pf.AxisError, match=r"^%s: axis 1 is out of range" % name):
        getattr(pf, name)(pf.tensor(1.0), 1)
    with pytest.raises(pf.AxisError, match=r"^%s: axis -2 is out of range" % name):
        getattr(pf, name)(pf.tensor(1.0), -2)


def test_zero_d_reduction_over_dim_0_differentiates_and_compiles():
    x = pf.tensor(np.float64(1.5), requires_grad=True)
    pf.mean(x * x, 0).backward()
    assert x.grad.item() == 3.0
    g = pf.Graph("zero_d")
    with g:
        s = g.placeholder("s", (), "float32")
        y = pf.sum(s, -1) * 2.0
    assert g.compile(outputs=[y]).run({"s": np.float32(4.0)})[y.name] == 8.0


@pytest.mark.parametrize("name, fn", [
    ("pad", lambda t: pf.pad(t, (1, 2), "constant")),
    ("flip", lambda t: pf.flip(t, 0)),
    ("roll", lambda t: pf.roll(t, 2, 1)),
    ("tile", lambda t: pf.tile(t, (2, 1))),
    ("gather", lambda t: pf.gather(t, 1, np.zeros((0, 2), np.int64))),
    ("scatter_add", lambda t: pf.scatter_add(t, 1, np.zeros((0, 2), np.int64),
                                             pf.zeros(0, 2, dtype="float64"))),
    ("mask", lambda t: t[np.zeros((0, 3), bool)]),
    ("arrays", lambda t: t[np.zeros(0, np.int64), np.zeros(0, np.int64)]),
    ("tril", lambda t: pf.tril(t)),
    ("split", lambda t: pf.concat(pf.split(t, 2, 1), 1)),
    ("softmax", lambda t: pf.softmax(t, 0)),
    ("cross_entropy_none", lambda t: pf.cross_entropy(t, np.zeros(0, np.int64),
                                                      reduction="none", label_smoothing=0.1)),
    ("huber", lambda t: pf.huber_loss(t, t * 0.0, reduction="sum")),
])
def test_zero_size_dims_flow_forward_and_backward(name, fn):
    t = pf.tensor(np.zeros((0, 3)), requires_grad=True)
    y = fn(t)
    assert 0 in y.shape or y.shape == ()
    (g,) = pf.grad(y.sum(), [t])
    assert g.shape == (0, 3)


def test_zero_size_batches_through_nn_ops():
    x = pf.zeros(0, 2, 4, 4, requires_grad=True)
    for fn in (lambda t: pf.conv_transpose2d(t, pf.ones(2, 3, 2, 2), strides=2),
               lambda t: pf.max_pool2d(t, 3, 2, 1, 2, True),
               lambda t: pf.avg_pool2d(t, 3, 2, 1, True, True),
               lambda t: pf.interpolate(t, scale_factor=2, mode="bilinear"),
               lambda t: pf.group_norm(t, 2)):
        y = fn(x)
        assert y.shape[0] == 0
        (g,) = pf.grad(y.sum(), [x])
        assert g.shape == x.shape


def test_rank_over_the_native_limit_is_refused_at_the_forward_op():
    limit = pf.backend.cpu.MAX_DIMS
    x = pf.tensor(np.ones((1,) * limit), requires_grad=True)
    y = (x * 2.0).sum()                  # the largest rank works forward and backward
    y.backward()
    assert x.grad.shape == (1,) * limit
    with pytest.raises(pf.ShapeError, match=r"reshape: the result \(1(, 1){%d}\) has %d dims; "
                                            r"pyfront's tensors have at most %d"
                                            % (limit + 2, limit + 3, limit)):
        pf.reshape(x, (1,) * (limit + 3))       # a view: refused now, not in its backward
    with pytest.raises(pf.ShapeError, match="expand_dims|reshape"):
        pf.expand_dims(x, 0)
    big = pf.tensor(np.ones((1,) * (limit + 1)))
    with pytest.raises(pf.ShapeError, match=r"sum: an input .* has %d dims" % (limit + 1)):
        pf.sum(big)
