"""``tg.autograd.gradcheck`` and ``gradgradcheck``: a function's gradients against float64
central finite differences, PyTorch's way. The project's own tests use them too.

>>> x = tg.tensor([0.3, -1.2], dtype=tg.float64, requires_grad=True)
>>> tg.autograd.gradcheck(lambda x: (x.sin() * x).sum(), (x,))
True
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..tensor import Tensor, _leaf


class GradcheckError(RuntimeError):
    """A gradient that disagrees with finite differences."""


def _outputs(out: Any) -> list:
    outs = list(out) if isinstance(out, (tuple, list)) else [out]
    return [o for o in outs if isinstance(o, Tensor)]


def _numerical(func: Callable, inputs: tuple, k: int, eps: float) -> list:
    """d outputs / d inputs[k], one column per element, by central differences in float64."""
    x = inputs[k]
    base = np.array(x._data, dtype=np.float64)
    cols = []
    for j in range(base.size):
        vals = []
        for step in (eps, -eps):
            moved = base.copy()
            moved.flat[j] += step
            args = list(inputs)
            args[k] = _leaf(moved.astype(x.dtype), requires_grad=True)
            vals.append([np.array(o._data, dtype=np.float64) for o in _outputs(func(*args))])
        cols.append([(a - b) / (2 * eps) for a, b in zip(*vals)])
    # per output: (out.size, x.size)
    return [np.stack([c[m].reshape(-1) for c in cols], axis=1) if cols else None
            for m in range(len(cols[0]) if cols else 0)]


def _analytical(func: Callable, inputs: tuple, k: int, n_out: int) -> list:
    """The same Jacobian, one backward per output element (reverse mode alone, as the
    function's own rules and Functions compute it)."""
    from .api import grad

    x = inputs[k]
    outs = _outputs(func(*inputs))
    jacs = []
    for o in outs:
        rows = np.zeros((o.numel(), x.numel()))
        if o.requires_grad:
            for i in range(o.numel()):
                seed = np.zeros(o.shape, dtype=o.dtype)
                seed.flat[i] = 1
                (g,) = grad(o, x, _leaf(seed), retain_graph=True, allow_unused=True)
                if g is not None:
                    rows[i] = np.asarray(g._data, dtype=np.float64).reshape(-1)
        jacs.append(rows)
    return jacs


def _forward_mode(func: Callable, inputs: tuple, k: int) -> list:
    from ..transforms import jvp

    x = inputs[k]
    cols = []
    for j in range(x.numel()):
        e = np.zeros(x.shape, dtype=x.dtype)
        e.flat[j] = 1
        tangents = tuple(_leaf(e) if i == k else _leaf(np.zeros(a.shape, dtype=a.dtype))
                         for i, a in enumerate(inputs))
        _, t = jvp(lambda *a: func(*a), tuple(a.detach() for a in inputs), tangents)
        cols.append([np.asarray(v._data, dtype=np.float64).reshape(-1)
                     for v in _outputs(t)])
    return [np.stack([c[m] for c in cols], axis=1) for m in range(len(cols[0]))]


def gradcheck(func: Callable, inputs: Any, *, eps: float = 1e-6, atol: float = 1e-5,
              rtol: float = 1e-3, raise_exception: bool = True,
              check_forward_ad: bool = False, check_backward_ad: bool = True,
              **ignored: Any) -> bool:
    """Whether the gradients of ``func`` at ``inputs`` (the tensors among them that require
    grad; float64 for a meaningful check) match central finite differences:
    ``|analytical - numerical| <= atol + rtol * |numerical|`` everywhere. With
    ``check_forward_ad``, forward mode (``tg.jvp``) is checked too. Raises `GradcheckError`
    naming the input, output and worst element, or returns False if not ``raise_exception``.
    """
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    for k, x in enumerate(inputs):
        if not (isinstance(x, Tensor) and x.requires_grad):
            continue
        numerical = _numerical(func, inputs, k, eps)
        modes = []
        if check_backward_ad:
            modes.append(("backward", _analytical(func, inputs, k, len(numerical))))
        if check_forward_ad:
            modes.append(("forward", _forward_mode(func, inputs, k)))
        for mode, analytical in modes:
            for m, (a, n) in enumerate(zip(analytical, numerical)):
                bad = np.abs(a - n) > atol + rtol * np.abs(n)
                if bad.any():
                    i, j = np.unravel_index(np.argmax(np.abs(a - n) * bad), bad.shape)
                    msg = (f"gradcheck: the {mode}-mode Jacobian of output {m} with respect "
                           f"to input {k} disagrees with finite differences: element "
                           f"({i}, {j}) is {a[i, j]:.6g}, numerically {n[i, j]:.6g} "
                           f"({int(bad.sum())} of {bad.size} elements off; atol={atol}, "
                           f"rtol={rtol}, eps={eps})\nanalytical:\n{a}\nnumerical:\n{n}")
                    if raise_exception:
                        raise GradcheckError(msg)
                    return False
    return True


def gradgradcheck(func: Callable, inputs: Any, grad_outputs: Any = None, *,
                  eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
                  gen_non_contig_grad_outputs: bool = False, raise_exception: bool = True,
                  **ignored: Any) -> bool:
    """`gradcheck` of the gradient itself: the second derivatives of ``func``, through
    ``tg.autograd.grad(..., create_graph=True)``. ``grad_outputs`` (random when omitted)
    weigh the outputs and are checked as inputs too."""
    from .api import grad

    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    outs = _outputs(func(*inputs))
    if grad_outputs is None:
        rng = np.random.default_rng(0)
        grad_outputs = tuple(_leaf(rng.standard_normal(o.shape).astype(o.dtype),
                                   requires_grad=True) for o in outs)
    else:
        grad_outputs = tuple(grad_outputs) if isinstance(grad_outputs, (tuple, list)) \
            else (grad_outputs,)
    n = len(inputs)
    diff = [i for i, x in enumerate(inputs) if isinstance(x, Tensor) and x.requires_grad]

    def first(*args: Any) -> tuple:
        xs, gos = args[:n], args[n:]
        outs = [o for o in _outputs(func(*xs)) if o.requires_grad]
        grads = grad(outs, [xs[i] for i in diff], list(gos[:len(outs)]), create_graph=True,
                     allow_unused=True, materialize_grads=True)
        return tuple(grads)

    return gradcheck(first, inputs + grad_outputs, eps=eps, atol=atol, rtol=rtol,
                     raise_exception=raise_exception)
