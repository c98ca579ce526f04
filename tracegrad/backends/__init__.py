"""``tg.backends``: the switches ported scripts set on PyTorch's accelerator backends
(``torch.backends.cudnn.deterministic = True``, ``torch.backends.mps.is_available()``).
tracegrad runs on NumPy: there is no cuDNN or MPS, so the flags are kept and change nothing,
and ``is_available()`` is False."""

from . import cudnn, mps

__all__ = ["cudnn", "mps"]
