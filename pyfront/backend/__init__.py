"""Device backends. "cpu" runs the native C library (backend.cpu); "cuda" its CUDA twin."""
