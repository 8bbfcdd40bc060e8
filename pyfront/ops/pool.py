"""Pooling ops."""

__all__ = []
