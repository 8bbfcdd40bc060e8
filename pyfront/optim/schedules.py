"""Learning-rate schedules: callables from a step (or epoch) count t = 0, 1, 2, ... to a learning
rate. The LearningRateScheduler callback applies them per epoch or per batch."""
import math

__all__ = ["Schedule", "StepDecay", "ExponentialDecay", "CosineDecay", "LinearWarmup",
           "Constant"]


class Schedule:
    """Base: schedule(t) -> learning rate; get_config() gives the constructor arguments."""

    def __call__(self, t):
        raise NotImplementedError

    def get_config(self):
        return {}

    def __repr__(self):
        args = ", ".join("%s=%r" % kv for kv in self.get_config().items())
        return "%s(%s)" % (type(self).__name__, args)


def _positive(name, value, cls):
    if not value > 0:
        raise ValueError("%s: %s must be positive, got %r" % (cls, name, value))
    return value


class Constant(Schedule):
    def __init__(self, lr):
        self.lr = float(_positive("lr", lr, "Constant"))

    def __call__(self, t):
        return self.lr

    def get_config(self):
        return {"lr": self.lr}


class StepDecay(Schedule):
    """lr * factor ** floor(t / every): the rate drops by `factor` every `every` steps."""

    def __init__(self, lr, every, factor=0.1):
        self.lr = float(_positive("lr", lr, "StepDecay"))
        self.every = int(_positive("every", every, "StepDecay"))
        self.factor = float(_positive("factor", factor, "StepDecay"))

    def __call__(self, t):
        return self.lr * self.factor ** (int(t) // self.every)

    def get_config(self):
        return {"lr": self.lr, "every": self.every, "factor": self.factor}


class ExponentialDecay(Schedule):
    """lr * rate ** (t / decay_steps), or ** floor(t / decay_steps) when staircase."""

    def __init__(self, lr, decay_rate, decay_steps=1, staircase=False):
        self.lr = float(_positive("lr", lr, "ExponentialDecay"))
        self.decay_rate = float(_positive("decay_rate", decay_rate, "ExponentialDecay"))
        self.decay_steps = int(_positive("decay_steps", decay_steps, "ExponentialDecay"))
        self.staircase = bool(staircase)

    def __call__(self, t):
        p = t / self.decay_steps
        if self.staircase:
            p = math.floor(p)
        return self.lr * self.decay_rate ** p

    def get_config(self):
        return {"lr": self.lr, "decay_rate": self.decay_rate, "decay_steps": self.decay_steps,
                "staircase": self.staircase}


class CosineDecay(Schedule):
    """Half a cosine from lr down to lr * alpha over decay_steps, then lr * alpha (Keras'
    CosineDecay; torch's CosineAnnealingLR with eta_min = lr * alpha)."""

    def __init__(self, lr, decay_steps, alpha=0.0):
        self.lr = float(_positive("lr", lr, "CosineDecay"))
        self.decay_steps = int(_positive("decay_steps", decay_steps, "CosineDecay"))
        if not 0 <= alpha <= 1:
            raise ValueError("CosineDecay: alpha must lie in [0, 1], got %r" % (alpha,))
        self.alpha = float(alpha)

    def __call__(self, t):
        frac = min(max(t, 0), self.decay_steps) / self.decay_steps
        cosine = 0.5 * (1 + math.cos(math.pi * frac))
        return self.lr * (self.alpha + (1 - self.alpha) * cosine)

    def get_config(self):
        return {"lr": self.lr, "decay_steps": self.decay_steps, "alpha": self.alpha}


class LinearWarmup(Schedule):
    """Rises linearly from start_lr to after(0) over warmup_steps, then follows `after`
    shifted by the warm-up: after(t - warmup_steps). `after` is a schedule or a constant rate."""

    def __init__(self, after, warmup_steps, start_lr=0.0):
        self.after = after if callable(after) else Constant(after)
        self.warmup_steps = int(_positive("warmup_steps", warmup_steps, "LinearWarmup"))
        if start_lr < 0:
            raise ValueError("LinearWarmup: start_lr must be >= 0, got %r" % (start_lr,))
        self.start_lr = float(start_lr)

    def __call__(self, t):
        if t < self.warmup_steps:
            target = self.after(0)
            return self.start_lr + (target - self.start_lr) * t / self.warmup_steps
        return self.after(t - self.warmup_steps)

    def get_config(self):
        return {"after": self.after, "warmup_steps": self.warmup_steps,
                "start_lr": self.start_lr}
