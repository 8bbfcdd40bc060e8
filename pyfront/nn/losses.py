"""Loss modules under PyTorch's names (torch.nn.CrossEntropyLoss and its kin): objects that hold a
loss's options and call the loss function (pyfront.losses) with them, so that a PyTorch loop
(`criterion = nn.CrossEntropyLoss(); criterion(model(x), y).backward()`) ports without edits.
fit's compile(loss=...) takes them as it takes the functions.

Options past the first are keyword-only: PyTorch's own positional order still carries the
deprecated size_average and reduce, so a positional reduction would land on the wrong one."""
from .. import ops
from ..tensor import Tensor, tensor
from .module import Module

__all__ = ["CrossEntropyLoss", "NLLLoss", "MSELoss", "L1Loss", "BCELoss", "BCEWithLogitsLoss",
           "HuberLoss", "SmoothL1Loss", "KLDivLoss", "MarginRankingLoss", "CosineSimilarity"]
__all__ += ["GaussianNLLLoss", "PoissonNLLLoss", "SoftMarginLoss", "MultiMarginLoss",
            "MultiLabelMarginLoss", "MultiLabelSoftMarginLoss", "HingeEmbeddingLoss",
            "CosineEmbeddingLoss", "TripletMarginLoss", "CTCLoss"]

_REDUCTIONS = ("mean", "sum", "none")


class _Loss(Module):
    """A loss function bound to its options; the options are checked when it is made."""

    def __init__(self, reduction="mean", weight=None):
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError("%s: reduction must be 'mean', 'sum' or 'none', got %r"
                             % (type(self).__name__, reduction))
        self.reduction = reduction
        self._optional_buffer("weight", weight)
        self.built = True

    def _optional_buffer(self, key, value):
        # a class weight is state (it follows .to("cuda")), not a trainable parameter
        if value is None:
            object.__setattr__(self, key, None)
        else:
            self.register_buffer(key, value if isinstance(value, Tensor)
                                 else tensor(value, dtype="float32"))


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy of logits (batch, classes[, *positions]) against class indices or
    class probabilities, as torch.nn.CrossEntropyLoss (pf.losses.cross_entropy)."""

    def __init__(self, weight=None, *, ignore_index=-100, reduction="mean",
                 label_smoothing=0.0):
        super().__init__(reduction, weight)
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError("CrossEntropyLoss: label_smoothing must be in [0, 1], got %r"
                             % (label_smoothing,))
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def forward(self, input, target):
        return ops.cross_entropy(input, target, reduction=self.reduction,
                                 ignore_index=self.ignore_index, weight=self.weight,
                                 label_smoothing=self.label_smoothing)


class NLLLoss(_Loss):
    """Negative log-likelihood of log-probabilities against class indices (torch.nn.NLLLoss)."""

    def __init__(self, weight=None, *, ignore_index=-100, reduction="mean"):
        super().__init__(reduction, weight)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return ops.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                            reduction=self.reduction)


class MSELoss(_Loss):
    """Mean squared error (torch.nn.MSELoss)."""

    def __init__(self, *, reduction="mean"):
        super().__init__(reduction)

    def forward(self, input, target):
        return ops.mse(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    """Mean absolute error (torch.nn.L1Loss)."""

    def __init__(self, *, reduction="mean"):
        super().__init__(reduction)

    def forward(self, input, target):
        return ops.l1_loss(input, target, reduction=self.reduction)


class BCELoss(_Loss):
    """Binary cross-entropy of probabilities (torch.nn.BCELoss); weight scales each element."""

    def __init__(self, weight=None, *, reduction="mean"):
        super().__init__(reduction, weight)

    def forward(self, input, target):
        return ops.binary_cross_entropy(input, target, weight=self.weight,
                                        reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy of logits, computed stably from them (torch.nn.BCEWithLogitsLoss);
    pos_weight scales the positive term of each class."""

    def __init__(self, weight=None, *, reduction="mean", pos_weight=None):
        super().__init__(reduction, weight)
        self._optional_buffer("pos_weight", pos_weight)

    def forward(self, input, target):
        return ops.binary_cross_entropy_with_logits(input, target, weight=self.weight,
                                                    pos_weight=self.pos_weight,
                                                    reduction=self.reduction)


class HuberLoss(_Loss):
    """Huber loss: quadratic within delta of the target, linear beyond (torch.nn.HuberLoss)."""

    def __init__(self, reduction="mean", delta=1.0):
        super().__init__(reduction)
        if not delta > 0:
            raise ValueError("HuberLoss: delta must be positive, got %r" % (delta,))
        self.delta = delta

    def forward(self, input, target):
        return ops.huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class SmoothL1Loss(_Loss):
    """Smooth L1: Huber divided by beta (torch.nn.SmoothL1Loss)."""

    def __init__(self, *, reduction="mean", beta=1.0):
        super().__init__(reduction)
        if not beta >= 0:
            raise ValueError("SmoothL1Loss: beta must be non-negative, got %r" % (beta,))
        self.beta = beta

    def forward(self, input, target):
        return ops.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class KLDivLoss(_Loss):
    """KL divergence of the target from the input's distribution, the input given as
    log-probabilities (torch.nn.KLDivLoss; reduction="batchmean" divides the sum by the batch
    size, the mathematically right mean)."""

    def __init__(self, *, reduction="mean", log_target=False):
        super().__init__("sum" if reduction == "batchmean" else reduction)
        self.reduction = reduction
        self.log_target = log_target

    def forward(self, input, target):
        return ops.kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


class MarginRankingLoss(_Loss):
    """max(0, -y * (x1 - x2) + margin) (torch.nn.MarginRankingLoss)."""

    def __init__(self, margin=0.0, *, reduction="mean"):
        super().__init__(reduction)
        self.margin = margin

    def forward(self, input1, input2, target):
        return ops.margin_ranking_loss(input1, input2, target, margin=self.margin,
                                       reduction=self.reduction)


class CosineSimilarity(Module):
    """Cosine similarity along dim (torch.nn.CosineSimilarity)."""

    def __init__(self, dim=1, eps=1e-8):
        super().__init__()
        self.dim, self.eps = dim, eps
        self.built = True

    def forward(self, x1, x2):
        return ops.cosine_similarity(x1, x2, axis=self.dim, eps=self.eps)


class GaussianNLLLoss(_Loss):
    """Gaussian negative log-likelihood of the target under mean input and variance var
    (torch.nn.GaussianNLLLoss; called as loss(input, target, var))."""

    def __init__(self, *, full=False, eps=1e-6, reduction="mean"):
        super().__init__(reduction)
        self.full, self.eps = bool(full), float(eps)

    def forward(self, input, target, var):
        return ops.gaussian_nll_loss(input, target, var, self.full, self.eps, self.reduction)


class PoissonNLLLoss(_Loss):
    """Poisson negative log-likelihood of the target with rate exp(input) (log_input) or input
    (torch.nn.PoissonNLLLoss)."""

    def __init__(self, log_input=True, full=False, *, eps=1e-8, reduction="mean"):
        super().__init__(reduction)
        self.log_input, self.full, self.eps = bool(log_input), bool(full), float(eps)

    def forward(self, input, target):
        return ops.poisson_nll_loss(input, target, self.log_input, self.full, eps=self.eps,
                                    reduction=self.reduction)


class SoftMarginLoss(_Loss):
    """log(1 + exp(-y x)) for targets y of +1 or -1 (torch.nn.SoftMarginLoss)."""

    def __init__(self, *, reduction="mean"):
        super().__init__(reduction)

    def forward(self, input, target):
        return ops.soft_margin_loss(input, target, reduction=self.reduction)


class MultiMarginLoss(_Loss):
    """Multi-class hinge loss over (batch, classes) scores and class indices
    (torch.nn.MultiMarginLoss); weight scales each target class."""

    def __init__(self, p=1, margin=1.0, weight=None, *, reduction="mean"):
        super().__init__(reduction, weight)
        if p not in (1, 2):
            raise ValueError("MultiMarginLoss: p must be 1 or 2, got %r" % (p,))
        self.p, self.margin = p, float(margin)

    def forward(self, input, target):
        return ops.multi_margin_loss(input, target, self.p, self.margin, self.weight,
                                     reduction=self.reduction)


class MultiLabelMarginLoss(_Loss):
    """Multi-label hinge loss, each sample's classes listed in its target row up to the first
    -1 (torch.nn.MultiLabelMarginLoss)."""

    def __init__(self, *, reduction="mean"):
        super().__init__(reduction)

    def forward(self, input, target):
        return ops.multilabel_margin_loss(input, target, reduction=self.reduction)


class MultiLabelSoftMarginLoss(_Loss):
    """Per-class binary cross-entropy of logits, averaged over the classes
    (torch.nn.MultiLabelSoftMarginLoss); weight scales each class."""

    def __init__(self, weight=None, *, reduction="mean"):
        super().__init__(reduction, weight)

    def forward(self, input, target):
        return ops.multilabel_soft_margin_loss(input, target, self.weight,
                                               reduction=self.reduction)


class HingeEmbeddingLoss(_Loss):
    """x where y is 1, max(0, margin - x) where y is -1 (torch.nn.HingeEmbeddingLoss)."""

    def __init__(self, margin=1.0, *, reduction="mean"):
        super().__init__(reduction)
        self.margin = float(margin)

    def forward(self, input, target):
        return ops.hinge_embedding_loss(input, target, self.margin, reduction=self.reduction)


class CosineEmbeddingLoss(_Loss):
    """1 - cos(x1, x2) where y is 1, max(0, cos(x1, x2) - margin) where y is -1
    (torch.nn.CosineEmbeddingLoss)."""

    def __init__(self, margin=0.0, *, reduction="mean"):
        super().__init__(reduction)
        self.margin = float(margin)

    def forward(self, input1, input2, target):
        return ops.cosine_embedding_loss(input1, input2, target, self.margin,
                                         reduction=self.reduction)


class TripletMarginLoss(_Loss):
    """max(0, margin + d(anchor, positive) - d(anchor, negative)), d the p-norm distance
    (torch.nn.TripletMarginLoss)."""

    def __init__(self, margin=1.0, p=2.0, eps=1e-6, swap=False, *, reduction="mean"):
        super().__init__(reduction)
        if not margin > 0:
            raise ValueError("TripletMarginLoss: margin must be greater than 0, got %r"
                             % (margin,))
        self.margin, self.p, self.eps, self.swap = float(margin), p, float(eps), bool(swap)

    def forward(self, anchor, positive, negative):
        return ops.triplet_margin_loss(anchor, positive, negative, self.margin, self.p,
                                       self.eps, self.swap, reduction=self.reduction)


class CTCLoss(_Loss):
    """Connectionist temporal classification loss of (time, batch, classes) log-probabilities
    against unaligned targets (torch.nn.CTCLoss; called as loss(log_probs, targets,
    input_lengths, target_lengths))."""

    def __init__(self, blank=0, reduction="mean", zero_infinity=False):
        super().__init__(reduction)
        self.blank, self.zero_infinity = int(blank), bool(zero_infinity)

    def forward(self, log_probs, targets, input_lengths, target_lengths):
        return ops.ctc_loss(log_probs, targets, input_lengths, target_lengths, self.blank,
                            self.reduction, self.zero_infinity)
