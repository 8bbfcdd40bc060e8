"""Loss functions (fused native kernels): pf.losses.cross_entropy, pf.losses.mse."""
from .ops.nn import cross_entropy, mse  # noqa: F401

__all__ = ["cross_entropy", "mse", "get"]

_BY_NAME = {"cross_entropy": cross_entropy, "sparse_categorical_crossentropy": cross_entropy,
            "mse": mse, "mean_squared_error": mse}


def get(name):
    """A loss function by name ("cross_entropy", "mse") or the callable itself."""
    if callable(name):
        return name
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError("unknown loss %r; known: %s" % (name, ", ".join(sorted(_BY_NAME)))) \
            from None
