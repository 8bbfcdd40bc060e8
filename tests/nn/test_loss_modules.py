"""Loss modules under PyTorch's names give torch.nn's values and gradients for the same options,
refuse bad options by name, and serve fit's compile(loss=...)."""
import numpy as np
import pytest

import pyfront as pf

torch = pytest.importorskip("torch")


def _pair(rng, shape):
    return rng.standard_normal(shape), rng.standard_normal(shape)


def _cases(rng):
    logits = rng.standard_normal((6, 5))
    labels = np.array([0, 4, 2, 2, 1, 3])
    probs = 1 / (1 + np.exp(-rng.standard_normal((6, 3))))
    bits = (rng.random((6, 3)) > 0.5).astype(np.float64)
    a, b = _pair(rng, (6, 3))
    log_q = np.log(np.full((6, 3), 1 / 3))
    target = rng.dirichlet(np.ones(3), 6)
    sign = np.sign(rng.standard_normal(6))
    weight = np.array([1.0, 2.0, 0.5, 1.5, 1.0])
    return [
        ("CrossEntropyLoss", {}, [logits, labels]),
        ("CrossEntropyLoss", {"reduction": "sum", "label_smoothing": 0.2}, [logits, labels]),
        ("CrossEntropyLoss", {"weight": weight, "ignore_index": 2}, [logits, labels]),
        ("CrossEntropyLoss", {}, [logits, rng.dirichlet(np.ones(5), 6)]),
        ("NLLLoss", {"weight": weight, "reduction": "none"}, [logits, labels]),
        ("MSELoss", {}, [a, b]),
        ("MSELoss", {"reduction": "none"}, [a, b]),
        ("L1Loss", {"reduction": "sum"}, [a, b]),
        ("BCELoss", {}, [probs, bits]),
        ("BCELoss", {"weight": np.array([1.0, 2.0, 3.0])}, [probs, bits]),
        ("BCEWithLogitsLoss", {"pos_weight": np.array([1.0, 3.0, 0.5])}, [a, bits]),
        ("HuberLoss", {"delta": 0.5}, [a, b]),
        ("SmoothL1Loss", {"beta": 0.3}, [a, b]),
        ("KLDivLoss", {"reduction": "batchmean"}, [log_q + 0.1 * a, target]),
        ("KLDivLoss", {"log_target": True, "reduction": "sum"}, [log_q + 0.1 * a, np.log(target)]),
        ("MarginRankingLoss", {"margin": 0.2}, [a[:, 0], b[:, 0], sign]),
        ("CosineSimilarity", {"dim": 1}, [a, b]),
    ]


@pytest.mark.parametrize("index", range(17))
def test_loss_modules_match_torch_values_and_gradients(index):
    rng = np.random.default_rng(index)
    name, options, arrays = _cases(rng)[index]
    ours = getattr(pf.nn, name)(**{k: (pf.tensor(v) if isinstance(v, np.ndarray) else v)
                                   for k, v in options.items()})
    theirs = getattr(torch.nn, name)(**{k: (torch.tensor(v) if isinstance(v, np.ndarray) else v)
                                        for k, v in options.items()})
    grads = [a.dtype.kind == "f" for a in arrays[:2]] + [False] * (len(arrays) - 2)
    px = [pf.tensor(a, requires_grad=g) for a, g in zip(arrays, grads)]
    tx = [torch.tensor(a, requires_grad=g) for a, g in zip(arrays, grads)]
    got, want = ours(*px), theirs(*tx)
    np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=1e-10, atol=1e-12)
    got.sum().backward()
    want.sum().backward()
    for p, t, g in zip(px, tx, grads):
        if g:
            np.testing.assert_allclose(p.grad.numpy(), t.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_options_past_the_first_are_keyword_only_and_checked_by_name():
    # torch's positional order still carries size_average and reduce: a positional
    # reduction would silently mean something else there, so it is refused here
    with pytest.raises(TypeError):
        pf.nn.CrossEntropyLoss(None, -100)
    with pytest.raises(ValueError, match="MSELoss: reduction must be 'mean', 'sum' or 'none', "
                                         "got 'avg'"):
        pf.nn.MSELoss(reduction="avg")
    with pytest.raises(ValueError, match="CrossEntropyLoss: label_smoothing must be in"):
        pf.nn.CrossEntropyLoss(label_smoothing=1.5)
    with pytest.raises(ValueError, match="HuberLoss: delta must be positive"):
        pf.nn.HuberLoss(delta=0)


def test_class_weight_is_state_not_a_parameter():
    loss = pf.nn.CrossEntropyLoss(weight=[1.0, 2.0])
    assert [name for name, _ in loss.named_tensors()] == ["weight"]
    assert list(loss.parameters()) == []
    assert pf.nn.MSELoss().weight is None and list(pf.nn.MSELoss().named_tensors()) == []


def test_a_loss_module_serves_fit_and_a_pytorch_loop():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 4)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    pf.random.seed(0)
    model = pf.nn.Sequential([pf.nn.Dense(8, activation="relu"), pf.nn.Dense(2)])
    model.compile(optimizer=pf.optim.Adam(lr=0.05), loss=pf.nn.CrossEntropyLoss(),
                  metrics=["accuracy"])
    history = model.fit(x, y, epochs=15, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    # and the same object in a hand-written loop
    criterion = pf.nn.CrossEntropyLoss()
    optimizer = pf.optim.SGD(model.parameters(), lr=0.1)
    before = float(criterion(model(pf.tensor(x)), pf.tensor(y)))
    for _ in range(5):
        optimizer.zero_grad()
        criterion(model(pf.tensor(x)), pf.tensor(y)).backward()
        optimizer.step()
    assert float(criterion(model(pf.tensor(x)), pf.tensor(y))) < before
