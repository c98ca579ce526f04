"""Aliasing: whether a call's arguments share memory with each other or with the tensors a
compiled function reads and writes besides them (its state) in a way that matters: when one
of two overlapping arrays is written. Eager mode sees such sharing (a write through one name
shows through the other); a program traced with separate inputs does not, so a compiled
function refuses the call rather than give another number. Identity (one tensor at two
places) is checked where variants are chosen; this is the memory behind it: a view or a
``detach()`` of a parameter passed as an argument."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..tensor import Tensor


def alias_plan(capture: Any) -> tuple | None:
    """What a call's check needs from a trace, or None when the function writes nothing:
    (indices of arguments written in place, indices of arguments whose ``.grad`` is set,
    [(state tensor, its .grad (else its data) is meant, that array is written)])."""
    if not capture.data_writes and not capture.grad_writes:
        return None
    arg_of = capture.arg_index
    state: dict[int, list] = {}
    for t, *_ in capture.captured + capture.grad_inputs + capture.grad_buffers:
        if id(t) not in arg_of:
            state.setdefault(id(t), [t, False, False])
    data_args, grad_args = set(), set()
    for t, _ in capture.data_writes:
        if id(t) in arg_of:
            data_args.add(arg_of[id(t)])
        else:
            state.setdefault(id(t), [t, False, False])[1] = True
    for t, _ in capture.grad_writes:
        if id(t) in arg_of:
            grad_args.add(arg_of[id(t)])
        else:
            state.setdefault(id(t), [t, False, False])[2] = True
    return data_args, grad_args, [(t, grad, e[grad]) for t, *e in state.values()
                                  for grad in (False, True)]


def _owner(a: np.ndarray) -> Any:
    """The object that owns ``a``'s memory (NumPy views point at it through ``base``)."""
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a if a.base is None else a.base


def overlapping(inputs: Any, plan: tuple) -> bool:
    """Whether, in a call with argument leaves ``inputs`` (in the trace's argument order),
    an array the function writes may overlap another array it reads or writes. Only memory
    that an argument shares matters (the arrays of the state are the same to eager mode and
    the program), so the check is a lookup per state array: cheap for a large model."""
    data_args, grad_args, state = plan
    owners: dict[int, list] = {}  # owner of an argument's memory -> [(array, written)]
    for k, a in enumerate(inputs):
        if isinstance(a, Tensor):
            g = a._grad if k in grad_args else None
            a = a._data
        elif isinstance(a, np.ndarray):
            g = None
        else:
            continue
        for array, written in ((a, k in data_args),) if g is None else \
                ((a, k in data_args), (g._data, True)):
            same = owners.setdefault(id(_owner(array)), [])
            for b, b_written in same:
                if (written or b_written) and np.may_share_memory(array, b):
                    return True
            same.append((array, written))
    for t, grad, written in state:
        if grad:
            g = t._grad
            if g is None:
                continue
            a = g._data
        else:
            a = t._data
        same = owners.get(id(a) if a.base is None else id(_owner(a)))
        if same is not None:
            for b, b_written in same:
                if (written or b_written) and np.may_share_memory(a, b):
                    return True
    return False
