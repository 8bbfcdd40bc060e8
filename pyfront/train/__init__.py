"""Training: compile/fit/evaluate/predict, callbacks, metrics."""
