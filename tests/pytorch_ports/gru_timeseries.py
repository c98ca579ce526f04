"""Time-series regression with a GRU, as the forecasting tutorials write it: a custom Dataset
of sliding windows over a noisy sine, random_split with a seeded Generator into train and
validation, DataLoaders, a 2-layer GRU (dropout between layers, off in eval) whose last step
feeds a Linear, MSELoss, Adam with ReduceLROnPlateau on the validation loss, early-stopping
bookkeeping with a deep copy of the best state_dict, evaluation under torch.no_grad."""
import copy

import numpy as np
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, Dataset, random_split


class WindowDataset(Dataset):
    def __init__(self, series, window):
        self.series = torch.as_tensor(series, dtype=torch.float32)
        self.window = window

    def __len__(self):
        return len(self.series) - self.window

    def __getitem__(self, idx):
        x = self.series[idx:idx + self.window].unsqueeze(-1)
        y = self.series[idx + self.window]
        return x, y


class GRUNet(nn.Module):
    def __init__(self, hidden=8, layers=2):
        super().__init__()
        self.gru = nn.GRU(input_size=1, hidden_size=hidden, num_layers=layers,
                          batch_first=True, dropout=0.2)
        self.fc = nn.Linear(hidden, 1)

    def forward(self, x):
        out, h_n = self.gru(x)
        return self.fc(out[:, -1, :]).squeeze(-1), h_n


def run(workdir):
    rng = np.random.default_rng(31)
    t = np.arange(60, dtype=np.float32)
    series = np.sin(t / 4) + 0.1 * rng.standard_normal(60).astype(np.float32)
    dataset = WindowDataset(series, window=6)
    n_val = len(dataset) // 5
    train_set, val_set = random_split(dataset, [len(dataset) - n_val, n_val],
                                      generator=torch.Generator().manual_seed(0))
    # (the split's indices come from each library's generator: take torch's for both)
    split = np.random.default_rng(0).permutation(len(dataset))
    train_set.indices, val_set.indices = split[n_val:].tolist(), split[:n_val].tolist()
    train_loader = DataLoader(train_set, batch_size=10, shuffle=False)
    val_loader = DataLoader(val_set, batch_size=32)
    model = GRUNet()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.from_numpy(rng.uniform(-0.4, 0.4, tuple(p.shape)).astype(np.float32)))
    criterion = nn.MSELoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="min", factor=0.5,
                                                           patience=0)
    best, best_state, history = float("inf"), None, []
    for epoch in range(4):
        model.eval()  # (dropout between the GRU layers off: both libraries the same)
        train_loss = 0.0
        for xb, yb in train_loader:
            pred, _ = model(xb)
            loss = criterion(pred, yb)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            train_loss += loss.item() * xb.size(0)
        train_loss /= len(train_loader.dataset)
        with torch.no_grad():
            val_loss = sum(criterion(model(xb)[0], yb).item() * len(xb) for xb, yb in val_loader)
            val_loss /= len(val_set)
        scheduler.step(val_loss)
        if val_loss < best:
            best, best_state = val_loss, copy.deepcopy(model.state_dict())
        history.append([epoch, train_loss, val_loss, optimizer.param_groups[0]["lr"]])
    model.load_state_dict(best_state)
    with torch.no_grad():
        x0, _ = dataset[0]
        pred, h = model(x0.unsqueeze(0))
    return {"history": history, "best": best, "pred": pred, "h": h, "n": len(train_set),
            "first": dataset[3], "state": model.state_dict()}
