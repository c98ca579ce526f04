"""``tg.nn.functional`` (usually imported as F): the functional ops and losses."""

from ..functional import *  # noqa: F401,F403
from ..functional import __all__  # noqa: F401
from .activation import *  # noqa: F401,F403
from .activation import __all__ as _activation
from .normalization import *  # noqa: F401,F403
from .normalization import __all__ as _normalization

__all__ = [*__all__, *_normalization]
__all__ = [*__all__, *_activation]
