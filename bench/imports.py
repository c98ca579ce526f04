"""Import time: ``import tracegrad`` against ``import numpy``, each in a fresh interpreter.

The goal (issue 13): importing tracegrad costs at most 1.5x importing NumPy, its one hard
dependency; optional dependencies (SciPy, matplotlib, PyTorch, graphviz, safetensors, tqdm)
are imported where first needed, never by ``import tracegrad``.

Each measurement is a new ``python -c "import X"`` process timed from inside (the
interpreter's own start-up is the same for both and is not counted), with bytecode caching
on, as for an installed package (the first, untimed, run of each writes the caches);
the two imports alternate, and the medians are compared.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path

from bench import common

ROOT = Path(__file__).resolve().parent.parent
OPTIONAL = ("scipy", "matplotlib", "torch", "graphviz", "safetensors", "tqdm", "onnx",
            "onnxruntime")
_PROBE = ("import time, sys; t = time.perf_counter(); import {module}; "
          "print(time.perf_counter() - t); "
          "print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))")


def _import_seconds(module: str) -> tuple[float, set[str]]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    out = subprocess.run([sys.executable, "-c", _PROBE.format(module=module)], cwd=ROOT,
                         env=env, capture_output=True, text=True, check=True).stdout.split("\n")
    return float(out[0]), set(out[1].split())


def run(quick: bool = False) -> dict:
    repeats = 3 if quick else 15
    for module in ("numpy", "tracegrad"):  # writes the bytecode caches; not timed
        _import_seconds(module)
    times: dict[str, list[float]] = {"numpy": [], "tracegrad": []}
    loaded: set[str] = set()
    for _ in range(repeats):
        for module in ("numpy", "tracegrad"):
            seconds, modules = _import_seconds(module)
            times[module].append(seconds)
            if module == "tracegrad":
                loaded = modules
    ours, numpy = statistics.median(times["tracegrad"]), statistics.median(times["numpy"])
    optional = sorted(set(OPTIONAL) & loaded)
    rows = [
        common.row("import tracegrad vs import numpy (fresh process)", "s",
                   {"tracegrad": ours, "numpy": numpy}),
        common.row("import tracegrad: multiple of import numpy", "x",
                   {"tracegrad": ours / numpy, "numpy": 1.0}, ratio=False),
    ]
    notes = [
        f"median of {repeats} fresh processes each, alternating; tracegrad "
        f"{ours * 1e3:.1f} ms [{min(times['tracegrad']) * 1e3:.1f} .. "
        f"{max(times['tracegrad']) * 1e3:.1f}], numpy {numpy * 1e3:.1f} ms "
        f"[{min(times['numpy']) * 1e3:.1f} .. {max(times['numpy']) * 1e3:.1f}]",
        "optional dependencies imported by `import tracegrad`: "
        + (", ".join(optional) if optional else "none"),
    ]
    targets = [common.target("import tracegrad / import numpy", ours / numpy, 1.5, False, "x")]
    return common.result("imports", "import time: tracegrad vs NumPy, its one hard dependency",
                         ["tracegrad", "numpy"], {}, rows, notes, targets=targets,
                         details={"seconds": times, "optional_imported": optional})
