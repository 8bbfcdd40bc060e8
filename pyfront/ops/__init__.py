"""Every op, defined once (see core.py); these functions are the public way to call them."""
from . import (conv, decompositions, dropout, elementwise, linalg, losses, normalization,
               pooling, recurrent, reduction, shape)
from . import clipping  # noqa: F401  (the optimizers' gradient clipping: ops, not pf.* functions)

# kept before the star imports: a function may share its module's name (ops.dropout)
_MODULES = (conv, decompositions, dropout, elementwise, linalg, losses, normalization, pooling,
            recurrent, reduction, shape)
from .core import REGISTRY, apply, name_scope  # noqa: F401
from .conv import *  # noqa: F401,F403
from .decompositions import *  # noqa: F401,F403
from .dropout import *  # noqa: F401,F403
from .elementwise import *  # noqa: F401,F403
from .linalg import *  # noqa: F401,F403
from .losses import *  # noqa: F401,F403
from .normalization import *  # noqa: F401,F403
from .pooling import *  # noqa: F401,F403
from .recurrent import *  # noqa: F401,F403
from .reduction import *  # noqa: F401,F403
from .shape import *  # noqa: F401,F403

_INTERNAL = {"broadcast_strides", "lower_reduce", "activation_grad", "LINEAR_ACTIVATIONS",
             "ACTIVATIONS"}
__all__ = [name for m in _MODULES for name in m.__all__ if name not in _INTERNAL]

# PyTorch's dim=/keepdim= (and dims=, dim0=/dim1=) on every public function and method
from . import names as _names  # noqa: E402
from .methods import OpMethods as _OpMethods  # noqa: E402
_names.install(globals(), __all__, [_OpMethods])
