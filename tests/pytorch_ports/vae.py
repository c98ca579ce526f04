"""pytorch/examples vae/main.py, shrunk: encoder to (mu, logvar), the reparameterization
trick (its noise drawn with NumPy so every port sees the same), sigmoid decoder,
binary_cross_entropy(reduction="sum") + KL divergence, Adam."""
import numpy as np
import torch
from torch import nn, optim
from torch.nn import functional as F


class VAE(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(16, 8)
        self.fc21 = nn.Linear(8, 2)
        self.fc22 = nn.Linear(8, 2)
        self.fc3 = nn.Linear(2, 8)
        self.fc4 = nn.Linear(8, 16)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def reparameterize(self, mu, logvar, eps):
        std = torch.exp(0.5 * logvar)
        return mu + eps * std

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))

    def forward(self, x, eps):
        mu, logvar = self.encode(x.view(-1, 16))
        z = self.reparameterize(mu, logvar, eps)
        return self.decode(z), mu, logvar


def loss_function(recon_x, x, mu, logvar):
    BCE = F.binary_cross_entropy(recon_x, x.view(-1, 16), reduction="sum")
    KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return BCE + KLD


def run(workdir):
    rng = np.random.default_rng(3)
    model = VAE()
    for p in model.parameters():
        p.data.copy_(torch.from_numpy(rng.normal(0, 0.3, tuple(p.shape)).astype(np.float32)))
    optimizer = optim.Adam(model.parameters(), lr=1e-2)
    data = torch.from_numpy((rng.random((12, 4, 4)) > 0.5).astype(np.float32))
    losses = []
    model.train()
    for _ in range(10):
        eps = torch.from_numpy(rng.standard_normal((12, 2)).astype(np.float32))
        optimizer.zero_grad()
        recon_batch, mu, logvar = model(data, eps)
        loss = loss_function(recon_batch, data, mu, logvar)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    with torch.no_grad():
        sample = model.decode(torch.from_numpy(rng.standard_normal((3, 2)).astype(np.float32)))
    return {"losses": losses, "sample": sample, "grads": [p.grad for p in model.parameters()]}
