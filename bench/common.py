"""What every benchmark module shares: peers, interleaved timing, tables, the environment.

A benchmark module's ``run()`` returns a plain dict (a *result*) that `render` prints and that
``python -m bench`` writes to JSON::

    {"name": "scalar", "title": "...", "engines": ["tracegrad", "micrograd"],
     "missing": {"torch": "not installed (pip install torch)"},
     "rows": [row(...), ...], "targets": [target(...), ...], "notes": ["..."], "details": {...}}

A row's ``ratio`` is ``peer / tracegrad`` for every peer that was measured, so for seconds and
bytes a ratio above 1 means tracegrad is that many times better.
"""

from __future__ import annotations

import gc
import importlib
import json
import math
import os
import platform
import statistics
import sys
import textwrap
import threading
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterable

OURS = "tracegrad"

# Peers: import name -> what to pip install. A missing peer is listed, never a crash.
PIP_NAMES = {
    "micrograd": "micrograd==0.1.0",
    "torch": "torch",
    "jax": "jax",
    "tinygrad": "tinygrad",
}

BLAS_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


# --------------------------------------------------------------------------------------
# Peers


def import_peer(module: str) -> ModuleType | None:
    """The peer's module, or None when it (or one of its own imports) is not installed."""
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


def missing_note(name: str) -> str:
    return f"not installed (pip install {PIP_NAMES.get(name, name)})"


def failure(error: Exception, verdict: str = "failed") -> str:
    """Why a peer is missing from the table when it raised: ``failed: ValueError: ...``."""
    return f"{verdict}: {type(error).__name__}: {str(error)[:200]}"


def guarded(name: str, step: Callable[[int], Any], failed: dict[str, str],
            verdict: str = "failed") -> Callable[[int], Any]:
    """A peer's step that records its first exception in ``failed[name]`` instead of raising
    (an untested peer version is reported, not a crash), and returns None from then on."""

    def run(k: int) -> Any:
        if name in failed:
            return None
        try:
            return step(k)
        except Exception as error:
            failed[name] = failure(error, verdict)
            return None

    return run


# --------------------------------------------------------------------------------------
# Timing


class GcClock:
    """Seconds CPython's cyclic garbage collector ran while this is active (gc.callbacks)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start = 0.0

    def _callback(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.seconds += time.perf_counter() - self._start

    def __enter__(self) -> "GcClock":
        self.seconds = 0.0
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: Any) -> None:
        gc.callbacks.remove(self._callback)


def interleaved(
    steps: dict[str, Callable[[int], Any]],
    warmup: int,
    repeats: int,
    cleanup: Callable[[], None] = gc.collect,
    block: int = 1,
) -> dict[str, dict[str, list]]:
    """Time ``steps[name](k)`` for k = 0, 1, ..., round-robin: A(0), B(0), A(1), B(1), ...

    Running the engines side by side in one process, alternating, means a slow phase of the
    machine (another process, a frequency change) hits all of them alike. After every call,
    ``cleanup()`` (by default a full garbage collection) runs and is timed separately: each
    call then starts from the same heap, instead of paying for the cyclic garbage the previous
    engine left behind, and what an engine leaves for the collector is still measured. The
    first ``warmup`` rounds are run but not timed.

    ``block > 1`` takes turns by blocks instead: A(0..block-1), B(0..block-1), A(block..),
    ..., with ``cleanup()`` after each block only. Inside a block an engine runs call after
    call, as in a training loop: a full collection walks every object of the process (with
    PyTorch imported, a few hundred thousand) and leaves the caches cold, so a call right
    after one measures how fast an engine recovers from that, not what it costs in a loop.

    Returns, per engine, lists over the timed calls: ``seconds`` (the call, wall clock),
    ``cpu_seconds`` (the CPU time this process spent in it: on a shared machine a call that
    the scheduler preempts is slow on the wall clock but not in CPU time), ``gc_seconds``
    (the part of it the garbage collector ran), ``cleanup_seconds`` (0 for a call that is not
    the last of its block); and ``outputs``, what every call returned (warm-up included).
    """
    keys = ("seconds", "cpu_seconds", "gc_seconds", "cleanup_seconds", "outputs")
    out: dict[str, dict[str, list]] = {name: {key: [] for key in keys} for name in steps}
    total = warmup + repeats
    cleanup()
    for first in range(0, total, block):
        for name, step in steps.items():
            last = min(first + block, total) - 1
            for k in range(first, last + 1):
                with GcClock() as gc_clock:
                    cpu_start = time.process_time()
                    start = time.perf_counter()
                    result = step(k)
                    middle = time.perf_counter()
                    cpu_end = time.process_time()
                if k == last:
                    cleanup()
                end = time.perf_counter()
                out[name]["outputs"].append(result)
                if k >= warmup:
                    out[name]["seconds"].append(middle - start)
                    out[name]["cpu_seconds"].append(cpu_end - cpu_start)
                    out[name]["gc_seconds"].append(gc_clock.seconds)
                    out[name]["cleanup_seconds"].append(end - middle)
    return out


def median(xs: list[float]) -> float:
    return statistics.median(xs)


def spread(xs: list[float], scale: float = 1.0, unit: str = "") -> str:
    """``median [min .. max]`` of timings, for the notes: the machine may be busy."""
    s = sorted(x * scale for x in xs)
    return f"{statistics.median(s):,.4g} [{s[0]:,.4g} .. {s[-1]:,.4g}]{unit}"


def run_deep(fn: Callable[[], Any], depth: int) -> Any:
    """Call ``fn()`` in a thread with a large stack and a recursion limit above ``depth``.

    For peers whose backward recurses once per graph level (micrograd's ``build_topo``).
    """
    result: dict[str, Any] = {}

    def target() -> None:
        try:
            result["value"] = fn()
        except BaseException as error:  # handed back to the caller's thread
            result["error"] = error

    old_limit = sys.getrecursionlimit()
    old_stack = threading.stack_size()
    sys.setrecursionlimit(max(old_limit, depth + 10_000))
    try:
        threading.stack_size(512 * 1024 * 1024)
        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
    finally:
        threading.stack_size(old_stack)
        sys.setrecursionlimit(old_limit)
    if "error" in result:
        raise result["error"]
    return result.get("value")


# --------------------------------------------------------------------------------------
# Results


def row(
    benchmark: str,
    unit: str,
    values: dict[str, float | None],
    ratio: bool = True,
    note: str = "",
) -> dict:
    """One table row. ``values[engine]`` is None for an engine that was not measured."""
    ours = values.get(OURS)
    ratios: dict[str, float] = {}
    if ratio and ours:
        for name, value in values.items():
            if name != OURS and value is not None:
                ratios[name] = value / ours
    return {"benchmark": benchmark, "unit": unit, "values": values, "ratio": ratios,
            "note": note}


def result(name: str, title: str, engines: list[str], missing: dict[str, str], rows: list,
           notes: list[str], extra: list[str] | None = None, targets: list | None = None,
           details: dict | None = None) -> dict:
    """A benchmark module's result (see the top of this module); `render` prints it.

    >>> result("demo", "a demo", ["tracegrad"], {}, [row("x", "s", {"tracegrad": 0.1})], [])["name"]
    'demo'
    """
    return {"name": name, "title": title, "engines": engines, "missing": missing,
            "rows": rows, "notes": notes, "extra": [] if extra is None else extra,
            "targets": [] if targets is None else targets,
            "details": {} if details is None else details}


def target(name: str, value: float | None, goal: float, higher_is_better: bool,
           unit: str = "") -> dict:
    """A goal from the issue tracker, e.g. speed-up >= 3 or bytes per node <= 200."""
    if value is None:
        passed = None
    else:
        passed = value >= goal if higher_is_better else value <= goal
    return {"name": name, "value": value, "goal": goal, "unit": unit,
            "op": ">=" if higher_is_better else "<=", "pass": passed}


def fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value * 1e3:,.1f} ms" if value < 10 else f"{value:,.2f} s"
    if unit == "B":
        return f"{value:,.0f} B"
    if unit == "count":
        return f"{value:,.0f}"
    return f"{value:,.4g} {unit}".rstrip()


def format_table(headers: list[str], lines: list[list[str]], right: set[int]) -> str:
    """Plain-text table, columns padded to their widest cell (``right``: right-aligned)."""
    widths = [max(len(line[i]) for line in [headers] + lines) for i in range(len(headers))]

    def cells(line: list[str]) -> str:
        padded = zip(line, widths, strict=True)
        return " | ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(padded)
        )

    rule = "-+-".join("-" * w for w in widths)
    return "\n".join([cells(headers), rule] + [cells(line) for line in lines])


def losses_agree(losses: dict[str, list[float]], rel_tol: float, abs_tol: float = 0.0) -> bool:
    """Every engine's losses match tracegrad's, step by step, within the tolerances."""
    ours = losses[OURS]
    return all(
        math.isclose(a, b, rel_tol=rel_tol, abs_tol=abs_tol)
        for name, theirs in losses.items() if name != OURS
        for a, b in zip(ours, theirs, strict=True)
    )


def loss_table(losses: dict[str, list[float]], warmup: int, *, step: str = "step",
               column: str = "{} loss", gap: str = "|{} - tracegrad|", decimals: int,
               shown: Iterable[int] | None = None, total: str | None = None) -> str:
    """The loss per step (the ``shown`` ones, by default all) and engine, and every peer's
    distance to tracegrad's; ``total`` labels a last row with the largest distances."""
    names = list(losses)
    peers = names[1:]
    ours = losses[OURS]
    headers = [step] + [column.format(n) for n in names] + [gap.format(p) for p in peers]
    lines = []
    for k in range(len(ours)) if shown is None else shown:
        line = [f"{k}{' (warm-up)' if k < warmup else ''}"]
        line += [f"{losses[n][k]:.{decimals}f}" for n in names]
        line += [f"{abs(losses[p][k] - ours[k]):.1e}" for p in peers]
        lines.append(line)
    if total is not None and peers:
        lines.append([total, *([""] * len(names))] + [
            f"{max(abs(a - b) for a, b in zip(losses[p], ours)):.1e}" for p in peers])
    return format_table(headers, lines, set(range(1, len(headers))))


def render(result: dict) -> str:
    """The printed form of a result: title, table, notes, targets."""
    engines = result["engines"]
    peers = [e for e in engines if e != OURS]
    headers = ["benchmark"] + engines + [f"{p} / {OURS}" for p in peers]
    lines = []
    for r in result["rows"]:
        line = [r["benchmark"]]
        line += [fmt(r["values"].get(e), r["unit"]) for e in engines]
        line += [f"{r['ratio'][p]:.2f}x" if p in r["ratio"] else "-" for p in peers]
        lines.append(line)
    out = [result["title"], "", format_table(headers, lines, set(range(1, len(headers))))]
    for name, why in result.get("missing", {}).items():
        out.append(f"  {name}: {why} - skipped")
    notes = [r["note"] for r in result["rows"] if r["note"]] + result.get("notes", [])
    if notes:
        out.append("")
        for n in notes:
            out.append(textwrap.fill(n, width=100, initial_indent="  * ",
                                     subsequent_indent="    "))
    for block in result.get("extra", []):
        out += ["", block]
    if result.get("targets"):
        out.append("")
        out.append("targets:")
        for t in result["targets"]:
            verdict = {True: "PASS", False: "MISS", None: "n/a"}[t["pass"]]
            value = "not measured" if t["value"] is None else f"{t['value']:,.2f}{t['unit']}"
            out.append(f"  {t['name']} {t['op']} {t['goal']:g}{t['unit']}: {value}  {verdict}")
    return "\n".join(out)


# --------------------------------------------------------------------------------------
# Environment


def blas_threads() -> dict[str, Any]:
    """Threads of every BLAS/OpenMP pool loaded now (threadpoolctl), and the env settings."""
    info: dict[str, Any] = {name: os.environ.get(name) for name in BLAS_ENV}
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        info["pools"] = "unknown (pip install threadpoolctl)"
        return info
    info["pools"] = [
        {"api": p["internal_api"], "threads": p["num_threads"],
         "library": os.path.basename(p["filepath"])}
        for p in threadpool_info()
    ]
    return info


def environment() -> dict[str, Any]:
    import numpy

    return {
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "gc": "enabled" if gc.isenabled() else "DISABLED",
        "blas": blas_threads(),
    }


def render_environment(env: dict[str, Any]) -> str:
    blas = env["blas"]
    if isinstance(blas["pools"], list):
        pools = ", ".join(f"{p['library']}={p['threads']}" for p in blas["pools"]) or "none"
    else:
        pools = blas["pools"]
    variables = " ".join(f"{k}={blas[k]}" for k in BLAS_ENV)
    return (
        f"environment: {env['python']}, numpy {env['numpy']}, {env['platform']}, "
        f"{env['cpus']} cpus, gc {env['gc']}\n"
        f"BLAS threads: {pools} ({variables})"
    )


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")

