"""Eager reverse-mode autodiff: a tape of op applications, walked backwards.

Each op application on tensors that need gradients leaves a Node: the op, its inputs, its
attributes and its outputs' memory. backward() visits the nodes reachable from the outputs in
reverse topological order and calls each op's gradient rule, which is written with ops; under
create_graph those ops record nodes themselves, giving higher-order gradients.

A node keeps only the inputs and outputs its op's gradient reads (Op.retain_inputs /
retain_outputs, Chainer's retain_inputs / retain_outputs): the rest become Released
stand-ins that keep shape, dtype and place in the graph, so a forward pass holds no more
memory than its backward needs (relu keeps its output, linear its input and kernel, add
nothing).

The tape sits below the ops: the tensor class and as_operand are set here by pyfront.tensor
at import (as it sets them in ops.core), and the name-scope stack of layers lives here.
"""
import contextlib
import math
import threading
import weakref

import numpy as np

from . import errors

__all__ = ["no_grad", "enable_grad", "inference_mode", "is_grad_enabled", "set_grad_enabled",
           "grad", "backward", "note_in_place"]

# set by pyfront.tensor at import: the tensor class gradients are wrapped in, and the
# conversion of user-given gradients (numbers, arrays) to tensors (ops.core.as_operand)
Tensor = None
as_operand = None

class _GradMode(threading.local):
    enabled = True      # (class defaults every thread sees: reading them raises nothing)
    scope = ""          # the name scopes joined ("sequential/dense_1"), kept with the stack


# per-thread: whether ops record (enabled) and the current name scope; ops.core reads both on
# every eager op, so they are plain attributes rather than calls
grad_mode = _GradMode()


# ---------------------------------------------------------------------------------------------
# name scopes: layers push their names so that errors and graph nodes say where they come from;
# backward runs each gradient rule in the scope its op ran in

def _scopes():
    s = getattr(grad_mode, "scopes", None)
    if s is None:
        s = grad_mode.scopes = []
    return s


@contextlib.contextmanager
def name_scope(name):
    """Prefix for node names and error messages ("sequential/dense_1")."""
    stack = _scopes()
    stack.append(name)
    grad_mode.scope = "/".join(stack)
    try:
        yield
    finally:
        stack.pop()
        grad_mode.scope = "/".join(stack)


def current_scope():
    return grad_mode.scope


def is_grad_enabled():
    return grad_mode.enabled


def set_grad_enabled(mode):
    grad_mode.enabled = bool(mode)


class _GradSwitch(contextlib.ContextDecorator):
    """Sets the grad mode on entry and restores the previous one on exit. The previous modes
    live on a per-thread stack, not on the instance: one decorated function may be entered
    again (recursion) or by several threads at once, and each exit must restore what its own
    entry saw."""

    enabled = True

    def __new__(cls, *args, **kwargs):
        if len(args) == 1 and not kwargs and callable(args[0]):
            # @pf.no_grad without parentheses, as torch takes it: the function, decorated
            return cls()(args[0])
        return super().__new__(cls)

    def __enter__(self):
        saved = getattr(grad_mode, "saved", None)
        if saved is None:
            saved = grad_mode.saved = []
        saved.append(is_grad_enabled())
        grad_mode.enabled = self.enabled

    def __exit__(self, *exc):
        grad_mode.enabled = grad_mode.saved.pop()
        return False


class no_grad(_GradSwitch):
    """Context manager and decorator: ops record nothing for autodiff inside it."""

    enabled = False


class enable_grad(_GradSwitch):
    """Context manager and decorator: ops record for autodiff inside it (within no_grad)."""

    enabled = True


class inference_mode(_GradSwitch):
    """PyTorch's inference_mode (mode=True): no_grad under its name; inference_mode(False)
    records, as enable_grad. (pyfront's no_grad already costs nothing per op: there is no
    version counting to switch off.)"""

    def __init__(self, mode=True):
        self.enabled = not mode


class Released:
    """Stands in a node for an input its op's gradient does not retain: shape, dtype, device
    and the node that made it stay (shape-only gradient code such as sum_to_like, and the
    backward walk, work); the memory is gone, and reading it raises naming the op, so a rule
    that needs more than its op declares fails at once instead of reading freed data. (A
    released output is None in node.arrays; ctx.output raises for it the same way.)"""

    __slots__ = ("shape", "dtype", "device", "_data", "_node", "_index", "_what")
    symbolic = False
    requires_grad = False     # (a stand-in is never a leaf to accumulate into)

    def __init__(self, x, op, i):
        """For input i of op, the tensor x (its memory not kept)."""
        array = x._data
        # apply() routes by the type of _data: None keeps a host stand-in on the host path,
        # an object a device one on the device path; neither is memory
        if type(array) is np.ndarray:
            self.shape, self.dtype, self.device, self._data, self._node, self._index, \
                self._what = array.shape, x.dtype, "cpu", None, x._node, x._index, (op, i)
        else:
            from .backend import cuda

            self.shape, self.dtype, self.device, self._data, self._node, self._index, \
                self._what = (array.shape, x.dtype, cuda.device_of(array), _DEVICE_DATA,
                              x._node, x._index, (op, i))

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def size(self):
        return math.prod(self.shape)

    def __getattr__(self, name):
        raise _not_retained((self._what[0], "input", self._what[1]), ".%s" % name)


_DEVICE_DATA = object()
_new_released = object.__new__
_ndarray = np.ndarray


def _not_retained(what, how):
    op, kind, i = what
    value = "%s %d" % (kind, i)
    if kind == "input":
        names = op.inputs
        value += " (%s)" % (names[i] if i < len(names) else names[-1] + str(i))
    return errors.PyfrontError("%s: its gradient read %s (%s), which the op does not retain: "
                               "declare it in the op's retain_inputs / retain_outputs"
                               % (op.name, value, how))


def retained(op, attrs, needs):
    """What a tape entry of op keeps: (the inputs it releases, the outputs it keeps or None for
    all, a memo of stand-ins), from the op's retain_inputs / retain_outputs. Eager dispatch
    caches it per op, shapes, attributes and needs; the memo then keeps, per input, the last
    0-d constant released there and its stand-in, so the shared constant of x * 1.5 gets one
    stand-in per cached entry instead of one per op application."""
    kept = op.retain_inputs
    if callable(kept):
        kept = kept(attrs, needs)
    release = () if kept is None else tuple(i for i in range(len(needs)) if i not in kept)
    outs = op.retain_outputs
    if callable(outs):
        outs = outs(attrs, needs)
    return release, outs, [None] * len(needs)


# ---- in-place changes: what a node kept for its gradient must not change under it ----
# A node keeps some inputs themselves (the tensors its gradient reads) and some output arrays.
# An in-place op either writes a tensor's memory (under no_grad, or when nothing needs a
# gradient) or makes the tensor the op's result on the tape (while recording): either way a
# node recorded before it would compute its gradient from the wrong values, or send it to the
# wrong place. Each node notes how many in-place changes had happened when it was made
# (`epoch`); each change notes its number against the memory it wrote (an array) or the tensor
# it rebound; backward refuses a node whose kept tensor or array changed later, naming both
# ops, as PyTorch does.
_in_place_changes = 0
_changed = {}       # id(array or tensor) -> (weak reference to it, number of last change, op)


def note_in_place(tensor, op_name, rebound=False):
    """tensor was changed in place by op_name: its memory written, or (rebound) the tensor
    made another op's result."""
    global _in_place_changes
    _in_place_changes += 1
    obj = tensor if rebound else tensor._data
    key = id(obj)
    entry = _changed.get(key)
    if entry is not None and entry[0]() is obj:
        ref = entry[0]
    else:
        try:
            ref = weakref.ref(obj, lambda r, key=key: _forget_change(key, r))
        except TypeError:       # memory that takes no weak reference: not followed
            return
    _changed[key] = (ref, _in_place_changes, op_name)


def _forget_change(key, ref):
    entry = _changed.get(key)
    if entry is not None and entry[0] is ref:
        del _changed[key]


def _changed_since(obj, epoch):
    """The op that changed obj (an array or a tensor) in place after change number `epoch`,
    or None."""
    entry = _changed.get(id(obj))
    if entry is not None and entry[1] > epoch and entry[0]() is obj:
        return entry[2]
    return None


def _check_kept(node):
    """Raise if what node kept for its gradient changed in place after node was made."""
    for i, x in enumerate(node.inputs):
        if type(x) is Released:
            continue
        changed = _changed_since(x, node.epoch) or _changed_since(x._data, node.epoch)
        if changed is not None:
            _refuse(node, "input", i, x.shape, changed)
    for i, a in enumerate(node.arrays):
        changed = _changed_since(a, node.epoch) if a is not None else None
        if changed is not None:
            _refuse(node, "output", i, a.shape, changed)


def _refuse(node, what, i, shape, changed):
    name = node.op.name
    raise errors.PyfrontError(
        "backward: %s %d (shape %s) of %s was changed in place by %s after %s kept it for its "
        "gradient (do the in-place op on a copy, t.clone(), or after backward)"
        % (what, i, tuple(shape), name, changed, name))


class Node:
    """One recorded op application."""

    __slots__ = ("op", "inputs", "attrs", "arrays", "needs", "scope", "refs", "release",
                 "specs", "held", "epoch", "__weakref__")

    def __init__(self, op, inputs, attrs, arrays, needs, scope, specs=None, kept=None):
        """kept: retained(op, attrs, needs), when the caller has it already."""
        # needs: which inputs need a gradient; refs: weak references to outputs that track()
        # was given; epoch: the in-place changes made before this node (see note_in_place).
        # (One store a statement: a tuple assignment builds and unpacks a tuple, 10% of a
        # node's cost, and a node is a third of a recorded op's.)
        self.op = op
        self.attrs = attrs
        self.needs = needs
        self.scope = scope
        self.refs = None
        self.epoch = _in_place_changes
        release, outs, memo = kept or retained(op, attrs, needs)
        # inputs: the tensors the gradient reads; the others become stand-ins, except leaves
        # that need a gradient (accumulated by identity; a parameter is alive anyway). A 0-d
        # constant (the shared one of x * 1.5) reuses the stand-in its memo slot made for it
        held = False              # a leaf held that the rule does not read (see grad_inputs)
        if release:
            inputs = list(inputs)
            for i in release:
                x = inputs[i]
                if type(x) is not Released:
                    array = x._data
                    if x._node is None and x.requires_grad:
                        held = True
                    elif type(array) is _ndarray:
                        constant = x._node is None and not array.shape
                        if constant:
                            made = memo[i]
                            if made is not None and made[0] is x:
                                inputs[i] = made[1]
                                continue
                        # Released(x, op, i) without the call: the tape's hot path
                        r = inputs[i] = _new_released(Released)
                        r.shape = array.shape
                        r.dtype = x.dtype
                        r.device = "cpu"
                        r._data = None
                        r._node = x._node
                        r._index = x._index
                        r._what = (op, i)
                        if constant:
                            memo[i] = (x, r)
                    else:
                        inputs[i] = Released(x, op, i)
        self.inputs = inputs
        self.release = release
        self.held = held
        # output memory (no reference back to the output tensors), stand-ins where released
        # (None where released; specs keeps their shapes and dtypes)
        if outs is not None:
            if specs is None:
                specs = [(a.shape, _dtype_of(a)) for a in arrays]
            if len(arrays) == 1:
                arrays = arrays if 0 in outs else [None]
            else:
                arrays = [a if i in outs else None for i, a in enumerate(arrays)]
        self.arrays = arrays
        self.specs = specs

    def track(self, i, tensor):
        """Output i is tensor: output(i) returns it while it lives (instead of a new tensor
        on the same memory)."""
        if self.refs is None:
            self.refs = [None] * len(self.arrays)
        self.refs[i] = weakref.ref(tensor)

    def output(self, i=0):
        """Output i as a tensor attached to this node (made anew unless track()ed and alive).
        (A node serves as its op's GradContext: inputs, attrs, needs, output(i).)"""
        a = self.arrays[i]
        if a is None:       # released (even while the user still holds the output)
            raise _not_retained((self.op, "output", i), "ctx.output(%d)" % i)
        ref = self.refs[i] if self.refs is not None else None
        t = ref() if ref is not None else None
        if t is None:
            t = Tensor._wrap(a, _dtype_of(a) if self.specs is None else self.specs[i][1])
            t.requires_grad = True
            t._node = self
            t._index = i
            self.track(i, t)
        return t

    def grad_inputs(self):
        """The inputs as the gradient rule sees them: stand-ins for all it does not retain
        (kept leaves included, so a rule that reads more than it declares fails every time)."""
        if not self.held:
            return self.inputs
        inputs = list(self.inputs)
        for i in self.release:
            if type(inputs[i]) is not Released:
                inputs[i] = Released(inputs[i], self.op, i)
        return inputs


def _dtype_of(array):
    from .dtypes import as_dtype

    return as_dtype(array.dtype)


class GradContext:
    """What a gradient rule sees: inputs, outputs, attributes, which inputs need gradients."""

    __slots__ = ("inputs", "attrs", "needs", "_node", "_outputs")

    def __init__(self, inputs, attrs, needs, node=None, outputs=None):
        self.inputs = inputs
        self.attrs = attrs
        self.needs = needs
        self._node = node
        self._outputs = outputs

    def output(self, i=0):
        if self._outputs is not None:
            return self._outputs[i]
        return self._node.output(i)


def _topo_order(roots):
    """Nodes reachable from roots, each after every node that consumes its outputs."""
    order, seen = [], set()
    stack = [(r, False) for r in roots]
    while stack:
        node, done = stack.pop()
        if done:
            order.append(node)
            continue
        if node in seen:          # (nodes hash and compare by identity)
            continue
        seen.add(node)
        stack.append((node, True))
        for x in node.inputs:
            n = x._node
            if n is not None and n not in seen:
                stack.append((n, False))
    order.reverse()
    return order


def _accumulate(store, key, g):
    prev = store.get(key)
    store[key] = g if prev is None else prev + g


def _add_output_grad(grads, node, i, g):
    """grads[node][i] += g: a node's output gradients, one list per node."""
    gouts = grads.get(node)
    if gouts is None:
        gouts = grads[node] = [None] * len(node.arrays)
    prev = gouts[i]
    gouts[i] = g if prev is None else prev + g


def _run_backward(outputs, grad_outputs, create_graph, targets, leaves=None):
    """Propagate; returns {id(tensor): grad} for leaf tensors (and for `targets`). leaves, a
    dict, gets {id(tensor): tensor} for the leaves that require grad (one walk, not two)."""
    grads = {}          # node -> [gradient of each output, None where none reached it]
    leaf_grads = {}     # id(tensor) -> gradient
    target_keys = {}
    for t in targets or ():
        if t._node is not None:
            target_keys[(id(t._node), t._index)] = id(t)
    roots = []
    for out, g in zip(outputs, grad_outputs):
        if not out.requires_grad:
            raise errors.PyfrontError("backward: the output does not require grad (no input that "
                                      "needs a gradient took part in computing it)")
        if out._node is None:
            _accumulate(leaf_grads, id(out), g)
            if leaves is not None:
                leaves[id(out)] = out
        else:
            _add_output_grad(grads, out._node, out._index, g)
            roots.append(out._node)
    scopes = _scopes()
    outer = grad_mode.scope
    with enable_grad() if create_graph else no_grad():
        for node in _topo_order(roots):
            gouts = grads.pop(node, None)
            if gouts is None:
                continue
            if _node_hooks and id(node) in _node_hooks:
                gouts = _hooked(node, gouts)
            if target_keys:
                for i, g in enumerate(gouts):
                    key = (id(node), i)
                    if key in target_keys and g is not None:
                        _accumulate(leaf_grads, target_keys[key], g)
            if len(gouts) == 1:
                g = gouts[0]
            else:
                if any(g is None for g in gouts):   # (is: tensors compare elementwise)
                    like = next(g for g in gouts if g is not None)
                    gouts = [g if g is not None else _zeros(node, i, like)
                             for i, g in enumerate(gouts)]
                g = gouts
            if node.epoch < _in_place_changes:
                _check_kept(node)
            # a node is its own gradient context unless a held leaf must be hidden from it
            ctx = GradContext(node.grad_inputs(), node.attrs, node.needs, node=node) \
                if node.held else node
            if node.scope:        # the rule runs in its op's name scope (name_scope, inline)
                scopes.append(node.scope)
                grad_mode.scope = "/".join(scopes)
                try:
                    in_grads = node.op.grad(ctx, g)
                finally:
                    scopes.pop()
                    grad_mode.scope = outer
            else:
                in_grads = node.op.grad(ctx, g)
            if not isinstance(in_grads, (tuple, list)):
                in_grads = (in_grads,)
            for x, need, g in zip(node.inputs, node.needs, in_grads):
                if not need or g is None:
                    continue
                gs, xs = g.shape, x.shape
                if gs != xs and tuple(gs) != tuple(xs):
                    raise errors.PyfrontError(
                        "internal: gradient of %s has shape %s for an input of shape %s"
                        % (node.op.name, tuple(gs), tuple(xs)))
                n = x._node
                if n is None:
                    _accumulate(leaf_grads, id(x), g)
                    if leaves is not None and x.requires_grad:
                        leaves[id(x)] = x
                else:
                    _add_output_grad(grads, n, x._index, g)
    if _leaf_hooks:
        for key in _leaf_hooks.keys() & leaf_grads.keys():
            leaf = _leaf_hooks[key][0]()
            if leaf is not None:
                leaf_grads[key] = _call_hooks(_leaf_hooks[key][1], leaf_grads[key])
    return leaf_grads


# ---- tensor hooks (PyTorch's Tensor.register_hook): fn(grad) is called with a tensor's
# gradient once backward has it whole, before it reaches .grad or flows on, and a returned
# tensor replaces it. A leaf's hooks are kept by the tensor's id, a result's by its node's
# and output index (another tensor on the same output shares them, as it shares the
# gradient); weak references let both go with what they belong to.
_leaf_hooks = {}       # id(tensor) -> (weak reference to it, [fn, ...])
_node_hooks = {}       # id(node) -> (weak reference to it, {output index: [fn, ...]})


class RemovableHandle:
    """What register_hook returns: remove() unregisters the hook."""

    __slots__ = ("_hooks", "_fn")

    def __init__(self, hooks, fn):
        self._hooks, self._fn = hooks, fn

    def remove(self):
        if self._fn in self._hooks:
            self._hooks.remove(self._fn)


def register_hook(t, fn):
    """Have backward call fn(grad) with t's gradient (see the table above); returns a
    RemovableHandle."""
    if not callable(fn):
        raise TypeError("register_hook: fn must be callable, got %r" % (fn,))
    if not t.requires_grad:
        raise errors.PyfrontError("register_hook: the tensor does not require grad (no gradient "
                                  "will reach it)")
    node = t._node
    if node is None:
        key, table, owner = id(t), _leaf_hooks, t
    else:
        key, table, owner = id(node), _node_hooks, node
    entry = table.get(key)
    if entry is None or entry[0]() is not owner:
        ref = weakref.ref(owner, lambda r, key=key, table=table: _forget_hooks(table, key, r))
        entry = table[key] = (ref, [] if node is None else {})
    hooks = entry[1] if node is None else entry[1].setdefault(t._index, [])
    hooks.append(fn)
    return RemovableHandle(hooks, fn)


def _forget_hooks(table, key, ref):
    entry = table.get(key)
    if entry is not None and entry[0] is ref:
        del table[key]


def _hooked(node, gouts):
    """node's output gradients after the hooks registered on its outputs."""
    ref, by_index = _node_hooks[id(node)]
    if ref() is not node:
        return gouts
    gouts = list(gouts)
    for i, hooks in by_index.items():
        if gouts[i] is not None:
            gouts[i] = _call_hooks(hooks, gouts[i])
    return gouts


def _call_hooks(hooks, g):
    for fn in list(hooks):
        out = fn(g)
        if out is not None:
            out = as_operand(out, like=g)
            if tuple(out.shape) != tuple(g.shape):
                raise errors.ShapeError("register_hook: a hook returned a gradient of shape %s "
                                        "for one of shape %s" % (tuple(out.shape),
                                                                 tuple(g.shape)))
            g = out
    return g


class GradFn:
    """PyTorch's grad_fn, for a tensor made by a recorded op: name() says which op's gradient
    backward runs; next_functions pairs each input's own grad_fn (None for a leaf or an
    input that needs no gradient) with the output index it came from."""

    __slots__ = ("_node",)

    def __init__(self, node):
        self._node = node

    def name(self):
        return "%sBackward" % "".join(part.capitalize() for part in
                                      self._node.op.name.split("_"))

    @property
    def next_functions(self):
        return tuple((GradFn(x._node) if x._node is not None and need else None, x._index)
                     for x, need in zip(self._node.inputs, self._node.needs))

    def __repr__(self):
        return "<%s>" % self.name()


def _zeros(node, i, like):
    """A zero gradient for output i of node, which nothing reached: its shape and dtype, on
    the device of the gradient `like` (np.zeros_like dispatches a CuPy array to CuPy)."""
    a = node.arrays[i]
    shape, dtype = node.specs[i] if a is None else (a.shape, _dtype_of(a))
    return Tensor._wrap(np.zeros_like(like._data, dtype=dtype.np, shape=tuple(shape)), dtype)


def _default_grads(outputs, grad_outputs):
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    result = []
    for out, g in zip(outputs, grad_outputs):
        if g is None:
            if out.size != 1:
                raise errors.ShapeError(
                    "backward: output has shape %s; gradients can be implied only for a single "
                    "value (pass grad_outputs)" % (tuple(out.shape),))
            g = Tensor._wrap(np.ones_like(out._array()), out.dtype)   # on out's device
        else:
            g = as_operand(g, like=out)
            if tuple(g.shape) != tuple(out.shape):
                raise errors.ShapeError("backward: gradient has shape %s for an output of shape %s"
                                        % (tuple(g.shape), tuple(out.shape)))
        result.append(g)
    return result


def backward(outputs, grad_outputs=None, create_graph=False, retain_graph=None):
    """Accumulate d(outputs)/d(leaf) into leaf.grad for every leaf that requires grad.
    retain_graph is accepted for PyTorch's code and changes nothing: the tape lives as long
    as the outputs do, so backward may run again on it either way."""
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    if grad_outputs is not None and not isinstance(grad_outputs, (list, tuple)):
        grad_outputs = [grad_outputs]
    gos = _default_grads(outputs, grad_outputs)
    leaves = {}
    # non-leaves that asked for their gradient (Tensor.retain_grad) are targets of the walk
    retaining = list(_retaining.values()) if _retaining else None
    leaf_grads = _run_backward(outputs, gos, create_graph, retaining, leaves)
    for key, leaf in leaves.items():
        _store_grad(leaf, leaf_grads[key], create_graph)
    for t in retaining or ():
        g = leaf_grads.get(id(t))
        if g is not None:
            _store_grad(t, g, create_graph)


def _store_grad(t, g, create_graph):
    """g added into t.grad (made there if it has none), as backward accumulates."""
    if not create_graph:
        g = g.detach()
    t.grad = g if t.grad is None else t.grad + g


# id -> tensor, for the non-leaf tensors whose .grad backward fills (PyTorch's retain_grad);
# weak, so that asking keeps neither the tensor nor its tape alive
_retaining = weakref.WeakValueDictionary()


def retain_grad(t):
    """Make backward fill t.grad although t is not a leaf (a leaf's is filled anyway)."""
    if not t.requires_grad:
        raise errors.PyfrontError("retain_grad: the tensor does not require grad (no input that "
                                  "needs a gradient took part in computing it)")
    if t._node is not None:
        _retaining[id(t)] = t


def retains_grad(t):
    return t._node is not None and _retaining.get(id(t)) is t


def grad(outputs, inputs, grad_outputs=None, create_graph=False, allow_unused=False,
         retain_graph=None):
    """Gradients of outputs with respect to inputs, returned (not accumulated into .grad).
    (retain_graph: accepted for PyTorch's code, as in backward.)

    With create_graph=True the result is itself differentiable: higher-order gradients.
    """
    single = not isinstance(inputs, (list, tuple))
    if single:
        inputs = [inputs]
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    if grad_outputs is not None and not isinstance(grad_outputs, (list, tuple)):
        grad_outputs = [grad_outputs]
    for x in inputs:
        if not x.requires_grad:
            raise errors.PyfrontError("grad: an input does not require grad")
    gos = _default_grads(outputs, grad_outputs)
    leaf_grads = _run_backward(outputs, gos, create_graph, inputs)
    result = []
    reached = None
    for x in inputs:
        g = leaf_grads.get(id(x))
        if g is None:
            # A gradient rule returns None for an input whose gradient is zero (relu's second
            # derivative; max's gradient, which depends on x only through where its maximum
            # is): an input the tape reaches along such edges gets zeros, as PyTorch's zero
            # formulas give (torch.func.hessian of max is zeros); only one the outputs never
            # depended on is unused.
            if reached is None:
                reached = _reached(outputs)
            key = id(x) if x._node is None else (id(x._node), x._index)
            if key in reached:
                g = Tensor._wrap(np.zeros_like(x._data), x.dtype)
            elif not allow_unused:
                raise errors.PyfrontError("grad: an input was not used to compute the outputs "
                                          "(pass allow_unused=True to get None for it)")
        if g is not None and not create_graph:
            g = g.detach()
        result.append(g)
    return result[0] if single else result


def _reached(outputs):
    """What the outputs' tape reaches along inputs that need a gradient: ids of leaves and
    (id(node), index) of non-leaf tensors (the outputs themselves included)."""
    reached, seen, stack = set(), set(), []
    for out in outputs:
        if out._node is None:
            reached.add(id(out))
        else:
            reached.add((id(out._node), out._index))
            stack.append(out._node)
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        for x, need in zip(node.inputs, node.needs):
            if not need:
                continue
            n = x._node
            if n is None:
                reached.add(id(x))
            else:
                reached.add((id(n), x._index))
                if n not in seen:
                    stack.append(n)
    return reached
