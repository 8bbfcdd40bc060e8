"""Symbolic graphs: placeholders, parameters and op nodes, with shapes inferred as they are built.

The same op functions build graphs when given Symbols (ops.core.apply is the one dispatch
point), so model code is written once. A batch dimension may be unknown (None) while building;
graphs are compiled per concrete input shapes.
"""
import threading

from .. import errors
from ..dtypes import as_dtype
from ..ops import core
from ..ops.core import Spec, fmt_shape
from ..ops.methods import OpMethods, in_place_result

__all__ = ["Graph", "Symbol", "GNode", "placeholder", "parameter", "default_graph",
           "set_parameter_factory"]


class GNode:
    """A node: an op applied to inputs, or a source (placeholder, variable, constant)."""

    __slots__ = ("id", "kind", "op", "inputs", "attrs", "name", "specs", "value", "scope")

    def __init__(self, id, kind, op, inputs, attrs, name, specs, value=None, scope=""):
        self.id = id
        self.kind = kind          # "op" | "placeholder" | "variable" | "constant"
        self.op = op              # the Op (kind "op")
        self.inputs = inputs      # [(GNode, output index)]
        self.attrs = attrs
        self.name = name
        self.specs = specs        # output Specs (dims may be None)
        self.value = value        # the Tensor of a variable or constant
        self.scope = scope

    def __repr__(self):
        return "<%s %s %s>" % (self.kind, self.name, [fmt_shape(s.shape) for s in self.specs])


class Symbol(OpMethods):
    """An output of a graph node: shape (None where unknown), dtype, name."""

    __slots__ = ("graph", "node", "index")
    symbolic = True
    requires_grad = False
    _node = None

    def __init__(self, graph, node, index=0):
        self.graph = graph
        self.node = node
        self.index = index

    @property
    def shape(self):
        return self.node.specs[self.index].shape

    @property
    def dtype(self):
        return self.node.specs[self.index].dtype

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def name(self):
        n = self.node.name
        return n if len(self.node.specs) == 1 else "%s:%d" % (n, self.index)

    @property
    def kind(self):
        k = self.node.kind
        return "parameter" if k == "variable" and getattr(self.node.value, "is_parameter", False) \
            else (k if k != "op" else "output of " + self.node.op.name)

    def __repr__(self):
        return "Symbol(%s, shape=%s, dtype=%s)" % (self.name, fmt_shape(self.shape),
                                                   self.dtype.name)

    def _trace_error(self, what):
        raise errors.TraceError(
            "%s of the traced value %s: Python cannot see values while a graph is built, so "
            "this code depends on data; pyfront runs it eagerly instead" % (what, self.name))

    def __bool__(self):
        self._trace_error("bool()")

    def __float__(self):
        self._trace_error("float()")

    def __int__(self):
        self._trace_error("int()")

    def __index__(self):
        self._trace_error("use as an index")

    def numpy(self):
        self._trace_error(".numpy()")

    def item(self):
        self._trace_error(".item()")

    def tolist(self):
        self._trace_error(".tolist()")

    def __setitem__(self, key, value):
        """s[key] = value while a graph is built: from here on s stands for the node of
        ops.shape.setitem (s with the indexed elements replaced; gradients reach value and the
        untouched elements), as Tensor.__setitem__ records an in-place write on the tape.
        Graph inputs, parameters and constants are the caller's memory, which a graph cannot
        write: that is a TraceError, so pf.jit runs such a function eagerly."""
        from ..ops.shape import setitem

        self._in_place(lambda s: setitem(s, key, value), "__setitem__")

    def _in_place(self, fn, name):
        """s.add_(...), s[key] = v and the other in-place methods (ops.methods): from here on
        s stands for the node of fn(s), its dtype kept."""
        if self.node.kind != "op":
            raise errors.TraceError(
                "writing into %s %s (%s): a compiled graph cannot change its caller's tensors; "
                "write into a copy instead (s = s.clone())" % (self.kind, self.name, name))
        out = in_place_result(self, fn(self), name)
        self.node, self.index = out.node, out.index
        return self

    def __len__(self):
        if self.shape and self.shape[0] is not None:
            return self.shape[0]
        self._trace_error("len() of an unknown batch dimension")

    def __array__(self, *a, **k):
        self._trace_error("conversion to a numpy array")

    def __iter__(self):
        if self.shape and self.shape[0] is not None:
            return (self[i] for i in range(self.shape[0]))
        self._trace_error("iteration over an unknown batch dimension")

    def to(self, *args, dtype=None, device=None, non_blocking=False, copy=False):
        """Tensor.to's dtype forms: s.to(dtype), s.to(dtype=...), s.to(other) (other's
        dtype). A graph runs on the device of the tensors it is given, so a device (other
        than through a tensor argument) is a TraceError: pf.jit runs such code eagerly."""
        from ..ops.shape import cast, clone

        for a in args:
            if hasattr(a, "symbolic"):
                found = a.dtype
            elif isinstance(a, str) and (a in ("cpu", "cuda") or a.startswith("cuda:")):
                found, device = None, a
            else:
                found = as_dtype(a)
            if found is not None:
                if dtype is not None:
                    raise TypeError("to: dtype given twice (%r and %r)" % (found, dtype))
                dtype = found
        if device is not None:
            self._trace_error(".to(%r)" % (device,))
        out = self if dtype is None or as_dtype(dtype) is self.dtype else cast(self, dtype)
        return clone(out) if copy and out is self else out

    def detach(self):
        """The same value, through which no gradient flows (as Tensor.detach())."""
        from ..ops.shape import stop_gradient

        return stop_gradient(self)


_local = threading.local()

_make_parameter = None      # make(name, shape, init, dtype) -> a trainable tensor with memory


def set_parameter_factory(make):
    """Install how Graph.parameter makes its tensor: make(name, shape, init, dtype) returns a
    trainable tensor with memory. pyfront.nn installs its Parameter when it is imported."""
    global _make_parameter
    _make_parameter = make


def default_graph():
    stack = getattr(_local, "graphs", None)
    if not stack:
        raise errors.PyfrontError("no graph: use `with pf.Graph() as g:` or g.placeholder(...)")
    return stack[-1]


class Graph:
    """A symbolic graph: build with placeholders, parameters and ops; compile to run."""

    def __init__(self, name="graph"):
        self.name = name
        self.nodes = []                 # creation order is a topological order
        self.placeholders = {}          # name -> GNode
        self._variables = {}            # id(tensor) -> GNode (the node holds the tensor)
        self._constants = {}            # id(tensor) -> GNode
        # A builder above the graph that wants to see every op added (pf.nn.Input's functional
        # model build): the graph calls recorder.record_op(op, inputs, attrs, outputs).
        self.recorder = None
        self._names = {}

    # ---- context ----
    def __enter__(self):
        stack = getattr(_local, "graphs", None)
        if stack is None:
            stack = _local.graphs = []
        stack.append(self)
        return self

    def __exit__(self, *exc):
        _local.graphs.pop()
        return False

    # ---- naming ----
    def _unique(self, base):
        n = self._names.get(base, 0)
        self._names[base] = n + 1
        return base if n == 0 else "%s_%d" % (base, n)

    def _new(self, kind, op, inputs, attrs, base_name, specs, value=None):
        scope = core.current_scope()
        name = self._unique("%s/%s" % (scope, base_name) if scope else base_name)
        node = GNode(len(self.nodes), kind, op, inputs, attrs, name, specs, value, scope)
        self.nodes.append(node)
        return node

    # ---- sources ----
    def placeholder(self, name, shape, dtype="float32"):
        """An input fed at run time; a None dim (the batch) is fixed when the graph runs."""
        if name in self.placeholders:
            raise errors.PyfrontError("graph %s already has a placeholder named %r"
                                      % (self.name, name))
        shape = tuple(None if d is None or d == -1 else int(d) for d in shape)
        node = GNode(len(self.nodes), "placeholder", None, [], {}, name,
                     [Spec(shape, as_dtype(dtype))])
        self._names[name] = self._names.get(name, 0) + 1
        self.nodes.append(node)
        self.placeholders[name] = node
        return Symbol(self, node)

    def parameter(self, name, shape, init="glorot_uniform", dtype="float32"):
        """A trainable parameter created in this graph (a pyfront.nn.Parameter, made by the
        factory pyfront.nn installs: the graph knows parameters only as tensors)."""
        if _make_parameter is None:
            raise errors.PyfrontError("Graph.parameter(%r) makes a pyfront.nn.Parameter: "
                                      "import pyfront.nn first" % (name,))
        return self.variable(_make_parameter(name, shape, init, dtype))

    def variable(self, tensor):
        """The node for a tensor that lives outside the graph (a parameter or a buffer)."""
        node = self._variables.get(id(tensor))
        if node is None:
            base = tensor.name or "variable"
            node = GNode(len(self.nodes), "variable", None, [], {}, self._unique(base),
                         [Spec(tuple(tensor.shape), tensor.dtype)], tensor)
            self.nodes.append(node)
            self._variables[id(tensor)] = node
        return Symbol(self, node)

    def constant(self, tensor):
        """A node for a tensor whose value is fixed into the graph (one node per tensor)."""
        node = self._constants.get(id(tensor))
        if node is None:
            node = self._new("constant", None, [], {}, "constant",
                             [Spec(tuple(tensor.shape), tensor.dtype)], tensor)
            self._constants[id(tensor)] = node
        return Symbol(self, node)

    # ---- ops ----
    def _as_symbol(self, x, op, i):
        if x.symbolic:
            if x.graph is not self:
                raise errors.PyfrontError(
                    "%s: input %d belongs to graph %s, not %s (values cannot cross graphs)"
                    % (op.name, i, x.graph.name, self.name))
            return x
        if getattr(x, "is_parameter", False) or x.requires_grad or i in op.mutates:
            return self.variable(x)
        return self.constant(x)

    def add_node(self, op, inputs, attrs):
        """The graph side of ops.core.apply: check shapes now, add the node, return Symbols."""
        syms = [self._as_symbol(x, op, i) for i, x in enumerate(inputs)]
        specs = core.infer(op, syms, attrs)
        node = self._new("op", op, [(s.node, s.index) for s in syms], dict(attrs), op.name,
                         list(specs))
        out = [Symbol(self, node, i) for i in range(len(specs))]
        if self.recorder is not None:
            self.recorder.record_op(op, syms, attrs, out)
        return out[0] if op.n_outputs == 1 else tuple(out)

    # ---- lookups ----
    def node(self, name):
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError("graph %s has no node %r" % (self.name, name))

    def symbol(self, name):
        base, _, idx = name.partition(":")
        return Symbol(self, self.node(base), int(idx) if idx else 0)

    def node_names(self):
        return [n.name for n in self.nodes]

    # ---- autodiff ----
    def gradients(self, y, xs, grad_y=None):
        """Symbols for d(y)/d(x) for each x in xs, built into this graph with the ops' rules."""
        from .autodiff import gradients

        return gradients(self, y, xs, grad_y)

    # ---- compile / export ----
    def compile(self, outputs=None, loss=None, optimizer=None, params=None, inputs=None):
        """An Executor for the outputs (and, with loss and optimizer, for training steps)."""
        from .executor import Executor

        return Executor(self, outputs=outputs, loss=loss, optimizer=optimizer, params=params,
                        inputs=inputs)

    def to_dot(self, outputs=None):
        from .export import to_dot

        return to_dot(self, outputs)

    def save_svg(self, path, outputs=None):
        from .export import save_svg

        return save_svg(self, path, outputs)

    def __repr__(self):
        return "<Graph %s: %d nodes, placeholders %s>" % (self.name, len(self.nodes),
                                                          list(self.placeholders))


def upstream_ids(nodes):
    """Ids of the given nodes and of every node they read from (graph or program nodes)."""
    seen, stack = set(), list(nodes)
    while stack:
        n = stack.pop()
        if n.id not in seen:
            seen.add(n.id)
            stack.extend(i for i, _ in n.inputs)
    return seen


def numbered_names(base, n):
    """Placeholder names for n inputs of one kind: base alone, or base_0, base_1, ...; every
    tracer (pf.jit, training steps, saving) names a graph's inputs this way."""
    return [base] if n == 1 else ["%s_%d" % (base, i) for i in range(n)]


def placeholder(name, shape, dtype="float32"):
    """A placeholder in the current graph (`with pf.Graph() as g:`)."""
    return default_graph().placeholder(name, shape, dtype)


def parameter(name, shape, init="glorot_uniform", dtype="float32"):
    """A trainable parameter in the current graph."""
    return default_graph().parameter(name, shape, init, dtype)


def concrete(specs):
    return all(None not in s.shape for s in specs)

