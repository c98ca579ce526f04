"""A character-level language model: Embedding, a 2-layer batch_first LSTM carrying its
state, a Linear head, cross_entropy, Adam and clip_grad_norm_; then greedy sampling."""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class CharRNN(nn.Module):
    def __init__(self, vocab, hidden):
        super().__init__()
        self.embed = nn.Embedding(vocab, 8)
        self.lstm = nn.LSTM(8, hidden, num_layers=2, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, x, state=None):
        out, state = self.lstm(self.embed(x), state)
        return self.head(out), state


def run(workdir):
    text = "hello world, hello tracegrad, hello autograd"
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    data = torch.tensor([stoi[c] for c in text], dtype=torch.long)
    rng = np.random.default_rng(1)
    model = CharRNN(len(chars), 12)
    for p in model.parameters():
        p.data = torch.from_numpy(rng.uniform(-0.3, 0.3, tuple(p.shape)).astype(np.float32))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    xs = torch.stack([data[i:i + 8] for i in range(0, 32, 4)])
    ys = torch.stack([data[i + 1:i + 9] for i in range(0, 32, 4)])
    losses = []
    for _ in range(15):
        logits, _ = model(xs)
        loss = F.cross_entropy(logits.view(-1, len(chars)), ys.view(-1))
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        losses.append(loss.item())
    with torch.no_grad():
        idx = torch.tensor([[stoi["h"]]])
        state, out = None, []
        for _ in range(10):
            logits, state = model(idx, state)
            idx = logits[:, -1].argmax(-1, keepdim=True)
            out.append(chars[idx.item()])
    return {"losses": losses, "sample": "".join(out),
            "grads": [p.grad for p in model.parameters()]}
