"""The recurrent ops (lstm, gru, simple_rnn): parity with PyTorch's cells in float32, finite
differences in float64 with and without masks, masked batches against sequences run alone,
reversed runs, thread-count invariance, and argument validation in Python and in C."""
import numpy as np
import pytest

import pyfront as pf
from pyfront.backend import cpu
from pyfront.ops import recurrent as rnn
from pyfront.testing import check_grad

torch = pytest.importorskip("torch")

KINDS = ["lstm", "gru", "simple_rnn"]
TORCH = {"lstm": lambda f, h, **k: torch.nn.LSTM(f, h, **k),
         "gru": lambda f, h, **k: torch.nn.GRU(f, h, **k),
         "simple_rnn": lambda f, h, **k: torch.nn.RNN(f, h, **k)}


def run(kind, x, w, initial_state=None, mask=None, reverse=False, activation="tanh"):
    """(outputs, final states...) of one of our ops with weights w (a dict)."""
    base = [x, w["kernel"], w["recurrent_kernel"], w["bias"]]
    if kind == "lstm":
        return pf.lstm(*base, initial_state=initial_state, mask=mask, reverse=reverse)
    if kind == "gru":
        return pf.gru(*base, w["recurrent_bias"], initial_state=initial_state, mask=mask,
                      reverse=reverse)
    return pf.simple_rnn(*base, initial_state=initial_state, mask=mask, reverse=reverse,
                         activation=activation)


def random_weights(kind, f, h, rng, dtype="float64", scale=0.5):
    g = {"lstm": 4, "gru": 3, "simple_rnn": 1}[kind]
    w = {"kernel": rng.standard_normal((f, g * h)) * scale,
         "recurrent_kernel": rng.standard_normal((h, g * h)) * scale,
         "bias": rng.standard_normal(g * h) * 0.1}
    if kind == "gru":
        w["recurrent_bias"] = rng.standard_normal(g * h) * 0.1
    return {k: v.astype(dtype) for k, v in w.items()}


def torch_weights(kind, module, suffix="_l0"):
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    return rnn.rnn_weights_from_torch(kind, *(getattr(module, n + suffix).detach().numpy()
                                              for n in names))


@pytest.mark.parametrize("kind", KINDS)
def test_forward_and_backward_match_torch(kind):
    torch.manual_seed(0)
    n, t, f, h = 5, 7, 4, 6
    module = TORCH[kind](f, h, batch_first=True)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, t, f)).astype(np.float32)
    h0 = rng.standard_normal((n, h)).astype(np.float32)
    c0 = rng.standard_normal((n, h)).astype(np.float32)
    gy = rng.standard_normal((n, t, h)).astype(np.float32)
    gh = rng.standard_normal((n, h)).astype(np.float32)
    gc = rng.standard_normal((n, h)).astype(np.float32)

    xt = torch.tensor(x, requires_grad=True)
    h0t = torch.tensor(h0[None], requires_grad=True)
    c0t = torch.tensor(c0[None], requires_grad=True)
    if kind == "lstm":
        yt, (hT, cT) = module(xt, (h0t, c0t))
        loss = (yt * torch.tensor(gy)).sum() + (hT[0] * torch.tensor(gh)).sum() + \
            (cT[0] * torch.tensor(gc)).sum()
    else:
        yt, hT = module(xt, h0t)
        loss = (yt * torch.tensor(gy)).sum() + (hT[0] * torch.tensor(gh)).sum()
    loss.backward()

    w = {k: pf.tensor(v, requires_grad=True) for k, v in torch_weights(kind, module).items()}
    X = pf.tensor(x, requires_grad=True)
    H0, C0 = pf.tensor(h0, requires_grad=True), pf.tensor(c0, requires_grad=True)
    out = run(kind, X, w, (H0, C0) if kind == "lstm" else H0)
    ours = (out[0] * pf.tensor(gy)).sum() + (out[1] * pf.tensor(gh)).sum()
    if kind == "lstm":
        ours = ours + (out[2] * pf.tensor(gc)).sum()
    ours.backward()

    tol = dict(rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out[0].numpy(), yt.detach().numpy(), **tol)
    np.testing.assert_allclose(out[1].numpy(), hT[0].detach().numpy(), **tol)
    if kind == "lstm":
        np.testing.assert_allclose(out[2].numpy(), cT[0].detach().numpy(), **tol)
        np.testing.assert_allclose(C0.grad.numpy(), c0t.grad[0].numpy(), **tol)
    np.testing.assert_allclose(X.grad.numpy(), xt.grad.numpy(), **tol)
    np.testing.assert_allclose(H0.grad.numpy(), h0t.grad[0].numpy(), **tol)
    np.testing.assert_allclose(w["kernel"].grad.numpy(), module.weight_ih_l0.grad.numpy().T,
                               **tol)
    np.testing.assert_allclose(w["recurrent_kernel"].grad.numpy(),
                               module.weight_hh_l0.grad.numpy().T, **tol)
    # PyTorch's two biases receive the same gradient; ours is their sum (GRU: kept apart)
    np.testing.assert_allclose(w["bias"].grad.numpy(), module.bias_ih_l0.grad.numpy(), **tol)
    if kind == "gru":
        np.testing.assert_allclose(w["recurrent_bias"].grad.numpy(),
                                   module.bias_hh_l0.grad.numpy(), **tol)


@pytest.mark.parametrize("kind", KINDS)
def test_reverse_matches_torch_backward_direction(kind):
    torch.manual_seed(1)
    n, t, f, h = 3, 6, 3, 4
    module = TORCH[kind](f, h, batch_first=True, bidirectional=True)
    x = np.random.default_rng(1).standard_normal((n, t, f)).astype(np.float32)
    with torch.no_grad():
        yt, _ = module(torch.tensor(x))
    w = torch_weights(kind, module, "_l0_reverse")
    out = run(kind, pf.tensor(x), w, reverse=True)
    np.testing.assert_allclose(out[0].numpy(), yt[:, :, h:].numpy(), rtol=1e-4, atol=1e-5)


def test_simple_rnn_relu_matches_torch():
    torch.manual_seed(2)
    module = torch.nn.RNN(3, 5, batch_first=True, nonlinearity="relu")
    x = np.random.default_rng(2).standard_normal((4, 6, 3)).astype(np.float32)
    xt = torch.tensor(x, requires_grad=True)
    yt, _ = module(xt)
    yt.sum().backward()
    X = pf.tensor(x, requires_grad=True)
    out = run("simple_rnn", X, torch_weights("simple_rnn", module), activation="relu")
    out[0].sum().backward()
    np.testing.assert_allclose(out[0].numpy(), yt.detach().numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(X.grad.numpy(), xt.grad.numpy(), rtol=1e-4, atol=1e-5)


def _grad_case(kind, masked, reverse=False, activation="tanh"):
    rng = np.random.default_rng(3)
    n, t, f, h = 3, 4, 2, 3
    w = random_weights(kind, f, h, rng)
    x = rng.standard_normal((n, t, f))
    h0 = rng.standard_normal((n, h)) * 0.5
    c0 = rng.standard_normal((n, h)) * 0.5
    mask = np.array([[1, 1, 1, 1], [1, 1, 0, 0], [0, 1, 1, 0]], np.float64) if masked else None
    names = list(w)

    def fn(x, h0, c0, *ws):
        state = (h0, c0) if kind == "lstm" else h0
        return run(kind, x, dict(zip(names, ws)), state, mask, reverse, activation)

    return fn, [x, h0, c0] + [w[k] for k in names]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("masked", [False, True], ids=["dense", "masked"])
def test_gradients_match_finite_differences(kind, masked):
    fn, arrays = _grad_case(kind, masked)
    wrt = [i for i in range(len(arrays)) if not (kind != "lstm" and i == 2)]
    check_grad(fn, *arrays, wrt=wrt, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_gradients_reversed_and_masked(kind):
    fn, arrays = _grad_case(kind, True, reverse=True)
    wrt = [i for i in range(len(arrays)) if not (kind != "lstm" and i == 2)]
    check_grad(fn, *arrays, wrt=wrt, atol=1e-6, rtol=1e-5)


def test_relu_gradients_match_finite_differences():
    fn, arrays = _grad_case("simple_rnn", True, activation="relu")
    check_grad(fn, *arrays, wrt=[0, 1, 3, 4, 5], atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_masked_batch_equals_each_sequence_alone(kind, reverse):
    """Right-padded sequences of lengths 5, 2, 4, 1: with the mask, every output step and every
    final state (and gradient) equals running that sequence alone at its own length."""
    rng = np.random.default_rng(4)
    lengths = [5, 2, 4, 1]
    n, t, f, h = len(lengths), max(lengths), 3, 4
    w = random_weights(kind, f, h, rng, "float64")
    x = rng.standard_normal((n, t, f))
    mask = (np.arange(t)[None, :] < np.array(lengths)[:, None]).astype(np.int64)
    x[mask == 0] = 7.0   # padding garbage must not leak in
    gy = rng.standard_normal((n, t, h))

    wt = {k: pf.tensor(v, requires_grad=True) for k, v in w.items()}
    X = pf.tensor(x, requires_grad=True)
    out = run(kind, X, wt, mask=mask, reverse=reverse)
    ((out[0] * pf.tensor(gy)).sum() + out[1].sum()).backward()
    assert np.all(out[0].numpy()[mask == 0] == 0)

    grads = {k: np.zeros_like(v) for k, v in w.items()}
    for i, length in enumerate(lengths):
        wi = {k: pf.tensor(v, requires_grad=True) for k, v in w.items()}
        xi = pf.tensor(x[i:i + 1, :length].copy(), requires_grad=True)
        alone = run(kind, xi, wi, reverse=reverse)
        ((alone[0] * pf.tensor(gy[i:i + 1, :length].copy())).sum() + alone[1].sum()).backward()
        np.testing.assert_allclose(out[0].numpy()[i, :length], alone[0].numpy()[0], atol=1e-12)
        np.testing.assert_allclose(out[1].numpy()[i], alone[1].numpy()[0], atol=1e-12)
        if kind == "lstm":
            np.testing.assert_allclose(out[2].numpy()[i], alone[2].numpy()[0], atol=1e-12)
        np.testing.assert_allclose(X.grad.numpy()[i, :length], xi.grad.numpy()[0], atol=1e-12)
        assert np.all(X.grad.numpy()[i, length:] == 0)
        for k in grads:
            grads[k] += wi[k].grad.numpy()
    for k in grads:
        np.testing.assert_allclose(wt[k].grad.numpy(), grads[k], atol=1e-10)


@pytest.mark.parametrize("kind", KINDS)
def test_thread_count_does_not_change_results(kind):
    """A batch large enough to be split into chunks that run their recurrences in parallel."""
    rng = np.random.default_rng(5)
    w = random_weights(kind, 5, 8, rng, "float32", scale=0.3)
    x = rng.standard_normal((48, 6, 5)).astype(np.float32)
    mask = (rng.random((48, 6)) < 0.8).astype(np.float32)
    results = []
    before = pf.get_num_threads()
    try:
        for threads in (1, 2):
            pf.set_num_threads(threads)
            wt = {k: pf.tensor(v, requires_grad=True) for k, v in w.items()}
            X = pf.tensor(x, requires_grad=True)
            out = run(kind, X, wt, mask=mask)
            (out[0].sum() + out[1].sum()).backward()
            results.append([o.numpy().copy() for o in out] + [X.grad.numpy().copy()] +
                           [wt[k].grad.numpy().copy() for k in sorted(wt)])
    finally:
        pf.set_num_threads(before)
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_float32_and_float64_agree():
    rng = np.random.default_rng(6)
    w = random_weights("lstm", 3, 4, rng)
    x = rng.standard_normal((2, 5, 3))
    y64 = run("lstm", x, w)[0].numpy()
    y32 = run("lstm", x.astype(np.float32), {k: v.astype(np.float32) for k, v in w.items()})[0]
    assert y32.dtype == pf.float32
    np.testing.assert_allclose(y32.numpy(), y64, rtol=1e-5, atol=1e-6)


def test_empty_sequence_and_empty_batch():
    rng = np.random.default_rng(7)
    w = {k: pf.tensor(v, requires_grad=True)
         for k, v in random_weights("lstm", 3, 4, rng, "float32").items()}
    h0 = rng.standard_normal((2, 4)).astype(np.float32)
    c0 = rng.standard_normal((2, 4)).astype(np.float32)
    H0 = pf.tensor(h0, requires_grad=True)
    y, h, c = run("lstm", np.zeros((2, 0, 3), np.float32), w, (H0, pf.tensor(c0)))
    assert y.shape == (2, 0, 4)
    np.testing.assert_array_equal(h.numpy(), h0)
    np.testing.assert_array_equal(c.numpy(), c0)
    h.sum().backward()
    np.testing.assert_array_equal(H0.grad.numpy(), np.ones_like(h0))
    assert not w["kernel"].grad.numpy().any()
    y, h = run("gru", np.zeros((0, 3, 3), np.float32),
               {k: pf.tensor(v) for k, v in random_weights("gru", 3, 4, rng, "float32").items()})
    assert y.shape == (0, 3, 4) and h.shape == (0, 4)


def test_boolean_mask_is_accepted():
    rng = np.random.default_rng(8)
    w = random_weights("gru", 2, 3, rng, "float32")
    x = rng.standard_normal((2, 3, 2)).astype(np.float32)
    mask = np.array([[True, True, False], [True, False, False]])
    a = run("gru", x, w, mask=mask)[0].numpy()
    b = run("gru", x, w, mask=mask.astype(np.float32))[0].numpy()
    np.testing.assert_array_equal(a, b)


def test_compiled_graph_equals_eager():
    rng = np.random.default_rng(9)
    w = {k: pf.tensor(v) for k, v in random_weights("lstm", 3, 4, rng, "float32").items()}
    mask = np.array([[1, 1, 0], [1, 1, 1]], np.float32)
    x = rng.standard_normal((2, 3, 3)).astype(np.float32)

    def fn(x):
        y, h, c = pf.lstm(x, w["kernel"], w["recurrent_kernel"], w["bias"], mask=mask,
                          reverse=True)
        return y, h, c

    eager = fn(pf.tensor(x))
    compiled = pf.jit(fn)(pf.tensor(x))
    for a, b in zip(eager, compiled):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-6, atol=1e-6)


def test_shape_errors_name_the_op_and_shapes():
    rng = np.random.default_rng(10)
    w = random_weights("lstm", 3, 4, rng, "float32")
    x = rng.standard_normal((2, 5, 3)).astype(np.float32)
    with pytest.raises(pf.ShapeError, match=r"lstm: x has 2 features but the kernel expects 3 "
                                            r"\(inputs: x: \(2, 5, 2\)"):
        run("lstm", x[:, :, :2].copy(), w)
    with pytest.raises(pf.ShapeError, match=r"mask \(batch, time\) must be \(2, 5\), got \(2, 4\)"):
        run("lstm", x, w, mask=np.ones((2, 4), np.float32))
    with pytest.raises(pf.ShapeError, match=r"initial h must be \(2, 4\), got \(2, 3\)"):
        run("lstm", x, w, (np.zeros((2, 3), np.float32), np.zeros((2, 4), np.float32)))
    with pytest.raises(pf.ShapeError, match=r"x must be \(batch, time, features\)"):
        run("lstm", x[0], w)
    with pytest.raises(pf.ShapeError, match=r"recurrent_kernel must be \(4, 16\)"):
        run("lstm", x, dict(w, recurrent_kernel=np.zeros((4, 12), np.float32)))
    with pytest.raises(pf.DTypeError, match="kernel is float64 but x is float32"):
        run("lstm", x, dict(w, kernel=w["kernel"].astype(np.float64)))
    with pytest.raises(ValueError, match="initial_state needs 2"):
        run("lstm", x, w, np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="activation"):
        run("simple_rnn", x, random_weights("simple_rnn", 3, 4, rng, "float32"),
            activation="sigmoid")


def _native_lstm(n=2, t=3, f=2, h=3, reserve_shape=None, x_shape=None, iattr=(0, 0, 0),
                 workspace=True, extra_inputs=()):
    """Call the "lstm" kernel directly, bypassing the Python checks."""
    dt = pf.float32
    arr = {"x": np.zeros(x_shape or (n, t, f), np.float32), "W": np.zeros((f, 4 * h), np.float32),
           "U": np.zeros((h, 4 * h), np.float32), "b": np.zeros(4 * h, np.float32),
           "y": np.zeros((n, t, h), np.float32), "hT": np.zeros((n, h), np.float32),
           "cT": np.zeros((n, h), np.float32),
           "res": np.zeros(reserve_shape or (n, t * (6 * h + f + 1) + 1), np.float32)}
    bufs = {k: cpu.Buf(v, v.shape, dt) for k, v in arr.items()}
    ins = [bufs[k].desc() for k in ("x", "W", "U", "b")] + list(extra_inputs)
    outs = [bufs[k].desc() for k in ("y", "hT", "cT", "res")]
    ws = np.zeros(4 * h * (f + 1 + h) + 2 * n * h, np.float32)
    if workspace:
        cpu.run("lstm", ins, outs, iattr, (), cpu.Buf(ws, ws.shape, dt))
        return
    # straight to the kernel table: cpu.run would supply the workspace itself
    a, keep = cpu.new_args(ins, outs, iattr, ())
    status = cpu.lib.pf_run(cpu.kernel_id("lstm"), a)
    if status:
        cpu.raise_native_error(status)


def test_native_kernel_validates_its_arguments():
    _native_lstm()   # the well-formed call passes
    with pytest.raises(pf.ShapeError, match=r"reserve has shape \(2, 63\), expected \(2, 64\)"):
        _native_lstm(reserve_shape=(2, 63))
    with pytest.raises(pf.ShapeError, match="kernel has shape"):
        _native_lstm(x_shape=(2, 3, 5))
    with pytest.raises(pf.errors.NativeError, match="expected 6 inputs"):
        _native_lstm(iattr=(1, 0, 0))      # claims initial states that are not there
    with pytest.raises(pf.errors.NativeError, match="needs a workspace"):
        _native_lstm(workspace=False)


def test_second_order_gradients_are_refused_clearly():
    rng = np.random.default_rng(11)
    w = {k: pf.tensor(v, requires_grad=True)
         for k, v in random_weights("lstm", 2, 3, rng).items()}
    x = pf.tensor(rng.standard_normal((2, 3, 2)), requires_grad=True)
    y, h, c = run("lstm", x, w)
    (gx,) = [pf.grad(h.sum(), x, create_graph=True)]
    with pytest.raises(pf.PyfrontError, match="second-order gradients of lstm are not supported"):
        pf.grad(gx.sum(), w["kernel"])


def test_weight_converters_round_trip():
    rng = np.random.default_rng(12)
    for kind in KINDS:
        w = random_weights(kind, 3, 4, rng)
        back = rnn.rnn_weights_to_torch(kind, w["kernel"], w["recurrent_kernel"], w["bias"],
                                        w.get("recurrent_bias"))
        again = rnn.rnn_weights_from_torch(kind, *back)
        for k in w:
            np.testing.assert_array_equal(again[k], w[k])


def test_keras_gru_weights_are_reordered():
    """A Keras GRU (reset_after) orders gates z, r, h: converted weights give the same step."""
    rng = np.random.default_rng(13)
    f, h = 2, 3
    kz, kr, kh = (rng.standard_normal((f, h)) for _ in range(3))
    uz, ur, uh = (rng.standard_normal((h, h)) for _ in range(3))
    bias = rng.standard_normal((2, 3 * h))
    w = rnn.rnn_weights_from_keras("gru", np.concatenate([kz, kr, kh], 1),
                                   np.concatenate([uz, ur, uh], 1), bias)
    x = rng.standard_normal((1, 1, f))
    h0 = rng.standard_normal((1, h))
    y = run("gru", x, w, h0)[1].numpy()
    # Keras' reset_after GRU step, written out
    bi, bh = bias
    xz, xr, xh = x[0] @ kz + bi[:h], x[0] @ kr + bi[h:2 * h], x[0] @ kh + bi[2 * h:]
    rz, rr, rh = h0 @ uz + bh[:h], h0 @ ur + bh[h:2 * h], h0 @ uh + bh[2 * h:]
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    z, r = sig(xz + rz), sig(xr + rr)
    hh = np.tanh(xh + r * rh)
    np.testing.assert_allclose(y, z * h0 + (1 - z) * hh, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_backward_reads_the_layout_the_forward_chose(kind):
    """Forward on two threads (two chunks), backward on one: same gradients as all on one."""
    rng = np.random.default_rng(14)
    w = random_weights(kind, 3, 5, rng, "float64")
    x = rng.standard_normal((40, 4, 3))
    before = pf.get_num_threads()
    grads = []
    try:
        for forward_threads in (1, 2):
            pf.set_num_threads(forward_threads)
            wt = {k: pf.tensor(v, requires_grad=True) for k, v in w.items()}
            X = pf.tensor(x, requires_grad=True)
            out = run(kind, X, wt)
            pf.set_num_threads(1)
            (out[0].sum() + out[1].sum()).backward()
            grads.append([X.grad.numpy()] + [wt[k].grad.numpy() for k in sorted(wt)])
    finally:
        pf.set_num_threads(before)
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_backward_refuses_a_reserve_it_did_not_write():
    rng = np.random.default_rng(15)
    w = {k: pf.tensor(v, requires_grad=True)
         for k, v in random_weights("lstm", 2, 3, rng, "float32").items()}
    y, h, c = run("lstm", rng.standard_normal((2, 3, 2)).astype(np.float32), w)
    h._node.arrays[3][...] = 0      # the saved activations, overwritten
    with pytest.raises(pf.errors.NativeError, match="reserve was not written by the lstm"):
        h.sum().backward()


def test_a_bool_mask_equals_the_same_mask_as_integers():
    # comparisons return bool tensors; the kernels once read a bool mask as int64 (garbage)
    rng = np.random.default_rng(7)
    n, t, f, h = 3, 5, 4, 6
    x = rng.standard_normal((n, t, f)).astype(np.float32)
    kernel = rng.standard_normal((f, 4 * h)).astype(np.float32) * 0.3
    recurrent = rng.standard_normal((h, 4 * h)).astype(np.float32) * 0.3
    bias = np.zeros(4 * h, np.float32)
    lengths = pf.tensor(np.array([[5], [3], [1]]))
    bool_mask = pf.arange(t).reshape((1, t)) < lengths
    assert bool_mask.dtype is pf.bool
    int_mask = np.arange(t)[None, :] < np.array([[5], [3], [1]])
    want = pf.lstm(pf.tensor(x), pf.tensor(kernel), pf.tensor(recurrent), pf.tensor(bias),
                   mask=int_mask.astype(np.int64))
    got = pf.lstm(pf.tensor(x), pf.tensor(kernel), pf.tensor(recurrent), pf.tensor(bias),
                  mask=bool_mask)
    for a, b in zip(got if isinstance(got, tuple) else [got],
                    want if isinstance(want, tuple) else [want]):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
