"""pf.onnx.export: every layer contract case, the seed examples' models and functional models
with several inputs run in ONNX Runtime and match pyfront at two batch sizes."""
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest

import pyfront as pf
import pyfront.onnx  # noqa: F401

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))


def _module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# the contract test module itself (as pytest imports it: cases register layer classes, so it
# must not run twice in one session)
sys.path.insert(0, os.path.join(ROOT, "tests", "nn"))
contract = importlib.import_module("test_layer_contract")
CASES = contract.CASES
# layer classes no contract case uses, each with a case of its own here (same fields)
EXTRA_CASES = [
    {"name": "activation_by_name", "make": lambda: pf.nn.Activation("softsign"),
     "input_shape": (3, 5)},
    {"name": "relu", "make": pf.nn.ReLU, "input_shape": (3, 5)},
    {"name": "sigmoid", "make": pf.nn.Sigmoid, "input_shape": (3, 5)},
    {"name": "tanh", "make": pf.nn.Tanh, "input_shape": (3, 5)},
    {"name": "gelu", "make": pf.nn.GELU, "input_shape": (3, 5)},
    {"name": "log_softmax", "make": pf.nn.LogSoftmax, "input_shape": (3, 5)},
    {"name": "softmin", "make": lambda: pf.nn.Softmin(dim=1), "input_shape": (3, 5)},
    {"name": "global_avg_pool1d", "make": pf.nn.GlobalAvgPool1D, "input_shape": (2, 3, 7)},
    {"name": "global_avg_pool3d_keepdims", "make": lambda: pf.nn.GlobalAvgPool3D(keepdims=True),
     "input_shape": (2, 3, 4, 3, 2)},
    {"name": "global_max_pool2d", "make": pf.nn.GlobalMaxPool2D, "input_shape": (2, 3, 5, 4)},
    {"name": "adaptive_avg_pool1d", "make": lambda: pf.nn.AdaptiveAvgPool1D(3),
     "input_shape": (2, 3, 7)},
    {"name": "adaptive_avg_pool2d", "make": lambda: pf.nn.AdaptiveAvgPool2D((2, 3)),
     "input_shape": (2, 3, 6, 7)},
    {"name": "adaptive_avg_pool3d", "make": lambda: pf.nn.AdaptiveAvgPool3D(2),
     "input_shape": (2, 3, 4, 5, 4)},
    {"name": "unflatten", "make": lambda: pf.nn.Unflatten(1, (2, 6)), "input_shape": (3, 12)},
    {"name": "upsample", "make": lambda: pf.nn.Upsample(scale_factor=2, mode="nearest"),
     "input_shape": (2, 3, 4, 5)},
    {"name": "bidirectional_lstm_mask_value", "make": lambda: pf.nn.Bidirectional(
        pf.nn.LSTM(3, return_sequences=True, mask_value=0.0)), "input_shape": (3, 5, 2)},
    # torch.nn's names (their own classes where torch's argument order differs)
    {"name": "torch_linear", "make": lambda: pf.nn.Linear(5, 4), "input_shape": (3, 5)},
    {"name": "torch_conv1d", "make": lambda: pf.nn.Conv1d(3, 4, 3, 2, 1),
     "input_shape": (2, 3, 7)},
    {"name": "torch_conv2d", "make": lambda: pf.nn.Conv2d(2, 4, 3, padding=1, groups=2),
     "input_shape": (2, 2, 5, 4)},
    {"name": "torch_conv3d", "make": lambda: pf.nn.Conv3d(2, 3, 2), "input_shape": (2, 2, 3, 4, 3)},
    {"name": "torch_conv_transpose1d", "make": lambda: pf.nn.ConvTranspose1d(3, 2, 4, 2, 1),
     "input_shape": (2, 3, 5)},
    {"name": "torch_conv_transpose2d", "make": lambda: pf.nn.ConvTranspose2d(2, 4, 3, 2, 1, 1),
     "input_shape": (2, 2, 3, 4)},
    {"name": "torch_conv_transpose3d", "make": lambda: pf.nn.ConvTranspose3d(2, 2, 2),
     "input_shape": (2, 2, 2, 3, 2)},
]
# classes that are no layer of their own: tested through what they hold or build
# bases, and containers that are not called themselves (what they hold is exported); losses
# (torch.nn's loss modules) are what training minimises, not a part of a model
NOT_LAYERS = {"Module", "CompiledModule", "Model", "ModuleList", "ModuleDict", "ParameterList",
              "ParameterDict", *pf.nn.losses.__all__}


def _outputs(out):
    return [o.numpy() for o in contract._outputs(out)]


def _assert_match(model, path, ort_run, inputs_at):
    """pyfront and ONNX Runtime agree at batch 1 and batch 5."""
    for batch in (1, 5):
        arrays = inputs_at(batch)
        with pf.no_grad():
            ours = _outputs(model(*[pf.tensor(a) for a in arrays]))
        theirs = ort_run(path, *arrays)
        assert len(ours) == len(theirs)
        for a, b in zip(ours, theirs):
            # the batch is dim 0, but dim 1 of time-major sequences and of torch's h_n
            assert a.shape == b.shape and batch in a.shape[:2]
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=2e-6)


def test_every_layer_class_has_a_case_that_exports():
    import inspect

    used = set()
    for case in CASES + EXTRA_CASES:
        pf.random.seed(0)
        used.update(type(m) for m in case["make"]().modules())
    # by class: torch's names of the same classes (BatchNorm2d is BatchNorm2D) need no case
    layers = {obj for obj in vars(pf.nn).values()
              if inspect.isclass(obj) and issubclass(obj, pf.nn.Module)}
    assert sorted(c.__name__ for c in layers - used if c.__name__ not in NOT_LAYERS) == []


@pytest.mark.parametrize("case", CASES + EXTRA_CASES,
                         ids=[c["name"] for c in CASES + EXTRA_CASES])
def test_layer_contract_case_exports_and_matches_onnxruntime(case, tmp_path, ort_run):
    """...and imports back: pf.onnx.load of the file gives the layer's numbers."""
    layer, _ = contract._built(case)
    path = tmp_path / "layer.onnx"
    pf.onnx.export(layer, path)

    def inputs_at(batch):
        shape = (batch,) + tuple(case["input_shape"][1:])
        return [contract._input(dict(case, input_shape=shape), seed=batch)]
    _assert_match(layer, path, ort_run, inputs_at)
    again = pf.onnx.load(path)
    x = pf.tensor(inputs_at(3)[0])
    with pf.no_grad():
        for a, b in zip(_outputs(layer(x)), _outputs(again(x))):
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=2e-6)


def _example(name):
    return _module(os.path.join(ROOT, "examples", name + ".py"), "onnx_example_" + name)


def test_cnn_digits_example_model_exports(tmp_path, ort_run):
    model = _example("cnn_digits").make_cnn()
    rng = np.random.default_rng(0)
    model(pf.tensor(rng.standard_normal((2, 1, 28, 28)).astype(np.float32)))
    path = pf.onnx.export(model, tmp_path / "cnn.onnx")
    _assert_match(model, path, ort_run, lambda n: [
        rng.standard_normal((n, 1, 28, 28)).astype(np.float32)])


def test_lstm_forecaster_example_model_exports(tmp_path, ort_run):
    # examples/lstm_timeseries.py: Sequential([LSTM(50), Dense(1)]), hybridized
    model = pf.nn.Sequential([pf.nn.LSTM(50), pf.nn.Dense(1)]).hybridize()
    rng = np.random.default_rng(1)
    model(pf.tensor(rng.standard_normal((2, 24, 3)).astype(np.float32)))
    path = pf.onnx.export(model, tmp_path / "lstm.onnx")
    _assert_match(model, path, ort_run, lambda n: [
        rng.standard_normal((n, 24, 3)).astype(np.float32)])


def test_two_input_vqa_model_exports_with_named_inputs(tmp_path, ort_run):
    vqa = _example("vqa_cnn_lstm")
    model = vqa.make_model()
    rng = np.random.default_rng(2)

    def inputs_at(n):
        return [rng.standard_normal((n, 3, 16, 16)).astype(np.float32),
                rng.integers(0, len(vqa.WORDS), (n, vqa.LENGTH)).astype(np.int64)]
    model(*[pf.tensor(a) for a in inputs_at(2)])
    path = pf.onnx.export(model, tmp_path / "vqa.onnx")
    import onnx

    proto = onnx.load(str(path))
    assert [i.name for i in proto.graph.input] == ["image", "question"]
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    assert proto.opset_import[0].version == 17
    _assert_match(model, path, ort_run, inputs_at)


def test_functional_model_with_two_inputs_and_two_outputs_exports(tmp_path, ort_run):
    series = pf.nn.Input((6, 3), name="series")
    tokens = pf.nn.Input((4,), dtype="int64", name="tokens")
    s = pf.nn.GRU(5)(series)
    t = pf.nn.Flatten()(pf.nn.Embedding(7, 2)(tokens))
    h = pf.nn.Concatenate()(s, t)
    model = pf.nn.Model(inputs=[series, tokens],
                        outputs=[pf.nn.Dense(3, activation="softmax")(h), pf.nn.Dense(1)(h)])
    rng = np.random.default_rng(5)

    def inputs_at(n):
        return [rng.standard_normal((n, 6, 3)).astype(np.float32),
                rng.integers(0, 7, (n, 4)).astype(np.int64)]
    model(*[pf.tensor(a) for a in inputs_at(2)])
    path = pf.onnx.export(model, tmp_path / "two.onnx")
    import onnx

    graph = onnx.load(path).graph
    assert [i.name for i in graph.input] == ["series", "tokens"] and len(graph.output) == 2
    _assert_match(model, path, ort_run, inputs_at)


def test_export_from_a_pf_file_and_at_a_newer_opset(tmp_path, ort_run):
    model = pf.nn.Sequential([pf.nn.Dense(6, activation="gelu"), pf.nn.LayerNorm(),
                              pf.nn.Dense(3)])
    x = np.random.default_rng(3).standard_normal((4, 5)).astype(np.float32)
    model(pf.tensor(x))
    pf.save(model, tmp_path / "m.pf")
    path = pf.onnx.export(tmp_path / "m.pf", tmp_path / "m.onnx", opset=20)
    import onnx

    proto = onnx.load(path)
    assert proto.opset_import[0].version == 20
    assert "Gelu" in {n.op_type for n in proto.graph.node}      # opset 20 has Gelu itself
    with pf.no_grad():
        ours = model(pf.tensor(x)).numpy()
    np.testing.assert_allclose(ort_run(path, x)[0], ours, rtol=1e-5, atol=2e-6)


def test_export_with_example_inputs_builds_the_model(tmp_path, ort_run):
    model = pf.nn.Sequential([pf.nn.Conv1D(4, 3, padding="same"), pf.nn.GlobalAvgPool1D()])
    x = np.random.default_rng(4).standard_normal((3, 2, 9)).astype(np.float32)
    path = pf.onnx.export(model, tmp_path / "c.onnx", example_inputs=[x])
    with pf.no_grad():
        ours = model(pf.tensor(x)).numpy()
    np.testing.assert_allclose(ort_run(path, x)[0], ours, rtol=1e-5, atol=1e-6)


@pf.nn.register_layer
class _SquaredError(pf.nn.Module):
    """A layer whose op (mse) has no ONNX form."""

    def forward(self, x):
        return pf.mse(x, x * 2.0, reduction="none")


def test_an_op_without_onnx_form_is_refused_by_name(tmp_path):
    model = pf.nn.Sequential([pf.nn.Dense(3), _SquaredError(name="sq")])
    model(pf.tensor(np.ones((2, 4), np.float32)))
    with pytest.raises(pf.onnx.UnsupportedOnnxError) as err:
        pf.onnx.export(model, tmp_path / "x.onnx")
    assert "mse" in str(err.value) and "sq/mse" in str(err.value)
    assert not (tmp_path / "x.onnx").exists()


def test_a_large_model_is_written_with_external_data(tmp_path, ort_run, monkeypatch):
    """Past the size limit (1 GiB; lowered here) the tensors go to a file beside the model,
    which ONNX Runtime and pf.onnx.load both read."""
    from pyfront.onnx import exporter

    monkeypatch.setattr(exporter, "_EXTERNAL_DATA_BYTES", 1000)
    model = pf.nn.Sequential([pf.nn.Dense(40, activation="relu"), pf.nn.Dense(3)])
    x = np.random.default_rng(7).standard_normal((4, 30)).astype(np.float32)
    model(pf.tensor(x))
    path = pf.onnx.export(model, tmp_path / "big.onnx")
    assert os.path.getsize(tmp_path / "big.onnx.data") >= 30 * 40 * 4 > os.path.getsize(path)
    with pf.no_grad():
        ours = model(pf.tensor(x)).numpy()
    np.testing.assert_allclose(ort_run(path, x)[0], ours, rtol=1e-5, atol=1e-6)
    with pf.no_grad():
        assert np.array_equal(pf.onnx.load(path)(pf.tensor(x)).numpy(), ours)


def test_opsets_before_17_are_refused(tmp_path):
    model = pf.nn.Dense(2)
    model(pf.tensor(np.ones((1, 3), np.float32)))
    with pytest.raises(pf.onnx.OnnxError, match="opset 17 or newer, got opset=13"):
        pf.onnx.export(model, tmp_path / "x.onnx", opset=13)


def test_importing_pyfront_does_not_import_onnx():
    code = ("import sys, pyfront as pf; pf.onnx.export, pf.onnx.load; "
            "assert 'onnx' not in sys.modules, 'onnx loaded'; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "ok", out.stderr


def test_missing_onnx_package_says_what_to_install(tmp_path):
    code = ("import sys; sys.modules['onnx'] = None\n"
            "import numpy as np, pyfront as pf, pyfront.onnx\n"
            "m = pf.nn.Dense(2); m(pf.tensor(np.ones((1, 3), np.float32)))\n"
            "try:\n    pf.onnx.export(m, %r)\nexcept pf.PyfrontError as e:\n    print(e)\n"
            % str(tmp_path / "x.onnx"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert 'pip install "pyfront[onnx]"' in out.stdout, out.stdout + out.stderr


class _MaskedRNN(pf.nn.Module):
    """A recurrent layer fed an explicit (batch, time) mask, then a Dense."""

    def __init__(self, rnn):
        super().__init__()
        self.rnn, self.dense = rnn, pf.nn.Dense(2)

    def forward(self, x, mask):
        return self.dense(self.rnn(x, mask=mask))


@pytest.mark.parametrize("layer", ["lstm", "bidirectional_gru"])
def test_masked_padded_sequences_export_as_sequence_lengths(layer, tmp_path, ort_run):
    rnn = pf.nn.LSTM(4, return_sequences=True) if layer == "lstm" else \
        pf.nn.Bidirectional(pf.nn.GRU(3))
    model = _MaskedRNN(rnn)
    rng = np.random.default_rng(6)

    def padded(n):
        x = rng.standard_normal((n, 6, 3)).astype(np.float32)
        lengths = rng.integers(1, 7, n)
        mask = (np.arange(6)[None, :] < lengths[:, None]).astype(np.float32)
        return [x, mask]                        # right padding, as batches are padded
    path = pf.onnx.export(model, tmp_path / "masked.onnx", example_inputs=padded(2))
    import onnx

    rnn_nodes = [n for n in onnx.load(path).graph.node if n.op_type in ("LSTM", "GRU")]
    assert rnn_nodes and all(n.input[4] for n in rnn_nodes)      # sequence_lens is wired
    _assert_match(model, path, ort_run, padded)
    again = pf.onnx.load(path)                  # and back: lengths become a mask again
    xs = [pf.tensor(a) for a in padded(4)]
    with pf.no_grad():
        np.testing.assert_allclose(again(*xs).numpy(), model(*xs).numpy(), rtol=1e-6,
                                   atol=1e-7)


def test_every_initializer_is_read_by_a_node(tmp_path):
    """The recurrent layers' weights go out reordered into ONNX's gate layout: the original
    tensors must not be left in the file as unread initializers."""
    import onnx

    model = pf.nn.Sequential([pf.nn.Bidirectional(pf.nn.GRU(3)), pf.nn.Dense(2)])
    model(pf.tensor(np.ones((2, 4, 5), np.float32)))
    proto = onnx.load(pf.onnx.export(model, tmp_path / "rnn.onnx"))
    read = {name for n in proto.graph.node for name in n.input}
    assert [t.name for t in proto.graph.initializer if t.name not in read] == []
