"""Datasets over numpy arrays and a loader that batches, shuffles (reproducibly with a seed)
and yields numpy batches."""
import numpy as np

from .. import random

__all__ = ["Dataset", "TensorDataset", "DataLoader"]


class Dataset:
    """Aligned arrays indexed together: Dataset(x, y)[i] -> (x[i], y[i]).

    Subclasses may instead implement __len__ and __getitem__(i) returning one sample (an array
    or a tuple of arrays); the loader then stacks samples into batches.
    """

    def __init__(self, *arrays):
        if not arrays:
            raise ValueError("Dataset needs at least one array")
        arrays = tuple(np.asarray(a) for a in arrays)
        n = len(arrays[0]) if arrays[0].ndim else None
        for i, a in enumerate(arrays):
            if a.ndim == 0 or len(a) != n:
                raise ValueError("Dataset: every array needs the same first dimension; array 0 "
                                 "has shape %s, array %d has %s" % (arrays[0].shape, i, a.shape))
        self.arrays = arrays

    @classmethod
    def from_arrays(cls, *arrays):
        return cls(*arrays)

    def __len__(self):
        return len(self.arrays[0])

    def __getitem__(self, index):
        items = tuple(a[index] for a in self.arrays)
        return items[0] if len(items) == 1 else items

    def batch(self, indices):
        """The samples at `indices` (an int array) stacked: one array per field."""
        items = tuple(a[indices] for a in self.arrays)
        return items[0] if len(items) == 1 else items


TensorDataset = Dataset      # PyTorch's name for aligned arrays (tensors) indexed together


def _stack(samples):
    first = samples[0]
    if isinstance(first, tuple):
        return tuple(np.stack([s[i] for s in samples]) for i in range(len(first)))
    return np.stack(samples)


class DataLoader:
    """Batches of a Dataset as numpy arrays.

    shuffle with a seed gives the same order on every run: pass n of iteration e uses the
    generator seeded with (seed, e) (set_epoch(e) chooses e; it counts up by itself).
    Without a seed, shuffling draws from pyfront.random (pf.random.seed makes it reproducible).
    """

    def __init__(self, dataset, batch_size=32, shuffle=False, seed=None, drop_last=False):
        if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError("DataLoader: batch_size must be a positive int, got %r"
                             % (batch_size,))
        if not isinstance(dataset, Dataset) and not (hasattr(dataset, "__len__") and
                                                     hasattr(dataset, "__getitem__")):
            raise TypeError("DataLoader needs a Dataset (or an object with __len__ and "
                            "__getitem__), got %s" % type(dataset).__name__)
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.seed = seed
        self.drop_last = bool(drop_last)
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = int(epoch)

    def __len__(self):
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def order(self):
        """The sample order of the next pass."""
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        rng = np.random.default_rng([self.seed, self.epoch]) if self.seed is not None \
            else random.generator()
        return rng.permutation(n)

    def __iter__(self):
        order = self.order()
        self.epoch += 1
        fetch = getattr(self.dataset, "batch", None)
        stop = len(self) * self.batch_size if self.drop_last else len(order)
        for start in range(0, stop, self.batch_size):
            idx = order[start:start + self.batch_size]
            if fetch is not None:
                yield fetch(idx)
            else:
                yield _stack([self.dataset[int(i)] for i in idx])
