"""``tg.nn.functional`` (usually imported as F): the functional ops and losses."""

from ..functional import *  # noqa: F401,F403
from ..functional import __all__  # noqa: F401
from .activation import *  # noqa: F401,F403
from .activation import __all__ as _activation
from .distance import *  # noqa: F401,F403
from .distance import __all__ as _distance
from .dropout import *  # noqa: F401,F403
from .dropout import __all__ as _dropout
from .normalization import *  # noqa: F401,F403
from .normalization import __all__ as _normalization

__all__ = [*__all__, *_normalization]
__all__ = [*__all__, *_activation]
__all__ = [*__all__, *_distance, *_dropout]
