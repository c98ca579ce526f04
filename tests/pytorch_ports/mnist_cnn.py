"""pytorch/examples mnist/main.py, shrunk: a CNN (conv, relu, max-pool, linear, log_softmax,
nll_loss) trained with SGD + momentum and StepLR on synthetic 14x14 digits; then evaluated
(eval mode, no_grad, argmax accuracy)."""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.optim.lr_scheduler import StepLR


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, 1)
        self.conv2 = nn.Conv2d(4, 8, 3, 1)
        self.dropout1 = nn.Dropout(0.25)
        self.fc1 = nn.Linear(8 * 5 * 5, 16)
        self.fc2 = nn.Linear(16, 10)

    def forward(self, x):
        x = self.conv1(x)
        x = F.relu(x)
        x = self.conv2(x)
        x = F.relu(x)
        x = F.max_pool2d(x, 2)
        x = self.dropout1(x)
        x = torch.flatten(x, 1)
        x = self.fc1(x)
        x = F.relu(x)
        x = self.fc2(x)
        return F.log_softmax(x, dim=1)


def run(workdir):
    rng = np.random.default_rng(0)
    model = Net()
    with torch.no_grad():  # the same starting weights in every port
        for p in model.parameters():
            p.copy_(torch.from_numpy(rng.standard_normal(tuple(p.shape)).astype(np.float32)
                                     * 0.2))
    data = torch.from_numpy(rng.standard_normal((32, 1, 14, 14)).astype(np.float32))
    target = torch.from_numpy(rng.integers(0, 10, 32))
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    scheduler = StepLR(optimizer, step_size=1, gamma=0.7)
    losses = []
    for _ in range(3):
        model.eval()  # (dropout's random masks differ between libraries)
        for i in range(0, 32, 8):
            optimizer.zero_grad()
            output = model(data[i:i + 8])
            loss = F.nll_loss(output, target[i:i + 8])
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        scheduler.step()
    model.eval()
    with torch.no_grad():
        output = model(data)
        test_loss = F.nll_loss(output, target, reduction="sum").item()
        pred = output.argmax(dim=1, keepdim=True)
        correct = pred.eq(target.view_as(pred)).sum().item()
    return {"losses": losses, "test_loss": test_loss, "correct": correct,
            "grads": {n: p.grad for n, p in model.named_parameters()}}
