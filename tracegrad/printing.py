"""How tensors print: ``repr(t)``, ``f"{t:.4f}"`` and ``t.grad_fn``, laid out as PyTorch does."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from . import dtypes

if TYPE_CHECKING:
    from .tensor import Tensor


# PyTorch's print options and their profiles (torch.set_printoptions)
_PROFILES = {"default": dict(precision=4, threshold=1000, edgeitems=3, linewidth=80),
             "short": dict(precision=2, threshold=1000, edgeitems=2, linewidth=80),
             "full": dict(precision=4, threshold=float("inf"), edgeitems=3, linewidth=80)}
PRINT_OPTS: dict = dict(_PROFILES["default"], sci_mode=None)


def set_printoptions(precision: int | None = None, threshold: float | None = None,
                     edgeitems: int | None = None, linewidth: int | None = None,
                     profile: str | None = None, sci_mode: bool | None = None) -> None:
    """How tensors print, as ``torch.set_printoptions``: digits after the point
    (``precision``), the element count above which the middle is elided (``threshold``),
    the elements kept at each end then (``edgeitems``), the line width, a ``profile``
    (``"default"``, ``"short"``, ``"full"``) and ``sci_mode`` (True: always scientific,
    False: never, None: PyTorch's choice).

    >>> tg.set_printoptions(precision=2); tg.tensor([1.2345])
    tensor([1.23])
    """
    if profile is not None:
        if profile not in _PROFILES:
            raise ValueError(f"set_printoptions: profile must be one of {list(_PROFILES)}, "
                             f"got {profile!r}")
        PRINT_OPTS.update(_PROFILES[profile])
    for key, value in (("precision", precision), ("threshold", threshold),
                       ("edgeitems", edgeitems), ("linewidth", linewidth)):
        if value is not None:
            PRINT_OPTS[key] = value
    PRINT_OPTS["sci_mode"] = sci_mode  # (as PyTorch: every call sets it, None included)


def tensor_format(self: Any, spec: str) -> str:
    """``f"{loss:.4f}"`` formats a 0-d tensor's number, as in PyTorch."""
    if self._data.ndim == 0:
        return format(self.item(), spec)
    return object.__format__(self, spec)

def _formatter(data: np.ndarray) -> Any:
    """PyTorch's ``_Formatter``: one width for every element (from the elements shown), and
    integers, fixed point or scientific notation as the shown values ask."""
    if data.dtype.kind != "f":
        plain = (lambda v: "True" if v else "False") if data.dtype.kind == "b" else str
        width = max([1] + [len(plain(v)) for v in data.ravel().tolist()])
        return lambda v: plain(v).rjust(width), width
    digits = PRINT_OPTS["precision"]
    with np.errstate(all="ignore"):
        values = data.astype(np.float64).ravel()
        shown = values[np.isfinite(values) & (values != 0)]
    int_mode, sci, width = True, False, 1
    if shown.size:  # (else PyTorch keeps its defaults, sci_mode=True or not)
        size = np.abs(shown)
        low, high = size.min(), size.max()
        int_mode = bool(np.all(shown == np.ceil(shown)))
        sci = high / low > 1000.0 or high > 1.0e8 or low < 1.0e-4 \
            if PRINT_OPTS["sci_mode"] is None else PRINT_OPTS["sci_mode"]
        spec = f".{digits}e" if sci else ".0f" if int_mode else f".{digits}f"
        width = max(len(format(v, spec)) for v in shown.tolist()) + (int_mode and not sci)

    def fmt(v: float) -> str:
        if sci:
            text = f"{v:{width}.{digits}e}"
        elif int_mode:
            text = f"{v:.0f}" + ("." if math.isfinite(v) else "")
        else:
            text = f"{v:.{digits}f}"
        return text.rjust(width)

    return fmt, width


def _summarized(data: np.ndarray, edge: int) -> np.ndarray:
    """The elements a summarized print shows (``edge`` at each end of every dimension)."""
    for axis in range(data.ndim):
        if data.shape[axis] > 2 * edge:
            keep = list(range(edge)) + list(range(data.shape[axis] - edge, data.shape[axis]))
            data = np.take(data, keep, axis=axis)
    return data


def _body(data: np.ndarray, indent: int, summarize: bool, fmt: Any, width: int) -> str:
    edge = PRINT_OPTS["edgeitems"]
    if data.ndim == 0:
        return fmt(data.item())
    if data.ndim == 1:
        per_line = max(1, int((PRINT_OPTS["linewidth"] - indent) // (width + 2)))
        if summarize and data.shape[0] > 2 * edge:
            items = ([fmt(v) for v in data[:edge].tolist()] + [" ..."]
                     + [fmt(v) for v in data[-edge:].tolist()])
        else:
            items = [fmt(v) for v in data.tolist()]
        lines = [", ".join(items[i:i + per_line]) for i in range(0, len(items), per_line)]
        return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"
    if summarize and data.shape[0] > 2 * edge:
        rows = ([_body(data[i], indent + 1, summarize, fmt, width) for i in range(edge)]
                + ["..."]
                + [_body(data[i], indent + 1, summarize, fmt, width)
                   for i in range(data.shape[0] - edge, data.shape[0])])
    else:
        rows = [_body(row, indent + 1, summarize, fmt, width) for row in data]
    return "[" + ("," + "\n" * (data.ndim - 1) + " " * (indent + 1)).join(rows) + "]"


def tensor_repr(self: Any) -> str:
    """``repr(t)``: PyTorch's layout (``tensor([1., 2.], grad_fn=<MulBackward>)``), its
    print options included (`set_printoptions`)."""
    data = self._data
    prefix = "tensor("
    indent = len(prefix)
    suffixes = []
    if data.size == 0:
        body = "[]"
        if data.ndim != 1:
            suffixes.append(f"size={tuple(data.shape)}")
        if data.dtype != dtypes.default_float:
            suffixes.append(f"dtype={data.dtype}")
    else:
        if not PRINT_OPTS["edgeitems"]:  # (PyTorch's rule, even when every element shows)
            suffixes.append(f"size={tuple(data.shape)}")
        summarize = data.size > PRINT_OPTS["threshold"]
        shown = _summarized(data, PRINT_OPTS["edgeitems"]) if summarize else data
        fmt, width = _formatter(shown)
        body = "[...]" if summarize and not PRINT_OPTS["edgeitems"] else \
            _body(data, indent, summarize, fmt, width)
        if data.dtype not in (dtypes.default_float, dtypes.default_int, dtypes.bool_):
            suffixes.append(f"dtype={data.dtype}")
    if self._op is not None and self.requires_grad:
        suffixes.append(f"grad_fn={self.grad_fn}")
    elif self.requires_grad:
        suffixes.append("requires_grad=True")
    out = prefix + body
    last_line = len(out) - out.rfind("\n") + 1
    for suffix in suffixes:  # (a suffix that does not fit goes on a line of its own)
        if last_line + len(suffix) + 2 > PRINT_OPTS["linewidth"]:
            out += ",\n" + " " * indent + suffix
            last_line = indent + len(suffix)
        else:
            out += ", " + suffix
            last_line += len(suffix) + 2
    return out + ")"


class GradFn(str):
    """``t.grad_fn``: the name of the op that made ``t`` (a string, as tracegrad has always
    shown it) with PyTorch's ``name()`` and ``next_functions`` (the grad_fn of each input:
    ``<AccumulateGrad>`` for a leaf that requires grad, None for one that does not)."""

    def __new__(cls, text: str, node: "Tensor | None") -> "GradFn":
        fn = super().__new__(cls, text)
        fn.node = node
        return fn

    def name(self) -> str:
        return self[1:-1]

    @property
    def next_functions(self) -> tuple:
        out = []
        for child in getattr(self.node, "_children", ()) or ():
            if child._op is not None:
                out.append((child.grad_fn, 0))
            elif child.requires_grad:
                acc = GradFn("<AccumulateGrad>", None)
                acc.variable = child
                out.append((acc, 0))
            else:
                out.append((None, 0))
        return tuple(out)


def _backward_name(prim_name: str) -> str:
    return "".join(part.capitalize() for part in prim_name.split("_")) + "Backward"

