"""Modules: parameters exist from construction and take shapes from the first input, so an
optimizer can be built first; structural state dicts; train/eval; dtype conversion."""
import numpy as np
import pytest

import pyfront as pf


def test_parameters_exist_before_the_first_batch_and_optimizer_binds_them():
    model = pf.nn.Sequential([pf.nn.Dense(32, activation="relu"), pf.nn.Dense(10)])
    params = model.parameters()
    assert len(params) == 4 and not any(p.initialized for p in params)
    opt = pf.optim.Adam(params, lr=1e-3)
    with pytest.raises(pf.PyfrontError, match="not initialized"):
        params[0].numpy()
    x = pf.tensor(np.random.rand(16, 64).astype("float32"))
    y = pf.tensor(np.arange(16) % 10)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = pf.losses.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert params[0].shape == (64, 32) and params[2].shape == (32, 10)
    assert losses[-1] < losses[0]


def test_state_dict_names_and_in_place_loading():
    model = pf.nn.Sequential([pf.nn.Dense(3), pf.nn.Dense(2)])
    model(pf.tensor(np.ones((1, 4), np.float32)))
    sd = model.state_dict()
    assert list(sd) == ["0.kernel", "0.bias", "1.kernel", "1.bias"]
    kernel = model[0].kernel
    arr = kernel.numpy()
    model.load_state_dict({k: np.full_like(v, 0.5) for k, v in sd.items()})
    assert kernel.numpy() is arr and np.all(arr == 0.5)
    with pytest.raises(pf.ModelFormatError, match="missing"):
        model.load_state_dict({"0.kernel": sd["0.kernel"]})
    with pytest.raises(pf.ShapeError):
        model.load_state_dict(dict(sd, **{"0.bias": np.zeros(7, np.float32)}))


def test_dense_input_errors_name_layer_and_shapes():
    layer = pf.nn.Dense(4, name="head")
    layer(pf.tensor(np.ones((2, 3), np.float32)))
    with pytest.raises(pf.ShapeError) as e:
        layer(pf.tensor(np.ones((2, 5), np.float32)))
    msg = str(e.value)
    assert "head" in msg and "(2, 5)" in msg and "(3, 4)" in msg


def test_train_eval_flags_propagate():
    model = pf.nn.Sequential([pf.nn.Dense(2), pf.nn.Sequential([pf.nn.Dense(2)])])
    model.eval()
    assert all(not m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_to_float64_converts_in_place_and_compiled_plans_follow():
    model = pf.nn.Sequential([pf.nn.Dense(3, activation="tanh")])
    x32 = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    fast = pf.jit(model)
    with pf.no_grad():
        fast(x32)
        model.to("float64")
        out = fast(x32.astype(np.float64))
    assert out.dtype is pf.float64 and model[0].kernel.dtype is pf.float64


def test_unknown_activation_and_bad_units_are_refused():
    with pytest.raises(ValueError, match="unknown activation"):
        pf.nn.Dense(3, activation="swishy")
    with pytest.raises(ValueError, match="units"):
        pf.nn.Dense(0)


def test_registered_layers_rebuild_from_config():
    model = pf.nn.Sequential([pf.nn.Dense(3, activation="relu", name="a"), pf.nn.ReLU(),
                              pf.nn.Dense(2, name="b")])
    cfg = model.get_config()
    again = pf.nn.Sequential.from_config(cfg)
    assert [type(m).__name__ for m in again.layers] == ["Dense", "ReLU", "Dense"]
    assert again.layers[0].activation == "relu"


def test_named_tensors_give_the_state_dict_names_also_through_a_compiled_model():
    model = pf.nn.Sequential([pf.nn.Dense(3), pf.nn.BatchNorm1D()])
    model(pf.tensor(np.ones((2, 4), np.float32)))
    names = [k for k, _ in model.named_tensors()]
    assert names == list(model.state_dict()) == [
        "0.kernel", "0.bias", "1.gamma", "1.beta", "1.running_mean", "1.running_var"]
    assert [k for k, _ in model.named_tensors("m.", include_buffers=False)] == [
        "m.0.kernel", "m.0.bias", "m.1.gamma", "m.1.beta"]
    compiled = model.hybridize()
    assert [(k, id(t)) for k, t in compiled.named_tensors()] == \
        [(k, id(t)) for k, t in model.named_tensors()]


def test_a_torch_state_dict_loads_strictly_without_generator_state_and_batch_counts():
    # torch keeps dropout's generator outside the model and counts BatchNorm's batches:
    # neither is a weight, and a strict load must not trip on them
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4),
                                 torch.nn.Dropout(0.5))
    pf.random.seed(0)
    ours = pf.nn.Sequential([pf.nn.Linear(3, 4), pf.nn.BatchNorm1d(4), pf.nn.Dropout(0.5)])
    state = {k: v.detach().numpy() for k, v in theirs.state_dict().items()}
    assert "1.num_batches_tracked" in state and "2.rng_state" not in state
    generator = ours.state_dict()["2.rng_state"].copy()
    for model in (ours, ours.hybridize()):
        model.load_state_dict(state)
    np.testing.assert_array_equal(ours.state_dict()["2.rng_state"], generator)
    np.testing.assert_array_equal(ours.state_dict()["0.bias"], state["0.bias"])
    ours.eval(), theirs.eval()
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    np.testing.assert_allclose(ours(pf.tensor(x)).numpy(),
                               theirs(torch.tensor(x)).detach().numpy(), rtol=1e-5, atol=1e-6)
    del state["0.bias"]                      # a real weight missing is still an error
    with pytest.raises(pf.errors.ModelFormatError, match=r"missing \['0.bias'\]"):
        ours.load_state_dict(state)


def test_a_torch_cnn_state_dict_loads_name_for_name_and_gives_torch_numbers():
    torch = pytest.importorskip("torch")
    tnn = torch.nn
    torch.manual_seed(1)
    theirs = tnn.Sequential(tnn.Conv2d(2, 4, 3, padding=1), tnn.BatchNorm2d(4), tnn.ReLU(),
                            tnn.MaxPool2d(2), tnn.GroupNorm(2, 4), tnn.Flatten(),
                            tnn.Linear(36, 8), tnn.LayerNorm(8), tnn.Dropout(0.1),
                            tnn.Linear(8, 3))
    with torch.no_grad():           # running statistics that are not the defaults
        theirs[1].running_mean.uniform_(-1, 1)
        theirs[1].running_var.uniform_(0.5, 2)
    ours = pf.nn.Sequential([pf.nn.Conv2d(2, 4, 3, padding=1), pf.nn.BatchNorm2d(4),
                             pf.nn.ReLU(), pf.nn.MaxPool2d(2), pf.nn.GroupNorm(2, 4),
                             pf.nn.Flatten(), pf.nn.Linear(36, 8), pf.nn.LayerNorm(8),
                             pf.nn.Dropout(0.1), pf.nn.Linear(8, 3)])
    ours.load_state_dict({k: v.numpy() for k, v in theirs.state_dict().items()})
    ours.eval(), theirs.eval()
    x = np.random.default_rng(1).standard_normal((2, 2, 6, 6)).astype(np.float32)
    np.testing.assert_allclose(ours(pf.tensor(x)).numpy(),
                               theirs(torch.tensor(x)).detach().numpy(), rtol=1e-4, atol=1e-5)
    table = pf.nn.Embedding(5, 3)
    weight = np.arange(15, dtype=np.float32).reshape(5, 3)
    table.load_state_dict({"weight": weight})
    np.testing.assert_array_equal(table(pf.tensor(np.array([4, 0]))).numpy(), weight[[4, 0]])
