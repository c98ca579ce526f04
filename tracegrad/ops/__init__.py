"""The primitive table: every op tracegrad can run, differentiate, trace and compile.

``PRIMITIVES[name]`` is a `Primitive` (forward, shape/dtype rule, VJP). One file per family.
"""

from . import elementwise, linalg, movement, reduce, validation  # noqa: F401  (they fill the table)
from .base import PRIMITIVES, Primitive, sum_to_shape

__all__ = ["PRIMITIVES", "Primitive", "sum_to_shape"]
