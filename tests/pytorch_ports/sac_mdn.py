"""Two models built on torch.distributions: a SAC actor update (a tanh-squashed Gaussian
policy as TransformedDistribution(Normal, [TanhTransform(cache_size=1), AffineTransform]),
rsample and log_prob of the same draw, the entropy-temperature loss with a log_alpha
Parameter, twin critics) with the draws' noise fed in from NumPy through the base
distribution's icdf-free path (the same noise in both libraries); and a mixture density
network (MixtureSameFamily of Independent Normals) fit by negative log-likelihood, plus a
Gaussian-mixture EM-style step with LogNormal and StudentT likelihoods."""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.distributions import (
    Categorical,
    Independent,
    LogNormal,
    MixtureSameFamily,
    Normal,
    StudentT,
    TransformedDistribution,
)
from torch.distributions.transforms import AffineTransform, TanhTransform

LOG_STD_MIN, LOG_STD_MAX = -5, 2


class Actor(nn.Module):
    def __init__(self, obs, act):
        super().__init__()
        self.fc1 = nn.Linear(obs, 16)
        self.fc_mean = nn.Linear(16, act)
        self.fc_logstd = nn.Linear(16, act)
        self.register_buffer("action_scale", torch.tensor([2.0, 0.5]))
        self.register_buffer("action_bias", torch.tensor([0.0, 0.5]))

    def forward(self, x):
        x = F.relu(self.fc1(x))
        mean = self.fc_mean(x)
        log_std = torch.tanh(self.fc_logstd(x))
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (log_std + 1)
        return mean, log_std

    def get_action(self, x, eps):
        mean, log_std = self(x)
        std = log_std.exp()
        base = Normal(mean, std)
        dist = TransformedDistribution(base, [TanhTransform(cache_size=1),
                                              AffineTransform(self.action_bias,
                                                              self.action_scale)])
        x_t = mean + std * eps  # base.rsample() with the given noise
        action = dist.transforms[1](dist.transforms[0](x_t))
        log_prob = dist.log_prob(action).sum(1, keepdim=True)
        # CleanRL's hand-written form of the same quantity
        y_t = torch.tanh(x_t)
        lp = base.log_prob(x_t) - torch.log(self.action_scale * (1 - y_t.pow(2)) + 1e-6)
        return action, log_prob, lp.sum(1, keepdim=True)


class MDN(nn.Module):
    def __init__(self, k=3, d=2):
        super().__init__()
        self.k, self.d = k, d
        self.hidden = nn.Sequential(nn.Linear(1, 16), nn.Tanh())
        self.pi = nn.Linear(16, k)
        self.mu = nn.Linear(16, k * d)
        self.sigma = nn.Linear(16, k * d)

    def forward(self, x):
        h = self.hidden(x)
        mix = Categorical(logits=self.pi(h))
        mu = self.mu(h).view(-1, self.k, self.d)
        sigma = F.softplus(self.sigma(h)).view(-1, self.k, self.d) + 1e-3
        return MixtureSameFamily(mix, Independent(Normal(mu, sigma), 1))


def init(module, rng):
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.from_numpy(rng.normal(0, 0.3, tuple(p.shape)).astype(np.float32)))


def run(workdir):
    rng = np.random.default_rng(41)
    actor = Actor(3, 2)
    qf = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 1))
    init(actor, rng)
    init(qf, rng)
    log_alpha = torch.zeros(1, requires_grad=True)
    a_opt = torch.optim.Adam(actor.parameters(), lr=3e-3)
    alpha_opt = torch.optim.Adam([log_alpha], lr=1e-2)
    target_entropy = -2.0
    sac = []
    for _ in range(4):
        obs = torch.from_numpy(rng.standard_normal((8, 3)).astype(np.float32))
        eps = torch.from_numpy(rng.standard_normal((8, 2)).astype(np.float32))
        alpha = log_alpha.exp().item()
        pi, log_pi, log_pi_hand = actor.get_action(obs, eps)
        qf_pi = qf(torch.cat([obs, pi], 1))
        actor_loss = ((alpha * log_pi) - qf_pi).mean()
        a_opt.zero_grad()
        actor_loss.backward()
        a_opt.step()
        with torch.no_grad():
            _, log_pi, _ = actor.get_action(obs, eps)
        alpha_loss = (-log_alpha.exp() * (log_pi + target_entropy)).mean()
        alpha_opt.zero_grad()
        alpha_loss.backward()
        alpha_opt.step()
        sac.append([actor_loss.item(), alpha_loss.item(), log_alpha.item(),
                    (log_pi - log_pi_hand).abs().max().item() < 1e-3])
    mdn = MDN()
    init(mdn, rng)
    opt = torch.optim.Adam(mdn.parameters(), lr=1e-2)
    x = torch.from_numpy(rng.uniform(-1, 1, (32, 1)).astype(np.float32))
    y = torch.cat([torch.sin(3 * x), x ** 2], 1) + 0.05 * torch.from_numpy(
        rng.standard_normal((32, 2)).astype(np.float32))
    nll = []
    for _ in range(5):
        dist = mdn(x)
        loss = -dist.log_prob(y).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        nll.append(loss.item())
    with torch.no_grad():
        dist = mdn(x[:4])
        mean, var = dist.mean, dist.variance
    scale = torch.tensor([0.5, 1.0, 2.0], requires_grad=True)
    ll = (LogNormal(torch.zeros(3), scale).log_prob(torch.tensor([0.5, 1.0, 3.0])).sum()
          + StudentT(torch.tensor(4.0), 0.0, scale).log_prob(torch.tensor([-1.0, 0.0, 2.0])).sum())
    ll.backward()
    return {"sac": sac, "actor": actor.state_dict(), "nll": nll, "mean": mean, "var": var,
            "mdn_grads": [p.grad for p in mdn.parameters()], "ll": ll, "scale_grad": scale.grad,
            "batch": tuple(dist.batch_shape), "event": tuple(dist.event_shape)}
