"""ONNX export and import: a second door into pyfront's graphs.

    pf.onnx.export(model, "model.onnx", example_inputs=[x])   # a Module or a .pf file
    model = pf.onnx.load("model.onnx")                       # a Module: runs, trains, saves

The `onnx` package is needed only here and loads on first use (pip install "pyfront[onnx]").
An ONNX file is read as data: its operators are looked up in a fixed table, nothing in it runs.
"""
from .common import OnnxError, UnsupportedOnnxError

__all__ = ["export", "load", "OnnxError", "UnsupportedOnnxError", "DEFAULT_OPSET"]

DEFAULT_OPSET = 17


def export(model, path, example_inputs=None, input_shapes=None, opset=DEFAULT_OPSET,
           check=True):
    """Write `model` (a Module, or the path of a .pf file) as an ONNX file; returns the path.
    See pyfront.onnx.exporter.export_model."""
    from .exporter import export_model

    return export_model(model, path, example_inputs=example_inputs, input_shapes=input_shapes,
                        opset=opset, check=check)


def load(path, input_shapes=None):
    """A pyfront model built from the ONNX file at `path` (or its bytes). See
    pyfront.onnx.importer.load_model."""
    from .importer import load_model

    return load_model(path, input_shapes=input_shapes)
