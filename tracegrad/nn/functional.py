"""``tg.nn.functional`` (usually imported as F): the functional ops and losses."""

from ..functional import *  # noqa: F401,F403
from ..functional import __all__  # noqa: F401
from .activation import *  # noqa: F401,F403
from .activation import __all__ as _activation
from .distance import *  # noqa: F401,F403
from .distance import __all__ as _distance
from .dropout import *  # noqa: F401,F403
from .dropout import __all__ as _dropout
from .losses import FUNCTIONS as _losses
from .losses import (  # noqa: F401
    cosine_embedding_loss,
    ctc_loss,
    gaussian_nll_loss,
    hinge_embedding_loss,
    margin_ranking_loss,
    multi_margin_loss,
    multilabel_margin_loss,
    multilabel_soft_margin_loss,
    poisson_nll_loss,
    soft_margin_loss,
    triplet_margin_loss,
    triplet_margin_with_distance_loss,
)
from .normalization import *  # noqa: F401,F403
from .normalization import __all__ as _normalization
from .sparse import embedding_bag  # noqa: F401
from .spatial import *  # noqa: F401,F403
from .spatial import __all__ as _spatial

# (a new list: tracegrad.functional.__all__ stays that module's own)
__all__ = [*__all__, *_losses, "embedding_bag", *_normalization, *_activation, *_distance,
           *_dropout, *_spatial]
from .sampling import *  # noqa: E402,F401,F403
from .sampling import __all__ as _sampling  # noqa: E402

__all__ += _sampling
