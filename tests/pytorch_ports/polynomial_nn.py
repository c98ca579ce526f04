"""PyTorch tutorial "Learning PyTorch with Examples", the nn version: Sequential(Linear,
Flatten) on the powers x, x^2, x^3, MSELoss(reduction="sum"), zero_grad and a hand-written
update over model.parameters()."""
import math

import torch


def run(workdir):
    x = torch.linspace(-math.pi, math.pi, 200)
    y = torch.sin(x)
    p = torch.tensor([1, 2, 3])
    xx = x.unsqueeze(-1).pow(p)
    model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0, 1))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[0.1, -0.05, 0.02]]))
        model[0].bias.fill_(0.0)
    loss_fn = torch.nn.MSELoss(reduction="sum")
    learning_rate = 1e-6
    losses = []
    for _ in range(200):
        y_pred = model(xx)
        loss = loss_fn(y_pred, y)
        losses.append(loss.item())
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for param in model.parameters():
                param -= learning_rate * param.grad
    linear_layer = model[0]
    return {"losses": losses[::10], "weight": linear_layer.weight, "bias": linear_layer.bias}
