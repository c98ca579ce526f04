"""``tg.compile`` for functions of Values: variants, guards, write-backs, ``tg.explain``.

`tg.compile` hands a call to `CompiledValues` when the function works on Values (see
`values.is_value_program`). A variant is the traced graph (`values.trace_values`), optimized
by the passes that apply to scalars (dce, cse, fold_constants), laid out as a tape
(`values_program`) and run by the chosen backend. Its guards follow the tensor compiler's
rules (guards.py): arguments that are neither Values nor floats are part of the cache key,
every global the user's code read while traced is fingerprinted (every user code object
that ran, see `CodeReads`), closure values too, and the structure of every
`tracegrad.nn.scalar` module it can reach (which Values are its parameters, its flags) is
checked on each call. Float arguments are inputs: a new learning rate does not recompile,
unless the function branches on it (then floats are guarded by value from then on).
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import marshal
import math
import pickle
import sys
import threading
import time
import warnings
from dataclasses import dataclass, field
from operator import attrgetter
from pathlib import Path
from typing import Any, Callable, NamedTuple

from ..errors import TraceError
from ..scalar import Value
from . import values_hook, values_program, values_tape
from . import variants as variant_cache
from .guards import (
    Ident,
    ReadRecorder,
    arg_key,
    fingerprint,
    function_guards,
    identities,
    one_level,
    roots_of,
    warn_side_effects,
)
from .ir import Graph
from .optimize import Explanation, PassRecord
from .trace import flatten_args, paused_gc
from .values import _DATA, Traced, build_result, trace_values
from .values_program import build_program
from .values_tape import PASSES, Recording

# backward() is traced as a reverse sweep (values._record_sweep), not as nodes of the
# backward pass: the C backend runs it as one loop, the NumPy backend's program expands it
# into nodes (values_tape.expand_sweeps) once, before the passes (see docs/scalar.md)
REVERSE_SWEEP = True


def optimize_values(rec: Recording, backend: str) -> tuple[Recording, list[PassRecord]]:
    """The passes that apply to a scalar graph (values_tape.PASSES), each with its record
    (as `optimize`); for the NumPy program, its sweeps expanded into nodes first."""
    def record(name: str, note: str, seconds: float) -> PassRecord:
        return PassRecord(name, rec.count(), rec.count(), 8 * len(rec), note, seconds)

    records = [record("trace", f"{len(rec) - rec.n_inputs} nodes recorded", 0.0)]
    if backend == "numpy" and rec.extra:
        t0 = time.perf_counter()
        rec, note = values_tape.expand_sweeps(rec)
        records.append(record("expand_sweeps", note, time.perf_counter() - t0))
    folded = True
    for i, (name, fn) in enumerate(PASSES):
        t0 = time.perf_counter()
        if name == "dce" and i > 0 and not folded:
            # (cse drops each duplicate and keeps its inputs: only folding leaves dead nodes)
            records.append(record(name, "not needed: nothing was folded", 0.0))
            continue
        rec, note = fn(rec)
        if name == "fold_constants":
            folded = not note.startswith("folded 0 ")
        records.append(record(name, note, time.perf_counter() - t0))
    return rec, records


def resolve_backend(backend: str) -> str:
    """The backend that runs a Value program: "numpy" or "c" ("auto": C where a compiler
    works, as for tensors)."""
    from .backends import get_backend
    from .backends.toolchain import CompileError, CompilerNotFound

    if backend == "c":
        # (the C backend's check compiles a probe in every new process; a Value program's C
        # is one tape interpreter, the same for every program and kept in the disk cache:
        # loading it is the check, and a warm compile then runs no compiler)
        try:
            values_program.c_function()
        except (CompilerNotFound, CompileError, OSError) as e:
            raise RuntimeError(f"tg.compile: backend 'c' cannot run here: {e}") from e
        return "c"
    chosen = get_backend(backend).name
    if chosen not in ("numpy", "c"):
        raise ValueError(f"tg.compile: a function of Values runs on backend 'numpy' or 'c', "
                         f"not {chosen!r}")
    return chosen


def lower(rec: Recording, backend: str) -> tuple[Any, PassRecord]:
    t0 = time.perf_counter()
    program = build_program(rec, backend)
    if backend == "c":
        sweeps = program.calls // 2
        note = f"a tape of {program.n_nodes} nodes swept by one C loop" + (
            f", backward as {sweeps} reverse sweep(s)" if sweeps else "")
    else:
        tape = program.tape
        note = (f"{tape.n_nodes} nodes in {tape.n_units} units (chains joined), "
                f"{tape.levels} levels: {program.calls} NumPy calls")
    record = PassRecord(f"lower ({backend})", program.n_nodes, program.calls,
                        8 * program.n_slots, note, time.perf_counter() - t0)
    return program, record


# ---------------------------------------------------------------- the disk cache


def _code_version() -> bytes:
    """What a cached program depends on besides its recording: the code that lays it out."""
    if not _CODE_VERSION:
        h = hashlib.sha256()
        for module in (values_tape, values_program):
            h.update(Path(module.__file__).read_bytes())
        h.update(sys.version.encode())
        _CODE_VERSION.append(h.digest())
    return _CODE_VERSION[0]


_CODE_VERSION: list = []


def _cache_path(rec: Recording, backend: str) -> Path | None:
    from .backends.toolchain import cache_dir

    try:
        root = cache_dir().parent / "values"
    except (OSError, RuntimeError):  # (no home directory)
        return None
    h = hashlib.sha256(_code_version())
    h.update(f"{backend}\0{rec.key()}".encode())
    return root / f"{h.hexdigest()}.pickle"


def optimized_program(rec: Recording, backend: str) -> tuple[Recording, Any, list]:
    """The passes, the layout and the program of a recording, with their records. The
    optimized recording and its layout are kept on disk (beside the C cache, see
    toolchain.cache_dir), keyed by a digest of the recording: a compile of the same program
    in a new process (a warm disk cache) skips the passes and the layout."""
    t0 = time.perf_counter()
    path = _cache_path(rec, backend)
    if path is not None and path.exists():
        try:
            cached = pickle.loads(path.read_bytes())
            optimized, tape = cached["recording"], cached["tape"]
            if tape is not None:
                tape.recording = optimized
            program = build_program(optimized, backend, tape)
            records = [PassRecord(*r) for r in cached["records"]]
            records.append(PassRecord("disk cache", optimized.count(), optimized.count(), 0,
                                      f"passes and layout read from {path.name[:12]}...",
                                      time.perf_counter() - t0))
            return optimized, program, records
        except (OSError, EOFError, pickle.UnpicklingError, KeyError, TypeError,
                AttributeError, ValueError):
            pass  # (a damaged or foreign file: compile and write it again)
    optimized, records = optimize_values(rec, backend)
    program, record = lower(optimized, backend)
    records.append(record)
    if path is not None:
        from .backends.toolchain import _write_atomic

        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fields = [(r.name, r.nodes, r.kernels, r.peak_bytes, r.note, r.seconds)
                      for r in records]
            tape = program.tape  # (its layout: `Tape` or `CTape`)
            _write_atomic(path, pickle.dumps({"recording": optimized, "tape": tape,
                                              "records": fields}, protocol=5))
        except OSError:
            pass  # (a read-only cache directory: no disk cache)
    return optimized, program, records


# ---------------------------------------------------------------- guards


def _structure(obj: Any, depth: int = 0) -> Any:
    """A scalar module's structure: which Values it holds (by identity) and its plain
    settings (``nonlin``), nested. Cheap enough to compare on every call."""
    if isinstance(obj, Value):
        return id(obj)
    t = type(obj)
    if t in (list, tuple):
        return tuple([_structure(x, depth + 1) for x in obj])
    if t in (int, float, bool, str, type(None)):
        return obj
    d = getattr(obj, "__dict__", None)
    if d is not None and depth < 8:
        return (t, tuple([(k, _structure(x, depth + 1)) for k, x in d.items()]))
    return Ident(obj)


def _values_in(obj: Any, out: list, depth: int = 0) -> list:
    """Every Value a module holds (kept alive by the guard, so their ids stay theirs)."""
    if isinstance(obj, Value):
        out.append(obj)
    elif type(obj) in (list, tuple):
        for x in obj:
            _values_in(x, out, depth + 1)
    elif hasattr(obj, "__dict__") and depth < 8:
        for x in vars(obj).values():
            _values_in(x, out, depth + 1)
    return out


def module_guards(roots: list) -> list:
    from ..nn.scalar import Module

    out = []
    seen: set[int] = set()
    for r in roots:
        if isinstance(r, Module) and id(r) not in seen:
            seen.add(id(r))
            held = _values_in(r, [])
            out.append((f"the structure of {type(r).__name__}",
                        (lambda m=r: _structure(m)), _structure(r), held))
    return out


class Plain(bytes):
    """The fingerprint of plain data (numbers, strings, and lists, tuples and dicts of
    them, like a data set held as lists of floats): its `marshal` bytes (format 2, without
    back-references), exact for these types (floats bit for bit; -0.0 and 0.0, 1, 1.0 and
    True all differ) and made in C, a hundred times faster than `guards.fingerprint`."""


_PLAIN_TYPES = (int, float, bool, str, type(None))


def _is_plain(value: Any, depth: int = 0) -> bool:
    t = type(value)
    if t in _PLAIN_TYPES:
        return True
    if depth > 6:
        return False
    if t in (list, tuple):
        return all(_is_plain(x, depth + 1) for x in value)
    if t is dict:
        return all(type(k) in _PLAIN_TYPES and _is_plain(x, depth + 1)
                   for k, x in value.items())
    return False


def _plain_guards(reads: list) -> list:
    """Reads of plain data are compared by `Plain` fingerprints."""
    out = []
    for what, getter, fp in reads:
        value = getter()
        if type(value) in (list, tuple, dict) and _is_plain(value):
            fp = Plain(marshal.dumps(value, 2))
        out.append((what, getter, fp))
    return out


class _FrameView(NamedTuple):
    """What `ReadRecorder` reads of a frame starting (the 3.11 hook sees no frame object)."""

    f_code: Any
    f_globals: dict


class _PrintWatch:
    """Who called print() while a thread traces: one stand-in for ``builtins.print``, shared by
    every tracing thread (a stand-in per trace, each saving and restoring the one before it,
    would leave a stale one installed when two threads' traces overlap). It notes the call
    for the calling thread's recorder, if that thread is tracing, and then prints."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.recorders: dict[int, ReadRecorder] = {}  # thread id -> its trace's recorder
        self.original: Callable | None = None
        self.stand_in = self.print  # (one bound method, so that `is` recognizes it)

    def watch(self, thread: int, recorder: ReadRecorder) -> None:
        with self.lock:
            if not self.recorders:
                self.original = builtins.print
                builtins.print = self.stand_in
            self.recorders[thread] = recorder

    def unwatch(self, thread: int) -> None:
        with self.lock:
            self.recorders.pop(thread, None)
            if not self.recorders:
                if builtins.print is self.stand_in:  # (unless someone replaced it meanwhile)
                    builtins.print = self.original
                self.original = None

    def print(self, *args: Any, **kwargs: Any) -> None:
        recorder = self.recorders.get(threading.get_ident())
        if recorder is not None:
            recorder.note_print(sys._getframe(1))
        (self.original or _builtin_print)(*args, **kwargs)


_builtin_print = builtins.print
_PRINTS = _PrintWatch()


class CodeReads:
    """The globals the user's code read while one call was traced, as guards: what
    `guards.ReadRecorder` records for the tensor compiler (every user frame's code, and the
    globals that code can name), seeing each code object once.

    A Value program makes about a dozen Python calls per scalar op, and a ``sys.setprofile``
    hook runs on every one of them (about twice the trace's own time). From Python 3.12,
    ``sys.monitoring`` reports a code object's start and is then told to stop reporting it
    (``DISABLE``), so the cost is per code object, not per call. Before 3.12 a profile
    function sees every frame enter: `values_hook`'s, in C, calls back only for a code
    object not seen yet (without a C compiler, ``sys.setprofile``: the same guards, about
    three times slower). On 3.11 any profile function slows the interpreter (it turns off
    the specializing fast paths while installed), so there `values_hook`'s frame evaluation
    function (PEP 523) does the same without a profile function. Either way
    the guards cover code reached only at run time (through ``getattr``, or methods of
    objects made during the call), which no reading of the code can find."""

    def __init__(self, entry: Callable | None = None) -> None:
        self.recorder = ReadRecorder(entry)
        self.thread = threading.get_ident()
        self.tool: int | None = None
        self.c_hook = self.eval_hook = False

    def __enter__(self) -> "CodeReads":
        # what the tensor compiler's recorder also notes: draws from the global random
        # generators, and print() (seen here by standing in for it for the duration)
        self.recorder.watch_random()
        self._hook()
        _PRINTS.watch(self.thread, self.recorder)
        return self

    def __exit__(self, *exc: Any) -> None:
        self._unhook()
        _PRINTS.unwatch(self.thread)
        self.recorder.check_random()

    def _hook(self) -> None:
        monitoring = getattr(sys, "monitoring", None)
        free = [] if monitoring is None else \
            [i for i in range(6) if monitoring.get_tool(i) is None]
        if not free:  # before 3.12 (or every tool id taken): a C hook, or a profile hook
            self.saved = sys.getprofile()
            self.eval_hook = values_hook.eval_start(self._evaluated)
            if not self.eval_hook:
                self.c_hook = values_hook.start(self._entered)
                if not self.c_hook:
                    sys.setprofile(self._event)
            return
        self.tool = free[-1]
        monitoring.use_tool_id(self.tool, "tracegrad.compile")
        monitoring.register_callback(self.tool, monitoring.events.PY_START, self._start)
        monitoring.set_events(self.tool, monitoring.events.PY_START)

    def _event(self, frame: Any, event: str, arg: Any) -> None:
        # (only frames entering: the recorder's checks of C calls, print and list.append,
        # would cost a third more, and warn of nothing the Value tracer acts on)
        if event == "call":
            self.recorder._hook(frame, event, arg)

    @contextlib.contextmanager
    def paused(self) -> Any:
        """No hook meanwhile (for tracegrad's own bulk work inside a traced call, during
        which no user code runs: values._traced_backward). With ``sys.monitoring`` nothing
        changes: it reports each code object once anyway."""
        if self.tool is not None:
            yield
            return
        if self.eval_hook:
            values_hook.eval_pause()
        elif self.c_hook:
            values_hook.pause()
        else:
            sys.setprofile(None)
        try:
            yield
        finally:
            if self.eval_hook:
                values_hook.eval_resume()
            elif self.c_hook:
                values_hook.start(self._entered)
            else:
                sys.setprofile(self._event)

    def _entered(self, frame: Any) -> None:  # (from the C hook: a new code object starts)
        self.recorder._hook(frame, "call", None)

    def _evaluated(self, code: Any, globals: dict) -> None:  # (from the 3.11 hook: the same)
        self.recorder._hook(_FrameView(code, globals), "call", None)

    def _start(self, code: Any, offset: int) -> Any:
        if threading.get_ident() != self.thread:
            return None  # (another thread's call: keep reporting this code to the trace)
        frame = sys._getframe(1)  # (the frame starting; searched for, to be sure)
        while frame is not None and frame.f_code is not code:
            frame = frame.f_back
        if frame is None:
            return None  # (not found: keep reporting this code, not one read missed)
        self.recorder._hook(frame, "call", None)
        return sys.monitoring.DISABLE

    def _unhook(self) -> None:
        if self.tool is None:
            if self.eval_hook:
                values_hook.eval_stop()
                return
            if self.c_hook:
                values_hook.stop()
            sys.setprofile(self.saved)
            return
        monitoring = sys.monitoring
        monitoring.set_events(self.tool, 0)
        monitoring.register_callback(self.tool, monitoring.events.PY_START, None)
        monitoring.free_tool_id(self.tool)
        monitoring.restart_events()  # (the next trace sees every code object again)

    def guards(self) -> list:
        """(what, getter, fingerprint) of every global read."""
        return [(r.name, r.getter, r.fp) for r in self.recorder.reads.values()]


# ---------------------------------------------------------------- variants


_GET = {"data": attrgetter("data"), "grad": attrgetter("grad")}


@dataclass
class ValueVariant:
    recording: Recording  # the optimized graph, as arrays
    program: Any
    capture: Any
    guards: list  # (what, getter, fingerprint)
    fps: list  # (index, fingerprint) of arguments compared one by one
    structures: list  # (what, getter, value): compared as they are (see _structure)
    records: list = field(default_factory=list)
    compile_seconds: float = 0.0
    compile_cpu_seconds: float = 0.0  # the process's CPU time (on a busy machine, < wall)
    held: list = field(default_factory=list)
    backend: str = "numpy"

    def __post_init__(self) -> None:
        feeds = self.capture.feeds
        self.feed = [(f[0], f[1], _GET[f[2]] if len(f) > 2 else None) for f in feeds]
        self.value_feeds = {attr: [f[1] for f in feeds if f[0] == "value" and f[2] == attr]
                            for attr in ("data", "grad")}
        # inputs are ordered: floats and argument Values first, then captured data, grads
        self.n_args = sum(1 for f in feeds if f[0] != "value")
        self.writes = self.capture.writes
        self.n_user = self.capture.n_user
        self.plain_writes = not any(self.capture.write_ints) and \
            all(w[0] == "value" for w in self.writes)
        self.write_data = [w[1] for w in self.writes if w[2] == "data"]
        self.write_grad = [w[1] for w in self.writes if w[2] == "grad"]
        self.n_write_data = len(self.write_data)
        self.lock = threading.Lock()
        # The Values this variant reads or writes besides its arguments, by identity, when it
        # writes any (else None): an argument that is one of them, or one Value at two
        # argument places, makes eager's result depend on the aliasing (see `aliased`).
        self.state_ids = frozenset(
            id(f[1]) for f in feeds if f[0] == "value") | frozenset(
            id(w[1]) for w in self.writes if w[0] == "value") if self.writes else None
        self.arg_places = sorted({f[1] for f in feeds if f[0] == "arg"})

    def aliased(self, flat: list) -> bool:
        """Whether a call's Value arguments alias each other or this variant's state while
        it writes Values: the program, traced without that aliasing, would not see it."""
        ids = self.state_ids
        if ids is None:
            return False
        seen: set[int] = set()
        for k in self.arg_places:
            i = id(flat[k][1])
            if i in ids or i in seen:
                return True
            seen.add(i)
        return False

    def check(self) -> str | None:
        for what, getter, value in self.structures:
            if getter() != value:
                return f"{what} changed"
        for what, getter, fp in self.guards:
            if type(fp) is Ident:
                if getter() is not fp.obj:
                    return f"{what} was replaced"
            elif type(fp) is Plain:
                try:
                    same = marshal.dumps(getter(), 2) == fp
                except ValueError:  # no longer plain data
                    same = False
                if not same:
                    return f"{what} changed (the function read it while tracing)"
            elif fingerprint(getter()) != fp:
                return f"{what} changed (the function read it while tracing)"
        return None

    def run(self, flat: list) -> Any:
        with self.lock:  # one call at a time: inputs, program and write-backs together
            return self._run(flat)

    def _run(self, flat: list) -> Any:
        xs = []
        for kind, k, get in self.feed[:self.n_args]:
            leaf = flat[k][1]
            xs.append(leaf if kind == "float" else get(leaf))
        xs += map(_GET["data"], self.value_feeds["data"])
        xs += map(_GET["grad"], self.value_feeds["grad"])
        outs = self.program(xs)
        total = sum(outs)
        if not math.isfinite(total):
            # A nan or an infinity: where eager raises (log(0), 1/0, exp(1000)) the program
            # computes one. Nothing is written back; the caller runs the call eagerly, which
            # raises eager's error or gives the same numbers (inf from x * 1e308 is eager's).
            return _EAGER
        n = self.n_user
        if self.plain_writes:
            m = n + self.n_write_data
            for v, x in zip(self.write_data, outs[n:m]):
                v.data = x
            for v, x in zip(self.write_grad, outs[m:]):
                v.grad = x
        else:
            for (kind, target, attr), is_int, x in zip(self.writes, self.capture.write_ints,
                                                       outs[n:]):
                v = flat[target][1] if kind == "arg" else target
                setattr(v, attr, int(x) if is_int else x)
        return build_result(self.capture.out_tree, outs)


_EAGER = object()  # what ValueVariant.run returns for a call to run eagerly instead


class TracedStateError(TraceError):
    """A traced call stored a traced number into Python state (tracing again cannot help)."""


def _holds_traced(obj: Any, depth: int = 0) -> bool:
    """Whether ``obj`` (a container, an object's attributes, nested) holds a traced number,
    or a Value made during the trace (its number lives in the trace only)."""
    t = type(obj)
    if t is Traced:
        return True
    if isinstance(obj, Value):
        try:
            return type(_DATA.__get__(obj)) is Traced
        except AttributeError:  # made during the trace: no number of its own
            return True
    if depth > 6:
        return False
    if t in (list, tuple, set, frozenset):
        return len(obj) <= 100_000 and any(_holds_traced(x, depth + 1) for x in obj)
    if t is dict:
        return len(obj) <= 100_000 and any(_holds_traced(x, depth + 1) for x in obj.values())
    d = getattr(obj, "__dict__", None)
    if type(d) is dict and not isinstance(obj, type) and \
            not str(getattr(t, "__module__", "")).startswith("tracegrad."):
        return any(_holds_traced(x, depth + 1) for x in d.values())
    return False


class CompiledValues:
    """The Value-program half of a compiled function (see the module docstring)."""

    def __init__(self, fn: Callable, backend: str = "auto"):
        self.fn = fn
        self.backend = backend
        self.variants: dict[tuple, list[ValueVariant]] = {}
        self.order: list[tuple] = []
        self.hits = self.misses = 0
        self.reasons: list[str] = []
        self.floats = True  # float arguments are inputs (until the function branches on one)
        self.last: ValueVariant | None = None
        self.lock = threading.RLock()
        self._warned = False
        self._warned_eager = False

    def key(self, flat: list) -> tuple[tuple, list]:
        others = [(p, x) for p, x in flat if not isinstance(x, Value)]
        key, fps = arg_key(others, self.floats)
        where = tuple(k for k, (_, x) in enumerate(flat) if isinstance(x, Value))
        return key + (where, len(flat)), fps

    def __call__(self, args: tuple, kwargs: dict) -> Any:
        flat = flatten_args(args, kwargs)
        key, fps = self.key(flat)
        reason = None
        for v in self.variants.get(key, ()):
            if v.fps and any(a != b for (_, a), (_, b) in zip(v.fps, fps)):
                reason = reason or "an argument that is not a Value or a float changed"
                continue
            miss = v.check()
            if miss is None and v.state_ids is not None and v.aliased(flat):
                miss = "an argument Value is also another argument or a Value the function " \
                    "reads otherwise, and it writes Values"
            if miss is None:
                self.hits += 1
                self.last = v
                result = v.run(flat)
                return self._eagerly(args, kwargs) if result is _EAGER else result
            reason = reason or miss
        if reason is None:
            reason = "first compiled call" if not self.variants else \
                "new argument structure (how many Values and floats, and where), or new " \
                "values of the other arguments"
        with self.lock, paused_gc():
            try:
                variant = self.compile(args, kwargs, fps)
            except TraceError as err:
                if not self.floats or type(err) is TracedStateError:
                    raise
                self.floats = False  # a branch on a float argument: guard floats by value
                return self(args, kwargs)
            self.misses += 1
            self.reasons = self.reasons[-63:] + [reason]
            variant_cache.keep(self.variants, self.order, key, variant)
        if self.misses > variant_cache.MAX_VARIANTS and not self._warned:
            self._warned = True
            variant_cache.warn_recompiling(
                self.fn, self.misses, reason, "Pass a value that changes from call to call "
                "as a float argument (an input of the program), or keep it fixed.")
        self.last = variant
        result = variant.run(flat)
        return self._eagerly(args, kwargs) if result is _EAGER else result

    def _eagerly(self, args: tuple, kwargs: dict) -> Any:
        """A call whose program results hold a nan or an inf, run eagerly: it raises where
        eager raises (log(0)); where it does not, the nan or inf is eager's, and such calls
        stay eager (at eager's speed), which a warning says once."""
        result = self.fn(*args, **kwargs)
        if not self._warned_eager:
            self._warned_eager = True
            warnings.warn(f"tg.compile: {getattr(self.fn, '__name__', 'the function')} "
                          f"returns or writes a nan or an infinity, which its compiled program "
                          f"cannot tell from an error eager raises (log(0), 1/0); such calls "
                          f"run eagerly", UserWarning, stacklevel=4)
        return result

    def compile(self, args: tuple, kwargs: dict, fps: list) -> ValueVariant:
        t0, cpu0 = time.perf_counter(), time.process_time()
        name = getattr(self.fn, "__name__", "the function")
        roots = roots_of(self.fn, args)
        backend = resolve_backend(self.backend)
        watch = CodeReads(self.fn)
        rec, capture = trace_values(self.fn, args, kwargs, floats=self.floats, watch=watch,
                                    reverse=REVERSE_SWEEP)
        reads = watch.guards() + function_guards(self.fn)
        traced = time.perf_counter() - t0
        changed = [(what, getter, fp) for what, getter, fp in reads
                   if fingerprint(getter()) != fp]
        leaked = [what for what, getter, _ in changed if _holds_traced(getter())]
        if leaked:
            raise TracedStateError(
                f"tg.compile: {name} stores a traced number (a Value's .data or .grad, or a "
                f"Value made in the call) into {', '.join(leaked[:3])}. A compiled function "
                f"runs its Python code once, while tracing, so that state would hold a "
                f"placeholder (it does now: reset it) and later calls would not update it, "
                f"or read the placeholder as another number. Return the number instead and "
                f"keep such bookkeeping (a loss history, a running average) outside the "
                f"compiled function")
        warn_side_effects(watch.recorder, [(what, fp) for what, _, fp in changed], name)
        found: list = []
        for _, _, fp in reads:
            identities(fp, found)
        held, structures = [], []
        for what, getter, value, values in module_guards(one_level(roots + found)):
            structures.append((what, getter, value))
            held += values
        rec, program, records = optimized_program(rec, backend)
        records[0].seconds = traced
        variant = ValueVariant(rec, program, capture, _plain_guards(reads), fps, structures,
                               records, held=held, backend=backend)
        variant.compile_seconds = time.perf_counter() - t0
        variant.compile_cpu_seconds = time.process_time() - cpu0
        return variant

    # ------------------------------------------------------------ introspection

    def cache_info(self) -> Any:
        from .api import CacheInfo

        n = sum(len(b) for b in self.variants.values())
        backend = ""
        if self.last is not None:
            records = self.last.records
            lowered = [r for r in records if r.name.startswith("lower")] or records
            cached = " (read from the disk cache)" if records[-1].name == "disk cache" else ""
            backend = f"{self.last.backend}: {lowered[-1].note}{cached}"
        return CacheInfo(n, self.hits, self.misses, list(self.reasons), backend)

    def source(self) -> str:
        if self.last is None:
            raise RuntimeError("source(): the function has not been compiled yet")
        return self.last.program.source()

    @property
    def graph(self) -> Graph:
        if self.last is None:
            raise RuntimeError("graph: the function has not been compiled yet")
        return self.last.recording.to_graph()


def explain(fn: Callable, *args: Any, backend: str = "auto", **kwargs: Any) -> Explanation:
    """`tg.explain` for a function of Values: the passes on its scalar graph, and how the
    chosen backend lays it out."""
    with paused_gc():
        t0 = time.perf_counter()
        chosen = resolve_backend(backend)
        rec, _ = trace_values(fn, args, kwargs, reverse=REVERSE_SWEEP)
        traced = time.perf_counter() - t0
        rec, records = optimize_values(rec, chosen)
        _, record = lower(rec, chosen)
    return Explanation(records + [record], rec.to_graph(), traced, backend=chosen)
