"""tracegrad.memory: on glibc, freed array memory stays in the process for the next op."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Three arrays of 3 MiB made and freed, 20 times, after a warm-up: the page faults counted.
PROGRAM = textwrap.dedent("""
    import resource, numpy as np, tracegrad
    def work():
        a = np.ones((3 << 20) // 4, np.float32); b = a * 2; c = b + a; del a, b, c
    for _ in range(3): work()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20): work()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before,
          tracegrad.memory.keep_freed_memory())
""")


def _faults(malloc: str | None) -> tuple[int, bool]:
    env = {k: v for k, v in os.environ.items() if k != "TRACEGRAD_MALLOC"}
    env["PYTHONPATH"] = str(ROOT)
    if malloc is not None:
        env["TRACEGRAD_MALLOC"] = malloc
    out = subprocess.run([sys.executable, "-c", PROGRAM], env=env, capture_output=True,
                         text=True, timeout=120, check=True).stdout.split()
    return int(out[0]), out[1] == "True"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_arrays_are_reused_without_page_faults():
    faults, tuned = _faults(None)
    if not tuned:
        pytest.skip("not glibc")
    assert faults < 200  # each 3 MiB array would fault ~770 pages if it came from the OS
    default_faults, tuned = _faults("default")
    assert not tuned
    assert default_faults > 10 * max(faults, 100)
