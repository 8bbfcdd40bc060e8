"""Normalisation ops."""

__all__ = []
