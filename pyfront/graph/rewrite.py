"""Rewrites of a traced graph before it is differentiated: they change which values exist, so
they run on graphs the tracer made (nobody else holds their Symbols), and the gradients are
then built on the rewritten graph.

crop_unpooled_outputs: a convolution whose output only a pooling without padding reads
computes rows and columns that no window covers when the pool's floor leaves them out (a
3x3 convolution of a 13x13 plane gives 11x11, of which a 2x2 pool reads 10x10). The
convolution then reads a slice of its input that yields exactly the rows and columns read:
the forward, the input gradient and the weight gradient all skip the dead ones (the
reference CNN's second convolution: 25 Winograd tiles an image instead of 36; its training
step measured 13.0 -> 10.1 ms for that layer at batch 128). The slice costs one strided copy
forward and one zero-fill and copy backward, so a crop must save at least MIN_SAVED of the
outputs (a 111x111 output before a 2x2 pool, 2%, is left whole)."""
from ..ops import core
from ..ops.conv import conv_padding
from ..ops.shape import _slice
from .symbol import Symbol

__all__ = ["crop_unpooled_outputs"]

# The least share of a convolution's outputs worth cropping: the slice copies the input
# forward and back (three passes over it), a few percent of a convolution's time.
MIN_SAVED = 0.05

_POOLS = {"max_pool%dd" % nd: nd for nd in (1, 2, 3)}
_POOLS.update({"avg_pool%dd" % nd: nd for nd in (1, 2, 3)})


def _rows_read(pool, in_sizes):
    """Per spatial dim, how many leading rows of its input the pool's windows cover, or None
    where the pool pads (its windows then depend on the input's extent)."""
    a = pool.attrs
    if any(tuple(p) != (0, 0) for p in conv_padding(a["padding"], in_sizes, a["pool_size"],
                                                     a["strides"])):
        return None
    out = pool.specs[0].shape[2:]
    return [(o - 1) * s + k for o, s, k in zip(out, a["strides"], a["pool_size"])]


def _consumers(graph):
    uses = {}
    for n in graph.nodes:
        for s, k in n.inputs:
            uses.setdefault((s.id, k), []).append(n)
    return uses


def crop_unpooled_outputs(graph, keep):
    """Crop every convolution whose only reader is a pooling that leaves rows or columns of
    its output unread (see the module's note). keep: Symbols that must stay as they are (the
    graph's outputs and loss). Returns how many convolutions were cropped."""
    kept = {(s.node.id, s.index) for s in keep}
    uses = _consumers(graph)
    cropped = 0
    for conv in list(graph.nodes):
        if conv.kind != "op" or conv.op.name not in ("conv1d", "conv2d", "conv3d") or \
                conv.attrs.get("pool") or (conv.id, 0) in kept:
            continue
        readers = uses.get((conv.id, 0), [])
        if len(readers) != 1 or readers[0].kind != "op" or readers[0].op.name not in _POOLS:
            continue
        pool = readers[0]
        nd = _POOLS[pool.op.name]
        x_node, x_index = conv.inputs[0]
        x_shape = x_node.specs[x_index].shape
        out = conv.specs[0].shape[2:]
        if len(out) != nd or None in out or None in x_shape[2:]:
            continue
        read = _rows_read(pool, list(out))
        if read is None or all(r >= o for r, o in zip(read, out)):
            continue
        kept_outputs = 1.0
        for r, o in zip(read, out):
            kept_outputs *= min(r, o) / o
        if kept_outputs > 1.0 - MIN_SAVED:
            continue            # the slice's copies would cost more than the rows saved
        w_shape = conv.inputs[1][0].specs[conv.inputs[1][1]].shape
        a = conv.attrs
        spans = [d * (k - 1) + 1 for k, d in zip(w_shape[2:], a["dilation"])]
        pads = conv_padding(a["padding"], list(x_shape[2:]), spans, a["strides"])
        slices, new_pads = [(None, None, 1)] * 2, []
        for n, r, o, span, s, (pb, pe) in zip(x_shape[2:], read, out, spans, a["strides"], pads):
            r = min(r, o)
            needed = (r - 1) * s + span - pb       # input rows the first r outputs read
            kept_rows = min(n, needed)
            slices.append((None, kept_rows, 1) if kept_rows < n else (None, None, 1))
            new_pads.append((pb, needed - kept_rows))
        _insert_slice_before(graph, conv, slices)
        conv.attrs = dict(a, padding=tuple(new_pads))
        conv.specs = core.infer(conv.op, [Symbol(graph, s, k) for s, k in conv.inputs],
                                conv.attrs)
        before = pool.specs
        pool.specs = core.infer(pool.op, [Symbol(graph, conv, 0)], pool.attrs)
        if [tuple(s.shape) for s in pool.specs] != [tuple(s.shape) for s in before]:
            raise AssertionError("internal: cropping %s changed %s's output from %s to %s"
                                 % (conv.name, pool.name, before[0].shape, pool.specs[0].shape))
        cropped += 1
        uses = _consumers(graph)
    return cropped


def _insert_slice_before(graph, conv, slices):
    """A slice of conv's input, placed just before conv (creation order is the graph's
    topological order), and conv reading it."""
    x_node, x_index = conv.inputs[0]
    with graph:
        sliced = core.apply(_slice, [Symbol(graph, x_node, x_index)],
                            {"slices": slices, "drop": []})
    node = sliced.node
    graph.nodes.remove(node)
    graph.nodes.insert(graph.nodes.index(conv), node)
    for i, n in enumerate(graph.nodes):
        n.id = i
    conv.inputs = [(node, 0)] + list(conv.inputs[1:])
