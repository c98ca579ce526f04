"""The optimization pipeline: small passes, each ``Graph -> (Graph, what it did)``."""

from .cse import cse
from .dce import dce
from .fold_constants import fold_constants
from .fuse import fuse
from .plan_memory import plan_memory
from .simplify import simplify

# In order. dce runs again after simplify and fuse, whose rewrites leave nodes unused.
PIPELINE = [
    ("dce", dce),
    ("cse", cse),
    ("fold_constants", fold_constants),
    ("simplify", simplify),
    ("dce", dce),
    ("fuse", fuse),
    ("dce", dce),  # constants folded into kernels are left unused
    ("plan_memory", plan_memory),
]

__all__ = ["PIPELINE", "cse", "dce", "fold_constants", "fuse", "plan_memory", "simplify"]
