"""Checkpoints restore all or nothing (a mismatch found after the weights were written left a
half-restored model), and a Spark run resumed from a folder whose newest checkpoint is damaged
warns naming that file and resumes from the newest one that restores."""
import json
import warnings

import numpy as np
import pytest

import pyfront as pf
from pyfront.io import format as fmt


def _net(seed):
    pf.random.seed(seed)
    net = pf.nn.Sequential([pf.nn.Dense(5, activation="tanh"), pf.nn.Dense(3)])
    net(pf.tensor(np.zeros((1, 4), np.float32)))
    return net


def _train(net, opt, steps=2):
    rng = np.random.default_rng(0)
    x = pf.tensor(rng.standard_normal((8, 4)).astype(np.float32))
    y = pf.tensor(rng.integers(0, 3, 8))
    for _ in range(steps):
        opt.zero_grad()
        pf.losses.cross_entropy(net(x), y).backward()
        opt.step()


def _weights(net):
    return {k: v.copy() for k, v in net.state_dict().items()}


def _same(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.fixture
def checkpoint(tmp_path):
    net = _net(0)
    opt = pf.optim.Adam(net.parameters(), lr=0.01)
    _train(net, opt)
    path = tmp_path / "ck.pfc"
    pf.save_checkpoint(path, net, opt, epoch=1, step=2)
    return path


def _untouched_after(load, net, opt):
    """load() raises ModelFormatError; net, opt and the RNG are as they were."""
    weights, rng = _weights(net), pf.random.generator().bit_generator.state
    iterations, lr = opt.iterations, opt.lr
    with pytest.raises(pf.ModelFormatError) as info:
        load()
    assert _same(_weights(net), weights)
    assert (opt.iterations, opt.lr) == (iterations, lr) and not opt.state
    assert pf.random.generator().bit_generator.state == rng
    return str(info.value)


def test_an_optimizer_of_another_class_restores_nothing(checkpoint):
    net = _net(1)
    opt = pf.optim.SGD(net.parameters(), lr=0.5)
    message = _untouched_after(lambda: pf.load_checkpoint(checkpoint, net, opt), net, opt)
    assert "holds Adam state, not SGD" in message and str(checkpoint) in message


def _rewrite(path, change_tensors=None, change_training=None):
    tensors, meta = fmt.read_file(path)
    if change_tensors:
        change_tensors(tensors)
    if change_training:
        training = json.loads(meta["training"])
        change_training(training)
        meta["training"] = json.dumps(training)
    fmt.write_file(path, tensors, meta)


def test_optimizer_state_of_the_wrong_shape_restores_nothing(checkpoint):
    def wrong(t):
        t["__optimizer__.2.m"] = np.zeros((7, 7), np.float32)
    _rewrite(checkpoint, change_tensors=wrong)
    net = _net(1)
    opt = pf.optim.Adam(net.parameters(), lr=0.5)
    message = _untouched_after(lambda: pf.load_checkpoint(checkpoint, net, opt), net, opt)
    assert "optimizer state '2.m' has shape (7, 7), its parameter (5, 3)" in message


def test_a_later_layer_that_does_not_fit_restores_nothing(checkpoint):
    def wrong(t):
        t["1.kernel"] = np.zeros((5, 4), np.float32)
    _rewrite(checkpoint, change_tensors=wrong)
    net = _net(1)
    opt = pf.optim.Adam(net.parameters(), lr=0.5)
    message = _untouched_after(lambda: pf.load_checkpoint(checkpoint, net, opt), net, opt)
    assert "'1.kernel' has shape (5, 3) in the model, (5, 4) in the file" in message


@pytest.mark.parametrize("change", [
    lambda t: t.update(rng={"bit_generator": "PCG64", "state": "garbage"}),
    lambda t: t.update(epoch="one"),
    lambda t: t["optimizer"].update(iterations=None),
    lambda t: t.update(extra=[1]),
])
def test_a_malformed_training_position_restores_nothing(checkpoint, change):
    _rewrite(checkpoint, change_training=change)
    net = _net(1)
    opt = pf.optim.Adam(net.parameters(), lr=0.5)
    message = _untouched_after(lambda: pf.load_checkpoint(checkpoint, net, opt), net, opt)
    assert "malformed training position" in message


def test_a_good_checkpoint_still_restores_everything(checkpoint):
    net, opt = _net(1), pf.optim.Adam(lr=0.5)
    pos = pf.load_checkpoint(checkpoint, net, opt)
    assert (pos["epoch"], pos["step"], opt.iterations, opt.lr) == (1, 2, 2, 0.01)
    assert opt.params == net.parameters()
    reference = pf.load_checkpoint(checkpoint)["model"]
    assert _same(_weights(net), _weights(reference))


# ---- resuming a Spark run from a folder ----

def _spark_checkpoints(folder):
    from pyfront.spark import checkpoint as ckpt

    net = _net(0)
    opt = pf.optim.Adam(net.parameters(), lr=0.01)
    saved = []
    for epoch, rnd in ((0, 3), (1, 0)):
        _train(net, opt)
        path = ckpt.save(folder, net, opt, epoch, rnd, {"history": {}})
        saved.append((path, _weights(net)))
    return ckpt, saved


def _damage(path):
    data = bytearray(open(path, "rb").read())
    data[-5] ^= 0xFF
    open(path, "wb").write(bytes(data))


def test_resume_skips_a_damaged_newest_checkpoint_with_a_warning(tmp_path):
    ckpt, [(older, older_weights), (newest, _)] = _spark_checkpoints(tmp_path)
    _damage(newest)
    net, opt = _net(5), pf.optim.Adam(lr=0.5)
    with pytest.warns(RuntimeWarning, match="skipping checkpoint %s, which cannot be restored:"
                                            ".*fails its checksum" % newest):
        pos = ckpt.load(tmp_path, net, opt)
    assert (pos["path"], pos["epoch"], pos["step"]) == (older, 0, 3)
    assert _same(_weights(net), older_weights) and opt.iterations == 2


def test_a_damaged_checkpoint_named_directly_is_an_error_naming_it(tmp_path):
    ckpt, [_, (newest, _)] = _spark_checkpoints(tmp_path)
    _damage(newest)
    net, opt = _net(5), pf.optim.Adam(lr=0.5)
    with pytest.raises(pf.ModelFormatError, match="^%s fails its checksum" % newest):
        ckpt.load(newest, net, opt)


def test_resume_fails_when_no_checkpoint_restores_naming_each(tmp_path):
    ckpt, [(older, _), (newest, _)] = _spark_checkpoints(tmp_path)
    _damage(older)
    _damage(newest)
    net, opt = _net(5), pf.optim.Adam(lr=0.5)
    weights = _weights(net)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(pf.ModelFormatError, match="none of its 2 checkpoints can be "
                                                      "restored") as info:
            ckpt.load(tmp_path, net, opt)
    assert older in str(info.value) and newest in str(info.value)
    assert len(caught) == 2 and _same(_weights(net), weights)
