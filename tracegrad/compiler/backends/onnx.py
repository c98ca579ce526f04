"""The ONNX backend: a lowering table from tracegrad primitives to ONNX operators.

`LOWERINGS` maps a primitive's name to a function ``(e, node, ins) -> value name`` that
emits the ONNX nodes computing ``node`` from the ONNX values ``ins`` (one per operand) with
the `Emitter` ``e``, and returns the name of the value holding the result. A primitive
missing from the table cannot be exported (`REFUSED` says why, for some); `tg.onnx.export`
names the op and the user's line that made it.

Shapes are static except along the dynamic axes the user asked for (``dynamic_axes``). The
exporter then traces the function again at other sizes of each such axis (`Emitter.alts`
gives, for a node, the same node in those traces); an entry that differs between the traces
is symbolic, and the lowerings that carry a shape (reshape, expand, a slice's bounds, a
constant's shape) compute it at run time: ``-1`` in a Reshape, ``1`` where Expand keeps a
dimension, or ``Shape`` of the input it comes from times a number.

Imported only by `tracegrad.onnx.export`, after ``onnx`` itself (never by ``import
tracegrad``).
"""

from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from ...ops.elementwise import GELU_KAPPA, INV_SQRT_2, SQRT_2_OVER_PI
from ...ops.movement import SLOT
from ..ir import Graph, Node

# The opset `tg.onnx.export` writes by default: every lowering here is written for it (and
# for opsets 18 and later: reductions take their axes as an input, from 18 on).
DEFAULT_OPSET = 21
MIN_OPSET = 18

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min


class ExportError(RuntimeError):
    """A graph (or one of its ops) that cannot be written as ONNX; the message says why and
    what to do."""


class Emitter:
    """Collects the ONNX nodes and initializers of one graph.

    ``alts`` lists, per symbolic dimension, the same graph traced at another size of that
    dimension (same structure, node for node); ``symbols`` lists (name, size in ``graph``,
    size in its alt, [(ONNX input name, axis) carrying it]).
    """

    def __init__(self, onnx: Any, graph: Graph, alts: list[Graph], symbols: list[tuple]):
        self.onnx, self.helper = onnx, onnx.helper
        self.graph = graph
        self.symbols = symbols
        everything = [*graph.inputs, *graph.nodes]
        others = [[*g.inputs, *g.nodes] for g in alts]
        self._alts: dict[int, list[Node]] = {
            id(n): [other[k] for other in others] for k, n in enumerate(everything)}
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._consts: dict[tuple, str] = {}
        self._count = 0
        self._names: dict[str, int] = {}  # node names given, and how often
        self.current: Node | None = None  # the IR node being lowered (for messages)
        self.names: dict[int, str] = {}  # IR node -> the ONNX value holding it, once lowered
        self._everything = everything
        self._indexed = 0  # how many of them `_sizes` has seen
        self._sizes: dict[tuple, tuple[str, int]] = {}  # a size in every trace -> (value, axis)

    # ---------------------------------------------------------------- building blocks

    def fresh(self, hint: str = "t") -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def op(self, op_type: str, inputs: list[str], out: str | None = None,
           n_out: int = 1, **attrs: Any) -> Any:
        """Emit one ONNX node; returns its output name (a list when ``n_out > 1``)."""
        outs = [out] if out is not None and n_out == 1 else \
            [self.fresh(op_type.lower()) for _ in range(n_out)]
        name = f"%{self.current.id}.{op_type}" if self.current is not None else op_type
        k = self._names.get(name, 0)
        self._names[name] = k + 1
        if k:
            name = f"{name}.{k}"
        self.nodes.append(self.helper.make_node(op_type, inputs, outs, name=name, **attrs))
        return outs[0] if n_out == 1 else outs

    def const(self, value: Any, dtype: Any = None, name: str | None = None) -> str:
        """An initializer holding ``value`` (small ones shared by value)."""
        arr = np.asarray(value, dtype=dtype)
        key = None
        if name is None and arr.size <= 16:
            key = (arr.dtype.str, arr.shape, arr.tobytes())
            if key in self._consts:
                return self._consts[key]
        name = name or self.fresh("c")
        self.initializers.append(self.onnx.numpy_helper.from_array(arr, name))
        if key is not None:
            self._consts[key] = name
        return name

    def ints(self, values: Any) -> str:
        return self.const(np.asarray(list(values), dtype=np.int64).reshape(-1))

    def scalar_like(self, value: Any, dtype: np.dtype) -> str:
        return self.const(np.asarray(value, dtype=dtype))

    def cast(self, x: str, dtype: np.dtype) -> str:
        return self.op("Cast", [x], to=tensor_type(self.onnx, dtype))

    # ---------------------------------------------------------------- symbolic sizes

    def alts(self, node: Node) -> list[Node]:
        """``node`` in each trace at another size of a dynamic axis (none without them)."""
        return self._alts.get(id(node), [])

    def entries(self, base: tuple, alt: list[tuple]) -> list["Dim"]:
        """The entries of a shape-like tuple, seen in this trace (``base``) and in each
        alt trace (``alt``): `Dim` objects, static or symbolic."""
        out = []
        for i, b in enumerate(base):
            values = [int(a[i]) for a in alt]
            deps = tuple(j for j, v in enumerate(values) if v != int(b))
            k = None
            if deps:
                sizes = math.prod(self.symbols[j][1] for j in deps)
                if int(b) % sizes == 0:
                    k = int(b) // sizes
                    # the same number times the symbols' sizes in every other trace
                    for j, v in enumerate(values):
                        alt_sizes = math.prod(self.symbols[d][2] if d == j else
                                              self.symbols[d][1] for d in deps)
                        if v != k * alt_sizes:
                            k = None
                            break
            out.append(Dim(int(b), deps, k, tuple(values)))
        return out

    def shape_of(self, node: Node) -> list["Dim"]:
        return self.entries(node.shape, [a.shape for a in self.alts(node)])

    def dim_value(self, d: "Dim") -> str:
        """A 1-element int64 tensor holding ``d`` at run time."""
        if not d.deps:
            return self.ints([d.value])
        if d.k is None:
            found = self._dimension_of_a_value(d)
            if found is not None:
                value, axis = found
                return self.op("Shape", [value], start=axis, end=axis + 1)
            raise ExportError(self.where() + f"a size ({d.value} here) changes with the "
                              f"dynamic axes in a way that is not a multiple of them; make "
                              f"this axis static (drop it from dynamic_axes)")
        value = None
        for j in d.deps:
            name, _, _, sources = self.symbols[j]
            src, axis = sources[0]
            size = self.op("Shape", [src], start=axis, end=axis + 1)
            value = size if value is None else self.op("Mul", [value, size])
        if d.k != 1:
            value = self.op("Mul", [value, self.ints([d.k])])
        return value

    def _dimension_of_a_value(self, d: "Dim") -> tuple[str, int] | None:
        """A value already computed (an ONNX name in `names`) with a dimension equal to
        ``d`` in every trace, and that axis: the windows of a strided convolution, which
        are no multiple of the input's size, are read off the windows tensor."""
        everything = self._everything
        while self._indexed < len(everything) and id(everything[self._indexed]) in self.names:
            node = everything[self._indexed]
            self._indexed += 1
            for axis, dim in enumerate(self.shape_of(node)):
                if dim.deps:
                    self._sizes.setdefault((dim.value, dim.alts), (self.names[id(node)], axis))
        return self._sizes.get((d.value, d.alts))

    def shape_tensor(self, dims: list["Dim"], fill: dict | None = None) -> str:
        """An int64 1-D tensor of the entries ``dims`` (``fill[i]`` replaces entry i by a
        number, such as Reshape's -1): a constant when nothing is symbolic."""
        fill = fill or {}
        values = [fill.get(i, d.value) for i, d in enumerate(dims)]
        if all(i in fill or not d.deps for i, d in enumerate(dims)):
            return self.ints(values)
        parts, run = [], []
        for i, d in enumerate(dims):
            if i in fill or not d.deps:
                run.append(values[i])
                continue
            if run:
                parts.append(self.ints(run))
                run = []
            parts.append(self.dim_value(d))
        if run:
            parts.append(self.ints(run))
        return parts[0] if len(parts) == 1 else self.op("Concat", parts, axis=0)

    def where(self) -> str:
        n = self.current
        return f"ONNX export of %{n.id} = {n.op}: " if n is not None else "ONNX export: "


class Dim:
    """One entry of a shape: its value in the traced example, the symbols (indices into
    `Emitter.symbols`) it changes with, ``k`` when it is ``k`` times their product, and its
    values in the other traces."""

    __slots__ = ("value", "deps", "k", "alts")

    def __init__(self, value: int, deps: tuple, k: int | None, alts: tuple = ()):
        self.value, self.deps, self.k, self.alts = value, deps, k, alts

    def __repr__(self) -> str:
        return str(self.value) if not self.deps else f"<{self.value}: {self.k}*{self.deps}>"


def tensor_type(onnx: Any, dtype: Any) -> int:
    return onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


# ---------------------------------------------------------------- elementwise


def _simple(op_type: str) -> Callable:
    def lower(e: Emitter, n: Node, ins: list[str]) -> str:
        return e.op(op_type, ins)

    lower.__doc__ = f"ONNX {op_type}"
    return lower


def _softplus(e: Emitter, n: Node, ins: list[str]) -> str:
    # max(x, 0) + log(1 + exp(-|x|)): no overflow at large |x| (NumPy's logaddexp(0, x))
    (x,) = ins
    one = e.scalar_like(1, n.dtype)
    tail = e.op("Log", [e.op("Add", [one, e.op("Exp", [e.op("Neg", [e.op("Abs", [x])])])])])
    return e.op("Add", [e.op("Relu", [x]), tail])


def _normal_cdf(e: Emitter, n: Node, ins: list[str]) -> str:
    # (1 + erf(x / sqrt 2)) / 2, or with tanh(sqrt(2/pi) (x + k x^3)): ops/elementwise.py's
    # operations in its order
    (x,) = ins

    def c(v: float) -> str:
        return e.scalar_like(v, n.dtype)

    if n.op == "normal_cdf":
        core = e.op("Erf", [e.op("Mul", [x, c(INV_SQRT_2)])])
    else:
        cube = e.op("Mul", [e.op("Mul", [x, x]), x])
        inner = e.op("Add", [x, e.op("Mul", [cube, c(GELU_KAPPA)])])
        core = e.op("Tanh", [e.op("Mul", [inner, c(SQRT_2_OVER_PI)])])
    return e.op("Mul", [e.op("Add", [core, c(1)]), c(0.5)])


def _erfc(e: Emitter, n: Node, ins: list[str]) -> str:
    # (ONNX has no Erfc: 1 - erf, which in float32 is 0 from x = 4 on, where erfc is still
    # 1.5e-8; docs/onnx.md says so)
    return e.op("Sub", [e.scalar_like(1, n.dtype), e.op("Erf", ins)])


def _negative_bit(e: Emitter, x: str, dtype: np.dtype) -> str:
    """The sign bit of a float, but for a nan's: x < 0, or 1/x < 0 (1/-0 is -inf)."""
    zero = e.scalar_like(0, dtype)
    below = e.op("Less", [x, zero])
    if dtype.kind != "f":
        return below
    return e.op("Or", [below, e.op("Less", [e.op("Div", [e.scalar_like(1, dtype), x]), zero])])


def _signbit(e: Emitter, n: Node, ins: list[str]) -> str:
    return _negative_bit(e, ins[0], n.inputs[0].dtype)


def _xlogy(e: Emitter, n: Node, ins: list[str]) -> str:
    x, y = ins
    zero = e.op("And", [e.op("Equal", [x, e.scalar_like(0, n.dtype)]),
                        e.op("Not", [e.op("IsNaN", [y])])])
    return e.op("Where", [zero, e.scalar_like(0, n.dtype), e.op("Mul", [x, e.op("Log", [y])])])


def _atan2(e: Emitter, n: Node, ins: list[str]) -> str:
    # (ONNX has no Atan2) atan(y / x), plus or minus pi (the sign of y) where x is negative
    # (-0 too); at y = x = 0, y or +-pi; with both infinite, atan(+-1) moved the same way
    y, x = ins

    def c(v: float) -> str:
        return e.scalar_like(v, n.dtype)

    left = _negative_bit(e, x, n.dtype)
    shift = e.op("Where", [_negative_bit(e, y, n.dtype), c(-math.pi), c(math.pi)])
    both_inf = e.op("And", [e.op("IsInf", [y]), e.op("IsInf", [x])])
    ratio = e.op("Where", [both_inf, e.op("Div", [e.op("Sign", [y]), e.op("Sign", [x])]),
                           e.op("Div", [y, x])])
    angle = e.op("Atan", [ratio])
    angle = e.op("Where", [left, e.op("Add", [angle, shift]), angle])
    both_zero = e.op("And", [e.op("Equal", [y, c(0)]), e.op("Equal", [x, c(0)])])
    return e.op("Where", [both_zero, e.op("Where", [left, shift, y]), angle])


def _bitwise(int_type: str, bool_type: str) -> Callable:
    """ONNX's Bitwise* on integers, its logical op on bools."""

    def lower(e: Emitter, n: Node, ins: list[str]) -> str:
        return e.op(bool_type if n.dtype == np.bool_ else int_type, ins)

    return lower


def _bool_or(op_type: str, bool_type: str | None) -> Callable:
    """``op_type``, or ``bool_type`` on bool operands (add of masks is or, mul is and)."""

    def lower(e: Emitter, n: Node, ins: list[str]) -> str:
        a, b = n.inputs
        if a.dtype == np.bool_ and b.dtype == np.bool_:
            if bool_type is None:
                raise ExportError(e.where() + "on bool tensors has no ONNX operator; cast "
                                  "them to an int or float type first")
            return e.op(bool_type, ins)
        if a.dtype != b.dtype:  # a float times a bool mask (simplify writes x * mask)
            ins = [ins[0], e.cast(ins[1], a.dtype)]
        return e.op(op_type, ins)

    return lower


def _compare(op_type: str, negate: bool = False) -> Callable:
    def lower(e: Emitter, n: Node, ins: list[str]) -> str:
        if n.inputs[0].dtype == np.bool_ and op_type != "Equal":
            ins = [e.cast(x, np.int32) for x in ins]  # ONNX orders numbers, not bools
        out = e.op(op_type, ins)
        return e.op("Not", [out]) if negate else out

    return lower


def _cast(e: Emitter, n: Node, ins: list[str], dtype: Any) -> str:
    return e.cast(ins[0], n.dtype)


def _relu(e: Emitter, n: Node, ins: list[str]) -> str:
    if n.dtype.kind == "f":
        return e.op("Relu", ins)
    return e.op("Max", [ins[0], e.scalar_like(0, n.dtype)])  # (onnxruntime: Relu of floats)


def _rounding(op_type: str) -> Callable:
    def lower(e: Emitter, n: Node, ins: list[str]) -> str:
        if n.inputs[0].dtype.kind != "f":  # floor of an int is the int
            return e.op("Identity", ins)
        return e.op(op_type, ins)

    return lower


# ---------------------------------------------------------------- reductions


def _axes_input(e: Emitter, axes: tuple) -> str:
    return e.ints(axes)


def _sum(e: Emitter, n: Node, ins: list[str], axes: tuple, keepdim: bool) -> str:
    (x,) = ins
    if n.inputs[0].dtype != n.dtype:  # ints and bools add up as int64
        x = e.cast(x, n.dtype)
    if not axes:
        return e.op("Identity", [x])
    return e.op("ReduceSum", [x, _axes_input(e, axes)], keepdims=int(keepdim))


def _extremum(op_type: str) -> Callable:
    def lower(e: Emitter, n: Node, ins: list[str], axes: tuple, keepdim: bool) -> str:
        if not axes:
            return e.op("Identity", ins)
        return e.op(op_type, [ins[0], _axes_input(e, axes)], keepdims=int(keepdim))

    return lower


def _arg(op_type: str) -> Callable:
    def lower(e: Emitter, n: Node, ins: list[str], axis: Any, keepdim: bool) -> str:
        (x,) = ins
        nd = n.inputs[0].ndim
        if nd == 0:  # the index of the only element
            return e.const(np.zeros(n.shape, np.int64))
        if axis is None:  # over all elements: of the flattened tensor
            flat = e.op("Reshape", [x, e.ints([-1])])
            out = e.op(op_type, [flat], axis=0, keepdims=0, select_last_index=0)
            if keepdim:
                out = e.op("Reshape", [out, e.ints([1] * nd)])
            return out
        return e.op(op_type, [x], axis=int(axis) % nd, keepdims=int(keepdim),
                    select_last_index=0)

    return lower


def _argsort(e: Emitter, n: Node, ins: list[str], axis: int, descending: bool) -> str:
    (x,) = ins
    axis = int(axis) % n.inputs[0].ndim
    k = e.dim_value(e.shape_of(n.inputs[0])[axis])
    # TopK breaks ties by the lower index first, as a stable sort does
    _, idx = e.op("TopK", [x, k], n_out=2, axis=axis, largest=int(bool(descending)), sorted=1)
    return idx


# ---------------------------------------------------------------- movement


def _reshape(e: Emitter, n: Node, ins: list[str], shape: tuple) -> str:
    dims = e.shape_of(n)
    symbolic = [i for i, d in enumerate(dims) if d.deps]
    fill = {}
    if symbolic:  # one entry ONNX works out from the element count: a symbolic one
        free = next((i for i in symbolic if dims[i].k is None), symbolic[0])
        fill[free] = -1
    return e.op("Reshape", [ins[0], e.shape_tensor(dims, fill)])


def _permute(e: Emitter, n: Node, ins: list[str], dims: tuple) -> str:
    return e.op("Transpose", ins, perm=[int(d) for d in dims])


def _expand(e: Emitter, n: Node, ins: list[str], shape: tuple) -> str:
    dims = e.shape_of(n)
    src = e.shape_of(n.inputs[0])
    lead = len(dims) - len(src)
    fill = {}
    for i, s in enumerate(src):  # a dimension Expand keeps: 1 (broadcasting keeps it)
        d = dims[lead + i]
        if s.value == d.value and s.deps == d.deps and (not d.deps or s.k == d.k):
            fill[lead + i] = 1
    return e.op("Expand", [ins[0], e.shape_tensor(dims, fill)])


def _pad(e: Emitter, n: Node, ins: list[str], pads: tuple, value: float) -> str:
    begins = [int(lo) for lo, _ in pads]
    ends = [int(hi) for _, hi in pads]
    if not any(begins) and not any(ends):
        return e.op("Identity", ins)
    return e.op("Pad", [ins[0], e.ints(begins + ends), e.scalar_like(value, n.dtype)],
                mode="constant")


def _cat(e: Emitter, n: Node, ins: list[str], dim: int) -> str:
    return e.op("Concat", ins, axis=int(dim))


def _matmul(e: Emitter, n: Node, ins: list[str]) -> str:
    return e.op("MatMul", ins)


def _where(e: Emitter, n: Node, ins: list[str]) -> str:
    return e.op("Where", ins)


# ---------------------------------------------------------------- indexing


def _bound(e: Emitter, value: Any, alt_values: list, sizes: tuple, stop: bool,
           step: int) -> Any:
    """A slice bound as ONNX Slice reads it (Python's meaning: negative counts from the
    end, out of range is clamped), also when it moves with a dynamic axis."""
    if value is None:
        if step > 0:
            return INT64_MAX if stop else 0
        return INT64_MIN if stop else INT64_MAX
    value = int(value)
    if all(a == value for a in alt_values):
        return value
    # it moves with the axis: a fixed distance from its end works at every size
    offsets = {int(v) - s for v, s in zip([value, *alt_values], sizes)}
    if len(offsets) == 1:
        (c,) = offsets
        if c < 0:
            return c
        if c == 0:
            return INT64_MAX if step > 0 else -1
    # it follows a dynamic size (x[:t] of a longer buffer): computed when the model runs
    dim = e.entries((value,), [(v,) for v in alt_values])[0]
    if value >= 0 and dim.k is not None:
        return dim
    raise ExportError(e.where() + f"a slice bound ({value} here) changes with a dynamic axis "
                      f"in a way that is not a fixed distance from its end; slice with "
                      f"negative indices (x[:-1]) or make the axis static")


def _bounds(e: Emitter, values: list) -> str:
    """Slice's starts or ends: numbers, and `Dim` objects computed at run time."""
    return e.shape_tensor([v if isinstance(v, Dim) else Dim(v, (), None) for v in values])


def _expand_ellipsis(index: tuple, ndim: int) -> tuple:
    used = sum(i.ndim if isinstance(i, np.ndarray) else 0 if i is None or i is Ellipsis
               else 1 for i in index)
    out = []
    for i in index:
        if i is Ellipsis:
            out.extend([slice(None)] * (ndim - used))
        else:
            out.append(i)
    if not any(i is Ellipsis for i in index):
        out.extend([slice(None)] * (ndim - used))
    return tuple(out)


def _getitem(e: Emitter, n: Node, ins: list[str], index: tuple) -> str:
    x, arrays = ins[0], list(ins[1:])
    src = n.inputs[0]
    shape = e.shape_of(src)
    alt_index = [_expand_ellipsis(a.attrs["index"], src.ndim) for a in e.alts(n)]
    index = _expand_ellipsis(index, src.ndim)

    def sizes(ax: int) -> tuple:  # the size of input axis ax in this trace and each alt
        return (src.shape[ax], *[a.inputs[0].shape[ax] for a in e.alts(n)])

    # Each item, with the input axis it reads: bool masks become their nonzero positions.
    items, axis, slot = [], 0, 0
    array_shapes: list[tuple] = [tuple(a.shape) for a in n.inputs[1:]]
    alt_array_shapes = [[tuple(a.shape) for a in alt.inputs[1:]] for alt in e.alts(n)]
    for k, it in enumerate(index):
        alts = [a[k] for a in alt_index]
        if it is None:
            items.append(("new", None, None))
        elif it is SLOT:
            items.append(("array", axis, slot))
            slot += 1
            axis += 1
        elif isinstance(it, np.ndarray):  # a bool mask (static): the positions it selects
            if any(not np.array_equal(a, it) for a in alts):
                raise ExportError(e.where() + "a bool mask over a dynamic axis has no fixed "
                                  "shape; index with integer tensors instead")
            for pos in np.nonzero(it):
                arrays.append(e.const(pos.astype(np.int64)))
                array_shapes.append(pos.shape)
                for s in alt_array_shapes:
                    s.append(pos.shape)
                items.append(("array", axis, len(arrays) - 1))
                axis += 1
        elif isinstance(it, slice):
            items.append(("slice", axis, (it, alts)))
            axis += 1
        else:
            items.append(("int", axis, (int(it), [int(a) for a in alts])))
            axis += 1
    advanced = [it for it in items if it[0] == "array"]
    # 1. slices, in one Slice node
    starts, ends, axes_, steps = [], [], [], []
    for kind, ax, data in items:
        if kind != "slice":
            continue
        s, alts = data
        step = 1 if s.step is None else int(s.step)
        if step == 1 and s.start in (None, 0) and s.stop is None:
            continue
        alt_starts = [a.start for a in alts]
        alt_stops = [a.stop for a in alts]
        start = _bound(e, s.start, alt_starts, sizes(ax), False, step)
        stop = _bound(e, s.stop, alt_stops, sizes(ax), True, step)
        if step == 1 and isinstance(start, int) and start == 0 and isinstance(stop, int) \
                and (stop == INT64_MAX or not shape[ax].deps and stop >= shape[ax].value):
            continue  # the whole axis
        starts.append(start), ends.append(stop), axes_.append(ax), steps.append(step)
    if starts:
        x = e.op("Slice", [x, _bounds(e, starts), _bounds(e, ends), e.ints(axes_),
                           e.ints(steps)])
    ints = [(ax, data) for kind, ax, data in items if kind == "int"]
    if not advanced:
        # 2. ints select one position (highest axis first, so lower axes keep their numbers)
        for ax, (value, alts) in sorted(ints, key=lambda t: -t[0]):
            value = _bound(e, value, alts, sizes(ax), False, 1) if value >= 0 else value
            where = e.const(np.asarray(value, np.int64)) if isinstance(value, int) else \
                e.op("Reshape", [e.dim_value(value), e.ints([])])
            x = e.op("Gather", [x, where], axis=ax)
        # 3. None adds a dimension of size 1
        new_axes, pos = [], 0
        for kind, _, _ in items:
            if kind == "new":
                new_axes.append(pos)
                pos += 1
            elif kind == "slice":
                pos += 1
        if new_axes:
            x = e.op("Unsqueeze", [x, e.ints(new_axes)])
        return x
    if any(kind == "new" for kind, _, _ in items):
        raise ExportError(e.where() + "indexing with both integer arrays and None has no "
                          "ONNX lowering here; unsqueeze the result instead")
    # Advanced indexing: ints count as 0-d arrays, as in NumPy.
    picked = [(kind, ax, data) for kind, ax, data in items if kind in ("array", "int")]
    picked_axes = [ax for _, ax, _ in picked]
    if len(picked) == 1 and picked[0][0] == "array":  # one index array: a Gather
        ax, k = picked[0][1], picked[0][2]
        return e.op("Gather", [x, _index64(e, arrays[k], n.inputs[1 + k].dtype
                                          if k < len(n.inputs) - 1 else np.int64)], axis=ax)
    ndim = src.ndim
    rest = [a for a in range(ndim) if a not in picked_axes]
    if picked_axes != list(range(len(picked_axes))):
        x = e.op("Transpose", [x], perm=picked_axes + rest)
    # the index arrays, broadcast together and stacked along a last axis, for GatherND
    shapes = [array_shapes[data] if kind == "array" else () for kind, _, data in picked]
    common = tuple(np.broadcast_shapes(*shapes))
    alt_common = [tuple(np.broadcast_shapes(*[s[data] if kind == "array" else ()
                                              for kind, _, data in picked]))
                  for s in alt_array_shapes]
    target = e.shape_tensor(e.entries(common, alt_common))
    columns = []
    for kind, ax, data in picked:
        if kind == "array":
            dtype = n.inputs[1 + data].dtype if data < len(n.inputs) - 1 else np.int64
            idx = _index64(e, arrays[data], dtype)
        else:
            idx = e.const(np.asarray(data[0], np.int64))
        idx = _positive(e, idx, shape[ax])
        idx = e.op("Expand", [idx, target])
        columns.append(e.op("Unsqueeze", [idx, e.ints([-1])]))
    stacked = columns[0] if len(columns) == 1 else e.op("Concat", columns, axis=-1)
    out = e.op("GatherND", [x, stacked])
    # NumPy: adjacent advanced indices put their dimensions where the first one was
    first = picked_axes[0]
    adjacent = picked_axes == list(range(first, first + len(picked_axes)))
    before = sum(1 for kind, ax, _ in items if kind == "slice" and ax < first)
    if adjacent and before:
        nb = len(common)
        perm = list(range(nb, nb + before)) + list(range(nb)) + \
            list(range(nb + before, nb + len(rest)))
        out = e.op("Transpose", [out], perm=perm)
    return out


def _index64(e: Emitter, name: str, dtype: np.dtype) -> str:
    return name if np.dtype(dtype) == np.int64 else e.cast(name, np.int64)


def _positive(e: Emitter, idx: str, dim: "Dim") -> str:
    """Negative indices counted from the end, as GatherND wants them non-negative."""
    size = e.dim_value(dim)
    negative = e.cast(e.op("Less", [idx, e.ints([0])]), np.int64)
    return e.op("Add", [idx, e.op("Mul", [negative, size])])


def _positions(e: Emitter, shape: tuple, index: tuple, ix: list[str],
               ix_nodes: tuple) -> tuple[tuple, str]:
    """The flat positions (int64, 1-D) of the elements ``x[index]`` selects in a tensor of
    ``shape``, and the selection's shape: ``arange(size).reshape(shape)[index]``, lowered
    like any getitem (the index arrays are read when the model runs)."""
    from ...ops import PRIMITIVES

    numbers = np.arange(math.prod(shape), dtype=np.int64).reshape(shape)
    source = Node("const", (), {}, shape, np.int64, value=numbers)
    selected, _ = PRIMITIVES["getitem"].infer(source, *ix_nodes, index=index)
    probe = Node("getitem", (source, *ix_nodes), {"index": index}, selected, np.int64)
    probe.id = e.current.id if e.current is not None else -1
    picked = _getitem(e, probe, [e.const(numbers), *ix], index)
    return tuple(selected), e.op("Reshape", [picked, e.ints([-1])])


def _static_only(e: Emitter, n: Node) -> None:
    if any(d.deps for m in (n, *n.inputs) for d in e.shape_of(m)):
        raise ExportError(e.where() + "writing into selected elements along a dynamic axis "
                          "has no lowering; make the axis static (drop it from dynamic_axes)")


def _values(e: Emitter, v: str, v_node: Node, selected: tuple) -> str:
    """The written values, one per selected element, flat."""
    if v_node.ndim > len(selected):  # extra leading size-1 dimensions, as NumPy allows
        v = e.op("Reshape", [v, e.ints(v_node.shape[v_node.ndim - len(selected):])])
    return e.op("Reshape", [e.op("Expand", [v, e.ints(selected)]), e.ints([-1])])


def _setitem(e: Emitter, n: Node, ins: list[str], index: tuple) -> str:
    # x with the selected positions overwritten: a scatter into the flat x (last write wins)
    _static_only(e, n)
    selected, where = _positions(e, n.shape, index, ins[2:], n.inputs[2:])
    flat = e.op("Reshape", [ins[0], e.ints([-1])])
    out = e.op("ScatterElements", [flat, where, _values(e, ins[1], n.inputs[1], selected)],
               axis=0)
    return e.op("Reshape", [out, e.ints(n.shape)])


def _scatter_add(e: Emitter, n: Node, ins: list[str], index: tuple, shape: tuple) -> str:
    # zeros with g added at the selected positions (repeated positions add up)
    _static_only(e, n)
    selected, where = _positions(e, tuple(shape), index, ins[1:], n.inputs[1:])
    zeros = e.const(np.zeros(math.prod(shape), n.dtype))
    out = e.op("ScatterElements", [zeros, where, _values(e, ins[0], n.inputs[0], selected)],
               axis=0, reduction="add")
    return e.op("Reshape", [out, e.ints(shape)])


def _as_strided(e: Emitter, n: Node, ins: list[str], shape: tuple, strides: tuple,
                offset: int) -> str:
    # the flat x gathered at each element's position
    from ...ops.movement import strided_positions

    _static_only(e, n)
    flat = e.op("Reshape", [ins[0], e.ints([-1])])
    return e.op("Gather", [flat, e.const(strided_positions(shape, strides, offset))], axis=0)


def _im2col(e: Emitter, n: Node, ins: list[str], kernel: tuple, stride: tuple,
            dilation: tuple) -> str:
    # one strided Slice of dims 1..nd per kernel offset, stacked along a new first axis
    # (the other dimensions, a dynamic batch among them, pass through whole)
    # (a dynamic spatial dimension: the slice ends d * (k - 1 - o) before the input's end,
    # which holds ceil((n - d * (k - 1)) / s) windows, as many as fit, at every size n)
    nd = len(kernel)
    out = n.shape[2:nd + 2]
    dynamic = [bool(d.deps) for d in e.shape_of(n.inputs[0])[1:nd + 1]]
    axes = e.ints(range(1, nd + 1))
    steps = e.ints(stride)
    slabs = []
    for offset in np.ndindex(*kernel):
        starts = [o * d for o, d in zip(offset, dilation)]
        ends = [(d * (o - k + 1) or INT64_MAX) if dyn else b + s * (m - 1) + 1
                for b, s, m, o, d, k, dyn in zip(starts, stride, out, offset, dilation,
                                                 kernel, dynamic)]
        slab = e.op("Slice", [ins[0], e.ints(starts), e.ints(ends), axes, steps])
        slabs.append(e.op("Unsqueeze", [slab, e.ints([0])]))
    return slabs[0] if len(slabs) == 1 else e.op("Concat", slabs, axis=0)


def _col2im(e: Emitter, n: Node, ins: list[str], kernel: tuple, stride: tuple,
            dilation: tuple, shape: tuple) -> str:
    # Each window element added into zeros of the input's shape, at its row of the
    # (C * spatial, rest) matrix: a ScatterND of whole rows, so that the trailing dimensions
    # (the batch, dynamic perhaps) pass through whole.
    from ...ops.movement import _windows

    nd = len(kernel)
    lead = tuple(shape[:nd + 1])  # (C, *spatial)
    numbers = np.arange(math.prod(lead), dtype=np.int64).reshape(lead)
    where = np.ascontiguousarray(_windows(numbers, tuple(kernel), tuple(stride),
                                          tuple(dilation), tuple(n.inputs[0].shape[2:2 + nd])))
    rows = e.op("Reshape", [ins[0], e.ints([where.size, -1])])
    zeros = e.op("Expand", [e.scalar_like(0, n.dtype), e.op("Concat", [
        e.ints([math.prod(lead)]), e.op("Shape", [rows], start=1, end=2)], axis=0)])
    out = e.op("ScatterND", [zeros, e.const(where.reshape(-1, 1)), rows], reduction="add")
    return e.op("Reshape", [out, e.shape_tensor(e.shape_of(n))])


# ---------------------------------------------------------------- the table

# primitive -> lowering(e, node, ins, **attrs) -> name of the result
LOWERINGS: dict[str, Callable[..., str]] = {
    "neg": _simple("Neg"),
    "exp": _simple("Exp"),
    "log": _simple("Log"),
    "sqrt": _simple("Sqrt"),
    "tanh": _simple("Tanh"),
    "sin": _simple("Sin"),
    "cos": _simple("Cos"),
    "sigmoid": _simple("Sigmoid"),
    "softplus": _softplus,
    "erf": _simple("Erf"),
    "erfc": _erfc,
    "tan": _simple("Tan"),
    "asin": _simple("Asin"),
    "acos": _simple("Acos"),
    "atan": _simple("Atan"),
    "asinh": _simple("Asinh"),
    "acosh": _simple("Acosh"),
    "atanh": _simple("Atanh"),
    "atan2": _atan2,
    "xlogy": _xlogy,
    "signbit": _signbit,
    "bitwise_and": _bitwise("BitwiseAnd", "And"),
    "bitwise_or": _bitwise("BitwiseOr", "Or"),
    "bitwise_xor": _bitwise("BitwiseXor", "Xor"),
    "bitwise_not": _bitwise("BitwiseNot", "Not"),
    "normal_cdf": _normal_cdf,
    "normal_cdf_tanh": _normal_cdf,
    "relu": _relu,
    "sign": _simple("Sign"),
    "abs": _simple("Abs"),
    "floor": _rounding("Floor"),
    "ceil": _rounding("Ceil"),
    "round": _rounding("Round"),  # half to even, as NumPy
    "add": _bool_or("Add", "Or"),
    "sub": _bool_or("Sub", None),
    "mul": _bool_or("Mul", "And"),
    "div": _simple("Div"),
    "pow": _simple("Pow"),
    "maximum": _bool_or("Max", "Or"),
    "lt": _compare("Less"),
    "le": _compare("LessOrEqual"),
    "gt": _compare("Greater"),
    "ge": _compare("GreaterOrEqual"),
    "eq": _compare("Equal"),
    "ne": _compare("Equal", negate=True),
    "where": _where,
    "cast": _cast,
    "sum": _sum,
    "max": _extremum("ReduceMax"),
    "min": _extremum("ReduceMin"),
    "argmax": _arg("ArgMax"),
    "argmin": _arg("ArgMin"),
    "argsort": _argsort,
    "reshape": _reshape,
    "permute": _permute,
    "expand": _expand,
    "pad": _pad,
    "getitem": _getitem,
    "as_strided": _as_strided,
    "setitem": _setitem,
    "scatter_add": _scatter_add,
    "cat": _cat,
    "matmul": _matmul,
    "im2col": _im2col,
    "col2im": _col2im,
    # a test of the values (labels in range, probabilities in [0, 1]) that raises in Python;
    # ONNX has no such op, so the exported model passes its operand on untested
    "check": lambda e, n, ins, **attrs: e.op("Identity", ins),
}

# Primitives with no lowering, and what to do instead (docs/onnx.md lists them). A primitive
# with a declared decomposition (linear, log_softmax, nll) needs no entry: tracing records
# its decomposition, whose parts are lowered.
REFUSED: dict[str, str] = {
    "rand": "random numbers are drawn anew by every run; put the model in eval mode "
            "(model.eval()) so that dropout draws none, or pass the noise in as an input",
    "poisson": "Poisson counts are drawn anew by every run; draw them outside the model and "
               "pass them in as an input",
    "bitwise_left_shift": "ONNX's BitShift takes unsigned integers only; multiply by a power "
                          "of two instead",
    "bitwise_right_shift": "ONNX's BitShift takes unsigned integers only; floor-divide by a "
                           "power of two instead",
    "gcd": "ONNX has no such operator",
    "lcm": "ONNX has no such operator",
    **dict.fromkeys(("lgamma", "digamma", "polygamma", "erfinv", "i0", "i1"),
                    "ONNX has no special functions beyond erf; compute it outside the model "
                    "and pass the result in as an input"),
    **dict.fromkeys(("inv", "solve", "det", "cofactor", "slogdet", "cholesky", "eigh",
                     "eigvalsh", "svd", "svdvals", "qr", "pinv", "matrix_exp"),
                    "standard ONNX has no operator for this matrix function; compute it "
                    "outside the model and pass its result in as an input"),
}


def lower_node(e: Emitter, node: Node, ins: list[str]) -> str:
    """The ONNX value computing ``node`` from the values ``ins`` of its operands."""
    e.current = node
    try:
        return LOWERINGS[node.op](e, node, ins, **node.attrs)
    finally:
        e.current = None


def lower_const(e: Emitter, node: Node, name: str) -> str:
    """A constant: an initializer, or (when its shape follows a dynamic axis) a number
    expanded to the shape computed at run time."""
    dims = e.shape_of(node)
    alts = e.alts(node)
    if not any(d.deps for d in dims):
        if any(not np.array_equal(a.value, node.value, equal_nan=node.dtype.kind == "f")
               for a in alts):
            count = _count_of_sizes(e, node)
            if count is not None:  # the count a mean or a variance divides by
                return count
            raise ExportError(
                    f"ONNX export: the constant %{node.id} ({node.type_str()}) is computed "
                    f"from the size of a dynamic axis; the exported graph cannot recompute "
                    f"it. Make that axis static, or compute the value from tensors (e.g. "
                    f"x.mean(0) instead of x.sum(0) / n)")
        return e.const(node.value, name=name)
    flat = node.value.reshape(-1)
    e.current = node
    try:
        if flat.size and np.all(flat == flat[0]):
            return e.op("Expand", [e.scalar_like(flat[0], node.dtype), e.shape_tensor(dims)])
        counting = _counting_axis(node.value, dims)
        if counting is not None:  # 0, 1, 2, ... along the dynamic axis (arange(n) rows)
            n = e.op("Reshape", [e.dim_value(dims[counting]), e.ints([])])
            zero, one = e.scalar_like(0, node.dtype), e.scalar_like(1, node.dtype)
            steps = e.op("Range", [zero, e.cast(n, node.dtype), one])
            line = [1] * len(dims)
            line[counting] = -1
            steps = e.op("Reshape", [steps, e.ints(line)])
            return e.op("Expand", [steps, e.shape_tensor(dims)])
        triangle = _triangle(node.value, dims)
        if triangle is not None and all(_triangle(a.value, dims) == triangle for a in alts):
            # a causal mask: one value on and below (or above) a diagonal, another elsewhere
            upper, k, inside, outside = triangle
            ones = e.op("Expand", [e.scalar_like(1, np.float32), e.shape_tensor(dims[-2:])])
            band = e.op("Trilu", [ones, e.const(np.asarray(k, np.int64))], upper=int(upper))
            mask = e.cast(band, np.bool_)
            if node.dtype == np.bool_:  # (onnxruntime has no Where of bools)
                mask = mask if inside else e.op("Not", [mask])
            else:
                mask = e.op("Where", [mask, e.scalar_like(inside, node.dtype),
                                      e.scalar_like(outside, node.dtype)])
            if node.ndim == 2:
                return mask
            return e.op("Expand", [mask, e.shape_tensor(dims)])
    finally:
        e.current = None
    raise ExportError(
        f"ONNX export: the constant %{node.id} ({node.type_str()}) has a dynamic axis but "
        f"different values along it; it cannot be recomputed at another size. Make that "
        f"axis static (drop it from dynamic_axes)")


def _count_of_sizes(e: Emitter, node: Node) -> str | None:
    """A one-element constant that is, in every trace, a dimension of a value computed
    before it (a pooled image's side) or ``k * n + c``, ``n`` the product of the dynamic
    sizes it changes with (``k`` a nonzero integer, ``c`` one of -2..2): the count that
    ``x.mean(dim)`` divides by (``n - 1`` for ``x.var(dim)``), or its reciprocal, computed
    from the sizes at run time. None for any other constant."""
    alts = e.alts(node)
    if node.value.size != 1 or node.dtype.kind not in "iuf":
        return None
    for invert in (False, True):
        values = [float(v.value.reshape(-1)[0]) for v in (node, *alts)]
        if invert:
            if 0.0 in values:
                return None
            values = [1.0 / v for v in values]
        rounded = [round(v) for v in values]
        if any(abs(v - r) > 1e-6 * max(1.0, abs(v)) for v, r in zip(values, rounded)):
            continue
        base, others = rounded[0], rounded[1:]
        deps = tuple(j for j, v in enumerate(others) if v != base)
        size = math.prod(e.symbols[j][1] for j in deps)
        k = None
        for j in deps:  # the symbol j alone changes in trace j
            grown = size // e.symbols[j][1] * e.symbols[j][2]
            step, rest = divmod(others[j] - base, grown - size)
            if rest or step == 0 or k not in (None, step):
                k = None
                break
            k = step
        dim = e._dimension_of_a_value(Dim(base, deps, None, tuple(others)))
        if dim is None and (k is None or abs(base - k * size) > 2):
            continue
        e.current = node
        try:
            if dim is not None:
                count = e.op("Shape", [dim[0]], start=dim[1], end=dim[1] + 1)
            else:
                count = e.dim_value(Dim(k * size, deps, k))
                if base != k * size:
                    count = e.op("Add", [count, e.ints([base - k * size])])
            count = e.op("Reshape", [e.cast(count, node.dtype), e.ints(node.shape)])
            return e.op("Reciprocal", [count]) if invert else count
        finally:
            e.current = None
    return None


def _triangle(value: np.ndarray, dims: list) -> tuple | None:
    """``(upper, k, inside, outside)`` when ``value`` is ``inside`` on one side of its k-th
    diagonal (``tril``, or ``triu`` with ``upper``) and ``outside`` elsewhere, in its last
    two dimensions (a dynamic one among them), the same along the others: the causal mask
    of a sequence. None otherwise."""
    if value.ndim < 2 or not (dims[-1].deps or dims[-2].deps) or \
            any(d.deps for d in dims[:-2]) or value.dtype.kind not in "biuf":
        return None
    rows, cols = value.shape[-2:]
    planes = value.reshape(-1, rows, cols)
    m = planes[0]
    if not (planes == m).all():
        return None
    kinds = np.unique(m)
    if len(kinds) != 2:
        return None
    offset = np.subtract.outer(np.arange(rows), np.arange(cols)) * -1  # j - i
    for inside, outside in (kinds, kinds[::-1]):
        where = m == inside
        for upper in (False, True):
            k = int(offset[where].min() if upper else offset[where].max())
            band = offset >= k if upper else offset <= k
            if np.array_equal(where, band):
                return (upper, k, inside.item(), outside.item())
    return None


def _counting_axis(value: np.ndarray, dims: list) -> int | None:
    """The one dynamic axis along which ``value`` counts 0, 1, 2, ... (and is constant
    along every other axis), or None."""
    dynamic = [i for i, d in enumerate(dims) if d.deps]
    if len(dynamic) != 1 or value.dtype.kind not in "iuf":
        return None
    (ax,) = dynamic
    line = [1] * value.ndim
    line[ax] = -1
    expected = np.broadcast_to(np.arange(value.shape[ax]).reshape(line), value.shape)
    return ax if np.array_equal(value, expected) else None
