"""The reference CNN against PyTorch 2.13 in one run: training and inference images/s at 1 and 2
threads, the GFLOP/s achieved against this machine's float32 GEMM rate, and each layer's
forward and backward time beside PyTorch's (per_layer).

Model: Conv2D(32, 3) + ReLU + MaxPool2, Conv2D(64, 3) + ReLU + MaxPool2, Flatten,
Dense(128) + ReLU, Dense(10); cross-entropy; SGD with momentum 0.9; batch 128 of synthetic
1x28x28 images (fixed seed). Both frameworks start from the same weights; the first step's
losses are compared as a check that they compute the same thing.

Each pyfront mode is a step factory (STEP_MODES): "eager" is forward, cross_entropy, backward,
optimizer.step; "compiled" is pf.train.CompiledTrainStep / pf.jit. Timings alternate between
pyfront and PyTorch, repeat by repeat, and the ratio is the median of the per-repeat ratios
(these machines are shared and noisy; absolute times mean little). At one thread both
frameworks do all their work on the calling thread, so the ratio of that thread's CPU time is
also reported: on a loaded machine it is the comparison that waiting for a core does not
distort.

    python benchmarks/bench_cnn.py [--quick] [--modes eager,compiled]
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

import pyfront as pf  # noqa: E402

BATCH = 128
TRAIN_GOAL = 2.3        # pyfront training images/s over PyTorch's
INFER_GOAL = 4.2        # pyfront inference images/s over PyTorch's


def forward_flops_per_image():
    """Multiply-adds x 2 of the convolutions and dense layers (pooling and ReLU not counted)."""
    conv1 = 2 * 32 * 1 * 3 * 3 * 26 * 26
    conv2 = 2 * 64 * 32 * 3 * 3 * 11 * 11
    dense = 2 * (64 * 5 * 5) * 128 + 2 * 128 * 10
    return conv1 + conv2 + dense


def pyfront_model():
    return pf.nn.Sequential([
        pf.nn.Conv2D(32, 3, activation="relu"), pf.nn.MaxPool2D(2),
        pf.nn.Conv2D(64, 3, activation="relu"), pf.nn.MaxPool2D(2),
        pf.nn.Flatten(), pf.nn.Dense(128, activation="relu"), pf.nn.Dense(10)])


def torch_model():
    import torch.nn as tnn

    return tnn.Sequential(
        tnn.Conv2d(1, 32, 3), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Conv2d(32, 64, 3), tnn.ReLU(), tnn.MaxPool2d(2),
        tnn.Flatten(), tnn.Linear(1600, 128), tnn.ReLU(), tnn.Linear(128, 10))


def copy_weights(torch_net, model, x):
    """PyTorch's initial weights into the pyfront model (Dense kernels are (in, out))."""
    model(pf.tensor(x[:1]))   # build: parameters take their shapes from the first input
    tconv = [m for m in torch_net if type(m).__name__ == "Conv2d"]
    tlin = [m for m in torch_net if type(m).__name__ == "Linear"]
    convs = [m for m in model.layers if isinstance(m, pf.nn.Conv2D)]
    denses = [m for m in model.layers if isinstance(m, pf.nn.Dense)]
    for t, m in zip(tconv, convs):
        m.kernel.numpy()[...] = t.weight.detach().numpy()
        m.bias.numpy()[...] = t.bias.detach().numpy()
    for t, m in zip(tlin, denses):
        m.kernel.numpy()[...] = t.weight.detach().numpy().T
        m.bias.numpy()[...] = t.bias.detach().numpy()


# ---- pyfront steps: each factory takes (model, optimizer) and returns fn(x, y) / fn(x) ----

def eager_train_step(model, opt):
    def step(x, y):
        opt.zero_grad()
        loss = pf.losses.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step


def compiled_train_step(model, opt):
    compiled = pf.train.CompiledTrainStep(model, pf.losses.cross_entropy, opt)

    def step(x, y):
        return compiled(x.numpy(), y.numpy())[0]
    return step


def eager_inference(model):
    def infer(x):
        with pf.no_grad():
            return model(x)
    return infer


def compiled_inference(model):
    fast = pf.jit(model)

    def infer(x):
        return fast.run_numpy(x.numpy())
    return infer


STEP_MODES = {"eager": (eager_train_step, eager_inference),
              "compiled": (compiled_train_step, compiled_inference)}


def _loss_value(loss):
    if isinstance(loss, (list, tuple)):
        loss = loss[0]
    return float(np.asarray(loss.numpy() if hasattr(loss, "numpy") else loss))


def paired(ours, theirs, calls, repeats, warmup=2):
    """Median seconds per call (ours, theirs), the median of per-repeat ratios theirs/ours in
    wall time, and the same ratio in the calling thread's CPU time. Each timed block starts
    common.SETTLE seconds after the other's (the other runtime's idle threads have stopped
    spinning) and one untimed call."""
    for _ in range(warmup):
        ours()
        theirs()
    a, b, r, cpu = [], [], [], []
    for _ in range(repeats):
        common.settle(ours)
        t, c = time.perf_counter(), time.thread_time()
        for _ in range(calls):
            ours()
        ta, ca = time.perf_counter() - t, time.thread_time() - c
        common.settle(theirs)
        t, c = time.perf_counter(), time.thread_time()
        for _ in range(calls):
            theirs()
        tb, cb = time.perf_counter() - t, time.thread_time() - c
        a.append(ta / calls)
        b.append(tb / calls)
        r.append(tb / ta)
        cpu.append(cb / ca if ca > 0 else float("nan"))
    return (statistics.median(a), statistics.median(b), statistics.median(r),
            statistics.median(cpu))


def gemm_rate(threads, quick):
    common.set_threads(threads)
    rng = np.random.default_rng(0)
    a = pf.tensor(rng.standard_normal((1024, 1024)).astype(np.float32))
    b = pf.tensor(rng.standard_normal((1024, 1024)).astype(np.float32))
    return common.median_rate(lambda: pf.matmul(a, b), 2 * 1024 ** 3 / 1e9,
                              calls=3 if quick else 8)


def run_threads(threads, modes, quick):
    import torch

    common.set_threads(threads)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, BATCH)
    xt, yt = pf.tensor(x), pf.tensor(y)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    calls, repeats = (2, 3) if quick else (3, 7)
    gemm = gemm_rate(threads, quick)
    fwd = forward_flops_per_image()
    rows = []

    torch.manual_seed(0)
    tnet = torch_model()
    topt = torch.optim.SGD(tnet.parameters(), lr=0.01, momentum=0.9)
    lossf = torch.nn.CrossEntropyLoss()

    def torch_step():
        topt.zero_grad()
        loss = lossf(tnet(tx), ty)
        loss.backward()
        topt.step()
        return loss

    def torch_infer():
        with torch.inference_mode():
            return tnet(tx)

    for mode in modes:
        make_step, make_infer = STEP_MODES[mode]
        pf.random.seed(0)
        model = pyfront_model()
        torch.manual_seed(0)
        tnet.load_state_dict(torch_model().state_dict())
        topt = torch.optim.SGD(tnet.parameters(), lr=0.01, momentum=0.9)
        copy_weights(tnet, model, x)
        opt = pf.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        step = make_step(model, opt)
        ours_loss, theirs_loss = _loss_value(step(xt, yt)), float(torch_step().item())
        agree = abs(ours_loss - theirs_loss) <= 1e-4 * max(1.0, abs(theirs_loss))
        t_ours, t_ref, ratio, cpu_ratio = paired(lambda: step(xt, yt), torch_step, calls,
                                                 repeats)
        ours_rate, ref_rate = BATCH / t_ours, BATCH / t_ref
        if threads == 1:
            rows.append(common.row(
                "CNN training, %s, 1 thread, CPU-time ratio" % mode, cpu_ratio, "x", None,
                cpu_ratio, TRAIN_GOAL, note="PyTorch's CPU time per step over pyfront's"))
        rows.append(common.row(
            "CNN training, %s, %d thread(s)" % (mode, threads), ours_rate, "images/s", ref_rate,
            ratio, TRAIN_GOAL,
            note="%.1f GFLOP/s (%.0f%% of the %.0f GFLOP/s GEMM rate); PyTorch %.1f GFLOP/s; "
                 "first-step loss %.6f vs PyTorch %.6f (%s)"
                 % (3 * fwd * ours_rate / 1e9, 100 * 3 * fwd * ours_rate / 1e9 / gemm, gemm,
                    3 * fwd * ref_rate / 1e9, ours_loss, theirs_loss,
                    "agree" if agree else "DIFFER")))
        model.eval()
        tnet.eval()
        infer = make_infer(model)
        out_ours = infer(xt)
        out_ref = torch_infer().numpy()
        out_ours = out_ours.numpy() if hasattr(out_ours, "numpy") else np.asarray(out_ours)
        same = np.allclose(out_ours, out_ref, rtol=1e-3, atol=1e-3)
        t_ours, t_ref, ratio, cpu_ratio = paired(lambda: infer(xt), torch_infer, calls * 2,
                                                 repeats)
        ours_rate, ref_rate = BATCH / t_ours, BATCH / t_ref
        if threads == 1:
            rows.append(common.row(
                "CNN inference, %s, 1 thread, CPU-time ratio" % mode, cpu_ratio, "x", None,
                cpu_ratio, INFER_GOAL, note="PyTorch's CPU time per batch over pyfront's"))
        rows.append(common.row(
            "CNN inference, %s, %d thread(s)" % (mode, threads), ours_rate, "images/s",
            ref_rate, ratio, INFER_GOAL,
            note="%.1f GFLOP/s (%.0f%% of the GEMM rate); PyTorch %.1f GFLOP/s; outputs %s"
                 % (fwd * ours_rate / 1e9, 100 * fwd * ours_rate / 1e9 / gemm,
                    fwd * ref_rate / 1e9, "match" if same else "DIFFER")))
    rows.append(common.row("float32 GEMM 1024^3, %d thread(s)" % threads, gemm, "GFLOP/s",
                           note="the machine's GEMM rate (pyfront's BLAS) the GFLOP/s are "
                                "measured against"))
    return rows


def _layer_cases(model, tnet, x):
    """(label, pyfront callable, PyTorch callable, input shape, whether the input needs a
    gradient) for each layer of the reference CNN, on the activations it sees in the model
    (conv + ReLU and Dense + ReLU as the pyfront layers fuse them)."""
    import torch

    layers = model.layers
    tl = list(tnet)
    cases = [("conv1 3x3 1->32 + ReLU", layers[0], torch.nn.Sequential(tl[0], tl[1]), False),
             ("max pool 2x2 after conv1", layers[1], tl[2], True),
             ("conv2 3x3 32->64 + ReLU", layers[2], torch.nn.Sequential(tl[3], tl[4]), True),
             ("max pool 2x2 after conv2", layers[3], tl[5], True),
             ("dense 1600->128 + ReLU", layers[5], torch.nn.Sequential(tl[7], tl[8]), True),
             ("dense 128->10", layers[6], tl[9], True)]
    out, h = [], pf.tensor(x)
    with pf.no_grad():
        for label, ours, theirs, needs in cases:
            if label.startswith("dense 1600"):
                h = layers[4](h)              # Flatten
            out.append((label, ours, theirs, h.numpy().copy(), needs))
            h = ours(h)
    return out


def per_layer(threads, quick):
    """Each layer of the reference CNN timed alone, forward and forward + backward (gradients
    of its parameters and, past the first layer, of its input), beside PyTorch's same layer:
    where the training step's time goes. Eager calls of the layers: the kernels the compiled
    step runs, without the compiled step's fusions (its conv2 + ReLU + pool is one pass)."""
    import torch

    common.set_threads(threads)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, 1, 28, 28)).astype(np.float32)
    torch.manual_seed(0)
    tnet = torch_model()
    pf.random.seed(0)
    model = pyfront_model()
    copy_weights(tnet, model, x)
    calls, repeats = (2, 3) if quick else (3, 7)
    rows = []
    for label, ours, theirs, h, needs in _layer_cases(model, tnet, x):
        ph = pf.tensor(h, requires_grad=needs)
        th = torch.from_numpy(h.copy()).requires_grad_(needs)
        pparams = ours.parameters()
        tparams = list(theirs.parameters())
        with pf.no_grad():
            g = rng.standard_normal(ours(ph).shape).astype(np.float32)
        pg, tg = pf.tensor(g), torch.from_numpy(g)

        def ours_forward():
            with pf.no_grad():
                ours(ph)

        def theirs_forward():
            with torch.inference_mode():
                theirs(th)

        def ours_backward():
            pf.grad(ours(ph), ([ph] if needs else []) + pparams, grad_outputs=pg)

        def theirs_backward():
            torch.autograd.grad(theirs(th), ([th] if needs else []) + tparams, tg)

        for phase, fns in (("forward", (ours_forward, theirs_forward)),
                           ("forward + backward", (ours_backward, theirs_backward))):
            t_ours, t_ref, ratio, _ = paired(*fns, calls, repeats)
            rows.append(common.row(
                "CNN layer: %s on %s, %s, %d thread(s)" % (label, tuple(h.shape), phase,
                                                          threads),
                t_ours * 1e3, "ms", t_ref * 1e3, ratio,
                note="ratio: PyTorch's time over pyfront's; the layer alone, eager"))
    return rows


_RSS_SCRIPT = """
import sys, os, numpy as np
sys.path.insert(0, %r)
import bench_cnn as b
fw = "%s"
x = np.random.default_rng(0).standard_normal((128, 1, 28, 28)).astype(np.float32)
y = np.random.default_rng(0).integers(0, 10, 128)
if fw == "pyfront":
    import pyfront as pf
    pf.set_num_threads(1)
    m = b.pyfront_model()
    opt = pf.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    step = pf.train.CompiledTrainStep(m, pf.losses.cross_entropy, opt)
    for _ in range(20): step(x, y)
else:
    import torch
    torch.set_num_threads(1)
    m = b.torch_model()
    opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    for _ in range(20):
        opt.zero_grad(); torch.nn.functional.cross_entropy(m(tx), ty).backward(); opt.step()
"""


def peak_memory():
    here = os.path.dirname(os.path.abspath(__file__))
    ours = common.peak_rss_mib(_RSS_SCRIPT % (here, "pyfront"))
    ref = common.peak_rss_mib(_RSS_SCRIPT % (here, "torch"))
    return common.row("peak RSS training the CNN", ours, "MiB", ref, ours / ref, 1.0,
                      higher_is_better=False,
                      note="whole process, 20 compiled steps, batch 128; reference: PyTorch")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (noisier)")
    parser.add_argument("--modes", default=None,
                        help="comma-separated pyfront modes among %s (default: all that this "
                             "pyfront has)" % ", ".join(STEP_MODES))
    parser.add_argument("--threads", default="1,2", help="thread counts (default 1,2)")
    parser.add_argument("--no-layers", action="store_true",
                        help="skip the per-layer table (each layer alone, beside PyTorch's)")
    args = parser.parse_args(argv)
    modes = args.modes.split(",") if args.modes else [
        m for m in STEP_MODES if m != "compiled" or hasattr(pf.train, "CompiledTrainStep")]
    rows = []
    for threads in (int(t) for t in args.threads.split(",")):
        rows.extend(run_threads(threads, modes, args.quick))
        if not args.no_layers:
            rows.extend(per_layer(threads, args.quick))
    meta = common.machine()
    meta["load_average_after"] = os.getloadavg()
    meta.update({"batch": BATCH, "forward_mflop_per_image": forward_flops_per_image() / 1e6,
                 "training_flop_factor": 3})
    rows.append(peak_memory())
    common.write("cnn", rows, meta)
    return rows


if __name__ == "__main__":
    main()
