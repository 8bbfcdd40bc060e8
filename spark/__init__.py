"""pyfront on Spark: data-parallel training across executors (SparkTrainer with SyncSGD or
ParameterAveraging), scoring and evaluation of DataFrames, and Spark ML Pipeline stages
(pyfront.spark.ml). pyspark is imported only when these are used."""
from .scoring import evaluate, predict  # noqa: F401
from .strategies import ParameterAveraging, SyncSGD  # noqa: F401
from ..train.callbacks import History  # noqa: F401  (the one History, as local fit's)
from .trainer import SparkTrainer  # noqa: F401

__all__ = ["SparkTrainer", "SyncSGD", "ParameterAveraging", "History", "predict", "evaluate"]
