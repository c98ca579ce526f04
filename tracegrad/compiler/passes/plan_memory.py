"""Memory planning: liveness analysis, then every value that can be written into a
preallocated buffer gets one from a pool, reusing buffers whose values are dead, and writing
in place over an operand that dies at that node when the op allows it.

An analysis, not a rewrite: `plan_memory` returns a `MemoryPlan` for the backend and leaves
the graph as it is. What may be written into a buffer, or over an operand, is the backend's
answer (`Backend.writes_into`, `Backend.overwrites`), not a set of op names kept here. The
plan reports the peak bytes live at once, and the total size of the buffer pool.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass, field
from typing import Any

from ...ops.base import having
from ..ir import Graph, Node

# Ops whose result may be a view of their operand (sharing its memory): the "view" fact.
VIEWS = having("view")


@dataclass
class MemoryPlan:
    buffer_of: dict = field(default_factory=dict)  # id(node) -> pool buffer index
    scratch_of: dict = field(default_factory=dict)  # id(kernel) -> buffer for its chain
    buffers: list = field(default_factory=list)  # bytes per pool buffer (any dtype's view)
    in_place: int = 0
    into_input: dict = field(default_factory=dict)  # id(node) -> the input it overwrites
    fresh: set = field(default_factory=set)  # ids of outputs given new memory on every run
    pool_bytes: int = 0
    peak_bytes: int = 0
    free_after: dict = field(default_factory=dict)  # node index -> values dead after it

    def summary(self) -> str:
        return (f"{len(self.buffers)} buffer(s), {self.pool_bytes:,} bytes pooled, "
                f"{self.in_place} in place ({len(self.into_input)} into their inputs), "
                f"peak {self.peak_bytes:,} bytes")


def _needs_scratch(node: Node) -> bool:
    return node.op == "kernel" and node.value[-1].op in ("sum", "max", "min")


# A kernel that ends in a reduction computes its chain in a scratch buffer first. When that
# would take more than BLOCKS_ABOVE bytes, the chain runs over blocks of rows (the first
# axis) of about BLOCK_BYTES instead, each reduced as it is done: the scratch is one block,
# which also stays in the cache between the chain's steps.
BLOCKS_ABOVE = 1 << 20
BLOCK_BYTES = 1 << 18
MAX_BLOCKS = 64


def block_rows(node: Node) -> int | None:
    """Rows per block for a reduction kernel run block by block (see BLOCKS_ABOVE), a
    divisor of the first axis; None to run it in one go."""
    if not _needs_scratch(node):
        return None
    first = node.value[0]
    nbytes = _nbytes(first)
    if nbytes <= BLOCKS_ABOVE or not first.shape:
        return None
    n = first.shape[0]
    rows = max(1, min(n, BLOCK_BYTES // (nbytes // n)))
    while n % rows:
        rows -= 1
    return rows if 1 < n // rows <= MAX_BLOCKS else None


def _scratch_bytes(node: Node) -> int:
    """The scratch a reduction kernel's chain needs: the whole chain, or one block of it."""
    nbytes = _nbytes(node.value[0])
    rows = block_rows(node)
    return nbytes if rows is None else nbytes // node.value[0].shape[0] * rows


def _operand_reads(node: Node, base: dict) -> tuple[dict, dict, set]:
    """What `_may_overwrite` asks of a node's operands, counted once per node (a kernel of
    a long chain has thousands of operands and steps): how many operands share each memory
    root, how often each operand appears, and the roots a kernel reads after its first step."""
    per_root: dict[int, int] = {}
    per_input: dict[int, int] = {}
    for i in node.inputs:
        root = base.get(id(i), i)
        per_root[id(root)] = per_root.get(id(root), 0) + 1
        per_input[id(i)] = per_input.get(id(i), 0) + 1
    late: set[int] = set()
    if node.op == "kernel":
        for step in node.value[1:]:
            for kind, ref in step.refs:
                if kind == "input":
                    late.add(id(base.get(id(ref), ref)))
    return per_root, per_input, late


def _may_overwrite(node: Node, operand: Node, base: dict, reads: tuple | None = None,
                   one_pass: bool = False) -> bool:
    """Whether ``node`` may write its result over ``operand``'s memory: no other operand
    may share that memory (``x + x.T`` would read what it already overwrote), and in a
    kernel nothing after the first step may read it, unless the backend runs the kernel in
    one pass (``one_pass``: `Backend.one_pass`). ``reads``: `_operand_reads` of the node,
    when several operands are asked about."""
    per_root, per_input, late = _operand_reads(node, base) if reads is None else reads
    root = id(base.get(id(operand), operand))
    if per_root.get(root, 0) > per_input.get(id(operand), 0):
        return False
    return one_pass or root not in late


def _read_last_only(node: Node, operand: Node, base: dict) -> bool:
    """A kernel whose steps read ``operand`` (or memory shared with it) only in the last
    step, where it is a whole elementwise operand; nothing else aliases it."""
    root = base.get(id(operand), operand)
    if any(i is not operand and base.get(id(i), i) is root for i in node.inputs):
        return False
    *body, last = node.value
    if last.op in ("sum", "max", "min") or len(body) == 0:
        return False
    for step in body:
        if any(r[0] == "input" and base.get(id(r[1]), r[1]) is root for r in step.refs):
            return False
    return any(r[0] == "input" and r[1] is operand for r in last.refs)


def peak_without_plan(graph: Graph) -> int:
    """Peak bytes if every value gets fresh memory, freed after its last use (what eager
    execution with reference counting does, before counting what autograd keeps alive)."""
    last = _last_use(graph)
    live, peak = 0, 0
    for k, node in enumerate(graph.nodes):
        op = node.op
        if op != "const" and op not in VIEWS:
            live += node.nbytes
            if live > peak:
                peak = live
        for dead in last.get(k, ()):
            if dead.op not in ("const", "input") and dead.op not in VIEWS:
                live -= dead.nbytes
    return peak


def _last_use(graph: Graph) -> dict[int, list[Node]]:
    """node index -> the values whose last reader is that node (outputs never die)."""
    base = _alias_roots(graph)
    # Keyed by the nodes themselves (they hash by identity): one dict, no id() calls.
    last_index: dict[Node, int] = {}
    if base:
        outputs = set(graph.outputs) | {base.get(id(o), o) for o in graph.outputs}
        for k, node in enumerate(graph.nodes):
            for i in node.inputs:
                last_index[base.get(id(i), i)] = k
            last_index.setdefault(base.get(id(node), node), k)
    else:  # no views: every value is its own memory
        outputs = set(graph.outputs)
        for k, node in enumerate(graph.nodes):
            for i in node.inputs:
                last_index[i] = k
            last_index.setdefault(node, k)
    dead: dict[int, list[Node]] = {}
    for n, k in last_index.items():
        if n not in outputs:
            dead.setdefault(k, []).append(n)
    return dead


def _alias_roots(graph: Graph) -> dict[int, Node]:
    """id(view) -> the value whose memory it may share."""
    base: dict[int, Node] = {}
    for node in graph.nodes:
        if node.op in VIEWS:
            src = node.inputs[0]
            base[id(node)] = base.get(id(src), src)
    return base


def plan_memory(graph: Graph, backend: Any = None, donations: dict | None = None
                ) -> MemoryPlan:
    """The memory plan of ``graph`` for ``backend`` (default: NumPy). ``donations``:
    {id(output node): input node} for outputs that replace an input (a write-back), which
    may then be computed in that input's own memory."""
    if backend is None:
        from ..backends import get_backend
        backend = get_backend("numpy")
    writes_into, overwrites = _asker(backend.writes_into), _asker(backend.overwrites)
    plan = MemoryPlan()
    base = _alias_roots(graph)
    dead_after = _last_use(graph)
    outputs = {id(o) for o in graph.outputs} | {id(base.get(id(o), o)) for o in graph.outputs}
    # The pool buffers no live value occupies, as (size, when freed, index), sorted: a
    # search by size instead of a scan (a program may hold thousands of buffers).
    free: list[tuple[int, int, int]] = []
    freed = itertools.count()
    owner: dict[int, int] = {}  # id(value) -> buffer index it occupies
    held: dict[int, int] = {}  # buffer index -> bytes of the value in it
    live_bytes, peak = 0, 0

    def release(j: int) -> None:
        bisect.insort(free, (plan.buffers[j], next(freed), j))

    def take(nbytes: int) -> int:
        """A free buffer for ``nbytes``: the smallest one large enough but at most twice the
        size (a large buffer holding a small value leaves the next large value without one);
        else the largest smaller one, grown (nothing is allocated before the plan is done);
        else a new one. Buffers are shared across sizes and dtypes: a small pool is less
        memory for every run to pull through the caches. Among buffers of one size, the one
        freed first."""
        sizes = plan.buffers
        at = bisect.bisect_left(free, (nbytes,))
        if at < len(free) and free[at][0] <= 2 * nbytes:
            j = free.pop(at)[2]
        else:
            if at == 0:
                sizes.append(nbytes)
                return len(sizes) - 1
            at = bisect.bisect_left(free, (free[at - 1][0],))  # the first of that size
            j = free.pop(at)[2]
            sizes[j] = nbytes
        return j

    # A write-back (an optimizer's new weight) may be computed straight into the memory of
    # the input it replaces, if nothing reads that input afterwards.
    # An input nothing reads from there on (a .grad array waiting for its new value; an
    # Adam state whose last reader came before its new value: v * beta2 + (1 - beta2) g^2)
    # may receive any result written with out=.
    donations = donations or {}
    read = {id(base.get(id(i), i)) for n in graph.nodes for i in n.inputs}
    died_at = {id(d): k for k, gone in dead_after.items() for d in gone}
    used_targets: set[int] = set()
    output_nodes = {id(o) for o in graph.outputs}
    for k, node in enumerate(graph.nodes):
        target = donations.get(id(node))
        if target is not None and id(target) not in used_targets and (
            target.shape == node.shape and target.dtype == node.dtype
        ) and (
            ((id(target) not in read or died_at.get(id(target), k) < k)
             and writes_into(node.op) and not _needs_scratch(node))
            or (overwrites(node.op) and target in node.inputs
                and target in dead_after.get(k, ())
                and _may_overwrite(node, target, base, None, backend.one_pass(node)))
        ):
            used_targets.add(id(target))
            plan.into_input[id(node)] = target
            plan.in_place += 1
            plan.free_after[k] = dead_after.get(k, [])
            continue
        if (target is not None and id(target) not in used_targets and node.op == "kernel"
                and target.shape == node.shape and target.dtype == node.dtype
                and target in dead_after.get(k, ()) and _read_last_only(node, target, base)):
            # An update like `p - lr * g`: the chain runs in a scratch buffer and only its
            # last step, the one that reads p, writes over p.
            used_targets.add(id(target))
            plan.into_input[id(node)] = target
            plan.in_place += 1
            plan.scratch_of[id(node)] = s = take(_nbytes(node.value[0]))
            release(s)
            plan.free_after[k] = dead_after.get(k, [])
            continue
        if writes_into(node.op) and id(node) in output_nodes:
            # An output leaves the program: it gets new memory on every run (handed over,
            # not copied out of the pool, and not kept alive by the pool between runs).
            plan.fresh.add(id(node))
            live_bytes += node.nbytes
            if _needs_scratch(node):
                nbytes = _scratch_bytes(node)
                plan.scratch_of[id(node)] = s = take(nbytes)
                release(s)
                peak = max(peak, live_bytes + nbytes)
        elif writes_into(node.op):
            buf = None
            if overwrites(node.op):
                dying = {id(d) for d in dead_after.get(k, ())}
                reads, one_pass = None, backend.one_pass(node)
                for i in node.inputs:
                    j = owner.get(id(i))
                    if j is None or id(i) in outputs or i.dtype != node.dtype \
                            or i.nbytes != node.nbytes or id(i) not in dying:
                        continue
                    if reads is None:
                        reads = _operand_reads(node, base)
                    if _may_overwrite(node, i, base, reads, one_pass):
                        buf = j
                        owner.pop(id(i))
                        dead_after[k] = [d for d in dead_after[k] if d is not i]
                        plan.in_place += 1
                        break
            if buf is None:
                buf = take(node.nbytes)
                live_bytes += node.nbytes
            plan.buffer_of[id(node)] = buf
            owner[id(node)] = buf
            held[buf] = node.nbytes
            if _needs_scratch(node):
                nbytes = _scratch_bytes(node)
                plan.scratch_of[id(node)] = s = take(nbytes)
                release(s)  # free again right after the kernel
                peak = max(peak, live_bytes + nbytes)
        elif node.op not in ("const", "input") and node.op not in VIEWS:
            live_bytes += node.nbytes  # allocated by NumPy on every run
        peak = max(peak, live_bytes)
        gone = dead_after.get(k, [])
        plan.free_after[k] = gone
        for d in gone:
            j = owner.pop(id(d), None)
            if j is not None:
                release(j)
                live_bytes -= held[j]
            elif d.op not in ("const", "input") and d.op not in VIEWS:
                live_bytes -= d.nbytes
    plan.pool_bytes = sum(plan.buffers)
    plan.peak_bytes = peak
    return plan


def _asker(question: Any) -> Any:
    """A backend's answer per op name, asked once per name (a graph repeats a few ops)."""
    answers: dict[str, bool] = {}

    def ask(op: str) -> bool:
        a = answers.get(op)
        if a is None:
            a = answers[op] = bool(question(op))
        return a
    return ask


def _nbytes(step) -> int:
    n = step.dtype.itemsize
    for d in step.shape:
        n *= d
    return n
