"""One gradient checker for every op test, in the spirit of HIPS autograd's ``check_grads``.

``check_grads(fn, *inputs)`` checks a function of float64 tensors against central finite
differences, to first and second order. ``compare_with_torch(tg_fn, torch_fn, *arrays)``
replays the same computation in PyTorch and compares forward values, dtypes, first gradients
and second-order gradients.

Both differentiate the scalar ``L(x) = sum(f(x) * v)`` for a random cotangent ``v`` (so every
output element counts with its own weight), and for second order the scalar
``H(x) = sum_i <dL/dx_i, w_i>`` for random ``w_i``: the gradient of H is the Hessian-vector
product, so a wrong double-backward rule shows up as a wrong number.

>>> check_grads(lambda x, y: (x * y).exp(), tg.tensor([1.0, 2.0], dtype=tg.float64),
...             tg.tensor([0.5, -1.0], dtype=tg.float64))
>>> compare_with_torch(lambda x: x.tanh(), lambda x: x.tanh(), np.array([0.1, 2.0]))
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

import tracegrad as tg

__all__ = ["check_grads", "compare_with_torch", "tg_vjp", "tg_hvp", "assert_close"]

Fn = Callable[..., Any]


# ------------------------------------------------------------------------------ helpers


def assert_close(actual: Any, expected: Any, rtol: float, atol: float, what: str) -> None:
    """``assert_allclose`` with shapes checked and a message that says what was compared."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert actual.shape == expected.shape, (
        f"{what}: shape {actual.shape}, expected {expected.shape}"
    )
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol, equal_nan=True,
                               err_msg=what)


def _arrays(inputs: Sequence[Any]) -> list[np.ndarray]:
    out = []
    for i, x in enumerate(inputs):
        a = np.asarray(x.numpy() if isinstance(x, tg.Tensor) else x)
        if a.dtype != np.float64:
            raise TypeError(f"check_grads: input {i} is {a.dtype}; finite differences need "
                            f"float64 inputs")
        out.append(np.array(a, copy=True))
    return out


def _leaves(arrays: Sequence[np.ndarray]) -> list[tg.Tensor]:
    return [tg.tensor(a, dtype=a.dtype, requires_grad=a.dtype.kind == "f") for a in arrays]


def _tensors(arrays: Sequence[np.ndarray]) -> list[tg.Tensor]:
    # dtype= always: a 0-d array plus a float is a NumPy scalar, and tg.tensor(np.float64(x))
    # would be float32.
    return [tg.tensor(np.asarray(a), dtype=np.asarray(a).dtype) for a in arrays]


def _forward(fn: Fn, arrays: Sequence[np.ndarray]) -> np.ndarray:
    with tg.no_grad():
        out = fn(*_tensors(arrays))
    return np.array(out.numpy(), dtype=np.float64)


def _zeros_like(arrays: Sequence[np.ndarray]) -> list[np.ndarray]:
    return [np.zeros_like(a) for a in arrays]


def _data(t: Any, like: np.ndarray) -> np.ndarray:
    return np.zeros_like(like) if t is None else np.asarray(t.numpy())


def _torch_numpy(t: Any) -> np.ndarray:
    """A torch tensor's values; ``force=True`` also reads the ZeroTensor that torch's double
    backward returns for ops whose second derivative is zero (abs, relu, ...)."""
    return t.detach().numpy(force=True)


def _random_like(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    return np.asarray(rng.standard_normal(shape))


# ------------------------------------------------------------------------------ tracegrad sides


def tg_vjp(fn: Fn, arrays: Sequence[np.ndarray], v: np.ndarray) -> list[np.ndarray]:
    """Gradients of ``sum(fn(*x) * v)`` by ``tg.grad`` (never touches ``.grad``)."""
    n = len(arrays)
    vt = tg.tensor(v, dtype=v.dtype)

    def loss(*xs: tg.Tensor) -> tg.Tensor:
        return (fn(*xs) * vt).sum()

    grads = tg.grad(loss, argnums=tuple(range(n)))(*_tensors(arrays))
    return [np.asarray(g.numpy()) for g in grads]


def _vjp_by_backward(fn: Fn, arrays: Sequence[np.ndarray], v: np.ndarray,
                     create_graph: bool) -> tuple[list[tg.Tensor], list[Any]]:
    leaves = _leaves(arrays)
    out = fn(*leaves)
    if not out.requires_grad:
        return leaves, [None] * len(leaves)
    (out * tg.tensor(v, dtype=v.dtype)).sum().backward(create_graph=create_graph)
    return leaves, [x.grad for x in leaves]


def tg_hvp(fn: Fn, arrays: Sequence[np.ndarray], v: np.ndarray,
           ws: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Gradients of ``sum_i <d sum(fn * v) / dx_i, w_i>`` by nested ``tg.grad``."""
    n = len(arrays)
    vt = tg.tensor(v, dtype=v.dtype)
    wts = [tg.tensor(w, dtype=w.dtype) for w in ws]

    def loss(*xs: tg.Tensor) -> tg.Tensor:
        return (fn(*xs) * vt).sum()

    def inner(*xs: tg.Tensor) -> tg.Tensor:
        grads = tg.grad(loss, argnums=tuple(range(n)))(*xs)
        total = None
        for g, w in zip(grads, wts):
            term = (g * w).sum()
            total = term if total is None else total + term
        return total

    grads = tg.grad(inner, argnums=tuple(range(n)))(*_tensors(arrays))
    return [np.asarray(g.numpy()) for g in grads]


def _hvp_by_backward(fn: Fn, arrays: Sequence[np.ndarray], v: np.ndarray,
                     ws: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The same Hessian-vector product by ``backward(create_graph=True)`` twice."""
    leaves, grads = _vjp_by_backward(fn, arrays, v, create_graph=True)
    total = None
    for g, w in zip(grads, ws):
        if g is not None and g.requires_grad:
            term = (g * tg.tensor(w, dtype=w.dtype)).sum()
            total = term if total is None else total + term
    for x in leaves:
        x.grad = None
    if total is None:
        return _zeros_like(arrays)
    total.backward()
    return [_data(x.grad, a) for x, a in zip(leaves, arrays)]


# ------------------------------------------------------------------------------ finite differences


def _directions(rng: np.random.Generator, a: np.ndarray, full_fd_max: int) -> list[np.ndarray]:
    """Unit vectors along each element (small inputs) or one random direction (large ones)."""
    if a.size == 0:
        return []
    if a.size <= full_fd_max:
        dirs = []
        for j in range(a.size):
            e = np.zeros(a.size)
            e[j] = 1.0
            dirs.append(e.reshape(a.shape))
        return dirs
    u = rng.standard_normal(a.shape)
    return [u / np.linalg.norm(u)]


def _numeric_directional(scalar_fn: Callable[[list[np.ndarray]], float],
                         arrays: list[np.ndarray], i: int, u: np.ndarray, eps: float) -> float:
    up = [a.copy() for a in arrays]
    down = [a.copy() for a in arrays]
    up[i] = np.asarray(arrays[i] + eps * u)
    down[i] = np.asarray(arrays[i] - eps * u)
    return (scalar_fn(up) - scalar_fn(down)) / (2 * eps)


def _check_against_fd(label: str, analytic: list[np.ndarray],
                      scalar_fn: Callable[[list[np.ndarray]], float],
                      arrays: list[np.ndarray], rng: np.random.Generator, eps: float,
                      rtol: float, atol: float, full_fd_max: int) -> None:
    for i, (a, g) in enumerate(zip(arrays, analytic)):
        assert g.shape == a.shape, f"{label}: gradient of input {i} has shape {g.shape}, " \
                                   f"input has {a.shape}"
        for u in _directions(rng, a, full_fd_max):
            numeric = _numeric_directional(scalar_fn, arrays, i, u, eps)
            exact = float(np.sum(g * u))
            where = (f"element {np.unravel_index(int(np.argmax(u)), a.shape)}"
                     if a.size <= full_fd_max else "a random direction")
            assert abs(exact - numeric) <= atol + rtol * abs(numeric), (
                f"{label}: input {i} (shape {a.shape}) along {where}: reverse mode gives "
                f"{exact!r}, central finite differences {numeric!r}\ninputs: {arrays}"
            )


# ------------------------------------------------------------------------------ the checkers


def check_grads(fn: Fn, *inputs: Any, order: int = 2, atol: float = 1e-6, rtol: float = 1e-5,
                eps: float = 1e-6, seed: int = 0, full_fd_max: int = 12) -> None:
    """Check reverse-mode gradients of ``fn`` against central finite differences (float64).

    ``fn(*tensors) -> Tensor``; ``inputs`` are float64 tensors or arrays. Order 1 checks the
    gradient of ``sum(fn * v)`` for a random cotangent ``v`` (computed both by ``tg.grad`` and by
    ``backward()``, which must agree); order 2 also checks its Hessian-vector products (nested
    ``tg.grad`` and ``backward(create_graph=True)``, which must agree) against finite differences
    of the first gradient. Inputs with at most ``full_fd_max`` elements are perturbed one element
    at a time, larger ones along one random direction.
    """
    arrays = _arrays(inputs)
    rng = np.random.default_rng(seed)
    out = _forward(fn, arrays)
    v = _random_like(rng, out.shape)

    # The output and its dtype: float64 in, float64 out.
    leaves = _leaves(arrays)
    out_t = fn(*leaves)
    assert out_t.dtype == np.float64, f"check_grads: output is {out_t.dtype}, not float64"
    assert_close(out_t.numpy(), out, 0, 0, "output with and without grad mode")
    if order < 1:
        return

    def loss(xs: list[np.ndarray]) -> float:
        return float(np.sum(_forward(fn, xs) * v))

    grads = tg_vjp(fn, arrays, v)
    _, by_backward = _vjp_by_backward(fn, arrays, v, create_graph=False)
    for i, (g, b, a) in enumerate(zip(grads, by_backward, arrays)):
        bd = _data(b, a)
        if b is not None:
            assert b.dtype == np.float64, f"x{i}.grad is {b.dtype}"
        assert_close(bd, g, 1e-12, 1e-12, f"first gradient of input {i}: backward() vs tg.grad")
    _check_against_fd("first order", grads, loss, arrays, rng, eps, rtol, atol, full_fd_max)
    if order < 2:
        return

    ws = [_random_like(rng, a.shape) for a in arrays]

    def grad_dot_w(xs: list[np.ndarray]) -> float:
        return float(sum(np.sum(g * w) for g, w in zip(tg_vjp(fn, xs, v), ws)))

    hvp = tg_hvp(fn, arrays, v, ws)
    by_backward = _hvp_by_backward(fn, arrays, v, ws)
    for i, (h, b) in enumerate(zip(hvp, by_backward)):
        assert_close(b, h, 1e-12, 1e-12,
                     f"second-order gradient of input {i}: backward(create_graph=True) vs "
                     f"nested tg.grad")
    _check_against_fd("second order", hvp, grad_dot_w, arrays, rng, eps, rtol, atol,
                      full_fd_max)


def compare_with_torch(tg_fn: Fn, torch_fn: Fn, *arrays: Any, order: int = 2,
                       rtol: float | None = None, atol: float | None = None, seed: int = 0,
                       check_dtype: bool = True) -> Any:
    """Replay ``tg_fn`` as ``torch_fn`` on the same arrays; compare values, dtypes and gradients.

    Float arrays become leaves that require grad (in their own dtype) on both sides; other
    arrays are passed as plain tensors. Order 1 compares the gradients of ``sum(out * v)``,
    order 2 the gradients of ``sum_i <grad_i, w_i>`` (double backward). A float output that
    PyTorch differentiates but tracegrad does not (e.g. ``sign``) must have zero gradients.
    Returns the tracegrad output.
    """
    torch = __import__("pytest").importorskip("torch")
    arrays = [np.asarray(a) for a in arrays]
    rng = np.random.default_rng(seed)
    tiny = any(a.dtype in (np.float32, np.float16) for a in arrays)
    rtol = rtol if rtol is not None else (1e-5 if tiny else 1e-10)
    atol = atol if atol is not None else (1e-6 if tiny else 1e-12)

    diff = [a.dtype.kind == "f" for a in arrays]
    tx = [tg.tensor(a, dtype=a.dtype, requires_grad=d and order > 0) for a, d in zip(arrays, diff)]
    px = [torch.tensor(a).requires_grad_(d and order > 0) for a, d in zip(arrays, diff)]
    tout = tg_fn(*tx)
    pout = torch_fn(*px)

    t_np = np.asarray(tout.numpy())
    p_np = _torch_numpy(pout)
    if check_dtype:
        assert str(tout.dtype) == str(pout.dtype).replace("torch.", ""), (
            f"output dtype: tracegrad {tout.dtype}, torch {pout.dtype}"
        )
    if t_np.dtype.kind == "f":
        out_tol = (rtol, atol) if t_np.dtype == np.float64 else (max(rtol, 1e-6), max(atol, 1e-6))
        assert_close(t_np, p_np, *out_tol, "forward values")
    else:
        assert t_np.shape == p_np.shape, f"forward shape {t_np.shape}, torch {p_np.shape}"
        np.testing.assert_array_equal(t_np, p_np, err_msg="forward values")
    if t_np.dtype.kind != "f":
        assert not tout.requires_grad, f"a {t_np.dtype} result must not require grad"
        return tout
    if order < 1:
        return tout

    v = _random_like(rng, t_np.shape).astype(t_np.dtype)
    t_loss = (tout * tg.tensor(v, dtype=v.dtype)).sum() if tout.requires_grad else None
    if t_loss is not None:
        t_loss.backward(create_graph=order > 1)
    t_grads = [x.grad if d else None for x, d in zip(tx, diff)]

    p_leaves = [x for x, d in zip(px, diff) if d]
    p_grads_list = [None] * len(p_leaves)
    if pout.requires_grad:
        p_loss = (pout * torch.tensor(v)).sum()
        p_grads_list = list(torch.autograd.grad(p_loss, p_leaves, create_graph=order > 1,
                                                allow_unused=True))
    p_grads = []
    it = iter(p_grads_list)
    for d in diff:
        p_grads.append(next(it) if d else None)

    for i, (a, d, tg_g, pt_g) in enumerate(zip(arrays, diff, t_grads, p_grads)):
        if not d:
            continue
        tg_a = _data(tg_g, a)
        pt_a = np.zeros_like(a) if pt_g is None else _torch_numpy(pt_g)
        if tg_g is not None:
            assert tg_g.dtype == a.dtype, f"grad of input {i}: dtype {tg_g.dtype}, input {a.dtype}"
        assert_close(tg_a, pt_a, rtol, atol, f"first gradient of input {i} vs torch")
    if order < 2:
        return tout

    ws = [_random_like(rng, a.shape).astype(a.dtype) if d else None for a, d in zip(arrays, diff)]
    t_total = None
    for g, w in zip(t_grads, ws):
        if g is not None and g.requires_grad:
            term = (g * tg.tensor(w, dtype=w.dtype)).sum()
            t_total = term if t_total is None else t_total + term
    for x in tx:
        x.grad = None
    if t_total is not None:
        t_total.backward()
    p_total = None
    for g, w in zip(p_grads, ws):
        if g is not None and g.requires_grad:
            term = (g * torch.tensor(w)).sum()
            p_total = term if p_total is None else p_total + term
    p_second = [None] * len(p_leaves)
    if p_total is not None:
        p_second = list(torch.autograd.grad(p_total, p_leaves, allow_unused=True))
    it = iter(p_second)
    for i, (a, d, x) in enumerate(zip(arrays, diff, tx)):
        if not d:
            continue
        pt_g = next(it)
        tg_a = _data(x.grad, a)
        pt_a = np.zeros_like(a) if pt_g is None else _torch_numpy(pt_g)
        # (second order sums more rounding: where the true value is 0, as for corrcoef of a
        # single row, both libraries give noise of ~1e-12 that differs in sign)
        assert_close(tg_a, pt_a, rtol, atol * 100, f"second-order gradient of input {i} vs torch")
    return tout
