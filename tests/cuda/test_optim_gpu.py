"""Optimizers on GPU parameters, checked without a GPU (conftest's stand-in): the state lives
in the parameter's GPU memory, the update kernels read (lr, step) from a copy on that GPU
refreshed every step, the numbers are the CPU's, and checkpoints of the state are host arrays
that load back into GPU memory."""
import numpy as np
import pytest

import pyfront as pf

OPTIMIZERS = {
    "sgd_momentum": lambda ps: pf.optim.SGD(ps, lr=0.1, momentum=0.9, nesterov=True),
    "adam": lambda ps: pf.optim.Adam(ps, lr=0.01, weight_decay=0.1),
    "adamw": lambda ps: pf.optim.AdamW(ps, lr=0.01),
    "rmsprop": lambda ps: pf.optim.RMSProp(ps, lr=0.01, momentum=0.5, centered=True),
    "adagrad": lambda ps: pf.optim.AdaGrad(ps, lr=0.1, initial_accumulator_value=0.1),
    "sgd_clipnorm": lambda ps: pf.optim.SGD(ps, lr=0.1, global_clipnorm=0.5),
}


def _train(make, device, steps=3):
    rng = np.random.default_rng(0)
    params = [pf.tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True)
              for s in ((4, 3), (3,))]
    params = [p.to(device) for p in params]
    for p in params:
        p.requires_grad = True
    opt = make(params)
    x = pf.tensor(rng.standard_normal((5, 4)).astype(np.float32)).to(device)
    for _ in range(steps):
        opt.zero_grad()
        (pf.linear(x, params[0], params[1]) ** 2).sum().backward()
        opt.step()
    return opt, params


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_update_on_a_gpu_equals_the_cpus(fake_gpu, name):
    cpu_opt, cpu_params = _train(OPTIMIZERS[name], "cpu")
    gpu_opt, gpu_params = _train(OPTIMIZERS[name], "cuda:1")
    for pc, pg in zip(cpu_params, gpu_params):
        assert pg.device == "cuda:1"
        np.testing.assert_allclose(pg.cpu().numpy(), pc.numpy(), rtol=1e-6, atol=1e-7)
    for st in gpu_opt.state.values():
        assert {type(a).__name__ for a in st.values()} <= {"_Gpu1"}


def test_hyper_on_the_gpu_follows_every_step(fake_gpu):
    opt, _ = _train(OPTIMIZERS["adam"], "cuda:1", steps=2)
    hyper = opt._device_hypers[("cuda:1", (0, 0))].array    # (device, (group, skipped steps))
    assert type(hyper).__name__ == "_Gpu1"
    np.testing.assert_array_equal(hyper.view(np.ndarray), [0.01, 2.0])
    opt.lr = 0.5
    opt.step()   # the last gradients again
    np.testing.assert_array_equal(hyper.view(np.ndarray), [0.5, 3.0])


def test_gpu_state_checkpoints_as_host_arrays_and_loads_back(fake_gpu):
    opt, params = _train(OPTIMIZERS["adam"], "cuda:1")
    sd = opt.state_dict()
    assert sd["state"] and all(type(a) is np.ndarray for a in sd["state"].values())
    fresh = OPTIMIZERS["adam"](params)
    fresh.load_state_dict(sd)
    for key, arr in sd["state"].items():
        i, name = key.split(".", 1)
        loaded = fresh.state_for(params[int(i)])[name]
        assert type(loaded).__name__ == "_Gpu1"
        np.testing.assert_array_equal(loaded.view(np.ndarray), arr)


def test_checkpoint_of_a_gpu_model_and_optimizer_resumes_on_the_gpu(fake_gpu, tmp_path):
    """save_checkpoint takes host copies of GPU weights and optimizer state; loading it into a
    GPU model and optimizer writes them back to the GPU, and training resumes to the same
    weights as uninterrupted training."""
    from pyfront import nn

    rng = np.random.default_rng(7)
    x, y = rng.standard_normal((8, 4)).astype(np.float32), rng.integers(0, 3, 8)

    def make():
        pf.random.seed(3)
        model = nn.Sequential([nn.Dense(3, in_features=4)]).to("cuda:1")
        return model, pf.optim.Adam(model.parameters(), lr=0.05)

    def train(model, opt, steps):
        for _ in range(steps):
            opt.zero_grad()
            pf.cross_entropy(model(pf.tensor(x).to("cuda:1")), pf.tensor(y).to("cuda:1")).backward()
            opt.step()

    model, opt = make()
    train(model, opt, 4)
    want = [p.cpu().numpy() for p in model.parameters()]
    model, opt = make()
    train(model, opt, 2)
    pf.save_checkpoint(tmp_path / "ck.pf", model, opt)
    model, opt = make()
    pf.load_checkpoint(tmp_path / "ck.pf", model, opt)
    assert {p.device for p in model.parameters()} == {"cuda:1"}
    train(model, opt, 2)
    for got, w in zip(model.parameters(), want):
        np.testing.assert_allclose(got.cpu().numpy(), w, rtol=1e-6)
