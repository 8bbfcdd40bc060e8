"""pf.cuda: is a GPU usable here, and if not, why; device count and synchronisation.

    pf.cuda.is_available()   # False on a machine without the library, driver, GPU or CuPy
    pf.cuda.why_not()        # the first of those that is missing, in one sentence

Importing pyfront never needs a GPU or CuPy: the backend is probed on first use.
"""
from .backend.cuda import device_count, is_available, synchronize, why_not

__all__ = ["is_available", "why_not", "device_count", "synchronize"]
