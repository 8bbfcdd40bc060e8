"""PyTorch's argument names as aliases of pyfront's: dim= for axis=, keepdim= for keepdims=,
dims= for axis= (flip, roll), dim0=/dim1=/dim2= for axis0=/axis1=/axis2= (transpose,
diagonal), index= for indices= (gather, scatter, index_select, index_add), diagonal= for k=
(tril, triu, diag), target= for labels= (cross_entropy, nll_loss), num_classes= for classes=
(one_hot), stride= for strides= and kernel_size= for pool_size= (convolutions, pooling),
negative_slope= for alpha= (leaky_relu), p= for rate= (dropout). Not weight= for kernel=:
pf.linear's kernel is (in, out), F.linear's weight (out, in). One wrapper, applied to every public op function and Tensor/Symbol method that
takes the pyfront name (ops/__init__ does it once), so PyTorch code ports without edits and no
op carries alias code of its own."""
import functools
import inspect

ALIASES = {"dim": "axis", "keepdim": "keepdims", "dims": "axis", "dim0": "axis0",
           "dim1": "axis1", "dim2": "axis2", "index": "indices", "diagonal": "k",
           "target": "labels", "num_classes": "classes", "stride": "strides",
           "kernel_size": "pool_size", "negative_slope": "alpha", "p": "rate"}


def rename(kwargs, mapping, owner):
    """kwargs with each PyTorch name in mapping ({torch_name: pyfront_name}) renamed, in place;
    giving both names is a TypeError naming owner. (Op functions and layer constructors
    alike.)"""
    for torch_name in mapping.keys() & kwargs.keys():
        ours = mapping[torch_name]
        if ours in kwargs:
            raise TypeError("%s: got both %s= and its alias %s="
                            % (owner, ours, torch_name))
        kwargs[ours] = kwargs.pop(torch_name)


def torch_names(fn):
    """fn accepting PyTorch's names for its axis arguments (fn itself if it takes none of
    the pyfront names, or already takes the PyTorch ones)."""
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return fn
    mapping = {t: p for t, p in ALIASES.items() if p in params and t not in params}
    if not mapping or any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return fn

    @functools.wraps(fn)
    def accepting_torch_names(*args, **kwargs):
        if kwargs:
            rename(kwargs, mapping, fn.__name__)
        return fn(*args, **kwargs)
    accepting_torch_names.torch_aliases = mapping
    return accepting_torch_names


def install(namespace, names, method_classes=()):
    """Wrap the functions `names` of namespace (a module's globals) and the public methods of
    method_classes in place. (The defining modules keep the plain functions, which pyfront's
    own code calls without the wrapper's cost: compare functions by inspect.unwrap.)"""
    wrapped = {}      # one wrapper per function: aliases (cat = concat) stay one object
    for name in names:
        value = namespace.get(name)
        if inspect.isfunction(value):
            if id(value) not in wrapped:
                wrapped[id(value)] = torch_names(value)
            namespace[name] = wrapped[id(value)]
    for cls in method_classes:
        for name, value in list(vars(cls).items()):
            if inspect.isfunction(value) and not name.startswith("_"):
                setattr(cls, name, torch_names(value))
