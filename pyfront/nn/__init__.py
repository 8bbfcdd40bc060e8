"""Layers and models."""
from . import init, tracing, utils  # noqa: F401
from .activations import *  # noqa: F401,F403
from .attention import *  # noqa: F401,F403
from .dense import *  # noqa: F401,F403
from .dropout import *  # noqa: F401,F403
from .embedding import *  # noqa: F401,F403
from .compiled import CompiledModule  # noqa: F401
from .conv import *  # noqa: F401,F403
from .functional import Input, Model  # noqa: F401
from .losses import *  # noqa: F401,F403
from .merging import *  # noqa: F401,F403
from .model import (ModuleDict, ModuleList, ParameterDict, ParameterList,  # noqa: F401
                    Sequential, Trainable)
from .module import Module, Parameter, layer_class, register_layer  # noqa: F401
from .normalization import *  # noqa: F401,F403
from .pooling import *  # noqa: F401,F403
from .recurrent import *  # noqa: F401,F403
from .reshaping import *  # noqa: F401,F403
from .torch_layers import *  # noqa: F401,F403
from .torch_more import *  # noqa: F401,F403
from .torch_recurrent import *  # noqa: F401,F403
from .torch_transformer import *  # noqa: F401,F403
