"""Hybrid execution: pf.jit(fn) and model.hybridize() trace imperative code into a graph and
run it compiled, one plan per input-shape signature.

A traced call that needs gradients runs a joint forward+backward plan in two phases and leaves
one entry on the eager tape, so compiled models train under ordinary autograd. Python control
flow that depends on values (bool() of a traced value, .numpy(), ...) cannot be traced: such
calls fall back to eager execution with a warning, never silently baking one branch.
"""
import functools
import warnings
import weakref

import numpy as np

from .. import autograd, errors
from ..dtypes import as_dtype
from ..ops import core
from ..tensor import Tensor, storage_epoch
from .executor import Executor
from .symbol import Graph, numbered_names

__all__ = ["jit", "compile", "JitFunction", "trace"]

_EAGER = object()
OWN_INPUT_BYTES = 4096     # inputs up to this size are copied into the plan (see run)


def _as_tensor(x):
    if isinstance(x, Tensor):
        return x
    if isinstance(x, np.ndarray):
        return Tensor(x)
    raise TypeError("compiled functions take tensors or numpy arrays, got %s" % type(x).__name__)


def flatten_outputs(out):
    """(list of leaves, rebuild function) for a Symbol, or tuples/lists/dicts of them, nested
    (torch's LSTM returns (output, (h_n, c_n)))."""
    if isinstance(out, dict):
        keys = list(out)
        parts = [out[k] for k in keys]

        def make(vals):
            return dict(zip(keys, vals))
    elif isinstance(out, (tuple, list)):
        kind, parts = type(out), list(out)
        if hasattr(out, "_fields"):        # a named tuple (max(x, dim=1)): fields positional
            def make(vals):
                return kind(*vals)
        else:
            def make(vals):
                return kind(vals)
    else:
        return [out], lambda vals: vals[0]
    if not any(isinstance(p, (tuple, list, dict)) for p in parts):
        return parts, make                 # flat: rebuilt in one step on every call
    leaves, spans = [], []
    for part in parts:
        sub, rebuild = flatten_outputs(part)
        spans.append((len(leaves), len(leaves) + len(sub), rebuild))
        leaves.extend(sub)
    return leaves, lambda vals: make([rebuild(vals[a:b]) for a, b, rebuild in spans])


def trace(fn, example_inputs, name="traced"):
    """Run fn on placeholders shaped like example_inputs; returns (graph, inputs, outputs,
    rebuild). Raises TraceError when fn's Python depends on values."""
    g = Graph(name)
    syms = [g.placeholder(n, tuple(t.shape), t.dtype)
            for n, t in zip(numbered_names("input", len(example_inputs)), example_inputs)]
    with core.tracing(g):
        out = fn(*syms)
    leaves, rebuild = flatten_outputs(out)
    outs = []
    for leaf in leaves:
        if isinstance(leaf, Tensor):
            leaf = g.constant(leaf)
        if not getattr(leaf, "symbolic", False):
            raise errors.TraceError("%s returned %r; compiled functions return tensors"
                                    % (name, type(leaf).__name__))
        outs.append(leaf)
    return g, syms, outs, rebuild


class _Compiled:
    """One traced signature: an inference executor and, on demand, a joint one for gradients."""

    def __init__(self, graph, inputs, outputs, rebuild, name, fn=None):
        self.graph, self.inputs, self.outputs, self.rebuild = graph, inputs, outputs, rebuild
        self.name = name
        self.fn = fn              # the traced function: re-run eagerly for create_graph
        self.variables = [n.value for n in graph.nodes if n.kind == "variable"]
        self.forward = Executor(graph, outputs)
        self.input_names = [s.name for s in inputs]
        self._fast = None
        self.joint = self._joint_wanted = None
        self._joints = {}     # requires_grad pattern -> its joint plan (see run_with_grad)

    # ---- inference: the hot path of a served model ----
    def run(self, arrays):
        """numpy arrays in, copies of the outputs out. Inputs of a few KB are copied into memory
        the plan owns (cheaper than re-pointing its steps); larger ones are bound in place:
        copied, the plan's buffer was written on the calling core every call and read from it
        by the other threads (the reference MLP at batch 128 on 2 threads: 50 us a call with
        the copy, 31 us bound, a new input array each call)."""
        fast = self._fast
        if fast is None or fast[0] != storage_epoch():
            fast = self._fast = self._prepare(arrays)
        _, plan, slots, views = fast
        with self.forward._lock:
            for i, binding, own in slots:
                a = arrays[i]
                if own is not None and a.shape == own.shape:
                    own[...] = a
                elif binding.array is not a:
                    binding.bind(a if a.flags.c_contiguous else np.ascontiguousarray(a))
            plan.run()
            return [v.copy() for v in views]

    def _prepare(self, arrays):
        plan = self.forward.plan_for(dict(zip(self.input_names, arrays)), False)
        slots = []      # (input index, its binding, its own buffer or None)
        for i, (name, a) in enumerate(zip(self.input_names, arrays)):
            binding = plan.bindings.get(name)
            if binding is None:       # an input the outputs do not read (or read the shape of)
                continue
            own = None
            if a.nbytes <= OWN_INPUT_BYTES:
                own = np.empty_like(a)
                binding.bind(own)
            slots.append((i, binding, own))
        views = [plan.view(v) for v in plan.outputs]
        return storage_epoch(), plan, slots, views

    # ---- training: forward phase now, backward phase when autograd asks ----
    def needs_grad(self, tensors):
        if not autograd.is_grad_enabled():
            return False
        return any(t.requires_grad for t in tensors) or \
            any(v.requires_grad for v in self.variables)

    def run_with_grad(self, tensors):
        # the backward phase computes only the gradients wanted now: an input that does not
        # require grad (the data) costs no GEMM; another pattern builds another joint plan
        wanted = tuple(t.requires_grad for t in tensors) + \
            tuple(v.requires_grad for v in self.variables)
        if self._joint_wanted != wanted:
            built = self._joints.get(wanted)
            if built is None:
                self._build_joint(tensors)
                built = self._joints[wanted] = (self.joint, self.grad_slots, self.wrt_inputs,
                                                self.wrt_vars)
            self.joint, self.grad_slots, self.wrt_inputs, self.wrt_vars = built
            self._joint_wanted = wanted
        exe, wrt, grad_names = self.joint
        feeds = {n: t.numpy() for n, t in zip(self.input_names, tensors)}
        for name, s in zip(grad_names, self.outputs):
            feeds[name] = np.zeros(s.shape, s.dtype.np)
        arrays = exe._arrays(feeds)
        with exe._lock:
            plan = exe.plan_for(arrays, False)
            state = _ArenaState(plan, arrays)
            state.claim()
            plan.run(0, plan.split)
            outs = [plan.view(v).copy() for v in plan.outputs[:len(self.outputs)]]
        results = [Tensor._wrap(a, as_dtype(a.dtype)) for a in outs]
        op = _CompiledCallOp(self, exe, plan, state, grad_names, len(results))
        op.grad_slots, op.wrt_vars = self.grad_slots, wrt
        inputs = list(tensors) + [v for v in wrt if not any(v is t for t in tensors)]
        needs = [t.requires_grad for t in inputs]
        node = autograd.Node(op, inputs, {}, outs, needs, core.current_scope())
        for i, t in enumerate(results):
            t.requires_grad = True
            t._node = node
            t._index = i
            node.track(i, t)
        op.inputs = inputs
        return results

    def _build_joint(self, tensors):
        g = self.graph
        tag = "_%d" % len(self._joints) if self._joints else ""    # one set per joint plan
        grad_syms = [g.placeholder("%s/grad%s_%d" % (self.name, tag, i), tuple(s.shape), s.dtype)
                     for i, s in enumerate(self.outputs)]
        wrt_inputs = [s for s, t in zip(self.inputs, tensors) if t.requires_grad]
        wrt_vars = [v for v in self.variables if v.requires_grad]
        var_syms = [g.variable(v) for v in wrt_vars]
        grads = g.gradients(list(self.outputs), wrt_inputs + var_syms, grad_syms)
        roots = list(self.outputs) + [x for x in grads if x is not None]
        grad_names = [s.name for s in grad_syms]
        exe = Executor(g, roots, late_inputs=grad_names)
        slots = {}
        k = len(self.outputs)
        for x, gsym in zip(wrt_inputs + var_syms, grads):
            if gsym is not None:
                slots[(x.node.id, x.index)] = k
                k += 1
        self.grad_slots = slots
        self.wrt_inputs, self.wrt_vars = wrt_inputs, wrt_vars
        self.joint = (exe, wrt_vars, grad_names)


class _ArenaState:
    """Who owns a joint plan's arena and input bindings between the forward and backward
    phases: a second forward before the first backward saves the first one's arena aside."""

    def __init__(self, plan, feeds):
        self.plan = plan
        self.feeds = feeds
        self.saved = None
        self.done = False

    def claim(self):
        plan = self.plan
        # the plan holds its owner weakly: once a call's outputs (and so its tape entry) are
        # gone, nobody can run its backward, and the next forward saves nothing (an inference
        # loop without no_grad would otherwise copy the whole arena, gradients included, on
        # every call: 3x the call's time for a one-row MLP)
        ref = getattr(plan, "owner", None)
        owner = ref() if ref is not None else None
        if owner is not None and owner is not self and not owner.done:
            owner.saved = plan.arena.copy()
        if self.saved is not None:
            plan.arena[...] = self.saved
            self.saved = None
        for name, arr in self.feeds.items():
            plan.bind(name, arr)
        plan.owner = weakref.ref(self)


class _CompiledCallOp(core.Op):
    """The tape entry of a compiled call: its gradient is the joint plan's backward phase."""

    name = "compiled_call"

    def __init__(self, compiled, exe, plan, state, grad_names, n_outputs):
        self.compiled, self.exe, self.plan, self.state = compiled, exe, plan, state
        self.grad_names, self.n_outputs = grad_names, n_outputs
        self.inputs = []

    def grad(self, ctx, gouts):
        if autograd.is_grad_enabled():
            return self._recorded_grad(gouts)
        if self.state.done:
            raise errors.PyfrontError("pf.jit: backward through this compiled call ran already "
                                      "(its saved values are freed)")
        gouts = gouts if isinstance(gouts, (list, tuple)) else [gouts]
        c = self.compiled
        with self.exe._lock:
            self.state.claim()
            for name, g in zip(self.grad_names, gouts):
                if name not in self.plan.bindings:
                    continue      # an output no gradient flows back from (integer indices)
                arr = np.ascontiguousarray(g.numpy(), dtype=g.dtype.np)
                self.plan.bind(name, arr)
            self.plan.run(self.plan.split, self.plan.n_steps)
            values = self.plan.outputs
            by_input = {}
            for i, sym in enumerate(c.inputs):
                slot = self.grad_slots.get((sym.node.id, sym.index))
                if slot is not None:
                    by_input[i] = self.plan.view(values[slot]).copy()
            var_grads = {}
            for v in self.wrt_vars:      # (this call's joint plan: see run_with_grad)
                node = c.graph._variables[id(v)]
                slot = self.grad_slots.get((node.id, 0))
                if slot is not None:
                    var_grads[id(v)] = self.plan.view(values[slot]).copy()
            self.state.done = True
            self.plan.owner = None
        out = []
        for i, t in enumerate(self.inputs):
            arr = by_input.get(i) if i < len(c.inputs) else var_grads.get(id(t))
            out.append(None if arr is None else Tensor._wrap(arr, t.dtype))
        return out

    def _recorded_grad(self, gouts):
        """The gradient under create_graph=True: the compiled backward computes numbers, not a
        graph, so the function runs again eagerly from the same inputs (and the variables as
        they are) and its recording is differentiated with create_graph: the same gradients,
        themselves differentiable. A function that draws random numbers or updates state
        (dropout, batch statistics) would not compute the same thing twice: refused."""
        c = self.compiled
        stateful = sorted({n.op.name for n in c.graph.nodes
                           if n.kind == "op" and (n.op.stateful or n.op.mutates)})
        if stateful or c.fn is None:
            raise errors.PyfrontError(
                "pf.jit(%s): higher-order gradients (create_graph=True) through a compiled call "
                "re-run the function eagerly, and it %s; call it without jit for these "
                "gradients" % (c.name, "uses %s, which would not give the same values again"
                               % ", ".join(stateful) if stateful else "is not known"))
        gouts = list(gouts) if isinstance(gouts, (list, tuple)) else [gouts]
        call_inputs = self.inputs[:len(c.inputs)]
        with autograd.enable_grad():
            leaves, _ = flatten_outputs(c.fn(*call_inputs))
        wanted = [t for t in self.inputs if t.requires_grad]
        grads = iter(autograd.grad(leaves, wanted, grad_outputs=gouts, create_graph=True,
                                   allow_unused=True) if wanted else ())
        return [next(grads) if t.requires_grad else None for t in self.inputs]


class JitFunction:
    """A function compiled per input-shape signature (see pf.jit)."""

    def __init__(self, fn, name=None, module=None):
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "function")
        self.module = module
        self._cache = {}
        self._numpy_cache = {}
        functools.update_wrapper(self, fn, updated=())

    def signature_key(self, tensors):
        training = self.module.training if self.module is not None else False
        return tuple((tuple(t.shape), t.dtype.name) for t in tensors) + (training,)

    def compiled_for(self, tensors):
        key = self.signature_key(tensors)
        entry = self._cache.get(key)
        if entry is None:
            try:
                self._check_host(tensors)
                with autograd.no_grad():
                    g, syms, outs, rebuild = trace(self.fn, tensors, self.name)
                entry = _Compiled(g, syms, outs, rebuild, self.name, self.fn)
            except errors.TraceError as e:
                warnings.warn("pf.jit(%s): %s. Inputs %s run eagerly from now on."
                              % (self.name, e, [tuple(t.shape) for t in tensors]),
                              RuntimeWarning, stacklevel=3)
                entry = _EAGER
            self._cache[key] = entry
        return entry

    def _check_host(self, tensors):
        """Compiled plans run on the CPU only so far: inputs or parameters on a GPU make the
        signature run eagerly (there), with compiled_for's warning."""
        params = self.module.parameters() if self.module is not None else ()
        gpu = sorted({t.device for t in list(tensors) + list(params)} - {"cpu"})
        if gpu:
            raise errors.TraceError("tensors on %s, and compiled plans run on the CPU only so far"
                                    % ", ".join(gpu))

    def __call__(self, *args):
        tensors = [_as_tensor(a) for a in args]
        entry = self.compiled_for(tensors)
        if entry is _EAGER:
            return self.fn(*tensors)
        if entry.needs_grad(tensors):
            return entry.rebuild(entry.run_with_grad(tensors))
        outs = entry.run([t.numpy() for t in tensors])
        return entry.rebuild([Tensor._wrap(a, as_dtype(a.dtype)) for a in outs])

    def run_numpy(self, *arrays):
        """numpy in, numpy out, no autograd: the lowest-overhead way to call a compiled model."""
        training = self.module.training if self.module is not None else False
        if len(arrays) == 1:       # (a served model's call: no generator for the key)
            a = arrays[0]
            key = (a.shape, a.dtype.str, training)
        else:
            key = tuple((a.shape, a.dtype.str) for a in arrays) + (training,)
        entry = self._numpy_cache.get(key)
        if entry is not None:
            return entry.rebuild(entry.run(arrays))
        tensors = [Tensor._wrap(np.ascontiguousarray(a), as_dtype(a.dtype)) for a in arrays]
        entry = self.compiled_for(tensors)
        if entry is not _EAGER:
            self._numpy_cache[key] = entry
        if entry is _EAGER:
            with autograd.no_grad():
                out = self.fn(*tensors)
            leaves, rebuild = flatten_outputs(out)
            return rebuild([x.numpy() for x in leaves])
        return entry.rebuild(entry.run(list(arrays)))

    @property
    def graphs(self):
        """The traced graphs, by signature (for inspection and export)."""
        return {k: v.graph for k, v in self._cache.items() if v is not _EAGER}


def jit(fn):
    """Compile fn (a function of tensors, or a Module) per input-shape signature.

    Results equal eager execution; calls that need gradients record one tape entry whose
    backward runs the compiled backward graph. An object that knows how to compile itself
    (a pyfront.nn.Module: its hybridize() builds a JitFunction over its __call__) is asked
    to, so the graph compiler needs no knowledge of modules.
    """
    hybridize = getattr(fn, "hybridize", None)
    if callable(hybridize) and not isinstance(fn, type):
        return hybridize()
    if not callable(fn):
        raise TypeError("pf.jit needs a function or a Module, got %r" % (fn,))
    return JitFunction(fn)


def compile(model=None, **options):  # noqa: A001 (torch.compile's name)
    """torch.compile's role, pf.jit's work: pf.compile(fn_or_module) returns what
    pf.jit(fn_or_module) returns. torch.compile's options (fullgraph, dynamic, backend, mode,
    options, disable) are accepted so that ported code runs, and ignored: pyfront has one
    compiler, which always traces whole graphs per input-shape signature. Without a model it
    is a decorator, as @torch.compile(mode=...) is."""
    if model is None:
        return lambda fn: jit(fn)
    return jit(model)
