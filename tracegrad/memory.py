"""Keep freed array memory in the process (glibc's malloc), so eager ops do not page-fault.

Eager execution allocates a new array for every op's result and frees it soon after. For
arrays of a few MiB, glibc's malloc maps fresh pages from the OS (``mmap``) or gives the top
of its heap back (``trim``) as soon as they are freed, so the next op's result page-faults
on every 4 KiB page: in the digits CNN's training step that was 4,000 faults and half of the
step's time. Raising the two thresholds keeps that memory in the process for reuse, as
PyTorch users get from jemalloc or tcmalloc. Nothing changes on other C libraries; setting
``TRACEGRAD_MALLOC=default`` in the environment leaves malloc as it was.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
MMAP_THRESHOLD = 32 << 20  # arrays below 32 MiB come from the heap (glibc's own maximum)
TRIM_THRESHOLD = 256 << 20  # the heap keeps up to 256 MiB of freed memory at its top


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds; True if they were set."""
    if os.environ.get("TRACEGRAD_MALLOC", "") == "default" or not sys.platform.startswith(
            "linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter runs on
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
