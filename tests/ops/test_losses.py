"""Losses of issue 10 against PyTorch (values and gradients, float64), including class weights,
ignore_index, label smoothing, class-probability targets and (N, C, *positions) logits; eager
equals compiled."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import pyfront as pf


def _check(pf_fn, torch_fn, arrays, wrt, rng, tol=1e-10):
    ts = [torch.tensor(a, requires_grad=i in wrt) for i, a in enumerate(arrays)]
    want = torch_fn(*ts)
    ps = [pf.tensor(a, requires_grad=i in wrt) for i, a in enumerate(arrays)]
    got = pf_fn(*ps)
    np.testing.assert_allclose(got.numpy(), want.detach().numpy(), rtol=tol, atol=tol)
    seed = rng.standard_normal(tuple(want.shape))
    want.backward(torch.tensor(seed))
    got.backward(pf.tensor(seed))
    for i in wrt:
        np.testing.assert_allclose(ps[i].grad.numpy(), ts[i].grad.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("shape", [(5, 4), (3, 4, 2, 3)])
def test_cross_entropy_weights_ignore_index_smoothing(reduction, shape, rng):
    z = rng.standard_normal(shape)
    labels = rng.integers(0, 4, (shape[0],) + shape[2:])
    labels.flat[1] = -100
    w = rng.uniform(0.5, 2.0, 4)
    for kw in [{}, {"weight": w}, {"label_smoothing": 0.2}, {"weight": w, "label_smoothing": 0.3},
               {"ignore_index": 2}]:
        tkw = dict(kw, weight=torch.tensor(w)) if "weight" in kw else kw
        lab = np.where(labels < 0, 2, labels) if "ignore_index" in kw else labels
        _check(lambda a: pf.cross_entropy(a, lab, reduction=reduction, **kw),
               lambda a: F.cross_entropy(a, torch.tensor(lab), reduction=reduction, **tkw),
               [z], (0,), rng)


def test_cross_entropy_with_class_probabilities(rng):
    z = rng.standard_normal((5, 4, 3))
    target = rng.dirichlet(np.ones(4), (5, 3)).transpose(0, 2, 1).copy()
    w = rng.uniform(0.5, 2.0, 4)
    for kw in [{}, {"label_smoothing": 0.1}]:
        for weight in (None, w):
            _check(lambda a, t: pf.cross_entropy(a, t, weight=weight, **kw),
                   lambda a, t: F.cross_entropy(a, t, weight=None if weight is None else
                                                torch.tensor(weight), **kw),
                   [z, target], (0, 1), rng)
    with pytest.raises(pf.ShapeError, match=r"cross_entropy: target probabilities \(5, 4\) do "
                                            r"not fit logits \(5, 4, 3\)"):
        pf.cross_entropy(pf.tensor(z), pf.tensor(target[:, :, 0]))


def test_nll_loss(rng):
    logp = np.log(rng.dirichlet(np.ones(3), 6))
    labels = rng.integers(0, 3, 6)
    labels[0] = 1
    w = rng.uniform(0.5, 2.0, 3)
    for reduction in ("mean", "sum", "none"):
        _check(lambda a: pf.nll_loss(a, labels, weight=w, ignore_index=1, reduction=reduction),
               lambda a: F.nll_loss(a, torch.tensor(labels), weight=torch.tensor(w),
                                    ignore_index=1, reduction=reduction), [logp], (0,), rng)


def test_binary_cross_entropy_and_with_logits(rng):
    z = rng.standard_normal((4, 3)) * 3
    t = rng.uniform(0, 1, (4, 3))
    w = rng.uniform(0.5, 2.0, (1, 3))
    pw = rng.uniform(0.5, 3.0, 3)
    p = 1 / (1 + np.exp(-z))
    _check(lambda a, b: pf.binary_cross_entropy(a, b, weight=w),
           lambda a, b: F.binary_cross_entropy(a, b, weight=torch.tensor(w)), [p, t], (0, 1), rng)
    _check(lambda a, b: pf.binary_cross_entropy_with_logits(a, b, weight=w, pos_weight=pw,
                                                            reduction="sum"),
           lambda a, b: F.binary_cross_entropy_with_logits(a, b, weight=torch.tensor(w),
                                                           pos_weight=torch.tensor(pw),
                                                           reduction="sum"), [z, t], (0, 1), rng)
    # probabilities of exactly 0 and 1: the log is clamped at -100 as in PyTorch
    edge = np.array([0.0, 1.0, 0.5])
    got = pf.binary_cross_entropy(pf.tensor(edge), pf.tensor([1.0, 0.0, 1.0]), reduction="none")
    np.testing.assert_allclose(got.numpy(), [100.0, 100.0, np.log(2)])
    big = np.array([80.0, -80.0])
    np.testing.assert_allclose(pf.binary_cross_entropy_with_logits(
        pf.tensor(big), pf.tensor([0.0, 1.0]), reduction="none").numpy(), [80.0, 80.0])


def test_regression_and_ranking_losses(rng):
    a, b = rng.standard_normal((6, 3)) * 2, rng.standard_normal((6, 3))
    for reduction in ("mean", "sum", "none"):
        _check(lambda x, y: pf.huber_loss(x, y, reduction, delta=1.5),
               lambda x, y: F.huber_loss(x, y, reduction=reduction, delta=1.5), [a, b], (0, 1), rng)
        _check(lambda x, y: pf.smooth_l1_loss(x, y, reduction, beta=0.5),
               lambda x, y: F.smooth_l1_loss(x, y, reduction=reduction, beta=0.5), [a, b], (0, 1),
               rng)
        _check(lambda x, y: pf.l1_loss(x, y, reduction),
               lambda x, y: F.l1_loss(x, y, reduction=reduction), [a, b], (0, 1), rng)
    y = np.sign(rng.standard_normal(6))
    _check(lambda x1, x2: pf.margin_ranking_loss(x1, x2, y, margin=0.3),
           lambda x1, x2: F.margin_ranking_loss(x1, x2, torch.tensor(y), margin=0.3),
           [a[:, 0], b[:, 0]], (0, 1), rng)
    for axis in (1, -1, 0):
        _check(lambda x1, x2: pf.cosine_similarity(x1, x2, axis),
               lambda x1, x2: F.cosine_similarity(x1, x2, axis), [a, b], (0, 1), rng)
    _check(lambda x1, x2: pf.cosine_similarity(x1, x2),        # broadcast, one zero vector
           lambda x1, x2: F.cosine_similarity(x1, x2), [a, np.zeros((1, 3))], (0,), rng)


def test_kl_div(rng):
    logq = np.log(rng.dirichlet(np.ones(4), 5))
    p = rng.dirichlet(np.ones(4), 5)
    p[0, 1] = 0.0
    for reduction in ("batchmean", "sum", "mean", "none"):
        _check(lambda a, b: pf.kl_div(a, b, reduction),
               lambda a, b: F.kl_div(a, b, reduction=reduction), [logq, p], (0,), rng)
    _check(lambda a, b: pf.kl_div(a, b, "batchmean", log_target=True),
           lambda a, b: F.kl_div(a, b, reduction="batchmean", log_target=True),
           [logq, np.log(p + 0.1)], (0, 1), rng)


def test_losses_compiled_equal_eager(rng):
    z = rng.standard_normal((4, 3)).astype(np.float32)
    labels = np.array([0, 2, -100, 1])
    t = rng.uniform(0, 1, (4, 3)).astype(np.float32)

    def total(a, b):
        return (pf.cross_entropy(a, labels, weight=[1.0, 2.0, 0.5], label_smoothing=0.1)
                + pf.binary_cross_entropy_with_logits(a, b) + pf.huber_loss(a, b)
                + pf.kl_div(pf.log_softmax(a), pf.softmax(b), "batchmean"))
    eager = total(pf.tensor(z), pf.tensor(t)).numpy()
    compiled = pf.jit(total)(pf.tensor(z), pf.tensor(t)).numpy()
    np.testing.assert_allclose(compiled, eager, rtol=1e-6)
    assert pf.losses.get("huber") is pf.huber_loss
