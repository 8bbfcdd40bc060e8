"""Graphs to and from JSON for the model format: ops by registered name, attributes as JSON
values, parameters by their state-dict names, constants as tensors stored beside them.
Nothing in the JSON is ever imported or executed: op names are looked up in the op registry."""
from .. import errors
from ..dtypes import as_dtype
from ..ops import core
from .symbol import Graph, Symbol, upstream_ids

__all__ = ["graph_to_json", "graph_from_json", "GRAPH_FORMAT"]

GRAPH_FORMAT = 1


def attrs_to_json(v):
    """Attribute values as JSON values (tuples become lists)."""
    if isinstance(v, (tuple, list)):
        return [attrs_to_json(x) for x in v]
    if isinstance(v, dict):
        return {str(k): attrs_to_json(x) for k, x in v.items()}
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    raise errors.PyfrontError("attribute value %r cannot be saved" % (v,))


def attrs_from_json(v):
    """The inverse of attrs_to_json: lists back to tuples, as ops build them."""
    if isinstance(v, list):
        return tuple(attrs_from_json(x) for x in v)
    if isinstance(v, dict):
        return {k: attrs_from_json(x) for k, x in v.items()}
    return v


def graph_to_json(graph, inputs, outputs, tensor_names):
    """JSON-able description of the nodes the outputs need.

    tensor_names: {id(tensor): state-dict name} for variables. Returns (description,
    {constant name: ndarray}).
    """
    needed = upstream_ids(s.node for s in outputs)
    index, nodes, constants = {}, [], {}
    for n in graph.nodes:
        if n.id not in needed and not (n.kind == "placeholder" and
                                       any(s.node is n for s in inputs)):
            continue
        spec = n.specs[0]
        entry = {"kind": n.kind, "name": n.name}
        if n.kind == "placeholder":
            entry.update(shape=[d for d in spec.shape], dtype=spec.dtype.name)
        elif n.kind == "variable":
            name = tensor_names.get(id(n.value))
            if name is None:
                raise errors.PyfrontError("the graph uses tensor %s, which is not a parameter or "
                                          "buffer of the model" % (n.value.name or n.name))
            entry["tensor"] = name
        elif n.kind == "constant":
            key = "__constant__.%d" % len(constants)
            constants[key] = n.value.numpy()
            entry["tensor"] = key
        else:
            if core.REGISTRY.get(n.op.name) is not n.op:
                raise errors.PyfrontError("op %r is not a registered op and cannot be saved"
                                          % n.op.name)
            entry.update(op=n.op.name, inputs=[[index[s.id], k] for s, k in n.inputs],
                         attrs=attrs_to_json(n.attrs))
        index[n.id] = len(nodes)
        nodes.append(entry)
    desc = {"format": GRAPH_FORMAT,
            "nodes": nodes,
            "inputs": [index[s.node.id] for s in inputs],
            "outputs": [[index[s.node.id], s.index] for s in outputs]}
    return desc, constants


def graph_from_json(desc, tensors):
    """Rebuild (graph, input symbols, output symbols); tensors maps names to Tensors."""
    if not isinstance(desc, dict) or desc.get("format") != GRAPH_FORMAT:
        raise errors.ModelFormatError("unsupported graph description (format %r)"
                                      % (desc.get("format") if isinstance(desc, dict) else desc,))
    g = Graph("loaded")
    syms = []
    try:
        for entry in desc["nodes"]:
            kind = entry["kind"]
            if kind == "placeholder":
                s = g.placeholder(str(entry["name"]), entry["shape"], as_dtype(entry["dtype"]))
            elif kind in ("variable", "constant"):
                t = tensors.get(entry["tensor"])
                if t is None:
                    raise errors.ModelFormatError("the graph names tensor %r, which the file "
                                                  "does not hold" % entry["tensor"])
                s = g.variable(t) if kind == "variable" else g.constant(t)
            elif kind == "op":
                op = core.get_op(entry["op"])
                ins = []
                for i, k in entry["inputs"]:
                    if not (0 <= i < len(syms)):
                        raise errors.ModelFormatError("node %r reads node %d, which does not "
                                                      "come before it" % (entry["name"], i))
                    src = syms[i]
                    ins.append(src[k] if isinstance(src, tuple) else src)
                s = g.add_node(op, ins, attrs_from_json(entry.get("attrs", {})))
            else:
                raise errors.ModelFormatError("unknown node kind %r" % (kind,))
            syms.append(s)
        inputs = [syms[i] for i in desc["inputs"]]
        outputs = []
        for i, k in desc["outputs"]:
            s = syms[i]
            outputs.append(s[k] if isinstance(s, tuple) else s)
    except (KeyError, TypeError, IndexError, ValueError) as e:
        if isinstance(e, errors.PyfrontError):
            raise
        raise errors.ModelFormatError("malformed graph description: %s: %s"
                                      % (type(e).__name__, e)) from None
    for s in inputs + outputs:
        if not isinstance(s, Symbol):
            raise errors.ModelFormatError("malformed graph description: bad input/output")
    return g, inputs, outputs
