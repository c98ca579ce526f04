"""``tg.compile``: the `CompiledFunction` front: a call finds its variant in the cache (or
compiles one) and runs it; `cache_info()`, `source()` and `graph` say what it did. Trace
once, optimize, run the compiled program while its guards hold.

A compiled function keeps a cache of variants. A call that matches none (its argument
shapes, dtypes and ``requires_grad``, grad mode, and every Python value the traced call read:
see guards.py) traces a new one, and `cache_info()` says why. The first call of a new
function runs eagerly, so that lazily created state (an optimizer's moments) exists before
anything is captured; the second call traces.
"""

from __future__ import annotations

import functools
import threading
import time
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

from .. import autograd
from ..errors import TraceError
from ..optim.optimizer import FirstStepTraced
from ..tensor import Tensor
from . import variants as variant_cache
from .backends import get_backend
from .backends.c import program_note
from .differentiable import BackwardProgram, differentiable
from .entry import EagerRun, Miss, VerifyRun
from .guards import (
    ReadRecorder,
    arg_key,
    big_arrays,
    fingerprint,
    float_input_kind,
    function_guards,
    identities,
    modules_of,
    one_level,
    roots_of,
    settings_of,
    warn_side_effects,
)
from .ir import Graph
from .optimize import Explanation, explain, optimize
from .partition import donations, feeders, split_backward
from .trace import (
    TensorSpec,
    flatten_args,
    is_input,
    paused_gc,
    raised_by_function,
    run_traced,
    tensor_mod,
)
from .variants import Variant

_ARG_PATHS = tuple(f"arg{i}" for i in range(16))  # (what flatten_args calls them)
ALIASED = Miss("a tensor argument is also another argument or a tensor the function reads "
               "otherwise, and the function writes tensors")


def _dynamic() -> Any:
    """compiler/dynamic_variant.py, imported when a call first needs it (the dynamic-shape
    machinery costs several milliseconds of `import tracegrad` otherwise)."""
    from . import dynamic_variant

    return dynamic_variant


def _same_but_sizes(traced: tuple, key: tuple) -> bool:
    """Whether a call keyed ``key`` (`guards.arg_key`) may run a dynamic variant traced at
    the key ``traced``: the same arguments in the same places, the same Python values among
    them (an int, a string, the kind of an object; the objects' own fingerprints are compared
    apart) and grad mode. The variant's entry checks the tensors' and arrays' shapes; it
    never sees the other arguments (``f(x, k=7)`` at a new size ran the program of k=2)."""
    if len(traced) != len(key) or traced[-1] != key[-1]:
        return False
    for a, b in zip(traced[:-1], key[:-1]):
        if a[0] != b[0] or a[-1] != b[-1] or (a[0] not in ("T", "A") and a != b):
            return False
    return True


def _advice(reason: str) -> str:
    """What to do about a function that keeps recompiling, by the last reason."""
    if "global or closure variable" in reason or "Python values" in reason:
        return ("A value the function reads changes from call to call: pass it as an "
                "argument (a float or a tensor is an input of the program, not a constant), "
                "or keep it fixed.")
    return "Every new shape or flag compiles a new variant: pad inputs to a few fixed shapes."


class CompiledFunction:
    """``tg.compile(fn)``: call it like ``fn``. See `cache_info()` and `source()`."""

    def __init__(self, fn: Callable, backend: str = "auto", dynamic: Any = None):
        # the lowering table the programs come from (an unknown name, or a backend that
        # cannot run here, raises now, saying why)
        self.lowering = get_backend(backend)
        self.fn = fn
        self.backend = backend
        if not (dynamic is None or type(dynamic) is bool or isinstance(dynamic, dict)):
            raise TypeError(f"tg.compile: dynamic must be None, True, False or a dict "
                            f"{{argument index: axis or axes}}, got {dynamic!r}")
        self.dynamic = dynamic
        self._dynamic_keys: list[tuple] = []  # keys of the dynamic variants, newest first
        self._seen: list[tuple] = []  # cache keys of calls that compiled (and the warm-up)
        self.dynamic_notes: list[str] = []  # why a variant could not be made dynamic
        self.variants: dict[tuple, list[Variant]] = {}
        self.hits = 0
        self.misses = 0
        self.miss_reasons: list[str] = []
        self._warm = False
        self._warned = False
        self.last_variant: Variant | None = None
        self._fast: Variant | None = None  # the variant of the last all-tensor call
        self._order: list[tuple] = []  # (key, variant), oldest first
        # Float and NumPy array arguments, and optimizers' float learning rates, are program
        # inputs, until a trace turns one into a Python value: then they are guards (by
        # value) for this function from then on.
        self._values = True
        self._guarded_settings: set[str] = set()  # hyper-parameters an optimizer branches on
        self._lock = threading.RLock()  # compiling and the variant table
        self._scalar: Any = None  # a function of Values: its CompiledValues (values_api.py)
        functools.update_wrapper(self, fn, updated=())

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        tracer = tensor_mod._tracer
        if tracer is not None and tracer.thread == threading.get_ident():
            return self.fn(*args, **kwargs)  # called inside another trace: just run inline
        fwd = tensor_mod._forward
        if fwd is not None and fwd.active():  # inside tg.jvp: its tangents need the primitives
            return self.fn(*args, **kwargs)
        if not self._warm:
            # The first call runs eagerly: state created lazily (optimizer moments, running
            # statistics) then exists before anything is captured.
            self._warm = True
            if self.dynamic is True and not kwargs and all(type(a) is Tensor for a in args):
                self._seen.append(self._key(args))  # sizes it changes from count
            return self.fn(*args, **kwargs)
        if self._scalar is None:  # a function of Values compiles to a scalar program
            from .values import is_value_program
            from .values_api import CompiledValues

            self._scalar = is_value_program(self.fn, args, kwargs) and \
                CompiledValues(self.fn, self.backend)
        if self._scalar:
            return self._scalar(args, kwargs)
        generation = self.misses  # (compiles so far: another thread's compile changes it)
        fast = self._fast
        if fast is not None and not kwargs:
            # The common case, quickly: the variant of the last all-tensor call, whose entry
            # checks every guard (argument shapes and dtypes included).
            for a in args:
                if type(a) is not Tensor:
                    break
            else:
                result = fast.entry(args) if fast.state_ids is None or \
                    not fast.aliased(args) else ALIASED
                if type(result) is not Miss:
                    if type(result) in (EagerRun, VerifyRun):  # a new dynamic size
                        result = _dynamic().new_size(self, fast, result, args,
                                                          kwargs, args)
                        if type(result) is not Miss:
                            return result
                    else:
                        self.hits += 1
                        return result if fast.backward is None else \
                            differentiable(fast, result, args)
        positional = not kwargs and all(type(a) is Tensor for a in args)
        fps: list = []
        if positional:
            inputs: Any = args
            key = self._key(args)
        else:
            values = self._values
            flat = flatten_args(args, kwargs, typed=True)
            key, fps = arg_key(flat, values)
            inputs = [leaf for _, leaf in flat if is_input(leaf, values)]
        variant, reason = None, None
        for v in self.variants.get(key, ()):
            if v.arg_fps and any(fp != f for (_, fp), (_, f) in zip(v.arg_fps, fps)):
                if reason is None:
                    reason = "an argument that is not a tensor changed"
                continue
            result = v.entry(inputs) if not v.aliased(inputs) else ALIASED
            if type(result) is not Miss:
                variant = v
                break
            if reason is None:  # why the newest variant does not fit: the one to report
                reason = str(result)
        if variant is None:
            for dkey in self._dynamic_keys:
                if not _same_but_sizes(dkey[1:], key):
                    continue
                for v in self.variants.get(dkey, ()):
                    if v.arg_fps and any(fp != f for (_, fp), (_, f) in zip(v.arg_fps, fps)):
                        continue
                    result = v.entry(inputs) if not v.aliased(inputs) else ALIASED
                    if type(result) in (EagerRun, VerifyRun):  # a new dynamic size
                        result = _dynamic().new_size(self, v, result, args,
                                                          kwargs, inputs)
                        if type(result) is not Miss:
                            return result
                    if type(result) is not Miss:
                        variant = v
                        break
                    reason = str(result)
                if variant is not None:
                    break
        if variant is None:
            if reason is None:
                reason = ("first compiled call" if not self.variants else
                          "new argument shapes, dtypes, requires_grad, Python values or "
                          "grad mode")
            try:
                with paused_gc():
                    variant = self._compile(args, kwargs, key, fps, reason, generation)
                if variant is None:  # another thread compiled meanwhile: it may fit
                    return self(*args, **kwargs)
            except FirstStepTraced:
                # (the first step of a parameter, unfrozen now: eager creates its state, as
                # on the first call; the next call traces with it)
                return self.fn(*args, **kwargs)
            except TraceError as e:
                setting = getattr(e, "setting", None)
                if setting is not None and setting not in self._guarded_settings:
                    # an optimizer branches on this hyper-parameter (SGD's `if momentum:`):
                    # it is a guard, the other floats stay inputs
                    self._guarded_settings.add(setting)
                    self._fast = None
                    return self(*args, **kwargs)
                if not self._values:
                    raise
                # A float or array argument, or a learning rate, was read as a Python value
                # (an `if`, a `float(...)`, NumPy code): guard their values instead.
                self._values = False
                self._fast = None
                return self(*args, **kwargs)
            except Exception as e:
                if not raised_by_function(e):
                    raise
                # the function raised: eagerly it raises too, leaving eager's state (see
                # trace.raised_by_function)
                return self.fn(*args, **kwargs)
            result = variant.entry(inputs)
            if type(result) is Miss:
                if not variant.volatile:  # a guard the fresh variant fails: a bug of ours
                    raise AssertionError(
                        f"tg.compile: a new variant fails its own guard: {result}")
                result = variant.entry(inputs, False)  # this call's own trace: run it
        else:
            self.hits += 1
        self.last_variant = variant
        self._fast = variant if positional and not variant.volatile else None
        return result if variant.backward is None else \
            differentiable(variant, result, inputs)

    @staticmethod
    def _key(args: tuple) -> tuple:
        """`guards.arg_key` of a call with tensors only, all positional, spelled out."""
        return tuple([("T", a._data.shape, a._data.dtype, a.requires_grad, path)
                      for a, path in zip(args, _ARG_PATHS)]
                     if len(args) <= len(_ARG_PATHS) else
                     [("T", a._data.shape, a._data.dtype, a.requires_grad, f"arg{i}")
                      for i, a in enumerate(args)]) + (autograd._mode.enabled,)

    def _compile(self, args: tuple, kwargs: dict, key: tuple, fps: list,
                 reason: str, generation: int) -> Variant | None:
        """A new variant for this call, or None if another thread compiled one since the
        call looked (``generation``): the call looks again rather than compile a twin."""
        with self._lock:
            if self.misses != generation:
                return None
            variant = None
            found = _dynamic().dynamic_dims(self, key)
            if found is not None and not self._dynamic_keys:
                try:
                    variant = self._trace(args, kwargs, key, fps, found)
                except _dynamic().NotDynamic as e:
                    self.dynamic_notes = self.dynamic_notes[-15:] + [str(e)]
            if variant is None:
                variant = self._trace(args, kwargs, key, fps)
            self._seen = self._seen[-7:] + [key]
            # (counted once traced: a trace that raised TraceError made no variant)
            self.misses += 1
            self.miss_reasons = self.miss_reasons[-63:] + [reason]  # the latest 64
            if variant.volatile:
                return variant  # not kept: every call traces again
            if variant.dynamic is not None:
                key = ("dynamic",) + key
                self._dynamic_keys.insert(0, key)
            variant_cache.keep(self.variants, self._order, key, variant)
            self._dynamic_keys = [k for k in self._dynamic_keys if k in self.variants]
        if self.misses > variant_cache.MAX_VARIANTS and not self._warned:
            self._warned = True
            variant_cache.warn_recompiling(self.fn, self.misses, reason, _advice(reason))
        return variant

    def _trace(self, args: tuple, kwargs: dict, key: tuple, fps: list,
               dynamic: tuple | None = None) -> Variant:
        """Trace one call and build its variant, with a guard for everything it read; with
        ``dynamic`` (see `_dynamic_dims`), a dynamic variant or `dynamic.NotDynamic`."""
        from ..optim.optimizer import Optimizer

        t0 = time.perf_counter()
        roots = roots_of(self.fn, args)
        values = self._values
        groups = list({id(g): g for r in roots if isinstance(r, Optimizer)
                       for g in r.param_groups}.values()) if values else []
        settings = [(g, k) for g in groups for k, v in g.items()
                    if k not in self._guarded_settings and float_input_kind(v) is not None]
        trace_settings = settings
        epoch = tensor_mod._structure_epoch[0]
        anomaly = bool(tensor_mod._Anomaly.enabled and tensor_mod._Anomaly.here.on)
        fn_guards = function_guards(self.fn)
        # (the Python values the modules it reaches hold, a hook's closure among them: one
        # that the call changes, as a hook recording activations, is a side effect)
        module_guards = settings_of([], modules_of(roots), set())[1]
        recorder = ReadRecorder(self.fn)
        template = None
        if dynamic is not None:
            graph, capture, template, size_guard = _dynamic().traces(
                self, args, kwargs, key, dynamic, recorder, values, settings)
        else:
            with recorder:
                # (differentiable: the results that need grad get a compiled backward;
                # under no_grad, those of a function that turns grad mode on inside)
                graph, capture = run_traced(self.fn, args, kwargs,
                                            differentiable=True,
                                            grad_buffers=True, values=values,
                                            settings=settings)
        reads = [(r.name, r.getter, r.fp) for r in recorder.reads.values()] + fn_guards
        changed = [(what, fp) for what, getter, fp in reads + module_guards
                   if fingerprint(getter()) != fp]
        if tensor_mod._structure_epoch[0] != epoch:  # (`self.cache = ...` in a forward)
            changed.append(("a module attribute holding a tensor or a submodule (or an "
                            "optimizer's parameter groups)", None))
        if autograd._mode.enabled != key[-1]:  # (tg.set_grad_enabled(False), not undone)
            changed.append(("grad mode (tg.set_grad_enabled)", None))
        warn_side_effects(recorder, changed, getattr(self.fn, "__name__", "the function"))
        big = [(what, a) for what, _, fp in reads for a in big_arrays(fp)]
        if big:
            warnings.warn(
                f"tg.compile: {big[0][0]} holds a NumPy array of {big[0][1].nbytes >> 20} MiB "
                f"that the function reads from Python; every call compares its contents with "
                f"the traced call's, which takes time. Pass it as an argument, or as a tensor, "
                f"to make it an input of the program.",
                stacklevel=3)
        found: list = []
        for _, _, fp in reads:
            identities(fp, found)
        roots = one_level(roots + found)
        modules = modules_of(roots)
        inputs = {(id(d), k) for d, (k, _), _ in capture.setting_inputs}
        settings, setting_guards = settings_of(roots, modules, inputs)
        backward, n_saved = None, 0
        if template is not None:
            if changed:
                raise _dynamic().NotDynamic("the traced call changed a value it read")
            variant = _dynamic().dynamic_variant(
                graph, capture, template, size_guard, dynamic, key, fps, modules, settings,
                epoch, reads, setting_guards, anomaly, t0, self.lowering)
            variant.values, variant.trace_settings = values, trace_settings
            return variant
        if capture.n_grad_outputs:
            graph, bgraph, n_saved = split_backward(graph, capture)
            cot_shapes = [(n.shape, n.dtype) for _, n in capture.cotangents]
            backward = BackwardProgram(bgraph, cot_shapes, self.lowering, anomaly)
        graph, plan, records = optimize(graph, donations(capture), self.lowering)
        program = self.lowering.program(graph, plan, anomaly)
        variant = Variant(
            graph=graph, program=program, capture=capture,
            feeders=feeders(graph, capture),
            n_user_outputs=len(graph.outputs) - len(capture.data_writes)
            - sum(1 for _, n in capture.grad_writes if n is not None) - n_saved,
            modules=modules, training=tuple(m.training for m in modules),
            settings=settings,
            structure_epoch=epoch, guards=reads + setting_guards,
            records=records,
            backward=backward, n_saved=n_saved,
            arg_types=[k[:-1] for k in key[:-1] if k[0] in ("T", "A", "F")],  # (no path)
            arg_fps=fps,
            grad_enabled=key[-1],
            volatile=bool(changed),
            anomaly=anomaly,
        )
        variant.compile_seconds = time.perf_counter() - t0
        return variant

    # ---------------------------------------------------------------- introspection

    def cache_info(self) -> "CacheInfo":
        if self._scalar:
            return self._scalar.cache_info()
        variants = sum(len(b) for b in self.variants.values())
        v = self.last_variant
        backend = program_note(v.program, v.backward and v.backward.program,
                               self.backend) if v else ""
        if v is not None and v.dynamic is not None:
            backend = v.dynamic[1].backend_note()
        dynamic = []
        for k in self._dynamic_keys:
            for v in self.variants.get(k, ()):
                axes, program = v.dynamic
                where = ", ".join(f"argument {j} axis {ax}" for j, a in axes.items()
                                  for ax in a)
                dynamic.append(f"n = {where}; {program.guard}; {program.describe()}")
        return CacheInfo(variants, self.hits, self.misses, list(self.miss_reasons), backend,
                         dynamic, list(self.dynamic_notes))

    def source(self) -> str:
        """The generated Python source of the most recently used variant (with the C of
        its kernels, under the C backend; then the backward program's, if any)."""
        if self._scalar:
            return self._scalar.source()
        if self.last_variant is None:
            raise RuntimeError("source(): the function has not been compiled yet (call it "
                               "twice: the first call runs eagerly, the second compiles)")
        v = self.last_variant
        text = v.program.source()
        if v.backward is not None:
            text += "\n# ======== the backward program\n" + v.backward.program.source()
        return text

    @property
    def graph(self) -> Graph:
        if self._scalar:
            return self._scalar.graph
        if self.last_variant is None:
            raise RuntimeError("graph: the function has not been compiled yet")
        return self.last_variant.graph

    def __getattr__(self, name: str) -> Any:
        # A compiled Module still looks like the Module: parameters(), train(), state_dict().
        fn = self.__dict__.get("fn")
        if fn is None:
            raise AttributeError(name)
        attr = getattr(fn, name)
        if getattr(attr, "__self__", None) is fn and callable(attr):
            # A method that returns the module (eval(), to(), requires_grad_(), apply())
            # returns the compiled module, as torch.compile's: `model = tg.compile(m).eval()`
            # stays compiled.
            @functools.wraps(attr)
            def method(*args: Any, **kwargs: Any) -> Any:
                out = attr(*args, **kwargs)
                return self if out is fn else out

            return method
        return attr

    def __repr__(self) -> str:
        return f"compiled({self.fn!r})"

    def __deepcopy__(self, memo: dict) -> "CompiledFunction":
        """A compiled copy of a deep copy of the function (``copy.deepcopy(tg.compile(model))``
        copies the model, as torch's does): it compiles afresh, as the programs and guards
        refer to the original's tensors."""
        import copy

        return CompiledFunction(copy.deepcopy(self.fn, memo), self.backend,
                                copy.deepcopy(self.dynamic, memo))

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return self
        return functools.partial(self, obj)


@dataclass
class CacheInfo:
    variants: int
    hits: int
    misses: int
    reasons: list
    backend: str = ""  # which backend ran the last variant, and why
    dynamic: list = field(default_factory=list)  # per dynamic variant: its axes and range
    not_dynamic: list = field(default_factory=list)  # why a variant could not be dynamic

    def __str__(self) -> str:
        lines = [f"{self.variants} variant(s), {self.hits} hit(s), {self.misses} miss(es)"]
        lines += [f"  compiled because: {r}" for r in self.reasons]
        lines += [f"  dynamic: {d}" for d in self.dynamic]
        lines += [f"  compiled statically because: {d}" for d in self.not_dynamic]
        return "\n".join(lines)


def compile(fn: Callable | None = None, *, backend: str = "auto", dynamic: Any = None
            ) -> Any:
    """Compile a function or an ``nn.Module``: the first call runs eagerly, the second
    traces the graph, optimizes it and runs the generated program; later calls run the
    program while the guards hold.

    >>> @tg.compile
    ... def step(x, y):
    ...     opt.zero_grad(); loss = F.cross_entropy(model(x), y)
    ...     loss.backward(); opt.step(); return loss

    ``dynamic``: None (the default) compiles a dynamic variant, one that serves every size
    of a dimension, once a tensor argument's dimension changes size between calls (the
    sequence length while sampling, the last smaller batch); True counts the eager first
    call's sizes too (a change after it compiles dynamically at once); a dict
    ``{argument index: axis or axes}`` names the dynamic axes from the first trace; False
    never compiles dynamically. See docs/compiler.md, "Dynamic shapes".
    """
    if fn is None:
        return lambda f: compile(f, backend=backend, dynamic=dynamic)
    return CompiledFunction(fn, backend, dynamic)


__all__ = ["CompiledFunction", "Explanation", "TensorSpec", "compile", "explain", "optimize"]
