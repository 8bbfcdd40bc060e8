"""python -m pyfront.onnx convert, both directions, with --check against ONNX Runtime."""
import re
import subprocess
import sys

import numpy as np

import pyfront as pf


def _run(*args):
    return subprocess.run([sys.executable, "-m", "pyfront.onnx", *args], capture_output=True,
                          text=True, timeout=300)


def test_convert_pf_to_onnx_and_back_with_check(tmp_path):
    model = pf.nn.Sequential([pf.nn.Conv1D(3, 2, activation="relu"), pf.nn.Flatten(),
                              pf.nn.Dense(2)])
    model(pf.tensor(np.ones((2, 2, 5), np.float32)))
    pf.save(model, tmp_path / "m.pf")
    out = _run("convert", str(tmp_path / "m.pf"), str(tmp_path / "m.onnx"), "--check")
    assert out.returncode == 0, out.stderr
    diff = float(re.search(r"largest difference pyfront vs onnxruntime: (\S+)", out.stdout)[1])
    assert diff < 1e-5
    out = _run("convert", str(tmp_path / "m.onnx"), str(tmp_path / "back.pf"), "--check")
    assert out.returncode == 0, out.stderr
    x = pf.tensor(np.random.default_rng(0).standard_normal((3, 2, 5)).astype(np.float32))
    with pf.no_grad():
        assert np.array_equal(pf.load(tmp_path / "back.pf")(x).numpy(), model(x).numpy())


def test_convert_reports_an_unreadable_file_without_a_traceback(tmp_path):
    (tmp_path / "bad.onnx").write_bytes(b"\x00\x01not onnx")
    out = _run("convert", str(tmp_path / "bad.onnx"), str(tmp_path / "bad.pf"))
    assert out.returncode == 1
    assert out.stderr.startswith("error: ") and "bad.onnx" in out.stderr
    assert "Traceback" not in out.stderr


def test_convert_fixes_symbolic_dims_given_on_the_command_line(tmp_path):
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Softmax", ["tokens"], ["y"], axis=-1)], "g",
        [helper.make_tensor_value_info("tokens", TensorProto.FLOAT, ["n", "width"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", "width"])])
    helper_model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    (tmp_path / "s.onnx").write_bytes(helper_model.SerializeToString())
    out = _run("convert", str(tmp_path / "s.onnx"), str(tmp_path / "s.pf"))
    assert out.returncode == 1 and "input_shapes={'tokens'" in out.stderr
    out = _run("convert", str(tmp_path / "s.onnx"), str(tmp_path / "s.pf"), "--check",
               "--input-shape", "tokens=-1,7")
    assert out.returncode == 0, out.stderr
    assert pf.load(tmp_path / "s.pf").signature["inputs"][0]["shape"] == [-1, 7]
