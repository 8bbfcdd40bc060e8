"""The global random generator behind initializers, dropout and shuffling: one seed makes a
whole run reproducible. (numpy.random loads on first use: it is a fifth of import time.)"""

__all__ = ["seed", "generator"]

_rng = None


def seed(value):
    """Reseed everything pyfront draws at random (initial weights, dropout masks, shuffles)."""
    global _rng
    import numpy.random

    _rng = numpy.random.default_rng(value)


def generator():
    global _rng
    if _rng is None:
        import numpy.random

        _rng = numpy.random.default_rng()
    return _rng
