"""Shared checks for the tests: gradients of scalar functions by central finite differences.

A scalar function here is ``f(*values) -> Value`` written with `tracegrad.Value` ops. The
reference gradient comes from the forward pass only (``.data``), so it is independent of the
backward rules it checks.

>>> assert_grads_match_fd(lambda a, b: a * b.tanh(), [0.3, -1.2])
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

from tracegrad import Value

ScalarFn = Callable[..., Value]


def engine_grads(f: ScalarFn, xs: Sequence[float]) -> tuple[float, list[float]]:
    """``(f(xs), [df/dx_i])`` from one ``backward()`` on fresh leaves."""
    leaves = [Value(float(x)) for x in xs]
    out = f(*leaves)
    out.backward()
    return out.data, [leaf.grad for leaf in leaves]


def finite_differences(f: ScalarFn, xs: Sequence[float], h: float = 1e-6) -> list[float]:
    """Central differences ``(f(x + h e_i) - f(x - h e_i)) / 2h``, with h scaled to ``|x_i|``."""
    grads = []
    for i, x in enumerate(xs):
        step = h * max(1.0, abs(x))
        up = [float(v) for v in xs]
        down = list(up)
        up[i] = x + step
        down[i] = x - step
        hi = f(*map(Value, up)).data
        lo = f(*map(Value, down)).data
        grads.append((hi - lo) / ((x + step) - (x - step)))
    return grads


def close(a: float, b: float, rtol: float, atol: float) -> bool:
    return math.isfinite(a) and math.isfinite(b) and abs(a - b) <= atol + rtol * max(
        abs(a), abs(b)
    )


def assert_grads_match_fd(
    f: ScalarFn,
    xs: Sequence[float],
    rtol: float = 1e-6,
    atol: float = 1e-9,
    h: float = 1e-6,
) -> list[float]:
    """Assert that backward() agrees with central finite differences; return the grads."""
    _, grads = engine_grads(f, xs)
    numeric = finite_differences(f, xs, h)
    for i, (g, n) in enumerate(zip(grads, numeric)):
        assert close(g, n, rtol, atol), (
            f"d f / d x{i} at {list(xs)}: backward gives {g!r}, finite differences {n!r}"
        )
    return grads


def reference_example(V):
    """micrograd's README / test_more_ops expression, for any Value-like class ``V``: the
    demo's text of it, run without its backward (a, b, g)."""
    from tracegrad.demo import reference_example as run

    v = run(V, backward=False)
    return v["a"], v["b"], v["g"]


def strided_layouts(draw, n_max: int = 20) -> tuple:
    """A hypothesis draw (use with ``st.data()``): (n, size, stride, offset) such that
    ``as_strided(size, stride, offset)`` of an n-element operand stays inside it
    (overlapping and zero strides included)."""
    from hypothesis import assume
    from hypothesis import strategies as st

    n = draw(st.integers(1, n_max))
    ndim = draw(st.integers(0, 3))
    size = tuple(draw(st.lists(st.integers(0, 4), min_size=ndim, max_size=ndim)))
    stride = tuple(draw(st.lists(st.integers(0, 5), min_size=ndim, max_size=ndim)))
    reach = sum((d - 1) * s for d, s in zip(size, stride)) if all(size) else 0
    assume(reach < n)
    return n, size, stride, draw(st.integers(0, n - 1 - reach))


def compiled_steps_match(layer, inputs, rtol: float = 1e-6) -> None:
    """``y = layer(x * 1.0)`` and the gradient of ``(y * y).sum()``, eagerly and compiled by
    ``tg.compile``, on each array of ``inputs``: the same values and gradients."""
    import numpy as np

    import tracegrad as tg

    def step(x):
        y = layer(x * 1.0)
        return y, (y * y).sum()

    compiled = tg.compile(step)
    for array in inputs:
        got = []
        for f in (step, compiled):
            x = tg.tensor(array, requires_grad=True)
            y, loss = f(x)
            loss.backward()
            got.append((y.detach().numpy(), x.grad.numpy()))
        np.testing.assert_allclose(got[1][0], got[0][0], rtol=rtol)
        np.testing.assert_allclose(got[1][1], got[0][1], rtol=rtol)


def compiled_matches_eager(fn, *arrays, rtol: float = 1e-12) -> None:
    """``fn(*xs)`` and ``tg.compile(fn)(*xs)`` give the same values and input gradients (of
    ``(y * y).sum()``), on two calls (the second reuses the compiled program)."""
    import numpy as np

    import tracegrad as tg

    compiled = tg.compile(fn)
    for scale in (1.0, 0.5):
        got = []
        for f in (fn, compiled):
            xs = [tg.tensor(a * scale, requires_grad=True) for a in arrays]
            y = f(*xs)
            (y * y).sum().backward()
            got.append([y.detach().numpy()] + [x.grad.numpy() for x in xs])
        for a, b in zip(got[1], got[0]):
            np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-12)
