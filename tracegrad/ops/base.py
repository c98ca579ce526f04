"""`Primitive`: one op, defined once, read by eager execution, tracing and the compiler.

A primitive holds

- ``forward(*arrays, **attrs) -> ndarray``: the computation, as one NumPy call where possible;
- ``infer(*avals, **attrs) -> (shape, dtype)``: the shape/dtype rule. Anything with ``.shape``
  and ``.dtype`` is an aval (an ndarray, a Tensor, a compiler placeholder). It raises
  `ShapeError`/`TypeError` with the message a user should see;
- ``vjp(g, out, *inputs, **attrs) -> tuple``: the gradient for each input (``None`` where an
  input needs none), written with tensor methods so that it is itself differentiable and
  traceable. ``vjp is None`` marks an op with no gradient (comparisons, argmax).

``ops/`` never imports `tensor.py`: a rule only calls methods of the tensors it is handed.

Which of ``out`` and the inputs a rule reads is found once, from its code (`reads`): the
first-order backward wraps only those in `GradArray` and hands the others over as they are,
for their ``requires_grad`` and shape.
"""

from __future__ import annotations

import dis
import inspect
from typing import Any, Callable

import numpy as np

from ..errors import ShapeError

PRIMITIVES: dict[str, "Primitive"] = {}


class Primitive:
    __slots__ = ("name", "kind", "forward", "infer", "vjp", "passes_gradient", "reads",
                 "per_input", "arithmetic", "in_place")

    def __init__(
        self,
        name: str,
        kind: str,
        forward: Callable[..., np.ndarray],
        infer: Callable[..., tuple],
        vjp: Callable[..., tuple] | None,
    ):
        self.name, self.kind, self.forward, self.infer, self.vjp = name, kind, forward, infer, vjp
        # True when the VJP hands the incoming gradient, unchanged, to every input that has
        # the output's shape (add): the backward engine may then skip calling it.
        self.passes_gradient = False
        # What the first-order backward learns from the rule's code: see `rule_facts`.
        self.reads, self.per_input, self.arithmetic = (
            rule_facts(vjp) if vjp is not None else (None, None, None))
        # A unary rule (g * e,), (g / e,) or (-g,): its result may go into g's memory.
        self.in_place = vjp is not None and writes_into_g(vjp)

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"


def register(name: str, kind: str, forward: Callable, infer: Callable,
             vjp: Callable | None) -> Primitive:
    if name in PRIMITIVES:
        raise RuntimeError(f"primitive {name!r} is defined twice")
    prim = Primitive(name, kind, forward, infer, vjp)
    PRIMITIVES[name] = prim
    return prim


def _loaded_names(fn: Callable) -> set[str]:
    """The local names a function's code loads (a name a nested function uses counts)."""
    return {ins.argval for ins in dis.get_instructions(fn)
            if ins.opname.startswith("LOAD_FAST") or ins.opname in ("LOAD_DEREF",
                                                                      "LOAD_CLOSURE")}


def rule_facts(vjp: Callable) -> tuple:
    """``(reads, per_input, arithmetic)`` of a VJP rule, found once from its code; anything
    with a ``vjp`` that the backward engine calls (a primitive, a compiled function's
    backward) carries them.

    - ``reads[n - 1][m]``: with n inputs, of which those in bit mask m (bit i: input i)
      require grad, whether the rule reads the value of each of (out, *inputs);
    - ``per_input``: a binary elementwise rule's gradient functions, one per input,
      ``(g, out, a, b) ->`` gradient before summing back to the input's shape; else None;
    - ``arithmetic[n - 1][m]``: whether the gradients for input mask m are plain arithmetic
      (`arithmetic_only`): for a binary rule, its per-input functions.
    """
    return ((_reads(vjp, 1), _reads(vjp, 2)), getattr(vjp, "per_input", None),
            (_arithmetic(vjp, 1), _arithmetic(vjp, 2)))


def _reads(vjp: Callable, n: int) -> tuple:
    """For a rule ``vjp(g, out, *inputs)`` of ``n`` inputs, per mask of the inputs that
    require grad (bit i: input i), whether it reads each of (out, *inputs). A rule built from
    one function per input (``vjp.per_input``) reads, for a mask, what the functions of the
    inputs in the mask read. A rule taking ``*args`` may read everything."""
    everything = tuple((True,) * (n + 1) for _ in range(1 << n))
    code = getattr(vjp, "__code__", None)
    if code is None or code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS) or \
            code.co_argcount < n + 2:
        return everything
    params = code.co_varnames[1:n + 2]  # out, then the inputs
    per_input = getattr(vjp, "per_input", None)
    if per_input is None:
        used = _loaded_names(vjp)
        return tuple(tuple(p in used for p in params) for _ in range(1 << n))
    rows = []
    for mask in range(1 << n):
        used = set()
        for i, fn in enumerate(per_input):
            if mask >> i & 1:  # the function's own parameters are (g, out, *inputs) too
                names = fn.__code__.co_varnames[1:n + 2]
                loaded = _loaded_names(fn)
                used |= {params[j] for j, name in enumerate(names) if name in loaded}
        rows.append(tuple(p in used for p in params))
    return tuple(rows)


# What a plain arithmetic rule may contain: its arguments, numbers and operators.
_ARITHMETIC_OPS = {"RESUME", "NOP", "CACHE", "LOAD_FAST", "LOAD_FAST_CHECK",
                   "LOAD_FAST_LOAD_FAST", "LOAD_CONST", "BINARY_OP", "UNARY_NEGATIVE",
                   "COMPARE_OP", "BUILD_TUPLE", "RETURN_VALUE"}
_COMPUTING = {"BINARY_OP", "UNARY_NEGATIVE", "COMPARE_OP"}
# Python 3.10 has an opcode per binary operator (3.11 made them one, BINARY_OP)
_BINARY_310 = {"BINARY_ADD": "+", "BINARY_SUBTRACT": "-", "BINARY_MULTIPLY": "*",
               "BINARY_TRUE_DIVIDE": "/", "BINARY_POWER": "**"}
_ARITHMETIC_OPS |= set(_BINARY_310)
_COMPUTING |= set(_BINARY_310)
_IN_PLACE_BINARY_OP = 13  # BINARY_OP's argument for +=, and above for the other in-place ones


def arithmetic_only(fn: Callable, n: int) -> bool:
    """Whether ``fn(g, out, *n inputs)`` is one expression of its arguments, numbers and the
    operators + - * / ** and comparisons (none in place), computing something: then NumPy
    arrays give the same result as GradArrays (same ufuncs; numbers adapt to the
    arrays' dtype in both), in new memory, and the first-order backward runs it on the arrays
    themselves."""
    code = getattr(fn, "__code__", None)
    if code is None or code.co_flags & (inspect.CO_VARARGS | inspect.CO_VARKEYWORDS) or \
            code.co_argcount != n + 2 or code.co_kwonlyargcount:
        return False
    computes = False
    for ins in dis.get_instructions(fn):
        if ins.opname not in _ARITHMETIC_OPS:
            return False
        if ins.opname == "BINARY_OP" and ins.arg >= _IN_PLACE_BINARY_OP:
            return False
        if ins.opname == "LOAD_CONST" and type(ins.argval) not in (int, float, bool):
            return False
        computes = computes or ins.opname in _COMPUTING
    return computes


_LOADS = ("LOAD_FAST", "LOAD_FAST_CHECK", "LOAD_CONST")
_COMBINE = {"BINARY_OP": -1, "COMPARE_OP": -1, "UNARY_NEGATIVE": 0}


def writes_into_g(fn: Callable) -> bool:
    """Whether a plain arithmetic unary rule ``fn(g, out, x)`` is ``(g * e,)``, ``(g / e,)``
    or ``(-g,)`` with ``g`` read nowhere else (as relu's ``g * (out > 0)``): then, when no
    one else holds g's memory, the first-order backward calls it with a g that does that
    last operation in place (`gradarray.IntoArray`), and the gradient goes into g's memory,
    as a hand-written backward would put it (``g *= out > 0``). Found from the code:
    ``g`` is the first value pushed and stays below everything else on the stack until the
    last operation combines it."""
    if not arithmetic_only(fn, 1):
        return False
    steps: list[tuple[str, Any]] = []  # (opname, argval), two-name loads split in two
    for ins in dis.get_instructions(fn):
        if ins.opname == "LOAD_FAST_LOAD_FAST":  # (Python 3.13)
            steps += [("LOAD_FAST", name) for name in ins.argval]
        elif ins.opname in _BINARY_310:
            steps.append(("BINARY_OP", _BINARY_310[ins.opname]))
        elif ins.opname not in ("RESUME", "NOP", "CACHE"):
            steps.append((ins.opname, ins.arg if ins.opname == "BUILD_TUPLE" else
                          ins.argrepr if ins.opname == "BINARY_OP" else ins.argval))
    g = fn.__code__.co_varnames[0]
    if len(steps) < 4 or steps[-1][0] != "RETURN_VALUE" or steps[-2] != ("BUILD_TUPLE", 1):
        return False
    body, last = steps[:-3], steps[-3]
    if not body or body[0] != ("LOAD_FAST", g) or \
            any(op in _LOADS and value == g for op, value in body[1:]):
        return False
    if last[0] == "UNARY_NEGATIVE":
        return len(body) == 1
    if last not in (("BINARY_OP", "*"), ("BINARY_OP", "/")):
        return False
    depth = 1
    for op, _ in body[1:]:
        if op in _LOADS:
            depth += 1
        elif op in _COMBINE:
            depth += _COMBINE[op]
        else:
            return False
        if depth < 2:  # g was combined before the last operation
            return False
    return depth == 2


def _arithmetic(vjp: Callable, n: int) -> tuple:
    """`Primitive.arithmetic` for ``n`` inputs: per input mask (see `_reads`)."""
    per_input = getattr(vjp, "per_input", None)
    if per_input is None:
        return tuple(arithmetic_only(vjp, n) for _ in range(1 << n))
    if len(per_input) != n:
        return (False,) * (1 << n)
    return tuple(all(arithmetic_only(fn, n) for i, fn in enumerate(per_input) if mask >> i & 1)
                 for mask in range(1 << n))


# ---------------------------------------------------------------- helpers shared by rules


def broadcast_shapes(op: str, *shapes: tuple) -> tuple:
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ShapeError(
            f"{op}: shapes {', '.join(str(tuple(s)) for s in shapes)} do not broadcast; "
            f"each dimension must match or be 1 (counting from the last). "
            f"Reshape or unsqueeze an operand so the dimensions line up"
        ) from None


def sum_to_shape(g: Any, shape: tuple) -> Any:
    """Undo broadcasting: sum ``g`` over the dimensions that broadcasting added or stretched."""
    gshape = g.shape
    if gshape == shape:
        return g
    lead = len(gshape) - len(shape)
    stretched = tuple(
        i + lead for i, n in enumerate(shape) if n == 1 and gshape[i + lead] != 1
    )
    if lead:
        g = g.sum(dim=tuple(range(lead)))  # the added dimensions disappear
    if stretched:
        g = g.sum(dim=tuple(i - lead for i in stretched), keepdim=True)
    return g if g.shape == shape else g.reshape(shape)


def normalize_axes(op: str, axis: Any, ndim: int) -> tuple[int, ...]:
    """``dim=None | int | sequence`` -> a sorted tuple of non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    if type(axis) is tuple and len(axis) == 1 and type(axis[0]) is int and 0 <= axis[0] < ndim:
        return axis  # one dimension, already normalized: what gradient rules pass
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    if ndim and all(type(a) is int and 0 <= a < ndim for a in axes) and \
            list(axes) == sorted(set(axes)):
        return axes  # already normalized (the common case, from gradient rules)
    if ndim == 0:  # a 0-d tensor has one "dimension" to name, as in PyTorch: dim 0 or -1
        for a in axes:
            if int(a) not in (0, -1):
                raise ShapeError(f"{op}: dim {a} is out of range for a 0-d tensor")
        return ()
    out = []
    for a in axes:
        a = int(a)
        if not -max(ndim, 1) <= a < max(ndim, 1):
            raise ShapeError(
                f"{op}: dim {a} is out of range for a tensor with {ndim} dimension(s); "
                f"use a dim in [{-max(ndim, 1)}, {max(ndim, 1) - 1}]"
            )
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise ShapeError(f"{op}: dim {axes} names the same dimension twice")
    return tuple(sorted(out))


def check_dim(op: str, dim: int, shape: tuple) -> int:
    """``dim`` as a non-negative index into the dimensions of ``shape``, or a ShapeError."""
    ndim = len(shape)
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise ShapeError(
            f"{op}: dim {dim} is out of range for a tensor of shape {tuple(shape)} "
            f"({ndim} dimension(s)); use a dim in [{-n}, {n - 1}]"
        )
    return dim % n
