"""``torch.backends.cudnn``'s flags, kept (``cudnn.benchmark = True`` runs unchanged); there
is no cuDNN, and tracegrad's results do not depend on them (they are always deterministic)."""

enabled = True
benchmark = False
deterministic = False
allow_tf32 = True


def is_available() -> bool:
    return False


def version() -> None:
    return None
