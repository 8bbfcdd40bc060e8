"""CompiledModule: a module run through its traced graph (model.hybridize(), pf.jit(model)).

The graph compiler traces functions (pyfront.graph.jit.JitFunction); this wrapper is the
module side: it shares the wrapped module's parameters, state and configuration.
"""
from ..graph.jit import JitFunction
from .model import Trainable
from .module import Module

__all__ = ["CompiledModule"]


class CompiledModule(Trainable, Module):
    """A module run through its traced graph; shares the original module's parameters."""

    is_hybridized = True

    def __init__(self, module):
        Module.__init__(self, name=module.name)
        object.__setattr__(self, "module", module)
        self._modules["module"] = module
        self._jit = JitFunction(module.__call__, name=module.name, module=module)

    def __call__(self, *inputs):
        return self._jit(*inputs)

    def forward(self, *inputs):
        return self._jit(*inputs)

    def run_numpy(self, *arrays):
        return self._jit.run_numpy(*arrays)

    # the wrapper is transparent for state and configuration
    def named_tensors(self, prefix="", include_buffers=True):
        return self.module.named_tensors(prefix, include_buffers)

    def load_state_dict(self, state, strict=True):
        return self.module.load_state_dict(state, strict)

    def get_config(self):
        return self.module.get_config()

    @property
    def input_spec(self):
        return self.module.input_spec

    @input_spec.setter
    def input_spec(self, value):
        pass

    def hybridize(self):
        return self

    def __getattr__(self, name):
        module = self.__dict__.get("module")
        if module is None:
            raise AttributeError(name)
        return getattr(module, name)

    def __repr__(self):
        return "Compiled(%r)" % (self.module,)
