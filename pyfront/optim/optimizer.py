"""SGD (momentum, Nesterov, weight decay), Adam, AdamW, RMSProp and AdaGrad with PyTorch's update
formulas, and Keras-style gradient clipping (clipvalue, clipnorm, global_clipnorm)."""
import numpy as np

from .. import autograd, errors
from ..backend import cpu, cuda

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSProp", "AdaGrad"]


class Optimizer:
    """Base: holds the parameters, their state, and the (learning rate, step) array.

    Parameters may be given later (optimizer.bind(params), done by model.compile); parameters
    that are not yet initialised get their state on the first step.

    Gradient clipping, applied to the gradients before the update (Keras' arguments, at most
    one of them): clipvalue clamps every element to [-clipvalue, clipvalue]; clipnorm rescales
    each parameter's gradient whose L2 norm exceeds clipnorm; global_clipnorm rescales all
    gradients together when their joint L2 norm exceeds it (torch.nn.utils.clip_grad_norm_).
    """

    kernel = None
    state_names = ()

    def __init__(self, params=None, lr=1e-3, clipnorm=None, clipvalue=None,
                 global_clipnorm=None):
        if not lr > 0:
            raise ValueError("%s: the learning rate must be positive, got %r"
                             % (type(self).__name__, lr))
        clips = {"clipnorm": clipnorm, "clipvalue": clipvalue, "global_clipnorm": global_clipnorm}
        given = [k for k, v in clips.items() if v is not None]
        if len(given) > 1:
            raise ValueError("%s: give at most one of clipnorm, clipvalue and global_clipnorm, "
                             "got %s" % (type(self).__name__, " and ".join(given)))
        for key in given:
            if not clips[key] > 0:
                raise ValueError("%s: %s must be positive, got %r"
                                 % (type(self).__name__, key, clips[key]))
        self.clipnorm = None if clipnorm is None else float(clipnorm)
        self.clipvalue = None if clipvalue is None else float(clipvalue)
        self.global_clipnorm = None if global_clipnorm is None else float(global_clipnorm)
        self.lr = float(lr)
        self.params = []
        self.state = {}                      # id(param) -> {name: ndarray}
        self._state_descs = {}               # id(param) -> (state dict, [descriptors])
        self.hyper = np.zeros(2, np.float64)  # (lr, step) as the kernels read them
        self._hyper_buf = cpu.Buf(self.hyper, (2,), _f64())
        self._device_hypers = {}             # "cuda:N" -> its copy of hyper, for its kernels
        self._fused = None       # (key, pf_step[], descriptors to patch, states, kept, failed)
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

    def zero_grad(self, set_to_none=True):
        """Drop the gradients (PyTorch's default), or with set_to_none=False write zeros into
        them (memory kept)."""
        _clear_grads(self.params, set_to_none)

    # ---- state ----
    def state_for(self, p):
        """The parameter's state arrays, in its memory's place (host or its GPU)."""
        st = self.state.get(id(p))
        if st is None:
            arr = p._array()
            if type(arr) is np.ndarray:
                st = {name: np.zeros_like(arr) for name in self.state_names}
            else:   # CuPy's zeros_like, on the parameter's device
                with cuda.device_scope(p.device):
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
        if not self.clips_gradients and self._fused_step():
            return
        hyper = self._hyper_buf
        pairs = []
        for p in self.params:
            if p.grad is None:
                continue
            g = p.grad
            if tuple(g.shape) != tuple(p.shape):
                raise errors.ShapeError("gradient of %s has shape %s, the parameter %s"
                                        % (p.name, tuple(g.shape), tuple(p.shape)))
            if g.dtype is not p.dtype:
                g = g.astype(p.dtype)
            pairs.append((p, g))
        grads = self.clip_gradients([g for _, g in pairs])
        hypers = {"cpu": hyper}
        for (p, _), g in zip(pairs, grads):
            device = p.device
            if device == "cpu":
                self.emit_update(_Eager(), p._buf(), g._buf(), hyper, p)
                continue
            if device not in hypers:
                hypers[device] = self._device_hyper(device)
            with cuda.device_scope(device):
                self.emit_update(_EagerCuda(), p._buf(), g._buf(), hypers[device], p)

    def _device_hyper(self, device):
        """(lr, step) on a GPU for its update kernels, refreshed once a step."""
        buf = self._device_hypers.get(device)
        if buf is None:
            arr = cuda.array_to(self.hyper, device)
            buf = self._device_hypers[device] = cuda.Buf(arr, (2,), _f64())
        else:
            cuda.copy_from_host(buf.array, self.hyper)
        return buf

    def _fused_step(self):
        """Every update in one native call (pf_run_steps) over steps built once: each step
        only gets the gradient's and the parameter's data pointers. False (nothing done)
        where the plain loop must run: a gradient of another shape or dtype, state not made
        yet, a kernel that wants scratch memory."""
        pairs = [(p, p.grad) for p in self.params if p.grad is not None]
        for p, g in pairs:
            if g.dtype is not p.dtype or type(g._data) is not np.ndarray or \
                    type(p._data) is not np.ndarray or g._data.shape != p._data.shape:
                return False
        key = (tuple(id(p) for p, _ in pairs), self.iattr(), self.fattr())
        fused = self._fused
        if fused is None or fused[0] != key or \
                any(self.state.get(id(p)) is not st for (p, _), st in zip(pairs, fused[3])):
            fused = self._fused = self._build_fused(key, pairs)
            if fused is None:
                return False
        _, steps, patches, _, _, failed = fused
        from_buffer = cpu.ffi.from_buffer
        for (p, g), (gd, pd) in zip(pairs, patches):
            gd.data = from_buffer(g._data)
            pd.data = from_buffer(p._data)
        status = cpu.lib.pf_run_steps(steps, 0, len(pairs), failed)
        if status:
            p = pairs[failed[0]][0]
            cpu.raise_native_error(status, "optimizer update of %s: " % (p.name or "a parameter"))
        return True

    def _build_fused(self, key, pairs):
        rec = _Record()
        for p, g in pairs:
            self.emit_update(rec, p._buf(), g._buf(), self._hyper_buf, p)
        if len(rec.calls) != len(pairs):
            return None
        steps = cpu.new_steps(max(len(pairs), 1))
        patches, keep = [], []
        for i, (kid, ins, outs, iattr, fattr) in enumerate(rec.calls):
            if kid in cpu._WORKSPACE_KERNELS:
                return None
            # copies of the gradient's and the parameter's descriptors: the tensors' own stay
            # as they are, these get each step's pointers
            ins, outs = list(ins), list(outs)
            ins[0] = cpu.ffi.new("pf_tensor *", ins[0][0])
            outs[0] = cpu.ffi.new("pf_tensor *", outs[0][0])
            a, k = cpu.new_args(ins, outs, iattr, fattr)
            steps[i].kernel = kid
            steps[i].args = a[0]
            keep.append(k)
            patches.append((ins[0], outs[0]))
        states = [self.state.get(id(p)) for p, _ in pairs]
        return key, steps, patches, states, keep, cpu.ffi.new("int64_t *")

    @property
    def clips_gradients(self):
        return self.clipvalue is not None or self.clipnorm is not None or \
            self.global_clipnorm is not None

    def clip_gradients(self, grads):
        """The gradients (tensors, or graph symbols in a compiled step; None passes through)
        after this optimizer's clipping, written with ops so both modes clip alike."""
        if not self.clips_gradients:
            return list(grads)
        from ..ops.clipping import clip_gradients

        with autograd.no_grad():
            return clip_gradients(grads, self.clipvalue, self.clipnorm, self.global_clipnorm)

    def emit_update(self, k, param, grad, hyper, p):
        """Emit the update kernel for one parameter (eager or into a compiled plan)."""
        st = self.state_for(p)
        # state arrays live as long as the optimizer: their descriptors are made once
        cache = self._state_descs.get(id(p))
        if cache is None or cache[0] is not st:
            descs = [_buf_class(st[n])(st[n], st[n].shape, param.dtype).desc()
                     for n in self.state_names if self.uses_state(n)]
            cache = self._state_descs[id(p)] = (st, descs)
        k.run(self.kernel, [grad.desc(), hyper.desc()], [param.desc()] + cache[1],
              self.iattr(), self.fattr())

    def uses_state(self, name):
        return True

    # ---- checkpoints ----
    def state_dict(self):
        state = {}
        for i, p in enumerate(self.params):
            st = self.state.get(id(p))
            if st:
                for name, arr in st.items():
                    state["%d.%s" % (i, name)] = cuda.array_to(arr, "cpu")   # a GPU's: copied
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
            cuda.copy_from_host(st[name], arr)

    def get_config(self):
        return dict({"lr": self.lr}, **self.clip_config())

    def clip_config(self):
        return {key: getattr(self, key) for key in ("clipnorm", "clipvalue", "global_clipnorm")
                if getattr(self, key) is not None}


def _clear_grads(params, set_to_none):
    for p in params:
        if set_to_none or p.grad is None:
            p.grad = None
        else:
            p.grad.zero_()


def _f64():
    from ..dtypes import float64

    return float64


class _Record:
    """Collects an optimizer's update kernels (for the fused step) instead of running them."""

    def __init__(self):
        self.calls = []

    def run(self, kernel, ins, outs, iattr=(), fattr=()):
        self.calls.append((cpu.kernel_id(kernel), ins, outs, iattr, fattr))


class _Eager:
    @staticmethod
    def run(kernel, ins, outs, iattr=(), fattr=()):
        cpu.run(kernel, ins, outs, iattr, fattr, context="optimizer update: ")


class _EagerCuda:
    @staticmethod
    def run(kernel, ins, outs, iattr=(), fattr=()):
        cuda.run(kernel, ins, outs, iattr, fattr, context="optimizer update: ")


def _buf_class(array):
    return cpu.Buf if type(array) is np.ndarray else cuda.Buf


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum (Nesterov) and L2 weight decay."""

    kernel = "sgd_update"
    state_names = ("momentum_buffer",)

    def __init__(self, params=None, lr=0.01, momentum=0.0, dampening=0.0, nesterov=False,
                 weight_decay=0.0, clipnorm=None, clipvalue=None, global_clipnorm=None):
        if momentum < 0 or weight_decay < 0:
            raise ValueError("SGD: momentum and weight_decay must be >= 0")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum needs momentum > 0 and no dampening")
        self.momentum, self.dampening = float(momentum), float(dampening)
        self.nesterov, self.weight_decay = bool(nesterov), float(weight_decay)
        super().__init__(params, lr, clipnorm, clipvalue, global_clipnorm)

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
        return dict({"lr": self.lr, "momentum": self.momentum, "dampening": self.dampening,
                     "nesterov": self.nesterov, "weight_decay": self.weight_decay},
                    **self.clip_config())


class Adam(Optimizer):
    """Adam (Kingma & Ba) with L2 weight decay added to the gradient, as torch.optim.Adam."""

    kernel = "adam_update"
    state_names = ("m", "v")
    decoupled = False

    def __init__(self, params=None, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 clipnorm=None, clipvalue=None, global_clipnorm=None):
        b1, b2 = betas
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError("Adam: betas must lie in [0, 1), got %r" % (betas,))
        self.betas, self.eps, self.weight_decay = (float(b1), float(b2)), float(eps), \
            float(weight_decay)
        super().__init__(params, lr, clipnorm, clipvalue, global_clipnorm)

    def iattr(self):
        return (int(self.decoupled),)

    def fattr(self):
        return (self.betas[0], self.betas[1], self.eps, self.weight_decay)

    def get_config(self):
        return dict({"lr": self.lr, "betas": list(self.betas), "eps": self.eps,
                     "weight_decay": self.weight_decay}, **self.clip_config())


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as torch.optim.AdamW."""

    decoupled = True

    def __init__(self, params=None, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01,
                 clipnorm=None, clipvalue=None, global_clipnorm=None):
        super().__init__(params, lr, betas, eps, weight_decay, clipnorm, clipvalue,
                         global_clipnorm)


class RMSProp(Optimizer):
    """RMSprop as torch.optim.RMSprop: a running average of squared gradients (decay alpha)
    divides the step; optionally centered (minus the squared running mean gradient) and with
    momentum."""

    kernel = "rmsprop_update"

    def __init__(self, params=None, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0,
                 momentum=0.0, centered=False, clipnorm=None, clipvalue=None,
                 global_clipnorm=None):
        if not 0 <= alpha < 1:
            raise ValueError("RMSProp: alpha must lie in [0, 1), got %r" % (alpha,))
        if eps < 0 or weight_decay < 0 or momentum < 0:
            raise ValueError("RMSProp: eps, weight_decay and momentum must be >= 0")
        self.alpha, self.eps, self.weight_decay = float(alpha), float(eps), float(weight_decay)
        self.momentum, self.centered = float(momentum), bool(centered)
        self.state_names = ("square_avg",) + (("grad_avg",) if self.centered else ()) + \
            (("momentum_buffer",) if self.momentum > 0 else ())
        super().__init__(params, lr, clipnorm, clipvalue, global_clipnorm)

    def iattr(self):
        return (int(self.centered),)

    def fattr(self):
        return (self.alpha, self.eps, self.weight_decay, self.momentum)

    def get_config(self):
        return dict({"lr": self.lr, "alpha": self.alpha, "eps": self.eps,
                     "weight_decay": self.weight_decay, "momentum": self.momentum,
                     "centered": self.centered}, **self.clip_config())


class AdaGrad(Optimizer):
    """AdaGrad as torch.optim.Adagrad: steps divided by the root of the summed squared
    gradients, with an optional learning-rate decay lr / (1 + (step - 1) * lr_decay)."""

    kernel = "adagrad_update"
    state_names = ("sum",)

    def __init__(self, params=None, lr=0.01, lr_decay=0.0, weight_decay=0.0,
                 initial_accumulator_value=0.0, eps=1e-10, clipnorm=None, clipvalue=None,
                 global_clipnorm=None):
        if lr_decay < 0 or weight_decay < 0 or initial_accumulator_value < 0 or eps < 0:
            raise ValueError("AdaGrad: lr_decay, weight_decay, initial_accumulator_value and "
                             "eps must be >= 0")
        self.lr_decay, self.weight_decay = float(lr_decay), float(weight_decay)
        self.initial_accumulator_value, self.eps = float(initial_accumulator_value), float(eps)
        super().__init__(params, lr, clipnorm, clipvalue, global_clipnorm)

    def state_for(self, p):
        fresh = id(p) not in self.state
        st = super().state_for(p)
        if fresh:
            st["sum"][...] = self.initial_accumulator_value
        return st

    def iattr(self):
        return ()

    def fattr(self):
        return (self.lr_decay, self.eps, self.weight_decay)

    def get_config(self):
        return dict({"lr": self.lr, "lr_decay": self.lr_decay,
                     "weight_decay": self.weight_decay,
                     "initial_accumulator_value": self.initial_accumulator_value,
                     "eps": self.eps}, **self.clip_config())
