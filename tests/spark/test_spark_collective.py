"""The ring all-reduce of the collective mode, on loopback with one thread per rank (no Spark):
exact sums, the same bits on every rank and every run, a wrong secret refused, a dead peer
named in the error after the timeout."""
import threading

import numpy as np
import pytest

from pyfront.spark.collective import CollectiveError, Rendezvous, Ring, loopback_floor, rendezvous


def _run_ranks(n, body, secrets=None, timeout=10.0):
    """Start n rings, connect them, run body(rank, ring) on a thread each; results, errors."""
    rings = [Ring(r, n, (secrets or [b"s" * 32] * n)[r], timeout=timeout) for r in range(n)]
    addresses = [g.address for g in rings]
    results, errors = [None] * n, [None] * n

    def go(r):
        try:
            rings[r].connect(addresses)
            results[r] = body(r, rings[r])
        except Exception as e:          # collected and asserted on by the test
            errors[r] = e
        finally:
            rings[r].close()

    threads = [threading.Thread(target=go, args=(r,)) for r in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results, errors


def _ring_order_sum(parts, n):
    """The sum in the ring's order: chunk c is added up as rank c, c+1, ..., c-1."""
    size = len(parts[0])
    out = np.empty_like(parts[0])
    for c in range(n):
        lo, hi = size * c // n, size * (c + 1) // n
        acc = parts[c][lo:hi].copy()
        for k in range(1, n):
            acc = parts[(c + k) % n][lo:hi] + acc
        out[lo:hi] = acc
    return out


@pytest.mark.parametrize("n,size,dtype", [(2, 1000, np.float32), (3, 1_000_003, np.float32),
                                          (4, 7, np.float64), (3, 2, np.float32)])
def test_allreduce_sums_exactly_and_identically_on_every_rank(n, size, dtype):
    rng = np.random.default_rng(n)
    parts = [rng.standard_normal(size).astype(dtype) for _ in range(n)]
    results, errors = _run_ranks(n, lambda r, ring: ring.allreduce(parts[r].copy()))
    assert errors == [None] * n
    expected = _ring_order_sum(parts, n)
    for res in results:
        np.testing.assert_array_equal(res, expected)          # bit for bit, every rank
    np.testing.assert_allclose(expected, np.sum(parts, axis=0, dtype=np.float64),
                               rtol=1e-5, atol=1e-5)
    again, _ = _run_ranks(n, lambda r, ring: ring.allreduce(parts[r].copy()))
    np.testing.assert_array_equal(again[0], results[0])       # and run after run


def test_integers_in_floats_sum_exactly_over_many_calls():
    def body(r, ring):
        # a float32 vector first: its kept receive buffer then serves float64 sums
        ring.allreduce(np.ones(9, np.float32))
        return [ring.allreduce(np.full(10, float(r + i), np.float64)).copy() for i in range(50)]

    rings = []
    results, errors = _run_ranks(3, lambda r, ring: rings.append(ring) or body(r, ring))
    assert errors == [None] * 3
    for ring in rings:
        assert ring.stats["calls"] == 51 and ring.stats["bytes"] == 36 + 50 * 80
        assert 0 < ring.stats["wait_seconds"] <= ring.stats["seconds"]
    for i in range(50):
        assert results[2][i].tolist() == [3.0 + 3 * i] * 10


def test_a_wrong_secret_is_refused():
    results, errors = _run_ranks(2, lambda r, ring: ring.allreduce(np.ones(4, np.float32)),
                                 secrets=[b"a" * 32, b"b" * 32], timeout=5.0)
    assert all(isinstance(e, CollectiveError) for e in errors), errors
    assert any("failed authentication" in str(e) for e in errors), errors


def test_a_dead_peer_times_out_with_its_rank_and_address():
    rings = [Ring(r, 2, b"k" * 32, timeout=1.5) for r in range(2)]
    addresses = [g.address for g in rings]
    rings[1].close()                         # rank 1 never comes: nobody listens there
    with pytest.raises(CollectiveError) as info:
        rings[0].connect(addresses)
    assert "rank 1 at %s" % addresses[1] in str(info.value)
    rings[0].close()


def test_a_hung_peer_times_out_naming_it():
    def body(r, ring):
        if r == 1:
            threading.Event().wait(3.0)      # connected, but never sends
            return None
        return ring.allreduce(np.ones(8, np.float32))

    results, errors = _run_ranks(2, body, timeout=1.0)
    assert isinstance(errors[0], CollectiveError)
    assert "timed out" in str(errors[0]) and "rank 1 at 127.0.0.1:" in str(errors[0])


def test_ports_range_is_respected_and_exhaustion_is_named():
    import socket

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    ring = Ring(0, 1, b"k", ports=(port, port))
    assert ring.address == "127.0.0.1:%d" % port
    with pytest.raises(CollectiveError, match="no free port on 127.0.0.1 in the range %d-%d"
                       % (port, port)):
        Ring(0, 1, b"k", ports=(port, port))
    ring.close()


def _meet(server, secret, key, ranks, size, timeout=5.0):
    """rendezvous() of each rank in `ranks` on a thread; results and errors by rank."""
    results, errors = {}, {}

    def go(r):
        try:
            results[r] = rendezvous(server.address, secret, key, r, size, "host%d:%d" % (r, r),
                                    timeout)
        except Exception as e:          # collected and asserted on by the test
            errors[r] = e

    threads = [threading.Thread(target=go, args=(r,)) for r in ranks]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    return results, errors


def test_rendezvous_gives_every_rank_the_addresses_in_rank_order_per_stage_key():
    with Rendezvous(b"s" * 32, timeout=5.0) as server:
        results, errors = _meet(server, b"s" * 32, "7", [2, 0, 1], 3)
        assert errors == {}
        assert results == {r: ["host0:0", "host1:1", "host2:2"] for r in range(3)}
        results, errors = _meet(server, b"s" * 32, "8", [1, 0], 2)
        assert errors == {} and results[0] == results[1] == ["host0:0", "host1:1"]


def test_rendezvous_drops_a_rank_of_a_failed_attempt_whose_task_is_gone():
    with Rendezvous(b"s" * 32, timeout=5.0) as server:
        # attempt 0: rank 0 registers, then its task dies before rank 1 comes
        _, errors = _meet(server, b"s" * 32, "7", [0], 2, timeout=0.3)
        assert "timed out" in str(errors[0])
        # attempt 1 (same stage id): both ranks anew; the dead registration is not used
        results, errors = _meet(server, b"s" * 32, "7", [1, 0], 2)
        assert errors == {} and results[0] == ["host0:0", "host1:1"]


def test_rendezvous_refuses_a_wrong_secret_and_times_out_naming_the_missing_ranks():
    with Rendezvous(b"s" * 32, timeout=5.0) as server:
        _, errors = _meet(server, b"x" * 32, "1", [0], 2)
        assert "failed authentication" in str(errors[0])
        assert "rendezvous at %s" % server.address in str(errors[0])
        # rank 1 never registers: rank 0 gives up after its timeout, saying why
        _, errors = _meet(server, b"s" * 32, "2", [0], 2, timeout=0.5)
        assert isinstance(errors[0], CollectiveError)
        assert "timed out waiting for the driver's rendezvous" in str(errors[0])
        assert "waiting for the other 1 rank(s) of the stage to register" in str(errors[0])


def test_loopback_floor_is_positive():
    assert 0 < loopback_floor(1 << 20, repeats=3) < 5


def test_the_simulation_charges_each_exchange_its_traffic():
    from pyfront.spark.simulate_rounds import RECORDED, exchange_seconds, main

    c = dict(RECORDED, hop_seconds=0.0, sum_rate=float("inf"), bandwidth=1e9)
    size = 1e8                                           # 0.1 s per copy at 1 GB/s
    assert exchange_seconds("ring", 4, size, c) == pytest.approx(2 * 3 / 4 * 0.1)
    assert exchange_seconds("driver", 4, size, c) == pytest.approx(2 * 4 * 0.1)
    assert exchange_seconds("per-job", 4, size, c) == pytest.approx(c["job_seconds"] + 4 * 0.1)
    # the ring's traffic per rank stays under 2 copies however many workers
    assert exchange_seconds("ring", 256, size, c) < 0.2 < exchange_seconds("driver", 2, size, c)
    with pytest.raises(ValueError, match="per-job, ring or driver"):
        exchange_seconds("tree", 2, size, c)
    assert main(["--workers", "2,8", "--gbit", "10"]) == 0
