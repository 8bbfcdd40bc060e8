"""Every op, defined once (see core.py); these functions are the public way to call them."""
from .core import apply, name_scope, REGISTRY  # noqa: F401
from .elementwise import *  # noqa: F401,F403
from .linalg import *  # noqa: F401,F403
from .nn import *  # noqa: F401,F403
from .reduction import *  # noqa: F401,F403
from .shape import *  # noqa: F401,F403
