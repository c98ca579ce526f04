"""Benchmarks: tracegrad against the peers that are installed, side by side in one run.

``python -m bench`` (or ``make bench``, which pins BLAS to one thread) runs every module listed
in ``bench/__main__.py`` and prints one table per module; ``--only scalar`` runs one module and
``--quick`` runs a few steps only (what the smoke test uses). Results also go to
``bench/results/latest.json``.

Each module has ``run(quick: bool = False) -> dict`` and uses the helpers in ``bench.common``:
peers are timed interleaved (tracegrad, peer, tracegrad, peer, ...) and medians are reported;
a peer that is not installed is listed as such and skipped. Timing never goes into a test.
"""
