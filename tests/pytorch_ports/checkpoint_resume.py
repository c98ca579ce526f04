"""Checkpointing as the PyTorch recipes do it: a dict of model and optimizer state_dicts,
the epoch and the scheduler's state saved with torch.save, loaded into fresh objects with
torch.load/load_state_dict, and training resumed: the same numbers as never stopping."""
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def make(rng_seed):
    rng = np.random.default_rng(rng_seed)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
    for p in model.parameters():
        p.data = torch.from_numpy(rng.normal(0, 0.4, tuple(p.shape)).astype(np.float32))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01, weight_decay=1e-3)
    scheduler = torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.9)
    return model, optimizer, scheduler


def train(model, optimizer, scheduler, batches):
    losses = []
    for x, y in batches:
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    return losses


def run(workdir):
    rng = np.random.default_rng(7)
    batches = [(torch.from_numpy(rng.standard_normal((6, 5)).astype(np.float32)),
                torch.from_numpy(rng.integers(0, 3, 6))) for _ in range(6)]
    model, optimizer, scheduler = make(0)
    first = train(model, optimizer, scheduler, batches[:3])
    path = os.path.join(workdir, "checkpoint.pt")
    torch.save({"epoch": 3, "model_state_dict": model.state_dict(),
                "optimizer_state_dict": optimizer.state_dict(),
                "scheduler_state_dict": scheduler.state_dict()}, path)
    model2, optimizer2, scheduler2 = make(1)  # other weights: the checkpoint overwrites them
    checkpoint = torch.load(path)
    model2.load_state_dict(checkpoint["model_state_dict"])
    optimizer2.load_state_dict(checkpoint["optimizer_state_dict"])
    scheduler2.load_state_dict(checkpoint["scheduler_state_dict"])
    resumed = train(model2, optimizer2, scheduler2, batches[3:])
    straight = train(model, optimizer, scheduler, batches[3:])
    return {"first": first, "resumed": resumed, "straight": straight,
            "epoch": checkpoint["epoch"], "lr": optimizer2.param_groups[0]["lr"],
            "weights": model2.state_dict()}
