"""What pyfront calls the ops a PyTorch user reaches for, and the README's op table generated
from the op modules and the registry: `python -m pyfront.ops.catalog` prints it,
`python -m pyfront.ops.catalog --write README.md` replaces the table in the README.

TORCH_NAMES maps, per family, each PyTorch name (torch.*, Tensor.*, torch.nn.functional.*,
torch.nn.*) to pyfront's: the same name (None) or the documented other one. Where PyTorch and
NumPy disagree the name says which meaning it has (split is PyTorch's, array_split NumPy's;
repeat is PyTorch's = NumPy's tile, repeat_interleave is NumPy's repeat).
"""
import importlib
import sys

from .core import REGISTRY

# family -> {PyTorch name: pyfront name, or None when it is the same}
TORCH_NAMES = {
    "shape and indexing": {
        "reshape": None, "view": "Tensor.view / reshape", "flatten": None, "squeeze": None,
        "unsqueeze": None, "transpose": None, "permute": None,
        "cat": None, "concat": None, "stack": None, "split": None, "chunk": None,
        "unbind": None, "flip": None, "roll": None, "tril": None, "triu": None, "tile": None,
        "Tensor.repeat": "repeat (NumPy's tile)", "repeat_interleave": None, "gather": None,
        "scatter": None, "scatter_add": None, "index_select": None,
        "take_along_dim": None, "masked_fill": None, "where": None, "diag": None,
        "diagonal": None, "meshgrid": None, "broadcast_to": None,
        "Tensor.expand": "Tensor.expand / broadcast_to", "clone": None, "F.pad": "pad",
        "Tensor.__getitem__": "getitem (NumPy's rules: integer arrays, boolean masks; an int "
                              "beside arrays selects its dim first, as PyTorch's)",
        "Tensor.__setitem__": "setitem", "Tensor.detach": "Tensor.detach / stop_gradient",
    },
    "convolution, pooling, resizing": {
        "F.conv1d": "conv1d", "F.conv2d": "conv2d", "F.conv3d": "conv3d",
        "F.conv_transpose1d": "conv_transpose1d", "F.conv_transpose2d": "conv_transpose2d",
        "F.conv_transpose3d": "conv_transpose3d", "F.max_pool1d": "max_pool1d",
        "F.max_pool2d": "max_pool2d", "F.max_pool3d": "max_pool3d",
        "F.avg_pool1d": "avg_pool1d", "F.avg_pool2d": "avg_pool2d", "F.avg_pool3d": "avg_pool3d",
        "F.adaptive_avg_pool2d(x, 1)": "global_avg_pool", "F.interpolate": "interpolate",
        "F.upsample": "upsample",
    },
    "normalization": {
        "F.batch_norm": "batch_norm", "F.layer_norm": "layer_norm",
        "F.group_norm": "group_norm", "F.instance_norm": "instance_norm",
    },
    "losses": {
        "F.cross_entropy": "cross_entropy", "F.nll_loss": "nll_loss",
        "F.binary_cross_entropy": "binary_cross_entropy",
        "F.binary_cross_entropy_with_logits": "binary_cross_entropy_with_logits",
        "F.mse_loss": None, "F.l1_loss": "l1_loss", "F.huber_loss": "huber_loss",
        "F.smooth_l1_loss": "smooth_l1_loss", "F.kl_div": "kl_div",
        "F.cosine_similarity": "cosine_similarity",
        "F.margin_ranking_loss": "margin_ranking_loss", "F.one_hot": "one_hot",
        **{"nn." + name: None for name in (
            "CrossEntropyLoss", "NLLLoss", "MSELoss", "L1Loss", "BCELoss", "BCEWithLogitsLoss",
            "HuberLoss", "SmoothL1Loss", "KLDivLoss", "MarginRankingLoss", "CosineSimilarity")},
    },
    "layers": {
        # torch's own names (pyfront/nn/torch_layers.py), beside the Keras-named layers
        **{"nn." + name: None for name in (
            "Linear", "Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
            "ConvTranspose3d", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "BatchNorm1d",
            "BatchNorm2d", "InstanceNorm2d")},
        "nn.Upsample": "nn.UpSampling2D",
        "nn.ZeroPad2d": None, "nn.GroupNorm": "nn.GroupNorm",
        "nn.LayerNorm": "nn.LayerNorm", "nn.Dropout": "nn.Dropout",
        "nn.Embedding": "nn.Embedding", "nn.LSTM": None, "nn.GRU": None, "nn.RNN": None,
        "nn.MultiheadAttention": None, "nn.ModuleList": None,
        "nn.ModuleDict": None, "nn.Identity": None, "nn.Sequential": None,
        **{"nn.init." + name: None for name in (
            "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_",
            "orthogonal_", "uniform_", "normal_", "constant_", "zeros_", "ones_",
            "calculate_gain")},
    },
    "optimizers and schedulers": {
        "torch.optim." + name: None for name in (
            "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "lr_scheduler.StepLR",
            "lr_scheduler.MultiStepLR", "lr_scheduler.ExponentialLR",
            "lr_scheduler.CosineAnnealingLR", "lr_scheduler.LambdaLR",
            "lr_scheduler.ReduceLROnPlateau")},
    "gradient clipping": {"nn.utils.clip_grad_norm_": None, "nn.utils.clip_grad_value_": None},
    "torch.nn cells and transformers": {
        "nn." + name: None for name in (
            "RNNCell", "LSTMCell", "GRUCell", "TransformerEncoderLayer", "TransformerEncoder",
            "TransformerDecoderLayer", "TransformerDecoder", "Transformer",
            "Transformer.generate_square_subsequent_mask", "ParameterList", "ParameterDict",
            "Bilinear")},
    "more torch.nn.functional": {
        "F." + name: None for name in (
            "normalize", "embedding", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
            "adaptive_avg_pool3d")},
    "more torch.nn.functional (2)": {
        "F." + name: None for name in (
            "hardshrink", "softshrink", "tanhshrink", "threshold", "rrelu",
            "adaptive_max_pool1d", "adaptive_max_pool2d", "dropout1d", "dropout2d", "dropout3d",
            "alpha_dropout", "pixel_shuffle", "pixel_unshuffle", "unfold", "fold", "rms_norm",
            "scaled_dot_product_attention", "pairwise_distance", "pdist", "embedding_bag",
            "local_response_norm", "lp_pool1d", "lp_pool2d", "max_unpool2d",
            "gaussian_nll_loss", "poisson_nll_loss", "soft_margin_loss", "multi_margin_loss",
            "multilabel_margin_loss", "multilabel_soft_margin_loss", "hinge_embedding_loss",
            "cosine_embedding_loss", "triplet_margin_loss", "ctc_loss", "grid_sample",
            "affine_grid")},
    "more torch.nn layers (2)": {
        "nn." + name: None for name in (
            "Hardshrink", "Softshrink", "Tanhshrink", "Threshold", "RReLU",
            "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "Dropout1d", "Dropout2d", "Dropout3d",
            "AlphaDropout", "PixelShuffle", "PixelUnshuffle", "Unfold", "Fold", "RMSNorm",
            "ZeroPad1d", "ZeroPad3d", "ConstantPad1d", "ConstantPad2d", "ConstantPad3d",
            "ReflectionPad1d", "ReflectionPad2d", "ReflectionPad3d", "ReplicationPad1d",
            "ReplicationPad2d", "ReplicationPad3d", "CircularPad1d", "CircularPad2d",
            "CircularPad3d", "LPPool1d", "LPPool2d", "LocalResponseNorm", "GaussianNLLLoss",
            "PoissonNLLLoss", "SoftMarginLoss", "MultiMarginLoss", "MultiLabelMarginLoss",
            "MultiLabelSoftMarginLoss", "HingeEmbeddingLoss", "CosineEmbeddingLoss",
            "TripletMarginLoss", "CTCLoss")},
    "extending": {
        "torch.autograd.Function": "custom_op",
        "C++ extension kernels": "register_kernel (C compiled with cffi)",
    },
    # the families below are the dtypes/reductions/elementwise part of issue 10
    "elementwise math (dtypes part)": {
        name: None for name in (
            "abs", "exp", "log", "sqrt", "rsqrt", "sin", "cos", "tan", "asin", "acos", "atan",
            "atan2", "sinh", "cosh", "asinh", "acosh", "atanh", "log2", "log10", "log1p",
            "exp2", "expm1", "hypot", "lerp", "clamp", "clip", "floor", "ceil", "round",
            "trunc", "sign", "remainder", "fmod", "floor_divide", "pow", "maximum", "minimum",
            "erf", "reciprocal", "square", "neg", "add", "sub", "mul", "div", "isnan", "isinf",
            "isfinite", "logical_and", "logical_or", "logical_xor", "logical_not",
            "bitwise_and", "bitwise_or", "bitwise_xor", "bitwise_not", "bitwise_left_shift",
            "bitwise_right_shift")},
    "comparisons (dtypes part)": {name: None for name in ("eq", "ne", "lt", "le", "gt", "ge")},
    "activations (activations part)": {
        name: None for name in (
            "relu", "gelu", "elu", "selu", "celu", "silu", "mish", "softsign", "logsigmoid",
            "hardsigmoid", "hardswish", "hardtanh", "relu6", "softplus", "prelu", "glu",
            "leaky_relu", "sigmoid", "tanh", "softmax", "log_softmax", "softmin")},
    "reductions and scans (reductions part)": {
        name: None for name in (
            "sum", "mean", "prod", "max", "min", "argmax", "argmin", "logsumexp", "var", "std",
            "cumsum", "cumprod", "norm", "sort", "argsort", "topk", "median", "any", "all")},
    "linear algebra and others": {
        "matmul": None, "F.dropout": "dropout",
        "F.linear": "linear (its kernel is (in, out): F.linear(x, w, b) is linear(x, w.T, b))"},
    # the everyday rest of torch.* and Tensor.* a ported script calls
    "more torch.* functions": {
        name: None for name in (
            "mm", "bmm", "mv", "dot", "inner", "outer", "addmm", "baddbmm", "tensordot",
            "einsum", "kron", "cross", "cdist", "amax", "amin", "aminmax", "nansum", "nanmean",
            "count_nonzero", "var_mean", "std_mean", "kthvalue", "diff", "trace", "movedim", "moveaxis", "swapaxes", "swapdims", "narrow", "select", "unflatten",
            "atleast_1d", "atleast_2d", "atleast_3d", "hstack", "vstack", "dstack",
            "column_stack", "fliplr", "flipud", "rot90", "broadcast_shapes",
            "broadcast_tensors", "masked_select", "block_diag", "tril_indices", "triu_indices",
            "index_add", "index_fill", "nonzero", "argwhere", "true_divide", "multiply",
            "subtract", "divide", "negative", "positive", "frac", "deg2rad", "rad2deg",
            "float_power", "addcmul", "addcdiv", "logit", "xlogy", "logaddexp", "logaddexp2",
            "signbit", "copysign", "heaviside", "nan_to_num", "isclose", "allclose", "sinc",
            "eye", "linspace", "logspace", "empty", "empty_like", "full_like", "rand_like",
            "randn_like", "randint", "randperm", "as_tensor", "from_numpy", "is_tensor",
            "numel", "manual_seed")},
    "more Tensor methods": {
        "Tensor." + name: None for name in (
            "float", "double", "long", "int", "type", "type_as", "new_zeros", "new_ones",
            "new_full", "new_empty", "new_tensor", "absolute", "clamp_min", "clamp_max", "ravel",
            "numel", "dim", "size", "contiguous", "view_as", "reshape_as", "expand_as", "t", "mT", "pow", "eq", "ne",
            "lt", "le", "gt", "ge", "where", "add", "sub", "mul", "div", "mm", "bmm", "dot",
            "amax", "amin", "square", "neg", "reciprocal", "sign", "floor", "ceil", "round",
            "frac", "lerp", "nan_to_num", "movedim", "swapaxes", "unflatten", "narrow", "diag",
            "trace", "count_nonzero", "nansum", "nanmean", "kthvalue", "isclose", "allclose",
            "equal", "masked_select", "index_add", "index_fill", "nonzero", "data", "add_",
            "sub_", "mul_", "div_", "pow_", "clamp_", "fill_", "zero_", "copy_",
            "masked_fill_", "normal_", "uniform_", "retain_grad", "retains_grad", "to",
            "__lshift__", "__rshift__")},
    "more torch.* functions (scans, sets, searching)": {
        name: None for name in (
            "cummax", "cummin", "logcumsumexp", "nanmedian", "quantile", "nanquantile", "mode",
            "msort", "histc", "bincount", "bucketize", "isin", "unique", "unique_consecutive",
            "trapezoid", "dist", "erfc", "erfinv", "lgamma", "fmax", "fmin", "isneginf",
            "isposinf", "bernoulli", "multinomial", "normal", "t", "tensor_split", "hsplit",
            "vsplit", "dsplit", "diag_embed", "index_copy", "masked_scatter", "slice_scatter",
            "scatter_reduce", "vander", "cartesian_prod")},
    "more Tensor methods (2)": {
        "Tensor.half": "Tensor.half (a TypeError: pyfront has no float16)",
        "Tensor.unfold": "Tensor.unfold / sliding_windows",
        **{"Tensor." + name: None for name in (
            "addmm", "element_size", "nelement", "index_add_", "index_copy", "index_copy_",
            "scatter_", "scatter_reduce", "scatter_reduce_", "masked_scatter",
            "masked_scatter_", "slice_scatter", "cummax", "cummin", "logcumsumexp",
            "nanmedian", "quantile", "nanquantile", "mode", "msort", "unique",
            "unique_consecutive", "bincount", "histc", "dist", "tensor_split", "hsplit",
            "vsplit", "dsplit", "diag_embed", "fmax", "fmin", "erfc", "erfinv", "lgamma",
            "isposinf", "isneginf", "bernoulli", "multinomial", "grad_fn", "register_hook")},
    },
    "linear algebra (torch.linalg)": {
        **{"torch.linalg." + name: None for name in (
            "inv", "det", "slogdet", "solve", "solve_triangular", "cholesky", "qr", "svd",
            "svdvals", "eigh", "eigvalsh", "pinv", "matrix_rank", "lstsq", "matrix_power",
            "matrix_exp", "matrix_norm", "vector_norm", "norm", "cond", "cross", "multi_dot")},
        **{name: None for name in (
            "inverse", "det", "logdet", "slogdet", "cholesky", "qr", "pinverse", "matrix_power",
            "matrix_exp", "cholesky_solve", "triangular_solve")},
        "svd": "svd (torch.svd's convention: V, not linalg.svd's Vh)",
        **{"Tensor." + name: None for name in (
            "inverse", "det", "logdet", "slogdet", "cholesky", "cholesky_solve", "qr", "svd",
            "pinverse", "matrix_power", "matrix_exp", "triangular_solve")},
    },
    "more torch.* functions (3) and torch.special": {
        **{name: None for name in (
            "searchsorted", "unravel_index", "cov", "corrcoef", "histogram", "gcd", "lcm",
            "frexp", "ldexp", "nextafter", "rsub", "sgn", "angle", "i0", "digamma", "polygamma",
            "mvlgamma", "renorm", "addbmm", "addmv", "addr", "chain_matmul",
            "cumulative_trapezoid", "result_type", "can_cast", "promote_types",
            "is_floating_point", "is_nonzero", "get_default_dtype", "set_default_dtype")},
        "compile": "compile (pf.jit; torch.compile's options are accepted and ignored)",
        **{"torch.special." + name: None for name in (
            "erf", "erfc", "erfinv", "expit", "logit", "xlogy", "xlog1py", "gammaln",
            "digamma", "psi", "polygamma", "multigammaln", "i0", "i0e", "i1", "i1e", "ndtr",
            "ndtri", "log_ndtr", "sinc", "round", "softmax", "log_softmax", "log1p", "expm1",
            "exp2", "entr", "logsumexp")},
        "F.bilinear": None, "F.gumbel_softmax": None, "nn.EmbeddingBag": None,
        **{"Tensor." + name: None for name in (
            "cov", "corrcoef", "histogram", "renorm", "gcd", "lcm", "frexp", "ldexp",
            "nextafter", "sgn", "angle", "i0", "digamma", "polygamma", "mvlgamma", "addbmm",
            "addmv", "addr", "is_floating_point", "is_nonzero")},
    },
}

# the README's families, by the module that defines the ops
# (module names: the package's attribute ops.dropout is the function)
_FAMILIES = [
    ("shape and indexing", "shape"), ("elementwise math and activations", "elementwise"),
    ("reductions and scans", "reduction"), ("linear algebra", "linalg"),
    ("dense linear algebra (pf.linalg)", "decompositions"), ("convolution", "conv"), ("pooling and resizing", "pooling"),
    ("normalization", "normalization"), ("softmax and losses", "losses"), ("dropout", "dropout"),
    ("recurrent", "recurrent"),
]
_INTERNAL = {"broadcast_strides", "lower_reduce", "activation_grad", "LINEAR_ACTIVATIONS",
             "ACTIVATIONS"}
BEGIN = "<!-- op table: generated by python -m pyfront.ops.catalog; do not edit -->"
END = "<!-- end of op table -->"


def pyfront_name(torch_name, mapped):
    """The attribute path a mapping names: `mapped`'s first word, or the PyTorch name itself
    (its F./torch. prefix dropped)."""
    if mapped is None:
        return torch_name.split(".", 1)[1] if torch_name.startswith(("F.", "torch.")) \
            else torch_name
    return mapped.split()[0]


def torch_functional_names():
    """The names under which torch.nn.functional's function is pyfront's function of the same
    name: those the catalog lists under F.<name> with the same name here, and the activations
    (torch.relu is F.relu). Others (F.linear, whose weight is the transpose of pyfront's
    kernel) are not the same function."""
    names = set(TORCH_NAMES["activations (activations part)"])
    for family in TORCH_NAMES.values():
        for key, mapped in family.items():
            if key.startswith("F.") and pyfront_name(key, mapped) == key[2:]:
                names.add(key[2:])
    return names


def op_table():
    """The markdown table: family, public functions (native ops of the registry in bold)."""
    native = set(REGISTRY)
    lines = [BEGIN, "", "| family | functions (**bold**: one registered op with a native "
             "kernel; others compose ops) |", "|---|---|"]
    for family, module_name in _FAMILIES:
        module = importlib.import_module("." + module_name, __package__)
        names = sorted(n for n in module.__all__ if n not in _INTERNAL)
        cells = ", ".join("**%s**" % n if n in native else n for n in names)
        lines.append("| %s | %s |" % (family, cells))
    from .names import ALIASES

    spelled = ", ".join("`%s=`" % t for t in ALIASES)
    lines += ["", "PyTorch names with another name here (the rest are the same; PyTorch's "
              "argument names %s work wherever pyfront's do):" % spelled, ""]
    # the other names, and same names whose mapping carries a note (a different layout)
    renamed = sorted({(t, m) for fam in TORCH_NAMES.values() for t, m in fam.items()
                      if m is not None and (pyfront_name(t, None) != pyfront_name(t, m) or
                                            " " in m)})
    lines.append(", ".join("`%s` → `%s`" % (t, m) for t, m in renamed))
    lines += ["", END]
    return "\n".join(lines)


def update_readme(path):
    """Replace the table between the markers in the README at path (appended if absent)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    table = op_table()
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + table + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + table + "\n"
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--write":
        update_readme(sys.argv[2])
    else:
        print(op_table())
