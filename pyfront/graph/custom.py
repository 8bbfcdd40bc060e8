"""A user's own ops: pf.custom_op registers an op whose forward is a function of tensors (or a
native kernel the user compiled and registered) and whose backward the user writes with pyfront
ops, so it runs eagerly, in pf.jit/hybridize graphs and under pf.grad(create_graph=True).

A composed forward is traced once per input signature into a small graph of built-in ops whose
kernels the op emits itself: the same kernels run now (eager) or are recorded into a compiled
plan. Saved models name the op; loading finds it only in this process's registry.
"""
import json
import math

from .. import errors
from ..backend import cpu
from ..dtypes import as_dtype
from ..ops import core
from ..ops.core import Op, Spec
from .serialize import attrs_to_json
from .symbol import Graph

__all__ = ["custom_op"]


class _View:
    """The memory of a view op's input under the view's shape (views run no kernel)."""

    def __init__(self, base, shape):
        self.base, self.shape, self.dtype = base, tuple(shape), base.dtype

    @property
    def size(self):
        return math.prod(self.shape)

    def desc(self, shape=None, strides=None, offset_elems=0):
        return self.base.desc(self.shape if shape is None else shape, strides, offset_elems)


class CustomOp(Op):
    """The op record made by custom_op (see there)."""

    def __init__(self, name, forward, backward, n_inputs, n_outputs, kernel, shape_rule):
        self.name = name
        self.inputs = tuple("input%d" % i for i in range(n_inputs))
        self.n_outputs = n_outputs
        self.user_forward = forward
        self.user_backward = backward
        self.kernel = kernel
        self.shape_rule = shape_rule
        self.differentiable = backward is not None
        self._traces = {}

    # ---- the shape rule: the kernel op's rule, or the traced graph's output specs ----
    def infer(self, specs, attrs):
        if len(specs) != len(self.inputs):
            raise core.ShapeMismatch("takes %d inputs, got %d" % (len(self.inputs), len(specs)))
        if self.kernel is not None:
            if self.shape_rule is None:
                return [Spec(specs[0].shape, specs[0].dtype)] * self.n_outputs
            rule = self.shape_rule(*specs, **attrs)
            rules = [rule] if self.n_outputs == 1 else list(rule)
            if len(rules) != self.n_outputs:
                raise errors.PyfrontError("custom op %r: its shape rule gave %d (shape, dtype) "
                                          "pairs for %d outputs" % (self.name, len(rules),
                                                                   self.n_outputs))
            return [Spec(tuple(shape), as_dtype(dtype)) for shape, dtype in rules]
        graph, outputs = self._trace(specs, attrs)
        return [Spec(tuple(s.shape), s.dtype) for s in outputs]

    def _trace(self, specs, attrs):
        key = (tuple((tuple(s.shape), s.dtype.name) for s in specs),
               json.dumps(attrs_to_json(attrs), sort_keys=True))
        trace = self._traces.get(key)
        if trace is None:
            graph = Graph("custom_op:%s" % self.name)
            with graph:
                xs = [graph.placeholder("input%d" % i, s.shape, s.dtype)
                      for i, s in enumerate(specs)]
                out = self.user_forward(*xs, **attrs)
            outputs = list(out) if isinstance(out, (tuple, list)) else [out]
            if len(outputs) != self.n_outputs or not all(getattr(o, "symbolic", False)
                                                         for o in outputs):
                raise errors.PyfrontError(
                    "custom op %r: forward must return %d tensor%s made with pyfront ops from "
                    "its inputs, got %s" % (self.name, self.n_outputs,
                                            "" if self.n_outputs == 1 else "s",
                                            _describe(out)))
            for node in graph.nodes:
                if node.kind == "variable" or (node.kind == "op" and (
                        node.op.stateful or node.op.mutates)):
                    raise errors.PyfrontError(
                        "custom op %r: forward may use its inputs, constants and stateless "
                        "ops only (found %s %r)" % (self.name, node.kind, node.name))
            trace = self._traces[key] = (graph, outputs)
        return trace

    # ---- forward: the user's kernel, or the traced graph's kernels, into the emitter ----
    def forward(self, k, ins, outs, attrs):
        if self.kernel is not None:
            k.run(self.kernel, [b.desc() for b in ins], [b.desc() for b in outs],
                  tuple(attrs.get("iattr", ())), tuple(attrs.get("fattr", ())))
            return
        graph, outputs = self._trace([Spec(b.shape, b.dtype) for b in ins], attrs)
        # each result a node computes is written straight into its output buffer; results
        # that are inputs, constants, views or repeats of another result are copied at the end
        direct = {}
        for j, r in enumerate(outputs):
            if r.node.kind == "op" and not r.node.op.view:
                direct.setdefault((r.node.id, r.index), j)
        bufs = {}
        for node in graph.nodes:
            if node.kind == "placeholder":
                bufs[(node.id, 0)] = ins[int(node.name[len("input"):])]
            elif node.kind == "constant":
                bufs[(node.id, 0)] = node.value._buf()
            elif node.op.view:
                bufs[(node.id, 0)] = _View(bufs[node.inputs[0][0].id, node.inputs[0][1]],
                                           node.specs[0].shape)
            else:
                node_ins = [None if i in node.op.shape_inputs else bufs[(n.id, j)]
                            for i, (n, j) in enumerate(node.inputs)]
                node_outs = [outs[direct[(node.id, i)]] if (node.id, i) in direct
                             else k.scratch(s.shape, s.dtype) for i, s in enumerate(node.specs)]
                node.op.forward(k, node_ins, node_outs, node.attrs)
                for i, b in enumerate(node_outs):
                    bufs[(node.id, i)] = b
        for j, r in enumerate(outputs):
            if direct.get((r.node.id, r.index)) != j:
                k.run("copy", [bufs[(r.node.id, r.index)].desc(outs[j].shape)], [outs[j].desc()])

    def grad(self, ctx, g):
        # g: one gradient, or a list of one per output (zeros for outputs that got none)
        grads = self.user_backward(ctx, g)
        grads = tuple(grads) if isinstance(grads, (tuple, list)) else (grads,)
        if len(grads) != len(self.inputs):
            raise errors.PyfrontError("custom op %r: backward returned %d gradients for %d "
                                      "inputs" % (self.name, len(grads), len(self.inputs)))
        return grads


def custom_op(name, forward=None, backward=None, *, inputs=1, outputs=1, kernel=None,
              shape=None):
    """Register an op of your own under `name` and return the function that applies it.

    forward(*inputs, **attrs) -> one tensor (a tuple of `outputs` tensors when outputs > 1),
    written with pyfront ops (it is traced once per input shape and dtype into the op's own
    kernels; the ops inside are not recorded on the tape: the op's gradient is yours). Or,
    instead of forward, kernel="name" of a native kernel registered with pf.register_kernel:
    it gets the inputs and the outputs, whose (shape, dtype) shape(*input_specs, **attrs)
    returns (a list of such pairs when outputs > 1; default: those of the first input), and
    the int and float attributes iattr=(...), fattr=(...) given at the call.

    backward(ctx, grad) -> one gradient per input (None where there is none), written with
    pyfront ops, so it runs on the tape, in graphs and again under create_graph: ctx.inputs,
    ctx.output(i), ctx.attrs, ctx.needs. With outputs > 1, grad is a list of one gradient
    per output (zeros for an output nothing used). Without backward the op has no gradient.

    Attributes (keyword arguments at the call) must be JSON values: a saved model stores
    them with the op's name. Loading a model that uses the op needs the same registration
    in the loading process first (nothing named in a file is ever imported).
    """
    if not isinstance(name, str) or not name or name in core.REGISTRY:
        raise errors.PyfrontError("custom_op: name must be a new op name, got %r%s"
                                  % (name, " (registered already)" if name in core.REGISTRY
                                     else ""))
    if (forward is None) == (kernel is None):
        raise errors.PyfrontError("custom_op %r: give exactly one of forward (a function of "
                                  "tensors) and kernel (a registered native kernel)" % name)
    if kernel is not None:
        cpu.kernel_id(kernel)            # a kernel must exist before an op can name it
    for arg, n in (("inputs", inputs), ("outputs", outputs)):
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise errors.PyfrontError("custom_op %r: %s must be a positive int, got %r"
                                      % (name, arg, n))
    n_inputs = inputs
    op = CustomOp(name, forward, backward, n_inputs, outputs, kernel, shape)
    core.register(op)

    def apply_op(*tensors, **attrs):
        if len(tensors) != n_inputs:
            raise errors.PyfrontError("%s takes %d inputs, got %d" % (name, n_inputs,
                                                                       len(tensors)))
        attrs_to_json(attrs)             # refuse what a saved model could not hold, now
        return core.apply(op, [core.as_operand(t) for t in tensors], attrs)

    apply_op.__name__ = name.replace(".", "_")
    apply_op.__doc__ = forward.__doc__ if forward is not None else None
    apply_op.op = op
    return apply_op


def _describe(out):
    if isinstance(out, (tuple, list)):
        return "%s of %d" % (type(out).__name__, len(out))
    return type(out).__name__


def unregister_custom_op(name):
    """Remove a custom op from the registry (tests, notebooks that redefine one)."""
    op = core.REGISTRY.get(name)
    if not isinstance(op, CustomOp):
        raise errors.PyfrontError("%r is not a registered custom op" % (name,))
    del core.REGISTRY[name]
