"""Eager training memory against PyTorch 2.13 eager, in one run: the peak resident memory a
training step adds (forward, loss, backward, optimizer step) above what the process holds
between steps, for the MLP of bench_core (784-512-512-10, Adam), the CNN of bench_cnn (SGD
with momentum), and the MLP written as separate Dense, ReLU and Dropout layers (nothing fused:
where what the tape retains matters most), batch 128, one thread.

Each number comes from a fresh interpreter (common.peak_rss_mib): a few warm-up steps (optimizer
state, caches), then the kernel's peak-RSS counter is reset (/proc/self/clear_refs) and a few
steps run; the row is that peak minus the resident memory at the reset. glibc's malloc would
keep freed blocks of both frameworks in its heap after the warm-up (its mmap threshold grows
with what is freed), hiding each step's peak: a fixed threshold (MALLOC_MMAP_THRESHOLD_, 64 KiB)
gives large blocks back when freed, so the resident set follows the live memory.

pyfront runs twice: as it is, and with every op made to retain all its inputs and outputs on
the tape (as before ops declared retain_inputs / retain_outputs, issue 9): the note of each row
says what the declarations save.

    python benchmarks/bench_memory.py
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

BATCH = 128

_SCRIPT = """
import gc, sys, numpy as np
sys.path.insert(0, %(here)r)
model, fw = %(model)r, %(fw)r
rng = np.random.default_rng(0)
shape = (%(batch)d, 1, 28, 28) if model == "cnn" else (%(batch)d, 784)
x = rng.standard_normal(shape).astype(np.float32)
y = rng.integers(0, 10, %(batch)d)
if fw == "torch":
    import torch
    torch.set_num_threads(1)
    if model == "mlp":
        m = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(),
                                torch.nn.Linear(512, 512), torch.nn.ReLU(),
                                torch.nn.Linear(512, 10))
        opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    elif model == "layers":
        m = torch.nn.Sequential(torch.nn.Linear(784, 512), torch.nn.ReLU(),
                                torch.nn.Dropout(0.5), torch.nn.Linear(512, 512),
                                torch.nn.ReLU(), torch.nn.Dropout(0.5), torch.nn.Linear(512, 10))
        opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    else:
        import bench_cnn
        m = bench_cnn.torch_model()
        opt = torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9)
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    def step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(m(tx), ty).backward()
        opt.step()
else:
    import pyfront as pf
    pf.set_num_threads(1)
    if fw == "pyfront, retaining everything":
        from pyfront.ops import core
        for op in core.REGISTRY.values():
            op.retain_inputs = op.retain_outputs = None
    if model == "mlp":
        m = pf.nn.Sequential([pf.nn.Dense(512, activation="relu"),
                              pf.nn.Dense(512, activation="relu"), pf.nn.Dense(10)])
        opt = pf.optim.Adam
    elif model == "layers":
        m = pf.nn.Sequential([pf.nn.Dense(512), pf.nn.ReLU(), pf.nn.Dropout(0.5),
                              pf.nn.Dense(512), pf.nn.ReLU(), pf.nn.Dropout(0.5),
                              pf.nn.Dense(10)])
        opt = pf.optim.Adam
    else:
        import bench_cnn
        m = bench_cnn.pyfront_model()
        opt = lambda p, lr: pf.optim.SGD(p, lr=lr, momentum=0.9)
    tx, ty = pf.tensor(x), pf.tensor(y)
    m(tx)
    opt = opt(m.parameters(), lr=1e-3)
    def step():
        opt.zero_grad()
        pf.losses.cross_entropy(m(tx), ty).backward()
        opt.step()
for _ in range(3):
    step()
gc.collect()
RSS_BASE_MIB = int([l for l in open('/proc/self/status')
                    if l.startswith('VmRSS')][0].split()[1]) / 1024
open('/proc/self/clear_refs', 'w').write('5')      # VmHWM := VmRSS from here
for _ in range(5):
    step()
"""

FRAMEWORKS = ("pyfront", "pyfront, retaining everything", "torch")


def step_peak_mib(model, fw):
    here = os.path.dirname(os.path.abspath(__file__))
    return common.peak_rss_mib(_SCRIPT % {"here": here, "model": model, "fw": fw,
                                          "batch": BATCH})


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="accepted for run.py (memory "
                        "needs no repeats)")
    parser.parse_args(argv)
    os.environ["MALLOC_MMAP_THRESHOLD_"] = "65536"     # (inherited by the measured processes)
    rows = []
    for model, label in (("mlp", "MLP 784-512-512-10"), ("cnn", "CNN of bench_cnn"),
                         ("layers", "the MLP as Dense, ReLU and Dropout(0.5) layers")):
        ours, everything, ref = (step_peak_mib(model, fw) for fw in FRAMEWORKS)
        rows.append(common.row(
            "eager training step memory, %s, batch %d" % (label, BATCH), ours, "MiB", ref,
            ours / ref, 1.0, higher_is_better=False,
            note="peak RSS a step adds above the memory held between steps; retaining every "
                 "input and output (before issue 9): %.1f MiB; reference: PyTorch eager"
                 % everything))
    common.write("memory", rows)
    return rows


if __name__ == "__main__":
    main()
