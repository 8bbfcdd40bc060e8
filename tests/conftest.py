"""Shared fixtures: a seeded generator, and PyTorch (the reference) when it is installed."""
import numpy as np
import pytest


@pytest.fixture
def rng():
    return np.random.default_rng(20240611)


@pytest.fixture(scope="session")
def torch():
    torch = pytest.importorskip("torch", reason="PyTorch (the [test] extra) is not installed: "
                                "no reference to compare with")
    torch.set_num_threads(1)   # references only: keep the cores for the code under test
    return torch
