"""`import pyfront.nn.functional as F` ports torch code: F holds the functional model API and the
torch.nn.functional functions that mean here what they mean in torch."""
import numpy as np
import pytest

import pyfront as pf
import pyfront.nn.functional as F
from pyfront.ops import catalog

torch = pytest.importorskip("torch")
TF = torch.nn.functional


def test_every_catalogued_functional_name_is_pyfronts_function():
    names = [k[2:] for family in catalog.TORCH_NAMES.values() for k in family
             if k.startswith("F.") and k[2:].isidentifier() and k != "F.linear"]
    names += list(catalog.TORCH_NAMES["activations (activations part)"])
    assert len(names) > 50
    for name in names:
        assert getattr(F, name) is getattr(pf, name), name
    assert F.Input is pf.nn.Input and F.Model is pf.nn.Model


def test_linear_takes_torchs_weight_layout():
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((3, 4)), rng.standard_normal((5, 4)), rng.standard_normal(5)
    px, pw = pf.tensor(x, requires_grad=True), pf.tensor(w, requires_grad=True)
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    got, want = F.linear(px, pw, pf.tensor(b)), TF.linear(tx, tw, torch.tensor(b))
    np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=1e-12)
    got.sum().backward()
    want.sum().backward()
    np.testing.assert_allclose(pw.grad.numpy(), tw.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(px.grad.numpy(), tx.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(F.linear(pf.tensor(x), pf.tensor(w)).numpy(),
                               TF.linear(torch.tensor(x), torch.tensor(w)).numpy(), rtol=1e-12)


def test_a_torch_style_forward_with_f_matches_torch():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 8, 8))
    w1, b1 = rng.standard_normal((4, 3, 3, 3)), rng.standard_normal(4)
    w2, b2 = rng.standard_normal((5, 64)), rng.standard_normal(5)

    def net(F, x, w1, b1, w2, b2, mod):
        h = F.max_pool2d(F.relu(F.conv2d(x, w1, b1, padding=1)), 2)
        return F.log_softmax(F.linear(mod.flatten(h, 1), w2, b2), dim=1)

    ours = net(F, *(pf.tensor(a) for a in (x, w1, b1, w2, b2)), pf)
    theirs = net(TF, *(torch.tensor(a) for a in (x, w1, b1, w2, b2)), torch)
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-10, atol=1e-12)


def test_a_name_pyfront_lacks_says_what_f_holds():
    with pytest.raises(AttributeError, match="no attribute 'fractional_max_pool2d' "
                       ".*torch.nn.functional"):
        F.fractional_max_pool2d
