"""SGD (momentum, Nesterov, weight decay), Adam and AdamW, with PyTorch's update formulas."""
import numpy as np

from .. import errors
from ..backend import cpu

__all__ = ["Optimizer", "SGD", "Adam", "AdamW"]


class Optimizer:
    """Base: holds the parameters, their state, and the (learning rate, step) array.

    Parameters may be given later (optimizer.bind(params), done by model.compile); parameters
    that are not yet initialised get their state on the first step.
    """

    kernel = None
    state_names = ()

    def __init__(self, params=None, lr=1e-3):
        if not lr > 0:
            raise ValueError("%s: the learning rate must be positive, got %r"
                             % (type(self).__name__, lr))
        self.lr = float(lr)
        self.params = []
        self.state = {}                      # id(param) -> {name: ndarray}
        self.hyper = np.zeros(2, np.float64)  # (lr, step) as the kernels read them
        self.iterations = 0
        if params is not None:
            self.bind(params)

    def bind(self, params):
        """Attach parameters (a list, or a Module's parameters())."""
        if hasattr(params, "parameters") and callable(params.parameters):
            params = params.parameters()
        params = list(params)
        for p in params:
            if not getattr(p, "requires_grad", False):
                raise errors.PyfrontError("%s: parameter %s does not require grad"
                                          % (type(self).__name__, getattr(p, "name", p)))
        self.params = params
        return self

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    # ---- state ----
    def state_for(self, p):
        st = self.state.get(id(p))
        if st is None:
            arr = p.numpy()
            st = {name: np.zeros_like(arr) for name in self.state_names}
            self.state[id(p)] = st
        return st

    def begin_step(self):
        """Advance the step counter and publish (lr, step) for the kernels."""
        self.iterations += 1
        self.hyper[0] = self.lr
        self.hyper[1] = self.iterations

    def step(self):
        """Apply one update to every parameter that has a gradient (eager)."""
        if not self.params:
            raise errors.PyfrontError("%s has no parameters: pass them to the constructor or "
                                      "call bind()" % type(self).__name__)
        self.begin_step()
        hyper = cpu.Buf(self.hyper, (2,), _f64())
        for p in self.params:
            if p.grad is None:
                continue
            g = p.grad
            if tuple(g.shape) != tuple(p.shape):
                raise errors.ShapeError("gradient of %s has shape %s, the parameter %s"
                                        % (p.name, tuple(g.shape), tuple(p.shape)))
            if g.dtype is not p.dtype:
                g = g.astype(p.dtype)
            self.emit_update(_Eager(), p._buf(), g._buf(), hyper, p)

    def emit_update(self, k, param, grad, hyper, p):
        """Emit the update kernel for one parameter (eager or into a compiled plan)."""
        st = self.state_for(p)
        outs = [param.desc()] + [cpu.Buf(st[n], st[n].shape, param.dtype).desc()
                                 for n in self.state_names if self.uses_state(n)]
        k.run(self.kernel, [grad.desc(), hyper.desc()], outs, self.iattr(), self.fattr())

    def uses_state(self, name):
        return True

    # ---- checkpoints ----
    def state_dict(self):
        state = {}
        for i, p in enumerate(self.params):
            st = self.state.get(id(p))
            if st:
                for name, arr in st.items():
                    state["%d.%s" % (i, name)] = arr
        return {"iterations": self.iterations, "lr": self.lr, "config": self.get_config(),
                "state": state}

    def load_state_dict(self, sd):
        self.iterations = int(sd["iterations"])
        self.lr = float(sd["lr"])
        for key, arr in sd["state"].items():
            idx, name = key.split(".", 1)
            p = self.params[int(idx)]
            st = self.state_for(p)
            if st[name].shape != np.shape(arr):
                raise errors.ShapeError("optimizer state %s has shape %s, expected %s"
                                        % (key, np.shape(arr), st[name].shape))
            st[name][...] = arr

    def get_config(self):
        return {"lr": self.lr}


def _f64():
    from ..dtypes import float64

    return float64


class _Eager:
    @staticmethod
    def run(kernel, ins, outs, iattr=(), fattr=()):
        cpu.run(kernel, ins, outs, iattr, fattr, context="optimizer update: ")


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum (Nesterov) and L2 weight decay."""

    kernel = "sgd_update"
    state_names = ("momentum_buffer",)

    def __init__(self, params=None, lr=0.01, momentum=0.0, dampening=0.0, nesterov=False,
                 weight_decay=0.0):
        if momentum < 0 or weight_decay < 0:
            raise ValueError("SGD: momentum and weight_decay must be >= 0")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum needs momentum > 0 and no dampening")
        self.momentum, self.dampening = float(momentum), float(dampening)
        self.nesterov, self.weight_decay = bool(nesterov), float(weight_decay)
        super().__init__(params, lr)

    def uses_state(self, name):
        return self.momentum > 0

    def state_for(self, p):
        if self.momentum == 0:
            return {}
        return super().state_for(p)

    def iattr(self):
        return (int(self.nesterov),)

    def fattr(self):
        return (self.momentum, self.dampening, self.weight_decay)

    def get_config(self):
        return {"lr": self.lr, "momentum": self.momentum, "dampening": self.dampening,
                "nesterov": self.nesterov, "weight_decay": self.weight_decay}


class Adam(Optimizer):
    """Adam (Kingma & Ba) with L2 weight decay added to the gradient, as torch.optim.Adam."""

    kernel = "adam_update"
    state_names = ("m", "v")
    decoupled = False

    def __init__(self, params=None, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        b1, b2 = betas
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError("Adam: betas must lie in [0, 1), got %r" % (betas,))
        self.betas, self.eps, self.weight_decay = (float(b1), float(b2)), float(eps), \
            float(weight_decay)
        super().__init__(params, lr)

    def iattr(self):
        return (int(self.decoupled),)

    def fattr(self):
        return (self.betas[0], self.betas[1], self.eps, self.weight_decay)

    def get_config(self):
        return {"lr": self.lr, "betas": list(self.betas), "eps": self.eps,
                "weight_decay": self.weight_decay}


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as torch.optim.AdamW."""

    decoupled = True

    def __init__(self, params=None, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, lr, betas, eps, weight_decay)
