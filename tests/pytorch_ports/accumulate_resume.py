"""A training script with the usual bookkeeping: a custom Dataset returning dicts, a
collate through DataLoader's default (dicts of tensors), gradient accumulation over micro
batches (loss / accum_steps), parameter groups with different learning rates (a
pretrained-style backbone and a fresh head), AdamW with weight decay only on matrices,
a linear warmup then cosine schedule (LambdaLR), train/eval, accuracy with argmax under
torch.no_grad, then saving (model, optimizer, scheduler, step) with torch.save, loading into
fresh objects, and resuming: the same numbers as never stopping."""
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset


class Blobs(Dataset):
    def __init__(self, n, rng):
        self.x = rng.standard_normal((n, 6)).astype(np.float32)
        self.y = (self.x[:, 0] * 2 + self.x[:, 1] > 0).astype(np.int64) + (
            self.x[:, 2] > 0.8).astype(np.int64)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return {"features": torch.from_numpy(self.x[i]), "label": int(self.y[i])}


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Linear(6, 16), nn.LayerNorm(16), nn.GELU(),
                                      nn.Linear(16, 16), nn.SiLU())
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        return self.head(self.backbone(x))


def make(seed):
    rng = np.random.default_rng(seed)
    model = Net()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.from_numpy(rng.normal(0, 0.3, tuple(p.shape)).astype(np.float32)))
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    head = list(model.head.parameters())
    groups = [
        {"params": [p for p in decay if all(p is not h for h in head)], "weight_decay": 0.05,
         "lr": 1e-3},
        {"params": [p for p in no_decay if all(p is not h for h in head)],
         "weight_decay": 0.0, "lr": 1e-3},
        {"params": head, "lr": 1e-2},
    ]
    optimizer = torch.optim.AdamW(groups, lr=5e-3, betas=(0.9, 0.98), eps=1e-6,
                                  weight_decay=0.01)
    warmup, total = 3, 12

    def lr_lambda(step):
        if step < warmup:
            return float(step + 1) / warmup
        progress = (step - warmup) / max(1, total - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
    return model, optimizer, scheduler


def train(model, optimizer, scheduler, loader, accum_steps=2):
    losses = []
    model.train()
    optimizer.zero_grad()
    for i, batch in enumerate(loader):
        logits = model(batch["features"])
        loss = F.cross_entropy(logits, batch["label"]) / accum_steps
        loss.backward()
        if (i + 1) % accum_steps == 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
        losses.append(loss.item())
    return losses


def evaluate(model, loader):
    model.eval()
    correct, total = 0, 0
    with torch.no_grad():
        for batch in loader:
            pred = model(batch["features"]).argmax(dim=-1)
            correct += (pred == batch["label"]).sum().item()
            total += batch["label"].size(0)
    return correct / total


def run(workdir):
    data = Blobs(48, np.random.default_rng(2))
    loader = DataLoader(data, batch_size=6, shuffle=False)
    model, optimizer, scheduler = make(0)
    first = train(model, optimizer, scheduler, loader)
    path = os.path.join(workdir, "ckpt.pt")
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "step": 4}, path)
    model2, optimizer2, scheduler2 = make(1)
    ckpt = torch.load(path)
    model2.load_state_dict(ckpt["model"])
    optimizer2.load_state_dict(ckpt["optimizer"])
    scheduler2.load_state_dict(ckpt["scheduler"])
    resumed = train(model2, optimizer2, scheduler2, loader)
    straight = train(model, optimizer, scheduler, loader)
    return {"first": first, "resumed": resumed, "straight": straight,
            "acc": evaluate(model2, loader), "lrs": [g["lr"] for g in optimizer2.param_groups],
            "state": model2.state_dict(), "batch0": next(iter(loader)),
            "opt_state_keys": sorted(optimizer2.state_dict()["state"].keys()),
            "wd": [g["weight_decay"] for g in optimizer2.state_dict()["param_groups"]]}
