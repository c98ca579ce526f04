"""The boilerplate around real training scripts: a set_seed helper (random, numpy,
torch.manual_seed, torch.cuda.manual_seed_all, cudnn.deterministic/benchmark,
use_deterministic_algorithms), torch.set_num_threads, device selection with
torch.backends.mps, torch.Size shape checks, printing with set_printoptions, gradient
checkpointing (torch.utils.checkpoint) in a deep MLP, parameter counting, and
torch.testing.assert_close between two forward passes."""
import random

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint, checkpoint_sequential


def set_seed(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True)


class Block(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.ln = nn.LayerNorm(d)
        self.fc = nn.Linear(d, d)

    def forward(self, x):
        return x + F.gelu(self.fc(self.ln(x)))


class Deep(nn.Module):
    def __init__(self, d=8, n=4, use_checkpoint=True):
        super().__init__()
        self.blocks = nn.ModuleList([Block(d) for _ in range(n)])
        self.use_checkpoint = use_checkpoint

    def forward(self, x):
        for block in self.blocks:
            if self.use_checkpoint and self.training:
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x)
        return x


def run(workdir):
    set_seed(0)
    torch.set_num_threads(torch.get_num_threads())  # (as scripts do; the number kept)
    if torch.cuda.is_available():
        device = torch.device("cuda")
    elif torch.backends.mps.is_available():
        device = torch.device("mps")
    else:
        device = torch.device("cpu")
    rng = np.random.default_rng(0)
    model = Deep().to(device)
    plain = Deep(use_checkpoint=False)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.from_numpy(rng.normal(0, 0.3, tuple(p.shape)).astype(np.float32)))
    plain.load_state_dict(model.state_dict())
    n_params = sum(p.numel() for p in model.parameters() if p.requires_grad)
    x = torch.from_numpy(rng.standard_normal((5, 8)).astype(np.float32)).to(device)
    assert x.shape == torch.Size([5, 8])
    assert x.size() == (5, 8) and x.shape[1:] == torch.Size([8])
    y = model(x)
    y.pow(2).mean().backward()
    y2 = plain(x)
    y2.pow(2).mean().backward()
    torch.testing.assert_close(y, y2)
    torch.testing.assert_close(model.blocks[0].fc.weight.grad, plain.blocks[0].fc.weight.grad)
    seq = nn.Sequential(*[Block(8) for _ in range(4)])
    with torch.no_grad():
        for p in seq.parameters():
            p.copy_(torch.from_numpy(rng.normal(0, 0.3, tuple(p.shape)).astype(np.float32)))
    xs = x.clone().requires_grad_()
    out = checkpoint_sequential(seq, 2, xs, use_reentrant=False)
    out.sum().backward()
    torch.set_printoptions(precision=2)
    printed = repr(torch.tensor([[1.23456, 2.0], [3.14159, -0.5]]))
    torch.set_printoptions(profile="default")
    printed_default = repr(torch.tensor([1.23456, 2.0]))
    torch.set_printoptions(sci_mode=True)
    printed_sci = repr(torch.tensor([1.5, 200.0]))
    torch.set_printoptions(profile="default", sci_mode=False)
    printed_fixed = repr(torch.tensor([1e-5, 1e5]))
    torch.set_printoptions(profile="default")
    printed_default2 = repr(torch.tensor([1e-5, 1e5]))
    big = repr(torch.arange(300.0)).count("...")
    try:
        torch.testing.assert_close(torch.tensor([1.0]), torch.tensor([1.1]))
        raised = False
    except AssertionError:
        raised = True
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(False)  # (the process's setting, as it was)
    torch.backends.cudnn.deterministic = False
    return {"n_params": n_params, "y": y, "xs_grad": xs.grad,
            "grads": [p.grad for p in model.parameters()], "printed": printed,
            "printed_default": printed_default, "printed_sci": printed_sci,
            "printed_fixed": printed_fixed, "printed_default2": printed_default2, "big": big,
            "raised": raised, "size": tuple(torch.Size([2, 3])),
            "numel": torch.Size([2, 3, 4]).numel(),
            "det": deterministic}
