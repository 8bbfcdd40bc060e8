"""Extending pyfront (issue 10 item 9): a custom op with a hand-written gradient (finite
differences, eager == compiled, create_graph, saved and loaded with the op registered and
refused without it) and a custom C kernel compiled here with cffi, registered by name and run
inside a compiled training step."""
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import pyfront as pf
from pyfront.graph.custom import unregister_custom_op
from pyfront.testing import check_grad, subprocess_env


def _cube_backward(ctx, g):
    x = ctx.inputs[0]
    return g * 3.0 * x * x


@pytest.fixture
def cube():
    op = pf.custom_op("test.cube", lambda x: x * x * x, _cube_backward)
    yield op
    unregister_custom_op("test.cube")


@pytest.fixture
def scaled_softsign():
    # attributes, two inputs, a gradient that differs from the forward's own (a surrogate):
    # the op's gradient must be the user's, not the traced ops'
    def forward(x, w, scale=1.0):
        return x / (pf.abs(x) + 1.0) * w * scale

    def backward(ctx, g):
        x, w = ctx.inputs
        s = ctx.attrs["scale"]
        d = pf.abs(x) + 1.0
        return g * w * s / (d * d), pf.sum_to_like(g * x / d * s, w)
    op = pf.custom_op("test.scaled_softsign", forward, backward, inputs=2)
    yield op
    unregister_custom_op("test.scaled_softsign")


def test_custom_op_gradient_is_the_users_and_matches_finite_differences(cube, scaled_softsign,
                                                                       rng):
    x = rng.standard_normal((3, 4))
    w = rng.standard_normal(4)
    check_grad(lambda t: cube(t), x)
    check_grad(lambda t, v: scaled_softsign(t, v, scale=1.5), x, w)
    # second derivatives: the backward is made of ops, so create_graph differentiates it again
    t = pf.tensor(x, requires_grad=True)
    (g,) = pf.grad(cube(t).sum(), [t], create_graph=True)
    (gg,) = pf.grad(g.sum(), [t])
    np.testing.assert_allclose(gg.numpy(), 6 * x)
    # a deliberately wrong backward shows: the op's gradient is the user's rule
    wrong = pf.custom_op("test.wrong", lambda x: x * x, lambda ctx, g: g * 0.0)
    try:
        t = pf.tensor(x, requires_grad=True)
        wrong(t).sum().backward()
        assert not t.grad.numpy().any()
    finally:
        unregister_custom_op("test.wrong")


def test_custom_op_eager_equals_compiled_and_graph_gradients(cube, scaled_softsign, rng):
    x = rng.standard_normal((5, 4)).astype(np.float32)
    w = rng.standard_normal(4).astype(np.float32)

    def fn(a, b):
        return scaled_softsign(cube(a), b, scale=0.5) + 1.0
    eager = fn(pf.tensor(x), pf.tensor(w)).numpy()
    compiled = pf.jit(fn)
    np.testing.assert_allclose(compiled(pf.tensor(x), pf.tensor(w)).numpy(), eager, rtol=1e-6)
    np.testing.assert_allclose(compiled(pf.tensor(x[:2]), pf.tensor(w)).numpy(), eager[:2],
                               rtol=1e-6)
    # gradients in a graph (the compiled backward) equal the tape's
    with pf.Graph() as g:
        a = pf.placeholder("a", (None, 4))
        b = pf.placeholder("b", (4,))
        y = fn(a, b).sum()
        ga, gb = g.gradients(y, [a, b])
        run = g.compile([ga, gb])
    ta, tb = pf.tensor(x, requires_grad=True), pf.tensor(w, requires_grad=True)
    fn(ta, tb).sum().backward()
    got = run.run({"a": x, "b": w})
    np.testing.assert_allclose(got[ga.name], ta.grad.numpy(), rtol=1e-5)
    np.testing.assert_allclose(got[gb.name], tb.grad.numpy(), rtol=1e-5)


def test_custom_op_refuses_bad_definitions(cube):
    with pytest.raises(pf.PyfrontError, match="name must be a new op name.*registered already"):
        pf.custom_op("test.cube", lambda x: x, None)
    with pytest.raises(pf.PyfrontError, match="exactly one of forward .* and kernel"):
        pf.custom_op("test.none")
    with pytest.raises(pf.errors.NativeError, match="no kernel 'no_such_kernel'"):
        pf.custom_op("test.nokernel", kernel="no_such_kernel")
    with pytest.raises(pf.PyfrontError, match="attribute value .* cannot be saved"):
        cube(pf.ones(2), scale=object())


_MODEL = textwrap.dedent("""
    import pyfront as pf

    if REGISTER:
        pf.custom_op("test.cube", lambda x: x * x * x,
                     lambda ctx, g: g * 3.0 * ctx.inputs[0] * ctx.inputs[0])
""")


def test_saved_model_names_the_op_and_loads_only_where_it_is_registered(cube, tmp_path, rng):
    model = pf.nn.Sequential([pf.nn.Dense(3)])
    x = rng.standard_normal((4, 2)).astype(np.float32)
    model(pf.tensor(x))

    class Cubed(pf.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, t):
            return cube(self.inner(t))

    wrapped = Cubed(model)
    want = wrapped(pf.tensor(x)).numpy()
    path = tmp_path / "cubed.pf"
    pf.save(wrapped, path, input_shape=(None, 2))
    assert b"test.cube" in path.read_bytes()
    np.testing.assert_allclose(pf.load(path)(pf.tensor(x)).numpy(), want, rtol=1e-6)
    script = tmp_path / "load.py"
    for register, expect in ((True, "loaded"), (False, "unknown op 'test.cube'")):
        script.write_text(_MODEL.replace("REGISTER", str(register)) + textwrap.dedent("""
            try:
                pf.load(%r)
                print("loaded")
            except pf.ModelFormatError as e:
                print(e)
        """ % str(path)))
        out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                             env=subprocess_env(), timeout=120)
        assert expect in out.stdout, out.stdout + out.stderr
        if not register:
            assert "register" in out.stdout and "pf.custom_op" in out.stdout


_KERNEL_C = r"""
#include "pyfront.h"

static long long calls;
long long cube_calls(void) { return calls; }

/* y = x^3 elementwise; float32 and float64, contiguous */
int cube_kernel(const pf_args *a) {
    if (a->n_in != 1 || a->n_out != 1) return PF_ERR_ARGUMENT;
    const pf_tensor *x = a->inputs[0], *y = a->outputs[0];
    if (x->dtype != y->dtype || (x->dtype != PF_FLOAT32 && x->dtype != PF_FLOAT64))
        return pf_set_error(PF_ERR_DTYPE, "cube_kernel takes float32 or float64");
    int64_t n = 1;
    for (int d = 0; d < x->ndim; d++) n *= x->shape[d];
    if (x->dtype == PF_FLOAT32) {
        const float *s = (const float *)x->data; float *o = (float *)y->data;
        for (int64_t i = 0; i < n; i++) o[i] = s[i] * s[i] * s[i];
    } else {
        const double *s = (const double *)x->data; double *o = (double *)y->data;
        for (int64_t i = 0; i < n; i++) o[i] = s[i] * s[i] * s[i];
    }
    calls++;
    return PF_OK;
}

/* two outputs: y = x^2 and z = x^3, float64, contiguous */
int square_cube_kernel(const pf_args *a) {
    if (a->n_in != 1 || a->n_out != 2) return PF_ERR_ARGUMENT;
    const pf_tensor *x = a->inputs[0];
    if (x->dtype != PF_FLOAT64) return PF_ERR_DTYPE;
    int64_t n = 1;
    for (int d = 0; d < x->ndim; d++) n *= x->shape[d];
    const double *s = (const double *)x->data;
    double *y = (double *)a->outputs[0]->data, *z = (double *)a->outputs[1]->data;
    for (int64_t i = 0; i < n; i++) { y[i] = s[i] * s[i]; z[i] = y[i] * s[i]; }
    return PF_OK;
}
"""


@pytest.fixture(scope="module")
def cube_library(tmp_path_factory):
    cffi = pytest.importorskip("cffi")
    folder = tmp_path_factory.mktemp("cube_kernel")
    ffi = cffi.FFI()
    ffi.cdef("typedef struct pf_args pf_args; int cube_kernel(const pf_args *a); "
             "int square_cube_kernel(const pf_args *a); long long cube_calls(void);")
    ffi.set_source("_pf_test_cube", _KERNEL_C,
                   include_dirs=[pf.backend.cpu.include_dir()])
    ffi.compile(tmpdir=str(folder), verbose=False)
    sys.path.insert(0, str(folder))
    try:
        import _pf_test_cube
    finally:
        sys.path.remove(str(folder))
    pf.register_kernel("test_cube", _pf_test_cube.ffi.addressof(_pf_test_cube.lib,
                                                                 "cube_kernel"))
    pf.register_kernel("test_square_cube", _pf_test_cube.ffi.addressof(_pf_test_cube.lib,
                                                                        "square_cube_kernel"))
    return _pf_test_cube


def test_registered_c_kernel_runs_eagerly_and_in_a_compiled_training_step(cube_library, rng):
    lib = cube_library.lib
    op = pf.custom_op("test.c_cube", kernel="test_cube", backward=_cube_backward)
    try:
        x = rng.standard_normal((3, 2))
        before = lib.cube_calls()
        np.testing.assert_allclose(op(pf.tensor(x)).numpy(), x ** 3)
        assert lib.cube_calls() == before + 1
        check_grad(lambda t: op(t), x)

        def make():
            pf.random.seed(3)
            dense = pf.nn.Dense(1)

            class CubeHead(pf.nn.Module):
                def __init__(self):
                    super().__init__()
                    self.dense = dense

                def forward(self, t):
                    return op(self.dense(t))
            head = CubeHead()
            head(pf.tensor(data))
            return head
        data = rng.standard_normal((8, 2)).astype(np.float32)
        target = (data[:, :1] * 0.3) ** 3
        eager, compiled = make(), make()
        from pyfront.train.step import make_train_step
        losses = {}
        for name, model, jit in (("eager", eager, False), ("compiled", compiled, True)):
            opt = pf.optim.SGD(model.parameters(), lr=0.01)
            step = make_train_step(model, pf.mse, opt, compiled=jit)
            calls = lib.cube_calls()
            with warnings.catch_warnings():
                warnings.simplefilter("error")      # a fallback to eager steps would warn
                losses[name] = [step([data], [target])[0] for _ in range(3)]
            assert lib.cube_calls() >= calls + 3      # the C kernel ran in every step
        np.testing.assert_allclose(losses["compiled"], losses["eager"], rtol=1e-5)
        assert losses["compiled"][-1] < losses["compiled"][0]
        # a registered kernel's own message reaches the user, after the op and kernel names
        with pytest.raises(pf.errors.DTypeError,
                           match=r"test.c_cube.*kernel 'test_cube': cube_kernel takes float32"):
            op(pf.tensor(np.array([1, 2], np.int32)))
        with pytest.raises(pf.errors.NativeError, match="a kernel named 'test_cube' exists"):
            pf.register_kernel("test_cube", cube_library.ffi.addressof(lib, "cube_kernel"))
    finally:
        unregister_custom_op("test.c_cube")


def _sincos_backward(ctx, grads):
    gs, gc = grads                       # zeros where an output got no gradient
    x = ctx.inputs[0]
    return gs * pf.cos(x) - gc * pf.sin(x)


@pytest.fixture
def sincos():
    op = pf.custom_op("test.sincos", lambda x: (pf.sin(x), pf.cos(x)), _sincos_backward,
                      outputs=2)
    yield op
    unregister_custom_op("test.sincos")


def test_custom_op_with_two_outputs_eager_compiled_and_gradients(sincos, rng):
    x = rng.standard_normal((3, 4))
    s, c = sincos(pf.tensor(x))
    np.testing.assert_allclose(s.numpy(), np.sin(x), rtol=1e-12)
    np.testing.assert_allclose(c.numpy(), np.cos(x), rtol=1e-12)
    check_grad(lambda t: sincos(t)[0] * sincos(t)[1] + sincos(t)[1], x)
    # only one output used: the other's gradient comes in as zeros
    check_grad(lambda t: sincos(t)[1] * 2.0, x)

    def fn(t):
        a, b = sincos(t)
        return a * a + b * 3.0, b
    xf = x.astype(np.float32)
    eager = [o.numpy() for o in fn(pf.tensor(xf))]
    compiled = [o.numpy() for o in pf.jit(fn)(pf.tensor(xf))]
    for got, want in zip(compiled, eager):
        np.testing.assert_allclose(got, want, rtol=1e-6)
    t = pf.tensor(xf, requires_grad=True)
    pf.jit(fn)(t)[0].sum().backward()
    np.testing.assert_allclose(t.grad.numpy(), 2 * np.sin(xf) * np.cos(xf) - 3 * np.sin(xf),
                               rtol=1e-5, atol=1e-6)


def test_custom_op_whose_outputs_repeat_or_pass_an_input_through(rng):
    # results that are an input or the same value twice are copied into their own outputs
    op = pf.custom_op("test.passthrough", lambda x: (x, x * 2.0, x * 2.0), None, outputs=3)
    try:
        x = rng.standard_normal((2, 3)).astype(np.float32)
        for run in (op, pf.jit(op)):
            a, b, c = run(pf.tensor(x))
            np.testing.assert_array_equal(a.numpy(), x)
            np.testing.assert_array_equal(b.numpy(), 2 * x)
            np.testing.assert_array_equal(c.numpy(), 2 * x)
    finally:
        unregister_custom_op("test.passthrough")


def test_custom_op_output_count_is_checked(rng):
    with pytest.raises(pf.PyfrontError, match="outputs must be a positive int, got 0"):
        pf.custom_op("test.none_out", lambda x: x, outputs=0)
    op = pf.custom_op("test.one_of_two", lambda x: x * 2.0, outputs=2)
    try:
        with pytest.raises(pf.PyfrontError, match=r"forward must return 2 tensors made with "
                                                  r"pyfront ops from its inputs, got Symbol"):
            op(pf.ones(3))
    finally:
        unregister_custom_op("test.one_of_two")


def test_registered_c_kernel_with_two_outputs(cube_library, rng):
    op = pf.custom_op("test.c_square_cube", kernel="test_square_cube", outputs=2,
                      shape=lambda x: [(x.shape, x.dtype), (x.shape, x.dtype)],
                      backward=lambda ctx, gs: gs[0] * 2.0 * ctx.inputs[0]
                      + gs[1] * 3.0 * ctx.inputs[0] * ctx.inputs[0])
    try:
        x = rng.standard_normal((3, 2))
        y, z = op(pf.tensor(x))
        np.testing.assert_allclose(y.numpy(), x ** 2)
        np.testing.assert_allclose(z.numpy(), x ** 3)
        check_grad(lambda t: op(t)[0] + op(t)[1], x)
        y2, z2 = pf.jit(op)(pf.tensor(x))
        np.testing.assert_allclose(z2.numpy(), x ** 3)
    finally:
        unregister_custom_op("test.c_square_cube")
