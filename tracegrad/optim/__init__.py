"""Optimizers and learning-rate schedules with PyTorch's interface."""

from . import lr_scheduler, swa_utils
from .adaptive import Adadelta, Adagrad, Adamax, NAdam, RAdam, RMSprop, Rprop
from .asgd import ASGD
from .lbfgs import LBFGS
from .optimizer import SGD, Adam, AdamW, Optimizer

__all__ = ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adamax", "NAdam", "RAdam",
           "Adadelta", "Rprop", "ASGD", "LBFGS", "Optimizer", "lr_scheduler",
           "swa_utils"]
