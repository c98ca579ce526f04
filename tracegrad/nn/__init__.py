"""Neural-network building blocks. ``tracegrad.nn.scalar`` is micrograd's nn on `Value`."""

from . import scalar

__all__ = ["scalar"]
