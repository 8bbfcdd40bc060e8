"""Same name, same meaning (issue 10 item 8): the op names a PyTorch user calls most exist in
pyfront under the same or a documented name (pyfront.ops.catalog.TORCH_NAMES, whose families
say which part of the issue owns a missing one); dim=/keepdim= alias axis=/keepdims= on every
function and method; split, flatten and cat mean what the docs say; the README's op table is
the generated one."""
import inspect
import os

import numpy as np
import pytest
import torch

import pyfront as pf
from pyfront.ops import catalog

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _resolve(path):
    owner, name = pf, path
    if path.startswith("nn."):
        owner, name = pf.nn, path[3:]
    elif path.startswith("Tensor."):
        owner, name = pf.Tensor, path[7:]
    for part in name.split("."):            # nn.init.xavier_uniform_
        owner = getattr(owner, part, None)
    return owner


def _attr_path(owner, dotted):
    for part in dotted.split("."):
        if not hasattr(owner, part):
            return False
        owner = getattr(owner, part)
    return True


def test_every_listed_pytorch_name_exists_in_pyfront():
    missing = {}
    for family, names in catalog.TORCH_NAMES.items():
        for torch_name, mapped in names.items():
            if _resolve(catalog.pyfront_name(torch_name, mapped)) is None:
                missing.setdefault(family, []).append(torch_name)
    assert not missing, "PyTorch names without a pyfront op, by family: %s" % missing


def test_the_list_names_real_pytorch_functions():
    # the left column is PyTorch's: a typo there would test nothing
    import torch.nn.functional as F

    for names in catalog.TORCH_NAMES.values():
        for torch_name in names:
            if " " in torch_name or "(" in torch_name:
                continue
            if torch_name.startswith("F."):
                assert hasattr(F, torch_name[2:]), torch_name
            elif torch_name.startswith("nn."):
                assert _attr_path(torch.nn, torch_name[3:]), torch_name
            elif torch_name.startswith("Tensor."):
                assert hasattr(torch.Tensor, torch_name[7:]), torch_name
            elif torch_name.startswith("torch."):
                owner = torch
                for part in torch_name.split(".")[1:]:
                    owner = getattr(owner, part)
            else:
                assert any(hasattr(owner, torch_name) for owner in (torch, torch.Tensor, F)), \
                    torch_name


def test_dim_and_keepdim_are_aliases_everywhere(rng):
    x = rng.standard_normal((2, 3, 4))
    t = pf.tensor(x)
    np.testing.assert_allclose(pf.sum(t, dim=1, keepdim=True).numpy(),
                               x.sum(1, keepdims=True))
    np.testing.assert_allclose(t.mean(dim=-1).numpy(), x.mean(-1))
    np.testing.assert_allclose(pf.softmax(t, dim=0).numpy(),
                               torch.softmax(torch.tensor(x), dim=0).numpy())
    np.testing.assert_array_equal(pf.cat([t, t], dim=2).numpy(), np.concatenate([x, x], 2))
    np.testing.assert_array_equal(pf.flip(t, dims=(0, 2)).numpy(), np.flip(x, (0, 2)))
    assert t.transpose(dim0=0, dim1=2).shape == (4, 3, 2)
    assert [p.shape for p in t.split(2, dim=2)] == [(2, 3, 2), (2, 3, 2)]
    # PyTorch's other argument names
    ix = pf.tensor([[0], [2], [1]])
    np.testing.assert_array_equal(pf.gather(t[0], dim=1, index=ix).numpy(),
                                  np.take_along_axis(x[0], ix.numpy(), 1))
    np.testing.assert_array_equal(pf.tril(t[0], diagonal=-1).numpy(), np.tril(x[0], -1))
    np.testing.assert_array_equal(pf.diagonal(t, 0, dim1=1, dim2=2).numpy(),
                                  np.diagonal(x, 0, 1, 2))
    logits, labels = pf.tensor(x[0]), pf.tensor([1, 2, 0])
    assert float(pf.cross_entropy(logits, target=labels).item()) == \
        float(pf.cross_entropy(logits, labels).item())
    assert pf.one_hot(labels, num_classes=4).shape == (3, 4)
    img = rng.standard_normal((2, 3, 8, 8))
    np.testing.assert_allclose(
        pf.max_pool2d(pf.tensor(img), kernel_size=2, stride=2).numpy(),
        torch.nn.functional.max_pool2d(torch.tensor(img), kernel_size=2, stride=2).numpy())
    w = rng.standard_normal((4, 3, 3, 3))
    np.testing.assert_allclose(
        pf.conv2d(pf.tensor(img), pf.tensor(w), stride=2, padding=1).numpy(),
        torch.nn.functional.conv2d(torch.tensor(img), torch.tensor(w), stride=2,
                                   padding=1).numpy(), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(pf.leaky_relu(t, negative_slope=0.2).numpy(),
                               torch.nn.functional.leaky_relu(torch.tensor(x), 0.2).numpy())
    np.testing.assert_array_equal(pf.dropout(t, p=0.0).numpy(), x)
    # weight= is not kernel=: F.linear's weight is (out, in), pf.linear's kernel (in, out)
    with pytest.raises(TypeError):
        pf.linear(t, weight=pf.tensor(x[0].T))
    with pytest.raises(TypeError, match="sum: got both axis= and its alias dim="):
        pf.sum(t, axis=0, dim=1)
    # every public function and method that takes axis= also takes dim=
    for name in pf.ops.__all__:
        fn = getattr(pf, name)
        if inspect.isfunction(fn) and "axis" in inspect.signature(
                inspect.unwrap(fn)).parameters:
            assert "dim" in getattr(fn, "torch_aliases", {}) or \
                "dim" in inspect.signature(inspect.unwrap(fn)).parameters, name


def test_split_chunk_flatten_and_cat_mean_what_the_docs_say(rng):
    x = rng.standard_normal((5, 2))
    assert [p.shape[0] for p in pf.split(pf.tensor(x), 2)] == [2, 2, 1]        # PyTorch's
    assert [p.shape[0] for p in pf.array_split(pf.tensor(x), 2)] == [3, 2]     # NumPy's
    assert [p.shape[0] for p in pf.chunk(pf.tensor(x), 2)] == [3, 2]
    assert pf.flatten(pf.zeros(2, 3, 4)).shape == (2, 12)
    assert "start_dim=1" in pf.flatten.__doc__ and "torch.flatten's default is 0" in \
        pf.flatten.__doc__
    assert pf.cat is pf.concat or inspect.unwrap(pf.cat) is inspect.unwrap(pf.concat)


def test_readme_op_table_is_the_generated_one():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    assert catalog.op_table() in readme, \
        "README.md's op table is stale: run python -m pyfront.ops.catalog --write README.md"
