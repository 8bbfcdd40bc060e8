"""How workers' results become one update: synchronous gradient summing, or parameter
averaging after K local steps."""

__all__ = ["SyncSGD", "ParameterAveraging"]


class SyncSGD:
    """Every round is one optimizer step: each worker computes the gradient of its share of
    the global batch (batch_size_per_worker rows), the sums are combined and the driver applies
    the optimizer. The same arithmetic as single-machine training on the global batch."""

    name = "sync"
    frequency = 1

    def __repr__(self):
        return "SyncSGD()"


class ParameterAveraging:
    """Deeplearning4j-style: from the broadcast weights and optimizer state, each worker runs
    `frequency` local steps on its own rows; weights and optimizer state are then averaged,
    weighted by the rows each worker trained on. Larger K means fewer Spark jobs per epoch
    (less overhead) but workers that drift further apart between averages."""

    name = "average"

    def __init__(self, frequency=8):
        if not isinstance(frequency, int) or frequency < 1:
            raise ValueError("ParameterAveraging: frequency must be a positive int, got %r"
                             % (frequency,))
        self.frequency = frequency

    def __repr__(self):
        return "ParameterAveraging(frequency=%d)" % self.frequency
