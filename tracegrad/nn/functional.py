"""``tg.nn.functional`` (usually imported as F): the functional ops and losses."""

from ..functional import *  # noqa: F401,F403
from ..functional import __all__  # noqa: F401
from .spatial import *  # noqa: F401,F403
from .spatial import __all__ as _spatial

__all__ = [*__all__, *_spatial]
