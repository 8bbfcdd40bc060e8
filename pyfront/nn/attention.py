"""Multi-head attention."""

__all__ = []
