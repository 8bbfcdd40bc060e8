"""Pictures of graphs: DOT text always, SVG/PNG through the graphviz `dot` program when it is
installed."""
import html
import shutil
import subprocess

from .. import errors
from ..ops.core import fmt_shape
from .symbol import upstream_ids

__all__ = ["to_dot", "save_svg", "render"]

_COLORS = {"placeholder": "#d0e8ff", "variable": "#fff2c0", "constant": "#eeeeee",
           "op": "#ffffff"}


def _nodes_for(graph, outputs):
    if not outputs:
        return graph.nodes
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    needed = upstream_ids(s.node for s in outputs)
    return [n for n in graph.nodes if n.id in needed]


def to_dot(graph, outputs=None, title=None, cluster_layers=False):
    """The graph as Graphviz DOT: one box per node with its op, name and output shapes;
    with cluster_layers, the nodes of each layer drawn inside a box named after it."""
    lines = ["digraph %s {" % _quote(title or graph.name),
             "  rankdir=TB; node [shape=box, style=\"rounded,filled\", fontname=Helvetica, "
             "fontsize=10]; edge [fontsize=9];"]
    nodes = _nodes_for(graph, outputs)
    clusters = {}
    for n in nodes:
        what = n.op.name if n.kind == "op" else n.kind
        shapes = ", ".join(fmt_shape(s.shape) for s in n.specs)
        label = "<<b>%s</b><br/>%s<br/><font color=\"#555555\">%s %s</font>>" % (
            html.escape(what), html.escape(n.name), html.escape(shapes),
            html.escape(n.specs[0].dtype.name))
        line = "  n%d [label=%s, fillcolor=\"%s\"];" % (n.id, label, _COLORS[n.kind])
        layer = n.scope.split("/")[-1] if cluster_layers and n.scope else None
        if layer is None and cluster_layers and n.kind == "variable" and "/" in n.name:
            layer = n.name.split("/")[0]
        if layer:
            clusters.setdefault(layer, []).append(line)
        else:
            lines.append(line)
    for i, (layer, members) in enumerate(clusters.items()):
        lines.append("  subgraph cluster_%d { label=%s; style=\"rounded,dashed\"; "
                     "fontname=Helvetica;" % (i, _quote(layer)))
        lines.extend("  " + m for m in members)
        lines.append("  }")
    for n in nodes:
        for j, (s, k) in enumerate(n.inputs):
            shape_only = n.kind == "op" and j in n.op.shape_inputs
            style = " [style=dashed]" if shape_only else ""
            lines.append("  n%d -> n%d%s;" % (s.id, n.id, style))
    lines.append("}")
    return "\n".join(lines) + "\n"


def _quote(s):
    return "\"%s\"" % str(s).replace("\\", "\\\\").replace("\"", "\\\"")


def render(dot_text, path, fmt=None):
    """Render DOT text to a file with Graphviz's dot (svg, png, pdf by the file's suffix)."""
    exe = shutil.which("dot")
    if exe is None:
        raise errors.PyfrontError("rendering needs Graphviz's `dot` program (apt-get install "
                                  "graphviz); the DOT text is available from to_dot()")
    fmt = fmt or str(path).rsplit(".", 1)[-1]
    proc = subprocess.run([exe, "-T" + fmt, "-o", str(path)], input=dot_text.encode(),
                          capture_output=True, timeout=60)
    if proc.returncode != 0:
        raise errors.PyfrontError("dot failed: %s" % proc.stderr.decode(errors="replace"))
    return path


def save_svg(graph, path, outputs=None):
    return render(to_dot(graph, outputs), path, "svg")
