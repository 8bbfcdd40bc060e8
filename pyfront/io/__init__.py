"""The safe model format: save, load, checkpoints."""
