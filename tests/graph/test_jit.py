"""pf.jit and hybridize: traced, compiled per input-shape signature, equal to eager; gradients
through compiled calls; data-dependent Python falls back to eager with a warning."""
import subprocess
import sys
import warnings
import weakref

import numpy as np
import pytest

import pyfront as pf
from pyfront.testing import subprocess_env


def _model(seed=0):
    pf.random.seed(seed)
    return pf.nn.Sequential([pf.nn.Dense(16, activation="relu"), pf.nn.Dense(4)])


def test_hybridized_model_equals_eager_and_shares_parameters():
    model = _model()
    x = pf.tensor(np.random.default_rng(0).standard_normal((8, 6)).astype(np.float32))
    fast = model.hybridize()
    with pf.no_grad():
        np.testing.assert_allclose(fast(x).numpy(), model(x).numpy(), rtol=1e-6, atol=1e-6)
    assert [id(p) for p in fast.parameters()] == [id(p) for p in model.parameters()]
    model[0].kernel.numpy()[...] *= 2          # a change to the parameters shows at once
    with pf.no_grad():
        np.testing.assert_allclose(fast(x).numpy(), model(x).numpy(), rtol=1e-6, atol=1e-6)


def test_one_trace_per_input_signature():
    calls = []

    def f(a, b):
        calls.append(1)
        return pf.tanh(a) * b

    fast = pf.jit(f)
    a = np.ones((3, 4), np.float32)
    for _ in range(3):
        fast(a, a)
    assert len(calls) == 1
    fast(np.ones((5, 4), np.float32), np.ones((5, 4), np.float32))
    assert len(calls) == 2
    assert len(fast.graphs) == 2


def test_gradients_through_a_compiled_call_equal_eager():
    model = _model(1)
    rng = np.random.default_rng(1)
    x = pf.tensor(rng.standard_normal((10, 6)).astype(np.float32))
    y = pf.tensor(rng.integers(0, 4, 10))
    fast = pf.jit(model)
    pf.losses.cross_entropy(fast(x), y).backward()
    compiled = [p.grad.numpy().copy() for p in model.parameters()]
    model.zero_grad()
    pf.losses.cross_entropy(model(x), y).backward()
    for a, p in zip(compiled, model.parameters()):
        np.testing.assert_allclose(a, p.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_gradient_wrt_inputs_of_a_jitted_function():
    f = pf.jit(lambda a, b: (pf.sigmoid(a @ b) ** 2).sum())
    rng = np.random.default_rng(2)
    a = pf.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    b = pf.tensor(rng.standard_normal((4, 2)), requires_grad=True)
    f(a, b).backward()
    ga, gb = pf.grad((pf.sigmoid(a @ b) ** 2).sum(), [a, b])
    np.testing.assert_allclose(a.grad.numpy(), ga.numpy(), rtol=1e-10)
    np.testing.assert_allclose(b.grad.numpy(), gb.numpy(), rtol=1e-10)


def test_backward_computes_only_the_gradients_wanted():
    # the data does not require grad: the joint plan has no GEMM for its gradient; once it
    # does (another requires_grad pattern, even between a forward and its backward), its
    # gradient is right
    f = pf.jit(lambda a, b: (pf.tanh(a @ b)).sum())
    rng = np.random.default_rng(3)
    a = pf.tensor(rng.standard_normal((5, 4)))
    b = pf.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    loss = f(a, b)
    plans = list(f.compiled_for([a, b]).joint[0]._plans.values())
    assert sum(pf.graph.plan.cpu.ffi.string(pf.graph.plan.cpu.lib.pf_kernel_name(
        p.steps[i].kernel)) == b"gemm" for p in plans for i in range(p.n_steps)) == 2
    a2 = pf.tensor(a.numpy().copy(), requires_grad=True)
    loss2 = f(a2, b)                  # a new joint plan before the first backward
    loss.backward()
    assert a.grad is None
    gb = b.grad.numpy().copy()
    b.grad = None
    loss2.backward()
    t = np.tanh(a.numpy() @ b.numpy())
    np.testing.assert_allclose(gb, a.numpy().T @ (1 - t ** 2), rtol=1e-10)
    np.testing.assert_allclose(b.grad.numpy(), gb, rtol=1e-10)
    np.testing.assert_allclose(a2.grad.numpy(), (1 - t ** 2) @ b.numpy().T, rtol=1e-10)


def test_two_forwards_before_their_backwards():
    f = pf.jit(lambda a: (pf.tanh(a) * a).sum())
    a1 = pf.tensor(np.linspace(-1, 1, 6).reshape(2, 3), requires_grad=True)
    a2 = pf.tensor(np.linspace(2, 3, 6).reshape(2, 3), requires_grad=True)
    l1, l2 = f(a1), f(a2)
    l1.backward()
    l2.backward()
    for a in (a1, a2):
        x = a.numpy()
        want = np.tanh(x) + x * (1 - np.tanh(x) ** 2)
        np.testing.assert_allclose(a.grad.numpy(), want, rtol=1e-10)


def test_a_forward_whose_outputs_are_gone_is_not_saved_by_the_next():
    # saving a live call's arena aside is needed (above); a dropped call's is waste: for a
    # one-row MLP called without no_grad it was two thirds of each call's time
    model = _model()
    f = pf.jit(model)
    x = pf.tensor(np.linspace(-1, 1, 24).reshape(3, 8).astype(np.float32))
    kept = f(x)
    kept_state = weakref.ref(kept._node.op.state)
    dropped = f(x)                       # kept is alive: its arena is saved aside
    assert kept_state().saved is not None
    dropped_state = weakref.ref(dropped._node.op.state)
    del dropped
    assert dropped_state() is None       # nothing but its outputs held the call's state
    again = f(x)
    assert again._node.op.state.saved is None
    kept.sum().backward()                # and the saved call's backward is still right
    eager = _model()
    eager(x).sum().backward()
    for got, want in zip(model.parameters(), eager.parameters()):
        np.testing.assert_allclose(got.grad.numpy(), want.grad.numpy(), rtol=1e-5, atol=1e-6)


def test_data_dependent_control_flow_falls_back_to_eager_with_a_warning():
    def f(a):
        if a.sum() > 0:            # depends on values: cannot be traced
            return a * 2
        return a - 1

    fast = pf.jit(f)
    with pytest.warns(RuntimeWarning, match="eagerly"):
        out = fast(np.ones(3, np.float32))
    np.testing.assert_array_equal(out.numpy(), [2, 2, 2])
    # both branches stay right: nothing was baked in
    np.testing.assert_array_equal(fast(-np.ones(3, np.float32)).numpy(), [-2, -2, -2])


def test_higher_order_gradients_through_jit_equal_torchs():
    """create_graph=True through a compiled call: the gradient is itself differentiable (the
    call re-runs eagerly for it), second derivatives as torch's."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    f = pf.jit(lambda a, b: (pf.tanh(a @ b) ** 2).sum())
    px, pw = pf.tensor(x, requires_grad=True), pf.tensor(w, requires_grad=True)
    (g,) = pf.grad(f(px, pw), [px], create_graph=True)
    (gg,) = pf.grad((g ** 2).sum(), [pw])
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    (tg,) = torch.autograd.grad((torch.tanh(tx @ tw) ** 2).sum(), [tx], create_graph=True)
    (tgg,) = torch.autograd.grad((tg ** 2).sum(), [tw])
    np.testing.assert_allclose(g.numpy(), tg.detach().numpy(), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(gg.numpy(), tgg.numpy(), rtol=1e-10, atol=1e-13)


def test_a_gradient_penalty_through_a_hybridized_model_equals_eager():
    pf.random.seed(0)
    model = pf.nn.Sequential([pf.nn.Dense(5, activation="tanh"), pf.nn.Dense(1)])
    x = np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32)
    model(pf.tensor(x))

    def penalty_grads(f):
        model.zero_grad()
        xi = pf.tensor(x, requires_grad=True)
        (gx,) = pf.grad(f(xi).sum(), [xi], create_graph=True)
        ((gx ** 2).sum()).backward()
        return [None if p.grad is None else p.grad.numpy().copy() for p in model.parameters()]

    for got, want in zip(penalty_grads(model.hybridize()), penalty_grads(model)):
        assert (got is None) == (want is None)   # the last bias: no path to the penalty
        if got is not None:
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_higher_order_through_a_stateful_compiled_call_is_refused_clearly():
    model = pf.nn.Sequential([pf.nn.Dense(4), pf.nn.Dropout(0.5), pf.nn.Dense(1)])
    x = np.ones((2, 3), np.float32)
    model(pf.tensor(x))
    xi = pf.tensor(x, requires_grad=True)
    with pytest.raises(pf.PyfrontError, match=r"higher-order .*uses dropout, which would not "
                                              r"give the same values again"):
        pf.grad(model.hybridize()(xi).sum(), [xi], create_graph=True)


def test_issue_example_hybridize_numbers():
    model = pf.nn.Sequential([pf.nn.Dense(32, activation="relu"), pf.nn.Dense(10)])
    opt = pf.optim.Adam(model.parameters(), lr=1e-3)
    xb = pf.tensor(np.random.rand(16, 64).astype("float32"))
    yb = pf.tensor(np.arange(16) % 10)
    for _ in range(3):
        opt.zero_grad()
        loss = pf.losses.cross_entropy(model(xb), yb)
        loss.backward()
        opt.step()
    fast = model.hybridize()
    assert np.allclose(fast(xb).numpy(), model(xb).numpy(), atol=1e-5)


def test_run_numpy_fast_path():
    model = _model(3)
    fast = pf.jit(model)
    x = np.random.default_rng(3).standard_normal((1, 6)).astype(np.float32)
    with pf.no_grad():
        want = model(pf.tensor(x)).numpy()
    for _ in range(3):
        np.testing.assert_allclose(fast.run_numpy(x), want, rtol=1e-6, atol=1e-6)


def test_run_numpy_binds_large_inputs_in_place_and_reads_them_as_given():
    """Inputs over a few KB are read where they lie: a new array, the same array changed in
    place, and a strided view all give the eager results, and the caller's arrays are left
    as they were."""
    model = _model(3)
    fast = pf.jit(model)
    rng = np.random.default_rng(4)
    xs = [rng.standard_normal((300, 6)).astype(np.float32) for _ in range(2)]   # 7 KB each
    wide = rng.standard_normal((300, 12)).astype(np.float32)
    for x in xs + [xs[0], wide[:, ::2], wide[:, 1::2]]:
        before = x.copy()
        with pf.no_grad():
            want = model(pf.tensor(np.ascontiguousarray(x))).numpy()
        np.testing.assert_allclose(fast.run_numpy(x), want, rtol=1e-6, atol=1e-6)
        np.testing.assert_array_equal(x, before)
    fast.run_numpy(xs[1])
    xs[1][...] = rng.standard_normal(xs[1].shape)     # the bound array, changed in place
    with pf.no_grad():
        want = model(pf.tensor(xs[1])).numpy()
    np.testing.assert_allclose(fast.run_numpy(xs[1]), want, rtol=1e-6, atol=1e-6)


def test_eval_and_train_modes_trace_separately():
    model = _model(4)
    fast = model.hybridize()
    x = np.ones((2, 6), np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.eval()
        fast(x)
        model.train()
        fast(x)
    assert len(fast._jit.graphs) == 2


def test_jit_of_a_module_is_its_compiled_view_from_nn():
    model = _model()
    fast = pf.jit(model)
    assert type(fast) is pf.nn.CompiledModule and fast.module is model
    assert pf.jit(fast) is fast and type(model.hybridize()) is pf.nn.CompiledModule
    x = np.random.default_rng(3).standard_normal((5, 6)).astype(np.float32)
    with pf.no_grad():
        np.testing.assert_allclose(fast(x).numpy(), model(pf.tensor(x)).numpy(), rtol=1e-6)


def test_the_graph_compiler_loads_without_nn():
    # graph sits below nn: tracing functions and building graphs must not pull in modules;
    # Graph.parameter, which makes nn's Parameters, says what it needs
    code = ("import sys\n"
            "from pyfront.graph import Graph, jit\n"
            "print(sorted(m for m in sys.modules if m.startswith(('pyfront.nn', "
            "'pyfront.io', 'pyfront.train'))))\n"
            "try:\n"
            "    Graph().parameter('w', (2, 2))\n"
            "except Exception as e:\n"
            "    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], env=subprocess_env(),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    loaded, error = out.stdout.splitlines()
    assert loaded == "[]"
    assert error == "Graph.parameter('w') makes a pyfront.nn.Parameter: import pyfront.nn first"


@pytest.mark.parametrize("fn, expected", [
    (lambda a, b: b * 1.0, [10.0, 20.0]),                   # the first input unused
    (lambda a, b, c: a + c, [101.0, 202.0]),                # a middle one unused
    (lambda a, b: pf.zeros_like(a) + b, [10.0, 20.0]),      # the first read for its shape only
])
def test_inputs_the_outputs_do_not_read_do_not_shift_the_others(fn, expected):
    # the inference plan binds only the inputs it reads: each must still get its own array
    # (an unused first input once made the second one read the first's values)
    a, b, c = pf.tensor([1.0, 2.0]), pf.tensor([10.0, 20.0]), pf.tensor([100.0, 200.0])
    args = (a, b, c)[:fn.__code__.co_argcount]
    f = pf.jit(fn)
    for _ in range(2):      # the first call traces, the second runs the cached plan
        np.testing.assert_array_equal(f(*args).numpy(), expected)
        np.testing.assert_array_equal(f.run_numpy(*[t.numpy() for t in args]), expected)

    class Second(pf.nn.Module):
        def forward(self, x, y):
            return y * 2

    np.testing.assert_array_equal(Second().hybridize()(a, b).numpy(), [20.0, 40.0])


def test_a_boolean_mask_in_a_graph_falls_back_to_eager_with_a_warning():
    # the result's length depends on the mask's values: no static plan can hold it
    x = pf.tensor([1.0, -2.0, 3.0])
    for f, args in ((pf.jit(lambda a, m: a[m]), (x, x > 0)), (pf.jit(lambda a: a[a > 0]), (x,))):
        with pytest.warns(RuntimeWarning, match="boolean mask in a graph"):
            out = f(*args)
        np.testing.assert_array_equal(out.numpy(), [1.0, 3.0])
        np.testing.assert_array_equal(f(*args).numpy(), [1.0, 3.0])     # eager from now on


def test_a_named_tuple_result_keeps_its_fields_through_jit():
    x = pf.tensor([[1.0, 3.0, 2.0], [4.0, 0.0, 5.0]])
    out = pf.jit(lambda t: pf.max(t, dim=1))(x)
    assert out.values.tolist() == [3.0, 5.0] and out.indices.tolist() == [1, 2]


class _Scaled(pf.nn.Module):
    """x * (a + b): an op on parameters alone, before any input meets them."""

    def __init__(self):
        super().__init__()
        self.a = pf.nn.Parameter(np.full(3, 0.5, np.float32))
        self.b = pf.nn.Parameter(np.full(3, 0.25, np.float32))

    def forward(self, x):
        return x * (self.a + self.b).exp()


def test_ops_on_parameters_alone_stay_in_the_traced_graph():
    # traced eagerly, a + b was baked into the plan as a constant: the compiled model then
    # neither trained a and b nor saw their new values
    x = pf.tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    m = _Scaled()
    fast = m.hybridize()
    out = fast(x)
    assert out.requires_grad
    out.sum().backward()
    expected = x.numpy().sum(axis=0) * np.exp(0.75)
    np.testing.assert_allclose(m.a.grad.numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(m.b.grad.numpy(), expected, rtol=1e-6)
    with pf.no_grad():
        m.a.copy_(np.zeros(3, np.float32))
    np.testing.assert_allclose(fast(x).numpy(), x.numpy() * np.exp(0.25), rtol=1e-6)
    np.testing.assert_allclose(pf.jit(m)(x).numpy(), x.numpy() * np.exp(0.25), rtol=1e-6)


def test_a_compiled_training_step_trains_parameters_used_only_with_each_other():
    m = _Scaled()
    model = pf.nn.Sequential([m])
    model.compile(optimizer=pf.optim.SGD(model.parameters(), lr=0.1), loss="mse", jit=True)
    x = np.ones((4, 3), np.float32)
    before = m.a.numpy().copy()
    model.fit(x, np.zeros((4, 3), np.float32), epochs=2, batch_size=4, verbose=0)
    assert (m.a.numpy() < before).all()
