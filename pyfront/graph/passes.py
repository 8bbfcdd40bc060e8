"""Graph optimisation passes over a Program (a private copy of the part of a graph to run):
dead-node removal, common-subexpression elimination, constant folding, and fusion (dense layer
+ activation into one kernel; chains of elementwise ops into one fused kernel)."""
import json

from .. import autograd
from ..backend.cpu import lib
from ..ops import core
from ..ops.core import Op, Spec
from ..ops.linalg import LINEAR_ACTIVATIONS, UNARY_ACTIVATIONS
from .symbol import upstream_ids

__all__ = ["PNode", "Program", "optimize"]


class PNode:
    __slots__ = ("id", "kind", "op", "inputs", "attrs", "name", "specs", "value", "origin")

    def __init__(self, id, kind, op, inputs, attrs, name, specs, value=None, origin=None):
        self.id = id
        self.kind = kind          # "op" | "placeholder" | "variable" | "constant"
        self.op = op
        self.inputs = inputs      # [(PNode, output index)]
        self.attrs = attrs
        self.name = name
        self.specs = specs
        self.value = value
        self.origin = origin      # fused nodes: the original nodes they replace, in order

    def __repr__(self):
        return "<%s %s>" % (self.kind, self.name)


class Program:
    """The nodes needed for some root values, in topological order, plus name bookkeeping so
    that any value of the original graph can still be fetched after the passes."""

    def __init__(self, graph, roots):
        self.graph = graph
        mapping = {}
        needed = upstream_ids(s.node for s in roots)
        self.nodes = []
        for g in graph.nodes:
            if g.id not in needed:
                continue
            p = PNode(len(self.nodes), g.kind, g.op, [(mapping[i.id], k) for i, k in g.inputs],
                      g.attrs, g.name, g.specs, g.value)
            mapping[g.id] = p
            self.nodes.append(p)
        self.roots = [(mapping[s.node.id], s.index) for s in roots]
        # original name -> ("node", PNode) | ("alias", PNode, index) | ("fused", PNode, PNode)
        self.origins = {p.name: ("node", p) for p in self.nodes}
        self._next_id = len(self.nodes)

    def new_id(self):
        self._next_id += 1
        return self._next_id

    def consumers(self):
        """{(id, index): [consumer PNode, ...]} counting data inputs only; roots count too."""
        uses = {}
        for n in self.nodes:
            if n.kind != "op":
                continue
            shape_only = set(n.op.shape_inputs)
            for j, (src, k) in enumerate(n.inputs):
                if j not in shape_only:
                    uses.setdefault((src.id, k), []).append(n)
        for src, k in self.roots:
            uses.setdefault((src.id, k), []).append(None)
        return uses

    def prune(self):
        """Dead-node removal: keep only what the roots need (an op that updates state in
        place stays as long as its outputs are needed)."""
        keep = upstream_ids(n for n, _ in self.roots)
        self.nodes = [n for n in self.nodes if n.id in keep]

    def replace_uses(self, old, old_index, new, new_index):
        for n in self.nodes:
            n.inputs = [(new, new_index) if (s is old and k == old_index) else (s, k)
                        for s, k in n.inputs]
        self.roots = [(new, new_index) if (s is old and k == old_index) else (s, k)
                      for s, k in self.roots]


def _attrs_key(attrs):
    return json.dumps(attrs, sort_keys=True, default=str)


def eliminate_common(program):
    """Two applications of one op to the same inputs with the same attributes are one."""
    seen = {}
    for n in list(program.nodes):
        if n.kind != "op" or n.op.stateful or n.op.mutates:
            continue
        key = (n.op.name, tuple((s.id, k) for s, k in n.inputs), _attrs_key(n.attrs))
        prev = seen.get(key)
        if prev is None:
            seen[key] = n
            continue
        for i in range(len(n.specs)):
            program.replace_uses(n, i, prev, i)
        program.origins[n.name] = ("node", prev)
        program.nodes.remove(n)


def fold_constants(program):
    """Ops whose inputs are all constants run once, at compile time."""
    from ..tensor import Tensor

    for n in list(program.nodes):
        if n.kind != "op" or n.op.stateful or n.op.mutates:
            continue
        shape_only = set(n.op.shape_inputs)
        ok = True
        for j, (s, _) in enumerate(n.inputs):
            if s.kind == "constant":
                continue
            if j in shape_only and all(None not in sp.shape for sp in s.specs):
                continue
            ok = False
            break
        if not ok or not n.inputs:
            continue
        args = []
        for j, (s, k) in enumerate(n.inputs):
            if s.kind == "constant":
                args.append(s.value)
            else:
                args.append(_ShapeOnly(s.specs[k]))
        with autograd.no_grad():
            out = core.run_eager(n.op, args, n.attrs)
        outs = out if isinstance(out, tuple) else (out,)
        for i, t in enumerate(outs):
            c = PNode(program.new_id(), "constant", None, [], {}, n.name + "/folded",
                      [Spec(tuple(t.shape), t.dtype)], Tensor._wrap(t.numpy(), t.dtype))
            program.nodes.insert(program.nodes.index(n), c)
            program.replace_uses(n, i, c, 0)
            program.origins[n.name if len(outs) == 1 else "%s:%d" % (n.name, i)] = ("node", c)
        program.nodes.remove(n)


class _ShapeOnly:
    """Stands for a shape-only input when folding (its data is never read)."""

    symbolic = False
    requires_grad = False
    _data = None             # (no memory: a replayed kernel call gets NULL for it)

    def __init__(self, spec):
        self.shape, self.dtype = spec.shape, spec.dtype
        self.name = None

    def _buf(self):
        return None


# ---------------------------------------------------------------------------------------------
# fusion

def fuse_linear_activation(program):
    """linear followed by its only consumer, an activation the linear kernel applies
    (LINEAR_ACTIVATIONS, or UNARY_ACTIVATIONS through the elementwise loop), becomes one
    linear kernel."""
    uses = program.consumers()
    for n in list(program.nodes):
        if n.kind != "op" or (n.op.name not in LINEAR_ACTIVATIONS and
                              n.op.name not in UNARY_ACTIVATIONS):
            continue
        src, k = n.inputs[0]
        if src.kind != "op" or src.op.name != "linear" or src.attrs.get("activation"):
            continue
        if len(uses.get((src.id, k), [])) != 1:
            continue
        attrs = dict(src.attrs, activation=n.op.name)
        attrs.update((p, n.attrs[p]) for p in getattr(n.op, "params", ()))   # alpha, lo/hi
        _fuse_into(program, src, k, n, attrs)
        uses = program.consumers()


def _fuse_into(program, src, k, n, attrs):
    """Replace n and the op src it reads (output k) by one node of src's op with attrs."""
    fused = PNode(program.new_id(), "op", src.op, list(src.inputs), attrs, n.name, n.specs,
                  origin=[src, n])
    program.nodes[program.nodes.index(n)] = fused
    program.nodes.remove(src)
    program.replace_uses(n, 0, fused, 0)
    program.replace_uses(src, k, fused, 0)     # shape-only uses of src: same shape
    program.origins[src.name] = ("fused", fused, src)
    program.origins[n.name] = ("node", fused)


def fuse_conv_pool(program, protected):
    """conv2d (without an activation or with a fused ReLU) whose only consumer is a 2x2 max
    pool of stride 2 without padding becomes one conv kernel that writes the pooled maxima
    (attribute pool=2): the convolution's output is never stored and read back. Inference
    graphs are where this fires: a graph with gradients reads the convolution's output again
    (the pool's and the ReLU's gradients), so it has other consumers."""
    from ..ops.pooling import _pads

    uses = program.consumers()
    for n in list(program.nodes):
        if n.kind != "op" or n.op.name != "max_pool2d":
            continue
        src, k = n.inputs[0]
        if src.kind != "op" or src.op.name != "conv2d" or src.attrs.get("pool") or \
                src.attrs.get("activation") not in (None, "relu") or (src.id, k) in protected:
            continue
        if len(uses.get((src.id, k), [])) != 1:
            continue
        a = n.attrs
        spatial = list(src.specs[k].shape[2:])
        if tuple(a["pool_size"]) != (2, 2) or tuple(a["strides"]) != (2, 2) or \
                None in spatial or any(tuple(p) != (0, 0) for p in _pads(a, spatial)):
            continue
        _fuse_into(program, src, k, n, dict(src.attrs, pool=2))
        uses = program.consumers()


class FusedElementwise(Op):
    """A chain of elementwise ops run as one native program over tiles of the output."""

    name = "fused_elementwise"
    differentiable = False

    def infer(self, specs, attrs):
        shape = core.broadcast_shapes(*[s.shape for s in specs])
        return [Spec(shape, specs[0].dtype)]

    def forward(self, k, ins, outs, attrs):
        from ..ops.elementwise import broadcast_strides

        shape = outs[0].shape
        descs = [b.desc(shape, broadcast_strides(b.shape, shape)) for b in ins]
        k.run("fused", descs, [outs[0].desc()], attrs["program"], attrs["params"])


_FUSED = FusedElementwise()
_OPCODE = {"unary": lib.PF_F_UNARY, "binary": lib.PF_F_BINARY,
           "unary_grad": lib.PF_F_UNARY_GRAD}
MAX_REGS = lib.PF_FUSED_REGS
MAX_INPUTS = lib.PF_WALK_MAX_OPS - 1   # the native walk's operands, less the one output


def _elementwise(n):
    return n.kind == "op" and n.op.elementwise is not None and n.specs[0].dtype.is_float and \
        all(s.specs[k].dtype is n.specs[0].dtype for s, k in n.inputs)


def fuse_elementwise(program, protected):
    """Grow trees of elementwise ops whose inner values have one consumer and the same shape,
    and replace each tree of two or more ops by one FusedElementwise node."""
    uses = program.consumers()
    grouped = set()
    for root in reversed(list(program.nodes)):
        if root.id in grouped or not _elementwise(root):
            continue
        shape = root.specs[0].shape
        members = {root.id: root}
        frontier = [root]
        while frontier:
            n = frontier.pop()
            for s, k in n.inputs:
                if s.id in members or s.id in grouped or not _elementwise(s):
                    continue
                if (s.id, k) in protected or len(uses.get((s.id, k), [])) != 1:
                    continue
                if tuple(s.specs[0].shape) != tuple(shape):
                    continue
                members[s.id] = s
                frontier.append(s)
        built = None
        while len(members) >= 2:
            order = [n for n in program.nodes if n.id in members]
            try:
                built = _build_program(order, root)
                break
            except _TooManyInputs:
                # more operands than one native walk takes (a long chain reading many
                # values): leave the deepest member out, to head a tree of its own later
                del members[_deepest(members, root)]
            except _TooManyRegisters:
                break   # the root's subtrees are tried as roots of their own
        if built is None:
            continue
        inputs, instrs, params = built
        fused = PNode(program.new_id(), "op", _FUSED, inputs,
                      {"program": instrs, "params": params}, root.name, root.specs,
                      origin=order)
        program.nodes[program.nodes.index(root)] = fused
        for n in order:
            if n is not root:
                program.nodes.remove(n)
                program.origins[n.name] = ("fused", fused, n)
            grouped.add(n.id)
        for n in order:
            if n is not root:
                # members can still be read for their shape (shape_inputs); it is the root's
                program.replace_uses(n, 0, fused, 0)
        program.origins[root.name] = ("node", fused)
        program.replace_uses(root, 0, fused, 0)
        uses = program.consumers()


def _deepest(members, root):
    """The id of a member farthest from the root (a leaf of the member tree)."""
    depth, frontier = {root.id: 0}, [root]
    while frontier:
        n = frontier.pop()
        for s, _ in n.inputs:
            if s.id in members and s.id not in depth:
                depth[s.id] = depth[n.id] + 1
                frontier.append(s)
    return max(depth, key=depth.get)


def _build_program(order, root):
    """Register-allocate the tree under root: (inputs, program, params). Raises
    _TooManyRegisters or _TooManyInputs when the native kernel could not run it."""
    member_ids = {n.id for n in order}
    inputs, input_index = [], {}
    instrs, params = [], []
    free = list(range(MAX_REGS - 1, -1, -1))

    def need(n):
        # Sethi-Ullman register need, to evaluate the hungrier operand first
        if n.id not in member_ids:
            return 1
        if n.op.elementwise[0] == "unary":
            return need(n.inputs[0][0])
        a, b = (need(s) for s, _ in n.inputs)
        return max(a, b) if a != b else a + 1

    def operand(src):
        s, k = src
        if s.id in member_ids:
            return emit(s)
        key = (s.id, k)
        if key not in input_index:
            input_index[key] = len(inputs)
            inputs.append(src)
        if len(inputs) > MAX_INPUTS:
            raise _TooManyInputs
        if not free:
            raise _TooManyRegisters
        r = free.pop()
        instrs.extend([lib.PF_F_LOAD, r, input_index[key], 0, 0, 0])
        return r

    def emit(n):
        kind, code = n.op.elementwise
        fslot = 0
        if getattr(n.op, "params", ()):
            fslot = len(params)
            params.extend(n.op.param_values(n.attrs))
        if kind == "unary":
            r = operand(n.inputs[0])
            instrs.extend([_OPCODE[kind], r, r, 0, code, fslot])
            return r
        first, second = n.inputs
        swap = need(second[0]) > need(first[0])
        if swap:
            rb = operand(second)
            ra = operand(first)
        else:
            ra = operand(first)
            rb = operand(second)
        instrs.extend([_OPCODE[kind], ra, ra, rb, code, fslot])
        free.append(rb)
        return ra

    r = emit(root)
    instrs.extend([lib.PF_F_STORE, 0, r, 0, 0, 0])
    return inputs, instrs, params


class _TooManyRegisters(Exception):
    pass


class _TooManyInputs(Exception):
    pass


def optimize(program, protected):
    """Run every pass; `protected` values must stay materialised (outputs, fetches)."""
    program.prune()
    eliminate_common(program)
    fold_constants(program)
    program.prune()
    fuse_linear_activation(program)
    fuse_conv_pool(program, protected)
    fuse_elementwise(program, protected)
    program.prune()
