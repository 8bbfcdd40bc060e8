"""Optimizers. Each update is one fused native kernel per parameter, shared by eager steps and
compiled training plans (which read the learning rate and step from small state arrays, so
schedules apply without recompiling); PyTorch's param groups, per-parameter step counts and
arguments (Adam's amsgrad and maximize run as array code, in eager steps only)."""
from .optimizer import SGD, AdaGrad, Adam, AdamW, Optimizer, RMSProp  # noqa: F401
from . import schedules  # noqa: F401

# PyTorch's spellings
RMSprop = RMSProp
Adagrad = AdaGrad
from . import lr_scheduler  # noqa: F401,E402  (PyTorch's schedulers for a hand-written loop)
