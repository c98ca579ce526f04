"""Optimizers and learning-rate schedules with PyTorch's interface."""

from . import lr_scheduler
from .adaptive import Adagrad, Adamax, NAdam, RMSprop
from .lbfgs import LBFGS
from .optimizer import SGD, Adam, AdamW, Optimizer

__all__ = ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adamax", "NAdam", "LBFGS",
           "Optimizer", "lr_scheduler"]
