"""The ``tracegrad`` command line.

Each subcommand is a pair: a function that adds its parser to the subcommand table and
sets ``run``, and the ``run`` function, which calls into the library and returns the exit
status. A new subcommand (``viz``, ``bench``) is one more pair and one more entry in
`_COMMANDS`; `main` does not change.

    $ tracegrad demo --out ./tracegrad-demo
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, Sequence

from . import __version__, demo


def _add_demo(commands: Any) -> None:
    parser = commands.add_parser(
        "demo",
        help="a tour: scalars, tensors, training, saving, the compiler; drawings and plots",
        description=(
            "Run micrograd's reference example and its moons demo on tracegrad, train a "
            "digits classifier on tensors (and save and reload it), then compile its training "
            "step and show what each compiler pass did. Drawings and plots go into --out."
        ),
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        default=str(demo.DEFAULT_OUT),
        help="where to write the files (default: ./%(default)s)",
    )
    parser.add_argument(
        "--section",
        action="append",
        choices=[s.name for s in demo.SECTIONS],
        help="run only this section (may be repeated; default: all, in order)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="fewer training steps and coarser plots (for tests); every section still runs",
    )
    parser.set_defaults(run=_run_demo)


def _run_demo(args: argparse.Namespace) -> int:
    demo.run(args.out, args.section, quick=args.quick)
    return 0


_COMMANDS: tuple[Callable[[Any], None], ...] = (_add_demo,)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tracegrad",
        description="tracegrad: automatic differentiation you can read, with a compiler.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    for add in _COMMANDS:
        add(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tracegrad ARGS``; return the exit status (``tracegrad`` alone prints help).

    >>> main(["demo", "--section", "scalar", "--out", "/tmp/tg"])  # doctest: +SKIP
    0
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.run(args)
    except demo.MissingExtraError as e:
        print(f"tracegrad {args.command}: {e}", file=sys.stderr)
        return 1
