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
    gradient is None, or zeros with ``materialize_grads``); with ``is_grads_batched``, each
    of ``grad_outputs`` has a batch dimension in front and the gradients have it too.
    """
    outs = _as_list(outputs, "outputs")
    ins = _as_list(inputs, "inputs")
    if is_grads_batched:
        return _batched_grad(outs, ins, grad_outputs, retain_graph, create_graph,
                             allow_unused, materialize_grads)
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


def _batched_grad(outs: list, ins: list, grad_outputs: Any, retain_graph: bool | None,
                  create_graph: bool, allow_unused: bool | None,
                  materialize_grads: bool) -> tuple:
    """``grad`` with ``is_grads_batched``: each ``grad_outputs[i]`` has a batch dimension in
    front, and every row gets its own gradient, in one backward pass: the backward is linear
    in its seed, so the rows ride along as that seed's tangents in forward mode (as
    ``tg.jacrev`` does)."""
    from .. import forward

    gos = _as_list(grad_outputs, "grad_outputs") if grad_outputs is not None else [None]
    if len(gos) != len(outs) or any(g is None for g in gos):
        raise RuntimeError("tg.autograd.grad: with is_grads_batched=True, give one batched "
                           "tensor in grad_outputs per output")
    gos = [g if isinstance(g, Tensor) else Tensor(g, dtype=o.dtype) for o, g in zip(outs, gos)]
    batch = {tuple(g.shape[:1]) for g in gos}
    for i, (o, g) in enumerate(zip(outs, gos)):
        if g.ndim != o.ndim + 1 or tuple(g.shape[1:]) != tuple(o.shape) or len(batch) > 1:
            raise ShapeError(f"tg.autograd.grad: with is_grads_batched=True, grad_outputs[{i}] "
                             f"must have shape (batch, *{tuple(o.shape)}) with the same batch "
                             f"for every output, got {tuple(g.shape)}")
    n = gos[0].shape[0]
    with forward.level((n,)) as lv:
        seeds = []
        for o, g in zip(outs, gos):
            u = _leaf(np.zeros(o.shape, dtype=o.dtype))
            lv.set(u, g.to(o.dtype) if g.dtype != o.dtype else g)
            seeds.append(u)
        grads = grad(outs, ins, seeds, retain_graph, create_graph,
                     allow_unused=allow_unused, materialize_grads=materialize_grads)
        rows = []
        for x, g in zip(ins, grads):
            if g is None:
                rows.append(None)
                continue
            t = lv.tangent(g)
            rows.append(t if t is not None else _leaf(np.zeros((n,) + tuple(x.shape),
                                                               dtype=x.dtype)))
    return tuple(rows)


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
