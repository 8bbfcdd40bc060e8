"""The contract every layer keeps: eager equals compiled; save/load round trip bit-exact;
gradients match finite differences in float64; one training step lowers the loss; a wrong
input shape gives an error naming the layer and the shapes.

Cases come from every tests/nn/cases_*.py (a list CASES of dicts: name, make, input_shape,
optional input_dtype, input_range, bad_input_shape, grad_atol)."""
import glob
import importlib.util
import os
import sys

import numpy as np
import pytest

import pyfront as pf


def _load_cases():
    # Each cases file runs once per process, whoever loads this module first (pytest, or the
    # GPU and ONNX suites that reuse these cases): its layer classes register their names, and
    # a second run would register them again.
    cases = []
    here = os.path.dirname(os.path.abspath(__file__))
    for path in sorted(glob.glob(os.path.join(here, "cases_*.py"))):
        name = "_layer_contract_" + os.path.basename(path)[:-3]
        mod = sys.modules.get(name)
        if mod is None:
            spec = importlib.util.spec_from_file_location(name, path)
            mod = importlib.util.module_from_spec(spec)
            sys.modules[name] = mod
            try:
                spec.loader.exec_module(mod)
            except BaseException:
                del sys.modules[name]
                raise
        cases.extend(mod.CASES)
    return cases


CASES = _load_cases()
IDS = [c["name"] for c in CASES]


def _input(case, dtype=None, seed=0):
    rng = np.random.default_rng(seed)
    shape = case["input_shape"]
    if case.get("input_dtype", "float32").startswith("int"):
        lo, hi = case.get("input_range", (0, 5))
        return rng.integers(lo, hi, shape).astype(case["input_dtype"])
    return rng.standard_normal(shape).astype(dtype or case.get("input_dtype", "float32"))


def _outputs(out):
    """A layer's output tensors, flat (torch's LSTM returns (output, (h_n, c_n)))."""
    if isinstance(out, (tuple, list)):
        return [leaf for part in out for leaf in _outputs(part)]
    return [out]


def _built(case, seed=0):
    pf.random.seed(seed)
    layer = case["make"]()
    x = _input(case)
    layer(pf.tensor(x))
    layer.eval()
    return layer, x


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_eager_equals_compiled(case):
    layer, x = _built(case)
    with pf.no_grad():
        eager = _outputs(layer(pf.tensor(x)))
        compiled = _outputs(pf.jit(layer)(pf.tensor(x)))
    for a, b in zip(eager, compiled):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_save_load_round_trip_is_bit_exact(case, tmp_path):
    layer, x = _built(case)
    path = tmp_path / "layer.pf"
    pf.save(layer, path)
    again = pf.load(path)
    with pf.no_grad():
        for a, b in zip(_outputs(layer(pf.tensor(x))), _outputs(again(pf.tensor(x)))):
            assert np.array_equal(a.numpy(), b.numpy())


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradients_match_finite_differences_in_float64(case):
    layer, x = _built(case)
    layer.to("float64")
    small = dict(case, input_shape=(min(case["input_shape"][0], 2),) + tuple(
        case["input_shape"][1:]))
    x = _input(small, "float64", seed=1)
    float_input = x.dtype.kind == "f"
    rng = np.random.default_rng(2)
    params = layer.parameters()
    weights = None

    def scalar():
        nonlocal weights
        outs = _outputs(layer(xt))
        if weights is None:
            weights = [rng.standard_normal(o.shape) for o in outs]
        return sum((o * pf.tensor(w)).sum() for o, w in zip(outs, weights))

    xt = pf.tensor(x, requires_grad=float_input)
    targets = ([xt] if float_input else []) + params
    if not targets:
        pytest.skip("no float input and no parameters: nothing to differentiate")
    analytic = pf.grad(scalar(), targets, allow_unused=True)
    eps = 1e-6
    atol = case.get("grad_atol", 1e-6)
    for t, a in zip(targets, analytic):
        arr = t.numpy()
        numeric = np.zeros_like(arr)
        flat, nflat = arr.reshape(-1), numeric.reshape(-1)
        step = max(1, flat.size // 40)         # sample the larger tensors
        idx = range(0, flat.size, step)
        with pf.no_grad():
            for i in idx:
                keep = flat[i]
                flat[i] = keep + eps
                up = scalar().item()
                flat[i] = keep - eps
                down = scalar().item()
                flat[i] = keep
                nflat[i] = (up - down) / (2 * eps)
        got = np.zeros_like(arr) if a is None else a.numpy()
        np.testing.assert_allclose(got.reshape(-1)[list(idx)], nflat[list(idx)],
                                   rtol=1e-4, atol=atol, err_msg=t.name or "input")


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_one_training_step_lowers_the_loss(case):
    layer, x = _built(case)
    params = layer.parameters()
    if not params:
        pytest.skip("no trainable parameters")
    layer.train()
    xt = pf.tensor(x)
    targets = [np.random.default_rng(3).standard_normal(o.shape).astype(np.float32)
               for o in _outputs(layer(xt))]

    def loss_value():
        return sum(pf.losses.mse(o, pf.tensor(t)) for o, t in zip(_outputs(layer(xt)), targets))

    opt = pf.optim.SGD(params, lr=0.05)
    before = loss_value()
    opt.zero_grad()
    before.backward()
    opt.step()
    with pf.no_grad():
        after = loss_value()
    assert after.item() < before.item()


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_wrong_input_shape_names_the_layer_and_shapes(case):
    layer, x = _built(case)
    bad = case.get("bad_input_shape")
    candidates = [bad] if bad else [x.shape[:-1] + (x.shape[-1] + 1,)] + (
        [x.shape[:1] + (x.shape[1] + 1,) + x.shape[2:]] if len(x.shape) > 2 else [])
    for shape in candidates:
        wrong = _input(dict(case, input_shape=tuple(shape)))
        try:
            layer(pf.tensor(wrong))
        except (pf.ShapeError, pf.PyfrontError) as e:
            msg = str(e)
            assert layer.name in msg or any(m.name in msg for m in layer.modules()), msg
            assert str(tuple(shape)) in msg or str(tuple(shape))[:-1] in msg, msg
            return
    if layer.parameters():
        pytest.fail("%s accepted inputs of shapes %s after being built for %s"
                    % (case["name"], candidates, x.shape))
