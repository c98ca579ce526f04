"""WGAN-GP (Gulrajani et al.), as the popular PyTorch implementations write it: a conv critic
with LeakyReLU and LayerNorm-free layers, the gradient penalty from torch.autograd.grad of
the critic at random interpolates (grad_outputs=ones, create_graph=True, only_inputs=True),
its norm over the flattened image, the penalty's own gradient flowing into the critic
(double backward through Conv2d, LeakyReLU, Linear), n_critic steps per generator step,
Adam(betas=(0.0, 0.9)); the interpolation weights from NumPy."""
import numpy as np
import torch
import torch.autograd as autograd
import torch.nn as nn


class Generator(nn.Module):
    def __init__(self, latent=4):
        super().__init__()
        self.fc = nn.Linear(latent, 8 * 4 * 4)
        self.net = nn.Sequential(nn.ReLU(), nn.ConvTranspose2d(8, 4, 4, 2, 1), nn.ReLU(),
                                 nn.Conv2d(4, 1, 3, padding=1), nn.Tanh())

    def forward(self, z):
        return self.net(self.fc(z).view(-1, 8, 4, 4))


class Critic(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 4, 4, 2, 1), nn.LeakyReLU(0.2),
                                 nn.Conv2d(4, 8, 4, 2, 1), nn.LeakyReLU(0.2), nn.Flatten(),
                                 nn.Linear(8 * 2 * 2, 1))

    def forward(self, x):
        return self.net(x)


def compute_gradient_penalty(D, real_samples, fake_samples, alpha):
    interpolates = (alpha * real_samples + ((1 - alpha) * fake_samples)).requires_grad_(True)
    d_interpolates = D(interpolates)
    fake = torch.ones(real_samples.shape[0], 1, requires_grad=False)
    gradients = autograd.grad(outputs=d_interpolates, inputs=interpolates, grad_outputs=fake,
                              create_graph=True, retain_graph=True, only_inputs=True)[0]
    gradients = gradients.view(gradients.size(0), -1)
    return ((gradients.norm(2, dim=1) - 1) ** 2).mean()


def run(workdir):
    rng = np.random.default_rng(51)
    G, D = Generator(), Critic()
    with torch.no_grad():
        for p in list(G.parameters()) + list(D.parameters()):
            p.copy_(torch.from_numpy(rng.normal(0, 0.3, tuple(p.shape)).astype(np.float32)))
    opt_G = torch.optim.Adam(G.parameters(), lr=1e-3, betas=(0.0, 0.9))
    opt_D = torch.optim.Adam(D.parameters(), lr=1e-3, betas=(0.0, 0.9))
    lambda_gp, n_critic = 10, 2
    log = []
    for i in range(4):
        real = torch.from_numpy(rng.uniform(-1, 1, (6, 1, 8, 8)).astype(np.float32))
        z = torch.from_numpy(rng.standard_normal((6, 4)).astype(np.float32))
        alpha = torch.from_numpy(rng.random((6, 1, 1, 1)).astype(np.float32))
        opt_D.zero_grad()
        fake = G(z)
        gp = compute_gradient_penalty(D, real.data, fake.data, alpha)
        d_loss = -torch.mean(D(real)) + torch.mean(D(fake.detach())) + lambda_gp * gp
        d_loss.backward()
        opt_D.step()
        entry = [d_loss.item(), gp.item()]
        if i % n_critic == 0:
            opt_G.zero_grad()
            g_loss = -torch.mean(D(G(z)))
            g_loss.backward()
            opt_G.step()
            entry.append(g_loss.item())
        log.append(entry)
    return {"log": log, "D": D.state_dict(), "G": G.state_dict(),
            "D_grads": [p.grad for p in D.parameters()]}
