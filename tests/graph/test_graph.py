"""Symbolic graphs: build-time shape inference and errors, compiled execution equal to eager,
training steps, the optimisation passes, the memory plan, debug fetches and export."""
import shutil

import numpy as np
import pytest

import pyfront as pf
from pyfront.graph.passes import FusedElementwise


def _mlp_graph(seed=0):
    pf.random.seed(seed)
    g = pf.Graph("mlp")
    with g:
        x = pf.placeholder("x", (None, 20))
        y = pf.placeholder("y", (None,), "int64")
        model = pf.nn.Sequential([pf.nn.Dense(32, activation="relu"),
                                  pf.nn.Dense(16, activation="tanh"), pf.nn.Dense(5)])
        out = model(x)
        loss = pf.losses.cross_entropy(out, y)
    return g, model, x, y, out, loss


def test_shapes_are_inferred_while_building_with_unknown_batch():
    g, model, x, y, out, loss = _mlp_graph()
    assert out.shape == (None, 5) and out.dtype is pf.float32
    assert loss.shape == ()
    assert x.kind == "placeholder"


def test_shape_error_names_op_layer_user_names_and_both_shapes():
    g = pf.Graph()
    with g:
        x = pf.placeholder("pixels", (None, 784))
        w = g.parameter("weights", (100, 32))
        with pytest.raises(pf.ShapeError) as e:
            pf.matmul(x, w)
    msg = str(e.value)
    assert "matmul" in msg and "pixels" in msg and "weights" in msg
    assert "(None, 784)" in msg and "(100, 32)" in msg


def test_layer_shape_error_names_the_layer():
    g = pf.Graph()
    with g:
        x = pf.placeholder("x", (None, 8))
        dense = pf.nn.Dense(4, in_features=6, name="classifier")
        with pytest.raises(pf.ShapeError) as e:
            dense(x)
    assert "classifier" in str(e.value) and "(None, 8)" in str(e.value)


def test_compiled_forward_equals_eager_for_several_batch_sizes():
    g, model, x, y, out, loss = _mlp_graph()
    exe = g.compile(outputs=[out])
    rng = np.random.default_rng(1)
    for n in (1, 7, 64):
        xb = rng.standard_normal((n, 20)).astype(np.float32)
        got = exe.run({"x": xb})[out.name]
        with pf.no_grad():
            want = model(pf.tensor(xb)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_compiled_training_equals_eager_training():
    g, model, x, y, out, loss = _mlp_graph()
    twin = pf.nn.Sequential([pf.nn.Dense(32, activation="relu"),
                             pf.nn.Dense(16, activation="tanh"), pf.nn.Dense(5)])
    rng = np.random.default_rng(2)
    xb = rng.standard_normal((24, 20)).astype(np.float32)
    yb = rng.integers(0, 5, 24)
    twin(pf.tensor(xb))
    twin.load_state_dict(model.state_dict())
    exe = g.compile(outputs=[out], loss=loss, optimizer=pf.optim.SGD(lr=0.1, momentum=0.9))
    opt = pf.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9)
    for _ in range(5):
        compiled_loss = exe.step({"x": xb, "y": yb})[loss.name]
        opt.zero_grad()
        eager_loss = pf.losses.cross_entropy(twin(pf.tensor(xb)), pf.tensor(yb))
        eager_loss.backward()
        opt.step()
        assert abs(float(compiled_loss) - eager_loss.item()) < 1e-5
    for (k, a), b in zip(model.state_dict().items(), twin.state_dict().values()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=k)


def test_passes_fold_fuse_and_remove_dead_nodes():
    g = pf.Graph()
    with g:
        x = pf.placeholder("x", (None, 16))
        c = pf.tensor(np.full((16,), 2.0, np.float32))
        scale = pf.exp(c) * 0.5                       # constant: folded at compile time
        unused = pf.sigmoid(x) * 3.0                  # dead: not an output
        h = pf.tanh(x * scale + 1.0) * 2.0 - x        # elementwise chain: one fused kernel
    exe = g.compile(outputs=[h])
    ops = [n.op.name for n in exe.program.nodes if n.kind == "op"]
    assert ops == ["fused_elementwise"], ops
    assert not any(n.name == unused.node.name for n in exe.program.nodes)
    xb = np.random.default_rng(0).standard_normal((5, 16)).astype(np.float32)
    want = np.tanh(xb * (np.exp(2.0) * 0.5) + 1.0) * 2.0 - xb
    np.testing.assert_allclose(exe.run({"x": xb})[h.name], want, rtol=1e-5, atol=1e-5)


def test_common_subexpressions_are_computed_once():
    g = pf.Graph()
    with g:
        x = pf.placeholder("x", (None, 4))
        eye = pf.tensor(np.eye(4, dtype=np.float32))
        a = pf.matmul(x, eye)
        b = pf.matmul(x, eye)
        out = a + b
    exe = g.compile(outputs=[out])
    assert sum(1 for n in exe.program.nodes if n.kind == "op" and n.op.name == "matmul") <= 1


def test_dense_and_activation_fuse_into_one_kernel():
    g, model, x, y, out, loss = _mlp_graph()
    exe = g.compile(outputs=[out])
    names = [n.op.name for n in exe.program.nodes if n.kind == "op"]
    assert names == ["linear", "linear", "linear"]
    acts = [n.attrs.get("activation") for n in exe.program.nodes if n.kind == "op"]
    assert acts == ["relu", "tanh", None]


def test_memory_plan_reuses_buffers():
    g = pf.Graph()
    with g:
        x = pf.placeholder("x", (None, 256))
        h = x
        for i in range(8):
            h = pf.matmul(h, pf.tensor(np.eye(256, dtype=np.float32) * 0.5)) + 1.0
    exe = g.compile(outputs=[h])
    arena, total = exe.memory_plan({"x": np.zeros((32, 256), np.float32)})
    assert arena <= total / 3, (arena, total)


def test_memory_plan_does_not_allocate_per_step():
    g, model, x, y, out, loss = _mlp_graph()
    exe = g.compile(outputs=[out], loss=loss, optimizer=pf.optim.Adam(lr=1e-3))
    feeds = {"x": np.zeros((8, 20), np.float32), "y": np.zeros(8, np.int64)}
    exe.step(feeds)
    plan = next(iter(exe._plans.values()))
    arena = plan.arena
    for _ in range(3):
        exe.step(feeds)
    assert next(iter(exe._plans.values())).arena is arena and len(exe._plans) == 1


def test_any_named_intermediate_can_be_fetched_without_recompiling():
    g, model, x, y, out, loss = _mlp_graph()
    exe = g.compile(outputs=[out])
    xb = np.random.default_rng(3).standard_normal((6, 20)).astype(np.float32)
    exe.run({"x": xb})
    plans_before = len(exe._plans)
    first = model[0]
    # an intermediate whose buffer the memory plan reuses later in the step
    names = [n for n in exe.value_names if n.endswith(first.name + "/linear")]
    assert len(names) == 1
    got = exe.run({"x": xb}, fetch=names)
    k, b = first.kernel.numpy(), first.bias.numpy()
    np.testing.assert_allclose(got[names[0]], np.maximum(xb @ k + b, 0), rtol=1e-5, atol=1e-5)
    assert len(exe._plans) == plans_before


def test_fetch_of_a_pre_activation_fused_into_the_dense_kernel():
    g = pf.Graph()
    with g:
        x = pf.placeholder("x", (None, 5))
        dense = pf.nn.Dense(3)
        z = dense(x)
        out = pf.gelu(z)
    exe = g.compile(outputs=[out])
    assert [n.op.name for n in exe.program.nodes if n.kind == "op"] == ["linear"]
    xb = np.random.default_rng(6).standard_normal((4, 5)).astype(np.float32)
    got = exe.run({"x": xb}, fetch=[z.name])
    np.testing.assert_allclose(got[z.name], xb @ dense.kernel.numpy() + dense.bias.numpy(),
                               rtol=1e-5, atol=1e-6)


def test_fetch_of_a_value_inside_a_fused_chain():
    g = pf.Graph()
    with g:
        x = pf.placeholder("x", (None, 8))
        a = pf.exp(x)
        b = a * 3.0
        c = pf.tanh(b) + x
    exe = g.compile(outputs=[c])
    xb = np.random.default_rng(4).standard_normal((3, 8)).astype(np.float32)
    got = exe.run({"x": xb}, fetch=[b.name])
    np.testing.assert_allclose(got[b.name], np.exp(xb) * 3.0, rtol=1e-5)
    with pytest.raises(KeyError):
        exe.run({"x": xb}, fetch=["no/such/value"])


def test_feeds_are_checked():
    g, model, x, y, out, loss = _mlp_graph()
    exe = g.compile(outputs=[out])
    with pytest.raises(pf.ShapeError) as e:
        exe.run({"x": np.zeros((4, 19), np.float32)})
    assert "'x'" in str(e.value)
    with pytest.raises(pf.PyfrontError):
        exe.run({"y": np.zeros(4, np.int64)})


def test_placeholder_dtype_is_enforced():
    g = pf.Graph()
    with g:
        y = pf.placeholder("labels", (None,), "int64")
        out = y + 1
    exe = g.compile(outputs=[out])
    np.testing.assert_array_equal(exe.run({"labels": np.arange(3)})[out.name], [1, 2, 3])
    with pytest.raises(pf.DTypeError):
        exe.run({"labels": np.zeros(3, np.float32)})


def test_dot_export_names_every_node():
    g, model, x, y, out, loss = _mlp_graph()
    dot = g.to_dot(outputs=[loss])
    assert dot.startswith("digraph") and "cross_entropy" in dot and "linear" in dot
    assert dot.count("->") >= 8


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot program is not installed")
def test_svg_export(tmp_path):
    g, model, x, y, out, loss = _mlp_graph()
    path = g.save_svg(tmp_path / "g.svg", outputs=[loss])
    assert open(path).read().lstrip().startswith("<?xml")


def test_values_cannot_cross_graphs():
    a, b = pf.Graph("a"), pf.Graph("b")
    xa = a.placeholder("x", (2,))
    xb = b.placeholder("x", (2,))
    with pytest.raises(pf.PyfrontError):
        xa + xb


def test_symbolic_gradients_match_eager():
    g = pf.Graph()
    with g:
        x = pf.placeholder("x", (3, 4), "float64")
        w = g.parameter("w", (4, 2), dtype="float64")
        y = (pf.sigmoid(pf.matmul(x, w)) ** 2).sum()
        (gw,) = g.gradients(y, [w])
    exe = g.compile(outputs=[gw])
    xb = np.random.default_rng(5).standard_normal((3, 4))
    got = exe.run({"x": xb})[gw.name]
    wt = w.node.value
    xt = pf.tensor(xb)
    want = pf.grad((pf.sigmoid(xt @ wt) ** 2).sum(), wt)
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-10)


def test_fused_program_is_a_real_native_kernel():
    g = pf.Graph()
    with g:
        x = pf.placeholder("x", (None, 3))
        out = pf.relu(x - 1.0) * pf.sigmoid(x)
    exe = g.compile(outputs=[out])
    fused = [n for n in exe.program.nodes if n.kind == "op"]
    assert len(fused) == 1 and isinstance(fused[0].op, FusedElementwise)
    xb = np.array([[0.5, 1.5, 3.0]], np.float32)
    np.testing.assert_allclose(exe.run({"x": xb})[out.name],
                               np.maximum(xb - 1, 0) / (1 + np.exp(-xb)), rtol=1e-6)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot program is not installed")
def test_model_picture_groups_nodes_by_layer(tmp_path):
    model = pf.nn.Sequential([pf.nn.Dense(4, activation="relu", name="hidden"),
                              pf.nn.Dense(2, name="head")])
    model(pf.tensor(np.ones((1, 3), np.float32)))
    dot = pf.nn.tracing.model_to_dot(model)
    assert "cluster_" in dot and '"hidden"' in dot and '"head"' in dot
    for suffix in ("svg", "png"):
        path = pf.plot_model(model, tmp_path / ("m." + suffix))
        assert (tmp_path / ("m." + suffix)).stat().st_size > 100 and path
