"""``tg.nn.utils.stateless.functional_call``: `tracegrad.func.functional_call` under
``torch.nn.utils.stateless``'s name (PyTorch deprecates this one for ``torch.func``'s)."""

from ...func import functional_call

__all__ = ["functional_call"]
