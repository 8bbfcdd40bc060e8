"""Large tensors reuse host memory (pyfront.backend.cpu.host_empty): a block goes back to the
cache only when the last array or view on it is gone, and the next tensor of its size takes
it instead of page-faulting fresh memory in; small tensors and other libraries' arrays are
untouched; PYFRONT_CACHE_HOST_MEMORY=0 turns it off."""
import os
import subprocess
import sys

import numpy as np

import pyfront as pf
from pyfront.backend import cpu

_BIG = (1024, 1024)            # 4 MiB of float32: above cpu.CACHE_MIN_BYTES


def _address(a):
    return a.__array_interface__["data"][0]


def test_a_dropped_large_result_is_reused_and_a_live_view_keeps_its_memory():
    x = pf.tensor(np.ones(_BIG, np.float32))
    y = x * 2.0
    where = _address(y.numpy())
    view = y.numpy()[3:]                  # outlives the tensor
    del y
    z = x * 3.0                           # must not take the memory the view still reads
    assert _address(z.numpy()) != where
    np.testing.assert_array_equal(view, 2.0)
    del view, z
    # the block freed last is the one handed out next, with the new values
    w = x * 5.0
    last = _address(w.numpy())
    del w
    again = x * 6.0
    assert _address(again.numpy()) == last
    np.testing.assert_array_equal(again.numpy(), 6.0)


def test_small_tensors_use_plain_numpy_memory():
    small = pf.tensor(np.ones(64, np.float32)) * 2.0
    assert small.numpy().base is None or not isinstance(small.numpy().base, cpu._CachedBlock)
    big = pf.tensor(np.ones(_BIG, np.float32)) * 2.0
    root = big.numpy()
    while isinstance(root.base, np.ndarray):
        root = root.base
    assert isinstance(root.base, cpu._CachedBlock)


def test_release_gives_idle_blocks_back():
    x = pf.tensor(np.ones(_BIG, np.float32))
    del x
    y = pf.tensor(np.ones(_BIG, np.float32)) + 1.0
    del y
    assert cpu.idle_bytes() >= 4 << 20
    assert cpu.release_cached_memory() >= 4 << 20
    assert cpu.idle_bytes() == 0 and not cpu._idle_blocks


def test_the_cache_can_be_turned_off():
    code = ("import numpy as np, pyfront as pf\n"
            "from pyfront.backend import cpu\n"
            "y = pf.tensor(np.ones((1024, 1024), np.float32)) * 2.0\n"
            "print(type(y.numpy().base).__name__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env=dict(os.environ, PYFRONT_CACHE_HOST_MEMORY="0"))
    assert out.stdout.strip() == "NoneType"


def test_sizes_no_longer_asked_for_are_given_back():
    cpu.release_cached_memory()
    for rows in (256, 320, 384, 448):           # four sizes, made and freed once: kept idle
        y = pf.tensor(np.ones((rows, 1024), np.float32)) * 2.0
        del y
    assert cpu.idle_bytes() >= (256 + 320 + 384 + 448) * 4096
    x = pf.tensor(np.ones((512, 1024), np.float32))
    for _ in range(cpu.CACHE_AGE + 64):         # a loop on one other size
        y = x * 2.0
        del y
    assert cpu.idle_bytes() == 512 * 4096           # only its own block is left idle


def test_threads_never_share_a_block():
    import threading

    x = pf.tensor(np.ones(_BIG, np.float32))
    errors = []

    def work(k):
        try:
            for i in range(40):
                y = x * float(k + i)              # made and dropped while the others run
                if not (y.numpy()[::97, ::89] == k + i).all():
                    errors.append((k, i))
        except Exception as e:                    # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(k * 100,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
