"""``tracegrad.utils``: ``data`` (datasets, samplers, DataLoader), as ``torch.utils``."""

from ..rng import Generator  # (also tg.Generator)
from . import data

__all__ = ["data", "Generator"]
