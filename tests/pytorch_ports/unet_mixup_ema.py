"""A small U-Net for segmentation (double-conv blocks with BatchNorm2d, MaxPool2d down,
ConvTranspose2d up, torch.cat skip connections, F.interpolate to fix odd sizes, a 1x1 head),
trained with mixup (a permutation and a Beta-drawn lambda from NumPy) on a Dice + BCE loss,
an exponential moving average of the weights over the state_dict (buffers copied, floats
lerped under no_grad), and evaluation of the EMA model with sigmoid > 0.5 IoU."""
import copy

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class DoubleConv(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False),
                                 nn.BatchNorm2d(cout), nn.ReLU(inplace=True),
                                 nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                                 nn.BatchNorm2d(cout), nn.ReLU(inplace=True))

    def forward(self, x):
        return self.net(x)


class UNet(nn.Module):
    def __init__(self, c=4):
        super().__init__()
        self.inc = DoubleConv(1, c)
        self.down = nn.Sequential(nn.MaxPool2d(2), DoubleConv(c, 2 * c))
        self.up = nn.ConvTranspose2d(2 * c, c, kernel_size=2, stride=2)
        self.conv = DoubleConv(2 * c, c)
        self.outc = nn.Conv2d(c, 1, kernel_size=1)

    def forward(self, x):
        x1 = self.inc(x)
        x2 = self.down(x1)
        u = self.up(x2)
        if u.shape[-2:] != x1.shape[-2:]:
            u = F.interpolate(u, size=x1.shape[-2:], mode="bilinear", align_corners=False)
        return self.outc(self.conv(torch.cat([x1, u], dim=1)))


def dice_loss(logits, target, eps=1.0):
    probs = torch.sigmoid(logits)
    inter = (probs * target).sum(dim=(1, 2, 3))
    union = probs.sum(dim=(1, 2, 3)) + target.sum(dim=(1, 2, 3))
    return 1 - ((2 * inter + eps) / (union + eps)).mean()


@torch.no_grad()
def ema_update(ema, model, decay):
    msd = model.state_dict()
    for k, ema_v in ema.state_dict().items():
        model_v = msd[k].detach()
        if ema_v.dtype.is_floating_point if hasattr(ema_v.dtype, "is_floating_point") else \
                ema_v.is_floating_point():
            ema_v.copy_(ema_v * decay + (1.0 - decay) * model_v)
        else:
            ema_v.copy_(model_v)


def run(workdir):
    rng = np.random.default_rng(91)
    model = UNet()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() > 1 or name.endswith("bias"):
                p.copy_(torch.from_numpy(rng.normal(0, 0.3, tuple(p.shape)).astype(np.float32)))
    ema = copy.deepcopy(model)
    for p in ema.parameters():
        p.requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    x = torch.from_numpy(rng.standard_normal((4, 1, 10, 10)).astype(np.float32))
    y = (x > 0.3).float()
    log = []
    for _ in range(4):
        model.train()
        lam = float(rng.beta(0.4, 0.4))
        index = torch.from_numpy(rng.permutation(4))
        mixed_x = lam * x + (1 - lam) * x[index, :]
        logits = model(mixed_x)
        loss = lam * (F.binary_cross_entropy_with_logits(logits, y) + dice_loss(logits, y)) + \
            (1 - lam) * (F.binary_cross_entropy_with_logits(logits, y[index])
                         + dice_loss(logits, y[index]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        ema_update(ema, model, decay=0.9)
        log.append(loss.item())
    ema.eval()
    with torch.no_grad():
        pred = torch.sigmoid(ema(x)) > 0.5
        iou = ((pred & y.bool()).sum() / (pred | y.bool()).sum().clamp(min=1)).item()
    return {"log": log, "iou": iou, "ema": ema.state_dict(),
            "grads": [p.grad for p in model.parameters()]}
