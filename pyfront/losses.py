"""Loss functions: pf.losses.cross_entropy and mse (fused native kernels), nll_loss, binary
cross-entropy (from probabilities or logits), huber/smooth_l1/l1, kl_div, margin ranking."""
# the public functions (ops' namespace, with PyTorch's argument names): pf.losses.mse is
# pf.mse, so that code recognising a loss by identity sees one object
from .ops import (binary_cross_entropy, binary_cross_entropy_with_logits,  # noqa: F401
                  cross_entropy, huber_loss, kl_div, l1_loss, margin_ranking_loss, mse,
                  nll_loss, smooth_l1_loss)

__all__ = ["cross_entropy", "mse", "nll_loss", "binary_cross_entropy",
           "binary_cross_entropy_with_logits", "huber_loss", "smooth_l1_loss", "l1_loss",
           "kl_div", "margin_ranking_loss", "get"]

_BY_NAME = {"cross_entropy": cross_entropy, "sparse_categorical_crossentropy": cross_entropy,
            "mse": mse, "mean_squared_error": mse, "nll_loss": nll_loss,
            "binary_cross_entropy": binary_cross_entropy,
            "binary_crossentropy": binary_cross_entropy,
            "binary_cross_entropy_with_logits": binary_cross_entropy_with_logits,
            "huber": huber_loss, "huber_loss": huber_loss, "smooth_l1": smooth_l1_loss,
            "l1": l1_loss, "mae": l1_loss, "mean_absolute_error": l1_loss, "kl_div": kl_div}


def get(name):
    """A loss function by name ("cross_entropy", "mse") or the callable itself."""
    if callable(name):
        return name
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError("unknown loss %r; known: %s" % (name, ", ".join(sorted(_BY_NAME)))) \
            from None
