"""Every axis argument of every op is checked against the rank: [-ndim, ndim), or [-ndim-1, ndim]
where an axis is inserted (expand_dims, stack). Out of range is an AxisError (both an
IndexOutOfRange and a ShapeError) naming the op, the argument and the rank, in eager and in
symbolic mode alike; the boundary axes still give numpy's answers, compiled too. Also split's
sizes and one_hot's labels and class count."""
import re

import numpy as np
import pytest

import pyfront as pf
from pyfront.errors import AxisError


def _softmax(x, axis):
    e = np.exp(x - x.max(axis, keepdims=True))
    return e / e.sum(axis, keepdims=True)


def _permutation(axis, ndim):
    """A full permutation that starts with `axis` (out of range or not)."""
    return (axis,) + tuple(d for d in range(ndim) if d != axis % ndim)


# (op named in the error, argument named, pyfront call, numpy reference, inserts an axis,
#  input shape)
SHAPE = (2, 4, 6)
CASES = [
    ("concat", "axis", lambda x, a: pf.concat([x, x * 2.0], axis=a),
     lambda x, a: np.concatenate([x, x * 2], a), False, SHAPE),
    ("stack", "axis", lambda x, a: pf.stack([x, x * 2.0], axis=a),
     lambda x, a: np.stack([x, x * 2], a), True, SHAPE),
    ("split", "axis", lambda x, a: pf.split(x, 2, axis=a),
     lambda x, a: np.split(x, range(2, x.shape[a], 2), a), False, SHAPE),
    ("array_split", "axis", lambda x, a: pf.array_split(x, 2, axis=a),
     lambda x, a: np.array_split(x, 2, a), False, SHAPE),
    ("take", "axis", lambda x, a: pf.take(x, [1, 0], axis=a),
     lambda x, a: np.take(x, [1, 0], a), False, SHAPE),
    ("take", "axis", lambda x, a: x.take([1, 0], a),
     lambda x, a: np.take(x, [1, 0], a), False, SHAPE),
    ("expand_dims", "axis", lambda x, a: pf.expand_dims(x, a),
     lambda x, a: np.expand_dims(x, a), True, SHAPE),
    ("expand_dims", "axis", lambda x, a: x.unsqueeze(a),
     lambda x, a: np.expand_dims(x, a), True, SHAPE),
    ("squeeze", "axis", lambda x, a: pf.squeeze(x, a),
     lambda x, a: np.squeeze(x, a), False, (1, 4, 1)),
    ("squeeze", "axis", lambda x, a: x.squeeze((a,)),
     lambda x, a: np.squeeze(x, a), False, (1, 4, 1)),
    ("flatten", "start_dim", lambda x, a: pf.flatten(x, a),
     lambda x, a: x.reshape(x.shape[:a % x.ndim] + (-1,)), False, SHAPE),
    ("transpose", "axis0", lambda x, a: pf.transpose(x, a, 1),
     lambda x, a: np.swapaxes(x, a, 1), False, SHAPE),
    ("transpose", "axis1", lambda x, a: x.transpose(0, a),
     lambda x, a: np.swapaxes(x, 0, a), False, SHAPE),
    ("permute", "perm", lambda x, a: pf.permute(x, _permutation(a, 3)),
     lambda x, a: np.transpose(x, _permutation(a, 3)), False, SHAPE),
    ("permute", "perm", lambda x, a: x.permute(*_permutation(a, 3)),
     lambda x, a: np.transpose(x, _permutation(a, 3)), False, SHAPE),
    ("softmax", "axis", lambda x, a: pf.softmax(x, a), _softmax, False, SHAPE),
    ("log_softmax", "axis", lambda x, a: x.log_softmax(a),
     lambda x, a: np.log(_softmax(x, a)), False, SHAPE),
] + [
    (name, "axis", lambda x, a, name=name: getattr(pf, name)(x, axis=a),
     lambda x, a, name=name: getattr(np, name)(x, a), False, SHAPE)
    for name in ("sum", "mean", "max", "min", "argmax", "argmin")
] + [
    ("sum", "axis", lambda x, a: x.sum((a,), keepdims=True),
     lambda x, a: np.sum(x, a, keepdims=True), False, SHAPE),
    ("max", "axis", lambda x, a: x.max(axis=a), lambda x, a: np.max(x, a), False, SHAPE),
]
IDS = ["%s-%d" % (c[0], i) for i, c in enumerate(CASES)]


def _bad_axes(ndim, new_axis):
    size = ndim + 1 if new_axis else ndim
    return [size, size + 3, -size - 1, -size - 5]


def _good_axes(ndim, new_axis):
    size = ndim + 1 if new_axis else ndim
    return [-size, size - 1, 0, -1]


def _message(op, arg, axis, ndim):
    return r"^%s: %s %d is out of range for a tensor of rank %d" % (re.escape(op), arg, axis,
                                                                   ndim)


@pytest.mark.parametrize("op, arg, call, ref, new_axis, shape", CASES, ids=IDS)
def test_out_of_range_axis_raises_in_eager_mode(op, arg, call, ref, new_axis, shape):
    x = pf.ones(*shape)
    for axis in _bad_axes(len(shape), new_axis):
        with pytest.raises(AxisError, match=_message(op, arg, axis, len(shape))) as e:
            call(x, axis)
        # numpy's AxisError is an IndexError and a ValueError; ours is both too
        assert isinstance(e.value, pf.IndexOutOfRange) and isinstance(e.value, pf.ShapeError)
        assert isinstance(e.value, IndexError) and isinstance(e.value, ValueError)


@pytest.mark.parametrize("op, arg, call, ref, new_axis, shape", CASES, ids=IDS)
def test_out_of_range_axis_raises_in_symbolic_mode(op, arg, call, ref, new_axis, shape):
    with pf.Graph():
        x = pf.placeholder("x", shape)
        for axis in _bad_axes(len(shape), new_axis):
            with pytest.raises(AxisError, match=_message(op, arg, axis, len(shape))):
                call(x, axis)


def _as_list(y):
    return list(y) if isinstance(y, (list, tuple)) else [y]


@pytest.mark.parametrize("op, arg, call, ref, new_axis, shape", CASES, ids=IDS)
def test_boundary_axes_work_in_eager_and_compiled_mode(op, arg, call, ref, new_axis, shape,
                                                       rng):
    x = rng.standard_normal(shape)
    for axis in _good_axes(len(shape), new_axis):
        want = _as_list(ref(x, axis))
        got = _as_list(call(pf.tensor(x), axis))
        assert len(got) == len(want)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g.numpy(), w, rtol=1e-12, atol=1e-12)
        g = pf.Graph()
        with g:
            outs = _as_list(call(pf.placeholder("x", shape, "float64"), axis))
        results = g.compile(outputs=outs).run({"x": x})
        for o, w in zip(outs, want):
            np.testing.assert_allclose(results[o.name], w, rtol=1e-12, atol=1e-12)


def test_shape_rules_check_axis_attributes_from_any_source():
    """An op applied directly (as a graph file's node is) is checked by its shape rule."""
    x = pf.ones(2, 3)
    for name, attrs in [("concat", {"axis": 2}), ("take", {"axis": 2}),
                        ("sum", {"axes": (2,), "keepdims": False}), ("softmax", {"axis": 2})]:
        inputs = [x, x] if name == "concat" else [x, pf.tensor([0])] if name == "take" else [x]
        with pytest.raises(AxisError, match=r"^%s: axis 2 is out of range for a tensor of "
                                            r"rank 2" % name):
            pf.ops.apply(pf.ops.REGISTRY[name], inputs, attrs)


def test_error_names_the_layer_scope():
    with pf.name_scope("encoder"):
        with pytest.raises(AxisError, match=r"^concat in layer 'encoder': axis 3 .* rank 2"):
            pf.concat([pf.ones(2, 3)] * 2, axis=3)


def test_zero_d_tensors_have_no_axes_but_flatten_like_one_element():
    s = pf.tensor(3.0)
    # reductions take dim 0 or -1 of a 0-d tensor as PyTorch's do (like no axis), and nothing
    # beyond (tests/ops/test_zero_d_and_empty.py compares them with PyTorch)
    assert pf.sum(s, 0).item() == 3.0 and pf.sum(s, -1).item() == 3.0
    with pytest.raises(AxisError, match=r"sum: axis 1 is out of range for a tensor of rank 1 "
                                        r"\(valid: \[-1, 0\]"):
        pf.sum(s, 1)
    with pytest.raises(AxisError, match=r"expand_dims: axis 2 is out of range for a tensor of "
                                        r"rank 0 \(valid: \[-1, 0\]"):
        pf.expand_dims(s, 2)
    assert pf.softmax(s).item() == 1.0          # PyTorch's: over dim 0 or -1 (issue 10)
    with pytest.raises(AxisError, match="softmax: axis 1 .* rank 1"):
        pf.softmax(s, 1)
    assert pf.sum(s).item() == 3.0 and pf.sum(s, ()).item() == 3.0
    assert pf.expand_dims(s, 0).shape == (1,) and pf.expand_dims(s, -1).shape == (1,)
    with pytest.raises(AxisError, match="expand_dims: axis 1 .* rank 0"):
        pf.expand_dims(s, 1)
    assert pf.flatten(s, 0).shape == (1,) and pf.flatten(s, -1).shape == (1,)
    assert pf.stack([s, s]).shape == (2,)


def test_axes_must_be_ints_and_distinct():
    x = pf.ones(2, 3)
    with pytest.raises(pf.ShapeError, match=r"^sum: axis must be an int, got 1\.5"):
        pf.sum(x, 1.5)
    with pytest.raises(pf.ShapeError, match=r"^squeeze: axis must be an int, got True"):
        pf.squeeze(pf.ones(1, 3), True)
    with pytest.raises(pf.ShapeError, match=r"^permute: repeated axis in perm \(1, -1\) for a "
                                            r"tensor of rank 2"):
        pf.permute(x, (1, -1))
    with pytest.raises(pf.ShapeError, match=r"^mean: repeated axis in axis \(0, -2\)"):
        pf.mean(x, (0, -2))
    assert pf.sum(x, np.int64(-1)).shape == (2,)          # numpy integers are ints


def test_transpose_of_a_vector_with_the_default_axes_is_itself_but_explicit_axes_are_checked():
    v = pf.tensor([1.0, 2.0])
    assert pf.transpose(v).tolist() == [1.0, 2.0] and v.T.tolist() == [1.0, 2.0]
    assert pf.transpose(v, 0, -1).tolist() == [1.0, 2.0]
    with pytest.raises(AxisError, match=r"transpose: axis1 9 is out of range .* rank 1"):
        pf.transpose(v, 0, 9)


# ---------------------------------------------------------------------------------------------
# split's sizes

def test_split_refuses_sizes_that_are_negative_not_int_or_do_not_add_up():
    x = pf.tensor(np.arange(12.0).reshape(3, 4))
    for sizes in ([-1, 5], [5, -1], [1, 2.5, 0.5], [True, 3], [1, 1], [2, 3]):
        with pytest.raises(pf.ShapeError, match=r"^split: sizes .* must be non-negative ints "
                                                r"that add up to the size 4 of dim 1"):
            pf.split(x, sizes, axis=1)
    for size in (0, -2):
        with pytest.raises(pf.ShapeError, match=r"^split: the piece size must be at least 1, "
                                                r"got %d" % size):
            pf.split(x, size, axis=-1)
    a, b, c = pf.split(x, [1, 0, 3], axis=1)              # an empty piece is a valid size
    assert a.shape == (3, 1) and b.shape == (3, 0) and c.tolist() == x.numpy()[:, 1:].tolist()
    with pf.Graph():
        with pytest.raises(pf.ShapeError, match=r"split: cannot split the unknown dim 0"):
            pf.split(pf.placeholder("x", (None, 4)), 2, axis=0)


# ---------------------------------------------------------------------------------------------
# one_hot

def test_one_hot_refuses_out_of_range_labels_in_eager_mode():
    assert pf.one_hot([2, 0, 3], 4).tolist() == [[0, 0, 1, 0], [1, 0, 0, 0], [0, 0, 0, 1]]
    with pytest.raises(pf.IndexOutOfRange, match=r"^one_hot: label 4 at position 1 is out of "
                                                 r"range for 4 classes"):
        pf.one_hot([0, 4, 1], 4)
    with pytest.raises(pf.IndexOutOfRange, match=r"^one_hot: label -1 at position 2"):
        pf.one_hot(pf.tensor(np.array([0, 1, -1], np.int32)), 4)
    with pytest.raises(pf.IndexOutOfRange, match=r"label 7 at position 3"):   # flat position
        pf.one_hot([[0, 1], [2, 7]], 4)


@pytest.mark.parametrize("classes", [-2, 0, 2.5, True, "3"])   # (-1 is PyTorch's "infer")
def test_one_hot_refuses_a_class_count_that_is_not_a_positive_int(classes):
    with pytest.raises(pf.ShapeError, match=r"^one_hot: classes must be a positive int, got %s"
                                            % re.escape(repr(classes))):
        pf.one_hot([0, 1], classes)


def test_one_hot_refuses_float_labels():
    with pytest.raises(pf.DTypeError, match=r"^one_hot: labels must be int32 or int64, got "
                                            r"float32"):
        pf.one_hot(pf.tensor([0.0, 1.0]), 2)


def test_compiled_one_hot_refuses_out_of_range_labels_when_it_runs():
    """Symbolic labels have no values to check while building: the native gather that the
    labels pass through refuses an out-of-range one when the plan runs."""
    g = pf.Graph()
    with g:
        labels = pf.placeholder("labels", (None,), "int64")
        out = pf.one_hot(labels, 3)
    assert out.shape == (None, 3)
    exe = g.compile(outputs=[out])
    got = exe.run({"labels": np.array([2, 0, 1, 2])})[out.name]
    assert got.tolist() == np.eye(3)[[2, 0, 1, 2]].tolist()
    for bad, value in (([0, 3, 1], 3), ([0, 1, -1], -1)):
        with pytest.raises(pf.IndexOutOfRange, match=r"index %d at position %d is out of range "
                                                     r"for an axis of size 3"
                                                     % (value, bad.index(value))):
            exe.run({"labels": np.array(bad)})
