"""Optimizers and learning-rate schedules with PyTorch's interface."""

from . import lr_scheduler
from .adaptive import Adadelta, Adagrad, Adamax, NAdam, RAdam, RMSprop, Rprop
from .asgd import ASGD
from .lbfgs import LBFGS
from .optimizer import SGD, Adam, AdamW, Optimizer

__all__ = ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adamax", "NAdam", "RAdam",
           "Adadelta", "Rprop", "ASGD", "LBFGS", "Optimizer", "lr_scheduler",
           "swa_utils"]


def __getattr__(name: str):
    # swa_utils builds on tg.nn (AveragedModel is a Module), which `import tracegrad` leaves
    # for first use: so is swa_utils.
    if name == "swa_utils":
        import importlib

        value = importlib.import_module(f".{name}", __name__)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'tracegrad.optim' has no attribute {name!r}")
