"""A siamese embedding net trained with triplet loss (TripletMarginLoss) and a contrastive
loss written by hand (F.pairwise_distance, clamp), embeddings L2-normalized with F.normalize,
cosine similarity between pairs, hard-negative mining with torch.cdist and masked_fill,
Adam with a StepLR."""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class EmbeddingNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.convnet = nn.Sequential(nn.Conv2d(1, 4, 3), nn.PReLU(), nn.MaxPool2d(2, stride=2),
                                     nn.Conv2d(4, 8, 3), nn.PReLU(), nn.MaxPool2d(2, stride=2))
        self.fc = nn.Sequential(nn.Linear(8 * 1 * 1, 16), nn.PReLU(), nn.Linear(16, 4))

    def forward(self, x):
        output = self.convnet(x)
        output = output.view(output.size()[0], -1)
        return self.fc(output)


class ContrastiveLoss(nn.Module):
    def __init__(self, margin):
        super().__init__()
        self.margin = margin
        self.eps = 1e-9

    def forward(self, output1, output2, target, size_average=True):
        distances = (output2 - output1).pow(2).sum(1)
        far = F.relu(self.margin - (distances + self.eps).sqrt()).pow(2)
        losses = 0.5 * (target.float() * distances + (1 + -1 * target).float() * far)
        return losses.mean() if size_average else losses.sum()


def run(workdir):
    rng = np.random.default_rng(13)
    net = EmbeddingNet()
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.from_numpy(rng.normal(0, 0.4, tuple(p.shape)).astype(np.float32)))
    triplet = nn.TripletMarginLoss(margin=1.0, p=2)
    contrastive = ContrastiveLoss(margin=1.0)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 2, gamma=0.1, last_epoch=-1)
    out = []
    for _ in range(5):
        a, p, n = (torch.from_numpy(rng.standard_normal((6, 1, 10, 10)).astype(np.float32))
                   for _ in range(3))
        target = torch.from_numpy(rng.integers(0, 2, 6))
        ea, ep, en = net(a), net(p), net(n)
        ea_n, ep_n, en_n = (F.normalize(e, p=2, dim=1) for e in (ea, ep, en))
        loss_t = triplet(ea_n, ep_n, en_n)
        loss_c = contrastive(ea, ep, target)
        # batch-hard mining: the closest other embedding of each anchor
        d = torch.cdist(ea_n, en_n)
        same = torch.eye(6, dtype=torch.bool)
        hardest = d.masked_fill(same, float("inf")).min(dim=1).values
        loss_h = F.relu(F.pairwise_distance(ea_n, ep_n) - hardest + 0.5).mean()
        loss = loss_t + loss_c + loss_h
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
        cos = F.cosine_similarity(ea, ep, dim=1)
        out.append([loss_t.item(), loss_c.item(), loss_h.item()])
    return {"losses": out, "cos": cos, "grads": [p.grad for p in net.parameters()],
            "prelu": net.fc[1].weight}
