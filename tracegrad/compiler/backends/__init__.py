"""Backends: lowering tables from the optimized graph to something that runs (base.py says
what a backend is). Each registers itself by name here; ``tg.compile(backend=...)`` looks it
up, and ``"auto"`` takes the first available one in order of preference."""

from .base import PREFERENCE, Backend, backend_names, get_backend, register_backend


def _numpy() -> Backend:
    from .numpy import NUMPY
    return NUMPY


def _c() -> Backend:
    from .c import C_BACKEND
    return C_BACKEND


register_backend("numpy", _numpy)
register_backend("c", _c, prefer=0)  # "auto": C where a compiler works, else NumPy

__all__ = ["PREFERENCE", "Backend", "backend_names", "get_backend", "register_backend"]
