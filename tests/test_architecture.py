"""The architecture test (in the spirit of ArchUnit): every import between pyfront's packages
points down the layering of DESIGN.md.

Each module's imports are read with `ast` (module-level and function-level ones alike; relative
imports resolved; `from pkg import name` counts as importing the submodule pkg.name where there
is one), from pyfront/**, spark/** (installed as pyfront.spark) and jvm-bridge/python/**
(installed as pyfront.jvm). Imports by name at run time (importlib with a string: the pyfront
façade's lazy attributes) are not seen.

The layers, bottom to top; a module may import its own package and the layers below it, never
a layer above it nor another package of its own layer:

    foundation      errors, dtypes, random: leaf modules that import no other pyfront module
    native          pyfront._native, the cffi extension (the C library's one header)
    backend         backend/ (cpu: kernels through the native library)
    autograd        autograd.py (the tape; ops reach it, it reaches no op)
    ops             ops/ (every op defined once)
    tensor          tensor.py (memory, shape, dtype; also the storage counter plans check)
    package         the pyfront package itself: __init__.py imports down to the tensor and
                    loads everything else lazily by name (the pf.* façade); pyfront.__version__;
                    the façade's namespace modules beside it (cuda.py, linalg.py: pf.cuda,
                    pf.linalg), which gather names from below
    tensor users    testing.py (gradient checks), data/ (datasets and loaders: numpy in and
                    out), special.py (torch.special's names for ops): small utilities that
                    may use tensors, never models
    losses/optim    losses.py, optim/
    graph           graph/ (build, passes, plan, executor, tracing of functions)
    nn              nn/ (layers, models, the compiled module)
    io              io/ (the model format)
    onnx            onnx/ (the second door: exports models and .pf files, so above io)
    train           train/ (fit loop, callbacks, metrics, the training step)
    spark, jvm      spark/ as pyfront.spark, jvm-bridge/python as pyfront.jvm

Within ops/ the gradients of elementwise, shape and reduction ops are written with each
other's ops: those three modules import each other inside functions, a benign cycle resolved
at call time (OPS_CYCLES; the test fails on any other import cycle inside ops/). Between
packages the layering rules cycles out.

KNOWN_VIOLATIONS lists the upward edges that remain, each with the reason; the test fails on
any edge not listed AND on a listed edge that no longer exists, so the list only shrinks.
"""
import ast
import functools
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (package folder, the name it is installed as)
SOURCES = [("pyfront", "pyfront"), ("spark", "pyfront.spark"),
           ("jvm-bridge/python", "pyfront.jvm")]

LAYERS = [
    ("foundation", ["pyfront.errors", "pyfront.dtypes", "pyfront.random"]),
    ("native", ["pyfront._native"]),
    ("backend", ["pyfront.backend"]),
    ("autograd", ["pyfront.autograd"]),
    ("ops", ["pyfront.ops"]),
    ("tensor", ["pyfront.tensor"]),
    ("package", ["pyfront"]),
    ("tensor users", ["pyfront.testing", "pyfront.data", "pyfront.special"]),
    ("losses/optim", ["pyfront.losses", "pyfront.optim"]),
    ("graph", ["pyfront.graph"]),
    ("nn", ["pyfront.nn"]),
    ("io", ["pyfront.io"]),
    ("onnx", ["pyfront.onnx"]),
    ("train", ["pyfront.train"]),
    ("spark, jvm", ["pyfront.spark", "pyfront.jvm"]),
]

KNOWN_VIOLATIONS = {
}


# the import cycles allowed inside ops/: gradient rules written with each other's ops
OPS_CYCLES = [{"pyfront.ops.elementwise", "pyfront.ops.reduction", "pyfront.ops.shape"}]


def unit_of(module):
    """(rank of its layer, its package as named in LAYERS) for a pyfront module."""
    best = None
    for rank, (_, units) in enumerate(LAYERS):
        for unit in units:
            if (module == unit or module.startswith(unit + ".")) and \
                    (best is None or len(unit) > len(best[1])):
                best = (rank, unit)
    if best is None:
        raise AssertionError("%s is in no layer: place it in LAYERS" % module)
    return best


def discover():
    """{module name: (path, is_package)} for every Python file of the three source trees."""
    modules = {}
    for folder, name in SOURCES:
        base = os.path.join(ROOT, folder)
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if d != "__pycache__"]
            rel = os.path.relpath(dirpath, base)
            package = name if rel == "." else name + "." + rel.replace(os.sep, ".")
            for f in filenames:
                if not f.endswith(".py"):
                    continue
                if f == "__init__.py":
                    modules[package] = (os.path.join(dirpath, f), True)
                else:
                    modules[package + "." + f[:-3]] = (os.path.join(dirpath, f), False)
    return modules


@functools.lru_cache(maxsize=None)
def _import_nodes(source):
    return [n for n in ast.walk(ast.parse(source)) if isinstance(n, (ast.Import, ast.ImportFrom))]


def imports_of(module, source, is_package, known):
    """The pyfront modules that `source` (the text of module `module`) imports."""
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in _import_nodes(source):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1])
                base = base + "." + node.module if node.module else base
            else:
                base = node.module
            for a in node.names:
                sub = base + "." + a.name
                found.add(sub if sub in known else base)
    return {m for m in found if m == "pyfront" or m.startswith("pyfront.")}


def upward_edges(modules, sources=None):
    """Sorted (importer, imported) edges that point up the layers or across to another
    package of the same layer. sources: {module: text} overriding the files (self-test)."""
    bad = set()
    for module, (path, is_package) in modules.items():
        if sources is not None and module in sources:
            text = sources[module]
        else:
            with open(path, encoding="utf-8") as f:
                text = f.read()
        rank, unit = unit_of(module)
        for target in imports_of(module, text, is_package, modules):
            t_rank, t_unit = unit_of(target)
            if t_unit != unit and t_rank >= rank:
                bad.add((module, target))
    return sorted(bad)


def cycles(modules, package):
    """The import cycles (strongly connected sets of two or more modules) inside package."""
    inside = {m: p for m, p in modules.items() if m.startswith(package + ".")}
    graph = {}
    for module, (path, is_package) in inside.items():
        with open(path, encoding="utf-8") as f:
            graph[module] = imports_of(module, f.read(), is_package, modules) & set(inside)
    index, low, stack, found = {}, {}, [], []

    def visit(v):           # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(component)

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_module_is_in_a_layer():
    for module in discover():
        unit_of(module)


def _layer(module):
    return LAYERS[unit_of(module)[0]][0]


def test_imports_point_down_the_layers():
    edges = set(upward_edges(discover()))
    new = sorted(edges - set(KNOWN_VIOLATIONS))
    gone = sorted(set(KNOWN_VIOLATIONS) - edges)     # fixed: the list only shrinks
    msg = []
    if new:
        msg.append("imports that point up the layers (or across to another package of the "
                   "same layer), see the layers in tests/test_architecture.py:\n  " +
                   "\n  ".join("%s (%s) -> %s (%s)" % (a, _layer(a), b, _layer(b))
                                for a, b in new))
    if gone:
        msg.append("KNOWN_VIOLATIONS lists edges that no longer exist: remove them:\n  " +
                   "\n  ".join("%s -> %s" % e for e in gone))
    assert not msg, "\n".join(msg)


def test_facade_namespaces_sit_in_the_package_layer():
    # pf.linalg gathers ops' functions under torch.linalg's names: a façade over the ops layer
    for module in ("pyfront.linalg", "pyfront.cuda"):
        assert unit_of(module) == unit_of("pyfront"), module


def test_the_only_import_cycle_in_ops_is_the_documented_one():
    assert sorted(map(sorted, cycles(discover(), "pyfront.ops"))) == \
        sorted(map(sorted, OPS_CYCLES))


def _edges_with(planted):
    """upward_edges over the real modules plus planted {module: source} (existing modules'
    text replaced; a name ending in __init__ is planted as that package)."""
    modules = discover()
    sources = {}
    for name, text in planted.items():
        is_package = name.endswith(".__init__")
        name = name[:-len(".__init__")] if is_package else name
        modules[name] = (modules.get(name, ("",))[0], is_package)
        sources[name] = text
    return upward_edges(modules, sources)


def test_the_checker_sees_a_planted_upward_import():
    planted = "pyfront.graph.planted"
    # a function-level relative import
    edges = _edges_with({planted: "import numpy\n\n\ndef late():\n    from ..nn import module\n"})
    assert (planted, "pyfront.nn.module") in edges
    # an absolute module-level import
    assert (planted, "pyfront.train.api") in _edges_with({planted: "import pyfront.train.api\n"})
    # in a package's __init__, level 1 is the package itself
    edges = _edges_with({"pyfront.graph.__init__": "from .symbol import Graph\n"
                                                   "from ..io import model\n"})
    assert ("pyfront.graph", "pyfront.io.model") in edges
    assert not any(e[0] == "pyfront.graph" and e[1].startswith("pyfront.graph.") for e in edges)
    # the same layer, another package: sideways is refused too
    edges = _edges_with({"pyfront.spark.planted": "from ..jvm import protocol\n"})
    assert ("pyfront.spark.planted", "pyfront.jvm.protocol") in edges
    # down the layers is fine, and so the real tree plus it shows only the known edges
    edges = _edges_with({planted: "from ..ops import core\nfrom ..tensor import Tensor\n"})
    assert set(edges) == set(KNOWN_VIOLATIONS)


@pytest.mark.parametrize("module, text, is_package, expected", [
    ("pyfront.nn.conv", "from ..ops import conv as c", False, {"pyfront.ops.conv"}),
    ("pyfront.nn", "from . import init", True, {"pyfront.nn.init"}),
    ("pyfront.io.model", "from .. import __version__, autograd", False,
     {"pyfront", "pyfront.autograd"}),
    ("pyfront.spark.ml.estimator", "from ...nn.module import layer_class", False,
     {"pyfront.nn.module"}),
    ("pyfront.jvm.worker", "import numpy\nfrom pyfront.io import model", False,
     {"pyfront.io.model"}),
])
def test_relative_imports_resolve(module, text, is_package, expected):
    assert imports_of(module, text, is_package, discover()) == expected


def test_the_native_abi_is_one_header_and_the_others_are_private():
    # cffi reads native/include/pyfront.h alone; the kernel files' shared headers live beside
    # their sources, say they are not the ABI, and the ABI header includes none of them
    import glob

    include = os.path.join(ROOT, "native", "include")
    assert sorted(os.listdir(include)) == ["pyfront.h"]
    public = open(os.path.join(include, "pyfront.h")).read()
    private = glob.glob(os.path.join(ROOT, "native", "src", "*.h")) + \
        glob.glob(os.path.join(ROOT, "native", "cuda", "*.cuh"))
    assert private
    for path in private:
        name = os.path.basename(path)
        head = " ".join(open(path).read(600).replace("*", " ").split())   # comment unwrapped
        assert "Not part of the ABI" in head, name
        assert '#include "%s"' % name not in public, name
    build = open(os.path.join(ROOT, "native", "build.py")).read()
    assert 'HEADER = os.path.join(ROOT, "include", "pyfront.h")' in build
    assert build.count("ffibuilder.cdef(") == 1 and "ffibuilder.cdef(header_cdef(HEADER))" in build
