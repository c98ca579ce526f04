"""Module hooks, PyTorch's: forward pre-hooks, forward hooks, full backward (pre-)hooks.

A module keeps its hooks in ordered dicts of its own (``_forward_pre_hooks``,
``_forward_hooks``, ``_backward_pre_hooks``, ``_backward_hooks``), keyed by the id of the
`RemovableHandle` that registration returns. They are ordinary attributes, so ``tg.compile``
guards them like any other: adding or removing a hook retraces.

A full backward hook works as PyTorch's ``BackwardHook`` does: the module's tensor inputs go
through one identity function before ``forward`` and its tensor outputs through another
after it. Their gradients reach each identity's one node together (several tensors are
packed into one flat tensor for that: tracegrad's nodes have one output each), where the
backward pre-hooks see (and may replace) ``grad_output``, and the full backward hooks see
``grad_input`` with it (and may replace it).
"""

from __future__ import annotations

import itertools
import warnings
import weakref
from collections import OrderedDict
from typing import Any, Callable

import numpy as np

from ..autograd import is_grad_enabled
from ..autograd.function import Function
from ..combine import cat
from ..creation import zeros_like
from ..tensor import Tensor

_next_id = itertools.count()


class RemovableHandle:
    """What a ``register_*_hook`` returns: ``handle.remove()`` takes the hook off, and
    ``with module.register_forward_hook(h): ...`` keeps it on for the block only.

    >>> handle = model.register_forward_hook(lambda m, args, out: print(out.shape))
    >>> handle.remove()
    """

    def __init__(self, hooks_dict: OrderedDict, *, extra_dict: Any = None) -> None:
        self.hooks_dict_ref = weakref.ref(hooks_dict)
        self.id = next(_next_id)
        extra = extra_dict if isinstance(extra_dict, (list, tuple)) else \
            [extra_dict] if extra_dict is not None else []
        self.extra_dict_ref = tuple(weakref.ref(d) for d in extra)

    def remove(self) -> None:
        for ref in (self.hooks_dict_ref, *self.extra_dict_ref):
            d = ref()
            if d is not None:
                d.pop(self.id, None)

    def __enter__(self) -> "RemovableHandle":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.remove()

    def __repr__(self) -> str:
        return f"<RemovableHandle id={self.id}>"


def add(hooks: OrderedDict, hook: Callable, prepend: bool, flags: tuple = ()) -> RemovableHandle:
    """Put ``hook`` in ``hooks`` (first with ``prepend``), its id also in each dict of
    ``flags`` (with_kwargs, always_call), and return its handle."""
    if not callable(hook):
        raise TypeError(f"a module hook must be callable, got {type(hook).__name__}")
    handle = RemovableHandle(hooks, extra_dict=list(flags))
    hooks[handle.id] = hook
    if prepend:
        hooks.move_to_end(handle.id, last=False)
    for d in flags:
        d[handle.id] = True
    return handle


def call(module: Any, args: tuple, kwargs: dict) -> Any:
    """``module(*args, **kwargs)`` when it has hooks (`Module.__call__` calls ``forward``
    directly when it has none), in PyTorch's order: forward pre-hooks, the backward hooks'
    identity on the inputs, ``forward``, forward hooks, the identity on the outputs. If
    anything raises, the ``always_call`` forward hooks that have not run run, then the
    error goes on."""
    d = module.__dict__
    result = None
    ran: set = set()
    try:
        for hid, hook in list(d["_forward_pre_hooks"].items()):
            if hid in d["_forward_pre_hooks_with_kwargs"]:
                res = hook(module, args, kwargs)
                if res is not None:
                    if not (isinstance(res, tuple) and len(res) == 2):
                        raise RuntimeError(f"forward pre-hook must return None or a tuple of "
                                           f"(new_args, new_kwargs), but got {res}.")
                    args, kwargs = res
            else:
                res = hook(module, args)
                if res is not None:
                    args = res if isinstance(res, tuple) else (res,)
        bw = None
        if d["_backward_hooks"] or d["_backward_pre_hooks"]:
            bw = BackwardHook(module, list(d["_backward_hooks"].values()),
                              list(d["_backward_pre_hooks"].values()))
            args = bw.setup_input_hook(args)
        result = module.forward(*args, **kwargs)
        for hid, hook in list(d["_forward_hooks"].items()):
            if hid in d["_forward_hooks_always_called"]:
                ran.add(hid)
            result = _forward_hook(d, hid, hook, module, args, kwargs, result)
        if bw is not None:
            if not isinstance(result, (Tensor, tuple)):
                warnings.warn(f"For backward hooks to be called, module output should be a "
                              f"Tensor or a tuple of Tensors but received {type(result)}",
                              stacklevel=3)
            result = bw.setup_output_hook(result)
        return result
    except Exception:
        for hid, hook in list(d["_forward_hooks"].items()):
            if hid not in d["_forward_hooks_always_called"] or hid in ran:
                continue
            try:
                result = _forward_hook(d, hid, hook, module, args, kwargs, result)
            except Exception as e:
                warnings.warn(f"module forward hook with ``always_call=True`` raised an "
                              f"exception that was silenced as another error was raised in "
                              f"forward: {e}", stacklevel=3)
        raise


def _forward_hook(d: dict, hid: int, hook: Callable, module: Any, args: tuple, kwargs: dict,
                  result: Any) -> Any:
    """Run one forward hook: the output it returns, or the one it was given."""
    res = hook(module, args, kwargs, result) if hid in d["_forward_hooks_with_kwargs"] else \
        hook(module, args, result)
    return result if res is None else res


class _Identity(Function):
    """The identity on several tensors, returned packed into one flat tensor (one tensor is
    returned as it is): the gradients of all of them arrive at its one node together, and
    ``on_grads`` sees them (as a tuple, one per tensor) and may replace them."""

    @staticmethod
    def forward(ctx: Any, on_grads: Callable, *tensors: Tensor) -> Tensor:
        ctx.on_grads = on_grads
        ctx.avals = [(tuple(t.shape), t.dtype) for t in tensors]
        if len(tensors) == 1:
            return tensors[0]
        dt = np.result_type(*[t.dtype for t in tensors])
        return cat([t.reshape(-1).to(dt) for t in tensors])

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple:
        return (None, *ctx.on_grads(_unpack(g, ctx.avals)))


def _unpack(flat: Tensor, avals: list) -> tuple:
    """The tensors of shapes and dtypes ``avals`` that `_Identity` packed into ``flat``."""
    if len(avals) == 1:
        return (flat,)
    out, start = [], 0
    for shape, dt in avals:
        size = int(np.prod(shape))
        out.append(flat[start:start + size].reshape(shape).to(dt))
        start += size
    return tuple(out)


def _through_identity(values: tuple, on_grads: Callable) -> tuple[tuple, list | None]:
    """``values`` with their tensors that need a gradient replaced by the identity's
    outputs, and those tensors' positions (None when there are none, or grad mode is off)."""
    where = [i for i, v in enumerate(values) if isinstance(v, Tensor) and v.requires_grad]
    if not where or not is_grad_enabled():
        return values, None
    tensors = [values[i] for i in where]
    packed = _Identity.apply(on_grads, *tensors)
    out = list(values)
    for i, t in zip(where, _unpack(packed, [(tuple(t.shape), t.dtype) for t in tensors])):
        out[i] = t
    return tuple(out), where


class BackwardHook:
    """One call's full backward hooks (see the module docstring): the output side stores
    ``grad_output`` (after the pre-hooks), the input side hands it to the hooks with
    ``grad_input``. (An output that got no gradient shows as zeros, where PyTorch shows
    None: the packed gradient cannot tell them apart.)"""

    def __init__(self, module: Any, hooks: list, pre_hooks: list) -> None:
        self.module, self.hooks, self.pre_hooks = module, hooks, pre_hooks
        self.grad_outputs: tuple | None = None
        self.n_inputs = self.n_outputs = 0
        self.inputs_at: list | None = None
        self.outputs_at: list | None = None

    @staticmethod
    def _spread(at: list, values: tuple, n: int) -> tuple:
        res: list = [None] * n
        for i, v in zip(at, values):
            res[i] = v
        return tuple(res)

    def setup_input_hook(self, args: tuple) -> tuple:
        self.n_inputs = len(args)
        # (PyTorch hands a hook zeros for the tensors that need no gradient, when another
        # does; None for the other arguments)
        self.still = [(i, a) for i, a in enumerate(args) if isinstance(a, Tensor)
                      and not a.requires_grad]
        args, self.inputs_at = _through_identity(args, self._on_input_grads)
        return args

    def setup_output_hook(self, result: Any) -> Any:
        single = not isinstance(result, tuple)
        outs = (result,) if single else result
        self.n_outputs = len(outs)
        outs, self.outputs_at = _through_identity(outs, self._on_output_grads)
        return outs[0] if single else outs

    def _on_output_grads(self, grads: tuple) -> tuple:
        self.grad_outputs = self._spread(self.outputs_at, grads, self.n_outputs)
        for hook in self.pre_hooks:
            res = hook(self.module, self.grad_outputs)
            if res is None:
                continue
            res = res if isinstance(res, tuple) else (res,)
            if len(res) != self.n_outputs:
                raise RuntimeError(f"Backward pre hook returned an invalid number of "
                                   f"grad_output, got {len(res)}, but expected "
                                   f"{self.n_outputs}")
            self.grad_outputs = res
        grad_outputs = self.grad_outputs
        if self.inputs_at is None and self.hooks:  # no input needs a gradient: now
            warnings.warn("Full backward hook is firing when gradients are computed with "
                          "respect to module outputs since no inputs require gradients.",
                          stacklevel=2)
            none = (None,) * self.n_inputs
            for hook in self.hooks:
                res = hook(self.module, none, grad_outputs)
                if res is not None and not (isinstance(res, tuple) and
                                            all(r is None for r in res)):
                    raise RuntimeError("Backward hook for Modules where no input requires "
                                       "gradient should always return None or None for all "
                                       "gradients.")
            self.grad_outputs = None
        return tuple(grad_outputs[i] for i in self.outputs_at)

    def _on_input_grads(self, grads: tuple) -> tuple:
        if self.grad_outputs is None:  # the gradient did not come through the outputs
            return grads
        res = list(self._spread(self.inputs_at, grads, self.n_inputs))
        for i, a in self.still:
            res[i] = zeros_like(a)
        res = tuple(res)
        for hook in self.hooks:
            out = hook(self.module, res, self.grad_outputs)
            if out is None:
                continue
            out = out if isinstance(out, tuple) else (out,)
            if len(out) != len(res):
                raise RuntimeError(f"Backward hook returned an invalid number of grad_input, "
                                   f"got {len(out)}, but expected {len(res)}")
            res = out
        self.grad_outputs = None
        return tuple(res[i] for i in self.inputs_at)
