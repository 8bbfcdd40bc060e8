"""Exceptions. Every error names the op or layer, the user's names and the shapes involved."""

__all__ = ["PyfrontError", "ShapeError", "DTypeError", "IndexOutOfRange", "AxisError",
           "NumericError", "TraceError", "ModelFormatError", "NativeError", "DeviceError",
           "LinAlgError"]


class PyfrontError(Exception):
    """Base of every error pyfront raises on purpose."""


class ShapeError(PyfrontError, ValueError):
    """Shapes that do not fit together."""


class DTypeError(PyfrontError, TypeError):
    """An element type an op does not accept."""


class IndexOutOfRange(PyfrontError, IndexError):
    """An index or label out of range."""


class AxisError(IndexOutOfRange, ShapeError):
    """An axis argument outside the tensor's rank. Both an index out of range and a shape
    error (as numpy's AxisError is both an IndexError and a ValueError), so code that catches
    either keeps working."""


class NumericError(PyfrontError, FloatingPointError):
    """A NaN or Inf where none may be (a NaN loss, PYFRONT_DEBUG checks)."""


class TraceError(PyfrontError):
    """Tracing met Python that depends on values (bool(), float(), .numpy() of a traced value)."""


class ModelFormatError(PyfrontError, ValueError):
    """A model file that is not a valid pyfront model: truncated, altered, or unsafe."""


class NativeError(PyfrontError, RuntimeError):
    """The native library refused a call for a reason the front end did not foresee."""


class DeviceError(PyfrontError, RuntimeError):
    """A device that is not there (no GPU, driver, CUDA library or CuPy: the message says which),
    or tensors of two devices meeting in one op."""


class LinAlgError(PyfrontError, RuntimeError):
    """A matrix a linear-algebra op cannot take: singular where an inverse or a solve is asked
    for, not positive-definite for a Cholesky factor, a decomposition that did not converge
    (a RuntimeError, as torch.linalg.LinAlgError)."""
