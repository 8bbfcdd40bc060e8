"""The thread pool keeps each chunk of a job on the same thread, job after job (issue 12, item
3): a compiled model's layer then finds its rows' weights in the cache of the core that read
them last time. A thread runs another's chunk only when that one was not scheduled in time."""
import collections
import os
import threading
import time

import pytest

import pyfront as pf
import pyfront._native as pyfront_native


@pytest.fixture
def pool_calls():
    """pf_parallel_for of the loaded library, called through cffi's ABI mode (the same shared
    object, so the same pool), with a Python task recording which thread ran each chunk."""
    cffi = pytest.importorskip("cffi")
    ffi = cffi.FFI()
    ffi.cdef("void pf_parallel_for(int64_t n, int64_t grain, "
             "void (*fn)(void *ctx, int64_t begin, int64_t end), void *ctx);")
    native = ffi.dlopen(pyfront_native.__file__)
    runs = []

    @ffi.callback("void(void *, int64_t, int64_t)")
    def task(ctx, begin, end):
        runs.append((begin, threading.get_native_id()))
        time.sleep(0.002)  # long enough for every worker to wake, even on a busy machine

    before = pf.get_num_threads()
    yield lambda n: native.pf_parallel_for(n, 1, task, ffi.NULL), runs
    pf.set_num_threads(before)


def test_each_chunk_stays_on_its_thread(pool_calls):
    call, runs = pool_calls
    pf.set_num_threads(3)
    for _ in range(100):
        call(3)
    assert sorted(collections.Counter(b for b, _ in runs).values()) == [100, 100, 100]
    caller = threading.get_native_id()
    by_thread = collections.defaultdict(collections.Counter)
    for chunk, thread in runs:
        by_thread[thread][chunk] += 1
    # the caller's own chunk is 0; each worker's is another one, its own, call after call
    # (steals happen only when a thread was not scheduled: a loaded machine allows a few)
    assert by_thread[caller].most_common(1)[0][0] == 0
    homes = {}
    for thread, chunks in by_thread.items():
        home, count = chunks.most_common(1)[0]
        homes[thread] = home
        assert count >= 0.75 * sum(chunks.values()), (thread, dict(chunks))
    workers = [t for t in homes if t != caller]
    assert len({homes[t] for t in workers}) == len(workers) and 0 not in \
        {homes[t] for t in workers}, homes


def _cpu_seconds(tid):
    """A thread's CPU time so far (Linux schedstat: nanoseconds on the CPU)."""
    with open("/proc/self/task/%d/schedstat" % tid) as f:
        return int(f.read().split()[0]) / 1e9


@pytest.mark.skipif(not hasattr(threading, "get_native_id") or
                    not os.path.exists("/proc/self/task"),
                    reason="reads per-thread CPU time from Linux's /proc")
def test_idle_workers_spin_briefly_then_sleep(pool_calls):
    """After a job a worker spins about 1 ms for the next one (a vCPU left to halt wakes
    slowly), then sleeps: an idle pool costs no CPU."""
    call, runs = pool_calls
    pf.set_num_threads(2)
    caller = threading.get_native_id()
    for _ in range(5):
        call(2)
    workers = {t for _, t in runs if t != caller}
    if not workers:
        pytest.skip("the worker never ran a chunk (the machine gave it no CPU in time)")
    worker = workers.pop()
    call(2)
    before = _cpu_seconds(worker)
    time.sleep(0.3)
    spent = _cpu_seconds(worker) - before
    assert spent < 0.05, "an idle worker used %.1f ms of CPU in 300 ms" % (spent * 1e3)
