"""Everyday tensor code from real programs: indexing and scatter/gather, einsum, sorting and
top-k, cumulative ops, masks, integer division, dtype promotion, creation functions; and
the gradient of a scalar that mixes them."""
import numpy as np
import torch
import torch.nn.functional as F


def run(workdir):
    rng = np.random.default_rng(8)
    x = torch.from_numpy(rng.standard_normal((4, 5)).astype(np.float32)).requires_grad_()
    idx = torch.tensor([[0, 2], [1, 1], [4, 3], [2, 0]])
    out = {}
    out["gather"] = x.gather(1, idx)
    out["scatter_add"] = torch.zeros(4, 5).scatter_add(1, idx, torch.ones(4, 2))
    out["index_select"] = torch.index_select(x, 0, torch.tensor([3, 0, 3]))
    out["einsum"] = torch.einsum("ij,kj->ik", x, x)
    out["bmm"] = torch.bmm(x.unsqueeze(0), x.t().unsqueeze(0))
    values, indices = torch.topk(x, 2, dim=1)
    out["topk"], out["topk_idx"] = values, indices
    out["sorted"] = torch.sort(x, dim=0, descending=True).values
    out["cumsum"] = torch.cumsum(x, dim=1)
    out["cumprod"] = x.cumprod(dim=0)
    out["prod"] = x.prod(1)
    out["median"] = x.median(dim=1).values
    out["tril"] = torch.triu(x, diagonal=1) + torch.tril(x, -1)
    out["masked"] = x.masked_fill(x < 0, 0.0)
    out["where"] = torch.where(x > 0, x, torch.zeros_like(x))
    out["clamp"] = x.clamp(-0.5, 0.5)
    out["nonzero"] = torch.nonzero(x > 1.0)
    out["one_hot"] = F.one_hot(torch.tensor([0, 2, 1]), num_classes=4)
    out["floordiv"] = torch.arange(10) // 3
    out["mod"] = torch.arange(-5, 5) % 3
    out["promote"] = (torch.arange(3) * 0.5).dtype == torch.float32
    out["double"] = (x.double() * x.detach().to(torch.float64)).dtype == torch.float64
    out["repeat_interleave"] = torch.repeat_interleave(torch.tensor([1, 2]), 2)
    out["roll_flip"] = torch.flip(torch.roll(x, 1, 1), [0])
    out["chunk"] = torch.cat([c * (i + 1) for i, c in enumerate(x.chunk(2, dim=1))], dim=1)
    out["unbind"] = torch.stack(x.unbind(0), dim=1)
    out["isclose"] = torch.isclose(x, x + 1e-7)
    out["allclose"] = torch.allclose(x, x * 1.0)
    out["full_like"] = torch.full_like(x, 3.0)
    out["linspace"] = torch.linspace(0, 1, 5)
    out["argmax"] = x.argmax(dim=1)
    out["norm"] = x.norm(dim=1)
    out["std_mean"] = x.std(dim=0) + x.mean(dim=0)
    out["outer"] = torch.outer(x[0], x[1])
    out["expand_repeat"] = x[:, :1].expand(4, 3) + x[:1].repeat(4, 1)[:, :3]
    loss = (out["gather"].sum() + out["einsum"].trace() + out["cumprod"].sum()
            + out["prod"].sum() + out["median"].sum() + out["tril"].pow(2).sum()
            + out["masked"].sum() + out["topk"].sum() + out["norm"].sum()
            + out["chunk"].sum() + F.normalize(x, dim=1).sum())
    loss.backward()
    out["loss"] = loss
    out["grad"] = x.grad
    return out
