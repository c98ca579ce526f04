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

void tracegrad_hook_stop(void) {
    size_t i;
    PyEval_SetProfile(NULL, NULL);
    for (i = 0; i < capacity; i++)
        if (table[i] != NULL) { Py_DecRef(table[i]); table[i] = NULL; }
    used = 0;
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
    for name in ("tracegrad_hook_pause", "tracegrad_hook_stop"):
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
