"""The safe model format: save, load, checkpoints, as files or as bytes."""
