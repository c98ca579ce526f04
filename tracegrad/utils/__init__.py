"""``tracegrad.utils``: ``data`` (datasets, samplers, DataLoader), as ``torch.utils``."""

from . import data
from .generator import Generator

__all__ = ["data", "Generator"]
