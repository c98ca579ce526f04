"""A classifier trained from a DataLoader over a TensorDataset (batches, drop_last), with
BatchNorm1d (running statistics, train and eval modes), SGD with momentum, weight decay and
nesterov, CosineAnnealingLR, accuracy in eval mode."""
import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset


def run(workdir):
    rng = np.random.default_rng(9)
    X = rng.standard_normal((50, 6)).astype(np.float32)
    Y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1).astype(np.int64)
    dataset = TensorDataset(torch.from_numpy(X), torch.from_numpy(Y))
    loader = DataLoader(dataset, batch_size=8, shuffle=False, drop_last=True)
    model = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear):
                module.weight.copy_(torch.from_numpy(
                    rng.normal(0, 0.4, tuple(module.weight.shape)).astype(np.float32)))
                module.bias.zero_()
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True,
                                weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=4)
    losses = []
    for _ in range(3):
        model.train()
        for xb, yb in loader:
            optimizer.zero_grad()
            loss = criterion(model(xb), yb)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        scheduler.step()
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(X))
        accuracy = (logits.argmax(1) == torch.from_numpy(Y)).float().mean().item()
    return {"losses": losses, "accuracy": accuracy, "batches": len(loader),
            "running_mean": model[1].running_mean, "running_var": model[1].running_var,
            "num_batches_tracked": model[1].num_batches_tracked.item(), "logits": logits}
