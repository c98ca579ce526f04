"""The optimization pipeline: small passes, each ``(Graph, Backend) -> (new Graph, what it
did)``; a pass never changes the graph it is given. `plan_memory` runs after them: it is an
analysis that returns a `MemoryPlan` for the backend, not a new graph."""

from .cse import cse
from .dce import dce
from .fold_constants import fold_constants
from .fuse import fuse
from .plan_memory import MemoryPlan, plan_memory
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
]

__all__ = ["PIPELINE", "MemoryPlan", "cse", "dce", "fold_constants", "fuse", "plan_memory",
           "simplify"]
