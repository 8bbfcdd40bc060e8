"""Eager reverse-mode autodiff: a tape of op applications, walked backwards.

Each op application on tensors that need gradients leaves a Node: the op, its inputs, its
attributes and its outputs' memory. backward() visits the nodes reachable from the outputs in
reverse topological order and calls each op's gradient rule, which is written with ops; under
create_graph those ops record nodes themselves, giving higher-order gradients.
"""
import contextlib
import threading
import weakref

from . import errors

__all__ = ["no_grad", "enable_grad", "is_grad_enabled", "set_grad_enabled", "grad", "backward"]

_state = threading.local()


def is_grad_enabled():
    return getattr(_state, "enabled", True)


def set_grad_enabled(mode):
    _state.enabled = bool(mode)


class _GradMode(contextlib.ContextDecorator):
    """Sets the grad mode on entry and restores the previous one on exit. The previous modes
    live on a per-thread stack, not on the instance: one decorated function may be entered
    again (recursion) or by several threads at once, and each exit must restore what its own
    entry saw."""

    enabled = True

    def __enter__(self):
        saved = getattr(_state, "saved", None)
        if saved is None:
            saved = _state.saved = []
        saved.append(is_grad_enabled())
        _state.enabled = self.enabled

    def __exit__(self, *exc):
        _state.enabled = _state.saved.pop()
        return False


class no_grad(_GradMode):
    """Context manager and decorator: ops record nothing for autodiff inside it."""

    enabled = False


class enable_grad(_GradMode):
    """Context manager and decorator: ops record for autodiff inside it (within no_grad)."""

    enabled = True


class Node:
    """One recorded op application."""

    __slots__ = ("op", "inputs", "attrs", "arrays", "needs", "scope", "refs", "__weakref__")

    def __init__(self, op, inputs, attrs, arrays, needs, scope):
        self.op = op
        self.inputs = inputs      # the input tensors (they carry their own nodes)
        self.attrs = attrs
        self.arrays = arrays      # output memory; no reference back to the output tensors
        self.needs = needs        # which inputs need a gradient
        self.scope = scope
        self.refs = [None] * len(arrays)

    def track(self, i, tensor):
        self.refs[i] = weakref.ref(tensor)

    def output(self, i):
        """Output i as a tensor attached to this node (recreated if the user dropped it)."""
        t = self.refs[i]() if self.refs[i] is not None else None
        if t is None:
            from .ops import core

            t = core.Tensor._wrap(self.arrays[i], _dtype_of(self.arrays[i]))
            t.requires_grad = True
            t._node = self
            t._index = i
            self.refs[i] = weakref.ref(t)
        return t


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
        if id(node) in seen:
            continue
        seen.add(id(node))
        stack.append((node, True))
        for x in node.inputs:
            n = x._node
            if n is not None and id(n) not in seen:
                stack.append((n, False))
    order.reverse()
    return order


def _accumulate(store, key, g):
    prev = store.get(key)
    store[key] = g if prev is None else prev + g


def _run_backward(outputs, grad_outputs, create_graph, targets):
    """Propagate; returns {id(tensor): grad} for leaf tensors (and for `targets`)."""
    from .ops import core

    grads = {}          # (id(node), index) -> gradient
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
        else:
            _accumulate(grads, (id(out._node), out._index), g)
            roots.append(out._node)
    with enable_grad() if create_graph else no_grad():
        for node in _topo_order(roots):
            gouts = [grads.pop((id(node), i), None) for i in range(len(node.arrays))]
            for i, g in enumerate(gouts):
                key = (id(node), i)
                if key in target_keys and g is not None:
                    _accumulate(leaf_grads, target_keys[key], g)
            if all(g is None for g in gouts):
                continue
            if len(gouts) > 1 and any(g is None for g in gouts):
                gouts = [g if g is not None else _zeros_like_array(node.arrays[i])
                         for i, g in enumerate(gouts)]
            ctx = GradContext(node.inputs, node.attrs, node.needs, node=node)
            with core.name_scope(node.scope) if node.scope else contextlib.nullcontext():
                in_grads = node.op.grad(ctx, gouts if len(gouts) > 1 else gouts[0])
            if not isinstance(in_grads, (tuple, list)):
                in_grads = (in_grads,)
            for x, need, g in zip(node.inputs, node.needs, in_grads):
                if not need or g is None:
                    continue
                if tuple(g.shape) != tuple(x.shape):
                    raise errors.PyfrontError(
                        "internal: gradient of %s has shape %s for an input of shape %s"
                        % (node.op.name, tuple(g.shape), tuple(x.shape)))
                if x._node is None:
                    _accumulate(leaf_grads, id(x), g)
                else:
                    _accumulate(grads, (id(x._node), x._index), g)
    return leaf_grads


def _zeros_like_array(array):
    from .ops import core
    import numpy as np

    return core.Tensor._wrap(np.zeros_like(array), _dtype_of(array))   # a CuPy array's too


def _leaves(outputs):
    """Leaf tensors that need gradients, reachable from outputs."""
    roots = [o._node for o in outputs if o._node is not None]
    leaves, seen = [], set()
    for o in outputs:
        if o._node is None and o.requires_grad and id(o) not in seen:
            seen.add(id(o))
            leaves.append(o)
    for node in _topo_order(roots):
        for x in node.inputs:
            if x._node is None and x.requires_grad and id(x) not in seen:
                seen.add(id(x))
                leaves.append(x)
    return leaves


def _default_grads(outputs, grad_outputs):
    from .ops import core
    import numpy as np

    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    result = []
    for out, g in zip(outputs, grad_outputs):
        if g is None:
            if out.size != 1:
                raise errors.ShapeError(
                    "backward: output has shape %s; gradients can be implied only for a single "
                    "value (pass grad_outputs)" % (tuple(out.shape),))
            g = core.Tensor._wrap(np.ones_like(out._array()), out.dtype)   # on out's device
        else:
            g = core.as_operand(g, like=out)
            if tuple(g.shape) != tuple(out.shape):
                raise errors.ShapeError("backward: gradient has shape %s for an output of shape %s"
                                        % (tuple(g.shape), tuple(out.shape)))
        result.append(g)
    return result


def backward(outputs, grad_outputs=None, create_graph=False):
    """Accumulate d(outputs)/d(leaf) into leaf.grad for every leaf that requires grad."""
    if not isinstance(outputs, (list, tuple)):
        outputs = [outputs]
    if grad_outputs is not None and not isinstance(grad_outputs, (list, tuple)):
        grad_outputs = [grad_outputs]
    gos = _default_grads(outputs, grad_outputs)
    leaves = _leaves(outputs)
    leaf_grads = _run_backward(outputs, gos, create_graph, None)
    for leaf in leaves:
        g = leaf_grads.get(id(leaf))
        if g is None:
            continue
        if not create_graph:
            g = g.detach()
        if leaf.grad is None:
            leaf.grad = g
        else:
            leaf.grad = leaf.grad + g


def grad(outputs, inputs, grad_outputs=None, create_graph=False, allow_unused=False):
    """Gradients of outputs with respect to inputs, returned (not accumulated into .grad).

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
    for x in inputs:
        g = leaf_grads.get(id(x))
        if g is None and not allow_unused:
            raise errors.PyfrontError("grad: an input was not used to compute the outputs "
                                      "(pass allow_unused=True to get None for it)")
        if g is not None and not create_graph:
            g = g.detach()
        result.append(g)
    return result[0] if single else result
