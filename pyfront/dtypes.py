"""Element types: float32 (the default), float64 (gradient checks), int32/int64 (labels, indices)."""
import numpy as np

__all__ = ["DType", "float32", "float64", "int32", "int64", "as_dtype", "result_type"]


class DType:
    """One element type: its name, numpy dtype, native code and size."""

    __slots__ = ("name", "np", "code", "itemsize", "is_float", "safetensors")

    def __init__(self, name, code, safetensors):
        self.name = name
        self.np = np.dtype(name)
        self.code = code
        self.itemsize = self.np.itemsize
        self.is_float = self.np.kind == "f"
        self.safetensors = safetensors

    def __repr__(self):
        return "pyfront." + self.name

    def __reduce__(self):
        return (as_dtype, (self.name,))


# codes match enum pf_dtype in native/include/pyfront.h
float32 = DType("float32", 0, "F32")
float64 = DType("float64", 1, "F64")
int32 = DType("int32", 2, "I32")
int64 = DType("int64", 3, "I64")

_BY_NAME = {d.name: d for d in (float32, float64, int32, int64)}
_BY_NP = {d.np: d for d in _BY_NAME.values()}
BY_SAFETENSORS = {d.safetensors: d for d in _BY_NAME.values()}


def as_dtype(value):
    """A DType from a DType, a name ("float32"), a numpy dtype or a Python type."""
    if isinstance(value, DType):
        return value
    if value is float:
        return float32
    if value is int:
        return int64
    if isinstance(value, str) and value in _BY_NAME:
        return _BY_NAME[value]
    try:
        npd = np.dtype(value)
    except TypeError:
        npd = None
    if npd is not None and npd in _BY_NP:
        return _BY_NP[npd]
    if npd is not None and npd.kind == "b":
        raise TypeError("pyfront has no boolean dtype: use int32/int64 or float32 masks")
    raise TypeError("unsupported dtype %r: pyfront supports float32, float64, int32 and int64"
                    % (value,))


_RANK = {"int32": 0, "int64": 1, "float32": 2, "float64": 3}


def result_type(*dtypes):
    """The common dtype of operands: floats win over ints, wider wins over narrower."""
    return max((as_dtype(d) for d in dtypes), key=lambda d: _RANK[d.name])
