"""pf.onnx.load: models built and exported by PyTorch import and match ONNX Runtime; imported
models hybridize, save as .pf and fine-tune with fit; pyfront -> ONNX -> pyfront is
bit-identical for the reference MLP and CNN; bad files are clear errors."""
import os
import sys

import numpy as np
import pytest

import pyfront as pf
import pyfront.onnx  # noqa: F401

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import onnx_torch_models as torch_models  # noqa: E402


@pytest.fixture(scope="module")
def exported(torch):
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = torch_models.export(name)
        return cache[name]
    return get


@pytest.mark.parametrize("name", sorted(torch_models.MODELS))
def test_pytorch_model_imports_and_matches_onnxruntime(name, exported, ort_run):
    data, shape = exported(name)
    model = pf.onnx.load(data)
    compiled = model.hybridize()
    for batch in (1, 5):
        x = torch_models.random_input(shape, batch, seed=batch)
        expected = ort_run(data, x)[0]
        with pf.no_grad():
            eager = model(pf.tensor(x)).numpy()
            traced = compiled(pf.tensor(x)).numpy()
        assert eager.shape == expected.shape
        np.testing.assert_allclose(eager, expected, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(traced, eager, rtol=1e-5, atol=1e-6)


def test_imported_weights_are_parameters_named_as_in_the_file(exported):
    data, _ = exported("residual_cnn")
    model = pf.onnx.load(data)
    names = dict(model.named_parameters(trainable_only=False))
    trainable = {k for k, p in names.items() if p.trainable}
    # torch folds BatchNorm into the convolutions when exporting in eval mode
    assert "head.weight" in names and "head.bias" in names
    assert names["head.weight"].shape == (16, 5)        # stored as pyfront's (in, out)
    assert trainable == set(names)
    assert model.signature["inputs"] == [{"name": "input", "dtype": "float32",
                                          "shape": [-1, 3, 12, 12]}]
    assert model.signature["outputs"][0]["name"] == "output"


def test_batch_norm_statistics_import_as_frozen_parameters(ort_run):
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.random(3).astype(np.float32) + 0.5, n)
             for n in ("scale", "bias", "mean", "var")]
    graph = helper.make_graph(
        [helper.make_node("BatchNormalization", ["x", "scale", "bias", "mean", "var"], ["y"],
                          epsilon=1e-3)], "bn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3, 4])], inits)
    data = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]) \
        .SerializeToString()
    model = pf.onnx.load(data)
    params = dict(model.named_parameters(trainable_only=False))
    assert {k for k, p in params.items() if not p.trainable} == {"mean", "var"}
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    with pf.no_grad():
        np.testing.assert_allclose(model(pf.tensor(x)).numpy(), ort_run(data, x)[0],
                                   rtol=1e-5, atol=1e-6)


def test_imported_model_saves_as_pf_and_loads_identically(exported, tmp_path):
    data, shape = exported("recurrent")
    model = pf.onnx.load(data)
    pf.save(model, tmp_path / "rnn.pf")
    again = pf.load(tmp_path / "rnn.pf")
    x = torch_models.random_input(shape, 3)
    with pf.no_grad():
        assert np.array_equal(again(pf.tensor(x)).numpy(), model(pf.tensor(x)).numpy())
    assert again.signature["inputs"][0]["shape"] == [-1, 7, 6]
    # the same parameters in the same order (copies shipped as bytes train in step)
    assert [k for k, _ in again.named_parameters()] == [k for k, _ in model.named_parameters()]
    again_bytes = pf.io.model.load_bytes(pf.io.model.save_bytes(model))
    assert [k for k, _ in again_bytes.named_parameters()] == \
        [k for k, _ in model.named_parameters()]


def test_imported_model_fine_tunes_with_fit(exported):
    data, shape = exported("mlp")
    model = pf.onnx.load(data)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((256,) + shape).astype(np.float32)
    y = (x[:, :10].argmax(axis=1)).astype(np.int64)      # a task the random MLP cannot do
    before = {k: p.numpy().copy() for k, p in model.named_parameters()}
    model.train()
    model.compile(optimizer=pf.optim.Adam(lr=3e-3), loss="cross_entropy")
    history = model.fit(x, y, batch_size=32, epochs=6, verbose=0)
    losses = history["loss"]
    assert losses[-1] < 0.5 * losses[0], losses
    changed = [k for k, p in model.named_parameters() if not np.array_equal(p.numpy(),
                                                                             before[k])]
    assert len(changed) == len(before)       # every initializer was trained


def _reference_mlp():
    # examples/train_digits.py
    return pf.nn.Sequential([pf.nn.Dense(128, activation="relu"),
                             pf.nn.Dense(64, activation="relu"), pf.nn.Dense(10)]), (64,)


def _reference_cnn():
    # benchmarks/bench_cnn.py
    return pf.nn.Sequential([
        pf.nn.Conv2D(32, 3, activation="relu"), pf.nn.MaxPool2D(2),
        pf.nn.Conv2D(64, 3, activation="relu"), pf.nn.MaxPool2D(2),
        pf.nn.Flatten(), pf.nn.Dense(128, activation="relu"), pf.nn.Dense(10)]), (1, 28, 28)


@pytest.mark.parametrize("make", [_reference_mlp, _reference_cnn], ids=["mlp", "cnn"])
def test_round_trip_through_onnx_is_bit_identical(make, tmp_path):
    pf.random.seed(7)
    model, shape = make()
    rng = np.random.default_rng(8)
    model(pf.tensor(rng.standard_normal((2,) + shape).astype(np.float32)))
    model.eval()
    path = pf.onnx.export(model, tmp_path / "m.onnx")
    again = pf.onnx.load(path)
    compiled, compiled_again = model.hybridize(), again.hybridize()
    for batch in (1, 9):
        x = pf.tensor(rng.standard_normal((batch,) + shape).astype(np.float32))
        with pf.no_grad():
            assert np.array_equal(again(x).numpy(), model(x).numpy())
            assert np.array_equal(compiled_again(x).numpy(), compiled(x).numpy())
    # the same fused kernels come back: a Dense(relu) is one linear op again
    ops = [n.op.name for n in again.graph.nodes if n.kind == "op"]
    assert "relu" not in ops


def test_external_data_files_are_read(exported, tmp_path, ort_run):
    import onnx

    data, shape = exported("reference_cnn")
    proto = onnx.load_model_from_string(data)
    path = tmp_path / "big.onnx"
    onnx.save_model(proto, str(path), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="big.onnx.data", size_threshold=0)
    assert os.path.getsize(path) < 10_000 < os.path.getsize(tmp_path / "big.onnx.data")
    model = pf.onnx.load(path)
    x = torch_models.random_input(shape, 2)
    with pf.no_grad():
        np.testing.assert_allclose(model(pf.tensor(x)).numpy(), ort_run(data, x)[0],
                                   rtol=1e-4, atol=1e-5)
    os.remove(tmp_path / "big.onnx.data")
    with pytest.raises(pf.onnx.OnnxError, match="external data"):
        pf.onnx.load(path)


def test_external_data_outside_the_folder_or_too_short_is_refused(exported, tmp_path):
    import onnx

    data, _ = exported("mlp")
    path = tmp_path / "m.onnx"
    onnx.save_model(onnx.load_model_from_string(data), str(path), save_as_external_data=True,
                    all_tensors_to_one_file=True, location="m.data", size_threshold=0)
    proto = onnx.load(str(path), load_external_data=False)
    for t in proto.graph.initializer:
        for entry in t.external_data:
            if entry.key == "location":
                entry.value = "../outside/m.data"
    onnx.save_model(proto, str(tmp_path / "escape.onnx"))
    with pytest.raises(pf.onnx.OnnxError, match="escape.onnx: cannot read its external data: "
                                                 ".*points outside the directory"):
        pf.onnx.load(tmp_path / "escape.onnx")
    with open(tmp_path / "m.data", "r+b") as f:
        f.truncate(os.path.getsize(tmp_path / "m.data") // 2)
    with pytest.raises(pf.onnx.OnnxError, match="m.onnx: cannot read its external data: "
                                                 "External data length .* exceeds"):
        pf.onnx.load(path)


# ---- bad input --------------------------------------------------------------------------------

def _tiny_model(nodes, inits=(), opset=17, x_shape=("n", 4), y_shape=("n", 4)):
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(x_shape))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(y_shape))], list(inits))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_truncated_file_is_a_clear_error(exported, tmp_path):
    data, _ = exported("mlp")
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(pf.onnx.OnnxError, match="cut.onnx"):
        pf.onnx.load(path)


def test_corrupt_bytes_and_other_files_are_clear_errors(tmp_path):
    rng = np.random.default_rng(9)
    path = tmp_path / "noise.onnx"
    path.write_bytes(rng.integers(0, 256, 4000).astype(np.uint8).tobytes())
    with pytest.raises(pf.onnx.OnnxError, match="noise.onnx"):
        pf.onnx.load(path)
    text = tmp_path / "notes.onnx"
    text.write_text("this is not a model\n")
    with pytest.raises(pf.onnx.OnnxError, match="notes.onnx"):
        pf.onnx.load(text)
    with pytest.raises(pf.onnx.OnnxError, match="no such ONNX file"):
        pf.onnx.load(tmp_path / "absent.onnx")


def test_a_name_damaged_into_invalid_utf8_is_a_clear_error(exported):
    """onnx.checker quotes the damaged name in its message and fails to decode its own text."""
    data, _ = exported("residual_cnn")
    at = data.rindex(b"/block2/Relu_output_0") + len(b"/bloc")      # where a node reads it
    damaged = data[:at] + b"\xc7" + data[at + 1:]
    with pytest.raises(pf.onnx.OnnxError, match="corrupt: a name is not UTF-8"):
        pf.onnx.load(damaged)


def test_damaged_files_load_or_fail_with_an_onnx_error(exported):
    """Cut anywhere or one byte changed anywhere: a model (a changed weight is still a model)
    or an OnnxError, never another exception."""
    data, shape = exported("residual_cnn")
    rng = np.random.default_rng(11)
    damaged = [data[:int(cut)] for cut in rng.integers(1, len(data), 25)]
    for at in rng.integers(0, len(data), 60):
        b = bytearray(data)
        b[int(at)] ^= int(rng.integers(1, 256))
        damaged.append(bytes(b))
    outcomes = {"model": 0, "error": 0}
    for b in damaged:
        try:
            model = pf.onnx.load(b)
            with pf.no_grad():
                model(pf.tensor(torch_models.random_input(shape, 2)))
            outcomes["model"] += 1
        except pf.onnx.OnnxError:
            outcomes["error"] += 1
    assert outcomes["error"] >= 25, outcomes      # every cut is refused


def test_weights_of_the_wrong_shape_name_the_node():
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.ones((1, 12, 4), np.float32), "W")   # one direction only
    r = numpy_helper.from_array(np.ones((2, 12, 3), np.float32), "R")
    node = helper.make_node("LSTM", ["xt", "W", "R"], ["y"], name="enc", hidden_size=3,
                            direction="bidirectional")
    graph = helper.make_graph(
        [helper.make_node("Transpose", ["x"], ["xt"], perm=[1, 0, 2]), node], "rnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 5, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [5, 2, "n", 3])], [w, r])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(pf.onnx.UnsupportedOnnxError,
                       match=r"'enc' \(LSTM\): W of a bidirectional LSTM with hidden_size 3 must "
                             r"be \(2, 12, 4\), got \(1, 12, 4\)"):
        pf.onnx.load(proto.SerializeToString())
    vector = numpy_helper.from_array(np.ones(4, np.float32), "w")
    proto = _tiny_model([helper.make_node("Gemm", ["x", "w"], ["y"], name="fc")], [vector])
    with pytest.raises(pf.onnx.UnsupportedOnnxError,
                       match=r"'fc' \(Gemm\): Gemm's B must be a matrix, got shape \(4,\)"):
        pf.onnx.load(proto.SerializeToString())


@pytest.mark.parametrize("name", ["recurrent", "separable_cnn"])
def test_rewired_or_reshaped_graphs_load_or_fail_with_an_onnx_error(name, exported):
    """Valid protobuf, wrong model: an attribute changed, inputs swapped or rewired, a weight
    cut short. Each gives a model or an OnnxError naming the node, never another exception."""
    import copy

    import onnx

    data, shape = exported(name)
    base = onnx.load_model_from_string(data)
    rng = np.random.default_rng(len(name))
    names = [o for n in base.graph.node for o in n.output] + ["input"]
    for trial in range(30):
        proto = copy.deepcopy(base)
        node = proto.graph.node[int(rng.integers(len(proto.graph.node)))]
        change = trial % 4
        if change == 0 and node.attribute:
            attr = node.attribute[int(rng.integers(len(node.attribute)))]
            if attr.type == onnx.AttributeProto.INT:
                attr.i += 1
            elif attr.type == onnx.AttributeProto.INTS and attr.ints:
                attr.ints[0] += 1
        elif change == 1 and len(node.input) > 1:
            node.input[0], node.input[1] = node.input[1], node.input[0]
        elif change == 2:
            t = proto.graph.initializer[int(rng.integers(len(proto.graph.initializer)))]
            array = onnx.numpy_helper.to_array(t)
            if array.ndim and array.shape[0] > 1:
                t.CopyFrom(onnx.numpy_helper.from_array(np.ascontiguousarray(array[1:]), t.name))
        elif node.input:
            node.input[0] = names[int(rng.integers(len(names)))]
        try:
            model = pf.onnx.load(proto.SerializeToString())
            with pf.no_grad():
                model(pf.tensor(torch_models.random_input(shape, 2)))
        except pf.onnx.OnnxError:
            pass


def test_an_opset_before_13_is_converted(ort_run):
    from onnx import helper

    proto = _tiny_model([helper.make_node("Unsqueeze", ["x"], ["u"], axes=[1]),   # opset 9's
                         helper.make_node("Relu", ["u"], ["r"]),
                         helper.make_node("Squeeze", ["r"], ["y"], axes=[1])], opset=9)
    data = proto.SerializeToString()
    model = pf.onnx.load(data)
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    with pf.no_grad():
        np.testing.assert_array_equal(model(pf.tensor(x)).numpy(), ort_run(data, x)[0])


def test_unsupported_opsets_are_refused_by_number():
    from onnx import helper

    newer = _tiny_model([helper.make_node("Relu", ["x"], ["y"])], opset=99)
    with pytest.raises(pf.onnx.UnsupportedOnnxError,
                       match="opset 99; pyfront imports opsets 13 to .*newer than the "
                             "installed onnx package knows"):
        pf.onnx.load(newer.SerializeToString())
    # opset 7's BatchNormalization with spatial=0 has no later form to convert to
    old = _tiny_model([helper.make_node("BatchNormalization", ["x"] * 5, ["y"], spatial=0)],
                      opset=7)
    with pytest.raises(pf.onnx.UnsupportedOnnxError,
                       match="opset 7; pyfront imports opsets 13 to .* could not convert"):
        pf.onnx.load(old.SerializeToString())


def test_unknown_operators_are_listed_all_at_once_with_node_names():
    from onnx import helper

    proto = _tiny_model([helper.make_node("Relu", ["x"], ["a"], name="ok"),
                         helper.make_node("Det", ["a"], ["b"], name="det"),
                         helper.make_node("Frobnicate", ["b"], ["y"], name="fz",
                                          domain="com.example")])
    proto.opset_import.append(helper.make_opsetid("com.example", 1))
    with pytest.raises(pf.onnx.UnsupportedOnnxError) as err:
        pf.onnx.load(proto.SerializeToString())
    msg = str(err.value)
    assert "2 ONNX node(s)" in msg
    assert "Det (node 'det')" in msg and "com.example.Frobnicate (node 'fz')" in msg


def test_control_flow_is_refused_naming_the_nodes_and_why():
    from onnx import TensorProto, helper, numpy_helper

    def branch(op):
        return helper.make_graph([helper.make_node(op, ["x"], ["out"])], op,
                                 [], [helper.make_tensor_value_info("out", TensorProto.FLOAT,
                                                                    ["n", 4])])
    zero = numpy_helper.from_array(np.zeros((), np.float32), "zero")
    proto = _tiny_model([helper.make_node("ReduceSum", ["x"], ["total"], keepdims=0),
                         helper.make_node("Greater", ["total", "zero"], ["positive"]),
                         helper.make_node("If", ["positive"], ["y"], name="choose",
                                          then_branch=branch("Relu"),
                                          else_branch=branch("Neg"))], [zero])
    with pytest.raises(pf.onnx.UnsupportedOnnxError) as err:
        pf.onnx.load(proto.SerializeToString())
    msg = str(err.value)
    assert "1 ONNX node(s): If (node 'choose')" in msg
    assert "If: control flow with subgraphs" in msg and "unrolled" in msg


@pytest.mark.parametrize("values", [10, 25])
def test_initializer_whose_size_does_not_match_its_shape_is_refused(values):
    from onnx import TensorProto, helper

    bad = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, 4],
                      raw_data=np.ones(values, np.float32).tobytes())     # not 16 values
    proto = _tiny_model([helper.make_node("MatMul", ["x", "w"], ["y"])], [bad])
    with pytest.raises(pf.onnx.OnnxError) as err:
        pf.onnx.load(proto.SerializeToString())
    msg = str(err.value)
    assert ("'w'" in msg or "tensor name: w" in msg) and str(4 * values) in msg, msg


def test_symbolic_dims_besides_the_batch_need_input_shapes(ort_run):
    from onnx import helper

    proto = _tiny_model([helper.make_node("Softmax", ["x"], ["y"], axis=-1)],
                        x_shape=("n", "width"), y_shape=("n", "width"))
    data = proto.SerializeToString()
    with pytest.raises(pf.onnx.OnnxError, match=r"input_shapes=\{'x'"):
        pf.onnx.load(data)
    model = pf.onnx.load(data, input_shapes={"x": (None, 6)})
    x = np.random.default_rng(1).standard_normal((3, 6)).astype(np.float32)
    with pf.no_grad():
        np.testing.assert_allclose(model(pf.tensor(x)).numpy(), ort_run(data, x)[0],
                                   rtol=1e-6, atol=1e-7)


def test_a_setting_pyfront_lacks_names_the_node():
    from onnx import helper

    proto = _tiny_model([helper.make_node("AveragePool", ["x"], ["y"], name="pool",
                                          kernel_shape=[2], dilations=[2])],
                        opset=19, x_shape=("n", 2, 5), y_shape=("n", 2, 3))
    with pytest.raises(pf.onnx.UnsupportedOnnxError,
                       match="'pool' \\(AveragePool\\): dilated average pooling"):
        pf.onnx.load(proto.SerializeToString())


def test_what_the_jvm_worker_needs_from_an_onnx_file(tmp_path, ort_run):
    """The JVM bridge's worker serves a model from its signature and pf.jit(model).run_numpy:
    pf.onnx.load gives both, for a two-input model with an integer input."""
    image = pf.nn.Input((2, 6, 6), name="image")
    tokens = pf.nn.Input((5,), dtype="int64", name="tokens")
    v = pf.nn.Flatten()(pf.nn.Conv2D(3, 3, activation="relu")(image))
    q = pf.nn.LSTM(4)(pf.nn.Embedding(7, 3)(tokens))
    model = pf.nn.Model(inputs=[image, tokens],
                        outputs=pf.nn.Dense(2)(pf.nn.Concatenate()(v, q)))
    rng = np.random.default_rng(3)

    def arrays(n):
        return [rng.standard_normal((n, 2, 6, 6)).astype(np.float32),
                rng.integers(0, 7, (n, 5)).astype(np.int64)]
    model(*[pf.tensor(a) for a in arrays(2)])
    path = pf.onnx.export(model, tmp_path / "served.onnx")
    served = pf.onnx.load(path)
    sig = served.signature
    assert [(i["name"], i["dtype"], i["shape"]) for i in sig["inputs"]] == \
        [("image", "float32", [-1, 2, 6, 6]), ("tokens", "int64", [-1, 5])]
    assert [(o["name"], np.dtype(o["dtype"])) for o in sig["outputs"]] == \
        [("output", np.float32)]
    compiled = pf.jit(served)
    for n in (1, 3):
        xs = arrays(n)
        out = compiled.run_numpy(*xs)
        out = out[0] if isinstance(out, (list, tuple)) else out
        np.testing.assert_allclose(out, ort_run(path, *xs)[0], rtol=1e-5, atol=1e-6)


def test_the_jvm_worker_serves_an_onnx_file(exported, tmp_path, ort_run):
    """Model.load(Path.of("model.onnx")) in Java: the worker's ModelRunner converts the file."""
    runner_module = pytest.importorskip("pyfront.jvm.runner",
                                        reason="the JVM bridge's Python side is not installed")
    data, shape = exported("residual_cnn")
    path = tmp_path / "served.onnx"
    path.write_bytes(data)
    runner = runner_module.ModelRunner("cnn", path)
    runner.warm_up()
    assert [(n, d.name, s) for n, d, s in runner.inputs] == [("input", "float32",
                                                              (-1, 3, 12, 12))]
    x = torch_models.random_input(shape, 3)
    (name, y), = runner.run([("input", x)])
    assert name == "output"
    np.testing.assert_allclose(y, ort_run(data, x)[0], rtol=1e-4, atol=1e-5)


def test_java_model_load_serves_an_onnx_file(exported, tmp_path, ort_run):
    """Model.load(Path.of("mlp.onnx")) in a real JVM (the bridge's own check program): row by
    row and as one batch, the outputs are ONNX Runtime's, and bit for bit pyfront's."""
    import subprocess

    bridge = pytest.importorskip("pyfront.jvm", reason="the JVM bridge's Python side is not "
                                 "installed")
    try:
        java, javac = bridge.build.jdk_tool("java"), bridge.build.jdk_tool("javac")
        classpath = os.pathsep.join([bridge.build_jar(out=str(tmp_path / "bridge.jar")),
                                     bridge.py4j_jar()])
    except bridge.BuildError as e:
        pytest.skip("no JDK or py4j jar: %s" % e)
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    check_source = os.path.join(root, "jvm-bridge", "src", "test", "java", "BridgeCheck.java")
    done = subprocess.run([javac, "--release", "17", "-cp", classpath, "-d", str(tmp_path),
                           check_source], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    data, shape = exported("mlp")
    model_path = tmp_path / "mlp.onnx"
    model_path.write_bytes(data)
    rows = 6
    x = torch_models.random_input(shape, rows, seed=4)
    x.tofile(tmp_path / "inputs.bin")
    env = dict(os.environ, PYFRONT_PYTHON=sys.executable)
    env.pop("PYFRONT_JVM_TOKEN", None)
    args = ["exact", model_path, tmp_path / "inputs.bin", rows, shape[0], tmp_path / "out.bin"]
    done = subprocess.run([java, "-cp", os.pathsep.join([classpath, str(tmp_path)]),
                           "BridgeCheck"] + [str(a) for a in args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=180)
    assert done.returncode == 0 and "FAIL" not in done.stdout, done.stdout + done.stderr[-3000:]
    got = np.fromfile(tmp_path / "out.bin", np.float32).reshape(2 * rows, -1)
    expected = ort_run(data, x)[0]
    np.testing.assert_allclose(got[:rows], expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[rows:], expected, rtol=1e-5, atol=1e-6)
    compiled = pf.jit(pf.onnx.load(data))
    assert got[rows:].tobytes() == np.asarray(compiled.run_numpy(x), np.float32).tobytes()


def test_imported_transformer_fine_tunes_with_compiled_steps(exported):
    """The attention subgraph (MatMul, Softmax, Transpose, shape-driven Reshapes) trains through
    compiled training steps (fit with jit=True)."""
    data, shape = exported("transformer")
    model = pf.onnx.load(data)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((128,) + shape).astype(np.float32)
    y = x[:, :, :4].mean(axis=1).argmax(axis=1).astype(np.int64)
    model.train()
    model.compile(optimizer=pf.optim.Adam(lr=3e-3), loss="cross_entropy", jit=True)
    losses = model.fit(x, y, batch_size=32, epochs=6, verbose=0)["loss"]
    assert losses[-1] < 0.8 * losses[0], losses
