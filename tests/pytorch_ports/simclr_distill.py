"""Two losses from self-supervised and compression papers as their reference code writes
them: SimCLR's NT-Xent (F.normalize, a similarity matrix by matmul, the diagonal masked out
with masked_fill and a bool eye, positives picked by roll/arange, cross_entropy over
temperature-scaled logits), and knowledge distillation (KLDivLoss(reduction="batchmean") of
log_softmax(student / T) against softmax(teacher / T), times T^2, mixed with the hard-label
loss), with a teacher frozen in eval mode, SGD with momentum, and a cosine schedule with
warmup by SequentialLR(LinearLR, CosineAnnealingLR)."""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def nt_xent(z1, z2, temperature=0.5):
    n = z1.shape[0]
    z = F.normalize(torch.cat([z1, z2], dim=0), dim=1)
    sim = z @ z.T / temperature
    mask = torch.eye(2 * n, dtype=torch.bool)
    sim = sim.masked_fill(mask, float("-inf"))
    targets = torch.arange(2 * n).roll(n)
    return F.cross_entropy(sim, targets)


def distillation_loss(student_logits, teacher_logits, labels, T=4.0, alpha=0.7):
    soft = nn.KLDivLoss(reduction="batchmean")(F.log_softmax(student_logits / T, dim=1),
                                               F.softmax(teacher_logits / T, dim=1)) * (T * T)
    hard = F.cross_entropy(student_logits, labels)
    return alpha * soft + (1 - alpha) * hard


def run(workdir):
    rng = np.random.default_rng(81)
    encoder = nn.Sequential(nn.Linear(10, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 8))
    projector = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 4))
    teacher = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Linear(32, 3))
    student = nn.Sequential(nn.Linear(10, 8), nn.ReLU(), nn.Linear(8, 3))
    for m in (encoder, projector, teacher, student):
        with torch.no_grad():
            for p in m.parameters():
                p.copy_(torch.from_numpy(rng.normal(0, 0.3, tuple(p.shape)).astype(np.float32)))
    teacher.eval()
    for p in teacher.parameters():
        p.requires_grad = False
    params = list(encoder.parameters()) + list(projector.parameters())
    opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=1e-4)
    warmup = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=2)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4, eta_min=1e-3)
    sched = torch.optim.lr_scheduler.SequentialLR(opt, [warmup, cosine], milestones=[2])
    s_opt = torch.optim.Adam(student.parameters(), lr=1e-2)
    out = []
    for _ in range(6):
        x = torch.from_numpy(rng.standard_normal((8, 10)).astype(np.float32))
        noise1 = torch.from_numpy(0.1 * rng.standard_normal((8, 10)).astype(np.float32))
        noise2 = torch.from_numpy(0.1 * rng.standard_normal((8, 10)).astype(np.float32))
        z1, z2 = projector(encoder(x + noise1)), projector(encoder(x + noise2))
        loss = nt_xent(z1, z2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        labels = torch.from_numpy(rng.integers(0, 3, 8))
        with torch.no_grad():
            t_logits = teacher(x)
        d_loss = distillation_loss(student(x), t_logits, labels)
        s_opt.zero_grad()
        d_loss.backward()
        s_opt.step()
        out.append([loss.item(), d_loss.item(), sched.get_last_lr()[0]])
    agree = (student(x).argmax(1) == teacher(x).argmax(1)).float().mean().item()
    return {"out": out, "agree": agree, "enc": encoder.state_dict(),
            "student_grads": [p.grad for p in student.parameters()],
            "teacher_grads": [p.grad for p in teacher.parameters()]}
