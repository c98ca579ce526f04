"""A Transformer encoder text classifier as the tutorials write it: Embedding with
padding_idx scaled by sqrt(d_model), a sinusoidal PositionalEncoding kept as a buffer
(register_buffer), nn.TransformerEncoder(batch_first=True) with a src_key_padding_mask,
masked mean pooling, AdamW with a LambdaLR warmup, clip_grad_norm_."""
import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class PositionalEncoding(nn.Module):
    def __init__(self, d_model, dropout=0.1, max_len=50):
        super().__init__()
        self.dropout = nn.Dropout(p=dropout)
        position = torch.arange(max_len).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        pe = torch.zeros(max_len, 1, d_model)
        pe[:, 0, 0::2] = torch.sin(position * div_term)
        pe[:, 0, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe.transpose(0, 1))

    def forward(self, x):
        x = x + self.pe[:, : x.size(1)]
        return self.dropout(x)


class Classifier(nn.Module):
    def __init__(self, ntoken, d_model, nhead, d_hid, nlayers, nclass):
        super().__init__()
        self.d_model = d_model
        self.embedding = nn.Embedding(ntoken, d_model, padding_idx=0)
        self.pos_encoder = PositionalEncoding(d_model)
        layer = nn.TransformerEncoderLayer(d_model, nhead, d_hid, dropout=0.1,
                                           batch_first=True, activation="gelu")
        self.encoder = nn.TransformerEncoder(layer, nlayers, enable_nested_tensor=False)
        self.head = nn.Linear(d_model, nclass)

    def forward(self, src, pad_mask):
        x = self.embedding(src) * math.sqrt(self.d_model)
        x = self.pos_encoder(x)
        x = self.encoder(x, src_key_padding_mask=pad_mask)
        keep = (~pad_mask).unsqueeze(-1).float()
        x = (x * keep).sum(dim=1) / keep.sum(dim=1).clamp(min=1.0)
        return self.head(x)


def run(workdir):
    rng = np.random.default_rng(4)
    model = Classifier(ntoken=20, d_model=8, nhead=2, d_hid=16, nlayers=2, nclass=2)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.from_numpy(rng.normal(0, 0.3, tuple(p.shape)).astype(np.float32)))
        model.embedding.weight[0].zero_()
    model.eval()  # dropout off, so both libraries compute the same
    lengths = [7, 3, 5, 6, 2, 7]
    src = np.zeros((6, 7), dtype=np.int64)
    for i, n in enumerate(lengths):
        src[i, :n] = rng.integers(1, 20, n)
    src = torch.from_numpy(src)
    pad_mask = src == 0
    labels = torch.from_numpy(rng.integers(0, 2, 6))
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=0.01)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / 3))
    losses = []
    for _ in range(6):
        logits = model(src, pad_mask)
        loss = F.cross_entropy(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        norm = nn.utils.clip_grad_norm_(model.parameters(), max_norm=0.5)
        optimizer.step()
        scheduler.step()
        losses.append([loss.item(), float(norm)])
    with torch.no_grad():
        acc = (model(src, pad_mask).argmax(-1) == labels).float().mean().item()
    return {"losses": losses, "acc": acc, "emb_pad": model.embedding.weight.grad[0],
            "grads": [p.grad for p in model.parameters()], "buffers": dict(model.named_buffers())}
