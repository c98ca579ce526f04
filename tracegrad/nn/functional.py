"""``tg.nn.functional`` (usually imported as F): the functional ops and losses."""

from ..functional import *  # noqa: F401,F403
from ..functional import __all__  # noqa: F401
from .normalization import batch_norm, instance_norm, local_response_norm, rms_norm  # noqa: F401

__all__ = [*__all__, "batch_norm", "instance_norm", "rms_norm", "local_response_norm"]
