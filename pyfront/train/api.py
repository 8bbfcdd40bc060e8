"""The Keras-style training API that every Module carries: compile, fit, evaluate, predict,
summary."""

__all__ = ["TrainingMixin"]


class TrainingMixin:
    """Mixed into pyfront.nn.Module."""
