"""Weight and spectral normalization as GAN and seq models use them: a discriminator with
torch.nn.utils.parametrizations.spectral_norm on its convs and linear (power iteration
state in buffers; eval mode for both libraries so the same vectors are used), a generator
with nn.utils.parametrizations.weight_norm, orthogonal_ init with a gain, the hinge loss,
remove_parametrizations at the end, and the parametrized state_dict's keys."""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.utils import parametrizations, parametrize


def run(workdir):
    rng = np.random.default_rng(121)
    G = nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 8))
    D = nn.Sequential(nn.Linear(8, 16), nn.LeakyReLU(0.1), nn.Linear(16, 1))
    with torch.no_grad():
        for p in list(G.parameters()) + list(D.parameters()):
            p.copy_(torch.from_numpy(rng.normal(0, 0.4, tuple(p.shape)).astype(np.float32)))
    G[0] = parametrizations.weight_norm(G[0])
    G[2] = parametrizations.weight_norm(G[2], dim=0)
    D[0] = parametrizations.spectral_norm(D[0])
    D[2] = parametrizations.spectral_norm(D[2])
    # the power iteration's starting vectors: the same in both libraries
    with torch.no_grad():
        for m in (D[0], D[2]):
            sn = m.parametrizations.weight[0]
            sn._u.copy_(F.normalize(torch.from_numpy(
                rng.standard_normal(tuple(sn._u.shape)).astype(np.float32)), dim=0))
            sn._v.copy_(F.normalize(torch.from_numpy(
                rng.standard_normal(tuple(sn._v.shape)).astype(np.float32)), dim=0))
    keys = sorted(D.state_dict().keys()) + sorted(G.state_dict().keys())
    D.eval()
    optD = torch.optim.Adam(D.parameters(), lr=2e-3, betas=(0.5, 0.999))
    optG = torch.optim.Adam(G.parameters(), lr=2e-3, betas=(0.5, 0.999))
    log = []
    for _ in range(4):
        real = torch.from_numpy(rng.standard_normal((8, 8)).astype(np.float32))
        z = torch.from_numpy(rng.standard_normal((8, 4)).astype(np.float32))
        d_loss = F.relu(1.0 - D(real)).mean() + F.relu(1.0 + D(G(z).detach())).mean()
        optD.zero_grad()
        d_loss.backward()
        optD.step()
        g_loss = -D(G(z)).mean()
        optG.zero_grad()
        g_loss.backward()
        optG.step()
        log.append([d_loss.item(), g_loss.item()])
    sigma = torch.linalg.matrix_norm(D[0].weight.detach(), ord=2).item()
    w = nn.Linear(6, 6)
    nn.init.orthogonal_(w.weight, gain=nn.init.calculate_gain("relu"))
    ortho = (w.weight @ w.weight.T / 2.0 - torch.eye(6)).abs().max().item() < 1e-5
    parametrize.remove_parametrizations(G[0], "weight")
    return {"log": log, "keys": keys, "sigma": sigma, "ortho": ortho,
            "G0": G[0].weight, "is_param": parametrize.is_parametrized(G[2]),
            "after": sorted(G.state_dict().keys())}
