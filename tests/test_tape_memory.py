"""The eager tape keeps only what gradients read (Op.retain_inputs / retain_outputs): what an
op does not retain is freed as soon as the user drops it, gradients stay exact, and a gradient
rule that reads a value its op does not retain fails at once, naming the op."""
import gc
import weakref

import numpy as np
import pytest

import pyfront as pf
from pyfront import autograd
from pyfront.ops import core
from pyfront.ops.elementwise import Binary


@pytest.fixture
def no_gc():
    """Memory must go by reference counting alone: a reference cycle in the tape would keep a
    step's activations until the collector happens to run."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _leaf(a):
    return pf.tensor(np.asarray(a, np.float64), requires_grad=True)


def test_a_relu_chain_keeps_outputs_not_inputs(no_gc):
    rng = np.random.default_rng(0)
    x = _leaf(rng.standard_normal((4, 5)))
    z = x * 3.0                        # mul by a constant: x is a leaf, the constant is kept
    a = pf.relu(z)
    b = pf.relu(a)
    z_mem, a_mem, b_mem = (weakref.ref(t.numpy()) for t in (z, a, b))
    del z, a
    # z is the input of relu and the output of mul: neither keeps it
    assert z_mem() is None
    # a is relu's output (its gradient's mask) though it is also the second relu's input
    assert a_mem() is not None
    b.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), np.where(x.numpy() > 0, 3.0, 0.0))
    del b
    assert a_mem() is None and b_mem() is None


def test_the_tape_is_freed_without_the_garbage_collector(no_gc):
    x = _leaf([0.5, -1.0, 2.0])
    y = pf.exp(x)
    y_mem = weakref.ref(y.numpy())
    s = y.sum()
    del y
    assert y_mem() is not None          # exp's gradient is g * y
    s.backward()
    np.testing.assert_allclose(x.grad.numpy(), np.exp([0.5, -1.0, 2.0]))
    del s
    assert y_mem() is None              # (a stand-in linked back to its node kept it: a cycle)


def _tape_bytes(root):
    """Bytes of non-leaf memory the tape under root holds: retained inputs and outputs."""
    held = {}
    for node in autograd._topo_order([root._node]):
        for x in node.inputs:
            if isinstance(x, pf.Tensor) and not x.requires_grad or \
                    isinstance(x, pf.Tensor) and x._node is not None:
                held[id(x._data)] = x._data.nbytes
        for a in node.arrays:
            if isinstance(a, np.ndarray):
                held[id(a)] = a.nbytes
    return sum(held.values())


def _mlp_loss():
    rng = np.random.default_rng(1)
    w = [pf.tensor(rng.standard_normal(s).astype(np.float32) * 0.1, requires_grad=True)
         for s in ((784, 512), (512, 512), (512, 10))]
    b = [pf.tensor(np.zeros(s[1], np.float32), requires_grad=True)
         for s in ((784, 512), (512, 512), (512, 10))]
    x = pf.tensor(rng.standard_normal((128, 784)).astype(np.float32))
    labels = pf.tensor(rng.integers(0, 10, 128))
    h = x
    for i in range(3):
        h = pf.linear(h, w[i], b[i])            # the activation as its own op, not fused
        if i < 2:
            h = pf.relu(h)
    return pf.losses.cross_entropy(h, labels), w + b


def test_an_unfused_mlp_keeps_one_activation_per_layer(monkeypatch):
    loss, params = _mlp_loss()
    # x, the two relu outputs, the logits (cross_entropy's input) and the labels
    kept = 4 * 128 * (784 + 512 + 512 + 10) + 8 * 128
    assert _tape_bytes(loss) == kept
    loss.backward()
    grads = [p.grad.numpy().copy() for p in params]
    # before the declarations the tape also held both pre-activations and the loss
    for op in core.REGISTRY.values():
        monkeypatch.setattr(op, "retain_inputs", None)
        monkeypatch.setattr(op, "retain_outputs", None)
    loss, params = _mlp_loss()               # (the same values)
    assert _tape_bytes(loss) == kept + 4 * 128 * (512 + 512) + 4
    loss.backward()
    for p, g in zip(params, grads):               # the same gradients, bit for bit
        np.testing.assert_array_equal(p.grad.numpy(), g)


def test_rules_that_need_only_shapes_work_with_released_inputs():
    rng = np.random.default_rng(2)
    a = _leaf(rng.standard_normal((3, 4)))
    b = _leaf(rng.standard_normal((4,)))
    y = pf.reshape(a + b, (4, 3)).mean(0) - b.sum()     # add, reshape, mean, sub: shapes only
    assert all(type(x) is autograd.Released for x in y._node.inputs)    # sub keeps nothing
    y.sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), np.full((3, 4), 0.25))
    np.testing.assert_allclose(b.grad.numpy(), np.full(4, 0.75 - 3.0))


class _Double(core.Op):
    """y = 2x whose gradient (wrongly) reads what the op says it does not retain."""

    name = "test_double"
    retain_inputs = retain_outputs = ()

    def __init__(self, reads):
        self.reads = reads

    def infer(self, specs, attrs):
        return [specs[0]]

    def forward(self, k, ins, outs, attrs):
        k.run("unary", [ins[0].desc()], [outs[0].desc()], (pf.backend.cpu.lib.PF_U_AFFINE,),
              (2.0, 0.0))

    def grad(self, ctx, g):
        if self.reads == "input":
            return (g * ctx.inputs[0],)
        return (g * ctx.output(),)


@pytest.mark.parametrize("reads, what", [("input", r"input 0 \(x\) \(\._buf\)"),
                                         ("output", r"output 0 \(ctx\.output\(0\)\)")])
def test_a_rule_reading_what_its_op_does_not_retain_fails_naming_the_op(reads, what):
    # a leaf that needs a gradient stays on the tape (its gradient is accumulated into it),
    # yet the rule sees a stand-in for it too
    x = _leaf([1.0, 2.0])
    y = core.apply(_Double(reads), [x])
    np.testing.assert_array_equal(y.numpy(), [2.0, 4.0])
    with pytest.raises(pf.errors.PyfrontError,
                       match="test_double: its gradient read %s, which the op does not retain: "
                             "declare it in the op's retain_inputs / retain_outputs" % what):
        y.sum().backward()


class _ScaleBy(Binary):
    """y = x * c whose gradient (wrongly) reads c, which it says it does not retain."""

    retain_inputs = retain_outputs = ()

    def __init__(self):
        super().__init__("test_scale_by", pf.backend.cpu.lib.PF_B_MUL,
                         lambda ctx, g: (g * ctx.inputs[1], None))


def test_number_constants_are_shared_read_only_and_still_guarded():
    # x * 1.5 takes one shared 0-d constant, and the tape one stand-in for it per op and
    # input, made once; a rule reading it undeclared fails as for any input
    x = _leaf([1.0, 2.0])
    c = core.number_operand(1.5, x.dtype)
    assert core.number_operand(1.5, x.dtype) is c
    with pytest.raises(ValueError):
        c.numpy()[...] = 2.0
    y = x * 1.5
    assert y._node.inputs[1] is c               # mul's gradient reads it: retained
    added = (x + 1.5)._node.inputs[1]           # add's does not: a stand-in, made once
    assert type(added) is autograd.Released and added.shape == ()
    assert (x + 1.5)._node.inputs[1] is added
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [1.5, 1.5])
    z = core.apply(_ScaleBy(), [_leaf([1.0, 2.0]), c])
    np.testing.assert_array_equal(z.numpy(), [1.5, 3.0])
    with pytest.raises(pf.errors.PyfrontError,
                       match=r"test_scale_by: its gradient read input 1 \(b\)"):
        z.sum().backward()
