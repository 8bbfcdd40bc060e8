"""Crafted model files as regression cases: each is made by the test from a real saved model
(its checksum recomputed, as an attacker would) and must be refused with ModelFormatError,
quickly and without allocating what it claims: an oversized layer config, deeply nested JSON,
Infinity/NaN/huge or mistyped numbers in the header, bad signature metadata, bad graph
attributes, a FIFO, a device file, a truncated file. The same holds for bytes (pf.load_bytes)
and for the JVM worker's load."""
import json
import os
import re
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import pyfront as pf
from pyfront.io import format as fmt


def _dense_model():
    pf.random.seed(0)
    model = pf.nn.Sequential([pf.nn.Dense(4, in_features=3, activation="relu"), pf.nn.Dense(2)])
    model(pf.tensor(np.zeros((1, 3), np.float32)))
    return model


class _Net(pf.nn.Module):             # not registered: saved and rebuilt through its graph
    def __init__(self):
        super().__init__()
        self.a = pf.nn.Dense(5)

    def forward(self, x):
        return pf.tanh(self.a(x))


@pytest.fixture
def saved(tmp_path):
    """(path, tensors, metadata) of a real saved model whose config names its shapes."""
    path = tmp_path / "m.pf"
    pf.save(_dense_model(), path)
    tensors, meta = fmt.read_file(path)
    return path, tensors, meta


@pytest.fixture
def saved_graph(tmp_path):
    """(path, tensors, metadata) of a real model saved as a graph only (no config)."""
    net = _Net()
    net(pf.tensor(np.zeros((2, 3), np.float32)))
    path = tmp_path / "g.pf"
    pf.save(net, path)
    tensors, meta = fmt.read_file(path)
    assert "config" not in meta and "graph" in meta
    return path, tensors, meta


def _craft(path, tensors, meta, **changes):
    """Write tensors and meta with metadata entries changed and a valid checksum."""
    meta = dict(meta, **changes)
    meta.pop("checksum", None)
    fmt.write_file(path, tensors, meta)
    return path


def _refused(path, match=None):
    """pf.load and pf.load_bytes both refuse the file with an error naming it."""
    with pytest.raises(pf.ModelFormatError, match=match) as info:
        pf.load(path)
    assert str(path) in str(info.value)
    with pytest.raises(pf.ModelFormatError, match=match) as info:
        pf.load_bytes(path.read_bytes(), name="crafted bytes")
    assert "crafted bytes" in str(info.value)


def _oversized(saved, tmp_path):
    path, tensors, meta = saved
    cfg = json.loads(meta["config"])
    cfg["config"]["layers"][0]["config"].update(units=20000, in_features=20000)
    return _craft(tmp_path / "oversized.pf", tensors, meta, config=json.dumps(cfg))


# ---- the layer config claims huge shapes ----

def test_an_oversized_config_is_refused_naming_the_parameter(saved, tmp_path):
    path = _oversized(saved, tmp_path)
    assert path.stat().st_size < 4096
    _refused(path, r"'0\.kernel' has shape \(20000, 20000\) in the model, \(3, 4\) in the file")


_MEASURE = textwrap.dedent("""
    import json, resource, sys, time, tracemalloc
    import pyfront as pf
    from pyfront.jvm.worker import Worker

    def max_rss():
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def attempt(fn):
        tracemalloc.start()
        t0 = time.perf_counter()
        try:
            fn()
            error = None
        except Exception as e:
            error = "%s: %s" % (type(e).__name__, e)
        seconds = time.perf_counter() - t0
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return {"error": error, "seconds": seconds, "traced_peak": peak}

    good, bad = sys.argv[1], sys.argv[2]
    pf.load(good)                                # imports and first-use costs out of the way
    # a regression allocates gigabytes: let it fail with MemoryError rather than swap
    with open("/proc/self/status") as f:
        vm = next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize:"))
    resource.setrlimit(resource.RLIMIT_AS, (vm + (1 << 30), resource.getrlimit(
        resource.RLIMIT_AS)[1]))
    rss0 = max_rss()
    out = {"load": attempt(lambda: pf.load(bad)),
           "load_bytes": attempt(lambda: pf.load_bytes(open(bad, "rb").read())),
           "worker": attempt(lambda: Worker("token", 1 << 20).load("m", bad))}
    out["rss_growth"] = max_rss() - rss0
    print(json.dumps(out))
""")


def test_an_oversized_config_costs_no_memory_or_time_in_pf_load_and_the_jvm_worker(saved,
                                                                                  tmp_path):
    bad = _oversized(saved, tmp_path)
    proc = subprocess.run([sys.executable, "-c", _MEASURE, str(saved[0]), str(bad)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    for how in ("load", "load_bytes", "worker"):
        r = result[how]
        assert r["error"] is not None and r["error"].startswith("ModelFormatError"), (how, r)
        assert "(20000, 20000)" in r["error"], (how, r)
        assert r["seconds"] < 0.5, (how, r)
        assert r["traced_peak"] < 100e6, (how, r)
    assert result["rss_growth"] < 100e6, result


# ---- malformed JSON and numbers ----

def test_deeply_nested_json_is_refused(saved, saved_graph, tmp_path):
    path, tensors, meta = saved
    nested = "[" * 100000 + "]" * 100000
    _refused(_craft(tmp_path / "c.pf", tensors, meta, config=nested), "nested too deeply")
    _refused(_craft(tmp_path / "s.pf", tensors, meta, signature=nested), "nested too deeply")
    gpath, gtensors, gmeta = saved_graph
    _refused(_craft(tmp_path / "g.pf", gtensors, gmeta, graph=nested), "nested too deeply")
    # nested in the outer header
    text = ('{"__metadata__":{"format":"pyfront.model"},"x":' + nested + "}").encode()
    (tmp_path / "h.pf").write_bytes(len(text).to_bytes(8, "little") + text)
    _refused(tmp_path / "h.pf", "nested too deeply")
    # nested config objects that parse (JSON depth ~600) but rebuild recursively
    deep = {"class": "Dense", "config": {"units": 4}}
    for _ in range(150):
        deep = {"class": "Sequential", "config": {"layers": [deep]}}
    _refused(_craft(tmp_path / "d.pf", tensors, meta, config=json.dumps(deep)),
)


def _raw(path, entry, data=b"\0" * 16):
    header = '{"__metadata__":{"format":"pyfront.model","format_version":"1"},"w":%s}' % entry
    text = header.encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + data)
    return path


@pytest.mark.parametrize("entry", [
    '{"dtype":"F32","shape":[Infinity,4],"data_offsets":[0,16]}',
    '{"dtype":"F32","shape":[NaN],"data_offsets":[0,16]}',
    '{"dtype":"F32","shape":[-Infinity],"data_offsets":[0,16]}',
    '{"dtype":"F32","shape":[1e400],"data_offsets":[0,16]}',
    '{"dtype":"F32","shape":[4.0],"data_offsets":[0,16]}',
    '{"dtype":"F32","shape":[true,4],"data_offsets":[0,16]}',
    '{"dtype":"F32","shape":["4"],"data_offsets":[0,16]}',
    '{"dtype":"F32","shape":[4],"data_offsets":["0","16"]}',
    '{"dtype":"F32","shape":[4],"data_offsets":[0,16,32]}',
    '{"dtype":"F32","shape":4,"data_offsets":[0,16]}',
    '{"dtype":["F32"],"shape":[4],"data_offsets":[0,16]}',
    '{"dtype":"F32","shape":[4],"data_offsets":[0,16],"extra":1}',
    '{"dtype":"F32","shape":[0,%d],"data_offsets":[0,0]}' % 2 ** 70,
    '{"dtype":"F32","shape":[%d,%d],"data_offsets":[0,16]}' % (2 ** 64, 2 ** 64),
    '{"dtype":"F32","shape":[1%s],"data_offsets":[0,16]}' % ("0" * 5000),
    '{"dtype":"F32","shape":[%s],"data_offsets":[0,0]}' % ",".join(["1"] * 40),
    '[1, 2]',
    'null',
])
def test_wrong_types_and_numbers_in_the_header_are_refused(tmp_path, entry):
    _refused(_raw(tmp_path / "t.pf", entry))


def test_metadata_values_must_be_strings(tmp_path):
    text = b'{"__metadata__":{"format":{"a":1}}}'
    (tmp_path / "m.pf").write_bytes(len(text).to_bytes(8, "little") + text)
    _refused(tmp_path / "m.pf", "must map strings to strings")


@pytest.mark.parametrize("signature", [
    "5", "[]", '{"inputs": 5, "outputs": []}',
    '{"inputs": [{"name": "x", "shape": [-1, 3]}], "outputs": []}',
    '{"inputs": [{"name": "x", "dtype": "complex128", "shape": [-1, 3]}],'
    ' "outputs": [{"name": "y", "dtype": "float32", "shape": [-1, 2]}]}',
    '{"inputs": [{"name": "x", "dtype": "float32", "shape": [-1, Infinity]}],'
    ' "outputs": [{"name": "y", "dtype": "float32", "shape": [-1, 2]}]}',
    '{"inputs": [{"name": "x", "dtype": "float32", "shape": [-1, -7]}],'
    ' "outputs": [{"name": "y", "dtype": "float32", "shape": [-1, 2]}]}',
    '{"inputs": [{"name": 3, "dtype": "float32", "shape": [-1, 3]}],'
    ' "outputs": [{"name": "y", "dtype": "float32", "shape": [-1, 2]}]}',
    '{"inputs": [{"name": "x", "dtype": "float32", "shape": [-1, 3]}]}',
])
def test_bad_signature_metadata_is_refused(saved, tmp_path, signature):
    path, tensors, meta = saved
    _refused(_craft(tmp_path / "s.pf", tensors, meta, signature=signature),
             "malformed signature|not valid JSON")


@pytest.mark.parametrize("which", ["config", "graph"])
def test_a_signature_that_contradicts_the_model_is_refused(saved, saved_graph, tmp_path, which):
    _, tensors, meta = saved if which == "config" else saved_graph
    computed = json.loads(meta["signature"])["outputs"][0]["shape"]      # [-1, 2] or [-1, 5]

    def crafted(inputs=None, outputs=None):
        sig = json.loads(meta["signature"])
        sig["inputs"][0]["shape"] = inputs or sig["inputs"][0]["shape"]
        sig["outputs"][0]["shape"] = outputs or sig["outputs"][0]["shape"]
        return _craft(tmp_path / "s.pf", tensors, meta, signature=json.dumps(sig))

    for inputs in ([-1, 5], [-1, 10 ** 9], [-1, 3, 1]):
        _refused(crafted(inputs=inputs), "the signature's inputs do not fit the model")
    _refused(crafted(outputs=[-1, 7]), re.escape(
        "the signature gives outputs [('float32', [-1, 7])], the model computes "
        "[('float32', %s)]" % computed))


def _edit_graph(meta, edit):
    desc = json.loads(meta["graph"])
    edit(desc)
    return json.dumps(desc)


@pytest.mark.parametrize("edit, match", [
    # a placeholder shape the weights cannot take: the linear op's shape rule fails
    (lambda d: d["nodes"][0].update(shape=[None, 4]), "ShapeError"),
    (lambda d: d["nodes"][0].update(shape=[None, float("inf")]), None),
    (lambda d: d["nodes"][0].update(shape="abc"), None),
    (lambda d: d["nodes"][3].update(attrs={"activation": "no_such_activation"}), None),
    (lambda d: d["nodes"][3].update(attrs=[1, 2]), None),
    (lambda d: d["nodes"][3].update(inputs=[]), None),
    (lambda d: d["nodes"][3].update(inputs=[[9, 0], [1, 0], [2, 0]]), None),
    (lambda d: d.update(outputs=[[99, 0]]), None),
    (lambda d: d.update(outputs=[["a", 0]]), None),
    (lambda d: d.update(inputs=[1]), "not a placeholder"),
    (lambda d: d.update(nodes={"a": 1}), None),
])
def test_bad_graph_attributes_are_refused(saved_graph, tmp_path, edit, match):
    path, tensors, meta = saved_graph
    _refused(_craft(tmp_path / "g.pf", tensors, meta, graph=_edit_graph(meta, edit)), match)


def test_a_config_whose_layers_do_not_accept_its_values_is_refused(saved, tmp_path):
    path, tensors, meta = saved
    for change in ({"units": "four"}, {"units": float("inf")}, {"activation": 7},
                   {"in_features": float("inf")}, {"no_such_argument": 1}):
        cfg = json.loads(meta["config"])
        cfg["config"]["layers"][0]["config"].update(change)
        _refused(_craft(tmp_path / "c.pf", tensors, meta, config=json.dumps(cfg)))
    cfg = json.loads(meta["config"])
    cfg["config"]["layers"] = 5
    _refused(_craft(tmp_path / "c.pf", tensors, meta, config=json.dumps(cfg)))


def test_a_config_missing_or_adding_tensors_is_refused(saved, tmp_path):
    path, tensors, meta = saved
    fewer = {k: v for k, v in tensors.items() if k != "1.bias"}
    _refused(_craft(tmp_path / "f.pf", fewer, meta), r"missing \['1\.bias'\]")
    more = dict(tensors, extra=np.zeros(3, np.float32))
    _refused(_craft(tmp_path / "e.pf", more, meta), r"unexpected \['extra'\]")


# ---- not a regular file ----

def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "model.pf"
    os.mkfifo(fifo)
    outcome = []

    def load():
        try:
            pf.load(fifo)
        except Exception as e:          # noqa: BLE001 - the outcome is what is checked
            outcome.append(e)

    t = threading.Thread(target=load, daemon=True)
    t.start()
    t.join(10)
    if t.is_alive():                    # blocked in open(): a writer lets it go on
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        t.join(10)
        pytest.fail("pf.load blocked on a FIFO")
    assert isinstance(outcome[0], pf.ModelFormatError), outcome
    assert "is a FIFO, not a regular file" in str(outcome[0])


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null", "/dev/urandom"])
def test_a_device_file_is_refused(device):
    if not os.path.exists(device):
        pytest.skip("%s does not exist here" % device)
    with pytest.raises(pf.ModelFormatError, match="is a device, not a regular file"):
        pf.load(device)


def test_a_directory_is_refused(tmp_path):
    with pytest.raises(pf.ModelFormatError, match="is a directory, not a regular file"):
        pf.load(tmp_path)


def test_a_missing_file_is_still_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        pf.load(tmp_path / "absent.pf")


# ---- truncated ----

def test_every_truncation_is_refused(saved):
    path, _, _ = saved
    data = path.read_bytes()
    for cut in sorted({0, 1, 7, 8, 9, 20, len(data) // 3, len(data) // 2, len(data) - 8,
                       len(data) - 1}):
        path.write_bytes(data[:cut])
        _refused(path, "truncated|corrupt|checksum|bytes")
