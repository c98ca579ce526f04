"""A frame-entry hook written in C, for `values_api.CodeReads` before Python 3.12.

`CodeReads` must see every Python code object that starts running while a Value program is
traced (their globals become guards). From 3.12 ``sys.monitoring`` reports each code object
once. Before 3.12 the only hook that sees every frame is the profile function, which runs on
every call and return: micrograd's moons step makes about 600,000 calls while traced, and a
Python profile function (``sys.setprofile``) costs about a microsecond each, more than the
trace itself. The profile function here is C (``PyEval_SetProfile``, the same hook one level
down: no bytecode is read, only the interpreter's documented C API): it looks the starting
frame's code object up in a table of the ones seen in this trace, and calls the Python
callback only for a new one (a few dozen per trace).

It is compiled once with the C toolchain (backends/toolchain.py) and kept in the disk cache,
keyed by its source and this Python's version; without a compiler `start` returns False and
the caller uses ``sys.setprofile`` (the same guards, slower).

>>> seen = []
>>> if start(seen.append):
...     (lambda: None)()
...     stop()
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import sys
import threading
from pathlib import Path
from typing import Any, Callable

# (Written without Python.h, which the toolchain's flags do not point at: the few functions
# used are exported by the interpreter, the profile function's signature is Py_tracefunc's,
# and PyTrace_CALL is 0 in every version.)
SOURCE = r"""
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

typedef struct _object PyObject;
typedef int (*tracefunc)(PyObject *, void *, int, PyObject *);
extern void PyEval_SetProfile(tracefunc, PyObject *);
extern PyObject *PyFrame_GetCode(void *);
extern PyObject *PyObject_CallFunctionObjArgs(PyObject *, ...);
extern void Py_IncRef(PyObject *);
extern void Py_DecRef(PyObject *);

/* the code objects seen in this trace (each held: its address is not reused meanwhile),
   an open-addressing table of pointers */
static PyObject **table = NULL;
static size_t capacity = 0, used = 0;

static size_t slot_of(PyObject *code, size_t cap) {
    size_t h = (size_t)(((uintptr_t)code >> 4) * (uintptr_t)11400714819323198485ull);
    size_t i = h & (cap - 1);
    while (table[i] != NULL && table[i] != code) i = (i + 1) & (cap - 1);
    return i;
}

static int grow(void) {
    size_t cap = capacity ? 2 * capacity : 1024, i;
    PyObject **old = table, **fresh = calloc(cap, sizeof(PyObject *));
    if (fresh == NULL) return -1;
    table = fresh;
    for (i = 0; i < capacity; i++)
        if (old[i] != NULL) table[slot_of(old[i], cap)] = old[i];
    free(old);
    capacity = cap;
    return 0;
}

/* 1: a new code object (now in the table), 0: seen before, -1: out of memory */
static int add(PyObject *code) {
    size_t i;
    if (2 * (used + 1) > capacity && grow() < 0) return -1;
    i = slot_of(code, capacity);
    if (table[i] == code) return 0;
    Py_IncRef(code);
    table[i] = code;
    used++;
    return 1;
}

static int profile(PyObject *callback, void *frame, int what, PyObject *arg) {
    PyObject *code, *result;
    int fresh;
    (void)arg;
    if (what != 0) return 0; /* PyTrace_CALL: a frame starts (or a generator resumes) */
    code = PyFrame_GetCode(frame);
    fresh = add(code);
    Py_DecRef(code);
    if (fresh <= 0) return fresh;
    result = PyObject_CallFunctionObjArgs(callback, (PyObject *)frame, NULL);
    if (result == NULL) { /* the error goes to the frame; the hook goes, as sys.setprofile's */
        PyEval_SetProfile(NULL, NULL);
        return -1;
    }
    Py_DecRef(result);
    return 0;
}

void tracegrad_hook_start(PyObject *callback) { PyEval_SetProfile(profile, callback); }

void tracegrad_hook_pause(void) { PyEval_SetProfile(NULL, NULL); }

static void forget(void) {
    size_t i;
    for (i = 0; i < capacity; i++)
        if (table[i] != NULL) { Py_DecRef(table[i]); table[i] = NULL; }
    used = 0;
}

void tracegrad_hook_stop(void) {
    PyEval_SetProfile(NULL, NULL);
    forget();
}

/* Python 3.11: the frame evaluation function (PEP 523) instead of a profile function, which
   on 3.11 would turn off the specializing interpreter for as long as it is installed. It
   sees every frame the interpreter evaluates (3.11 inlines no Python call while one is
   set), reads the code object and globals from the frame's first fields (their order in
   3.11's _PyInterpreterFrame: func, globals, builtins, locals, code), checking each is of
   the right type, and calls back (code, globals) for a new code object. */
typedef PyObject *(*evalfunc)(void *, void *, int);
extern void *PyInterpreterState_Get(void);
extern void *PyThreadState_Get(void);
extern evalfunc _PyInterpreterState_GetEvalFrameFunc(void *);
extern void _PyInterpreterState_SetEvalFrameFunc(void *, evalfunc);
extern char PyCode_Type[], PyDict_Type[];
extern void PyErr_Fetch(PyObject **, PyObject **, PyObject **);
extern void PyErr_Restore(PyObject *, PyObject *, PyObject *);

static evalfunc previous = NULL;
static void *watched = NULL;
static PyObject *eval_callback = NULL;
static int in_callback = 0, broken = 0;
static PyObject *error[3] = {NULL, NULL, NULL};

static PyObject *evaluate(void *tstate, void *frame, int throwflag) {
    if (tstate == watched && !in_callback && !broken && !throwflag) {
        PyObject *globals = ((PyObject **)frame)[1], *code = ((PyObject **)frame)[4];
        if (((void **)code)[1] != (void *)PyCode_Type ||
                ((void **)globals)[1] != (void *)PyDict_Type) {
            broken = 1; /* not the layout above: the caller falls back to a profile hook */
        } else {
            int fresh = add(code);
            if (fresh < 0) broken = 1;
            if (fresh > 0) {
                PyObject *result;
                in_callback = 1;
                result = PyObject_CallFunctionObjArgs(eval_callback, code, globals, NULL);
                in_callback = 0;
                if (result == NULL) { /* kept for tracegrad_eval_stop to raise */
                    PyErr_Fetch(&error[0], &error[1], &error[2]);
                    broken = 1;
                } else {
                    Py_DecRef(result);
                }
            }
        }
    }
    return previous(tstate, frame, throwflag);
}

void tracegrad_eval_start(PyObject *callback) {
    void *interp = PyInterpreterState_Get();
    if (eval_callback == NULL) {
        Py_IncRef(callback);
        eval_callback = callback;
        previous = _PyInterpreterState_GetEvalFrameFunc(interp);
        watched = PyThreadState_Get();
    }
    _PyInterpreterState_SetEvalFrameFunc(interp, evaluate);
}

void tracegrad_eval_pause(void) {
    _PyInterpreterState_SetEvalFrameFunc(PyInterpreterState_Get(), previous);
}

int tracegrad_eval_broken(void) { return broken; }

void tracegrad_eval_stop(void) { /* raises the callback's error, if it failed */
    tracegrad_eval_pause();
    forget();
    Py_DecRef(eval_callback);
    eval_callback = NULL;
    watched = NULL;
    broken = 0;
    if (error[0] != NULL) {
        PyErr_Restore(error[0], error[1], error[2]);
        error[0] = error[1] = error[2] = NULL;
    }
}
"""

_lib: list = []  # [the loaded library, or None when it cannot be built]
_lock = threading.Lock()


def _path() -> Path:
    from .backends.toolchain import _cpu_model, cache_dir

    # (what the object depends on: this interpreter, and the toolchain's choices: its flags
    # may hold -march=native, so the CPU too)
    what = [SOURCE, sys.version, platform.machine(), _cpu_model()]
    what += [os.environ.get(k, "") for k in ("CC", "TRACEGRAD_CFLAGS", "TRACEGRAD_NATIVE")]
    return cache_dir() / f"{hashlib.sha256(chr(0).join(what).encode()).hexdigest()}.so"


def _load() -> Any:
    """The hook's library from the disk cache, compiled first if it is not there (None
    without a compiler). A cache entry is checked whole before it is loaded (the toolchain's
    trailer), so a warm process does not even look for the compiler."""
    from .backends import toolchain

    try:
        path = _path()
        key = path.stem
        try:
            data = path.read_bytes()
        except OSError:
            data = b""
        if not toolchain._valid(data, key):
            compiler = toolchain.find_compiler()
            path.parent.mkdir(parents=True, exist_ok=True)
            c_path = path.with_suffix(".c")
            toolchain._write_atomic(c_path, SOURCE.encode())
            toolchain._compile(compiler, c_path, path)
        lib = ctypes.PyDLL(str(path))  # (PyDLL: called with the GIL held, as the C API needs)
    except (OSError, RuntimeError):  # (no compiler, a failed compile, no cache directory)
        return None
    lib.tracegrad_hook_start.argtypes = [ctypes.py_object]
    lib.tracegrad_hook_start.restype = None
    lib.tracegrad_eval_start.argtypes = [ctypes.py_object]
    lib.tracegrad_eval_start.restype = None
    lib.tracegrad_eval_broken.argtypes = []
    lib.tracegrad_eval_broken.restype = ctypes.c_int
    for name in ("tracegrad_hook_pause", "tracegrad_hook_stop", "tracegrad_eval_pause",
                 "tracegrad_eval_stop"):
        getattr(lib, name).argtypes = []
        getattr(lib, name).restype = None
    return lib


def available() -> bool:
    """Whether the C hook can be used here (before 3.12, with a C compiler or a cached
    build)."""
    with _lock:
        if not _lib:
            _lib.append(_load() if sys.version_info < (3, 12) else None)
    return _lib[0] is not None


def start(callback: Callable[[Any], Any]) -> bool:
    """Call ``callback(frame)`` for the first frame of each code object that starts in this
    thread from now until `stop` (replacing any profile function, as ``sys.setprofile``
    does; after `pause`, code objects seen before are still seen). False if the C hook is
    not available (nothing installed)."""
    if not available():
        return False
    _lib[0].tracegrad_hook_start(callback)
    return True


def pause() -> None:
    """Remove the hook until the next `start`, which goes on with the code objects seen."""
    _lib[0].tracegrad_hook_pause()


def stop() -> None:
    """Remove the hook (the thread has no profile function after it) and forget the code
    objects seen."""
    _lib[0].tracegrad_hook_stop()


# ---------------------------------------------------------------- Python 3.11: PEP 523


def _probe() -> None:
    """A function the evaluation hook must see (checked once when it is started)."""


def eval_start(callback: Callable[[Any, dict], Any]) -> bool:
    """On Python 3.11 (a release build): call ``callback(code, globals)`` for the first frame
    of each code object that this thread evaluates from now until `eval_stop` (the frame
    evaluation function, PEP 523; it does not slow the interpreter as a profile function
    does). False (nothing installed) elsewhere, without the C library, or when the frames
    do not read as expected (then a profile hook is the way)."""
    if sys.version_info[:2] != (3, 11) or hasattr(sys, "gettotalrefcount") or \
            not available():
        return False
    seen = []

    def first(code: Any, globals: dict) -> Any:
        seen.append(code)
        return callback(code, globals)

    lib = _lib[0]
    lib.tracegrad_eval_start(first)
    _probe()
    if lib.tracegrad_eval_broken() or _probe.__code__ not in seen:
        lib.tracegrad_eval_stop()
        return False
    return True


def eval_pause() -> None:
    """Evaluate frames without the hook until the next `eval_start`."""
    _lib[0].tracegrad_eval_pause()


def eval_resume() -> None:
    _lib[0].tracegrad_eval_start(None)


def eval_stop() -> None:
    """Remove the hook and forget the code objects seen; raises the callback's error if it
    failed (or if a frame did not read as expected: then the guards may be incomplete)."""
    broken = _lib[0].tracegrad_eval_broken()
    _lib[0].tracegrad_eval_stop()
    if broken:
        raise RuntimeError("tracegrad: the frame evaluation hook could not read a frame; "
                           "the traced call's guards may be incomplete")
