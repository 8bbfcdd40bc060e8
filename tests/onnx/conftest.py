"""ONNX tests need the onnx package and ONNX Runtime (both in the [test] extra)."""
import pytest

pytest.importorskip("onnx", reason="the onnx package (the [test] or [onnx] extra) is not "
                    "installed")
pytest.importorskip("onnxruntime", reason="onnxruntime (the [test] extra) is not installed: no "
                    "reference runtime")


@pytest.fixture
def ort_run():
    """run(onnx path or bytes, *arrays) -> ONNX Runtime's outputs (CPU, one thread)."""
    import onnxruntime

    def run(model, *arrays):
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads = 1
        session = onnxruntime.InferenceSession(model if isinstance(model, bytes) else str(model),
                                               opts, providers=["CPUExecutionProvider"])
        return session.run(None, {i.name: a for i, a in zip(session.get_inputs(), arrays)})
    return run
