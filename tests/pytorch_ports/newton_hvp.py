"""Newton's method for L2-regularized logistic regression in float64, each Newton step
solved by conjugate gradients on Hessian-vector products (double backward with
create_graph=True), no Hessian ever formed."""
import numpy as np
import torch
import torch.nn.functional as F


def loss_fn(w, X, y):
    return F.binary_cross_entropy_with_logits(X @ w, y) + 0.05 * (w * w).sum()


def hvp(w, X, y, v):
    loss = loss_fn(w, X, y)
    loss.backward(create_graph=True)
    g = w.grad
    w.grad = None
    (g * v).sum().backward()
    out = w.grad.detach()
    w.grad = None
    return g.detach(), out


def run(workdir):
    rng = np.random.default_rng(6)
    X = torch.from_numpy(rng.standard_normal((40, 5)))
    y = torch.from_numpy((rng.random(40) < 0.5).astype(np.float64))
    w = torch.zeros(5, dtype=torch.float64, requires_grad=True)
    losses, residuals = [], []
    for _ in range(4):
        g, _ = hvp(w, X, y, torch.zeros(5, dtype=torch.float64))
        s = torch.zeros(5, dtype=torch.float64)  # solve H s = g by conjugate gradients
        r = g.clone()
        p = r.clone()
        for _ in range(5):
            _, Hp = hvp(w, X, y, p)
            alpha = torch.dot(r, r) / torch.dot(p, Hp)
            s = s + alpha * p
            r_new = r - alpha * Hp
            beta = torch.dot(r_new, r_new) / torch.dot(r, r)
            p = r_new + beta * p
            r = r_new
        residuals.append(r.norm().item())
        with torch.no_grad():
            w -= s
        losses.append(loss_fn(w, X, y).item())
    return {"losses": losses, "w": w, "residuals": residuals}
