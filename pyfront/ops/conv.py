"""Convolution ops (1-D, 2-D, 3-D)."""

__all__ = []
