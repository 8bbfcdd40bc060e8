"""SGD (momentum, Nesterov, weight decay), Adam/AdamW (AMSGrad), RMSProp and AdaGrad with
PyTorch's update formulas, param groups and per-parameter step counts, and Keras-style gradient
clipping (clipvalue, clipnorm, global_clipnorm)."""
import numpy as np

from .. import autograd, errors
from ..backend import cpu, cuda

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSProp", "AdaGrad"]


def _hyperparameter(name):
    """opt.<name>: the first param group's value; setting it sets every group's (and the
    default of groups added later), as `opt.lr = ...` always did."""

    def get(self):
        groups = self.__dict__.get("param_groups")
        return groups[0][name] if groups else self.defaults[name]

    def set(self, value):
        self.defaults[name] = value
        for group in self.__dict__.get("param_groups", ()):
            group[name] = value
            self._check_group(group)
        self._check_group(self.defaults)

    return property(get, set, doc="the %s of the param groups (PyTorch: "
                                  "opt.param_groups[i][%r])" % (name, name))


class Optimizer:
    """Base: holds the param groups, the parameters' state and the (learning rate, step)
    arrays the update kernels read.

    params: parameters (a list, a Module's parameters(), or named_parameters() pairs), or a
    list of dicts — PyTorch's param groups, each {"params": [...], and any hyperparameter of
    this optimizer (lr, momentum, weight_decay, ...)} overriding the constructor's values. They
    may be given later (optimizer.bind(params), done by model.compile); parameters that are not
    yet initialised get their state on the first step. `opt.param_groups[i]["lr"]` is what
    PyTorch's schedulers change; `opt.lr` reads the first group's rate and sets every group's.

    As in PyTorch, each parameter counts its own steps: a parameter without a gradient is left
    alone and its step count (Adam's bias correction, AdaGrad's decay, the first momentum step)
    does not advance.

    Gradient clipping, applied to the gradients before the update (Keras' arguments, at most
    one of them): clipvalue clamps every element to [-clipvalue, clipvalue]; clipnorm rescales
    each parameter's gradient whose L2 norm exceeds clipnorm; global_clipnorm rescales all
    gradients together when their joint L2 norm exceeds it (torch.nn.utils.clip_grad_norm_).
    """

    kernel = None
    state_names = ()          # every state a parameter of this optimizer may have
    lr = _hyperparameter("lr")

    def __init__(self, params=None, lr=1e-3, clipnorm=None, clipvalue=None,
                 global_clipnorm=None, defaults=None):
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
        self.defaults = dict(defaults or {}, lr=lr)
        self._check_group(self.defaults)
        # one group until parameters come (bind): a rate set before then is kept
        self.param_groups = [dict(self.defaults, params=[])]
        self.params = []
        self.state = {}                      # id(param) -> {name: ndarray}
        self._state_descs = {}               # id(param) -> (state dict, names, [descriptors])
        self._group_index = {}               # id(param) -> index of its param group
        self._skipped = {}                   # id(param) -> steps taken without it
        self.hyper = np.zeros(2, np.float64)  # (lr, step) of group 0's parameters, as the
        self._hyper_buf = cpu.Buf(self.hyper, (2,), _f64())   # kernels (and plans) read them
        self._hypers = {(0, 0): (self.hyper, self._hyper_buf)}  # (group, skipped) -> the same
        self._device_hypers = {}             # ("cuda:N", key) -> its copy, for its kernels
        self._fused = None       # (key, pf_step[], descriptors to patch, states, kept, failed)
        self.iterations = 0
        if params is not None:
            self.bind(params)

    # ---- param groups ----
    def _check_group(self, group):
        """Validate (and normalise in place) one group's hyperparameters."""
        lr = group.get("lr")
        if lr is not None:
            lr = float(lr)
            if not lr >= 0:
                raise ValueError("%s: the learning rate must be >= 0, got %r"
                                 % (type(self).__name__, lr))
            group["lr"] = lr

    def bind(self, params):
        """Attach parameters: a list (or a Module's parameters(), or (name, parameter) pairs),
        or a list of param-group dicts."""
        if hasattr(params, "parameters") and callable(params.parameters):
            params = params.parameters()
        if hasattr(params, "_array"):
            raise TypeError("%s: params must be an iterable of parameters or of param-group "
                            "dicts, got a single tensor" % type(self).__name__)
        if isinstance(params, dict):
            params = [params]
        if isinstance(params, set):
            raise TypeError("%s: parameters must be an ordered sequence, not a set (its order "
                            "changes between runs)" % type(self).__name__)
        params = list(params)
        if params and all(isinstance(g, dict) for g in params):
            groups = params
        elif any(isinstance(g, dict) for g in params):
            raise TypeError("%s: params mixes param-group dicts with parameters"
                            % type(self).__name__)
        else:
            # the pending group keeps what was set on it (a scheduler's lr, initial_lr)
            first = self.param_groups[0] if len(self.param_groups) == 1 else self.defaults
            groups = [dict({k: v for k, v in first.items() if k != "params"}, params=params)]
        self.param_groups, self.params, self._group_index = [], [], {}
        self._fused = None
        for group in groups:
            self.add_param_group(group)
        return self

    def add_param_group(self, param_group):
        """Add a group {"params": [...], hyperparameter: value, ...}; hyperparameters not
        given take the optimizer's defaults (torch.optim.Optimizer.add_param_group)."""
        if not isinstance(param_group, dict):
            raise TypeError("%s: a param group is a dict, got %r"
                            % (type(self).__name__, type(param_group).__name__))
        group = dict(param_group)
        if "params" not in group:
            raise ValueError("%s: a param group needs a 'params' entry" % type(self).__name__)
        params = group["params"]
        if hasattr(params, "_array"):
            params = [params]
        elif isinstance(params, set):
            raise TypeError("%s: parameters must be an ordered sequence, not a set (its order "
                            "changes between runs)" % type(self).__name__)
        params = list(params)
        names = None
        if params and all(isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str)
                          for p in params):
            names = [n for n, _ in params]
            params = [p for _, p in params]
        for p in params:
            if not hasattr(p, "_array"):
                raise TypeError("%s: expected parameters (tensors), got %r"
                                % (type(self).__name__, type(p).__name__))
            if not getattr(p, "requires_grad", False):
                raise errors.PyfrontError("%s: parameter %s does not require grad"
                                          % (type(self).__name__, getattr(p, "name", p)))
        seen = set(self._group_index)
        if any(id(p) in seen for p in params) or len({id(p) for p in params}) != len(params):
            raise ValueError("%s: some parameters appear in more than one param group (or "
                             "twice in one)" % type(self).__name__)
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._check_group(group)
        group["params"] = params
        if names is not None:
            group["param_names"] = names
        index = len(self.param_groups)
        self.param_groups.append(group)
        self.params.extend(params)
        for p in params:
            self._group_index[id(p)] = index
        self._fused = None

    def group_of(self, p):
        """The param group holding parameter p (the first group if p is not bound)."""
        return self.param_groups[self._group_index.get(id(p), 0)]

    def zero_grad(self, set_to_none=True):
        """Drop the gradients (PyTorch's default), or with set_to_none=False write zeros into
        them (memory kept)."""
        _clear_grads(self.params, set_to_none)

    # ---- state ----
    def group_state_names(self, group):
        """The states a parameter of this group keeps (in the kernel's output order first)."""
        return self.state_names

    def kernel_state_names(self, group):
        """The states the update kernel takes, in its output order."""
        return self.group_state_names(group)

    def _new_state(self, name, arr, group):
        return np.zeros_like(arr)

    def state_for(self, p):
        """The parameter's state arrays, in its memory's place (host or its GPU)."""
        st = self.state.get(id(p))
        names = self.group_state_names(self.group_of(p))
        if st is None or any(n not in st for n in names):
            arr = p._array()
            st = {} if st is None else st
            group = self.group_of(p)
            missing = [n for n in names if n not in st]
            if type(arr) is np.ndarray:
                for name in missing:
                    st[name] = self._new_state(name, arr, group)
            else:   # CuPy's zeros_like, on the parameter's device
                with cuda.device_scope(p.device):
                    for name in missing:
                        st[name] = self._new_state(name, arr, group)
            self.state[id(p)] = st
        return st

    # ---- step counts and the (lr, step) arrays ----
    def _hyper_key(self, p):
        return (self._group_index.get(id(p), 0), self._skipped.get(id(p), 0))

    def _hyper_entry(self, key):
        entry = self._hypers.get(key)
        if entry is None:
            arr = np.zeros(2, np.float64)
            entry = self._hypers[key] = (arr, cpu.Buf(arr, (2,), _f64()))
            self._write_hyper(key, arr)
        return entry

    def _write_hyper(self, key, arr):
        group, skipped = key
        groups = self.param_groups
        arr[0] = groups[group]["lr"] if group < len(groups) else 0.0
        arr[1] = self.iterations - skipped

    def step_count(self, p):
        """How many updates parameter p has had (PyTorch's state[p]["step"])."""
        return max(self.iterations - self._skipped.get(id(p), 0), 0)

    def begin_step(self):
        """Advance the step counter and publish (lr, step) for the kernels."""
        self.iterations += 1
        for key, (arr, _) in self._hypers.items():
            self._write_hyper(key, arr)

    def step(self, closure=None):
        """Apply one update to every parameter that has a gradient (eager). closure, as in
        PyTorch: a function that recomputes the loss (called with gradients enabled); its
        value is returned."""
        loss = None
        if closure is not None:
            with autograd.enable_grad():
                loss = closure()
        if not self.params:
            raise errors.PyfrontError("%s has no parameters: pass them to the constructor or "
                                      "call bind()" % type(self).__name__)
        for p in self.params:
            if p.grad is None:
                self._skipped[id(p)] = self._skipped.get(id(p), 0) + 1
        self.begin_step()
        if not self.clips_gradients and not self._needs_python() and self._fused_step():
            return loss
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
        for (p, _), g in zip(pairs, grads):
            group = self.group_of(p)
            if group.get("maximize"):
                with autograd.no_grad():
                    g = -g
            if self.python_update(group):
                self._python_update(p, g, group)
                continue
            device = p.device
            key = self._hyper_key(p)
            if device == "cpu":
                self._emit(_Eager(), p._buf(), g._buf(), self._hyper_entry(key)[1], p, group)
                continue
            with cuda.device_scope(device):
                self._emit(_EagerCuda(), p._buf(), g._buf(), self._device_hyper(device, key),
                           p, group)
        return loss

    def _needs_python(self):
        return any(group.get("maximize") or self.python_update(group)
                   for group in self.param_groups)

    def python_update(self, group):
        """True where this group's update has no kernel and runs as array code (eager only)."""
        return False

    def _python_update(self, p, g, group):
        raise NotImplementedError

    def _device_hyper(self, device, key=(0, 0)):
        """(lr, step) on a GPU for its update kernels, refreshed once a step."""
        host = self._hyper_entry(key)[0]
        buf = self._device_hypers.get((device, key))
        if buf is None:
            arr = cuda.array_to(host, device)
            buf = self._device_hypers[(device, key)] = cuda.Buf(arr, (2,), _f64())
        else:
            cuda.copy_from_host(buf.array, host)
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
        key = (tuple((id(p), self._hyper_key(p)) for p, _ in pairs),
               tuple((self.iattr(g), self.fattr(g)) for g in self.param_groups))
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
            self._emit(rec, p._buf(), g._buf(), self._hyper_entry(self._hyper_key(p))[1], p,
                       self.group_of(p))
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
        """Emit the update kernel for one parameter into a compiled plan (or eagerly). `hyper`
        is the plan's view of `optimizer.hyper`, which serves the first group's parameters;
        others read their own group's (lr, step) array."""
        group = self.group_of(p)
        if group.get("maximize") or self.python_update(group):
            raise errors.PyfrontError(
                "%s: %s runs in eager steps only (opt.step(), or a model compiled without "
                "jit); a compiled training step has no kernel for it"
                % (type(self).__name__, "maximize=True" if group.get("maximize")
                   else self.python_update_reason(group)))
        key = self._hyper_key(p)
        if key != (0, 0):
            hyper = self._hyper_entry(key)[1]
        self._emit(k, param, grad, hyper, p, group)

    def python_update_reason(self, group):
        return "this configuration"

    def _emit(self, k, param, grad, hyper, p, group):
        st = self.state_for(p)
        names = tuple(self.kernel_state_names(group))
        # state arrays live as long as the optimizer: their descriptors are made once
        cache = self._state_descs.get(id(p))
        if cache is None or cache[0] is not st or cache[1] != names or \
                any(c is not st[n] for c, n in zip(cache[3], names)):
            descs = [_buf_class(st[n])(st[n], st[n].shape, param.dtype).desc() for n in names]
            cache = self._state_descs[id(p)] = (st, names, descs, [st[n] for n in names])
        k.run(self.kernel, [grad.desc(), hyper.desc()], [param.desc()] + cache[2],
              self.iattr(group), self.fattr(group))

    def iattr(self, group):
        return ()

    def fattr(self, group):
        return ()

    # ---- checkpoints ----
    def state_dict(self):
        """{"iterations", "lr", "config", "state": {"<param index>.<name>": array},
        "param_groups": [each group's hyperparameters with "params": parameter indices],
        "skipped": {"<param index>": steps taken without that parameter}}."""
        state = {}
        index = {id(p): i for i, p in enumerate(self.params)}
        for i, p in enumerate(self.params):
            st = self.state.get(id(p))
            if st:
                for name, arr in st.items():
                    state["%d.%s" % (i, name)] = cuda.array_to(arr, "cpu")   # a GPU's: copied
        groups = [dict({k: v for k, v in g.items() if k != "params"},
                       params=[index[id(p)] for p in g["params"]]) for g in self.param_groups]
        skipped = {str(index[k]): v for k, v in self._skipped.items() if k in index and v}
        return {"iterations": self.iterations, "lr": self.lr, "config": self.get_config(),
                "state": state, "param_groups": groups, "skipped": skipped}

    def load_state_dict(self, sd):
        groups = sd.get("param_groups")
        if groups is not None:
            if len(groups) != len(self.param_groups) or any(
                    len(a["params"]) != len(b["params"])
                    for a, b in zip(groups, self.param_groups)):
                raise ValueError("%s: the state's param groups (sizes %s) do not match the "
                                 "optimizer's (%s)" % (
                                     type(self).__name__, [len(g["params"]) for g in groups],
                                     [len(g["params"]) for g in self.param_groups]))
        self.iterations = int(sd["iterations"])
        if groups is not None:
            for saved, group in zip(groups, self.param_groups):
                group.update({k: v for k, v in saved.items() if k != "params"})
                if isinstance(group.get("betas"), list):
                    group["betas"] = tuple(group["betas"])
                self._check_group(group)
        else:
            self.lr = float(sd["lr"])
        self._skipped = {id(self.params[int(i)]): int(v)
                         for i, v in (sd.get("skipped") or {}).items()}
        for key, arr in sd["state"].items():
            idx, name = key.split(".", 1)
            p = self.params[int(idx)]
            st = self.state_for(p)
            if name not in st:
                st[name] = self._new_state(name, p._array(), self.group_of(p))
            if st[name].shape != np.shape(arr):
                raise errors.ShapeError("optimizer state %s has shape %s, expected %s"
                                        % (key, np.shape(arr), st[name].shape))
            cuda.copy_from_host(st[name], arr)
        for key, (arr, _) in self._hypers.items():
            self._write_hyper(key, arr)
        self._fused = None

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


def _no_differentiable(cls, differentiable):
    if differentiable:
        raise ValueError("%s: differentiable=True (gradients through the update) is not "
                         "supported" % cls)


def _non_negative(cls, group, *names):
    for name in names:
        value = float(group[name])
        if not value >= 0:
            raise ValueError("%s: %s must be >= 0, got %r" % (cls, name, group[name]))
        group[name] = value


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum (Nesterov) and L2 weight decay, as
    torch.optim.SGD (the same positional order: lr, momentum, dampening, weight_decay,
    nesterov). Unlike PyTorch (1e-3), lr defaults to Keras' 0.01."""

    kernel = "sgd_update"
    state_names = ("momentum_buffer",)
    momentum = _hyperparameter("momentum")
    dampening = _hyperparameter("dampening")
    weight_decay = _hyperparameter("weight_decay")
    nesterov = _hyperparameter("nesterov")
    maximize = _hyperparameter("maximize")

    def __init__(self, params=None, lr=0.01, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False, *, maximize=False, foreach=None, differentiable=False,
                 fused=None, clipnorm=None, clipvalue=None, global_clipnorm=None):
        _no_differentiable("SGD", differentiable)
        super().__init__(params, lr, clipnorm, clipvalue, global_clipnorm,
                         defaults={"momentum": momentum, "dampening": dampening,
                                   "weight_decay": weight_decay, "nesterov": nesterov,
                                   "maximize": maximize})

    def _check_group(self, group):
        super()._check_group(group)
        if "momentum" not in group:
            return
        _non_negative("SGD", group, "momentum", "weight_decay")
        group["dampening"] = float(group["dampening"])
        group["nesterov"], group["maximize"] = bool(group["nesterov"]), bool(group["maximize"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("SGD: Nesterov momentum needs momentum > 0 and no dampening")

    def group_state_names(self, group):
        return self.state_names if group["momentum"] > 0 else ()

    def state_for(self, p):
        if self.group_of(p)["momentum"] == 0:
            return self.state.get(id(p)) or {}
        return super().state_for(p)

    def iattr(self, group):
        return (int(group["nesterov"]),)

    def fattr(self, group):
        return (group["momentum"], group["dampening"], group["weight_decay"])

    def get_config(self):
        return dict({"lr": self.lr, "momentum": self.momentum, "dampening": self.dampening,
                     "weight_decay": self.weight_decay, "nesterov": self.nesterov,
                     "maximize": self.maximize}, **self.clip_config())


class Adam(Optimizer):
    """Adam (Kingma & Ba) with L2 weight decay added to the gradient, as torch.optim.Adam;
    amsgrad=True keeps the running maximum of the second moment (AMSGrad; eager steps only),
    decoupled_weight_decay=True is AdamW."""

    kernel = "adam_update"
    state_names = ("m", "v", "max_exp_avg_sq")
    decoupled = False
    betas = _hyperparameter("betas")
    eps = _hyperparameter("eps")
    weight_decay = _hyperparameter("weight_decay")
    amsgrad = _hyperparameter("amsgrad")
    maximize = _hyperparameter("maximize")

    def __init__(self, params=None, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False, *, maximize=False, decoupled_weight_decay=False, foreach=None,
                 capturable=False, differentiable=False, fused=None, clipnorm=None,
                 clipvalue=None, global_clipnorm=None):
        _no_differentiable(type(self).__name__, differentiable)
        super().__init__(params, lr, clipnorm, clipvalue, global_clipnorm,
                         defaults={"betas": betas, "eps": eps, "weight_decay": weight_decay,
                                   "amsgrad": amsgrad, "maximize": maximize,
                                   "decoupled_weight_decay": bool(decoupled_weight_decay)
                                   or self.decoupled})

    def _check_group(self, group):
        super()._check_group(group)
        if "betas" not in group:
            return
        cls = type(self).__name__
        try:
            b1, b2 = (float(b) for b in group["betas"])
        except (TypeError, ValueError):
            raise ValueError("%s: betas must be two numbers, got %r"
                             % (cls, group["betas"])) from None
        if not (0 <= b1 < 1 and 0 <= b2 < 1):
            raise ValueError("%s: betas must lie in [0, 1), got %r" % (cls, group["betas"]))
        group["betas"] = (b1, b2)
        _non_negative(cls, group, "eps", "weight_decay")
        for key in ("amsgrad", "maximize", "decoupled_weight_decay"):
            group[key] = bool(group[key])

    def group_state_names(self, group):
        return ("m", "v", "max_exp_avg_sq") if group["amsgrad"] else ("m", "v")

    def kernel_state_names(self, group):
        return ("m", "v")

    def python_update(self, group):
        return group["amsgrad"]

    def python_update_reason(self, group):
        return "amsgrad=True"

    def _python_update(self, p, g, group):
        """PyTorch's single-tensor Adam step, as array code (AMSGrad)."""
        st = self.state_for(p)
        param, grad = p._array(), g._array()
        m, v, vmax = st["m"], st["v"], st["max_exp_avg_sq"]
        lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        step = self.iterations - self._skipped.get(id(p), 0)
        dt = param.dtype.type
        if wd:
            if group["decoupled_weight_decay"]:
                param *= dt(1 - lr * wd)
            else:
                grad = grad + dt(wd) * param
        w = 1 - b1                                # torch's exp_avg.lerp_(grad, w)
        if w < 0.5:
            m += dt(w) * (grad - m)
        else:
            m[...] = grad - (grad - m) * dt(1 - w)
        v *= dt(b2)
        v += dt(1 - b2) * grad * grad
        np.maximum(vmax, v, out=vmax)
        bc2_sqrt = (1 - b2 ** step) ** 0.5
        denom = np.sqrt(vmax) / dt(bc2_sqrt) + dt(eps)
        param -= dt(lr / (1 - b1 ** step)) * (m / denom)

    def iattr(self, group):
        return (int(group["decoupled_weight_decay"]),)

    def fattr(self, group):
        return (group["betas"][0], group["betas"][1], group["eps"], group["weight_decay"])

    def get_config(self):
        cfg = {"lr": self.lr, "betas": list(self.betas), "eps": self.eps,
               "weight_decay": self.weight_decay, "amsgrad": self.amsgrad,
               "maximize": self.maximize}
        if type(self) is Adam and self.param_groups[0]["decoupled_weight_decay"]:
            cfg["decoupled_weight_decay"] = True
        return dict(cfg, **self.clip_config())


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as torch.optim.AdamW."""

    decoupled = True

    def __init__(self, params=None, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01,
                 amsgrad=False, *, maximize=False, foreach=None, capturable=False,
                 differentiable=False, fused=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize,
                         differentiable=differentiable, clipnorm=clipnorm, clipvalue=clipvalue,
                         global_clipnorm=global_clipnorm)


class RMSProp(Optimizer):
    """RMSprop as torch.optim.RMSprop: a running average of squared gradients (decay alpha)
    divides the step; optionally centered (minus the squared running mean gradient) and with
    momentum."""

    kernel = "rmsprop_update"
    state_names = ("square_avg", "grad_avg", "momentum_buffer")
    alpha = _hyperparameter("alpha")
    eps = _hyperparameter("eps")
    weight_decay = _hyperparameter("weight_decay")
    momentum = _hyperparameter("momentum")
    centered = _hyperparameter("centered")
    maximize = _hyperparameter("maximize")

    def __init__(self, params=None, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0,
                 momentum=0.0, centered=False, capturable=False, foreach=None, maximize=False,
                 differentiable=False, *, clipnorm=None, clipvalue=None, global_clipnorm=None):
        _no_differentiable("RMSProp", differentiable)
        super().__init__(params, lr, clipnorm, clipvalue, global_clipnorm,
                         defaults={"alpha": alpha, "eps": eps, "weight_decay": weight_decay,
                                   "momentum": momentum, "centered": centered,
                                   "maximize": maximize})

    def _check_group(self, group):
        super()._check_group(group)
        if "alpha" not in group:
            return
        if not 0 <= float(group["alpha"]) < 1:
            raise ValueError("RMSProp: alpha must lie in [0, 1), got %r" % (group["alpha"],))
        group["alpha"] = float(group["alpha"])
        _non_negative("RMSProp", group, "eps", "weight_decay", "momentum")
        group["centered"], group["maximize"] = bool(group["centered"]), bool(group["maximize"])

    def group_state_names(self, group):
        return ("square_avg",) + (("grad_avg",) if group["centered"] else ()) + \
            (("momentum_buffer",) if group["momentum"] > 0 else ())

    def iattr(self, group):
        return (int(group["centered"]),)

    def fattr(self, group):
        return (group["alpha"], group["eps"], group["weight_decay"], group["momentum"])

    def get_config(self):
        return dict({"lr": self.lr, "alpha": self.alpha, "eps": self.eps,
                     "weight_decay": self.weight_decay, "momentum": self.momentum,
                     "centered": self.centered, "maximize": self.maximize},
                    **self.clip_config())


class AdaGrad(Optimizer):
    """AdaGrad as torch.optim.Adagrad: steps divided by the root of the summed squared
    gradients, with an optional learning-rate decay lr / (1 + (step - 1) * lr_decay)."""

    kernel = "adagrad_update"
    state_names = ("sum",)
    lr_decay = _hyperparameter("lr_decay")
    weight_decay = _hyperparameter("weight_decay")
    initial_accumulator_value = _hyperparameter("initial_accumulator_value")
    eps = _hyperparameter("eps")
    maximize = _hyperparameter("maximize")

    def __init__(self, params=None, lr=0.01, lr_decay=0.0, weight_decay=0.0,
                 initial_accumulator_value=0.0, eps=1e-10, foreach=None, *, maximize=False,
                 differentiable=False, fused=None, clipnorm=None, clipvalue=None,
                 global_clipnorm=None):
        _no_differentiable("AdaGrad", differentiable)
        super().__init__(params, lr, clipnorm, clipvalue, global_clipnorm,
                         defaults={"lr_decay": lr_decay, "weight_decay": weight_decay,
                                   "initial_accumulator_value": initial_accumulator_value,
                                   "eps": eps, "maximize": maximize})

    def _check_group(self, group):
        super()._check_group(group)
        if "lr_decay" not in group:
            return
        try:
            _non_negative("AdaGrad", group, "lr_decay", "weight_decay",
                          "initial_accumulator_value", "eps")
        except ValueError:
            raise ValueError("AdaGrad: lr_decay, weight_decay, initial_accumulator_value and "
                             "eps must be >= 0") from None
        group["maximize"] = bool(group["maximize"])

    def _new_state(self, name, arr, group):
        # PyTorch fills every sum with the constructor's initial_accumulator_value, whatever
        # a param group says (torch.optim.Adagrad.__init__): so do we
        st = np.zeros_like(arr)
        st[...] = self.defaults["initial_accumulator_value"]
        return st

    def fattr(self, group):
        return (group["lr_decay"], group["eps"], group["weight_decay"])

    def get_config(self):
        return dict({"lr": self.lr, "lr_decay": self.lr_decay,
                     "weight_decay": self.weight_decay,
                     "initial_accumulator_value": self.initial_accumulator_value,
                     "eps": self.eps, "maximize": self.maximize}, **self.clip_config())
