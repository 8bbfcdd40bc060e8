"""PyfrontEstimator and PyfrontModel: a pyfront network as a Spark ML Estimator / Model, usable
in a Pipeline (after VectorAssembler, StandardScaler...) and saved with Spark ML persistence.
The estimator holds the architecture as JSON (the model's config); the fitted model's weights
are stored in pyfront's safe format, as bytes in a Parquet file beside Spark ML's metadata."""
import json

from pyspark import keyword_only
from pyspark.ml import Estimator, Model
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import (HasFeaturesCol, HasLabelCol, HasPredictionCol,
                                     HasRawPredictionCol, HasSeed)
from pyspark.ml.util import (DefaultParamsReadable, DefaultParamsReader, DefaultParamsWritable,
                             DefaultParamsWriter, MLReadable, MLReader, MLWritable, MLWriter)

from ... import errors

__all__ = ["PyfrontEstimator", "PyfrontModel"]

_OPTIMIZERS = ("SGD", "Adam", "AdamW")
_CLASS_LOSSES = ("cross_entropy", "sparse_categorical_crossentropy")


class _PyfrontParams(HasFeaturesCol, HasPredictionCol, HasRawPredictionCol):
    inputShape = Param(Params._dummy(), "inputShape",
                       "per-row shape the flat features are reshaped to (empty: flat)",
                       typeConverter=TypeConverters.toListInt)
    predictionKind = Param(Params._dummy(), "predictionKind",
                           "'class': prediction is the index of the largest output (double); "
                           "'value': prediction is the first output",
                           typeConverter=TypeConverters.toString)

    def __init__(self):
        super().__init__()
        self._setDefault(inputShape=[], predictionKind="class",
                         rawPredictionCol="rawPrediction")

    def getInputShape(self):
        return self.getOrDefault(self.inputShape)

    def getPredictionKind(self):
        return self.getOrDefault(self.predictionKind)


class PyfrontEstimator(Estimator, _PyfrontParams, HasLabelCol, HasSeed, DefaultParamsReadable,
                       DefaultParamsWritable):
    """Trains a pyfront network with SparkTrainer; fit() returns a PyfrontModel.

        est = PyfrontEstimator(model=net, loss="cross_entropy", optimizer="adam",
                               learningRate=2e-3, epochs=10, featuresCol="scaled")
        pipeline = Pipeline(stages=[VectorAssembler(...), StandardScaler(...), est])

    model: a pyfront Module whose layers are registered (its architecture is kept as JSON;
    each fit starts from fresh weights drawn with `seed`).
    """

    modelConfig = Param(Params._dummy(), "modelConfig", "the network's architecture (JSON)",
                        typeConverter=TypeConverters.toString)
    loss = Param(Params._dummy(), "loss", "'cross_entropy' or 'mse'",
                 typeConverter=TypeConverters.toString)
    optimizer = Param(Params._dummy(), "optimizer", "'sgd', 'adam' or 'adamw'",
                      typeConverter=TypeConverters.toString)
    optimizerConfig = Param(Params._dummy(), "optimizerConfig",
                            "more optimizer arguments as JSON (momentum, betas, ...)",
                            typeConverter=TypeConverters.toString)
    learningRate = Param(Params._dummy(), "learningRate", "learning rate",
                         typeConverter=TypeConverters.toFloat)
    metrics = Param(Params._dummy(), "metrics", "metric names tracked during training",
                    typeConverter=TypeConverters.toListString)
    epochs = Param(Params._dummy(), "epochs", "passes over the data",
                   typeConverter=TypeConverters.toInt)
    batchSize = Param(Params._dummy(), "batchSize", "rows per step on each worker",
                      typeConverter=TypeConverters.toInt)
    numWorkers = Param(Params._dummy(), "numWorkers",
                       "workers (0: the context's default parallelism)",
                       typeConverter=TypeConverters.toInt)
    strategy = Param(Params._dummy(), "strategy", "'sync' (SyncSGD) or 'average' "
                     "(ParameterAveraging)", typeConverter=TypeConverters.toString)
    averagingFrequency = Param(Params._dummy(), "averagingFrequency",
                               "local steps between averages (strategy 'average')",
                               typeConverter=TypeConverters.toInt)
    verbose = Param(Params._dummy(), "verbose", "0 silent, 1 progress, 2 a line per round",
                    typeConverter=TypeConverters.toInt)

    @keyword_only
    def __init__(self, *, model=None, modelConfig=None, featuresCol="features",
                 labelCol="label", predictionCol="prediction",
                 rawPredictionCol="rawPrediction", loss="cross_entropy", optimizer="adam",
                 optimizerConfig="{}", learningRate=1e-3, metrics=None, epochs=10,
                 batchSize=32, numWorkers=0, strategy="sync", averagingFrequency=8,
                 inputShape=None, predictionKind=None, seed=0, verbose=0):
        super().__init__()
        self._setDefault(loss="cross_entropy", optimizer="adam", optimizerConfig="{}",
                         learningRate=1e-3, metrics=[], epochs=10, batchSize=32, numWorkers=0,
                         strategy="sync", averagingFrequency=8, verbose=0, seed=0)
        kwargs = dict(self._input_kwargs)
        net = kwargs.pop("model", None)
        if net is not None:
            config = net.get_config()
            if config is None:
                raise errors.PyfrontError(
                    "PyfrontEstimator keeps the network as its config, but %s has none (a "
                    "layer class is not registered with @pyfront.nn.register_layer)"
                    % net.name)
            kwargs["modelConfig"] = json.dumps({"class": type(net).__name__,
                                                "config": config}, sort_keys=True)
        if kwargs.get("predictionKind") is None:
            kwargs["predictionKind"] = "class" if kwargs.get("loss", "cross_entropy") in \
                _CLASS_LOSSES else "value"
        kwargs = {k: v for k, v in kwargs.items() if v is not None}
        self._set(**kwargs)

    def _network(self):
        from ...nn.module import layer_class

        if not self.isDefined(self.modelConfig):
            raise errors.PyfrontError("PyfrontEstimator needs a network: pass model= (or "
                                      "modelConfig=)")
        spec = json.loads(self.getOrDefault(self.modelConfig))
        return layer_class(spec["class"]).from_config(spec["config"])

    def _optimizer(self):
        from ... import optim

        name = self.getOrDefault(self.optimizer)
        match = [n for n in _OPTIMIZERS if n.lower() == name.lower()]
        if not match:
            raise ValueError("optimizer %r is not one of %s" % (name, ", ".join(_OPTIMIZERS)))
        extra = json.loads(self.getOrDefault(self.optimizerConfig) or "{}")
        if "betas" in extra:
            extra["betas"] = tuple(extra["betas"])
        return getattr(optim, match[0])(lr=self.getOrDefault(self.learningRate), **extra)

    def _fit(self, dataset):
        import pyfront as pf

        from ..strategies import ParameterAveraging, SyncSGD
        from ..trainer import SparkTrainer

        pf.random.seed(self.getOrDefault(self.seed))
        net = self._network()
        net.compile(optimizer=self._optimizer(), loss=self.getOrDefault(self.loss),
                    metrics=self.getOrDefault(self.metrics))
        kind = self.getOrDefault(self.strategy)
        if kind not in ("sync", "average"):
            raise ValueError("strategy is 'sync' or 'average', got %r" % (kind,))
        strategy = SyncSGD() if kind == "sync" else \
            ParameterAveraging(self.getOrDefault(self.averagingFrequency))
        shape = self.getInputShape() or None
        trainer = SparkTrainer(net, strategy, num_workers=self.getOrDefault(self.numWorkers)
                               or None, batch_size_per_worker=self.getOrDefault(self.batchSize),
                               input_shape=shape, seed=self.getOrDefault(self.seed),
                               verbose=self.getOrDefault(self.verbose))
        history = trainer.fit(dataset, epochs=self.getOrDefault(self.epochs),
                              features_col=self.getFeaturesCol(),
                              label_col=self.getOrDefault(self.labelCol))
        model = PyfrontModel(network=net, featuresCol=self.getFeaturesCol(),
                             predictionCol=self.getPredictionCol(),
                             rawPredictionCol=self.getOrDefault(self.rawPredictionCol),
                             inputShape=self.getInputShape(),
                             predictionKind=self.getPredictionKind())
        model.history = history.history
        return model


class PyfrontModel(Model, _PyfrontParams, MLReadable, MLWritable):
    """A trained pyfront network as a Spark ML Model: transform() adds predictionCol (double)
    and, unless rawPredictionCol is "", the raw outputs as an ML Vector."""

    @keyword_only
    def __init__(self, *, network=None, featuresCol="features", predictionCol="prediction",
                 rawPredictionCol="rawPrediction", inputShape=None, predictionKind="class"):
        super().__init__()
        kwargs = dict(self._input_kwargs)
        self.network = kwargs.pop("network", None)
        self.history = None
        self._set(**{k: v for k, v in kwargs.items() if v is not None})

    def _transform(self, dataset):
        import pyspark.sql.functions as F
        from pyspark.ml.functions import array_to_vector

        from ..scoring import predict

        if self.network is None:
            raise errors.PyfrontError("PyfrontModel has no network")
        raw = "__pyfront_raw"
        out = predict(self.network, dataset, input_col=self.getFeaturesCol(), output_col=raw,
                      input_shape=self.getInputShape() or None)
        col = F.col(raw)
        if self.getPredictionKind() == "class":
            prediction = (F.array_position(col, F.array_max(col)) - 1).cast("double")
        else:
            prediction = F.element_at(col, 1).cast("double")
        out = out.withColumn(self.getPredictionCol(), prediction)
        raw_name = self.getOrDefault(self.rawPredictionCol)
        if raw_name:
            out = out.withColumn(raw_name, array_to_vector(col))
        return out.drop(raw)

    def copy(self, extra=None):
        that = super().copy(extra)
        that.network = self.network
        that.history = self.history
        return that

    def write(self):
        return _ModelWriter(self)

    @classmethod
    def read(cls):
        return _ModelReader(cls)


class _ModelWriter(MLWriter):
    """Spark ML's metadata (the params) plus the network in pyfront's safe format, stored as
    one binary cell of a Parquet file under path/data (any Hadoop-compatible path)."""

    def __init__(self, instance):
        super().__init__()
        self.instance = instance

    def saveImpl(self, path):
        from ..common import model_to_bytes

        DefaultParamsWriter.saveMetadata(self.instance, path, self.sparkSession)
        blob = model_to_bytes(self.instance.network)
        self.sparkSession.createDataFrame([(bytearray(blob), "pyfront.model")],
                                          "model binary, format string") \
            .coalesce(1).write.parquet(path.rstrip("/") + "/data")


class _ModelReader(MLReader):
    def __init__(self, cls):
        super().__init__()
        self.cls = cls

    def load(self, path):
        from ..common import model_from_bytes

        metadata = DefaultParamsReader.loadMetadata(path, self.sparkSession)
        rows = self.sparkSession.read.parquet(path.rstrip("/") + "/data").collect()
        if len(rows) != 1 or rows[0]["format"] != "pyfront.model":
            raise errors.ModelFormatError("%s/data does not hold one pyfront model" % path)
        instance = self.cls(network=model_from_bytes(bytes(rows[0]["model"])))
        DefaultParamsReader.getAndSetParams(instance, metadata)
        instance._resetUid(metadata["uid"])
        return instance
