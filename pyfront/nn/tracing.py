"""Tracing a model into a graph: the model's forward in eval mode on placeholders with an
unknown batch dimension. One module serves every reader of a model's graph: saving (signature
and stored graph), pictures of the model, ONNX export, Spark and the JVM bridge."""
import numpy as np

from .. import autograd, errors
from ..dtypes import as_dtype
from ..graph.jit import flatten_outputs
from ..ops import core
from ..graph.symbol import Graph, numbered_names

__all__ = ["unwrap", "input_specs", "trace_inference_graph", "model_to_dot", "plot_model"]


def unwrap(model):
    """The module behind a hybridized model (tracing traces the module itself)."""
    inner = model.__dict__.get("module")
    return inner if getattr(model, "is_hybridized", False) and inner is not None else model


def _with_batch(shape, seen_rank):
    """shape with None for its batch dim. A shape may come with the batch (its first entry is
    None, or it has the rank of the inputs the model has seen) or without it, as Keras'
    input_shape (and pf.nn.Input, summary and SparkTrainer) take it."""
    if shape and (shape[0] is None or len(shape) == seen_rank):
        return (None,) + shape[1:]
    return (None,) + shape


def input_specs(model, input_shapes=None, example_inputs=None):
    """[(shape with None for the batch, dtype)] per model input, from (in this order) example
    inputs (which also build an unbuilt model), input shapes (with or without the batch, see
    _with_batch; one shape or a list), the inputs the model has seen, or the signature of a model pf.load
    rebuilt from its graph."""
    if example_inputs is not None:
        from ..ops.core import as_operand

        arrays = list(example_inputs) if isinstance(example_inputs, (list, tuple)) \
            else [example_inputs]
        if model.input_spec is None:          # build the parameters from the examples
            was_training = model.training
            model.eval()
            try:
                with autograd.no_grad():
                    model(*[as_operand(a) for a in arrays])
            finally:
                model.train(was_training)
        return [((None,) + tuple(a.shape[1:]),
                 a.dtype if hasattr(a, "symbolic") else as_dtype(np.asarray(a).dtype))
                for a in arrays]
    if input_shapes is not None:
        shapes = [input_shapes] if isinstance(input_shapes[0], (int, type(None))) \
            else list(input_shapes)
        seen = model.input_spec or [None] * len(shapes)
        specs = [(_with_batch(tuple(s), spec and len(spec[0])), as_dtype("float32"))
                 for s, spec in zip(shapes, seen)]
        if model.input_spec is None and all(d is not None for s, _ in specs for d in s[1:]):
            # an unbuilt model: one sample of zeros gives its parameters their shapes
            examples = [np.zeros((1,) + s[1:], dtype.np) for s, dtype in specs]
            return input_specs(model, example_inputs=examples)
        return specs
    if model.input_spec is not None:
        return [((None,) + tuple(shape[1:]), dtype or as_dtype("float32"))
                for shape, dtype in model.input_spec]
    signature = getattr(model, "signature", None)
    if isinstance(signature, dict) and signature.get("inputs"):
        return [(tuple(None if d == -1 else d for d in i["shape"]), as_dtype(i["dtype"]))
                for i in signature["inputs"]]
    raise errors.PyfrontError(
        "%s has not seen an input yet: call it once (or pass input_shape=) so that its "
        "parameters have shapes" % model.name)


def trace_inference_graph(model, specs):
    """(graph, input symbols, output symbols): model's forward in eval mode, without
    gradients, on placeholders shaped by specs (from input_specs)."""
    g = Graph(model.name)
    names = getattr(model, "input_names", None) or numbered_names("input", len(specs))
    syms = [g.placeholder(n, shape, dtype) for n, (shape, dtype) in zip(names, specs)]
    was_training = model.training
    model.eval()
    try:
        with autograd.no_grad(), core.tracing(g):
            out = model(*syms)
    finally:
        model.train(was_training)
    leaves, _ = flatten_outputs(out)
    return g, syms, leaves


def model_to_dot(model, input_shape=None):
    """A model's inference graph (traced with an unknown batch) as DOT, grouped by layer."""
    from ..graph.export import to_dot

    model = unwrap(model)
    g, _, outs = trace_inference_graph(model, input_specs(model, input_shape))
    return to_dot(g, outs, title=model.name, cluster_layers=True)


def plot_model(model, path, input_shape=None):
    """Draw a model's graph to path (.svg, .png or .pdf; .dot writes the DOT text itself).
    Rendering needs Graphviz's dot program."""
    from ..graph.export import render

    dot = model_to_dot(model, input_shape)
    if str(path).endswith(".dot"):
        with open(path, "w") as f:
            f.write(dot)
        return path
    return render(dot, path)
