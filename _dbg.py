import numpy as np, tracegrad as tg, torch
rng = np.random.default_rng(0)
a = rng.standard_normal((3,3)); a = a + a.T
W = rng.standard_normal((3,3))
t = tg.tensor(a, requires_grad=True)
(tg.linalg.eigh(t)[1] ** 2 * tg.tensor(W)).sum().backward()
tt = torch.tensor(a, requires_grad=True)
(torch.linalg.eigh(tt)[1] ** 2 * torch.tensor(W)).sum().backward()
print(t.grad.numpy() - tt.grad.numpy())
jr = tg.func.jacrev(lambda x: tg.linalg.eigh(x)[1])(tg.tensor(a))
jf = tg.func.jacfwd(lambda x: tg.linalg.eigh(x)[1])(tg.tensor(a))
print(np.abs(jr.numpy() - jf.numpy()).max())
print(jr.numpy()[0,0], jf.numpy()[0,0])
