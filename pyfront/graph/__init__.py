"""Symbolic graphs: build, infer shapes, compile to plans, export."""
