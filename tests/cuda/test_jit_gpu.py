"""pf.jit of a model on a GPU, checked without one (conftest's stand-in): compiled plans run on
the CPU only so far, so the signature runs eagerly on the GPU, with pf.jit's warning, to the
CPU's numbers."""
import numpy as np
import pytest

import pyfront as pf
from pyfront import nn


def test_jit_of_a_gpu_model_runs_eagerly_there_with_a_warning(fake_gpu):
    pf.random.seed(2)
    model = nn.Sequential([nn.Dense(5, activation="relu", in_features=4), nn.Dense(3,
                                                                                  in_features=5)])
    x = np.random.default_rng(3).standard_normal((6, 4)).astype(np.float32)
    want = model(pf.tensor(x)).numpy()
    model.to("cuda:1")
    compiled = pf.jit(model)
    with pytest.warns(RuntimeWarning, match=r"tensors on cuda:1, and compiled plans run on the "
                      r"CPU only so far\. Inputs \[\(6, 4\)\] run eagerly from now on"):
        y = compiled(pf.tensor(x).to("cuda:1"))
    assert y.device == "cuda:1"
    np.testing.assert_allclose(y.cpu().numpy(), want, rtol=1e-6)
