"""`Primitive`: one op, defined once, read by eager execution, tracing and the compiler.

A primitive holds

- ``forward(*arrays, **attrs) -> ndarray``: the computation, as one NumPy call where possible;
- ``infer(*avals, **attrs) -> (shape, dtype)``: the shape/dtype rule. Anything with ``.shape``
  and ``.dtype`` is an aval (an ndarray, a Tensor, a compiler placeholder). It raises
  `ShapeError`/`TypeError` with the message a user should see;
- ``vjp(g, out, *inputs, **attrs) -> tuple``: the gradient for each input (``None`` where an
  input needs none), written with tensor methods so that it is itself differentiable and
  traceable. ``vjp is None`` marks an op with no gradient (comparisons, argmax);
- its forward-mode rule, ``jvp(tangents, out, *inputs, **attrs) -> tangent``: the output's
  tangent from one tangent per input (``None`` for a zero one), also written with tensor
  methods. Tangents may carry leading *batch* dimensions (``jacfwd`` pushes a whole basis at
  once): a tangent of ``x`` has shape ``batch + x.shape``, and a rule right-aligns what it
  combines with it (`align`). Most primitives do not write one: an elementwise primitive's
  Jacobian is diagonal, so its JVP is its VJP function applied to the tangent; a ``linear``
  primitive's JVP is the primitive itself applied to the tangents (``linear=`` gives how its
  attributes change for batched tangents); see `register` and ``tracegrad/forward.py``;
- its declared facts: what the VJP reads (`reads`), and the words of `FACTS`. Every engine
  path, pass and backend reads these; nothing looks at a rule's code to guess them.
  ``tests/test_op_facts.py`` traces every rule and checks each declaration against it.

``ops/`` never imports `tensor.py`: a rule only calls methods of the tensors it is handed.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..errors import ShapeError

PRIMITIVES: dict[str, "Primitive"] = {}

# The facts a primitive may declare, one word each (``facts="fusible ufunc float"``).
FACTS = {
    # for the compiler
    "fusible": "a fused kernel may hold it (elementwise math of same-shape operands)",
    "ufunc": "its forward is a NumPy ufunc, which a backend may call with out=",
    "overwrites": "each output element depends only on the same element of the operands: "
                  "a backend may write the result over an operand that dies there",
    "random": "impure: new numbers on every run; never merged (cse) nor folded",
    "raises": "it tests its operand's values and may raise: dead-code elimination keeps it "
              "even when nothing reads its result",
    "view": "its result may share its first operand's memory (a NumPy view): the memory plan "
            "keeps that operand's buffer while the result lives, and eager mode makes the "
            "result a view of the operand's base",
    # for the tensor layer
    "float": "ints and bools are cast to the default float first (exp of an int is float32)",
    "method": "a Tensor (and GradArray) method of the same name: x.exp()",
    # for the first-order backward (see Tensor._vjp)
    "arithmetic": "a unary VJP that is one expression of its arguments, numbers and the "
                  "operators + - * / ** and comparisons, computing new memory: it runs on "
                  "bare ndarrays",
    "into_g": "a unary arithmetic VJP (g * e,), (g / e,) or (-g,) with g read nowhere else: "
              "its last operation may write into g's memory (gradarray.IntoArray)",
    "passes_gradient": "the VJP hands g, unchanged, to every input of the output's shape "
                       "(add): the backward engine may skip calling it",
}


class Primitive:
    """One op and its declared facts (see `register` for how they are declared).

    What the backward engine reads, derived once from the declarations:

    - ``reads[n - 1][m]``: called with n inputs (1 or 2), of which those in bit mask m (bit
      i: input i) require grad, whether the VJP reads the value of each of (out, *inputs);
      the first-order backward wraps only those in `GradArray` and hands the others over
      as they are, for their ``requires_grad`` and shape;
    - ``per_input``: a binary elementwise rule's gradient functions, one per input,
      ``(g, out, a, b) ->`` gradient before summing back to the input's shape; else None;
    - ``arithmetic[n - 1][m]``: whether the gradients for input mask m are plain arithmetic
      (FACTS["arithmetic"]); for a binary rule, those of its per-input functions;
    - ``in_place`` (FACTS["into_g"]) and ``passes_gradient``.
    """

    __slots__ = ("name", "kind", "forward", "infer", "vjp", "inputs", "grad_reads",
                 "passes_gradient", "reads", "per_input", "arithmetic", "in_place",
                 "elementwise", "fusible", "ufunc", "overwrites", "random", "raises",
                 "float_only", "method", "view", "facts", "decomposition", "jvp", "linear")

    def __init__(
        self,
        name: str,
        kind: str,
        forward: Callable[..., np.ndarray],
        infer: Callable[..., tuple],
        vjp: Callable[..., tuple] | None,
    ):
        self.name, self.kind, self.forward, self.infer, self.vjp = name, kind, forward, infer, vjp
        self.elementwise = kind == "elementwise"
        self.inputs: tuple = ()
        self.grad_reads: dict = {}
        self.facts: frozenset = frozenset()
        self.reads = self.per_input = self.arithmetic = None
        self.in_place = self.passes_gradient = False
        self.fusible = self.overwrites = False
        self.random = self.raises = self.float_only = self.method = self.view = False
        self.ufunc: np.ufunc | None = None
        self.decomposition: Callable | None = None
        self.jvp: Callable | None = None  # (tangents, out, *inputs, **attrs) -> tangent
        self.linear: Callable | None = None  # attrs for batched tangents, if linear

    def __repr__(self) -> str:
        return f"<primitive {self.name}>"


def register(name: str, kind: str, forward: Callable, infer: Callable,
             vjp: Callable | None, *, inputs: str = "x", reads: str | dict = "",
             per_input: tuple | None = None, arithmetic: Any = False,
             facts: str = "", decomposition: Callable | None = None,
             jvp: Callable | None = None, linear: Any = None) -> Primitive:
    """Define a primitive, with its declared facts.

    - ``inputs``: the names of its operands, as its VJP names them (``"a b"``); a last name
      starting with ``*`` stands for any number of them (``"x *ix"``);
    - ``reads``: which of ``out`` and the inputs the VJP reads the values of (besides g,
      which it always reads): ``"out x"``, or, when the gradient of each input reads
      different values, a dict ``{input: what its gradient reads}`` (mul: ``{"a": "b",
      "b": "a"}``). Reading only a shape, a dtype or ``requires_grad`` is not reading;
    - ``per_input``: a binary elementwise rule's per-input gradient functions (see
      `Primitive`); ``arithmetic`` then names the inputs whose function is plain arithmetic
      (``"a b"``), and otherwise is the "arithmetic" fact of a unary rule;
    - ``facts``: words of `FACTS`;
    - ``decomposition(*inputs, **attrs)``: for an op that eager execution runs as one node
      for speed (linear, log_softmax), the same computation written with other primitives
      (tensor methods). Tracing records the decomposition instead of the op, so that the
      compiler fuses its parts with their neighbours; eager and compiled code run one
      definition, and the tests check that the two agree to second order;
    - ``jvp(tangents, out, *inputs, **attrs)``: the forward-mode rule (see the module
      docstring), for a primitive that is neither elementwise nor linear. An elementwise one
      gets it from its VJP (the Jacobian is diagonal: the same function of g computes the
      JVP of a tangent in g's place);
    - ``linear``: the primitive is linear in its float operands (jointly: ``add``'s tangent
      is ``add(ta, tb)``), so its JVP is the primitive applied to their tangents, and its
      VJP is the transpose the rule gives. The value is ``True``, or a function
      ``(attrs, batch) -> attrs`` for tangents with leading batch dimensions ``batch``
      (``sum`` shifts its axes by ``len(batch)``). Non-float operands (indices, masks) go in as
      they are.

    For example (docs/ops.md has the whole story)::

        register("cube", "elementwise", lambda x: x ** 3, lambda x: (x.shape, x.dtype),
                 lambda g, out, x: (g * 3 * x * x,), reads="x",
                 facts="fusible overwrites arithmetic")
    """
    if name in PRIMITIVES:
        raise RuntimeError(f"primitive {name!r} is defined twice")
    words = frozenset(facts.split())
    unknown = words - FACTS.keys()
    if unknown:
        raise ValueError(f"primitive {name!r}: unknown fact(s) {sorted(unknown)}; "
                         f"the facts are {sorted(FACTS)}")
    prim = Primitive(name, kind, forward, infer, vjp)
    prim.facts = words
    prim.decomposition = decomposition
    prim.inputs = tuple(inputs.split())
    if (jvp is not None or linear is not None) and vjp is None:
        raise ValueError(f"primitive {name!r} has no VJP, so no forward-mode rule either "
                         f"(its output has no derivative)")
    if jvp is not None and linear is not None:
        raise ValueError(f"primitive {name!r}: give a jvp rule or declare it linear, not both")
    prim.linear = (lambda attrs, batch: attrs) if linear is True else linear
    prim.jvp = jvp if jvp is not None else _elementwise_jvp(prim, kind, vjp, per_input)
    if isinstance(arithmetic, str):  # per input, for a rule with per-input functions
        arithmetic_of = set(arithmetic.split())
    else:
        arithmetic_of = set(_plain(prim.inputs)) if arithmetic or "arithmetic" in words else set()
    prim.fusible = "fusible" in words
    prim.overwrites, prim.random = "overwrites" in words, "random" in words
    prim.raises = "raises" in words
    prim.float_only, prim.method = "float" in words, "method" in words
    prim.view = "view" in words
    prim.passes_gradient = "passes_gradient" in words
    if "ufunc" in words:
        if not isinstance(forward, np.ufunc):
            raise ValueError(f"primitive {name!r} declares 'ufunc' but its forward "
                             f"{forward!r} is not a NumPy ufunc")
        prim.ufunc = forward
    if vjp is not None:
        prim.grad_reads = _grad_reads(name, prim.inputs, reads)
        prim.per_input = per_input
        prim.reads = (_reads_table(prim, 1), _reads_table(prim, 2))
        prim.arithmetic = (_arithmetic_table(prim, 1, arithmetic_of),
                           _arithmetic_table(prim, 2, arithmetic_of))
        prim.in_place = "into_g" in words
        if prim.in_place and not (len(prim.inputs) == 1 and arithmetic_of):
            raise ValueError(f"primitive {name!r}: 'into_g' is for a unary arithmetic rule")
        if arithmetic_of and not prim.elementwise:
            raise ValueError(f"primitive {name!r}: only an elementwise rule (no attributes) "
                             f"can be 'arithmetic'")
    elif reads or per_input or arithmetic_of or words & {"into_g", "passes_gradient"}:
        raise ValueError(f"primitive {name!r} has no VJP, so no facts about it")
    PRIMITIVES[name] = prim
    for fact, names in _DERIVED:
        if getattr(prim, fact):
            names.add(name)
    return prim


def _elementwise_jvp(prim: Primitive, kind: str, vjp: Callable | None,
                     per_input: tuple | None) -> Callable | None:
    """An elementwise primitive's JVP from its VJP: its Jacobian is diagonal, so the
    gradient function of each input, given a tangent where it expects g, gives that input's
    part of the output's tangent (before any summing back to the input's shape)."""
    if kind != "elementwise" or vjp is None or prim.linear is not None:
        return None
    if per_input is not None:
        def rule(tangents, out, *inputs):
            total = None
            for f, t, x in zip(per_input, tangents, inputs):
                if t is not None:
                    part = f(align(t, out, x), out, *inputs)
                    total = part if total is None else total + part
            return total

        return rule
    if len(prim.inputs) == 1:
        return lambda tangents, out, x, **attrs: vjp(tangents[0], out, x, **attrs)[0]
    return None


def batch_ndim(t: Any, x: Any) -> int:
    """How many leading batch dimensions tangent ``t`` of ``x`` has."""
    return t.ndim - len(x.shape)


def align(t: Any, out: Any, x: Any) -> Any:
    """Tangent ``t`` of ``x`` (``batch + x.shape``) with size-1 dimensions put between the
    batch and ``x``'s own, so that it broadcasts against values of ``out``'s rank the way
    ``x`` did (right-aligned)."""
    missing = len(out.shape) - len(x.shape)
    if missing <= 0:
        return t
    nb = batch_ndim(t, x)
    shape = tuple(t.shape)
    return t.reshape(shape[:nb] + (1,) * missing + shape[nb:])


def _plain(names: tuple) -> tuple:
    return tuple(n.lstrip("*") for n in names)


def _grad_reads(name: str, inputs: tuple, reads: str | dict) -> dict:
    """``{input: frozenset of the names its gradient reads}`` from a declaration."""
    names = _plain(inputs)
    known = {"out", *names}
    per = reads if isinstance(reads, dict) else {n: reads for n in names}
    table = {}
    for n in names:
        read = frozenset(per.get(n, "").split())
        if read - known:
            raise ValueError(f"primitive {name!r}: reads {sorted(read - known)}, which is "
                             f"neither 'out' nor an input ({' '.join(names)})")
        table[n] = read
    unknown = set(per) - set(names)
    if unknown:
        raise ValueError(f"primitive {name!r}: reads of unknown inputs {sorted(unknown)}")
    return table


def positions(inputs: tuple, n: int) -> tuple:
    """The names of the ``n`` operands of a call, for a primitive whose inputs are
    ``inputs`` (a starred last name repeats as often as needed)."""
    if inputs and inputs[-1].startswith("*"):
        fixed, star = inputs[:-1], inputs[-1][1:]
        return (fixed + (star,) * max(n - len(fixed), 0))[:n]
    return inputs if len(inputs) == n else ("?",) * n


def reads_for(prim: Primitive, n: int, mask: int) -> tuple:
    """Whether the VJP, called with ``n`` operands of which those in ``mask`` require grad,
    reads each of (out, *operands)."""
    names = positions(prim.inputs, n)
    if "?" in names:  # not a call its declaration describes: it may read anything
        return (True,) * (n + 1)
    read = set()
    for i, name in enumerate(names):
        if mask >> i & 1 or not mask:  # (no mask: what any gradient reads)
            read |= prim.grad_reads.get(name, frozenset())
    return ("out" in read,) + tuple(name in read for name in names)


def _reads_table(prim: Primitive, n: int) -> tuple:
    return tuple(reads_for(prim, n, mask) for mask in range(1 << n))


def _arithmetic_table(prim: Primitive, n: int, arithmetic_of: set) -> tuple:
    if n != len(prim.inputs) or prim.inputs[-1].startswith("*") or not arithmetic_of:
        return (False,) * (1 << n)
    return tuple(all(prim.inputs[i] in arithmetic_of for i in range(n) if mask >> i & 1)
                 for mask in range(1 << n))


# Sets of primitive names derived from the facts (a pass's FUSIBLE, ...), kept current: a
# primitive registered later joins every set whose fact it declares.
_DERIVED: list[tuple[str, set]] = []


def having(fact: str, *also: str) -> set[str]:
    """The names of the primitives with ``fact`` (an attribute of `Primitive`: "fusible",
    "overwrites", "float_only", ...), and the non-primitive ops ``also`` (the compiler's
    "kernel"), as a set that stays current.

    >>> "exp" in having("fusible")
    True
    """
    names = set(also)
    names.update(n for n, p in PRIMITIVES.items() if getattr(p, fact))
    _DERIVED.append((fact, names))
    return names


def unregister(name: str) -> None:
    """Remove a primitive `register` added (and its name from every derived set): for tests
    and examples that define one for a while."""
    PRIMITIVES.pop(name)
    for _, names in _DERIVED:
        names.discard(name)


def rule_facts(vjp: Callable) -> tuple:
    """``(reads, per_input, arithmetic)`` (see `Primitive`) for a VJP that declares nothing,
    such as a compiled function's backward: it may read everything and is not plain
    arithmetic."""
    everything = tuple(tuple((True,) * (n + 1) for _ in range(1 << n)) for n in (1, 2))
    return everything, None, ((False,) * 2, (False,) * 4)


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
