"""``tracegrad.utils``: ``data`` (datasets, samplers, DataLoader) and ``checkpoint``, as
``torch.utils``."""

from ..rng import Generator  # (also tg.Generator)
from . import checkpoint, data

__all__ = ["checkpoint", "data", "Generator"]
