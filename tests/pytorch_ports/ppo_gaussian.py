"""A PPO update for continuous actions, as CleanRL's ppo_continuous_action writes it: an
actor mean network with a state-independent log_std Parameter, Normal(mean, std) with
log_prob(action).sum(1) and entropy().sum(1), the clipped surrogate objective with ratio =
(newlogprob - oldlogprob).exp(), clipped value loss, advantages normalized, minibatches from
a fixed permutation, clip_grad_norm_, Adam(eps=1e-5) with lr annealed by hand; KL between the
old and new policies with kl_divergence."""
import numpy as np
import torch
import torch.nn as nn
from torch.distributions import Independent, kl_divergence
from torch.distributions.normal import Normal


def layer_init(layer, rng, std=2 ** 0.5, bias_const=0.0):
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(
            rng.normal(0, std / 4, tuple(layer.weight.shape)).astype(np.float32)))
    torch.nn.init.constant_(layer.bias, bias_const)
    return layer


class Agent(nn.Module):
    def __init__(self, rng, obs=3, act=2):
        super().__init__()
        self.critic = nn.Sequential(layer_init(nn.Linear(obs, 16), rng), nn.Tanh(),
                                    layer_init(nn.Linear(16, 1), rng, std=1.0))
        self.actor_mean = nn.Sequential(layer_init(nn.Linear(obs, 16), rng), nn.Tanh(),
                                        layer_init(nn.Linear(16, act), rng, std=0.01))
        self.actor_logstd = nn.Parameter(torch.zeros(1, act))

    def get_value(self, x):
        return self.critic(x)

    def get_action_and_value(self, x, action=None):
        action_mean = self.actor_mean(x)
        action_logstd = self.actor_logstd.expand_as(action_mean)
        action_std = torch.exp(action_logstd)
        probs = Normal(action_mean, action_std)
        if action is None:
            action = probs.sample()
        return action, probs.log_prob(action).sum(1), probs.entropy().sum(1), self.critic(x)


def run(workdir):
    rng = np.random.default_rng(23)
    agent = Agent(rng)
    optimizer = torch.optim.Adam(agent.parameters(), lr=3e-3, eps=1e-5)
    N, clip_coef, ent_coef, vf_coef = 16, 0.2, 0.01, 0.5
    obs = torch.from_numpy(rng.standard_normal((N, 3)).astype(np.float32))
    actions = torch.from_numpy(rng.standard_normal((N, 2)).astype(np.float32))
    with torch.no_grad():
        _, logprobs, _, values = agent.get_action_and_value(obs, actions)
        values = values.flatten()
        old_dist = Independent(Normal(agent.actor_mean(obs), agent.actor_logstd.exp()), 1)
    returns = torch.from_numpy(rng.standard_normal(N).astype(np.float32))
    advantages = returns - values
    out = []
    for epoch in range(3):
        frac = 1.0 - epoch / 3
        optimizer.param_groups[0]["lr"] = frac * 3e-3
        b_inds = rng.permutation(N)
        for start in range(0, N, 8):
            mb_inds = torch.from_numpy(b_inds[start:start + 8])
            _, newlogprob, entropy, newvalue = agent.get_action_and_value(
                obs[mb_inds], actions[mb_inds])
            logratio = newlogprob - logprobs[mb_inds]
            ratio = logratio.exp()
            with torch.no_grad():
                approx_kl = ((ratio - 1) - logratio).mean()
                clipfrac = ((ratio - 1.0).abs() > clip_coef).float().mean().item()
            mb_adv = advantages[mb_inds]
            mb_adv = (mb_adv - mb_adv.mean()) / (mb_adv.std() + 1e-8)
            pg_loss1 = -mb_adv * ratio
            pg_loss2 = -mb_adv * torch.clamp(ratio, 1 - clip_coef, 1 + clip_coef)
            pg_loss = torch.max(pg_loss1, pg_loss2).mean()
            newvalue = newvalue.view(-1)
            v_loss_unclipped = (newvalue - returns[mb_inds]) ** 2
            v_clipped = values[mb_inds] + torch.clamp(newvalue - values[mb_inds], -clip_coef,
                                                      clip_coef)
            v_loss_clipped = (v_clipped - returns[mb_inds]) ** 2
            v_loss = 0.5 * torch.max(v_loss_unclipped, v_loss_clipped).mean()
            loss = pg_loss - ent_coef * entropy.mean() + v_loss * vf_coef
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(agent.parameters(), 0.5)
            optimizer.step()
            out.append([loss.item(), approx_kl.item(), clipfrac])
    new_dist = Independent(Normal(agent.actor_mean(obs), agent.actor_logstd.exp()), 1)
    kl = kl_divergence(old_dist, new_dist)
    kl.mean().backward()
    d = Normal(torch.tensor([0.0, 1.0]), torch.tensor([1.0, 2.0]))
    return {"losses": out, "kl": kl, "logstd_grad": agent.actor_logstd.grad,
            "state": agent.state_dict(), "cdf": d.cdf(torch.tensor([0.5, 0.5])),
            "icdf": d.icdf(torch.tensor([0.1, 0.9])), "mean": d.mean, "stddev": d.stddev,
            "variance": d.variance, "rsample_shape": tuple(d.rsample((3,)).shape),
            "event": tuple(new_dist.event_shape), "batch": tuple(new_dist.batch_shape)}
