"""``python -m bench.versions [--base REF] [--rounds N]``: this tree against an earlier commit,
in one run.

"No speed regression" is a comparison of two versions of tracegrad on one machine at one
time. This script checks REF (default: ``HEAD~1``) out into a temporary git worktree, then
runs the same probe on both versions, alternating fresh processes round by round. Each probe
times, with one BLAS thread, tracegrad's eager MLP training step, the 1,000-op eager chain
(``x = x * c + d``, forward and backward) and the compiled MLP step (the default backend and
the NumPy backend), each interleaved with its hand-written NumPy version in the same process,
and reports tracegrad's time over NumPy's: a ratio that a busy machine slows on both sides.
Times are CPU seconds of this process (a call the scheduler preempts is not charged for
the wait), with a full garbage collection between calls (`common.interleaved`). The table
shows the median ratio per version and the goals of issue 13.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOALS = {"eager MLP step": 1.3, "1,000-op eager chain": 5.0, "compiled MLP step": 1.0,
         "compiled MLP step, numpy backend": 1.0}

# Runs in a fresh interpreter: tracegrad from the tree under test, the workloads from here.
PROBE = r"""
import json, os, sys, time
for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[name] = "1"
tree, here, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
sys.path.insert(0, tree)
import tracegrad as tg
sys.path.insert(0, here)
from bench import compile as bc, tensor as bt, workloads

from bench import common

def pair(ours, numpy, n, block=1):
    # CPU seconds (a preempted call is not charged), interleaved, garbage collected between
    # calls or blocks: median of ours / median of numpy
    t = common.interleaved({"ours": ours, "numpy": numpy}, 0, n, block=block)
    return common.median(t["ours"]["cpu_seconds"]) / common.median(t["numpy"]["cpu_seconds"])

weights = workloads.mlp_weights(bc.SIZES, seed=0)
data = workloads.batches(8, seed=0)
cycle = lambda step: (lambda k: step(k % len(data)))
numpy_step = cycle(bc.mlp_numpy(weights, data)[0])
out = {}
eager = cycle(workloads.sgd_steps(tg, weights, data, bc.LR, False)[0])
for k in range(10): eager(k); numpy_step(k)
out["eager MLP step"] = pair(eager, numpy_step, steps, 10)
compiled = cycle(workloads.sgd_steps(tg, weights, data, bc.LR, True)[0])
for k in range(10): compiled(k); numpy_step(k)
out["compiled MLP step"] = pair(compiled, numpy_step, steps, 10)
try:
    model = workloads.mlp_model(tg, weights)
    fn = tg.compile(workloads.train_step(tg, model, tg.optim.SGD(model.parameters(), lr=bc.LR)),
                    backend="numpy")
    tensors = [(tg.from_numpy(x), tg.from_numpy(y)) for x, y in data]
    on_numpy = lambda k: fn(*tensors[k % len(data)]).item()
    for k in range(10): on_numpy(k); numpy_step(k)
    out["compiled MLP step, numpy backend"] = pair(on_numpy, numpy_step, steps, 10)
except (TypeError, ValueError) as e:  # a tree before backend= existed: say so in the row
    out["notes"] = [f"numpy backend not measured: {e}"]
chain = bt.chain_tracegrad(1000, False)
chain_np = bt.chain_numpy(1000, False)
for k in range(3): chain(k); chain_np(k)
out["1,000-op eager chain"] = pair(chain, chain_np, max(steps // 10, 15))
print(json.dumps(out))
"""


def probe(tree: Path, steps: int) -> dict[str, float]:
    env = dict(os.environ, TRACEGRAD_MALLOC=os.environ.get("TRACEGRAD_MALLOC", ""))
    done = subprocess.run([sys.executable, "-c", PROBE, str(tree), str(ROOT), str(steps)],
                          capture_output=True, text=True, env=env, cwd=tree, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the probe failed on {tree}:\n{done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.versions",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="HEAD~1", help="the commit to compare with")
    parser.add_argument("--rounds", type=int, default=5, help="processes per version")
    parser.add_argument("--steps", type=int, default=200, help="MLP steps per process")
    args = parser.parse_args(argv)
    base_sha = subprocess.run(["git", "rev-parse", "--short", args.base], cwd=ROOT, text=True,
                              capture_output=True, check=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="tracegrad-base-") as tmp:
        base = Path(tmp) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(base), base_sha],
                       cwd=ROOT, check=True)
        try:
            results: dict[str, list[dict]] = {"this tree": [], f"base {base_sha}": []}
            for r in range(args.rounds):
                for name, tree in (("this tree", ROOT), (f"base {base_sha}", base)):
                    results[name].append(probe(tree, args.steps))
                print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(base)], cwd=ROOT,
                           check=False)
    names = list(results)
    print(f"{'tracegrad time / hand-written NumPy time':42}" +
          "".join(f"{n:>16}" for n in names) + f"{'goal':>8}")
    for metric, goal in GOALS.items():
        cells = []
        for n in names:
            values = [r[metric] for r in results[n] if metric in r]
            cells.append(f"{statistics.median(values):15.2f}x" if values else f"{'-':>16}")
        print(f"{metric:42}" + "".join(cells) + f"{goal:7.2f}x")
    for n in names:
        for note in {note for r in results[n] for note in r.get("notes", ())}:
            print(f"{n}: {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
