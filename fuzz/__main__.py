"""``python -m fuzz [CAMPAIGN ...] [--seed S] [--count N] [--seconds T]``: run random
programs (see `fuzz`), print each disagreement with the command that reruns it."""

from __future__ import annotations

import os

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

from fuzz.campaigns import CAMPAIGNS, run  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__.splitlines()[0])
    parser.add_argument("campaigns", nargs="*", choices=[[], *CAMPAIGNS], metavar="CAMPAIGN",
                        help=f"some of {', '.join(CAMPAIGNS)} (default: all)")
    parser.add_argument("--seed", type=int, default=0, help="the first program's seed")
    parser.add_argument("--count", type=int, default=None,
                        help="programs per campaign (default: as many as --seconds allows)")
    parser.add_argument("--seconds", type=float, default=60.0,
                        help="time per campaign when --count is not given (default 60)")
    args = parser.parse_args(argv)
    failures = 0
    for name in args.campaigns or list(CAMPAIGNS):
        start, seed, ran = time.perf_counter(), args.seed, 0
        while (ran < args.count) if args.count is not None else \
                (time.perf_counter() - start < args.seconds):
            why = run(name, seed)
            if why:
                failures += 1
                print(f"FAIL {name} seed {seed}: {why}\n"
                      f"     rerun: python -m fuzz {name} --seed {seed} --count 1", flush=True)
            seed, ran = seed + 1, ran + 1
        print(f"{name}: {ran} programs (seeds {args.seed}..{seed - 1}) in "
              f"{time.perf_counter() - start:.0f} s, {failures} failing so far", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
