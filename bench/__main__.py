"""``python -m bench [--only NAME ...] [--quick]``: run the benchmark modules, print, save JSON.

Every module in `MODULES` has ``run(quick: bool) -> dict``; its result is printed with
`bench.common.render` and all results go to ``bench/results/latest.json``.
"""

from __future__ import annotations

import os

# One BLAS thread unless the caller chose otherwise (``make bench`` sets these too). This
# must happen before NumPy is imported, so it comes before every other import of ours.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import importlib  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from bench import common  # noqa: E402

# The benchmark modules, in the order they run (bench/<name>.py). Add new ones here.
MODULES = ["scalar", "tensor", "train", "compile", "cbackend", "imports", "models", "onnx",
           "transforms"]

RESULTS = Path(__file__).parent / "results" / "latest.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--only", action="append", choices=MODULES, metavar="NAME",
                        help=f"run only this module (repeatable); one of {', '.join(MODULES)}")
    parser.add_argument("--quick", action="store_true",
                        help="a few steps and small sizes: checks that it runs, not timings")
    parser.add_argument("--json", type=Path, default=RESULTS,
                        help=f"where to write the results (default {RESULTS})")
    args = parser.parse_args(argv)

    results = []
    for name in args.only or MODULES:
        print(f"running bench.{name}{' (quick)' if args.quick else ''} ...", file=sys.stderr,
              flush=True)
        start = time.perf_counter()
        result = importlib.import_module(f"bench.{name}").run(quick=args.quick)
        result["wall_seconds"] = time.perf_counter() - start
        results.append(result)
        print(common.render(result), end="\n\n", flush=True)

    # After the runs, so that every BLAS library the modules loaded is listed.
    env = common.environment()
    print(common.render_environment(env))
    pools = env["blas"]["pools"]
    if isinstance(pools, list) and any(p["threads"] != 1 for p in pools):
        print("warning: a BLAS/OpenMP pool runs more than one thread; "
              "set OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1")
    common.write_json(args.json, {"quick": args.quick, "environment": env, "results": results})
    print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
