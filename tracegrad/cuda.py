"""``tg.cuda``: there is no GPU support (tracegrad runs on the CPU), so ported code that asks
``torch.cuda.is_available()`` takes its CPU branch."""

from __future__ import annotations


def is_available() -> bool:
    return False


def device_count() -> int:
    return 0


def manual_seed(seed: int) -> None:
    """Nothing to seed (no GPU); as PyTorch's on a machine without one, accepted silently, so
    seeding helpers run unchanged. ``tg.manual_seed`` seeds tracegrad's generator."""


def manual_seed_all(seed: int) -> None:
    """Nothing to seed (no GPU); see `manual_seed`."""


def empty_cache() -> None:
    """Nothing to free (no GPU memory), as PyTorch's without a GPU."""
