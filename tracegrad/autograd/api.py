"""``tg.autograd.grad`` and ``tg.autograd.backward``: PyTorch's signatures and semantics, on
the one backward engine (``tracegrad/autograd/__init__.py``)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..errors import ShapeError
from ..tensor import Tensor, _leaf, _one
from . import GradsInTable


def _as_list(x: Any, what: str) -> list:
    if isinstance(x, Tensor):
        return [x]
    if isinstance(x, (tuple, list)):
        return list(x)
    raise TypeError(f"tg.autograd.grad: {what} must be a tensor or a sequence of tensors, got "
                    f"{type(x).__name__}")


def _seeds(outputs: list, grad_outputs: Any) -> list:
    """One seed per output: grad_outputs[i], or 1 for a one-element output."""
    if grad_outputs is None:
        gos = [None] * len(outputs)
    else:
        gos = _as_list(grad_outputs, "grad_outputs") if not isinstance(grad_outputs, Tensor) \
            else [grad_outputs]
        if len(gos) != len(outputs):
            raise ValueError(f"tg.autograd.grad: grad_outputs has {len(gos)} entries but "
                             f"there are {len(outputs)} outputs; give one per output (None "
                             f"for a one-element output)")
    seeds = []
    for i, (o, g) in enumerate(zip(outputs, gos)):
        if g is None:
            if o._data.size != 1:
                raise RuntimeError(
                    f"tg.autograd.grad: grad can be implicitly created only for one-element "
                    f"outputs; output {i} has shape {tuple(o.shape)}: pass grad_outputs")
            seeds.append(_leaf(_one(o._data)))
            continue
        if not isinstance(g, Tensor):
            g = Tensor(g, dtype=o.dtype)
        if tuple(g.shape) != tuple(o.shape):
            raise ShapeError(f"tg.autograd.grad: grad_outputs[{i}] has shape "
                             f"{tuple(g.shape)} but output {i} has shape {tuple(o.shape)}; "
                             f"they must match")
        seeds.append(g)
    return seeds


def grad(outputs: Tensor | Sequence[Tensor], inputs: Tensor | Sequence[Tensor],
         grad_outputs: Any = None, retain_graph: bool | None = None,
         create_graph: bool = False, only_inputs: bool = True,
         allow_unused: bool | None = None, is_grads_batched: bool = False,
         materialize_grads: bool = False) -> tuple:
    """The gradients of ``outputs`` with respect to ``inputs``, as a tuple; ``.grad`` is
    left alone. PyTorch's ``torch.autograd.grad``:

    >>> x = tg.tensor([1.0, 2.0], requires_grad=True)
    >>> y = (x ** 3).sum()
    >>> (g,) = tg.autograd.grad(y, x, create_graph=True)     # 3x², differentiable
    >>> tg.autograd.grad(g.sum(), x)                         # (6x,)

    ``grad_outputs`` weighs each output (required for one with more than one element);
    the graph is freed afterwards unless ``retain_graph`` (default: ``create_graph``);
    an input the outputs do not depend on raises, unless ``allow_unused`` (then its
    gradient is None, or zeros with ``materialize_grads``).
    """
    if is_grads_batched:
        raise NotImplementedError("tg.autograd.grad: is_grads_batched is not supported; use "
                                  "tg.jacrev (it batches cotangents) or a loop")
    outs = _as_list(outputs, "outputs")
    ins = _as_list(inputs, "inputs")
    if allow_unused is None:
        allow_unused = materialize_grads
    if retain_graph is None:
        retain_graph = create_graph
    for i, x in enumerate(ins):
        if not isinstance(x, Tensor):
            raise TypeError(f"tg.autograd.grad: inputs[{i}] is {type(x).__name__}, not a tensor")
        if not x.requires_grad:
            raise RuntimeError(f"tg.autograd.grad: inputs[{i}] (shape {tuple(x.shape)}) does "
                               f"not require grad; create it with requires_grad=True")
    seeds = _seeds(outs, grad_outputs)
    live = []
    for i, (o, s) in enumerate(zip(outs, seeds)):
        if not isinstance(o, Tensor):
            raise TypeError(f"tg.autograd.grad: outputs[{i}] is {type(o).__name__}, not a "
                            f"tensor")
        if not o.requires_grad:
            raise RuntimeError(f"tg.autograd.grad: outputs[{i}] does not require grad and has "
                               f"no grad_fn (it does not depend on any input that requires "
                               f"grad)")
        live.append((o, s))
    policy = GradsInTable(retain_graph=True, targets=ins, through_targets=True)
    for k, (o, s) in enumerate(live):
        policy.frees = not retain_graph and k == len(live) - 1
        o._backward(s, policy, create_graph)
    results = []
    for i, x in enumerate(ins):
        g = policy.results.get(id(x))
        if g is None:
            if not allow_unused:
                raise RuntimeError(
                    f"tg.autograd.grad: inputs[{i}] (shape {tuple(x.shape)}) was not used to "
                    f"compute the outputs; pass allow_unused=True if that is expected")
            if materialize_grads:
                g = _leaf(np.zeros(x.shape, dtype=x.dtype))
        elif not isinstance(g, Tensor):  # (a first-order gradient computed on bare arrays)
            g = _leaf(np.array(g._data, dtype=x.dtype, order="C", copy=True))
        else:
            if g.dtype != x.dtype:
                g = g.to(x.dtype)
            # C order, as PyTorch's kernels give (a conv's input gradient may come out
            # strided here), so that `grad.view(n, -1)` works as there (WGAN-GP's penalty)
            g = g.contiguous()
        results.append(g)
    return tuple(results)


def backward(tensors: Tensor | Sequence[Tensor], grad_tensors: Any = None,
             retain_graph: bool | None = None, create_graph: bool = False,
             inputs: Any = None) -> None:
    """PyTorch's ``torch.autograd.backward``: ``t.backward(g)`` for each tensor (summed into
    the leaves' ``.grad``)."""
    outs = _as_list(tensors, "tensors")
    if inputs is not None:
        ins = _as_list(inputs, "inputs")
        grads = grad(outs, ins, grad_tensors, retain_graph, create_graph, allow_unused=True)
        for x, g in zip(ins, grads):
            if g is not None:
                x._accumulate_grad(g if create_graph else g.detach())
        return
    seeds = _seeds(outs, grad_tensors)
    if retain_graph is None:
        retain_graph = create_graph
    for k, (o, s) in enumerate(zip(outs, seeds)):
        o.backward(s, retain_graph=retain_graph or k < len(outs) - 1,
                   create_graph=create_graph)
