"""Test-wide settings.

Hypothesis explores new random examples on every local run. In CI (CI=true) it replays a
fixed sequence instead, so a red CI run always points at a reproducible failure rather than
a rare draw; `HYPOTHESIS_PROFILE=explore` turns exploration back on anywhere.
"""

import os

from hypothesis import settings

settings.register_profile("ci", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else
                                     "explore"))
