"""``tracegrad demo``: a guided tour, one section per part of the library.

Each section is a module of this package (`scalar`, `moons`, `digits`, `compiler`), with the
training it shows; `tour` holds what they share. `SECTIONS` lists them in order: adding a tour
of a new feature means one module and one `Section` here. The command line (`tracegrad.cli`)
only parses arguments and calls `run`. ``import tracegrad`` never imports this package, and
the scripts in ``examples/`` do not use it: each of them holds its own training loop.

>>> from tracegrad.demo import run
>>> run(out="tracegrad-demo", sections=["scalar"])  # doctest: +SKIP
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Sequence, TextIO

from . import compiler, digits, moons, scalar
from .compiler import digits_step
from .digits import DIGITS_SIZES, accuracy, digits_mlp, digits_split, train_digits_mlp
from .moons import train_moons
from .scalar import reference_example
from .tour import DEFAULT_OUT, Demo, MissingExtraError, Section, _need

__all__ = [
    "DEFAULT_OUT", "DIGITS_SIZES", "Demo", "MissingExtraError", "SECTIONS", "Section",
    "accuracy", "digits_mlp", "digits_split", "digits_step", "reference_example", "run",
    "train_digits_mlp", "train_moons",
]

SECTIONS: list[Section] = [
    Section("scalar", "micrograd's reference example, and its graph", scalar.section),
    Section(
        "moons",
        "Training a tiny neural net: micrograd's moons demo",
        moons.section,
        needs=("sklearn", "matplotlib", "tqdm"),
    ),
    Section(
        "tensor",
        "Training a real model on tensors: an MLP on sklearn's digits",
        digits.section,
        needs=("sklearn", "matplotlib", "tqdm", "safetensors"),
    ),
    Section(
        "compiler",
        "The compiler: a training step traced, optimized and fused",
        compiler.section,
        needs=("sklearn",),
    ),
]


def run(
    out: str | Path = DEFAULT_OUT,
    sections: Sequence[str] | None = None,
    *,
    quick: bool = False,
    stream: TextIO | None = None,
) -> list[Path]:
    """Run the demo's sections (all, or those named) and return the files written.

    ``quick`` trains for fewer steps and draws coarser plots, for tests; every section
    still runs all of its parts.
    """
    chosen = _choose(sections)
    for section in chosen:  # fail before the first section, not halfway through
        for module in section.needs:
            _need(module)
    demo = Demo(out=Path(out), quick=quick, stream=stream or sys.stdout)
    demo.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    title = "tracegrad demo" + (" (quick)" if quick else "")
    demo.say(title)
    demo.say("=" * len(title))
    for number, section in enumerate(chosen, 1):
        demo.header(f"{number}/{len(chosen)}  {section.title}")
        section.run(demo)

    demo.header("Files")
    for path in demo.written:
        demo.say(f"  {path}")
    demo.say()
    demo.say(
        f"Done in {time.perf_counter() - start:.1f} s. "
        f"Read how it works: docs/scalar.md, docs/tensors.md, docs/nn.md, docs/compiler.md."
    )
    return demo.written


def _choose(names: Sequence[str] | None) -> list[Section]:
    if not names:
        return list(SECTIONS)
    by_name = {s.name: s for s in SECTIONS}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(
            f"unknown demo section {', '.join(map(repr, unknown))}; "
            f"the sections are {', '.join(by_name)}"
        )
    # The tour's order, whatever order they were asked for in.
    return [s for s in SECTIONS if s.name in names]
