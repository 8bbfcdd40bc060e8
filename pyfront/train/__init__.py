"""Training: compile/fit/evaluate/predict (on model classes), the step seam, callbacks,
metrics, progress output, TensorBoard event files and history plots."""
from . import api, metrics  # noqa: F401  (api installs the fit loop into nn's models)
from .callbacks import (Callback, CallbackList, CSVLogger, EarlyStopping, History,  # noqa: F401
                        LambdaCallback, LearningRateScheduler, ModelCheckpoint,
                        ReduceLROnPlateau, TerminateOnNaN)
from .plots import plot_history  # noqa: F401
from .step import (CompiledGradientStep, CompiledTrainStep, EagerGradientStep,  # noqa: F401
                   EagerTrainStep, make_gradient_step, make_predict_step, make_train_step)
from .tensorboard import TensorBoard, read_events  # noqa: F401
