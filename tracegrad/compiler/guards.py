"""What a traced call read from Python, and how a later call checks it still holds.

A compiled program is only the tensor arithmetic of one call. Everything else the Python
code read while it was traced (a global number, a closure cell, a dict entry, an attribute
of a plain object, a helper function) was baked into that program. So while tracing, a
`ReadRecorder` sees every Python frame the user's code runs (``sys.setprofile``: the
interpreter's own hook, in every Python version, no bytecode reading) and records the
globals each frame's code can name, and the Python-level side effects it makes (``print``,
``np.random``). Each value read becomes a guard: its `fingerprint` (its value, or for a
container or a plain object the fingerprints of its contents; tensors, arrays of a program
input, modules and functions by identity, held alive so an address is never reused) is
compared on every later call, and a difference recompiles, with the name in the reason.
"""

from __future__ import annotations

import collections.abc
import functools
import os
import random
import sys
import sysconfig
import types
import warnings
import weakref
from collections import OrderedDict
from typing import Any, Callable

import numpy as np

from .. import autograd
from ..tensor import Tensor

_PLAIN = (int, bool, str, bytes, type(None), complex, range)
_MAX_DEPTH = 16  # deeper than this, a container is guarded by identity
_MAX_ITEMS = 10_000  # a larger container is compared item by item in C (see `_Items`)
BIG_ARRAY = 1 << 20  # bytes: comparing a larger NumPy array on every call is worth a warning

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_NUMPY_DIR = os.path.dirname(os.path.abspath(np.__file__)) + os.sep
_STDLIB_DIRS = tuple({os.path.abspath(p) + os.sep
                      for p in (sysconfig.get_paths().get("stdlib"),
                                sysconfig.get_paths().get("platstdlib")) if p})
_SITE = ("site-packages", "dist-packages")


def _is_library_file(filename: str) -> bool:
    """tracegrad's own code, NumPy's and the standard library's: frames whose globals are
    not the user's state (tracegrad's modules and optimizers are guarded by their own
    rules, see `tg.compile`)."""
    if filename.startswith("<frozen "):  # the import system
        return True
    path = os.path.abspath(filename)
    if path.startswith(_PACKAGE_DIR) or path.startswith(_NUMPY_DIR):
        return True
    return any(path.startswith(d) for d in _STDLIB_DIRS) and \
        not any(s in path for s in _SITE)


class Ident:
    """A fingerprint by identity: equal only to the same object. It holds the object, so
    its address cannot be given to a new object while the guard exists."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any):
        self.obj = obj

    def __eq__(self, other: Any) -> bool:
        return type(other) is Ident and other.obj is self.obj

    def __ne__(self, other: Any) -> bool:
        return not self.__eq__(other)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<{type(self.obj).__name__} at {id(self.obj):#x}>"


_KINDS: dict[type, str] = {}  # type -> how `fingerprint` treats its values


def _kind(t: type) -> str:
    kind = _KINDS.get(t)
    if kind is None:
        kind = _KINDS[t] = _classify(t)
    return kind


def _classify(t: type) -> str:
    """By identity: objects whose contents are either inputs of the program (tensors) or
    guarded by tg.compile's own rules (modules, optimizers; tracegrad's other objects, as a
    learning-rate scheduler, act on the program only through those), code and namespaces."""
    from ..nn.module import Module
    from ..optim.optimizer import Optimizer
    from ..scalar import Value
    from ..tensor import Tensor

    if t in _PLAIN:
        return "plain"
    if t is float:
        return "float"
    if t is np.ndarray:
        return "array"
    if issubclass(t, np.generic):
        return "number"
    if issubclass(t, (np.random.Generator, np.random.RandomState)):
        return "rng"
    if issubclass(t, (Tensor, Module, Optimizer, types.BuiltinFunctionType,
                      types.BuiltinMethodType, np.ufunc, np.dtype)) or \
            str(getattr(t, "__module__", "")).startswith("tracegrad."):
        return "identity"
    if issubclass(t, Value):  # a user's subclass: its data and grad are program inputs
        return "value"
    if issubclass(t, type):
        return "class"
    if issubclass(t, types.ModuleType):
        return "module"
    if issubclass(t, (list, tuple, collections.deque, collections.abc.Sequence)):
        return "sequence"  # (a deque, an array.array, a bytearray, a memoryview too)
    if issubclass(t, dict):
        return "dict"
    if issubclass(t, (set, frozenset)):
        return "set"
    if issubclass(t, types.FunctionType):
        return "function"
    if issubclass(t, types.MethodType):
        return "method"
    if issubclass(t, functools.partial):
        return "partial"
    if hasattr(t, "__next__"):  # an iterator, a generator, an open file: its position
        return "iterator"       # cannot be read
    return "object"


def fingerprint(v: Any, depth: int = 0, path: frozenset = frozenset()) -> Any:
    """A comparable summary of everything about ``v`` a traced call could have read."""
    t = type(v)
    kind = _KINDS.get(t) or _kind(t)
    if kind == "plain":
        return (t, v)
    if kind == "float":
        return (float, v.hex())  # exact: -0.0 and nan compare as themselves
    if kind == "identity" or id(v) in path or depth > _MAX_DEPTH:
        return Ident(v)
    if kind == "array":  # read as data by NumPy code: its contents
        return ("array", Ident(v), v.shape, v.dtype.str, v.tobytes())
    if kind in ("class", "module"):  # the user's own: their numbers, strings, containers
        return _namespace(v, kind, depth, path)
    if kind == "number":
        return (t, v.item())
    if kind == "rng":
        return ("rng", Ident(v), _rng_state(v))
    if kind == "iterator":  # its position is unknown: never the same (every call traces)
        return ("iterator", Ident(v), object())
    inner = path | {id(v)}
    if kind == "partial":
        return ("partial", fingerprint(v.func, depth + 1, inner),
                fingerprint(v.args, depth + 1, inner), fingerprint(v.keywords, depth + 1, inner))
    if kind == "sequence":
        if len(v) > _MAX_ITEMS:
            return ("big", Ident(v), _Items(list(v)))
        try:
            return (t, tuple([fingerprint(x, depth + 1, inner) for x in v]))
        except (TypeError, NotImplementedError):  # (a memoryview of several dimensions)
            return ("unreadable", Ident(v), object())  # never the same: every call traces
    if kind == "dict":
        if len(v) > _MAX_ITEMS:
            return ("big", Ident(v), _Items(list(v.items())))
        return (t, tuple([(k, fingerprint(x, depth + 1, inner)) for k, x in v.items()]))
    if kind == "set":
        return (t, frozenset(x if type(x) in _PLAIN else Ident(x) for x in v))
    if kind == "function":
        cells = []
        for c in v.__closure__ or ():
            try:
                cells.append(fingerprint(c.cell_contents, depth + 1, inner))
            except ValueError:  # an empty cell
                cells.append(None)
        return ("fn", Ident(v), Ident(v.__code__), tuple(cells),
                fingerprint(v.__defaults__, depth + 1, inner),
                fingerprint(v.__kwdefaults__, depth + 1, inner))
    if kind == "method":
        return ("method", fingerprint(v.__func__, depth + 1, inner),
                fingerprint(v.__self__, depth + 1, inner))
    d = getattr(v, "__dict__", None)
    slots = _slot_names(t)
    if kind == "value":  # what the subclass adds (not .data, .grad, .label, ...: Value's)
        from ..scalar import Value

        own = tuple(n for n in slots if n not in Value.__slots__)
        return ("value", Ident(v), fingerprint(d, depth + 1, inner) if isinstance(d, dict)
                else None, tuple([fingerprint(getattr(v, n, _UNSET), depth + 1, inner)
                                  for n in own]), fingerprint(t, depth + 1, inner))
    if isinstance(d, dict) or slots:  # a plain object, callable ones too (a loss's weight),
        # with its class's data (``self.k`` finds ``C.k`` when the object has none)
        return ("obj", Ident(v), fingerprint(d, depth + 1, inner) if isinstance(d, dict)
                else None, tuple([fingerprint(getattr(v, n, _UNSET), depth + 1, inner)
                                  for n in slots]), fingerprint(t, depth + 1, inner))
    return Ident(v)


class _Items:
    """A large container's items, compared with ``==`` in C (a list's own comparison: the
    same object is equal without a call) rather than fingerprinted one by one in Python.
    An item whose ``==`` cannot say (a NumPy array replaced by another) counts as changed."""

    __slots__ = ("items",)

    def __init__(self, items: list):
        self.items = items

    def __eq__(self, other: Any) -> bool:
        try:
            return type(other) is _Items and bool(self.items == other.items)
        except Exception:
            return False

    def __hash__(self) -> int:
        return len(self.items)


_UNSET = object()  # an empty slot's stand-in
_SLOTS: dict[type, tuple] = {}


def _slot_names(t: type) -> tuple:
    """The attribute names of the ``__slots__`` of ``t`` and its bases (private ones
    mangled as Python stores them)."""
    names = _SLOTS.get(t)
    if names is None:
        found = []
        for c in t.__mro__:
            own = c.__dict__.get("__slots__", ())
            for n in (own,) if isinstance(own, str) else own:
                if n in ("__dict__", "__weakref__"):
                    continue
                if n.startswith("__") and not n.endswith("__"):
                    n = f"_{c.__name__.lstrip('_')}{n}"
                found.append(n)
        names = _SLOTS[t] = tuple(found)
    return names


def _users(v: Any, kind: str) -> bool:
    """Whether a class or module is the user's: not the standard library's, NumPy's,
    tracegrad's or an installed package's."""
    name = getattr(v, "__module__" if kind == "class" else "__name__", "")
    if name == "__main__":  # a script's, or a notebook's (which has no file)
        return True
    if kind == "class":
        owner = sys.modules.get(name, None)
        filename = getattr(owner, "__file__", None) or ""
    else:
        filename = getattr(v, "__file__", None) or ""
    return bool(filename) and not _is_library_file(filename) and \
        not any(x in filename for x in _SITE)


def _namespace(v: Any, kind: str, depth: int, path: frozenset) -> Any:
    """A class's or module's identity and, when it is the user's, the data it holds:
    ``Config.scale``, ``config.SCALE``; for a class, its user base classes' too (``C().k``
    finds ``Base.k``). Functions and classes in it are left out: a function the code calls
    is guarded where it is read, and its frames record what they read (their globals, and
    their closure cells, see `ReadRecorder`)."""
    spaces = [c for c in v.__mro__ if _users(c, kind)] if kind == "class" else \
        [v] if _users(v, kind) else []
    if not spaces:
        return Ident(v)
    inner = path | {id(v)}
    data = [{k: x for k, x in vars(c).items()
             if not k.startswith("__") and _kind(type(x)) not in
             ("function", "class", "module", "identity", "method", "object")} for c in spaces]
    return (kind, Ident(v), fingerprint(data, depth + 1, inner))


def big_arrays(fp: Any) -> list:
    """The NumPy arrays of more than BIG_ARRAY bytes that a fingerprint holds (every call
    compares their contents)."""
    out, stack = [], [fp]
    while stack:
        x = stack.pop()
        if type(x) is tuple:
            if x[:1] == ("array",) and len(x[4]) > BIG_ARRAY:
                out.append(x[1].obj)
            else:
                stack.extend(x)
    return out


def _rng_state(rng: Any) -> Any:
    """A NumPy random generator's state, which every draw advances (its arrays as bytes:
    the repr of MT19937's 624 words took milliseconds, twice per trace)."""
    bits = rng.bit_generator if isinstance(rng, np.random.Generator) else rng._bit_generator
    return _state_key(bits.state)


def _state_key(x: Any) -> Any:
    if isinstance(x, dict):
        return tuple((k, _state_key(v)) for k, v in x.items())
    if isinstance(x, np.ndarray):
        return (x.dtype.str, x.shape, x.tobytes())
    return x


class Read:
    """One value a trace read: how to read it again, and what it was."""

    __slots__ = ("name", "getter", "fp", "value")

    def __init__(self, name: str, getter: Callable[[], Any], value: Any):
        self.name, self.getter, self.value = name, getter, value
        self.fp = fingerprint(value)


_MISSING = object()
# code -> the global names it may read (its source is parsed once; traces take turns, so one
# thread at a time writes here)
_GLOBAL_NAMES: "weakref.WeakKeyDictionary[Any, tuple]" = weakref.WeakKeyDictionary()


def global_names(code: Any, module_globals: dict | None = None) -> tuple:
    """The names a function's code may read as globals. ``co_names`` lists them, but also
    every attribute name (``opt.step()`` lists ``step``, and a global ``step`` counting the
    loop outside is not read): the function's source (``ast``, not bytecode) tells which
    are bare names. Without source, all of ``co_names``: more guards, never fewer.
    ``module_globals`` (a frame's globals) helps find the source of a module loaded from
    an archive."""
    import ast
    import textwrap

    names = code.co_names
    try:
        lines = _source_block(code, module_globals)
        tree = ast.parse(textwrap.dedent("".join(lines)))
    except (OSError, TypeError, SyntaxError, IndentationError, IndexError):
        return names
    bare = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    return tuple(n for n in names if n in bare)


def _source_block(code: Any, module_globals: dict | None) -> list[str]:
    """The source lines of ``code``'s definition: the block from its first line, as
    ``inspect.getsourcelines`` gives it from Python 3.13 (a comprehension's first line;
    one cut short does not parse, and then every name counts), but without
    `inspect.getmodule`'s search of every loaded module for the file's (a tenth of a second
    the first time in a process): linecache reads the file."""
    import inspect
    import linecache

    lines = linecache.getlines(code.co_filename, module_globals)
    if not lines:
        raise OSError(f"no source for {code.co_filename}")
    return inspect.getblock(lines[code.co_firstlineno - 1:])


def _global_getter(g: dict, name: str) -> Callable[[], Any]:
    return lambda: g.get(name, _MISSING)


class ReadRecorder:
    """Installed with ``with`` around one traced call (in the tracing thread only): records
    the globals every user frame can name, and Python side effects, for `tg.compile`."""

    def __init__(self, entry: Callable | None = None) -> None:
        self.reads: dict[tuple, Read] = {}
        self._codes: dict[Any, bool] = {}  # code -> whether its frames are the user's
        # codes whose closure cells are guarded already (the compiled function's own, see
        # `function_guards`) or were looked for in this trace
        self._cells_done: set = {id(c) for c in _entry_codes(entry)}
        self.printed: list[str] = []  # lines where print() ran
        self.random: list[str] = []  # lines where np.random drew numbers
        self.mutations: dict[int, str] = {}  # id(list, dict or set) -> where it was changed
        self.first_line: dict[tuple, str] = {}  # read -> the first line of the frame reading it

    def __enter__(self) -> "ReadRecorder":
        # (tg.compile pauses garbage collection meanwhile, see trace.paused_gc: its callbacks
        # and finalizers would run other code in the middle of the user's.)
        self.watch_random()
        self._saved = sys.getprofile()
        sys.setprofile(self._hook)
        return self

    def __exit__(self, *exc: Any) -> None:
        sys.setprofile(self._saved)
        self.check_random()

    def watch_random(self) -> None:
        """Note the global random generators' states (`check_random` compares)."""
        self._np_random = _rng_state(np.random.mtrand._rand)  # np.random.rand & co.
        self._py_random = random.getstate()  # random.random & co.

    def check_random(self) -> None:
        if _rng_state(np.random.mtrand._rand) != self._np_random:
            self.random.append("np.random (the global NumPy generator)")
        if random.getstate() != self._py_random:
            self.random.append("Python's random module")

    def note_print(self, frame: Any) -> None:
        """print() was called from ``frame`` (noted if the frame is the user's)."""
        if self._user(frame.f_code, frame.f_globals):
            self.printed.append(_line(frame))

    def _user(self, code: Any, g: dict) -> bool:
        """Whether frames of ``code`` (with globals ``g``) are the user's. Code made by
        ``exec`` (a dataclass's ``__init__``, a namedtuple's ``__new__``) has no file of
        its own: the module it was made in decides."""
        user = self._codes.get(code)
        if user is None:
            name = code.co_filename
            if name.startswith("<"):
                name = g.get("__file__") or name
            user = self._codes[code] = not _is_library_file(name)
        return user

    def _hook(self, frame: Any, event: str, arg: Any) -> None:
        if event == "call":
            code = frame.f_code
            if not self._user(code, frame.f_globals):
                return
            g = frame.f_globals
            gid = id(g)
            names = _GLOBAL_NAMES.get(code)
            if names is None:
                names = _GLOBAL_NAMES[code] = global_names(code, g)
            for name in names:
                if (gid, name) not in self.reads and name in g:
                    module = g.get("__name__", "?")
                    self.reads[gid, name] = Read(f"global {name!r} (module {module})",
                                                 _global_getter(g, name), g[name])
                    self.first_line[gid, name] = \
                        f"{code.co_filename}:{code.co_firstlineno} ({code.co_name})"
            if code.co_freevars and id(code) not in self._cells_done:
                self._cells_done.add(id(code))
                self._closure_cells(code)
        elif event == "c_call":
            self._c_call(frame, arg)

    def _closure_cells(self, code: Any) -> None:
        """Record the closure cells of the functions running ``code`` (a helper made by a
        factory, a method of a class defined in a function): a frame shows the values of its
        free variables but not the cells that hold them, so the functions are found by their
        code (once per code and trace: a walk of the collector's objects, about a
        millisecond per hundred thousand). Functions made by code that ran in this trace
        (a lambda, a nested ``def`` or a comprehension inside the traced code) are skipped:
        their cells hold the trace's own values, made afresh by every call, and the other
        functions of that code are other calls' leftovers."""
        if set(code.co_freevars) <= {"__class__"}:  # (super(): the class, fixed)
            return
        for ran, user in self._codes.items():
            if user and any(c is code for c in ran.co_consts):
                return
        import gc

        for fn in gc.get_referrers(code):
            if type(fn) is not types.FunctionType or fn.__code__ is not code:
                continue
            for var, cell in zip(code.co_freevars, fn.__closure__ or ()):
                if var != "__class__" and ("cell", id(cell)) not in self.reads:
                    getter = _cell_getter(cell)
                    self.reads["cell", id(cell)] = Read(
                        f"closure variable {var!r} of {fn.__qualname__}", getter, getter())
                    self.first_line["cell", id(cell)] = \
                        f"{code.co_filename}:{code.co_firstlineno} ({code.co_name})"

    def _c_call(self, frame: Any, fn: Any) -> None:
        if not self._user(frame.f_code, frame.f_globals):
            return
        if fn is print:
            self.note_print(frame)
        elif type(getattr(fn, "__self__", None)) in (list, dict, set) and \
                fn.__name__ in _MUTATING:
            self.mutations.setdefault(id(fn.__self__), _line(frame))


_MUTATING = {"append", "extend", "insert", "pop", "remove", "clear", "update", "setdefault",
             "add", "discard", "popitem", "sort", "reverse", "__setitem__", "__delitem__"}


def where_changed(recorder: ReadRecorder, changed: list[tuple]) -> list[str]:
    """For each changed read: where the traced call changed it (the line of a list, dict or
    set method call), or the function that read it (a rebinding has no call to see)."""
    out = []
    for what, _ in changed:
        line = None
        for key, read in recorder.reads.items():
            if read.name == what:
                value = read.getter()
                line = recorder.mutations.get(id(value)) or \
                    f"a function defined at {recorder.first_line.get(key, '?')}"
        out.append(f"{what} (at {line})" if line else what)
    return out


def _line(frame: Any) -> str:
    import linecache

    src = linecache.getline(frame.f_code.co_filename, frame.f_lineno).strip()
    return f"{frame.f_code.co_filename}:{frame.f_lineno}: {src}"


def warn_side_effects(recorder: ReadRecorder, changed: list[tuple], fn_name: str) -> None:
    """What the traced call did in Python that a compiled call will not do: drawing NumPy
    random numbers raises (the program would reuse them), the rest warns."""
    from ..errors import TraceError

    draws = recorder.random + [what for what, fp in changed
                               if type(fp) is tuple and fp[:1] == ("rng",)]
    if draws:
        raise TraceError(
            f"tg.compile: {fn_name} draws random numbers from {draws[0]}\n"
            f"They are drawn once, while tracing, and the compiled program would reuse them "
            f"on every call. Use tg.rand / tg.randn / tg.randint (drawn afresh by the "
            f"program each call), or draw them outside and pass them in as an argument."
        )
    for line in recorder.printed[:3]:
        warnings.warn(f"tg.compile: {fn_name} calls print() at {line}; it runs once, while "
                      f"tracing, not on every compiled call", stacklevel=4)
    if changed:
        warnings.warn(
            f"tg.compile: {fn_name} changes {'; '.join(where_changed(recorder, changed[:3]))} "
            f"while it runs. A compiled program would run that Python code once, while "
            f"tracing, so instead every call with the changed value traces again (eager's "
            f"result, at tracing's speed): keep such state outside the compiled function",
            stacklevel=4)


# ---------------------------------------------------------------- what a function reaches


def roots_of(fn: Callable, args: tuple) -> list[Any]:
    """The objects a function can reach without being passed them, found before tracing:
    itself (a Module), its bound object, closure cells, and the globals its code may name.
    (What its helpers read is found while tracing, see guards.ReadRecorder.)"""
    roots: list[Any] = [fn, *args]
    target = fn.forward if hasattr(fn, "forward") and hasattr(fn, "training") else fn
    target = getattr(target, "__func__", target)
    if hasattr(fn, "__self__"):
        roots.append(fn.__self__)
    roots.extend(_named(target))
    return one_level(roots)


def one_level(roots: list[Any]) -> list[Any]:
    """``roots`` and the attributes of the plain objects among them (a trainer holding
    ``self.model`` and ``self.opt``)."""
    out = list(roots)
    for r in roots:
        if hasattr(r, "__dict__") and not isinstance(r, type) and \
                type(r).__module__.split(".")[0] != "tracegrad":
            out.extend(vars(r).values())
    return out


def _named(target: Callable) -> list[Any]:
    """The closure cells of a function and the globals its code may name (``co_names``
    holds attribute names too: a superset)."""
    out = []
    for cell in getattr(target, "__closure__", None) or ():
        try:
            out.append(cell.cell_contents)
        except ValueError:  # an empty cell
            continue
    code = getattr(target, "__code__", None)
    if code is not None:
        g = getattr(target, "__globals__", {})
        out += [g[n] for n in code.co_names if n in g]
    return out


def function_guards(fn: Callable) -> list:
    """(what, getter, fingerprint) for what the compiled function itself holds: its closure
    cells and default arguments, and for a method, its object's attributes."""
    from ..nn.module import Module

    if isinstance(fn, Module):
        return []  # its settings and structure are guarded as every module's
    if isinstance(fn, functools.partial):  # its arguments, and what its function holds
        return [(f"the arguments of partial({getattr(fn.func, '__name__', 'f')})",
                 lambda: (fn.args, fn.keywords), fingerprint((fn.args, fn.keywords)))] + \
            function_guards(fn.func)
    out = []
    owner = getattr(fn, "__self__", None)
    if owner is None and not isinstance(fn, (types.FunctionType, types.BuiltinFunctionType)):
        owner = fn  # an object with __call__: its attributes, as a method's object's
    if owner is not None and isinstance(getattr(owner, "__dict__", None), dict) and \
            not isinstance(owner, Module):
        d = vars(owner)
        out += [(f"an attribute of a {type(owner).__name__} ({k!r})", _item_getter(d, k),
                 fingerprint(v)) for k, v in d.items()]
        out.append((f"the class attributes of {type(owner).__name__}", _type_getter(owner),
                    fingerprint(type(owner))))
    target = getattr(fn, "__func__", fn)
    name = getattr(target, "__name__", "the function")
    code = getattr(target, "__code__", None)
    for var, cell in zip(code.co_freevars if code else (), getattr(target, "__closure__", None)
                         or ()):
        out.append((f"closure variable {var!r} of {name}", _cell_getter(cell),
                    fingerprint(_cell_getter(cell)())))
    if getattr(target, "__defaults__", None) or getattr(target, "__kwdefaults__", None):
        out.append((f"the default arguments of {name}",
                    lambda: (target.__defaults__, target.__kwdefaults__),
                    fingerprint((target.__defaults__, target.__kwdefaults__))))
    return out


_EMPTY = object()


def _entry_codes(fn: Any) -> list:
    """The code objects of a compiled function (its closure is guarded by
    `function_guards`)."""
    out = []
    while isinstance(fn, functools.partial):
        fn = fn.func
    call = next((c.__dict__["__call__"] for c in type(fn).__mro__ if "__call__" in c.__dict__),
                None)  # (an object with __call__: its method's code)
    for f in (fn, call, getattr(fn, "forward", None)):
        code = getattr(getattr(f, "__func__", f), "__code__", None)
        if code is not None:
            out.append(code)
    return out


def _type_getter(obj: Any) -> Callable[[], Any]:
    return lambda: type(obj)


def _cell_getter(cell: Any) -> Callable[[], Any]:
    def get() -> Any:
        try:
            return cell.cell_contents
        except ValueError:  # an empty cell
            return _EMPTY
    return get


def identities(fp: Any, out: list) -> list:
    """Every object a fingerprint holds by identity (the modules and optimizers in it)."""
    stack = [fp]
    while stack:
        x = stack.pop()
        if type(x) is Ident:
            out.append(x.obj)
        elif type(x) is tuple:
            stack.extend(x)
    return out


def modules_of(roots: list[Any]) -> list[Any]:
    from ..nn.module import Module

    seen, out = set(), []
    for r in roots:
        if isinstance(r, Module):
            for m in r.modules():
                if id(m) not in seen:
                    seen.add(id(m))
                    out.append(m)
    return out


_SETTING = (int, float, bool, str, type(None))  # kept as settings, by value
# (The hooks' flags change only with the hook dicts, which are guarded: see nn/module.py.)
_MODULE_OWN = {"training", "_parameters", "_buffers", "_modules", "_non_persistent",
               "_forward_pre_hooks_with_kwargs", "_forward_hooks_with_kwargs",
               "_forward_hooks_always_called"}


def _by_value(v: Any) -> bool:
    """Whether a module's attribute is a setting, compared by value on every call: a number,
    a flag, a string, or an empty dict (a module's hooks, nearly always none: one ``==``
    each, where a fingerprint would cost a call)."""
    return isinstance(v, _SETTING) or (type(v) in (dict, OrderedDict) and not v)


def settings_of(roots: list[Any], modules: list[Any], inputs: set) -> tuple[list, list]:
    """Python values a traced step reads from modules and optimizers: their numbers and
    flags (``self.scale``, momentum), as (what, a dict, its keys, their values then), one
    tuple comparison per dict on every call; and their containers (``self.cfg["k"]``), as
    fingerprint guards. ``inputs`` holds (id(dict), key) of values that are program inputs
    (an optimizer's float lr): only their type is checked."""
    from ..optim.optimizer import Optimizer

    def entry(what: str, d: dict, skip: Any = ()) -> tuple | None:
        keys = tuple(k for k, v in d.items() if _by_value(v) and k not in skip
                     and (id(d), k) not in inputs)
        values = tuple(type(d[k])() if isinstance(d[k], dict) else d[k] for k in keys)
        return (what, d, keys, values) if keys else None

    out = [entry(f"a setting of {type(m).__name__}", vars(m), _MODULE_OWN) for m in modules]
    guards = [(f"attribute {k!r} of {type(m).__name__}", _item_getter(vars(m), k),
               fingerprint(v))
              for m in modules for k, v in vars(m).items()
              if k not in _MODULE_OWN and not _by_value(v)]
    classes = {id(type(m)): m for m in modules}.values()  # (``scale = 2.0`` in the class)
    guards += [(f"the class attributes of {type(m).__name__}", _type_getter(m),
                fingerprint(type(m))) for m in classes
               if type(fingerprint(type(m))) is not Ident]
    seen = set()
    for r in roots:
        if id(r) in seen or not isinstance(r, Optimizer):
            continue
        seen.add(id(r))
        for g in r.param_groups:
            out.append(entry(f"a hyper-parameter of {type(r).__name__} (momentum, ...)", g,
                             ("params",)))
            guards += [(f"hyper-parameter {k!r} of {type(r).__name__}", _item_getter(g, k),
                        fingerprint(v)) for k, v in g.items()
                       if k != "params" and not isinstance(v, _SETTING)
                       and (id(g), k) not in inputs]
            guards += [(f"the type of {type(r).__name__}'s {k!r}", _kind_getter(g, k),
                        fingerprint(float_input_kind(v))) for k, v in g.items()
                       if (id(g), k) in inputs]
    return [e for e in out if e is not None], guards


def float_input_kind(v: Any) -> Any:
    """How a hyper-parameter can be a program input: ``float``, ``("tuple", n)`` for a tuple
    of n floats (Adam's betas), else None (it is a guard)."""
    if type(v) is float:
        return float
    if type(v) is tuple and v and all(type(x) is float for x in v):
        return ("tuple", len(v))
    return None


def _item_getter(d: dict, k: Any) -> Callable[[], Any]:
    return lambda: d.get(k)


def _kind_getter(d: dict, k: Any) -> Callable[[], Any]:
    return lambda: float_input_kind(d.get(k))


def arg_key(flat: list[tuple[str, Any]], values: bool) -> tuple[tuple, list]:
    """The cache key of a call's arguments, and the fingerprints of those that are neither
    inputs nor plain values (checked one by one: they need not be hashable). Each leaf's
    entry ends with its path, so calls that hold the same leaves in another structure
    (``f(x, 3.0)`` and ``f(x, shift=3.0)``, a list and a tuple) never share a variant."""
    key, fps = [], []
    for i, (path, leaf) in enumerate(flat):
        t = type(leaf)
        if isinstance(leaf, Tensor):
            key.append(("T", leaf._data.shape, leaf._data.dtype, leaf.requires_grad, path))
        elif values and t is float:
            key.append(("F", path))
        elif values and t is np.ndarray:
            key.append(("A", leaf.shape, leaf.dtype, path))
        elif t in _SETTING:
            key.append(("v", t.__name__, fingerprint(leaf), path))
        else:
            key.append(("o", t.__name__, path))
            fps.append((i, fingerprint(leaf)))
    key.append(autograd.is_grad_enabled())
    return tuple(key), fps
