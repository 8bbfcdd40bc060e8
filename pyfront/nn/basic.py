"""Dropout, Embedding, Flatten, Reshape, Concatenate, Add."""

__all__ = []
