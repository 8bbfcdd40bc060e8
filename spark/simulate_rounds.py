"""Where each way of combining workers stops scaling: a model of one synchronisation's time for
N workers and a model of S bytes, under three exchanges, from constants measured on a machine.

- per-job: one Spark job per round (SparkTrainer's default mode): the job's fixed cost, the
  state broadcast (a torrent: about log2(N) transfers of S deep) and a treeAggregate of the
  results (log2(N) levels, each moving S and summing it);
- ring: the collective mode's ring all-reduce inside long-lived barrier tasks: each rank sends
  2 (N - 1) / N x S and takes 2 (N - 1) latency-bound hops;
- driver: every worker sends S to one process, which sums and sends S back to each (a
  parameter server with one shard, or per-job rounds with combine="driver").

Each exchange is charged against `compute` seconds of work per synchronisation (one step for
SyncSGD, K steps for averaging every K), giving the scaling efficiency compute / (compute +
exchange). Constants: `--measure` measures this machine's loopback bandwidth, ring hop
latency and summing rate; otherwise those recorded here on the development machine are used
(loaded by other work, so slow). `--gbit` replaces the bandwidth by a network's (the loopback
is far faster than most networks); `--job-seconds` the Spark job cost (benchmarks/bench_spark.py
measures it: about 0.33 s on local-cluster here).

    python -m pyfront.spark.simulate_rounds [--measure] [--gbit 10] [--size-mb 1.7]
        [--compute-ms 16] [--workers 2,4,8,16,64,256]
"""
import argparse
import math
import sys
import threading
import time

import numpy as np

# measured on the development machine (2 shared cores, heavily loaded), 2026-12-06
RECORDED = {"bandwidth": 0.55e9,     # bytes/s over loopback (one stream)
            "hop_seconds": 8.0e-5,   # one latency-bound ring hop (small message)
            "sum_rate": 2.5e9,       # bytes/s numpy adds float32 vectors
            "job_seconds": 0.33}     # a Spark job of a round's shape (bench_spark)


def measure():
    """This machine's constants: loopback bandwidth, ring hop latency, summing rate."""
    from .collective import Ring, loopback_floor

    nbytes = 32 << 20
    bandwidth = nbytes / loopback_floor(nbytes, repeats=5)
    rings = [Ring(r, 2, b"simulate", timeout=30) for r in range(2)]
    addresses = [g.address for g in rings]
    times = []

    def go(r):
        rings[r].connect(addresses)
        vec = np.zeros(2, np.float32)
        for i in range(200):
            t = time.perf_counter()
            rings[r].allreduce(vec)
            if r == 0 and i >= 20:
                times.append(time.perf_counter() - t)
        rings[r].close()

    threads = [threading.Thread(target=go, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    hop = float(np.median(times)) / 2          # a 2-rank ring takes 2 hops
    a, b = np.ones(nbytes // 4, np.float32), np.ones(nbytes // 4, np.float32)
    t = time.perf_counter()
    for _ in range(5):
        np.add(a, b, out=a)
    sum_rate = 5 * nbytes / (time.perf_counter() - t)
    return {"bandwidth": bandwidth, "hop_seconds": hop, "sum_rate": sum_rate,
            "job_seconds": RECORDED["job_seconds"]}


def exchange_seconds(kind, n, size, c):
    """Seconds one synchronisation of `size` bytes among `n` workers takes (constants c)."""
    bw, hop, add = c["bandwidth"], c["hop_seconds"], c["sum_rate"]
    depth = math.ceil(math.log2(n)) if n > 1 else 0
    if kind == "per-job":
        return c["job_seconds"] + depth * (size / bw + hop) + depth * (size / bw + size / add)
    if kind == "ring":
        return 2 * (n - 1) / n * size / bw + 2 * (n - 1) * hop + (n - 1) / n * size / add
    if kind == "driver":
        return 2 * n * size / bw + (n - 1) * size / add + 2 * hop
    raise ValueError("exchange is per-job, ring or driver, got %r" % (kind,))


def table(workers, size, compute, c):
    lines = ["model %.2f MB, compute %.1f ms per synchronisation; bandwidth %.2f GB/s, hop "
             "%.0f us, sum %.1f GB/s, Spark job %.2f s"
             % (size / 1e6, compute * 1e3, c["bandwidth"] / 1e9, c["hop_seconds"] * 1e6,
                c["sum_rate"] / 1e9, c["job_seconds"]),
             "%8s  %24s  %24s  %24s" % ("workers", "per-job: s (efficiency)",
                                        "ring: s (efficiency)", "driver: s (efficiency)")]
    for n in workers:
        cells = []
        for kind in ("per-job", "ring", "driver"):
            t = exchange_seconds(kind, n, size, c)
            cells.append("%14.4f (%5.1f%%)" % (t, 100 * compute / (compute + t)))
        lines.append("%8d  %24s  %24s  %24s" % (n, *cells))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measure", action="store_true",
                        help="measure this machine's constants instead of the recorded ones")
    parser.add_argument("--gbit", type=float, help="network bandwidth in Gbit/s")
    parser.add_argument("--job-seconds", type=float, help="a Spark job's fixed cost")
    parser.add_argument("--size-mb", type=float, default=0.9,
                        help="gradient (model) size in MB (default: the reference CNN, 0.9)")
    parser.add_argument("--compute-ms", type=float, default=8.0,
                        help="compute between synchronisations (default one CNN step, 8 ms)")
    parser.add_argument("--workers", default="2,4,8,16,32,64,128,256")
    args = parser.parse_args(argv)
    c = measure() if args.measure else dict(RECORDED)
    if args.gbit:
        c["bandwidth"] = args.gbit * 1e9 / 8
    if args.job_seconds:
        c["job_seconds"] = args.job_seconds
    workers = [int(w) for w in args.workers.split(",")]
    print(table(workers, args.size_mb * 1e6, args.compute_ms / 1e3, c))
    return 0


if __name__ == "__main__":
    sys.exit(main())
