"""``tg.nn.functional`` (usually imported as F): the functional ops and losses."""

from ..functional import *  # noqa: F401,F403
from ..functional import __all__  # noqa: F401
