"""micrograd's neural-network library, on `tracegrad.Value`.

Same constructors, same parameter order and the same draws from Python's `random`, so
``random.seed(1337)`` reproduces a micrograd run (to rounding: the two engines may add a
node's incoming gradients in a different order, which moves the last bit).

>>> model = MLP(2, [16, 16, 1])      # 2 inputs, two hidden layers of 16, one output
>>> score = model([Value(0.5), Value(-1.0)])
"""

from __future__ import annotations

import random
from typing import Any, Sequence

from ..scalar import Value


class Module:
    """Base class: ``parameters()`` lists the Values to train, ``zero_grad()`` resets them."""

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = 0

    def parameters(self) -> list[Value]:
        return []


class Neuron(Module):
    """``relu(w . x + b)`` (or linear with ``nonlin=False``); weights uniform in [-1, 1]."""

    def __init__(self, nin: int, nonlin: bool = True):
        self.w = [Value(random.uniform(-1, 1)) for _ in range(nin)]
        self.b = Value(0)
        self.nonlin = nonlin

    def __call__(self, x: Sequence[Any]) -> Value:
        act = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
        return act.relu() if self.nonlin else act

    def parameters(self) -> list[Value]:
        return self.w + [self.b]

    def __repr__(self) -> str:
        return f"{'ReLU' if self.nonlin else 'Linear'}Neuron({len(self.w)})"


class Layer(Module):
    """``nout`` neurons that each see all ``nin`` inputs."""

    def __init__(self, nin: int, nout: int, **kwargs: Any):
        self.neurons = [Neuron(nin, **kwargs) for _ in range(nout)]

    def __call__(self, x: Sequence[Any]) -> Value | list[Value]:
        out = [n(x) for n in self.neurons]
        return out[0] if len(out) == 1 else out

    def parameters(self) -> list[Value]:
        return [p for n in self.neurons for p in n.parameters()]

    def __repr__(self) -> str:
        return f"Layer of [{', '.join(str(n) for n in self.neurons)}]"


class MLP(Module):
    """A stack of Layers; every layer but the last uses ReLU."""

    def __init__(self, nin: int, nouts: list[int]):
        sizes = [nin] + list(nouts)
        last = len(nouts) - 1
        self.layers = [
            Layer(sizes[i], sizes[i + 1], nonlin=i != last) for i in range(len(nouts))
        ]

    def __call__(self, x: Sequence[Any]) -> Value | list[Value]:
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self) -> list[Value]:
        return [p for layer in self.layers for p in layer.parameters()]

    def __repr__(self) -> str:
        return f"MLP of [{', '.join(str(layer) for layer in self.layers)}]"
