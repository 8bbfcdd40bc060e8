"""The global random generator behind initializers, dropout and shuffling: one seed makes a
whole run reproducible."""
import numpy as np

__all__ = ["seed", "generator"]

_rng = np.random.default_rng()


def seed(value):
    """Reseed everything pyfront draws at random (initial weights, dropout masks, shuffles)."""
    global _rng
    _rng = np.random.default_rng(value)


def generator():
    return _rng
