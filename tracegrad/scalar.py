"""`Value`: the micrograd-compatible scalar engine.

Code written for micrograd runs by changing ``from micrograd.engine import Value`` to
``from tracegrad import Value``. Three things differ underneath, none visible in results:

- A node stores its op name and its children, not a backward closure. The gradient rules
  live in the table `_RULES` below, so nodes form no reference cycles and are freed the
  moment the last reference goes (micrograd's closures make every node a cycle, and CPython's
  cyclic garbage collector then eats most of a training step).
- ``backward()`` uses the shared iterative engine (`tracegrad.autograd`): no recursion limit.
- log, exp and ``**`` outside their domain raise an error that names the op, instead of
  returning a silent ``inf``/``nan``/complex number (plain + and * follow float arithmetic).

Gradients accumulate exactly as in micrograd: ``backward()`` sets the root's grad to 1 and
adds into every other node's ``.grad``; call ``zero_grad()`` (or set ``.grad = 0``) between
steps.
"""

from __future__ import annotations

import gc
import math
import numbers
from typing import Any, Callable

from . import autograd
from .autograd import next_seq as _next_seq


def _check_number(data: Any) -> None:
    if isinstance(data, Value):
        raise TypeError(
            "Value(...) takes a number, got another Value; use that Value directly "
            "(or Value(v.data) for a fresh leaf)"
        )
    if not isinstance(data, numbers.Real):
        hint = " (for arrays use tracegrad.tensor)" if hasattr(data, "__len__") else ""
        raise TypeError(f"Value(...) takes a real number, got {type(data).__name__} {data!r}{hint}")


def _wrap(other: Any, op: str) -> "Value":
    if isinstance(other, Value):
        return other
    if isinstance(other, numbers.Real):
        return Value(other)
    raise TypeError(
        f"unsupported operand for Value {op}: {type(other).__name__} {other!r} "
        f"(a Value or a real number fits)"
    )


def _fail(op: str, what: str, fix: str, error: type = ValueError) -> None:
    raise error(f"Value {op}: {what}; {fix}")


# `x ** k` is named '**k', as in micrograd; the backward rule reads k back from the name
# rather than storing it on every node (Python prints ints and floats so they read back
# exactly, and other number types are turned into one of those first).
def _pow_op(k: numbers.Real) -> str:
    return f"**{k}"


def _exponent(op: str) -> numbers.Real | None:
    text = op[2:]
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return None


# --------------------------------------------------------------------------------------
# Backward rules: op name -> (node, upstream grad) -> one grad per child.


def _pow_rule(out: "Value", g: float) -> tuple:
    (base,) = out._children
    k = _exponent(out._op)
    if k is None:  # a user's own op whose name starts with '**', without a _backward
        return None
    if k == 0:  # x**0 is the constant 1
        return (0.0 * g,)
    try:
        return (k * base.data ** (k - 1) * g,)
    except ZeroDivisionError:
        _fail(
            out._op,
            f"the gradient k*x**(k-1) is infinite at x={base.data}",
            "keep the base away from 0 (e.g. add a small epsilon)",
            ZeroDivisionError,
        )


def _pow_value_rule(out: "Value", g: float) -> tuple:
    base, exponent = out._children
    x, k = base.data, exponent.data
    if x > 0:
        d_exp = out.data * math.log(x) * g
    elif x == 0 and k > 0:
        d_exp = 0.0  # the limit of x**k * log(x) as x -> 0+
    else:
        _fail(
            "**",
            f"the gradient with respect to the exponent, x**k * log(x), is undefined at "
            f"x={x}",
            "use a positive base, or a plain number as the exponent",
        )
    try:
        d_base = k * x ** (k - 1) * g
    except ZeroDivisionError:
        _fail("**", f"the gradient k*x**(k-1) is infinite at x={x}, k={k}",
              "keep the base away from 0", ZeroDivisionError)
    return (d_base, d_exp)


_RULES: dict[str, Callable[["Value", float], tuple]] = {
    "+": lambda out, g: (g, g),
    "*": lambda out, g: (out._children[1].data * g, out._children[0].data * g),
    "**": _pow_value_rule,
    "ReLU": lambda out, g: ((out.data > 0) * g,),
    "tanh": lambda out, g: ((1 - out.data**2) * g,),
    "exp": lambda out, g: (out.data * g,),
    "log": lambda out, g: (g / out._children[0].data,),
    "sigmoid": lambda out, g: (out.data * (1 - out.data) * g,),
}


def _sigmoid(x: float) -> float:
    # Two forms so that neither exp can overflow.
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def node_builder(cls: type) -> Callable[[Any, Any, Any, str], Any]:
    """The one way a node made by an op is built: a function ``(data, a, b, op)`` giving a
    new ``cls`` (`Value`, or the compiler's traced Value) with its children in the _a/_b
    slots (no input checks needed). `_node` is Value's; while a call is compiled, the
    tracer's (tracegrad.compiler.values._traced_node) stands in for it."""

    def node(data: Any, a: Any, b: Any, op: str) -> Any:
        v = _new(cls)
        v.data = data
        v.grad = 0
        v._a = a
        v._b = b
        v._op = op
        v._seq = _next_seq()
        v._custom_backward = None
        return v

    return node


_new = object.__new__


def _make_children(root: "Value") -> set:
    """Give every node under ``root`` its ``_children`` tuple, walking the _a/_b slots, before
    the engine reads them (one pass here is cheaper than a first-read fallback per node).
    Returns the nodes reached (``root`` among them)."""
    seen = {root}  # Values hash by identity
    stack = [root]
    while stack:
        node = stack.pop()
        a = node._a
        if a is not None:
            b = node._b
            if b is None:
                node._children = (a,)
                if a not in seen:
                    seen.add(a)
                    stack.append(a)
                continue
            node._children = (a, b)
            if a not in seen:
                seen.add(a)
                stack.append(a)
            if b not in seen:
                seen.add(b)
                stack.append(b)
            continue
        for child in node._children:
            if child not in seen:
                seen.add(child)
                stack.append(child)
    return seen


class Value:
    """A scalar node of a computation graph, with micrograd's interface.

    >>> a = Value(-4.0); b = Value(2.0)
    >>> c = (a * b + b**3).relu()
    >>> c.backward(); a.grad, b.grad
    """

    # _a and _b hold the (at most two) children of a node made by the ops below; the tuple
    # _children is made only when something asks for it (see __getattr__). One object per
    # op instead of two: CPython's cyclic GC, which scans every container object that
    # survives a while, then has half as much to do while the forward pass builds the graph.
    __slots__ = ("data", "grad", "_a", "_b", "_children", "_op", "_seq", "label",
                 "_custom_backward")

    def __init__(self, data: Any, _children: tuple = (), _op: str = "", label: str = ""):
        if type(data) is not float and type(data) is not int:
            _check_number(data)
        self.data = data
        self.grad = 0
        self._a = self._b = None
        self._children = tuple(_children)
        self._op = _op
        self._seq = _next_seq() if self._children else 0  # (only interior nodes need one)
        self.label = label
        self._custom_backward = None

    def __getattr__(self, name: str) -> Any:
        # Only called for a slot never set: the lazily made ones.
        if name == "_children":
            a, b = self._a, self._b
            kids = () if a is None else (a,) if b is None else (a, b)
            self._children = kids
            return kids
        if name == "label":
            return ""
        raise AttributeError(f"'Value' object has no attribute '{name}'")

    # micrograd exposes the children as a set named _prev.
    @property
    def _prev(self) -> set:
        return set(self._children)

    # micrograd keeps a per-node closure `_backward`. Reading it gives a callable that runs
    # this node's rule; assigning one (as custom ops in the micrograd lecture do) is honoured
    # by backward().
    @property
    def _backward(self) -> Callable[[], None]:
        def run() -> None:
            grads = self._vjp(self.grad)
            if grads is not None:
                for child, g in zip(self._children, grads):
                    child.grad += g

        return run

    @_backward.setter
    def _backward(self, fn: Callable[[], None]) -> None:
        self._custom_backward = fn

    def _vjp(self, g: float, free: bool = False) -> tuple | None:  # (micrograd keeps graphs)
        if self._custom_backward is not None:
            self._custom_backward()
            return None
        rule = _RULES.get(self._op)
        if rule is None:
            if self._op.startswith("**"):
                return _pow_rule(self, g)
            return None  # an op this engine does not know and no _backward given
        return rule(self, g)

    # ---------------------------------------------------------------- primitives

    def __add__(self, other: Any) -> "Value":
        other = other if isinstance(other, Value) else _wrap(other, "+")
        return _node(self.data + other.data, self, other, "+")

    def __mul__(self, other: Any) -> "Value":
        other = other if isinstance(other, Value) else _wrap(other, "*")
        return _node(self.data * other.data, self, other, "*")

    def __pow__(self, other: Any) -> "Value":
        if isinstance(other, Value):
            return _node(self._power(other.data, "**"), self, other, "**")
        if not isinstance(other, numbers.Real):
            raise TypeError(
                f"Value **: the exponent must be a number or a Value, got {type(other).__name__}"
            )
        if type(other) is not int and type(other) is not float:
            other = int(other) if isinstance(other, numbers.Integral) else float(other)
        op = _pow_op(other)
        return _node(self._power(other, op), self, None, op)

    def _power(self, k: Any, op: str) -> float:
        x = self.data
        try:
            out = x**k
        except ZeroDivisionError:
            _fail(op, f"{x} ** {k} divides by zero", "keep the base away from 0",
                  ZeroDivisionError)
        except OverflowError:
            _fail(op, f"{x} ** {k} overflows a float", "use smaller numbers", OverflowError)
        if isinstance(out, complex):
            _fail(op, f"{x} ** {k} is not a real number (negative base, fractional exponent)",
                  "use a positive base or an integer exponent")
        return out

    def relu(self) -> "Value":
        return _node(0 if self.data < 0 else self.data, self, None, "ReLU")

    def tanh(self) -> "Value":
        return _node(math.tanh(self.data), self, None, "tanh")

    def exp(self) -> "Value":
        try:
            out = math.exp(self.data)
        except OverflowError:
            _fail("exp", f"exp({self.data}) overflows a float", "use smaller inputs",
                  OverflowError)
        return _node(out, self, None, "exp")

    def log(self) -> "Value":
        if self.data <= 0:
            _fail("log", f"log({self.data}) is undefined (the input must be > 0)",
                  "clamp the input to a small positive number first")
        return _node(math.log(self.data), self, None, "log")

    def sigmoid(self) -> "Value":
        return _node(_sigmoid(self.data), self, None, "sigmoid")

    # ---------------------------------------------------------------- derived, as in micrograd

    def __neg__(self) -> "Value":  # -self
        return self * -1

    def __radd__(self, other: Any) -> "Value":  # other + self
        return self + other

    def __sub__(self, other: Any) -> "Value":  # self - other
        return self + (-other)

    def __rsub__(self, other: Any) -> "Value":  # other - self
        return other + (-self)

    def __rmul__(self, other: Any) -> "Value":  # other * self
        return self * other

    def __truediv__(self, other: Any) -> "Value":  # self / other
        if not isinstance(other, (Value, numbers.Real)):
            raise TypeError(
                f"unsupported operand for Value /: {type(other).__name__} {other!r} "
                f"(a Value or a real number fits)"
            )
        if not isinstance(other, Value) and other == 0:
            _fail("/", f"{self.data} / 0 divides by zero", "divide by a nonzero number",
                  ZeroDivisionError)
        return self * other**-1

    def __rtruediv__(self, other: Any) -> "Value":  # other / self
        return other * self**-1

    def __rpow__(self, other: Any) -> "Value":  # other ** self
        return _wrap(other, "**") ** self

    # ---------------------------------------------------------------- autograd

    def backward(self) -> None:
        """Fill ``.grad`` of every node this value depends on (d self / d node).

        The root's grad is set to 1; every other grad is *added to*, so call
        ``zero_grad()`` between steps, as in micrograd.
        """
        # The engine makes no reference cycles, so the cyclic GC has nothing to find here;
        # pausing it avoids its scans of the graph while the children tuples get made.
        enabled = gc.isenabled()
        gc.disable()
        try:
            _make_children(self)
            autograd.backpropagate(self, 1, autograd.GradsOnNodes)
        finally:
            if enabled:
                gc.enable()

    def __repr__(self) -> str:
        return f"Value(data={self.data}, grad={self.grad})"



_node = node_builder(Value)  # (Value's methods call it by this name: the tracer swaps it)
