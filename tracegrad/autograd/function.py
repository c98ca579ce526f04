"""``tg.autograd.Function``: an op with a hand-written backward, PyTorch's way.

>>> class Exp(tg.autograd.Function):
...     @staticmethod
...     def forward(ctx, x):
...         out = x.exp()
...         ctx.save_for_backward(out)
...         return out
...     @staticmethod
...     def backward(ctx, g):
...         (out,) = ctx.saved_tensors
...         return g * out
>>> y = Exp.apply(x)

``forward`` runs under ``no_grad``; each output that is a float tensor becomes a node of the
graph whose VJP calls ``backward``. Written with tracegrad ops, ``backward`` is recorded
under ``create_graph=True`` (double backward) and traced by ``tg.compile``. In forward mode
(``tg.jvp``), a static ``jvp(ctx, *tangents)`` is used when the class defines one; otherwise
the tangents go through ``forward``'s own ops.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import ShapeError
from ..gradarray import GradArray
from ..ops.base import rule_facts, sum_to_shape
from ..tensor import Tensor, _leaf
from . import enable_grad, is_grad_enabled, next_seq, no_grad


class FunctionCtx:
    """What ``forward`` tells ``backward``: saved tensors, which inputs need a gradient, and
    which outputs are not differentiable. Any other attribute may be set on it too."""

    def __init__(self) -> None:
        self._saved: tuple = ()
        self._saved_forward: tuple | None = None
        self._in_jvp = False  # saved_tensors are save_for_forward's while jvp runs
        self.needs_input_grad: tuple = ()
        self._non_differentiable: set = set()
        self.materialize_grads = True

    def save_for_backward(self, *tensors: Any) -> None:
        self._saved = _savable("save_for_backward", tensors)

    def save_for_forward(self, *tensors: Any) -> None:
        """Tensors for ``jvp``, which reads them as ``ctx.saved_tensors`` (without a
        ``save_for_forward``, it reads those of ``save_for_backward``, where PyTorch gives
        none)."""
        self._saved_forward = _savable("save_for_forward", tensors)

    @property
    def saved_tensors(self) -> tuple:
        if self._in_jvp and self._saved_forward is not None:
            return self._saved_forward
        return self._saved

    def mark_non_differentiable(self, *tensors: Tensor) -> None:
        self._non_differentiable.update(id(t) for t in tensors)

    def set_materialize_grads(self, value: bool) -> None:
        """With False, ``backward`` gets None (not zeros) for outputs that got no gradient."""
        self.materialize_grads = bool(value)

    def mark_dirty(self, *tensors: Tensor) -> None:
        """(Accepted for PyTorch code; an in-place forward needs nothing more here.)"""


def _savable(op: str, tensors: tuple) -> tuple:
    for i, t in enumerate(tensors):
        if t is not None and not isinstance(t, Tensor):
            raise TypeError(f"{op}: argument {i} is {type(t).__name__}; only tensors (or "
                            f"None) are saved this way: keep other values as attributes of "
                            f"ctx (ctx.k = k)")
    return tensors


class Function:
    """Subclass it with static ``forward(ctx, *args)`` and ``backward(ctx, *grads)`` (one
    gradient per output in, one per ``forward`` argument out, None where there is none),
    and call ``.apply(*args)``. PyTorch 2's form, ``forward(*args)`` with a separate
    ``setup_context(ctx, inputs, output)``, works too."""

    @staticmethod
    def forward(ctx: FunctionCtx, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError("a tg.autograd.Function subclass must define a static "
                                  "forward(ctx, *args)")

    @staticmethod
    def backward(ctx: FunctionCtx, *grad_outputs: Any) -> Any:
        raise NotImplementedError("a tg.autograd.Function subclass must define a static "
                                  "backward(ctx, *grad_outputs) to be differentiated")

    @staticmethod
    def setup_context(ctx: FunctionCtx, inputs: tuple, output: Any) -> None:
        raise NotImplementedError

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        ctx = FunctionCtx()
        ctx.needs_input_grad = tuple(isinstance(a, Tensor) and a.requires_grad for a in args)
        two_step = cls.setup_context is not Function.setup_context
        from .. import forward

        if forward.active() and getattr(cls, "jvp", None) is not None:
            out = _forward_with_jvp(cls, ctx, args, kwargs, two_step)
        else:
            out = _run_forward(cls, ctx, args, kwargs, two_step)
        if not (is_grad_enabled() and any(ctx.needs_input_grad)):
            return out
        single = not isinstance(out, tuple)
        outs = [out] if single else list(out)
        children = tuple(a for a in args if isinstance(a, Tensor) and a.requires_grad)
        shared = _Shared(cls, ctx, args, outs)
        for k, o in enumerate(outs):
            if not isinstance(o, Tensor) or id(o) in ctx._non_differentiable or \
                    o.dtype.kind != "f":
                continue
            if o._op is not None or o.requires_grad or any(o is a for a in args):
                o = outs[k] = o.detach()  # (an input handed back: a new node for it;
                # detach, not a bare leaf, so that a trace sees the same value)
            o.requires_grad = True
            o._op = FunctionBackward(shared, k)
            o._seq = next_seq()
            o._children = children
            o._attrs = {}
            o._versions = tuple(x._vc[0] for x in children)
        return outs[0] if single else tuple(outs)


def _run_forward(cls: type, ctx: FunctionCtx, args: tuple, kwargs: dict, two_step: bool) -> Any:
    with no_grad():
        if two_step:
            out = cls.forward(*args, **kwargs)
            cls.setup_context(ctx, args, out)
        else:
            out = cls.forward(ctx, *args, **kwargs)
    return out


def _forward_with_jvp(cls: type, ctx: FunctionCtx, args: tuple, kwargs: dict,
                      two_step: bool) -> Any:
    """forward with tangents suspended, then the class's own ``jvp`` for each level."""
    from .. import forward

    st = forward._state
    depth = st.depth
    levels = st.levels[:depth]
    st.depth = 0
    try:
        out = _run_forward(cls, ctx, args, kwargs, two_step)
    finally:
        st.depth = depth
    outs = [out] if not isinstance(out, tuple) else list(out)
    for i, lv in enumerate(levels):
        ts = [lv.tangent(a) if isinstance(a, Tensor) else None for a in args]
        if all(t is None for t in ts):
            continue
        if ctx.materialize_grads:  # a float input without a tangent has a zero one (PyTorch)
            ts = [_leaf(np.zeros(lv.batch + tuple(a.shape), dtype=a.dtype))
                  if t is None and isinstance(a, Tensor) and a.dtype.kind == "f" else t
                  for a, t in zip(args, ts)]
        st.depth = i
        ctx._in_jvp = True
        try:
            touts = cls.jvp(ctx, *ts)
        finally:
            st.depth = depth
            ctx._in_jvp = False
        touts = [touts] if not isinstance(touts, tuple) else list(touts)
        for o, t in zip(outs, touts):
            if isinstance(o, Tensor) and t is not None:
                lv.set(o, t)
    return out


class _Shared:
    """One call of a Function: what every output's node needs for the backward."""

    def __init__(self, cls: type, ctx: FunctionCtx, args: tuple, outs: list):
        self.cls, self.ctx = cls, ctx
        self.n_args = len(args)
        # positions of the inputs that get a gradient (the node's children), in order
        self.positions = [i for i, a in enumerate(args) if isinstance(a, Tensor) and
                          a.requires_grad]
        self.out_avals = [(tuple(o.shape), o.dtype) if isinstance(o, Tensor) else None
                          for o in outs]


class FunctionBackward:
    """The pseudo-primitive a Function's output points to (its ``grad_fn``): its VJP calls
    the class's ``backward`` with this output's gradient (zeros for the others)."""

    kind = "function"
    passes_gradient = False
    in_place = False
    view = False
    linear = None
    jvp = None
    decomposition = None

    def __init__(self, shared: _Shared, which: int):
        self.shared, self.which = shared, which
        self.name = shared.cls.__name__

    def vjp(self, g: Any, out: Any, *children: Any) -> tuple:
        sh = self.shared
        bare = type(g) is GradArray  # (the first-order engine's arrays: tensors for the user)
        gt = _leaf(g._data) if bare else g
        grads_out = []
        for k, aval in enumerate(sh.out_avals):
            if k == self.which:
                grads_out.append(gt)
            elif aval is None or not sh.ctx.materialize_grads:
                grads_out.append(None)
            else:
                grads_out.append(_leaf(np.zeros(aval[0], dtype=aval[1])))
        with enable_grad() if is_grad_enabled() else no_grad():
            res = sh.cls.backward(sh.ctx, *grads_out)
        res = res if isinstance(res, tuple) else (res,)
        name = sh.cls.__name__
        if len(res) < sh.n_args or any(r is not None for r in res[sh.n_args:]):
            raise RuntimeError(
                f"{name}.backward returned {len(res)} gradient(s), but forward took "
                f"{sh.n_args} argument(s); return one per forward argument (None for those "
                f"that need none)")
        grads = []
        for pos, x in zip(sh.positions, children):
            r = res[pos]
            if r is None:
                grads.append(None)
                continue
            if not isinstance(r, Tensor):
                raise TypeError(f"{name}.backward returned {type(r).__name__} for argument "
                                f"{pos}; return a tg.Tensor (or None)")
            if tuple(r.shape) != tuple(x.shape):
                try:
                    np.broadcast_shapes(tuple(r.shape), tuple(x.shape))
                    if len(r.shape) < len(x.shape):
                        raise ValueError
                    r = sum_to_shape(r, tuple(x.shape))
                except ValueError:
                    raise ShapeError(
                        f"{name}.backward returned a gradient of shape {tuple(r.shape)} for "
                        f"argument {pos}, of shape {tuple(x.shape)}; they must match") from None
            if r.dtype != x.dtype:
                r = r.to(x.dtype)
            grads.append(GradArray(r._data) if bare else r)
        return tuple(grads)

    reads, per_input, arithmetic = rule_facts(vjp)

    def __repr__(self) -> str:
        return f"<{self.name}Backward>"


def once_differentiable(fn: Any) -> Any:
    """(PyTorch's decorator for a backward that is not itself differentiable: accepted;
    such a backward simply records nothing when written with NumPy.)"""
    return fn
