"""Dropout: random masks from a counter-based generator."""

__all__ = []
