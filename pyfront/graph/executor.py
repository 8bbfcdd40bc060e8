"""Executor: a compiled graph. Optimises once, plans memory and steps per input shapes (cached),
runs each step as one native call; returns outputs and, on request, any named intermediate
without recompiling."""
import threading

import numpy as np

from .. import autograd, errors
from ..backend.cpu import Buf
from ..dtypes import as_dtype, float64
from ..ops import core
from ..ops.core import Spec
from ..tensor import Tensor, storage_epoch
from .passes import Program, optimize
from .plan import build_plan

__all__ = ["Executor"]


def _as_symbols(graph, outputs):
    if outputs is None:
        return [], []
    if isinstance(outputs, dict):
        names = list(outputs)
        syms = [outputs[k] for k in names]
    else:
        syms = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        names = [s.name for s in syms]
    for s in syms:
        if not getattr(s, "symbolic", False) or s.graph is not graph:
            raise errors.PyfrontError("compile: outputs must be Symbols of graph %s, got %r"
                                      % (graph.name, s))
    return names, syms


class Executor:
    """graph.compile(outputs, loss=None, optimizer=None): run() evaluates the outputs; with a
    loss and an optimizer, step() runs forward, backward and the update as one native call."""

    def __init__(self, graph, outputs=None, loss=None, optimizer=None, params=None, inputs=None,
                 late_inputs=()):
        """late_inputs: placeholders fed only for a second phase of the run (the output
        gradients of a compiled call); the nodes that need them are ordered last, so that
        plan.run(0, plan.split) is the first phase and plan.run(plan.split) the second."""
        self.graph = graph
        self.output_names, self.outputs = _as_symbols(graph, outputs)
        self.loss = loss
        self.optimizer = optimizer
        self.params = []
        grads = []
        if optimizer is not None:
            if loss is None:
                raise errors.PyfrontError("compile: an optimizer needs a loss")
            if params is None:
                params = optimizer.params or [
                    n.value for n in graph.nodes if n.kind == "variable"
                    and getattr(n.value, "trainable", False) and n.value.requires_grad]
            params = list(params)
            if not optimizer.params:
                optimizer.bind(params)
            wrt = [graph.variable(p) for p in params]
            grads = graph.gradients(loss, wrt)
            clip = getattr(optimizer, "clip_gradients", None)
            if clip is not None:
                grads = clip(grads)
            self.params = [(p, g) for p, g in zip(params, grads) if g is not None]
            grads = [g for _, g in self.params]
        roots = list(self.outputs) + ([loss] if loss is not None else []) + grads
        if not roots:
            raise errors.PyfrontError("compile: nothing to compute (give outputs or a loss)")
        self.program = Program(graph, roots)
        optimize(self.program, set((n.id, k) for n, k in self.program.roots))
        self._root_values = list(self.program.roots)
        self._late = set()
        if late_inputs:
            for n in self.program.nodes:
                if (n.kind == "placeholder" and n.name in late_inputs) or any(
                        s.id in self._late for s, _ in n.inputs):
                    self._late.add(n.id)
            self.program.nodes = [n for n in self.program.nodes if n.id not in self._late] + \
                [n for n in self.program.nodes if n.id in self._late]
        self.input_names = [n.name for n in self.program.nodes if n.kind == "placeholder"]
        if inputs is not None:
            missing = [n for n in self.input_names if n not in inputs]
            if missing:
                raise errors.PyfrontError("compile: the outputs need placeholders %s" % missing)
        self._plans = {}
        self._epoch = storage_epoch()
        self._lock = threading.Lock()
        self._hyper = Buf(optimizer.hyper, (2,), float64) if optimizer is not None else None
        self._inference = None

    # ---- feeding ----
    def _arrays(self, feeds):
        if not isinstance(feeds, dict):
            if len(self.input_names) != 1:
                raise errors.PyfrontError("run: this graph takes inputs %s; pass a dict"
                                          % self.input_names)
            feeds = {self.input_names[0]: feeds}
        arrays = {}
        for name in self.input_names:
            if name not in feeds:
                raise errors.PyfrontError("run: no value for placeholder '%s' (inputs: %s)"
                                          % (name, self.input_names))
            declared = self.graph.placeholders[name].specs[0].dtype
            v = feeds[name]
            arr = v.numpy() if isinstance(v, Tensor) else v
            if not isinstance(arr, np.ndarray) or arr.dtype != declared.np:
                arr = np.asarray(arr)
                if arr.dtype.kind != declared.np.kind and not (
                        arr.dtype.kind in "iu" and declared.np.kind in "iu"):
                    raise errors.DTypeError("input '%s' has dtype %s but the graph expects %s"
                                            % (name, arr.dtype, declared.name))
                arr = arr.astype(declared.np)
            if not arr.flags.c_contiguous:
                arr = np.ascontiguousarray(arr)
            arrays[name] = arr
        return arrays

    def plan_for(self, arrays, training):
        epoch = storage_epoch()
        if epoch != self._epoch:
            # a parameter got new memory since the plans were built: they would read the old
            self._plans.clear()
            self._epoch = epoch
        key = (training,) + tuple((n, a.shape) for n, a in arrays.items())
        plan = self._plans.get(key)
        if plan is None:
            feed_specs = {n: Spec(a.shape, as_dtype(a.dtype)) for n, a in arrays.items()}
            updates = []
            if training:
                for p, g in self.params:
                    updates.append(self._update_emitter(p, g))
            keep = {(n.id, k) for n, k in self._root_values}
            plan = build_plan(self.program, feed_specs, keep, updates if training else ())
            plan.split = min([plan.node_steps[n.id][0] for n in self.program.nodes
                              if n.id in self._late and n.id in plan.node_steps] or
                             [plan.graph_steps])
            plan.outputs = [(n.id, k) for n, k in self._root_values]
            self._plans[key] = plan
        return plan

    def _update_emitter(self, p, g):
        n_before = len(self.outputs) + (1 if self.loss is not None else 0)
        idx = n_before + next(i for i, (_, gg) in enumerate(self.params) if gg is g)
        value = self._root_values[idx]
        opt, hyper = self.optimizer, self._hyper

        def emit(k, bufs):
            gbuf = bufs[(value[0].id, value[1])]
            if gbuf.dtype is not p.dtype:
                raise errors.DTypeError("gradient of %s is %s, the parameter %s"
                                        % (p.name, gbuf.dtype.name, p.dtype.name))
            opt.emit_update(k, p._buf(), gbuf, hyper, p)
        return emit

    # ---- running ----
    def run(self, feeds, fetch=None):
        """Evaluate the outputs (and the loss) for the feeds; returns {name: ndarray}.

        fetch: names of any other values of the graph (intermediates) to return as well.
        """
        if self.optimizer is not None:
            if self._inference is None:
                outs = dict(zip(self.output_names, self.outputs))
                if self.loss is not None:
                    outs[self.loss.name] = self.loss
                self._inference = Executor(self.graph, outs)
            return self._inference.run(feeds, fetch)
        return self._execute(feeds, fetch, training=False)

    def step(self, feeds, fetch=None):
        """One training step: forward, backward and the optimizer update in one native call.
        Returns {name: ndarray} with the loss and the outputs as they were before the update."""
        if self.optimizer is None:
            raise errors.PyfrontError("step: compile with a loss and an optimizer to train")
        return self._execute(feeds, fetch, training=True)

    def _execute(self, feeds, fetch, training):
        arrays = self._arrays(feeds)
        with self._lock:
            plan = self.plan_for(arrays, training)
            for name, arr in arrays.items():
                plan.bind(name, arr)
            if training:
                self.optimizer.begin_step()
            try:
                fetched = self._run_with_fetches(plan, fetch) if fetch else None
                if not fetch:
                    plan.run()
            except Exception:
                if training:
                    self.optimizer.iterations -= 1
                raise
            result = {}
            names = self.output_names + ([self.loss.name] if self.loss is not None else [])
            for name, value in zip(names, self._root_values):
                result[name] = self._read(plan, value).copy()
            if fetched:
                result.update(fetched)
            return result

    def _read(self, plan, value):
        node, k = value
        if node.kind in ("variable", "constant"):
            return node.value.numpy()
        return plan.view((node.id, k))

    # ---- debugging: any named value, without recompiling ----
    def _run_with_fetches(self, plan, names):
        requests = []
        for name in names:
            base, _, idx = name.partition(":")
            idx = int(idx) if idx else 0
            entry = self.program.origins.get(base)
            if entry is None:
                raise KeyError("no value named %r in this compiled graph; names: %s"
                               % (name, sorted(self.program.origins)[:50]))
            requests.append((name, entry, idx))

        def when(req):
            entry = req[1]
            node = entry[1]
            lo, hi = plan.node_steps.get(node.id, (0, 0))
            return lo if entry[0] == "fused" else hi

        requests.sort(key=when)
        fetched, done = {}, 0
        for name, entry, idx in requests:
            at = when((name, entry, idx))
            plan.run(done, at)
            done = max(done, at)
            if entry[0] == "node":
                fetched[name] = self._read(plan, (entry[1], idx)).copy()
            else:
                fetched[name] = self._recompute(plan, entry[1], entry[2])
        plan.run(done, plan.n_steps)
        return fetched

    def _recompute(self, plan, fused, target):
        """Evaluate a value that fusion folded away, eagerly, from the fused node's inputs
        as they are right before it runs."""
        values = {}
        members = {n.id for n in fused.origin}
        with autograd.no_grad():
            for n in fused.origin:
                args = []
                for j, (s, k) in enumerate(n.inputs):
                    if (s.id, k) in values:
                        args.append(values[(s.id, k)])
                    elif s.id in members:
                        raise errors.PyfrontError("internal: fused value order")
                    else:
                        arr = self._lookup(plan, s, k)
                        args.append(Tensor._wrap(arr.copy(), as_dtype(arr.dtype)))
                out = core.apply(n.op, args, n.attrs)       # tensors in: runs eagerly
                outs = out if isinstance(out, tuple) else (out,)
                for i, t in enumerate(outs):
                    values[(n.id, i)] = t
                if n is target:
                    return outs[0].numpy().copy()
        raise errors.PyfrontError("internal: %s not found in its fused node" % target.name)

    def _lookup(self, plan, node, k):
        if (node.id, k) in plan.bufs:
            return self._read(plan, (node, k))
        entry = self.program.origins.get(node.name)
        if entry is not None and entry[0] == "node" and entry[1] is not node:
            return self._lookup(plan, entry[1], k)
        raise errors.PyfrontError("internal: value %s is not available" % node.name)

    # ---- introspection ----
    @property
    def value_names(self):
        """Every name that run(..., fetch=[...]) accepts."""
        return sorted(self.program.origins)

    def memory_plan(self, feeds):
        """(arena bytes, sum of the value sizes it holds): how much the plan reuses memory."""
        arrays = self._arrays(feeds)
        plan = self.plan_for(arrays, self.optimizer is not None)
        total = 0
        for key, sp in plan.specs.items():
            node = next((n for n in self.program.nodes if n.id == key[0]), None)
            if node is not None and node.kind == "op" and not node.op.view:
                total += int(np.prod(sp.shape)) * sp.dtype.itemsize if sp.shape else \
                    sp.dtype.itemsize
        return plan.arena_bytes, total
