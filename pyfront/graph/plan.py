"""From an optimised Program and concrete input shapes to a Plan: a static memory plan (one
arena, buffers reused across the step, elementwise results written in place when their input
dies) and the list of native steps that pf_run_steps executes in one call."""
import numpy as np

from .. import errors
from ..backend import cpu
from ..backend.cpu import Buf, ffi, lib
from ..dtypes import as_dtype
from ..ops import core
from ..ops.core import Spec

__all__ = ["Plan", "build_plan"]

ALIGN = 64
_run_steps = lib.pf_run_steps


class _Ref:
    """What shape rules see during concrete inference: a shape, a dtype, a name."""

    symbolic = False

    def __init__(self, spec, name, kind):
        self.shape, self.dtype, self.name, self.kind = tuple(spec.shape), spec.dtype, name, kind


class Binding:
    """An external buffer whose memory changes between runs (a placeholder): every descriptor
    made from it is remembered so that binding new memory patches them in place."""

    def __init__(self):
        self.descs = []
        self.array = None   # keeps the memory the descriptors point into alive

    def register(self, desc, offset):
        self.descs.append((desc, offset))

    def bind(self, array):
        self.array = array
        base = ffi.cast("char *", ffi.from_buffer(array, require_writable=False))
        for desc, offset in self.descs:
            desc.data = base + offset


class BoundBuf(Buf):
    """A Buf on memory that is rebound at run time (placeholders and their views)."""

    __slots__ = ("binding",)

    def __init__(self, array, shape, dtype, binding, offset=0):
        super().__init__(array, shape, dtype, offset)
        self.binding = binding

    def desc(self, shape=None, strides=None, offset_elems=0):
        d = Buf.desc(self, shape, strides, offset_elems)
        self.binding.register(d, self.offset + offset_elems * self.dtype.itemsize)
        return d


class _DryEmitter:
    """First pass over the ops: learn the scratch memory each one asks for."""


    def __init__(self, node):
        self.node = node
        self.requests = []

    def run(self, kernel, ins, outs, iattr=(), fattr=(), workspace=None):
        a, keep = cpu.new_args(ins, outs, iattr, fattr)
        # sizing checks the arguments: its errors are the first a bad plan meets
        nbytes = cpu.workspace_bytes(kernel, a, "%s (planning): " % self.node.name)
        if nbytes:
            self.requests.append(("workspace", nbytes))

    def scratch(self, shape, dtype):
        dtype = as_dtype(dtype)
        n = int(np.prod(shape)) if shape else 1
        self.requests.append(("scratch", n * dtype.itemsize))
        return Buf(_DUMMY, shape, dtype, check=False)


_DUMMY = np.zeros(ALIGN, np.uint8)


class _PlanEmitter:
    """Second pass: record the ops' kernels as plan steps over the planned memory."""


    def __init__(self, plan):
        self.plan = plan
        self.scratch_bufs = []
        self.workspaces = []

    def run(self, kernel, ins, outs, iattr=(), fattr=(), workspace=None):
        a, keep = cpu.new_args(ins, outs, iattr, fattr)
        nbytes = cpu.workspace_bytes(kernel, a)
        if nbytes:
            ws = self.workspaces.pop(0)
            a.workspace = ws.pointer()
            a.workspace_bytes = nbytes
        self.plan._steps.append((cpu.kernel_id(kernel), a, keep))

    def scratch(self, shape, dtype):
        buf = self.scratch_bufs.pop(0)
        return Buf(buf.array, shape, as_dtype(dtype), buf.offset)


class _Allocator:
    """Best-fit allocation of aligned blocks in one arena, with frees."""

    def __init__(self):
        self.free = []      # sorted [(offset, size)]
        self.top = 0        # end of the highest block in use
        self.peak = 0       # the arena's size: the highest top ever

    def alloc(self, size):
        size = max(ALIGN, (size + ALIGN - 1) // ALIGN * ALIGN)
        best = None
        for i, (off, sz) in enumerate(self.free):
            if sz >= size and (best is None or sz < self.free[best][1]):
                best = i
        if best is not None:
            off, sz = self.free.pop(best)
            if sz > size:
                self.free.append((off + size, sz - size))
                self.free.sort()
            return off, size
        off = self.top
        self.top += size
        self.peak = max(self.peak, self.top)
        return off, size

    def release(self, off, size):
        self.free.append((off, size))
        self.free.sort()
        merged = []
        for o, s in self.free:
            if merged and merged[-1][0] + merged[-1][1] == o:
                merged[-1] = (merged[-1][0], merged[-1][1] + s)
            else:
                merged.append((o, s))
        if merged and merged[-1][0] + merged[-1][1] == self.top:
            self.top = merged[-1][0]
            merged.pop()
        self.free = merged


class Plan:
    """Steps over one arena for one set of input shapes. Not reentrant: one run at a time."""

    def __init__(self):
        self._steps = []
        self.steps = None
        self.n_steps = 0
        self.arena = None
        self.arena_bytes = 0
        self.bufs = {}            # (node id, index) -> Buf
        self.specs = {}           # (node id, index) -> concrete Spec
        self.node_steps = {}      # node id -> (first step, end step)
        self.bindings = {}        # placeholder name -> Binding
        self.node_order = []

    def allocate_arena(self, nbytes):
        """The arena: nbytes aligned to ALIGN (numpy only promises 16)."""
        self.arena_bytes = nbytes
        self.arena = np.empty(nbytes + ALIGN, np.uint8)
        shift = (-self.arena.ctypes.data) % ALIGN
        return self.arena[shift:shift + nbytes]

    def finalize(self):
        self._failed = ffi.new("int64_t *")
        n = len(self._steps)
        self.steps = cpu.new_steps(max(n, 1))
        self._keep = []
        for i, (kid, a, keep) in enumerate(self._steps):
            self.steps[i].kernel = kid
            self.steps[i].args = a[0]
            self._keep.append((a, keep))
        self.n_steps = n

    def bind(self, name, array):
        b = self.bindings[name]
        if b.array is not array:
            b.bind(array)

    def run(self, begin=0, end=None):
        end = self.n_steps if end is None else end
        if begin >= end:
            return
        status = _run_steps(self.steps, begin, end, self._failed)
        if status:
            failed = self._failed[0]
            name = self._step_node(failed)
            cpu.raise_native_error(status, "%s (compiled step %d): " % (name, failed))

    def _step_node(self, step):
        for node in self.node_order:
            lo, hi = self.node_steps.get(node.id, (0, 0))
            if lo <= step < hi:
                return node.name
        return "optimizer update"

    def view(self, key):
        """The current contents of a value as a numpy view (valid until the next run)."""
        b = self.bufs[key]
        spec = self.specs[key]
        if isinstance(b, BoundBuf):
            arr = b.binding.array
            raw = np.frombuffer(arr, np.uint8, count=core.spec_nbytes(spec), offset=b.offset)
            return raw.view(spec.dtype.np).reshape(spec.shape)
        n = core.spec_nbytes(spec)
        raw = b.array.reshape(-1).view(np.uint8) if b.array.dtype != np.uint8 else b.array
        return raw[b.offset:b.offset + n].view(spec.dtype.np).reshape(spec.shape)


def infer_concrete(program, feed_specs):
    """Concrete output specs of every node for the given placeholder specs."""
    specs = {}
    for n in program.nodes:
        if n.kind == "placeholder":
            declared = n.specs[0]
            got = feed_specs[n.name]
            if len(got.shape) != len(declared.shape) or any(
                    d is not None and d != g for d, g in zip(declared.shape, got.shape)):
                raise errors.ShapeError("input '%s' has shape %s but the graph expects %s"
                                        % (n.name, tuple(got.shape),
                                           core.fmt_shape(declared.shape)))
            if got.dtype is not declared.dtype:
                raise errors.DTypeError("input '%s' has dtype %s but the graph expects %s"
                                        % (n.name, got.dtype.name, declared.dtype.name))
            specs[(n.id, 0)] = got
        elif n.kind in ("variable", "constant"):
            specs[(n.id, 0)] = Spec(tuple(n.value.shape), n.value.dtype)
        else:
            refs = [_Ref(specs[(s.id, k)], s.name, s.kind) for s, k in n.inputs]
            out = core.infer(n.op, refs, n.attrs)
            for i, sp in enumerate(out):
                specs[(n.id, i)] = Spec(tuple(sp.shape), sp.dtype)
    return specs


def build_plan(program, feed_specs, keep_alive, updates=()):
    """Plan the memory and the steps.

    keep_alive: values that must survive to the end (outputs, loss, gradients read by
    updates). updates: [(emit function(k, value Buf))] appended after the graph's steps.
    """
    plan = Plan()
    plan.specs = specs = infer_concrete(program, feed_specs)
    plan.node_order = nodes = program.nodes
    roots = storage_roots(nodes)
    last = last_uses(nodes, roots, keep_alive)
    layout = assign_offsets(nodes, specs, roots, last, scratch_needs(nodes, specs))
    arena = plan.allocate_arena(layout.arena_bytes)
    plan.bufs = _make_buffers(plan, nodes, specs, roots, layout.offsets, arena)
    _emit_steps(plan, nodes, layout.scratch, arena, updates)
    plan.finalize()
    for b in plan.bindings.values():
        b.bind(b.array)
    return plan


def storage_roots(nodes):
    """{view value: the value that owns its memory}: views share their source's storage."""
    roots = {}
    for n in nodes:
        if n.kind == "op" and n.op.view:
            src = (n.inputs[0][0].id, n.inputs[0][1])
            roots[(n.id, 0)] = roots.get(src, src)
    return roots


def last_uses(nodes, roots, keep_alive):
    """{storage key: position of the last node that reads it}; keep_alive values live to the
    end (position len(nodes)). Shape-only reads do not keep memory alive."""
    position = {n.id: i for i, n in enumerate(nodes)}
    last = {}
    for n in nodes:
        if n.kind != "op":
            continue
        shape_only = set(n.op.shape_inputs)
        for j, (s, k) in enumerate(n.inputs):
            if j in shape_only:
                continue
            key = roots.get((s.id, k), (s.id, k))
            last[key] = max(last.get(key, -1), position[n.id])
    for key in keep_alive:
        last[roots.get(key, key)] = len(nodes)
    return last


def scratch_needs(nodes, specs):
    """{node id: [(kind, bytes)]}: a dry run of each op's forward records the scratch buffers
    and kernel workspaces it asks for, in order."""
    dry_bufs = {key: Buf(_DUMMY, sp.shape, sp.dtype, check=False) for key, sp in specs.items()}
    needs = {}
    for n in nodes:
        if n.kind != "op" or n.op.view:
            continue
        em = _DryEmitter(n)
        n.op.forward(em, _inputs(n, dry_bufs),
                     [dry_bufs[(n.id, i)] for i in range(len(n.specs))], n.attrs)
        needs[n.id] = em.requests
    return needs


class Layout:
    """Where every planned value lives in the arena. offsets: {value key: (offset, bytes)};
    scratch: {node id: [(offset, bytes, "scratch"|"workspace")]}, free once the node ran."""

    def __init__(self, offsets, scratch, arena_bytes):
        self.offsets, self.scratch, self.arena_bytes = offsets, scratch, arena_bytes


def assign_offsets(nodes, specs, roots, last, needs):
    """Walk the nodes in order: each output takes a block (or, elementwise, the block of an
    input that dies here), scratch is taken and given back around its node, and every value
    is freed after its last use."""
    alloc = _Allocator()
    live = {}              # storage key -> (offset, size) while allocated
    offsets = {}
    node_scratch = {}
    for i, n in enumerate(nodes):
        if n.kind != "op":
            continue
        if not n.op.view:
            for o in range(len(n.specs)):
                key = (n.id, o)
                if key in roots:
                    continue
                donor = _in_place_source(n, o, specs, roots, last, live, i)
                live[key] = live.pop(donor) if donor is not None else \
                    alloc.alloc(core.spec_nbytes(specs[key]))
                offsets[key] = live[key]
            blocks = [alloc.alloc(nbytes) + (kind,) for kind, nbytes in needs.get(n.id, ())]
            for off, sz, _ in blocks:
                alloc.release(off, sz)
            node_scratch[n.id] = blocks
        # release what dies here: inputs last used now, and outputs nobody reads
        for key in [k for k in live if last.get(k, -1) <= i]:
            alloc.release(*live.pop(key))
    return Layout(offsets, node_scratch, max(alloc.peak, ALIGN))


def _make_buffers(plan, nodes, specs, roots, offsets, arena):
    """A Buf per value: placeholders on rebindable memory, variables and constants on their
    tensors, views on their root's memory, everything else on its arena block."""
    bufs = {}
    for n in nodes:
        if n.kind == "placeholder":
            b = Binding()
            plan.bindings[n.name] = b
            sp = specs[(n.id, 0)]
            b.array = np.zeros(max(core.spec_nbytes(sp), 1), np.uint8)
            bufs[(n.id, 0)] = BoundBuf(b.array, sp.shape, sp.dtype, b)
        elif n.kind in ("variable", "constant"):
            t = n.value
            bufs[(n.id, 0)] = Buf(t.numpy(), tuple(t.shape), t.dtype)
        else:
            for o in range(len(n.specs)):
                key = (n.id, o)
                sp = specs[key]
                if key in roots:
                    src = bufs[roots[key]]
                    if isinstance(src, BoundBuf):
                        bufs[key] = BoundBuf(src.array, sp.shape, sp.dtype, src.binding,
                                             src.offset)
                    else:
                        bufs[key] = Buf(src.array, sp.shape, sp.dtype, src.offset)
                else:
                    bufs[key] = Buf(arena, sp.shape, sp.dtype, offsets[key][0])
    return bufs


def _emit_steps(plan, nodes, node_scratch, arena, updates):
    """Record every op's kernels as steps over the planned buffers, then the updates."""
    emitter = _PlanEmitter(plan)
    for n in nodes:
        if n.kind != "op" or n.op.view:
            continue
        first = len(plan._steps)
        blocks = node_scratch.get(n.id, ())
        emitter.scratch_bufs = [Buf(arena, (sz // 4,), as_dtype("int32"), off)
                                for off, sz, kind in blocks if kind == "scratch"]
        emitter.workspaces = [Buf(arena, (sz // 4,), as_dtype("int32"), off)
                              for off, sz, kind in blocks if kind == "workspace"]
        n.op.forward(emitter, _inputs(n, plan.bufs),
                     [plan.bufs[(n.id, i)] for i in range(len(n.specs))], n.attrs)
        plan.node_steps[n.id] = (first, len(plan._steps))
    plan.graph_steps = len(plan._steps)
    for emit in updates:
        emit(emitter, plan.bufs)


def _inputs(n, bufs):
    shape_only = set(n.op.shape_inputs)
    return [None if j in shape_only else bufs[(s.id, k)] for j, (s, k) in enumerate(n.inputs)]


def _in_place_source(n, o, specs, roots, last, live, i):
    """An input whose arena block this elementwise output can take over, or None."""
    if n.op.elementwise is None and n.op.name != "fused_elementwise":
        return None
    out = specs[(n.id, o)]
    for s, k in n.inputs:
        key = roots.get((s.id, k), (s.id, k))
        if key not in live or last.get(key, -1) != i:
            continue
        sp = specs[(s.id, k)]
        if tuple(sp.shape) != tuple(out.shape) or sp.dtype is not out.dtype:
            continue
        # the whole block must be this value (a view of a larger block is not ours to take)
        if core.spec_nbytes(specs[key]) != core.spec_nbytes(out):
            continue
        return key
    return None
