"""BatchNorm (any rank, and BatchNorm1D/2D/3D that pin it), LayerNorm, GroupNorm and
InstanceNorm, channels-first, with PyTorch's conventions (momentum, eps, biased variance for
normalising, unbiased for the running variance)."""
from .. import errors, ops
from ..ops.core import fmt_shape
from ..ops.normalization import group_norm, normalized_shape_tuple
from .module import Module, Parameter, register_layer

__all__ = ["BatchNorm", "BatchNorm1D", "BatchNorm2D", "BatchNorm3D", "LayerNorm", "GroupNorm",
           "InstanceNorm"]


class _DeferredBuffer(Parameter):
    """Non-trainable state saved with the model that, like a Parameter, takes its shape from
    the layer's first input (running statistics). Registered with register_buffer, so
    optimizers never see it; load_state_dict gives it memory like any deferred parameter."""

    __slots__ = ()
    kind = "buffer"

    def __init__(self, init, name):
        super().__init__(init=init, trainable=False, name=name)


def _momentum(momentum, owner):
    """A running-statistics momentum: a number in [0, 1], or None (a cumulative average)."""
    if momentum is None:
        return None
    if isinstance(momentum, bool) or not isinstance(momentum, (int, float)) or \
            not 0 <= momentum <= 1:
        raise ValueError("%s: momentum must be in [0, 1] or None (a cumulative average), got %r"
                         % (owner, momentum))
    return float(momentum)


def _running_statistics(module):
    """module's running_mean (zeros) and running_var (ones) buffers, sized when it builds."""
    module.register_buffer("running_mean",
                           _DeferredBuffer("zeros", "%s/running_mean" % module.name))
    module.register_buffer("running_var", _DeferredBuffer("ones", "%s/running_var" % module.name))


@register_layer
class BatchNorm(Module):
    """Batch normalisation over dim 1 of (N, C, *spatial) or (N, C).

    Training normalises with the batch statistics and updates the running statistics in
    place: running = (1 - momentum) * running + momentum * batch statistic (the running
    variance from the unbiased batch variance), exactly as torch.nn.BatchNorm*d; momentum=None
    makes it the cumulative average (momentum 1 / batches seen, eager steps only; the count is
    num_batches_tracked); evaluation (module.eval()) normalises with the running statistics.
    Keras's momentum is 1 - this one. num_features (C) is taken from the first input unless
    given.
    """

    torch_state = {"weight": ("gamma", False), "bias": ("beta", False)}

    expected_ndims = None          # subclasses pin the input rank
    layout = "(N, C, *spatial)"

    def __init__(self, num_features=None, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, name=None):
        super().__init__(name)
        if num_features is not None and (not isinstance(num_features, int) or num_features < 1):
            raise ValueError("%s: num_features must be a positive int, got %r"
                             % (self.name, num_features))
        momentum = _momentum(momentum, self.name)
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
            raise ValueError("%s: eps must be a positive number, got %r" % (self.name, eps))
        self.num_features = num_features
        self.momentum = momentum
        self.num_batches_tracked = 0     # training batches seen (momentum=None divides by it)
        self.eps = float(eps)
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        self.gamma = Parameter(init="ones") if self.affine else None
        self.beta = Parameter(init="zeros") if self.affine else None
        if self.track_running_stats:
            _running_statistics(self)
        if num_features is not None:
            self._materialize(num_features)
            self.built = True

    def _materialize(self, channels):
        self.num_features = channels
        for t in (self.gamma, self.beta, getattr(self, "running_mean", None),
                  getattr(self, "running_var", None)):
            if t is not None:
                t.materialize((channels,))

    def _check_rank(self, shape):
        ndims = self.expected_ndims or range(2, 9)
        if shape is None or len(shape) not in ndims:
            raise errors.ShapeError(
                "%s: expected a %s input %s, got shape %s"
                % (self.name, " or ".join("%d-D" % n for n in ndims) if self.expected_ndims
                   else "2-D or higher", self.layout,
                   "unknown" if shape is None else fmt_shape(shape)))

    def build(self, input_shape):
        self._check_rank(input_shape)
        if input_shape[1] is None:
            raise errors.ShapeError("%s: the channel dim (1) of the input must be known, got %s"
                                    % (self.name, fmt_shape(input_shape)))
        self._materialize(int(input_shape[1]))

    def forward(self, x):
        x = ops.core.as_operand(x)
        self._check_rank(tuple(x.shape))
        track = self.track_running_stats
        momentum = self.momentum
        if self.training and track:
            if momentum is None:
                if x.symbolic:
                    raise errors.TraceError(
                        "%s: momentum=None (a cumulative average, 1 / batches seen) runs "
                        "eagerly only: a compiled step would keep the first batch's factor"
                        % self.name)
                momentum = 1.0 / (self.num_batches_tracked + 1)
            if not x.symbolic:
                self.num_batches_tracked += 1
        return ops.batch_norm(x, self.running_mean if track else None,
                              self.running_var if track else None, self.gamma, self.beta,
                              training=self.training or not track,
                              momentum=0.0 if momentum is None else momentum, eps=self.eps)

    def get_config(self):
        return {"num_features": self.num_features, "momentum": self.momentum, "eps": self.eps,
                "affine": self.affine, "track_running_stats": self.track_running_stats,
                "name": self.name}


@register_layer
class BatchNorm1D(BatchNorm):
    """BatchNorm of (N, C) or (N, C, L) inputs (torch.nn.BatchNorm1d)."""

    expected_ndims = (2, 3)
    layout = "(N, C) or (N, C, L)"


@register_layer
class BatchNorm2D(BatchNorm):
    """BatchNorm of (N, C, H, W) inputs (torch.nn.BatchNorm2d)."""

    expected_ndims = (4,)
    layout = "(N, C, H, W)"


@register_layer
class BatchNorm3D(BatchNorm):
    """BatchNorm of (N, C, D, H, W) inputs (torch.nn.BatchNorm3d)."""

    expected_ndims = (5,)
    layout = "(N, C, D, H, W)"


@register_layer
class LayerNorm(Module):
    """Layer normalisation over the trailing dims normalized_shape (an int or a tuple; by
    default the last dim of the first input), with learned gamma and beta of that shape when
    elementwise_affine (beta only if bias), as torch.nn.LayerNorm."""

    torch_state = {"weight": ("gamma", False), "bias": ("beta", False)}

    def __init__(self, normalized_shape=None, eps=1e-5, elementwise_affine=True, bias=True,
                 name=None):
        super().__init__(name)
        if isinstance(eps, bool) or not isinstance(eps, (int, float)) or not eps > 0:
            raise ValueError("%s: eps must be a positive number, got %r" % (self.name, eps))
        self.normalized_shape = None
        if normalized_shape is not None:
            try:
                self.normalized_shape = normalized_shape_tuple(normalized_shape)
            except (TypeError, ValueError) as e:
                raise type(e)("%s: %s" % (self.name, e)) from None
        self.eps = float(eps)
        self.elementwise_affine = bool(elementwise_affine)
        self.bias = bool(bias)
        self.gamma = Parameter(init="ones") if self.elementwise_affine else None
        self.beta = Parameter(init="zeros") if self.elementwise_affine and self.bias else None
        if self.normalized_shape is not None:
            self._materialize()
            self.built = True

    def _materialize(self):
        for p in (self.gamma, self.beta):
            if p is not None:
                p.materialize(self.normalized_shape)

    def build(self, input_shape):
        if self.normalized_shape is None:
            if input_shape is None or len(input_shape) < 1 or input_shape[-1] is None:
                raise errors.ShapeError("%s: cannot take normalized_shape from an input of "
                                        "shape %s" % (self.name, input_shape))
            self.normalized_shape = (int(input_shape[-1]),)
        self._materialize()

    def forward(self, x):
        return ops.layer_norm(x, self.normalized_shape, self.gamma, self.beta, self.eps)

    def get_config(self):
        return {"normalized_shape": list(self.normalized_shape) if self.normalized_shape else None,
                "eps": self.eps, "elementwise_affine": self.elementwise_affine,
                "bias": self.bias, "name": self.name}


@register_layer
class GroupNorm(Module):
    """Normalises each of num_groups channel groups of each sample over its channels and
    positions; learned per-channel gamma and beta when affine. num_channels from the first
    input unless given."""

    torch_state = {"weight": ("gamma", False), "bias": ("beta", False)}

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
    """Each channel of each sample normalised over its positions (any spatial rank), as
    torch.nn.InstanceNorm1d/2d/3d, with its arguments in its order: InstanceNorm(num_channels,
    eps=1e-5, momentum=0.1, affine=False, track_running_stats=False). With
    track_running_stats, training also keeps running means and (unbiased) variances of the
    per-instance statistics, averaged over the batch (eager steps only), and evaluation
    normalises with them; momentum=None leaves them as they are (PyTorch's)."""

    def __init__(self, num_channels=None, eps=1e-5, momentum=0.1, affine=False,
                 track_running_stats=False, name=None):
        self.momentum = _momentum(momentum, "InstanceNorm")
        self.track_running_stats = bool(track_running_stats)
        super().__init__(1, None, eps, affine, name)
        if self.track_running_stats:
            _running_statistics(self)
        if num_channels is not None:
            self._materialize(num_channels)
            self.built = True

    def _materialize(self, channels):
        self.num_groups = int(channels)
        super()._materialize(channels)
        if self.track_running_stats:
            for t in (self.running_mean, self.running_var):
                t.materialize((self.num_channels,))

    def forward(self, x):
        if len(x.shape) < 3:
            raise errors.ShapeError("%s '%s' takes (batch, channels, *spatial) inputs with at "
                                    "least one spatial dim, got %s"
                                    % (type(self).__name__, self.name, fmt_shape(x.shape)))
        if not self.track_running_stats:
            return super().forward(x)
        if not self.training:
            if len(x.shape) < 2 or x.shape[1] != self.num_channels:
                return super().forward(x)        # (its error names the channels)
            return ops.batch_norm(x, self.running_mean, self.running_var, self.gamma,
                                  self.beta, training=False, eps=self.eps)
        if getattr(x, "symbolic", False):
            raise errors.TraceError("%s: track_running_stats updates its running statistics "
                                    "in eager steps only" % self.name)
        y = super().forward(x)
        if self.momentum:
            from .. import autograd

            with autograd.no_grad():
                spatial = tuple(range(2, len(x.shape)))
                mean = ops.mean(ops.mean(x, axis=spatial), axis=0)
                var = ops.mean(ops.var(x, axis=spatial, correction=1), axis=0)
                m = self.momentum
                for buf, stat in ((self.running_mean, mean), (self.running_var, var)):
                    buf.copy_(buf * (1.0 - m) + ops.cast(stat, buf.dtype) * m)
        return y

    def get_config(self):
        return {"num_channels": self.num_channels, "eps": self.eps, "momentum": self.momentum,
                "affine": self.affine, "track_running_stats": self.track_running_stats,
                "name": self.name}
