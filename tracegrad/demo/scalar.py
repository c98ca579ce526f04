"""Demo section ``scalar``: micrograd's README example on `tracegrad.Value`, and its graph."""

from __future__ import annotations

from typing import Any

from ..autograd import all_nodes
from ..scalar import Value
from .tour import Demo, _draw_svg_or_dot

# micrograd's README example, verbatim. It is printed and then executed from this one
# string, so what the reader sees is exactly what ran.
REFERENCE_EXAMPLE = """\
a = Value(-4.0)
b = Value(2.0)
c = a + b
d = a * b + b**3
c += c + 1
c += 1 + c + (-a)
d += d * 2 + (b + a).relu()
d += 3 * d + (b - a).relu()
e = c - d
f = e**2
g = f / 2.0
g += 10.0 / f
"""
REFERENCE_BACKWARD = "g.backward()\n"


def reference_example(value_class: Any = Value, backward: bool = True) -> dict[str, Any]:
    """Run `REFERENCE_EXAMPLE` with ``value_class`` as ``Value`` (tracegrad's, or micrograd's
    for a comparison), then `REFERENCE_BACKWARD` if ``backward``; return its named Values,
    each labelled with its name.

    >>> v = reference_example()
    >>> round(v["g"].data, 4), round(v["a"].grad, 4), round(v["b"].grad, 4)
    (24.7041, 138.8338, 645.5773)
    """
    names: dict[str, Any] = {"Value": value_class}
    # constants of this module, never user input
    exec(REFERENCE_EXAMPLE + (REFERENCE_BACKWARD if backward else ""), names)
    values = {k: v for k, v in names.items() if isinstance(v, value_class)}
    for name, value in values.items():
        value.label = name  # so the drawing says which box is which
    return values


def section(demo: Demo) -> None:
    demo.say("micrograd's README example, run on tracegrad.Value:")
    demo.say()
    for line in (REFERENCE_EXAMPLE + REFERENCE_BACKWARD).splitlines():
        demo.say(f"    {line}")
    v = reference_example()
    demo.say()
    demo.say(f"  g     = {v['g'].data:8.4f}   g.data, the forward pass")
    demo.say(f"  dg/da = {v['a'].grad:8.4f}   a.grad, from g.backward()")
    demo.say(f"  dg/db = {v['b'].grad:8.4f}   b.grad")
    demo.say("  The same three numbers as micrograd's README.")
    demo.say()

    nodes = len(all_nodes(v["g"]))
    _draw_svg_or_dot(demo, v["g"], "graph", f"the graph of g ({nodes} values)")
