"""Datasets and loaders: numpy-backed Dataset and DataLoader, MNIST-format IDX files, and
time-series windowing."""
from . import timeseries  # noqa: F401
from .dataset import DataLoader, Dataset, TensorDataset  # noqa: F401
from .idx import IDXFormatError, load_mnist, read_idx, write_idx  # noqa: F401
