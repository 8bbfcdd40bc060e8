"""Where and how models are written: pf.save_bytes / pf.load_bytes (the file's bytes without a
file), file modes (an existing file's kept, else the umask's), and temporaries that a killed
save left behind, removed by the next save of the same target."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import pyfront as pf
from pyfront.io import format as fmt


@pytest.fixture
def model():
    pf.random.seed(3)
    net = pf.nn.Sequential([pf.nn.Dense(6, activation="tanh"), pf.nn.Dense(2)])
    net(pf.tensor(np.zeros((1, 4), np.float32)))
    return net


def _x():
    return pf.tensor(np.random.default_rng(4).standard_normal((5, 4)).astype(np.float32))


# ---- bytes ----

def test_save_bytes_is_the_file_and_load_bytes_round_trips_it(model, tmp_path):
    data = pf.save_bytes(model)
    pf.save(model, tmp_path / "m.pf")
    assert data == (tmp_path / "m.pf").read_bytes()
    for form in (data, bytearray(data), memoryview(data)):
        again = pf.load_bytes(form)
        with pf.no_grad():
            assert np.array_equal(again(_x()).numpy(), model(_x()).numpy())
        assert again.signature["inputs"][0]["shape"] == [-1, 4]
        assert not again.training


def test_load_bytes_makes_the_same_checks_and_names_the_bytes(model):
    data = pf.save_bytes(model)
    with pytest.raises(pf.ModelFormatError, match="broadcast model is truncated"):
        pf.load_bytes(data[:len(data) // 2], name="broadcast model")
    flipped = bytearray(data)
    flipped[-3] ^= 1
    with pytest.raises(pf.ModelFormatError, match="the model bytes fails its checksum"):
        pf.load_bytes(bytes(flipped))
    with pytest.raises(pf.ModelFormatError, match="over the limit of 100"):
        pf.load_bytes(data, max_bytes=100)
    with pytest.raises(TypeError, match="expected bytes, bytearray or memoryview, got str"):
        pf.load_bytes("m.pf")


def test_checkpoint_bytes_round_trip(model):
    from pyfront.io.model import load_checkpoint_bytes, save_checkpoint_bytes

    opt = pf.optim.Adam(model.parameters(), lr=0.02)
    data = save_checkpoint_bytes(model, opt, epoch=3, step=7, extra={"k": [1, 2]})
    pos = load_checkpoint_bytes(data)
    assert (pos["epoch"], pos["step"], pos["extra"]) == (3, 7, {"k": [1, 2]})
    with pf.no_grad():
        assert np.array_equal(pos["model"](_x()).numpy(), model(_x()).numpy())
    with pytest.raises(pf.ModelFormatError, match="the model bytes is not a pyfront model"):
        pf.load_bytes(data)


# ---- modes ----

def _mode(path):
    return os.stat(path).st_mode & 0o7777


def test_a_new_file_follows_the_umask(model, tmp_path):
    before = os.umask(0o022)
    try:
        pf.save(model, tmp_path / "a.pf")
        os.umask(0o077)
        pf.save(model, tmp_path / "b.pf")
        os.umask(0o002)
        pf.save_checkpoint(tmp_path / "c.pfc", model)
    finally:
        os.umask(before)
    assert (_mode(tmp_path / "a.pf"), _mode(tmp_path / "b.pf"), _mode(tmp_path / "c.pfc")) \
        == (0o644, 0o600, 0o664)


def test_saving_over_a_file_keeps_its_mode(model, tmp_path):
    path = tmp_path / "m.pf"
    before = os.umask(0o077)
    try:
        for mode in (0o644, 0o640, 0o604):
            path.write_bytes(b"old")
            os.chmod(path, mode)
            pf.save(model, path)
            assert _mode(path) == mode
            assert pf.load(path) is not None
    finally:
        os.umask(before)


# ---- temporaries a killed save left ----

_KILLED_SAVE = textwrap.dedent("""
    import sys, time
    from pyfront.io import format as fmt

    def chunks():
        yield b"x" * 100000
        open(sys.argv[2], "w").close()          # the temporary exists now
        time.sleep(600)                         # killed here
        yield b""

    fmt.atomic_write(sys.argv[1], chunks())
""")


def _temporaries(folder):
    return sorted(n for n in os.listdir(folder) if n.endswith(".tmp"))


def test_the_next_save_removes_temporaries_of_killed_saves(model, tmp_path):
    target = tmp_path / "m.pf"
    for i in range(3):
        ready = tmp_path / ("ready%d" % i)
        proc = subprocess.Popen([sys.executable, "-c", _KILLED_SAVE, str(target), str(ready)])
        try:
            deadline = time.time() + 60
            while not ready.exists() and proc.poll() is None and time.time() < deadline:
                time.sleep(0.05)
            assert ready.exists(), "the writer did not start"
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    left = _temporaries(tmp_path)
    assert len(left) == 3 and all(n.startswith(".m.pf.") for n in left)
    assert sum(os.path.getsize(tmp_path / n) for n in left) == 300000
    pf.save(model, target)
    assert _temporaries(tmp_path) == []
    assert pf.load(target) is not None


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_only_stale_temporaries_of_the_same_target_are_removed(model, tmp_path):
    host = fmt._host_tag()
    dead, alive = _dead_pid(), os.getpid()
    names = {
        "dead writer": ".m.pf.%s.%d.%s.tmp" % (host, dead, "a" * 16),
        "live writer": ".m.pf.%s.%d.%s.tmp" % (host, alive, "b" * 16),
        "live writer, but hours old": ".m.pf.%s.%d.%s.tmp" % (host, alive, "c" * 16),
        "other machine": ".m.pf.%s.%d.%s.tmp" % ("elsewhere-" + host, dead, "d" * 16),
        "other machine, hours old": ".m.pf.%s.%d.%s.tmp" % ("elsewhere", dead, "e" * 16),
        "older pyfront (mkstemp)": ".m.pf.k2j4_x9q.tmp",
        "older pyfront, hours old": ".m.pf.a8dk3m1z.tmp",
        "another target": ".m.pf.x.%s.%d.%s.tmp" % (host, dead, "f" * 16),
        "another target, hours old": ".n.pf.%s.%d.%s.tmp" % (host, dead, "0" * 16),
        "not a temporary": ".m.pf.notes",
    }
    old = time.time() - 2 * fmt.STALE_TEMPORARY_SECONDS
    for what, name in names.items():
        (tmp_path / name).write_bytes(b"x")
        if "hours old" in what:
            os.utime(tmp_path / name, (old, old))
    pf.save(model, tmp_path / "m.pf")
    removed = sorted(what for what, name in names.items() if not (tmp_path / name).exists())
    assert removed == ["dead writer", "live writer, but hours old", "older pyfront, hours old",
                       "other machine, hours old"]


def test_a_0d_tensor_keeps_its_shape_through_the_file(tmp_path):
    from pyfront.io.format import decode, encode

    data = b"".join(encode({"step": np.array(3, np.int64), "v": np.zeros((2,), np.float32)},
                           {"k": "v"}))
    tensors, _ = decode(data)
    assert tensors["step"].shape == () and int(tensors["step"]) == 3


def test_a_dict_of_tensors_saves_and_loads_as_one(model, tmp_path):
    # torch.save(model.state_dict(), path)'s pattern: the named tensors alone, in the safe file
    import pyfront as pf
    from pyfront.io.model import load_model

    path = tmp_path / "weights.pf"
    pf.save(model.state_dict(), path)
    back = pf.load(path)
    assert sorted(back) == sorted(model.state_dict())
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(back[key].numpy(), np.asarray(value))
    model.load_state_dict(back)
    with pytest.raises(pf.ModelFormatError, match="holds named tensors .*not a model"):
        load_model(path)
    with pytest.raises(pf.ModelFormatError, match="not a pyfront checkpoint file"):
        pf.load_checkpoint(path)
    with pytest.raises(TypeError, match="'step' is of type int; a dict to save holds tensors"):
        pf.save({"step": 3}, tmp_path / "bad.pf")
