"""Symbolic graphs: build with placeholders and the same ops as eager code, compile to a plan
that runs each step in one native call, export to DOT/SVG, save with the model format."""
from .executor import Executor  # noqa: F401
from .symbol import Graph, GNode, Symbol, default_graph, parameter, placeholder  # noqa: F401
from .jit import jit  # noqa: F401,E402
