"""Test-wide settings.

Hypothesis explores new random examples on every local run. In CI (CI=true) it replays a
fixed sequence instead, so a red CI run always points at a reproducible failure rather than
a rare draw; `HYPOTHESIS_PROFILE=explore` turns exploration back on anywhere. The
repository's root is importable (`bench`, `fuzz`).
"""

import os
import sys

from hypothesis import settings

# The repository's own packages beside tracegrad (bench, fuzz), however pytest is started
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else
                                     "explore"))
