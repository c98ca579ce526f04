"""The PyTorch DQN tutorial's optimize_model, on a replay batch: gather of the Q-values of
the actions taken, a target network under no_grad with max(1), smooth_l1 (Huber) loss,
gradient value clipping, AdamW, and the soft update of the target through .data."""
import numpy as np
import torch
import torch.nn as nn
import torch.optim as optim


def run(workdir):
    rng = np.random.default_rng(5)

    def make():
        return nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 2))

    policy_net, target_net = make(), make()
    for p in policy_net.parameters():
        p.data = torch.from_numpy(rng.normal(0, 0.3, tuple(p.shape)).astype(np.float32))
    target_net.load_state_dict(policy_net.state_dict())
    optimizer = optim.AdamW(policy_net.parameters(), lr=1e-3, amsgrad=False)
    GAMMA, TAU = 0.99, 0.005
    losses = []
    for _ in range(10):
        state = torch.from_numpy(rng.standard_normal((16, 4)).astype(np.float32))
        action = torch.from_numpy(rng.integers(0, 2, 16))
        reward = torch.from_numpy(rng.standard_normal(16).astype(np.float32))
        next_state = torch.from_numpy(rng.standard_normal((16, 4)).astype(np.float32))
        done = torch.from_numpy((rng.random(16) < 0.2).astype(np.float32))
        state_action_values = policy_net(state).gather(1, action.unsqueeze(1))
        with torch.no_grad():
            next_state_values = target_net(next_state).max(1)[0]
        expected = reward + GAMMA * next_state_values * (1 - done)
        criterion = nn.SmoothL1Loss()
        loss = criterion(state_action_values, expected.unsqueeze(1))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_value_(policy_net.parameters(), 100)
        optimizer.step()
        losses.append(loss.item())
        for tp, pp in zip(target_net.parameters(), policy_net.parameters()):
            tp.data.copy_(TAU * pp.data + (1.0 - TAU) * tp.data)
    return {"losses": losses, "target": target_net.state_dict(),
            "greedy": policy_net(state).argmax(1)}
