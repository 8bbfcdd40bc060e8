"""Spark ML Pipeline stages for pyfront networks: PyfrontEstimator (trains with SparkTrainer)
and PyfrontModel (scores with pyfront.spark.predict), both persistable with Spark ML."""
from .estimator import PyfrontEstimator, PyfrontModel  # noqa: F401

__all__ = ["PyfrontEstimator", "PyfrontModel"]
