"""Eager dispatch's fast paths (ops.core.apply, the native replay pf_replay_run, the tape entry
and the backward walk) against what the general path gives: the same values, errors, tape
and name scopes."""
import threading

import numpy as np
import pytest

import pyfront as pf
from pyfront import autograd, errors
from pyfront.backend import cpu
from pyfront.ops import core


def _rand(*shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def test_native_replay_refuses_a_patch_outside_its_buffers():
    # the native side checks what it is given: a bad index is a status, never a wild write
    desc = cpu.ffi.new("pf_tensor *")
    patch = cpu.ffi.new("pf_patch[1]", [{"desc": desc, "buffer": 2, "offset": 0}])
    buffers = cpu.ffi.new("void *[2]")
    replay = cpu.ffi.new("pf_replay *", {"steps": cpu.ffi.NULL, "patches": patch,
                                         "buffers": buffers, "n_steps": 0, "n_patches": 1,
                                         "n_buffers": 2})
    status = cpu.lib.pf_replay_run(replay)
    assert status == cpu.lib.PF_ERR_ARGUMENT
    assert "patch 0" in cpu.ffi.string(cpu.lib.pf_last_error()).decode()
    assert cpu.lib.pf_replay_run(cpu.ffi.NULL) == cpu.lib.PF_ERR_ARGUMENT


def test_a_multi_kernel_replay_runs_every_step_on_the_new_memory():
    # softmax-like ops emit several kernels: each replayed step must see this call's memory
    for seed in range(3):
        x = _rand(4, 6, seed=seed)
        got = pf.softmax(pf.tensor(x), -1).numpy()
        e = np.exp(x - x.max(-1, keepdims=True))
        np.testing.assert_allclose(got, e / e.sum(-1, keepdims=True), rtol=1e-5, atol=1e-6)


def test_inline_dispatch_keeps_errors_naming_the_op_and_shapes():
    a, b = pf.tensor(_rand(3, 4)), pf.tensor(_rand(5))
    for _ in range(2):                  # once recorded, once where a replay could be looked up
        with pytest.raises(errors.ShapeError, match=r"add.*\(3, 4\).*\(5,\)"):
            a + b
    with core.name_scope("dense_2"):
        with pytest.raises(errors.ShapeError, match=r"add in layer 'dense_2'"):
            a + b


def test_replayed_results_are_fresh_writable_tensors_off_the_tape():
    x = pf.tensor(_rand(8, seed=1))
    ys = [x * 2.0 for _ in range(3)]
    assert len({id(y.numpy()) for y in ys}) == 3
    ys[0].numpy()[0] = 5.0                # its own memory: the others keep their values
    np.testing.assert_allclose(ys[1].numpy(), x.numpy() * 2.0)
    for y in ys:
        assert not y.requires_grad and y.grad is None and y._node is None and y.name is None


def test_replays_record_the_tape_only_where_grad_is_enabled_and_needed():
    x = pf.tensor(_rand(8, seed=2), requires_grad=True)
    c = pf.tensor(_rand(8, seed=3))
    for _ in range(2):
        y = x * c
        assert y.requires_grad and y._node is not None and y._node.needs == (True, False)
        with pf.no_grad():
            assert (x * c)._node is None
        assert (c * c)._node is None and not (c * c).requires_grad
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), c.numpy())


def test_no_grad_is_per_thread_for_replayed_ops():
    x = pf.tensor(_rand(8, seed=4), requires_grad=True)
    (x * 3.0).numpy()                     # a replay exists in this thread
    seen = []

    def other():
        seen.append((x * 3.0).requires_grad)     # this thread's grad mode: enabled

    with pf.no_grad():
        assert not (x * 3.0).requires_grad
        t = threading.Thread(target=other)
        t.start()
        t.join()
    assert seen == [True] and (x * 3.0).requires_grad


def test_node_outputs_are_made_on_the_same_memory_when_not_tracked():
    x = pf.tensor(_rand(5, seed=5), requires_grad=True)
    y = pf.exp(x)
    node = y._node
    out = node.output(0)
    assert out is not y and out.numpy() is y.numpy() and out._node is node
    assert node.output(0) is out          # the made one is kept while it lives


class _ScopeProbe(core.Op):
    """y = x; its gradient notes the name scope it runs in."""

    name = "test_scope_probe"
    seen = []

    def infer(self, specs, attrs):
        return [specs[0]]

    def forward(self, k, ins, outs, attrs):
        k.run("unary", [ins[0].desc()], [outs[0].desc()], (cpu.lib.PF_U_IDENTITY,))

    def grad(self, ctx, g):
        _ScopeProbe.seen.append(core.current_scope())
        return (g,)


_probe = _ScopeProbe()           # (not registered: the contract tests walk the registry)


def test_gradient_rules_run_in_their_ops_scope_and_the_scope_is_restored():
    x = pf.tensor(_rand(3, seed=6), requires_grad=True)
    with core.name_scope("model"):
        with core.name_scope("dense_1"):
            y = core.apply(_probe, [x])
            assert core.current_scope() == "model/dense_1"
        assert core.current_scope() == "model"
    z = core.apply(_probe, [y])
    _ScopeProbe.seen.clear()
    with core.name_scope("outer"):
        z.sum().backward()
        assert core.current_scope() == "outer"
    assert _ScopeProbe.seen == ["outer", "outer/model/dense_1"]
    assert core.current_scope() == ""
    np.testing.assert_allclose(x.grad.numpy(), np.ones(3))


def test_a_multi_output_node_gets_zeros_for_the_output_no_gradient_reached():
    x = pf.tensor(_rand(6, seed=7), requires_grad=True)
    a, b = pf.split(x, [2, 4])
    (a * 3.0).sum().backward()            # nothing reaches b
    np.testing.assert_allclose(x.grad.numpy(), [3, 3, 0, 0, 0, 0])


def test_a_result_whose_memory_is_replaced_computes_on_the_new_memory():
    # results keep their array's data pointer for the next op: valid only for that array
    x = pf.tensor(_rand(4, seed=8), requires_grad=True)
    y = x * 2.0
    (y * 1.0).numpy()                     # a replay reads y through its kept pointer
    y[1] = 10.0                           # recorded: y gets new memory
    want = x.numpy() * 2
    want[1] = 10.0
    np.testing.assert_allclose((y * 1.0).numpy(), want, rtol=1e-6)
    t = pf.tensor(_rand(4, seed=9))
    z = t + 1.0
    z._data = np.zeros(4, np.float32)     # memory swapped behind dispatch's back
    np.testing.assert_array_equal((z * 3.0).numpy(), np.zeros(4))
