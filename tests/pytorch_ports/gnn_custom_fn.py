"""A graph network and custom autograd Functions: a GCN layer (symmetric-normalized
adjacency built with index_put/scatter_add_ from an edge list, degree^-1/2) and a
message-passing layer with index_add_ over edges, global mean pooling per graph with
scatter_add_/bincount, a gradient-reversal layer (DANN) and a straight-through sign
estimator written as torch.autograd.Function with ctx.save_for_backward / ctx attributes,
and the tutorial's custom ReLU; node classification with a masked cross_entropy."""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class GradReverse(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, alpha):
        ctx.alpha = alpha
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad_output):
        return grad_output.neg() * ctx.alpha, None


class STESign(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return torch.sign(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * (x.abs() <= 1).to(grad_output.dtype)


class MyReLU(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return input.clamp(min=0)

    @staticmethod
    def backward(ctx, grad_output):
        (input,) = ctx.saved_tensors
        grad_input = grad_output.clone()
        grad_input[input < 0] = 0
        return grad_input


class GCNLayer(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.lin = nn.Linear(cin, cout, bias=False)
        self.bias = nn.Parameter(torch.zeros(cout))

    def forward(self, x, edge_index):
        n = x.size(0)
        loops = torch.arange(n).unsqueeze(0).repeat(2, 1)
        ei = torch.cat([edge_index, loops], dim=1)
        row, col = ei[0], ei[1]
        deg = torch.zeros(n).scatter_add_(0, col, torch.ones(ei.size(1)))
        dinv = deg.pow(-0.5)
        dinv[torch.isinf(dinv)] = 0
        norm = dinv[row] * dinv[col]
        h = self.lin(x)
        out = torch.zeros_like(h).index_add_(0, col, h[row] * norm.unsqueeze(-1))
        return out + self.bias


class MPLayer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.msg = nn.Linear(2 * c, c)
        self.upd = nn.GRUCell(c, c)

    def forward(self, x, edge_index):
        src, dst = edge_index
        m = F.relu(self.msg(torch.cat([x[src], x[dst]], dim=-1)))
        agg = torch.zeros_like(x).index_add_(0, dst, m)
        return self.upd(agg, x)


def run(workdir):
    rng = np.random.default_rng(111)
    n, c = 10, 4
    edges = rng.integers(0, n, (2, 24))
    edge_index = torch.from_numpy(edges)
    x = torch.from_numpy(rng.standard_normal((n, 3)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 2, n))
    batch = torch.from_numpy(np.array([0] * 6 + [1] * 4))
    train_mask = torch.from_numpy(rng.random(n) < 0.6)
    gcn1, gcn2, mp = GCNLayer(3, c), GCNLayer(c, 2), MPLayer(c)
    dom = nn.Linear(c, 2)
    mods = nn.ModuleList([gcn1, gcn2, mp, dom])
    with torch.no_grad():
        for p in mods.parameters():
            p.copy_(torch.from_numpy(rng.normal(0, 0.4, tuple(p.shape)).astype(np.float32)))
    opt = torch.optim.Adam(mods.parameters(), lr=1e-2, weight_decay=5e-4)
    log = []
    for _ in range(5):
        h = MyReLU.apply(gcn1(x, edge_index))
        h = mp(h, edge_index)
        h = F.dropout(h, p=0.5, training=False)
        out = gcn2(h, edge_index)
        loss = F.cross_entropy(out[train_mask], y[train_mask])
        counts = torch.bincount(batch).float().unsqueeze(-1)
        pooled = torch.zeros(2, c).scatter_add_(0, batch.unsqueeze(-1).expand(-1, c), h) / counts
        dom_loss = F.cross_entropy(dom(GradReverse.apply(pooled, 0.3)), torch.tensor([0, 1]))
        q = STESign.apply(h).mean()
        total = loss + dom_loss + 0.1 * q
        opt.zero_grad()
        total.backward()
        opt.step()
        log.append([loss.item(), dom_loss.item(), q.item()])
    with torch.no_grad():
        pred = gcn2(mp(MyReLU.apply(gcn1(x, edge_index)), edge_index), edge_index).argmax(1)
        acc = (pred[~train_mask] == y[~train_mask]).float().mean().item()
    return {"log": log, "acc": acc, "grads": [p.grad for p in mods.parameters()]}
