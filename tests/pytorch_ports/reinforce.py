"""pytorch/examples reinforcement_learning/reinforce.py, on a fixed toy environment: a policy
network's softmax probabilities in a Categorical, actions picked by inverse-CDF from NumPy
uniforms (so both libraries take the same ones), log_prob of each action saved, discounted
returns normalized with (R - mean) / (std + eps), the policy loss summed with torch.cat,
Adam; then the actor-critic variant with a value head, smooth_l1 and an entropy bonus."""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from torch.distributions import Categorical

gamma = 0.99
eps = np.finfo(np.float32).eps.item()


class Policy(nn.Module):
    def __init__(self):
        super().__init__()
        self.affine1 = nn.Linear(4, 16)
        self.dropout = nn.Dropout(p=0.6)
        self.affine2 = nn.Linear(16, 2)
        self.value_head = nn.Linear(16, 1)
        self.saved_log_probs = []
        self.rewards = []

    def forward(self, x):
        x = self.affine1(x)
        x = self.dropout(x)
        x = F.relu(x)
        action_scores = self.affine2(x)
        return F.softmax(action_scores, dim=1), self.value_head(x)


def run(workdir):
    rng = np.random.default_rng(17)
    policy = Policy()
    with torch.no_grad():
        for p in policy.parameters():
            p.copy_(torch.from_numpy(rng.normal(0, 0.4, tuple(p.shape)).astype(np.float32)))
    policy.eval()  # (no dropout noise, so both libraries see the same)
    optimizer = optim.Adam(policy.parameters(), lr=1e-2)
    out = []
    for _ in range(4):
        values, entropies = [], []
        state = rng.standard_normal(4).astype(np.float32)
        for _ in range(6):
            s = torch.from_numpy(state).float().unsqueeze(0)
            probs, value = policy(s)
            m = Categorical(probs)
            u = rng.random()
            action = torch.tensor([int(u > probs[0, 0].item())])
            policy.saved_log_probs.append(m.log_prob(action))
            entropies.append(m.entropy())
            values.append(value.squeeze())
            reward = float(action.item() == (state[0] > 0))
            policy.rewards.append(reward)
            state = np.roll(state, 1) + 0.1 * rng.standard_normal(4).astype(np.float32)
        R = 0
        policy_loss, returns = [], []
        for r in policy.rewards[::-1]:
            R = r + gamma * R
            returns.insert(0, R)
        returns = torch.tensor(returns)
        returns = (returns - returns.mean()) / (returns.std() + eps)
        values = torch.stack(values)
        advantage = returns - values.detach()
        for log_prob, adv in zip(policy.saved_log_probs, advantage):
            policy_loss.append(-log_prob * adv)
        value_loss = F.smooth_l1_loss(values, returns)
        entropy = torch.cat(entropies).mean()
        optimizer.zero_grad()
        loss = torch.cat(policy_loss).sum() + 0.5 * value_loss - 0.01 * entropy
        loss.backward()
        optimizer.step()
        out.append([loss.item(), value_loss.item(), entropy.item()])
        del policy.rewards[:]
        del policy.saved_log_probs[:]
    m = Categorical(logits=torch.tensor([[0.5, -1.0, 2.0], [0.0, 0.0, 0.0]]))
    return {"losses": out, "grads": [p.grad for p in policy.parameters()],
            "logits": m.logits, "probs": m.probs, "entropy": m.entropy(),
            "log_prob": m.log_prob(torch.tensor([2, 1])), "support": m.enumerate_support(),
            "batch_shape": tuple(m.batch_shape), "sample_shape": tuple(m.sample((5,)).shape)}
