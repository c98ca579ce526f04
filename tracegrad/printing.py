"""How tensors print: ``repr(t)``, ``f"{t:.4f}"`` and ``t.grad_fn``, laid out as PyTorch does."""

from __future__ import annotations

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

def tensor_repr(self: Any) -> str:
    """``repr(t)``: PyTorch's layout (``tensor([1., 2.], grad_fn=<MulBackward>)``)."""
    data = self._data
    finite = (data[np.isfinite(data)].astype(np.float64) if data.dtype.kind == "f"
              else data)
    integral = data.dtype.kind != "f" or bool(np.all(finite == np.round(finite)))
    formatter: dict = {}
    if data.dtype.kind == "b":
        formatter["bool"] = lambda b: "True" if b else "False"
    if data.dtype.kind == "f":
        digits, sci = PRINT_OPTS["precision"], PRINT_OPTS["sci_mode"]
        big = finite.size and (np.abs(finite).max() >= 1e8 or (
            np.abs(finite).max() / max(np.abs(finite[finite != 0]).min(initial=np.inf),
                                       1e-300) > 1e3 and not integral))
        if sci or (sci is None and big):
            formatter["float_kind"] = lambda v: f"{v:.{digits}e}"
        elif integral:
            formatter["float_kind"] = lambda v: f"{v:.0f}." if np.isfinite(v) else f"{v}"
        else:
            formatter["float_kind"] = lambda v: f"{v:.{digits}f}" if np.isfinite(v) else f"{v}"
    threshold = PRINT_OPTS["threshold"]
    for kind, fmt in list(formatter.items()):  # pad to one width, as PyTorch prints
        if 0 < data.size <= threshold:
            shown = finite.flat if kind == "float_kind" and finite.size else data.flat
            width = max(len(fmt(v)) for v in shown)
            formatter[kind] = lambda v, fmt=fmt, width=width: fmt(v).rjust(width)
    with np.errstate(all="ignore"):
        body = np.array2string(data, separator=", ", prefix="tensor(",
                               threshold=min(threshold, np.iinfo(np.intp).max),
                               edgeitems=PRINT_OPTS["edgeitems"],
                               max_line_width=PRINT_OPTS["linewidth"], formatter=formatter)
    extras = []
    if self._data.dtype not in (dtypes.default_float, dtypes.default_int, dtypes.bool_) or (
        self._data.size == 0
    ):
        extras.append(f"dtype={self._data.dtype}")
    if self._op is not None and self.requires_grad:
        extras.append(f"grad_fn={self.grad_fn}")
    elif self.requires_grad:
        extras.append("requires_grad=True")
    return "tensor(" + body + "".join(", " + e for e in extras) + ")"


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

