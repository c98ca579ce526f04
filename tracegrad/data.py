"""``tracegrad.data``: the older name of ``tracegrad.utils.data`` (the same objects).

>>> from tracegrad.data import DataLoader, TensorDataset   # or tracegrad.utils.data
"""

from .utils.data import *  # noqa: F401,F403
from .utils.data import __all__  # noqa: F401
from .utils.data import default_collate as _collate  # noqa: F401  (the old private name)
