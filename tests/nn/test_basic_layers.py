"""BatchNorm, LayerNorm, Dropout, Embedding, Flatten, Reshape, Concatenate and Add as layers:
parity with torch.nn (weights copied in, train and eval, running statistics over several
steps), train/eval behaviour, compiled runs in training mode, state saved with the model,
configs that rebuild the layer, and errors that name the layer and the shapes."""
import numpy as np
import pytest

import pyfront as pf
from pyfront import errors, nn

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(99)


def _copy_affine(ours, theirs):
    with torch.no_grad():
        theirs.weight.copy_(torch.tensor(RNG.standard_normal(tuple(theirs.weight.shape))))
        theirs.bias.copy_(torch.tensor(RNG.standard_normal(tuple(theirs.bias.shape))))
    ours.gamma.numpy()[...] = theirs.weight.detach().numpy()
    ours.beta.numpy()[...] = theirs.bias.detach().numpy()


# ---------------------------------------------------------------------------------------------
# BatchNorm

@pytest.mark.parametrize("ours,theirs,shape", [
    (nn.BatchNorm1D, torch.nn.BatchNorm1d, (12, 5)),
    (nn.BatchNorm1D, torch.nn.BatchNorm1d, (6, 4, 9)),
    (nn.BatchNorm2D, torch.nn.BatchNorm2d, (4, 3, 8, 8)),
    (nn.BatchNorm, torch.nn.BatchNorm2d, (2, 3, 40, 40)),
])
def test_batch_norm_layer_matches_torch(ours, theirs, shape):
    c = shape[1]
    layer, ref = ours(momentum=0.2, eps=1e-4), theirs(c, momentum=0.2, eps=1e-4)
    layer.build(shape)
    layer.built = True
    _copy_affine(layer, ref)
    for step in range(4):
        x = (RNG.standard_normal(shape) * (1 + step) - step).astype(np.float32)
        g = RNG.standard_normal(shape).astype(np.float32)
        xt = pf.tensor(x, requires_grad=True)
        y = layer(xt)
        dx, dgamma, dbeta = pf.grad(y, [xt, layer.gamma, layer.beta],
                                    grad_outputs=[pf.tensor(g)])
        tx = torch.tensor(x, requires_grad=True)
        ty = ref(tx)
        ty.backward(torch.tensor(g))
        np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(dx.numpy(), tx.grad.numpy(), rtol=1e-4, atol=2e-4)
        np.testing.assert_allclose(dgamma.numpy(), ref.weight.grad.numpy(), rtol=1e-4,
                                   atol=5e-3)
        np.testing.assert_allclose(dbeta.numpy(), ref.bias.grad.numpy(), rtol=1e-4, atol=5e-3)
        ref.weight.grad = ref.bias.grad = None
    np.testing.assert_allclose(layer.running_mean.numpy(), ref.running_mean.numpy(), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(layer.running_var.numpy(), ref.running_var.numpy(), rtol=1e-5,
                               atol=1e-6)
    layer.eval()
    ref.eval()
    x = RNG.standard_normal(shape).astype(np.float32)
    xt = pf.tensor(x, requires_grad=True)
    y = layer(xt)
    (dx,) = pf.grad(y.sum(), [xt])
    tx = torch.tensor(x, requires_grad=True)
    ty = ref(tx)
    ty.sum().backward()
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx.numpy(), tx.grad.numpy(), rtol=1e-5, atol=1e-5)
    before = layer.running_mean.numpy().copy()
    layer(pf.tensor(x))
    np.testing.assert_array_equal(layer.running_mean.numpy(), before)   # eval does not update


def test_batch_norm_without_running_statistics_uses_the_batch_in_eval():
    layer = nn.BatchNorm2D(affine=False, track_running_stats=False).eval()
    ref = torch.nn.BatchNorm2d(3, affine=False, track_running_stats=False).eval()
    x = RNG.standard_normal((4, 3, 5, 5)).astype(np.float32)
    np.testing.assert_allclose(layer(pf.tensor(x)).numpy(), ref(torch.tensor(x)).numpy(),
                               rtol=1e-5, atol=1e-5)
    assert layer.parameters() == [] and layer.state_dict() == {}


def test_batch_norm_running_statistics_are_buffers_saved_with_the_model():
    layer = nn.BatchNorm1D()
    layer(pf.tensor(RNG.standard_normal((8, 3)).astype(np.float32)))
    assert [p.name for p in layer.parameters()] == [layer.name + "/gamma", layer.name + "/beta"]
    state = layer.state_dict()
    assert sorted(state) == ["beta", "gamma", "running_mean", "running_var"]
    # a fresh, unbuilt layer takes every shape from the state, buffers included
    again = nn.BatchNorm1D.from_config(layer.get_config())
    fresh = nn.BatchNorm1D()
    fresh.load_state_dict(state)
    for other in (again, fresh):
        other.load_state_dict(state)
        for k, v in state.items():
            np.testing.assert_array_equal(other.state_dict()[k], v)
    x = RNG.standard_normal((5, 3)).astype(np.float32)
    layer.eval()
    fresh.eval()
    np.testing.assert_array_equal(fresh(pf.tensor(x)).numpy(), layer(pf.tensor(x)).numpy())


def test_batch_norm_compiled_in_training_mode_updates_like_eager():
    x = RNG.standard_normal((6, 3, 4, 4)).astype(np.float32)
    eager, compiled = nn.BatchNorm2D(), nn.BatchNorm2D()
    run = pf.jit(compiled)
    for step in range(3):
        xs = x * (step + 1)
        np.testing.assert_array_equal(run(pf.tensor(xs)).numpy(), eager(pf.tensor(xs)).numpy())
    np.testing.assert_array_equal(compiled.running_var.numpy(), eager.running_var.numpy())
    eager.eval()
    compiled.eval()
    np.testing.assert_array_equal(run(pf.tensor(x)).numpy(), eager(pf.tensor(x)).numpy())


def test_batch_norm_errors_name_the_layer_and_shapes():
    layer = nn.BatchNorm2D(name="bn")
    layer(pf.tensor(np.zeros((2, 3, 4, 4), np.float32)))
    with pytest.raises(errors.ShapeError, match=r"layer 'bn'.*\(2, 5, 4, 4\).*5 channels"):
        layer(pf.tensor(np.zeros((2, 5, 4, 4), np.float32)))
    with pytest.raises(errors.ShapeError, match=r"bn: expected a 4-D input.*got shape \(2, 3\)"):
        layer(pf.tensor(np.zeros((2, 3), np.float32)))
    with pytest.raises(errors.ShapeError, match=r"more than one value per channel"):
        layer(pf.tensor(np.zeros((1, 3, 1, 1), np.float32)))
    with pytest.raises(ValueError, match="momentum"):
        nn.BatchNorm(momentum=2)
    with pytest.raises(errors.ShapeError, match=r"bn1: expected a 2-D or 3-D.*\(2, 3, 4, 5\)"):
        nn.BatchNorm1D(name="bn1")(pf.tensor(np.zeros((2, 3, 4, 5), np.float32)))


# ---------------------------------------------------------------------------------------------
# LayerNorm

@pytest.mark.parametrize("shape,ns", [((6, 10), None), ((3, 4, 6), (4, 6)), ((2, 5, 7), 7)])
def test_layer_norm_layer_matches_torch(shape, ns):
    layer = nn.LayerNorm(ns)
    ref = torch.nn.LayerNorm(shape[-1:] if ns is None else ns)
    layer.build(shape)
    layer.built = True
    _copy_affine(layer, ref)
    x = (RNG.standard_normal(shape) * 3 + 1).astype(np.float32)
    g = RNG.standard_normal(shape).astype(np.float32)
    xt = pf.tensor(x, requires_grad=True)
    y = layer(xt)
    dx, dgamma, dbeta = pf.grad(y, [xt, layer.gamma, layer.beta], grad_outputs=[pf.tensor(g)])
    tx = torch.tensor(x, requires_grad=True)
    ty = ref(tx)
    ty.backward(torch.tensor(g))
    np.testing.assert_allclose(y.numpy(), ty.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx.numpy(), tx.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dgamma.numpy(), ref.weight.grad.numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(dbeta.numpy(), ref.bias.grad.numpy(), rtol=1e-4, atol=1e-4)
    assert nn.LayerNorm.from_config(layer.get_config()).get_config() == layer.get_config()


def test_layer_norm_errors_name_the_layer_and_shapes():
    layer = nn.LayerNorm((4, 5), name="ln")
    with pytest.raises(errors.ShapeError, match=r"layer 'ln'.*\(2, 4, 6\).*\(4, 5\)"):
        layer(pf.tensor(np.zeros((2, 4, 6), np.float32)))
    with pytest.raises(ValueError, match="ln: normalized_shape"):
        nn.LayerNorm((0,), name="ln")


# ---------------------------------------------------------------------------------------------
# Dropout

def test_dropout_layer_train_and_eval():
    layer = nn.Dropout(0.5, seed=3)
    x = pf.tensor(np.ones((50, 40), np.float32))
    a, b = layer(x).numpy(), layer(x).numpy()
    assert (a != b).any() and set(np.unique(a)) <= {0.0, 2.0}
    assert abs((a != 0).mean() - 0.5) < 0.05
    assert layer.rng_state.numpy().tolist() == [3, 2]
    layer.eval()
    assert layer(x) is x or np.array_equal(layer(x).numpy(), x.numpy())
    assert layer.rng_state.numpy().tolist() == [3, 2]        # eval draws nothing


def test_dropout_layer_is_reproducible_from_the_global_seed():
    x = pf.tensor(np.ones(1000, np.float32))
    pf.random.seed(42)
    first = nn.Dropout(0.3)(x).numpy()
    pf.random.seed(42)
    second = nn.Dropout(0.3)(x).numpy()
    np.testing.assert_array_equal(first, second)
    assert (first != nn.Dropout(0.3)(x).numpy()).any()


def test_dropout_state_travels_with_the_model():
    layer = nn.Dropout(0.5, seed=8)
    x = pf.tensor(np.ones(256, np.float32))
    layer(x)
    copy = nn.Dropout.from_config(layer.get_config())
    copy.load_state_dict(layer.state_dict())
    np.testing.assert_array_equal(copy(x).numpy(), layer(x).numpy())


def test_dropout_compiled_in_training_mode_matches_eager():
    x = pf.tensor(RNG.standard_normal((8, 16)).astype(np.float32))
    model_e = nn.Sequential(nn.Dense(16), nn.Dropout(0.4, seed=5))
    model_c = nn.Sequential(nn.Dense(16), nn.Dropout(0.4, seed=5))
    model_e(x)
    model_c(x)
    model_c.load_state_dict(model_e.state_dict())
    run = pf.jit(model_c)
    for _ in range(3):
        ye, yc = model_e(x), run(x)
        np.testing.assert_array_equal(yc.numpy(), ye.numpy())
        ge = pf.grad(ye.sum(), model_e.parameters())
        gc = pf.grad(yc.sum(), model_c.parameters())
        for a, b in zip(ge, gc):
            np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------
# Embedding

@pytest.mark.parametrize("index_dtype,shape", [("int64", (4, 6)), ("int32", (2, 3, 5)),
                                               ("int64", (7,))])
def test_embedding_matches_torch(index_dtype, shape):
    ref = torch.nn.Embedding(11, 4)
    layer = nn.Embedding(11, 4)
    layer.embeddings.numpy()[...] = ref.weight.detach().numpy()
    idx = RNG.integers(0, 11, shape).astype(index_dtype)
    idx.reshape(-1)[:3] = 2                                   # repeated rows add up
    g = RNG.standard_normal(shape + (4,)).astype(np.float32)
    y = layer(pf.tensor(idx))
    (dw,) = pf.grad(y, [layer.embeddings], grad_outputs=[pf.tensor(g)])
    ty = ref(torch.tensor(idx.astype(np.int64)))
    ty.backward(torch.tensor(g))
    np.testing.assert_array_equal(y.numpy(), ty.detach().numpy())
    np.testing.assert_allclose(dw.numpy(), ref.weight.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_embedding_errors():
    layer = nn.Embedding(5, 2, name="emb")
    with pytest.raises(errors.IndexOutOfRange, match=r"emb: index 5 .*\(2, 2\).*input_dim 5"):
        layer(pf.tensor(np.array([[0, 1], [5, 2]])))
    with pytest.raises(errors.IndexOutOfRange, match="index -1"):
        layer(pf.tensor(np.array([-1])))
    with pytest.raises(errors.DTypeError, match=r"emb: takes integer indices.*float32"):
        layer(pf.tensor(np.zeros((2, 2), np.float32)))
    fixed = nn.Embedding(5, 2, input_length=3, name="seq")
    with pytest.raises(errors.ShapeError, match=r"seq: .*\(\.\.\., 3\).*got \(2, 4\)"):
        fixed(pf.tensor(np.zeros((2, 4), np.int64)))
    with pytest.raises(ValueError, match="input_dim"):
        nn.Embedding(0, 3)


# ---------------------------------------------------------------------------------------------
# Flatten, Reshape, Concatenate, Add

def test_structural_layers_forward_and_backward():
    x = RNG.standard_normal((2, 3, 4, 5)).astype(np.float32)
    np.testing.assert_array_equal(nn.Flatten()(pf.tensor(x)).numpy(), x.reshape(2, 60))
    np.testing.assert_array_equal(nn.Flatten(2)(pf.tensor(x)).numpy(), x.reshape(2, 3, 20))
    np.testing.assert_array_equal(nn.Flatten(-2)(pf.tensor(x)).numpy(), x.reshape(2, 3, 20))
    np.testing.assert_array_equal(nn.Reshape((5, -1))(pf.tensor(x)).numpy(), x.reshape(2, 5, 12))
    b = RNG.standard_normal((2, 1, 4, 5)).astype(np.float32)
    np.testing.assert_array_equal(nn.Concatenate(axis=1)(pf.tensor(x), pf.tensor(b)).numpy(),
                                  np.concatenate([x, b], 1))
    np.testing.assert_array_equal(nn.Concatenate()([pf.tensor(x), pf.tensor(x)]).numpy(),
                                  np.concatenate([x, x], -1))
    xt, yt = pf.tensor(x, requires_grad=True), pf.tensor(2 * x, requires_grad=True)
    out = nn.Add()(xt, yt, xt)
    np.testing.assert_allclose(out.numpy(), 4 * x, rtol=1e-6)
    dx, dy = pf.grad(out.sum(), [xt, yt])
    np.testing.assert_array_equal(dx.numpy(), np.full_like(x, 2))
    np.testing.assert_array_equal(dy.numpy(), np.ones_like(x))


def test_structural_layers_in_a_graph_with_unknown_batch():
    g = pf.Graph()
    with g:
        x = g.placeholder("x", (None, 3, 4, 5))
        flat = nn.Flatten()(x)
        shaped = nn.Reshape((4, -1))(x)
        joined = nn.Concatenate(1)(flat, flat)
        assert flat.shape == (None, 60) and shaped.shape == (None, 4, 15)
        assert joined.shape == (None, 120)
        run = g.compile([flat, shaped, joined])
    xv = RNG.standard_normal((3, 3, 4, 5)).astype(np.float32)
    out = run.run({"x": xv})
    np.testing.assert_array_equal(out[shaped.name], xv.reshape(3, 4, 15))
    np.testing.assert_array_equal(out[joined.name], np.concatenate([xv.reshape(3, 60)] * 2, 1))


def test_structural_layer_errors_name_the_layer_and_shapes():
    x = pf.tensor(np.zeros((2, 3, 4), np.float32))
    with pytest.raises(errors.ShapeError, match=r"rs: cannot reshape .*\(2, 3, 4\).*\(5, 2\)"):
        nn.Reshape((5, 2), name="rs")(x)
    with pytest.raises(errors.ShapeError, match=r"layer 'fl': start_dim 3 .*\(2, 3, 4\)"):
        nn.Flatten(3, name="fl")(x)
    with pytest.raises(errors.ShapeError, match=r"cat.*\(2, 3, 4\).*\(2, 2, 5\)"):
        nn.Concatenate(1, name="cat")(x, pf.tensor(np.zeros((2, 2, 5), np.float32)))
    with pytest.raises(errors.ShapeError, match=r"plus: inputs must have one shape, got "
                                                r"\(2, 3, 4\), \(2, 3, 5\)"):
        nn.Add(name="plus")(x, pf.tensor(np.zeros((2, 3, 5), np.float32)))
    with pytest.raises(ValueError, match="at least two inputs"):
        nn.Add()(x)


def test_configs_rebuild_the_layers():
    layers = [nn.BatchNorm2D(4, momentum=0.3), nn.LayerNorm((2, 3), eps=1e-3),
              nn.Dropout(0.2, seed=1), nn.Embedding(7, 3, input_length=2), nn.Flatten(2),
              nn.Reshape((3, -1)), nn.Concatenate(axis=1), nn.Add()]
    for layer in layers:
        config = layer.get_config()
        again = type(layer).from_config(config)
        assert again.get_config() == config
        assert nn.layer_class(type(layer).__name__) is type(layer)
