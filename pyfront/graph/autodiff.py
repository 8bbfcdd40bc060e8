"""Reverse-mode differentiation of a graph: the ops' own gradient rules, applied to Symbols,
add the backward nodes to the same graph."""
import contextlib

from .. import autograd, errors
from ..ops import core
from ..ops.shape import expand_like
from .symbol import Symbol

__all__ = ["gradients"]


def gradients(graph, y, xs, grad_y=None):
    """[d y / d x for x in xs] as Symbols (None where y does not depend on x).

    y may be a list of Symbols with a list of seed gradients grad_y (the vector-Jacobian
    product of all of them); a single y without grad_y must hold one value, or is summed.
    """
    ys = list(y) if isinstance(y, (list, tuple)) else [y]
    seeds = list(grad_y) if isinstance(grad_y, (list, tuple)) else [grad_y] * len(ys)
    for s in ys:
        if not s.symbolic or s.graph is not graph:
            raise errors.PyfrontError("gradients: y must be Symbols of graph %s" % graph.name)
    targets = {(x.node.id, x.index) for x in xs}
    last = max(s.node.id for s in ys)
    # which node outputs depend on a target (only those need gradients)
    depends = set()
    for node in graph.nodes[:last + 1]:
        if node.kind == "op" and any((n.id, i) in targets or n.id in depends
                                     for n, i in node.inputs):
            depends.add(node.id)
    grads = {}
    for s, seed in zip(ys, seeds):
        if s.node.id not in depends and (s.node.id, s.index) not in targets:
            continue
        if seed is None:
            one = graph.constant(core.as_operand(1.0, like=s))
            seed = expand_like(one, s) if tuple(s.shape) != () else one
        key = (s.node.id, s.index)
        grads[key] = seed if key not in grads else grads[key] + seed
    if not grads:
        return [None] * len(xs)
    result = {}
    with autograd.no_grad():
        for node in reversed(graph.nodes[:last + 1]):
            gouts = [grads.pop((node.id, i), None) for i in range(len(node.specs))]
            for i, g in enumerate(gouts):
                if (node.id, i) in targets and g is not None:
                    result[(node.id, i)] = g
            if node.kind != "op" or all(g is None for g in gouts):
                continue
            needs = [(n.id, i) in targets or n.id in depends for n, i in node.inputs]
            if not any(needs) or not node.op.differentiable:
                continue
            if len(gouts) > 1 and any(g is None for g in gouts):
                gouts = [g if g is not None else
                         expand_like(graph.constant(core.as_operand(0.0, like=s)), s)
                         for g, s in zip(gouts, (Symbol(graph, node, i)
                                                 for i in range(len(node.specs))))]
            ctx = autograd.GradContext(
                [Symbol(graph, n, i) for n, i in node.inputs], node.attrs, needs,
                outputs=[Symbol(graph, node, i) for i in range(len(node.specs))])
            scope = (node.scope + "/" if node.scope else "") + "grad"
            with core.name_scope(scope) if scope else contextlib.nullcontext():
                in_grads = node.op.grad(ctx, gouts if len(gouts) > 1 else gouts[0])
            if not isinstance(in_grads, (tuple, list)):
                in_grads = (in_grads,)
            for (n, i), need, g in zip(node.inputs, needs, in_grads):
                if not need or g is None:
                    continue
                key = (n.id, i)
                prev = grads.get(key)
                grads[key] = g if prev is None else prev + g
    return [result.get((x.node.id, x.index)) for x in xs]


