"""The native boundary: the kernel table, descriptors built by hand (wrong strides, shapes,
dtypes, empty and non-contiguous memory) refused with a status and a message that become
Python exceptions, and PYFRONT_DEBUG catching a NaN an op produces."""
import os
import re
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import pyfront as pf
from pyfront import errors
from pyfront.backend import cpu
from pyfront.backend.cpu import ffi, lib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


_HELD = []    # a descriptor does not keep its memory alive: the arrays of these tests stay here


def buf(array):
    _HELD.append(array)
    return cpu.Buf(array, array.shape, pf.tensor(array[:0].reshape(-1)).dtype)


def f32(*shape, fill=1.0):
    return np.full(shape, fill, np.float32)


def test_kernel_table_and_library_info():
    assert lib.pf_abi_version() == lib.PF_ABI_VERSION
    names = [ffi.string(lib.pf_kernel_name(i)).decode() for i in range(lib.pf_kernel_count())]
    for name in ("unary", "unary_grad", "binary", "where", "cast", "fill", "fused", "reduce",
                 "gemm", "linear", "copy", "take", "take_grad", "softmax", "log_softmax",
                 "softmax_grad", "log_softmax_grad", "cross_entropy", "cross_entropy_grad",
                 "mse", "mse_grad", "sgd_update", "adam_update"):
        assert name in names and lib.pf_kernel_lookup(name.encode()) == names.index(name)
    assert len(set(names)) == len(names)
    assert lib.pf_kernel_lookup(b"no_such_kernel") == -1 and lib.pf_kernel_lookup(ffi.NULL) == -1
    assert lib.pf_kernel_name(-1) == ffi.NULL and lib.pf_kernel_name(10 ** 6) == ffi.NULL
    assert lib.pf_blas_bound() and "OpenBLAS" in pf.blas_info()
    a = ffi.new("pf_args *")
    assert lib.pf_run(10 ** 6, a) == lib.PF_ERR_UNKNOWN_KERNEL
    assert "no kernel with id" in ffi.string(lib.pf_last_error()).decode()
    assert lib.pf_run(0, ffi.NULL) == lib.PF_ERR_ARGUMENT
    with pytest.raises(errors.NativeError, match="no kernel 'nope'"):
        cpu.run("nope", [], [])


def _header_define(name):
    text = open(os.path.join(ROOT, "native", "include", "pyfront.h")).read()
    return int(re.search(r"^#define %s (\d+)$" % name, text, re.M).group(1))


def test_python_expects_the_abi_version_of_the_header_and_the_build():
    assert cpu.ABI_VERSION == _header_define("PF_ABI_VERSION") == lib.pf_abi_version()


def test_a_stale_build_is_refused_naming_both_versions_and_the_fix(monkeypatch):
    cpu.check_abi_version()
    monkeypatch.setattr(cpu, "ABI_VERSION", lib.pf_abi_version() + 97)
    with pytest.raises(ImportError) as e:
        cpu.check_abi_version()
    msg = str(e.value)
    assert "built for ABI version %d" % lib.pf_abi_version() in msg
    assert "expects version %d" % (lib.pf_abi_version() + 97) in msg
    assert "stale" in msg and "pip install -e ." in msg and "_native" in msg


def test_wait_readable_spins_until_bytes_or_hangup_and_gives_up_after_its_spin():
    a, b = socket.socketpair()
    try:
        t0 = time.perf_counter()
        assert cpu.wait_readable(a.fileno(), 3_000_000) is False    # nothing came: 3 ms spent
        assert time.perf_counter() - t0 >= 0.003
        assert cpu.wait_readable(a.fileno(), 0) is False
        b.sendall(b"x")
        t0 = time.perf_counter()
        assert cpu.wait_readable(a.fileno(), 10_000_000_000) is True  # at once, not 10 s
        assert time.perf_counter() - t0 < 1.0
        assert a.recv(1) == b"x"
        b.close()                                                    # a hang-up wakes it too
        assert cpu.wait_readable(a.fileno(), 10_000_000_000) is True
        assert a.recv(1) == b""
    finally:
        a.close()
        b.close()


def test_status_codes_become_the_matching_exceptions():
    x = buf(f32(3))
    cases = [
        (errors.ShapeError, "x has shape \\(3,\\) but y has shape \\(4,\\)",
         lambda: cpu.run("unary", [x.desc()], [buf(f32(4)).desc()], (lib.PF_U_EXP,))),
        (errors.DTypeError, "x must be float32 or float64, got int64",
         lambda: cpu.run("unary", [buf(np.zeros(3, np.int64)).desc()],
                         [buf(np.zeros(3, np.int64)).desc()], (lib.PF_U_EXP,))),
        (errors.DTypeError, "y must be float32, got float64",
         lambda: cpu.run("unary", [x.desc()], [buf(np.zeros(3)).desc()], (lib.PF_U_EXP,))),
        (errors.NativeError, "unknown unary op 99",
         lambda: cpu.run("unary", [x.desc()], [buf(f32(3)).desc()], (99,))),
        (errors.NativeError, "expected 1 integer attributes, got 0",
         lambda: cpu.run("unary", [x.desc()], [buf(f32(3)).desc()])),
        (errors.NativeError, "expected 1..1 inputs, got 2",
         lambda: cpu.run("unary", [x.desc(), x.desc()], [buf(f32(3)).desc()], (1,))),
        (errors.IndexOutOfRange, "index 5 at position 1 is out of range for an axis of size 3",
         lambda: cpu.run("take", [x.desc((1, 3, 1)), buf(np.array([0, 5])).desc()],
                         [buf(f32(2)).desc()])),
        (errors.NumericError, "cannot convert nan",
         lambda: cpu.run("cast", [buf(np.array([np.nan], np.float32)).desc()],
                         [buf(np.zeros(1, np.int32)).desc()])),
    ]
    for cls, message, call in cases:
        with pytest.raises(cls, match=message):
            call()
        assert "kernel '" in ffi.string(lib.pf_last_error()).decode()


def test_non_contiguous_descriptors_are_refused_or_walked_correctly():
    a = np.arange(12, dtype=np.float32)
    b = buf(a)
    strided = b.desc((6,), (2,))
    with pytest.raises(errors.NativeError, match="x must be contiguous"):
        cpu.run("unary", [strided], [buf(f32(6)).desc()], (lib.PF_U_NEG,))
    with pytest.raises(errors.NativeError, match="out must be contiguous"):
        cpu.run("binary", [buf(f32(6)).desc(), buf(f32(6)).desc()], [strided], (lib.PF_B_ADD,))
    for kernel, ins in (("reduce", [b.desc((2, 3, 1), (1, 2, 1))]),
                        ("softmax", [b.desc((2, 3, 1), (1, 2, 1))])):
        with pytest.raises(errors.NativeError, match="must be contiguous"):
            cpu.run(kernel, ins, [buf(f32(6)).desc()], (lib.PF_R_SUM,))
    # kernels that take strided inputs read them right, negative strides included
    out = f32(6)
    cpu.run("copy", [b.desc((6,), (-2,), 11)], [buf(out).desc()])
    assert out.tolist() == a[11::-2].tolist()
    out = f32(2, 3)
    cpu.run("binary", [b.desc((2, 3), (1, 4)), b.desc((2, 3), (0, -1), 5)], [buf(out).desc()],
            (lib.PF_B_SUB,))
    assert np.array_equal(out, a.reshape(3, 4).T[:2, :] - a[5:2:-1])


def test_overlapping_writes_are_refused():
    out = np.zeros(16, np.float32)
    y = buf(out)
    x = buf(f32(3, 3))
    for shape, strides in [((3, 3), (1, 1)), ((3, 3), (0, 1)), ((2, 4), (3, 1)),
                           ((2, 2, 2), (4, 1, -1))]:
        with pytest.raises(errors.NativeError, match="overlap|stride 0"):
            cpu.run("copy", [buf(f32(*shape)).desc()], [y.desc(shape, strides, 8)])
    cpu.run("copy", [x.desc()], [y.desc((3, 3), (4, 1))])          # rows apart: fine
    assert out.reshape(4, 4)[:3, :3].sum() == 9 and out.sum() == 9
    # a batched product whose outputs share memory
    c = np.zeros((2, 2), np.float32)
    with pytest.raises(errors.NativeError, match="batch stride"):
        cpu.run("gemm", [buf(f32(3, 2, 2)).desc(), buf(f32(3, 2, 2)).desc()],
                [buf(c).desc((3, 2, 2), (0, 2, 1))], (0, 0))
    with pytest.raises(errors.NativeError, match="row stride"):
        cpu.run("gemm", [buf(f32(2, 2)).desc(), buf(f32(2, 2)).desc()],
                [buf(c).desc((2, 2), (1, 1))], (0, 0))


def test_malformed_descriptors_are_refused():
    x = buf(f32(4))

    def raw(mutate):
        d = x.desc((4,), (1,))          # a private copy of the descriptor to break
        mutate(d)
        return d

    cases = [
        (lambda d: setattr(d, "dtype", 9), errors.DTypeError, "unknown dtype code 9"),
        (lambda d: setattr(d, "ndim", 9), errors.NativeError, "ndim 9"),
        (lambda d: setattr(d, "ndim", -1), errors.NativeError, "ndim -1"),
        (lambda d: d.shape.__setitem__(0, -4), errors.ShapeError, "negative size"),
        (lambda d: setattr(d, "data", ffi.NULL), errors.NativeError, "no data"),
        (lambda d: d.shape.__setitem__(0, 2 ** 62), errors.ShapeError, "too large"),
        (lambda d: d.strides.__setitem__(0, -2 ** 63), errors.ShapeError, "too large"),
    ]
    for mutate, cls, message in cases:
        for kernel, attrs in (("unary", (lib.PF_U_EXP,)), ("copy", ()), ("cast", ())):
            with pytest.raises(cls, match=message):
                cpu.run(kernel, [raw(mutate)], [buf(f32(4)).desc()], attrs)
            with pytest.raises(cls, match=message):
                cpu.run(kernel, [x.desc()], [raw(mutate)], attrs)


def test_buffers_and_views_outside_their_array_are_refused_before_any_kernel():
    a = np.zeros(8, np.float32)
    with pytest.raises(errors.NativeError, match="does not fit"):
        cpu.Buf(a, (9,), pf.float32)
    with pytest.raises(errors.NativeError, match="does not fit"):
        cpu.Buf(a, (2,), pf.float32, offset=28)
    with pytest.raises(errors.NativeError, match="does not fit"):
        cpu.Buf(a, (4,), pf.float64, offset=8)
    b = cpu.Buf(a, (8,), pf.float32)
    for shape, strides, offset in [((9,), None, 0), ((4,), (2,), 2), ((3,), (-1,), 1),
                                   ((2, 2), (7, 1), 0), ((8,), (1,), 1), ((2,), (1, 1), 0)]:
        with pytest.raises(errors.NativeError):
            b.desc(shape, strides, offset)
    assert b.desc((4,), (2,), 1) is not None and b.desc((3,), (-1,), 2) is not None
    assert b.desc((0, 100), (100, 1), 50) is not None        # empty: reaches nothing


def test_empty_arrays_pass_through_every_op_family():
    e = pf.zeros(0, 3)
    assert pf.exp(e).shape == (0, 3) and (e + pf.ones(3)).shape == (0, 3)
    assert pf.where(e, e, 1.0).shape == (0, 3) and e.astype("int32").shape == (0, 3)
    assert pf.sum(e, 0).tolist() == [0, 0, 0] and pf.softmax(e, 1).shape == (0, 3)
    assert pf.matmul(e, pf.ones(3, 2)).shape == (0, 2)
    assert pf.matmul(pf.ones(2, 0), pf.zeros(0, 2)).tolist() == [[0, 0], [0, 0]]
    assert pf.linear(e, pf.ones(3, 4), pf.ones(4), activation="relu").shape == (0, 4)
    assert pf.cross_entropy(e, pf.tensor(np.zeros(0, np.int64)), "none").shape == (0,)
    assert pf.mse(e, e, "none").shape == (0, 3)
    assert e[1:].shape == (0, 3) and pf.concat([e, e]).shape == (0, 3)
    assert pf.take(e, [], 0).shape == (0, 3)
    t = pf.tensor(np.zeros((0, 3), np.float32), requires_grad=True)
    (pf.tanh(t) * 2.0).sum().backward()
    assert t.grad.shape == (0, 3)


def test_op_errors_name_the_op_around_the_kernel_message():
    with pytest.raises(pf.ShapeError, match=r"^add: .*\(2, 3\).*\(3, 2\)"):
        pf.add(pf.ones(2, 3), pf.ones(3, 2))
    with pytest.raises(pf.IndexOutOfRange,
                       match=r"^cross_entropy: kernel 'cross_entropy': label 7"):
        pf.cross_entropy(pf.ones(2, 3), [0, 7])
    with pf.name_scope("encoder/dense_1"):
        with pytest.raises(pf.NumericError, match="in layer 'encoder/dense_1'"):
            pf.mse(pf.tensor([np.nan]), pf.zeros(1))


def _run_python(code, env_extra):
    env = dict(os.environ, PYTHONPATH=ROOT, **env_extra)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_debug_flag_catches_a_nan_produced_by_an_op():
    code = """
        import numpy as np, pyfront as pf
        x = pf.tensor(np.array([1.0, -1.0, 4.0], np.float32))
        try:
            pf.sqrt(x)
        except pf.NumericError as e:
            print("caught:", e)
        else:
            print("not caught")
        try:
            pf.tensor([1e30]) * pf.tensor([1e30])
        except pf.NumericError as e:
            print("caught:", e)
        print("fine:", pf.sqrt(pf.tensor([4.0])).tolist())
    """
    debug = _run_python(code, {"PYFRONT_DEBUG": "1"})
    assert debug.returncode == 0, debug.stderr
    lines = debug.stdout.splitlines()
    assert lines[0].startswith("caught: sqrt: kernel 'unary': output 0 holds NaN at flat index 1")
    assert lines[1].startswith("caught: mul: kernel 'binary': output 0 holds Inf at flat index 0")
    assert lines[2] == "fine: [2.0]"
    plain = _run_python(code, {"PYFRONT_DEBUG": "0"})
    assert plain.returncode == 0 and plain.stdout.splitlines()[0] == "not caught"
