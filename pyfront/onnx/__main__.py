"""python -m pyfront.onnx convert model.onnx model.pf [--check] [--input-shape NAME=D0,D1,...]
(and model.pf model.onnx)

The direction follows the file extensions. --check runs pyfront (on the .pf) and ONNX Runtime
(on the .onnx) on the same random inputs and prints the largest difference.
"""
import argparse
import os
import sys

import numpy as np


def _random_inputs(signature, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    arrays = []
    for spec in signature["inputs"]:
        shape = [batch if d == -1 else d for d in spec["shape"]]
        dtype = np.dtype(spec["dtype"])
        if dtype.kind in "iu":
            arrays.append(rng.integers(0, 2, shape).astype(dtype))   # valid for any table
        else:
            arrays.append(rng.standard_normal(shape).astype(dtype))
    return arrays


def largest_difference(pf_path, onnx_path, batch=2):
    """Largest absolute difference between pyfront and ONNX Runtime on random inputs."""
    import pyfront as pf

    try:
        import onnxruntime
    except ImportError:
        raise SystemExit("--check needs onnxruntime: pip install onnxruntime") from None
    from ..io.model import load_model

    model = load_model(pf_path)
    arrays = _random_inputs(model.signature, batch)
    with pf.no_grad():
        ours = model(*[pf.tensor(a) for a in arrays])
    ours = [o.numpy() for o in (ours if isinstance(ours, tuple) else (ours,))]
    session = onnxruntime.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])
    theirs = session.run(None, {i.name: a for i, a in zip(session.get_inputs(), arrays)})
    return max(float(np.max(np.abs(a.astype(np.float64) - b))) if a.size else 0.0
               for a, b in zip(ours, theirs))


def convert(source, target, opset=17, input_shapes=None):
    """Convert between .onnx and .pf, by extension; returns the target path."""
    import pyfront as pf
    from pyfront import onnx as pf_onnx

    kinds = (os.path.splitext(source)[1].lower(), os.path.splitext(target)[1].lower())
    if kinds == (".onnx", ".pf"):
        pf.save(pf_onnx.load(source, input_shapes=input_shapes), target)
    elif kinds == (".pf", ".onnx"):
        pf_onnx.export(source, target, opset=opset)
    else:
        raise SystemExit("convert takes model.onnx model.pf or model.pf model.onnx, got %s %s"
                         % (source, target))
    return target


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m pyfront.onnx",
                                     description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("convert", help="model.onnx model.pf, or model.pf model.onnx")
    c.add_argument("source")
    c.add_argument("target")
    c.add_argument("--opset", type=int, default=17, help="ONNX opset when exporting (17+)")
    c.add_argument("--check", action="store_true",
                   help="run both runtimes on random inputs and print the largest difference")
    c.add_argument("--input-shape", action="append", default=[], metavar="NAME=D0,D1,...",
                   help="fix an ONNX input's symbolic dims (besides the batch), e.g. "
                        "tokens=-1,128 (repeat for several inputs)")
    args = parser.parse_args(argv)
    input_shapes = {}
    for item in args.input_shape:
        name, _, dims = item.partition("=")
        try:
            input_shapes[name] = tuple(None if d.strip() in ("-1", "") else int(d)
                                       for d in dims.split(","))
        except ValueError:
            parser.error("--input-shape %r: expected NAME=D0,D1,... with integer dims" % item)
    from pyfront import errors

    try:
        convert(args.source, args.target, args.opset, input_shapes or None)
    except errors.PyfrontError as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    print("wrote %s" % args.target)
    if args.check:
        pf_path, onnx_path = (args.target, args.source) if args.target.endswith(".pf") \
            else (args.source, args.target)
        print("largest difference pyfront vs onnxruntime: %.3g"
              % largest_difference(pf_path, onnx_path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
