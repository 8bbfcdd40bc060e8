"""The model file: round trips bit-exact, readable by safetensors, refuses truncated, altered,
oversized, foreign or unsafe files with clear errors, and saves atomically."""
import json
import os
import pickle

import numpy as np
import pytest

import pyfront as pf
from pyfront.io import format as fmt


@pytest.fixture
def trained(tmp_path):
    pf.random.seed(0)
    model = pf.nn.Sequential([pf.nn.Dense(12, activation="relu"), pf.nn.Dense(3)])
    x = pf.tensor(np.random.default_rng(0).standard_normal((5, 7)).astype(np.float32))
    model(x)
    path = tmp_path / "m.pf"
    pf.save(model, path)
    return model, x, path


def test_round_trip_is_bit_exact(trained):
    model, x, path = trained
    again = pf.load(path)
    with pf.no_grad():
        assert np.array_equal(again(x).numpy(), model(x).numpy())
    for (k, a), (k2, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert k == k2 and np.array_equal(a, b)
    assert again.signature["inputs"][0]["shape"] == [-1, 7]
    assert again.signature["outputs"][0]["shape"] == [-1, 3]


def test_a_custom_module_round_trips_through_its_graph(tmp_path):
    class Net(pf.nn.Module):          # not registered: saved and rebuilt as a graph
        def __init__(self):
            super().__init__()
            self.a = pf.nn.Dense(5)
            self.b = pf.nn.Dense(2)

        def forward(self, x):
            h = self.a(x)
            return self.b(pf.tanh(h) * h + 1.0)

    net = Net()
    x = pf.tensor(np.random.default_rng(1).standard_normal((4, 3)).astype(np.float32))
    want = net(x).numpy()
    pf.save(net, tmp_path / "n.pf")
    again = pf.load(tmp_path / "n.pf")
    assert type(again).__name__ == "GraphModule"
    assert np.array_equal(again(x).numpy(), want)
    assert np.array_equal(pf.jit(again)(x).numpy(), want)


def test_files_are_readable_by_safetensors(trained):
    safetensors = pytest.importorskip("safetensors.numpy")
    model, x, path = trained
    tensors = safetensors.load_file(str(path))
    for k, v in model.state_dict().items():
        assert np.array_equal(tensors[k], v)


def test_truncated_file_is_refused(trained):
    _, _, path = trained
    data = path.read_bytes()
    for cut in (4, 20, len(data) // 2, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(pf.ModelFormatError, match="truncated|corrupt|checksum|bytes"):
            pf.load(path)


def test_every_flipped_byte_is_caught(trained):
    _, _, path = trained
    data = bytearray(path.read_bytes())
    rng = np.random.default_rng(0)
    positions = sorted(set(rng.integers(0, len(data), 40).tolist()) | {0, 8, 9, len(data) - 1})
    for pos in positions:
        bad = bytearray(data)
        bad[pos] ^= 0x41
        path.write_bytes(bytes(bad))
        with pytest.raises(pf.ModelFormatError):
            pf.load(path)


def test_oversized_header_is_refused(tmp_path):
    path = tmp_path / "big.pf"
    path.write_bytes((2 ** 40).to_bytes(8, "little") + b"{}")
    with pytest.raises(pf.ModelFormatError, match="header"):
        pf.load(path)


def test_newer_format_version_is_refused(trained, tmp_path):
    model, _, _ = trained
    tensors = model.state_dict()
    path = tmp_path / "future.pf"
    fmt.write_file(path, tensors, {"format": "pyfront.model", "format_version": "99"})
    with pytest.raises(pf.ModelFormatError, match="version 99"):
        pf.load(path)


def test_pickles_are_refused_never_executed(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, ("touch %s" % marker,))

    path = tmp_path / "evil.pf"
    path.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(pf.ModelFormatError, match="pickle"):
        pf.load(path)
    assert not marker.exists()


def test_a_file_naming_a_python_callable_is_refused(tmp_path):
    path = tmp_path / "callable.pf"
    config = json.dumps({"class": "os.system", "config": {"command": "true"}})
    fmt.write_file(path, {"w": np.zeros(2, np.float32)},
                   {"format": "pyfront.model", "format_version": "1", "config": config})
    with pytest.raises(pf.ModelFormatError, match="not a registered"):
        pf.load(path)
    graph = json.dumps({"format": 1, "nodes": [
        {"kind": "placeholder", "name": "x", "shape": [None, 2], "dtype": "float32"},
        {"kind": "op", "op": "builtins.eval", "inputs": [[0, 0]], "attrs": {}, "name": "e"}],
        "inputs": [0], "outputs": [[1, 0]]})
    fmt.write_file(path, {}, {"format": "pyfront.model", "format_version": "1", "graph": graph})
    with pytest.raises(pf.ModelFormatError, match="unknown op"):
        pf.load(path)


def test_a_file_from_elsewhere_is_refused(tmp_path):
    path = tmp_path / "other.pf"
    fmt.write_file(path, {"w": np.zeros(2, np.float32)}, {"format": "something.else"})
    with pytest.raises(pf.ModelFormatError, match="not a pyfront model"):
        pf.load(path)
    zip_path = tmp_path / "torch.pt"
    zip_path.write_bytes(b"PK\x03\x04" + b"\0" * 64)
    with pytest.raises(pf.ModelFormatError, match="zip"):
        pf.load(zip_path)


def test_save_is_atomic(trained, monkeypatch):
    model, x, path = trained
    before = path.read_bytes()
    model[0].kernel.numpy()[...] += 1

    def crash(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        pf.save(model, path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert not [p for p in os.listdir(path.parent) if p.endswith(".tmp")]


def test_checkpoint_restores_model_optimizer_and_position(tmp_path):
    pf.random.seed(1)
    model = pf.nn.Sequential([pf.nn.Dense(8, activation="tanh"), pf.nn.Dense(2)])
    opt = pf.optim.Adam(model.parameters(), lr=0.01)
    x = pf.tensor(np.random.default_rng(2).standard_normal((6, 4)).astype(np.float32))
    y = pf.tensor(np.array([0, 1, 0, 1, 1, 0]))

    def step(m, o):
        o.zero_grad()
        loss = pf.losses.cross_entropy(m(x), y)
        loss.backward()
        o.step()
        return loss.item()

    for _ in range(3):
        step(model, opt)
    pf.save_checkpoint(tmp_path / "ck.pf", model, opt, epoch=2, step=3, extra={"note": "hi"})
    reference = [step(model, opt) for _ in range(3)]

    pf.random.seed(99)
    twin = pf.nn.Sequential([pf.nn.Dense(8, activation="tanh"), pf.nn.Dense(2)])
    twin(x)
    opt2 = pf.optim.Adam(twin.parameters(), lr=0.5)
    pos = pf.load_checkpoint(tmp_path / "ck.pf", twin, opt2)
    assert (pos["epoch"], pos["step"], pos["extra"]) == (2, 3, {"note": "hi"})
    assert opt2.lr == 0.01 and opt2.iterations == 3
    resumed = [step(twin, opt2) for _ in range(3)]
    np.testing.assert_allclose(resumed, reference, rtol=1e-6)


@pytest.mark.parametrize("shape", [(6,), (1, 6), (None, 6)])
def test_input_shape_with_or_without_the_batch_gives_one_signature(tmp_path, shape):
    # (6,) is Keras' input_shape (no batch); (1, 6) has the rank of the inputs seen
    model = pf.nn.Sequential([pf.nn.Dense(3)])
    model(pf.tensor(np.zeros((2, 6), np.float32)))
    pf.save(model, tmp_path / "m.pf", input_shape=shape)
    assert pf.load(tmp_path / "m.pf").signature["inputs"][0]["shape"] == [-1, 6]


def test_an_unbuilt_model_saves_from_its_input_shape(tmp_path):
    model = pf.nn.Sequential([pf.nn.Conv2d(1, 4, 3), pf.nn.Flatten(), pf.nn.Dense(3)])
    pf.save(model, tmp_path / "m.pf", input_shape=(1, 8, 8))
    again = pf.load(tmp_path / "m.pf")
    assert again.signature["inputs"][0]["shape"] == [-1, 1, 8, 8]
    x = pf.tensor(np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32))
    np.testing.assert_array_equal(again(x).numpy(), model(x).numpy())
