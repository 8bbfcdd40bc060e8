"""GroupNorm and InstanceNorm layers (channels first), as torch.nn.GroupNorm and
torch.nn.InstanceNorm*d without running statistics."""
from .. import errors
from ..ops.norm import group_norm   # (ops.norm is the norm function: pf.norm)
from ..ops.core import fmt_shape
from .module import Module, Parameter, register_layer

__all__ = ["GroupNorm", "InstanceNorm"]


@register_layer
class GroupNorm(Module):
    """Normalises each of num_groups channel groups of each sample over its channels and
    positions; learned per-channel gamma and beta when affine. num_channels from the first
    input unless given."""

    def __init__(self, num_groups, num_channels=None, eps=1e-5, affine=True, name=None):
        super().__init__(name)
        if isinstance(num_groups, bool) or not isinstance(num_groups, int) or num_groups < 1:
            raise ValueError("%s: num_groups must be a positive int, got %r"
                             % (type(self).__name__, num_groups))
        if not eps > 0:
            raise ValueError("%s: eps must be positive, got %r" % (type(self).__name__, eps))
        self.num_groups, self.eps, self.affine = num_groups, float(eps), bool(affine)
        self.num_channels = None
        self.gamma = Parameter(init="ones") if self.affine else None
        self.beta = Parameter(init="zeros") if self.affine else None
        if num_channels is not None:
            self._materialize(num_channels)
            self.built = True

    def _materialize(self, channels):
        if channels % self.num_groups:
            raise errors.ShapeError("%s '%s': num_groups=%d does not divide %d channels"
                                    % (type(self).__name__, self.name, self.num_groups,
                                       channels))
        self.num_channels = int(channels)
        for p in (self.gamma, self.beta):
            if p is not None:
                p.materialize((self.num_channels,))

    def build(self, input_shape):
        if input_shape is None or len(input_shape) < 2 or input_shape[1] is None:
            raise errors.ShapeError("%s '%s' takes (batch, channels, *spatial) inputs with "
                                    "known channels, got %s" % (type(self).__name__, self.name,
                                                                input_shape))
        self._materialize(input_shape[1])

    def _groups(self, x):
        return self.num_groups

    def forward(self, x):
        if len(x.shape) < 2 or x.shape[1] != self.num_channels:
            raise errors.ShapeError("%s '%s' was built for %s channels, got input %s"
                                    % (type(self).__name__, self.name, self.num_channels,
                                       fmt_shape(x.shape)))
        return group_norm(x, self._groups(x), self.gamma, self.beta, self.eps)

    def get_config(self):
        return {"num_groups": self.num_groups, "num_channels": self.num_channels,
                "eps": self.eps, "affine": self.affine, "name": self.name}


@register_layer
class InstanceNorm(GroupNorm):
    """Each channel of each sample normalised over its positions (any spatial rank); affine
    (learned gamma, beta) off by default, as torch.nn.InstanceNorm*d."""

    def __init__(self, num_channels=None, eps=1e-5, affine=False, name=None):
        super().__init__(1, num_channels, eps, affine, name)

    def _materialize(self, channels):
        self.num_groups = int(channels)
        super()._materialize(channels)

    def forward(self, x):
        if len(x.shape) < 3:
            raise errors.ShapeError("%s '%s' takes (batch, channels, *spatial) inputs with at "
                                    "least one spatial dim, got %s"
                                    % (type(self).__name__, self.name, fmt_shape(x.shape)))
        return super().forward(x)

    def get_config(self):
        return {"num_channels": self.num_channels, "eps": self.eps, "affine": self.affine,
                "name": self.name}
