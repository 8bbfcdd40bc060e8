"""What a worker serves: a model file loaded with pf.load, checked against its signature and
run compiled (pf.jit, one native call per forward) on numpy arrays."""
import numpy as np

from . import protocol


class InputError(ValueError):
    """Inputs that do not match the model's signature (names, dtypes, shapes)."""


def _fmt_shape(shape):
    return "(" + ", ".join("batch" if d == -1 else str(d) for d in shape) + ")"


def _leaves(out):
    """A model's outputs, flat, in order (torch's LSTM returns (output, (h_n, c_n)))."""
    if isinstance(out, (list, tuple)):
        return [leaf for part in out for leaf in _leaves(part)]
    return [out]


class ModelRunner:
    """One loaded model: its signature, and run(named arrays) -> [(name, array)]."""

    def __init__(self, name, path):
        import pyfront as pf

        self.name = name
        self.path = str(path)
        from ..io.model import load_model

        module = pf.onnx.load(self.path) if self.path.lower().endswith(".onnx") \
            else load_model(self.path)        # an ONNX file is converted here, in the worker
        signature = getattr(module, "signature", None)
        if not signature:
            raise ValueError("%s has no signature (saved without a traced graph); save it with "
                             "pf.save(model, path, input_shape=...) to serve it" % self.path)
        self.signature = signature
        self.inputs = [(i["name"], np.dtype(i["dtype"]), tuple(i["shape"]))
                       for i in signature["inputs"]]
        self.outputs = [(o["name"], np.dtype(o["dtype"])) for o in signature["outputs"]]
        self.output_names = [n for n, _ in self.outputs]
        for name_, dtype, _ in self.inputs:
            if dtype.name not in protocol.DTYPE_NAMES:
                raise ValueError("%s: input %r has dtype %s, which the JVM bridge cannot carry"
                                 % (self.path, name_, dtype))
        self._compiled = pf.jit(module)
        self.requests = 0
        self.errors = 0

    def warm_up(self):
        """Compile the batch-of-one plan now, so the first call from Java is not the slow one."""
        if all(d != -1 for _, _, shape in self.inputs for d in shape[1:]):
            arrays = [np.zeros(tuple(1 if d == -1 else d for d in shape), dtype)
                      for _, dtype, shape in self.inputs]
            self._compiled.run_numpy(*arrays)

    def check(self, named):
        """The arrays in signature order; InputError naming what does not match."""
        return [named[i][1] for i in self.order(named)]

    def order(self, named):
        """Where each input of the signature is in named (a request's [(name, array)]), in
        signature order; InputError naming what does not match. A connection sends the same
        names, dtypes and shapes call after call, so the worker checks once per layout."""
        if len(named) != len(self.inputs):
            raise InputError("model %r takes %d input(s) %s, got %d %s"
                             % (self.name, len(self.inputs), [n for n, _, _ in self.inputs],
                                len(named), [n for n, _ in named]))
        index = {n: i for i, (n, _) in enumerate(named)}
        order = []
        for name, dtype, shape in self.inputs:
            i = index.get(name)
            if i is None:
                raise InputError("model %r has no input %r among the given %s; its inputs are %s"
                                 % (self.name, name, [n for n, _ in named],
                                    [n for n, _, _ in self.inputs]))
            arr = named[i][1]
            if arr.dtype != dtype:
                raise InputError("model %r: input %r has dtype %s, expected %s"
                                 % (self.name, name, arr.dtype.name, dtype.name))
            if arr.ndim != len(shape) or any(d != -1 and d != a for d, a in zip(shape, arr.shape)):
                raise InputError("model %r: input %r has shape %s, expected %s"
                                 % (self.name, name, tuple(arr.shape), _fmt_shape(shape)))
            order.append(i)
        return order

    def run(self, named):
        """[(output name, contiguous array)] for [(input name, array)]."""
        return list(zip(self.output_names, self.run_checked(self.check(named))))

    def run_checked(self, arrays):
        """The output arrays (contiguous, in signature order) for inputs already checked and
        in signature order."""
        outs = _leaves(self._compiled.run_numpy(*arrays))
        if len(outs) != len(self.outputs):
            raise RuntimeError("model %r returned %d outputs; its signature lists %d"
                               % (self.name, len(outs), len(self.outputs)))
        result = []
        for (name, dtype), arr in zip(self.outputs, outs):
            if not arr.flags.c_contiguous:
                arr = np.ascontiguousarray(arr)
            if arr.dtype not in protocol.DTYPE_CODES:
                raise RuntimeError("model %r: output %r has dtype %s, which the JVM bridge "
                                   "cannot carry" % (self.name, name, arr.dtype))
            result.append(arr)
        return result
