"""Every CUDA kernel against the CPU backend (needs a GPU; skipped with the reason elsewhere).

Each case runs the same op on CPU tensors and on GPU copies of them, forward and backward
(gradients of sum(out * w) for a random w), on fresh random inputs, with every array the GPU
allocates for outputs poisoned first (NaN for floats): an element a kernel does not write
shows. Kernels reached only by compiled plans (fused programs, optimizer updates) are called
through the backends directly, with the same descriptors on both sides.
"""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import pyfront as pf
from pyfront import errors
from pyfront.backend import cpu, cuda
from pyfront.dtypes import as_dtype

RTOL, ATOL = 2e-5, 2e-6


def _gpu(t):
    return t.to("cuda")


def _check_same(cpu_value, gpu_value, what):
    assert gpu_value.device.startswith("cuda"), what
    got = gpu_value.cpu().numpy()
    want = cpu_value.numpy()
    assert got.shape == want.shape and got.dtype == want.dtype, what
    if want.dtype.kind == "f":
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=what)
    else:
        np.testing.assert_array_equal(got, want, err_msg=what)


def _compare(fn, arrays, rng, grad=True):
    """fn on CPU tensors and on their GPU copies: outputs and input gradients agree."""
    host = [pf.tensor(a, requires_grad=grad and a.dtype.kind == "f") for a in arrays]
    dev = [pf.tensor(a, device="cuda", requires_grad=grad and a.dtype.kind == "f")
           for a in arrays]
    out_h, out_d = fn(*host), fn(*dev)
    _check_same(out_h, out_d, "forward")
    wrt = [i for i, t in enumerate(host) if t.requires_grad]
    if not wrt or not out_h.dtype.is_float:
        return
    w = rng.standard_normal(out_h.shape).astype(out_h.dtype.np)
    loss_h = (out_h * pf.tensor(w)).sum()
    loss_d = (out_d * pf.tensor(w, device="cuda")).sum()
    grads_h = pf.grad(loss_h, [host[i] for i in wrt])
    grads_d = pf.grad(loss_d, [dev[i] for i in wrt])
    for i, gh, gd in zip(wrt, grads_h, grads_d):
        _check_same(gh, gd, "gradient of input %d" % i)


def _f(rng, *shape):
    return rng.standard_normal(shape).astype(np.float32)


UNARY = {
    "relu": pf.relu, "sigmoid": pf.sigmoid, "tanh": pf.tanh, "exp": pf.exp, "gelu": pf.gelu,
    "silu": pf.silu, "softplus": pf.softplus, "elu": pf.elu, "selu": pf.selu, "mish": pf.mish,
    "hardswish": pf.hardswish, "hardsigmoid": pf.hardsigmoid, "erf": pf.erf, "sin": pf.sin,
    "abs": pf.abs, "neg": pf.neg, "square": pf.square, "softsign": pf.softsign,
    "logsigmoid": pf.logsigmoid, "leaky_relu": lambda x: pf.leaky_relu(x, 0.2),
    "clip": lambda x: pf.clip(x, -0.5, 0.7), "log": lambda x: pf.log(pf.abs(x) + 0.5),
    "sqrt": lambda x: pf.sqrt(pf.abs(x) + 0.1), "pow": lambda x: x ** 3,
    "affine": lambda x: x * 2.5 + 1.0,
}


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_and_its_gradient(name, poisoned, rng):
    _compare(UNARY[name], [_f(rng, 7, 33)], rng)


BINARY = {
    "add": pf.add, "sub": pf.sub, "mul": pf.mul, "div": lambda a, b: a / (pf.abs(b) + 0.5),
    "maximum": pf.maximum, "minimum": pf.minimum,
    "pow": lambda a, b: pf.pow(pf.abs(a) + 0.5, b),
    "where": lambda a, b: pf.where(a > b, a, b * 2.0),
}


@pytest.mark.parametrize("name", sorted(BINARY))
@pytest.mark.parametrize("shapes", [((4, 5), (4, 5)), ((3, 1, 6), (1, 5, 6)), ((5,), (2, 3, 5)),
                                    ((), (4, 3))])
def test_broadcasting_binary_and_its_gradient(name, shapes, poisoned, rng):
    _compare(BINARY[name], [_f(rng, *shapes[0]), _f(rng, *shapes[1])], rng)


def test_comparisons_casts_and_integer_ops(poisoned, rng):
    a, b = _f(rng, 3, 4), _f(rng, 1, 4)
    for fn in (pf.greater, pf.less_equal, pf.equal):
        _compare(fn, [a, b], rng, grad=False)
    ints = rng.integers(-20, 20, (6, 5)).astype(np.int64)
    divisors = rng.integers(1, 7, (6, 5)).astype(np.int64)
    for fn in (pf.add, pf.floor_divide, pf.remainder, pf.mul):
        _compare(fn, [ints, divisors], rng, grad=False)
    _compare(lambda x: x.astype("int32"), [a * 10], rng, grad=False)
    _compare(lambda x: x.astype("float64"), [a], rng)


@pytest.mark.parametrize("case", ["sum0", "sum1", "sum_all", "mean", "max", "min", "prod",
                                  "argmax", "argmin", "keepdims"])
def test_reductions(case, poisoned, rng):
    x = _f(rng, 6, 70, 3)
    fns = {"sum0": lambda t: t.sum(0), "sum1": lambda t: t.sum(1), "sum_all": lambda t: t.sum(),
           "mean": lambda t: t.mean(2), "max": lambda t: pf.max(t, axis=1),
           "min": lambda t: pf.min(t, axis=0),
           "prod": lambda t: pf.prod(t * 0.1 + 1.0, 2), "argmax": lambda t: pf.argmax(t, 1),
           "argmin": lambda t: pf.argmin(t, 2), "keepdims": lambda t: t.sum(1, keepdims=True)}
    _compare(fns[case], [x], rng, grad=case not in ("argmax", "argmin"))


def test_long_row_sum_is_accurate(poisoned, rng):
    _compare(lambda t: t.sum(), [_f(rng, 300001)], rng)


@pytest.mark.parametrize("axis", [-1, 0, 1])
def test_softmax_and_log_softmax(axis, poisoned, rng):
    x = _f(rng, 5, 9, 4) * 3
    _compare(lambda t: pf.softmax(t, axis), [x], rng)
    _compare(lambda t: pf.log_softmax(t, axis), [x], rng)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_and_mse(reduction, poisoned, rng):
    logits = _f(rng, 37, 10) * 2
    labels = rng.integers(0, 10, 37).astype(np.int64)
    labels[3] = -100   # ignored
    _compare(lambda z, y: pf.cross_entropy(z, y, reduction=reduction), [logits, labels], rng)
    _compare(lambda p, t: pf.mse(p, t, reduction=reduction), [_f(rng, 8, 3), _f(rng, 8, 3)], rng)


def test_layout_copies(poisoned, rng):
    x = _f(rng, 4, 6, 5)
    _compare(lambda t: pf.transpose(t, 0, 2) * 1.0, [x], rng)
    _compare(lambda t: pf.permute(t, (1, 2, 0)).reshape(6, 20), [x], rng)
    _compare(lambda t: t[:, 1:5:2, ::-1] * 1.0, [x], rng)
    _compare(lambda a, b: pf.concat([a, b], 1), [x, _f(rng, 4, 2, 5)], rng)
    _compare(lambda t: pf.broadcast_to(t[:, :1], (4, 3, 5)) * 1.0, [x], rng)


def test_gather_scatter_and_embedding(poisoned, rng):
    table = _f(rng, 11, 8)
    # indices are tensors on the data's device (integer inputs: no gradient)
    ids = np.array([3, 0, 3, 10, 7, 3], np.int64)          # repeats add up in the gradient
    _compare(lambda t, i: pf.take(t, i, 0), [table, ids], rng)
    x = _f(rng, 4, 6)
    idx = rng.integers(-6, 6, (4, 3)).astype(np.int64)
    _compare(lambda t, i: pf.take_along_axis(t, i, 1), [x, idx], rng)
    idx2 = rng.integers(0, 6, (4, 3)).astype(np.int64)
    _compare(lambda t, i, s: pf.scatter_add(t, 1, i, s), [x, idx2, _f(rng, 4, 3)], rng)


@pytest.mark.parametrize("case", ["2d", "ta", "tb", "batched", "broadcast"])
def test_matmul_on_cublas(case, poisoned, rng):
    shapes = {"2d": ((33, 17), (17, 9)), "ta": ((17, 33), (17, 9)), "tb": ((33, 17), (9, 17)),
              "batched": ((3, 5, 7), (3, 7, 4)), "broadcast": ((3, 5, 7), (7, 4))}[case]
    kw = {"transpose_a": case == "ta", "transpose_b": case == "tb"}
    _compare(lambda a, b: pf.matmul(a, b, **kw), [_f(rng, *shapes[0]), _f(rng, *shapes[1])], rng)


@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "tanh", "gelu"])
def test_linear_with_bias_and_activation(activation, poisoned, rng):
    _compare(lambda x, w, b: pf.linear(x, w, b, activation=activation),
             [_f(rng, 20, 12), _f(rng, 12, 7), _f(rng, 7)], rng)


def test_dropout_draws_the_cpu_mask_for_the_same_state(poisoned, rng):
    x = _f(rng, 33, 65) + 3.0
    seed = 123456789
    state_h = pf.tensor(np.array([seed, 5], np.int64))
    state_d = pf.tensor(np.array([seed, 5], np.int64), device="cuda")
    y_h = pf.dropout(pf.tensor(x), 0.3, state=state_h)
    y_d = pf.dropout(pf.tensor(x, device="cuda"), 0.3, state=state_d)
    _check_same(y_h, y_d, "dropout")
    assert state_d.cpu().numpy().tolist() == state_h.numpy().tolist() == [seed, 6]
    assert 0.2 < float((y_h.numpy() == 0).mean()) < 0.4


def _descs(backend, arrays):
    bufs = [backend.Buf(a, a.shape, as_dtype(a.dtype)) for a in arrays]
    return bufs, [b.desc() for b in bufs]


def _run_both(gpu, kernel, ins, outs, iattr=(), fattr=()):
    """The kernel on numpy arrays (C library) and on CuPy copies (CUDA, outputs poisoned);
    returns both sides' outputs as numpy arrays."""
    dev_ins = [gpu.asarray(a) for a in ins]
    dev_outs = [gpu.full(a.shape, np.nan, a.dtype) if a.dtype.kind == "f" else gpu.asarray(a)
                for a in outs]
    host_outs = [a.copy() for a in outs]
    _, hi = _descs(cpu, ins)
    _, ho = _descs(cpu, host_outs)
    cpu.run(kernel, hi, ho, iattr, fattr)
    _, di = _descs(cuda, dev_ins)
    _, do = _descs(cuda, dev_outs)
    cuda.run(kernel, di, do, iattr, fattr)
    pf.cuda.synchronize()
    return host_outs, [gpu.asnumpy(a) for a in dev_outs]


def test_fused_elementwise_program(gpu, rng):
    a, b = _f(rng, 4, 1, 6), _f(rng, 1, 5, 6)
    a_b = np.broadcast_to(a, (4, 5, 6))
    b_b = np.broadcast_to(b, (4, 5, 6))
    out = np.zeros((4, 5, 6), np.float32)
    # r0 = a; r1 = b; r2 = r0 * r1; r3 = tanh(r2); r4 = 0.5; r5 = r3 + r4; out0 = r5; out1 = r2
    program = (0, 0, 0, 0, 0, -1, 0, 1, 1, 0, 0, -1, 3, 2, 0, 1, 2, -1, 2, 3, 2, 0, 12, -1,
               1, 4, 0, 0, 0, 0, 3, 5, 3, 4, 0, -1, 5, 0, 5, 0, 0, -1, 5, 0, 2, 1, 0, -1)
    ins_h = [np.ascontiguousarray(a), np.ascontiguousarray(b)]
    # broadcast views: descriptors with zero strides, as the graph compiler emits them
    host, dev = [], []
    for backend, arrays in ((cpu, ins_h), (cuda, [gpu.asarray(x) for x in ins_h])):
        outs = [np.zeros_like(out), np.zeros_like(out)] if backend is cpu else \
            [gpu.full(out.shape, np.nan, np.float32), gpu.full(out.shape, np.nan, np.float32)]
        bufs = [backend.Buf(x, x.shape, pf.float32) for x in arrays]
        ins = [bufs[0].desc((4, 5, 6), (6, 0, 1)), bufs[1].desc((4, 5, 6), (0, 6, 1))]
        obufs = [backend.Buf(o, o.shape, pf.float32) for o in outs]
        backend.run("fused", ins, [o.desc() for o in obufs], program, (0.5,))
        (host if backend is cpu else dev).append(outs)
    pf.cuda.synchronize()
    np.testing.assert_allclose(gpu.asnumpy(dev[0][0]), host[0][0], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(gpu.asnumpy(dev[0][1]), host[0][1], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(host[0][1], a_b * b_b, rtol=1e-6)


@pytest.mark.parametrize("nesterov", [0, 1])
def test_sgd_momentum_update(gpu, rng, nesterov):
    g, p, buf = _f(rng, 50), _f(rng, 50), _f(rng, 50)
    for step in (1.0, 2.0):
        hyper = np.array([0.1, step], np.float64)
        host, dev = _run_both(gpu, "sgd_update", [g, hyper], [p, buf], (nesterov,),
                              (0.9, 0.1, 0.01))
        for h, d in zip(host, dev):
            np.testing.assert_allclose(d, h, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("decoupled", [0, 1])
def test_adam_update(gpu, rng, decoupled):
    g, p = _f(rng, 64), _f(rng, 64)
    m, v = _f(rng, 64) * 0.1, np.abs(_f(rng, 64)) * 0.01
    hyper = np.array([1e-3, 7.0], np.float64)
    host, dev = _run_both(gpu, "adam_update", [g, hyper], [p, m, v], (decoupled,),
                          (0.9, 0.999, 1e-8, 0.01))
    for h, d in zip(host, dev):
        np.testing.assert_allclose(d, h, rtol=1e-5, atol=1e-7)


def test_global_norm_clipping(gpu, rng):
    g1, g2 = _f(rng, 30) * 4, _f(rng, 7, 3)
    acc = np.zeros(1, np.float64)
    host, dev = _run_both(gpu, "grad_sumsq", [g1, g2], [acc], (0,))
    np.testing.assert_allclose(dev[0], host[0], rtol=1e-12)
    host2, dev2 = _run_both(gpu, "clip_by_norm", [host[0], g1], [np.zeros_like(g1)], (), (1.5,))
    np.testing.assert_allclose(dev2[0], host2[0], rtol=1e-6)


def test_random_bits_are_the_cpu_stream(gpu):
    out = np.zeros(1000, np.int64)
    host, dev = _run_both(gpu, "random_bits", [], [out], (987654321, 3, 17))
    np.testing.assert_array_equal(dev[0], host[0])


def test_out_of_range_index_is_an_error_naming_the_kernel(gpu):
    x = gpu.arange(10, dtype=gpu.float32).reshape(1, 5, 2)
    idx = gpu.asarray(np.array([1, 9], np.int64))
    y = gpu.zeros((1, 2, 2), gpu.float32)
    (_, xd), (_, idd), (_, yd) = _descs(cuda, [x]), _descs(cuda, [idx]), _descs(cuda, [y])
    cuda.run("take", xd + idd, yd)
    with pytest.raises(errors.IndexOutOfRange, match="kernel 'take' \\(CUDA\\): index 9 at "
                       "position 1 is out of range for an axis of size 5"):
        pf.cuda.synchronize()
    pf.cuda.synchronize()   # reported once, then cleared


def test_cuda_error_becomes_an_exception_naming_the_kernel(gpu, tmp_path):
    """An illegal address poisons the CUDA context for the whole process: a child shows it."""
    script = textwrap.dedent("""
        import pyfront as pf
        from pyfront.backend import cpu, cuda
        import numpy as np
        cupy = pf.cuda.is_available() and __import__("cupy")
        y = cupy.zeros(1 << 20, cupy.float32)
        desc_y = cuda.Buf(y, y.shape, pf.float32).desc()
        bogus = cpu.Buf(np.zeros(1 << 20, np.float32), (1 << 20,), pf.float32).desc()
        bogus.data = cpu.ffi.cast("void *", 0x10)   # not device memory
        try:
            cuda.run("unary", [bogus], [desc_y], (2,))
            pf.cuda.synchronize()
        except Exception as e:
            print(type(e).__name__, "|", e)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=dict(__import__("os").environ, PYFRONT_DEBUG="1"), timeout=120)
    line = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-2000:]
    assert line.startswith("NativeError | kernel 'unary' (CUDA): "), line
    assert "CUDA error cudaErrorIllegalAddress" in line, line


@pytest.mark.parametrize("case", ["max2x2", "max3s1pad", "avg2x2", "avg3s2pad_exclude", "max1d",
                                  "avg3d"])
def test_pooling_and_its_gradient(case, poisoned, rng):
    fns = {
        "max2x2": (lambda t: pf.max_pool2d(t, 2), (2, 3, 8, 8)),
        "max3s1pad": (lambda t: pf.max_pool2d(t, 3, strides=1, padding="same"), (2, 2, 7, 6)),
        "avg2x2": (lambda t: pf.avg_pool2d(t, 2), (2, 3, 8, 8)),
        "avg3s2pad_exclude": (lambda t: pf.avg_pool2d(t, 3, strides=2, padding=1,
                                                      count_include_pad=False), (1, 2, 9, 7)),
        "max1d": (lambda t: pf.max_pool1d(t, 3, strides=2), (2, 4, 15)),
        "avg3d": (lambda t: pf.avg_pool3d(t, 2), (1, 2, 4, 6, 4)),
    }
    fn, shape = fns[case]
    _compare(fn, [_f(rng, *shape)], rng)


def test_layer_norm_and_its_gradient(poisoned, rng):
    _compare(lambda x, w, b: pf.layer_norm(x, (12,), w, b),
             [_f(rng, 9, 12) * 3 + 1, _f(rng, 12), _f(rng, 12)], rng)
    _compare(lambda x, w, b: pf.layer_norm(x, (4, 5), w, b),
             [_f(rng, 3, 4, 5), _f(rng, 4, 5), _f(rng, 4, 5)], rng)


@pytest.mark.parametrize("shape", [(16, 6), (4, 3, 5, 5)])
def test_batch_norm_training_eval_and_running_statistics(shape, poisoned, rng):
    c = shape[1]
    _compare(lambda x, w, b: pf.batch_norm(x, weight=w, bias=b, training=True),
             [_f(rng, *shape) * 2 + 0.5, _f(rng, c), _f(rng, c)], rng)
    running = {}
    for device in ("cpu", "cuda"):
        rm = pf.tensor(np.zeros(c, np.float32), device=device)
        rv = pf.tensor(np.ones(c, np.float32), device=device)
        x = pf.tensor(_f(np.random.default_rng(5), *shape), device=device)
        pf.batch_norm(x, rm, rv, training=True, momentum=0.3)
        y = pf.batch_norm(x, rm, rv, training=False)
        running[device] = (rm.cpu().numpy(), rv.cpu().numpy(), y.cpu().numpy())
    for got, want in zip(running["cuda"], running["cpu"]):
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("case", ["plain", "stride_pad", "groups_dilation", "relu", "1d", "3d"])
def test_convolution_and_its_gradients(case, poisoned, rng):
    shapes, kw = {
        "plain": (((2, 3, 9, 8), (4, 3, 3, 3), (4,)), {}),
        "stride_pad": (((2, 3, 9, 8), (5, 3, 3, 2), (5,)), {"strides": 2, "padding": "same"}),
        "groups_dilation": (((1, 4, 10, 9), (6, 2, 3, 3), (6,)), {"groups": 2, "dilation": 2}),
        "relu": (((2, 2, 7, 7), (3, 2, 3, 3), (3,)), {"padding": 1, "activation": "relu"}),
        "1d": (((3, 2, 20), (4, 2, 5), (4,)), {"strides": 3}),
        "3d": (((1, 2, 5, 6, 4), (3, 2, 2, 3, 2), (3,)), {}),
    }[case]
    conv = pf.conv3d if len(shapes[0]) == 5 else pf.conv1d if len(shapes[0]) == 3 else pf.conv2d
    _compare(lambda x, w, b: conv(x, w, b, **kw), [_f(rng, *s) for s in shapes], rng)


@pytest.mark.parametrize("centered,momentum", [(0, 0.0), (1, 0.9)])
def test_rmsprop_update(gpu, rng, centered, momentum):
    g, p, sq = _f(rng, 40), _f(rng, 40), np.abs(_f(rng, 40))
    state = [sq] + ([_f(rng, 40) * 0.1] if centered else []) + \
        ([_f(rng, 40)] if momentum else [])
    hyper = np.array([0.01, 3.0], np.float64)
    host, dev = _run_both(gpu, "rmsprop_update", [g, hyper], [p] + state, (centered,),
                          (0.99, 1e-8, 0.01, momentum))
    for h, d in zip(host, dev):
        np.testing.assert_allclose(d, h, rtol=1e-5, atol=1e-7)


def test_adagrad_update(gpu, rng):
    g, p, s = _f(rng, 40), _f(rng, 40), np.abs(_f(rng, 40))
    hyper = np.array([0.1, 4.0], np.float64)
    host, dev = _run_both(gpu, "adagrad_update", [g, hyper], [p, s], (), (0.01, 1e-10, 0.001))
    for h, d in zip(host, dev):
        np.testing.assert_allclose(d, h, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("mode", ["constant", "reflect", "replicate", "circular"])
def test_pad_and_its_gradient(mode, poisoned, rng):
    kw = {"value": 2.5} if mode == "constant" else {}
    _compare(lambda t: pf.pad(t, (1, 2, 2, 1), mode=mode, **kw), [_f(rng, 2, 4, 5)], rng)


@pytest.mark.parametrize("axis", [0, 1, 2])
def test_cumsum_cumprod_and_their_gradients(axis, poisoned, rng):
    x = _f(rng, 3, 5, 4) * 0.5 + 1.0
    _compare(lambda t: pf.cumsum(t, axis), [x], rng)
    _compare(lambda t: pf.cumprod(t, axis), [x], rng)
    _compare(lambda t: pf.cumsum(t, axis), [rng.integers(-9, 9, (3, 5, 4))], rng, grad=False)


@pytest.mark.parametrize("descending", [False, True])
def test_sort_argsort_topk_stable_with_nan(descending, poisoned, rng):
    x = np.round(_f(rng, 3, 17, 4) * 2) / 2          # many ties: stability shows
    x[1, 3, 2] = np.nan
    _compare(lambda t: pf.sort(t, 1, descending=descending)[0], [x], rng, grad=False)
    _compare(lambda t: pf.argsort(t, 1, descending=descending), [x], rng, grad=False)
    finite = _f(rng, 5, 30)
    _compare(lambda t: pf.sort(t, -1, descending=descending)[0], [finite], rng)
    _compare(lambda t: pf.topk(t, 4, largest=descending)[0], [finite], rng)
    ints = rng.integers(-5, 5, (4, 25)).astype(np.int64)
    _compare(lambda t: pf.argsort(t, -1, descending=descending), [ints], rng, grad=False)


def _rnn_case(kind, with_state, masked, reverse, activation, rng, n=5, steps=4, f=3, h=6):
    """(fn over [x, W, U, biases..., states...] -> y, final states flat in one tensor, arrays)"""
    gates = {"lstm": 4, "gru": 3, "simple_rnn": 1}[kind]
    arrays = [_f(rng, n, steps, f), _f(rng, f, gates * h) * 0.5, _f(rng, h, gates * h) * 0.5,
              _f(rng, gates * h) * 0.1] + ([_f(rng, gates * h) * 0.1] if kind == "gru" else [])
    n_weights = len(arrays)
    if with_state:
        arrays += [_f(rng, n, h) for _ in range(2 if kind == "lstm" else 1)]
    mask = None
    if masked:   # right-padded sequences, one of them empty, and a hole
        mask = np.ones((n, steps), bool)
        mask[0, 2:] = mask[1, :] = mask[3, 1] = False
    op = getattr(pf, kind)

    def fn(*ts):
        state = tuple(ts[n_weights:]) or None
        extra = {"activation": activation} if kind == "simple_rnn" else {}
        outs = op(*ts[:n_weights], initial_state=state, mask=mask, reverse=reverse, **extra)
        return pf.concat([pf.reshape(outs[0], (n, -1))] + list(outs[1:]), 1)

    return fn, arrays


@pytest.mark.parametrize("kind,with_state,masked,reverse,activation", [
    ("lstm", False, False, False, None), ("lstm", True, True, True, None),
    ("gru", False, False, False, None), ("gru", True, True, False, None),
    ("gru", False, True, True, None),
    ("simple_rnn", False, False, False, "tanh"), ("simple_rnn", True, True, True, "relu")])
def test_recurrent_sequences_and_their_gradients(kind, with_state, masked, reverse, activation,
                                                 poisoned, rng):
    """The CUDA LSTM/GRU/SimpleRNN kernels (forward and BPTT, masks, reverse, initial states)
    equal the CPU's, gradients of every input included."""
    fn, arrays = _rnn_case(kind, with_state, masked, reverse, activation, rng)
    _compare(fn, arrays, rng)


@pytest.mark.parametrize("kind", ["lstm", "gru", "simple_rnn"])
def test_recurrent_kernels_in_float64_and_without_steps(kind, poisoned, rng):
    fn, arrays = _rnn_case(kind, True, False, False, "tanh", rng)
    _compare(fn, [a.astype(np.float64) for a in arrays], rng)
    fn, arrays = _rnn_case(kind, True, False, False, "tanh", rng, steps=0)
    _compare(fn, arrays, rng)
