"""BatchNorm and LayerNorm."""

__all__ = []
