"""The demo's harness: the context a section gets (`Demo`), a `Section`, and the helpers they share.

A section is a function that takes the `Demo` context, prints what it shows under its own
header and records the files it writes (``tracegrad/demo/__init__.py`` lists them in order).
Optional packages (scikit-learn, matplotlib, tqdm) are imported by `_need`, which says in one
line how to install them.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, TextIO

from .. import viz

DEFAULT_OUT = Path("tracegrad-demo")

_INSTALL_HINT = 'pip install "tracegrad[demo]"'
# Import name -> the name pip knows it by, for the message when it is missing.
_PIP_NAMES = {"sklearn": "scikit-learn", "matplotlib": "matplotlib", "tqdm": "tqdm"}


class MissingExtraError(ImportError):
    """An optional package the demo (or an example) needs is not installed."""


def _need(module: str) -> ModuleType:
    """Import an optional dependency, or say in one line how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        top = module.partition(".")[0]
        raise MissingExtraError(
            f"this needs {_PIP_NAMES.get(top, top)}, which is not installed; "
            f"install the demo extras with: {_INSTALL_HINT}"
        ) from e


@dataclass
class Demo:
    """What every section gets: where to write, how thorough to be, where to print."""

    out: Path
    quick: bool = False
    stream: TextIO = field(default_factory=lambda: sys.stdout)
    written: list[Path] = field(default_factory=list)

    def say(self, text: str = "") -> None:
        print(text, file=self.stream, flush=True)

    def header(self, text: str) -> None:
        self.say()
        self.say(text)
        self.say("-" * len(text))

    def wrote(self, path: Path, what: str) -> None:
        self.written.append(path)
        self.say(f"  wrote {path.name}: {what}")


@dataclass(frozen=True)
class Section:
    name: str  # what --section takes
    title: str  # the header printed above it
    run: Callable[[Demo], None]
    needs: tuple[str, ...] = ()  # optional modules, checked before any section starts


def _one_blas_thread() -> Any:
    # Small matmuls on a multithreaded BLAS time mostly the threads' handshakes (on a busy
    # machine 50x slower than one thread), which would drown what the compiler changes.
    # threadpoolctl comes with scikit-learn; without it, time as things are.
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _draw_svg_or_dot(demo: Demo, root: Any, stem: str, what: str, **options: Any) -> Path:
    """Draw ``root`` to ``stem.svg``; without Graphviz write ``stem.dot`` and say why."""
    svg = demo.out / f"{stem}.svg"
    try:
        path = viz.draw(root, svg, **options)
    except (ImportError, RuntimeError) as e:  # the graphviz package, or its `dot` program
        path = viz.draw(root, demo.out / f"{stem}.dot", **options)
        demo.wrote(path, f"{what}, as Graphviz source")
        fix = (
            'pip install "tracegrad[viz]"'
            if isinstance(e, ImportError)
            else "install Graphviz (https://graphviz.org/download/)"
        )
        demo.say(f"  note: no {svg.name} without Graphviz; {fix}, then run again for the SVG")
    else:
        demo.wrote(path, what)
    return path
