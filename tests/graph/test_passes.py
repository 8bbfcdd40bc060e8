"""The optimisation passes one by one on small graphs, with asserted node counts: dead-node
removal, common-subexpression elimination, constant folding, dense + activation fusion and
elementwise fusion (register pressure, the native operand limit, long chains); then their
order in optimize()."""
import numpy as np
import pytest

import pyfront as pf
from pyfront import errors
from pyfront.backend import cpu
from pyfront.backend.cpu import lib
from pyfront.graph import passes
from pyfront.graph.passes import Program, optimize
from pyfront.ops.dropout import new_state


def _ops(program):
    return [n.op.name for n in program.nodes if n.kind == "op"]


def _program(outputs):
    g = outputs[0].graph
    return Program(g, outputs)


def _fused(program):
    return [n for n in program.nodes if n.kind == "op" and n.op.name == "fused_elementwise"]


def _registers(node):
    """Registers a fused program writes (LOAD, UNARY, BINARY, UNARY_GRAD destinations)."""
    words = node.attrs["program"]
    return {words[i + 1] for i in range(0, len(words), lib.PF_FUSED_WORDS)
            if words[i] != lib.PF_F_STORE}


def _compiled(outputs, feeds):
    exe = outputs[0].graph.compile(outputs=outputs)
    got = exe.run(feeds)
    return exe, [got[o.name] for o in outputs]


# ---------------------------------------------------------------------------------------------
# dead-node removal

def test_only_what_the_roots_need_enters_the_program_and_prune_drops_what_dies_later():
    g = pf.Graph()
    with g:
        x = pf.placeholder("x", (None, 4))
        unused = pf.placeholder("unused", (None, 4))
        pf.exp(unused) + pf.sigmoid(x)            # a dead branch
        a = pf.tanh(x)
        b = pf.tanh(x)
        out = a * 2.0
    program = _program([out])
    assert _ops(program) == ["tanh", "mul"]
    assert [n.name for n in program.nodes if n.kind == "placeholder"] == ["x"]
    program.roots = [(next(n for n in program.nodes if n.name == a.node.name), 0)]
    program.prune()                               # the root moved: mul and its constant die
    assert _ops(program) == ["tanh"] and len(program.nodes) == 2
    assert b.node.name not in [n.name for n in program.nodes]


# ---------------------------------------------------------------------------------------------
# common subexpressions

def test_equal_applications_merge_and_their_consumers_follow():
    g = pf.Graph()
    with g:
        x = pf.placeholder("x", (None, 4))
        out = pf.tanh(pf.exp(x)) + pf.tanh(pf.exp(x))    # exp twice, then tanh twice
    program = _program([out])
    assert _ops(program) == ["exp", "tanh", "exp", "tanh", "add"]
    passes.eliminate_common(program)
    assert _ops(program) == ["exp", "tanh", "add"]
    add = program.nodes[-1]
    assert add.inputs[0] == add.inputs[1]
    xb = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    _, (got,) = _compiled([out], {"x": xb})
    np.testing.assert_allclose(got, 2 * np.tanh(np.exp(xb)), rtol=1e-6)


def test_different_attributes_or_state_keep_applications_apart():
    g = pf.Graph()
    with g:
        x = pf.placeholder("x", (None, 4))
        state = new_state(seed=3)
        a = pf.leaky_relu(x, 0.1) + pf.leaky_relu(x, 0.2)
        d = pf.dropout(x, 0.5, state=state) + pf.dropout(x, 0.5, state=state)   # stateful
    program = _program([a, d])
    passes.eliminate_common(program)
    assert _ops(program).count("leaky_relu") == 2 and _ops(program).count("dropout") == 2


# ---------------------------------------------------------------------------------------------
# constant folding

def test_ops_on_constants_run_once_at_compile_time():
    g = pf.Graph()
    with g:
        x = pf.placeholder("x", (None, 3))
        c = g.constant(pf.tensor(np.array([0.0, 1.0, 2.0], np.float32)))
        out = x * (pf.exp(c) * 0.5)
    program = _program([out])
    assert _ops(program) == ["exp", "mul", "mul"]
    passes.fold_constants(program)
    assert _ops(program) == ["mul"]
    folded = program.nodes[-1].inputs[1][0]
    assert folded.kind == "constant"
    np.testing.assert_allclose(folded.value.numpy(), np.exp([0.0, 1.0, 2.0]) * 0.5, rtol=1e-6)
    program.prune()                               # the constants folding consumed are dead
    assert sum(n.kind == "constant" for n in program.nodes) == 1


def test_shape_only_inputs_fold_when_their_shape_is_known():
    for batch, folds in ((4, True), (None, False)):
        g = pf.Graph()
        with g:
            x = pf.placeholder("x", (batch, 3))
            ones = pf.expand_like(g.constant(pf.tensor(np.float32(1.0))), x)   # x's shape only
            out = x + ones
        program = _program([out])
        passes.fold_constants(program)
        assert ("expand_like" not in _ops(program)) is folds, batch


# ---------------------------------------------------------------------------------------------
# dense + activation

def test_dense_takes_its_activation_only_when_it_is_the_only_consumer():
    g = pf.Graph()
    with g:
        x = pf.placeholder("x", (None, 5))
        k = g.constant(pf.tensor(np.random.default_rng(1).standard_normal((5, 3))
                                 .astype(np.float32)))
        alone = pf.leaky_relu(pf.linear(x, k), 0.3)
        shared = pf.linear(x, k * 2.0)
        both = pf.relu(shared) + shared           # the pre-activation is read twice
    program = _program([alone, both])
    passes.fold_constants(program)
    passes.fuse_linear_activation(program)
    assert _ops(program) == ["linear", "linear", "relu", "add"]
    fused = program.nodes[[n.kind for n in program.nodes].index("op")]
    assert fused.attrs["activation"] == "leaky_relu" and fused.attrs["alpha"] == 0.3
    assert program.origins[alone.node.name] == ("node", fused)


# ---------------------------------------------------------------------------------------------
# elementwise fusion

def test_a_chain_becomes_one_native_program_and_stops_at_protected_or_shared_values():
    g = pf.Graph()
    with g:
        x = pf.placeholder("x", (None, 6))
        shared = pf.exp(x)                        # two consumers: stays materialised
        fetched = pf.tanh(shared)                 # an output: protected
        out = pf.sigmoid(fetched) * 3.0 + pf.sin(shared)
    program = _program([out, fetched])
    passes.fold_constants(program)
    passes.fuse_elementwise(program, {(n.id, k) for n, k in program.roots})
    assert _ops(program) == ["exp", "tanh", "fused_elementwise"]
    (fused,) = _fused(program)
    assert [s.name for s, _ in fused.inputs if s.kind == "op"] == [fetched.node.name,
                                                                    shared.node.name]
    xb = np.random.default_rng(2).standard_normal((4, 6)).astype(np.float32)
    _, (got, got_fetched) = _compiled([out, fetched], {"x": xb})
    np.testing.assert_allclose(got, 3 / (1 + np.exp(-np.tanh(np.exp(xb)))) +
                               np.sin(np.exp(xb)), rtol=1e-5)
    np.testing.assert_allclose(got_fetched, np.tanh(np.exp(xb)), rtol=1e-6)


def test_smaller_values_and_integer_ops_stay_outside_a_fused_program():
    g = pf.Graph()
    with g:
        x = pf.placeholder("x", (None, 6))
        row = pf.exp(pf.placeholder("r", (None, 1)))      # broadcast: another shape
        out = pf.tanh(x * row) - x
        labels = pf.placeholder("labels", (None,), "int64")
        counts = (labels + 1) * 2                         # integer: not fusable
    program = _program([out, counts])
    passes.fuse_elementwise(program, set())
    assert _ops(program) == ["exp", "fused_elementwise", "add", "mul"]


def _tree(x, depth, leaf):
    """A balanced tree of adds and maximums over 2**depth leaves: leaf(x, i)."""
    level = [leaf(x, i) for i in range(2 ** depth)]
    d = 0
    while len(level) > 1:
        op = pf.add if d % 2 == 0 else pf.maximum
        level = [op(level[i], level[i + 1]) for i in range(0, len(level), 2)]
        d += 1
    return level[0]


def _leaf(x, i):
    return pf.affine(x, 0.05 * (i + 1), 0.01 * i)


@pytest.mark.parametrize("depth", [7, 8])
def test_register_pressure_is_met_by_evaluation_order_and_splits_past_the_register_file(depth):
    g = pf.Graph()
    with g:
        x = pf.placeholder("x", (None, 5))
        out = _tree(x, depth, _leaf)
    exe = g.compile(outputs=[out])
    fused = _fused(exe.program)
    # a tree of depth d needs d + 1 registers when the hungrier operand goes first
    for node in fused:
        assert max(_registers(node)) < lib.PF_FUSED_REGS
    if depth + 1 <= lib.PF_FUSED_REGS:
        assert _ops(exe.program) == ["fused_elementwise"]
        assert len(_registers(fused[0])) == depth + 1
    else:
        assert len(fused) >= 2
    xb = np.random.default_rng(3).standard_normal((4, 5)).astype(np.float32)
    with pf.no_grad():
        want = _tree(pf.tensor(xb), depth, _leaf).numpy()
    np.testing.assert_allclose(exe.run({"x": xb})[out.name], want, rtol=1e-5, atol=1e-6)


def test_the_operand_limit_is_the_native_walkers():
    assert passes.MAX_INPUTS == lib.PF_WALK_MAX_OPS - 1 == 11
    rng = np.random.default_rng(4)
    out = np.empty((3, 4), np.float32)

    def run_sum(n_inputs):
        arrays = [rng.standard_normal((3, 4)).astype(np.float32) for _ in range(n_inputs)]
        program = [lib.PF_F_LOAD, 0, 0, 0, 0, 0]
        for i in range(1, n_inputs):
            program += [lib.PF_F_LOAD, 1, i, 0, 0, 0,
                        lib.PF_F_BINARY, 0, 0, 1, lib.PF_B_ADD, 0]
        program += [lib.PF_F_STORE, 0, 0, 0, 0, 0]
        bufs = [cpu.Buf(a, a.shape, pf.float32) for a in arrays + [out]]
        cpu.run("fused", [b.desc() for b in bufs[:-1]], [bufs[-1].desc()], program, (0.0,))
        return sum(arrays)

    want = run_sum(passes.MAX_INPUTS)
    np.testing.assert_allclose(out, want, rtol=1e-5)
    with pytest.raises(errors.NativeError, match="bad operand counts 12 in / 1 out"):
        run_sum(passes.MAX_INPUTS + 1)


@pytest.mark.parametrize("n_inputs", [11, 12, 30])
def test_sums_of_many_inputs_fuse_up_to_the_operand_limit(n_inputs):
    g = pf.Graph()
    with g:
        xs = [pf.placeholder("x%d" % i, (None, 4)) for i in range(n_inputs)]
        out = xs[0]
        for x in xs[1:]:
            out = pf.tanh(out + x) if n_inputs > 12 else out + x
    rng = np.random.default_rng(5)
    feeds = {"x%d" % i: rng.standard_normal((2, 4)).astype(np.float32) for i in range(n_inputs)}
    exe, (got,) = _compiled([out], feeds)
    fused = _fused(exe.program)
    assert all(len(n.inputs) <= passes.MAX_INPUTS for n in fused)
    if n_inputs == 11:
        assert _ops(exe.program) == ["fused_elementwise"] and len(fused[0].inputs) == 11
    elif n_inputs == 12:
        # the first sum is left out of the program and read as its input
        assert _ops(exe.program) == ["add", "fused_elementwise"]
        assert len(fused[0].inputs) == 11
    else:
        assert 3 <= len(fused) <= 4 and len(_ops(exe.program)) <= 6
    want = feeds["x0"]
    for i in range(1, n_inputs):
        want = np.tanh(want + feeds["x%d" % i]) if n_inputs > 12 else want + feeds["x%d" % i]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_long_chain_of_unary_ops_is_one_program_with_one_register(dtype):
    steps = [pf.tanh, pf.sin, lambda h: pf.affine(h, 1.5, -0.25), pf.sigmoid, pf.exp,
             lambda h: pf.clip(h, 0.2, 2.0), pf.log, pf.gelu]
    g = pf.Graph()
    with g:
        x = pf.placeholder("x", (None, 7), dtype)
        h = x
        for i in range(40):
            h = steps[i % len(steps)](h)
    exe = g.compile(outputs=[h])
    (fused,) = _fused(exe.program)
    assert _ops(exe.program) == ["fused_elementwise"] and len(fused.origin) == 40
    assert _registers(fused) == {0}
    xb = np.random.default_rng(6).standard_normal((3, 7)).astype(dtype)
    with pf.no_grad():
        t = pf.tensor(xb)
        for i in range(40):
            t = steps[i % len(steps)](t)
    np.testing.assert_allclose(exe.run({"x": xb})[h.name], t.numpy(),
                               rtol=1e-5 if dtype == "float32" else 1e-12)


# ---------------------------------------------------------------------------------------------
# the order of the passes

def test_optimize_dedups_before_folding_and_folds_before_fusing():
    g = pf.Graph()
    with g:
        x = pf.placeholder("x", (None, 4))
        c = g.constant(pf.tensor(np.full((4,), 0.5, np.float32)))
        scale = pf.exp(c) + pf.exp(c)             # CSE, then one fold: a single constant
        two = g.constant(pf.tensor(np.float32(2.0)))
        out = pf.exp(x * two) + pf.tanh(x * two) * scale  # x * two twice: CSE, then shared
        pf.sigmoid(out)                                 # dead
    program = _program([out])
    assert len(_ops(program)) == 9
    optimize(program, {(n.id, k) for n, k in program.roots})
    # the shared product is materialised once; the rest is one program reading it and the
    # folded constant
    assert _ops(program) == ["mul", "fused_elementwise"]
    (fused,) = _fused(program)
    consts = [s for s, _ in fused.inputs if s.kind == "constant"]
    assert len(consts) == 1
    np.testing.assert_allclose(consts[0].value.numpy(), np.full(4, 2 * np.exp(0.5)), rtol=1e-6)
    assert len(program.nodes) == len(set(upstream(program)))
    xb = np.random.default_rng(7).standard_normal((2, 4)).astype(np.float32)
    _, (got,) = _compiled([out], {"x": xb})
    np.testing.assert_allclose(got, np.exp(2 * xb) + np.tanh(2 * xb) * 2 * np.exp(0.5),
                               rtol=1e-5)


def upstream(program):
    from pyfront.graph.symbol import upstream_ids

    return upstream_ids(n for n, _ in program.roots)
