"""Skip-gram word2vec with negative sampling: two Embedding tables, bmm of the negatives with
the centre vectors, logsigmoid, plain SGD; then cosine similarities of the learnt vectors."""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class SkipGram(nn.Module):
    def __init__(self, vocab_size, dim):
        super().__init__()
        self.in_embed = nn.Embedding(vocab_size, dim)
        self.out_embed = nn.Embedding(vocab_size, dim)

    def forward(self, center, context, negatives):
        c = self.in_embed(center)
        o = self.out_embed(context)
        n = self.out_embed(negatives)
        pos = F.logsigmoid((c * o).sum(dim=1))
        neg = F.logsigmoid(-torch.bmm(n, c.unsqueeze(2)).squeeze(2)).sum(dim=1)
        return -(pos + neg).mean()


def run(workdir):
    corpus = "the cat sat on the mat the dog sat on the log".split()
    vocab = sorted(set(corpus))
    w2i = {w: i for i, w in enumerate(vocab)}
    pairs = [(w2i[corpus[i]], w2i[corpus[j]]) for i in range(len(corpus))
             for j in range(max(0, i - 2), min(len(corpus), i + 3)) if i != j]
    rng = np.random.default_rng(4)
    model = SkipGram(len(vocab), 6)
    with torch.no_grad():
        model.in_embed.weight.copy_(torch.from_numpy(
            rng.uniform(-0.5, 0.5, (len(vocab), 6)).astype(np.float32)))
        model.out_embed.weight.zero_()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    center = torch.tensor([p[0] for p in pairs])
    context = torch.tensor([p[1] for p in pairs])
    losses = []
    for _ in range(20):
        negatives = torch.from_numpy(rng.integers(0, len(vocab), (len(pairs), 3)))
        loss = model(center, context, negatives)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    emb = F.normalize(model.in_embed.weight.detach(), dim=1)
    similarity = emb @ emb.t()
    return {"losses": losses, "similarity": similarity,
            "cos": F.cosine_similarity(emb[w2i["cat"]], emb[w2i["dog"]], dim=0).item()}
