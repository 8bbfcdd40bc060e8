"""How workers' results become one update: synchronous gradient summing, or parameter
averaging after K local steps; per-job rounds (default) or a collective mode (one barrier job
per epoch whose tasks all-reduce among themselves)."""

__all__ = ["SyncSGD", "ParameterAveraging"]


class _Collective:
    """collective=True: every epoch is one barrier-mode Spark job; its tasks stay alive for the
    whole epoch and sum with a ring all-reduce over TCP between executors (spark/collective.py)
    instead of one Spark job per round. timeout: seconds any wait on a peer may last before
    the stage fails (and Spark retries it); ports: (low, high) range the tasks (and the
    driver's rendezvous) listen in (default any free port). rendezvous: how a stage's tasks
    learn each other's addresses: "driver" (default: they register with a small
    authenticated service on the driver, milliseconds) or "spark"
    (BarrierTaskContext.allGather, which takes at least a second per epoch, for clusters
    whose executors cannot open a connection to the driver on another port).
    keep_partitions: each task keeps its partition's rows in its Python worker after an epoch,
    so later epochs read nothing from Spark (the executor's sort and Arrow conversion of the
    whole partition ran before every epoch's first step): True (default) keeps up to 1 GiB a
    task, an int is that limit in bytes, False keeps nothing. A task whose partition is larger
    reads every epoch from Spark's cache, as do all tasks after a lost Python worker."""

    KEEP_DEFAULT_BYTES = 1 << 30

    def _set_collective(self, collective, timeout, ports, rendezvous="driver",
                        keep_partitions=True):
        if timeout <= 0:
            raise ValueError("%s: timeout must be positive seconds, got %r"
                             % (type(self).__name__, timeout))
        if ports is not None and not (len(ports) == 2 and 0 < int(ports[0]) <= int(ports[1])
                                      < 65536):
            raise ValueError("%s: ports is a (low, high) range of TCP ports, got %r"
                             % (type(self).__name__, ports))
        if rendezvous not in ("driver", "spark"):
            raise ValueError("%s: rendezvous is 'driver' or 'spark', got %r"
                             % (type(self).__name__, rendezvous))
        if isinstance(keep_partitions, bool):
            keep = self.KEEP_DEFAULT_BYTES if keep_partitions else 0
        elif isinstance(keep_partitions, int) and keep_partitions >= 0:
            keep = keep_partitions
        else:
            raise ValueError("%s: keep_partitions is True, False or a limit in bytes (an int "
                             ">= 0), got %r" % (type(self).__name__, keep_partitions))
        self.keep_bytes = keep
        self.collective = bool(collective)
        self.rendezvous = rendezvous
        self.timeout = float(timeout)
        self.ports = None if ports is None else (int(ports[0]), int(ports[1]))

    def _collective_repr(self):
        return ", collective=True" if self.collective else ""


class SyncSGD(_Collective):
    """Every round is one optimizer step: each worker computes the gradient of its share of
    the global batch (batch_size_per_worker rows), the sums are combined and the optimizer
    applied. The same arithmetic as single-machine training on the global batch. With
    collective=True the workers all-reduce the gradients every step and each applies the same
    update itself (one barrier job per epoch)."""

    name = "sync"
    frequency = 1

    def __init__(self, collective=False, timeout=120.0, ports=None, rendezvous="driver",
                 keep_partitions=True):
        self._set_collective(collective, timeout, ports, rendezvous, keep_partitions)

    def __repr__(self):
        return "SyncSGD(%s)" % self._collective_repr()[2:]


class ParameterAveraging(_Collective):
    """Deeplearning4j-style: from the broadcast weights and optimizer state, each worker runs
    `frequency` local steps on its own rows; weights and optimizer state are then averaged,
    weighted by the rows each worker trained on. Larger K means fewer Spark jobs per epoch
    (less overhead) but workers that drift further apart between averages. With
    collective=True the average is an all-reduce among the tasks of one barrier job per
    epoch, so a small K no longer costs a Spark job per average."""

    name = "average"

    def __init__(self, frequency=8, collective=False, timeout=120.0, ports=None,
                 rendezvous="driver", keep_partitions=True):
        if not isinstance(frequency, int) or frequency < 1:
            raise ValueError("ParameterAveraging: frequency must be a positive int, got %r"
                             % (frequency,))
        self.frequency = frequency
        self._set_collective(collective, timeout, ports, rendezvous, keep_partitions)

    def __repr__(self):
        return "ParameterAveraging(frequency=%d%s)" % (self.frequency, self._collective_repr())
