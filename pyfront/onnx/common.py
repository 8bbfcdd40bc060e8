"""What export and import share: the errors, and loading the onnx package on first use."""
from .. import errors

__all__ = ["OnnxError", "UnsupportedOnnxError", "require_onnx"]


class OnnxError(errors.ModelFormatError):
    """An ONNX file pyfront cannot read or write (corrupt, truncated, wrong opset...)."""


class UnsupportedOnnxError(OnnxError):
    """An operator (or an operator's setting) with no equivalent on the other side."""


def require_onnx():
    """The onnx module, or an error that says what to install."""
    try:
        import onnx
    except ImportError:
        raise errors.PyfrontError(
            "ONNX support needs the onnx package: pip install \"pyfront[onnx]\" (or "
            "pip install onnx)") from None
    return onnx
