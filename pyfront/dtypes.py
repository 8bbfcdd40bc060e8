"""Element types: float32 (the default), float64 (gradient checks), int32/int64 (labels, indices),
bool (comparisons and masks); and the one type-promotion rule (result_type)."""
import builtins

import numpy as np

__all__ = ["DType", "float32", "float64", "int32", "int64", "bool_", "as_dtype", "promote_types",
           "result_type", "can_cast", "get_default_dtype", "set_default_dtype"]


class DType:
    """One element type: its name, numpy dtype, native code and size."""

    __slots__ = ("name", "np", "code", "itemsize", "is_float", "is_bool", "safetensors")

    def __init__(self, name, code, safetensors):
        self.name = name
        self.np = np.dtype(name)
        self.code = code
        self.itemsize = self.np.itemsize
        self.is_float = self.np.kind == "f"
        self.is_bool = self.np.kind == "b"
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
bool_ = DType("bool", 4, "BOOL")        # pf.bool at the top level, as torch.bool

_BY_NAME = {d.name: d for d in (float32, float64, int32, int64, bool_)}
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
    if value is builtins.bool:
        return bool_
    if isinstance(value, str) and value in _BY_NAME:
        return _BY_NAME[value]
    try:
        npd = np.dtype(value)
    except TypeError:
        npd = None
    if npd is not None and npd in _BY_NP:
        return _BY_NP[npd]
    raise TypeError("unsupported dtype %r: pyfront supports float32, float64, int32, int64 and "
                    "bool" % (value,))


# ---------------------------------------------------------------------------------------------
# Type promotion, PyTorch's rule (README, "Dtypes and promotion"):
#   - categories rank bool < integer < float; between tensors the higher category wins, and
#     within one category the wider type (int32 + int64 -> int64, float32 + float64 -> float64);
#   - a Python number only lifts the category: it never widens a tensor's type. A float meeting
#     a float32 tensor keeps float32; a float meeting an integer or bool tensor gives float32
#     (the default float); an int meeting a bool tensor gives int64; a bool changes nothing.
#   - unlike PyTorch, a 0-d tensor counts as a tensor (PyTorch ranks it with Python numbers).

def _category(dtype):
    return 2 if dtype.is_float else 0 if dtype.is_bool else 1


def promote_types(a, b):
    """The dtype two tensors of dtypes a and b combine to."""
    a, b = as_dtype(a), as_dtype(b)
    ca, cb = _category(a), _category(b)
    if ca != cb:
        return a if ca > cb else b
    return a if a.itemsize >= b.itemsize else b


# The default float dtype, as torch's: what Python floats become (pf.tensor([0.5]), the float
# factories, an integer tensor meeting a float). One setting, read by all of them.
_default_float = float32


def get_default_dtype():
    """The dtype Python floats become (float32 unless set_default_dtype changed it)."""
    return _default_float


def set_default_dtype(dtype):
    """Make dtype (float32 or float64) the one Python floats become, as torch's
    set_default_dtype: pf.tensor([0.5]), pf.zeros(3), pf.arange(0.5, 2) and an integer tensor
    times 0.5 take it from then on. (Layers' parameters stay float32: cast a model with
    model.to("float64").)"""
    global _default_float
    d = as_dtype(dtype)
    if not d.is_float:
        raise TypeError("set_default_dtype: only float32 or float64 can be the default, got %s"
                        % d.name)
    _default_float = d


def can_cast(from_, to):
    """Whether torch's casting rule allows from_ to become to: never to a lower category
    (float to integer or bool, integer to bool); within a category and upward always, as
    torch.can_cast."""
    return _category(as_dtype(from_)) <= _category(as_dtype(to))


_SCALAR_CATEGORY = {builtins.bool: 0, int: 1, float: 2}


def scalar_category(value):
    """0 (bool), 1 (int) or 2 (float) for a Python or numpy number; None for anything else."""
    if isinstance(value, (builtins.bool, np.bool_)):
        return 0
    if isinstance(value, (int, np.integer)):
        return 1
    if isinstance(value, (float, np.floating)):
        return 2
    return None


def result_type(*operands):
    """The dtype operands combine to: each operand is a DType (a tensor's), a tensor or a
    Python number (pf.result_type, torch's, except that a 0-d tensor counts as a tensor)."""
    tensor_type, scalar_cat = None, -1
    for x in operands:
        cat = scalar_category(x)
        if cat is None:
            d = as_dtype(getattr(x, "dtype", x))
            tensor_type = d if tensor_type is None else promote_types(tensor_type, d)
        else:
            scalar_cat = builtins.max(scalar_cat, cat)
    if tensor_type is None or scalar_cat > _category(tensor_type):
        return (bool_, int64, _default_float)[scalar_cat]
    return tensor_type
