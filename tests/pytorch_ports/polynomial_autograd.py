"""PyTorch tutorial "Learning PyTorch with Examples": a third-order polynomial fitted to
sin(x) with tensors and autograd, updated by hand under no_grad."""
import math

import torch


def run(workdir):
    dtype = torch.float
    x = torch.linspace(-math.pi, math.pi, 200, dtype=dtype)
    y = torch.sin(x)
    a = torch.tensor(0.1, dtype=dtype, requires_grad=True)
    b = torch.tensor(-0.2, dtype=dtype, requires_grad=True)
    c = torch.tensor(0.05, dtype=dtype, requires_grad=True)
    d = torch.tensor(0.3, dtype=dtype, requires_grad=True)
    learning_rate = 1e-6
    losses = []
    for _ in range(300):
        y_pred = a + b * x + c * x ** 2 + d * x ** 3
        loss = (y_pred - y).pow(2).sum()
        losses.append(loss.item())
        loss.backward()
        with torch.no_grad():
            a -= learning_rate * a.grad
            b -= learning_rate * b.grad
            c -= learning_rate * c.grad
            d -= learning_rate * d.grad
            a.grad = None
            b.grad = None
            c.grad = None
            d.grad = None
    return {"losses": losses[::10], "coefficients": [a.item(), b.item(), c.item(), d.item()]}
